//! What the operations accept: [`Source`] and [`Sink`] (the functions' bounds) and
//! [`IntoPart`] (what [`Zip`](super::Zip) takes), for arrays, views, mapped owners and
//! Zarr arrays.

use ndarray::{ArrayBase, Data, DataMut, Dimension};

use crate::map::{MmapArray, MmapArrayMut};

use super::part::sealed::Part;
use super::part::{Input, Output};

pub(super) mod sealed {
    use super::super::part::{Input, Output};

    /// The engine's form of an input.
    pub trait SourceParts<T> {
        fn input(&self) -> Input<'_, T>;
    }

    /// The engine's form of an output.
    pub trait SinkParts<T> {
        fn output(&mut self) -> Output<'_, T>;
    }
}

/// Something the operations can read as an array of `T`: any ndarray array or view, a
/// mapped owner ([`MmapArray`], [`MmapArrayMut`]), which gets the streaming treatment,
/// or (with the `zarr` feature) a whole Zarr array, streamed chunk by chunk.
///
/// Sealed: implemented by this crate for those types only.
///
/// ```
/// fn total<S: ndarray_mmap::ops::Source<f64> + ?Sized>(s: &S) -> f64 {
///     ndarray_mmap::ops::sum(s).unwrap()
/// }
/// assert_eq!(total(&ndarray::array![1.0, 2.5]), 3.5);
/// ```
pub trait Source<T>: sealed::SourceParts<T> {}

/// Something the operations can write as an array of `T`: any mutable ndarray array or
/// view, a writable mapped owner ([`MmapArrayMut`]), which gets the streaming treatment
/// (bounded write-back), or (with the `zarr` feature) a writable Zarr array.
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
pub trait Sink<T>: sealed::SinkParts<T> {}

impl<T, S: Data<Elem = T>, D: Dimension> sealed::SourceParts<T> for ArrayBase<S, D> {
    fn input(&self) -> Input<'_, T> {
        Input::new(self.view().into_dyn(), None)
    }
}
impl<T, S: Data<Elem = T>, D: Dimension> Source<T> for ArrayBase<S, D> {}

impl<T, S: DataMut<Elem = T>, D: Dimension> sealed::SinkParts<T> for ArrayBase<S, D> {
    fn output(&mut self) -> Output<'_, T> {
        Output::new(self.view_mut().into_dyn(), None)
    }
}
impl<T, S: DataMut<Elem = T>, D: Dimension> Sink<T> for ArrayBase<S, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SourceParts<T> for MmapArray<T, D> {
    fn input(&self) -> Input<'_, T> {
        let (v, p) = self.stream_parts();
        Input::mapped(v, p)
    }
}
impl<T: bytemuck::Pod, D: Dimension> Source<T> for MmapArray<T, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SourceParts<T> for MmapArrayMut<T, D> {
    fn input(&self) -> Input<'_, T> {
        let (v, p) = self.stream_parts();
        Input::mapped(v, p)
    }
}
impl<T: bytemuck::Pod, D: Dimension> Source<T> for MmapArrayMut<T, D> {}

impl<T: bytemuck::Pod, D: Dimension> sealed::SinkParts<T> for MmapArrayMut<T, D> {
    fn output(&mut self) -> Output<'_, T> {
        let (v, p) = self.stream_parts_mut();
        Output::mapped(v, p)
    }
}
impl<T: bytemuck::Pod, D: Dimension> Sink<T> for MmapArrayMut<T, D> {}

#[cfg(feature = "zarr")]
mod zarr_operands {
    use super::{Input, Output, Sink, Source, sealed};
    use crate::Element;
    use crate::zarr::{ZarrArray, ZarrArrayMut};

    impl<T: Element> sealed::SourceParts<T> for ZarrArray<T> {
        fn input(&self) -> Input<'_, T> {
            Input::zarr(self.array())
        }
    }
    impl<T: Element> Source<T> for ZarrArray<T> {}

    impl<T: Element> sealed::SourceParts<T> for ZarrArrayMut<T> {
        fn input(&self) -> Input<'_, T> {
            Input::zarr(self.array())
        }
    }
    impl<T: Element> Source<T> for ZarrArrayMut<T> {}

    impl<T: Element> sealed::SinkParts<T> for ZarrArrayMut<T> {
        fn output(&mut self) -> Output<'_, T> {
            Output::zarr(self)
        }
    }
    impl<T: Element> Sink<T> for ZarrArrayMut<T> {}
}

/// What [`Zip::from`](super::Zip::from) and [`Zip::and`](super::Zip) accept: `&x` of an ndarray array or view, or of a
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
        sealed::SourceParts::input(self)
    }
}

impl<T: bytemuck::Pod + Sync, D: Dimension> sealed_into::Sealed for &MmapArrayMut<T, D> {}
impl<'a, T: bytemuck::Pod + Sync, D: Dimension> IntoPart<'a> for &'a MmapArrayMut<T, D> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        sealed::SourceParts::input(self)
    }
}

impl<T: bytemuck::Pod + Send, D: Dimension> sealed_into::Sealed for &mut MmapArrayMut<T, D> {}
impl<'a, T: bytemuck::Pod + Send, D: Dimension> IntoPart<'a> for &'a mut MmapArrayMut<T, D> {
    type Part = Output<'a, T>;
    fn into_part(self) -> Output<'a, T> {
        sealed::SinkParts::output(self)
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
        sealed::SourceParts::input(self)
    }
}

#[cfg(feature = "zarr")]
impl<T: crate::Element> sealed_into::Sealed for &crate::zarr::ZarrArrayMut<T> {}
#[cfg(feature = "zarr")]
impl<'a, T: crate::Element> IntoPart<'a> for &'a crate::zarr::ZarrArrayMut<T> {
    type Part = Input<'a, T>;
    fn into_part(self) -> Input<'a, T> {
        sealed::SourceParts::input(self)
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
        sealed::SinkParts::output(self)
    }
}
