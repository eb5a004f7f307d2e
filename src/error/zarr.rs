//! [`ZarrProblem`]: why a Zarr array cannot be mapped, and its messages.

use std::fmt;

/// What is wrong with a Zarr v3 array for mapping; carried by [`Error::Zarr`](crate::Error::Zarr).
/// Each message says what to do instead where there is something to do.
///
/// ```
/// use ndarray_mmap::ZarrProblem;
/// let p = ZarrProblem::Codec { name: "zstd".into() };
/// assert!(p.to_string().contains("compressors=None"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZarrProblem {
    /// `zarr.json` is not valid JSON for a Zarr v3 array.
    Json {
        /// The parser's message.
        message: String,
    },
    /// `zarr_format` is not 3, or `node_type` is not `"array"`.
    NotV3Array {
        /// What was found, e.g. `"zarr_format 2"` or `"node_type group"`.
        found: String,
    },
    /// A codec that transforms the bytes (compression, checksums, sharding), or one this
    /// crate does not know: the chunks cannot be mapped.
    Codec {
        /// The codec's name.
        name: String,
    },
    /// The array's `data_type` is not the element type asked for.
    DataType {
        /// `data_type` in `zarr.json`.
        found: String,
        /// The Zarr name of the type asked for.
        expected: &'static str,
    },
    /// A chunk grid, chunk key encoding or storage transformer this crate does not support.
    Unsupported {
        /// What, e.g. `"chunk_grid rectangular"`.
        what: String,
    },
    /// An extension field marked `"must_understand": true`.
    MustUnderstand {
        /// The field's name.
        field: String,
    },
    /// `fill_value` cannot be read as the element type.
    FillValue {
        /// The value as written.
        found: String,
    },
    /// The shape and chunk shape disagree (lengths, a zero chunk length).
    Shape {
        /// The array's shape.
        shape: Vec<u64>,
        /// The chunk shape.
        chunk_shape: Vec<u64>,
    },
    /// A chunk index outside the grid.
    ChunkIndex {
        /// The index asked for.
        index: Vec<usize>,
        /// Chunks per axis.
        grid: Vec<usize>,
    },
    /// [`create`](crate::zarr::create) refuses to replace an existing array (replacing
    /// its many files cannot be made atomic): remove it first.
    Exists,
    /// A shard's index cannot be used: too short, a bad `crc32c`, an inner chunk outside
    /// the file.
    ShardIndex {
        /// What is wrong.
        detail: String,
    },
    /// A chunk file of the wrong size for an uncompressed chunk.
    ChunkSize {
        /// `prod(chunk_shape) × itemsize`.
        expected: u64,
        /// The file's size.
        found: u64,
    },
}

fn dims<T: fmt::Display>(f: &mut fmt::Formatter<'_>, d: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in d.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    f.write_str("]")
}

impl fmt::Display for ZarrProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZarrProblem::Json { message } => {
                write!(f, "zarr.json is not a valid Zarr v3 array: {message}")
            }
            ZarrProblem::NotV3Array { found } => write!(
                f,
                "not a Zarr v3 array ({found}); only zarr_format 3 arrays map (write with zarr-python 3)"
            ),
            ZarrProblem::Codec { name } => write!(
                f,
                "codec {name:?} changes the chunk bytes, so chunks cannot be mapped; write the array \
                 uncompressed (zarr.create_array(..., compressors=None), or dask's to_zarr(..., compressors=None))"
            ),
            ZarrProblem::DataType { found, expected } => write!(
                f,
                "data_type {found:?} is not the element type asked for ({expected})"
            ),
            ZarrProblem::Unsupported { what } => write!(f, "{what} is not supported"),
            ZarrProblem::MustUnderstand { field } => write!(
                f,
                "extension field {field:?} is marked must_understand, and this crate does not know it"
            ),
            ZarrProblem::FillValue { found } => {
                write!(f, "fill_value {found} cannot be read as the element type")
            }
            ZarrProblem::Shape { shape, chunk_shape } => {
                f.write_str("shape ")?;
                dims(f, shape)?;
                f.write_str(" and chunk shape ")?;
                dims(f, chunk_shape)?;
                f.write_str(" disagree (one chunk length per axis, none 0)")
            }
            ZarrProblem::ChunkIndex { index, grid } => {
                f.write_str("chunk ")?;
                dims(f, index)?;
                f.write_str(" lies outside the grid of ")?;
                dims(f, grid)?;
                f.write_str(" chunks")
            }
            ZarrProblem::Exists => f.write_str(
                "an array or group is already there (zarr.json or c/); remove it first: creating \
                 over it would replace its files one by one, not at once",
            ),
            ZarrProblem::ShardIndex { detail } => {
                write!(f, "the shard index cannot be used: {detail}")
            }
            ZarrProblem::ChunkSize { expected, found } => write!(
                f,
                "the chunk file holds {found} bytes, not the {expected} of an uncompressed chunk"
            ),
        }
    }
}
