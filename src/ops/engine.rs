//! The fixed-arity entry of the elementwise functions into the engine (`run::run`, which
//! visits an output piece by piece): inputs named and broadcast to the output, progress
//! reporting, the parallel split of a piece.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::Error;

use super::options::{PARALLEL_MIN_BYTES, StreamOptions};
use super::part::sealed::Part;
use super::part::{Input, Output};
use super::run::run;

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

/// The fixed-arity entry to the [`Zip`](super::Zip)'s engine, for the elementwise
/// functions: visits the output `c` piece by piece in its memory order, with the paging
/// hooks of whichever operands are mapped, and calls `kernel(piece of c, piece of a,
/// piece of b, parallel)` with the inputs broadcast to `c`'s shape and sliced alike.
///
/// `a` is `None` for the in-place functions, where the output is itself the first input
/// (the kernel reads it through its piece of `c`): its pages then get the output's
/// handling only — read ahead in order, written back before they are dropped — and never
/// the inputs' early drop, which would push its dirty pages into the page cache before
/// write-back was started and so lose the bound on dirty pages in flight.
pub(super) fn zip_stream<A, B, C, K>(
    a: Option<Input<'_, A>>,
    b: Option<Input<'_, B>>,
    out: Output<'_, C>,
    opts: StreamOptions<'_>,
    mut kernel: K,
) -> Result<(), Error>
where
    A: Clone + Sync + 'static,
    B: Clone + Sync + 'static,
    C: Send + 'static,
    K: FnMut(ArrayViewMutD<'_, C>, Option<ArrayViewD<'_, A>>, Option<ArrayViewD<'_, B>>, bool),
{
    // With an input `a`, the output is only written (`c = f(a, b)`); without, it is the
    // first input (in place).
    let out = if a.is_some() { out.write_only() } else { out };
    let shape = out.shape();
    let a_name = if b.is_some() {
        "the first input"
    } else {
        "the input"
    };
    // Check every shape before writing anything.
    let a = input(a, &shape, a_name)?;
    let b = input(b, &shape, "the second input")?;
    let threads = opts.parallel;
    let par = move |n: usize| {
        cfg!(feature = "rayon")
            && threads
            && n.saturating_mul(std::mem::size_of::<C>()) >= PARALLEL_MIN_BYTES
    };
    let n_of = |p: &ArrayViewMutD<'_, C>| p.len();
    match (a, b) {
        (Some(a), Some(b)) => run(&mut (out, a, b), &shape, None, opts, |(o, a, b), s| {
            let pc = o.piece(s);
            let n = n_of(&pc);
            kernel(pc, Some(a.piece(s)), Some(b.piece(s)), par(n));
        }),
        (Some(a), None) => run(&mut (out, a), &shape, None, opts, |(o, a), s| {
            let pc = o.piece(s);
            let n = n_of(&pc);
            kernel(pc, Some(a.piece(s)), None, par(n));
        }),
        (None, Some(b)) => run(&mut (out, b), &shape, None, opts, |(o, b), s| {
            let pc = o.piece(s);
            let n = n_of(&pc);
            kernel(pc, None, Some(b.piece(s)), par(n));
        }),
        (None, None) => run(&mut (out,), &shape, None, opts, |(o,), s| {
            let pc = o.piece(s);
            let n = n_of(&pc);
            kernel(pc, None, None, par(n));
        }),
    }
}

/// An input of the elementwise functions, broadcast to `shape`.
fn input<'v, T: Clone + Sync + 'static>(
    x: Option<Input<'v, T>>,
    shape: &[usize],
    name: &'static str,
) -> Result<Option<Input<'v, T>>, Error> {
    x.map(|i| {
        let mut i = i.named(name);
        i.broadcast_to(shape).map(|()| i)
    })
    .transpose()
}
