//! What the operations accept, written once per type: the sealed [`AsInput`](sealed::AsInput)
//! and [`AsOutput`](sealed::AsOutput) conversions into the engine's [`Input`] and [`Output`],
//! for arrays, views, mapped owners, Zarr chunks and whole Zarr arrays. The public names are
//! derived from them: [`Source`] and [`Sink`] (the functions' bounds) and [`IntoPart`]
//! (what [`Zip`](super::Zip) takes: `&x` reads, `&mut x` writes).

use ndarray::{ArrayBase, Data, DataMut, Dimension};

use crate::map::{MmapArray, MmapArrayMut};

use super::part::sealed::Part;
use super::part::{Input, Output};

pub(super) mod sealed {
    use super::super::part::{Input, Output};

    /// The one conversion of something readable into the engine's input.
    pub trait AsInput {
        /// The element type.
        type Elem;
        fn input(&self) -> Input<'_, Self::Elem>;
    }

    /// The one conversion of something writable into the engine's output.
    pub trait AsOutput {
        /// The element type.
        type Elem;
        fn output(&mut self) -> Output<'_, Self::Elem>;
    }
}

use sealed::{AsInput, AsOutput};

/// Something the operations can read as an array of `T`: any ndarray array or view, a
/// mapped owner ([`MmapArray`], [`MmapArrayMut`]), which gets the streaming treatment,
/// or (with the `zarr` feature) a Zarr chunk or a whole Zarr array, streamed chunk by chunk.
///
/// Sealed: implemented by this crate for those types only.
///
/// ```
/// fn total<S: ndarray_mmap::ops::Source<f64> + ?Sized>(s: &S) -> f64 {
///     ndarray_mmap::ops::sum(s).unwrap()
/// }
/// assert_eq!(total(&ndarray::array![1.0, 2.5]), 3.5);
/// ```
pub trait Source<T>: AsInput<Elem = T> {}
impl<T, X: AsInput<Elem = T> + ?Sized> Source<T> for X {}

/// Something the operations can write as an array of `T`: any mutable ndarray array or
/// view, a writable mapped owner ([`MmapArrayMut`]), which gets the streaming treatment
/// (bounded write-back), or (with the `zarr` feature) a writable Zarr chunk or array.
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
pub trait Sink<T>: AsOutput<Elem = T> {}
impl<T, X: AsOutput<Elem = T> + ?Sized> Sink<T> for X {}

/// What [`Zip::from`](super::Zip::from) and [`Zip::and`](super::Zip) accept: `&x` of
/// anything the operations read ([`Source`]: an ndarray array or view, a mapped owner, a
/// Zarr chunk or array) gives `&T` items; `&mut x` of anything they write ([`Sink`]) gives
/// `&mut T` items, as in ndarray's `Zip`.
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

impl<X: AsInput + ?Sized> sealed_into::Sealed for &X {}
impl<'a, X: AsInput + ?Sized> IntoPart<'a> for &'a X
where
    X::Elem: Clone + Sync + 'static,
{
    type Part = Input<'a, X::Elem>;
    fn into_part(self) -> Self::Part {
        self.input()
    }
}

impl<X: AsOutput + ?Sized> sealed_into::Sealed for &mut X {}
impl<'a, X: AsOutput + ?Sized> IntoPart<'a> for &'a mut X
where
    X::Elem: Send + 'static,
{
    type Part = Output<'a, X::Elem>;
    fn into_part(self) -> Self::Part {
        self.output()
    }
}

impl<T, S: Data<Elem = T>, D: Dimension> AsInput for ArrayBase<S, D> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        Input::new(self.view().into_dyn(), None)
    }
}

impl<T, S: DataMut<Elem = T>, D: Dimension> AsOutput for ArrayBase<S, D> {
    type Elem = T;
    fn output(&mut self) -> Output<'_, T> {
        Output::new(self.view_mut().into_dyn(), None)
    }
}

impl<T: bytemuck::Pod, D: Dimension> AsInput for MmapArray<T, D> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        let (v, p) = self.stream_parts();
        Input::mapped(v, p)
    }
}

impl<T: bytemuck::Pod, D: Dimension> AsInput for MmapArrayMut<T, D> {
    type Elem = T;
    fn input(&self) -> Input<'_, T> {
        let (v, p) = self.stream_parts();
        Input::mapped(v, p)
    }
}

impl<T: bytemuck::Pod, D: Dimension> AsOutput for MmapArrayMut<T, D> {
    type Elem = T;
    fn output(&mut self) -> Output<'_, T> {
        let (v, p) = self.stream_parts_mut();
        Output::mapped(v, p)
    }
}
