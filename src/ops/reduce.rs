//! Whole-array reductions: sum, mean, min, max.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, Zip};

use crate::error::Error;

use super::numeric::{Numeric, fold8};
use super::operand::Source;
use super::options::StreamOptions;
use super::part::Input;
use super::part::sealed::Part;
use super::run::run;

// ---------------------------------------------------------------------------------------
// Reductions.

/// Folds `a` piece by piece in its memory order, with the paging hooks if it is mapped.
pub(super) fn fold_stream<T: Clone + Sync + 'static, R>(
    a: Input<'_, T>,
    opts: StreamOptions<'_>,
    init: R,
    mut fold: impl FnMut(R, &ArrayViewD<'_, T>) -> R,
) -> Result<R, Error> {
    let shape = a.shape();
    let mut acc = Some(init);
    run(&mut (a,), &shape, None, opts, |(p,), s| {
        if let Some(r) = acc.take() {
            acc = Some(fold(r, &p.piece(s)));
        }
    })?;
    // `run` hands `acc` back after every piece.
    Ok(acc.expect("the accumulator is put back after every piece"))
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
    fold_stream(a.input(), opts, T::sum_zero(), |acc, p| {
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
    let parts = a.input();
    let n = parts.shape().iter().product::<usize>();
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
    pick: impl Fn(T, T) -> T + Copy,
    slice: impl Fn(&[T]) -> Option<T> + Copy,
) -> Result<Option<T>, Error> {
    fold_stream(a.input(), opts, None, |acc: Option<T>, p| {
        fold_piece(
            p,
            acc,
            |acc, s| match (acc, slice(s)) {
                (Some(m), Some(x)) => Some(pick(m, x)),
                (m, x) => m.or(x),
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
    extremum(a, opts, T::elem_min, T::min_slice)
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
    extremum(a, opts, T::elem_max, T::max_slice)
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

// ---------------------------------------------------------------------------------------
// Reductions along an axis: one pass over the file in its memory order, whatever the
// axis, accumulating into an array of the other axes' shape.

/// Folds `a` along `axis` into an array of the other axes' shape, reading `a` once in
/// its memory order (with its paging hooks): each piece is added into the part of the
/// result it covers. `lane` folds one lane along the axis (when the axis is the
/// innermost in memory), `elem` one element.
fn fold_axis_stream<T: Copy + Sync + 'static, A: Clone>(
    a: Input<'_, T>,
    axis: Axis,
    init: A,
    opts: StreamOptions<'_>,
    lane: impl Fn(&mut A, &ArrayViewD<'_, T>) + Copy,
    elem: impl Fn(&mut A, T) + Copy,
) -> Result<ArrayD<A>, Error> {
    let (shape, strides) = (a.shape(), a.strides());
    let ax = axis.index();
    if ax >= shape.len() {
        return Err(Error::Axis {
            axis: ax,
            shape,
            empty: false,
        });
    }
    let mut out_shape = shape.clone();
    out_shape.remove(ax);
    let mut out = ArrayD::from_elem(out_shape, init);
    // Whether the axis is the innermost in memory: then lanes along it are contiguous.
    let innermost = shape.iter().product::<usize>() > 1
        && (0..shape.len())
            .filter(|&k| shape[k] > 1 && k != ax)
            .all(|k| strides[k].unsigned_abs() > strides[ax].unsigned_abs());
    run(&mut (a,), &shape, None, opts, |(a,), piece| {
        let p = a.piece(piece);
        let mut o: ArrayViewMutD<'_, A> = out.slice_each_axis_mut(|d| {
            let k = d.axis.index();
            piece[if k < ax { k } else { k + 1 }]
        });
        if innermost {
            Zip::from(&mut o)
                .and(p.lanes(axis))
                .for_each(|o, l| lane(o, &l.into_dyn()));
        } else {
            for plane in p.axis_iter(axis) {
                Zip::from(&mut o).and(&plane).for_each(|o, &x| elem(o, x));
            }
        }
    })?;
    Ok(out)
}

/// Sums `a` along `axis`, with options.
///
/// # Errors
/// [`Error::Axis`] when `axis` does not exist; [`Error::Cancelled`] when the progress
/// callback cancels.
///
/// ```
/// use ndarray::{array, Axis};
/// use ndarray_mmap::ops::{sum_axis_with, StreamOptions};
/// let a = array![[1, 2, 3], [4, 5, 6]];
/// let s = sum_axis_with(&a, Axis(1), StreamOptions::new().chunk_bytes(8))?;
/// assert_eq!(s, array![6i64, 15].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn sum_axis_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
    opts: StreamOptions<'_>,
) -> Result<ArrayD<T::Sum>, Error> {
    fold_axis_stream(
        a.input(),
        axis,
        T::sum_zero(),
        opts,
        |acc, l| {
            *acc = fold_piece(
                l,
                *acc,
                |a, s| T::sum_add(a, T::sum_slice(s)),
                |a, x| T::sum_add(a, x.to_sum()),
            )
        },
        |acc, x| *acc = T::sum_add(*acc, x.to_sum()),
    )
}

/// Sums `a` along `axis`: an array of the other axes' shape, of `T::Sum` (`i64`/`u64`
/// wrapping for integers, `f64` for floats), in one sequential pass over a mapped file
/// whatever the axis and the order. `ops::sum_axis(&m, Axis(0))` are column sums.
///
/// # Errors
/// [`Error::Axis`] when `axis` does not exist.
///
/// ```
/// use ndarray::{array, Axis};
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// assert_eq!(ndarray_mmap::ops::sum_axis(&a, Axis(0))?, array![4.0, 6.0].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn sum_axis<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
) -> Result<ArrayD<T::Sum>, Error> {
    sum_axis_with(a, axis, StreamOptions::new())
}

/// The mean of `a` along `axis` (accumulated in `f64`, as numpy does for integers), with
/// options. An empty axis gives NaN, as numpy's (which also warns).
///
/// # Errors
/// As for [`sum_axis_with`].
///
/// ```
/// use ndarray::{array, Axis};
/// use ndarray_mmap::ops::{mean_axis_with, StreamOptions};
/// let m = mean_axis_with(&array![[1, 2], [3, 5]], Axis(0), StreamOptions::new())?;
/// assert_eq!(m, array![2.0, 3.5].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn mean_axis_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
    opts: StreamOptions<'_>,
) -> Result<ArrayD<f64>, Error> {
    let parts = a.input();
    let n = parts.shape().get(axis.index()).copied().unwrap_or(0);
    let sums = fold_axis_stream(
        parts,
        axis,
        0.0f64,
        opts,
        |acc, l| {
            *acc = fold_piece(
                l,
                *acc,
                |a, s| a + fold8(s, 0.0, T::to_f64, |x, y| x + y),
                |a, x| a + x.to_f64(),
            )
        },
        |acc, x| *acc += x.to_f64(),
    )?;
    Ok(sums.mapv_into(|s| s / n as f64))
}

/// The mean of `a` along `axis`, as [`mean_axis_with`] with default options.
///
/// # Errors
/// As for [`sum_axis`].
///
/// ```
/// use ndarray::{array, Axis};
/// let m = ndarray_mmap::ops::mean_axis(&array![[1.0f64, 2.0], [3.0, 4.0]], Axis(1))?;
/// assert_eq!(m, array![1.5, 3.5].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn mean_axis<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
) -> Result<ArrayD<f64>, Error> {
    mean_axis_with(a, axis, StreamOptions::new())
}

fn extremum_axis<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
    opts: StreamOptions<'_>,
    pick: impl Fn(T, T) -> T + Copy,
    slice: impl Fn(&[T]) -> Option<T> + Copy,
) -> Result<ArrayD<T>, Error> {
    let parts = a.input();
    if parts.shape().get(axis.index()) == Some(&0) {
        return Err(Error::Axis {
            axis: axis.index(),
            shape: parts.shape(),
            empty: true,
        });
    }
    let step = move |m: Option<T>, x: Option<T>| match (m, x) {
        (Some(m), Some(x)) => Some(pick(m, x)),
        (m, x) => m.or(x),
    };
    let picked = fold_axis_stream(
        parts,
        axis,
        None,
        opts,
        move |acc, l| *acc = fold_piece(l, *acc, |m, s| step(m, slice(s)), |m, x| step(m, Some(x))),
        move |acc, x| *acc = step(*acc, Some(x)),
    )?;
    // Every accumulator saw at least one element: the axis is not empty.
    Ok(picked.mapv_into_any(|m| m.expect("a non-empty axis gives every lane a value")))
}

/// The smallest element along `axis` (NaN if any is NaN, as `np.min`), with options.
///
/// # Errors
/// [`Error::Axis`] when `axis` does not exist or has length 0 (numpy refuses that too);
/// [`Error::Cancelled`] when the progress callback cancels.
///
/// ```
/// use ndarray::{array, Axis};
/// use ndarray_mmap::ops::{min_axis_with, StreamOptions};
/// let m = min_axis_with(&array![[3, 1], [2, 5]], Axis(1), StreamOptions::new())?;
/// assert_eq!(m, array![1, 2].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn min_axis_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
    opts: StreamOptions<'_>,
) -> Result<ArrayD<T>, Error> {
    extremum_axis(a, axis, opts, T::elem_min, T::min_slice)
}

/// The smallest element along `axis` (NaN if any is NaN, as `np.min`).
///
/// # Errors
/// As for [`min_axis_with`].
///
/// ```
/// use ndarray::{array, Axis};
/// let m = ndarray_mmap::ops::min_axis(&array![[3.0, f64::NAN], [2.0, 5.0]], Axis(0))?;
/// assert_eq!(m[0], 2.0);
/// assert!(m[1].is_nan());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn min_axis<T: Numeric, S: Source<T> + ?Sized>(a: &S, axis: Axis) -> Result<ArrayD<T>, Error> {
    min_axis_with(a, axis, StreamOptions::new())
}

/// The largest element along `axis` (NaN if any is NaN, as `np.max`), with options.
///
/// # Errors
/// As for [`min_axis_with`].
///
/// ```
/// use ndarray::{array, Axis};
/// use ndarray_mmap::ops::{max_axis_with, StreamOptions};
/// let m = max_axis_with(&array![[3, 1], [2, 5]], Axis(0), StreamOptions::new())?;
/// assert_eq!(m, array![3, 5].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn max_axis_with<T: Numeric, S: Source<T> + ?Sized>(
    a: &S,
    axis: Axis,
    opts: StreamOptions<'_>,
) -> Result<ArrayD<T>, Error> {
    extremum_axis(a, axis, opts, T::elem_max, T::max_slice)
}

/// The largest element along `axis` (NaN if any is NaN, as `np.max`).
///
/// # Errors
/// As for [`min_axis_with`].
///
/// ```
/// use ndarray::{array, Axis};
/// let m = ndarray_mmap::ops::max_axis(&array![[3, 1], [2, 5]], Axis(1))?;
/// assert_eq!(m, array![3, 5].into_dyn());
/// let empty = ndarray::Array2::<i32>::zeros((2, 0));
/// assert!(ndarray_mmap::ops::max_axis(&empty, Axis(1)).is_err());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn max_axis<T: Numeric, S: Source<T> + ?Sized>(a: &S, axis: Axis) -> Result<ArrayD<T>, Error> {
    max_axis_with(a, axis, StreamOptions::new())
}
