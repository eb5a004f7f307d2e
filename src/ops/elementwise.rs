//! The elementwise functions: `c = f(a, b)` into an output, and in place.

use ndarray::Zip;

use crate::error::Error;

use super::engine::zip_stream;
use super::numeric::Numeric;
use super::operand::{Sink, Source};
use super::options::StreamOptions;
use super::simd;

/// `c = f(a, b)` elementwise, `a` and `b` broadcast to `c`'s shape, with options.
///
/// # Errors
/// [`Error::Broadcast`] when an input's shape cannot be broadcast to the output's
/// (nothing is written then); [`Error::Cancelled`] when the progress callback cancels;
/// an I/O error when write-back of a mapped output fails.
///
/// ```
/// use ndarray::array;
/// use ndarray_mmap::ops::{zip_map_into_with, StreamOptions};
/// let a = array![1u8, 2, 3];
/// let b = array![0.5f32, 0.25, 2.0];
/// let mut c = ndarray::Array1::<f64>::zeros(3);
/// zip_map_into_with(&a, &b, &mut c, |x, y| f64::from(x) * f64::from(y), StreamOptions::new())?;
/// assert_eq!(c, array![0.5, 0.5, 6.0]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn zip_map_into_with<A, B, C, SA, SB, SC, F>(
    a: &SA,
    b: &SB,
    c: &mut SC,
    f: F,
    opts: StreamOptions<'_>,
) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    B: Copy + Send + Sync + 'static,
    C: Copy + Send + Sync + 'static,
    SA: Source<A> + ?Sized,
    SB: Source<B> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A, B) -> C + Send + Sync,
{
    zip_stream(
        Some(a.input()),
        Some(b.input()),
        c.output(),
        opts,
        |mut pc, pa, pb, par| {
            let (Some(pa), Some(pb)) = (pa, pb) else {
                unreachable!("the engine slices every input it is given")
            };
            if !par
                && simd::same_contiguous(&[pc.strides(), pa.strides(), pb.strides()])
                && let (Some(c), Some(a), Some(b)) = (
                    pc.as_slice_memory_order_mut(),
                    pa.as_slice_memory_order(),
                    pb.as_slice_memory_order(),
                )
            {
                return simd::zip3(c, a, b, &f);
            }
            zip_for_each!(Zip::from(&mut pc).and(&pa).and(&pb), par, |c, &a, &b| *c =
                f(a, b));
        },
    )
}

/// `c = f(a, b)` elementwise, `a` and `b` broadcast to `c`'s shape. Element types may
/// differ. Streams when operands are mapped (see the [module docs](crate::ops)).
///
/// # Errors
/// As for [`zip_map_into_with`].
///
/// ```
/// use ndarray::array;
/// let a = array![[1i32, 2], [3, 4]];
/// let mut c = ndarray::Array2::<bool>::from_elem((2, 2), false);
/// ndarray_mmap::zip_map_into(&a, &array![2, 3], &mut c, |x, y| x > y)?;
/// assert_eq!(c, array![[false, false], [true, true]]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn zip_map_into<A, B, C, SA, SB, SC, F>(a: &SA, b: &SB, c: &mut SC, f: F) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    B: Copy + Send + Sync + 'static,
    C: Copy + Send + Sync + 'static,
    SA: Source<A> + ?Sized,
    SB: Source<B> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A, B) -> C + Send + Sync,
{
    zip_map_into_with(a, b, c, f, StreamOptions::new())
}

/// `c = f(a)` elementwise, `a` broadcast to `c`'s shape, with options.
///
/// # Errors
/// As for [`zip_map_into_with`].
///
/// ```
/// use ndarray_mmap::ops::{map_into_with, StreamOptions};
/// let a = ndarray::array![1.0f64, 4.0, 9.0];
/// let mut c = ndarray::Array1::<f64>::zeros(3);
/// map_into_with(&a, &mut c, f64::sqrt, StreamOptions::new().chunk_bytes(8))?;
/// assert_eq!(c, ndarray::array![1.0, 2.0, 3.0]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn map_into_with<A, C, SA, SC, F>(
    a: &SA,
    c: &mut SC,
    f: F,
    opts: StreamOptions<'_>,
) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    C: Copy + Send + Sync + 'static,
    SA: Source<A> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A) -> C + Send + Sync,
{
    zip_stream::<A, (), C, _>(
        Some(a.input()),
        None,
        c.output(),
        opts,
        |mut pc, pa, _, par| {
            let Some(pa) = pa else {
                unreachable!("the engine slices every input it is given")
            };
            if !par
                && simd::same_contiguous(&[pc.strides(), pa.strides()])
                && let (Some(c), Some(a)) =
                    (pc.as_slice_memory_order_mut(), pa.as_slice_memory_order())
            {
                return simd::zip2(c, a, &f);
            }
            zip_for_each!(Zip::from(&mut pc).and(&pa), par, |c, &a| *c = f(a));
        },
    )
}

/// `c = f(a)` elementwise, `a` broadcast to `c`'s shape.
///
/// # Errors
/// As for [`zip_map_into_with`].
///
/// ```
/// let a = ndarray::array![1u8, 200];
/// let mut c = ndarray::Array1::<u16>::zeros(2);
/// ndarray_mmap::map_into(&a, &mut c, |x| u16::from(x) * 2)?;
/// assert_eq!(c, ndarray::array![2, 400]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn map_into<A, C, SA, SC, F>(a: &SA, c: &mut SC, f: F) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    C: Copy + Send + Sync + 'static,
    SA: Source<A> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A) -> C + Send + Sync,
{
    map_into_with(a, c, f, StreamOptions::new())
}

macro_rules! binary_op {
    ($name:ident, $name_with:ident, $method:ident, $sym:literal, $example:literal) => {
        #[doc = concat!("`c = a ", $sym, " b` elementwise, with options (chunk size, threads, progress).")]
        ///
        /// # Errors
        /// As for [`zip_map_into_with`].
        ///
        /// ```
        /// use ndarray_mmap::ops::StreamOptions;
        /// let a = ndarray::array![[6i32, 8], [10, 12]];
        /// let b = ndarray::array![2i32, 4];
        /// let mut c = ndarray::Array2::<i32>::zeros((2, 2));
        #[doc = concat!("ndarray_mmap::ops::", stringify!($name_with), "(&a, &b, &mut c, StreamOptions::new())?;")]
        #[doc = concat!("assert_eq!(c[[1, 1]], 12 ", $sym, " 4);")]
        /// # Ok::<(), ndarray_mmap::Error>(())
        /// ```
        pub fn $name_with<T, SA, SB, SC>(
            a: &SA,
            b: &SB,
            c: &mut SC,
            opts: StreamOptions<'_>,
        ) -> Result<(), Error>
        where
            T: Numeric,
            SA: Source<T> + ?Sized,
            SB: Source<T> + ?Sized,
            SC: Sink<T> + ?Sized,
        {
            zip_map_into_with(a, b, c, T::$method, opts)
        }

        #[doc = concat!("`c = a ", $sym, " b` elementwise, `a` and `b` broadcast to `c`'s shape.")]
        ///
        /// Works on any ndarray arrays or views (any layout), and streams through files
        /// when given mapped owners ([`MmapArray`](crate::MmapArray), [`MmapArrayMut`](crate::MmapArrayMut)); see the
        /// [module docs](crate::ops). Integers wrap and never panic (see [`Numeric`]).
        ///
        /// # Errors
        /// [`Error::Broadcast`] when `a` or `b` cannot be broadcast to `c`'s shape
        /// (nothing is written then); an I/O error when write-back of a mapped output
        /// fails.
        ///
        /// ```
        #[doc = $example]
        /// # Ok::<(), ndarray_mmap::Error>(())
        /// ```
        pub fn $name<T, SA, SB, SC>(a: &SA, b: &SB, c: &mut SC) -> Result<(), Error>
        where
            T: Numeric,
            SA: Source<T> + ?Sized,
            SB: Source<T> + ?Sized,
            SC: Sink<T> + ?Sized,
        {
            $name_with(a, b, c, StreamOptions::new())
        }
    };
}

binary_op!(
    add_into,
    add_into_with,
    elem_add,
    "+",
    "let a = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
let mut c = ndarray::Array2::<f32>::zeros((2, 2));
ndarray_mmap::add_into(&a.view(), &a.t(), &mut c.view_mut())?; // any layouts
assert_eq!(c, ndarray::array![[2.0, 5.0], [5.0, 8.0]]);
let err = ndarray_mmap::add_into(&a, &ndarray::array![1.0f32, 2.0, 3.0], &mut c).unwrap_err();
assert_eq!(err.to_string(), \"cannot broadcast the second input (shape [3]) to the output (shape [2, 2])\");"
);
binary_op!(
    sub_into,
    sub_into_with,
    elem_sub,
    "-",
    "let a = ndarray::array![0u8, 5];
let mut c = ndarray::Array1::<u8>::zeros(2);
ndarray_mmap::sub_into(&a, &ndarray::array![1u8], &mut c)?;
assert_eq!(c, ndarray::array![255, 4]); // wraps"
);
binary_op!(
    mul_into,
    mul_into_with,
    elem_mul,
    "*",
    "let a = ndarray::array![3.0f64, -2.0];
let mut c = ndarray::Array1::<f64>::zeros(2);
ndarray_mmap::mul_into(&a, &a, &mut c)?;
assert_eq!(c, ndarray::array![9.0, 4.0]);"
);
binary_op!(
    div_into,
    div_into_with,
    elem_div,
    "/",
    "let a = ndarray::array![7i32, 7, i32::MIN];
let mut c = ndarray::Array1::<i32>::zeros(3);
ndarray_mmap::div_into(&a, &ndarray::array![2, 0, -1], &mut c)?;
assert_eq!(c, ndarray::array![3, 0, i32::MIN]); // x / 0 == 0, MIN / -1 wraps"
);

// ---------------------------------------------------------------------------------------
// In place: `a = f(a, b)`, numpy's `np.add(a, b, out=a)` or `a += b`.

/// `a = f(a, b)` elementwise in place, `b` broadcast to `a`'s shape, with options.
///
/// The in-place form of [`zip_map_into_with`] (which the borrow rules forbid calling as
/// `zip_map_into(&a, &b, &mut a, f)`): `a` is read and written chunk by chunk, in its
/// memory order; a mapped `a` is read ahead and its finished chunks are written back as
/// for any output.
///
/// # Errors
/// [`Error::Broadcast`] when `b`'s shape cannot be broadcast to `a`'s (nothing is
/// written then); [`Error::Cancelled`] when the progress callback cancels (the first
/// `done` bytes of `a` in its memory order are updated, the rest unchanged); an I/O
/// error when write-back of a mapped `a` fails.
///
/// ```
/// use ndarray::array;
/// use ndarray_mmap::ops::{zip_map_inplace_with, StreamOptions};
/// let mut a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let scale = array![10u8, 100];
/// zip_map_inplace_with(&mut a, &scale, |x, s| x * f32::from(s), StreamOptions::new())?;
/// assert_eq!(a, array![[10.0, 200.0], [30.0, 400.0]]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn zip_map_inplace_with<A, B, SA, SB, F>(
    a: &mut SA,
    b: &SB,
    f: F,
    opts: StreamOptions<'_>,
) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    B: Copy + Send + Sync + 'static,
    SA: Sink<A> + ?Sized,
    SB: Source<B> + ?Sized,
    F: Fn(A, B) -> A + Send + Sync,
{
    zip_stream::<(), B, A, _>(
        None,
        Some(b.input()),
        a.output(),
        opts,
        |mut pa, _, pb, par| {
            let Some(pb) = pb else {
                unreachable!("the engine slices every input it is given")
            };
            if !par
                && simd::same_contiguous(&[pa.strides(), pb.strides()])
                && let (Some(a), Some(b)) =
                    (pa.as_slice_memory_order_mut(), pb.as_slice_memory_order())
            {
                return simd::update2(a, b, &f);
            }
            zip_for_each!(Zip::from(&mut pa).and(&pb), par, |a, &b| *a = f(*a, b));
        },
    )
}

/// `a = f(a, b)` elementwise in place, `b` broadcast to `a`'s shape. The element types
/// may differ. Streams when `a` or `b` is mapped (see the [module docs](crate::ops)).
///
/// # Errors
/// As for [`zip_map_inplace_with`].
///
/// ```
/// use ndarray::array;
/// let mut a = array![[1i32, 2], [3, 4]];
/// ndarray_mmap::ops::zip_map_inplace(&mut a, &array![true, false], |x, keep| {
///     if keep { x } else { 0 }
/// })?;
/// assert_eq!(a, array![[1, 0], [3, 0]]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn zip_map_inplace<A, B, SA, SB, F>(a: &mut SA, b: &SB, f: F) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    B: Copy + Send + Sync + 'static,
    SA: Sink<A> + ?Sized,
    SB: Source<B> + ?Sized,
    F: Fn(A, B) -> A + Send + Sync,
{
    zip_map_inplace_with(a, b, f, StreamOptions::new())
}

/// `a = f(a)` elementwise in place, with options.
///
/// # Errors
/// [`Error::Cancelled`] when the progress callback cancels; an I/O error when
/// write-back of a mapped `a` fails. Never for in-memory arrays without a callback.
///
/// ```
/// use ndarray_mmap::ops::{map_inplace_with, StreamOptions};
/// let mut a = ndarray::array![1.0f64, 4.0, 9.0];
/// map_inplace_with(&mut a, f64::sqrt, StreamOptions::new().chunk_bytes(8))?;
/// assert_eq!(a, ndarray::array![1.0, 2.0, 3.0]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn map_inplace_with<A, SA, F>(a: &mut SA, f: F, opts: StreamOptions<'_>) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    SA: Sink<A> + ?Sized,
    F: Fn(A) -> A + Send + Sync,
{
    zip_stream::<(), (), A, _>(None, None, a.output(), opts, |mut pa, _, _, par| {
        if !par && let Some(a) = pa.as_slice_memory_order_mut() {
            return simd::update1(a, &f);
        }
        zip_for_each!(Zip::from(&mut pa), par, |a| *a = f(*a));
    })
}

/// `a = f(a)` elementwise in place; streams when `a` is a mapped [`MmapArrayMut`](crate::MmapArrayMut).
///
/// # Errors
/// As for [`map_inplace_with`].
///
/// ```
/// let mut a = ndarray::array![[1u8, 200], [3, 4]];
/// ndarray_mmap::ops::map_inplace(&mut a.view_mut(), |x| x.wrapping_mul(2))?;
/// assert_eq!(a, ndarray::array![[2, 144], [6, 8]]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn map_inplace<A, SA, F>(a: &mut SA, f: F) -> Result<(), Error>
where
    A: Copy + Send + Sync + 'static,
    SA: Sink<A> + ?Sized,
    F: Fn(A) -> A + Send + Sync,
{
    map_inplace_with(a, f, StreamOptions::new())
}

macro_rules! assign_op {
    ($name:ident, $name_with:ident, $into:ident, $method:ident, $sym:literal, $example:literal) => {
        #[doc = concat!("`a ", $sym, "= b` elementwise in place, with options (chunk size, threads, progress).")]
        ///
        /// # Errors
        /// As for [`zip_map_inplace_with`].
        ///
        /// ```
        /// use ndarray_mmap::ops::StreamOptions;
        /// let mut a = ndarray::array![[6i32, 8], [10, 12]];
        /// let b = ndarray::array![2i32, 4];
        #[doc = concat!("ndarray_mmap::ops::", stringify!($name_with), "(&mut a, &b, StreamOptions::new())?;")]
        #[doc = concat!("assert_eq!(a[[1, 1]], 12 ", $sym, " 4);")]
        /// # Ok::<(), ndarray_mmap::Error>(())
        /// ```
        pub fn $name_with<T, SA, SB>(a: &mut SA, b: &SB, opts: StreamOptions<'_>) -> Result<(), Error>
        where
            T: Numeric,
            SA: Sink<T> + ?Sized,
            SB: Source<T> + ?Sized,
        {
            zip_map_inplace_with(a, b, T::$method, opts)
        }

        #[doc = concat!("`a ", $sym, "= b` elementwise in place, `b` broadcast to `a`'s shape: numpy's `a ", $sym, "= b` on a memmap.")]
        ///
        #[doc = concat!("The in-place form of [`", stringify!($into), "`]. Works on any ndarray arrays or views")]
        /// (any layout), and streams through files when given mapped owners (`&mut
        /// MmapArrayMut`, [`MmapArray`](crate::MmapArray)); see the [module docs](crate::ops). Integers wrap
        /// and never panic (see [`Numeric`]).
        ///
        /// # Errors
        /// [`Error::Broadcast`] when `b` cannot be broadcast to `a`'s shape (nothing is
        /// written then); an I/O error when write-back of a mapped `a` fails.
        ///
        /// ```
        #[doc = $example]
        /// # Ok::<(), ndarray_mmap::Error>(())
        /// ```
        pub fn $name<T, SA, SB>(a: &mut SA, b: &SB) -> Result<(), Error>
        where
            T: Numeric,
            SA: Sink<T> + ?Sized,
            SB: Source<T> + ?Sized,
        {
            $name_with(a, b, StreamOptions::new())
        }
    };
}

assign_op!(
    add_assign,
    add_assign_with,
    add_into,
    elem_add,
    "+",
    "let mut a = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
ndarray_mmap::ops::add_assign(&mut a, &ndarray::array![10.0f32, 20.0])?; // a row to every row
assert_eq!(a, ndarray::array![[11.0, 22.0], [13.0, 24.0]]);
let err = ndarray_mmap::ops::add_assign(&mut a, &ndarray::array![1.0f32, 2.0, 3.0]).unwrap_err();
assert_eq!(err.to_string(), \"cannot broadcast the second input (shape [3]) to the output (shape [2, 2])\");
assert_eq!(a, ndarray::array![[11.0, 22.0], [13.0, 24.0]]); // unchanged"
);
assign_op!(
    sub_assign,
    sub_assign_with,
    sub_into,
    elem_sub,
    "-",
    "let mut a = ndarray::array![0u8, 5];
ndarray_mmap::ops::sub_assign(&mut a.view_mut(), &ndarray::array![1u8])?;
assert_eq!(a, ndarray::array![255, 4]); // wraps"
);
assign_op!(
    mul_assign,
    mul_assign_with,
    mul_into,
    elem_mul,
    "*",
    "let mut a = ndarray::array![3.0f64, -2.0];
let b = a.clone();
ndarray_mmap::ops::mul_assign(&mut a, &b)?;
assert_eq!(a, ndarray::array![9.0, 4.0]);"
);
assign_op!(
    div_assign,
    div_assign_with,
    div_into,
    elem_div,
    "/",
    "let mut a = ndarray::array![7i32, 7, i32::MIN];
ndarray_mmap::ops::div_assign(&mut a, &ndarray::array![2, 0, -1])?;
assert_eq!(a, ndarray::array![3, 0, i32::MIN]); // x / 0 == 0, MIN / -1 wraps"
);
