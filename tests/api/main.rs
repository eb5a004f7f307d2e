//! The library-level tests, in one libtest binary: mapping raw files (`mapping`), `.npy`
//! files alone (`npy`), their growth (`npy_growth`), interop with numpy (`npy_numpy`) and
//! the operations (`ops`) and the streaming `Zip`, axis reductions and chunks (`zip`),
//! Zarr arrays (`zarr`) and whole Zarr arrays streamed by the ops (`zarr_ops`). The process-level tests are in `tests/process/`.

mod mapping;
mod npy;
mod npy_growth;
mod npy_numpy;
mod npz;
mod ops;
mod python;
mod zarr;
mod zarr_ops;
mod zip;
