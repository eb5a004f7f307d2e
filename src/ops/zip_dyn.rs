//! [`ZipDyn`]: the streaming Zip over operands chosen at run time (any number, each of its
//! own element type), for interpreters and bindings: each chunk comes as views in an enum
//! of element types ([`AnyView`], [`AnyViewMut`]). The run loop is the one every Zip uses.

use std::ops::Range;

use ndarray::{ArrayViewD, ArrayViewMutD, Slice};
use num_complex::Complex;

use crate::element::Element;
use crate::error::Error;

use super::list::Operand;
use super::operand::{Sink, Source};
use super::options::StreamOptions;
use super::part::sealed::Part;
use super::part::{Input, Output};
use super::run::run;

macro_rules! any_views {
    ($($(#[$attr:meta])* $V:ident $t:ty),* $(,)?) => {
        /// A chunk of an input of a [`ZipDyn`], as a view of its own element type.
        ///
        /// ```
        /// use ndarray_mmap::ops::AnyView;
        /// let a = ndarray::array![1.5f32, 2.5].into_dyn();
        /// let v = AnyView::from(a.view());
        /// assert!(matches!(v, AnyView::F32(_)));
        /// assert_eq!(v.shape(), [2]);
        /// ```
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum AnyView<'p> {
            $($(#[$attr])* #[allow(missing_docs)] $V(ArrayViewD<'p, $t>),)*
        }

        /// A chunk of an output of a [`ZipDyn`], as a mutable view of its own element type.
        ///
        /// ```
        /// use ndarray_mmap::ops::AnyViewMut;
        /// let mut a = ndarray::array![0i64, 0].into_dyn();
        /// if let AnyViewMut::I64(mut v) = AnyViewMut::from(a.view_mut()) {
        ///     v.fill(7);
        /// }
        /// assert_eq!(a, ndarray::array![7, 7].into_dyn());
        /// ```
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum AnyViewMut<'p> {
            $($(#[$attr])* #[allow(missing_docs)] $V(ArrayViewMutD<'p, $t>),)*
        }

        impl AnyView<'_> {
            /// The chunk's shape.
            ///
            /// ```
            /// let a = ndarray::Array2::<u8>::zeros((2, 3)).into_dyn();
            /// assert_eq!(ndarray_mmap::ops::AnyView::from(a.view()).shape(), [2, 3]);
            /// ```
            pub fn shape(&self) -> &[usize] {
                match self {
                    $($(#[$attr])* AnyView::$V(v) => v.shape(),)*
                }
            }
        }

        impl AnyViewMut<'_> {
            /// The chunk's shape.
            ///
            /// ```
            /// let mut a = ndarray::Array2::<u8>::zeros((2, 3)).into_dyn();
            /// assert_eq!(ndarray_mmap::ops::AnyViewMut::from(a.view_mut()).shape(), [2, 3]);
            /// ```
            pub fn shape(&self) -> &[usize] {
                match self {
                    $($(#[$attr])* AnyViewMut::$V(v) => v.shape(),)*
                }
            }
        }

        $(
            $(#[$attr])*
            impl AnyElement for $t {
                fn any(v: ArrayViewD<'_, Self>) -> AnyView<'_> {
                    AnyView::$V(v)
                }
                fn any_mut(v: ArrayViewMutD<'_, Self>) -> AnyViewMut<'_> {
                    AnyViewMut::$V(v)
                }
            }
            $(#[$attr])*
            impl<'p> From<ArrayViewD<'p, $t>> for AnyView<'p> {
                fn from(v: ArrayViewD<'p, $t>) -> Self {
                    AnyView::$V(v)
                }
            }
            $(#[$attr])*
            impl<'p> From<ArrayViewMutD<'p, $t>> for AnyViewMut<'p> {
                fn from(v: ArrayViewMutD<'p, $t>) -> Self {
                    AnyViewMut::$V(v)
                }
            }
        )*
    };
}

any_views! {
    I8 i8, I16 i16, I32 i32, I64 i64,
    U8 u8, U16 u16, U32 u32, U64 u64,
    F32 f32, F64 f64,
    C32 Complex<f32>, C64 Complex<f64>,
    #[cfg(feature = "half")] #[cfg_attr(docsrs, doc(cfg(feature = "half")))] F16 half::f16,
}

/// The element types a [`ZipDyn`] streams: every [`Element`], each with its variant of
/// [`AnyView`] and [`AnyViewMut`].
///
/// ```
/// use ndarray_mmap::ops::{AnyElement, AnyView};
/// let a = ndarray::array![1u16, 2].into_dyn();
/// assert!(matches!(u16::any(a.view()), AnyView::U16(_)));
/// ```
pub trait AnyElement: Element {
    /// The view as its variant of [`AnyView`].
    fn any(v: ArrayViewD<'_, Self>) -> AnyView<'_>;
    /// The view as its variant of [`AnyViewMut`].
    fn any_mut(v: ArrayViewMutD<'_, Self>) -> AnyViewMut<'_>;
}

/// A piece of one operand: read or written.
enum Any<'p> {
    In(AnyView<'p>),
    Out(AnyViewMut<'p>),
}

/// An operand of any element type, with its pieces as [`Any`].
trait Erased: Operand {
    fn piece_any(&mut self, piece: &[Slice]) -> Any<'_>;
}

impl<T: AnyElement> Erased for Input<'_, T> {
    fn piece_any(&mut self, piece: &[Slice]) -> Any<'_> {
        Any::In(T::any(Part::piece(self, piece)))
    }
}

impl<T: AnyElement> Erased for Output<'_, T> {
    fn piece_any(&mut self, piece: &[Slice]) -> Any<'_> {
        Any::Out(T::any_mut(Part::piece(self, piece)))
    }
}

/// Whose shape every operand of a [`ZipDyn`] must have (or broadcast to).
const SHAPE: &str = "the ZipDyn's shape";

/// The name of operand `k` (from 0) of a [`ZipDyn`] in error messages.
fn operand_name(k: usize) -> &'static str {
    const NAMES: [&str; 9] = [
        "operand 1 of the ZipDyn",
        "operand 2 of the ZipDyn",
        "operand 3 of the ZipDyn",
        "operand 4 of the ZipDyn",
        "operand 5 of the ZipDyn",
        "operand 6 of the ZipDyn",
        "operand 7 of the ZipDyn",
        "operand 8 of the ZipDyn",
        "an operand of the ZipDyn",
    ];
    NAMES[k.min(NAMES.len() - 1)]
}

/// The streaming [`Zip`](super::Zip) for operands chosen at run time: any number of
/// inputs and outputs, each of its own element type, mapped or in memory (views, mapped
/// owners, whole Zarr arrays), visited chunk by chunk with every paging hook, in the memory
/// order of the first output. The closure gets each chunk's index ranges (in the array),
/// the outputs' pieces and the inputs' pieces, each in the order they were added, as
/// [`AnyViewMut`] and [`AnyView`]: what an expression interpreter or a language binding
/// needs.
///
/// Every operand has the shape given to [`new`](ZipDyn::new); inputs broadcast to it as
/// in numpy. The rules of [`Zip`](super::Zip) hold: aliasing checked before anything is
/// written, outputs never broadcast, progress and cancel through [`StreamOptions`].
///
/// ```
/// use ndarray::array;
/// use ndarray_mmap::ops::{AnyView, AnyViewMut, ZipDyn};
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let b = array![10i64, 20]; // broadcast to every row
/// let mut c = ndarray::Array2::<f64>::zeros((2, 2));
/// ZipDyn::new(&[2, 2])
///     .output(&mut c)
///     .input(&a)
///     .input(&b)
///     .for_each(|_index, outs, ins| {
///         if let ([AnyViewMut::F64(c)], [AnyView::F32(a), AnyView::I64(b)]) = (outs, ins) {
///             ndarray::Zip::from(c).and(a).and(b).for_each(|c, &a, &b| {
///                 *c = f64::from(a) + b as f64;
///             });
///         }
///     })?;
/// assert_eq!(c, array![[11.0, 22.0], [13.0, 24.0]]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
#[must_use = "a ZipDyn does nothing until for_each or fold runs it"]
pub struct ZipDyn<'a, 'o> {
    parts: Vec<Box<dyn Erased + 'a>>,
    shape: Vec<usize>,
    /// The first shape error, reported when the ZipDyn runs (the builder cannot fail).
    error: Option<Error>,
    opts: StreamOptions<'o>,
}

impl std::fmt::Debug for ZipDyn<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipDyn")
            .field("operands", &self.parts.len())
            .field("shape", &self.shape)
            .field("error", &self.error)
            .field("opts", &self.opts)
            .finish()
    }
}

impl<'a> ZipDyn<'a, 'static> {
    /// A ZipDyn over arrays of `shape`, with no operand yet.
    ///
    /// ```
    /// let n = ndarray_mmap::ops::ZipDyn::new(&[3]).input(&ndarray::array![1u8, 2, 3])
    ///     .fold(0u64, |n, _index, _, ins| n + ins[0].shape()[0] as u64)?;
    /// assert_eq!(n, 3);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn new(shape: &[usize]) -> Self {
        ZipDyn {
            parts: Vec::new(),
            shape: shape.to_vec(),
            error: None,
            opts: StreamOptions::new(),
        }
    }
}

impl<'a, 'o> ZipDyn<'a, 'o> {
    /// Runs with these options: chunk size, paging, progress and cancel.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{StreamOptions, ZipDyn};
    /// let a = ndarray::Array1::<u8>::ones(1000);
    /// let mut calls = 0;
    /// let opts = StreamOptions::new().chunk_bytes(100).progress(|_| {
    ///     calls += 1;
    ///     ControlFlow::Continue(())
    /// });
    /// ZipDyn::new(&[1000]).input(&a).with(opts).for_each(|_, _, _| ())?;
    /// assert_eq!(calls, 10);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn with<'o2>(self, opts: StreamOptions<'o2>) -> ZipDyn<'a, 'o2> {
        ZipDyn {
            parts: self.parts,
            shape: self.shape,
            error: self.error,
            opts,
        }
    }

    /// Adds an input, broadcast to the shape as numpy broadcasts.
    ///
    /// ```
    /// use ndarray_mmap::ops::ZipDyn;
    /// let wrong = ndarray::array![1.0f64, 2.0, 3.0];
    /// let e = ZipDyn::new(&[2]).input(&wrong).for_each(|_, _, _| ()).unwrap_err();
    /// assert!(e.to_string().contains("operand 1 of the ZipDyn"), "{e}");
    /// ```
    pub fn input<T: AnyElement, S: Source<T> + ?Sized>(mut self, operand: &'a S) -> Self {
        let name = operand_name(self.parts.len());
        let mut part = operand.input().named(name);
        if let Err(e) = part.broadcast_to(&self.shape)
            && self.error.is_none()
        {
            self.error = Some(e.onto(SHAPE));
        }
        self.parts.push(Box::new(part));
        self
    }

    /// Adds an output that the closure reads and writes (as `a += b` does); it has the
    /// shape exactly (never broadcast).
    ///
    /// ```
    /// use ndarray_mmap::ops::{AnyViewMut, ZipDyn};
    /// let mut a = ndarray::array![1i32, 2, 3];
    /// ZipDyn::new(&[3]).output(&mut a).for_each(|_, outs, _| {
    ///     if let AnyViewMut::I32(a) = &mut outs[0] {
    ///         a.mapv_inplace(|x| x * 10);
    ///     }
    /// })?;
    /// assert_eq!(a, ndarray::array![10, 20, 30]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn output<T: AnyElement, S: Sink<T> + ?Sized>(self, operand: &'a mut S) -> Self {
        let part = operand.output();
        self.push_output(part)
    }

    /// Adds an output that the closure only writes: every element of each of its pieces,
    /// never reading one first (`c = a + b`). Under
    /// [`Paging::Bounded`](super::Paging::Bounded) a mapped output is then written through
    /// the file (see [`Zip::map_assign_into`](super::Zip::map_assign_into)); the pieces the
    /// closure gets may hold anything before it writes them.
    ///
    /// ```
    /// use ndarray_mmap::ops::{AnyView, AnyViewMut, ZipDyn};
    /// let a = ndarray::array![1u16, 2, 3];
    /// let mut c = ndarray::Array1::<u32>::zeros(3);
    /// ZipDyn::new(&[3]).overwrite(&mut c).input(&a).for_each(|_, outs, ins| {
    ///     if let ([AnyViewMut::U32(c)], [AnyView::U16(a)]) = (outs, ins) {
    ///         ndarray::Zip::from(c).and(a).for_each(|c, &a| *c = u32::from(a) * 2);
    ///     }
    /// })?;
    /// assert_eq!(c, ndarray::array![2, 4, 6]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn overwrite<T: AnyElement, S: Sink<T> + ?Sized>(self, operand: &'a mut S) -> Self {
        let part = operand.output().write_only();
        self.push_output(part)
    }

    fn push_output<T: AnyElement>(mut self, part: Output<'a, T>) -> Self {
        let shape = Part::shape(&part);
        if self.error.is_none() && shape != self.shape {
            self.error = Some(Error::Broadcast {
                operand: operand_name(self.parts.len()),
                input: shape,
                output: self.shape.clone(),
                onto: SHAPE,
            });
        }
        self.parts.push(Box::new(part));
        self
    }

    /// Calls `f(index, outputs, inputs)` for every chunk: `index` is the chunk's range
    /// along each axis of the array, `outputs` and `inputs` its pieces in the order the
    /// operands were added.
    ///
    /// # Errors
    /// [`Error::Broadcast`] for an operand of another shape and [`Error::Aliased`] for
    /// overlapping mapped operands, before anything is written; [`Error::Cancelled`] when
    /// the progress callback cancels (the chunks done stay written); an I/O error from
    /// writing back a mapped output.
    ///
    /// ```
    /// use ndarray_mmap::ops::{AnyView, ZipDyn};
    /// let a = ndarray::Array2::<f64>::ones((4, 3));
    /// let mut rows = vec![0.0; 4];
    /// ZipDyn::new(&[4, 3]).input(&a).for_each(|index, _, ins| {
    ///     if let [AnyView::F64(a)] = ins {
    ///         for (i, row) in index[0].clone().zip(a.outer_iter()) {
    ///             rows[i] += row.sum();
    ///         }
    ///     }
    /// })?;
    /// assert_eq!(rows, [3.0; 4]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn for_each<F>(mut self, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&[Range<usize>], &mut [AnyViewMut<'_>], &[AnyView<'_>]),
    {
        run(
            &mut self.parts[..],
            &self.shape,
            self.error,
            self.opts,
            |parts, piece| visit(parts, piece, &mut f),
        )
    }

    /// [`for_each`](Self::for_each) with an accumulator, `f(acc, index, outputs, inputs)`
    /// returning the next one: a reduction in one pass (which may write outputs as it
    /// goes). Chunks have a fixed size (the one set, else the default), so that a float
    /// sum does not depend on the memory free.
    ///
    /// # Errors
    /// As for [`for_each`](Self::for_each).
    ///
    /// ```
    /// use ndarray_mmap::ops::{AnyView, ZipDyn};
    /// let a = ndarray::array![1.0f32, 2.0, 3.0];
    /// let b = ndarray::array![4i8, 5, 6];
    /// let dot = ZipDyn::new(&[3]).input(&a).input(&b).fold(0.0, |acc, _, _, ins| match ins {
    ///     [AnyView::F32(a), AnyView::I8(b)] => {
    ///         acc + ndarray::Zip::from(a).and(b).fold(0.0, |s, &a, &b| s + f64::from(a) * f64::from(b))
    ///     }
    ///     _ => unreachable!(),
    /// })?;
    /// assert_eq!(dot, 32.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn fold<Acc, F>(mut self, init: Acc, mut f: F) -> Result<Acc, Error>
    where
        F: FnMut(Acc, &[Range<usize>], &mut [AnyViewMut<'_>], &[AnyView<'_>]) -> Acc,
    {
        let mut acc = Some(init);
        let opts = self.opts.fixed_chunks();
        run(
            &mut self.parts[..],
            &self.shape,
            self.error,
            opts,
            |parts, piece| {
                visit(parts, piece, &mut |index, outs, ins| {
                    if let Some(a) = acc.take() {
                        acc = Some(f(a, index, outs, ins));
                    }
                });
            },
        )?;
        // `run` hands `acc` back after every piece.
        Ok(acc.expect("the accumulator is put back after every piece"))
    }
}

/// What [`visit`] hands each chunk to.
type Visitor<'f> = dyn FnMut(&[Range<usize>], &mut [AnyViewMut<'_>], &[AnyView<'_>]) + 'f;

/// One chunk: every operand's piece, handed to `f` as outputs and inputs.
fn visit<'a>(parts: &mut [Box<dyn Erased + 'a>], piece: &[Slice], f: &mut Visitor<'_>) {
    let index: Vec<Range<usize>> = piece
        .iter()
        .map(|s| {
            let start = s.start.max(0) as usize;
            start..s.end.map_or(start, |e| e.max(0) as usize)
        })
        .collect();
    let mut outs = Vec::new();
    let mut ins = Vec::new();
    for p in parts.iter_mut() {
        match p.piece_any(piece) {
            Any::In(v) => ins.push(v),
            Any::Out(v) => outs.push(v),
        }
    }
    f(&index, &mut outs, &ins);
}
