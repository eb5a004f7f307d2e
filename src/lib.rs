//! Memory-mapped files as ordinary [`ndarray`] arrays.
//!
//! Map a file in one call and get an [`ArrayView`](ndarray::ArrayView): nothing is copied
//! or read up front, pages load on demand, clean pages are evicted under memory pressure
//! without touching swap, arrays can be bigger than RAM, writes reach the file page by
//! page, and other programs mapping the same file see them.
//!
//! ```
//! use ndarray_mmap::{create_array, mmap_array, MapOptions, Order};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("a.f32");
//!
//! // Create a 1000 × 24 array of f32 in a new file (zero-filled, disk space reserved) and fill it.
//! let mut a = unsafe { create_array::<f32>(&path, [1000, 24]) }?;
//! a.view_mut().fill(0.5);
//! a.close()?; // flush, unmap, unlock; errors are reported, not lost in Drop
//!
//! // Map it again read-only; -1 is inferred from the file's length.
//! let a = unsafe { mmap_array::<f32>(&path, [-1, 24]) }?;
//! assert_eq!(a.shape(), &[1000, 24]);
//! let v = a.view(); // an ordinary ArrayViewD<f32>: every ndarray operation works
//! assert_eq!(v.sum(), 12_000.0);
//! assert_eq!(v.index_axis(ndarray::Axis(1), 3).mean(), Some(0.5));
//!
//! // Part of a file, Fortran order, through the options builder.
//! let part = unsafe { MapOptions::new().offset(96).len(960).order(Order::F).open::<f32>(&path, [-1, 4]) }?;
//! assert_eq!(part.shape(), &[60, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//! - [`bytes`]: the pure layer, bytes + shape + order → views, with every check; no I/O.
//! - [`npy`]: `.npy` headers parsed from and written to bytes ([`NpyHeader`]); no I/O.
//!   [`open_npy`], [`open_npy_mut`] and [`create_npy`] map `.npy` files that numpy reads
//!   and writes.
//! - [`MapOptions`], [`MmapArray`], [`MmapArrayMut`]: the owners that hold a map and lend
//!   views; the only code with `unsafe` (besides the call of the AVX2 build of the
//!   elementwise loops, once the CPU is found to have it).
//! - [`ops`]: elementwise math ([`add_into`] and its family, [`zip_map_into`],
//!   [`map_into`], the in-place [`ops::add_assign`] family for `a += b`) and reductions, on any ndarray views or streaming through mapped files
//!   with bounded memory.
//! - [`Error`]: the one error type; every message names the path and the numbers at fault.
//!
//! # Safety
//! Mapping a file is `unsafe`: another process could truncate the file (reads would
//! fault with SIGBUS) or change it under a `&[T]`. The constructors are `unsafe fn` with
//! a `# Safety` section, as in memmap2; everything after construction is safe. Every map
//! holds an advisory shared lock; a file is replaced only by a complete new one renamed
//! over it, never while others map it; files only ever grow while mapped, and appended
//! rows are written before they are counted (see the README's "Reliability" section).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod bytes;
mod element;
mod error;
#[allow(unsafe_code)]
mod map;
pub mod npy;
pub mod ops;
mod shape;
#[cfg(feature = "zarr")]
#[cfg_attr(docsrs, doc(cfg(feature = "zarr")))]
#[allow(unsafe_code)]
pub mod zarr;

pub use element::Element;
pub use error::{Error, GrowProblem, NpzProblem, ShapeProblem, ZarrProblem};
pub use map::{
    Advice, MapOptions, MmapArray, MmapArrayMut, create_array, create_npy, mmap_array,
    mmap_array_mut, open_npy, open_npy_mut, write_npy,
};
#[cfg(feature = "npz")]
#[cfg_attr(docsrs, doc(cfg(feature = "npz")))]
pub use map::{Npz, NpzWriter, open_npz};
pub use npy::{NpyHeader, NpyProblem};
pub use ops::{StreamOptions, add_into, div_into, map_into, mul_into, sub_into, zip_map_into};
pub use shape::{Order, ShapeArg};
