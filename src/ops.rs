//! Elementwise arithmetic and reductions that stream through mapped files.
//!
//! Every function takes its operands in two forms:
//! - any ndarray array or view, of any layout (C, Fortran, sliced, strided, reversed):
//!   `add_into(&a.view(), &b.view(), &mut c.view_mut())`;
//! - the mapped owners [`MmapArray`] and [`MmapArrayMut`]: `add_into(&a, &b, &mut c)`.
//!   This is the streaming path: the work goes in chunks (8 MiB by default) in the
//!   output's file order, the kernel is told the inputs are read sequentially, input pages
//!   are dropped from the process once a chunk is done, and finished output chunks are
//!   written back while the next ones are computed (at most two chunks of dirty pages in
//!   flight). The process's resident memory stays at a few chunks whatever the array size.
//!
//! Inputs broadcast to the output's shape as in numpy's `out=`; integer arithmetic wraps
//! (in debug and release builds alike) and never panics.
//!
//! In place, numpy's `a += b` on a memmap: [`add_assign`]`(&mut a, &b)` and its family,
//! [`zip_map_inplace`] and [`map_inplace`] take the output as their first operand and
//! stream the same way.
//!
//! ```
//! use ndarray::{array, Array2};
//! use ndarray_mmap::add_into;
//!
//! let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
//! let row = array![10.0f32, 20.0, 30.0];
//! let mut c = Array2::<f32>::zeros((2, 3));
//! add_into(&a, &row, &mut c)?; // the row is added to every row of `a`
//! assert_eq!(c, array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]);
//! # Ok::<(), ndarray_mmap::Error>(())
//! ```
//!
//! On files (the streaming path), with progress reported per chunk:
//! ```
//! use ndarray_mmap::{create_array, ops::{self, StreamOptions}};
//! use std::ops::ControlFlow;
//! # let dir = tempfile::tempdir()?;
//! let mut a = unsafe { create_array::<f32>(dir.path().join("a.f32"), [1000, 24]) }?;
//! let mut b = unsafe { create_array::<f32>(dir.path().join("b.f32"), [1000, 24]) }?;
//! let mut c = unsafe { create_array::<f32>(dir.path().join("c.f32"), [1000, 24]) }?;
//! a.view_mut().fill(1.0);
//! b.view_mut().fill(2.0);
//! let mut chunks = 0;
//! let opts = StreamOptions::new().chunk_bytes(8192).progress(|p| {
//!     chunks += 1;
//!     assert!(p.done <= p.total);
//!     ControlFlow::Continue(())
//! });
//! ops::add_into_with(&a, &b, &mut c, opts)?;
//! assert_eq!(chunks, 12); // 96 000 bytes in 8 KiB chunks
//! assert_eq!(ops::sum(&c)?, 72_000.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::ops::ControlFlow;

use ndarray::{ArrayBase, ArrayViewD, ArrayViewMutD, Data, DataMut, Dimension, Slice, Zip};

use crate::element::Element;
use crate::error::Error;
use crate::map::stream::{InPager, OutPager};
use crate::map::{MmapArray, MmapArrayMut};

/// Default chunk size of the streaming path, in bytes of output (or of input, for the
/// reductions). Chosen by measurement (`benches/out_of_core.sh`): at a 64 MiB memory
/// limit, 16 MiB chunks (two inputs, the output and its write-back in flight, plus the
/// kernel's read-ahead) no longer fit and pages get evicted before use; 4 to 8 MiB ran
/// as fast as larger chunks with nothing read twice.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;

/// Below this many bytes of output per chunk, work stays on the calling thread.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// How far a streaming operation has got: `done` of `total` bytes (of output for the
/// `*_into` functions, of input for the reductions).
///
/// ```
/// let p = ndarray_mmap::ops::Progress { done: 256, total: 1024 };
/// assert_eq!(p.fraction(), 0.25);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes processed so far.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

impl Progress {
    /// `done / total`, 1.0 when there is nothing to do.
    ///
    /// ```
    /// let p = ndarray_mmap::ops::Progress { done: 0, total: 0 };
    /// assert_eq!(p.fraction(), 1.0);
    /// ```
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        }
    }
}

type ProgressFn<'a> = Box<dyn FnMut(Progress) -> ControlFlow<()> + 'a>;

/// Options for one streaming operation: chunk size, threads, progress and cancelling.
///
/// Built by value and consumed by the `*_with` functions.
///
/// ```
/// use std::ops::ControlFlow;
/// use ndarray_mmap::ops::{self, StreamOptions};
///
/// let a = ndarray::Array1::<u8>::from_elem(10_000, 3);
/// let mut c = ndarray::Array1::<u8>::zeros(10_000);
/// // Cancel after the first 4 KiB chunk.
/// let opts = StreamOptions::new().chunk_bytes(4096).progress(|p| {
///     if p.done >= 4096 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// });
/// let err = ops::map_into_with(&a, &mut c, |x| x * 2, opts).unwrap_err();
/// assert!(matches!(err, ndarray_mmap::Error::Cancelled { done: 4096, total: 10_000, .. }));
/// assert_eq!(c[4095], 6);
/// assert_eq!(c[4096], 0); // not reached: unchanged
/// ```
#[must_use]
pub struct StreamOptions<'a> {
    chunk_bytes: usize,
    parallel: bool,
    progress: Option<ProgressFn<'a>>,
}

impl Default for StreamOptions<'_> {
    fn default() -> Self {
        StreamOptions {
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            parallel: cfg!(feature = "rayon"),
            progress: None,
        }
    }
}

impl fmt::Debug for StreamOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamOptions")
            .field("chunk_bytes", &self.chunk_bytes)
            .field("parallel", &self.parallel)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> StreamOptions<'a> {
    /// Defaults: [`DEFAULT_CHUNK_BYTES`] chunks, parallel when the `rayon` feature is on,
    /// no progress callback.
    ///
    /// ```
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let total = ops::sum_with(&ndarray::array![1u32, 2, 3], StreamOptions::new())?;
    /// assert_eq!(total, 6);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of output (of input, for reductions) per chunk; at least one element is done
    /// per chunk whatever the value. Resident memory of the streaming path is a few
    /// chunks; progress is reported once per chunk.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let mut chunks = 0;
    /// let opts = StreamOptions::new()
    ///     .chunk_bytes(16) // 4 u32 per chunk: 10 elements take 3 chunks
    ///     .progress(|_| { chunks += 1; ControlFlow::Continue(()) });
    /// assert_eq!(ops::sum_with(&ndarray::Array1::<u32>::ones(10), opts)?, 10);
    /// assert_eq!(chunks, 3);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// Whether a chunk may be split across threads (only with the `rayon` feature, and
    /// only for chunks of 1 MiB of output or more; on by default with the feature).
    ///
    /// ```
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let a = ndarray::Array1::<f64>::ones(1000);
    /// let mut c = ndarray::Array1::<f64>::zeros(1000);
    /// ops::map_into_with(&a, &mut c, |x| x * 3.0, StreamOptions::new().parallel(false))?;
    /// assert_eq!(c.sum(), 3000.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// Calls `f` after each chunk with the bytes done so far. Returning
    /// `ControlFlow::Break(())` cancels the operation, which then returns
    /// [`Error::Cancelled`]: the chunks done so far are written (the first `done` bytes
    /// of the output in its memory order), the rest of the output is unchanged.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let mut last = 0.0;
    /// let opts = StreamOptions::new()
    ///     .chunk_bytes(400)
    ///     .progress(|p| { last = p.fraction(); ControlFlow::Continue(()) });
    /// ops::sum_with(&ndarray::Array1::<f32>::ones(1000), opts)?;
    /// assert_eq!(last, 1.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn progress(mut self, f: impl FnMut(Progress) -> ControlFlow<()> + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

mod sealed {
    use super::*;

    /// The view and the paging hooks of an input.
    pub trait SourceParts<T> {
        fn source_parts(&self) -> (ArrayViewD<'_, T>, Option<InPager<'_>>);
    }

    /// The view and the paging hooks of an output.
    pub trait SinkParts<T> {
        fn sink_parts(&mut self) -> (ArrayViewMutD<'_, T>, Option<OutPager<'_>>);
    }
}

/// Something the operations can read as an array of `T`: any ndarray array or view, or a
/// mapped owner ([`MmapArray`], [`MmapArrayMut`]), which gets the streaming treatment.
///
/// Sealed: implemented by this crate for those types only.
///
/// ```
/// fn total<S: ndarray_mmap::ops::Source<f64> + ?Sized>(s: &S) -> f64 {
///     ndarray_mmap::ops::sum(s).unwrap()
/// }
/// assert_eq!(total(&ndarray::array![1.0, 2.5]), 3.5);
/// ```
pub trait Source<T>: sealed::SourceParts<T> {}

/// Something the operations can write as an array of `T`: any mutable ndarray array or
/// view, or a writable mapped owner ([`MmapArrayMut`]), which gets the streaming
/// treatment (bounded write-back).
///
/// Sealed: implemented by this crate for those types only.
///
/// ```
/// fn double<S: ndarray_mmap::ops::Sink<i32> + ?Sized>(s: &mut S, a: &ndarray::Array1<i32>) {
///     ndarray_mmap::map_into(a, s, |x| 2 * x).unwrap();
/// }
/// let mut c = ndarray::Array1::zeros(2);
/// double(&mut c, &ndarray::array![1, 2]);
/// assert_eq!(c, ndarray::array![2, 4]);
/// ```
pub trait Sink<T>: sealed::SinkParts<T> {}

impl<T, S: Data<Elem = T>, D: Dimension> sealed::SourceParts<T> for ArrayBase<S, D> {
    fn source_parts(&self) -> (ArrayViewD<'_, T>, Option<InPager<'_>>) {
        (self.view().into_dyn(), None)
    }
}
impl<T, S: Data<Elem = T>, D: Dimension> Source<T> for ArrayBase<S, D> {}

impl<T, S: DataMut<Elem = T>, D: Dimension> sealed::SinkParts<T> for ArrayBase<S, D> {
    fn sink_parts(&mut self) -> (ArrayViewMutD<'_, T>, Option<OutPager<'_>>) {
        (self.view_mut().into_dyn(), None)
    }
}
impl<T, S: DataMut<Elem = T>, D: Dimension> Sink<T> for ArrayBase<S, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SourceParts<T> for MmapArray<T, D> {
    fn source_parts(&self) -> (ArrayViewD<'_, T>, Option<InPager<'_>>) {
        let (v, p) = self.stream_parts();
        (v, Some(p))
    }
}
impl<T: bytemuck::Pod, D: Dimension> Source<T> for MmapArray<T, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SourceParts<T> for MmapArrayMut<T, D> {
    fn source_parts(&self) -> (ArrayViewD<'_, T>, Option<InPager<'_>>) {
        let (v, p) = self.stream_parts();
        (v, Some(p))
    }
}
impl<T: bytemuck::Pod, D: Dimension> Source<T> for MmapArrayMut<T, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SinkParts<T> for MmapArrayMut<T, D> {
    fn sink_parts(&mut self) -> (ArrayViewMutD<'_, T>, Option<OutPager<'_>>) {
        let (v, p) = self.stream_parts_mut();
        (v, Some(p))
    }
}
impl<T: bytemuck::Pod, D: Dimension> Sink<T> for MmapArrayMut<T, D> {}

/// Element arithmetic as numpy does it: integers wrap around, never panic, and divide by
/// zero to 0; floats follow IEEE 754. Implemented for every [`Element`] type.
///
/// ```
/// use ndarray_mmap::ops::Numeric;
/// assert_eq!(250u8.elem_add(10), 4);              // wraps
/// assert_eq!(i32::MIN.elem_div(-1), i32::MIN);    // wraps
/// assert_eq!(7i64.elem_div(0), 0);                // numpy's x // 0 == 0
/// assert_eq!((-7i32).elem_div(2), -3);            // rounds toward zero, like Rust's `/`
/// assert!(f32::NAN.elem_min(1.0).is_nan());       // NaN propagates, as in np.minimum
/// ```
pub trait Numeric: Element {
    /// The type [`sum`] returns: `i64` for signed integers, `u64` for unsigned ones (both
    /// wrapping, as numpy's default integer sum), `f64` for floats.
    type Sum: Copy + Send + Sync + PartialEq + fmt::Debug + 'static;

    /// `self + rhs`, wrapping for integers.
    fn elem_add(self, rhs: Self) -> Self;
    /// `self - rhs`, wrapping for integers.
    fn elem_sub(self, rhs: Self) -> Self;
    /// `self * rhs`, wrapping for integers.
    fn elem_mul(self, rhs: Self) -> Self;
    /// `self / rhs`; for integers rounded toward zero, wrapping (`MIN / -1 == MIN`), and
    /// 0 when `rhs` is 0 (numpy gives 0 there too, with a warning).
    fn elem_div(self, rhs: Self) -> Self;
    /// The smaller value; NaN if either is NaN.
    fn elem_min(self, rhs: Self) -> Self;
    /// The larger value; NaN if either is NaN.
    fn elem_max(self, rhs: Self) -> Self;
    /// The value as `f64` (rounded for 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;

    #[doc(hidden)]
    fn sum_zero() -> Self::Sum;
    #[doc(hidden)]
    fn sum_add(a: Self::Sum, b: Self::Sum) -> Self::Sum;
    #[doc(hidden)]
    fn sum_slice(s: &[Self]) -> Self::Sum;
    #[doc(hidden)]
    fn to_sum(self) -> Self::Sum;
}

/// Sums with eight independent accumulators, so the loop vectorizes.
#[inline]
fn fold8<T: Copy, S: Copy>(s: &[T], zero: S, conv: impl Fn(T) -> S, add: impl Fn(S, S) -> S) -> S {
    let mut acc = [zero; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = add(acc[i], conv(c[i]));
        }
    }
    let mut total = zero;
    for x in chunks.remainder() {
        total = add(total, conv(*x));
    }
    for a in acc {
        total = add(total, a);
    }
    total
}

macro_rules! numeric_int {
    ($($t:ty => $sum:ty),*) => {$(
        impl Numeric for $t {
            type Sum = $sum;
            #[inline]
            fn elem_add(self, rhs: Self) -> Self { self.wrapping_add(rhs) }
            #[inline]
            fn elem_sub(self, rhs: Self) -> Self { self.wrapping_sub(rhs) }
            #[inline]
            fn elem_mul(self, rhs: Self) -> Self { self.wrapping_mul(rhs) }
            #[inline]
            fn elem_div(self, rhs: Self) -> Self {
                if rhs == 0 { 0 } else { self.wrapping_div(rhs) }
            }
            #[inline]
            fn elem_min(self, rhs: Self) -> Self { Ord::min(self, rhs) }
            #[inline]
            fn elem_max(self, rhs: Self) -> Self { Ord::max(self, rhs) }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            fn sum_zero() -> $sum { 0 }
            #[inline]
            fn sum_add(a: $sum, b: $sum) -> $sum { a.wrapping_add(b) }
            fn sum_slice(s: &[Self]) -> $sum {
                fold8(s, 0, |x| x as $sum, <$sum>::wrapping_add)
            }
            #[inline]
            fn to_sum(self) -> $sum { self as $sum }
        }
    )*};
}

numeric_int!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

macro_rules! numeric_float {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            type Sum = f64;
            #[inline]
            fn elem_add(self, rhs: Self) -> Self { self + rhs }
            #[inline]
            fn elem_sub(self, rhs: Self) -> Self { self - rhs }
            #[inline]
            fn elem_mul(self, rhs: Self) -> Self { self * rhs }
            #[inline]
            fn elem_div(self, rhs: Self) -> Self { self / rhs }
            #[inline]
            fn elem_min(self, rhs: Self) -> Self {
                if self.is_nan() || self <= rhs { self } else { rhs }
            }
            #[inline]
            fn elem_max(self, rhs: Self) -> Self {
                if self.is_nan() || self >= rhs { self } else { rhs }
            }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            fn sum_zero() -> f64 { 0.0 }
            #[inline]
            fn sum_add(a: f64, b: f64) -> f64 { a + b }
            fn sum_slice(s: &[Self]) -> f64 {
                fold8(s, 0.0, |x| x as f64, |a, b| a + b)
            }
            #[inline]
            fn to_sum(self) -> f64 { self as f64 }
        }
    )*};
}

numeric_float!(f32, f64);

// ---------------------------------------------------------------------------------------
// Chunk planning: pieces of an array in its memory order.

/// Splits an array of `shape` into pieces of at most `chunk` elements (at least one
/// element each), visited in memory order of `strides`. A piece is a slice per axis.
struct Plan {
    shape: Vec<usize>,
    /// Axes, outermost in memory first.
    order: Vec<usize>,
    /// Axes `order[..split]` are taken one index at a time; `order[split]` in ranges of
    /// `step`; the rest whole.
    split: usize,
    step: usize,
    /// Current indices of `order[..split]` and the range start on `order[split]`.
    index: Vec<usize>,
    start: usize,
    done: bool,
}

impl Plan {
    fn new(shape: &[usize], strides: &[isize], chunk: usize) -> Plan {
        let chunk = chunk.max(1);
        let ndim = shape.len();
        let mut order: Vec<usize> = (0..ndim).collect();
        // Outermost first: by |stride| descending; length-1 axes do not matter.
        order.sort_by_key(|&ax| std::cmp::Reverse(strides[ax].unsigned_abs()));
        let mut split = ndim;
        let mut step = 1;
        let mut inner = 1usize;
        // Find the outermost axis whose inner block fits in a chunk.
        for k in (0..ndim).rev() {
            let len = shape[order[k]];
            let block = inner.saturating_mul(len);
            if block > chunk || k == 0 {
                split = k;
                step = (chunk / inner.max(1)).clamp(1, len.max(1));
                break;
            }
            inner = block;
        }
        let empty = shape.contains(&0);
        Plan {
            shape: shape.to_vec(),
            order,
            split,
            step,
            index: vec![0; split.min(ndim)],
            start: 0,
            done: empty,
        }
    }
}

impl Iterator for Plan {
    type Item = Vec<Slice>;

    fn next(&mut self) -> Option<Vec<Slice>> {
        if self.done {
            return None;
        }
        let ndim = self.shape.len();
        if ndim == 0 {
            self.done = true;
            return Some(Vec::new());
        }
        let mut slices = vec![Slice::from(..); ndim];
        for (k, &i) in self.index.iter().enumerate() {
            let ax = self.order[k];
            slices[ax] = Slice::from(i..i + 1);
        }
        let ax = self.order[self.split];
        let len = self.shape[ax];
        let end = (self.start + self.step).min(len);
        slices[ax] = Slice::from(self.start..end);
        // advance
        self.start = end;
        if self.start >= len {
            self.start = 0;
            let mut k = self.split;
            loop {
                if k == 0 {
                    self.done = true;
                    break;
                }
                k -= 1;
                self.index[k] += 1;
                if self.index[k] < self.shape[self.order[k]] {
                    break;
                }
                self.index[k] = 0;
            }
        }
        Some(slices)
    }
}

fn slice_view<'v, T>(v: &'v ArrayViewD<'_, T>, s: &[Slice]) -> ArrayViewD<'v, T> {
    v.slice_each_axis(|d| s[d.axis.index()])
}

/// Read-side hooks while streaming: drop pages below the current piece.
struct InStream<'p> {
    pager: InPager<'p>,
    /// Whether the input is read in its file order (same layout as the chunking):
    /// otherwise dropping pages could make the stream read them again.
    in_order: bool,
    released: usize,
}

impl<'p> InStream<'p> {
    fn new(pager: Option<InPager<'p>>, in_order: bool) -> Option<Self> {
        let pager = pager?;
        if in_order {
            pager.sequential();
        }
        Some(InStream {
            pager,
            in_order,
            released: 0,
        })
    }

    /// The stream is about to read a piece starting at `lo` (bytes into the map).
    fn at<T>(&mut self, piece: &ArrayViewD<'_, T>) {
        if !self.in_order || piece.is_empty() {
            return;
        }
        let lo = piece.as_ptr() as usize - self.pager.addr();
        if lo > self.released {
            self.pager.release(self.released, lo);
            self.released = lo;
        }
    }

    fn finish(self) {
        if self.in_order {
            self.pager.release(self.released, self.pager.len());
            self.pager.normal();
        }
    }
}

/// Write-side hooks: start write-back of finished pieces, wait for them a piece later
/// and drop their pages.
struct OutStream<'p> {
    pager: OutPager<'p>,
    /// Bytes below this were handed to write-back.
    started: usize,
    in_flight: VecDeque<(usize, usize)>,
}

/// Pieces of output written back but not yet waited for.
const WRITEBACK_LAG: usize = 1;

impl<'p> OutStream<'p> {
    /// `in_order` as for [`InStream`]: only an output written in its file order is
    /// written back piece by piece.
    fn new(pager: Option<OutPager<'p>>, in_order: bool) -> Option<Self> {
        let pager = pager.filter(|_| in_order)?;
        Some(OutStream {
            pager,
            started: 0,
            in_flight: VecDeque::new(),
        })
    }

    /// Everything below byte `upto` of the map is written and will not be written again.
    fn done_below(&mut self, upto: usize) -> Result<(), Error> {
        if upto > self.started {
            self.pager.start_writeback(self.started, upto);
            self.in_flight.push_back((self.started, upto));
            self.started = upto;
        }
        while self.in_flight.len() > WRITEBACK_LAG {
            let (lo, hi) = self.in_flight.pop_front().expect("non-empty");
            self.pager.finish_writeback(lo, hi)?;
        }
        Ok(())
    }

    fn finish(mut self, completed: bool) -> Result<(), Error> {
        if completed {
            let len = self.pager.len();
            if len > self.started {
                self.pager.start_writeback(self.started, len);
                self.in_flight.push_back((self.started, len));
            }
        }
        while let Some((lo, hi)) = self.in_flight.pop_front() {
            self.pager.finish_writeback(lo, hi)?;
        }
        Ok(())
    }
}

/// Whether `strides` describe the same memory order as the chunking's `order` does for
/// the output, with non-negative strides: then pieces visit the view's memory in order.
fn same_order(shape: &[usize], strides: &[isize], out_strides: &[isize]) -> bool {
    let mut axes: Vec<usize> = (0..shape.len()).filter(|&ax| shape[ax] > 1).collect();
    if axes
        .iter()
        .any(|&ax| strides[ax] <= 0 || out_strides[ax] == 0)
    {
        return false;
    }
    axes.sort_by_key(|&ax| std::cmp::Reverse(out_strides[ax].unsigned_abs()));
    axes.windows(2)
        .all(|w| strides[w[0]].unsigned_abs() >= strides[w[1]].unsigned_abs())
}

/// Where an operand's elements lie in memory, and how.
struct Operand {
    /// The memory bytes it spans, `None` when empty.
    span: Option<(usize, usize)>,
    shape: Vec<usize>,
    strides: Vec<isize>,
    size: usize,
}

impl Operand {
    fn of<T>(v: &ArrayViewD<'_, T>) -> Operand {
        let size = std::mem::size_of::<T>();
        let span = (!v.is_empty() && size > 0).then(|| {
            let (mut lo, mut hi) = (0isize, 0isize);
            for (&d, &s) in v.shape().iter().zip(v.strides()) {
                let reach = (d as isize - 1) * s;
                if reach < 0 {
                    lo += reach;
                } else {
                    hi += reach;
                }
            }
            let base = v.as_ptr() as isize;
            let size = size as isize;
            (
                (base + lo * size) as usize,
                (base + (hi + 1) * size) as usize,
            )
        });
        Operand {
            span,
            shape: v.shape().to_vec(),
            strides: v.strides().to_vec(),
            size,
        }
    }
}

/// Refuses an output whose file bytes overlap an input's at another position (or in
/// another layout): the same bytes in the same layout are the in-place operation.
fn check_aliasing<'o>(
    out: &Operand,
    inputs: impl Iterator<Item = &'o Operand>,
) -> Result<(), Error> {
    use crate::map::registry::locate;
    let Some(o) = out.span.and_then(|(lo, hi)| locate(lo, hi)) else {
        return Ok(());
    };
    if o.private {
        return Ok(()); // copy-on-write: its writes never reach the file
    }
    for input in inputs {
        let Some(i) = input.span.and_then(|(lo, hi)| locate(lo, hi)) else {
            continue;
        };
        let overlaps = i.id == o.id && i.bytes.start < o.bytes.end && o.bytes.start < i.bytes.end;
        let in_place = i.bytes == o.bytes
            && input.size == out.size
            && input.shape == out.shape
            && input.strides == out.strides;
        if overlaps && !in_place {
            return Err(Error::Aliased {
                path: Some(o.path),
                output: o.bytes,
                input: i.bytes,
            });
        }
    }
    Ok(())
}

fn report(opts: &mut StreamOptions<'_>, done: u64, total: u64) -> Result<(), Error> {
    if let Some(f) = opts.progress.as_mut() {
        // A cancel after the last chunk comes too late to cancel anything: the work is
        // done, and the result stands.
        if let ControlFlow::Break(()) = f(Progress { done, total }) {
            if done < total {
                return Err(Error::Cancelled { done, total });
            }
        }
    }
    Ok(())
}

fn broadcast_to<'v, T>(
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
fn go_parallel<T>(opts: &StreamOptions<'_>, n: usize) -> bool {
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
type InParts<'v, T> = (ArrayViewD<'v, T>, Option<InPager<'v>>);

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
fn zip_stream<A, B, C, K>(
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
    if in_place {
        if let Some(s) = &c_stream {
            s.pager.sequential();
        }
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
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
    SA: Source<A> + ?Sized,
    SB: Source<B> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A, B) -> C + Send + Sync,
{
    zip_stream(
        Some(a.source_parts()),
        Some(b.source_parts()),
        c.sink_parts(),
        opts,
        |mut pc, pa, pb, par| {
            let (Some(pa), Some(pb)) = (pa, pb) else {
                unreachable!("the engine slices every input it is given")
            };
            zip_for_each!(Zip::from(&mut pc).and(&pa).and(&pb), par, |c, &a, &b| *c =
                f(a, b));
        },
    )
}

/// `c = f(a, b)` elementwise, `a` and `b` broadcast to `c`'s shape. Element types may
/// differ. Streams when operands are mapped (see the [module docs](self)).
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
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
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
    A: Copy + Send + Sync,
    C: Copy + Send + Sync,
    SA: Source<A> + ?Sized,
    SC: Sink<C> + ?Sized,
    F: Fn(A) -> C + Send + Sync,
{
    zip_stream::<A, (), C, _>(
        Some(a.source_parts()),
        None,
        c.sink_parts(),
        opts,
        |mut pc, pa, _, par| {
            let Some(pa) = pa else {
                unreachable!("the engine slices every input it is given")
            };
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
    A: Copy + Send + Sync,
    C: Copy + Send + Sync,
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
        /// when given mapped owners ([`MmapArray`], [`MmapArrayMut`]); see the
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
assert_eq!(err.to_string(), \"cannot broadcast the second input's shape [3] to the output's shape [2, 2]\");"
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
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    SA: Sink<A> + ?Sized,
    SB: Source<B> + ?Sized,
    F: Fn(A, B) -> A + Send + Sync,
{
    zip_stream::<(), B, A, _>(
        None,
        Some(b.source_parts()),
        a.sink_parts(),
        opts,
        |mut pa, _, pb, par| {
            let Some(pb) = pb else {
                unreachable!("the engine slices every input it is given")
            };
            zip_for_each!(Zip::from(&mut pa).and(&pb), par, |a, &b| *a = f(*a, b));
        },
    )
}

/// `a = f(a, b)` elementwise in place, `b` broadcast to `a`'s shape. The element types
/// may differ. Streams when `a` or `b` is mapped (see the [module docs](self)).
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
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
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
    A: Copy + Send + Sync,
    SA: Sink<A> + ?Sized,
    F: Fn(A) -> A + Send + Sync,
{
    zip_stream::<(), (), A, _>(None, None, a.sink_parts(), opts, |mut pa, _, _, par| {
        zip_for_each!(Zip::from(&mut pa), par, |a| *a = f(*a));
    })
}

/// `a = f(a)` elementwise in place; streams when `a` is a mapped [`MmapArrayMut`].
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
    A: Copy + Send + Sync,
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
        /// MmapArrayMut`, [`MmapArray`]); see the [module docs](crate::ops). Integers wrap
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
assert_eq!(err.to_string(), \"cannot broadcast the second input's shape [3] to the output's shape [2, 2]\");
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

// ---------------------------------------------------------------------------------------
// Reductions.

/// Folds `a` piece by piece in its memory order, with the paging hooks if it is mapped.
fn fold_stream<T, R>(
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

fn fold_piece<T: Copy, R>(
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

fn extremum<T: Numeric, S: Source<T> + ?Sized>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(shape: &[usize], strides: &[isize], chunk: usize) -> Vec<Vec<Slice>> {
        Plan::new(shape, strides, chunk).collect()
    }

    #[test]
    fn plan_covers_every_element_once_in_memory_order() {
        for (shape, chunk) in [
            (vec![5usize, 3, 4], 1usize),
            (vec![5, 3, 4], 7),
            (vec![5, 3, 4], 12),
            (vec![5, 3, 4], 25),
            (vec![5, 3, 4], 1000),
            (vec![7], 3),
            (vec![0, 4], 3),
            (vec![1, 1, 9], 4),
        ] {
            let a = ndarray::ArrayD::from_shape_vec(
                shape.clone(),
                (0..shape.iter().product::<usize>()).collect(),
            )
            .unwrap();
            let v = a.view();
            let mut seen = Vec::new();
            for p in pieces(&shape, v.strides(), chunk) {
                let s = slice_view(&v, &p);
                assert!(
                    s.len() <= chunk.max(1),
                    "{shape:?} chunk {chunk}: piece of {}",
                    s.len()
                );
                assert!(!s.is_empty());
                seen.extend(s.iter().copied());
            }
            let want: Vec<usize> = (0..a.len()).collect();
            assert_eq!(seen, want, "{shape:?} chunk {chunk}");
        }
    }

    #[test]
    fn plan_of_fortran_array_follows_its_memory() {
        use ndarray::ShapeBuilder;
        let a = ndarray::Array::from_shape_vec((3, 4).f(), (0..12).collect())
            .unwrap()
            .into_dyn();
        let v = a.view();
        let mut seen = Vec::new();
        for p in pieces(v.shape(), v.strides(), 5) {
            seen.extend(slice_view(&v, &p).iter().copied());
        }
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn zero_dim_is_one_piece() {
        assert_eq!(pieces(&[], &[], 10).len(), 1);
    }

    #[test]
    fn same_order_detects_layouts() {
        assert!(same_order(&[3, 4], &[4, 1], &[4, 1]));
        assert!(!same_order(&[3, 4], &[1, 3], &[4, 1]));
        assert!(!same_order(&[3, 4], &[0, 1], &[4, 1]));
        assert!(same_order(&[1, 4], &[0, 1], &[4, 1])); // length-1 axes do not matter
    }

    #[test]
    fn integer_division_never_panics() {
        assert_eq!(i8::MIN.elem_div(-1), i8::MIN);
        assert_eq!(5u32.elem_div(0), 0);
        assert_eq!(i64::MIN.elem_mul(-1), i64::MIN);
        assert_eq!(u8::MAX.elem_add(1), 0);
        assert_eq!(0u16.elem_sub(1), u16::MAX);
    }

    #[test]
    fn nan_propagates_through_min_and_max() {
        assert!(1.0f64.elem_max(f64::NAN).is_nan());
        assert!(f64::NAN.elem_max(1.0).is_nan());
        assert!(1.0f32.elem_min(f32::NAN).is_nan());
        assert_eq!(1.0f32.elem_min(2.0), 1.0);
    }
}
