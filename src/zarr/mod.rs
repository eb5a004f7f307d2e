//! Zarr v3 arrays mapped chunk by chunk (the `zarr` feature): the hand-off to dask and
//! zarr-python, with no copy either way.
//!
//! A Zarr v3 array on a filesystem is a directory with `zarr.json` and one file per chunk.
//! With the plain `bytes` codec (no compression) every chunk file holds exactly
//! `prod(chunk_shape) × itemsize` bytes in C order (Fortran order after a reversing
//! `transpose`), also at the array's edge, so each chunk maps like a raw file. A chunk
//! that was never written reads as the fill value. Sharded arrays with plain inner chunks
//! map inner chunk by inner chunk (each a byte range of its shard, found through the
//! shard's index). Chunks compressed with `zstd` (zarr-python's and dask's default) or
//! `gzip`, with a `crc32c`, or stored in the other byte order, are read whole and decoded
//! into a buffer of exactly one chunk, one chunk at a time (also inside shards); they stream
//! through every op like mapped ones. [`CreateOptions::compressor`] writes such arrays: a
//! stream holds each output chunk whole, encodes it once and replaces its file in one step
//! ([`ZarrArrayMut::chunk_mut`] refuses them: their chunks are not mapped). Other codecs
//! (`blosc`) are refused with [`ZarrProblem::Codec`].
//!
//! ```
//! use ndarray_mmap::{create_array, ops::{self, Zip}, zarr};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("a.zarr");
//! let mut w = unsafe { zarr::create::<f32>(&path, &[10, 7], &[4, 3]) }?;
//! for idx in w.chunk_indices() {
//!     let mut c = w.chunk_mut(&idx)?;            // the chunk's file, mapped
//!     c.view_mut().fill(idx[0] as f32);          // cut to the array's edge
//! }
//! let z = unsafe { zarr::open::<f32>(&path) }?;
//! assert_eq!((z.shape(), z.chunk_shape(), z.grid()), (&[10, 7][..], &[4, 3][..], vec![3, 3]));
//! let edge = z.chunk(&[2, 2])?;
//! assert_eq!(edge.view().shape(), &[2, 1]);      // rows 8..10, column 6
//! // Whole arrays stream through every op, chunk after chunk, whatever their grids, mixed
//! // with raw maps and arrays in memory of the same shape.
//! assert_eq!(ops::sum(&z)?, 4.0 * 7.0 * 1.0 + 2.0 * 7.0 * 2.0);
//! let mut out = unsafe { zarr::create::<f32>(dir.path().join("out.zarr"), &[10, 7], &[3, 7]) }?;
//! let row = ndarray::Array1::from_elem(7, 0.5f32);
//! ops::add_into(&z, &row, &mut out)?;            // the row is added to every row
//! let raw = unsafe { create_array::<f32>(dir.path().join("w.f32"), [10, 7]) }?;
//! let dot = Zip::from(&out).and(&raw).fold(0.0, |s, &x, &w| s + f64::from(x * w))?;
//! assert_eq!((ops::max(&out)?, dot), (Some(2.5), 0.0));
//! out.flush()?;                                  // one sync for every chunk written
//! // For the code a Zip cannot express, chunks are operands too.
//! let mut total = 0.0;
//! for idx in z.chunk_indices() {
//!     let c = z.chunk(&idx)?;
//!     total += Zip::from(&c).fold(0.0, |s, &x| s + f64::from(x))?;
//! }
//! assert_eq!(total, 4.0 * 7.0 * 1.0 + 2.0 * 7.0 * 2.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ahead;
mod array;
mod codec;
mod create;
mod grid;
mod meta;

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Slice};

pub(crate) use ahead::{ReadAhead, WriteBehind};
use array::Place;
pub(crate) use array::{Array, ChunkFile, ChunkStream, ChunkWriter, misaligned};
pub use create::{BloscName, Compressor, CreateOptions, Shuffle, create};
pub use grid::ChunkIndices;

use crate::element::Element;
use crate::error::{Error, ZarrProblem};
use crate::map::{MapOptions, MmapArray, MmapArrayMut};

fn zerr(path: &Path, problem: ZarrProblem) -> Error {
    Error::Zarr {
        path: path.to_path_buf(),
        problem,
    }
}

/// A read-only Zarr v3 array whose chunks map on demand. Made by [`open`].
#[derive(Debug)]
pub struct ZarrArray<T> {
    a: Array<T>,
}

/// A writable Zarr v3 array whose chunks map on demand; writing a chunk that does not
/// exist yet creates its file. Made by [`open_mut`] or [`create`].
#[derive(Debug)]
pub struct ZarrArrayMut<T> {
    a: Array<T>,
}

/// One chunk of a [`ZarrArray`]: its mapped file, or, for a chunk never written, an
/// owned block of the fill value.
#[derive(Debug)]
pub struct Chunk<T> {
    data: ChunkData<T>,
    edge: Vec<usize>,
}

#[derive(Debug)]
enum ChunkData<T> {
    Mapped(MmapArray<T>),
    /// Read into a buffer (an inner chunk not aligned for `T` in its shard).
    Owned(ArrayD<T>),
    /// One element, seen broadcast to the chunk's edge: no allocation whatever the size.
    Fill(ArrayD<T>),
}

/// One chunk of a [`ZarrArrayMut`], mapped writable.
#[derive(Debug)]
pub struct ChunkMut<T> {
    map: MmapArrayMut<T>,
    edge: Vec<usize>,
}

/// The one-element fill block seen with the chunk's edge shape (strides 0).
fn broadcast_fill<'a, T>(one: &'a ArrayD<T>, edge: &[usize]) -> ArrayViewD<'a, T> {
    one.broadcast(edge)
        .expect("a block of ones broadcasts to any shape of the same rank")
}

/// A view cut to the array's edge: the chunk's first `edge` indices per axis.
pub(crate) fn cut<V: ndarray::RawData, D: ndarray::Dimension>(
    mut v: ndarray::ArrayBase<V, D>,
    edge: &[usize],
) -> ndarray::ArrayBase<V, D> {
    v.slice_each_axis_inplace(|d| Slice::from(0..edge[d.axis.index()]));
    v
}

impl<T: Element> Chunk<T> {
    /// The chunk's elements, cut to the array's edge (an edge chunk's overhang is not
    /// part of the array).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// # drop(unsafe { ndarray_mmap::zarr::create::<i32>(&path, &[5], &[2]) }?);
    /// let z = unsafe { ndarray_mmap::zarr::open::<i32>(&path) }?;
    /// assert_eq!(z.chunk(&[2])?.view().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn view(&self) -> ArrayViewD<'_, T> {
        match &self.data {
            ChunkData::Mapped(m) => cut(m.view(), &self.edge),
            ChunkData::Owned(a) => cut(a.view(), &self.edge),
            ChunkData::Fill(a) => broadcast_fill(a, &self.edge),
        }
    }

    /// Whether the chunk has no file and reads as the fill value.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// # drop(unsafe { ndarray_mmap::zarr::create::<i32>(&path, &[5], &[2]) }?);
    /// # std::fs::remove_file(path.join("c").join("1"))?;
    /// let z = unsafe { ndarray_mmap::zarr::open::<i32>(&path) }?;
    /// assert!(z.chunk(&[1])?.is_fill());
    /// assert!(!z.chunk(&[0])?.is_fill());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_fill(&self) -> bool {
        matches!(self.data, ChunkData::Fill(_))
    }

    /// A chunk that holds only the array's fill value (what a chunk with no file reads
    /// as), for `ndim` axes.
    pub(crate) fn fill_of(array: &Array<T>, ndim: usize) -> Chunk<T> {
        Chunk {
            data: ChunkData::Fill(ArrayD::from_elem(vec![1; ndim], array.layout.fill)),
            edge: vec![1; ndim],
        }
    }

    /// The whole stored chunk (not cut to the array's edge) as an array of its own, in
    /// the chunk's order: what a stream updates and encodes again. `shape` and `order` are
    /// the chunk's.
    pub(crate) fn into_whole(
        self,
        shape: &[usize],
        order: crate::Order,
        path: &Path,
    ) -> Result<ArrayD<T>, Error> {
        Ok(match self.data {
            ChunkData::Owned(a) => a,
            ChunkData::Mapped(m) => m.view().to_owned(),
            ChunkData::Fill(one) => {
                let fill = one
                    .iter()
                    .next()
                    .copied()
                    .unwrap_or_else(bytemuck::Zeroable::zeroed);
                filled(shape, order, fill, path)?
            }
        })
    }

    /// The buffer of a chunk read into one (decoded), for the next chunk read
    /// ([`Array::read_chunk_into`]).
    pub(crate) fn into_buffer(self) -> Option<Vec<T>> {
        match self.data {
            ChunkData::Owned(a) => match a.into_raw_vec_and_offset() {
                (v, Some(0) | None) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// The chunk's map, when it is mapped, and its edge (see [`cut`]): what the engine
    /// streams with the map's paging hooks.
    pub(crate) fn mapped(&self) -> (Option<&MmapArray<T>>, &[usize]) {
        match &self.data {
            ChunkData::Mapped(m) => (Some(m), &self.edge),
            _ => (None, &self.edge),
        }
    }
}

impl<T: Element> ChunkMut<T> {
    /// The chunk's elements, cut to the array's edge, writable.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[3], &[2]) }?;
    /// w.chunk_mut(&[1])?.view_mut().fill(9);
    /// assert_eq!(std::fs::read(path.join("c").join("1"))?, [9, 0]); // the overhang stays fill
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        cut(self.map.view_mut(), &self.edge)
    }

    /// A read-only view, cut to the array's edge.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[3], &[2]) }?;
    /// assert_eq!(w.chunk_mut(&[1])?.view().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn view(&self) -> ArrayViewD<'_, T> {
        cut(self.map.view(), &self.edge)
    }

    /// Flushes the chunk's file (see [`MmapArrayMut::flush`]).
    ///
    /// # Errors
    /// The I/O error from `msync`, with the path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[3], &[2]) }?;
    /// let mut c = w.chunk_mut(&[0])?;
    /// c.view_mut().fill(1);
    /// c.flush()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        self.map.flush()
    }

    /// The chunk's map and its edge (see [`cut`]), for the engine.
    pub(crate) fn mapped_mut(&mut self) -> (&mut MmapArrayMut<T>, &[usize]) {
        (&mut self.map, &self.edge)
    }
}

macro_rules! shared {
    ($ty:ident, $ctor:literal) => {
        impl<T: Element> $ty<T> {
            /// The array's shape.
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.shape(), &[6, 4]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn shape(&self) -> &[usize] {
                &self.a.layout.shape
            }

            /// The shape of every stored chunk (edge chunks overhang the array).
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.chunk_shape(), &[4, 4]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn chunk_shape(&self) -> &[usize] {
                &self.a.layout.chunk
            }

            /// The shape of each shard, for an array written with shards (then
            /// [`chunk_shape`](Self::chunk_shape) is the inner chunk, the unit that maps).
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.shard_shape(), None); // `create` writes no shards
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn shard_shape(&self) -> Option<&[usize]> {
                self.a.layout.shard.as_ref().map(|s| s.shape.as_slice())
            }

            /// Chunks per axis.
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.grid(), [2, 1]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn grid(&self) -> Vec<usize> {
                self.a.grid()
            }

            /// The fill value: what chunks never written read as.
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.fill_value(), 0.0);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn fill_value(&self) -> T {
                self.a.layout.fill
            }

            /// Every chunk index, in C order.
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.chunk_indices().count(), 2);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn chunk_indices(&self) -> ChunkIndices {
                self.a.indices()
            }

            /// The array's elements chunk `index` covers: one range per axis.
            ///
            /// # Errors
            /// [`ZarrProblem::ChunkIndex`] for an index outside the grid.
            ///
            /// ```
            /// # let dir = tempfile::tempdir()?;
            /// # let path = dir.path().join("a.zarr");
            /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
            #[doc = concat!("let z = unsafe { ndarray_mmap::zarr::", $ctor, "::<f64>(&path) }?;")]
            /// assert_eq!(z.region(&[1, 0])?, [4..6, 0..4]);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn region(&self, index: &[usize]) -> Result<Vec<std::ops::Range<usize>>, Error> {
                let (_, edge) = self.a.locate(index)?;
                Ok(index
                    .iter()
                    .zip(&self.a.layout.chunk)
                    .zip(edge)
                    .map(|((&i, &c), e)| i * c..i * c + e)
                    .collect())
            }
        }
    };
}

shared!(ZarrArray, "open");
shared!(ZarrArrayMut, "open_mut");

impl<T: Element> ZarrArray<T> {
    /// Maps chunk `index` read-only (a chunk never written is an owned block of the fill
    /// value, cut to the array's edge).
    ///
    /// # Errors
    /// [`ZarrProblem::ChunkIndex`] outside the grid; [`ZarrProblem::ChunkSize`] for a chunk
    /// file of the wrong size (a compressed chunk under uncompressed metadata); the map
    /// errors of [`MapOptions::open`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// # drop(unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?);
    /// let z = unsafe { ndarray_mmap::zarr::open::<f64>(&path) }?;
    /// assert_eq!(z.chunk(&[1, 0])?.view().shape(), &[2, 4]);
    /// assert!(z.chunk(&[2, 0]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunk(&self, index: &[usize]) -> Result<Chunk<T>, Error> {
        self.a.read_chunk(index)
    }

    /// What the streaming engine reads.
    pub(crate) fn array(&self) -> &Array<T> {
        &self.a
    }
}

impl<T: Element> ZarrArrayMut<T> {
    /// Maps chunk `index` read-only, as [`ZarrArray::chunk`] does (a chunk never written
    /// is the fill value, and no file is created for it).
    ///
    /// # Errors
    /// As for [`ZarrArray::chunk`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<u16>(&path, &[5], &[2]) }?;
    /// w.chunk_mut(&[2])?.view_mut().fill(7);
    /// assert_eq!(w.chunk(&[2])?.view()[0], 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunk(&self, index: &[usize]) -> Result<Chunk<T>, Error> {
        self.a.read_chunk(index)
    }

    /// What the streaming engine reads.
    pub(crate) fn array(&self) -> &Array<T> {
        &self.a
    }

    /// The file of chunk `index`.
    pub(crate) fn chunk_path(&self, index: &[usize]) -> Result<PathBuf, Error> {
        Ok(self.a.locate(index)?.0)
    }

    /// Makes every chunk written through this handle durable: syncs each chunk file it
    /// wrote whole since the last flush, and each one it mapped writable (a [`ChunkMut`]
    /// may still be written), and their directories, to the disk.
    /// Chunks written through [`chunk_mut`](Self::chunk_mut) and dropped are in the page
    /// cache already; this is the one sync at the end of a loop over chunks, instead of a
    /// [`ChunkMut::flush`] per chunk. Files other handles or programs wrote are theirs to
    /// sync (a job of many tasks, each writing its own chunks, syncs each file once).
    ///
    /// # Errors
    /// The I/O error of syncing, with the chunk's path (the next flush syncs every file
    /// again; after an I/O error the data of the file that failed may be lost).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[4], &[2]) }?;
    /// for idx in w.chunk_indices() {
    ///     w.chunk_mut(&idx)?.view_mut().fill(3);
    /// }
    /// w.flush()?;
    /// assert_eq!(std::fs::read(path.join("c").join("1"))?, [3, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        // Nothing is counted as synced until every file and directory is: after an error,
        // the next flush syncs them all again.
        let paths = self.a.to_sync();
        let mut dirs = std::collections::BTreeSet::new();
        for path in &paths {
            sync_file(path)?;
            if let Some(parent) = path.parent() {
                dirs.insert(parent.to_path_buf());
            }
        }
        #[cfg(unix)]
        for d in dirs {
            let f = std::fs::File::open(&d).map_err(|e| Error::io(&d, "open", e))?;
            f.sync_all().map_err(|e| Error::io(&d, "sync", e))?;
        }
        #[cfg(not(unix))]
        let _ = dirs;
        self.a.synced(&paths);
        Ok(())
    }

    /// Writes chunk `index` whole from `data`, which has the chunk's region's shape (see
    /// [`region`](Self::region): cut to the array's edge). A compressed chunk is encoded
    /// once and its file replaced in one step (a crash leaves the old chunk or the new
    /// one; elements past the array's edge hold the fill value); an uncompressed chunk is
    /// written through its map ([`chunk_mut`](Self::chunk_mut)), made durable by
    /// [`flush`](Self::flush). One writer per chunk at a time: two programs writing the
    /// same chunk leave one of their chunks, whole.
    ///
    /// # Errors
    /// [`Error::Broadcast`] when `data` has another shape; [`ZarrProblem::Unsupported`] for
    /// a compressed chunk inside a shard; as for [`chunk_mut`](Self::chunk_mut), and the
    /// encode and write errors of a compressed chunk.
    ///
    /// ```
    /// use ndarray_mmap::zarr::{self, Compressor, CreateOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("z.zarr");
    /// let mut w = unsafe {
    ///     CreateOptions::new().compressor(Compressor::zstd(3)).create(&path, [5], [4])
    /// }?;
    /// w.write_chunk(&[1], &ndarray::array![9i32])?;           // the edge chunk: one element
    /// let z = unsafe { zarr::open::<i32>(&path) }?;
    /// assert_eq!(z.chunk(&[1])?.view(), ndarray::array![9].into_dyn());
    /// assert!(w.write_chunk(&[0], &ndarray::array![1i32, 2]).is_err()); // not the chunk's shape
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_chunk<S, D>(
        &mut self,
        index: &[usize],
        data: &ndarray::ArrayBase<S, D>,
    ) -> Result<(), Error>
    where
        S: ndarray::Data<Elem = T>,
        D: ndarray::Dimension,
    {
        let region = self.region(index)?;
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        if data.shape() != shape.as_slice() {
            return Err(Error::Broadcast {
                operand: "the chunk's data",
                input: data.shape().to_vec(),
                output: shape,
                onto: "the chunk's region",
            });
        }
        if !self.a.is_coded() {
            let mut c = self.chunk_mut(index)?;
            c.view_mut().assign(&data.view().into_dyn());
            return Ok(());
        }
        let l = &self.a.layout;
        if l.shard.is_some() {
            let (path, _) = self.a.locate(index)?;
            return Err(zerr(
                &path,
                ZarrProblem::Unsupported {
                    what: format!(
                        "writing inner chunk {index:?} of a compressed shard (shards are \
                         written in place only)"
                    ),
                },
            ));
        }
        // A whole chunk laid out in the chunk's order is encoded from where it is.
        if shape == l.chunk {
            let v = data.view().into_dyn();
            let raw = match l.order {
                crate::Order::F => v.t().to_slice(),
                _ => v.to_slice(),
            };
            if let Some(raw) = raw {
                return self.a.write_encoded_raw(index, raw, false).map(drop);
            }
        }
        let mut whole = filled(&l.chunk, l.order, l.fill, self.a.dir())?;
        whole
            .slice_each_axis_mut(|ax| ndarray::Slice::from(0..shape[ax.axis.index()]))
            .assign(&data.view().into_dyn());
        self.a.write_encoded(index, &whole, false).map(drop)
    }

    /// Maps chunk `index` writable; a chunk with no file is created first (its disk space
    /// reserved, filled with the fill value), by the crate's create rules.
    ///
    /// # Errors
    /// As for [`ZarrArray::chunk`], and the create errors of [`MapOptions::create`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let mut w = unsafe { ndarray_mmap::zarr::create::<f64>(&path, &[6, 4], &[4, 4]) }?;
    /// w.chunk_mut(&[1, 0])?.view_mut().fill(2.5);
    /// let z = unsafe { ndarray_mmap::zarr::open::<f64>(&path) }?;
    /// assert_eq!(z.chunk(&[1, 0])?.view()[[1, 3]], 2.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunk_mut(&mut self, index: &[usize]) -> Result<ChunkMut<T>, Error> {
        self.chunk_mut_made(index).map(|(c, _)| c)
    }

    /// [`chunk_mut`](Self::chunk_mut), and the identity of the chunk's file when this
    /// call created it (`None` when it was there, or another writer made it meanwhile).
    pub(crate) fn chunk_mut_made(
        &mut self,
        index: &[usize],
    ) -> Result<(ChunkMut<T>, Option<crate::map::FileId>), Error> {
        let codecs = &self.a.layout.codecs;
        if !codecs.is_plain() {
            let (path, _) = self.a.locate(index)?;
            return Err(zerr(
                &path,
                ZarrProblem::Unsupported {
                    what: format!(
                        "chunk_mut of an array whose chunks are encoded ({}): they are not \
                         mapped; write them with a stream (ops::map_into, ops::Zip, ...), which \
                         encodes each chunk whole and replaces its file",
                        codecs.names()
                    ),
                },
            ));
        }
        // A chunk that appears between our look and our create (another writer made it)
        // is opened, never replaced: its writes stand.
        for _ in 0..16 {
            let (place, edge) = self.a.place(index)?;
            let l = &self.a.layout;
            let opts = MapOptions::new().order(l.order);
            let path = match place {
                Place::File(path) => {
                    self.a.check_no_links(&path)?;
                    self.a.check_one_name(&path)?;
                    // SAFETY: the contract of `open_mut` / `create` covers every chunk file.
                    let map = unsafe { opts.open_mut::<T>(&path, l.chunk.as_slice()) }?;
                    self.a.check_opened(&path, map.file_id())?;
                    self.a.mark_mapped(&path);
                    return Ok((ChunkMut { map, edge }, None));
                }
                Place::InShard { path, offset, .. } => {
                    self.a.check_no_links(&path)?;
                    self.a.check_one_name(&path)?;
                    if offset % std::mem::align_of::<T>() as u64 != 0 {
                        return Err(misaligned::<T>(&path, index, offset));
                    }
                    let opts = opts.offset(offset).len(self.a.chunk_bytes());
                    // SAFETY: the contract of `open_mut` covers every shard file.
                    let map = unsafe { opts.open_mut::<T>(&path, l.chunk.as_slice()) }?;
                    self.a.check_opened(&path, map.file_id())?;
                    self.a.mark_mapped(&path);
                    return Ok((ChunkMut { map, edge }, None));
                }
                Place::Missing(path) if l.shard.is_some() => {
                    return Err(zerr(
                        &path,
                        ZarrProblem::Unsupported {
                            what: format!(
                                "writing inner chunk {index:?}, which its shard does not hold \
                                 (shards are written in place only: write the array without \
                                 shards, shards=None)"
                            ),
                        },
                    ));
                }
                Place::Missing(path) => path,
            };
            self.a.check_no_links(&path)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
            }
            // The directories just made (or found) must not be links either.
            self.a.check_no_links(&path)?;
            // SAFETY: as above; the file is new. It appears only filled with the fill
            // value, and never over a chunk that appeared meanwhile.
            let made = unsafe {
                MapOptions::new()
                    .order(l.order)
                    .create_new(true)
                    .create_filled::<T>(&path, l.chunk.as_slice(), l.fill)
            };
            match made {
                Ok(map) => {
                    let id = map.file_id();
                    self.a.mark_mapped(&path);
                    return Ok((ChunkMut { map, edge }, Some(id)));
                }
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let path = self.a.locate(index)?.0;
        Err(Error::io(
            &path,
            "create",
            std::io::Error::other("the chunk kept appearing and vanishing while it was created"),
        ))
    }
}

/// Syncs the file at `path` (a chunk or shard file that may since have gone: nothing to do).
fn sync_file(path: &Path) -> Result<(), Error> {
    // Windows flushes a file's buffers only through a handle with write access
    // (`FlushFileBuffers`); a read-only handle is enough elsewhere.
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(cfg!(windows))
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, "open for syncing", e)),
    };
    f.sync_all().map_err(|e| Error::io(path, "sync", e))
}

/// A buffer of `n` elements `value`, or an `Err` naming the bytes when memory cannot hold
/// them: a chunk's size comes from `zarr.json`, which anyone may write (a chunk shape of
/// 2**35 asked for 128 GiB, and the allocation's failure aborted the process).
pub(crate) fn chunk_buffer<T: Clone>(n: usize, value: T, path: &Path) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        return Err(Error::io(
            path,
            "hold a chunk of",
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!(
                    "{} bytes (its chunk shape) do not fit in memory",
                    n.saturating_mul(std::mem::size_of::<T>())
                ),
            ),
        ));
    }
    v.resize(n, value);
    Ok(v)
}

/// A whole chunk of `shape` in `order`, every element `fill` (see [`chunk_buffer`]).
pub(crate) fn filled<T: Clone>(
    shape: &[usize],
    order: crate::Order,
    fill: T,
    path: &Path,
) -> Result<ArrayD<T>, Error> {
    let n = shape.iter().product();
    let v = chunk_buffer(n, fill, path)?;
    let dim = ndarray::IxDyn(shape);
    Ok(match order {
        crate::Order::F => ArrayD::from_shape_vec(ndarray::ShapeBuilder::f(dim), v),
        _ => ArrayD::from_shape_vec(dim, v),
    }
    .expect("a buffer of the shape's length"))
}

/// Opens the Zarr v3 array at directory `path` read-only; chunks map on demand.
///
/// # Safety
/// As for [`MapOptions::open`], for every chunk file: no other program may truncate or
/// modify them while chunks are mapped.
///
/// # Errors
/// [`Error::Zarr`] naming what cannot be read (a codec other than `bytes`, `transpose`,
/// `sharding_indexed`, `zstd`, `gzip` and `crc32c`; another data type; a `must_understand`
/// extension, ...), or the I/O error reading `zarr.json`. A damaged compressed chunk is
/// [`ZarrProblem::Decode`] when it is read.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.zarr");
/// # drop(unsafe { ndarray_mmap::zarr::create::<f32>(&path, &[8], &[4]) }?);
/// let z = unsafe { ndarray_mmap::zarr::open::<f32>(&path) }?;
/// assert_eq!(z.grid(), [2]);
/// assert!(unsafe { ndarray_mmap::zarr::open::<i64>(&path) }.is_err()); // float32 on disk
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn open<T: Element>(path: impl AsRef<Path>) -> Result<ZarrArray<T>, Error> {
    Ok(ZarrArray {
        a: Array::open(path.as_ref())?,
    })
}

/// Opens the Zarr v3 array at directory `path` for writing; chunks map on demand.
///
/// # Safety
/// As for [`MapOptions::open_mut`], for every chunk file.
///
/// # Errors
/// As for [`open`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.zarr");
/// # drop(unsafe { ndarray_mmap::zarr::create::<f32>(&path, &[8], &[4]) }?);
/// let mut w = unsafe { ndarray_mmap::zarr::open_mut::<f32>(&path) }?;
/// w.chunk_mut(&[0])?.view_mut()[0] = 1.0;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn open_mut<T: Element>(path: impl AsRef<Path>) -> Result<ZarrArrayMut<T>, Error> {
    Ok(ZarrArrayMut {
        a: Array::open(path.as_ref())?,
    })
}

#[cfg(all(test, not(miri)))] // files
mod tests {
    use super::*;

    /// A flush syncs what its handle wrote, and only that: a chunk written whole until a
    /// flush has synced it, a chunk mapped writable at every flush (a `ChunkMut` may be
    /// written after one), and never a file another handle wrote.
    #[test]
    fn a_flush_syncs_what_its_handle_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("p.zarr");
        let packed = dir.path().join("z.zarr");
        // SAFETY: this test's own files.
        let mut p = unsafe { create::<i32>(&plain, &[8], &[4]) }.unwrap();
        // SAFETY: as above.
        let mut z = unsafe {
            CreateOptions::<i32>::new()
                .compressor(Compressor::zstd(3))
                .create(&packed, [8], [4])
        }
        .unwrap();
        assert!(p.a.to_sync().is_empty() && z.a.to_sync().is_empty());
        let mut c = p.chunk_mut(&[1]).unwrap();
        z.write_chunk(&[0], &ndarray::arr1(&[1, 2, 3, 4])).unwrap();
        let (mapped, whole) = (p.chunk_path(&[1]).unwrap(), z.chunk_path(&[0]).unwrap());
        assert_eq!(
            p.a.to_sync().into_iter().collect::<Vec<_>>(),
            std::slice::from_ref(&mapped)
        );
        assert_eq!(z.a.to_sync().into_iter().collect::<Vec<_>>(), [whole]);
        p.flush().unwrap();
        z.flush().unwrap();
        // Written after the flush, through the map it kept: the next flush syncs it again.
        c.view_mut().fill(9);
        assert_eq!(p.a.to_sync().into_iter().collect::<Vec<_>>(), [mapped]);
        assert!(
            z.a.to_sync().is_empty(),
            "a whole chunk synced once is done"
        );
        drop(c);
        // Another handle's writes are its own to sync.
        // SAFETY: as above.
        let mut other = unsafe { open_mut::<i32>(&packed) }.unwrap();
        other
            .write_chunk(&[1], &ndarray::arr1(&[5, 6, 7, 8]))
            .unwrap();
        assert!(z.a.to_sync().is_empty());
        assert_eq!(other.a.to_sync().len(), 1);
        other.flush().unwrap();
        assert_eq!(z.chunk(&[1]).unwrap().view()[3], 8);
    }

    /// A chunk decoded as a stream is checked as one decoded whole: it must decode to
    /// exactly one chunk (more or fewer bytes are an error at its end).
    #[test]
    fn a_chunk_decoded_as_a_stream_must_end_where_a_chunk_does() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: this test's own files.
        let mut z = unsafe {
            CreateOptions::<i32>::new()
                .compressor(Compressor::zstd(3))
                .create(dir.path().join("z.zarr"), [8], [4])
        }
        .unwrap();
        z.write_chunk(&[0], &ndarray::arr1(&[1, 2, 3, 4])).unwrap();
        let mut s =
            z.a.chunk_stream(&[0], false)
                .unwrap()
                .expect("zstd streams");
        let mut b = [0u8; 8];
        z.a.read_stream(&mut s, 4, &mut b).unwrap();
        assert_eq!(b, *bytemuck::cast_slice::<i32, u8>(&[2, 3]));
        z.a.end_stream(&mut s).unwrap();
        let path = z.chunk_path(&[0]).unwrap();
        for (values, what) in [
            (&[1, 2, 3, 4, 5][..], "longer"),
            (&[1, 2, 3][..], "shorter"),
        ] {
            let frame = zstd::bulk::compress(bytemuck::cast_slice::<i32, u8>(values), 1).unwrap();
            std::fs::write(&path, frame).unwrap();
            let mut s =
                z.a.chunk_stream(&[0], false)
                    .unwrap()
                    .expect("zstd streams");
            let mut b = [0u8; 4];
            z.a.read_stream(&mut s, 0, &mut b).unwrap();
            assert!(z.a.end_stream(&mut s).is_err(), "a {what} chunk passed");
        }
    }

    /// A stored chunk of several megabytes (read a megabyte at a time, each read placed anew
    /// for the kernel's copy) decodes as a stream to its values, zstd and gzip alike, and
    /// one with a byte after its frame is an error at its end.
    #[test]
    fn a_chunk_of_megabytes_decodes_as_a_stream_and_must_end_with_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 << 18; // 3 MiB of u32, stored at about that size
        let mut x = 0x9E37_79B9u32;
        let values: Vec<u32> = (0..2 * n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            })
            .collect();
        for (name, c) in [("z", Compressor::zstd(1)), ("g", Compressor::gzip(1))] {
            // SAFETY: this test's own files.
            let mut z = unsafe {
                CreateOptions::<u32>::new().compressor(c).create(
                    dir.path().join(name),
                    [2 * n],
                    [n],
                )
            }
            .unwrap();
            z.write_chunk(&[1], &ndarray::arr1(&values[n..])).unwrap();
            let path = z.chunk_path(&[1]).unwrap();
            assert!(
                std::fs::metadata(&path).unwrap().len() > 3 << 20,
                "{name}: incompressible"
            );
            let read_all = |z: &ZarrArrayMut<u32>| -> Result<Vec<u32>, Error> {
                let mut s = z.a.chunk_stream(&[1], false)?.expect("streams");
                let mut got = vec![0u32; n];
                // Pieces of odd sizes across the reads' boundaries.
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut got);
                let mut at = 0;
                for piece in [5, 1 << 20, 3 << 19, 7].into_iter().cycle() {
                    let end = (at + piece).min(bytes.len());
                    z.a.read_stream(&mut s, at as u64, &mut bytes[at..end])?;
                    at = end;
                    if at == bytes.len() {
                        break;
                    }
                }
                z.a.end_stream(&mut s)?;
                Ok(got)
            };
            assert!(
                read_all(&z).unwrap() == values[n..],
                "{name}: values differ"
            );
            let mut stored = std::fs::read(&path).unwrap();
            stored.push(0);
            std::fs::write(&path, &stored).unwrap();
            let e = read_all(&z)
                .expect_err("a byte after the frame passed")
                .to_string();
            assert!(e.contains("cannot be decoded to one chunk"), "{name}: {e}");
        }
    }

    /// The chunks a stream wrote behind it count for the array's flush as soon as they are
    /// in place, even when the stream stops before it hears back: a panic in the caller's
    /// function leaves no chunk file on the disk that `flush` would not sync.
    #[test]
    fn chunks_written_behind_a_stream_that_panicked_are_synced_by_the_flush() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (n, chunks) = (4096, 64);
        // SAFETY: this test's own files.
        let mut z = unsafe {
            CreateOptions::<i32>::new()
                .compressor(Compressor::zstd(1))
                .create(dir.path().join("z.zarr"), [n * chunks], [n])
        }
        .unwrap();
        let a = ndarray::Array1::from_iter(0..(n * chunks) as i32);
        let seen = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::ops::map_into(&a, &mut z, |x: i32| {
                if seen.fetch_add(1, Ordering::Relaxed) == 40 * n {
                    panic!("the caller's function fails");
                }
                x + 1
            })
        }));
        assert!(r.is_err(), "the function's panic goes to the caller");
        let on_disk: std::collections::BTreeSet<PathBuf> = (0..chunks)
            .filter_map(|k| z.chunk_path(&[k]).ok().filter(|p| p.exists()))
            .collect();
        assert!(on_disk.len() >= 30, "{} chunks written", on_disk.len());
        let to_sync = z.a.to_sync();
        let unsynced: Vec<_> = on_disk.difference(&to_sync).collect();
        assert!(
            unsynced.is_empty(),
            "written and left out of the flush: {unsynced:?}"
        );
        z.flush().unwrap();
    }

    /// A chunk a failed stream made is taken back only while it is the file it made, nobody
    /// maps it and it holds the fill value only: never one another writer took up, wrote or
    /// put in its place.
    #[test]
    fn a_made_chunk_is_taken_back_only_while_unused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zarr");
        let fill = 5i32.to_ne_bytes();
        // SAFETY: this test's own files.
        let mut w = unsafe {
            CreateOptions::new()
                .fill_value(5i32)
                .create(&path, [12], [4])
        }
        .unwrap();
        let (c, made) = w.chunk_mut_made(&[0]).unwrap();
        let id = made.expect("made by this call");
        drop(c);
        let file = w.chunk_path(&[0]).unwrap();
        // SAFETY: as above.
        let mut other = unsafe { open_mut::<i32>(&path) }.unwrap();
        let (mut taken, again) = other.chunk_mut_made(&[0]).unwrap();
        assert!(again.is_none(), "opened, not made");
        assert!(
            !crate::map::remove_if_unused(&file, id, &fill),
            "removed a mapped chunk"
        );
        // Written by the other writer, then let go: its write stands.
        taken.view_mut()[1] = 7;
        drop(taken);
        assert!(
            !crate::map::remove_if_unused(&file, id, &fill),
            "removed a written chunk"
        );
        assert_eq!(w.chunk(&[0]).unwrap().view()[1], 7);
        // Replaced by another writer: not ours any more.
        let tmp = dir.path().join("new");
        std::fs::write(&tmp, [0u8; 16]).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert!(
            !crate::map::remove_if_unused(&file, id, &fill),
            "removed a replaced chunk"
        );
        assert!(file.exists());
        let (c, made) = w.chunk_mut_made(&[1]).unwrap();
        drop(c);
        let file1 = w.chunk_path(&[1]).unwrap();
        assert!(crate::map::remove_if_unused(&file1, made.unwrap(), &fill));
        assert!(!file1.exists());
    }
}
