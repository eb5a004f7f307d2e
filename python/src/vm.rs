//! The evaluator: a typed expression compiled into instructions over registers of
//! [`BLOCK`] elements, run block by block over each chunk the engine hands it (as numexpr
//! does, so that the temporaries stay in the CPU's cache). Every operation computes in the
//! type numpy computes it in and rounds there, so `+ - * /`, `sqrt` and comparisons give
//! numpy's bits.

use crate::expr::{Dt, Func, Node, Op, Typed};

/// Elements per block.
pub const BLOCK: usize = 4096;

/// numpy's bool: one byte, any nonzero byte is true (and compares as true: a byte written
/// by another tool as 0xFF equals numpy's 1).
#[derive(Clone, Copy, Default, Debug)]
#[repr(transparent)]
pub struct B8(pub u8);

impl PartialEq for B8 {
    fn eq(&self, o: &Self) -> bool {
        self.get() == o.get()
    }
}

impl PartialOrd for B8 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        self.get().partial_cmp(&o.get())
    }
}

impl B8 {
    fn get(self) -> bool {
        self.0 != 0
    }
    fn of(b: bool) -> B8 {
        B8(u8::from(b))
    }
}

/// A compute element type.
pub trait E: Arith + Copy + Default + PartialOrd + Send + Sync + 'static {
    const DT: Dt;
    fn to_i128(self) -> i128;
    fn to_f64(self) -> f64;
    fn from_i128(v: i128) -> Self;
    fn from_f64(v: f64) -> Self;
    fn col<'a>(c: &Col<'a>) -> Option<&'a [Self]>;
    fn buf(b: &Buf) -> &[Self];
    fn buf_mut(b: &mut Buf) -> &mut [Self];
    fn col_mut<'b>(c: &'b mut ColMut<'_>) -> Option<&'b mut [Self]>;
    fn vec_mut(b: &mut Buf) -> Option<&mut Vec<Self>>;
    fn new_buf(len: usize) -> Buf;
    fn wrap(s: &[Self]) -> Col<'_>;
}

macro_rules! elements {
    ($($V:ident $t:ty: $to_i:expr, $to_f:expr, $from_i:expr, $from_f:expr;)*) => {
        /// Registers: one block of one type.
        #[derive(Debug)]
        pub enum Buf { $($V(Vec<$t>),)* }

        /// A column of values of one type (an input's block, or a register's).
        #[derive(Clone, Copy, Debug)]
        pub enum Col<'a> { $($V(&'a [$t]),)* }

        /// A contiguous output piece of one type.
        #[derive(Debug)]
        pub enum ColMut<'a> { $($V(&'a mut [$t]),)* }

        impl Col<'_> {
            pub fn len(&self) -> usize {
                match self { $(Col::$V(s) => s.len(),)* }
            }
            pub fn slice(&self, lo: usize, hi: usize) -> Col<'_> {
                match self { $(Col::$V(s) => Col::$V(&s[lo..hi]),)* }
            }
        }

        $(impl E for $t {
            const DT: Dt = Dt::$V;
            fn to_i128(self) -> i128 { let f: fn($t) -> i128 = $to_i; f(self) }
            fn to_f64(self) -> f64 { let f: fn($t) -> f64 = $to_f; f(self) }
            fn from_i128(v: i128) -> Self { let f: fn(i128) -> $t = $from_i; f(v) }
            fn from_f64(v: f64) -> Self { let f: fn(f64) -> $t = $from_f; f(v) }
            fn col<'a>(c: &Col<'a>) -> Option<&'a [Self]> {
                match c { Col::$V(s) => Some(*s), _ => None }
            }
            fn buf(b: &Buf) -> &[Self] {
                match b { Buf::$V(v) => v, _ => &[] }
            }
            fn buf_mut(b: &mut Buf) -> &mut [Self] {
                match b { Buf::$V(v) => v, _ => &mut [] }
            }
            fn col_mut<'b>(c: &'b mut ColMut<'_>) -> Option<&'b mut [Self]> {
                match c { ColMut::$V(s) => Some(s), _ => None }
            }
            fn vec_mut(b: &mut Buf) -> Option<&mut Vec<Self>> {
                match b { Buf::$V(v) => Some(v), _ => None }
            }
            fn new_buf(len: usize) -> Buf { Buf::$V(vec![<$t>::default(); len]) }
            fn wrap(s: &[Self]) -> Col<'_> { Col::$V(s) }
        })*
    };
}

elements! {
    Bool B8: |x| i128::from(x.0 != 0), |x| f64::from(u8::from(x.0 != 0)), |v| B8::of(v != 0), |v| B8::of(v != 0.0);
    I8 i8: i128::from, f64::from, |v| v as i8, |v| v as i8;
    I16 i16: i128::from, f64::from, |v| v as i16, |v| v as i16;
    I32 i32: i128::from, f64::from, |v| v as i32, |v| v as i32;
    I64 i64: i128::from, |x| x as f64, |v| v as i64, |v| v as i64;
    U8 u8: i128::from, f64::from, |v| v as u8, |v| v as u8;
    U16 u16: i128::from, f64::from, |v| v as u16, |v| v as u16;
    U32 u32: i128::from, f64::from, |v| v as u32, |v| v as u32;
    U64 u64: i128::from, |x| x as f64, |v| v as u64, |v| v as u64;
    F32 f32: |x| x as i128, f64::from, |v| v as f32, |v| v as f32;
    F64 f64: |x| x as i128, |x| x, |v| v as f64, |v| v;
}

/// Runs `$body` with `$T` the Rust type of `$dt`.
macro_rules! dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            Dt::Bool => {
                type $T = $crate::vm::B8;
                $body
            }
            Dt::I8 => {
                type $T = i8;
                $body
            }
            Dt::I16 => {
                type $T = i16;
                $body
            }
            Dt::I32 => {
                type $T = i32;
                $body
            }
            Dt::I64 => {
                type $T = i64;
                $body
            }
            Dt::U8 => {
                type $T = u8;
                $body
            }
            Dt::U16 => {
                type $T = u16;
                $body
            }
            Dt::U32 => {
                type $T = u32;
                $body
            }
            Dt::U64 => {
                type $T = u64;
                $body
            }
            Dt::F32 => {
                type $T = f32;
                $body
            }
            Dt::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Converts as numpy's `astype` does (within the casts promotion makes: up, to bool, and
/// the same-kind cast to an output): integers to floats with one rounding.
fn cast<S: E, D: E>(s: S) -> D {
    if S::DT.is_float() {
        D::from_f64(s.to_f64())
    } else {
        D::from_i128(s.to_i128())
    }
}

/// Where an instruction reads from.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    Reg(usize),
    In(usize),
}

#[derive(Clone, Copy, Debug)]
enum Ins {
    Cast {
        dst: usize,
        a: Src,
        from: Dt,
        to: Dt,
    },
    Un {
        op: Op,
        dst: usize,
        a: Src,
        dt: Dt,
    },
    Bin {
        op: Op,
        dst: usize,
        a: Src,
        b: Src,
        dt: Dt,
    },
    Where {
        dst: usize,
        c: Src,
        a: Src,
        b: Src,
        dt: Dt,
    },
    F1 {
        f: Func,
        dst: usize,
        a: Src,
        dt: Dt,
    },
    F2 {
        f: Func,
        dst: usize,
        a: Src,
        b: Src,
        dt: Dt,
    },
}

/// A compiled expression.
pub struct Program {
    /// Elements per block (the registers' length).
    pub block: usize,
    ins: Vec<Ins>,
    regs: Vec<Buf>,
    vars: Vec<Dt>,
    result: Src,
    /// The type of the result (the output's type after the final cast).
    pub out: Dt,
    /// A runtime error (an integer to a negative power), reported after the block.
    pub error: Option<String>,
}

impl Program {
    /// Compiles `t` (typed against `vars`), its result cast to `out`, for blocks of up to
    /// `block` elements (at most [`BLOCK`]: a small array needs no bigger registers).
    pub fn compile(t: &Typed, vars: &[Dt], out: Dt, block: usize) -> Program {
        let mut p = Program {
            block: block.clamp(1, BLOCK),
            ins: Vec::new(),
            regs: Vec::new(),
            vars: vars.to_vec(),
            result: Src::Reg(0),
            out,
            error: None,
        };
        p.result = p.emit(t, out);
        p
    }

    fn reg(&mut self, dt: Dt) -> usize {
        self.regs.push(dispatch!(dt, T => T::new_buf(self.block)));
        self.regs.len() - 1
    }

    /// The value of `t` as type `want`.
    fn emit(&mut self, t: &Typed, want: Dt) -> Src {
        let (src, dt) = match &t.node {
            Node::Var(k) => (Src::In(*k), self.vars[*k]),
            Node::Int(v) => {
                let r = self.reg(want);
                dispatch!(want, T => T::buf_mut(&mut self.regs[r]).fill(T::from_i128(*v)));
                return Src::Reg(r);
            }
            Node::Float(v) => {
                let r = self.reg(want);
                dispatch!(want, T => T::buf_mut(&mut self.regs[r]).fill(T::from_f64(*v)));
                return Src::Reg(r);
            }
            Node::Bool(v) => {
                let r = self.reg(want);
                dispatch!(want, T => T::buf_mut(&mut self.regs[r]).fill(T::from_i128(i128::from(*v))));
                return Src::Reg(r);
            }
            Node::Unary(op, _) => {
                let a = self.emit(&t.kids[0], t.compute);
                let dst = self.reg(t.compute);
                self.ins.push(Ins::Un {
                    op: *op,
                    dst,
                    a,
                    dt: t.compute,
                });
                (Src::Reg(dst), t.compute)
            }
            Node::Binary(op, _, _) => {
                let a = self.emit(&t.kids[0], t.compute);
                let b = self.emit(&t.kids[1], t.compute);
                let rdt = if op.is_comparison() {
                    Dt::Bool
                } else {
                    t.compute
                };
                let dst = self.reg(rdt);
                self.ins.push(Ins::Bin {
                    op: *op,
                    dst,
                    a,
                    b,
                    dt: t.compute,
                });
                (Src::Reg(dst), rdt)
            }
            Node::Call(Func::Where, _) => {
                let c = self.emit(&t.kids[0], Dt::Bool);
                let a = self.emit(&t.kids[1], t.compute);
                let b = self.emit(&t.kids[2], t.compute);
                let dst = self.reg(t.compute);
                self.ins.push(Ins::Where {
                    dst,
                    c,
                    a,
                    b,
                    dt: t.compute,
                });
                (Src::Reg(dst), t.compute)
            }
            Node::Call(f, args) if args.len() == 2 => {
                let a = self.emit(&t.kids[0], t.compute);
                let b = self.emit(&t.kids[1], t.compute);
                let dst = self.reg(t.compute);
                self.ins.push(Ins::F2 {
                    f: *f,
                    dst,
                    a,
                    b,
                    dt: t.compute,
                });
                (Src::Reg(dst), t.compute)
            }
            Node::Call(f, _) => {
                let a = self.emit(&t.kids[0], t.compute);
                let dst = self.reg(t.compute);
                self.ins.push(Ins::F1 {
                    f: *f,
                    dst,
                    a,
                    dt: t.compute,
                });
                (Src::Reg(dst), t.compute)
            }
        };
        if dt == want {
            return src;
        }
        let dst = self.reg(want);
        self.ins.push(Ins::Cast {
            dst,
            a: src,
            from: dt,
            to: want,
        });
        Src::Reg(dst)
    }

    /// Evaluates one block: `inputs` are the variables' columns (all of one length, at
    /// most [`BLOCK`]); the result (of type [`out`](Self::out)) is returned.
    pub fn eval<'s>(&'s mut self, inputs: &'s [Col<'s>]) -> Col<'s> {
        let n = inputs.first().map_or(self.block, Col::len);
        for k in 0..self.ins.len() {
            let ins = self.ins[k];
            self.step(ins, inputs, n);
        }
        match self.result {
            Src::In(k) => inputs[k],
            Src::Reg(r) => dispatch!(self.out, T => T::wrap(&T::buf(&self.regs[r])[..n])),
        }
    }

    fn step(&mut self, ins: Ins, inputs: &[Col<'_>], n: usize) {
        let dst = match ins {
            Ins::Cast { dst, .. }
            | Ins::Un { dst, .. }
            | Ins::Bin { dst, .. }
            | Ins::Where { dst, .. }
            | Ins::F1 { dst, .. }
            | Ins::F2 { dst, .. } => dst,
        };
        // The destination is taken out while the sources are read.
        let mut out = std::mem::replace(&mut self.regs[dst], Buf::Bool(Vec::new()));
        let regs = &self.regs;
        let get = |s: Src| -> Col<'_> {
            match s {
                Src::In(k) => inputs[k],
                Src::Reg(r) => reg_col(&regs[r], n),
            }
        };
        match ins {
            Ins::Cast { a, from, to, .. } => dispatch!(from, S => dispatch!(to, D => {
                let a = S::col(&get(a)).unwrap_or(&[]);
                for (o, &x) in D::buf_mut(&mut out)[..n].iter_mut().zip(a) {
                    *o = cast::<S, D>(x);
                }
            })),
            Ins::Un { op, a, dt, .. } => dispatch!(dt, T => {
                let a = T::col(&get(a)).unwrap_or(&[]);
                let o = &mut T::buf_mut(&mut out)[..n];
                unary::<T>(op, a, o);
            }),
            Ins::Bin { op, a, b, dt, .. } => dispatch!(dt, T => {
                let (a, b) = (get(a), get(b));
                let (a, b) = (T::col(&a).unwrap_or(&[]), T::col(&b).unwrap_or(&[]));
                if op.is_comparison() {
                    compare::<T>(op, a, b, &mut B8::buf_mut(&mut out)[..n]);
                } else if let Err(e) = binary::<T>(op, a, b, &mut T::buf_mut(&mut out)[..n]) {
                    self.error.get_or_insert(e);
                }
            }),
            Ins::Where { c, a, b, dt, .. } => dispatch!(dt, T => {
                let (c, a, b) = (get(c), get(a), get(b));
                let c = B8::col(&c).unwrap_or(&[]);
                let (a, b) = (T::col(&a).unwrap_or(&[]), T::col(&b).unwrap_or(&[]));
                let o = &mut T::buf_mut(&mut out)[..n];
                for (((o, c), &a), &b) in o.iter_mut().zip(c).zip(a).zip(b) {
                    *o = if c.get() { a } else { b };
                }
            }),
            Ins::F1 { f, a, dt, .. } => {
                let a = get(a);
                match dt {
                    Dt::F32 => float1::<f32>(
                        f,
                        f32::col(&a).unwrap_or(&[]),
                        &mut f32::buf_mut(&mut out)[..n],
                    ),
                    Dt::F64 => float1::<f64>(
                        f,
                        f64::col(&a).unwrap_or(&[]),
                        &mut f64::buf_mut(&mut out)[..n],
                    ),
                    _ => dispatch!(dt, T => {
                        // abs, floor, ceil of integers and bools (floor and ceil: the same).
                        let a = T::col(&a).unwrap_or(&[]);
                        let o = &mut T::buf_mut(&mut out)[..n];
                        if f == Func::Abs {
                            unary::<T>(Op::Neg, a, o);
                            for (o, &x) in o.iter_mut().zip(a) {
                                if x >= T::default() {
                                    *o = x;
                                }
                            }
                        } else {
                            o.copy_from_slice(a);
                        }
                    }),
                }
            }
            Ins::F2 { f, a, b, dt, .. } => dispatch!(dt, T => {
                let (a, b) = (get(a), get(b));
                let (a, b) = (T::col(&a).unwrap_or(&[]), T::col(&b).unwrap_or(&[]));
                let o = &mut T::buf_mut(&mut out)[..n];
                match f {
                    Func::Minimum => pick::<T>(a, b, o, |x, y| x <= y),
                    Func::Maximum => pick::<T>(a, b, o, |x, y| x >= y),
                    _ => for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                        *o = T::from_f64(x.to_f64().atan2(y.to_f64()));
                    },
                }
            }),
        }
        self.regs[dst] = out;
    }
}

fn reg_col(b: &Buf, n: usize) -> Col<'_> {
    dispatch!(buf_dt(b), T => T::wrap(&T::buf(b)[..n]))
}

fn buf_dt(b: &Buf) -> Dt {
    match b {
        Buf::Bool(_) => Dt::Bool,
        Buf::I8(_) => Dt::I8,
        Buf::I16(_) => Dt::I16,
        Buf::I32(_) => Dt::I32,
        Buf::I64(_) => Dt::I64,
        Buf::U8(_) => Dt::U8,
        Buf::U16(_) => Dt::U16,
        Buf::U32(_) => Dt::U32,
        Buf::U64(_) => Dt::U64,
        Buf::F32(_) => Dt::F32,
        Buf::F64(_) => Dt::F64,
    }
}

/// `minimum` / `maximum`: NaN propagates (numpy's rule), else the one `keep_a` keeps.
fn pick<T: E>(a: &[T], b: &[T], o: &mut [T], keep_a: fn(T, T) -> bool) {
    for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
        #[allow(clippy::eq_op)]
        let (x_nan, y_nan) = (x != x, y != y);
        *o = if x_nan || (!y_nan && keep_a(x, y)) {
            x
        } else {
            y
        };
    }
}

fn compare<T: E>(op: Op, a: &[T], b: &[T], o: &mut [B8]) {
    macro_rules! cmp {
        ($f:expr) => {
            for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                *o = B8::of($f(x, y));
            }
        };
    }
    match op {
        Op::Lt => cmp!(|x: T, y: T| x < y),
        Op::Le => cmp!(|x: T, y: T| x <= y),
        Op::Gt => cmp!(|x: T, y: T| x > y),
        Op::Ge => cmp!(|x: T, y: T| x >= y),
        Op::Eq => cmp!(|x: T, y: T| x == y),
        _ => cmp!(|x: T, y: T| x != y),
    }
}

/// The arithmetic of one type.
pub trait Arith: Sized {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn rem(self, o: Self) -> Self;
    fn pow(self, o: Self) -> Result<Self, String>;
    fn neg(self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn not(self) -> Self;
}

macro_rules! int_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            fn sub(self, o: Self) -> Self { self.wrapping_sub(o) }
            fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
            fn div(self, o: Self) -> Self {
                // Not reached: `/` of integers computes in float64.
                if o == 0 { 0 } else { self.wrapping_div(o) }
            }
            fn rem(self, o: Self) -> Self {
                // numpy's remainder: the sign of the divisor; 0 for a zero divisor.
                if o == 0 { return 0; }
                let r = self.wrapping_rem(o);
                #[allow(unused_comparisons)]
                if r != 0 && ((r < 0) != (o < 0)) { r.wrapping_add(o) } else { r }
            }
            fn pow(self, o: Self) -> Result<Self, String> {
                #[allow(unused_comparisons)]
                if o < 0 {
                    return Err("Integers to negative integer powers are not allowed.".into());
                }
                // Square and multiply over the whole exponent (wrapping, as numpy's).
                let (mut base, mut e, mut acc) = (self, o as u128, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                Ok(acc)
            }
            fn neg(self) -> Self { (0 as $t).wrapping_sub(self) }
            fn and(self, o: Self) -> Self { self & o }
            fn or(self, o: Self) -> Self { self | o }
            fn not(self) -> Self { !self }
        }
    )*};
}
int_arith!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            fn add(self, o: Self) -> Self { self + o }
            fn sub(self, o: Self) -> Self { self - o }
            fn mul(self, o: Self) -> Self { self * o }
            fn div(self, o: Self) -> Self { self / o }
            fn rem(self, o: Self) -> Self {
                // numpy's remainder for floats: fmod, moved to the divisor's sign.
                if o == 0.0 { return <$t>::NAN; }
                let r = self % o;
                if r == 0.0 {
                    (0.0 as $t).copysign(o) // a zero takes the divisor's sign
                } else if (r < 0.0) != (o < 0.0) {
                    r + o
                } else {
                    r
                }
            }
            fn pow(self, o: Self) -> Result<Self, String> { Ok(self.powf(o)) }
            fn neg(self) -> Self { -self }
            fn and(self, _: Self) -> Self { <$t>::NAN }
            fn or(self, _: Self) -> Self { <$t>::NAN }
            fn not(self) -> Self { <$t>::NAN }
        }
    )*};
}
float_arith!(f32, f64);

impl Arith for B8 {
    // numpy's bool arithmetic: `+` is or, `*` is and.
    fn add(self, o: Self) -> Self {
        B8::of(self.get() | o.get())
    }
    fn sub(self, o: Self) -> Self {
        B8::of(self.get() ^ o.get())
    }
    fn mul(self, o: Self) -> Self {
        B8::of(self.get() & o.get())
    }
    fn div(self, o: Self) -> Self {
        B8::of(self.get() & o.get())
    }
    fn rem(self, _: Self) -> Self {
        B8(0)
    }
    fn pow(self, _: Self) -> Result<Self, String> {
        Ok(self)
    }
    fn neg(self) -> Self {
        self
    }
    fn and(self, o: Self) -> Self {
        B8::of(self.get() & o.get())
    }
    fn or(self, o: Self) -> Self {
        B8::of(self.get() | o.get())
    }
    fn not(self) -> Self {
        B8::of(!self.get())
    }
}

fn binary<T: E>(op: Op, a: &[T], b: &[T], o: &mut [T]) -> Result<(), String> {
    macro_rules! each {
        ($f:expr) => {
            for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                *o = $f(x, y);
            }
        };
    }
    match op {
        Op::Add => each!(T::add),
        Op::Sub => each!(T::sub),
        Op::Mul => each!(T::mul),
        Op::Div => each!(T::div),
        Op::Mod => each!(T::rem),
        Op::And => each!(T::and),
        Op::Or => each!(T::or),
        _ => {
            for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                *o = x.pow(y)?;
            }
        }
    }
    Ok(())
}

fn unary<T: E>(op: Op, a: &[T], o: &mut [T]) {
    match op {
        Op::Not => o.iter_mut().zip(a).for_each(|(o, &x)| *o = x.not()),
        _ => o.iter_mut().zip(a).for_each(|(o, &x)| *o = x.neg()),
    }
}

fn float1<T: E + num_float::Float>(f: Func, a: &[T], o: &mut [T]) {
    let g: fn(T) -> T = match f {
        Func::Abs => T::abs,
        Func::Sqrt => T::sqrt,
        Func::Exp => T::exp,
        Func::Log => T::ln,
        Func::Log1p => T::ln_1p,
        Func::Expm1 => T::exp_m1,
        Func::Log10 => T::log10,
        Func::Sin => T::sin,
        Func::Cos => T::cos,
        Func::Tan => T::tan,
        Func::Arcsin => T::asin,
        Func::Arccos => T::acos,
        Func::Arctan => T::atan,
        Func::Sinh => T::sinh,
        Func::Cosh => T::cosh,
        Func::Tanh => T::tanh,
        Func::Floor => T::floor,
        _ => T::ceil,
    };
    for (o, &x) in o.iter_mut().zip(a) {
        *o = g(x);
    }
}

mod num_float {
    /// The floating functions, for `f32` and `f64`.
    pub trait Float: Sized {
        fn abs(self) -> Self;
        fn sqrt(self) -> Self;
        fn exp(self) -> Self;
        fn ln(self) -> Self;
        fn ln_1p(self) -> Self;
        fn exp_m1(self) -> Self;
        fn log10(self) -> Self;
        fn sin(self) -> Self;
        fn cos(self) -> Self;
        fn tan(self) -> Self;
        fn asin(self) -> Self;
        fn acos(self) -> Self;
        fn atan(self) -> Self;
        fn sinh(self) -> Self;
        fn cosh(self) -> Self;
        fn tanh(self) -> Self;
        fn floor(self) -> Self;
        fn ceil(self) -> Self;
    }
    macro_rules! float {
        ($($t:ty),*) => {$(
            impl Float for $t {
                fn abs(self) -> Self { <$t>::abs(self) }
                fn sqrt(self) -> Self { <$t>::sqrt(self) }
                fn exp(self) -> Self { <$t>::exp(self) }
                fn ln(self) -> Self { <$t>::ln(self) }
                fn ln_1p(self) -> Self { <$t>::ln_1p(self) }
                fn exp_m1(self) -> Self { <$t>::exp_m1(self) }
                fn log10(self) -> Self { <$t>::log10(self) }
                fn sin(self) -> Self { <$t>::sin(self) }
                fn cos(self) -> Self { <$t>::cos(self) }
                fn tan(self) -> Self { <$t>::tan(self) }
                fn asin(self) -> Self { <$t>::asin(self) }
                fn acos(self) -> Self { <$t>::acos(self) }
                fn atan(self) -> Self { <$t>::atan(self) }
                fn sinh(self) -> Self { <$t>::sinh(self) }
                fn cosh(self) -> Self { <$t>::cosh(self) }
                fn tanh(self) -> Self { <$t>::tanh(self) }
                fn floor(self) -> Self { <$t>::floor(self) }
                fn ceil(self) -> Self { <$t>::ceil(self) }
            }
        )*};
    }
    float!(f32, f64);
}
