//! Runs a compiled expression over the engine's chunks ([`ZipDyn`]): each chunk's pieces
//! become columns (the piece itself when it is contiguous, else a copy), the program runs
//! block by block, and the blocks go to the output's piece or into a reduction.

use std::ops::{ControlFlow, Range};

use bytemuck::TransparentWrapper;
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use ndarray_mmap::ops::{AnyView, AnyViewMut, Progress, StreamOptions, ZipDyn};

use crate::expr::{Dt, Reduce};
use crate::vm::{B8, Buf, Col, ColMut, E, Program, dispatch};

// SAFETY: `B8` is `#[repr(transparent)]` over `u8`, and every byte is a valid `B8`.
unsafe impl TransparentWrapper<u8> for B8 {}

/// What stops a stream: the engine's error, the program's, or the caller's (a Python
/// exception from the progress callback or a signal).
pub enum Stop {
    Engine(ndarray_mmap::Error),
    Program(String),
    Caller,
}

/// The piece as a contiguous slice (itself when it is one, else copied into `scratch` in
/// its logical order).
fn contiguous<'a, T: Clone>(v: &'a ArrayViewD<'_, T>, scratch: &'a mut Vec<T>) -> &'a [T] {
    match v.as_slice() {
        Some(s) => s,
        None => {
            scratch.clear();
            scratch.extend(v.iter().cloned());
            scratch
        }
    }
}

/// `b` as a growable vector of `T` (its variant changed if it held another type).
fn vec_of<T: E>(b: &mut Buf) -> &mut Vec<T> {
    if T::vec_mut(b).is_none() {
        *b = T::new_buf(0);
    }
    T::vec_mut(b).expect("the buffer was just made of this type")
}

/// The columns of the inputs' pieces, typed as the variables are (`bool` maps as `u8`).
fn columns<'a>(
    ins: &'a [AnyView<'_>],
    vars: &[Dt],
    scratch: &'a mut [Buf],
) -> Result<Vec<Col<'a>>, String> {
    let mut cols = Vec::with_capacity(ins.len());
    for ((v, &dt), s) in ins.iter().zip(vars).zip(scratch.iter_mut()) {
        cols.push(match (v, dt) {
            (AnyView::U8(a), Dt::Bool) => Col::Bool(B8::wrap_slice(contiguous(a, vec_of::<u8>(s)))),
            (AnyView::I8(a), Dt::I8) => Col::I8(contiguous(a, vec_of(s))),
            (AnyView::I16(a), Dt::I16) => Col::I16(contiguous(a, vec_of(s))),
            (AnyView::I32(a), Dt::I32) => Col::I32(contiguous(a, vec_of(s))),
            (AnyView::I64(a), Dt::I64) => Col::I64(contiguous(a, vec_of(s))),
            (AnyView::U8(a), Dt::U8) => Col::U8(contiguous(a, vec_of(s))),
            (AnyView::U16(a), Dt::U16) => Col::U16(contiguous(a, vec_of(s))),
            (AnyView::U32(a), Dt::U32) => Col::U32(contiguous(a, vec_of(s))),
            (AnyView::U64(a), Dt::U64) => Col::U64(contiguous(a, vec_of(s))),
            (AnyView::F32(a), Dt::F32) => Col::F32(contiguous(a, vec_of(s))),
            (AnyView::F64(a), Dt::F64) => Col::F64(contiguous(a, vec_of(s))),
            (_, dt) => {
                return Err(format!(
                    "an operand is not of its declared type {}",
                    dt.name()
                ));
            }
        });
    }
    Ok(cols)
}

/// Runs `prog` over every block of one chunk, handing `sink(offset, column)` each block's
/// result (`offset` in the chunk's elements, in its logical order).
fn blocks(
    prog: &mut Program,
    cols: &[Col<'_>],
    n: usize,
    sink: &mut dyn FnMut(usize, Col<'_>),
) -> Result<(), String> {
    let mut lo = 0;
    let mut block: Vec<Col<'_>> = Vec::with_capacity(cols.len());
    while lo < n {
        let hi = (lo + prog.block).min(n);
        block.clear();
        block.extend(cols.iter().map(|c| c.slice(lo, hi)));
        if block.is_empty() {
            // No variable: the expression is constant; the program's registers hold it.
            let r = prog.eval(&[]);
            sink(lo, r.slice(0, hi - lo));
        } else {
            let r = prog.eval(&block);
            sink(lo, r);
        }
        if let Some(e) = prog.error.take() {
            return Err(e);
        }
        lo = hi;
    }
    Ok(())
}

/// Writes a column into `out[lo..]` (a contiguous output), of the same type.
fn put(out: &mut ColMut<'_>, lo: usize, c: Col<'_>) {
    dispatch!(c_dt(&c), T => {
        if let (Some(dst), Some(src)) = (T::col_mut(out), T::col(&c)) {
            dst[lo..lo + src.len()].copy_from_slice(src);
        }
    });
}

fn c_dt(c: &Col<'_>) -> Dt {
    match c {
        Col::Bool(_) => Dt::Bool,
        Col::I8(_) => Dt::I8,
        Col::I16(_) => Dt::I16,
        Col::I32(_) => Dt::I32,
        Col::I64(_) => Dt::I64,
        Col::U8(_) => Dt::U8,
        Col::U16(_) => Dt::U16,
        Col::U32(_) => Dt::U32,
        Col::U64(_) => Dt::U64,
        Col::F32(_) => Dt::F32,
        Col::F64(_) => Dt::F64,
    }
}

/// The output's piece as a contiguous slice of type `dt`: itself when it is contiguous in
/// its logical order, else `None` (the caller computes aside and assigns).
fn out_slice<'a>(v: &'a mut AnyViewMut<'_>, dt: Dt) -> Option<ColMut<'a>> {
    Some(match (v, dt) {
        (AnyViewMut::U8(a), Dt::Bool) => ColMut::Bool(B8::wrap_slice_mut(a.as_slice_mut()?)),
        (AnyViewMut::I8(a), Dt::I8) => ColMut::I8(a.as_slice_mut()?),
        (AnyViewMut::I16(a), Dt::I16) => ColMut::I16(a.as_slice_mut()?),
        (AnyViewMut::I32(a), Dt::I32) => ColMut::I32(a.as_slice_mut()?),
        (AnyViewMut::I64(a), Dt::I64) => ColMut::I64(a.as_slice_mut()?),
        (AnyViewMut::U8(a), Dt::U8) => ColMut::U8(a.as_slice_mut()?),
        (AnyViewMut::U16(a), Dt::U16) => ColMut::U16(a.as_slice_mut()?),
        (AnyViewMut::U32(a), Dt::U32) => ColMut::U32(a.as_slice_mut()?),
        (AnyViewMut::U64(a), Dt::U64) => ColMut::U64(a.as_slice_mut()?),
        (AnyViewMut::F32(a), Dt::F32) => ColMut::F32(a.as_slice_mut()?),
        (AnyViewMut::F64(a), Dt::F64) => ColMut::F64(a.as_slice_mut()?),
        _ => return None,
    })
}

/// Assigns a contiguous column of the whole piece (logical order) to a strided output.
fn assign(v: &mut AnyViewMut<'_>, dt: Dt, all: &Buf) -> Result<(), String> {
    macro_rules! to {
        ($a:expr, $T:ty, $src:expr) => {{
            let shape = $a.shape().to_vec();
            let src: &[$T] = $src;
            let view = ArrayViewD::from_shape(IxDyn(&shape), src).map_err(|e| e.to_string())?;
            $a.assign(&view);
        }};
    }
    match (v, dt) {
        (AnyViewMut::U8(a), Dt::Bool) => to!(a, u8, B8::peel_slice(B8::buf(all))),
        (AnyViewMut::I8(a), Dt::I8) => to!(a, i8, i8::buf(all)),
        (AnyViewMut::I16(a), Dt::I16) => to!(a, i16, i16::buf(all)),
        (AnyViewMut::I32(a), Dt::I32) => to!(a, i32, i32::buf(all)),
        (AnyViewMut::I64(a), Dt::I64) => to!(a, i64, i64::buf(all)),
        (AnyViewMut::U8(a), Dt::U8) => to!(a, u8, u8::buf(all)),
        (AnyViewMut::U16(a), Dt::U16) => to!(a, u16, u16::buf(all)),
        (AnyViewMut::U32(a), Dt::U32) => to!(a, u32, u32::buf(all)),
        (AnyViewMut::U64(a), Dt::U64) => to!(a, u64, u64::buf(all)),
        (AnyViewMut::F32(a), Dt::F32) => to!(a, f32, f32::buf(all)),
        (AnyViewMut::F64(a), Dt::F64) => to!(a, f64, f64::buf(all)),
        (_, dt) => {
            return Err(format!(
                "the output is not of its declared type {}",
                dt.name()
            ));
        }
    }
    Ok(())
}

/// The progress callback and cancel check, between chunks.
pub type Tick<'t> = &'t mut dyn FnMut(u64, u64) -> bool;

fn options<'t>(tick: Tick<'t>) -> StreamOptions<'t> {
    StreamOptions::new().progress(move |p: Progress| match tick(p.done, p.total) {
        true => ControlFlow::Continue(()),
        false => ControlFlow::Break(()),
    })
}

/// How a stream ended: the program's own failure first (it cancelled the stream), then a
/// cancel by the caller, then the engine's error.
fn outcome(r: Result<(), ndarray_mmap::Error>, failed: Option<Stop>) -> Result<(), Stop> {
    match (r, failed) {
        (_, Some(stop)) => Err(stop),
        (Ok(()), None) => Ok(()),
        (Err(ndarray_mmap::Error::Cancelled { .. }), None) => Err(Stop::Caller),
        (Err(e), None) => Err(Stop::Engine(e)),
    }
}

/// Evaluates `prog` into the one output of `zip` (added first), reading its inputs.
pub fn elementwise(
    zip: ZipDyn<'_, '_>,
    prog: &mut Program,
    vars: &[Dt],
    tick: Tick<'_>,
) -> Result<(), Stop> {
    let mut scratch: Vec<Buf> = vars.iter().map(|_| Buf::Bool(Vec::new())).collect();
    let mut aside = Buf::Bool(Vec::new());
    let mut failed: Option<Stop> = None;
    let out_dt = prog.out;
    let r = zip.with(options(tick)).for_each(|_index, outs, ins| {
        if failed.is_some() {
            return;
        }
        let result = (|| -> Result<(), String> {
            let cols = columns(ins, vars, &mut scratch)?;
            let out = &mut outs[0];
            let n: usize = out.shape().iter().product();
            match out_slice(out, out_dt) {
                Some(mut slice) => blocks(prog, &cols, n, &mut |lo, c| put(&mut slice, lo, c)),
                None => {
                    dispatch!(out_dt, T => {
                        let v = vec_of::<T>(&mut aside);
                        v.clear();
                        blocks(prog, &cols, n, &mut |_, c| {
                            v.extend_from_slice(T::col(&c).unwrap_or(&[]));
                        })?;
                    });
                    assign(out, out_dt, &aside)
                }
            }
        })();
        if let Err(e) = result {
            failed = Some(Stop::Program(e));
        }
    });
    outcome(r, failed)
}

/// A reduction's running values: floats in `f64`, integers (and bools) in `i128`.
pub enum Acc {
    F(ArrayD<f64>),
    I(ArrayD<i128>),
}

/// The start of a reduction of values of type `dt` into `shape`.
pub fn start(kind: Reduce, dt: Dt, shape: &[usize]) -> Acc {
    let shape = IxDyn(shape);
    match (dt.is_float(), kind) {
        (true, Reduce::Min) => Acc::F(ArrayD::from_elem(shape, f64::INFINITY)),
        (true, Reduce::Max) => Acc::F(ArrayD::from_elem(shape, f64::NEG_INFINITY)),
        (true, _) => Acc::F(ArrayD::zeros(shape)),
        (false, Reduce::Min) => Acc::I(ArrayD::from_elem(shape, i128::MAX)),
        (false, Reduce::Max) => Acc::I(ArrayD::from_elem(shape, i128::MIN)),
        (false, _) => Acc::I(ArrayD::zeros(shape)),
    }
}

fn fmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
fn fmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Reduces `prog`'s values over every chunk of `zip` (inputs only) into `acc`: along
/// `axis`, or over everything when `axis` is `None` (`acc` is then 0-dimensional).
pub fn reduce(
    zip: ZipDyn<'_, '_>,
    prog: &mut Program,
    vars: &[Dt],
    kind: Reduce,
    axis: Option<usize>,
    acc: &mut Acc,
    tick: Tick<'_>,
) -> Result<(), Stop> {
    let mut scratch: Vec<Buf> = vars.iter().map(|_| Buf::Bool(Vec::new())).collect();
    let mut failed: Option<Stop> = None;
    let float = prog.out.is_float();
    let mut fvals: Vec<f64> = Vec::new();
    let mut ivals: Vec<i128> = Vec::new();
    let r = zip.with(options(tick)).fold((), |(), index, _outs, ins| {
        if failed.is_some() {
            return;
        }
        let result = (|| -> Result<(), String> {
            let cols = columns(ins, vars, &mut scratch)?;
            let shape: Vec<usize> = index.iter().map(|r| r.end - r.start).collect();
            let n: usize = shape.iter().product();
            fvals.clear();
            ivals.clear();
            blocks(prog, &cols, n, &mut |_, c| {
                dispatch!(c_dt(&c), T => {
                    let s = T::col(&c).unwrap_or(&[]);
                    if float {
                        fvals.extend(s.iter().map(|x| x.to_f64()));
                    } else {
                        ivals.extend(s.iter().map(|x| x.to_i128()));
                    }
                });
            })?;
            match acc {
                Acc::F(a) => fold_into(a, &fvals, &shape, index, axis, kind, fmin, fmax, |x, y| {
                    x + y
                }),
                Acc::I(a) => fold_into(
                    a,
                    &ivals,
                    &shape,
                    index,
                    axis,
                    kind,
                    i128::min,
                    i128::max,
                    i128::wrapping_add,
                ),
            }
        })();
        if let Err(e) = result {
            failed = Some(Stop::Program(e));
        }
    });
    outcome(r, failed)
}

/// Folds one chunk's values (`shape`, at `index` in the array) into the accumulator.
#[allow(clippy::too_many_arguments)]
fn fold_into<A: Copy + 'static>(
    acc: &mut ArrayD<A>,
    vals: &[A],
    shape: &[usize],
    index: &[Range<usize>],
    axis: Option<usize>,
    kind: Reduce,
    min: fn(A, A) -> A,
    max: fn(A, A) -> A,
    add: fn(A, A) -> A,
) -> Result<(), String> {
    let f = match kind {
        Reduce::Min => min,
        Reduce::Max => max,
        Reduce::Sum | Reduce::Mean => add,
    };
    let v = ArrayViewD::from_shape(IxDyn(shape), vals).map_err(|e| e.to_string())?;
    match axis {
        None => {
            let a = acc.first_mut().ok_or("an empty accumulator")?;
            *a = v.iter().fold(*a, |s, &x| f(s, x));
        }
        Some(ax) => {
            let mut dst = acc.view_mut();
            // The accumulator's region: the chunk's ranges without the reduced axis.
            let mut k = 0;
            for (d, r) in index.iter().enumerate() {
                if d == ax {
                    continue;
                }
                dst.slice_axis_inplace(Axis(k), ndarray::Slice::from(r.clone()));
                k += 1;
            }
            for lane in v.axis_iter(Axis(ax)) {
                ndarray::Zip::from(&mut dst)
                    .and(&lane)
                    .for_each(|d, &x| *d = f(*d, x));
            }
        }
    }
    Ok(())
}
