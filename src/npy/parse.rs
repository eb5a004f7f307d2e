//! Parsing `.npy` headers: the prefix, then the Python dict literal as `ast.literal_eval`
//! reads it, within numpy's limits.

use super::write::prefix_len;
use super::{MAGIC, MAX_HEADER_LEN, NpyHeader, NpyProblem};

/// How deeply tuples and lists may nest in a header before it is rejected.
const MAX_DEPTH: usize = 16;

/// A parsed Python literal, as far as .npy headers use them.
enum Value {
    Str(Vec<u8>),
    Bool(bool),
    /// A non-negative integer that fits in u64.
    Int(u64),
    /// An integer that is negative or does not fit in u64.
    BadInt,
    Tuple(Vec<Spanned>),
    List,
}

struct Spanned {
    value: Value,
    start: usize,
    end: usize,
}

/// A cursor over the header's dict text; positions are reported as file offsets.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    /// File offset of `text[0]`.
    base: usize,
    /// Python 2's `L` suffix on ints (1.0 and 2.0 only).
    allow_long: bool,
}

impl Parser<'_> {
    fn err(&self, expected: &'static str) -> NpyProblem {
        NpyProblem::Syntax {
            at: (self.base + self.pos) as u64,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), NpyProblem> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, NpyProblem> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.err("a quoted string")),
        };
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.err("the end of the string")),
                Some(b'\\') => {
                    // Keep the escaped byte as it is: numeric descriptors have none.
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.err("an escaped character")),
                        Some(b) => out.push(b),
                    }
                    self.pos += 1;
                }
                Some(b) if b == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, NpyProblem> {
        self.skip_ws();
        let start = self.pos;
        let value = match self.peek() {
            Some(b'\'' | b'"') => Value::Str(self.string()?),
            Some(b'(' | b'[') if depth >= MAX_DEPTH => return Err(self.err("less nesting")),
            Some(b'(') => {
                self.pos += 1;
                let (items, trailing_comma) = self.items(b')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    // `(5)` is a parenthesised 5, not a tuple
                    let mut inner = items;
                    return match inner.pop() {
                        Some(v) => Ok(Spanned {
                            value: v.value,
                            start,
                            end: self.pos,
                        }),
                        None => Err(self.err("a value")),
                    };
                }
                Value::Tuple(items)
            }
            Some(b'[') => {
                self.pos += 1;
                self.items(b']', depth)?;
                Value::List
            }
            Some(b'-' | b'+' | b'0'..=b'9') => self.int()?,
            Some(b'T' | b'F') => {
                let rest = &self.text[self.pos..];
                if rest.starts_with(b"True") {
                    self.pos += 4;
                    Value::Bool(true)
                } else if rest.starts_with(b"False") {
                    self.pos += 5;
                    Value::Bool(false)
                } else {
                    return Err(self.err("a value"));
                }
            }
            _ => return Err(self.err("a value")),
        };
        if let Some(b) = self.peek()
            && (b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(self.err("a separator after the value"));
        }
        Ok(Spanned {
            value,
            start,
            end: self.pos,
        })
    }

    /// Comma-separated values up to `close`; returns them and whether a comma trailed.
    fn items(&mut self, close: u8, depth: usize) -> Result<(Vec<Spanned>, bool), NpyProblem> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing = true;
                }
                Some(c) if c == close => trailing = false,
                _ => {
                    return Err(self.err(if close == b')' {
                        "',' or ')'"
                    } else {
                        "',' or ']'"
                    }));
                }
            }
        }
    }

    fn int(&mut self) -> Result<Value, NpyProblem> {
        // One sign at most: Python's literal_eval (numpy's parser) refuses `--3`.
        let mut negative = false;
        if let Some(sign @ (b'-' | b'+')) = self.peek() {
            negative = sign == b'-';
            self.pos += 1;
            self.skip_ws();
        }
        let digits_start = self.pos;
        let mut value = Some(0u64);
        while let Some(d @ b'0'..=b'9') = self.peek() {
            value = value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(u64::from(d - b'0')));
            self.pos += 1;
            // Python allows one underscore between digits
            if self.peek() == Some(b'_') && matches!(self.text.get(self.pos + 1), Some(b'0'..=b'9'))
            {
                self.pos += 1;
            }
        }
        if self.pos == digits_start {
            return Err(self.err("a digit"));
        }
        // Python 3 refuses leading zeros (`007`), except in zero itself (`00`).
        if self.text.get(digits_start) == Some(&b'0') && value != Some(0) {
            self.pos = digits_start;
            return Err(self.err("an integer without leading zeros"));
        }
        if self.allow_long && matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(match value {
            Some(0) => Value::Int(0),
            Some(v) if !negative => Value::Int(v),
            _ => Value::BadInt,
        })
    }
}

const KEYS: [&str; 3] = ["descr", "fortran_order", "shape"];

/// numpy's limit on the number of dimensions (`NPY_MAXDIMS` in numpy 2).
pub(crate) const MAX_DIMS: usize = 64;

pub(super) fn parse(bytes: &[u8]) -> Result<NpyHeader, NpyProblem> {
    let head = &bytes[..bytes.len().min(MAGIC.len())];
    if head != &MAGIC[..head.len()] {
        return Err(NpyProblem::NotNpy {
            found: head.to_vec(),
        });
    }
    let truncated = |needed: usize| NpyProblem::Truncated {
        needed: needed as u64,
        found: bytes.len() as u64,
    };
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(truncated(8)),
    };
    let prefix = prefix_len((major, minor)).ok_or(NpyProblem::Version { major, minor })?;
    let len_field = bytes.get(8..prefix).ok_or_else(|| truncated(prefix))?;
    let header_len = match *len_field {
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => return Err(truncated(prefix)),
    };
    if header_len > MAX_HEADER_LEN as u64 {
        return Err(NpyProblem::HeaderTooLong {
            len: header_len,
            max: MAX_HEADER_LEN as u64,
        });
    }
    // header_len <= MAX_HEADER_LEN, so this cannot overflow
    let data_offset = prefix + header_len as usize;
    let text = bytes
        .get(prefix..data_offset)
        .ok_or_else(|| truncated(data_offset))?;
    let utf8 = major == 3;
    if utf8 && let Err(e) = std::str::from_utf8(text) {
        return Err(NpyProblem::NotUtf8 {
            at: (prefix + e.valid_up_to()) as u64,
        });
    }
    let mut p = Parser {
        text,
        pos: 0,
        base: prefix,
        allow_long: major < 3,
    };
    p.expect(b'{', "'{'")?;
    let mut descr: Option<String> = None;
    let mut fortran_order: Option<bool> = None;
    let mut shape: Option<Vec<usize>> = None;
    loop {
        p.skip_ws();
        if p.peek() == Some(b'}') {
            p.pos += 1;
            break;
        }
        let key_at = p.pos;
        let key = p.string()?;
        p.expect(b':', "':'")?;
        let v = p.value(0)?;
        let found = || shorten(&text[v.start..v.end], utf8);
        let key = match KEYS.iter().find(|k| k.as_bytes() == key.as_slice()) {
            Some(&k) => k,
            None => {
                return Err(NpyProblem::UnexpectedKey {
                    key: decode(&key, utf8),
                });
            }
        };
        let seen = match key {
            "descr" => descr.is_some(),
            "fortran_order" => fortran_order.is_some(),
            _ => shape.is_some(),
        };
        if seen {
            let _ = key_at;
            return Err(NpyProblem::DuplicateKey { key });
        }
        match (key, v.value) {
            ("descr", Value::Str(s)) => descr = Some(decode(&s, utf8)),
            ("descr", Value::List) => {
                return Err(NpyProblem::UnsupportedDtype {
                    descr: found(),
                    reason: "structured dtypes (records with named fields) cannot be mapped as one numeric type",
                });
            }
            ("descr", _) => {
                return Err(NpyProblem::BadValue {
                    key,
                    found: found(),
                    expected: "a dtype string such as '<f4'",
                });
            }
            ("fortran_order", Value::Bool(b)) => fortran_order = Some(b),
            ("fortran_order", _) => {
                return Err(NpyProblem::BadValue {
                    key,
                    found: found(),
                    expected: "True or False",
                });
            }
            (_, Value::Tuple(items)) => {
                let mut dims = Vec::with_capacity(items.len());
                for (axis, item) in items.iter().enumerate() {
                    let bad = || NpyProblem::BadDim {
                        axis,
                        found: shorten(&text[item.start..item.end], utf8),
                    };
                    match item.value {
                        Value::Int(d) => dims.push(usize::try_from(d).map_err(|_| bad())?),
                        Value::BadInt => return Err(bad()),
                        _ => {
                            return Err(NpyProblem::BadValue {
                                key,
                                found: found(),
                                expected: "a tuple of integers such as (3, 4)",
                            });
                        }
                    }
                }
                shape = Some(dims);
            }
            (_, _) => {
                return Err(NpyProblem::BadValue {
                    key,
                    found: found(),
                    expected: "a tuple of integers such as (3, 4)",
                });
            }
        }
        p.skip_ws();
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => {}
            _ => return Err(p.err("',' or '}'")),
        }
    }
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("only spaces after the dict"));
    }
    let (descr, fortran_order, shape) = match (descr, fortran_order, shape) {
        (Some(d), Some(f), Some(s)) => (d, f, s),
        (None, _, _) => return Err(NpyProblem::MissingKey { key: "descr" }),
        (_, None, _) => {
            return Err(NpyProblem::MissingKey {
                key: "fortran_order",
            });
        }
        (_, _, None) => return Err(NpyProblem::MissingKey { key: "shape" }),
    };
    if shape.len() > MAX_DIMS {
        return Err(NpyProblem::TooManyDims {
            ndim: shape.len(),
            max: MAX_DIMS,
        });
    }
    Ok(NpyHeader {
        version: (major, minor),
        descr,
        fortran_order,
        shape,
        data_offset,
    })
}

/// Header bytes as text: UTF-8 for 3.0 (already validated), latin-1 before.
fn decode(bytes: &[u8], utf8: bool) -> String {
    if utf8 {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

/// A value's source text for a message (UTF-8 for 3.0 headers, latin-1 before), cut to
/// 40 characters, never inside one.
fn shorten(src: &[u8], utf8: bool) -> String {
    const MAX: usize = 40;
    let text = decode(src, utf8);
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
