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
//! The rank can be a type: `MmapArray::<f32, Ix2>::open(path, [-1, 24])` lends
//! `ArrayView2` (a wrong rank is an `Err`); [`mmap_array`] lends `ArrayViewD`.
//!
//! # What is here
//! - Owners: [`MmapArray`] (read-only) and [`MmapArrayMut`] (read-write, copy-on-write, or
//!   new) hold a map and lend views; they grow and [`append`](MmapArrayMut::append) rows,
//!   written before they are counted. [`MapOptions`] sets offsets, lengths, order, hints,
//!   locks. [`bytes`] is the pure layer (bytes + shape + order → a view; no I/O).
//! - `.npy` ([`open_npy`], [`create_npy`], [`write_npy`], [`NpyHeader`]) both ways with
//!   numpy; `.npz` archives ([`open_npz`], [`NpzWriter`], feature `npz`); Zarr v3 arrays
//!   chunk by chunk ([`zarr`], feature `zarr`), for dask and zarr-python.
//! - [`ops`]: the streaming engine. Elementwise functions ([`add_into`], [`map_into`], the
//!   in-place [`ops::add_assign`] family), [`ops::Zip`] (any formula over 1-6 operands:
//!   `for_each`, `fold`, `map_assign_into`), reductions ([`ops::sum`], [`ops::sum_axis`],
//!   ...), over views, maps and whole Zarr arrays alike, with memory bounded whatever the
//!   size ([`ops::Paging`]).
//! - [`Error`]: the one error type; every message names the path, the numbers at fault
//!   and, for an OS error, why.
//!
//! ```
//! use ndarray_mmap::{create_array, ops::{self, Zip}};
//! # let dir = tempfile::tempdir()?;
//! let a = ndarray::Array1::from_iter((0..1000).map(|i| i as f32));
//! let mut c = unsafe { create_array::<f32>(dir.path().join("c.f32"), [1000]) }?;
//! Zip::from(&a).map_assign_into(&mut c, |&x| 2.0 * x)?;      // streamed into the file
//! assert_eq!(ops::sum(&c)?, 999_000.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Safety
//! Mapping a file is `unsafe`: another process could truncate the file (reads would
//! fault with SIGBUS) or change it under a `&[T]`. The constructors are `unsafe fn` with
//! a `# Safety` section, as in memmap2; everything after construction is safe. Every map
//! holds an advisory shared lock; a file is replaced only by a complete new one renamed
//! over it, never while others map it; files only ever grow while mapped, and appended
//! rows are written before they are counted (see the README's "Reliability" section).
//! `unsafe` code lives in the file layer (`map/`), in the Zarr layer's calls of the map
//! constructors, and in the call of the AVX2 build of the elementwise loops.
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

/// The README's code blocks, compiled as doc tests (with every feature: one block is Zarr).
#[cfg(all(doctest, feature = "zarr", feature = "npz"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
