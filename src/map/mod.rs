//! The mapped-owner layer: owner types that hold a memory map and lend ndarray views,
//! the options builder, flush, hints and advisory locks. The only module with `unsafe`.
//!
//! - `options`: [`MapOptions`] and [`Advice`]; every map is requested, checked and made here.
//! - `owner`: [`MmapArray`] and [`MmapArrayMut`], the views they lend, flush and close.
//! - `npy`: the `.npy` constructors and [`write_npy`].
//! - `grow`: `grow` and `append`.
//! - `file`: open, identity, create aside and publish, reserve, pwrite.
//! - `lock`: the lock roles on bytes at 2^62.
//! - `registry`: this process's live maps, for the ops' alias check.
//! - `pager`: paging hooks for streaming (`madvise`, `sync_file_range`).

use std::path::Path;

use bytemuck::Pod;

use crate::error::Error;
use crate::shape::ShapeArg;

mod file;
mod grow;
pub(crate) mod lock;
mod npy;
#[cfg(feature = "npz")]
mod npz;
mod options;
mod owner;
pub(crate) mod pager;
pub(crate) mod registry;
pub(crate) mod residency;
pub(crate) mod room;

#[cfg(feature = "zarr")]
pub(crate) use npy::ReplacingWriter;
pub use npy::{create_npy, open_npy, open_npy_mut, write_npy};
#[cfg_attr(not(feature = "zarr"), allow(unused_imports))]
pub(crate) use npy::{read_small_file, write_file_new, write_file_replacing};
#[cfg(feature = "npz")]
pub use npz::{Npz, NpzWriter, open_npz};
pub use options::{Advice, MapOptions};
use options::{Region, check_align, create_shape};
use owner::Inner;
pub use owner::{MmapArray, MmapArrayMut};

pub(crate) use file::FileId;
#[cfg(feature = "zarr")]
pub(crate) use file::open_regular;
#[cfg(feature = "zarr")]
pub(crate) use file::{
    file_kind, identity_of_entry, identity_of_path, move_no_replace, probe_writable,
    remove_if_unused,
};
#[cfg(feature = "zarr")]
pub(crate) use file::{read_buffer, read_start};

/// Maps `path` read-only as an array of `T` with `shape`; one length may be `-1`,
/// inferred from the file's length. Shorthand for [`MapOptions::new().open(..)`](MapOptions::open).
///
/// # Safety
/// See [`MapOptions::open`]: the file must not be truncated or modified while mapped.
///
/// # Errors
/// See [`MapOptions::open`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// std::fs::write(&path, bytemuck::cast_slice(&[1f32; 48]))?;
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, 24]) }?;
/// assert_eq!(a.shape(), &[2, 24]);
/// assert_eq!(a.view().sum(), 48.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn mmap_array<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArray<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open(path, shape) }
}

/// Maps `path` read-write (shared with the file) as an array of `T` with `shape`.
/// Shorthand for [`MapOptions::new().open_mut(..)`](MapOptions::open_mut).
///
/// # Safety
/// See [`MapOptions::open_mut`].
///
/// # Errors
/// See [`MapOptions::open_mut`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("b.f64");
/// std::fs::write(&path, [0u8; 80])?;
/// let mut b = unsafe { ndarray_mmap::mmap_array_mut::<f64>(&path, [-1]) }?;
/// b.view_mut().fill(1.0);
/// b.flush()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn mmap_array_mut<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open_mut(path, shape) }
}

/// Creates (or atomically replaces) `path` as a zero-filled array of `T` with exactly `shape`, and
/// maps it read-write. Shorthand for [`MapOptions::new().create(..)`](MapOptions::create).
///
/// # Safety
/// See [`MapOptions::create`].
///
/// # Errors
/// See [`MapOptions::create`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("c.i32");
/// let mut c = unsafe { ndarray_mmap::create_array::<i32>(&path, [1000, 24]) }?;
/// c.view_mut()[[999, 23]] = -1;
/// c.close()?;
/// assert_eq!(std::fs::metadata(&path)?.len(), 96_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn create_array<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().create(path, shape) }
}
