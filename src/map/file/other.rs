//! The file layer on platforms other than Unix and Windows: plain `std`, no identity, no
//! reservation, no unnamed files, no positioned I/O beyond what `std` offers.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use super::FileId;

pub(super) fn identity(_: &File) -> io::Result<FileId> {
    Ok(FileId { dev: 0, ino: 0 })
}

pub(super) fn identity_of_path(_: &Path) -> Option<io::Result<FileId>> {
    None
}

pub(super) fn nonblocking(oo: &OpenOptions) -> OpenOptions {
    oo.clone()
}

pub(super) fn special_kind(_: &std::fs::FileType) -> Option<&'static str> {
    None
}

pub(super) fn take_owner(_: &File, _: &std::fs::Metadata) {}

pub(super) fn open_unnamed(_: &Path) -> Option<File> {
    None
}

pub(super) fn link_unnamed(_: &File, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

pub(super) fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    let _ = std::fs::remove_file(from);
    Ok(())
}

pub(super) fn open_dir(_: &Path) -> Option<File> {
    None
}

pub(super) fn fallocate(_: &File, _: u64, _: u64, _: bool) -> io::Result<()> {
    Ok(())
}

pub(super) fn write_all_at(_: &File, _: &[u8], _: u64) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

pub(super) fn read_at(_: &File, _: &mut [u8], _: u64) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

pub(super) fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
