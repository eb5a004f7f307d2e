//! The library-level tests, in one libtest binary: mapping raw files (`mapping`), `.npy`
//! files alone (`npy`), their growth (`npy_growth`), interop with numpy (`npy_numpy`) and
//! the operations (`ops`) and the streaming `Zip`, axis reductions and chunks (`zip`),
//! Zarr arrays (`zarr`) and whole Zarr arrays streamed by the ops (`zarr_ops`). The process-level tests are in `tests/process/`.

mod mapping;
mod npy;
mod npy_growth;
mod npy_numpy;
mod npz;
mod ops;
mod python;
mod zarr;
mod zarr_ops;
mod zarr_safety;
mod zip;
mod zip_dyn;

/// Which pages of a file are in the page cache, and dropping them (Linux), for the tests
/// of what a bounded stream leaves cached. List files without reading them: reading
/// brings them in.
#[cfg(target_os = "linux")]
pub(crate) mod page_cache {
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// Pages of the file at `path` in the page cache, and all its pages.
    pub(crate) fn resident(path: &Path) -> (usize, usize) {
        let f = std::fs::File::open(path).unwrap();
        if f.metadata().unwrap().len() == 0 {
            return (0, 0);
        }
        // SAFETY: a read-only map of a test file nothing else changes; it is only asked
        // which of its pages are resident.
        let m = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        let pages = m.len().div_ceil(4096);
        let mut v = vec![0u8; pages];
        // SAFETY: `m` is a live mapping of `m.len()` bytes; `v` has a byte per page.
        assert_eq!(
            unsafe { libc::mincore(m.as_ptr() as *mut _, m.len(), v.as_mut_ptr()) },
            0
        );
        (v.iter().filter(|&&b| b & 1 == 1).count(), pages)
    }

    /// Bytes this thread has had read from storage (`/proc/thread-self/io`): other tests
    /// running at the same time do not count.
    pub(crate) fn read_bytes() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").expect("task I/O accounting");
        io.lines()
            .find_map(|l| l.strip_prefix("read_bytes: "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("a read_bytes line")
    }

    /// Writes `bytes` as the file at `path`, on the disk only: none of its pages left in
    /// the page cache (checked, so that a test of cold data never runs on warm data).
    pub(crate) fn write_cold(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
        drop_file(path);
        let (res, all) = resident(path);
        assert!(res * 20 < all, "eviction did not work here: {res} of {all}");
    }

    /// Writes the file's dirty pages and drops all its pages from the page cache.
    pub(crate) fn drop_file(path: &Path) {
        let f = std::fs::File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: a plain system call on an open descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}
