//! Parsed expressions, their typing and their compiled programs, kept per thread and
//! reused across calls, as numexpr keeps its compiled programs: on small arrays, parsing,
//! typing and compiling (and the registers' allocation) cost more than the work.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;

use crate::expr::{self, Dt, Expr, Typed};
use crate::vm::{BLOCK, Program};

/// Entries kept per cache; past it a cache starts again empty (as `_NAMES` in Python).
const KEEP: usize = 256;

type TypedKey = (String, Vec<Dt>);
/// A program's cache key: expression, operand types, result type, block.
pub type ProgramKey = (String, Vec<Dt>, Dt, usize);

thread_local! {
    static PARSED: RefCell<HashMap<String, Rc<Expr>>> = RefCell::new(HashMap::new());
    static TYPED: RefCell<HashMap<TypedKey, Rc<Typed>>> = RefCell::new(HashMap::new());
    /// Programs not in use: one is taken out for a call and given back after it, so that a
    /// call made from inside another (a progress callback) compiles its own.
    static PROGRAMS: RefCell<HashMap<ProgramKey, Vec<Program>>> = RefCell::new(HashMap::new());
}

fn bounded<K, V>(map: &mut HashMap<K, V>) -> &mut HashMap<K, V> {
    if map.len() >= KEEP {
        map.clear();
    }
    map
}

/// `expr` parsed (a syntax error is a `ValueError`).
pub fn parsed(src: &str) -> PyResult<Rc<Expr>> {
    if let Some(e) = PARSED.with(|c| c.borrow().get(src).cloned()) {
        return Ok(e);
    }
    let e = Rc::new(expr::parse(src).map_err(|e| PyValueError::new_err(e.to_string()))?);
    PARSED.with(|c| bounded(&mut c.borrow_mut()).insert(src.to_string(), e.clone()));
    Ok(e)
}

/// `e` (parsed from `src`) typed against `vars` (a type error is a `TypeError`).
pub fn typed(src: &str, e: &Expr, vars: &[Dt]) -> PyResult<Rc<Typed>> {
    let key = (src.to_string(), vars.to_vec());
    if let Some(t) = TYPED.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(t);
    }
    let t = Rc::new(expr::type_of(&e.body, vars).map_err(crate::type_err)?);
    TYPED.with(|c| bounded(&mut c.borrow_mut()).insert(key, t.clone()));
    Ok(t)
}

/// A program for `t` (typed from `src` against `vars`), its result cast to `out`, for
/// blocks of up to `block` elements: a cached one when there is one, else compiled. Hand it
/// back with [`give_back`] and the key returned with it.
pub fn program(src: &str, t: &Typed, vars: &[Dt], out: Dt, block: usize) -> (ProgramKey, Program) {
    let key = (src.to_string(), vars.to_vec(), out, block.clamp(1, BLOCK));
    let cached = PROGRAMS.with(|c| c.borrow_mut().get_mut(&key).and_then(Vec::pop));
    let p = match cached {
        Some(mut p) => {
            p.error = None;
            p
        }
        None => Program::compile(t, vars, out, block),
    };
    (key, p)
}

/// Gives back a program [`program`] handed out, for the next call.
pub fn give_back(key: ProgramKey, p: Program) {
    PROGRAMS.with(|c| {
        let mut c = c.borrow_mut();
        let pool = bounded(&mut c).entry(key).or_default();
        // One per nesting depth is plenty.
        if pool.len() < 4 {
            pool.push(p);
        }
    });
}
