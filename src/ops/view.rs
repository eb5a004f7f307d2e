//! Operands that are one view: an ndarray array or view in memory, or a mapped one with
//! the paging hooks of its map ([`InStream`]/[`OutStream`]), read or written through the
//! file when the policy says so.

use std::ops::Range;

use ndarray::{ArrayViewD, ArrayViewMutD, Slice};

use crate::error::Error;
use crate::map::pager::{InPager, OutPager};

use super::layout::dense;
use super::overlap::Operand;
use super::part::{Input, Output, Reader, Writer};
use super::plan::{InStream, OutStream, Scratch, ScratchOf, same_order};

/// An input that is one view.
struct ViewIn<'a, T> {
    view: ArrayViewD<'a, T>,
    pager: Option<InPager<'a>>,
    stream: Option<InStream<'a>>,
    /// The shape it is broadcast to, when it is.
    broadcast: Option<Vec<usize>>,
    /// Where a piece read through the file goes (mapped inputs of plain data; see
    /// [`InStream::read`]), and the order of the piece in it, when it holds one.
    scratch: Option<Box<dyn ScratchOf<T> + 'a>>,
    read: Option<crate::Order>,
}

/// An output that is one view.
struct ViewOut<'a, T> {
    view: ArrayViewMutD<'a, T>,
    pager: Option<OutPager<'a>>,
    stream: Option<OutStream<'a>>,
    /// Where a write-only piece is computed before it is written through the file
    /// (mapped outputs only; see `direct`).
    scratch: Option<Box<dyn ScratchOf<T> + 'a>>,
    /// The operation never reads the output (`c = a + b`, not `a += b`).
    write_only: bool,
    /// Pieces go through `scratch` and `pwrite`: a write-only output under `Bounded`,
    /// written in its file order, shared (Linux). Writing a dense file through the map
    /// reads every page before it is overwritten; this does not.
    direct: bool,
    /// The byte of the map where the piece in `scratch` goes.
    pending: Option<usize>,
}

/// The buffer pieces of a mapped operand of plain data go through when they are read or
/// written through the file; none for elements aligned past its 16 bytes (those pieces stay
/// on the map).
fn scratch_for<'a, T: bytemuck::Pod>() -> Option<Box<dyn ScratchOf<T> + 'a>> {
    (std::mem::align_of::<T>() <= 16).then(|| Box::new(Scratch::default()) as Box<dyn ScratchOf<T>>)
}

impl<'a, T: 'a> Input<'a, T> {
    /// A view, with the paging hooks of its map when it is mapped.
    pub(super) fn new(view: ArrayViewD<'a, T>, pager: Option<InPager<'a>>) -> Self {
        Self::of(Box::new(ViewIn::of(view, pager, None)))
    }

    /// A mapped input of plain data, which can be read through the file.
    pub(super) fn mapped(view: ArrayViewD<'a, T>, pager: InPager<'a>) -> Self
    where
        T: bytemuck::Pod,
    {
        Self::of(Box::new(ViewIn::of(view, Some(pager), scratch_for::<T>())))
    }
}

impl<'a, T: 'a> Output<'a, T> {
    /// A mutable view, with the paging hooks of its map when it is mapped.
    pub(super) fn new(view: ArrayViewMutD<'a, T>, pager: Option<OutPager<'a>>) -> Self {
        Self::of(Box::new(ViewOut::of(view, pager, None)))
    }

    /// A mapped output of plain data, which can be written through the file.
    pub(super) fn mapped(view: ArrayViewMutD<'a, T>, pager: OutPager<'a>) -> Self
    where
        T: bytemuck::Pod,
    {
        Self::of(Box::new(ViewOut::of(view, Some(pager), scratch_for::<T>())))
    }
}

impl<'a, T> ViewIn<'a, T> {
    fn of(
        view: ArrayViewD<'a, T>,
        pager: Option<InPager<'a>>,
        scratch: Option<Box<dyn ScratchOf<T> + 'a>>,
    ) -> Self {
        ViewIn {
            view,
            pager,
            stream: None,
            broadcast: None,
            scratch,
            read: None,
        }
    }
}

impl<'a, T> ViewOut<'a, T> {
    fn of(
        view: ArrayViewMutD<'a, T>,
        pager: Option<OutPager<'a>>,
        scratch: Option<Box<dyn ScratchOf<T> + 'a>>,
    ) -> Self {
        ViewOut {
            view,
            pager,
            stream: None,
            scratch,
            write_only: false,
            direct: false,
            pending: None,
        }
    }
}

/// Whether a map's pages are mostly not in the page cache (a `mincore` sample).
fn cold(pages: Option<&crate::map::pager::Pages<'_>>) -> bool {
    pages
        .and_then(|p| p.resident_share())
        .is_some_and(|s| s < 0.5)
}

impl<T> ViewIn<'_, T> {
    /// The view as the engine sees it: broadcast when asked.
    fn seen(&self) -> ArrayViewD<'_, T> {
        match &self.broadcast {
            // Checked by `broadcast_to` on this very view and shape.
            Some(shape) => self
                .view
                .broadcast(shape.as_slice())
                .expect("the broadcast was checked when the operand was added"),
            None => self.view.view(),
        }
    }
}

impl<'a, T> Reader<'a, T> for ViewIn<'a, T> {
    fn shape(&self) -> Vec<usize> {
        self.seen().shape().to_vec()
    }
    fn strides(&self) -> Vec<isize> {
        self.seen().strides().to_vec()
    }
    fn span(&self) -> Operand {
        let mut o = Operand::of(&self.view);
        o.broadcast = self.broadcast.is_some();
        o
    }
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Vec<usize>> {
        if self.view.broadcast(shape).is_none() {
            return Err(self.view.shape().to_vec());
        }
        if self.view.shape() != shape {
            self.broadcast = Some(shape.to_vec());
        }
        Ok(())
    }
    fn mapped_len(&self) -> usize {
        self.pager.as_ref().map_or(0, |p| p.len())
    }
    fn cold(&self) -> bool {
        cold(self.pager.as_deref())
    }
    fn read_ahead(&self) -> Option<u64> {
        self.pager.as_ref().map(|p| p.read_ahead())
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        _chunks_in_order: bool,
        read_through: bool,
    ) {
        // Pages are dropped behind the stream only when it reads the input in its file
        // order: not broadcast, same layout as the chunking, regions one after another in
        // memory. An input over an output's own bytes (another map of them) is dropped
        // behind too: its map holds the pages as much as the output's does.
        let v = self.seen();
        let in_order =
            sequential && self.broadcast.is_none() && same_order(v.shape(), v.strides(), lead);
        self.stream = InStream::new(self.pager.take(), in_order, bounded)
            .map(|s| s.reading_through(read_through));
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        self.read = None;
        match self.stream.as_mut() {
            Some(s) if self.broadcast.is_none() => {
                let p = self.view.slice_each_axis(|d| piece[d.axis.index()]);
                if let Some(scratch) = self.scratch.as_deref_mut()
                    && let Some(order) = s.read(&p, scratch)?
                {
                    self.read = Some(order);
                    return Ok(());
                }
                s.at(&p)
            }
            _ => Ok(()),
        }
    }
    fn piece(&mut self, piece: &[Slice]) -> ArrayViewD<'_, T> {
        match (self.read, self.scratch.as_deref()) {
            // Read through the file by `before`: the same elements, in the buffer.
            (Some(order), Some(scratch)) => {
                let shape: Vec<usize> = piece
                    .iter()
                    .map(|s| s.end.map_or(0, |e| e - s.start) as usize)
                    .collect();
                scratch.last(&shape, order)
            }
            _ => {
                let mut v = self.seen();
                v.slice_each_axis_inplace(|d| piece[d.axis.index()]);
                v
            }
        }
    }
    fn finish(&mut self, _completed: bool) -> Result<(), Error> {
        if let Some(s) = self.stream.take() {
            s.finish();
        }
        Ok(())
    }
    fn into_view(self: Box<Self>) -> Result<(ArrayViewD<'a, T>, Option<InPager<'a>>), Error> {
        Ok((self.view, self.pager))
    }
}

impl<T> Writer<T> for ViewOut<'_, T> {
    fn shape(&self) -> Vec<usize> {
        self.view.shape().to_vec()
    }
    fn strides(&self) -> Vec<isize> {
        self.view.strides().to_vec()
    }
    fn span(&self) -> Operand {
        Operand::of(&self.view.view())
    }
    fn mapped_len(&self) -> usize {
        self.pager.as_ref().map_or(0, |p| p.len())
    }
    fn cold(&self) -> bool {
        cold(self.pager.as_deref())
    }
    fn read_ahead(&self) -> Option<u64> {
        let p = self.pager.as_ref()?;
        // Written through `pwrite` under `Bounded` (see `start`): never read. Otherwise
        // read too (in place, a closure that may read, or written through the map): its
        // faults read around.
        Some(
            if self.write_only && self.scratch.is_some() && p.can_write_at() {
                0
            } else {
                p.read_ahead()
            },
        )
    }
    fn write_only(&mut self) {
        self.write_only = true;
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        _chunks_in_order: bool,
        write_through: Option<bool>,
    ) {
        let in_order = sequential && same_order(self.view.shape(), self.view.strides(), lead);
        // A write-only output whose pages are not in the page cache (a new file, or one
        // on the disk only) is written with `pwrite` under either policy: through the map,
        // each page would be faulted in (read from the disk, for a dense file) before it
        // is overwritten. One that is cached is written in place under `Cached`.
        let through_file = self.write_only && in_order && (bounded || Writer::cold(self));
        self.stream = OutStream::new(self.pager.take(), in_order, bounded, write_through);
        self.direct = through_file
            && self.scratch.is_some()
            && self.stream.as_ref().is_some_and(|s| s.pager.can_write_at());
        // Read ahead: an output is often read too (in place, `*d += x`), and a dense
        // file's pages are read before they are overwritten anyway.
        if let Some(s) = &self.stream {
            s.pager.sequential();
        }
    }
    fn enter(&mut self, _region: &[Range<usize>]) -> Result<(), Error> {
        Ok(()) // a view is one region whatever the regions
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        let p = self.view.slice_each_axis_mut(|d| piece[d.axis.index()]);
        if self.direct && dense(&p.view()).is_some() {
            s.at_direct(&p)
        } else {
            s.at(&p)
        }
    }
    fn piece(&mut self, piece: &[Slice]) -> ArrayViewMutD<'_, T> {
        if self.direct
            && let (Some(scratch), Some(s)) = (self.scratch.as_deref_mut(), self.stream.as_ref())
        {
            // A piece laid out densely (C or Fortran) goes through the scratch buffer; any
            // other stays on the map.
            let v = self.view.slice_each_axis(|d| piece[d.axis.index()]);
            if let Some(order) = dense(&v) {
                self.pending = Some(v.as_ptr() as usize - s.pager.addr());
                let shape = v.shape().to_vec();
                return scratch.view(&shape, order);
            }
        }
        self.view.slice_each_axis_mut(|d| piece[d.axis.index()])
    }
    fn after(&mut self) -> Result<(), Error> {
        match (self.pending.take(), &self.stream, self.scratch.as_deref()) {
            (Some(lo), Some(s), Some(scratch)) => s.pager.write_at(lo, scratch.bytes()),
            _ => Ok(()),
        }
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        match self.stream.take() {
            Some(s) => {
                s.pager.normal();
                s.finish(completed)
            }
            None => Ok(()),
        }
    }
}
