//! numexpr's expression language: the tokens, a precedence-climbing parser with Python's
//! precedence, constant folding of literal-only subexpressions (Python's arithmetic), and
//! the types of every node by numpy's promotion rules (NEP 50: Python scalars are weak).

use std::fmt;

/// numpy's data types the evaluator computes in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Dt {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl Dt {
    /// From numpy's `dtype.name`.
    pub fn from_name(name: &str) -> Option<Dt> {
        Some(match name {
            "bool" => Dt::Bool,
            "int8" => Dt::I8,
            "int16" => Dt::I16,
            "int32" => Dt::I32,
            "int64" => Dt::I64,
            "uint8" => Dt::U8,
            "uint16" => Dt::U16,
            "uint32" => Dt::U32,
            "uint64" => Dt::U64,
            "float32" => Dt::F32,
            "float64" => Dt::F64,
            _ => return None,
        })
    }

    /// numpy's `dtype.name`.
    pub fn name(self) -> &'static str {
        match self {
            Dt::Bool => "bool",
            Dt::I8 => "int8",
            Dt::I16 => "int16",
            Dt::I32 => "int32",
            Dt::I64 => "int64",
            Dt::U8 => "uint8",
            Dt::U16 => "uint16",
            Dt::U32 => "uint32",
            Dt::U64 => "uint64",
            Dt::F32 => "float32",
            Dt::F64 => "float64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dt::F32 | Dt::F64)
    }

    fn is_signed(self) -> bool {
        matches!(self, Dt::I8 | Dt::I16 | Dt::I32 | Dt::I64)
    }

    fn is_unsigned(self) -> bool {
        matches!(self, Dt::U8 | Dt::U16 | Dt::U32 | Dt::U64)
    }

    pub fn is_int(self) -> bool {
        self.is_signed() || self.is_unsigned()
    }

    fn bits(self) -> u32 {
        match self {
            Dt::Bool | Dt::I8 | Dt::U8 => 8,
            Dt::I16 | Dt::U16 => 16,
            Dt::I32 | Dt::U32 | Dt::F32 => 32,
            Dt::I64 | Dt::U64 | Dt::F64 => 64,
        }
    }

    fn signed(bits: u32) -> Dt {
        match bits {
            8 => Dt::I8,
            16 => Dt::I16,
            32 => Dt::I32,
            _ => Dt::I64,
        }
    }

    /// The range of an integer type.
    fn range(self) -> (i128, i128) {
        match self {
            Dt::Bool => (0, 1),
            Dt::I8 => (i8::MIN.into(), i8::MAX.into()),
            Dt::I16 => (i16::MIN.into(), i16::MAX.into()),
            Dt::I32 => (i32::MIN.into(), i32::MAX.into()),
            Dt::I64 => (i64::MIN.into(), i64::MAX.into()),
            Dt::U8 => (0, u8::MAX.into()),
            Dt::U16 => (0, u16::MAX.into()),
            Dt::U32 => (0, u32::MAX.into()),
            Dt::U64 => (0, u64::MAX.into()),
            Dt::F32 | Dt::F64 => (i128::MIN, i128::MAX),
        }
    }

    /// numpy's `result_type` of two array types.
    pub fn promote(a: Dt, b: Dt) -> Dt {
        use Dt::*;
        if a == b {
            return a;
        }
        match (a, b) {
            (Bool, x) | (x, Bool) => x,
            (F64, _) | (_, F64) => F64,
            (F32, x) | (x, F32) => match x.bits() <= 16 {
                true => F32,
                false => F64,
            },
            (x, y) if x.is_signed() == y.is_signed() => match x.bits() >= y.bits() {
                true => x,
                false => y,
            },
            (x, y) => {
                let (s, u) = if x.is_signed() { (x, y) } else { (y, x) };
                if s.bits() > u.bits() {
                    s
                } else if u.bits() < 64 {
                    Dt::signed(u.bits() * 2)
                } else {
                    F64
                }
            }
        }
    }

    /// The smallest float type this type casts to safely: 0 float16, 1 float32, 2 float64.
    fn float_rank(self) -> u8 {
        match self {
            Dt::Bool | Dt::I8 | Dt::U8 => 0,
            Dt::I16 | Dt::U16 | Dt::F32 => 1,
            _ => 2,
        }
    }

    /// The type of floating functions (`sqrt`, `exp`, ...) of this type, as numpy's.
    fn float_of(self) -> Result<Dt, String> {
        match self {
            Dt::F32 | Dt::F64 => Ok(self),
            Dt::I16 | Dt::U16 => Ok(Dt::F32),
            Dt::I32 | Dt::U32 | Dt::I64 | Dt::U64 => Ok(Dt::F64),
            Dt::Bool | Dt::I8 | Dt::U8 => Err(format!(
                "numpy computes this function of {} in float16, which evaluate does not: cast \
                 the operand to float32 first",
                self.name()
            )),
        }
    }
}

/// The type of a node: an array type, or a Python scalar (weak, NEP 50).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Ty {
    Array(Dt),
    WeakInt,
    WeakFloat,
}

/// An operator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Mod,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Neg,
    Not,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Pow => "**",
            Op::Mod => "%",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::And => "&",
            Op::Or => "|",
            Op::Neg => "-",
            Op::Not => "~",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne)
    }

    /// The comparison with its sides swapped: `a < b` is `b > a`.
    fn mirrored(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            op => op,
        }
    }
}

/// A function of the language.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Func {
    Where,
    Abs,
    Sqrt,
    Exp,
    Log,
    Log1p,
    Expm1,
    Log10,
    Sin,
    Cos,
    Tan,
    Arcsin,
    Arccos,
    Arctan,
    Sinh,
    Cosh,
    Tanh,
    Floor,
    Ceil,
    Arctan2,
    Minimum,
    Maximum,
}

impl Func {
    fn by_name(name: &str) -> Option<Func> {
        Some(match name {
            "where" => Func::Where,
            "abs" | "absolute" => Func::Abs,
            "sqrt" => Func::Sqrt,
            "exp" => Func::Exp,
            "log" => Func::Log,
            "log1p" => Func::Log1p,
            "expm1" => Func::Expm1,
            "log10" => Func::Log10,
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "arcsin" => Func::Arcsin,
            "arccos" => Func::Arccos,
            "arctan" => Func::Arctan,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "tanh" => Func::Tanh,
            "floor" => Func::Floor,
            "ceil" => Func::Ceil,
            "arctan2" => Func::Arctan2,
            "minimum" => Func::Minimum,
            "maximum" => Func::Maximum,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Func::Where => 3,
            Func::Arctan2 | Func::Minimum | Func::Maximum => 2,
            _ => 1,
        }
    }
}

/// A full or per-axis reduction, the outermost call of an expression.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reduce {
    Sum,
    Mean,
    Min,
    Max,
}

/// A parsed expression node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Operand `k` of the names, in order of first use.
    Var(usize),
    Int(i128),
    Float(f64),
    Bool(bool),
    Unary(Op, Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

/// A parsed expression: the elementwise body, its reduction (if any) and the operand
/// names in order of first use.
#[derive(Debug)]
pub struct Expr {
    pub body: Node,
    pub reduce: Option<(Reduce, Option<i64>)>,
    pub names: Vec<String>,
}

/// A bad expression: what was wrong and where (a byte offset).
#[derive(Debug)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Name(String),
    Sym(&'static str),
}

const SYMBOLS: [&str; 19] = [
    "**", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "<", ">", "&", "|", "~", "(", ")", ",",
    "=",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push((Tok::Num(src[start..i].replace('_', "")), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_string()), start));
            continue;
        }
        match SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            Some(s) => {
                out.push((Tok::Sym(s), start));
                i += s.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SyntaxError(format!(
                    "unexpected character {ch:?} at position {i} of {src:?}"
                )));
            }
        }
    }
    Ok(out)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<(Tok, usize)>,
    at: usize,
    names: Vec<String>,
    /// How deep the parse's own recursion is.
    depth: usize,
    /// The height of the node parsed last (a leaf is 0).
    height: usize,
}

/// The deepest tree an expression may make: the tree is walked by recursion (typing,
/// folding, compiling, dropping), and a deeper one would overflow the caller's stack (a
/// thread's is 2 MiB or more; each level takes well under 1 KiB).
const MAX_DEPTH: usize = 1000;

/// Python's binary precedence, loosest first: `|`, `&`, comparisons are looser still (as in
/// Python, `a > 0 & b > 0` is `a > (0 & b) > 0`; write `(a > 0) & (b > 0)`).
fn binary(sym: &str) -> Option<(u8, Op)> {
    Some(match sym {
        "<" => (1, Op::Lt),
        "<=" => (1, Op::Le),
        ">" => (1, Op::Gt),
        ">=" => (1, Op::Ge),
        "==" => (1, Op::Eq),
        "!=" => (1, Op::Ne),
        "|" => (2, Op::Or),
        "&" => (3, Op::And),
        "+" => (4, Op::Add),
        "-" => (4, Op::Sub),
        "*" => (5, Op::Mul),
        "/" => (5, Op::Div),
        "%" => (5, Op::Mod),
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.src.len(), |(_, p)| *p)
    }

    fn error(&self, what: &str) -> SyntaxError {
        SyntaxError(format!(
            "{what} at position {} of {:?}",
            self.pos(),
            self.src
        ))
    }

    fn eat(&mut self, sym: &str) -> bool {
        if self.peek()
            == Some(&Tok::Sym(match SYMBOLS.iter().find(|s| **s == sym) {
                Some(s) => s,
                None => return false,
            }))
        {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// One level deeper (to be undone by `leave`): an error past [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        self.check(self.depth)
    }

    /// An error when `levels` is past [`MAX_DEPTH`].
    fn check(&self, levels: usize) -> Result<(), SyntaxError> {
        match levels > MAX_DEPTH {
            true => Err(SyntaxError(format!(
                "the expression nests deeper than {MAX_DEPTH} levels (operators in a chain \
                 count one each): split it into several evaluate calls"
            ))),
            false => Ok(()),
        }
    }

    /// The node made of children of heights `kids`: its height is recorded and checked.
    fn made(&mut self, node: Node, kids: &[usize]) -> Result<Node, SyntaxError> {
        self.height = kids.iter().max().map_or(0, |h| h + 1);
        self.check(self.height)?;
        Ok(node)
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expect(&mut self, sym: &str) -> Result<(), SyntaxError> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {sym:?}")))
        }
    }

    /// A binary expression whose operators bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Result<Node, SyntaxError> {
        let mut left = self.unary()?;
        let mut height = self.height;
        let mut compared = false;
        while let Some(Tok::Sym(s)) = self.peek() {
            let Some((prec, op)) = binary(s) else { break };
            if prec < min {
                break;
            }
            if op.is_comparison() {
                if compared {
                    return Err(
                        self.error("a chained comparison (a < b < c); write (a < b) & (b < c)")
                    );
                }
                compared = true;
            }
            self.at += 1;
            let right = self.expr(prec + 1)?;
            left = self.made(
                Node::Binary(op, Box::new(left), Box::new(right)),
                &[height, self.height],
            )?;
            height = self.height;
        }
        self.height = height;
        Ok(left)
    }

    /// Unary `-`, `+`, `~`, binding looser than `**` on their right.
    fn unary(&mut self) -> Result<Node, SyntaxError> {
        self.enter()?;
        let r = self.unary_();
        self.leave();
        r
    }

    fn unary_(&mut self) -> Result<Node, SyntaxError> {
        for (sym, op) in [("-", Op::Neg), ("~", Op::Not)] {
            if self.eat(sym) {
                let a = self.unary()?;
                let h = self.height;
                return self.made(Node::Unary(op, Box::new(a)), &[h]);
            }
        }
        if self.eat("+") {
            return self.unary();
        }
        self.power()
    }

    /// `x ** y`, right-associative; its right side may be unary (`a ** -b`).
    fn power(&mut self) -> Result<Node, SyntaxError> {
        let base = self.atom()?;
        let h = self.height;
        if self.eat("**") {
            let exp = self.unary()?;
            let kids = [h, self.height];
            return self.made(Node::Binary(Op::Pow, Box::new(base), Box::new(exp)), &kids);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, SyntaxError> {
        let Some((tok, _)) = self.toks.get(self.at).cloned() else {
            return Err(self.error("the expression ends too soon"));
        };
        self.at += 1;
        match tok {
            Tok::Num(text) => {
                self.height = 0;
                number(&text).ok_or_else(|| {
                    self.at -= 1;
                    self.error(&format!("{text:?} is not a number"))
                })
            }
            Tok::Sym("(") => {
                // (Its height is the inner expression's; the recursion is counted in
                // `unary`.)
                let e = self.expr(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Name(name) => {
                if self.eat("(") {
                    return self.call(&name);
                }
                self.height = 0;
                Ok(match name.as_str() {
                    "True" => Node::Bool(true),
                    "False" => Node::Bool(false),
                    "inf" => Node::Float(f64::INFINITY),
                    "nan" => Node::Float(f64::NAN),
                    "pi" => Node::Float(std::f64::consts::PI),
                    _ => {
                        let k = match self.names.iter().position(|n| *n == name) {
                            Some(k) => k,
                            None => {
                                self.names.push(name);
                                self.names.len() - 1
                            }
                        };
                        Node::Var(k)
                    }
                })
            }
            Tok::Sym(s) => {
                self.at -= 1;
                Err(self.error(&format!("unexpected {s:?}")))
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Node, SyntaxError> {
        let Some(f) = Func::by_name(name) else {
            self.at -= 2;
            let what = if reduction(name).is_some() {
                format!("{name}() is a reduction: it must be the whole expression")
            } else {
                format!("unknown function {name:?}")
            };
            return Err(self.error(&what));
        };
        let mut args = Vec::new();
        let mut heights = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr(0)?);
                heights.push(self.height);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        if args.len() != f.arity() {
            return Err(SyntaxError(format!(
                "{name}() takes {} argument(s), got {} in {:?}",
                f.arity(),
                args.len(),
                self.src
            )));
        }
        self.made(Node::Call(f, args), &heights)
    }
}

fn reduction(name: &str) -> Option<Reduce> {
    Some(match name {
        "sum" => Reduce::Sum,
        "mean" => Reduce::Mean,
        "min" => Reduce::Min,
        "max" => Reduce::Max,
        _ => return None,
    })
}

/// A Python numeric literal.
fn number(text: &str) -> Option<Node> {
    if text.contains(['.', 'e', 'E']) {
        text.parse().ok().map(Node::Float)
    } else {
        text.parse().ok().map(Node::Int)
    }
}

/// Parses `src`: an elementwise expression, or a reduction of one (`sum(x)`,
/// `mean(x, axis=0)`) as the whole expression.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        src,
        toks: lex(src)?,
        at: 0,
        names: Vec::new(),
        depth: 0,
        height: 0,
    };
    let mut reduce = None;
    let outer = match (p.toks.first(), p.toks.get(1)) {
        (Some((Tok::Name(n), _)), Some((Tok::Sym("("), _))) => reduction(n),
        _ => None,
    };
    let body = match outer {
        Some(r) => {
            p.at = 2;
            let body = p.expr(0)?;
            let mut axis = None;
            if p.eat(",") {
                match p.peek() {
                    Some(Tok::Name(n)) if n == "axis" => p.at += 1,
                    _ => return Err(p.error("expected axis=N")),
                }
                p.expect("=")?;
                let neg = p.eat("-");
                match p.toks.get(p.at).cloned() {
                    Some((Tok::Num(t), _)) if t.bytes().all(|c| c.is_ascii_digit()) => {
                        p.at += 1;
                        let v: i64 = t.parse().map_err(|_| p.error("axis too large"))?;
                        axis = Some(if neg { -v } else { v });
                    }
                    _ => return Err(p.error("expected an integer axis")),
                }
            }
            p.expect(")")?;
            reduce = Some((r, axis));
            body
        }
        None => p.expr(0)?,
    };
    if p.at < p.toks.len() {
        return Err(p.error("unexpected text after the expression"));
    }
    Ok(Expr {
        body: fold(body).map_err(SyntaxError)?,
        reduce,
        names: p.names,
    })
}

/// Folds literal-only subexpressions with Python's arithmetic (they stay weak scalars).
fn fold(n: Node) -> Result<Node, String> {
    Ok(match n {
        Node::Unary(op, a) => match (op, fold(*a)?) {
            (Op::Neg, Node::Int(v)) => {
                Node::Int(v.checked_neg().ok_or("integer literal overflow")?)
            }
            (Op::Neg, Node::Float(v)) => Node::Float(-v),
            (Op::Not, Node::Int(v)) => Node::Int(!v),
            (op, a) => Node::Unary(op, Box::new(a)),
        },
        Node::Binary(op, a, b) => {
            let (a, b) = (fold(*a)?, fold(*b)?);
            let float = |x: &Node| match x {
                Node::Int(v) => Some(*v as f64),
                Node::Float(v) => Some(*v),
                _ => None,
            };
            match (&a, &b) {
                (Node::Int(x), Node::Int(y)) => match op {
                    Op::Add => Node::Int(x.checked_add(*y).ok_or("integer literal overflow")?),
                    Op::Sub => Node::Int(x.checked_sub(*y).ok_or("integer literal overflow")?),
                    Op::Mul => Node::Int(x.checked_mul(*y).ok_or("integer literal overflow")?),
                    Op::Div if *y == 0 => return Err("division by zero in the literals".into()),
                    Op::Div => Node::Float(*x as f64 / *y as f64),
                    Op::Mod if *y == 0 => return Err("modulo by zero in the literals".into()),
                    Op::Mod => Node::Int({
                        // Python's modulo: the sign of the divisor (no overflow: |r| < |y|).
                        let r = x.checked_rem_euclid(*y).ok_or("integer literal overflow")?;
                        if *y < 0 && r != 0 { r + *y } else { r }
                    }),
                    Op::Pow if *y >= 0 => Node::Int(
                        u32::try_from(*y)
                            .ok()
                            .and_then(|e| x.checked_pow(e))
                            .ok_or("integer literal overflow")?,
                    ),
                    Op::Pow => Node::Float((*x as f64).powf(*y as f64)),
                    Op::And => Node::Int(x & y),
                    Op::Or => Node::Int(x | y),
                    _ if op.is_comparison() => Node::Bool(compare(op, x, y)),
                    _ => Node::Binary(op, Box::new(a), Box::new(b)),
                },
                (Node::Bool(x), Node::Bool(y)) if matches!(op, Op::And | Op::Or) => {
                    Node::Bool(if op == Op::And { x & y } else { x | y })
                }
                _ if op.is_comparison() && float(&a).is_some() && float(&b).is_some() => {
                    let (x, y) = (float(&a).unwrap_or(0.0), float(&b).unwrap_or(0.0));
                    Node::Bool(compare(op, &x, &y))
                }
                _ if op == Op::Mod && float(&a).is_some() && float(&b).is_some() => {
                    let (x, y) = (float(&a).unwrap_or(0.0), float(&b).unwrap_or(0.0));
                    if y == 0.0 {
                        return Err("modulo by zero in the literals".into());
                    }
                    // Python's float modulo: the sign of the divisor.
                    let r = x % y;
                    Node::Float(if r != 0.0 && (r < 0.0) != (y < 0.0) {
                        r + y
                    } else {
                        r
                    })
                }
                _ if matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow)
                    && float(&a).is_some()
                    && float(&b).is_some() =>
                {
                    let (x, y) = (float(&a).unwrap_or(0.0), float(&b).unwrap_or(0.0));
                    Node::Float(match op {
                        Op::Add => x + y,
                        Op::Sub => x - y,
                        Op::Mul => x * y,
                        Op::Div if y == 0.0 => {
                            return Err("division by zero in the literals".into());
                        }
                        Op::Div => x / y,
                        _ => x.powf(y),
                    })
                }
                _ => Node::Binary(op, Box::new(a), Box::new(b)),
            }
        }
        Node::Call(f, args) => Node::Call(f, args.into_iter().map(fold).collect::<Result<_, _>>()?),
        n => n,
    })
}

/// A comparison of two literals, as Python makes it.
fn compare<T: PartialOrd>(op: Op, x: &T, y: &T) -> bool {
    match op {
        Op::Lt => x < y,
        Op::Le => x <= y,
        Op::Gt => x > y,
        Op::Ge => x >= y,
        Op::Eq => x == y,
        _ => x != y,
    }
}

/// The type of a binary arithmetic result (before the operator's own rules).
fn combine(a: Ty, b: Ty, what: &str) -> Result<(Dt, Option<i128>), String> {
    // The weak integer's value, checked against the array type it takes.
    match (a, b) {
        (Ty::Array(x), Ty::Array(y)) => Ok((Dt::promote(x, y), None)),
        (Ty::Array(x), w) | (w, Ty::Array(x)) => Ok((weak_with(x, w), None)),
        _ => Err(format!("{what}: no array operand")),
    }
}

/// The array type a weak scalar takes beside an array of type `x`.
fn weak_with(x: Dt, w: Ty) -> Dt {
    match w {
        Ty::WeakInt if x == Dt::Bool => Dt::I64,
        Ty::WeakFloat if !x.is_float() => Dt::F64,
        _ => x,
    }
}

/// A typed node: its computed type and children.
#[derive(Clone, Debug)]
pub struct Typed {
    pub ty: Ty,
    /// The type it is computed in (the operands are cast to it first); the result type of
    /// a comparison is `bool`, computed in `compute`.
    pub compute: Dt,
    pub node: Node,
    pub kids: Vec<Typed>,
}

/// The types of every node, given the operands' types; a Python `TypeError` message when
/// numpy would refuse (or compute in a type the evaluator does not: float16).
pub fn type_of(n: &Node, vars: &[Dt]) -> Result<Typed, String> {
    let leaf = |ty, compute| Typed {
        ty,
        compute,
        node: n.clone(),
        kids: Vec::new(),
    };
    Ok(match n {
        Node::Var(k) => leaf(Ty::Array(vars[*k]), vars[*k]),
        Node::Int(_) => leaf(Ty::WeakInt, Dt::I64),
        Node::Float(_) => leaf(Ty::WeakFloat, Dt::F64),
        Node::Bool(_) => leaf(Ty::Array(Dt::Bool), Dt::Bool),
        Node::Unary(op, a) => {
            let a = type_of(a, vars)?;
            let Ty::Array(x) = a.ty else {
                return Err("an operator of literals only".into());
            };
            match (op, x) {
                (Op::Neg, Dt::Bool) => {
                    return Err("The numpy boolean negative, the `-` operator, is not \
                                supported, use the `~` operator or the logical_not function \
                                instead."
                        .into());
                }
                (Op::Not, x) if x.is_float() => {
                    return Err(format!(
                        "ufunc 'invert' not supported for the input type {}",
                        x.name()
                    ));
                }
                _ => {}
            }
            Typed {
                ty: Ty::Array(x),
                compute: x,
                node: n.clone(),
                kids: vec![a],
            }
        }
        Node::Binary(op, a, b) => {
            let (a, b) = (type_of(a, vars)?, type_of(b, vars)?);
            if op.is_comparison()
                && let Some(t) = exact_comparison(*op, &a, &b)
            {
                return Ok(t);
            }
            let (mut c, _) = combine(a.ty, b.ty, op.symbol())?;
            if *op == Op::Div && !c.is_float() {
                // True division of integers is float64's, whatever the Python integer.
                c = Dt::F64;
            }
            if op.is_comparison()
                && (check_weak_range(&a, c).is_err() || check_weak_range(&b, c).is_err())
            {
                // (Integer arrays are `exact_comparison`'s: what is left is a bool array
                // beside a Python integer beyond int64, compared by value in float64.)
                c = Dt::F64;
            }
            check_weak_range(&a, c)?;
            check_weak_range(&b, c)?;
            let ty = match op {
                _ if op.is_comparison() => Dt::Bool,
                Op::Sub if c == Dt::Bool => {
                    return Err(
                        "numpy boolean subtract, the `-` operator, is not supported, \
                                use the bitwise_xor, the `^` operator, or the logical_xor \
                                function instead."
                            .into(),
                    );
                }
                Op::And | Op::Or if c.is_float() => {
                    return Err(format!(
                        "ufunc 'bitwise_{}' not supported for the input type {}",
                        if *op == Op::And { "and" } else { "or" },
                        c.name()
                    ));
                }
                Op::Pow | Op::Mod if c == Dt::Bool => {
                    c = Dt::I8;
                    c
                }
                _ => c,
            };
            if *op == Op::Pow && c.is_int() && matches!(b.node, Node::Int(v) if v < 0) {
                return Err("Integers to negative integer powers are not allowed.".into());
            }
            Typed {
                ty: Ty::Array(ty),
                compute: c,
                node: n.clone(),
                kids: vec![a, b],
            }
        }
        Node::Call(f, args) => {
            let kids = args
                .iter()
                .map(|a| type_of(a, vars))
                .collect::<Result<Vec<_>, _>>()?;
            let (ty, compute) = match f {
                Func::Where => {
                    let (c, _) = match (kids[1].ty, kids[2].ty) {
                        (Ty::Array(_), _) | (_, Ty::Array(_)) => {
                            combine(kids[1].ty, kids[2].ty, "where")?
                        }
                        (Ty::WeakFloat, _) | (_, Ty::WeakFloat) => (Dt::F64, None),
                        _ => (Dt::I64, None),
                    };
                    check_weak_range(&kids[1], c)?;
                    check_weak_range(&kids[2], c)?;
                    (c, c)
                }
                Func::Minimum | Func::Maximum => {
                    let (c, _) = combine(kids[0].ty, kids[1].ty, "minimum")?;
                    check_weak_range(&kids[0], c)?;
                    check_weak_range(&kids[1], c)?;
                    (c, c)
                }
                Func::Arctan2 => {
                    // numpy's loop: the first float type both sides cast to safely (int8 and
                    // uint16: float32), not the float type of their promotion (int32's).
                    let (c, _) = combine(kids[0].ty, kids[1].ty, "arctan2")?;
                    let side = |t: Ty| match t {
                        Ty::Array(x) => x,
                        _ => c,
                    };
                    let (x, y) = (side(kids[0].ty), side(kids[1].ty));
                    let c = match x.float_rank().max(y.float_rank()) {
                        0 => x.float_of()?, // float16: refused by name
                        1 => Dt::F32,
                        _ => Dt::F64,
                    };
                    (c, c)
                }
                Func::Abs | Func::Floor | Func::Ceil => match kids[0].ty {
                    Ty::Array(x) => (x, x),
                    _ => return Err("a function of a literal only".into()),
                },
                _ => match kids[0].ty {
                    Ty::Array(x) => {
                        let c = x.float_of()?;
                        (c, c)
                    }
                    _ => return Err("a function of a literal only".into()),
                },
            };
            Typed {
                ty: Ty::Array(ty),
                compute,
                node: n.clone(),
                kids,
            }
        }
    })
}

/// A comparison numpy makes by integer value where the promoted type would round: a
/// Python integer out of an integer array type's range (every element gets one answer),
/// and a signed array beside a `uint64` one (promoted to float64, which would round both
/// past 2**53). `None` for every other comparison.
fn exact_comparison(op: Op, a: &Typed, b: &Typed) -> Option<Typed> {
    let node = |compute, op, x: Typed, y: Typed| Typed {
        ty: Ty::Array(Dt::Bool),
        compute,
        node: Node::Binary(op, Box::new(x.node.clone()), Box::new(y.node.clone())),
        kids: vec![x, y],
    };
    for (x, w, op) in [(a, b, op), (b, a, op.mirrored())] {
        // `x op w`, `w` a Python integer beyond `x`'s type.
        if let (Ty::Array(dt), Node::Int(v)) = (x.ty, &w.node)
            && dt.is_int()
        {
            let (lo, hi) = dt.range();
            if *v < lo || *v > hi {
                let above = *v > hi;
                let truth = match op {
                    Op::Lt | Op::Le => above,
                    Op::Gt | Op::Ge => !above,
                    Op::Eq => false,
                    _ => true,
                };
                // `(x & 0) == 0` holds for every integer, `!=` for none (`x` computed once:
                // a copy of it would double the work at each comparison nested inside).
                let zero = |compute| Typed {
                    ty: Ty::WeakInt,
                    compute,
                    node: Node::Int(0),
                    kids: Vec::new(),
                };
                let masked = Typed {
                    ty: Ty::Array(dt),
                    compute: dt,
                    node: Node::Binary(Op::And, Box::new(x.node.clone()), Box::new(Node::Int(0))),
                    kids: vec![x.clone(), zero(dt)],
                };
                let always = if truth { Op::Eq } else { Op::Ne };
                return Some(node(dt, always, masked, zero(dt)));
            }
        }
    }
    let (s, u, op) = match (a.ty, b.ty) {
        (Ty::Array(x), Ty::Array(Dt::U64)) if x.is_signed() => (a, b, op),
        (Ty::Array(Dt::U64), Ty::Array(y)) if y.is_signed() => (b, a, op.mirrored()),
        _ => return None,
    };
    // The signed side is computed twice below: where it is more than a few operations
    // (a copy of it would double the work of every such comparison nested inside), it is
    // compared in float64 as before, exact to 2**53.
    if size(s) > 16 {
        return None;
    }
    // `s op u`: by the sign of `s`, then as uint64 (where `s` is not negative).
    let zero = Typed {
        ty: Ty::WeakInt,
        compute: Dt::I64,
        node: Node::Int(0),
        kids: Vec::new(),
    };
    let (join, sign) = match op {
        Op::Lt | Op::Le | Op::Ne => (Op::Or, Op::Lt),
        _ => (Op::And, Op::Ge),
    };
    let sign = node(Dt::I64, sign, s.clone(), zero);
    let unsigned = node(Dt::U64, op, s.clone(), u.clone());
    Some(node(Dt::Bool, join, sign, unsigned))
}

/// The nodes of a typed tree, counting up to 17 at most.
fn size(t: &Typed) -> usize {
    let mut n = 0;
    let mut stack = vec![t];
    while let Some(t) = stack.pop() {
        n += 1;
        if n > 16 {
            break;
        }
        stack.extend(&t.kids);
    }
    n
}

/// numpy refuses a Python integer out of the range of the integer type it takes.
fn check_weak_range(t: &Typed, to: Dt) -> Result<(), String> {
    if let Node::Int(v) = t.node
        && to.is_int()
    {
        let (lo, hi) = to.range();
        if v < lo || v > hi {
            return Err(format!(
                "Python integer {v} out of bounds for {}",
                to.name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_pythons() {
        let e = parse("2*a + 3*b ** 2 - -c").unwrap();
        assert_eq!(e.names, ["a", "b", "c"]);
        let e = parse("-a ** 2").unwrap();
        assert!(matches!(e.body, Node::Unary(Op::Neg, _)));
        let e = parse("(a > 0) & (b < 1) | c").unwrap();
        assert!(matches!(e.body, Node::Binary(Op::Or, _, _)));
        assert!(parse("a < b < c").is_err());
        assert!(parse("a +").is_err());
        assert!(parse("foo(a)").is_err());
        assert!(parse("sqrt(a, b)").is_err());
        assert!(parse("a $ b").is_err());
    }

    #[test]
    fn literals_fold_as_python() {
        assert_eq!(
            parse("2 * 3 + a").unwrap().body,
            parse("6 + a").unwrap().body
        );
        assert_eq!(
            parse("1 / 2 * a").unwrap().body,
            parse("0.5 * a").unwrap().body
        );
        assert_eq!(
            parse("-7 % 3 + a").unwrap().body,
            parse("2 + a").unwrap().body
        );
    }

    #[test]
    fn reductions_are_outermost() {
        let e = parse("mean(a * b, axis=-1)").unwrap();
        assert_eq!(e.reduce, Some((Reduce::Mean, Some(-1))));
        assert!(parse("sum(a) + 1").is_err());
        assert!(parse("1 + sum(a)").is_err());
    }

    #[test]
    fn promotion_is_numpys() {
        use Dt::*;
        assert_eq!(Dt::promote(I8, U8), I16);
        assert_eq!(Dt::promote(I64, U64), F64);
        assert_eq!(Dt::promote(I16, F32), F32);
        assert_eq!(Dt::promote(I32, F32), F64);
        assert_eq!(Dt::promote(Bool, U16), U16);
        let t = |s: &str, v: &[Dt]| type_of(&parse(s).unwrap().body, v).map(|t| t.ty);
        assert_eq!(t("2*a", &[F32]), Ok(Ty::Array(F32)));
        assert_eq!(t("a / 2", &[I32]), Ok(Ty::Array(F64)));
        assert_eq!(t("a + 1.5", &[I8]), Ok(Ty::Array(F64)));
        assert_eq!(t("a + 1", &[Bool]), Ok(Ty::Array(I64)));
        assert_eq!(t("a > 0", &[F32]), Ok(Ty::Array(Bool)));
        assert!(t("a + 300", &[U8]).is_err());
        assert!(t("-a", &[Bool]).is_err());
        assert!(t("sqrt(a)", &[U8]).is_err());
        assert_eq!(t("where(a > 0, a, 0)", &[F32]), Ok(Ty::Array(F32)));
    }
}
