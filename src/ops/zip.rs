//! The streaming [`Zip`]: ndarray's `Zip` over up to six operands, mapped or in memory,
//! visited chunk by chunk in the memory order of its first output, with the paging hooks
//! of every mapped operand. The builder and its methods; the loop is [`run`](super::run).

use std::ops::Range;

use ndarray::Slice;

use crate::error::Error;

use super::list::Operand;
use super::operand::IntoPart;
use super::options::{StreamOptions, Through};
use super::part::sealed::{Kind, Part};
use super::part::{Input, Output};
use super::run::{Parts, run};

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

/// `ndarray::Zip::from(a.piece(s)).and(b.piece(s))...` over the parts named.
macro_rules! nd_zip {
    ($piece:ident; $first:ident $(, $rest:ident)*) => {
        ndarray::Zip::from($first.piece($piece))$(.and($rest.piece($piece)))*
    };
}

/// The parts of a tuple as the run loop's list (see [`super::list`]).
macro_rules! list {
    ($s:ident; $($i:tt),+) => {
        &mut [$(&mut $s.$i as &mut dyn Operand),+][..]
    };
}

/// The engine's view of a tuple of parts, and `for_each` / `fold` for that arity.
macro_rules! zip_arity {
    ($($P:ident $p:ident $i:tt),+) => {
        impl<$($P: Part),+> Parts for ($($P,)+) {
            fn check_aliasing(&mut self) -> Result<(), Error> {
                list!(self; $($i),+).check_aliasing()
            }
            fn lead(&mut self) -> (Vec<isize>, usize) {
                list!(self; $($i),+).lead()
            }
            fn mapped_len(&mut self) -> usize {
                list!(self; $($i),+).mapped_len()
            }
            fn writes(&mut self) -> bool {
                list!(self; $($i),+).writes()
            }
            fn cold(&mut self) -> bool {
                list!(self; $($i),+).cold()
            }
            fn output_cold(&mut self) -> bool {
                list!(self; $($i),+).output_cold()
            }
            fn read_ahead(&mut self) -> (usize, u64) {
                list!(self; $($i),+).read_ahead()
            }
            fn grids(&mut self) -> Vec<Vec<usize>> {
                list!(self; $($i),+).grids()
            }
            fn survey(&mut self) -> Result<(), Error> {
                list!(self; $($i),+).survey()
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
                list!(self; $($i),+).start(lead, bounded, sequential, chunks_in_order, grids, through);
            }
            fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
                list!(self; $($i),+).enter(region)
            }
            fn before(&mut self, piece: &[Slice]) -> Result<(), Error> {
                list!(self; $($i),+).before(piece)
            }
            fn after(&mut self) -> Result<(), Error> {
                list!(self; $($i),+).after()
            }
            fn finish(&mut self, completed: bool) -> Result<(), Error> {
                list!(self; $($i),+).finish(completed)
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
            /// [`MmapArrayMut`](crate::MmapArrayMut), of the Zip's shape) is only written, never read. Under
            /// [`Paging::Bounded`](super::Paging::Bounded) on Linux, a mapped raw or `.npy` output (not
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
