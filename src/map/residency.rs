//! Which pages of a file were in the page cache when a stream first mapped it (`mincore`
//! records, a few files kept), so that a bounded stream drops only the pages it brought in.

use std::path::Path;

#[cfg(target_os = "linux")]
use super::pager::page_size;
#[cfg(target_os = "linux")]
use std::fs::File;

/// Which pages of each file a stream maps were in the page cache when it first mapped a
/// part of that file (one byte per page of the file, as `mincore` reports), keyed by
/// the file's device and inode: see [`Pages::snapshot_residency_in`].
///
/// It keeps the records of the last few files only (a record is 1/4096 of its file, and a
/// stream over many chunk files must not hold one for each): a file the stream comes back
/// to after that is recorded again. Files the stream itself created (an output's missing
/// chunks) are recorded as wholly uncached, whatever they hold by the time it maps them.
#[derive(Default)]
#[cfg_attr(any(not(feature = "zarr"), not(target_os = "linux")), allow(dead_code))] // used by Zarr operands, on Linux
pub(crate) struct Residency {
    /// (device, inode) and record, the most recently used last.
    recent: Vec<((u64, u64), Vec<u8>)>,
    /// Files the stream created, by (device, inode).
    created: std::collections::HashSet<(u64, u64)>,
}

#[cfg_attr(any(not(feature = "zarr"), not(target_os = "linux")), allow(dead_code))] // used by Zarr operands, on Linux
impl Residency {
    /// Records of this many files are kept.
    const FILES: usize = 4;

    /// The stream created the file at `path`: none of its pages were cached before it.
    pub(crate) fn created(&mut self, path: &Path) {
        #[cfg(unix)]
        if let Ok(m) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            self.created.insert((m.dev(), m.ino()));
        }
        #[cfg(not(unix))]
        let _ = path;
    }

    /// The record of the file `key` (`len` bytes), made now by `make` if it is not kept.
    #[cfg(target_os = "linux")]
    pub(super) fn of(
        &mut self,
        key: (u64, u64),
        len: u64,
        make: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<&[u8]> {
        let at = match self.recent.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let record = if self.created.contains(&key) {
                    vec![0u8; usize::try_from(len.div_ceil(page_size() as u64)).ok()?]
                } else {
                    make()?
                };
                if self.recent.len() == Self::FILES {
                    self.recent.remove(0);
                }
                self.recent.push((key, record));
                self.recent.len() - 1
            }
        };
        let entry = self.recent.remove(at);
        self.recent.push(entry);
        self.recent.last().map(|(_, r)| r.as_slice())
    }
}

/// Which pages of the first `len` bytes of `file` are in the page cache (`mincore` on a
/// map of them that is never read). `None` where that fails.
#[cfg(target_os = "linux")]
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
pub(super) fn file_residency(file: &File, len: u64) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the map is only handed to `mincore`, which reads no byte of it: a file
    // changed or truncated by others meanwhile cannot fault or race a read.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .len(usize::try_from(len).ok()?)
            .map(file)
    }
    .ok()?;
    let mut v = vec![0u8; map.len().div_ceil(page_size())];
    // SAFETY: `map` is a live mapping of `map.len()` bytes, page-aligned (mmap returns
    // whole pages); `v` has one byte per page of it, as `mincore` writes.
    let rc = unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, map.len(), v.as_mut_ptr()) };
    (rc == 0).then_some(v)
}

#[cfg(all(test, target_os = "linux", not(miri)))] // files and system calls
mod tests {
    use super::*;

    /// The records of a few files only are kept, the most recently used; a created file
    /// is recorded as uncached.
    #[cfg(all(target_os = "linux", not(miri)))] // files and system calls
    #[test]
    fn residency_keeps_a_few_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Residency::default();
        let len = 3 * page_size() as u64;
        let files: Vec<(File, (u64, u64))> = (0..6)
            .map(|i| {
                use std::os::unix::fs::MetadataExt;
                let p = dir.path().join(format!("{i}"));
                std::fs::write(&p, vec![1u8; 3 * page_size()]).unwrap();
                if i == 5 {
                    r.created(&p);
                }
                let f = File::open(&p).unwrap();
                let m = f.metadata().unwrap();
                (f, (m.dev(), m.ino()))
            })
            .collect();
        for (f, key) in &files {
            assert_eq!(
                r.of(*key, len, || file_residency(f, len)).map(<[u8]>::len),
                Some(3)
            );
        }
        assert_eq!(r.recent.len(), Residency::FILES);
        let (f, key) = &files[5];
        assert_eq!(
            r.of(*key, len, || file_residency(f, len)),
            Some(&[0u8; 3][..])
        );
        // Just written, so cached: a file the stream did not create is recorded as it is.
        let (f, key) = &files[4];
        assert!(
            r.of(*key, len, || file_residency(f, len))
                .unwrap()
                .iter()
                .all(|&b| b & 1 == 1)
        );
        assert_eq!(r.recent.last().map(|(k, _)| k), Some(key));
    }
}
