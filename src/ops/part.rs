//! The engine's operands: the sealed [`Part`] trait the run loop drives them through, and
//! [`Input`] and [`Output`], which hold one operand kind behind the object-safe [`Reader`] or
//! [`Writer`] trait: a view ([`super::view`]: an ndarray view, or a mapped one with the
//! paging hooks of its map) or a whole Zarr array (`super::zarr`, streamed chunk by chunk).
//! A new kind of operand is one more implementation of those traits, in its own module.

use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Slice};

use crate::error::Error;
use crate::map::pager::InPager;

use super::options::Through;
use super::overlap::{Operand, Survey};

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
        /// A mapped operand most of whose pages are not in the page cache (sampled).
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

/// One kind of input as the engine reads it (object-safe: [`Input`] holds it boxed, so
/// that the run loop's code is written once whatever the kind). The methods mirror
/// [`Part`]'s; the defaults are those of an operand that is one view in memory.
pub(super) trait Reader<'a, T> {
    fn shape(&self) -> Vec<usize>;
    fn strides(&self) -> Vec<isize>;
    /// The bytes it lies on now (the current region's, for a Zarr array).
    fn span(&self) -> Operand;
    /// Broadcast to `shape`; `Err` with its own shape when it cannot be.
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Vec<usize>>;
    /// Bytes of its map (all its chunks, for a Zarr array), 0 when it is not mapped.
    fn mapped_len(&self) -> usize;
    /// Most of its pages are not in the page cache (sampled).
    fn cold(&self) -> bool {
        false
    }
    /// The bytes the kernel may read ahead of it, when it is read from a file.
    fn read_ahead(&self) -> Option<u64>;
    /// Its chunk shape, when the stream must visit it chunk by chunk.
    fn grid(&self) -> Option<Vec<usize>> {
        None
    }
    /// See [`Part::start`]; `read_through`: pieces are read with `pread`.
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        read_through: bool,
    );
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        Ok(None)
    }
    fn enter(&mut self, _region: &[Range<usize>]) -> Result<(), Error> {
        Ok(())
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
    fn piece(&mut self, piece: &[Slice]) -> ArrayViewD<'_, T>;
    /// The stream is over (`completed`: every piece was done); a Zarr input then checks
    /// that the chunk it decoded as a stream ended where it should.
    fn finish(&mut self, completed: bool) -> Result<(), Error>;
    /// The view and paging hooks of an input that is one view (for
    /// [`chunks`](super::chunks)); other kinds say why not.
    fn into_view(self: Box<Self>) -> Result<(ArrayViewD<'a, T>, Option<InPager<'a>>), Error>;
}

/// One kind of output as the engine writes it (see [`Reader`]).
pub(super) trait Writer<T> {
    fn shape(&self) -> Vec<usize>;
    fn strides(&self) -> Vec<isize>;
    fn span(&self) -> Operand;
    fn mapped_len(&self) -> usize;
    /// See [`Reader::read_ahead`]; 0 for an output that is only written.
    fn read_ahead(&self) -> Option<u64>;
    /// Mapped, and most of its pages are not in the page cache (sampled).
    fn cold(&self) -> bool {
        false
    }
    fn grid(&self) -> Option<Vec<usize>> {
        None
    }
    /// The operation never reads this output (`c = a + b`, not `a += b`).
    fn write_only(&mut self);
    /// See [`Part::start`]; `write_through`: pieces go to write-back at once (`None`: the
    /// engine decides).
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        write_through: Option<bool>,
    );
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        Ok(None)
    }
    fn prepare(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn enter(&mut self, _region: &[Range<usize>]) -> Result<(), Error> {
        Ok(())
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
    fn piece(&mut self, piece: &[Slice]) -> ArrayViewMutD<'_, T>;
    /// The piece is computed: a piece computed aside goes to the file.
    fn after(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error>;
}

/// A read-only operand of a [`Zip`](super::Zip): one operand kind (an array or view, a map,
/// a Zarr array), what error messages call it, and the copy it is read through when it
/// shares bytes with an output.
pub struct Input<'a, T> {
    src: Box<dyn Reader<'a, T> + 'a>,
    /// Read through a copy of each piece (see [`Part::snapshot`]).
    copy: Option<ArrayD<T>>,
    snapshot: bool,
    /// What error messages call it.
    name: &'static str,
}

/// A written operand of a [`Zip`](super::Zip): one operand kind (a mutable array or view, a
/// writable map, a Zarr array).
pub struct Output<'a, T>(Box<dyn Writer<T> + 'a>);

impl<'a, T> Input<'a, T> {
    pub(super) fn of(src: Box<dyn Reader<'a, T> + 'a>) -> Self {
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
        self.src.into_view()
    }
}

impl<'a, T> Output<'a, T> {
    pub(super) fn of(dst: Box<dyn Writer<T> + 'a>) -> Self {
        Output(dst)
    }

    /// The operation never reads this output.
    pub(super) fn write_only(mut self) -> Self {
        self.0.write_only();
        self
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
        self.src.shape()
    }
    fn strides(&self) -> Vec<isize> {
        self.src.strides()
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn span(&self) -> Operand {
        self.src.span()
    }
    fn broadcast_to(&mut self, shape: &[usize]) -> Result<(), Error> {
        self.src
            .broadcast_to(shape)
            .map_err(|input| Error::Broadcast {
                operand: self.name,
                input,
                output: shape.to_vec(),
                onto: "the output",
            })
    }
    fn snapshot(&mut self) {
        self.snapshot = true;
    }
    fn mapped_len(&self) -> usize {
        self.src.mapped_len()
    }
    fn cold(&self) -> bool {
        self.src.cold()
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        self.src.read_ahead().map(|a| (a, self.elem_size()))
    }
    fn grid(&self) -> Option<Vec<usize>> {
        self.src.grid()
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    ) {
        self.src
            .start(lead, bounded, sequential, chunks_in_order, through.read);
    }
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        self.src.survey()
    }
    fn prepare(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        self.src.enter(region)
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        self.src.before(piece)
    }
    fn piece<'p>(&'p mut self, piece: &[Slice]) -> ArrayViewD<'p, T> {
        let Input {
            src,
            copy,
            snapshot,
            ..
        } = self;
        let v = src.piece(piece);
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
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        self.src.finish(completed)
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
        self.0.shape()
    }
    fn strides(&self) -> Vec<isize> {
        self.0.strides()
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn span(&self) -> Operand {
        self.0.span()
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
        self.0.mapped_len()
    }
    fn cold(&self) -> bool {
        self.0.cold()
    }
    fn read_ahead(&self) -> Option<(u64, usize)> {
        self.0.read_ahead().map(|a| (a, self.elem_size()))
    }
    fn grid(&self) -> Option<Vec<usize>> {
        self.0.grid()
    }
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        through: Through,
    ) {
        self.0
            .start(lead, bounded, sequential, chunks_in_order, through.write);
    }
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        self.0.survey()
    }
    fn prepare(&mut self) -> Result<(), Error> {
        self.0.prepare()
    }
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        self.0.enter(region)
    }
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
        self.0.before(piece)
    }
    fn piece<'p>(&'p mut self, piece: &[Slice]) -> ArrayViewMutD<'p, T> {
        self.0.piece(piece)
    }
    fn after(&mut self) -> Result<(), Error> {
        self.0.after()
    }
    fn finish(&mut self, completed: bool) -> Result<(), Error> {
        self.0.finish(completed)
    }
}
