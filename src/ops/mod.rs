//! Elementwise arithmetic and reductions that stream through mapped files.
//!
//! Every function takes its operands in these forms:
//! - any ndarray array or view, of any layout (C, Fortran, sliced, strided, reversed):
//!   `add_into(&a.view(), &b.view(), &mut c.view_mut())`;
//! - the mapped owners [`MmapArray`](crate::MmapArray) and [`MmapArrayMut`](crate::MmapArrayMut): `add_into(&a, &b, &mut c)`.
//!   This is the streaming path: the work goes in chunks (8 MiB by default) in the
//!   output's file order, the kernel is told the inputs are read sequentially, input pages
//!   are dropped from the process once a chunk is done, and finished output chunks are
//!   written back while the next ones are computed (at most two chunks of dirty pages in
//!   flight). The process's resident memory stays at a few chunks whatever the array size.
//! - with the `zarr` feature, whole Zarr arrays ([`ZarrArray`](crate::zarr::ZarrArray),
//!   [`ZarrArrayMut`](crate::zarr::ZarrArrayMut)), streamed the same way region by region:
//!   each region lies inside one chunk of every Zarr operand, whose chunk is mapped when the
//!   stream reaches it (see [`Zip`]).
//!
//! Inputs broadcast to the output's shape as in numpy's `out=`; integer arithmetic wraps
//! (in debug and release builds alike) and never panics.
//!
//! In place, numpy's `a += b` on a memmap: [`add_assign`]`(&mut a, &b)` and its family,
//! [`zip_map_inplace`] and [`map_inplace`] take the output as their first operand and
//! stream the same way.
//!
//! ```
//! use ndarray::{array, Array2};
//! use ndarray_mmap::add_into;
//!
//! let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
//! let row = array![10.0f32, 20.0, 30.0];
//! let mut c = Array2::<f32>::zeros((2, 3));
//! add_into(&a, &row, &mut c)?; // the row is added to every row of `a`
//! assert_eq!(c, array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]);
//! # Ok::<(), ndarray_mmap::Error>(())
//! ```
//!
//! On files (the streaming path), with progress reported per chunk:
//! ```
//! use ndarray_mmap::{create_array, ops::{self, StreamOptions}};
//! use std::ops::ControlFlow;
//! # let dir = tempfile::tempdir()?;
//! let mut a = unsafe { create_array::<f32>(dir.path().join("a.f32"), [1000, 24]) }?;
//! let mut b = unsafe { create_array::<f32>(dir.path().join("b.f32"), [1000, 24]) }?;
//! let mut c = unsafe { create_array::<f32>(dir.path().join("c.f32"), [1000, 24]) }?;
//! a.view_mut().fill(1.0);
//! b.view_mut().fill(2.0);
//! let mut chunks = 0;
//! let opts = StreamOptions::new().chunk_bytes(8192).progress(|p| {
//!     chunks += 1;
//!     assert!(p.done <= p.total);
//!     ControlFlow::Continue(())
//! });
//! ops::add_into_with(&a, &b, &mut c, opts)?;
//! assert_eq!(chunks, 12); // 96 000 bytes in 8 KiB chunks
//! assert_eq!(ops::sum(&c)?, 72_000.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The tree: `options` (StreamOptions), `operand` (what the ops accept, alias check),
// `numeric` (element arithmetic), `plan` (pieces in memory order, paging per piece),
// `engine` (visits an output with its inputs), `elementwise` and `reduce` (the public
// functions on top of it).
#[macro_use]
mod engine;
mod chunks;
mod elementwise;
mod layout;
mod list;
mod numeric;
mod operand;
mod options;
mod overlap;
mod part;
mod plan;
mod reduce;
mod run;
#[allow(unsafe_code)]
mod simd;
mod view;
#[cfg(feature = "zarr")]
mod zarr;
#[cfg(feature = "zarr")]
mod zarr_encoded;
mod zip;
mod zip_dyn;

pub use chunks::{Chunks, chunks};
pub use elementwise::*;
pub use numeric::Numeric;
pub use operand::{IntoPart, Sink, Source};
pub use options::{DEFAULT_CHUNK_BYTES, Paging, Progress, StreamOptions};
pub use part::{Input, Output, Ro, Rw};
pub use reduce::*;
pub use zip::Zip;
pub use zip_dyn::{AnyElement, AnyView, AnyViewMut, ZipDyn};
