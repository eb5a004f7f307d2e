//! The memory a stream may use and how far the kernel reads ahead: `MemAvailable` and the
//! cgroup's room, a file's read-ahead window (its device's, or none for files kept in
//! memory). The model the engine sizes its chunks and chooses its policy by.

use std::fs::File;
use std::path::Path;

/// The memory a stream may use without pushing other pages out: the smaller of the
/// kernel's `MemAvailable` and what is left under the memory limits of this process's
/// cgroup and its ancestors (v2 `memory.max`, or v1 `memory.limit_in_bytes`). As
/// `MemAvailable` does, it counts clean page cache that nothing maps as room: the
/// kernel takes it back first. `None` where neither is known (then streams keep their
/// memory bounded).
pub(crate) fn memory_available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        let avail = meminfo.as_deref().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
        let cgroup = cgroup_room();
        match (avail, cgroup) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Whether memory this process takes anew is dear: this machine is a virtual machine whose
/// balloon device reports free pages to its host (virtio `VIRTIO_BALLOON_F_REPORTING`, with
/// the kernel's page reporting on), so freed pages are handed back to the host and every
/// one taken again costs a fault in the host. Measured here (`benches/policy_matrix.sh`,
/// `QUIET=1` switches the reporting off): writing 512 MiB of new output into the page cache
/// took 2-3x as long with it as recycling a few chunks of memory behind a stream, and
/// 0.75-0.8x as long without it. `false` where it cannot be told (not Linux).
pub(crate) fn fresh_memory_dear() -> bool {
    #[cfg(target_os = "linux")]
    {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let features = std::fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("features")).ok());
        reporting_on(
            read("/sys/module/page_reporting/parameters/page_reporting_order").as_deref(),
            read("/proc/buddyinfo").as_deref(),
            features,
        )
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// [`fresh_memory_dear`] from the texts it reads: the page reporting order (absent when the
/// kernel has no page reporting), `/proc/buddyinfo` (its columns are the block orders) and
/// the `features` of each virtio balloon device (a `0`/`1` per feature bit).
#[cfg(target_os = "linux")]
fn reporting_on(
    order: Option<&str>,
    buddyinfo: Option<&str>,
    mut features: impl Iterator<Item = String>,
) -> bool {
    const REPORTING: usize = 5; // VIRTIO_BALLOON_F_REPORTING
    // Blocks above the largest order do not exist: an order set above it (where the
    // kernel lets it be set) reports nothing.
    let largest = buddyinfo.and_then(|b| {
        let line = b.lines().next()?;
        let counts = line.split(',').nth(1)?.split_whitespace().skip(2).count();
        counts.checked_sub(1)
    });
    if let (Some(o), Some(max)) = (order.and_then(|o| o.trim().parse::<usize>().ok()), largest)
        && o > max
    {
        return false;
    }
    features.any(|f| f.as_bytes().get(REPORTING) == Some(&b'1'))
}

/// The least room left under the memory limit of this process's cgroup or any ancestor.
#[cfg(target_os = "linux")]
fn cgroup_room() -> Option<u64> {
    let table = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut room: Option<u64> = None;
    for line in table.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(rel)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        // The files, and memory.stat's keys for file pages: (inactive, active), then
        // those that cannot be dropped at once (mapped, dirty, under write-back).
        let (root, limit, usage, clean, busy) = if controllers.is_empty() {
            (
                "/sys/fs/cgroup",
                "memory.max",
                "memory.current",
                ["inactive_file", "active_file"],
                ["file_mapped", "file_dirty", "file_writeback"],
            )
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                ["total_inactive_file", "total_active_file"],
                ["total_mapped_file", "total_dirty", "total_writeback"],
            )
        } else {
            continue;
        };
        let mut dir = Path::new(root).join(rel.trim_start_matches('/'));
        loop {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            // "max" (v2) or a huge number (v1) means no limit at this level.
            if let (Some(max), Some(cur)) = (
                read(limit).and_then(|s| s.trim().parse::<u64>().ok()),
                read(usage).and_then(|s| s.trim().parse::<u64>().ok()),
            ) && max < 1 << 60
            {
                let stat = read("memory.stat").unwrap_or_default();
                let sum = |keys: &[&str]| -> u64 {
                    stat.lines()
                        .filter_map(|l| l.split_once(' '))
                        .filter(|(k, _)| keys.contains(k))
                        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
                        .fold(0, u64::saturating_add)
                };
                let reclaimable = sum(&clean).saturating_sub(sum(&busy));
                let left = max.saturating_sub(cur.saturating_sub(reclaimable));
                room = Some(room.map_or(left, |r| r.min(left)));
            }
            if dir.as_path() == Path::new(root) || !dir.pop() {
                break;
            }
        }
    }
    room
}

/// How many bytes the kernel may read ahead of a sequential reader of a file with
/// metadata `meta`: twice the `read_ahead_kb` of its backing device (the current
/// window, and the next one started asynchronously when the reader reaches its
/// marker). Those pages count against the cgroup's limit before the stream asks for
/// them, so the chunk size under a tight limit is chosen with them in mind (`ops`).
/// The device is `/sys/class/bdi/MAJ:MIN` (disks, NFS, FUSE), else its disk's queue in
/// `/sys/dev/block` (a partition). A file kept in memory (tmpfs, ramfs, procfs, sysfs:
/// `in_memory`) reads nothing ahead. Where no device is found for a file on storage
/// (overlayfs, whose pages are read through the file below, or btrfs, whose device is
/// named `btrfs-N`), the largest setting of any device; the kernel's default of 128 KiB
/// where nothing can be read.
pub(crate) fn read_ahead(meta: &std::fs::Metadata, in_memory: bool) -> u64 {
    const DEFAULT_KB: u64 = 128;
    if in_memory {
        return 0;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let kb = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        let dev = meta.dev();
        // glibc's gnu_dev_major / gnu_dev_minor.
        let (major, minor) = (
            ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
            (dev & 0xff) | ((dev >> 12) & !0xff),
        );
        let id = format!("{major}:{minor}");
        let block = Path::new("/sys/dev/block").join(&id);
        let found = kb(&Path::new("/sys/class/bdi").join(&id).join("read_ahead_kb"))
            .or_else(|| kb(&block.join("queue/read_ahead_kb")))
            .or_else(|| kb(&block.join("../queue/read_ahead_kb")))
            .or_else(|| {
                std::fs::read_dir("/sys/class/bdi")
                    .ok()?
                    .flatten()
                    .filter_map(|d| kb(&d.path().join("read_ahead_kb")))
                    .max()
            });
        2 * 1024 * found.unwrap_or(DEFAULT_KB).min(1 << 30)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = meta;
        2 * 1024 * DEFAULT_KB
    }
}

/// The system's page size (4096 where it cannot be asked).
/// [`read_ahead`] for `file`.
pub(crate) fn read_ahead_of(file: &File) -> u64 {
    #[cfg(target_os = "linux")]
    let in_memory = {
        use std::os::fd::AsRawFd;
        // SAFETY: `st` is a `libc::statfs` (all-zero bytes are a valid one), which
        // `fstatfs` fills for an open descriptor.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
        rc == 0 && in_memory_fs(st.f_type as i64)
    };
    #[cfg(not(target_os = "linux"))]
    let in_memory = false;
    file.metadata()
        .map_or(2 * 1024 * 128, |m| read_ahead(&m, in_memory))
}

/// [`read_ahead`] for the file at `path` (a directory will do: its files are on the same
/// file system).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // used by Zarr operands
pub(crate) fn read_ahead_at(path: &Path) -> u64 {
    File::open(path).map_or(2 * 1024 * 128, |f| read_ahead_of(&f))
}

/// Whether statfs's `f_type` names a file system that keeps its files in memory (tmpfs,
/// ramfs, procfs, sysfs).
#[cfg(target_os = "linux")]
fn in_memory_fs(f_type: i64) -> bool {
    const TMPFS: i64 = 0x0102_1994;
    const RAMFS: i64 = 0x8584_58f6;
    const PROC: i64 = 0x9fa0;
    const SYSFS: i64 = 0x6265_6572;
    [TMPFS, RAMFS, PROC, SYSFS].contains(&f_type)
}

#[cfg(all(test, target_os = "linux", not(miri)))] // files and system calls
mod tests {
    use super::*;

    #[test]
    fn free_page_reporting_is_told_from_the_balloon_features_and_the_order() {
        let buddy = "Node 0, zone   Normal    635   1409    864   1367   1034    964    851    664    487    241   2290\n";
        let on = || std::iter::once("01100101000000000000000000000000100000".to_string());
        let off = || std::iter::once("01100001000000000000000000000000100000".to_string());
        assert!(reporting_on(Some("9\n"), Some(buddy), on()));
        assert!(
            !reporting_on(Some("9\n"), Some(buddy), off()),
            "bit 5 clear"
        );
        assert!(
            !reporting_on(Some("9\n"), Some(buddy), std::iter::empty()),
            "no balloon"
        );
        assert!(
            !reporting_on(Some("11\n"), Some(buddy), on()),
            "order above the largest (10)"
        );
        assert!(
            reporting_on(Some("10\n"), Some(buddy), on()),
            "the largest order reports"
        );
        // Unknown order or orders: the balloon's word stands.
        assert!(reporting_on(None, None, on()));
        assert!(reporting_on(Some("-1"), Some(buddy), on()));
        // A short features string (an old device) has no bit 5.
        assert!(!reporting_on(
            Some("9"),
            Some(buddy),
            std::iter::once("011".to_string())
        ));
    }

    /// A file kept in memory (procfs here; tmpfs alike) reads nothing ahead; one on
    /// storage reads ahead something, whatever its device (an overlay's included).
    #[cfg(all(target_os = "linux", not(miri)))] // files and system calls
    #[test]
    fn read_ahead_of_a_file_kept_in_memory_is_none() {
        let f = File::open("/proc/self/status").unwrap();
        assert_eq!(read_ahead_of(&f), 0);
        assert_eq!(read_ahead_at(Path::new("/proc/self")), 0);
        let here = File::open(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(read_ahead_of(&here) > 0);
        assert!(read_ahead_at(Path::new(env!("CARGO_MANIFEST_DIR"))) > 0);
    }
}
