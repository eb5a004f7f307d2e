//! Whole Zarr arrays as operands of the engine (the `zarr` feature). The stream visits
//! the array region by region (see [`Regions`](super::plan::Regions): each region lies
//! inside one chunk of every Zarr operand); a Zarr operand maps the chunk holding the
//! current region, streams it with the paging hooks like any mapped array, and lets it
//! go when the stream moves to another chunk.

use std::ops::Range;

use ndarray::{ArrayViewD, ArrayViewMutD, Slice};

use crate::Order;
use crate::element::Element;
use crate::error::Error;
use crate::map::pager::{InPager, OutPager};
use crate::map::residency::Residency;
use crate::zarr::{Array, Chunk, ChunkMut, ChunkStream, ReadAhead, ZarrArray, ZarrArrayMut, cut};

use super::operand::sealed::{AsInput, AsOutput};
use super::overlap::{Operand, Survey};
use super::part::{Input, Output, Reader, Writer};
use super::plan::{InState, InStream, OutState, OutStream, Scratch, ScratchOf, same_order};

/// The chunk that holds `region` (its first element decides) and that chunk's first
/// element.
fn locate(chunk: &[usize], region: &[Range<usize>]) -> (Vec<usize>, Vec<usize>) {
    let index: Vec<usize> = region
        .iter()
        .zip(chunk)
        .map(|(r, &c)| r.start / c)
        .collect();
    let origin = index.iter().zip(chunk).map(|(&i, &c)| i * c).collect();
    (index, origin)
}

/// Slices of the array's indices (the engine's pieces: bounded, unit steps) as slices of
/// the chunk whose first element is `origin`.
pub(super) fn relative(piece: &[Slice], origin: &[usize]) -> Vec<Slice> {
    piece
        .iter()
        .zip(origin)
        .map(|(s, &o)| {
            let o = o as isize;
            Slice::new(s.start - o, s.end.map(|e| e - o), s.step)
        })
        .collect()
}

/// The chunk that holds `region`, where that chunk starts, and the region in the chunk's
/// indices.
pub(super) fn place(
    chunk: &[usize],
    region: &[Range<usize>],
) -> (Vec<usize>, Vec<usize>, Vec<Slice>) {
    let (index, origin) = locate(chunk, region);
    let slices: Vec<Slice> = region.iter().map(|r| Slice::from(r.clone())).collect();
    let rel = relative(&slices, &origin);
    (index, origin, rel)
}

/// The chunk a Zarr operand has mapped, and where the stream is in it.
struct Open<C, S> {
    index: Vec<usize>,
    origin: Vec<usize>,
    /// The current region, in the chunk's indices.
    region: Vec<Slice>,
    chunk: C,
    /// The paging hooks between calls (`None` for a chunk never written).
    state: Option<S>,
}

/// Moves the open chunk to the region `rel` when it is chunk `index`; `false` when another
/// chunk must be mapped.
fn stays<C, S>(open: &mut Option<Open<C, S>>, index: &[usize], rel: &[Slice]) -> bool {
    match open {
        Some(o) if o.index == index => {
            o.region = rel.to_vec();
            true
        }
        _ => false,
    }
}

/// The order in which the regions visit a grid (see [`Regions`](super::plan::Regions)):
/// its chunk counts per axis, and the axes outermost first in memory (by `lead`).
pub(super) struct GridOrder {
    counts: Vec<usize>,
    axes: Vec<usize>,
}

impl GridOrder {
    pub(super) fn new(shape: &[usize], chunk: &[usize], lead: &[isize]) -> GridOrder {
        let mut axes: Vec<usize> = (0..shape.len()).collect();
        axes.sort_by_key(|&ax| std::cmp::Reverse(lead.get(ax).map_or(0, |s| s.unsigned_abs())));
        let counts = shape
            .iter()
            .zip(chunk)
            .map(|(&n, &c)| n.div_ceil(c.max(1)))
            .collect();
        GridOrder { counts, axes }
    }

    /// The chunk after `index`, if any. The regions visit chunks in this order when every
    /// grid of the stream is this one; a reader ahead that guesses wrong only wastes work.
    pub(super) fn next(&self, index: &[usize]) -> Option<Vec<usize>> {
        let mut next = index.to_vec();
        for &ax in self.axes.iter().rev() {
            next[ax] += 1;
            if next[ax] < self.counts[ax] {
                return Some(next);
            }
            next[ax] = 0;
        }
        None
    }
}

/// The bytes of `region` of a chunk's view, for the alias check.
fn region_span<T>(view: ArrayViewD<'_, T>, region: &[Slice]) -> Operand {
    Operand::of(&view.slice_each_axis(|d| region[d.axis.index()]))
}

/// The strides of a dense array of `shape` in `order`, in elements: what a Zarr operand
/// tells the engine about its layout (every chunk has it).
pub(super) fn dense_strides(shape: &[usize], order: Order) -> Vec<isize> {
    let n = shape.len();
    let mut strides = vec![0isize; n];
    let mut step = 1isize;
    let axes: Vec<usize> = if order == Order::C {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    for ax in axes {
        strides[ax] = step;
        step = step.saturating_mul(shape[ax].max(1) as isize);
    }
    strides
}

/// How a chunk is streamed: given at the stream's start.
#[derive(Clone, Copy, Default)]
struct Policy {
    bounded: bool,
    /// `None`: the engine decides (see `OutStream::new`).
    write_through: Option<bool>,
    /// The regions visit each chunk in the chunking's memory order.
    sequential: bool,
    /// Input pieces are read with `pread` (see `StreamOptions::read_through`).
    read_through: bool,
}

impl Policy {
    fn in_order<T>(&self, lead: &[isize], v: &ArrayViewD<'_, T>) -> bool {
        self.sequential && same_order(v.shape(), v.strides(), lead)
    }
}

/// A Zarr array the stream reads.
pub(crate) struct ZarrIn<'a, T> {
    array: &'a Array<T>,
    strides: Vec<isize>,
    lead: Vec<isize>,
    policy: Policy,
    open: Option<Open<Chunk<T>, InState>>,
    /// Which pages of each chunk file were cached when the stream first mapped it.
    residency: Residency,
    /// A piece read through its chunk file (see [`InStream::read`]), and its order.
    scratch: Scratch,
    read: Option<Order>,
    /// Coded chunks read and decoded ahead on another thread, in the order of `grid`.
    ahead: Option<(ReadAhead<T>, GridOrder)>,
    /// Chunks bigger than the memory allows are decoded as a stream, a piece at a time
    /// (see [`streams`]): the one the stream is in, its index and first element.
    streaming: bool,
    stream: Option<(Vec<usize>, Vec<usize>, ChunkStream)>,
}

/// Whether a stream decodes the coded chunks of `array` a piece at a time instead of
/// whole: a bounded stream whose chunks take more than an eighth of the memory left
/// (`room`), visited in their own order (`in_order`: pieces in memory order, in chunks
/// laid out like the stream's `lead`).
pub(super) fn streams<T: Element>(
    array: &Array<T>,
    bounded: bool,
    in_order: bool,
    room: Option<u64>,
) -> bool {
    bounded
        && in_order
        && array.streams_chunks()
        && room.is_some_and(|r| array.chunk_bytes() > r / 8)
}

/// The runs of bytes of the box `rel` (chunk indices: start and length per axis) of a
/// dense chunk of `shape` in `order` with elements of `elem` bytes, in the order of their
/// offsets (the box's own elements in `order`): `(offset, len)` in bytes.
pub(super) fn runs(
    shape: &[usize],
    order: Order,
    rel: &[(usize, usize)],
    elem: usize,
) -> impl Iterator<Item = (u64, usize)> + use<> {
    let (mut shape, mut rel) = (shape.to_vec(), rel.to_vec());
    if order == Order::F {
        shape.reverse();
        rel.reverse();
    }
    let n = shape.len();
    let empty = rel.iter().any(|&(_, len)| len == 0);
    // Strides in elements, C order.
    let mut stride = vec![1usize; n];
    for ax in (0..n.saturating_sub(1)).rev() {
        stride[ax] = stride[ax + 1] * shape[ax + 1];
    }
    // Axes after `k` are whole: each run spans them.
    let mut k = n.saturating_sub(1);
    while k > 0 && rel[k] == (0, shape[k]) {
        k -= 1;
    }
    let run = match n {
        0 => elem,
        _ => rel[k].1 * stride[k] * elem,
    };
    // The index of the axes before `k` (the last fastest); `None` once past the end.
    let mut idx = (!empty).then(|| vec![0usize; k]);
    std::iter::from_fn(move || {
        let at = idx.as_mut()?;
        let first = match n {
            0 => 0,
            _ => {
                (0..k)
                    .map(|ax| (rel[ax].0 + at[ax]) * stride[ax])
                    .sum::<usize>()
                    + rel[k].0 * stride[k]
            }
        };
        let item = ((first * elem) as u64, run);
        let mut ax = k;
        loop {
            if ax == 0 {
                idx = None;
                break;
            }
            ax -= 1;
            at[ax] += 1;
            if at[ax] < rel[ax].1 {
                break;
            }
            at[ax] = 0;
        }
        Some(item)
    })
}

impl<'a, T: Element> ZarrIn<'a, T> {
    pub(crate) fn new(array: &'a Array<T>) -> Self {
        ZarrIn {
            strides: dense_strides(array.shape(), array.order()),
            array,
            lead: Vec::new(),
            policy: Policy::default(),
            open: None,
            residency: Residency::default(),
            scratch: Scratch::default(),
            read: None,
            ahead: None,
            streaming: false,
            stream: None,
        }
    }

    /// The stream is done with the chunk it decoded as a stream, if any: the rest of it is
    /// decoded and checked (exactly one chunk, and the codec's own checksum), as a chunk
    /// decoded whole is.
    fn end_stream(&mut self) -> Result<(), Error> {
        match self.stream.take() {
            Some((_, _, mut s)) => self.array.end_stream(&mut s),
            None => Ok(()),
        }
    }

    /// The stream is done with the chunk: its pages go (under `Bounded`), its map too.
    fn leave(&mut self) {
        let Some(o) = self.open.take() else {
            return;
        };
        if let Some(state) = o.state
            && let (_, Some(pager)) = in_parts(&o.chunk)
        {
            InStream::resume(pager, state).finish();
        }
        if let Some((ahead, _)) = &mut self.ahead {
            ahead.recycle(o.chunk);
        }
    }
}

impl<'a, T: Element> Input<'a, T> {
    /// A whole Zarr array, read chunk by chunk.
    pub(super) fn zarr(array: &'a Array<T>) -> Self {
        Self::of(Box::new(ZarrIn::new(array)))
    }
}

impl<'a, T: Element> Output<'a, T> {
    /// A whole writable Zarr array, written chunk by chunk: mapped, or (encoded chunks)
    /// through a buffer per chunk.
    pub(super) fn zarr(array: &'a mut ZarrArrayMut<T>) -> Self {
        if array.array().is_coded() {
            return Self::of(Box::new(super::zarr_encoded::ZarrEncOut::new(array)));
        }
        Self::of(Box::new(ZarrOut::new(array)))
    }
}

impl<'a, T: Element> Reader<'a, T> for ZarrIn<'a, T> {
    fn shape(&self) -> Vec<usize> {
        self.array.shape().to_vec()
    }

    fn strides(&self) -> Vec<isize> {
        self.strides.clone()
    }

    /// A Zarr array streams chunk by chunk in its own shape only.
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Vec<usize>> {
        match self.array.shape() == shape {
            true => Ok(()),
            false => Err(self.array.shape().to_vec()),
        }
    }

    fn read_ahead(&self) -> Option<u64> {
        Some(crate::map::room::read_ahead_at(self.array.dir()))
    }

    fn grid(&self) -> Option<Vec<usize>> {
        Some(self.array.chunk_shape().to_vec())
    }

    fn into_view(self: Box<Self>) -> Result<(ArrayViewD<'a, T>, Option<InPager<'a>>), Error> {
        Err(Error::Zarr {
            path: self.array.dir().to_path_buf(),
            problem: crate::error::ZarrProblem::Unsupported {
                what: "ops::chunks over a whole Zarr array (visit its chunks with \
                       chunk_indices() and chunk(), or stream it with ops::Zip)"
                    .into(),
            },
        })
    }

    /// The bytes its chunks hold, as if all were mapped at once (for the paging policy).
    fn mapped_len(&self) -> usize {
        byte_count::<T>(self.array.shape())
    }

    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        _sequential: bool,
        chunks_in_order: bool,
        read_through: bool,
    ) {
        self.lead = lead.to_vec();
        self.policy = Policy {
            bounded,
            sequential: chunks_in_order,
            write_through: Some(false),
            read_through,
        };
        let a = self.array;
        let cs = a.chunk_shape();
        let in_order = chunks_in_order && same_order(cs, &dense_strides(cs, a.order()), lead);
        self.streaming = streams(a, bounded, in_order, crate::map::room::memory_available());
        self.ahead = match self.streaming {
            true => None,
            false => ReadAhead::new(a, bounded)
                .map(|r| (r, GridOrder::new(a.shape(), a.chunk_shape(), lead))),
        };
    }

    /// The stream moves to `region`: maps the chunk holding it, unless it is mapped.
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        let (index, origin, rel) = place(self.array.chunk_shape(), region);
        if stays(&mut self.open, &index, &rel) {
            return Ok(());
        }
        if self.stream.as_ref().is_some_and(|s| s.0 == index) {
            return Ok(());
        }
        self.leave();
        self.end_stream()?;
        let bounded = self.policy.bounded;
        if self.streaming
            && let Some(s) = self.array.chunk_stream(&index, bounded)?
        {
            self.stream = Some((index, origin, s));
            return Ok(());
        }
        let (chunk, ahead) = match &mut self.ahead {
            Some((ahead, grid)) => {
                let taken = ahead.take(&index);
                let spare = if taken.is_none() { ahead.spare() } else { None };
                // The next chunks are read while this one is (when it was not ahead) and
                // while the stream computes.
                ahead.ahead(&index, |i| grid.next(i));
                match taken {
                    Some(Ok(chunk)) => (chunk, true),
                    // Read again here: the error (a lock since released, a page past
                    // the array's edge) is the one of a read now, as without reading
                    // ahead.
                    Some(Err(_)) | None => {
                        (self.array.read_chunk_into(&index, spare, bounded)?, false)
                    }
                }
            }
            None => (self.array.read_chunk_into(&index, None, bounded)?, false),
        };
        let state = {
            let (v, pager) = in_parts(&chunk);
            // A chunk mapped ahead has its pages in (see `ReadAhead::new`): no paging
            // hints, and a length check instead of a prefault (`InStream::populated`).
            let in_order = self.policy.in_order(&self.lead, &v) && !ahead;
            let through = self.policy.read_through;
            InStream::new(pager, in_order, self.policy.bounded).map(|mut s| {
                s = s.reading_through(through).populated(ahead);
                if in_order && self.policy.bounded {
                    s.pager.snapshot_residency_in(&mut self.residency);
                }
                s.park()
            })
        };
        self.open = Some(Open {
            index,
            origin,
            region: rel,
            chunk,
            state,
        });
        Ok(())
    }

    /// The current region's bytes, for the alias check.
    fn span(&self) -> Operand {
        self.open
            .as_ref()
            .map_or_else(Operand::apart, |o| region_span(o.chunk.view(), &o.region))
    }

    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        self.read = None;
        if let Some((_, origin, stream)) = &mut self.stream {
            // Decoded into the scratch buffer, run by run, in the chunk's order.
            let rel = relative(piece, origin);
            let boxed: Vec<(usize, usize)> = rel
                .iter()
                .map(|s| {
                    (
                        s.start as usize,
                        (s.end.unwrap_or(s.start) - s.start) as usize,
                    )
                })
                .collect();
            let lens: Vec<usize> = boxed.iter().map(|b| b.1).collect();
            let (order, elem) = (self.array.order(), std::mem::size_of::<T>());
            ScratchOf::<T>::view(&mut self.scratch, &lens, order);
            let bytes = ScratchOf::<T>::bytes_mut(&mut self.scratch);
            let mut at = 0;
            for (offset, len) in runs(self.array.chunk_shape(), order, &boxed, elem) {
                self.array
                    .read_stream(stream, offset, &mut bytes[at..at + len])?;
                at += len;
            }
            self.read = Some(order);
            return Ok(());
        }
        let Some(o) = &mut self.open else {
            return Ok(());
        };
        let Some(state) = o.state.take() else {
            return Ok(());
        };
        let rel = relative(piece, &o.origin);
        let (v, pager) = in_parts(&o.chunk);
        let pager = pager.expect("a chunk with paging state is mapped");
        let mut s = InStream::resume(pager, state);
        let p = v.slice_each_axis(|d| rel[d.axis.index()]);
        let r = match s.read(&p, &mut self.scratch) {
            Ok(Some(order)) => {
                self.read = Some(order);
                Ok(())
            }
            Ok(None) => s.at(&p),
            Err(e) => Err(e),
        };
        o.state = Some(s.park());
        r
    }

    fn piece(&mut self, piece: &[Slice]) -> ArrayViewD<'_, T> {
        if let (Some((_, origin, _)), Some(order)) = (&self.stream, self.read) {
            let lens: Vec<usize> = relative(piece, origin)
                .iter()
                .map(|s| (s.end.unwrap_or(s.start) - s.start) as usize)
                .collect();
            return ScratchOf::<T>::last(&self.scratch, &lens, order);
        }
        let o = self
            .open
            .as_ref()
            .expect("the engine enters a region before it asks for its pieces");
        let rel = relative(piece, &o.origin);
        let mut v = o.chunk.view();
        v.slice_each_axis_inplace(|d| rel[d.axis.index()]);
        match self.read {
            // Read through the chunk's file by `before`: the same elements, in the buffer.
            Some(order) => ScratchOf::<T>::last(&self.scratch, v.shape(), order),
            None => v,
        }
    }

    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        self.leave();
        self.ahead = None;
        // A stream that stopped early (a cancel, an error) does not decode the rest.
        match completed {
            true => self.end_stream(),
            false => {
                self.stream = None;
                Ok(())
            }
        }
    }

    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        survey_of(self.array).map(Some)
    }
}

/// A Zarr array the stream writes; a chunk with no file is created when the stream
/// reaches it.
pub(crate) struct ZarrOut<'a, T> {
    array: &'a mut ZarrArrayMut<T>,
    strides: Vec<isize>,
    lead: Vec<isize>,
    policy: Policy,
    open: Option<Open<ChunkMut<T>, OutState>>,
    /// The chunk before the current one: its write-back is started and waited for when
    /// the stream leaves the next one, so that computing overlaps writing.
    pending: Option<(ChunkMut<T>, OutState)>,
    /// Chunks with no file, found by the survey.
    missing: Vec<Vec<usize>>,
    /// Which pages of each chunk file were cached when the stream first mapped it.
    residency: Residency,
    /// The operation never reads the output (`c = a + b`).
    write_only: bool,
    /// The current chunk's dense pieces go through `scratch` and `pwrite` (write-only,
    /// bounded, written back in its file order, a shared map, Linux): writing a chunk
    /// written before through its map reads each page first.
    direct: bool,
    scratch: Scratch,
    /// The byte of the current chunk's map where the piece in `scratch` goes.
    queued: Option<usize>,
}

impl<'a, T: Element> ZarrOut<'a, T> {
    pub(crate) fn new(array: &'a mut ZarrArrayMut<T>) -> Self {
        let strides = dense_strides(array.array().shape(), array.array().order());
        ZarrOut {
            array,
            strides,
            lead: Vec::new(),
            policy: Policy::default(),
            open: None,
            pending: None,
            missing: Vec::new(),
            residency: Residency::default(),
            write_only: false,
            direct: false,
            scratch: Scratch::default(),
            queued: None,
        }
    }

    /// The stream is done with the chunk: its write-back starts (under `Bounded`), and
    /// the chunk before it, whose write-back started a chunk ago, is waited for.
    fn leave(&mut self) -> Result<(), Error> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        let Some(state) = o.state.take() else {
            return Ok(());
        };
        let state = {
            let (_, pager) = out_parts(&mut o.chunk);
            let mut s = OutStream::resume(pager, state);
            s.start_rest();
            s.park()
        };
        match self.pending.replace((o.chunk, state)) {
            Some((mut c, state)) => {
                let (_, pager) = out_parts(&mut c);
                OutStream::resume(pager, state).finish(true)
            }
            None => Ok(()),
        }
    }
}

impl<T: Element> Writer<T> for ZarrOut<'_, T> {
    fn shape(&self) -> Vec<usize> {
        self.array.array().shape().to_vec()
    }

    fn strides(&self) -> Vec<isize> {
        self.strides.clone()
    }

    /// A chunk is read before it is overwritten, unless it is only written (then its
    /// dense pieces go through `pwrite`).
    fn read_ahead(&self) -> Option<u64> {
        Some(match self.write_only {
            true => 0,
            false => crate::map::room::read_ahead_at(self.array.array().dir()),
        })
    }

    fn grid(&self) -> Option<Vec<usize>> {
        Some(self.array.array().chunk_shape().to_vec())
    }

    fn mapped_len(&self) -> usize {
        byte_count::<T>(self.array.array().shape())
    }

    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        _sequential: bool,
        chunks_in_order: bool,
        write_through: Option<bool>,
    ) {
        self.lead = lead.to_vec();
        // The engine's choice by the whole output's size too, not only a chunk's: small
        // chunks of a big array are handed to write-back as they finish (a big chunk of a
        // small array still is, by its own size).
        let big = self.mapped_len() >= super::plan::WRITE_BEHIND_MIN;
        self.policy = Policy {
            bounded,
            sequential: chunks_in_order,
            write_through: write_through.or(big.then_some(true)),
            read_through: false,
        };
    }

    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        let (index, origin, rel) = place(self.array.array().chunk_shape(), region);
        if stays(&mut self.open, &index, &rel) {
            return Ok(());
        }
        self.leave()?;
        let mut chunk = self.array.chunk_mut(&index)?;
        self.direct = false;
        let state = {
            let (v, pager) = out_parts(&mut chunk);
            let in_order = self.policy.in_order(&self.lead, &v.view());
            OutStream::new(
                Some(pager),
                in_order,
                self.policy.bounded,
                self.policy.write_through,
            )
            .map(|mut s| {
                if s.write_back {
                    s.pager.snapshot_residency_in(&mut self.residency);
                }
                // (The scratch buffer is aligned to 16 bytes: wider-aligned elements stay
                // on the map.)
                self.direct = self.write_only
                    && s.write_back
                    && std::mem::align_of::<T>() <= 16
                    && s.pager.can_write_at();
                // Read ahead: a chunk written before is read before it is overwritten
                // (unless it is written through the file).
                if !self.direct {
                    s.pager.sequential();
                }
                s.park()
            })
        };
        self.open = Some(Open {
            index,
            origin,
            region: rel,
            chunk,
            state,
        });
        Ok(())
    }

    fn span(&self) -> Operand {
        self.open
            .as_ref()
            .map_or_else(Operand::apart, |o| region_span(o.chunk.view(), &o.region))
    }

    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        let Some(o) = &mut self.open else {
            return Ok(());
        };
        let Some(state) = o.state.take() else {
            return Ok(());
        };
        let rel = relative(piece, &o.origin);
        let (mut v, pager) = out_parts(&mut o.chunk);
        let mut s = OutStream::resume(pager, state);
        let p = v.slice_each_axis_mut(|d| rel[d.axis.index()]);
        let r = if self.direct && super::layout::dense(&p.view()).is_some() {
            s.at_direct(&p)
        } else {
            s.at(&p)
        };
        o.state = Some(s.park());
        r
    }

    fn piece(&mut self, piece: &[Slice]) -> ArrayViewMutD<'_, T> {
        let o = self
            .open
            .as_mut()
            .expect("the engine enters a region before it asks for its pieces");
        let rel = relative(piece, &o.origin);
        if self.direct {
            let (v, pager) = out_parts(&mut o.chunk);
            let p = v.slice_each_axis(|d| rel[d.axis.index()]);
            if let Some(order) = super::layout::dense(&p) {
                // A dense piece is computed aside and written through the file in `after`.
                self.queued = Some(p.as_ptr() as usize - pager.addr());
                let shape = p.shape().to_vec();
                return ScratchOf::<T>::view(&mut self.scratch, &shape, order);
            }
        }
        let mut v = o.chunk.view_mut();
        v.slice_each_axis_inplace(|d| rel[d.axis.index()]);
        v
    }

    fn after(&mut self) -> Result<(), Error> {
        let (Some(lo), Some(o)) = (self.queued.take(), self.open.as_mut()) else {
            return Ok(());
        };
        let (_, pager) = out_parts(&mut o.chunk);
        pager.write_at(lo, ScratchOf::<T>::bytes(&self.scratch))
    }

    fn write_only(&mut self) {
        self.write_only = true;
    }

    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        let mut result = Ok(());
        if let Some((mut c, state)) = self.pending.take() {
            let (_, pager) = out_parts(&mut c);
            result = OutStream::resume(pager, state).finish(true);
        }
        if let Some(mut o) = self.open.take()
            && let Some(state) = o.state.take()
        {
            let (_, pager) = out_parts(&mut o.chunk);
            let r = OutStream::resume(pager, state).finish(completed);
            result = result.and(r);
        }
        result
    }

    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        let array = self.array.array();
        let files = array.survey()?;
        // Two chunks of one output on the same bytes (hard-linked chunk files, what `cp
        // -al` or a deduplicator makes): writing one would change the other.
        let mut seen = std::collections::HashMap::new();
        for f in &files {
            if let Some(id) = f.id
                && let Some(first) = seen.insert((id, f.offset), &f.index)
            {
                return Err(Error::Zarr {
                    path: f.path.clone(),
                    problem: crate::error::ZarrProblem::Unsupported {
                        what: format!(
                            "writing chunks {first:?} and {:?}, which are the same bytes of one \
                             file (hard links): writing one would change the other; copy the \
                             file to break the link",
                            f.index
                        ),
                    },
                });
            }
        }
        // Every chunk is written inside the array's directory (no links on its way), and
        // every chunk file can be written now (not locked by another program, not
        // read-only): found here, before anything is written, not half-way.
        let mut probed = std::collections::HashSet::new();
        let align = std::mem::align_of::<T>() as u64;
        for f in &files {
            // An inner chunk not aligned for `T` cannot be written in place.
            if f.id.is_some() && f.offset % align != 0 {
                return Err(crate::zarr::misaligned::<T>(&f.path, &f.index, f.offset));
            }
            if !probed.insert(f.path.as_path()) {
                continue; // a shard holds many chunks
            }
            array.check_no_links(&f.path)?;
            if f.id.is_some() {
                // Not another array's too (hard links), and writable now.
                array.check_one_name(&f.path)?;
                crate::map::probe_writable(&f.path, None)?;
            }
        }
        self.missing = files
            .iter()
            .filter(|f| f.id.is_none())
            .map(|f| f.index.clone())
            .collect();
        Ok(Some(collect(self.array.array(), files)))
    }

    fn prepare(&mut self) -> Result<(), Error> {
        let missing = std::mem::take(&mut self.missing);
        // The chunks this call made: on failure only those go, and only while they are
        // still the files made here and nobody maps them (another writer may have taken
        // one up since it appeared, filled with the fill value).
        let mut made = Vec::new();
        for index in &missing {
            match self.array.chunk_mut_made(index) {
                Ok((_, created)) => {
                    if let Ok(path) = self.array.chunk_path(index) {
                        // Nothing of it was cached before the stream: its pages go behind it.
                        self.residency.created(&path);
                        if let Some(id) = created {
                            made.push((path, id));
                        }
                    }
                }
                Err(e) => {
                    let fill = self.array.fill_value();
                    for (path, id) in &made {
                        crate::map::remove_if_unused(path, *id, bytemuck::bytes_of(&fill));
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// A chunk's view, cut to the array's edge, and its paging hooks when it is mapped.
fn in_parts<T: Element>(c: &Chunk<T>) -> (ArrayViewD<'_, T>, Option<InPager<'_>>) {
    match c.mapped() {
        (Some(m), edge) => {
            let (v, p) = m.stream_parts();
            (cut(v, edge), Some(p))
        }
        (None, _) => (c.view(), None),
    }
}

/// A writable chunk's view, cut to the array's edge, and its paging hooks.
fn out_parts<T: Element>(c: &mut ChunkMut<T>) -> (ArrayViewMutD<'_, T>, OutPager<'_>) {
    let (m, edge) = c.mapped_mut();
    let (v, p) = m.stream_parts_mut();
    (cut(v, edge), p)
}

impl<T: Element> AsInput for ZarrArray<T> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        Input::zarr(self.array())
    }
}

impl<T: Element> AsInput for ZarrArrayMut<T> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        Input::zarr(self.array())
    }
}

impl<T: Element> AsOutput for ZarrArrayMut<T> {
    type Elem = T;
    fn output(&mut self) -> Output<'_, T> {
        Output::zarr(self)
    }
}

/// A Zarr chunk streams like a mapped array (a chunk never written, like an array in memory).
impl<T: Element> AsInput for Chunk<T> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        let (v, p) = in_parts(self);
        Input::new(v, p)
    }
}

impl<T: Element> AsOutput for ChunkMut<T> {
    type Elem = T;
    fn output(&mut self) -> Output<'_, T> {
        let (v, p) = out_parts(self);
        Output::new(v, Some(p))
    }
}

fn survey_of<T: Element>(array: &Array<T>) -> Result<Survey, Error> {
    Ok(collect(array, array.survey()?))
}

fn collect<T: Element>(array: &Array<T>, files: Vec<crate::zarr::ChunkFile>) -> Survey {
    let ids = files
        .iter()
        .filter_map(|f| f.id.map(|id| (id, f.path.clone())))
        .collect();
    Survey {
        files: files
            .into_iter()
            .filter_map(|f| f.id.map(|id| ((id, f.offset), (f.index, f.path))))
            .collect(),
        ids,
        layout: (
            array.shape().to_vec(),
            array.chunk_shape().to_vec(),
            array.order() == Order::F,
        ),
        chunk_bytes: byte_count::<T>(array.chunk_shape()) as u64,
    }
}

/// Bytes of an array of `shape`, saturating.
fn byte_count<T>(shape: &[usize]) -> usize {
    shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_the_boxes_bytes_in_offset_order() {
        // A 4 x 6 chunk of 4-byte elements, C order: rows 1..3, columns 2..5.
        let runs = |s: &[usize], o, r: &[(usize, usize)], e| runs(s, o, r, e).collect::<Vec<_>>();
        assert_eq!(
            runs(&[4, 6], Order::C, &[(1, 2), (2, 3)], 4),
            [(32, 12), (56, 12)]
        );
        // Whole rows merge into one run.
        assert_eq!(runs(&[4, 6], Order::C, &[(1, 2), (0, 6)], 4), [(24, 48)]);
        // Fortran order: columns are the runs.
        assert_eq!(
            runs(&[4, 6], Order::F, &[(1, 2), (2, 2)], 4),
            [(36, 8), (52, 8)]
        );
        // 3-d, an inner axis cut: one run per (i, j).
        let r = runs(&[2, 3, 4], Order::C, &[(0, 2), (1, 1), (0, 4)], 1);
        assert_eq!(r, [(4, 4), (16, 4)]);
        // Nothing for an empty box; one element for 0-d.
        assert!(runs(&[4, 6], Order::C, &[(1, 0), (0, 6)], 4).is_empty());
        assert_eq!(runs(&[], Order::C, &[], 8), [(0, 8)]);
    }

    #[test]
    fn regions_map_into_their_chunk() {
        assert_eq!(locate(&[4, 3], &[8..10, 3..5]), (vec![2, 1], vec![8, 3]));
        let rel = relative(&[Slice::from(9..10), Slice::from(3..5)], &[8, 3]);
        assert_eq!(
            (rel[0].start, rel[0].end, rel[1].end),
            (1, Some(2), Some(2))
        );
        assert_eq!(dense_strides(&[2, 3, 4], Order::C), [12, 4, 1]);
        assert_eq!(dense_strides(&[2, 3, 4], Order::F), [1, 2, 6]);
    }
}
