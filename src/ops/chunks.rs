//! [`chunks`]: blocks of an array along an axis, with the paging hooks of a mapped one,
//! for the loops a [`Zip`](super::Zip) cannot express.

use ndarray::{ArrayViewD, Axis, Slice};

use crate::error::Error;
use crate::map::room::memory_available;

use super::operand::Source;
use super::plan::{InStream, same_order};

/// Blocks of up to `len` indices along `axis` of `a`, in order, as views: the last block
/// may be shorter. For a mapped array (an [`MmapArray`](crate::MmapArray) or
/// [`MmapArrayMut`](crate::MmapArrayMut)) the kernel is told the file is read in order
/// and, when `axis` is the outermost in memory (axis 0 of a C-order array), the pages
/// of the blocks before the current one are dropped from the process as it goes, so
/// memory stays at a few blocks whatever the file's size. A block kept after the next
/// one is asked for stays valid: its pages load again on touch. A `len` of 0 is taken
/// as 1. Unlike the [`Zip`](super::Zip), blocks are not prefaulted: a file truncated by
/// another program under a live block raises SIGBUS on touch, as with any view.
///
/// # Errors
/// [`Error::Axis`] when `axis` does not exist.
///
/// ```
/// use ndarray::Axis;
/// use ndarray_mmap::{create_array, ops};
/// # let dir = tempfile::tempdir()?;
/// let mut m = unsafe { create_array::<f32>(dir.path().join("m.f32"), [10_000, 8]) }?;
/// m.view_mut().fill(0.5);
/// let mut total = 0.0;
/// for block in ops::chunks(&m, Axis(0), 4096)? {
///     assert!(block.shape()[0] <= 4096);
///     total += block.sum();
/// }
/// assert_eq!(total, 40_000.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn chunks<'a, T, S: Source<T> + ?Sized>(
    a: &'a S,
    axis: Axis,
    len: usize,
) -> Result<Chunks<'a, T>, Error> {
    let (view, pager) = a.input().into_view()?;
    if axis.index() >= view.ndim() {
        return Err(Error::Axis {
            axis: axis.index(),
            shape: view.shape().to_vec(),
            empty: false,
        });
    }
    // Pages behind the stream may go only when blocks advance through the file: the axis
    // is the outermost in memory (the others are contiguous inside a block).
    let outermost = (0..view.ndim())
        .filter(|&k| k != axis.index() && view.shape()[k] > 1)
        .all(|k| view.strides()[k].unsigned_abs() < view.strides()[axis.index()].unsigned_abs())
        && same_order(view.shape(), view.strides(), view.strides());
    Ok(Chunks {
        stream: {
            let bounded = pager
                .as_ref()
                .is_some_and(|p| memory_available().is_none_or(|m| p.len() as u64 > m / 2));
            InStream::new(pager, outermost, bounded)
        },
        view,
        axis,
        len: len.max(1),
        next: 0,
    })
}

/// The iterator [`chunks`] returns: views of consecutive blocks along an axis.
///
/// ```
/// use ndarray::{array, Axis};
/// let a = array![[1, 2], [3, 4], [5, 6]];
/// let blocks: Vec<_> = ndarray_mmap::ops::chunks(&a, Axis(0), 2)?.collect();
/// assert_eq!(blocks.len(), 2);
/// assert_eq!(blocks[1], array![[5, 6]].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub struct Chunks<'a, T> {
    view: ArrayViewD<'a, T>,
    stream: Option<InStream<'a>>,
    axis: Axis,
    len: usize,
    next: usize,
}

impl<'a, T> Iterator for Chunks<'a, T> {
    type Item = ArrayViewD<'a, T>;

    fn next(&mut self) -> Option<ArrayViewD<'a, T>> {
        let n = self.view.len_of(self.axis);
        if self.next >= n {
            if let Some(s) = self.stream.take() {
                s.finish();
            }
            return None;
        }
        let end = (self.next + self.len).min(n);
        let mut block = self.view.clone();
        block.slice_axis_inplace(self.axis, Slice::from(self.next..end));
        self.next = end;
        if let Some(s) = self.stream.as_mut() {
            s.advance(&block);
        }
        Some(block)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.view.len_of(self.axis) - self.next;
        let n = left.div_ceil(self.len);
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Chunks<'_, T> {}

impl<T> Drop for Chunks<'_, T> {
    fn drop(&mut self) {
        if let Some(s) = self.stream.take() {
            s.finish();
        }
    }
}

impl<T> std::fmt::Debug for Chunks<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("shape", &self.view.shape())
            .field("axis", &self.axis)
            .field("len", &self.len)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}
