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
    /// `zarr.json` is not valid JSON.
    Json {
        /// The parser's message.
        message: String,
    },
    /// `zarr_format` is not 3.
    NotV3Array {
        /// What was found, e.g. `"zarr_format 2"`.
        found: String,
    },
    /// A Zarr v2 array or group: a directory with `.zarray` or `.zgroup` and no
    /// `zarr.json`. The message says how to convert it with zarr-python 3.
    V2 {
        /// `.zgroup` rather than `.zarray`.
        group: bool,
    },
    /// `zarr.json` describes a group (`"node_type": "group"`), not an array.
    Group {
        /// The arrays its consolidated metadata lists (paths inside the group), if any.
        arrays: Vec<String>,
    },
    /// A field of `zarr.json` holds a value the spec does not allow.
    Malformed {
        /// The field, e.g. `codec "sharding_indexed" index_location`.
        field: String,
        /// The value as written (strings quoted, long values cut).
        found: String,
        /// What the spec allows there.
        expected: String,
    },
    /// A field the spec requires is missing.
    Missing {
        /// The field, e.g. `chunk_grid chunk_shape`.
        field: String,
    },
    /// A codec this crate cannot decode (`blosc`, `vlen-utf8`, an unknown one): the
    /// chunks cannot be read.
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
    /// A chunk grid, chunk key encoding, codec setting or storage transformer this crate
    /// does not support.
    Unsupported {
        /// What, e.g. `"chunk_grid \"rectangular\""`.
        what: String,
    },
    /// An extension field not marked `"must_understand": false`.
    MustUnderstand {
        /// The field's name.
        field: String,
    },
    /// `fill_value` cannot be read as the element type.
    FillValue {
        /// The value as written.
        found: String,
        /// The array's `data_type`.
        data_type: &'static str,
        /// What the spec allows for it.
        expected: String,
    },
    /// The shape and chunk shape disagree (lengths, a zero chunk length on an axis longer
    /// than 0), or a chunk or the array is too large to address.
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
    /// A stored chunk that its codecs cannot decode into exactly one chunk: damaged,
    /// truncated, of another size, or larger than its codecs can make of a chunk.
    Decode {
        /// The chunk's codecs after `bytes`, e.g. `zstd, crc32c`.
        codecs: String,
        /// What did not fit.
        detail: String,
    },
    /// A chunk its codecs could not encode (a compressor's own failure).
    Encode {
        /// The chunk's codecs after `bytes`.
        codecs: String,
        /// What the compressor said.
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

/// The zarr-python 3 lines that convert a v2 array to an uncompressed v3 one.
const CONVERT: &str = "src = zarr.open_array(\"old.zarr\", zarr_format=2); \
    zarr.from_array(\"new.zarr\", data=src, fill_value=src.fill_value, compressors=None, \
    zarr_format=3)";

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
                write!(f, "zarr.json is not valid JSON: {message}")
            }
            ZarrProblem::NotV3Array { found } => write!(
                f,
                "not a Zarr v3 array ({found}); only zarr_format 3 arrays map (write with zarr-python 3)"
            ),
            ZarrProblem::V2 { group: false } => write!(
                f,
                "a Zarr v2 array (.zarray, no zarr.json), not a Zarr v3 one, and only v3 arrays \
                 map: convert it with zarr-python 3: {CONVERT}"
            ),
            ZarrProblem::V2 { group: true } => write!(
                f,
                "a Zarr v2 group (.zgroup, no zarr.json), not a Zarr v3 array: convert one of \
                 its arrays with zarr-python 3 and open that: {CONVERT}"
            ),
            ZarrProblem::Group { arrays } => {
                f.write_str(
                    "zarr.json describes a Zarr group, not an array: open one of the arrays \
                     inside it (a directory with its own zarr.json)",
                )?;
                const SHOWN: usize = 8;
                for (i, a) in arrays.iter().take(SHOWN).enumerate() {
                    let lead = if i == 0 {
                        "; its consolidated metadata lists "
                    } else {
                        ", "
                    };
                    write!(f, "{lead}\"{a}\"")?;
                }
                if arrays.len() > SHOWN {
                    write!(f, " and {} more", arrays.len() - SHOWN)?;
                }
                Ok(())
            }
            ZarrProblem::Malformed {
                field,
                found,
                expected,
            } => write!(f, "{field} is {found}, but the spec allows only {expected}"),
            ZarrProblem::Missing { field } => {
                write!(f, "{field} is missing (the spec requires it)")
            }
            ZarrProblem::Codec { name } => write!(
                f,
                "codec \"{name}\" is not supported (zstd, gzip and crc32c are read; chunks without \
                 codecs after bytes map with no copy); write the array with zstd, or uncompressed \
                 (zarr.create_array(..., compressors=None), or dask's to_zarr(..., compressors=None))"
            ),
            ZarrProblem::DataType { found, expected } => write!(
                f,
                "data_type \"{found}\" is not the element type asked for ({expected})"
            ),
            ZarrProblem::Unsupported { what } => write!(f, "{what} is not supported"),
            ZarrProblem::MustUnderstand { field } => write!(
                f,
                "extension field \"{field}\" is not marked \"must_understand\": false, and this \
                 crate does not know it"
            ),
            ZarrProblem::FillValue {
                found,
                data_type,
                expected,
            } => write!(
                f,
                "fill_value {found} cannot be read as {data_type}: the spec allows {expected}"
            ),
            ZarrProblem::Shape { shape, chunk_shape } => {
                f.write_str("shape ")?;
                dims(f, shape)?;
                f.write_str(" and chunk shape ")?;
                dims(f, chunk_shape)?;
                if shape.len() != chunk_shape.len() {
                    f.write_str(" disagree: one chunk length per axis")
                } else if chunk_shape
                    .iter()
                    .zip(shape)
                    .any(|(&c, &n)| c == 0 && n != 0)
                {
                    f.write_str(
                        " disagree: a 0 chunk length is allowed only on an axis of length 0",
                    )
                } else {
                    f.write_str(": a chunk or the array is too large to address (more than isize::MAX bytes)")
                }
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
            ZarrProblem::Decode { codecs, detail } => write!(
                f,
                "the stored chunk (codecs {codecs}) cannot be decoded: {detail}"
            ),
            ZarrProblem::Encode { codecs, detail } => {
                write!(f, "the chunk cannot be encoded (codecs {codecs}): {detail}")
            }
            ZarrProblem::ChunkSize { expected, found } => write!(
                f,
                "the chunk file holds {found} bytes, not the {expected} of an uncompressed chunk"
            ),
        }
    }
}
