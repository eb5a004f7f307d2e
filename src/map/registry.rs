//! Which file bytes each live map of this process shows: a table from address ranges to
//! (file identity, byte range), so that the operations can tell when an input and an
//! output are views of the same bytes of one file, even through two different maps or
//! views of them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::FileId;

struct Live {
    /// Which registration this is (addresses are reused after an unmap).
    key: u64,
    addr: usize,
    len: usize,
    id: FileId,
    offset: u64,
    path: PathBuf,
    private: bool,
}

static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// A map's entry in the table, removed when this is dropped (which must happen before
/// the map is unmapped).
#[derive(Debug)]
pub(crate) struct Registration {
    /// 0 for an empty map, which is not entered.
    key: u64,
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Registration {
    /// Enters the `len` bytes at `addr`, which show bytes `offset..` of file `id`.
    pub(crate) fn new(
        addr: usize,
        len: usize,
        id: FileId,
        offset: u64,
        path: &Path,
        private: bool,
    ) -> Registration {
        if len == 0 {
            // Nothing to overlap.
            return Registration { key: 0 };
        }
        let key = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut live) = LIVE.lock() {
            live.push(Live {
                key,
                addr,
                len,
                id,
                offset,
                path: path.to_path_buf(),
                private,
            });
        }
        Registration { key }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.key == 0 {
            return;
        }
        if let Ok(mut live) = LIVE.lock()
            && let Some(i) = live.iter().position(|l| l.key == self.key)
        {
            live.swap_remove(i);
        }
    }
}

/// Where memory bytes `lo..hi` lie in a mapped file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) id: FileId,
    pub(crate) bytes: Range<u64>,
    pub(crate) path: PathBuf,
    /// A copy-on-write map: its writes never reach the file.
    pub(crate) private: bool,
}

/// The file bytes that memory `lo..hi` shows, if it lies in a live map.
pub(crate) fn locate(lo: usize, hi: usize) -> Option<Located> {
    let live = LIVE.lock().ok()?;
    live.iter()
        .find(|l| l.addr <= lo && hi <= l.addr + l.len)
        .map(|l| Located {
            id: l.id,
            bytes: l.offset + (lo - l.addr) as u64..l.offset + (hi - l.addr) as u64,
            path: l.path.clone(),
            private: l.private,
        })
}
