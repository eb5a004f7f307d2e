//! `zarr.json` for Zarr v3 arrays: read with serde_json into a [`Value`], walked by hand so
//! that every refusal names the field and the value, then checked into a [`Layout`] this
//! crate can map (regular grid, `bytes` codec, optionally after a full `transpose`, or a lone
//! `sharding_indexed` of such inner chunks). No I/O, except [`v2_hint`].
//!
//! Extensions follow the v3.1 core spec: a codec, data type or chunk key encoding may be
//! written as a bare name (`"bytes"`), and a codec, storage transformer or top-level field
//! marked `"must_understand": false` that this crate does not know is ignored.

use std::path::Path;

use serde_json::{Map, Value};

use crate::element::Element;
use crate::error::ZarrProblem;
use crate::shape::Order;

use super::codec::{BLOSC_NAMES, BLOSC_SHUFFLES, Blosc, ByteCodec, Chain};

mod fill;
pub(crate) use fill::fill_json;
use fill::fill_value;

/// What the mapping layer needs from `zarr.json`, checked.
///
/// No chunk length is 0: the spec's regular grid wants lengths of at least 1, and
/// zarr-python writes `chunk_shape: [0]` for an axis of length 0. On such an axis (and only
/// there) a 0 reads as 1, so that the grid has 0 chunks along it and no code divides by 0.
#[derive(Debug, Clone)]
pub(crate) struct Layout<T> {
    pub(crate) shape: Vec<usize>,
    pub(crate) chunk: Vec<usize>,
    /// The element order inside each chunk file (`transpose` gives Fortran order).
    pub(crate) order: Order,
    /// What the stored bytes of a chunk (an inner chunk, with shards) went through after
    /// the elements were laid out: plain for chunks that map.
    pub(crate) codecs: Chain,
    pub(crate) fill: T,
    /// The default encoding's separator (`c/0/1`), or the v2 encoding's (`0.1`).
    pub(crate) separator: String,
    pub(crate) v2_keys: bool,
    /// Shards (`sharding_indexed`): then `chunk` is the inner chunk, the unit that maps,
    /// and the grid's chunk is the shard.
    pub(crate) shard: Option<Shard>,
}

/// A `sharding_indexed` codec whose inner chunks are plain `bytes`: each inner chunk is a
/// byte range of its shard's file, found through the shard's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    /// The shard shape (the regular grid's chunk shape), a multiple of the inner chunk.
    pub(crate) shape: Vec<usize>,
    /// The index (16 bytes per inner chunk, plus 4 for a `crc32c`) ends the file, or
    /// starts it.
    pub(crate) index_at_end: bool,
    pub(crate) crc: bool,
    /// Inner chunks per shard along each axis (`shape / inner chunk`, each at least 1).
    pub(crate) inner_grid: Vec<usize>,
    /// The index's bytes: 16 per inner chunk, plus 4 with `crc32c`. Checked when parsed:
    /// at most `i64::MAX` and `isize::MAX` (a file's largest size, and an allocation's).
    pub(crate) index_len: u64,
}

/// Codecs this crate recognises by name. A codec marked `"must_understand": false` is
/// ignored only when it is not one of these (a known compressor stays refused by name).
const KNOWN_CODECS: &[&str] = &[
    "bytes",
    "transpose",
    "sharding_indexed",
    "crc32c",
    "zstd",
    "gzip",
    "blosc",
    "vlen-utf8",
    "vlen-bytes",
];

/// Zarr v2 left behind: `Some` when `dir` holds `.zarray` or `.zgroup` (for the caller to
/// return when `dir/zarr.json` cannot be read), saying how to convert it.
pub(crate) fn v2_hint(dir: &Path) -> Option<ZarrProblem> {
    let there = |name: &str| std::fs::metadata(dir.join(name)).is_ok();
    if there(".zarray") {
        Some(ZarrProblem::V2 { group: false })
    } else if there(".zgroup") {
        Some(ZarrProblem::V2 { group: true })
    } else {
        None
    }
}

/// `v` as a person reads it in a message: strings in plain quotes, lists and objects
/// compact, cut after 60 characters.
fn show(v: &Value) -> String {
    fn put(v: &Value, out: &mut String) {
        if out.len() > 80 {
            return;
        }
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => {
                out.push('"');
                for c in s.chars().take(80) {
                    if c.is_control() {
                        out.extend(c.escape_default());
                    } else {
                        out.push(c);
                    }
                }
                out.push('"');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    put(x, out);
                    if out.len() > 80 {
                        break;
                    }
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    put(&Value::String(k.clone()), out);
                    out.push_str(": ");
                    put(x, out);
                    if out.len() > 80 {
                        break;
                    }
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    put(v, &mut out);
    if out.chars().count() > 60 {
        out = out.chars().take(57).collect::<String>() + "...";
    }
    out
}

fn malformed(field: impl Into<String>, found: &Value, expected: impl Into<String>) -> ZarrProblem {
    ZarrProblem::Malformed {
        field: field.into(),
        found: show(found),
        expected: expected.into(),
    }
}

fn missing(field: impl Into<String>) -> ZarrProblem {
    ZarrProblem::Missing {
        field: field.into(),
    }
}

/// An extension definition: a bare name, or `{"name", "configuration"?, "must_understand"?}`.
struct Ext<'a> {
    name: &'a str,
    conf: Option<&'a Map<String, Value>>,
    /// Marked `"must_understand": false`.
    optional: bool,
}

impl<'a> Ext<'a> {
    /// `v`, the extension at `field`.
    fn read(v: &'a Value, field: &str) -> Result<Self, ZarrProblem> {
        let m = match v {
            Value::String(name) => {
                return Ok(Ext {
                    name,
                    conf: None,
                    optional: false,
                });
            }
            Value::Object(m) => m,
            other => {
                return Err(malformed(
                    field,
                    other,
                    "a name, or an object with a \"name\"",
                ));
            }
        };
        let name = match m.get("name") {
            Some(Value::String(s)) => s,
            Some(other) => return Err(malformed(format!("{field} name"), other, "a string")),
            None => return Err(missing(format!("{field} name"))),
        };
        let conf = match m.get("configuration") {
            None => None,
            Some(Value::Object(c)) => Some(c),
            Some(other) => {
                return Err(malformed(
                    format!("{field} \"{name}\" configuration"),
                    other,
                    "an object",
                ));
            }
        };
        let optional = match m.get("must_understand") {
            None => false,
            Some(Value::Bool(b)) => !b,
            Some(other) => {
                return Err(malformed(
                    format!("{field} \"{name}\" must_understand"),
                    other,
                    "true or false",
                ));
            }
        };
        Ok(Ext {
            name,
            conf,
            optional,
        })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.conf.and_then(|c| c.get(key))
    }

    /// Refuses configuration keys other than `allowed` (they may change the meaning).
    fn only(&self, what: &str, allowed: &[&str]) -> Result<(), ZarrProblem> {
        match self
            .conf
            .and_then(|c| c.keys().find(|k| !allowed.contains(&k.as_str())))
        {
            Some(k) => Err(ZarrProblem::Unsupported {
                what: format!(
                    "{what} \"{}\" with the configuration key \"{k}\"",
                    self.name
                ),
            }),
            None => Ok(()),
        }
    }
}

/// The extensions of a list (`codecs`, `storage_transformers`), without those marked
/// `"must_understand": false` that are not in `known`.
fn ext_list<'a>(v: &'a Value, field: &str, known: &[&str]) -> Result<Vec<Ext<'a>>, ZarrProblem> {
    let Value::Array(items) = v else {
        return Err(malformed(field, v, "a list"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let e = Ext::read(item, &format!("{field}[{i}]"))?;
        if !e.optional || known.contains(&e.name) {
            out.push(e);
        }
    }
    Ok(out)
}

/// A list of whole numbers at least 0.
fn whole_numbers(v: &Value, field: &str) -> Result<Vec<u64>, ZarrProblem> {
    let expected = "a list of whole numbers, each at least 0";
    let Value::Array(items) = v else {
        return Err(malformed(field, v, expected));
    };
    items
        .iter()
        .map(|x| x.as_u64().ok_or_else(|| malformed(field, v, expected)))
        .collect()
}

fn dims(v: &[u64]) -> String {
    let parts: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The names of the arrays a group's consolidated metadata lists (no I/O: only what
/// `zarr.json` says).
fn consolidated_arrays(top: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Object(nodes)) = top
        .get("consolidated_metadata")
        .and_then(|c| c.get("metadata"))
    else {
        return Vec::new();
    };
    nodes
        .iter()
        .filter(|(_, n)| n.get("node_type").and_then(Value::as_str) == Some("array"))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Zarr's name for `T` (`"float32"`, ...), from its numpy descriptor.
pub(crate) fn zarr_type<T: Element>() -> &'static str {
    match &T::NPY_DESCR[1..] {
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "c8" => "complex64",
        "c16" => "complex128",
        _ => "unknown",
    }
}

/// The fields of an array's `zarr.json` the spec defines; any other is an extension.
const ARRAY_FIELDS: &[&str] = &[
    "zarr_format",
    "node_type",
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_key_encoding",
    "fill_value",
    "codecs",
    "attributes",
    "storage_transformers",
    "dimension_names",
];

/// Parses and checks `zarr.json` for elements of `T`.
pub(crate) fn parse<T: Element>(json: &[u8]) -> Result<Layout<T>, ZarrProblem> {
    let raw: Value = serde_json::from_slice(json).map_err(|e| ZarrProblem::Json {
        message: e.to_string(),
    })?;
    let Value::Object(top) = &raw else {
        return Err(malformed("zarr.json", &raw, "an object"));
    };
    // A version or node type other than a v3 array is named before the field checks.
    match top.get("zarr_format") {
        Some(n) if n.as_u64() == Some(3) => {}
        Some(Value::Number(n)) => {
            return Err(ZarrProblem::NotV3Array {
                found: format!("zarr_format {n}"),
            });
        }
        Some(other) => return Err(malformed("zarr_format", other, "the number 3")),
        None => return Err(missing("zarr_format")),
    }
    match top.get("node_type").ok_or_else(|| missing("node_type"))? {
        Value::String(t) if t == "array" => {}
        Value::String(t) if t == "group" => {
            return Err(ZarrProblem::Group {
                arrays: consolidated_arrays(top),
            });
        }
        other => return Err(malformed("node_type", other, "\"array\" or \"group\"")),
    }
    let field = |name: &str| top.get(name).ok_or_else(|| missing(name));
    for (name, v) in top {
        if ARRAY_FIELDS.contains(&name.as_str()) {
            continue;
        }
        // The spec: an extension may be ignored only when it says so.
        if v.get("must_understand") != Some(&Value::Bool(false)) {
            return Err(ZarrProblem::MustUnderstand {
                field: name.clone(),
            });
        }
    }
    if let Some(v) = top.get("storage_transformers")
        && let Some(t) = ext_list(v, "storage_transformers", &[])?.first()
    {
        return Err(ZarrProblem::Unsupported {
            what: format!("storage transformer \"{}\"", t.name),
        });
    }
    match top.get("attributes") {
        None | Some(Value::Object(_)) => {}
        Some(other) => return Err(malformed("attributes", other, "an object")),
    }
    let shape_raw = whole_numbers(field("shape")?, "shape")?;
    match top.get("dimension_names") {
        // zarr-python reads null as no names.
        None | Some(Value::Null) => {}
        Some(Value::Array(names))
            if names.len() == shape_raw.len()
                && names.iter().all(|n| n.is_string() || n.is_null()) => {}
        Some(other) => {
            return Err(malformed(
                "dimension_names",
                other,
                format!(
                    "a list of {} names (strings or null), one per axis",
                    shape_raw.len()
                ),
            ));
        }
    }

    let data_type = Ext::read(field("data_type")?, "data_type")?;
    let expected = zarr_type::<T>();
    let is_bool = data_type.name == "bool" && data_type.conf.is_none();
    if data_type.conf.is_some() || !(data_type.name == expected || is_bool && expected == "uint8") {
        return Err(ZarrProblem::DataType {
            found: data_type.name.to_owned(),
            expected,
        });
    }

    let grid = Ext::read(field("chunk_grid")?, "chunk_grid")?;
    if grid.name != "regular" {
        return Err(ZarrProblem::Unsupported {
            what: format!("chunk_grid \"{}\"", grid.name),
        });
    }
    grid.only("chunk_grid", &["chunk_shape"])?;
    let chunk_raw = whole_numbers(
        grid.get("chunk_shape")
            .ok_or_else(|| missing("chunk_grid chunk_shape"))?,
        "chunk_grid chunk_shape",
    )?;
    // A chunk length of 0 only on an axis of length 0 (zarr-python writes that).
    if chunk_raw.len() != shape_raw.len()
        || chunk_raw
            .iter()
            .zip(&shape_raw)
            .any(|(&c, &n)| c == 0 && n != 0)
    {
        return Err(ZarrProblem::Shape {
            shape: shape_raw,
            chunk_shape: chunk_raw,
        });
    }
    let too_large = || ZarrProblem::Shape {
        shape: shape_raw.clone(),
        chunk_shape: chunk_raw.clone(),
    };
    let shape = to_usize(&shape_raw).ok_or_else(too_large)?;
    // One chunk must be mappable (its bytes at most isize::MAX), and the shape an array.
    if !fits::<T>(&shape_raw) || !fits::<T>(&chunk_raw) {
        return Err(too_large());
    }
    let (separator, v2_keys) = key_encoding(field("chunk_key_encoding")?)?;

    let codecs_v = field("codecs")?;
    let codecs = ext_list(codecs_v, "codecs", KNOWN_CODECS)?;
    if codecs.is_empty() {
        return Err(malformed(
            "codecs",
            codecs_v,
            "a list holding one array-to-bytes codec such as \"bytes\"",
        ));
    }
    let (order, codecs, shard, chunk) = match codecs.as_slice() {
        [only] if only.name == "sharding_indexed" => {
            let (order, chain, shard, inner) = sharding::<T>(only, &shape_raw, &chunk_raw)?;
            (order, chain, Some(shard), inner)
        }
        _ => {
            let (order, chain) = codec_chain::<T>(&codecs, shape.len())?;
            (
                order,
                chain,
                None,
                to_usize(&nonzero(&chunk_raw)).ok_or_else(too_large)?,
            )
        }
    };
    let fill = fill_value::<T>(field("fill_value")?, is_bool)?;
    Ok(Layout {
        shape,
        chunk,
        order,
        codecs,
        fill,
        separator,
        v2_keys,
        shard,
    })
}

fn to_usize(v: &[u64]) -> Option<Vec<usize>> {
    v.iter().map(|&x| usize::try_from(x).ok()).collect()
}

/// `v` with each 0 read as 1 (allowed only on an axis of length 0, which has no chunks).
fn nonzero(v: &[u64]) -> Vec<u64> {
    v.iter().map(|&x| x.max(1)).collect()
}

/// Whether `dims` of `T` (each 0 read as 1) span at most `isize::MAX` bytes.
fn fits<T>(dims: &[u64]) -> bool {
    dims.iter()
        .try_fold(std::mem::size_of::<T>().max(1) as u64, |n, &d| {
            n.checked_mul(d.max(1))
        })
        .is_some_and(|n| n <= isize::MAX as u64)
}

/// The separator and whether keys are v2's (`0.1`) rather than the default's (`c/0/1`).
fn key_encoding(v: &Value) -> Result<(String, bool), ZarrProblem> {
    let k = Ext::read(v, "chunk_key_encoding")?;
    let v2 = match k.name {
        "default" => false,
        "v2" => true,
        other => {
            return Err(ZarrProblem::Unsupported {
                what: format!("chunk_key_encoding \"{other}\""),
            });
        }
    };
    k.only("chunk_key_encoding", &["separator"])?;
    let sep = match k.get("separator") {
        None => {
            if v2 {
                "."
            } else {
                "/"
            }
        }
        Some(Value::String(s)) if s == "/" || s == "." => s.as_str(),
        Some(other) => {
            return Err(malformed(
                "chunk_key_encoding separator",
                other,
                "\"/\" or \".\"",
            ));
        }
    };
    Ok((sep.to_owned(), v2))
}

/// The element order inside a chunk (`bytes` alone is C order; a `transpose` that reverses
/// the axes before it is Fortran order) and what else the stored bytes went through: the
/// other byte order, and the bytes-to-bytes codecs after `bytes` (see [`Chain`]).
/// Anything else refused.
fn codec_chain<T: Element>(codecs: &[Ext<'_>], ndim: usize) -> Result<(Order, Chain), ZarrProblem> {
    let mut order = Order::C;
    let mut chain = Chain::default();
    let mut seen_bytes = false;
    for c in codecs {
        match c.name {
            "transpose" | "bytes" if seen_bytes => {
                let names: Vec<Value> = codecs.iter().map(|c| Value::from(c.name)).collect();
                return Err(malformed(
                    "codecs",
                    &Value::Array(names),
                    "array-to-array codecs (transpose), then one array-to-bytes codec \
                     (bytes), then bytes-to-bytes codecs",
                ));
            }
            "transpose" => {
                c.only("codec", &["order"])?;
                let field = "codec \"transpose\" order";
                let o = c.get("order").ok_or_else(|| missing(field))?;
                let perm: Option<Vec<usize>> = o.as_array().and_then(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                        .collect()
                });
                let mut seen = vec![false; ndim];
                let is_perm = perm.as_ref().is_some_and(|p| {
                    p.len() == ndim
                        && p.iter()
                            .all(|&i| i < ndim && !std::mem::replace(&mut seen[i], true))
                });
                let (Some(p), true) = (perm, is_perm) else {
                    let expected = match ndim {
                        0 => "[] (the array has no axes)".to_owned(),
                        n => format!("a permutation of the axes 0 to {}", n - 1),
                    };
                    return Err(malformed(field, o, expected));
                };
                if p.iter().copied().eq(0..ndim) {
                    // the identity
                } else if p.iter().copied().eq((0..ndim).rev()) {
                    order = if order.is_column_major() {
                        Order::C
                    } else {
                        Order::F
                    };
                } else {
                    return Err(ZarrProblem::Unsupported {
                        what: format!(
                            "codec \"transpose\" with order {} (only the identity or the full \
                             reversal maps)",
                            show(o)
                        ),
                    });
                }
            }
            "bytes" => {
                c.only("codec", &["endian"])?;
                let native = if cfg!(target_endian = "little") {
                    "little"
                } else {
                    "big"
                };
                match c.get("endian") {
                    Some(Value::String(e)) if e == native => {}
                    // Read into a buffer, each element's bytes swapped.
                    Some(Value::String(e)) if e == "little" || e == "big" => {
                        chain.swap = std::mem::size_of::<T>() > 1;
                    }
                    None if std::mem::size_of::<T>() == 1 => {}
                    None => return Err(missing("codec \"bytes\" endian")),
                    Some(other) => {
                        return Err(malformed(
                            "codec \"bytes\" endian",
                            other,
                            "\"little\" or \"big\"",
                        ));
                    }
                }
                seen_bytes = true;
            }
            "sharding_indexed" => {
                return Err(ZarrProblem::Unsupported {
                    what: "sharding (codec \"sharding_indexed\") among other codecs (only a lone \
                           sharding_indexed with uncompressed inner chunks maps; or write without \
                           shards, shards=None)"
                        .into(),
                });
            }
            "zstd" | "gzip" | "crc32c" | "blosc" if !seen_bytes => {
                let names: Vec<Value> = codecs.iter().map(|c| Value::from(c.name)).collect();
                return Err(malformed(
                    "codecs",
                    &Value::Array(names),
                    "array-to-array codecs (transpose), then one array-to-bytes codec \
                     (bytes), then bytes-to-bytes codecs",
                ));
            }
            "zstd" => {
                c.only("codec", &["level", "checksum"])?;
                let level = match c.get("level") {
                    None => 0,
                    Some(v) => v
                        .as_i64()
                        .ok_or_else(|| malformed("codec \"zstd\" level", v, "a whole number"))?,
                };
                chain.codecs.push(ByteCodec::Zstd {
                    level: level.clamp(-(1 << 17), 22) as i32,
                });
            }
            "gzip" => {
                c.only("codec", &["level"])?;
                let level = match c.get("level") {
                    None => 6,
                    Some(v) => v.as_u64().filter(|&l| l <= 9).ok_or_else(|| {
                        malformed("codec \"gzip\" level", v, "a whole number from 0 to 9")
                    })?,
                };
                chain.codecs.push(ByteCodec::Gzip {
                    level: level.min(9) as u32,
                });
            }
            "crc32c" => {
                c.only("codec", &[])?;
                chain.codecs.push(ByteCodec::Crc32c);
            }
            "blosc" => chain.codecs.push(ByteCodec::Blosc(blosc::<T>(c)?)),
            name => {
                return Err(ZarrProblem::Codec {
                    name: name.to_owned(),
                });
            }
        }
    }
    if !seen_bytes {
        return Err(ZarrProblem::Unsupported {
            what: "a codec chain without the \"bytes\" codec".into(),
        });
    }
    Ok((order, chain))
}

/// The settings of a `blosc` codec: read from its configuration (a blosc buffer describes
/// itself when decoded; these are what writing uses), every value checked.
fn blosc<T: Element>(c: &Ext<'_>) -> Result<Blosc, ZarrProblem> {
    c.only(
        "codec",
        &["cname", "clevel", "shuffle", "typesize", "blocksize"],
    )?;
    let field = |k: &str| format!("codec \"blosc\" {k}");
    let cname = match c.get("cname") {
        None => 1, // lz4, numcodecs' default
        Some(v) => {
            let name = v.as_str().unwrap_or_default();
            BLOSC_NAMES.iter().position(|&n| n == name).ok_or_else(|| {
                malformed(
                    field("cname"),
                    v,
                    format!("one of {}", BLOSC_NAMES.join(", ")),
                )
            })?
        }
    };
    let clevel = match c.get("clevel") {
        None => 5,
        Some(v) => v
            .as_u64()
            .filter(|&l| l <= 9)
            .ok_or_else(|| malformed(field("clevel"), v, "a whole number from 0 to 9"))?
            as u8,
    };
    let shuffle = match c.get("shuffle") {
        None => 1,
        Some(v) => {
            let name = v.as_str().unwrap_or_default();
            BLOSC_SHUFFLES
                .iter()
                .position(|&n| n == name)
                .ok_or_else(|| {
                    malformed(
                        field("shuffle"),
                        v,
                        "\"noshuffle\", \"shuffle\" or \"bitshuffle\"",
                    )
                })? as u8
        }
    };
    let typesize = match c.get("typesize") {
        None => std::mem::size_of::<T>().min(255) as u8,
        Some(v) => v
            .as_u64()
            .filter(|&t| (1..=255).contains(&t))
            .ok_or_else(|| malformed(field("typesize"), v, "a whole number from 1 to 255"))?
            as u8,
    };
    let blocksize = match c.get("blocksize") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b <= blosc_src::BLOSC_MAX_BLOCKSIZE as usize)
            .ok_or_else(|| malformed(field("blocksize"), v, "0 (automatic) or a block size"))?,
    };
    Ok(Blosc {
        cname,
        clevel,
        shuffle,
        typesize,
        blocksize,
    })
}

/// A `sharding_indexed` codec that maps: inner chunks of `bytes` (after an optional
/// reversing `transpose`), an index of `bytes` (little endian) with an optional `crc32c`,
/// at the start or the end. `shard` is the grid's chunk shape. Returns the inner chunks'
/// order, the shard and the inner chunk shape (0s read as 1, see [`Layout`]).
fn sharding<T: Element>(
    c: &Ext<'_>,
    shape: &[u64],
    shard: &[u64],
) -> Result<(Order, Chain, Shard, Vec<usize>), ZarrProblem> {
    c.only(
        "codec",
        &["chunk_shape", "codecs", "index_codecs", "index_location"],
    )?;
    let field = "codec \"sharding_indexed\" chunk_shape";
    let inner_v = c.get("chunk_shape").ok_or_else(|| missing(field))?;
    let inner = whole_numbers(inner_v, field)?;
    // Each inner length divides the shard's (0 only on an empty axis with a 0 shard).
    let divides = inner.len() == shard.len()
        && inner.iter().zip(shard).zip(shape).all(|((&i, &s), &n)| {
            if i == 0 {
                s == 0 && n == 0
            } else {
                s.is_multiple_of(i)
            }
        });
    if !divides {
        return Err(malformed(
            field,
            inner_v,
            format!(
                "one length per axis, each dividing the shard shape {}",
                dims(shard)
            ),
        ));
    }
    // On an empty axis a 0 reads as 1, and a 0 shard as one inner chunk.
    let inner = nonzero(&inner);
    let shard: Vec<u64> = shard
        .iter()
        .zip(&inner)
        .map(|(&s, &i)| if s == 0 { i } else { s })
        .collect();
    let too_large = || ZarrProblem::Shape {
        shape: shard.clone(),
        chunk_shape: inner.clone(),
    };
    if !fits::<T>(&inner) || !fits::<T>(&shard) {
        return Err(too_large());
    }
    let inner_grid: Vec<u64> = shard.iter().zip(&inner).map(|(&s, &i)| s / i).collect();

    let codecs_v = c
        .get("codecs")
        .ok_or_else(|| missing("codec \"sharding_indexed\" codecs"))?;
    let inner_codecs = ext_list(codecs_v, "codec \"sharding_indexed\" codecs", KNOWN_CODECS)?;
    if inner_codecs.iter().any(|k| k.name == "sharding_indexed") {
        return Err(ZarrProblem::Unsupported {
            what: "nested sharding".into(),
        });
    }
    // The inner chunks' codecs: compressed inner chunks are read into buffers.
    let (order, chain) = codec_chain::<T>(&inner_codecs, shard.len())?;

    // zarr-python reads a missing index_codecs as bytes (little endian) + crc32c.
    let crc = match c.get("index_codecs") {
        None => true,
        Some(v) => {
            let index = ext_list(v, "codec \"sharding_indexed\" index_codecs", KNOWN_CODECS)?;
            let little = |e: &Ext<'_>| {
                e.only("index codec", &["endian"]).is_ok()
                    && matches!(
                        e.get("endian").and_then(Value::as_str),
                        None | Some("little")
                    )
            };
            let plain = |e: &Ext<'_>| e.conf.is_none_or(Map::is_empty);
            match index.as_slice() {
                [b] if b.name == "bytes" && little(b) => false,
                [b, k] if b.name == "bytes" && little(b) && k.name == "crc32c" && plain(k) => true,
                _ => {
                    let names: Vec<&str> = index.iter().map(|e| e.name).collect();
                    return Err(ZarrProblem::Unsupported {
                        what: format!(
                            "a shard index encoded by [{}] (only \"bytes\" little endian, with an \
                             optional \"crc32c\", maps)",
                            names.join(", ")
                        ),
                    });
                }
            }
        }
    };
    let index_at_end = match c.get("index_location") {
        None => true,
        Some(Value::String(s)) if s == "end" => true,
        Some(Value::String(s)) if s == "start" => false,
        Some(other) => {
            return Err(malformed(
                "codec \"sharding_indexed\" index_location",
                other,
                "\"start\" or \"end\"",
            ));
        }
    };
    // The index must be addressable: 16 bytes per inner chunk (+ 4), within a file's and an
    // allocation's largest size.
    let count = inner_grid.iter().try_fold(1u64, |n, &g| n.checked_mul(g));
    let limit = (i64::MAX as u64).min(isize::MAX as u64);
    let index_len = count
        .and_then(|n| n.checked_mul(16))
        .and_then(|n| n.checked_add(if crc { 4 } else { 0 }))
        .filter(|&n| n <= limit);
    let Some(index_len) = index_len else {
        return Err(ZarrProblem::Unsupported {
            what: format!(
                "a shard of {} inner chunks (shard shape {}, inner chunk shape {}): its index of \
                 16 bytes each would be longer than the largest file ({limit} bytes)",
                count.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string()),
                dims(&shard),
                dims(&inner)
            ),
        });
    };
    let (Some(shard_us), Some(inner_us), Some(inner_grid)) =
        (to_usize(&shard), to_usize(&inner), to_usize(&inner_grid))
    else {
        return Err(too_large());
    };
    Ok((
        order,
        chain,
        Shard {
            shape: shard_us,
            index_at_end,
            crc,
            inner_grid,
            index_len,
        },
        inner_us,
    ))
}

/// CRC-32C (Castagnoli), as Zarr's `crc32c` codec appends it (little endian): the
/// `crc32c` crate (SSE 4.2 or ARM CRC instructions when the CPU has them).
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// `zarr.json` for a new array of `T`: regular grid, default `/` keys, `bytes` little
/// endian after a reversing `transpose` when `fortran`, and `fill` (see [`fill_json`]).
pub(crate) fn new_array_json<T: Element>(
    shape: &[usize],
    chunk: &[usize],
    fill: &str,
    fortran: bool,
    compressor: Option<ByteCodec>,
) -> String {
    let compressor = compressor.map_or_else(String::new, |c| format!(", {}", c.json()));
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reversed: Vec<usize> = (0..shape.len()).rev().collect();
    let transpose = if fortran && shape.len() > 1 {
        format!(
            "{{\"name\": \"transpose\", \"configuration\": {{\"order\": [{}]}}}}, ",
            list(&reversed)
        )
    } else {
        String::new()
    };
    format!(
        "{{\n  \"zarr_format\": 3,\n  \"node_type\": \"array\",\n  \"shape\": [{}],\n  \"data_type\": \"{}\",\n  \
         \"chunk_grid\": {{\"name\": \"regular\", \"configuration\": {{\"chunk_shape\": [{}]}}}},\n  \
         \"chunk_key_encoding\": {{\"name\": \"default\", \"configuration\": {{\"separator\": \"/\"}}}},\n  \
         \"fill_value\": {fill},\n  \"codecs\": [{transpose}{{\"name\": \"bytes\", \"configuration\": {{\"endian\": \"little\"}}}}{compressor}],\n  \
         \"attributes\": {{}}\n}}\n",
        list(shape),
        zarr_type::<T>(),
        list(chunk)
    )
}

#[cfg(test)]
mod tests;
