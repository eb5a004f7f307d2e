//! Chunk planning: pieces of an array in its memory order, and the paging hooks that
//! follow them through mapped operands.

use std::collections::VecDeque;

use ndarray::{ArrayViewD, ArrayViewMutD, Slice};

use crate::error::Error;
use crate::map::pager::{InPager, OutPager, WriteBehind};

// ---------------------------------------------------------------------------------------
// Chunk planning: pieces of an array in its memory order.

/// Splits an array of `shape` into pieces of at most `chunk` elements (at least one
/// element each), visited in memory order of `strides`. A piece is a slice per axis.
pub(super) struct Plan {
    pub(super) shape: Vec<usize>,
    /// Axes, outermost in memory first.
    pub(super) order: Vec<usize>,
    /// Axes `order[..split]` are taken one index at a time; `order[split]` in ranges of
    /// `step`; the rest whole.
    pub(super) split: usize,
    pub(super) step: usize,
    /// Current indices of `order[..split]` and the range start on `order[split]`.
    pub(super) index: Vec<usize>,
    pub(super) start: usize,
    pub(super) done: bool,
}

impl Plan {
    pub(super) fn new(shape: &[usize], strides: &[isize], chunk: usize) -> Plan {
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

/// The regions a stream visits one after another: the array cut at every chunk boundary
/// of every Zarr operand (one region, the whole array, when there is none), so that each
/// region lies inside one chunk of each. Visited in the memory order of `strides`, like
/// the pieces of a [`Plan`] (the outermost axis slowest). Boundaries are worked out as the
/// stream goes, so a grid of many chunks costs nothing up front.
pub(super) struct Regions {
    shape: Vec<usize>,
    /// The chunk shape of each Zarr operand.
    grids: Vec<Vec<usize>>,
    /// Axes, outermost in memory first.
    order: Vec<usize>,
    /// Where the next region starts, per axis.
    start: Vec<usize>,
    done: bool,
}

impl Regions {
    pub(super) fn new(shape: &[usize], grids: &[Vec<usize>], strides: &[isize]) -> Regions {
        let mut order: Vec<usize> = (0..shape.len()).collect();
        order.sort_by_key(|&ax| std::cmp::Reverse(strides[ax].unsigned_abs()));
        Regions {
            shape: shape.to_vec(),
            grids: grids.to_vec(),
            order,
            start: vec![0; shape.len()],
            done: shape.contains(&0),
        }
    }

    /// The end of the region that starts at `from` on axis `ax`: the next chunk boundary
    /// of any grid, or the axis's end.
    fn end(&self, ax: usize, from: usize) -> usize {
        let len = self.shape[ax];
        self.grids
            .iter()
            .map(|g| {
                let step = g[ax].max(1);
                (from / step).saturating_add(1).saturating_mul(step)
            })
            .fold(len, usize::min)
    }

    /// Whether the regions, one after another, visit an array laid out like the
    /// chunking in its memory order: only the outermost axis (of those longer than one)
    /// is cut.
    pub(super) fn sequential(&self) -> bool {
        // (An axis of length 1 is never cut and places nothing.)
        let mut long = self.order.iter().filter(|&&ax| self.shape[ax] > 1);
        // Past the outermost long axis, no axis may be cut.
        long.next();
        long.all(|&ax| self.grids.iter().all(|g| g[ax] >= self.shape[ax]))
    }
}

impl Regions {
    /// Whether, once `region` (the last one given) is done, the regions done are a prefix
    /// of the array in memory order: the axes outside the innermost one not yet at its
    /// end are at one index each.
    pub(super) fn prefix_after(&self, region: &[std::ops::Range<usize>]) -> bool {
        let open = self
            .order
            .iter()
            .rposition(|&ax| region[ax].end < self.shape[ax]);
        open.is_none_or(|j| self.order[..j].iter().all(|&ax| region[ax].len() == 1))
    }
}

impl Iterator for Regions {
    type Item = Vec<std::ops::Range<usize>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let region = (0..self.shape.len())
            .map(|ax| self.start[ax]..self.end(ax, self.start[ax]))
            .collect();
        self.done = true;
        for k in (0..self.order.len()).rev() {
            let ax = self.order[k];
            self.start[ax] = self.end(ax, self.start[ax]);
            if self.start[ax] < self.shape[ax] {
                self.done = false;
                break;
            }
            self.start[ax] = 0;
        }
        Some(region)
    }
}

/// The order in which a piece that is not dense is still made of runs of bytes: lanes
/// along its last axis (C) or its first (F) with unit stride, each a run of the map, at
/// most 64 MiB in all (what [`Scratch`] holds).
fn runs_order<T>(piece: &ArrayViewD<'_, T>) -> Option<crate::Order> {
    let n = piece.ndim();
    if n == 0 || piece.len().saturating_mul(std::mem::size_of::<T>()) > 64 << 20 {
        return None;
    }
    if piece.strides()[n - 1] == 1 {
        Some(crate::Order::C)
    } else if piece.strides()[0] == 1 {
        Some(crate::Order::F)
    } else {
        None
    }
}

#[cfg(test)]
fn slice_view<'v, T>(v: &'v ArrayViewD<'_, T>, s: &[Slice]) -> ArrayViewD<'v, T> {
    v.slice_each_axis(|d| s[d.axis.index()])
}

/// The bytes of the map at `base` that `piece` spans, relative to `base`.
fn span_in<T>(piece: &ArrayViewD<'_, T>, base: usize) -> Option<(usize, usize)> {
    let size = std::mem::size_of::<T>() as isize;
    if piece.is_empty() || size == 0 {
        return None;
    }
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&d, &s) in piece.shape().iter().zip(piece.strides()) {
        let reach = (d as isize - 1) * s;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    let p = piece.as_ptr() as isize - base as isize;
    Some(((p + lo * size) as usize, (p + (hi + 1) * size) as usize))
}

/// Read-side hooks while streaming: prefault each piece (an `Err` instead of a SIGBUS);
/// when `bounded`, drop the pages below the current piece from the process, and from
/// the page cache those the stream brought in.
pub(super) struct InStream<'p> {
    pub(super) pager: InPager<'p>,
    /// Whether the input is read in its file order (same layout as the chunking):
    /// otherwise dropping pages could make the stream read them again.
    pub(super) in_order: bool,
    pub(super) bounded: bool,
    pub(super) released: usize,
    /// Dense pieces are read with `pread` (see [`read`](Self::read)).
    read_through: bool,
    /// The map's pages were brought in already (a Zarr chunk mapped ahead of the stream):
    /// each piece's bytes are checked to be in the file (`fstat`) instead of prefaulted.
    populated: bool,
}

impl<'p> InStream<'p> {
    pub(super) fn new(pager: Option<InPager<'p>>, in_order: bool, bounded: bool) -> Option<Self> {
        let mut pager = pager?;
        if in_order {
            pager.sequential();
            if bounded {
                pager.snapshot_residency();
            }
        }
        Some(InStream {
            pager,
            in_order,
            bounded,
            released: 0,
            read_through: false,
            populated: false,
        })
    }

    /// Reads dense pieces through the file when `yes` (see [`read`](Self::read)).
    pub(super) fn reading_through(mut self, yes: bool) -> Self {
        self.read_through = yes;
        self
    }

    /// Skips the prefault of each piece when `yes`: the map's pages were brought in
    /// already.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn populated(mut self, yes: bool) -> Self {
        self.populated = yes;
        self
    }

    /// The stream's state without its pager, for an operand that maps and drops its map
    /// between calls (a Zarr chunk): [`resume`](Self::resume) takes it back.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn park(mut self) -> InState {
        InState {
            in_order: self.in_order,
            bounded: self.bounded,
            released: self.released,
            read_through: self.read_through,
            populated: self.populated,
            resident: self.pager.take_residency(),
        }
    }

    /// The stream again, over a new pager of the same map.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn resume(mut pager: InPager<'p>, state: InState) -> Self {
        pager.set_residency(state.resident);
        InStream {
            pager,
            in_order: state.in_order,
            bounded: state.bounded,
            released: state.released,
            read_through: state.read_through,
            populated: state.populated,
        }
    }

    /// The stream is about to read `piece`.
    pub(super) fn at<T>(&mut self, piece: &ArrayViewD<'_, T>) -> Result<(), Error> {
        let Some((lo, hi)) = span_in(piece, self.pager.addr()) else {
            return Ok(());
        };
        // Behind first: the pages of the last piece go before this one's come in.
        if self.in_order && self.bounded && lo > self.released {
            self.pager.release(self.released, lo);
            self.released = lo;
        }
        if self.populated {
            return self.pager.check_held(lo, hi);
        }
        self.pager.prefault(lo, hi, false)
    }

    /// Like [`at`](Self::at), reading a dense piece through the file (`pread`) into
    /// `scratch` instead of prefaulting it, when the stream reads through, is bounded and
    /// in order: the kernel reads ahead as for the map, but a truncated file is an `Err`,
    /// never a SIGBUS while the piece is computed. `false` (nothing read) when the piece
    /// stays on the map: take [`at`](Self::at) then.
    pub(super) fn read<T>(
        &mut self,
        piece: &ArrayViewD<'_, T>,
        scratch: &mut dyn ScratchOf<T>,
    ) -> Result<Option<crate::Order>, Error> {
        // (Any piece made of runs of bytes: a Zarr chunk cut by a grid across an inner axis
        // is read out of its file order, an edge chunk row by row.)
        if !(self.read_through && self.bounded && self.pager.can_read_at()) {
            return Ok(None);
        }
        let Some((lo, _)) = span_in(piece, self.pager.addr()) else {
            return Ok(None);
        };
        let dense = super::layout::dense(piece);
        let Some(order) = dense.or_else(|| runs_order(piece)) else {
            return Ok(None);
        };
        if self.in_order && lo > self.released {
            self.pager.release(self.released, lo);
            self.released = lo;
        }
        scratch.reading_at(Some(self.pager.file_offset() + lo as u64));
        scratch.view(piece.shape(), order);
        if dense.is_some() {
            self.pager.read_at(lo, scratch.bytes_mut())?;
            return Ok(Some(order));
        }
        // One `pread` per run (a lane along the contiguous axis), laid out in `order`.
        let seen = if order == crate::Order::C {
            piece.view()
        } else {
            piece.t()
        };
        let lanes = seen.rows();
        let bytes = scratch.bytes_mut();
        let mut at = 0;
        for lane in lanes {
            let lane = lane.into_dyn();
            let Some((from, to)) = span_in(&lane, self.pager.addr()) else {
                continue;
            };
            self.pager.read_at(from, &mut bytes[at..at + (to - from)])?;
            at += to - from;
        }
        Ok(Some(order))
    }

    /// Like [`at`](Self::at) without the prefault (for [`chunks`](super::chunks), whose
    /// items cannot carry an error).
    pub(super) fn advance<T>(&mut self, piece: &ArrayViewD<'_, T>) {
        if let Some((lo, _)) = span_in(piece, self.pager.addr())
            && self.in_order
            && self.bounded
            && lo > self.released
        {
            self.pager.release(self.released, lo);
            self.released = lo;
        }
    }

    pub(super) fn finish(self) {
        if self.in_order {
            if self.bounded {
                self.pager.release(self.released, self.pager.len());
            }
            self.pager.normal();
        }
    }
}

/// An [`InStream`] parked between calls (see [`InStream::park`]).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
pub(super) struct InState {
    in_order: bool,
    bounded: bool,
    released: usize,
    read_through: bool,
    populated: bool,
    resident: Vec<u8>,
}

/// An [`OutStream`] parked between calls (see [`OutStream::park`]).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
pub(super) struct OutState {
    write_back: bool,
    started: usize,
    in_flight: VecDeque<(usize, usize)>,
    early: bool,
    behind: Option<WriteBehind>,
    resident: Vec<u8>,
}

/// Write-side hooks: prefault each piece; when `bounded` (and the output is written in
/// its file order), start write-back of finished pieces, wait for them a piece later and
/// drop their pages.
pub(super) struct OutStream<'p> {
    pub(super) pager: OutPager<'p>,
    /// Whether pieces are written back as they finish.
    pub(super) write_back: bool,
    /// Bytes below this were handed to write-back.
    pub(super) started: usize,
    pub(super) in_flight: VecDeque<(usize, usize)>,
    /// Finished pieces are handed to write-back without waiting (`write_through`, for an
    /// output that is not bounded).
    pub(super) early: bool,
    /// The thread that starts that write-back, for a big map (see [`WRITE_BEHIND_MIN`]).
    behind: Option<WriteBehind>,
}

/// The smallest output map whose write-back is started by a helper thread (and, under
/// [`Paging::Cached`](super::Paging::Cached) with `write_through` left to the engine, at
/// all): below it, a `flush` after the stream is short anyway, and the thread's start
/// would cost more than it saves.
pub(super) const WRITE_BEHIND_MIN: usize = 16 << 20;

/// Pieces of output written back but not yet waited for.
pub(super) const WRITEBACK_LAG: usize = 1;

impl<'p> OutStream<'p> {
    /// `in_order` as for [`InStream`]: only an output written in its file order is
    /// written back piece by piece.
    /// `write_through`: `None` leaves it to the engine, which writes through a map of at
    /// least [`WRITE_BEHIND_MIN`] bytes (see `StreamOptions::write_through`).
    pub(super) fn new(
        pager: Option<OutPager<'p>>,
        in_order: bool,
        bounded: bool,
        write_through: Option<bool>,
    ) -> Option<Self> {
        let mut pager = pager?;
        let write_back = in_order && bounded;
        if write_back {
            pager.snapshot_residency();
        }
        let big = pager.len() >= WRITE_BEHIND_MIN;
        let early = in_order && !bounded && write_through.unwrap_or(big);
        Some(OutStream {
            behind: (early && big).then(|| pager.write_behind()).flatten(),
            pager,
            write_back,
            started: 0,
            in_flight: VecDeque::new(),
            early,
        })
    }

    /// Starts write-back of bytes `lo..hi` of the map without waiting: on the helper
    /// thread when there is one.
    fn hand_over(&self, lo: usize, hi: usize) {
        match &self.behind {
            Some(b) => b.push(lo, hi),
            None => self.pager.start_writeback(lo, hi),
        }
    }

    /// The stream's state without its pager (see [`InStream::park`]).
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn park(mut self) -> OutState {
        OutState {
            write_back: self.write_back,
            started: self.started,
            in_flight: self.in_flight,
            early: self.early,
            behind: self.behind,
            resident: self.pager.take_residency(),
        }
    }

    /// The stream again, over a new pager of the same map.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn resume(mut pager: OutPager<'p>, state: OutState) -> Self {
        pager.set_residency(state.resident);
        OutStream {
            pager,
            write_back: state.write_back,
            started: state.started,
            in_flight: state.in_flight,
            early: state.early,
            behind: state.behind,
        }
    }

    /// Every byte of the map is written: starts write-back of what has not been started,
    /// without waiting (the wait comes with [`finish`](Self::finish)).
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(super) fn start_rest(&mut self) {
        let len = self.pager.len();
        if len <= self.started {
            return;
        }
        if self.write_back {
            self.pager.start_writeback(self.started, len);
            self.in_flight.push_back((self.started, len));
            self.started = len;
        } else if self.early {
            self.hand_over(self.started, len);
            self.started = len;
        }
    }

    /// The stream is about to write `piece`, and everything before it in the file is
    /// written for good.
    pub(super) fn at<T>(&mut self, piece: &ArrayViewMutD<'_, T>) -> Result<(), Error> {
        let Some((lo, hi)) = span_in(&piece.view(), self.pager.addr()) else {
            return Ok(());
        };
        // Whole pages only: the page that holds byte `lo` is written by this piece too,
        // and handing it over now would write it twice (and, where pages must stay
        // stable under write-back, make this piece wait for it).
        let upto = self.pager.page_start(lo);
        if self.write_back {
            self.done_below(upto)?;
        } else if self.early && upto > self.started {
            self.hand_over(self.started, upto);
            self.started = upto;
        }
        self.pager.prefault(lo, hi, true)
    }

    /// Like [`at`](Self::at) for a piece written through the file (`pwrite`) rather than
    /// the map: no prefault (it would read the pages the piece overwrites).
    pub(super) fn at_direct<T>(&mut self, piece: &ArrayViewMutD<'_, T>) -> Result<(), Error> {
        let Some((lo, _)) = span_in(&piece.view(), self.pager.addr()) else {
            return Ok(());
        };
        let upto = self.pager.page_start(lo);
        if self.write_back {
            self.done_below(upto)?;
        } else if self.early && upto > self.started {
            self.hand_over(self.started, upto);
            self.started = upto;
        }
        Ok(())
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

    pub(super) fn finish(mut self, completed: bool) -> Result<(), Error> {
        if !self.write_back {
            if completed {
                self.start_rest();
            }
            return Ok(());
        }
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
pub(super) fn same_order(shape: &[usize], strides: &[isize], out_strides: &[isize]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_read_lands_32_to_47_bytes_past_the_file_offset_modulo_64() {
        let mut s = Scratch::default();
        for at in (0..64u64).chain([4093, 1 << 33]) {
            ScratchOf::<f32>::reading_at(&mut s, Some(at));
            let n = 100 + at as usize % 64; // views of different lengths
            let v = ScratchOf::<f32>::view(&mut s, &[n], crate::Order::C);
            let p = v.as_ptr() as usize;
            assert_eq!(p % 16, 0);
            let past = p.wrapping_sub(at as usize) % 64;
            assert!((32..48).contains(&past), "at {at}: {past} bytes past");
            assert_eq!(ScratchOf::<f32>::bytes(&s).len(), 4 * n);
        }
        // A view not read from a file starts the buffer.
        let p = ScratchOf::<u8>::view(&mut s, &[10], crate::Order::C).as_ptr() as usize;
        assert_eq!(p, s.words.as_ptr() as usize);
    }

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
    fn regions_cut_at_every_grid_and_cover_once() {
        // chunks of 4 and of 3 along axis 0 (length 10); 5 along axis 1 (length 7)
        let grids = [vec![4, 7], vec![3, 5]];
        let r: Vec<_> = Regions::new(&[10, 7], &grids, &[7, 1]).collect();
        let rows: Vec<_> = r.iter().map(|x| x[0].clone()).collect();
        assert_eq!(r.len(), 6 * 2);
        assert_eq!(rows[0], 0..3);
        assert_eq!(rows[2], 3..4);
        assert_eq!(r[1], vec![0..3, 5..7]); // the last axis fastest in C order
        let cells: usize = r.iter().map(|x| x[0].len() * x[1].len()).sum();
        assert_eq!(cells, 70);
        assert!(!Regions::new(&[10, 7], &grids, &[7, 1]).sequential());
        // Fortran order: the first axis fastest
        let f: Vec<_> = Regions::new(&[10, 7], &grids, &[1, 10]).collect();
        assert_eq!(f[1], vec![3..4, 0..5]);
        // cut along the outermost axis only: sequential
        assert!(Regions::new(&[10, 7], &[vec![4, 7]], &[7, 1]).sequential());
        assert!(Regions::new(&[1, 7], &[vec![1, 3]], &[7, 1]).sequential());
        // no grid: the whole array; an empty array: nothing; 0-d: one region
        assert_eq!(
            Regions::new(&[10, 7], &[], &[7, 1]).collect::<Vec<_>>(),
            [vec![0..10, 0..7]]
        );
        assert_eq!(Regions::new(&[0, 7], &grids, &[7, 1]).count(), 0);
        assert_eq!(Regions::new(&[], &[vec![]], &[]).count(), 1);
    }

    #[test]
    fn a_prefix_in_memory_order_ends_a_band_of_regions() {
        // C order, chunks of 4 x 3 over 10 x 7: a prefix once a band of rows is done.
        let r = Regions::new(&[10, 7], &[vec![4, 3]], &[7, 1]);
        assert!(!r.prefix_after(&[0..4, 0..3]));
        assert!(!r.prefix_after(&[0..4, 3..6]));
        assert!(r.prefix_after(&[0..4, 6..7]));
        assert!(r.prefix_after(&[8..10, 6..7]));
        // rows of one element: every region ends a prefix
        let r = Regions::new(&[10, 7], &[vec![1, 3]], &[7, 1]);
        assert!(r.prefix_after(&[2..3, 0..3]));
        // Fortran order: the first axis is the inner one
        let r = Regions::new(&[10, 7], &[vec![4, 3]], &[1, 10]);
        assert!(!r.prefix_after(&[0..4, 0..3]));
        assert!(r.prefix_after(&[8..10, 0..3]));
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
}

/// A buffer the piece of a write-only output is computed into before it goes to the file
/// (see [`OutStream::at_direct`]); aligned for every element type.
#[derive(Default)]
pub(super) struct Scratch {
    words: Vec<u128>,
    /// Where the last view starts, in bytes (a multiple of 16).
    start: usize,
    len: usize,
    /// The file offset the next view is read from, when it is (see
    /// [`ScratchOf::reading_at`]).
    read_at: Option<u64>,
}

/// [`Scratch`] for elements of `T`, where `T` is known to be plain data.
pub(super) trait ScratchOf<T> {
    /// A view of `shape` in `order` over the buffer (its old contents: the caller
    /// overwrites every element).
    fn view(&mut self, shape: &[usize], order: crate::Order) -> ArrayViewMutD<'_, T>;
    /// The bytes of the last view.
    fn bytes(&self) -> &[u8];
    /// The bytes of the last view, to fill.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// The last view again, read-only, as `shape` in `order` (what it was made with).
    fn last(&self, shape: &[usize], order: crate::Order) -> ArrayViewD<'_, T>;
    /// The next view is filled by a `pread` at file offset `at` (`None`: it is not): it
    /// is placed where the kernel's copy is fast (see `map::file::read_buffer`).
    fn reading_at(&mut self, at: Option<u64>);
}

impl<T: bytemuck::Pod> ScratchOf<T> for Scratch {
    fn view(&mut self, shape: &[usize], order: crate::Order) -> ArrayViewMutD<'_, T> {
        let n = shape.iter().product::<usize>() * std::mem::size_of::<T>();
        // 48 bytes of room to move the start by.
        if self.words.len() * 16 < n + 48 {
            self.words.resize((n + 48).div_ceil(16), 0);
        }
        // Read at `at`: the one start of 0, 16, 32, 48 that puts the destination 32 to 47
        // bytes (modulo 64) past the source, never the 1-31 where the copy is slow.
        let base = self.words.as_ptr() as usize;
        self.start = self.read_at.take().map_or(0, |at| {
            let past = |s: usize| (base + s).wrapping_sub(at as usize) % 64;
            [0, 16, 32, 48]
                .into_iter()
                .find(|&s| past(s) >= 32 && past(s) < 48)
                .unwrap_or(0)
        });
        self.len = n;
        let bytes =
            &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)[self.start..self.start + n];
        crate::bytes::view_mut::<T, ndarray::IxDyn>(bytes, ndarray::IxDyn(shape), order)
            .expect("a buffer aligned to 16 bytes, of exactly the shape's length")
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u128, u8>(&mut self.words)
            [self.start..self.start + self.len]
    }

    fn reading_at(&mut self, at: Option<u64>) {
        self.read_at = at;
    }

    fn last(&self, shape: &[usize], order: crate::Order) -> ArrayViewD<'_, T> {
        crate::bytes::view::<T, ndarray::IxDyn>(
            ScratchOf::<T>::bytes(self),
            ndarray::IxDyn(shape),
            order,
        )
        .expect("the buffer of the last view, of that shape")
    }
}
