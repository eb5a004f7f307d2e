//! The file layer's system calls on Windows (`GetFileInformationByHandle`, `MoveFileExW`,
//! positioned reads and writes); what Windows lacks (unnamed files, reservation, FIFOs,
//! owners) is a no-op or `None`.

use super::FileId;
use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

#[repr(C)]
#[derive(Default)]
struct ByHandleFileInformation {
    attributes: u32,
    times: [u32; 6],
    volume_serial: u32,
    size_high: u32,
    size_low: u32,
    links: u32,
    index_high: u32,
    index_low: u32,
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn GetFileInformationByHandle(file: *mut c_void, info: *mut ByHandleFileInformation) -> i32;
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn MoveFileExW(from: *const u16, to: *const u16, flags: u32) -> i32;
}

/// `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`: fails if `to` exists.
fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    let wide = |p: &Path| -> Vec<u16> { p.as_os_str().encode_wide().chain([0]).collect() };
    let (f, t) = (wide(from), wide(to));
    // SAFETY: both are NUL-terminated UTF-16 strings that outlive the call.
    if unsafe { MoveFileExW(f.as_ptr(), t.as_ptr(), 0) } != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(super) fn identity(file: &File) -> io::Result<FileId> {
    let mut info = ByHandleFileInformation::default();
    // SAFETY: the handle is open (borrowed from `file`) and `info` is a valid,
    // exclusively borrowed BY_HANDLE_FILE_INFORMATION for the call.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileId {
        dev: u64::from(info.volume_serial),
        ino: (u64::from(info.index_high) << 32) | u64::from(info.index_low),
    })
}

/// The identity of what `path` names now.
pub(super) fn identity_of_path(path: &Path) -> Option<io::Result<FileId>> {
    Some(File::open(path).and_then(|f| identity(&f)))
}

/// `oo` as it is (Windows has no FIFOs to block on).
pub(super) fn nonblocking(oo: &OpenOptions) -> OpenOptions {
    oo.clone()
}

/// No special file types beyond directories here.
pub(super) fn special_kind(_: &std::fs::FileType) -> Option<&'static str> {
    None
}

/// Owners are not copied on Windows.
pub(super) fn take_owner(_: &File, _: &std::fs::Metadata) {}

/// No unnamed files on Windows.
pub(super) fn open_unnamed(_: &Path) -> Option<File> {
    None
}

/// No unnamed files on Windows.
pub(super) fn link_unnamed(_: &File, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Moves `from` to `to` unless `to` exists, atomically.
pub(super) fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    move_no_replace(from, to)
}

/// Directories are not synced on Windows.
pub(super) fn open_dir(_: &Path) -> Option<File> {
    None
}

/// No reservation on Windows: files stay sparse until written.
pub(super) fn fallocate(_: &File, _: u64, _: u64, _: bool) -> io::Result<()> {
    Ok(())
}

/// Writes all of `buf` at `offset`.
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    let (mut buf, mut offset) = (buf, offset);
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One positioned read of up to `buf.len()` bytes (0 at the end of the file).
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::windows::fs::FileExt;
    match file.seek_read(buf, offset) {
        // Windows reports a read at or past the end as this error, not as 0 bytes.
        Err(e) if e.raw_os_error() == Some(38) => Ok(0),
        r => r,
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    let (mut buf, mut offset) = (buf, offset);
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
