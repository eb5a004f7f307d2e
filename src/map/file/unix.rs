//! The file layer's system calls on Unix (Linux adds `O_TMPFILE`, `renameat2` and
//! `fallocate`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use super::FileId;

/// The identity of an open file: device and inode.
pub(super) fn identity(file: &File) -> io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// The identity of what `path` names now.
pub(super) fn identity_of_path(path: &Path) -> Option<io::Result<FileId>> {
    use std::os::unix::fs::MetadataExt;
    Some(std::fs::metadata(path).map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    }))
}

/// `oo`, opening without blocking: opening a FIFO for reading would wait for a writer
/// (the caller then refuses it as not a regular file).
pub(super) fn nonblocking(oo: &OpenOptions) -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut oo = oo.clone();
    oo.custom_flags(libc::O_NONBLOCK);
    oo
}

/// The name of a special file type (FIFO, device, socket), if `ft` is one.
pub(super) fn special_kind(ft: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

/// Gives `file` the owner of `old` where we may (only root may give a file away; anyone
/// else keeps it, and it was theirs to replace).
pub(super) fn take_owner(file: &File, old: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
}

/// A new file without a name in directory `dir` (`O_TMPFILE`), where the kernel, the
/// filesystem and `/proc` (to link it later) allow.
pub(super) fn open_unnamed(dir: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if !Path::new("/proc/self/fd").is_dir() {
            return None;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o666)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}

/// Gives the unnamed file `file` the name `to`; fails if `to` exists.
pub(super) fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::io::AsRawFd;
        let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(io::Error::other)?;
        let to = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: both are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, to);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Moves `from` to `to` unless `to` exists, atomically.
pub(super) fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(e);
        }
    }
    // No RENAME_NOREPLACE (another Unix, or a filesystem without it): a hard link fails
    // just as atomically.
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

/// The directory `dir`, opened for syncing a new name in it.
pub(super) fn open_dir(dir: &Path) -> Option<File> {
    File::open(dir).ok()
}

/// Reserves disk blocks for bytes `from..to` (`fallocate`; nothing where the platform or
/// the filesystem cannot), extending the file unless `keep_size`.
pub(super) fn fallocate(file: &File, from: u64, to: u64, keep_size: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::io::AsRawFd;
        let too_big = || io::Error::from(io::ErrorKind::FileTooLarge);
        let offset = libc::off_t::try_from(from).map_err(|_| too_big())?;
        let len = libc::off_t::try_from(to - from).map_err(|_| too_big())?;
        let mode = if keep_size {
            libc::FALLOC_FL_KEEP_SIZE
        } else {
            0
        };
        loop {
            // SAFETY: `fallocate` touches no memory of ours; the descriptor is open for the
            // duration of the call because `file` is borrowed.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) };
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
        let _ = (file, from, to, keep_size);
        Ok(())
    }
}

/// Writes all of `buf` at `offset` (the file's position is not used).
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// One positioned read of up to `buf.len()` bytes (0 at the end of the file).
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match std::os::unix::fs::FileExt::read_at(file, buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}
