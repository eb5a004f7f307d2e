//! The streaming [`Zip`]: ndarray's `Zip` over up to six operands, mapped or in memory,
//! visited chunk by chunk in the memory order of its first output, with the paging hooks
//! of every mapped operand.

use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, ArrayViewMutD, Data, DataMut, Dimension, Slice};

use crate::error::Error;
use crate::map::pager::{InPager, OutPager, memory_available};
use crate::map::{MmapArray, MmapArrayMut};

use super::engine::report;
use super::operand::sealed::{SinkParts, SourceParts};
use super::operand::{Operand, Overlap, Survey, overlap};
use super::options::{DEFAULT_CHUNK_BYTES, Paging, StreamOptions, Through};
use super::plan::{InStream, OutStream, Plan, Regions, Scratch, ScratchOf, same_order};

pub(super) mod sealed {
    use std::ops::Range;

    use ndarray::{IxDyn, NdProducer, Slice};

    use super::super::options::Through;
    use super::Error;

    /// What a closure item is for one kind of operand: `&T` or `&mut T`.
    pub trait Kind {
        type Item<'p>: Send;
    }

    /// The engine's side of an operand: its layout, its pieces, its paging hooks.
    pub trait Part {
        type K: Kind;
        type Piece<'p>: NdProducer<Dim = IxDyn, Item = <Self::K as Kind>::Item<'p>> + Send
        where
            Self: 'p;
        /// Whether the operand is written (then it leads the chunking and is never
        /// broadcast).
        const WRITES: bool;
        fn shape(&self) -> Vec<usize>;
        fn strides(&self) -> Vec<isize>;
        fn elem_size(&self) -> usize;
        fn span(&self) -> super::Operand;
        /// Broadcast to `shape` (inputs only).
        fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Error>;
        /// Read this operand through a copy of each piece: it is the same bytes as an
        /// output (two maps of one file), so the output's writes must not reach it
        /// before it is read.
        fn snapshot(&mut self);
        /// Bytes of its map, when it is mapped.
        fn mapped_len(&self) -> usize;
        /// For a mapped operand, the bytes the kernel may read ahead of it (0 for an
        /// output that is only written) and its element size: what it costs a stream's
        /// memory beyond its pieces, and the size of its pieces.
        fn read_ahead(&self) -> Option<(u64, usize)>;
        /// The chunk shape of a Zarr operand: the stream visits regions that each lie
        /// inside one of its chunks.
        fn grid(&self) -> Option<Vec<usize>>;
        /// Sets up the paging hooks, given the chunking's strides; `bounded` when the
        /// stream must keep its memory bounded (see `Paging`); `sequential` when its
        /// regions follow one another in the chunking's memory order.
        /// `chunks_in_order` when each Zarr chunk's regions come one after another in its
        /// memory order (one grid for all, or `sequential`).
        /// `through`: what goes through the file (output pieces to write-back at once,
        /// input pieces read with `pread`).
        fn start(
            &mut self,
            lead_strides: &[isize],
            bounded: bool,
            sequential: bool,
            chunks_in_order: bool,
            through: Through,
        );
        /// A Zarr operand's chunk files, checked before the stream starts.
        fn survey(&mut self) -> Result<Option<super::super::operand::Survey>, Error>;
        /// A Zarr output creates its missing chunk files (once the checks have passed).
        fn prepare(&mut self) -> Result<(), Error>;
        /// The stream moves to `region` (the array's indices); pieces come from it
        /// until the next call.
        fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error>;
        /// Paging before a piece is touched.
        fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
        fn piece<'p>(&'p mut self, piece: &[Slice]) -> Self::Piece<'p>;
        /// The piece is computed: a piece computed aside goes to the file.
        fn after(&mut self) -> Result<(), Error>;
        /// Paging at the end; `completed` when every piece was done.
        fn finish(&mut self, completed: bool) -> Result<(), Error>;
    }
}

use sealed::{Kind, Part};

/// Items of read-only operands: `&T`.
pub struct Ro<T>(PhantomData<T>);
/// Items of written operands: `&mut T`.
pub struct Rw<T>(PhantomData<T>);

impl<T: Sync + 'static> Kind for Ro<T> {
    type Item<'p> = &'p T;
}
impl<T: Send + 'static> Kind for Rw<T> {
    type Item<'p> = &'p mut T;
}

/// A read-only operand of a [`Zip`]: a view (with the paging hooks when it is mapped,
/// and how it is broadcast), or a Zarr array read chunk by chunk.
pub struct Input<'a, T> {
    src: InSrc<'a, T>,
    /// Read through a copy of each piece (see [`Part::snapshot`]).
    copy: Option<ArrayD<T>>,
    snapshot: bool,
    /// What error messages call it.
    name: &'static str,
}

// The view is the common case, made once per stream: not worth a box.
#[allow(clippy::large_enum_variant)]
enum InSrc<'a, T> {
    View(Whole<'a, T>),
    #[cfg(feature = "zarr")]
    Zarr(Box<dyn super::zarr::ZarrRead<T> + 'a>),
}

/// An input that is one view.
struct Whole<'a, T> {
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

/// A written operand of a [`Zip`]: a mutable view and, when it is mapped, the hooks that
/// bound its dirty pages; or a Zarr array written chunk by chunk.
pub struct Output<'a, T>(OutDst<'a, T>);

// The view is the common case, made once per stream: not worth a box.
#[allow(clippy::large_enum_variant)]
enum OutDst<'a, T> {
    View {
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
    },
    #[cfg(feature = "zarr")]
    Zarr(Box<dyn super::zarr::ZarrWrite<T> + 'a>),
}

impl<'a, T> Output<'a, T> {
    pub(super) fn new(view: ArrayViewMutD<'a, T>, pager: Option<OutPager<'a>>) -> Self {
        Output(OutDst::View {
            view,
            pager,
            stream: None,
            scratch: None,
            write_only: false,
            direct: false,
            pending: None,
        })
    }

    /// A mapped output of plain data, which can be written through the file.
    pub(super) fn mapped(view: ArrayViewMutD<'a, T>, pager: OutPager<'a>) -> Self
    where
        T: bytemuck::Pod,
    {
        let mut o = Self::new(view, Some(pager));
        // (The scratch buffer is aligned to 16 bytes: wider-aligned elements stay on the map.)
        #[cfg_attr(not(feature = "zarr"), allow(irrefutable_let_patterns))]
        if let OutDst::View { scratch, .. } = &mut o.0
            && std::mem::align_of::<T>() <= 16
        {
            *scratch = Some(Box::new(Scratch::default()));
        }
        o
    }

    /// The operation never reads this output.
    pub(super) fn write_only(mut self) -> Self {
        match &mut self.0 {
            OutDst::View { write_only, .. } => *write_only = true,
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.write_only(),
        }
        self
    }

    #[cfg(feature = "zarr")]
    pub(super) fn zarr(array: &'a mut crate::zarr::ZarrArrayMut<T>) -> Self
    where
        T: crate::Element,
    {
        Output(OutDst::Zarr(Box::new(super::zarr::ZarrOut::new(array))))
    }
}

impl<'a, T> Input<'a, T> {
    pub(super) fn new(view: ArrayViewD<'a, T>, pager: Option<InPager<'a>>) -> Self {
        Self::of(InSrc::View(Whole {
            view,
            pager,
            stream: None,
            broadcast: None,
            scratch: None,
            read: None,
        }))
    }

    /// A mapped input of plain data, which can be read through the file.
    pub(super) fn mapped(view: ArrayViewD<'a, T>, pager: InPager<'a>) -> Self
    where
        T: bytemuck::Pod,
    {
        let mut i = Self::new(view, Some(pager));
        // (The scratch buffer is aligned to 16 bytes: wider-aligned elements stay on the map.)
        #[cfg_attr(not(feature = "zarr"), allow(irrefutable_let_patterns))]
        if let InSrc::View(w) = &mut i.src
            && std::mem::align_of::<T>() <= 16
        {
            w.scratch = Some(Box::new(Scratch::default()));
        }
        i
    }

    #[cfg(feature = "zarr")]
    pub(super) fn zarr(array: &'a crate::zarr::Array<T>) -> Self
    where
        T: crate::Element,
    {
        Self::of(InSrc::Zarr(Box::new(super::zarr::ZarrIn::new(array))))
    }

    fn of(src: InSrc<'a, T>) -> Self {
        Input {
            src,
            copy: None,
            snapshot: false,
            name: "the broadcast input",
        }
    }

    /// Names the operand in error messages ("the first input", ...).
    pub(super) fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The view and paging hooks of an input that is one view (for [`chunks`](super::chunks));
    /// a Zarr array is refused, naming its chunks as the way.
    pub(super) fn into_view(self) -> Result<(ArrayViewD<'a, T>, Option<InPager<'a>>), Error> {
        match self.src {
            InSrc::View(w) => Ok((w.view, w.pager)),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => Err(Error::Zarr {
                path: z.dir().to_path_buf(),
                problem: crate::error::ZarrProblem::Unsupported {
                    what: "ops::chunks over a whole Zarr array (visit its chunks with \
                           chunk_indices() and chunk(), or stream it with ops::Zip)"
                        .into(),
                },
            }),
        }
    }
}

impl<T> Whole<'_, T> {
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

impl<T: Clone + Sync + 'static> Part for Input<'_, T> {
    type K = Ro<T>;
    type Piece<'p>
        = ArrayViewD<'p, T>
    where
        Self: 'p;
    const WRITES: bool = false;

    fn shape(&self) -> Vec<usize> {
        match &self.src {
            InSrc::View(w) => w.seen().shape().to_vec(),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.shape().to_vec(),
        }
    }
    fn strides(&self) -> Vec<isize> {
        match &self.src {
            InSrc::View(w) => w.seen().strides().to_vec(),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.strides().to_vec(),
        }
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn span(&self) -> Operand {
        match &self.src {
            InSrc::View(w) => {
                let mut o = Operand::of(&w.view);
                o.broadcast = w.broadcast.is_some();
                o
            }
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.span(),
        }
    }
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Error> {
        let refuse = |input: &[usize]| Error::Broadcast {
            operand: self.name,
            input: input.to_vec(),
            output: shape.to_vec(),
            onto: "the output",
        };
        match &mut self.src {
            InSrc::View(w) => {
                if w.view.broadcast(shape).is_none() {
                    return Err(refuse(w.view.shape()));
                }
                if w.view.shape() != shape {
                    w.broadcast = Some(shape.to_vec());
                }
                Ok(())
            }
            // A Zarr array streams chunk by chunk in its own shape only.
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) if z.shape() != shape => Err(refuse(z.shape())),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(_) => Ok(()),
        }
    }
    fn snapshot(&mut self) {
        self.snapshot = true;
    }
    fn mapped_len(&self) -> usize {
        match &self.src {
            InSrc::View(w) => w.pager.as_ref().map_or(0, |p| p.len()),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.mapped_len(),
        }
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        let ahead = match &self.src {
            InSrc::View(w) => w.pager.as_ref().map(|p| p.read_ahead()),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => Some(crate::map::pager::read_ahead_at(z.dir())),
        };
        ahead.map(|a| (a, self.elem_size()))
    }
    fn grid(&self) -> Option<Vec<usize>> {
        match &self.src {
            InSrc::View(_) => None,
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => Some(z.chunk_shape().to_vec()),
        }
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    ) {
        match &mut self.src {
            InSrc::View(w) => {
                let _ = chunks_in_order;
                // Pages are dropped behind the stream only when it reads the input in
                // its file order: not broadcast, same layout as the chunking, regions
                // one after another in memory. An input over an output's own bytes
                // (another map of them) is dropped behind too: its map holds the pages
                // as much as the output's does.
                let v = w.seen();
                let in_order =
                    sequential && w.broadcast.is_none() && same_order(v.shape(), v.strides(), lead);
                w.stream = InStream::new(w.pager.take(), in_order, bounded)
                    .map(|s| s.reading_through(through.read));
            }
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.start(lead, bounded, chunks_in_order, through.read),
        }
    }
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        match &mut self.src {
            InSrc::View(_) => Ok(None),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.survey().map(Some),
        }
    }
    fn prepare(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        match &mut self.src {
            InSrc::View(_) => {
                let _ = region; // a view is one region whatever the regions
                Ok(())
            }
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.enter(region),
        }
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        match &mut self.src {
            InSrc::View(w) => {
                w.read = None;
                match w.stream.as_mut() {
                    Some(s) if w.broadcast.is_none() => {
                        let p = w.view.slice_each_axis(|d| piece[d.axis.index()]);
                        if let Some(scratch) = w.scratch.as_deref_mut()
                            && let Some(order) = s.read(&p, scratch)?
                        {
                            w.read = Some(order);
                            return Ok(());
                        }
                        s.at(&p)
                    }
                    _ => Ok(()),
                }
            }
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.before(piece),
        }
    }
    fn piece<'p>(&'p mut self, piece: &[Slice]) -> ArrayViewD<'p, T> {
        let Input {
            src,
            copy,
            snapshot,
            ..
        } = self;
        let v = match src {
            InSrc::View(w) => match (w.read, w.scratch.as_deref()) {
                // Read through the file by `before`: the same elements, in the buffer.
                (Some(order), Some(scratch)) => {
                    let shape: Vec<usize> = piece
                        .iter()
                        .map(|s| s.end.map_or(0, |e| e - s.start) as usize)
                        .collect();
                    scratch.last(&shape, order)
                }
                _ => {
                    let mut v = w.seen();
                    v.slice_each_axis_inplace(|d| piece[d.axis.index()]);
                    v
                }
            },
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.piece(piece),
        };
        if !*snapshot {
            return v;
        }
        // The same bytes as an output, so never broadcast (a broadcast view has another
        // shape): the piece is read through a copy, into one reused buffer.
        match &mut *copy {
            Some(c) if c.shape() == v.shape() => c.assign(&v),
            c => *c = Some(v.to_owned()),
        }
        copy.as_ref().expect("the copy was made just above").view()
    }
    fn after(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn finish(&mut self, _completed: bool) -> Result<(), Error> {
        match &mut self.src {
            InSrc::View(w) => {
                if let Some(s) = w.stream.take() {
                    s.finish();
                }
            }
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => z.finish(),
        }
        Ok(())
    }
}

impl<T: Send + 'static> Part for Output<'_, T> {
    type K = Rw<T>;
    type Piece<'p>
        = ArrayViewMutD<'p, T>
    where
        Self: 'p;
    const WRITES: bool = true;

    fn shape(&self) -> Vec<usize> {
        match &self.0 {
            OutDst::View { view, .. } => view.shape().to_vec(),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.shape().to_vec(),
        }
    }
    fn strides(&self) -> Vec<isize> {
        match &self.0 {
            OutDst::View { view, .. } => view.strides().to_vec(),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.strides().to_vec(),
        }
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn span(&self) -> Operand {
        match &self.0 {
            OutDst::View { view, .. } => Operand::of(&view.view()),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.span(),
        }
    }
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Error> {
        Err(Error::Broadcast {
            operand: "the output",
            input: self.shape(),
            output: shape.to_vec(),
            onto: "the output",
        })
    }
    fn snapshot(&mut self) {}
    fn mapped_len(&self) -> usize {
        match &self.0 {
            OutDst::View { pager, .. } => pager.as_ref().map_or(0, |p| p.len()),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.mapped_len(),
        }
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        let size = self.elem_size();
        match &self.0 {
            // Written through `pwrite` under `Bounded` (see `start`): never read.
            OutDst::View {
                pager: Some(p),
                write_only: true,
                scratch: Some(_),
                ..
            } if p.can_write_at() => Some((0, size)),
            // Read too (in place, a closure that may read, or written through the map):
            // its faults read around.
            OutDst::View { pager: Some(p), .. } => Some((p.read_ahead(), size)),
            OutDst::View { pager: None, .. } => None,
            // A Zarr chunk is read before it is overwritten, unless it is only written
            // (then its dense pieces go through `pwrite`).
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) if z.is_write_only() => Some((0, size)),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => Some((crate::map::pager::read_ahead_at(z.dir()), size)),
        }
    }
    fn grid(&self) -> Option<Vec<usize>> {
        match &self.0 {
            OutDst::View { .. } => None,
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => Some(z.chunk_shape().to_vec()),
        }
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    ) {
        match &mut self.0 {
            OutDst::View {
                view,
                pager,
                stream,
                scratch,
                write_only,
                direct,
                ..
            } => {
                let _ = chunks_in_order;
                let in_order = sequential && same_order(view.shape(), view.strides(), lead);
                *stream = OutStream::new(pager.take(), in_order, bounded, through.write);
                *direct = *write_only
                    && bounded
                    && in_order
                    && scratch.is_some()
                    && stream.as_ref().is_some_and(|s| s.pager.can_write_at());
                // Read ahead: an output is often read too (in place, `*d += x`), and a
                // dense file's pages are read before they are overwritten anyway.
                if let Some(s) = stream {
                    s.pager.sequential();
                }
            }
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.start(lead, bounded, chunks_in_order, through.write),
        }
    }
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        match &mut self.0 {
            OutDst::View { .. } => Ok(None),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.survey().map(Some),
        }
    }
    fn prepare(&mut self) -> Result<(), Error> {
        match &mut self.0 {
            OutDst::View { .. } => Ok(()),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.prepare(),
        }
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        match &mut self.0 {
            OutDst::View { .. } => {
                let _ = region;
                Ok(())
            }
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.enter(region),
        }
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        match &mut self.0 {
            OutDst::View {
                view,
                stream,
                direct,
                ..
            } => match stream.as_mut() {
                Some(s)
                    if *direct
                        && dense(&view.slice_each_axis(|d| piece[d.axis.index()])).is_some() =>
                {
                    s.at_direct(&view.slice_each_axis_mut(|d| piece[d.axis.index()]))
                }
                Some(s) => s.at(&view.slice_each_axis_mut(|d| piece[d.axis.index()])),
                None => Ok(()),
            },
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.before(piece),
        }
    }
    fn piece<'p>(&'p mut self, piece: &[Slice]) -> ArrayViewMutD<'p, T> {
        match &mut self.0 {
            OutDst::View {
                view,
                stream,
                scratch: Some(scratch),
                direct: true,
                pending,
                ..
            } => {
                // A piece laid out densely (C or Fortran) goes through the scratch buffer;
                // any other stays on the map.
                let (shape, ptr, order) = {
                    let v = view.slice_each_axis(|d| piece[d.axis.index()]);
                    (v.shape().to_vec(), v.as_ptr() as usize, dense(&v))
                };
                match (order, stream.as_ref()) {
                    (Some(order), Some(s)) => {
                        *pending = Some(ptr - s.pager.addr());
                        scratch.view(&shape, order)
                    }
                    _ => view.slice_each_axis_mut(|d| piece[d.axis.index()]),
                }
            }
            OutDst::View { view, .. } => view.slice_each_axis_mut(|d| piece[d.axis.index()]),
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.piece(piece),
        }
    }
    fn after(&mut self) -> Result<(), Error> {
        match &mut self.0 {
            OutDst::View {
                stream: Some(s),
                scratch: Some(scratch),
                pending,
                ..
            } => match pending.take() {
                Some(lo) => s.pager.write_at(lo, scratch.bytes()),
                None => Ok(()),
            },
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.after(),
            _ => Ok(()),
        }
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        match &mut self.0 {
            OutDst::View { stream, .. } => match stream.take() {
                Some(s) => {
                    s.pager.normal();
                    s.finish(completed)
                }
                None => Ok(()),
            },
            #[cfg(feature = "zarr")]
            OutDst::Zarr(z) => z.finish(completed),
        }
    }
}

/// The order a piece of a write-only output is laid out densely in (C or Fortran), when it
/// goes through the scratch buffer and `pwrite`; `None` keeps it on the map (another
/// layout, or more than 64 MiB: the buffer is heap memory).
pub(super) fn dense<T>(v: &ArrayViewD<'_, T>) -> Option<crate::Order> {
    const SCRATCH_MAX: usize = 64 << 20;
    if v.len().saturating_mul(std::mem::size_of::<T>()) > SCRATCH_MAX {
        None
    } else if v.is_standard_layout() {
        Some(crate::Order::C)
    } else if v.t().is_standard_layout() {
        Some(crate::Order::F)
    } else {
        None
    }
}

/// What [`Zip::from`] and [`Zip::and`] accept: `&x` of an ndarray array or view, or of a
/// mapped owner, gives `&T` items; `&mut x` of a mutable array or view, or of an
/// [`MmapArrayMut`], gives `&mut T` items, as in ndarray's `Zip`.
///
/// Sealed: implemented by this crate for those types only.
///
/// ```
/// use ndarray::array;
/// use ndarray_mmap::ops::Zip;
/// let a = array![1, 2, 3];
/// let mut c = array![0, 0, 0];
/// Zip::from(&mut c).and(&a).for_each(|c, &a| *c = a * 10)?;
/// assert_eq!(c, array![10, 20, 30]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub trait IntoPart<'a>: sealed_into::Sealed {
    /// The engine's form of the operand.
    type Part: Part;
    #[doc(hidden)]
    fn into_part(self) -> Self::Part;
}

mod sealed_into {
    pub trait Sealed {}
}

impl<T: Clone + Sync + 'static, S: Data<Elem = T>, D: Dimension> sealed_into::Sealed
    for &ArrayBase<S, D>
{
}
impl<'a, T: Clone + Sync + 'static, S: Data<Elem = T>, D: Dimension> IntoPart<'a>
    for &'a ArrayBase<S, D>
{
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        Input::new(self.view().into_dyn(), None)
    }
}

impl<T: Send + 'static, S: DataMut<Elem = T>, D: Dimension> sealed_into::Sealed
    for &mut ArrayBase<S, D>
{
}
impl<'a, T: Send + 'static, S: DataMut<Elem = T>, D: Dimension> IntoPart<'a>
    for &'a mut ArrayBase<S, D>
{
    type Part = Output<'a, T>;
    fn into_part(self) -> Output<'a, T> {
        Output::new(self.view_mut().into_dyn(), None)
    }
}

impl<T: bytemuck::Pod + Sync, D: Dimension> sealed_into::Sealed for &MmapArray<T, D> {}
impl<'a, T: bytemuck::Pod + Sync, D: Dimension> IntoPart<'a> for &'a MmapArray<T, D> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        SourceParts::input(self)
    }
}

impl<T: bytemuck::Pod + Sync, D: Dimension> sealed_into::Sealed for &MmapArrayMut<T, D> {}
impl<'a, T: bytemuck::Pod + Sync, D: Dimension> IntoPart<'a> for &'a MmapArrayMut<T, D> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        SourceParts::input(self)
    }
}

impl<T: bytemuck::Pod + Send, D: Dimension> sealed_into::Sealed for &mut MmapArrayMut<T, D> {}
impl<'a, T: bytemuck::Pod + Send, D: Dimension> IntoPart<'a> for &'a mut MmapArrayMut<T, D> {
    type Part = Output<'a, T>;
    fn into_part(self) -> Output<'a, T> {
        SinkParts::output(self)
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &crate::zarr::Chunk<T> {}
/// A Zarr chunk streams like a mapped array (a chunk never written, like an in-memory one).
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a crate::zarr::Chunk<T> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        let (v, p) = self.stream_parts();
        Input::new(v, p)
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &mut crate::zarr::ChunkMut<T> {}
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a mut crate::zarr::ChunkMut<T> {
    type Part = Output<'a, T>;
    fn into_part(self) -> Output<'a, T> {
        let (v, p) = self.stream_parts_mut();
        Output::new(v, Some(p))
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &crate::zarr::ZarrArray<T> {}
/// A whole Zarr array streams chunk by chunk: the Zip visits regions that each lie inside
/// one chunk of every Zarr operand, mapping each chunk when it gets there.
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a crate::zarr::ZarrArray<T> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        SourceParts::input(self)
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &crate::zarr::ZarrArrayMut<T> {}
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a crate::zarr::ZarrArrayMut<T> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        SourceParts::input(self)
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &mut crate::zarr::ZarrArrayMut<T> {}
/// A writable Zarr array streams chunk by chunk; a chunk with no file is created (its
/// space reserved) when the stream reaches it.
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a mut crate::zarr::ZarrArrayMut<T> {
    type Part = Output<'a, T>;
    fn into_part(self) -> Output<'a, T> {
        SinkParts::output(self)
    }
}

/// The closure item of part `P`: `&T` or `&mut T`.
type Item<'p, P> = <<P as Part>::K as Kind>::Item<'p>;

/// ndarray's `Zip`, streaming: up to six operands of one shape, any mix of mapped owners,
/// ndarray arrays or views and (with the `zarr` feature) whole Zarr arrays, visited chunk by
/// chunk (8 MiB by default), the chunks in
/// the memory order of the first written operand (else of the first operand), with the
/// paging hooks of every mapped one. Inside a chunk, ndarray's `Zip` picks the order, as
/// it does for arrays in memory (the layout most operands share).
///
/// Shapes must be equal ([`Error::Broadcast`] otherwise, before anything is written);
/// [`and_broadcast`](Zip::and_broadcast) broadcasts an input to the shape so far. Two
/// mapped operands over the same bytes of a file follow the crate's aliasing rule: the
/// same bytes in the same layout as an output read as the in-place operation (each
/// element is read before it is written), any other overlap is [`Error::Aliased`].
///
/// Zarr operands cut the array into regions at each of their chunk boundaries (their grids
/// may differ); the chunks go region by region, in the lead's memory order, and each Zarr
/// operand maps the chunk holding the region when the stream gets there. Before anything
/// is written, every chunk file of every Zarr operand is checked: its size (a chunk file
/// of the wrong size is [`Error::Zarr`]), and that no chunk file of an output is another
/// operand except the same chunk of another handle of the same array, read (the in-place
/// case; any other sharing is [`Error::Aliased`]); then an output's missing chunk files are
/// created (filled with the fill value, so no element changes). A Zarr array is never
/// broadcast, and at most 2^24 chunks stream. Grids that do not nest (`[n, 1]` chunks
/// against `[1, n]`) cut the array into tiny regions and map chunks again and again: give
/// operands grids that are multiples of each other.
///
/// ```
/// use ndarray_mmap::{create_array, ops::Zip};
/// # let dir = tempfile::tempdir()?;
/// let mut a = unsafe { create_array::<f32>(dir.path().join("a.f32"), [1000, 24]) }?;
/// let mut b = unsafe { create_array::<f32>(dir.path().join("b.f32"), [1000, 24]) }?;
/// let mut d = unsafe { create_array::<f32>(dir.path().join("d.f32"), [1000, 24]) }?;
/// a.view_mut().fill(1.0);
/// b.view_mut().fill(2.0);
/// let c = ndarray::Array2::<f32>::from_elem((1000, 24), 0.5); // in memory
/// Zip::from(&mut d).and(&a).and(&b).and(&c)
///     .for_each(|d, &a, &b, &c| *d = a * 2.0 + b * 3.0 + c)?;
/// assert!(d.view().iter().all(|&x| x == 8.5));
///
/// let dot: f64 = Zip::from(&a).and(&b).fold(0.0, |acc, &x, &y| acc + f64::from(x * y))?;
/// assert_eq!(dot, 48_000.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Zip does nothing until for_each or fold runs it"]
pub struct Zip<'o, P> {
    parts: P,
    shape: Vec<usize>,
    /// The first shape error, reported when the Zip runs (the builder cannot fail).
    error: Option<Error>,
    opts: StreamOptions<'o>,
}

impl<P> std::fmt::Debug for Zip<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zip")
            .field("shape", &self.shape)
            .field("error", &self.error)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl<'o, P1: Part> Zip<'o, (P1,)> {
    /// Starts a Zip with one operand; its shape is the Zip's.
    ///
    /// ```
    /// use ndarray_mmap::ops::Zip;
    /// let mut a = ndarray::array![1.0f64, 4.0, 9.0];
    /// Zip::from(&mut a).for_each(|x| *x = x.sqrt())?;
    /// assert_eq!(a, ndarray::array![1.0, 2.0, 3.0]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn from<'a, I: IntoPart<'a, Part = P1>>(operand: I) -> Self {
        let part = operand.into_part();
        Zip {
            shape: part.shape(),
            parts: (part,),
            error: None,
            opts: StreamOptions::new(),
        }
    }
}

impl<'o, P> Zip<'o, P> {
    /// Runs with these options: chunk size, threads (for the `par_*` methods), progress
    /// and cancel.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{StreamOptions, Zip};
    /// let a = ndarray::Array1::<u8>::ones(1000);
    /// let mut calls = 0;
    /// let opts = StreamOptions::new().chunk_bytes(100).progress(|_| {
    ///     calls += 1;
    ///     ControlFlow::Continue(())
    /// });
    /// let n = Zip::from(&a).with(opts).fold(0u32, |n, &x| n + u32::from(x))?;
    /// assert_eq!((n, calls), (1000, 10));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn with<'o2>(self, opts: StreamOptions<'o2>) -> Zip<'o2, P> {
        Zip {
            parts: self.parts,
            shape: self.shape,
            error: self.error,
            opts,
        }
    }

    fn check_shape(&mut self, shape: &[usize], operand: &'static str) {
        if self.error.is_none() && shape != self.shape.as_slice() {
            self.error = Some(Error::Broadcast {
                operand,
                input: shape.to_vec(),
                output: self.shape.clone(),
                onto: ZIP_SHAPE,
            });
        }
    }
}

/// Whose shape every operand of a [`Zip`] must have (or broadcast to).
const ZIP_SHAPE: &str = "the Zip's first operand";

/// The name of operand `k` (from 0) of a [`Zip`] in error messages.
fn zip_operand(k: usize) -> &'static str {
    const NAMES: [&str; 8] = [
        "operand 1 of the Zip",
        "operand 2 of the Zip",
        "operand 3 of the Zip",
        "operand 4 of the Zip",
        "operand 5 of the Zip",
        "operand 6 of the Zip",
        "operand 7 of the Zip",
        "an operand of the Zip",
    ];
    NAMES[k.min(NAMES.len() - 1)]
}

/// The engine: checks aliasing, plans pieces in the lead operand's memory order, runs
/// the paging hooks around `each(piece)`, reports progress, and always finishes the
/// hooks (write-back of what was written, even after an error or a cancel).
pub(super) fn run<P: Parts>(
    parts: &mut P,
    shape: &[usize],
    error: Option<Error>,
    mut opts: StreamOptions<'_>,
    mut each: impl FnMut(&mut P, &[Slice]),
) -> Result<(), Error> {
    if let Some(e) = error {
        return Err(e);
    }
    parts.check_aliasing()?;
    let (lead_strides, size) = parts.lead();
    let size = size.max(1);
    // Saturating: a broadcast view can have more elements than memory has bytes.
    let bytes_of = |elems: usize| (elems as u64).saturating_mul(size as u64);
    let total_elems = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    let total = bytes_of(total_elems);
    let mapped = parts.mapped_len() as u64;
    let available = if mapped > 0 { memory_available() } else { None };
    let bounded = opts.paging.choose(mapped).0 == Paging::Bounded;
    // The chunk adapts to the memory left only where results cannot depend on it: an
    // elementwise stream writes each element alike whatever the chunks, but a fold or a
    // float sum adds in an order the chunks decide.
    let chunk_bytes = match (opts.chunk_bytes, available) {
        (Some(c), _) => c,
        (None, Some(room)) if bounded && parts.writes() => {
            let (sizes, ahead) = parts.read_ahead();
            bounded_chunk(room, sizes.div_ceil(size), ahead)
        }
        (None, _) => DEFAULT_CHUNK_BYTES,
    };
    let chunk = (chunk_bytes / size).max(1);
    // Zarr operands cut the array into regions inside their chunks; without them the
    // one region is the whole array.
    let grids = parts.grids();
    parts.survey()?;
    let regions = Regions::new(shape, &grids, &lead_strides);
    let one_grid = grids.windows(2).all(|w| w[0] == w[1]);
    let sequential = regions.sequential();
    parts.start(
        &lead_strides,
        bounded,
        sequential,
        sequential || one_grid,
        &grids,
        Through {
            write: opts.write_through,
            read: opts.read_through,
        },
    );
    let mut done = 0usize;
    let mut result = Ok(());
    // A cancel is taken where the work done is a prefix of the output in memory order
    // (what `Error::Cancelled` promises): at once when the regions follow memory order,
    // else at the end of the first region after which it is.
    let mut cancelling = false;
    let mut regions = regions;
    'regions: while let Some(region) = regions.next() {
        if let Err(e) = parts.enter(&region) {
            result = Err(e);
            break;
        }
        // A Zarr operand's bytes are known once its chunk is mapped.
        if !grids.is_empty()
            && let Err(e) = parts.check_aliasing()
        {
            result = Err(e);
            break;
        }
        let lens: Vec<usize> = region.iter().map(ExactSizeIterator::len).collect();
        for rel in Plan::new(&lens, &lead_strides, chunk) {
            let piece = absolute(&rel, &region);
            if let Err(e) = parts.before(&piece) {
                result = Err(e);
                break 'regions;
            }
            each(parts, &piece);
            if let Err(e) = parts.after() {
                result = Err(e);
                break 'regions;
            }
            let n = piece
                .iter()
                .map(|s| s.end.map_or(0, |e| e - s.start) as usize)
                .product::<usize>();
            done = done.saturating_add(n);
            if cancelling {
                continue;
            }
            match report(&mut opts, bytes_of(done), total) {
                Ok(()) => {}
                Err(Error::Cancelled { .. }) if !sequential => cancelling = true,
                Err(e) => {
                    result = Err(e);
                    break 'regions;
                }
            }
        }
        if cancelling && regions.prefix_after(&region) {
            let done = bytes_of(done);
            if done < total {
                result = Err(Error::Cancelled { done, total });
            }
            break;
        }
    }
    if total == 0 {
        // Nothing to do is done: a progress bar still reaches its end.
        report(&mut opts, 0, 0)?;
    }
    let finished = parts.finish(result.is_ok());
    result.and(finished)
}

/// Whether chunk shape `g` divides every grid of `grids` along every axis: the regions
/// (cut at every grid's boundaries) are then exactly `g`'s chunks.
fn divides_all(g: &[usize], grids: &[Vec<usize>]) -> bool {
    grids
        .iter()
        .all(|o| o.len() == g.len() && o.iter().zip(g).all(|(&o, &g)| g > 0 && o % g == 0))
}

/// The chunk size of a bounded stream that writes, when the user left it to the engine:
/// the largest power of two from 1 MiB to [`DEFAULT_CHUNK_BYTES`] whose stream fits in
/// 3/4 of the `room` left (1 MiB when none does). A stream holds, besides the kernel's
/// read-ahead (`ahead`, for all mapped operands), about one piece per mapped operand
/// (`operands` chunks in all: an operand with elements twice the lead's counts twice)
/// plus one chunk more (an output's scratch and the write-back in flight), and a few
/// MiB of its own.
/// Measured (`benches/out_of_core.sh`, c = a + b, 8 MiB read-ahead per input): 40, 43,
/// 49.5 and 62 MiB of cgroup peak at 1, 2, 4 and 8 MiB chunks; the model says 41, 45,
/// 53 and 69.
fn bounded_chunk(room: u64, operands: usize, ahead: u64) -> usize {
    const MIB: u64 = 1 << 20;
    let budget = room / 4 * 3;
    let needs = |chunk: u64| ahead + (operands as u64 + 1) * chunk + 5 * MIB;
    let mut chunk = DEFAULT_CHUNK_BYTES as u64;
    while chunk > MIB && needs(chunk) > budget {
        chunk /= 2;
    }
    chunk as usize
}

/// A piece of a region (as a [`Plan`] of the region's lengths gives it) in the array's
/// indices: bounded ranges with unit steps.
fn absolute(rel: &[Slice], region: &[Range<usize>]) -> Vec<Slice> {
    rel.iter()
        .zip(region)
        .map(|(s, r)| {
            let start = r.start + s.start as usize;
            let end = r.start + s.end.map_or(r.len(), |e| e as usize);
            Slice::from(start..end)
        })
        .collect()
}

/// A tuple of parts, as the engine drives them.
pub(super) trait Parts {
    fn check_aliasing(&mut self) -> Result<(), Error>;
    /// The strides the chunking follows (the first written part's, else the first
    /// part's) and its element size.
    fn lead(&self) -> (Vec<isize>, usize);
    fn mapped_len(&self) -> usize;
    /// Whether any operand is written.
    fn writes(&self) -> bool;
    /// The bytes per element of the mapped operands together, and the bytes the kernel
    /// may read ahead of them in all.
    fn read_ahead(&self) -> (usize, u64);
    /// The chunk shapes of the Zarr operands.
    fn grids(&self) -> Vec<Vec<usize>>;
    /// Checks the Zarr operands' chunk files against every operand, then lets Zarr outputs
    /// create their missing chunks: before anything is written.
    fn survey(&mut self) -> Result<(), Error>;
    /// `chunks_in_order` as for [`Part::start`], for every Zarr operand; one whose grid
    /// divides every other (each of its chunks is then one region, visited once) gets it
    /// anyway. `grids` are the Zarr operands' chunk shapes.
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        grids: &[Vec<usize>],
        through: Through,
    );
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error>;
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
    fn after(&mut self) -> Result<(), Error>;
    fn finish(&mut self, completed: bool) -> Result<(), Error>;
}

/// `ndarray::Zip::from(a.piece(s)).and(b.piece(s))...` over the parts named.
macro_rules! nd_zip {
    ($piece:ident; $first:ident $(, $rest:ident)*) => {
        ndarray::Zip::from($first.piece($piece))$(.and($rest.piece($piece)))*
    };
}

/// The engine's view of a tuple of parts, and `for_each` / `fold` for that arity.
macro_rules! zip_arity {
    ($($P:ident $p:ident $i:tt),+) => {
        impl<$($P: Part),+> Parts for ($($P,)+) {
            fn check_aliasing(&mut self) -> Result<(), Error> {
                let spans = [$(self.$i.span()),+];
                let writes = [$($P::WRITES),+];
                let mut same = [$(zip_arity!(@false $i)),+];
                for (o, out) in spans.iter().enumerate() {
                    if !writes[o] {
                        continue;
                    }
                    for (k, other) in spans.iter().enumerate() {
                        if k == o {
                            continue;
                        }
                        if let Overlap::Same(err) = overlap(out, other)? {
                            if writes[k] {
                                // Two outputs over the same bytes: no order of writes is right.
                                return Err(err);
                            }
                            same[k] = true;
                        }
                    }
                }
                $(if same[$i] { self.$i.snapshot(); })+
                Ok(())
            }
            fn lead(&self) -> (Vec<isize>, usize) {
                $(if $P::WRITES { return (self.$i.strides(), self.$i.elem_size()); })+
                (self.0.strides(), self.0.elem_size())
            }
            fn mapped_len(&self) -> usize {
                0 $(+ self.$i.mapped_len())+
            }
            fn writes(&self) -> bool {
                false $(|| $P::WRITES)+
            }
            fn read_ahead(&self) -> (usize, u64) {
                [$(self.$i.read_ahead()),+]
                    .into_iter()
                    .flatten()
                    .fold((0, 0), |(size, ahead), (a, s)| (size + s, ahead.saturating_add(a)))
            }
            fn grids(&self) -> Vec<Vec<usize>> {
                [$(self.$i.grid()),+].into_iter().flatten().collect()
            }
            fn survey(&mut self) -> Result<(), Error> {
                let surveys = [$(self.$i.survey()?),+];
                if surveys.iter().all(Option::is_none) {
                    return Ok(());
                }
                #[cfg(feature = "zarr")]
                super::operand::zarr_conflicts(
                    &[$(self.$i.span()),+],
                    &[$($P::WRITES),+],
                    &surveys,
                )?;
                $(self.$i.prepare()?;)+
                Ok(())
            }
            fn start(
                &mut self,
                lead: &[isize],
                bounded: bool,
                sequential: bool,
                chunks_in_order: bool,
                grids: &[Vec<usize>],
                through: Through,
            ) {
                $(
                    let own = chunks_in_order || self.$i.grid().is_some_and(|g| divides_all(&g, grids));
                    self.$i.start(lead, bounded, sequential, own, through);
                )+
            }
            fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
                $(self.$i.enter(region)?;)+
                Ok(())
            }
            fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
                $(self.$i.before(piece)?;)+
                Ok(())
            }
            fn after(&mut self) -> Result<(), Error> {
                $(self.$i.after()?;)+
                Ok(())
            }
            fn finish(&mut self, completed: bool) -> Result<(), Error> {
                let mut result = Ok(());
                $(let r = self.$i.finish(completed); if result.is_ok() { result = r; })+
                result
            }
        }

        impl<'o, $($P: Part),+> Zip<'o, ($($P,)+)> {
            /// Calls `f` with the operands' items (`&T`, or `&mut T` for written ones) at
            /// every index, chunk by chunk.
            ///
            /// # Errors
            /// [`Error::Broadcast`] for operands of another shape and [`Error::Aliased`]
            /// for overlapping mapped operands, before anything is written;
            /// [`Error::Cancelled`] when the progress callback cancels (the chunks done
            /// stay written); an I/O error from writing back a mapped output.
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::array![[1, 2], [3, 4]];
            /// let mut c = ndarray::Array2::<i64>::zeros((2, 2));
            /// Zip::from(&mut c).and(&a).for_each(|c, &a| *c = i64::from(a) * 2)?;
            /// assert_eq!(c, ndarray::array![[2, 4], [6, 8]]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn for_each<F>(mut self, mut f: F) -> Result<(), Error>
            where
                F: for<'p> FnMut($(Item<'p, $P>),+),
            {
                run(&mut self.parts, &self.shape, self.error, self.opts, |parts, piece| {
                    let ($($p,)+) = parts;
                    nd_zip!(piece; $($p),+).for_each(|$($p),+| f($($p),+));
                })
            }

            /// Folds every index into an accumulator, in one pass and without
            /// temporaries: a dot product, a count, a fused map-reduce. Chunks come in the
            /// memory order of the first written operand (else of the first operand);
            /// inside a chunk ndarray's `Zip` picks the order. Use an associative and
            /// commutative fold when the result must not depend on layout.
            ///
            /// # Errors
            /// As for [`for_each`](Self::for_each).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::array![1.0f32, 2.0, 3.0];
            /// let b = ndarray::array![4.0f32, 5.0, 6.0];
            /// let dot = Zip::from(&a).and(&b).fold(0.0f64, |acc, &x, &y| acc + f64::from(x * y))?;
            /// assert_eq!(dot, 32.0);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn fold<Acc, F>(mut self, init: Acc, mut f: F) -> Result<Acc, Error>
            where
                F: for<'p> FnMut(Acc, $(Item<'p, $P>),+) -> Acc,
            {
                let mut acc = Some(init);
                let opts = self.opts.fixed_chunks();
                run(&mut self.parts, &self.shape, self.error, opts, |parts, piece| {
                    let ($($p,)+) = parts;
                    if let Some(a) = acc.take() {
                        acc = Some(nd_zip!(piece; $($p),+).fold(a, |a, $($p),+| f(a, $($p),+)));
                    }
                })?;
                // `run` hands `acc` back after every piece.
                Ok(acc.expect("the accumulator is put back after every piece"))
            }

            /// [`for_each`](Self::for_each) with each chunk split across threads (the
            /// `rayon` feature), so `f` must be `Fn + Sync + Send`. Chunks still come one
            /// after another, with the same paging hooks.
            ///
            /// # Errors
            /// As for [`for_each`](Self::for_each).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::Array1::from_iter(0..1000i64);
            /// let mut c = ndarray::Array1::zeros(1000);
            /// Zip::from(&mut c).and(&a).par_for_each(|c, &a| *c = a * a)?;
            /// assert_eq!(c[999], 998_001);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            #[cfg(feature = "rayon")]
            #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
            pub fn par_for_each<F>(mut self, f: F) -> Result<(), Error>
            where
                F: for<'p> Fn($(Item<'p, $P>),+) + Sync + Send,
            {
                run(&mut self.parts, &self.shape, self.error, self.opts, |parts, piece| {
                    let ($($p,)+) = parts;
                    nd_zip!(piece; $($p),+).par_for_each(|$($p),+| f($($p),+));
                })
            }

        }
    };
    (@false $i:tt) => { false };
}

/// `par_fold` for arities 1 to 5 (ndarray's own `par_fold` stops at five producers).
#[cfg(feature = "rayon")]
macro_rules! zip_par_fold {
    ($($P:ident $p:ident $i:tt),+) => {
        impl<'o, $($P: Part),+> Zip<'o, ($($P,)+)> {
            /// [`fold`](Self::fold) with each chunk split across threads (the `rayon`
            /// feature; up to five operands): `fold` folds a part of a chunk from
            /// `identity()`, `combine` joins two partial results (and each chunk's result
            /// into the running one).
            ///
            /// # Errors
            /// As for [`for_each`](Self::for_each).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::Array1::from_iter(0..1000u64);
            /// let s = Zip::from(&a).par_fold(|| 0u64, |s, &x| s + x, |x, y| x + y)?;
            /// assert_eq!(s, 499_500);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            #[cfg(feature = "rayon")]
            #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
            pub fn par_fold<Acc, I, F, C>(mut self, identity: I, fold: F, combine: C) -> Result<Acc, Error>
            where
                Acc: Send,
                I: Fn() -> Acc + Send + Sync + Clone,
                F: for<'p> Fn(Acc, $(Item<'p, $P>),+) -> Acc + Send + Sync,
                C: Fn(Acc, Acc) -> Acc + Send + Sync,
            {
                let mut acc = Some(identity());
                let opts = self.opts.fixed_chunks();
                run(&mut self.parts, &self.shape, self.error, opts, |parts, piece| {
                    let ($($p,)+) = parts;
                    let part = nd_zip!(piece; $($p),+)
                        .par_fold(identity.clone(), |a, $($p),+| fold(a, $($p),+), &combine);
                    if let Some(a) = acc.take() {
                        acc = Some(combine(a, part));
                    }
                })?;
                // `run` hands `acc` back after every piece.
                Ok(acc.expect("the accumulator is put back after every piece"))
            }
        }
    };
}

/// `and` and `and_broadcast` from one arity to the next.
macro_rules! zip_and {
    ($($P:ident $i:tt),+) => {
        impl<'o, $($P: Part),+> Zip<'o, ($($P,)+)> {
            /// Adds an operand of the same shape (up to six in all).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let (a, b) = (ndarray::array![1, 2], ndarray::array![10, 20]);
            /// let mut c = ndarray::array![0, 0];
            /// Zip::from(&mut c).and(&a).and(&b).for_each(|c, &a, &b| *c = a + b)?;
            /// assert_eq!(c, ndarray::array![11, 22]);
            /// let wrong = ndarray::array![1, 2, 3];
            /// assert!(Zip::from(&mut c).and(&wrong).for_each(|_, _| ()).is_err());
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn and<'a, I: IntoPart<'a>>(self, operand: I) -> Zip<'o, ($($P,)+ I::Part,)> {
                let part = operand.into_part();
                let shape = part.shape();
                let mut z = Zip {
                    parts: ($(self.parts.$i,)+ part,),
                    shape: self.shape,
                    error: self.error,
                    opts: self.opts,
                };
                z.check_shape(&shape, zip_operand([$($i),+].len()));
                z
            }

            /// Adds an input broadcast to the shape so far, as numpy broadcasts (a row to
            /// every row of a matrix, a `[1]` to everything).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::array![[1, 2], [3, 4]];
            /// let row = ndarray::array![10, 20];
            /// let mut d = ndarray::Array2::zeros((2, 2));
            /// Zip::from(&mut d).and(&a).and_broadcast(&row).for_each(|d, &a, &r| *d = a + r)?;
            /// assert_eq!(d, ndarray::array![[11, 22], [13, 24]]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn and_broadcast<'a, T: Clone + Sync + 'static, I: IntoPart<'a, Part = Input<'a, T>>>(
                self,
                operand: I,
            ) -> Zip<'o, ($($P,)+ Input<'a, T>,)> {
                let mut part = operand.into_part().named(zip_operand([$($i),+].len()));
                let mut error = self.error;
                if let Err(e) = part.broadcast_to(&self.shape)
                    && error.is_none()
                {
                    error = Some(e.onto(ZIP_SHAPE));
                }
                Zip {
                    parts: ($(self.parts.$i,)+ part,),
                    shape: self.shape,
                    error,
                    opts: self.opts,
                }
            }
        }
    };
}

zip_arity!(P1 p1 0);
zip_arity!(P1 p1 0, P2 p2 1);
zip_arity!(P1 p1 0, P2 p2 1, P3 p3 2);
zip_arity!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3);
zip_arity!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3, P5 p5 4);
zip_arity!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3, P5 p5 4, P6 p6 5);
#[cfg(feature = "rayon")]
zip_par_fold!(P1 p1 0);
#[cfg(feature = "rayon")]
zip_par_fold!(P1 p1 0, P2 p2 1);
#[cfg(feature = "rayon")]
zip_par_fold!(P1 p1 0, P2 p2 1, P3 p3 2);
#[cfg(feature = "rayon")]
zip_par_fold!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3);
#[cfg(feature = "rayon")]
zip_par_fold!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3, P5 p5 4);
/// `map_assign_into` (and its parallel form) for 1 to 5 operands: the output makes six.
macro_rules! zip_assign {
    ($($P:ident $p:ident $i:tt),+) => {
        impl<'o, $($P: Part),+> Zip<'o, ($($P,)+)> {
            /// Writes `f` of the operands' items into `into` at every index, chunk by
            /// chunk, as ndarray's `Zip::map_assign_into`: `into` (a mutable array, view or
            /// [`MmapArrayMut`], of the Zip's shape) is only written, never read. Under
            /// [`Paging::Bounded`] on Linux, a mapped raw or `.npy` output (not
            /// copy-on-write), or each chunk of a Zarr output, written in its file order,
            /// goes through the file (`pwrite`) in pieces laid out densely, of up to
            /// 64 MiB, when the file-size limit allows the whole map: its old pages are not
            /// read from the disk before they are overwritten, which writing through the
            /// map of an existing file does. Otherwise it is written through the map, with
            /// the same result.
            ///
            /// # Errors
            /// As for [`for_each`](Self::for_each); [`Error::Broadcast`] names the
            /// `output` when `into` has another shape.
            ///
            /// ```
            /// use ndarray_mmap::{create_array, ops::Zip};
            /// # let dir = tempfile::tempdir()?;
            /// let a = ndarray::Array1::from_iter((0..1000).map(|i| i as f32));
            /// let b = ndarray::Array1::<f32>::from_elem(1000, 0.5);
            /// let mut d = unsafe { create_array::<f32>(dir.path().join("d.f32"), [1000]) }?;
            /// Zip::from(&a).and(&b).map_assign_into(&mut d, |&a, &b| a * 2.0 + b)?;
            /// assert_eq!(d.view()[10], 20.5);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn map_assign_into<'a, T, O, F>(mut self, into: O, mut f: F) -> Result<(), Error>
            where
                T: Send + 'static,
                O: IntoPart<'a, Part = Output<'a, T>>,
                F: for<'p> FnMut($(Item<'p, $P>),+) -> T,
            {
                let out = into.into_part().write_only();
                self.check_shape(&out.shape(), "the output");
                let ($($p,)+) = self.parts;
                let mut parts = (out, $($p,)+);
                run(&mut parts, &self.shape, self.error, self.opts, |parts, piece| {
                    let (o, $($p,)+) = parts;
                    nd_zip!(piece; o, $($p),+).for_each(|o, $($p),+| *o = f($($p),+));
                })
            }

            /// [`map_assign_into`](Self::map_assign_into) with each chunk split across
            /// threads (the `rayon` feature), so `f` must be `Fn + Sync + Send`.
            ///
            /// # Errors
            /// As for [`map_assign_into`](Self::map_assign_into).
            ///
            /// ```
            /// use ndarray_mmap::ops::Zip;
            /// let a = ndarray::Array1::from_iter(0..1000i64);
            /// let mut c = ndarray::Array1::zeros(1000);
            /// Zip::from(&a).par_map_assign_into(&mut c, |&a| a * a)?;
            /// assert_eq!(c[999], 998_001);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            #[cfg(feature = "rayon")]
            #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
            pub fn par_map_assign_into<'a, T, O, F>(mut self, into: O, f: F) -> Result<(), Error>
            where
                T: Send + 'static,
                O: IntoPart<'a, Part = Output<'a, T>>,
                F: for<'p> Fn($(Item<'p, $P>),+) -> T + Sync + Send,
            {
                let out = into.into_part().write_only();
                self.check_shape(&out.shape(), "output");
                let ($($p,)+) = self.parts;
                let mut parts = (out, $($p,)+);
                run(&mut parts, &self.shape, self.error, self.opts, |parts, piece| {
                    let (o, $($p,)+) = parts;
                    nd_zip!(piece; o, $($p),+).par_for_each(|o, $($p),+| *o = f($($p),+));
                })
            }
        }
    };
}

zip_assign!(P1 p1 0);
zip_assign!(P1 p1 0, P2 p2 1);
zip_assign!(P1 p1 0, P2 p2 1, P3 p3 2);
zip_assign!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3);
zip_assign!(P1 p1 0, P2 p2 1, P3 p3 2, P4 p4 3, P5 p5 4);
zip_and!(P1 0);
zip_and!(P1 0, P2 1);
zip_and!(P1 0, P2 1, P3 2);
zip_and!(P1 0, P2 1, P3 2, P4 3);
zip_and!(P1 0, P2 1, P3 2, P4 3, P5 4);

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn bounded_chunks_shrink_to_fit_the_room_left() {
        // c = a + b (3 mapped operands) with 8 MiB of read-ahead per input, as measured.
        let ahead = 2 * 16 * MIB;
        assert_eq!(bounded_chunk(60 * MIB, 3, ahead), 2 << 20);
        assert_eq!(bounded_chunk(124 * MIB, 3, ahead), DEFAULT_CHUNK_BYTES);
        assert_eq!(bounded_chunk(1 << 40, 6, 6 * ahead), DEFAULT_CHUNK_BYTES);
        // Nothing fits: the smallest chunk, never zero.
        assert_eq!(bounded_chunk(0, 3, ahead), 1 << 20);
        // The kernel's default read-ahead (128 KiB) leaves the default under 64 MiB.
        assert_eq!(bounded_chunk(60 * MIB, 3, 512 << 10), DEFAULT_CHUNK_BYTES);
        // Every choice fits in 3/4 of the room whenever one can.
        for room in (8..512).map(|m| m * MIB) {
            for operands in 1..=6 {
                let c = bounded_chunk(room, operands, operands as u64 * 16 * MIB) as u64;
                let needs = operands as u64 * 16 * MIB + (operands as u64 + 1) * c + 5 * MIB;
                assert!(c == MIB || needs <= room / 4 * 3, "{room} {operands} {c}");
                assert!(c.is_power_of_two() && c <= DEFAULT_CHUNK_BYTES as u64);
            }
        }
    }
}
