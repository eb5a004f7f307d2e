//! Whole-array reductions: sum, mean, min, max.

use ndarray::ArrayViewD;

use crate::error::Error;
use crate::map::pager::InPager;

use super::engine::report;
use super::numeric::{Numeric, fold8};
use super::operand::Source;
use super::options::StreamOptions;
use super::plan::{InStream, Plan, slice_view};

// ---------------------------------------------------------------------------------------
// Reductions.

/// Folds `a` piece by piece in its memory order, with the paging hooks if it is mapped.
pub(super) fn fold_stream<T, R>(
    a: (ArrayViewD<'_, T>, Option<InPager<'_>>),
    mut opts: StreamOptions<'_>,
    init: R,
    mut fold: impl FnMut(R, &ArrayViewD<'_, T>) -> R,
) -> Result<R, Error> {
    let (av, pager) = a;
    let size = std::mem::size_of::<T>().max(1);
    let total = (av.len() * size) as u64;
    let chunk = (opts.chunk_bytes / size).max(1);
    let in_order = av.strides().iter().all(|&s| s >= 0);
    let mut stream = InStream::new(pager, in_order);
    let mut acc = init;
    let mut done = 0usize;
    let mut result = Ok(());
    for piece in Plan::new(av.shape(), av.strides(), chunk) {
        let p = slice_view(&av, &piece);
        if let Some(s) = stream.as_mut() {
            s.at(&p);
        }
        done += p.len();
        acc = fold(acc, &p);
        if let Err(e) = report(&mut opts, (done * size) as u64, total) {
            result = Err(e);
            break;
        }
    }
    if let Some(s) = stream {
        s.finish();
    }
    result.map(|()| acc)
}

pub(super) fn fold_piece<T: Copy, R>(
    p: &ArrayViewD<'_, T>,
    acc: R,
    slice: impl Fn(R, &[T]) -> R,
    elem: impl Fn(R, T) -> R,
) -> R {
    match p.as_slice_memory_order() {
        Some(s) => slice(acc, s),
        // (a 0-d view is always contiguous, so `p` has an axis here)
        None => {
            // Lane by lane: each lane along the last axis is often contiguous.
            let mut acc = acc;
            for lane in p.lanes(ndarray::Axis(p.ndim().saturating_sub(1))) {
                match lane.as_slice_memory_order() {
                    Some(s) => acc = slice(acc, s),
                    None => {
                        for &x in lane.iter() {
                            acc = elem(acc, x);
                        }
                    }
                }
            }
            acc
        }
    }
}

/// The sum of every element of `a`, with options (chunk size, progress).
///
/// # Errors
/// [`Error::Cancelled`] when the progress callback cancels.
///
/// ```
/// use ndarray_mmap::ops::{sum_with, StreamOptions};
/// let a = ndarray::Array1::from_elem(1000, 0.1f32);
/// let s = sum_with(&a, StreamOptions::new().chunk_bytes(64))?;
/// assert!((s - 100.0).abs() < 1e-4);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn sum_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    opts: StreamOptions<'_>,
) -> Result<T::Sum, Error> {
    fold_stream(a.source_parts(), opts, T::sum_zero(), |acc, p| {
        fold_piece(
            p,
            acc,
            |acc, s| T::sum_add(acc, T::sum_slice(s)),
            |acc, x| T::sum_add(acc, x.to_sum()),
        )
    })
}

/// The sum of every element of `a`: `f64` for floats (accumulated in `f64`), `i64`/`u64`
/// for integers (wrapping, as numpy's default integer sum). Streams through a mapped
/// array in chunks without keeping it resident.
///
/// # Errors
/// Only from the streaming machinery ([`sum_with`]); never for in-memory arrays.
///
/// ```
/// let a = ndarray::array![[1u8, 2], [3, 250]];
/// assert_eq!(ndarray_mmap::ops::sum(&a)?, 256u64);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn sum<T: Numeric, S: Source<T> + ?Sized>(a: &S) -> Result<T::Sum, Error> {
    sum_with(a, StreamOptions::new())
}

/// The arithmetic mean of `a` (accumulated in `f64`), `None` when `a` is empty, with
/// options.
///
/// # Errors
/// [`Error::Cancelled`] when the progress callback cancels.
///
/// ```
/// use ndarray_mmap::ops::{mean_with, StreamOptions};
/// assert_eq!(mean_with(&ndarray::array![1i64, 2, 6], StreamOptions::new())?, Some(3.0));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn mean_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    opts: StreamOptions<'_>,
) -> Result<Option<f64>, Error> {
    let parts = a.source_parts();
    let n = parts.0.len();
    if n == 0 {
        return Ok(None);
    }
    let total = fold_stream(parts, opts, 0.0f64, |acc, p| {
        fold_piece(
            p,
            acc,
            |acc, s| acc + fold8(s, 0.0, T::to_f64, |x, y| x + y),
            |acc, x| acc + x.to_f64(),
        )
    })?;
    Ok(Some(total / n as f64))
}

/// The arithmetic mean of `a` (accumulated in `f64`, as numpy does for integers), `None`
/// when `a` is empty.
///
/// # Errors
/// As for [`mean_with`]; never for in-memory arrays.
///
/// ```
/// assert_eq!(ndarray_mmap::ops::mean(&ndarray::array![1.0f32, 2.0])?, Some(1.5));
/// assert_eq!(ndarray_mmap::ops::mean(&ndarray::Array1::<u8>::zeros(0))?, None);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn mean<T: Numeric, S: Source<T> + ?Sized>(a: &S) -> Result<Option<f64>, Error> {
    mean_with(a, StreamOptions::new())
}

pub(super) fn extremum<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    opts: StreamOptions<'_>,
    pick: fn(T, T) -> T,
) -> Result<Option<T>, Error> {
    fold_stream(a.source_parts(), opts, None, |acc: Option<T>, p| {
        fold_piece(
            p,
            acc,
            |acc, s| {
                s.iter()
                    .copied()
                    .fold(acc, |m, x| Some(m.map_or(x, |m| pick(m, x))))
            },
            |m, x| Some(m.map_or(x, |m| pick(m, x))),
        )
    })
}

/// The smallest element of `a` (NaN if any is NaN, as `np.min`), `None` when `a` is
/// empty, with options.
///
/// # Errors
/// [`Error::Cancelled`] when the progress callback cancels.
///
/// ```
/// use ndarray_mmap::ops::{min_with, StreamOptions};
/// assert_eq!(min_with(&ndarray::array![3, -1, 2], StreamOptions::new())?, Some(-1));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn min_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    opts: StreamOptions<'_>,
) -> Result<Option<T>, Error> {
    extremum(a, opts, T::elem_min)
}

/// The smallest element of `a` (NaN if any is NaN, as `np.min`), `None` when empty.
///
/// # Errors
/// As for [`min_with`]; never for in-memory arrays.
///
/// ```
/// assert_eq!(ndarray_mmap::ops::min(&ndarray::array![2.5f32, 1.5])?, Some(1.5));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn min<T: Numeric, S: Source<T> + ?Sized>(a: &S) -> Result<Option<T>, Error> {
    min_with(a, StreamOptions::new())
}

/// The largest element of `a` (NaN if any is NaN, as `np.max`), `None` when `a` is
/// empty, with options.
///
/// # Errors
/// [`Error::Cancelled`] when the progress callback cancels.
///
/// ```
/// use ndarray_mmap::ops::{max_with, StreamOptions};
/// assert_eq!(max_with(&ndarray::array![3u16, 9, 2], StreamOptions::new())?, Some(9));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn max_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    opts: StreamOptions<'_>,
) -> Result<Option<T>, Error> {
    extremum(a, opts, T::elem_max)
}

/// The largest element of `a` (NaN if any is NaN, as `np.max`), `None` when empty.
///
/// # Errors
/// As for [`max_with`]; never for in-memory arrays.
///
/// ```
/// assert_eq!(ndarray_mmap::ops::max(&ndarray::array![[1i8], [-3]])?, Some(1));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn max<T: Numeric, S: Source<T> + ?Sized>(a: &S) -> Result<Option<T>, Error> {
    max_with(a, StreamOptions::new())
}
