//! Page-level hooks for the streaming operations in `ops`: sequential read-ahead advice,
//! dropping pages a stream has finished with, and bounded write-back of finished output.
//!
//! These are the only parts of the streaming path that need `unsafe` (raw `madvise`,
//! `sync_file_range` and `msync` on ranges of a live mapping). They never change what a
//! view reads: they are applied to shared file maps only, where the page cache holds
//! every byte written through the map, and are no-ops on copy-on-write maps (where
//! `MADV_DONTNEED` would discard the private copy).

use std::fs::File;
use std::marker::PhantomData;
use std::path::Path;

use bytemuck::Pod;
use ndarray::{ArrayViewD, ArrayViewMutD, Dimension};

use super::residency::Residency;
#[cfg(target_os = "linux")]
use super::residency::file_residency;
use super::room::read_ahead_of;
use super::{Inner, MmapArray, MmapArrayMut};
use crate::bytes;
use crate::error::Error;

/// The pages of one live mapping, with the hints both directions of a stream give.
///
/// Holds the address and length of the mapping it was made from, and borrows the owner
/// for `'a`, so the mapping outlives it.
// Without unix system calls (Windows) the hooks do nothing and some fields go unread.
#[cfg_attr(not(unix), allow(dead_code))]
pub struct Pages<'a> {
    addr: usize,
    len: usize,
    /// Copy-on-write: dropping pages would lose private writes, so every hook is a no-op.
    private: bool,
    /// Where byte 0 of the mapping lies in the file.
    file_offset: u64,
    file: &'a File,
    path: &'a Path,
    /// Which of the map's pages were in the page cache when the stream began (one byte
    /// per page, bit 0 set when resident, as `mincore` reports): those are left in the
    /// cache when the stream is done with them; the others, brought in by the stream,
    /// are dropped from it. Empty when not asked for ([`Pages::snapshot_residency`]).
    resident: Vec<u8>,
    owner: PhantomData<&'a [u8]>,
}

/// Write-back of a map's finished ranges, started by a helper thread that owns a duplicate
/// of the file's descriptor (so it may outlive the map): the stream hands a range over and
/// goes on computing while the kernel is asked to write it. Dropping this ends the thread
/// once it has handed the last range to the kernel; nothing waits for it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // made on Linux only
pub(crate) struct WriteBehind {
    tx: std::sync::mpsc::Sender<(u64, u64)>,
    file_offset: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl WriteBehind {
    /// Starts write-back of bytes `lo..hi` of the map.
    pub(crate) fn push(&self, lo: usize, hi: usize) {
        if lo < hi {
            // A send fails only when the thread is gone: the bytes reach the file on
            // `flush` or when the kernel writes them back.
            let _ = self
                .tx
                .send((self.file_offset + lo as u64, (hi - lo) as u64));
        }
    }
}

/// Paging hooks for a map that a stream reads from.
pub struct InPager<'a>(Pages<'a>);

/// Paging hooks for a map that a stream writes to.
pub struct OutPager<'a> {
    pages: Pages<'a>,
}

impl<'a> std::ops::Deref for InPager<'a> {
    type Target = Pages<'a>;
    fn deref(&self) -> &Pages<'a> {
        &self.0
    }
}

impl<'a> std::ops::Deref for OutPager<'a> {
    type Target = Pages<'a>;
    fn deref(&self) -> &Pages<'a> {
        &self.pages
    }
}

impl<'a> std::ops::DerefMut for InPager<'a> {
    fn deref_mut(&mut self) -> &mut Pages<'a> {
        &mut self.0
    }
}

impl<'a> std::ops::DerefMut for OutPager<'a> {
    fn deref_mut(&mut self) -> &mut Pages<'a> {
        &mut self.pages
    }
}

impl<'a> Pages<'a> {
    fn of<M: std::ops::Deref<Target = [u8]>, D>(inner: &'a Inner<M, D>, private: bool) -> Self {
        Pages::new(&inner.map, private, inner.offset, &inner.file, &inner.path)
    }

    /// The pages of `map` (its address and length are taken, not a borrow, so that a
    /// mutable view of it can be lent beside them).
    fn new(map: &[u8], private: bool, file_offset: u64, file: &'a File, path: &'a Path) -> Self {
        Pages {
            addr: map.as_ptr() as usize,
            len: map.len(),
            private,
            file_offset,
            file,
            path,
            resident: Vec::new(),
            owner: PhantomData,
        }
    }

    /// Records which pages are in the page cache now (`mincore`), so that
    /// [`evict`](Self::evict) later drops only the pages the stream brought in. A no-op
    /// where `mincore` fails or does not exist (then `evict` drops nothing).
    /// The share of the map's pages in the page cache, from up to 64 pages spread over
    /// it (`mincore`; cheap, and nothing is read); `None` where that cannot be asked.
    pub(crate) fn resident_share(&self) -> Option<f64> {
        #[cfg(target_os = "linux")]
        {
            let (s, e) = whole_pages(self.addr, self.len, 0, self.len)?;
            let page = page_size();
            let pages = (e - s) / page;
            let samples = pages.clamp(1, 64);
            let mut resident = 0usize;
            for k in 0..samples {
                let at = s + k * pages / samples * page;
                let mut v = 0u8;
                // SAFETY: `at` is a page of a live mapping this borrows; `v` is the one
                // byte `mincore` writes for one page.
                let rc = unsafe { libc::mincore(at as *mut libc::c_void, page, &mut v) };
                if rc != 0 {
                    return None;
                }
                resident += usize::from(v & 1 == 1);
            }
            Some(resident as f64 / samples as f64)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    pub(crate) fn snapshot_residency(&mut self) {
        #[cfg(target_os = "linux")]
        if !self.private
            && let Some((s, e)) = whole_pages(self.addr, self.len, 0, self.len)
        {
            let mut v = vec![0u8; (e - s) / page_size()];
            // SAFETY: `s..e` is the page-rounded span of a live mapping this borrows;
            // `v` has one byte per page of it, as `mincore` writes.
            let rc = unsafe { libc::mincore(s as *mut libc::c_void, e - s, v.as_mut_ptr()) };
            if rc == 0 {
                self.resident = v;
            }
        }
    }

    /// Like [`snapshot_residency`](Self::snapshot_residency), from `record`'s view of the
    /// whole file, taken the first time a stream maps any part of it: for a stream that
    /// maps several parts of one file in turn (the inner chunks of a Zarr shard, or a
    /// chunk it comes back to), pages its own read-ahead brought into the next part must
    /// not count as cached before the stream began.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(crate) fn snapshot_residency_in(&mut self, record: &mut Residency) {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            let Ok(meta) = self.file.metadata() else {
                return;
            };
            // A map of the whole file has its record already (`snapshot_residency`):
            // no second map of the file to ask `mincore` again.
            let own = (self.file_offset == 0 && self.len as u64 == meta.len())
                .then_some(&self.resident)
                .filter(|r| !r.is_empty());
            let file = self.file;
            let make = || own.cloned().or_else(|| file_residency(file, meta.len()));
            let Some(whole) = record.of((meta.dev(), meta.ino()), meta.len(), make) else {
                return;
            };
            let page = page_size();
            if let Some((s, e)) = whole_pages(self.addr, self.len, 0, self.len) {
                let first = (self.file_offset / page as u64) as usize;
                let n = (e - s) / page;
                if let Some(part) = whole.get(first..first + n) {
                    self.resident = part.to_vec();
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = record;
    }

    /// Hands over the residency record (see [`snapshot_residency`](Self::snapshot_residency)),
    /// so that a stream over a map it does not keep borrowed can carry it between calls.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(crate) fn take_residency(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.resident)
    }

    /// Puts back a record [`take_residency`](Self::take_residency) handed over, for a pager
    /// of the same map.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
    pub(crate) fn set_residency(&mut self, resident: Vec<u8>) {
        self.resident = resident;
    }

    /// Drops from the page cache the whole pages of bytes `lo..hi` that were not resident
    /// when [`snapshot_residency`](Self::snapshot_residency) ran (they are clean, or
    /// written back, by now): memory the stream took is given back, and files that were
    /// cached before it stay cached. `posix_fadvise(POSIX_FADV_DONTNEED)`; Linux only.
    pub(crate) fn evict(&self, lo: usize, hi: usize) {
        #[cfg(target_os = "linux")]
        if !self.resident.is_empty()
            && let Some((s, e)) = whole_pages(self.addr, self.len, lo, hi)
        {
            use std::os::fd::AsRawFd;
            let page = page_size();
            let base = whole_pages(self.addr, self.len, 0, self.len).map_or(s, |(b, _)| b);
            // File offset of the first byte of the page at address `a`.
            let at = |a: usize| (self.file_offset as i128 + a as i128 - self.addr as i128).max(0);
            let mut k = (s - base) / page;
            let end = ((e - base) / page).min(self.resident.len());
            while k < end {
                if self.resident[k] & 1 == 1 {
                    k += 1;
                    continue;
                }
                let run = k;
                while k < end && self.resident[k] & 1 == 0 {
                    k += 1;
                }
                let (from, to) = (at(base + run * page), at(base + k * page));
                // SAFETY: a plain system call on an open descriptor; it reads no memory
                // of ours, and dropping clean cached pages never changes file contents.
                unsafe {
                    libc::posix_fadvise(
                        self.file.as_raw_fd(),
                        from as libc::off_t,
                        (to - from) as libc::off_t,
                        libc::POSIX_FADV_DONTNEED,
                    );
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (lo, hi);
    }

    /// Like [`evict`](Self::evict) for bytes `lo..hi` behind a stream, reaching back to
    /// the boundary of the largest page-cache folio below `lo` (never below the map's
    /// first byte). The page cache holds files in folios of up to the PMD size (2 MiB
    /// with 4 KiB pages: a page of 8-byte entries maps page²/8 bytes), and
    /// `POSIX_FADV_DONTNEED` skips a folio that is only partly in its range: one that
    /// straddled the last call's end straddles this call's start too, and was never
    /// dropped (with 1 MiB pieces 69% of a 128 MiB input stayed cached, and a 64 MiB
    /// cgroup filled up). Pages below `lo` are behind the stream already, so asking
    /// again for them is harmless.
    fn evict_behind(&self, lo: usize, hi: usize) {
        let page = page_size() as u64;
        let folio_span = page * page / 8;
        let back = (self.file_offset + lo as u64) % folio_span;
        self.evict(lo.saturating_sub(back as usize), hi);
    }

    /// Brings bytes `lo..hi` of the map into memory before the stream touches them
    /// (`MADV_POPULATE_READ`, or `MADV_POPULATE_WRITE` for an output; Linux 5.14+). A
    /// page that cannot be brought in (the file was truncated behind the advisory locks,
    /// an I/O error, no space for a sparse page) is then an `Err` naming the file and
    /// the bytes, where touching it would have killed the process with SIGBUS. Older
    /// kernels and other systems skip this (`EINVAL`: the touch itself faults the pages).
    pub(crate) fn prefault(&self, lo: usize, hi: usize, write: bool) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        if !self.private
            && let Some((s, e)) = span_pages(self.addr, self.len, lo, hi)
        {
            const MADV_POPULATE_READ: libc::c_int = 22;
            const MADV_POPULATE_WRITE: libc::c_int = 23;
            let advice = if write {
                MADV_POPULATE_WRITE
            } else {
                MADV_POPULATE_READ
            };
            // Interrupted or short of memory for a moment: try again a few times (each
            // call populates what it can, so retries make progress).
            for attempt in 0.. {
                // SAFETY: `s..e` lies within a live mapping this borrows; populating
                // pages changes no byte of it (a write fault on a shared file map keeps
                // contents).
                let rc = unsafe { libc::madvise(s as *mut libc::c_void, e - s, advice) };
                if rc == 0 {
                    break;
                }
                let err = std::io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => break,
                    Some(libc::EINTR | libc::EAGAIN) if attempt < 8 => continue,
                    // Still interrupted: the touch faults the pages itself.
                    Some(libc::EINTR | libc::EAGAIN) => break,
                    _ => {
                        return Err(Error::Unreadable {
                            path: self.path.to_path_buf(),
                            bytes: self.file_offset + lo as u64..self.file_offset + hi as u64,
                            source: err,
                        });
                    }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (lo, hi, write);
        Ok(())
    }

    /// For bytes `lo..hi` of a map whose pages were brought in already (a Zarr chunk
    /// mapped ahead of the stream): the file still holds them (one `fstat`, where a
    /// second prefault would walk every page again). A file truncated behind the advisory
    /// locks is then an `Err` naming the bytes, as [`prefault`](Self::prefault) makes it,
    /// not a SIGBUS.
    pub(crate) fn check_held(&self, lo: usize, hi: usize) -> Result<(), Error> {
        let end = self.file_offset + hi as u64;
        let source = match self.file.metadata() {
            Ok(m) if m.len() >= end => return Ok(()),
            Ok(m) => std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file was cut to {} bytes while mapped", m.len()),
            ),
            Err(e) => e,
        };
        Err(Error::Unreadable {
            path: self.path.to_path_buf(),
            bytes: self.file_offset + lo as u64..end,
            source,
        })
    }

    /// Whether pieces may be read through the file ([`read_at`](Self::read_at)): a shared
    /// map (a copy-on-write map may hold writes the file lacks).
    pub(crate) fn can_read_at(&self) -> bool {
        !self.private
    }

    /// Where byte 0 of the map lies in the file.
    pub(crate) fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Reads bytes `lo..lo + buf.len()` of the map through the file (`pread`), not the map:
    /// the same bytes (one page cache), but a file truncated behind the locks is a short
    /// read, so an `Err` naming the bytes, never a SIGBUS.
    pub(crate) fn read_at(&self, lo: usize, buf: &mut [u8]) -> Result<(), Error> {
        let at = self.file_offset + lo as u64;
        super::file::read_exact_at(self.file, buf, at).map_err(|source| Error::Unreadable {
            path: self.path.to_path_buf(),
            bytes: at..at + buf.len() as u64,
            source,
        })
    }

    /// The start of the file page that holds byte `at` of the map, as a byte of the map
    /// (0 when that page starts before the map): write-back works on whole pages, so a
    /// range handed to it must stop there when the next bytes are still to be written.
    pub(crate) fn page_start(&self, at: usize) -> usize {
        let page = page_size() as u64;
        let file = self.file_offset + at as u64;
        (file / page * page).saturating_sub(self.file_offset) as usize
    }

    /// How far the kernel may read ahead of a stream through this map ([`read_ahead`]).
    pub(crate) fn read_ahead(&self) -> u64 {
        read_ahead_of(self.file)
    }

    /// The address of byte 0 of the mapping, to locate views' pointers in it.
    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Tells the kernel the whole map will be read in order (read ahead aggressively).
    pub(crate) fn sequential(&self) {
        #[cfg(unix)]
        self.advise_all(libc::MADV_SEQUENTIAL);
    }

    /// Back to default paging behaviour after a stream.
    pub(crate) fn normal(&self) {
        #[cfg(unix)]
        self.advise_all(libc::MADV_NORMAL);
    }

    #[cfg(unix)]
    fn advise_all(&self, advice: libc::c_int) {
        if let Some((s, e)) = whole_pages(self.addr, self.len, 0, self.len) {
            advise_pages(s, e, advice);
        }
    }

    /// Drops this process's whole pages of bytes `lo..hi` (not for copy-on-write maps).
    fn drop_pages(&self, lo: usize, hi: usize) {
        if self.private {
            return;
        }
        #[cfg(unix)]
        if let Some((s, e)) = whole_pages(self.addr, self.len, lo, hi) {
            advise_pages(s, e, libc::MADV_DONTNEED);
        }
        #[cfg(not(unix))]
        let _ = (lo, hi);
    }
}

impl<T: Pod, D: Dimension> MmapArray<T, D> {
    /// The share (0 to 1) of the array's pages in the page cache now, from up to 64 pages
    /// spread over it (`mincore`: nothing is read); `None` where the system cannot say
    /// (not Linux). What [`Paging::Auto`](crate::ops::Paging::Auto) looks at.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.f32");
    /// std::fs::write(&path, vec![0u8; 1 << 20])?;            // just written: cached
    /// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }?;
    /// # #[cfg(target_os = "linux")]
    /// assert!(a.resident_share().is_some_and(|s| s > 0.5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resident_share(&self) -> Option<f64> {
        Pages::of(&self.inner, false).resident_share()
    }

    /// A view of the whole array plus its paging hooks, for the streaming operations.
    pub(crate) fn stream_parts(&self) -> (ArrayViewD<'_, T>, InPager<'_>) {
        let pager = InPager(Pages::of(&self.inner, false));
        (self.view().into_dyn(), pager)
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// As [`MmapArray::resident_share`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let c = unsafe { ndarray_mmap::create_array::<f32>(dir.path().join("c.f32"), [1024]) }?;
    /// assert!(c.resident_share().is_none_or(|s| (0.0..=1.0).contains(&s)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resident_share(&self) -> Option<f64> {
        Pages::of(&self.inner, self.copy_on_write).resident_share()
    }

    /// A view of the whole array plus its read-side paging hooks.
    pub(crate) fn stream_parts(&self) -> (ArrayViewD<'_, T>, InPager<'_>) {
        let pager = InPager(Pages::of(&self.inner, self.copy_on_write));
        (self.view().into_dyn(), pager)
    }

    /// A mutable view of the whole array plus its write-side paging hooks.
    pub(crate) fn stream_parts_mut(&mut self) -> (ArrayViewMutD<'_, T>, OutPager<'_>) {
        let private = self.copy_on_write;
        let inner = &mut self.inner;
        let pages = Pages::new(&inner.map, private, inner.offset, &inner.file, &inner.path);
        let view = bytes::view_mut(&mut inner.map, inner.dim.clone(), inner.order)
            .expect("shape and alignment were checked when the file was mapped")
            .into_dyn();
        (view, OutPager { pages })
    }
}

pub(crate) fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf has no preconditions; it reads a constant of the system.
            let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if n > 0 {
                return n as usize;
            }
        }
        4096
    })
}

/// The whole pages of a mapping at `addr` (`len` bytes) inside its bytes `lo..hi`, as an
/// address range. The page holding byte 0 and the page holding the last byte belong to
/// the mapping as a whole (mmap maps whole pages), so `lo == 0` rounds down and
/// `hi == len` rounds up; anywhere else the range shrinks to whole pages inside it.
#[cfg_attr(not(unix), allow(dead_code))]
fn whole_pages(addr: usize, len: usize, lo: usize, hi: usize) -> Option<(usize, usize)> {
    let page = page_size();
    let hi = hi.min(len);
    if lo >= hi {
        return None;
    }
    let start = if lo == 0 {
        addr / page * page
    } else {
        (addr + lo).div_ceil(page) * page
    };
    let end = if hi == len {
        (addr + len).div_ceil(page) * page
    } else {
        (addr + hi) / page * page
    };
    (start < end).then_some((start, end))
}

/// `madvise` on whole pages; errors are ignored: these are hints.
/// The pages that hold any of bytes `lo..hi` of a map at `addr` (rounded outward, within
/// the map's own pages).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn span_pages(addr: usize, len: usize, lo: usize, hi: usize) -> Option<(usize, usize)> {
    let page = page_size();
    let hi = hi.min(len);
    (lo < hi).then(|| ((addr + lo) / page * page, (addr + hi).div_ceil(page) * page))
}

#[cfg(unix)]
fn advise_pages(start: usize, end: usize, advice: libc::c_int) {
    // SAFETY: `start..end` lies inside a live mapping (the pager borrows its owner) and
    // is page-aligned (`whole_pages`). The advice is MADV_SEQUENTIAL/NORMAL (hints that
    // never change contents) or MADV_DONTNEED on a MAP_SHARED file mapping (callers check
    // `private`): the pages are dropped from this process's page tables, dirty bits move
    // to the page cache, and the next access faults the same bytes back in from the page
    // cache or the file. So no view ever observes a change.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, advice);
    }
}

impl InPager<'_> {
    /// Drops this process's pages of bytes `lo..hi` (whole pages only): the stream is
    /// done with them. Clean page-cache pages are then reclaimed first under pressure.
    pub(crate) fn release(&self, lo: usize, hi: usize) {
        self.drop_pages(lo, hi);
        self.evict_behind(lo, hi);
    }
}

impl OutPager<'_> {
    /// Writes `bytes` at byte `lo` of the map through the file (`pwrite`), not the map:
    /// whole pages written so go into the page cache without being read first, which
    /// writing through the map of a dense file does. The map sees them (one page cache).
    ///
    /// # Errors
    /// The I/O error of the write (e.g. `ENOSPC`), with the path.
    pub(crate) fn write_at(&self, lo: usize, bytes: &[u8]) -> Result<(), Error> {
        let at = self.file_offset + lo as u64;
        let end = at + bytes.len() as u64;
        // Never past the end: a file truncated behind the locks must not grow back (the
        // map would fault there: the same error as a prefault gives).
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io(self.path, "inspect", e))?
            .len();
        if end > len {
            return Err(self.truncated(at, end));
        }
        self.write_checked(at, bytes, len)
    }

    /// The error for a file found shorter than its map.
    fn truncated(&self, at: u64, end: u64) -> Error {
        Error::Unreadable {
            path: self.path.to_path_buf(),
            bytes: at..end,
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than its map",
            ),
        }
    }

    /// Writes `bytes` at file offset `at` of a file found `len` bytes long just before.
    fn write_checked(&self, at: u64, bytes: &[u8], len: u64) -> Result<(), Error> {
        let end = at + bytes.len() as u64;
        // Blocks first: a full disk fails here, before any byte of the piece is written.
        super::file::reserve_keep_size(self.file, at, end)
            .map_err(|e| Error::io(self.path, "reserve space in", e))?;
        super::file::write_all_at(self.file, bytes, at)
            .map_err(|e| Error::io(self.path, "write", e))?;
        // A truncation between the length check and the write makes the write grow the
        // file back (a hole of zeros, then the piece): look again, and cut what the write
        // added. (A truncation after the write leaves the file at most `end` long.)
        let now = self
            .file
            .metadata()
            .map_err(|e| Error::io(self.path, "inspect", e))?
            .len();
        let map_end = self.file_offset + self.len as u64;
        if now < map_end {
            if now == end && len > end {
                self.file
                    .set_len(at)
                    .map_err(|e| Error::io(self.path, "cut back", e))?;
            }
            return Err(self.truncated(at, end));
        }
        Ok(())
    }

    /// Whether pieces may go through [`write_at`](Self::write_at): a shared map (a
    /// copy-on-write map's writes must never reach the file) on Linux, and a file-size
    /// limit (`RLIMIT_FSIZE`, which `pwrite` obeys and writes through a map do not) that
    /// allows the whole map.
    pub(crate) fn can_write_at(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `getrlimit` writes one `rlimit`, which `lim` is.
            let rc = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) };
            let end = self.file_offset + self.len as u64;
            !self.private && rc == 0 && (lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= end)
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// A helper thread that starts write-back of the ranges handed to it (see
    /// [`WriteBehind`]), so that the stream's thread does not pay for submitting the I/O;
    /// `None` where there is no `sync_file_range` or no thread can be made.
    pub(crate) fn write_behind(&self) -> Option<WriteBehind> {
        if self.private {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let file = self.file.try_clone().ok()?;
            let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
            std::thread::Builder::new()
                .name("ndarray-mmap write-behind".into())
                .spawn(move || {
                    for (at, len) in rx {
                        // SAFETY: a plain system call on the thread's own descriptor (a
                        // duplicate, open until the thread ends); it reads no memory of
                        // ours. Errors show up again in `flush`.
                        unsafe {
                            libc::sync_file_range(
                                file.as_raw_fd(),
                                at as libc::off64_t,
                                len as libc::off64_t,
                                libc::SYNC_FILE_RANGE_WRITE,
                            );
                        }
                    }
                })
                .ok()?;
            Some(WriteBehind {
                tx,
                file_offset: self.file_offset,
            })
        }
        #[cfg(not(target_os = "linux"))]
        None
    }

    /// Starts writing bytes `lo..hi` back to the file without waiting
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux; nothing elsewhere).
    #[cfg_attr(not(target_os = "linux"), allow(clippy::needless_return))]
    pub(crate) fn start_writeback(&self, lo: usize, hi: usize) {
        if self.private || lo >= hi {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain system call on an open file descriptor; it reads no memory
            // of ours. Errors show up again in `finish_writeback` (WAIT) or `flush`.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    (self.file_offset + lo as u64) as libc::off64_t,
                    (hi - lo) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
    }

    /// Waits until bytes `lo..hi` are written back, then drops this process's pages of
    /// them: the stream will not touch them again, and they are now clean.
    ///
    /// # Errors
    /// The I/O error write-back reported (e.g. `EIO`, `ENOSPC`), with the path.
    pub(crate) fn finish_writeback(&self, lo: usize, hi: usize) -> Result<(), Error> {
        if self.private || lo >= hi {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: as in `start_writeback`.
            let rc = unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    (self.file_offset + lo as u64) as libc::off64_t,
                    (hi - lo) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            if rc != 0 {
                return Err(Error::io(
                    self.path,
                    "write back",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            // No sync_file_range: msync(MS_SYNC) on the pages holding the range.
            let page = page_size();
            let start = (self.addr + lo) / page * page;
            let end = (self.addr + hi).div_ceil(page) * page;
            // SAFETY: `start..end` is page-aligned and lies inside the live mapping (the
            // pages holding bytes lo..hi); msync only writes dirty pages to the file.
            let rc = unsafe { libc::msync(start as *mut libc::c_void, end - start, libc::MS_SYNC) };
            if rc != 0 {
                return Err(Error::io(
                    self.path,
                    "write back",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = self.file;
        self.drop_pages(lo, hi);
        self.evict_behind(lo, hi);
        Ok(())
    }
}

/// Starts writing all of `file` back to the disk without waiting
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux; nothing elsewhere), so that a sync
/// later finds the work done or under way: a file written whole and synced only at the end
/// of a job (a compressed Zarr chunk) then reaches the disk while the job goes on.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn start_file_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on an open file descriptor; it reads no memory of
        // ours. Errors show up again in the sync that follows.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Reads `buf.len()` bytes at `offset` of `file`. With `leave_cold` (a bounded stream
/// reading a compressed chunk's stored bytes, once), bytes that were not all in the page
/// cache before are dropped from it after the read, so that the stream's memory stays
/// bounded and a file that was cached stays cached. Linux only: `cachestat` (6.5) tells
/// what is cached without reading (a read with `RWF_NOWAIT` starts the read-ahead of what
/// is missing, and on a fast disk then succeeds); where it is missing, the bytes are
/// dropped after every read.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn read_once_at(
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
    leave_cold: bool,
) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if leave_cold && !buf.is_empty() {
        let len = buf.len() as u64;
        let was_cached = all_cached(file, offset, len);
        super::file::read_exact_at(file, buf, offset)?;
        if !was_cached {
            // A range that reaches the end of the file is dropped to the end (0): the
            // kernel skips a folio only partly in the range, and the last one reaches past
            // the end.
            let end = offset.saturating_add(len);
            let to_end = file.metadata().is_ok_and(|m| end >= m.len());
            drop_cached(file, offset, if to_end { 0 } else { len });
        }
        return Ok(());
    }
    let _ = leave_cold;
    super::file::read_exact_at(file, buf, offset)
}

/// One `pread` of up to `buf.len()` bytes at `offset` of `file` (0 at its end); with
/// `leave_cold`, the pages read are dropped from the page cache after (a bounded stream's
/// stored bytes, read once; the caller knows they were not cached before).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn read_some_at(
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
    leave_cold: bool,
) -> std::io::Result<usize> {
    let n = super::file::read_at(file, buf, offset)?;
    if leave_cold && n > 0 {
        // Everything up to here, from the start: a large folio that straddled an earlier
        // range is dropped once the reads have passed it (pages gone already cost nothing).
        drop_from_cache(file, 0, offset + n as u64);
    }
    Ok(n)
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)` of bytes `offset..offset + len` (`len` 0: to the
/// end) of `file`; nothing off Linux.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn drop_from_cache(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    drop_cached(file, offset, len);
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Whether bytes `offset..offset + len` of `file` are all in the page cache (Linux 6.5
/// `cachestat`; `false` where it cannot tell).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn all_cached(file: &std::fs::File, offset: u64, len: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        let page = page_size() as u64;
        let pages = (offset + len).div_ceil(page) - offset / page;
        cached_pages(file, offset, len).is_some_and(|n| n >= pages)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        false
    }
}

/// Pages of bytes `offset..offset + len` of `file` in the page cache (`cachestat`, Linux
/// 6.5; `None` before).
#[cfg(target_os = "linux")]
fn cached_pages(file: &std::fs::File, offset: u64, len: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    // The number of the generic system call table (x86_64, arm64, riscv64, ...); MIPS and
    // x32 number it otherwise: there the bytes read are taken as not cached.
    if cfg!(any(target_arch = "mips", target_arch = "mips64"))
        || cfg!(all(target_arch = "x86_64", target_pointer_width = "32"))
    {
        return None;
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: offset, len };
    let mut st = Stat::default();
    // SAFETY: cachestat reads one range struct and writes one stat struct, both live and
    // laid out as the kernel's (`repr(C)`, five and two u64).
    let rc = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range, &mut st, 0u32) };
    (rc == 0).then_some(st.cache)
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)` of bytes `offset..offset + len` (`len` 0: to the
/// end) of `file`.
#[cfg(target_os = "linux")]
fn drop_cached(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on an open descriptor; it reads no memory of ours.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
}

/// Bytes `lo..hi` of `file` (a file being written in order): with `wait`, written back
/// (waiting) and dropped from the page cache; else their write-back started. A write-back
/// error is returned (the wait consumes it). Nothing off Linux.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn write_back_range(
    file: &std::fs::File,
    lo: u64,
    hi: u64,
    wait: bool,
) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if lo < hi {
        use std::os::fd::AsRawFd;
        let how = match wait {
            true => {
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER
            }
            false => libc::SYNC_FILE_RANGE_WRITE,
        };
        // SAFETY: a plain system call on an open file descriptor; it reads no memory of ours.
        let rc = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                lo as libc::off64_t,
                (hi - lo) as libc::off64_t,
                how,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if wait {
            drop_cached(file, lo, hi - lo);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, lo, hi, wait);
    Ok(())
}

/// Writes `file` back to the disk and waits for it, then drops its pages from the page
/// cache (a compressed chunk a bounded stream wrote, on the thread that wrote it); nothing
/// off Linux. A write-back error is returned (and the pages kept): the wait consumes it,
/// so a later `fsync` through another descriptor would not see it.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn write_back_and_drop(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: a plain system call on an open file descriptor; it reads no memory of ours.
        if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, all) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        drop_cached(file, 0, 0);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file truncated between the length check of a piece written through the file and
    /// the write is not grown back: the piece is cut off again and the stream stops.
    #[cfg(all(target_os = "linux", not(miri)))] // files and system calls
    #[test]
    fn a_write_after_a_truncation_does_not_grow_the_file_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.f32");
        // SAFETY: a new file of this test's, which nothing else changes.
        let mut out = unsafe { crate::MapOptions::new().create::<f32>(&path, [4096]) }.unwrap();
        let (_, pager) = out.stream_parts_mut();
        assert!(pager.write_at(8192, &[1u8; 4096]).is_ok());
        // The truncation lands after the check: the write comes as it would then.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8192)
            .unwrap();
        let err = pager.write_checked(8192, &[2u8; 4096], 16384).unwrap_err();
        assert!(matches!(err, Error::Unreadable { .. }), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        assert!(matches!(
            pager.write_at(12288, &[3u8; 4096]),
            Err(Error::Unreadable { .. })
        ));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
    }

    #[test]
    fn whole_pages_rounds_inward_except_at_the_ends() {
        let p = page_size();
        let addr = 10 * p + 100; // a map starting mid-page (offset not page-aligned)
        let len = 5 * p;
        assert_eq!(whole_pages(addr, len, 0, len), Some((10 * p, 16 * p)));
        // the first partial page is kept unless lo == 0
        assert_eq!(whole_pages(addr, len, 1, len), Some((11 * p, 16 * p)));
        // a range inside one page is no whole page
        assert_eq!(whole_pages(addr, len, 10, 20), None);
        assert_eq!(whole_pages(addr, len, 0, p), Some((10 * p, 11 * p)));
        assert_eq!(whole_pages(addr, len, 5, 5), None);
        assert_eq!(whole_pages(addr, len, 0, 0), None);
    }
}
