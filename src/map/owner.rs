//! The owner types, [`MmapArray`] and [`MmapArrayMut`]: what they hold, the views they
//! lend, flush, hints and close.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytemuck::Pod;
use memmap2::{Mmap, MmapMut};
use ndarray::{ArrayView, ArrayViewMut, Dimension, IxDyn};

use crate::bytes::{self};
use crate::element::type_name;
use crate::error::Error;
use crate::shape::{Order, ShapeArg};

use super::file::{self, FileId, PendingSync};
use super::options::{Advice, MapOptions, Region};
use super::registry;

/// What both owner types hold: the map, the locked file, and how to view it.
pub(super) struct Inner<M, D> {
    /// The map's entry in the table of live maps (for telling aliased operands). First,
    /// so that it is dropped (fields drop in order) before the map is unmapped: an entry
    /// must never outlive its memory, or another map at the same address would be taken
    /// for this one.
    pub(super) reg: registry::Registration,
    pub(super) map: M,
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// Which file (device and inode): two maps of one file are recognised as such.
    pub(super) id: FileId,
    pub(super) dim: D,
    pub(super) order: Order,
    /// Where the mapped bytes start in the file (for `sync_file_range`).
    pub(super) offset: u64,
    /// Mapped with an explicit [`MapOptions::len`]: the array need not end the file, and
    /// growth must not take in bytes past it.
    pub(super) bounded: bool,
    /// [`MapOptions::lock_timeout`].
    pub(super) wait: Option<Duration>,
    pub(super) private: bool,
}

impl<M: std::ops::Deref<Target = [u8]>> Inner<M, IxDyn> {
    pub(super) fn new(map: M, r: Region, order: Order, opts: &MapOptions, bounded: bool) -> Self {
        let reg = registry::Registration::new(
            map.as_ptr() as usize,
            map.len(),
            r.id,
            r.offset,
            &r.path,
            r.private,
        );
        Inner {
            reg,
            private: r.private,
            map,
            file: r.file,
            path: r.path,
            id: r.id,
            dim: IxDyn(&r.shape),
            order,
            offset: r.offset,
            bounded,
            wait: opts.lock_timeout,
        }
    }
}

impl<M: std::ops::Deref<Target = [u8]>, D> Inner<M, D> {
    /// Replaces the map (after growth), keeping the table of live maps right; returns the
    /// old map.
    pub(super) fn set_map(&mut self, map: M) -> M {
        self.reg = registry::Registration::new(
            map.as_ptr() as usize,
            map.len(),
            self.id,
            self.offset,
            &self.path,
            self.private,
        );
        std::mem::replace(&mut self.map, map)
    }
}

impl<M, D: Dimension> Inner<M, D> {
    pub(super) fn into_dimensionality<D2: Dimension>(self) -> Result<Inner<M, D2>, Error> {
        match D2::from_dimension(&self.dim) {
            Some(dim) => Ok(Inner {
                reg: self.reg,
                private: self.private,
                map: self.map,
                file: self.file,
                path: self.path,
                id: self.id,
                dim,
                order: self.order,
                offset: self.offset,
                bounded: self.bounded,
                wait: self.wait,
            }),
            None => Err(Error::Dimensionality {
                path: Some(self.path),
                expected: D2::NDIM.unwrap_or(0),
                found: self.dim.ndim(),
            }),
        }
    }

    pub(super) fn unlock(self) -> Result<(), Error> {
        let Inner {
            map,
            file,
            path,
            reg,
            ..
        } = self;
        drop(reg);
        drop(map);
        file::unlock_map(&file, &path)
    }

    pub(super) fn elem_range<T>(&self, elems: Range<usize>) -> Result<(usize, usize), Error> {
        let len = self.dim.size();
        if elems.start > elems.end || elems.end > len {
            return Err(Error::ElementRange {
                path: Some(self.path.clone()),
                start: elems.start,
                end: elems.end,
                len,
            });
        }
        let size = std::mem::size_of::<T>();
        Ok((elems.start * size, (elems.end - elems.start) * size))
    }
}

/// A read-only memory-mapped array: owns the map and lends [`ArrayView`]s of it.
///
/// Made by [`mmap_array`](crate::mmap_array) or [`MapOptions::open`]. The shape is dynamic (`IxDyn`) unless
/// fixed with [`into_dimensionality`](Self::into_dimensionality).
///
/// Views borrow the owner, so a view cannot outlive it:
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// # std::fs::write(&path, [0u8; 8]).unwrap();
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }.unwrap();
/// let v = a.view();
/// drop(a); // error[E0505]: cannot move out of `a` because it is borrowed
/// println!("{}", v[0]);
/// ```
/// and neither can it outlive [`close`](Self::close):
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// # std::fs::write(&path, [0u8; 8]).unwrap();
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }.unwrap();
/// let v = a.view();
/// a.close().unwrap();
/// println!("{}", v[0]);
/// ```
pub struct MmapArray<T, D = IxDyn> {
    pub(super) inner: Inner<Mmap, D>,
    pub(super) elem: PhantomData<T>,
}

impl<T: Pod> MmapArray<T> {
    pub(super) fn new(inner: Inner<Mmap, IxDyn>, advice: Option<Advice>) -> Result<Self, Error> {
        // Check the shape against the mapped bytes once, here; `view` relies on it.
        bytes::view::<T, _>(&inner.map, inner.dim.clone(), inner.order)
            .map_err(|e| e.at(&inner.path))?;
        let a = MmapArray {
            inner,
            elem: PhantomData,
        };
        if let Some(advice) = advice {
            a.advise(advice)?;
        }
        Ok(a)
    }
}

impl<T: Pod, D: Dimension> MmapArray<T, D> {
    /// Maps `path` read-only with `shape`, as an array of `D`'s rank: `MmapArray::<f32,
    /// Ix2>::open(path, [-1, 24])` lends `ArrayView2`s. Shorthand for
    /// [`MapOptions::new().open(..)`](MapOptions::open) and
    /// [`into_dimensionality`](Self::into_dimensionality).
    ///
    /// # Safety
    /// See [`MapOptions::open`].
    ///
    /// # Errors
    /// As for [`MapOptions::open`], and [`Error::Dimensionality`] when `shape` has
    /// another number of dimensions than `D`.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArray;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 48])).unwrap();
    /// let m = unsafe { MmapArray::<f32, Ix2>::open(&path, [-1, 24]) }?;
    /// let v: ndarray::ArrayView2<f32> = m.view();
    /// assert_eq!(v.row(1).sum(), 24.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open::<T>(path, shape) }?.into_dimensionality()
    }
}

impl<T: crate::Element, D: Dimension> MmapArray<T, D> {
    /// Maps the `.npy` file at `path` read-only as an array of `D`'s rank; the shape and
    /// order come from its header.
    ///
    /// # Safety
    /// See [`MapOptions::open_npy`].
    ///
    /// # Errors
    /// As for [`MapOptions::open_npy`], and [`Error::Dimensionality`] when the header's
    /// rank is not `D`'s.
    ///
    /// ```
    /// use ndarray::{Ix1, Ix2};
    /// use ndarray_mmap::MmapArray;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("x.npy");
    /// ndarray_mmap::write_npy(&path, &ndarray::Array2::<f32>::ones((10, 3)))?;
    /// let x = unsafe { MmapArray::<f32, Ix2>::open_npy(&path) }?;
    /// assert_eq!(x.view().dim(), (10, 3));
    /// assert!(unsafe { MmapArray::<f32, Ix1>::open_npy(&path) }.is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open_npy(path: impl AsRef<Path>) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open_npy::<T>(path) }?.into_dimensionality()
    }
}

impl<T: Pod, D: Dimension> MmapArray<T, D> {
    /// Fixes the number of dimensions, e.g. `into_dimensionality::<Ix2>()`, so views are
    /// `ArrayView2` and index with `[i, j]`.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] when the array has another number of dimensions.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, [0u8; 96]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, 4]) }?.into_dimensionality::<Ix2>()?;
    /// let v: ndarray::ArrayView2<f32> = a.view();
    /// assert_eq!(v.dim(), (6, 4));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn into_dimensionality<D2: Dimension>(self) -> Result<MmapArray<T, D2>, Error> {
        Ok(MmapArray {
            inner: self.inner.into_dimensionality()?,
            elem: PhantomData,
        })
    }

    /// Unmaps the file and releases its lock, reporting errors instead of hiding them in
    /// `Drop`. Views cannot outlive this call (they borrow the array).
    ///
    /// # Errors
    /// The I/O error from releasing the lock, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.u8");
    /// # std::fs::write(&path, [7u8, 8]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<u8>(&path, [-1]) }?;
    /// a.close()?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        self.inner.unlock()
    }
}

/// Accessors shared by both owner types.
macro_rules! common_accessors {
    ($ty:ident, $ctor:literal) => {
        impl<T, D: Dimension> $ty<T, D> {
            /// The file this array maps.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [7u8, 8]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert_eq!(a.path(), path);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn path(&self) -> &Path {
                &self.inner.path
            }

            /// The array's lengths.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1, 3]) }?;")]
            /// assert_eq!(a.shape(), &[2, 3]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn shape(&self) -> &[usize] {
                self.inner.dim.slice()
            }

            /// The number of elements.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1, 3]) }?;")]
            /// assert_eq!(a.len(), 6);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn len(&self) -> usize {
                self.inner.dim.size()
            }

            /// Whether the array has no elements.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, []).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert!(a.is_empty());
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The memory order of the data.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert_eq!(a.order(), ndarray_mmap::Order::C);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn order(&self) -> Order {
                self.inner.order
            }

            /// A read-only view of the whole array. Costs a few checks, no I/O: pages
            /// load on first touch.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.f32");
            /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32, 2., 3., 4.])).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<f32>(&path, [-1, 2]) }?;")]
            /// assert_eq!(a.view().sum(), 10.0);
            /// assert_eq!(a.view().shape(), &[2, 2]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn view(&self) -> ArrayView<'_, T, D>
            where
                T: Pod,
            {
                bytes::view(&self.inner.map, self.inner.dim.clone(), self.inner.order)
                    .expect("shape and alignment were checked when the file was mapped")
            }

            /// The mapped bytes (after the offset, exactly the array's bytes).
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [7u8, 8]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert_eq!(a.as_bytes(), &[7, 8]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn as_bytes(&self) -> &[u8] {
                &self.inner.map
            }

            /// Gives the kernel a paging hint for the whole mapping (`madvise`; a no-op
            /// where the platform has none).
            ///
            /// # Errors
            /// The I/O error `madvise` reports, with the path.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [7u8, 8]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// a.advise(ndarray_mmap::Advice::Sequential)?;
            /// assert_eq!(a.as_bytes(), &[7, 8]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn advise(&self, advice: Advice) -> Result<(), Error> {
                #[cfg(unix)]
                if !self.inner.map.is_empty() {
                    self.inner
                        .map
                        .advise(advice.into())
                        .map_err(|e| Error::io(&self.inner.path, "advise", e))?;
                }
                #[cfg(not(unix))]
                let _ = advice;
                Ok(())
            }
        }

        impl<T, D: Dimension> std::fmt::Debug for $ty<T, D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("path", &self.inner.path)
                    .field("elem", &type_name::<T>())
                    .field("shape", &self.inner.dim.slice())
                    .field("order", &self.inner.order)
                    .finish()
            }
        }
    };
}

common_accessors!(MmapArray, "ndarray_mmap::mmap_array");
common_accessors!(MmapArrayMut, "ndarray_mmap::mmap_array_mut");

/// A writable memory-mapped array: shared with the file (and other processes), or
/// copy-on-write. Lends [`ArrayView`]s and [`ArrayViewMut`]s.
///
/// Made by [`mmap_array_mut`](crate::mmap_array_mut), [`create_array`](crate::create_array), or [`MapOptions::open_mut`],
/// [`open_copy`](MapOptions::open_copy) and [`create`](MapOptions::create).
///
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// let mut a = unsafe { ndarray_mmap::create_array::<f32>(&path, [4]) }.unwrap();
/// let mut v = a.view_mut();
/// a.close().unwrap(); // error: `a` is borrowed by `v`
/// v[0] = 1.0;
/// ```
pub struct MmapArrayMut<T, D = IxDyn> {
    pub(super) inner: Inner<MmapMut, D>,
    pub(super) copy_on_write: bool,
    /// Whether [`MmapArrayMut::grow`] reserves disk blocks ([`MapOptions::preallocate`]).
    pub(super) preallocate: bool,
    /// What the next flush must sync beyond the data pages (after a create or a resize).
    pub(super) sync: PendingSync,
    /// Where the `.npy` header starts, for a map of a `.npy` file's data: growth rewrites
    /// the header's shape.
    pub(super) npy_start: Option<u64>,
    /// The `.npy` header's `descr` at open: growth refuses a header that changed it.
    pub(super) npy_descr: String,
    pub(super) elem: PhantomData<T>,
}

impl<T: Pod> MmapArrayMut<T> {
    pub(super) fn new(
        inner: Inner<MmapMut, IxDyn>,
        copy_on_write: bool,
        opts: &MapOptions,
        sync: PendingSync,
    ) -> Result<Self, Error> {
        bytes::view::<T, _>(&inner.map, inner.dim.clone(), inner.order)
            .map_err(|e| e.at(&inner.path))?;
        let a = MmapArrayMut {
            inner,
            copy_on_write,
            preallocate: !opts.sparse,
            sync,
            npy_start: None,
            npy_descr: String::new(),
            elem: PhantomData,
        };
        if let Some(advice) = opts.advice {
            a.advise(advice)?;
        }
        Ok(a)
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// Which file is mapped (device and inode).
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // Zarr chunks
    pub(crate) fn file_id(&self) -> FileId {
        self.inner.id
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// Maps `path` read-write with `shape`, as an array of `D`'s rank. Shorthand for
    /// [`MapOptions::new().open_mut(..)`](MapOptions::open_mut) and
    /// [`into_dimensionality`](Self::into_dimensionality).
    ///
    /// # Safety
    /// See [`MapOptions::open_mut`].
    ///
    /// # Errors
    /// As for [`MapOptions::open_mut`], and [`Error::Dimensionality`] for another rank.
    ///
    /// ```
    /// use ndarray::Ix1;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("w.f64");
    /// # std::fs::write(&path, [0u8; 32]).unwrap();
    /// let mut w = unsafe { MmapArrayMut::<f64, Ix1>::open(&path, [-1]) }?;
    /// w.view_mut()[3] = 1.5;
    /// assert_eq!(w.view().sum(), 1.5);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open_mut::<T>(path, shape) }?.into_dimensionality()
    }

    /// Creates `path` as a zero-filled array of exactly `shape`, of `D`'s rank, mapped
    /// read-write. Shorthand for [`MapOptions::new().create(..)`](MapOptions::create).
    ///
    /// # Safety
    /// See [`MapOptions::create`].
    ///
    /// # Errors
    /// As for [`MapOptions::create`]; [`Error::Dimensionality`] for another rank, found
    /// before any file is touched.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("z.i32");
    /// let mut z = unsafe { MmapArrayMut::<i32, Ix2>::create(&path, (1000, 24)) }?;
    /// z.view_mut()[[999, 23]] = 7;
    /// assert_eq!(z.view().dim(), (1000, 24));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn create(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        let path = path.as_ref();
        check_rank::<D>(path, shape.to_spec().len())?;
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().create::<T>(path, shape) }?.into_dimensionality()
    }
}

impl<T: crate::Element, D: Dimension> MmapArrayMut<T, D> {
    /// Creates the `.npy` file at `path` for a zero-filled C-order array of exactly
    /// `shape`, of `D`'s rank, and maps its data read-write. Shorthand for
    /// [`MapOptions::new().create_npy(..)`](MapOptions::create_npy).
    ///
    /// # Safety
    /// See [`MapOptions::create_npy`].
    ///
    /// # Errors
    /// As for [`MapOptions::create_npy`]; [`Error::Dimensionality`] for another rank,
    /// found before any file is touched.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("y.npy");
    /// let y = unsafe { MmapArrayMut::<f32, Ix2>::create_npy(&path, (10, 3)) }?;
    /// assert_eq!(y.view().dim(), (10, 3));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn create_npy(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        let path = path.as_ref();
        check_rank::<D>(path, shape.to_spec().len())?;
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().create_npy::<T>(path, shape) }?.into_dimensionality()
    }
}

/// `D`'s rank must be `ndim` (any rank for `IxDyn`).
pub(super) fn check_rank<D: Dimension>(path: &Path, ndim: usize) -> Result<(), Error> {
    match D::NDIM {
        Some(n) if n != ndim => Err(Error::Dimensionality {
            path: Some(path.to_path_buf()),
            expected: n,
            found: ndim,
        }),
        _ => Ok(()),
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// A mutable view of the whole array. Writes go to the page cache at once (shared
    /// maps) and reach the disk on [`flush`](Self::flush) or when the kernel writes back.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.i32");
    /// let mut c = unsafe { ndarray_mmap::create_array::<i32>(&path, [3, 2]) }?;
    /// c.view_mut()[[2, 1]] = 5;
    /// assert_eq!(c.view().sum(), 5);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn view_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        bytes::view_mut(
            &mut self.inner.map,
            self.inner.dim.clone(),
            self.inner.order,
        )
        .expect("shape and alignment were checked when the file was mapped")
    }

    /// The mapped bytes, mutably.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.as_bytes_mut()[1] = 4;
    /// assert_eq!(c.view()[1], 4);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.inner.map
    }

    /// Whether this map is copy-on-write ([`MapOptions::open_copy`]): writes never reach
    /// the file, and flushing does nothing.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// assert!(!c.is_copy_on_write());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn is_copy_on_write(&self) -> bool {
        self.copy_on_write
    }

    /// Writes every modified page to the file and waits (`msync(MS_SYNC)`). When it
    /// returns `Ok`, the data is in the file: other processes reading the file see it and
    /// it survives this process being killed. A no-op for copy-on-write maps.
    ///
    /// On Linux `msync(MS_SYNC)` also writes the pages to the disk. The first flush after
    /// [`create`](MapOptions::create) or [`grow`](Self::grow) also syncs the file's
    /// length and block map (`fsync`), and after creating a new file, its directory
    /// entry, so that the data survives a power loss too (see the README's "Reliability"
    /// section for what the disk itself may still lose).
    ///
    /// # Errors
    /// The I/O error `msync` or `fsync` reports (for example `EIO` after a failed
    /// write-back), with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.view_mut().fill(1);
    /// c.flush()?;
    /// assert_eq!(std::fs::read(&path)?, [1, 1, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        if self.copy_on_write {
            return Ok(());
        }
        if !self.inner.map.is_empty() {
            self.inner
                .map
                .flush()
                .map_err(|e| Error::io(&self.inner.path, "flush", e))?;
        }
        self.sync.run(&self.inner.file, &self.inner.path)
    }

    /// Starts writing modified pages back without waiting (`MS_ASYNC`). On Linux the
    /// kernel already tracks dirty pages, so this only guarantees write-back has been
    /// scheduled; use [`flush`](Self::flush) for durability.
    ///
    /// # Errors
    /// The I/O error `msync` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.flush_async()?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn flush_async(&self) -> Result<(), Error> {
        if self.copy_on_write || self.inner.map.is_empty() {
            return Ok(());
        }
        self.inner
            .map
            .flush_async()
            .map_err(|e| Error::io(&self.inner.path, "flush", e))
    }

    /// Like [`flush`](Self::flush), for the elements `elems` (indices in memory order).
    ///
    /// # Errors
    /// [`Error::ElementRange`] when the range lies outside the array; the I/O error
    /// `msync` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.f32");
    /// let mut c = unsafe { ndarray_mmap::create_array::<f32>(&path, [1000]) }?;
    /// c.view_mut().slice_mut(ndarray::s![..10]).fill(1.0);
    /// c.flush_range(0..10)?;
    /// assert!(c.flush_range(0..1001).is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn flush_range(&self, elems: Range<usize>) -> Result<(), Error> {
        let (offset, len) = self.inner.elem_range::<T>(elems)?;
        if self.copy_on_write {
            return Ok(());
        }
        if len > 0 {
            self.inner
                .map
                .flush_range(offset, len)
                .map_err(|e| Error::io(&self.inner.path, "flush", e))?;
        }
        self.sync.run(&self.inner.file, &self.inner.path)
    }

    /// Fixes the number of dimensions (see [`MmapArray::into_dimensionality`]).
    ///
    /// # Errors
    /// [`Error::Dimensionality`] when the array has another number of dimensions.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [2, 3]) }?
    ///     .into_dimensionality::<ndarray::Ix2>()?;
    /// c.view_mut()[[1, 2]] = 1;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn into_dimensionality<D2: Dimension>(self) -> Result<MmapArrayMut<T, D2>, Error> {
        Ok(MmapArrayMut {
            inner: self.inner.into_dimensionality()?,
            copy_on_write: self.copy_on_write,
            preallocate: self.preallocate,
            sync: self.sync,
            npy_start: self.npy_start,
            npy_descr: self.npy_descr,
            elem: PhantomData,
        })
    }

    /// Flushes (for shared maps), unmaps and releases the lock, reporting any error
    /// instead of hiding it in `Drop`. Dropping without `close` loses nothing that was
    /// written (the page cache holds it) but does not wait for the disk.
    ///
    /// # Errors
    /// The I/O error from flushing or unlocking, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.view_mut()[0] = 1;
    /// c.close()?;
    /// assert_eq!(std::fs::read(&path)?, [1, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        self.flush()?;
        self.inner.unlock()
    }
}
