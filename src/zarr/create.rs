//! Creating a Zarr array: the chunks built aside, `zarr.json` linked into place without
//! replacing (the claim), then the chunks moved in.

use std::path::{Path, PathBuf};

use super::array::Array;
use super::codec::{Blosc, ByteCodec};
use super::{ZarrArrayMut, meta, zerr};
use crate::element::Element;
use crate::error::{Error, ZarrProblem};
use crate::map::{MapOptions, write_file_new};
use crate::shape::ShapeArg;

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
    compressor: Option<Compressor>,
}

impl<T: Element> Default for CreateOptions<T> {
    fn default() -> Self {
        CreateOptions {
            fill: bytemuck::Zeroable::zeroed(),
            order: crate::Order::C,
            compressor: None,
        }
    }
}

/// The compressor inside a Blosc buffer ([`Compressor::blosc`]).
///
/// ```
/// assert_ne!(ndarray_mmap::zarr::BloscName::Lz4, ndarray_mmap::zarr::BloscName::Zstd);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloscName {
    /// Blosc's own LZ codec.
    BloscLz = 0,
    /// LZ4, numcodecs' default: the fastest.
    Lz4 = 1,
    /// LZ4 with a slower, tighter encoder.
    Lz4Hc = 2,
    /// zlib (deflate).
    Zlib = 3,
    /// zstd: the tightest.
    Zstd = 4,
}

/// The shuffle Blosc applies before compressing ([`Compressor::blosc`]).
///
/// ```
/// assert_ne!(ndarray_mmap::zarr::Shuffle::Byte, ndarray_mmap::zarr::Shuffle::Bit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// None.
    None = 0,
    /// The bytes of the elements grouped by significance (numcodecs' default).
    Byte = 1,
    /// The bits, likewise: slower, tighter on smooth data.
    Bit = 2,
}

/// How [`CreateOptions::compressor`] compresses each chunk: `zstd` (zarr-python's default),
/// `gzip` or `blosc`, at a level.
///
/// ```
/// use ndarray_mmap::zarr::Compressor;
/// assert_ne!(Compressor::zstd(3), Compressor::gzip(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressor(ByteCodec);

impl Compressor {
    /// zstd at `level` (1 to 22; 0 is zstd's default, 3; negative levels are faster).
    ///
    /// ```
    /// let c = ndarray_mmap::zarr::Compressor::zstd(3);
    /// assert!(format!("{c:?}").contains("Zstd"));
    /// ```
    pub fn zstd(level: i32) -> Self {
        Compressor(ByteCodec::Zstd {
            level: level.clamp(-(1 << 17), 22),
        })
    }

    /// Blosc (c-blosc 1, as numcodecs writes it) with the compressor `name` at `clevel`
    /// (0 to 9) after `shuffle`; each element is one item of the shuffle.
    ///
    /// ```
    /// use ndarray_mmap::zarr::{BloscName, Compressor, Shuffle};
    /// let c = Compressor::blosc(BloscName::Lz4, 5, Shuffle::Byte);
    /// assert!(format!("{c:?}").contains("Blosc"));
    /// ```
    pub fn blosc(name: BloscName, clevel: u8, shuffle: Shuffle) -> Self {
        Compressor(ByteCodec::Blosc(Blosc {
            cname: name as usize,
            clevel: clevel.min(9),
            shuffle: shuffle as u8,
            typesize: 0, // the element's size, set when the array is created
            blocksize: 0,
        }))
    }

    /// gzip at `level` (0 to 9).
    ///
    /// ```
    /// let c = ndarray_mmap::zarr::Compressor::gzip(6);
    /// assert!(format!("{c:?}").contains("Gzip"));
    /// ```
    pub fn gzip(level: u32) -> Self {
        Compressor(ByteCodec::Gzip {
            level: level.min(9),
        })
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

    /// Compresses every chunk with `compressor` (a codec after `bytes` in `zarr.json`), as
    /// zarr-python does by default: no chunk file is made at create (chunks read as the
    /// fill value until written); a stream writes each output chunk whole, encoded once,
    /// replacing its file atomically (a crash leaves the old chunk or the new one).
    ///
    /// ```
    /// use ndarray_mmap::{ops, zarr::{self, Compressor, CreateOptions}};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("z.zarr");
    /// let mut w = unsafe {
    ///     CreateOptions::new().compressor(Compressor::zstd(3)).create(&path, [1000], [256])
    /// }?;
    /// let a = ndarray::Array1::from_elem(1000, 1.5f32);
    /// ops::map_into(&a, &mut w, |x| x * 2.0)?;              // each chunk encoded once
    /// assert!(std::fs::metadata(path.join("c/0"))?.len() < 256 * 4);
    /// let z = unsafe { zarr::open::<f32>(&path) }?;
    /// assert_eq!(ops::sum(&z)?, 3000.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compressor(mut self, compressor: Compressor) -> Self {
        self.compressor = Some(compressor);
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
        let CreateOptions {
            fill,
            order,
            compressor,
        } = self;
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
        let json = meta::new_array_json::<T>(
            shape,
            chunk_shape,
            &meta::fill_json(fill),
            fortran,
            compressor.map(|c| match c.0 {
                ByteCodec::Blosc(b) => ByteCodec::Blosc(Blosc {
                    typesize: std::mem::size_of::<T>().clamp(1, 255) as u8,
                    ..b
                }),
                other => other,
            }),
        );
        let layout = meta::parse::<T>(json.as_bytes()).map_err(|p| zerr(dir, p))?;
        let w = ZarrArrayMut {
            a: Array::new(dir, layout),
        };
        // Zeros are what a new file holds: every chunk is made now, its space reserved.
        // Another fill value would have to be written into every chunk: chunks stay
        // missing (they read as the fill value) until written.
        // (Compressed chunks are not mapped: they stay missing until a stream writes them.)
        let zero = bytemuck::bytes_of(&fill).iter().all(|&b| b == 0) && compressor.is_none();
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
