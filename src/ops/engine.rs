//! The streaming engine: visits an output piece by piece with its inputs broadcast to it.

use std::ops::ControlFlow;

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::Error;
use crate::map::pager::{InPager, OutPager};

use super::operand::{Operand, check_aliasing};
use super::options::{PARALLEL_MIN_BYTES, Progress, StreamOptions};
use super::plan::{InStream, OutStream, Plan, same_order, slice_view};

pub(super) fn report(opts: &mut StreamOptions<'_>, done: u64, total: u64) -> Result<(), Error> {
    if let Some(f) = opts.progress.as_mut() {
        // A cancel after the last chunk comes too late to cancel anything: the work is
        // done, and the result stands.
        if let ControlFlow::Break(()) = f(Progress { done, total })
            && done < total
        {
            return Err(Error::Cancelled { done, total });
        }
    }
    Ok(())
}

pub(super) fn broadcast_to<'v, T>(
    v: &'v ArrayViewD<'_, T>,
    shape: &[usize],
    operand: &'static str,
) -> Result<ArrayViewD<'v, T>, Error> {
    v.broadcast(shape).ok_or_else(|| Error::Broadcast {
        operand,
        input: v.shape().to_vec(),
        output: shape.to_vec(),
    })
}

/// Whether `n` elements of `T` are worth splitting across threads.
pub(super) fn go_parallel<T>(opts: &StreamOptions<'_>, n: usize) -> bool {
    cfg!(feature = "rayon")
        && opts.parallel
        && n.saturating_mul(std::mem::size_of::<T>()) >= PARALLEL_MIN_BYTES
}

/// Runs `$f` over the `Zip` `$zip`, split across threads when `$par` (and `rayon` is on).
macro_rules! zip_for_each {
    ($zip:expr, $par:expr, $f:expr) => {{
        let z = $zip;
        #[cfg(feature = "rayon")]
        if $par {
            z.par_for_each($f);
        } else {
            z.for_each($f);
        }
        #[cfg(not(feature = "rayon"))]
        {
            let _: bool = $par;
            z.for_each($f);
        }
    }};
}

/// A view of an input and its paging hooks, if it is mapped.
pub(super) type InParts<'v, T> = (ArrayViewD<'v, T>, Option<InPager<'v>>);

/// The engine behind every elementwise function: visits the output `c` piece by piece in
/// its memory order, with the paging hooks of whichever operands are mapped, and calls
/// `kernel(piece of c, piece of a, piece of b, parallel)` with the inputs broadcast to
/// `c`'s shape and sliced alike.
///
/// `a` is `None` for the in-place functions, where the output is itself the first input
/// (the kernel reads it through its piece of `c`): its pages then get the output's
/// handling only — read ahead in order, written back before they are dropped — and never
/// the inputs' early drop, which would push its dirty pages into the page cache before
/// write-back was started and so lose the bound on dirty pages in flight.
pub(super) fn zip_stream<A, B, C, K>(
    a: Option<InParts<'_, A>>,
    b: Option<InParts<'_, B>>,
    c: (ArrayViewMutD<'_, C>, Option<OutPager<'_>>),
    mut opts: StreamOptions<'_>,
    mut kernel: K,
) -> Result<(), Error>
where
    K: FnMut(ArrayViewMutD<'_, C>, Option<ArrayViewD<'_, A>>, Option<ArrayViewD<'_, B>>, bool),
{
    let (mut cv, cpager) = c;
    let shape = cv.shape().to_vec();
    let cstrides = cv.strides().to_vec();
    let in_place = a.is_none();
    // Check every shape before writing anything.
    let (av, apager) = match a {
        Some((v, p)) => (Some(v), p),
        None => (None, None),
    };
    let (bv, bpager) = match b {
        Some((v, p)) => (Some(v), p),
        None => (None, None),
    };
    let a_name = if bv.is_some() { "first input" } else { "input" };
    let ab = match &av {
        Some(v) => Some(broadcast_to(v, &shape, a_name)?),
        None => None,
    };
    let bb = match &bv {
        Some(v) => Some(broadcast_to(v, &shape, "second input")?),
        None => None,
    };

    // Two operands over overlapping bytes of one file (two maps of it, or views of
    // them): writing the output would change input not read yet, unless each element is
    // read where it is written.
    let out = Operand::of(&cv.view());
    let inputs = [av.as_ref().map(Operand::of), bv.as_ref().map(Operand::of)];
    check_aliasing(&out, inputs.iter().flatten())?;

    let total_elems = cv.len();
    let csize = std::mem::size_of::<C>().max(1);
    let total = (total_elems * csize) as u64;
    let chunk = (opts.chunk_bytes / csize).max(1);
    let plan = Plan::new(&shape, &cstrides, chunk);

    // An input is read in its file order when it is not broadcast and its layout
    // matches the output's.
    let in_order = |input: &[usize], strides: &[isize]| {
        input == shape.as_slice() && same_order(&shape, strides, &cstrides)
    };
    let mut a_stream = match (&av, &ab) {
        (Some(av), Some(ab)) => InStream::new(apager, in_order(av.shape(), ab.strides())),
        _ => None,
    };
    let mut b_stream = match (&bv, &bb) {
        (Some(bv), Some(bb)) => InStream::new(bpager, in_order(bv.shape(), bb.strides())),
        _ => None,
    };
    let c_in_order = same_order(&shape, &cstrides, &cstrides);
    let mut c_stream = OutStream::new(cpager, c_in_order);
    let c_base = c_stream.as_ref().map_or(0, |s| s.pager.addr());
    if in_place && let Some(s) = &c_stream {
        s.pager.sequential();
    }

    let mut done_elems = 0usize;
    let mut result = Ok(());
    for piece in plan {
        let pa = ab.as_ref().map(|v| slice_view(v, &piece));
        let pb = bb.as_ref().map(|v| slice_view(v, &piece));
        let pc = cv.slice_each_axis_mut(|d| piece[d.axis.index()]);
        if let (Some(s), Some(pa)) = (a_stream.as_mut(), pa.as_ref()) {
            s.at(pa);
        }
        if let (Some(s), Some(pb)) = (b_stream.as_mut(), pb.as_ref()) {
            s.at(pb);
        }
        if let Some(s) = c_stream.as_mut() {
            let lo = pc.as_ptr() as usize - c_base;
            if let Err(e) = s.done_below(lo) {
                result = Err(e);
                break;
            }
        }
        let n = pc.len();
        kernel(pc, pa, pb, go_parallel::<C>(&opts, n));
        done_elems += n;
        if let Err(e) = report(&mut opts, (done_elems * csize) as u64, total) {
            result = Err(e);
            break;
        }
    }
    let completed = result.is_ok();
    if let Some(s) = a_stream {
        s.finish();
    }
    if let Some(s) = b_stream {
        s.finish();
    }
    if let Some(s) = c_stream {
        if in_place {
            s.pager.normal();
        }
        let r = s.finish(completed);
        if result.is_ok() {
            result = r;
        }
    }
    result
}
