//! Mapping `.npy` files: the header tells the element type, shape and order; the data
//! after it is mapped with the same owners as raw files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::file::{self, Mode, open_regular};
use super::grow::HEADER_WAIT;
use super::lock::{self, Kind};
use super::{MapOptions, MmapArray, MmapArrayMut, Region, create_shape};
use crate::bytes;
use crate::element::Element;
use crate::error::Error;
use crate::npy::{MAX_HEADER_BYTES, NpyHeader, NpyProblem};
use crate::shape::{Order, ShapeArg};

/// Reads at most [`MAX_HEADER_BYTES`] (and at most `avail`) bytes at `offset`, under the
/// header lock (an appender rewriting the header holds it for one small write), waiting
/// at most `wait` if given, else [`HEADER_WAIT`].
fn read_prefix(
    file: &File,
    path: &Path,
    offset: u64,
    avail: u64,
    wait: Option<std::time::Duration>,
) -> Result<Vec<u8>, Error> {
    // An appender holds the header lock for one small write: wait for it up to
    // HEADER_WAIT unless the caller set a lock timeout, which then rules (even zero).
    let wait = Some(wait.unwrap_or(HEADER_WAIT));
    if !lock::lock_header(file, Kind::Shared, wait).map_err(|e| Error::io(path, "lock", e))? {
        return Err(Error::Locked {
            path: path.to_path_buf(),
            exclusive: false,
            action: "read the header of",
            waited: wait,
        });
    }
    // Read one page, and more only if the header says it is longer: the lock is held
    // for as short a time as possible.
    let limit = avail.min(MAX_HEADER_BYTES as u64);
    let mut buf = Vec::with_capacity(limit.min(4096) as usize);
    let mut f = file;
    let mut read = f
        .seek(SeekFrom::Start(offset))
        .and_then(|_| f.take(limit.min(4096)).read_to_end(&mut buf));
    if let (Ok(_), Some(total)) = (&read, header_total(&buf))
        && total > buf.len() as u64
        && buf.len() as u64 == limit.min(4096)
    {
        let more = total.min(limit) - buf.len() as u64;
        read = f.take(more).read_to_end(&mut buf);
    }
    let read = read.map_err(|e| Error::io(path, "read the header of", e));
    let unlocked =
        lock::unlock_header(file, Kind::Shared).map_err(|e| Error::io(path, "unlock", e));
    read.and(unlocked)?;
    Ok(buf)
}

/// The header's length (up to the data) from its first bytes, when they say it.
fn header_total(buf: &[u8]) -> Option<u64> {
    match buf.get(6)? {
        1 => Some(10 + u64::from(u16::from_le_bytes([*buf.get(8)?, *buf.get(9)?]))),
        _ => {
            let b = buf.get(8..12)?;
            Some(12 + u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
    }
}

fn npy_err(path: &Path, problem: NpyProblem) -> Error {
    Error::Npy {
        path: Some(path.to_path_buf()),
        problem,
    }
}

impl NpyHeader {
    /// Reads and parses the header of the `.npy` file at `path`, without mapping it. Reads
    /// at most [`MAX_HEADER_BYTES`] bytes.
    ///
    /// # Errors
    /// An I/O error naming the path, [`Error::NotAFile`], or [`Error::Npy`] as for
    /// [`parse`](Self::parse).
    ///
    /// ```
    /// use ndarray_mmap::{create_npy, NpyHeader, Order};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.npy");
    /// unsafe { create_npy::<f64>(&path, [10, 3]) }?.close()?;
    /// let h = NpyHeader::from_path(&path)?;
    /// assert_eq!(h.shape(), &[10, 3]);
    /// assert_eq!(h.order(), Order::C);
    /// assert_eq!(h.data_offset(), 128);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<NpyHeader, Error> {
        let path = path.as_ref();
        let file = open_regular(path, OpenOptions::new().read(true), "open for reading")?;
        let buf = read_prefix(&file, path, 0, u64::MAX, None)?;
        NpyHeader::parse(&buf).map_err(|e| e.at(path))
    }
}

impl MapOptions {
    /// Maps a `.npy` file read-only. The element type must match the header's `descr`;
    /// the shape and memory order come from the header.
    ///
    /// [`offset`](Self::offset) is where the `.npy` starts in the file (default 0) and
    /// [`len`](Self::len) its length (default: to the end of the file); the header's data
    /// must fit in it. Bytes after the data are not mapped: rows an appender has written
    /// and not yet counted (or never will, if it was killed), or another array saved after
    /// this one, as numpy reads them too. [`order`](Self::order) is ignored: the header
    /// gives it.
    ///
    /// # Safety
    /// As for [`open`](Self::open): the file must not be truncated or modified while the
    /// array is alive.
    ///
    /// # Errors
    /// [`Error::Npy`] when the header is malformed ([`NpyHeader::parse`]), its `descr` is
    /// not `T`'s ([`NpyProblem::DtypeMismatch`], [`NpyProblem::UnsupportedDtype`]), the
    /// data is not aligned for `T` ([`NpyProblem::MisalignedData`]), or the file is too
    /// short for the header's data ([`NpyProblem::DataLength`]);
    /// [`Error::Overflow`] for a shape too large to map; otherwise as for
    /// [`open`](Self::open).
    ///
    /// ```
    /// use ndarray_mmap::{create_npy, MapOptions};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.npy");
    /// let mut w = unsafe { create_npy::<i32>(&path, [2, 3]) }?;
    /// w.view_mut().fill(7);
    /// w.close()?;
    /// let a = unsafe { MapOptions::new().open_npy::<i32>(&path) }?;
    /// assert_eq!(a.shape(), &[2, 3]);
    /// assert_eq!(a.view().sum(), 42);
    /// assert!(unsafe { MapOptions::new().open_npy::<f32>(&path) }.is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open_npy<T: Element>(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<MmapArray<T>, Error> {
        let (r, order, _) = self.npy_region::<T>(path.as_ref(), Mode::Read)?;
        // SAFETY: forwarded to the caller; `npy_region` checked the region.
        unsafe { self.map_read(r, order) }
    }

    /// Maps a `.npy` file read-write, shared with the file: numpy (or anyone) mapping the
    /// same file sees the writes. The header is never changed.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut).
    ///
    /// # Errors
    /// As for [`open_npy`](Self::open_npy), and when the file cannot be opened for
    /// writing.
    ///
    /// ```
    /// use ndarray_mmap::{create_npy, MapOptions};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("b.npy");
    /// unsafe { create_npy::<f64>(&path, [4]) }?.close()?;
    /// let mut b = unsafe { MapOptions::new().open_npy_mut::<f64>(&path) }?;
    /// b.view_mut()[3] = 2.5;
    /// b.close()?;
    /// let bytes = std::fs::read(&path)?;
    /// assert_eq!(bytes[128 + 24..], 2.5f64.to_ne_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_npy_mut<T: Element>(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<MmapArrayMut<T>, Error> {
        let (r, order, descr) = self.npy_region::<T>(path.as_ref(), Mode::Write)?;
        // SAFETY: forwarded to the caller; `npy_region` checked the region and opened
        // the file read-write.
        unsafe { self.map_write(r, order) }.map(|a| a.npy_at(self.offset, &descr))
    }

    /// Maps a `.npy` file copy-on-write: the view is mutable but writes never reach the
    /// file (numpy's `mmap_mode='c'`).
    ///
    /// # Safety
    /// As for [`open_copy`](Self::open_copy).
    ///
    /// # Errors
    /// As for [`open_npy`](Self::open_npy).
    ///
    /// ```
    /// use ndarray_mmap::{create_npy, MapOptions};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.npy");
    /// unsafe { create_npy::<u8>(&path, [3]) }?.close()?;
    /// let mut c = unsafe { MapOptions::new().open_npy_copy::<u8>(&path) }?;
    /// c.view_mut().fill(9);
    /// c.close()?;
    /// assert_eq!(std::fs::read(&path)?[128..], [0, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_npy_copy<T: Element>(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<MmapArrayMut<T>, Error> {
        let (r, order, _) = self.npy_region::<T>(path.as_ref(), Mode::Copy)?;
        // SAFETY: forwarded to the caller; `npy_region` checked the region.
        unsafe { self.map_copy(r, order) }
    }

    /// Creates a `.npy` file for an array of exactly `shape` (no `-1`) in the
    /// [`order`](Self::order) set (default C), writing the header numpy would write
    /// (version 1.0, data at a 64-byte boundary, numpy's spare room for growth), and maps
    /// its data read-write. The data reads as zeros. The file is built aside and moved into
    /// place as [`create`](Self::create) does: an existing file is replaced (atomically)
    /// unless [`create_new`](Self::create_new) is set.
    /// [`offset`](Self::offset) and [`len`](Self::len) do not apply: the file is the
    /// `.npy`.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut).
    ///
    /// # Errors
    /// As for [`create`](Self::create), and [`Error::Npy`] with
    /// [`NpyProblem::HeaderTooLong`] for a shape with thousands of dimensions. All are
    /// detected before the file is touched, except I/O errors from writing it.
    ///
    /// ```
    /// use ndarray_mmap::{MapOptions, NpyHeader, Order};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("f.npy");
    /// let mut f = unsafe { MapOptions::new().order(Order::F).create_npy::<f32>(&path, [2, 3]) }?;
    /// f.view_mut()[[1, 0]] = 1.0;
    /// assert_eq!(f.view().strides(), &[1, 2]);
    /// f.close()?;
    /// assert!(NpyHeader::from_path(&path)?.fortran_order());
    /// assert_eq!(std::fs::read(&path)?[128 + 4..128 + 8], 1f32.to_ne_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn create_npy<T: Element>(
        &self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
    ) -> Result<MmapArrayMut<T>, Error> {
        let path = path.as_ref();
        let (spec, shape, nbytes) = create_shape::<T>(path, shape)?;
        let header = NpyHeader::for_element::<T>(&shape, self.order).map_err(|e| e.at(path))?;
        let head = header.to_bytes();
        let data_start = head.len() as u64;
        // SAFETY: forwarded to the caller.
        let a = unsafe { self.create_mapped(path, &spec, shape, nbytes, &head, data_start, None) }?;
        Ok(a.npy_at(0, header.descr()))
    }

    /// Opens and locks `path`, reads and checks its header against `T`, and returns the
    /// data region with the header's order and `descr`.
    ///
    /// Bytes after the counted data are allowed: they are rows an appender has written
    /// and not yet counted in the header (or never will, if it was killed), and numpy
    /// reads such files too.
    fn npy_region<T: Element>(
        &self,
        path: &Path,
        mode: Mode,
    ) -> Result<(Region, Order, String), Error> {
        super::check_align::<T>(path)?;
        let (file, file_len, id) = file::open_locked(path, mode, self.lock_timeout)?;
        let buf = read_prefix(
            &file,
            path,
            self.offset,
            self.window(path, file_len)?,
            self.lock_timeout,
        )?;
        // The length after the header: an appender writes rows before it counts them in
        // the header, so this length covers whatever the header we read counts.
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(path, "read metadata of", e))?
            .len();
        let avail = self.window(path, file_len)?;
        let header = NpyHeader::parse(&buf).map_err(|e| e.at(path))?;
        header.check_element::<T>().map_err(|e| e.at(path))?;
        let nbytes = bytes::byte_len::<T>(header.shape()).map_err(|e| e.at(path))?;
        let data_offset = header.data_offset() as u64;
        // offset + data_offset <= offset + avail <= file_len: parse saw the whole header
        let data_start = self.offset + data_offset;
        let align = std::mem::align_of::<T>();
        if !data_start.is_multiple_of(align as u64) {
            return Err(npy_err(
                path,
                NpyProblem::MisalignedData {
                    data_offset: data_start,
                    elem: T::NAME,
                    align,
                },
            ));
        }
        let expected = data_offset.checked_add(nbytes as u64);
        if expected.is_none_or(|e| e > avail) {
            return Err(npy_err(
                path,
                NpyProblem::DataLength {
                    shape: header.shape().to_vec(),
                    descr: header.descr().to_string(),
                    data_offset,
                    expected: expected.unwrap_or(u64::MAX),
                    file_len: avail,
                },
            ));
        }
        let region = Region {
            file,
            path: path.to_path_buf(),
            id,
            private: mode == Mode::Copy,
            offset: data_start,
            shape: header.shape().to_vec(),
            nbytes,
        };
        Ok((region, header.order(), header.descr().to_string()))
    }
}

/// Maps the `.npy` file at `path` read-only as an array of `T`; shape and order come from
/// its header. Shorthand for [`MapOptions::new().open_npy(..)`](MapOptions::open_npy).
///
/// # Safety
/// See [`MapOptions::open_npy`]: the file must not be truncated or modified while mapped.
///
/// # Errors
/// See [`MapOptions::open_npy`]: a malformed header, another dtype than `T`'s, misaligned
/// data, or a file too short for the header's data.
///
/// ```
/// use ndarray_mmap::{create_npy, open_npy};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.npy");
/// let mut w = unsafe { create_npy::<f32>(&path, [1000, 3]) }?;
/// w.view_mut().fill(0.5);
/// w.close()?;
///
/// let a = unsafe { open_npy::<f32>(&path) }?;
/// assert_eq!(a.shape(), &[1000, 3]);
/// assert_eq!(a.view().sum(), 1500.0);
/// let err = unsafe { open_npy::<f64>(&path) }.unwrap_err();
/// # #[cfg(target_endian = "little")]
/// assert!(err.to_string().ends_with("dtype mismatch: the file holds '<f4' but f64 ('<f8') was asked for"));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub unsafe fn open_npy<T: Element>(path: impl AsRef<Path>) -> Result<MmapArray<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open_npy(path) }
}

/// Maps the `.npy` file at `path` read-write (shared with the file) as an array of `T`.
/// Shorthand for [`MapOptions::new().open_npy_mut(..)`](MapOptions::open_npy_mut).
///
/// # Safety
/// See [`MapOptions::open_npy_mut`].
///
/// # Errors
/// See [`MapOptions::open_npy_mut`].
///
/// ```
/// use ndarray_mmap::{create_npy, open_npy, open_npy_mut};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("b.npy");
/// unsafe { create_npy::<i64>(&path, [5]) }?.close()?;
/// let mut b = unsafe { open_npy_mut::<i64>(&path) }?;
/// b.view_mut()[4] = -3;
/// b.close()?;
/// assert_eq!(unsafe { open_npy::<i64>(&path) }?.view()[4], -3);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub unsafe fn open_npy_mut<T: Element>(path: impl AsRef<Path>) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open_npy_mut(path) }
}

/// Creates (or atomically replaces) the `.npy` file at `path` for a zero-filled C-order array of
/// `T` with exactly `shape`, writing the header numpy writes, and maps its data
/// read-write. Shorthand for [`MapOptions::new().create_npy(..)`](MapOptions::create_npy).
///
/// # Safety
/// See [`MapOptions::create_npy`].
///
/// # Errors
/// See [`MapOptions::create_npy`].
///
/// ```
/// use ndarray_mmap::create_npy;
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("c.npy");
/// let mut c = unsafe { create_npy::<i64>(&path, [1000, 3]) }?;
/// c.view_mut()[[999, 2]] = 1;
/// c.close()?;
/// assert_eq!(std::fs::metadata(&path)?.len(), 128 + 24_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn create_npy<T: Element>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().create_npy(path, shape) }
}

/// Writes `array` to a new `.npy` file at `path` that numpy loads, in one call (like
/// ndarray-npy's `write_npy`), without mapping anything. A Fortran-contiguous array is
/// written in Fortran order (as numpy does), any other layout in C order. The file is
/// built beside the path and moved into place only when complete, as
/// [`create`](MapOptions::create) does: a failure leaves the old file (or nothing), and
/// the data is on disk when this returns.
///
/// # Errors
/// As for [`create_npy`](MapOptions::create_npy): the path, the disk, and [`Error::Locked`]
/// when a file at the path is mapped elsewhere.
///
/// ```
/// use ndarray::array;
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("out.npy");
/// ndarray_mmap::write_npy(&path, &array![[1.0f64, 2.0], [3.0, 4.0]])?;
/// let a = unsafe { ndarray_mmap::open_npy::<f64>(&path) }?;
/// assert_eq!(a.view(), array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
pub fn write_npy<T, S, D>(
    path: impl AsRef<Path>,
    array: &ndarray::ArrayBase<S, D>,
) -> Result<(), Error>
where
    T: Element,
    S: ndarray::Data<Elem = T>,
    D: ndarray::Dimension,
{
    let path = path.as_ref();
    let (order, view) = file_order(array);
    let header = NpyHeader::for_element::<T>(array.shape(), order).map_err(|e| e.at(path))?;
    let head = header.to_bytes();
    let nbytes = bytes::byte_len::<T>(array.shape()).map_err(|e| e.at(path))?;
    // `nbytes` is at most isize::MAX, and the header at most 10,000 bytes: no overflow.
    let total = head.len() as u64 + nbytes as u64;
    let how = file::CreateHow {
        create_new: false,
        reserve: true,
        wait: None,
        no_follow: false,
    };
    let staged = file::stage(path, &head, total, how)?;
    let mut at = head.len() as u64;
    write_elements(&view, |b| {
        file::write_all_at(&staged.file, b, at)?;
        at += b.len() as u64;
        Ok(())
    })
    .map_err(|e| Error::io(path, "write", e))?;
    finish(staged, path)
}

/// The memory order a `.npy` of `array` is written in (Fortran when that is the array's
/// layout, with two axes or more; else C), and the view that iterates in that order.
pub(super) fn file_order<T, S, D>(
    array: &ndarray::ArrayBase<S, D>,
) -> (Order, ndarray::ArrayViewD<'_, T>)
where
    S: ndarray::Data<Elem = T>,
    D: ndarray::Dimension,
{
    let fortran = array.ndim() > 1 && array.t().is_standard_layout() && !array.is_standard_layout();
    if fortran {
        (Order::F, array.t().into_dyn())
    } else {
        (Order::C, array.view().into_dyn())
    }
}

/// Hands the elements of `view`, in its iteration order, to `write` as bytes: all at once
/// (no copy) when the view is contiguous in that order, else through a 1 MiB buffer.
pub(super) fn write_elements<T: bytemuck::Pod>(
    view: &ndarray::ArrayViewD<'_, T>,
    mut write: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(all) = view.as_slice() {
        return write(bytemuck::cast_slice(all));
    }
    let mut buf: Vec<T> = Vec::with_capacity((1 << 20) / std::mem::size_of::<T>().max(1));
    for &x in view.iter() {
        buf.push(x);
        if buf.len() == buf.capacity() {
            write(bytemuck::cast_slice(&buf))?;
            buf.clear();
        }
    }
    write(bytemuck::cast_slice(&buf))
}

/// Syncs a fully written staged file, moves it into place and syncs its directory.
pub(super) fn finish(staged: file::Staged, path: &Path) -> Result<(), Error> {
    staged
        .file
        .sync_all()
        .map_err(|e| Error::io(path, "sync", e))?;
    let (_file, dir) = staged.commit(path)?;
    dir.sync(path)
}

/// Writes `bytes` as the whole content of the new file `path`, by the same rules as every
/// create (built aside, synced, linked into place, the directory synced), where nothing
/// may be: fails with `AlreadyExists`, replacing nothing, when `path` exists or appears
/// meanwhile (a Zarr array's `zarr.json`: the claim of its name).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn write_file_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let how = file::CreateHow {
        create_new: true,
        reserve: false,
        wait: None,
        no_follow: false,
    };
    let staged = file::stage(path, bytes, bytes.len() as u64, how)?;
    finish(staged, path)
}

/// Writes `bytes` as the whole content of `path`, replacing the file there (if any) in
/// one step, by the rules of every replacing create (built aside, renamed over it, refused
/// while another map holds the old one): a crash leaves the old file or the new one. A
/// link at `path` is replaced, not followed. A new file is not synced here (a compressed
/// Zarr chunk: the flush of the array handle that wrote it syncs it), but its write-back is
/// started, so that the disk writes it while the caller goes on.
/// With `leave_cold` (a bounded stream), the new file is written back at once and its pages
/// dropped from the page cache ([`write_back_and_drop`](super::pager::write_back_and_drop)).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn write_file_replacing(
    path: &Path,
    bytes: &[u8],
    leave_cold: bool,
) -> Result<(), Error> {
    let how = file::CreateHow {
        create_new: false,
        reserve: false,
        wait: None,
        no_follow: true,
    };
    let staged = file::stage(path, bytes, bytes.len() as u64, how)?;
    let (f, _) = staged.commit(path)?;
    match leave_cold {
        true => super::pager::write_back_and_drop(&f).map_err(|e| Error::io(path, "write back", e)),
        false => {
            super::pager::start_file_writeback(&f);
            Ok(())
        }
    }
}

/// A file written from its start, in order, then put at `path` in one step by the rules
/// of [`write_file_replacing`] (a crash leaves the old file or the new one): a compressed
/// Zarr chunk encoded as a stream. Dropped without [`commit`](Self::commit), it leaves
/// nothing.
#[cfg(feature = "zarr")]
pub(crate) struct ReplacingWriter {
    staged: file::Staged,
    out: std::io::BufWriter<File>,
    path: std::path::PathBuf,
    /// Written back and dropped from the page cache as it goes (a bounded stream): the
    /// bytes handed to the file so far, where the write-back last started, and where the
    /// pages were last dropped.
    leave_cold: bool,
    written: u64,
    started: u64,
    dropped: u64,
    /// A write-back error met on the way: the commit fails with it (the bytes were taken,
    /// so `write` itself succeeded).
    failed: Option<std::io::Error>,
}

/// How far a [`ReplacingWriter`] of a bounded stream writes before it starts write-back of
/// what it wrote (and drops what it started one step before).
#[cfg(feature = "zarr")]
const WRITE_BACK_STEP: u64 = 8 << 20;

#[cfg(feature = "zarr")]
impl ReplacingWriter {
    /// With `leave_cold` (a bounded stream), the file is written back and dropped from the
    /// page cache as it is written, a few megabytes behind, so that a big chunk does not
    /// sit whole in memory until it is committed.
    pub(crate) fn new(path: &Path, leave_cold: bool) -> Result<Self, Error> {
        let how = file::CreateHow {
            create_new: false,
            reserve: false,
            wait: None,
            no_follow: true,
        };
        let staged = file::stage(path, &[], 0, how)?;
        let f = staged
            .file
            .try_clone()
            .map_err(|e| Error::io(path, "create", e))?;
        Ok(ReplacingWriter {
            staged,
            out: std::io::BufWriter::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            leave_cold,
            written: 0,
            started: 0,
            dropped: 0,
            failed: None,
        })
    }

    /// Every [`WRITE_BACK_STEP`]: the write-back of what was written since the last step
    /// starts, and what started one step before is waited for and dropped.
    fn write_back_behind(&mut self) -> std::io::Result<()> {
        if !self.leave_cold || self.written < self.started + WRITE_BACK_STEP {
            return Ok(());
        }
        use std::io::Write;
        self.out.flush()?;
        let f = &self.staged.file;
        super::pager::write_back_range(f, self.dropped, self.started, true)?;
        super::pager::write_back_range(f, self.started, self.written, false)?;
        (self.dropped, self.started) = (self.started, self.written);
        Ok(())
    }

    /// Puts the file written at its path; with `leave_cold` (a bounded stream), written
    /// back at once and dropped from the page cache, else its write-back started.
    pub(crate) fn commit(self, leave_cold: bool) -> Result<(), Error> {
        let ReplacingWriter {
            staged,
            out,
            path,
            failed,
            ..
        } = self;
        if let Some(e) = failed {
            // Nothing is put in place: the staged file goes, the old one stays.
            return Err(Error::io(&path, "write back", e));
        }
        out.into_inner()
            .map_err(|e| Error::io(&path, "write", e.into_error()))?;
        let (f, _) = staged.commit(&path)?;
        match leave_cold {
            true => {
                super::pager::write_back_and_drop(&f).map_err(|e| Error::io(&path, "write back", e))
            }
            false => {
                super::pager::start_file_writeback(&f);
                Ok(())
            }
        }
    }
}

#[cfg(feature = "zarr")]
impl std::io::Write for ReplacingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        // `n` bytes were taken whatever happens next: an error of the write-back is kept
        // for the commit, not returned here (the encoder would send them again).
        if self.failed.is_none()
            && let Err(e) = self.write_back_behind()
        {
            self.failed = Some(e);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads a small regular file whole (a Zarr array's `zarr.json`): FIFOs and devices are
/// refused without blocking, and more than `limit` bytes is an error, not an endless read.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn read_small_file(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let f = open_regular(path, OpenOptions::new().read(true), "open for reading")?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, "read", e))?;
    if buf.len() as u64 > limit {
        return Err(Error::io(
            path,
            "read",
            std::io::Error::other(format!("more than {limit} bytes: not a metadata file")),
        ));
    }
    Ok(buf)
}
