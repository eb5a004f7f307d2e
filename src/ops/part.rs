//! The engine's operands: [`Input`] and [`Output`], each a view (with the paging hooks of
//! its map, when mapped) or a Zarr array streamed chunk by chunk, and the sealed [`Part`]
//! trait the run loop drives them through.

use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Slice};

use crate::error::Error;
use crate::map::pager::{InPager, OutPager};

use super::layout::dense;
use super::options::Through;
use super::overlap::{Operand, Survey};
use super::plan::{InStream, OutStream, Scratch, ScratchOf, same_order};

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
        /// A mapped input most of whose pages are not in the page cache (sampled).
        fn cold(&self) -> bool {
            false
        }
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
        fn survey(&mut self) -> Result<Option<super::super::overlap::Survey>, Error>;
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

/// A read-only operand of a [`Zip`](super::Zip): a view (with the paging hooks when it is mapped,
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

/// A written operand of a [`Zip`](super::Zip): a mutable view and, when it is mapped, the hooks that
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
        #[cfg_attr(not(feature = "zarr"), allow(irrefutable_let_patterns))]
        if let OutDst::View { scratch, .. } = &mut o.0 {
            *scratch = scratch_for::<T>();
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

/// The buffer pieces of a mapped operand of plain data go through when they are read or
/// written through the file; none for elements aligned past its 16 bytes (those pieces stay
/// on the map).
fn scratch_for<'a, T: bytemuck::Pod>() -> Option<Box<dyn ScratchOf<T> + 'a>> {
    (std::mem::align_of::<T>() <= 16).then(|| Box::new(Scratch::default()) as Box<dyn ScratchOf<T>>)
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
        #[cfg_attr(not(feature = "zarr"), allow(irrefutable_let_patterns))]
        if let InSrc::View(w) = &mut i.src {
            w.scratch = scratch_for::<T>();
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
    fn cold(&self) -> bool {
        match &self.src {
            InSrc::View(w) => w
                .pager
                .as_ref()
                .and_then(|p| p.resident_share())
                .is_some_and(|s| s < 0.5),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(_) => false,
        }
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        let ahead = match &self.src {
            InSrc::View(w) => w.pager.as_ref().map(|p| p.read_ahead()),
            #[cfg(feature = "zarr")]
            InSrc::Zarr(z) => Some(crate::map::room::read_ahead_at(z.dir())),
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
            OutDst::Zarr(z) => Some((crate::map::room::read_ahead_at(z.dir()), size)),
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
