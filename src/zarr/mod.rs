//! Zarr v3 arrays mapped chunk by chunk (the `zarr` feature): the hand-off to dask and
//! zarr-python, with no copy either way.
//!
//! A Zarr v3 array on a filesystem is a directory with `zarr.json` and one file per chunk.
//! With the plain `bytes` codec (no compression) every chunk file holds exactly
//! `prod(chunk_shape) × itemsize` bytes in C order (Fortran order after a reversing
//! `transpose`), also at the array's edge, so each chunk maps like a raw file. A chunk
//! that was never written reads as the fill value. Sharded arrays with plain inner chunks
//! map inner chunk by inner chunk (each a byte range of its shard, found through the
//! shard's index). Compressed arrays are refused with
//! [`ZarrProblem::Codec`], which says how to write them
//! uncompressed.
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

mod meta;

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Slice};

use crate::element::Element;
use crate::error::{Error, ZarrProblem};
use crate::map::{MapOptions, MmapArray, MmapArrayMut, write_file_new};
use crate::shape::ShapeArg;
use meta::Layout;

fn zerr(path: &Path, problem: ZarrProblem) -> Error {
    Error::Zarr {
        path: path.to_path_buf(),
        problem,
    }
}

/// What both array types share: the directory and its checked layout.
#[derive(Debug, Clone)]
pub(crate) struct Array<T> {
    dir: PathBuf,
    layout: Layout<T>,
    /// The shard indexes read last (each read and checked once, not per inner chunk).
    indexes: IndexCache,
}

/// What a shard file was when its index was read: a change of any of these reads it anew.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// Device and inode (Unix): a shard replaced by another file of the same length.
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            },
        }
    }
}

/// A shard index: `(offset, nbytes)` per inner chunk, checked.
type Entries = std::sync::Arc<[(u64, u64)]>;

/// The last few shard indexes read.
#[derive(Default)]
struct IndexCache(std::sync::Mutex<Vec<(PathBuf, Stamp, Entries)>>);

impl IndexCache {
    const KEEP: usize = 8;

    fn get(&self, path: &Path, stamp: &Stamp) -> Option<Entries> {
        let cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .iter()
            .find(|(p, s, _)| p == path && s == stamp)
            .map(|(_, _, e)| e.clone())
    }

    fn put(&self, path: &Path, stamp: Stamp, entries: Entries) {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|(p, _, _)| p != path);
        if cache.len() >= Self::KEEP {
            cache.remove(0);
        }
        cache.push((path.to_path_buf(), stamp, entries));
    }
}

impl Clone for IndexCache {
    fn clone(&self) -> Self {
        IndexCache::default()
    }
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexCache")
    }
}

impl<T: Element> Array<T> {
    fn open(dir: &Path) -> Result<Self, Error> {
        let json_path = dir.join("zarr.json");
        let json = match crate::map::read_small_file(&json_path, 16 << 20) {
            Ok(json) => json,
            // A Zarr v2 array or group has no zarr.json: say so, and what to do.
            Err(e @ Error::Io { .. }) => match meta::v2_hint(dir) {
                Some(problem) => return Err(zerr(dir, problem)),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let layout = meta::parse::<T>(&json).map_err(|p| zerr(&json_path, p))?;
        Ok(Array {
            dir: dir.to_path_buf(),
            layout,
            indexes: IndexCache::default(),
        })
    }

    /// Refuses to write chunk file `path` in place when it has other names (hard links, as
    /// `cp -al` or a deduplicator make): the bytes of another array, or of a snapshot, would
    /// change with it. (Unix: elsewhere the count is not asked.)
    pub(crate) fn check_one_name(&self, path: &Path) -> Result<(), Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.nlink() > 1 => {
                    return Err(zerr(
                        path,
                        ZarrProblem::Unsupported {
                            what: format!(
                                "writing a chunk file that has {} names (hard links, as cp -al \
                                 makes): writing it in place would change the other names too; \
                                 copy the file to break the link",
                                m.nlink()
                            ),
                        },
                    ));
                }
                _ => {}
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }

    /// Refuses to write chunk file `path` when it, or a directory between the array's and
    /// it, is a symbolic link: the bytes would land outside the array's directory (a
    /// downloaded or shared array must never make us write elsewhere). Reading through
    /// links is left alone.
    pub(crate) fn check_no_links(&self, path: &Path) -> Result<(), Error> {
        let Ok(rest) = path.strip_prefix(&self.dir) else {
            return Ok(());
        };
        let mut at = self.dir.clone();
        for part in rest.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(zerr(
                        &at,
                        ZarrProblem::Unsupported {
                            what: format!(
                                "writing chunk {} through a symbolic link (its bytes would land \
                                 outside the array's directory; replace the link with a copy of \
                                 what it points to)",
                                path.display()
                            ),
                        },
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&at, "inspect", e)),
            }
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    pub(crate) fn chunk_shape(&self) -> &[usize] {
        &self.layout.chunk
    }

    /// The order of the elements inside each chunk file.
    pub(crate) fn order(&self) -> crate::Order {
        self.layout.order
    }

    /// Every chunk file, checked as [`read_chunk`](Self::read_chunk) would (the size of
    /// each file, no directory in its place) and with its identity, so that a stream can
    /// refuse what it would otherwise find only half-way (at most 2^24 chunks).
    pub(crate) fn survey(&self) -> Result<Vec<ChunkFile>, Error> {
        const MAX: usize = 1 << 24;
        let chunks = self
            .grid()
            .iter()
            .try_fold(1usize, |n, &g| n.checked_mul(g));
        if chunks.is_none_or(|n| n > MAX) {
            return Err(zerr(
                &self.dir,
                ZarrProblem::Unsupported {
                    what: format!(
                        "streaming an array of more than 2^24 chunks (its grid is {:?}; choose \
                         larger chunks)",
                        self.grid()
                    ),
                },
            ));
        }
        let mut out = Vec::new();
        for index in self.indices() {
            let (place, _) = self.place(&index)?;
            let (path, offset, there) = match place {
                Place::File(p) => (p, 0, true),
                Place::InShard { path, offset } => (path, offset, true),
                Place::Missing(p) => (p, 0, false),
            };
            let id = if there {
                match crate::map::identity_of_path(&path) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(e)) => return Err(Error::io(&path, "inspect", e)),
                    None => None,
                }
            } else {
                None
            };
            out.push(ChunkFile {
                index,
                path,
                offset,
                id,
            });
        }
        Ok(out)
    }

    /// Chunk `index` mapped read-only, or the fill value for a chunk never written.
    pub(crate) fn read_chunk(&self, index: &[usize]) -> Result<Chunk<T>, Error> {
        let (place, edge) = self.place(index)?;
        let l = &self.layout;
        let opts = MapOptions::new().order(l.order);
        let data = match place {
            Place::File(path) => {
                // SAFETY: the contract of `open` / `open_mut` covers every chunk file.
                let m = unsafe { opts.open::<T>(&path, l.chunk.as_slice()) }?;
                ChunkData::Mapped(m)
            }
            Place::InShard { path, offset } if offset % std::mem::align_of::<T>() as u64 != 0 => {
                // zarr-python's index at the start puts inner chunks 4 bytes off 8-byte
                // alignment: such a chunk is read into an aligned buffer instead.
                ChunkData::Owned(self.read_copy(&path, offset)?)
            }
            Place::InShard { path, offset } => {
                let opts = opts.offset(offset).len(self.chunk_bytes());
                // SAFETY: the contract of `open` / `open_mut` covers every shard file.
                let m = unsafe { opts.open::<T>(&path, l.chunk.as_slice()) }?;
                ChunkData::Mapped(m)
            }
            Place::Missing(_) => {
                ChunkData::Fill(ArrayD::from_elem(vec![1; edge.len()], self.layout.fill))
            }
        };
        Ok(Chunk { data, edge })
    }

    /// The chunk at bytes `offset..` of `path`, read into a buffer of its own (aligned for
    /// `T`, in the chunk's order).
    fn read_copy(&self, path: &Path, offset: u64) -> Result<ArrayD<T>, Error> {
        let l = &self.layout;
        let n: usize = l.chunk.iter().product();
        let mut data: Vec<T> = vec![bytemuck::Zeroable::zeroed(); n];
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(bytemuck::cast_slice_mut(&mut data)))
                .map_err(|e| Error::io(path, "read a chunk of", e))?;
        }
        let dim = ndarray::IxDyn(&l.chunk);
        let shape: ndarray::StrideShape<ndarray::IxDyn> = if l.order == crate::Order::F {
            ndarray::ShapeBuilder::f(dim).into()
        } else {
            dim.into()
        };
        ArrayD::from_shape_vec(shape, data).map_err(|e| {
            Error::io(
                path,
                "read a chunk of",
                std::io::Error::other(e.to_string()),
            )
        })
    }

    /// Where chunk `index` is (see [`Place`]), and its lengths cut to the array's edge.
    fn place(&self, index: &[usize]) -> Result<(Place, Vec<usize>), Error> {
        let (path, edge) = self.locate(index)?;
        let Some(shard) = &self.layout.shard else {
            let place = if self.check_size(&path)? {
                Place::File(path)
            } else {
                Place::Missing(path)
            };
            return Ok((place, edge));
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => {
                return Err(Error::NotAFile {
                    path,
                    kind: crate::map::file_kind(&m.file_type()),
                });
            }
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Place::Missing(path), edge));
            }
            Err(e) => return Err(Error::io(&path, "inspect", e)),
        };
        // The inner chunk's position in its shard, in C order of the shard's inner grid.
        let position = index
            .iter()
            .zip(&shard.inner_grid)
            .fold(0usize, |p, (&i, &n)| p * n + i % n);
        let entries = self.shard_index(&path, &meta)?;
        let (offset, nbytes) = entries[position];
        if offset == u64::MAX && nbytes == u64::MAX {
            return Ok((Place::Missing(path), edge));
        }
        Ok((Place::InShard { path, offset }, edge))
    }

    /// The index of the shard at `path` (whose metadata is `meta`): every entry missing or
    /// an uncompressed inner chunk inside the shard's data, no two overlapping, the
    /// `crc32c` matching. Read once per shard file (while it does not change), not once
    /// per inner chunk.
    fn shard_index(&self, path: &Path, meta: &std::fs::Metadata) -> Result<Entries, Error> {
        let stamp = Stamp::of(meta);
        if let Some(e) = self.indexes.get(path, &stamp) {
            return Ok(e);
        }
        let l = &self.layout;
        let shard = l.shard.as_ref().expect("a sharded layout");
        let bad = |detail: String| zerr(path, ZarrProblem::ShardIndex { detail });
        let len = stamp.len;
        // (The index's length was checked to be computable when zarr.json was parsed.)
        let index_len = shard.index_len;
        if index_len > len || index_len > 1 << 30 {
            return Err(bad(format!(
                "the file holds {len} bytes, and its index of {} inner chunks (16 bytes each) \
                 is longer, or longer than the 1 GiB this crate reads",
                index_len / 16
            )));
        }
        let at = if shard.index_at_end {
            len - index_len
        } else {
            0
        };
        let mut raw = vec![0u8; index_len as usize];
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
            f.seek(SeekFrom::Start(at))
                .and_then(|_| f.read_exact(&mut raw))
                .map_err(|e| Error::io(path, "read the shard index of", e))?;
        }
        if shard.crc {
            let (words, sum) = raw.split_at(raw.len() - 4);
            let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
            if meta::crc32c(words) != stored {
                return Err(bad(
                    "its crc32c does not match (a damaged or half-written shard)".into(),
                ));
            }
        }
        let word = |k: usize| {
            let b: [u8; 8] = raw[k * 8..k * 8 + 8].try_into().expect("8 bytes");
            u64::from_le_bytes(b)
        };
        let entries: Entries = (0..(index_len / 16) as usize)
            .map(|k| (word(2 * k), word(2 * k + 1)))
            .collect();
        let (lo, hi) = if shard.index_at_end {
            (0, len - index_len)
        } else {
            (index_len, len)
        };
        let mut used: Vec<(u64, u64, usize)> = Vec::new();
        for (k, &(offset, nbytes)) in entries.iter().enumerate() {
            if offset == u64::MAX && nbytes == u64::MAX {
                continue;
            }
            if nbytes != self.chunk_bytes() {
                return Err(bad(format!(
                    "inner chunk {k} (in C order) is {nbytes} bytes long by its entry, not the {} \
                     of an uncompressed inner chunk",
                    self.chunk_bytes()
                )));
            }
            let end = offset
                .checked_add(nbytes)
                .filter(|&e| offset >= lo && e <= hi);
            let Some(end) = end else {
                return Err(bad(format!(
                    "inner chunk {k} (in C order) at bytes {offset}..{} lies outside the data \
                     ({lo}..{hi})",
                    offset.saturating_add(nbytes)
                )));
            };
            used.push((offset, end, k));
        }
        used.sort_unstable();
        if let Some(w) = used.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(bad(format!(
                "inner chunks {} and {} (in C order) overlap at bytes {}..{} (a damaged index: \
                 writing one would change the other)",
                w[0].2,
                w[1].2,
                w[1].0,
                w[0].1.min(w[1].1)
            )));
        }
        self.indexes.put(path, stamp, entries.clone());
        Ok(entries)
    }

    fn grid(&self) -> Vec<usize> {
        let l = &self.layout;
        l.shape
            .iter()
            .zip(&l.chunk)
            .map(|(&n, &c)| n.div_ceil(c))
            .collect()
    }

    /// Checks `index` against the grid; returns the chunk's file and its lengths cut to
    /// the array's edge.
    fn locate(&self, index: &[usize]) -> Result<(PathBuf, Vec<usize>), Error> {
        let grid = self.grid();
        if index.len() != grid.len() || index.iter().zip(&grid).any(|(&i, &g)| i >= g) {
            return Err(zerr(
                &self.dir,
                ZarrProblem::ChunkIndex {
                    index: index.to_vec(),
                    grid,
                },
            ));
        }
        let l = &self.layout;
        let edge = index
            .iter()
            .zip(&l.chunk)
            .zip(&l.shape)
            .map(|((&i, &c), &n)| c.min(n - i * c))
            .collect();
        // An inner chunk of a shard lives in its shard's file.
        let key_index: Vec<usize> = match &l.shard {
            Some(sh) => index
                .iter()
                .zip(&l.chunk)
                .zip(&sh.shape)
                .map(|((&i, &c), &s)| i * c / s)
                .collect(),
            None => index.to_vec(),
        };
        let key: Vec<String> = key_index.iter().map(usize::to_string).collect();
        let mut path = self.dir.clone();
        if l.v2_keys {
            path.push(if key.is_empty() {
                "0".to_owned()
            } else {
                key.join(&l.separator)
            });
        } else if l.separator == "/" {
            path.push("c");
            path.extend(&key);
        } else {
            let mut k = vec!["c".to_owned()];
            k.extend(key);
            path.push(k.join(&l.separator));
        }
        Ok((path, edge))
    }

    /// The bytes of one stored chunk.
    fn chunk_bytes(&self) -> u64 {
        self.layout.chunk.iter().product::<usize>() as u64 * std::mem::size_of::<T>() as u64
    }

    fn indices(&self) -> ChunkIndices {
        let grid = self.grid();
        ChunkIndices {
            done: grid.contains(&0),
            next: vec![0; grid.len()],
            grid,
        }
    }

    fn check_size(&self, path: &Path) -> Result<bool, Error> {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: crate::map::file_kind(&m.file_type()),
            }),
            Ok(m) if m.len() == self.chunk_bytes() => Ok(true),
            Ok(m) => Err(zerr(
                path,
                ZarrProblem::ChunkSize {
                    expected: self.chunk_bytes(),
                    found: m.len(),
                },
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, "inspect", e)),
        }
    }
}

/// Where a chunk's bytes are.
enum Place {
    /// Its own file (no shards), of the right size.
    File(PathBuf),
    /// Bytes `offset..offset + chunk bytes` of its shard's file.
    InShard { path: PathBuf, offset: u64 },
    /// Nowhere (no file, or not in its shard): it reads as the fill value. The path is
    /// where its file, or its shard's, would be.
    Missing(PathBuf),
}

/// A chunk file as a stream checks it before it starts.
pub(crate) struct ChunkFile {
    pub(crate) index: Vec<usize>,
    pub(crate) path: PathBuf,
    /// Where the chunk starts in the file (0 without shards).
    pub(crate) offset: u64,
    /// `None` for a chunk with no file (it reads as the fill value).
    pub(crate) id: Option<crate::map::FileId>,
}

/// Every chunk index of a grid, in C order (the last axis fastest).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.zarr");
/// let w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[3, 4], &[2, 2]) }?;
/// let all: Vec<Vec<usize>> = w.chunk_indices().collect();
/// assert_eq!(all, [[0, 0], [0, 1], [1, 0], [1, 1]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkIndices {
    grid: Vec<usize>,
    next: Vec<usize>,
    done: bool,
}

impl Iterator for ChunkIndices {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.done {
            return None;
        }
        let out = self.next.clone();
        let mut k = self.grid.len();
        loop {
            if k == 0 {
                self.done = true;
                break;
            }
            k -= 1;
            self.next[k] += 1;
            if self.next[k] < self.grid[k] {
                break;
            }
            self.next[k] = 0;
        }
        Some(out)
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
fn cut<V: ndarray::RawData, D: ndarray::Dimension>(
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

    /// The view and, for a mapped chunk, the paging hooks, for the streaming engine.
    pub(crate) fn stream_parts(
        &self,
    ) -> (ArrayViewD<'_, T>, Option<crate::map::pager::InPager<'_>>) {
        match &self.data {
            ChunkData::Mapped(m) => {
                let (v, p) = m.stream_parts();
                (cut(v, &self.edge), Some(p))
            }
            ChunkData::Owned(a) => (cut(a.view(), &self.edge), None),
            ChunkData::Fill(a) => (broadcast_fill(a, &self.edge), None),
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

    /// The mutable view and the paging hooks, for the streaming engine.
    pub(crate) fn stream_parts_mut(
        &mut self,
    ) -> (ArrayViewMutD<'_, T>, crate::map::pager::OutPager<'_>) {
        let (v, p) = self.map.stream_parts_mut();
        (cut(v, &self.edge), p)
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

    /// Makes every chunk written so far durable: syncs each chunk file (and the chunk
    /// directories) to the disk. Chunks written through [`chunk_mut`](Self::chunk_mut) and
    /// dropped are in the page cache already; this is the one sync at the end of a loop
    /// over chunks, instead of a [`ChunkMut::flush`] per chunk.
    ///
    /// # Errors
    /// The I/O error of syncing, with the chunk's path.
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
        let mut dirs = std::collections::BTreeSet::new();
        let mut synced = std::collections::BTreeSet::new();
        for idx in self.a.indices() {
            let (path, _) = self.a.locate(&idx)?;
            if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) || !synced.insert(path.clone())
            {
                continue; // never written (nothing to sync), or a shard synced already
            }
            let f =
                std::fs::File::open(&path).map_err(|e| Error::io(&path, "open for reading", e))?;
            f.sync_all().map_err(|e| Error::io(&path, "sync", e))?;
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
        Ok(())
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
                    return Ok((ChunkMut { map, edge }, None));
                }
                Place::InShard { path, offset } => {
                    self.a.check_no_links(&path)?;
                    self.a.check_one_name(&path)?;
                    if offset % std::mem::align_of::<T>() as u64 != 0 {
                        return Err(misaligned::<T>(&path, index, offset));
                    }
                    let opts = opts.offset(offset).len(self.a.chunk_bytes());
                    // SAFETY: the contract of `open_mut` covers every shard file.
                    let map = unsafe { opts.open_mut::<T>(&path, l.chunk.as_slice()) }?;
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

/// The refusal to write an inner chunk in place that starts at byte `offset` of its shard,
/// not aligned for `T`.
pub(crate) fn misaligned<T>(path: &Path, index: &[usize], offset: u64) -> Error {
    zerr(
        path,
        ZarrProblem::Unsupported {
            what: format!(
                "writing inner chunk {index:?} in place: it starts at byte {offset} of its \
                 shard, not a multiple of the {}-byte alignment of {} (reading copies it; \
                 zarr-python's index at the start puts inner chunks there: write shards with \
                 index_location=\"end\")",
                std::mem::align_of::<T>(),
                crate::element::type_name::<T>()
            ),
        },
    )
}

/// Opens the Zarr v3 array at directory `path` read-only; chunks map on demand.
///
/// # Safety
/// As for [`MapOptions::open`], for every chunk file: no other program may truncate or
/// modify them while chunks are mapped.
///
/// # Errors
/// [`Error::Zarr`] naming what cannot be mapped (a compressor, another data type, a
/// `must_understand` extension, ...), or the I/O error reading `zarr.json`.
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

/// Creates a Zarr v3 array of zeros at directory `path`: `zarr.json` (regular grid of
/// `chunk_shape`, default `/` chunk keys, the `bytes` codec, fill value 0) written aside
/// and renamed into place, and every chunk file created with its disk space reserved.
/// zarr-python and dask read it as it is. [`CreateOptions`] sets another fill value or
/// Fortran order inside the chunks.
///
/// # Safety
/// As for [`MapOptions::create`], for every chunk file.
///
/// # Errors
/// [`ZarrProblem::Shape`] when `chunk_shape` has another length than `shape` or a 0;
/// [`ZarrProblem::Exists`] when an array is already there (nothing is replaced); the
/// I/O errors of creating the directory and files.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("out.zarr");
/// let w = unsafe { ndarray_mmap::zarr::create::<i16>(&path, &[100, 10], &[32, 10]) }?;
/// assert_eq!(w.grid(), [4, 1]);
/// assert!(path.join("zarr.json").exists() && path.join("c/3/0").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn create<T: Element>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
    chunk_shape: impl ShapeArg,
) -> Result<ZarrArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { CreateOptions::new().create(path, shape, chunk_shape) }
}

/// How [`create`] makes an array: its fill value (what chunks never written read as) and
/// the order of the elements inside each chunk file.
///
/// With the fill value 0 every chunk file is created at once, its disk space reserved.
/// With another fill value no chunk file is made: a missing chunk reads as the fill value
/// already, and writing one (through [`ZarrArrayMut::chunk_mut`] or a stream, which
/// creates every output chunk it will write before writing anything) creates it, filled.
///
/// ```
/// use ndarray_mmap::{Order, ops, zarr::CreateOptions};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("nan.zarr");
/// let mut w = unsafe {
///     CreateOptions::new().fill_value(f32::NAN).order(Order::F).create(&path, &[6, 4], &[4, 4])
/// }?;
/// assert!(w.fill_value().is_nan() && ops::max(&w)?.is_some_and(f32::is_nan));
/// w.chunk_mut(&[1, 0])?.view_mut().fill(1.0);      // rows 4..6
/// let rows = ops::sum_axis(&w, ndarray::Axis(1))?;
/// assert!(rows[0].is_nan() && rows[5] == 4.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct CreateOptions<T> {
    fill: T,
    order: crate::Order,
}

impl<T: Element> Default for CreateOptions<T> {
    fn default() -> Self {
        CreateOptions {
            fill: bytemuck::Zeroable::zeroed(),
            order: crate::Order::C,
        }
    }
}

impl<T: Element> CreateOptions<T> {
    /// Fill value 0, C order.
    ///
    /// ```
    /// let o = ndarray_mmap::zarr::CreateOptions::<u8>::new();
    /// assert!(format!("{o:?}").contains("fill: 0"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// What chunks never written read as (`fill_value` in `zarr.json`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let opts = ndarray_mmap::zarr::CreateOptions::new().fill_value(-1i32);
    /// let w = unsafe { opts.create(&path, &[3], &[2]) }?;
    /// assert_eq!(w.chunk(&[1])?.view()[0], -1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fill_value(mut self, fill: T) -> Self {
        self.fill = fill;
        self
    }

    /// The order of the elements inside each chunk file: [`Order::F`](crate::Order::F)
    /// writes a `transpose` codec that reverses the axes, as zarr-python reads it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let opts = ndarray_mmap::zarr::CreateOptions::<u8>::new().order(ndarray_mmap::Order::F);
    /// let mut w = unsafe { opts.create(&path, &[2, 3], &[2, 3]) }?;
    /// w.chunk_mut(&[0, 0])?.view_mut()[[0, 1]] = 7;
    /// assert_eq!(std::fs::read(path.join("c/0/0"))?, [0, 0, 7, 0, 0, 0]); // column by column
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn order(mut self, order: crate::Order) -> Self {
        self.order = order;
        self
    }

    /// Creates the array, as [`create`] describes.
    ///
    /// # Safety
    /// As for [`create`].
    ///
    /// # Errors
    /// As for [`create`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.zarr");
    /// let w = unsafe { ndarray_mmap::zarr::CreateOptions::new().fill_value(2.5f64).create(&path, &[4], &[2]) }?;
    /// assert!(!path.join("c").exists()); // every chunk reads as 2.5 until written
    /// assert_eq!(ndarray_mmap::ops::sum(&w)?, 10.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn create(
        self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
        chunk_shape: impl ShapeArg,
    ) -> Result<ZarrArrayMut<T>, Error> {
        let CreateOptions { fill, order } = self;
        let dir = path.as_ref();
        let shape = &crate::shape::Spec::explicit(&shape).map_err(|e| e.at(dir))?[..];
        let chunk_shape = &crate::shape::Spec::explicit(&chunk_shape).map_err(|e| e.at(dir))?[..];
        // A chunk length of 0 only on an axis of length 0 (the spec allows it there).
        let zero_chunk = shape
            .iter()
            .zip(chunk_shape)
            .any(|(&n, &c)| c == 0 && n > 0);
        if shape.len() != chunk_shape.len() || zero_chunk {
            return Err(zerr(
                dir,
                ZarrProblem::Shape {
                    shape: shape.iter().map(|&x| x as u64).collect(),
                    chunk_shape: chunk_shape.iter().map(|&x| x as u64).collect(),
                },
            ));
        }
        // The chunk byte count must be a valid array: checked before anything is made.
        crate::bytes::byte_len::<T>(chunk_shape).map_err(|e| e.at(dir))?;
        crate::bytes::byte_len::<T>(shape).map_err(|e| e.at(dir))?;
        let chunks = shape
            .iter()
            .zip(chunk_shape)
            .try_fold(1usize, |n, (&s, &c)| n.checked_mul(s.div_ceil(c.max(1))));
        if chunks.is_none_or(|n| n > 1 << 20) {
            return Err(zerr(
                dir,
                ZarrProblem::Unsupported {
                    what: "creating more than 2^20 chunk files at once (choose larger chunks)"
                        .into(),
                },
            ));
        }
        if dir.join("zarr.json").exists() || dir.join("c").exists() {
            return Err(zerr(dir, ZarrProblem::Exists));
        }
        let made_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
        let fortran = order == crate::Order::F;
        let json = meta::new_array_json::<T>(shape, chunk_shape, &meta::fill_json(fill), fortran);
        let layout = meta::parse::<T>(json.as_bytes()).map_err(|p| zerr(dir, p))?;
        let w = ZarrArrayMut {
            a: Array {
                dir: dir.to_path_buf(),
                layout,
                indexes: IndexCache::default(),
            },
        };
        // Zeros are what a new file holds: every chunk is made now, its space reserved.
        // Another fill value would have to be written into every chunk: chunks stay
        // missing (they read as the fill value) until written.
        let zero = bytemuck::bytes_of(&fill).iter().all(|&b| b == 0);
        // The chunks are built in a directory of our own beside `c/`, then `zarr.json` is
        // linked into place without replacing (the claim: of two creates, one wins and
        // the other changes nothing of its), and only then do the chunks move to `c/`.
        // Before they do, the array reads as zeros, which they are.
        let aside = if zero && w.chunk_indices().next().is_some() {
            Some(make_aside(dir)?)
        } else {
            None
        };
        let build = |aside: &Path| -> Result<(), Error> {
            for idx in w.chunk_indices() {
                // `c/0/1` (or `c` itself for a 0-d array) under the directory of our own.
                let (path, _) = w.a.locate(&idx)?;
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let path = aside.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
                }
                // SAFETY: forwarded to the caller (the file is new, in our own directory).
                let c = unsafe {
                    MapOptions::new()
                        .order(order)
                        .create_new(true)
                        .create::<T>(&path, chunk_shape)
                }?;
                c.close()?;
            }
            Ok(())
        };
        let claimed = aside.as_deref().map_or(Ok(()), build).and_then(|()| {
            match write_file_new(&dir.join("zarr.json"), json.as_bytes()) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    Err(zerr(dir, ZarrProblem::Exists))
                }
                r => r,
            }
        });
        if let Err(e) = claimed {
            // Only what this call made goes: its own directory of chunks, and the array's
            // directory if it made it and nothing else is in it now.
            if let Some(a) = &aside {
                let _ = std::fs::remove_dir_all(a);
            }
            if made_dir {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        if let Some(a) = aside {
            place_chunks(&a.join("c"), &dir.join("c"));
            let _ = std::fs::remove_dir_all(&a);
        }
        Ok(w)
    }
}

/// Counts the directories [`make_aside`] names.
static ASIDE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A new directory of ours beside `c/` in `dir`, for the chunks of a create.
fn make_aside(dir: &Path) -> Result<PathBuf, Error> {
    loop {
        let n = ASIDE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".c.{}.{n}.ndarray-mmap.tmp", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(dir, "create a directory in", e)),
        }
    }
}

/// Moves the chunks built in `aside` (a directory, or the one chunk file of a 0-d array)
/// to `c`: all at once where `c` does not exist, else file by file, never over a chunk
/// that is there (another writer's, made since the array appeared). What cannot move is
/// left to the caller to remove: such chunks read as the fill value, which they hold.
fn place_chunks(aside: &Path, c: &Path) {
    if crate::map::move_no_replace(aside, c).is_ok() {
        return;
    }
    fn walk(from: &Path, to: &Path) {
        let Ok(entries) = std::fs::read_dir(from) else {
            return;
        };
        for e in entries.flatten() {
            let (src, dst) = (e.path(), to.join(e.file_name()));
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if std::fs::create_dir(&dst).is_ok()
                    || std::fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir())
                {
                    walk(&src, &dst);
                }
            } else {
                let _ = crate::map::move_no_replace(&src, &dst);
            }
        }
    }
    if aside.is_dir()
        && (std::fs::create_dir(c).is_ok()
            || std::fs::symlink_metadata(c).is_ok_and(|m| m.is_dir()))
    {
        walk(aside, c);
    }
}

#[cfg(all(test, not(miri)))] // files
mod tests {
    use super::*;

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
