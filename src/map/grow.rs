//! Growing a read-write map along its growth axis, reserving disk space, and the
//! metadata syncs that make a create or a resize durable.
//!
//! The order of a resize, chosen so that a failure at any step leaves the file and the
//! owner as they were:
//! 1. upgrade our shared `flock` to exclusive without blocking (fails while any other map
//!    of the file, in this process or another, holds its shared lock);
//! 2. reserve the new blocks (`fallocate`), then `set_len` to the new length. The old map
//!    stays valid: the file only gets longer, and on failure it is cut back to exactly
//!    its old length, which still covers the old map;
//! 3. map the new region, then drop the old map; views cannot survive this because they
//!    borrow the owner mutably or immutably, and `grow` takes `&mut self`;
//! 4. downgrade the lock to shared.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use bytemuck::Pod;
use memmap2::{MmapMut, MmapOptions};
use ndarray::{ArrayBase, Axis, Data, Dimension, Slice};

use super::MmapArrayMut;
use crate::bytes::{self, elem_size};
use crate::element::type_name;
use crate::error::{Error, GrowProblem};
use crate::npy::NpyHeader;
use crate::shape::{byte_count, checked_product, Order};

/// Metadata the next flush must sync beyond the data pages.
#[derive(Debug, Default)]
pub(super) struct PendingSync(AtomicU8);

impl PendingSync {
    /// The file's length and block map (`fsync`).
    pub(super) const FILE: u8 = 1;
    /// The file's directory entry too (a file this crate created).
    const FILE_AND_DIR: u8 = 3;
    const DIR: u8 = 2;

    pub(super) fn set(&self, bits: u8) {
        self.0.fetch_or(bits, Ordering::AcqRel);
    }

    /// Syncs what is pending; on error it stays pending for the next flush.
    pub(super) fn run(&self, file: &File, path: &Path) -> Result<(), Error> {
        let bits = self.0.load(Ordering::Acquire);
        if bits & Self::FILE != 0 {
            file.sync_all().map_err(|e| Error::io(path, "sync", e))?;
        }
        if bits & Self::DIR != 0 {
            sync_parent_dir(path)?;
        }
        self.0.fetch_and(!bits, Ordering::AcqRel);
        Ok(())
    }
}

/// Syncs the directory holding `path`, so a newly created entry survives a power loss.
fn sync_parent_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, "sync the directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reserves disk blocks for bytes `from..to` of `file`, extending it to `to` if it is
/// shorter. Does nothing (and succeeds) where the filesystem or platform cannot reserve.
pub(super) fn reserve(file: &File, from: u64, to: u64) -> io::Result<()> {
    if to <= from {
        return Ok(());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::io::AsRawFd;
        let too_big = || io::Error::from(io::ErrorKind::FileTooLarge);
        let offset = libc::off_t::try_from(from).map_err(|_| too_big())?;
        let len = libc::off_t::try_from(to - from).map_err(|_| too_big())?;
        loop {
            // SAFETY: `fallocate` touches no memory of ours; the descriptor is open for the
            // duration of the call because `file` is borrowed.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
            if rc == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // The filesystem cannot reserve (e.g. some network filesystems): sparse it is.
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => return Ok(()),
                _ => return Err(e),
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = file;
        Ok(())
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// The axis [`grow`](Self::grow) and [`append`](Self::append) extend: the first for
    /// C order, the last for Fortran order (the one whose rows are contiguous at the end
    /// of the file).
    ///
    /// # Errors
    /// [`Error::CannotGrow`] for a copy-on-write map or a 0-dimensional array.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("g.f32");
    /// use ndarray_mmap::{MapOptions, Order};
    /// let a = unsafe { MapOptions::new().order(Order::Fortran).create::<f32>(&path, [3, 4]) }?;
    /// assert_eq!(a.growth_axis()?, 1);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn growth_axis(&self) -> Result<usize, Error> {
        let problem = if self.copy_on_write {
            GrowProblem::CopyOnWrite
        } else if self.inner.dim.ndim() == 0 {
            GrowProblem::ZeroDimensional
        } else {
            return Ok(match self.inner.order {
                Order::C => 0,
                Order::Fortran => self.inner.dim.ndim() - 1,
            });
        };
        Err(Error::CannotGrow {
            path: self.inner.path.clone(),
            reason: problem,
        })
    }

    /// Grows the array to `new_len` along its [growth axis](Self::growth_axis) (the first
    /// for C order, the last for Fortran order), extending the file and remapping it. The
    /// new elements read as zeros; the old ones keep their values. Views taken before
    /// cannot be used after: they borrow the array, and this takes `&mut self`.
    ///
    /// For the data of a `.npy` file ([`open_npy_mut`](crate::MapOptions::open_npy_mut),
    /// [`create_npy`](crate::MapOptions::create_npy)) the header's shape is updated too:
    /// in place, within the spare room numpy leaves in headers, after the new data region
    /// exists; or, for a header without room, the data moves after a new, larger header
    /// (not crash-safe: a crash in the middle leaves the file unreadable).
    ///
    /// The new disk blocks are reserved first unless the map was made with
    /// [`MapOptions::preallocate(false)`](crate::MapOptions::preallocate), so a full disk
    /// is an error here rather than a SIGBUS on a later write. The next
    /// [`flush`](Self::flush) also syncs the new length.
    ///
    /// # Errors
    /// Nothing is changed by a failed call: the file keeps its length and bytes, and the
    /// array stays usable with its old shape.
    /// - [`Error::Locked`] when another map of the file (in this process or another) is
    ///   alive: the length of a file others have mapped must not change. Returned at
    ///   once, never waited for.
    /// - [`Error::CannotGrow`] for a copy-on-write map, a 0-dimensional array, a `new_len`
    ///   below the current length, or an array that does not end where the file ends
    ///   (mapped with [`len`](crate::MapOptions::len) short of the end).
    /// - [`Error::Overflow`] when the new shape's byte count overflows.
    /// - [`Error::CannotGrow`] with [`GrowProblem::HeaderChanged`](crate::GrowProblem::HeaderChanged)
    ///   when a `.npy` header no longer matches the map (another program rewrote it).
    /// - [`Error::Reserve`] when the disk has no room; an I/O error naming the path
    ///   otherwise.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("g.i32");
    /// let mut a = unsafe { ndarray_mmap::create_array::<i32>(&path, [2, 3]) }?;
    /// a.view_mut().fill(7);
    /// a.grow(5)?;
    /// assert_eq!(a.shape(), &[5, 3]);
    /// assert_eq!(a.view().sum(), 7 * 6); // new rows are zeros
    /// a.close()?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 5 * 3 * 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grow(&mut self, new_len: usize) -> Result<(), Error> {
        let axis = self.growth_axis()?;
        let size = elem_size::<T>()?;
        let old_len = self.inner.dim[axis];
        if new_len < old_len {
            return Err(Error::CannotGrow {
                path: self.inner.path.clone(),
                reason: GrowProblem::Shrink {
                    from: old_len,
                    to: new_len,
                },
            });
        }
        if new_len == old_len {
            return Ok(());
        }
        let mut dim = self.inner.dim.clone();
        dim[axis] = new_len;
        let overflow = || self.overflow(dim.slice());
        let nbytes = checked_product(dim.slice())
            .and_then(|n| byte_count(n, size))
            .ok_or_else(overflow)?;
        let end = self
            .inner
            .offset
            .checked_add(nbytes as u64)
            .filter(|&e| i64::try_from(e).is_ok())
            .ok_or_else(overflow)?;
        self.lock_exclusive()?;
        let grown = match self.npy_start {
            None => self.grow_locked(dim, nbytes, end),
            Some(start) => self.grow_npy_locked(start, dim, nbytes),
        };
        let relocked = self.lock_shared_again();
        grown.and(relocked)
    }

    /// Appends `rows` along the [growth axis](Self::growth_axis): [`grow`](Self::grow)s
    /// the array and copies them in. `rows` has the array's number of dimensions and the
    /// same lengths on every other axis; an array with one dimension fewer is taken as a
    /// single row. Any layout works (it is copied element by element in logical order).
    ///
    /// Each call extends and remaps the file (tens of microseconds: `benches/growth.rs`
    /// measures about 16 times the cost of writing into a pre-sized file when appending
    /// 1 KiB rows one by one, 1.3 times when appending 64 at a time), so append in batches.
    ///
    /// # Errors
    /// [`Error::CannotGrow`] with [`GrowProblem::RowShape`](crate::GrowProblem::RowShape)
    /// when the shapes do not fit, before anything changes; otherwise as for
    /// [`grow`](Self::grow).
    ///
    /// ```
    /// use ndarray::{arr1, arr2};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("log.f64");
    /// let mut log = unsafe { ndarray_mmap::create_array::<f64>(&path, [0, 2]) }?;
    /// log.append(&arr2(&[[1.0, 2.0], [3.0, 4.0]]))?;
    /// log.append(&arr1(&[5.0, 6.0]))?; // one row
    /// assert_eq!(log.view(), arr2(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn());
    /// assert!(log.append(&arr1(&[1.0, 2.0, 3.0])).is_err()); // wrong row length
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn append<S, E>(&mut self, rows: &ArrayBase<S, E>) -> Result<(), Error>
    where
        S: Data<Elem = T>,
        E: Dimension,
    {
        let axis = self.growth_axis()?;
        let ndim = self.inner.dim.ndim();
        let mut rows = rows.view().into_dyn();
        if rows.ndim() + 1 == ndim {
            rows.insert_axis_inplace(Axis(axis));
        }
        let array = self.inner.dim.slice();
        let fits =
            rows.ndim() == ndim && (0..ndim).all(|i| i == axis || rows.shape()[i] == array[i]);
        if !fits {
            return Err(Error::CannotGrow {
                path: self.inner.path.clone(),
                reason: GrowProblem::RowShape {
                    array: array.to_vec(),
                    rows: rows.shape().to_vec(),
                    axis,
                },
            });
        }
        let old = array[axis];
        let new = old.checked_add(rows.shape()[axis]).ok_or_else(|| {
            let mut shape = array.to_vec();
            shape[axis] = usize::MAX;
            self.overflow(&shape)
        })?;
        self.grow(new)?;
        self.view_mut()
            .into_dyn()
            .slice_axis_mut(Axis(axis), Slice::from(old..))
            .assign(&rows);
        Ok(())
    }

    fn overflow(&self, shape: &[usize]) -> Error {
        Error::Overflow {
            path: Some(self.inner.path.clone()),
            shape: shape
                .iter()
                .map(|&d| isize::try_from(d).unwrap_or(isize::MAX))
                .collect(),
            elem: type_name::<T>(),
        }
    }

    /// The file's length, checked to end where this map ends: growing a file someone
    /// appended to would overwrite their data.
    fn file_len_at_end(&self) -> Result<u64, Error> {
        let inner = &self.inner;
        let mapped_end = inner.offset + inner.map.len() as u64;
        let file_len = inner
            .file
            .metadata()
            .map_err(|e| Error::io(&inner.path, "read metadata of", e))?
            .len();
        if file_len != mapped_end {
            return Err(Error::CannotGrow {
                path: inner.path.clone(),
                reason: GrowProblem::NotAtEnd {
                    end: mapped_end,
                    file_len,
                },
            });
        }
        Ok(file_len)
    }

    /// Cuts the file back to `file_len` after `e`. That never takes a page the old map
    /// uses: it ends there.
    fn restore_len(&self, file_len: u64, e: Error) -> Error {
        match self.inner.file.set_len(file_len) {
            Ok(()) => e,
            Err(re) => Error::io(&self.inner.path, "restore the length of", re),
        }
    }

    /// Extends the file from `file_len` to `end` (reserving the blocks unless
    /// preallocation is off) and maps `nbytes` at `data_start` read-write, checked to
    /// view as `dim`. Under the exclusive lock. On error the file has its old length.
    fn extend_and_map(
        &self,
        file_len: u64,
        end: u64,
        data_start: u64,
        nbytes: usize,
        dim: &D,
    ) -> Result<MmapMut, Error> {
        let (file, path) = (&self.inner.file, &self.inner.path);
        let restore = |e: Error| self.restore_len(file_len, e);
        if self.preallocate {
            reserve(file, file_len, end).map_err(|source| {
                restore(Error::Reserve {
                    path: path.clone(),
                    from: file_len,
                    to: end,
                    source,
                })
            })?;
        }
        file.set_len(end)
            .map_err(|e| restore(Error::io(path, "resize", e)))?;
        // SAFETY: the file is open read-write and `end` bytes long, and we hold the
        // exclusive lock, so no cooperating map shrinks it; the constructor's contract
        // (no truncation by others while mapped) covers the rest.
        let map = unsafe {
            MmapOptions::new()
                .offset(data_start)
                .len(nbytes)
                .map_mut(file)
        }
        .map_err(|e| restore(Error::io(path, "map read-write", e)))?;
        // `view` relies on the shape and alignment fitting the map: check them once here.
        match bytes::view::<T, _>(&map, dim.clone(), self.inner.order) {
            Ok(_) => Ok(map),
            Err(e) => Err(restore(e.at(path))),
        }
    }

    /// Extends the file to `end` and remaps `nbytes` at the same offset as `dim`. Under
    /// the exclusive lock. On error the file has its old length and the old map is kept.
    fn grow_locked(&mut self, dim: D, nbytes: usize, end: u64) -> Result<(), Error> {
        let file_len = self.file_len_at_end()?;
        let map = self.extend_and_map(file_len, end, self.inner.offset, nbytes, &dim)?;
        self.inner.map = map;
        self.inner.dim = dim;
        self.sync.set(PendingSync::FILE);
        Ok(())
    }

    /// Marks a freshly created file: the first flush syncs its length and its directory
    /// entry too.
    pub(super) fn created(&self) {
        self.sync.set(PendingSync::FILE_AND_DIR);
    }

    /// Marks this as the data of a `.npy` file whose header starts at `start`.
    pub(super) fn npy_at(mut self, start: u64) -> Self {
        self.npy_start = Some(start);
        self
    }

    /// [`grow_locked`](Self::grow_locked) for a `.npy` file: the header's shape is
    /// rewritten in place when numpy's spare room holds it; otherwise the data is moved
    /// after a new, larger header. The header is written last, after the data region
    /// exists, so a reader never sees a shape the file is too short for.
    fn grow_npy_locked(&mut self, start: u64, dim: D, nbytes: usize) -> Result<(), Error> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let inner = &self.inner;
        let (mut file, path) = (&inner.file, &inner.path);
        let file_len = self.file_len_at_end()?;
        // Re-read the header under the lock: it must still describe this map.
        let head_len = inner.offset - start;
        let mut old_head = vec![0u8; head_len as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut old_head))
            .map_err(|e| Error::io(path, "read the header of", e))?;
        let header = NpyHeader::parse(&old_head).map_err(|e| e.at(path))?;
        if header.shape() != inner.dim.slice() || header.data_offset() as u64 != head_len {
            return Err(Error::CannotGrow {
                path: path.clone(),
                reason: GrowProblem::HeaderChanged {
                    shape: header.shape().to_vec(),
                },
            });
        }
        let (new_head, data_start) = match header.encode_with_shape(dim.slice()) {
            Some(h) => (h, inner.offset),
            None => {
                let h = NpyHeader::new(header.descr(), dim.slice(), header.order())
                    .map(|h| h.to_bytes())
                    .map_err(|e| e.at(path))?;
                let data_start = start + h.len() as u64;
                let align = std::mem::align_of::<T>() as u64;
                if !data_start.is_multiple_of(align) {
                    return Err(Error::Misaligned {
                        path: Some(path.clone()),
                        offset: data_start,
                        elem: type_name::<T>(),
                        align: align as usize,
                    });
                }
                (h, data_start)
            }
        };
        let end = data_start
            .checked_add(nbytes as u64)
            .filter(|&e| i64::try_from(e).is_ok())
            .ok_or_else(|| self.overflow(dim.slice()))?;
        let map = self.extend_and_map(file_len, end, data_start, nbytes, &dim)?;
        let restore = |e: Error| self.restore_len(file_len, e);
        if data_start != inner.offset {
            // Move the data to after the larger header, through a map of the whole .npy.
            // SAFETY: as in `extend_and_map`: the file is `end` bytes long and exclusively
            // locked, and `start..end` lies inside it.
            let mut whole = unsafe {
                MmapOptions::new()
                    .offset(start)
                    .len((end - start) as usize)
                    .map_mut(file)
            }
            .map_err(|e| restore(Error::io(path, "map read-write", e)))?;
            let old = head_len as usize..(head_len as usize + inner.map.len());
            whole.copy_within(old, new_head.len());
            whole[..new_head.len()].copy_from_slice(&new_head);
        } else {
            let written = file
                .seek(SeekFrom::Start(start))
                .and_then(|_| file.write_all(&new_head));
            if let Err(e) = written {
                // Put the old header back (same length, so one write) and the old length.
                let _ = file
                    .seek(SeekFrom::Start(start))
                    .and_then(|_| file.write_all(&old_head));
                drop(map);
                return Err(restore(Error::io(path, "write the header of", e)));
            }
        }
        self.inner.map = map;
        self.inner.dim = dim;
        self.inner.offset = data_start;
        self.sync.set(PendingSync::FILE);
        Ok(())
    }

    /// Upgrades our shared lock to exclusive without waiting.
    fn lock_exclusive(&self) -> Result<(), Error> {
        let (file, path) = (&self.inner.file, &self.inner.path);
        // Windows locks do not convert: release ours first. (flock converts in place.)
        #[cfg(not(unix))]
        file.unlock().map_err(|e| Error::io(path, "unlock", e))?;
        let err = match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => Error::Locked {
                path: path.clone(),
                exclusive: true,
            },
            Err(TryLockError::Error(e)) => Error::io(path, "lock", e),
        };
        // A failed flock conversion may have dropped our shared lock (Linux removes it
        // before looking for conflicts): take it back. This waits only if another
        // process's resize slipped in, and only until that resize is done.
        file.lock_shared().map_err(|e| Error::io(path, "lock", e))?;
        Err(err)
    }

    /// Downgrades the exclusive lock back to the shared one every map holds.
    fn lock_shared_again(&self) -> Result<(), Error> {
        let (file, path) = (&self.inner.file, &self.inner.path);
        #[cfg(not(unix))]
        file.unlock().map_err(|e| Error::io(path, "unlock", e))?;
        file.lock_shared().map_err(|e| Error::io(path, "lock", e))
    }
}

#[cfg(all(test, not(miri)))]
// SAFETY (for every block below): each test maps only files in its own temporary
// directory, which nothing else truncates or modifies while they are mapped.
#[allow(clippy::undocumented_unsafe_blocks)]
mod tests {
    use crate::{create_array, mmap_array, Error, GrowProblem, MapOptions, Order};
    use ndarray::{arr1, arr2, Array2};
    use std::io::Write;

    #[test]
    fn grow_c_keeps_data_and_zero_fills() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.u16");
        let mut a = unsafe { create_array::<u16>(&path, [2, 3]) }.unwrap();
        a.view_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = i as u16 + 1);
        a.grow(4).unwrap();
        assert_eq!(
            a.view(),
            arr2(&[[1u16, 2, 3], [4, 5, 6], [0, 0, 0], [0, 0, 0]]).into_dyn()
        );
        // A fixed dimensionality grows the same way.
        let mut a = a.into_dimensionality::<ndarray::Ix2>().unwrap();
        a.append(&arr2(&[[7u16, 8, 9]])).unwrap();
        assert_eq!(a.view().dim(), (5, 3));
        assert_eq!(a.view()[[4, 2]], 9);
        a.close().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 30);
    }

    #[test]
    fn grow_fortran_extends_last_axis_with_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.f32");
        let opts = MapOptions::new().offset(16).order(Order::Fortran);
        let mut a = unsafe { opts.create::<f32>(&path, [2, 2]) }.unwrap();
        a.view_mut().assign(&arr2(&[[1.0, 2.0], [3.0, 4.0]]));
        a.append(&arr2(&[[5.0], [6.0]])).unwrap();
        assert_eq!(
            a.view(),
            arr2(&[[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]).into_dyn()
        );
        a.close().unwrap();
        let b = unsafe { opts.open::<f32>(&path, [2, -1]) }.unwrap();
        assert_eq!(
            b.view(),
            arr2(&[[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]).into_dyn()
        );
    }

    #[test]
    fn append_any_layout_and_single_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.i64");
        let mut a = unsafe { create_array::<i64>(&path, [0, 3]) }.unwrap();
        let t = Array2::from_shape_fn((3, 2), |(i, j)| (i * 10 + j) as i64);
        a.append(&t.t()).unwrap(); // a transposed (F-contiguous) view
        a.append(&arr1(&[7i64, 8, 9])).unwrap();
        assert_eq!(
            a.view(),
            arr2(&[[0i64, 10, 20], [1, 11, 21], [7, 8, 9]]).into_dyn()
        );
        let err = a.append(&arr2(&[[1i64, 2]])).unwrap_err();
        assert!(matches!(
            err,
            Error::CannotGrow {
                reason: GrowProblem::RowShape { .. },
                ..
            }
        ));
        assert!(err.to_string().contains("[1, 2]"), "{err}");
        assert!(err.to_string().contains("[3, 3]"), "{err}");
        assert_eq!(a.shape(), &[3, 3]);
    }

    #[test]
    fn refusals_leave_everything_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.u8");
        std::fs::write(&path, [1u8, 2, 3, 4, 5, 6]).unwrap();
        // A map that stops short of the end of the file.
        let mut a = unsafe { MapOptions::new().len(4).open_mut::<u8>(&path, [-1]) }.unwrap();
        let err = a.grow(5).unwrap_err();
        assert!(
            err.to_string()
                .contains("ends at byte 4 but the file is 6 bytes"),
            "{err}"
        );
        assert!(matches!(
            a.grow(3).unwrap_err(),
            Error::CannotGrow {
                reason: GrowProblem::Shrink { from: 4, to: 3 },
                ..
            }
        ));
        let e = a.grow(usize::MAX).unwrap_err();
        assert!(matches!(e, Error::Overflow { .. }), "{e}");
        a.grow(4).unwrap(); // no change
        drop(a);
        let mut c = unsafe { MapOptions::new().open_copy::<u8>(&path, [-1]) }.unwrap();
        assert!(matches!(
            c.grow(10).unwrap_err(),
            Error::CannotGrow {
                reason: GrowProblem::CopyOnWrite,
                ..
            }
        ));
        drop(c);
        let mut z = unsafe { MapOptions::new().len(1).open_mut::<u8>(&path, []) }.unwrap();
        assert!(z.growth_axis().is_err());
        assert!(z.grow(1).is_err());
        drop(z);
        assert_eq!(std::fs::read(&path).unwrap(), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_file_changed_behind_our_back_is_not_grown() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.u8");
        std::fs::write(&path, [1u8; 16]).unwrap();
        let mut a = unsafe { MapOptions::new().open_mut::<u8>(&path, [-1]) }.unwrap();
        // A program that ignores locks appends to the file: growing would clobber it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[2u8; 4])
            .unwrap();
        let err = a.grow(32).unwrap_err();
        assert!(
            err.to_string()
                .contains("ends at byte 16 but the file is 20 bytes"),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20);
        assert_eq!(a.shape(), &[16]);
    }

    #[test]
    fn another_map_blocks_growth_and_our_lock_survives_the_attempt() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("g.f64");
        let mut a = unsafe { create_array::<f64>(&path, [4]) }.unwrap();
        a.view_mut().fill(2.0);
        let b = unsafe { mmap_array::<f64>(&path, [-1]) }.unwrap();
        let err = a.grow(8).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Locked {
                    exclusive: true,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(a.shape(), &[4]);
        assert_eq!(a.view().sum(), 8.0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        b.close().unwrap();
        // `a` still holds its shared lock after the failed upgrade: a create must fail.
        let c = unsafe { create_array::<f64>(&path, [1]) };
        assert!(matches!(
            c,
            Err(Error::Locked {
                exclusive: true,
                ..
            })
        ));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        a.grow(8).unwrap();
        assert_eq!(a.view().sum(), 8.0);
        // And it holds it after a successful grow too.
        let c = unsafe { create_array::<f64>(&path, [1]) };
        assert!(matches!(
            c,
            Err(Error::Locked {
                exclusive: true,
                ..
            })
        ));
        a.flush().unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn preallocation_reserves_blocks_unless_turned_off() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dense = tmp.path().join("dense.u8");
        let sparse = tmp.path().join("sparse.u8");
        let n = 1 << 20;
        let _d = unsafe { create_array::<u8>(&dense, [n]) }.unwrap();
        let _s = unsafe {
            MapOptions::new()
                .preallocate(false)
                .create::<u8>(&sparse, [n])
        }
        .unwrap();
        let blocks = |p: &std::path::Path| std::fs::metadata(p).unwrap().blocks() * 512;
        assert_eq!(blocks(&sparse), 0);
        // Filesystems without fallocate (rare on Linux) keep the file sparse.
        if blocks(&dense) == 0 {
            eprintln!("note: this filesystem does not reserve blocks (fallocate unsupported)");
        } else {
            assert!(blocks(&dense) >= n as u64);
        }
    }
}
