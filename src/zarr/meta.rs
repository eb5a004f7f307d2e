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
    let (order, shard, chunk) = match codecs.as_slice() {
        [only] if only.name == "sharding_indexed" => {
            let (order, shard, inner) = sharding::<T>(only, &shape_raw, &chunk_raw)?;
            (order, Some(shard), inner)
        }
        _ => {
            let order = codec_chain::<T>(&codecs, shape.len())?;
            (
                order,
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

/// The element order inside a chunk file: `bytes` (native endian) alone is C order; a
/// `transpose` that reverses the axes before it is Fortran order. Anything else refused.
fn codec_chain<T: Element>(codecs: &[Ext<'_>], ndim: usize) -> Result<Order, ZarrProblem> {
    let mut order = Order::C;
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
                    Some(Value::String(e)) if e == "little" || e == "big" => {
                        if std::mem::size_of::<T>() > 1 {
                            return Err(ZarrProblem::Unsupported {
                                what: format!(
                                    "codec \"bytes\" with endian \"{e}\" (only {native}-endian \
                                     chunks map without a copy)"
                                ),
                            });
                        }
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
    Ok(order)
}

/// A `sharding_indexed` codec that maps: inner chunks of `bytes` (after an optional
/// reversing `transpose`), an index of `bytes` (little endian) with an optional `crc32c`,
/// at the start or the end. `shard` is the grid's chunk shape. Returns the inner chunks'
/// order, the shard and the inner chunk shape (0s read as 1, see [`Layout`]).
fn sharding<T: Element>(
    c: &Ext<'_>,
    shape: &[u64],
    shard: &[u64],
) -> Result<(Order, Shard, Vec<usize>), ZarrProblem> {
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
    // A compressor inside the shards is named as such (write with compressors=None).
    let order = codec_chain::<T>(&inner_codecs, shard.len())?;

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

/// CRC-32C (Castagnoli), as Zarr's `crc32c` codec appends it (little endian).
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// The bits of the canonical NaN of an IEEE float of `width` bytes (the spec's `"NaN"`:
/// sign 0, the mantissa's top bit 1, the rest 0).
fn canonical_nan(width: usize) -> u64 {
    match width {
        2 => 0x7e00,
        4 => 0x7fc0_0000,
        _ => 0x7ff8_0000_0000_0000,
    }
}

/// `"0x…"` with exactly `2 * width` hex digits: a bit pattern of `width` bytes.
fn hex_bits(s: &str, width: usize) -> Option<u64> {
    let hex = s.strip_prefix("0x")?;
    if hex.len() != 2 * width || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// An IEEE float of `width` bytes (2, 4, 8) as the spec spells it: a JSON number (rounded
/// to the nearest), `"NaN"`, `"Infinity"`, `"-Infinity"`, or `"0x…"` bits. Returns its bits.
fn float_bits(v: &Value, width: usize) -> Option<u64> {
    let of_f64 = |x: f64| -> Option<u64> {
        match width {
            8 => Some(x.to_bits()),
            4 => Some(u64::from((x as f32).to_bits())),
            #[cfg(feature = "half")]
            2 => Some(u64::from(half::f16::from_f64(x).to_bits())),
            _ => None,
        }
    };
    match v {
        Value::Number(n) => of_f64(n.as_f64()?),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(canonical_nan(width)),
            "Infinity" => of_f64(f64::INFINITY),
            "-Infinity" => of_f64(f64::NEG_INFINITY),
            _ => hex_bits(s, width),
        },
        _ => None,
    }
}

/// `fill_value` as `T` (the spec's permitted values): an integer in range (or `"0x…"` with
/// two hex digits per byte), `true`/`false` for `bool`, a float as [`float_bits`] reads it,
/// `[re, im]` of two such floats for complex.
fn fill_value<T: Element>(v: &Value, is_bool: bool) -> Result<T, ZarrProblem> {
    let size = std::mem::size_of::<T>();
    let kind = T::NPY_DESCR.as_bytes().get(1).copied().unwrap_or(0);
    let bits = |n: u32| {
        if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
    };
    let (word, expected): (Option<u128>, String) = match kind {
        _ if is_bool => (
            v.as_bool().map(u128::from),
            "true or false (data_type \"bool\")".into(),
        ),
        b'i' => {
            let half = 1i128 << (8 * size - 1);
            let x = match v {
                Value::Number(n) => n.as_i64().map(i128::from),
                Value::Bool(b) => Some(i128::from(*b)),
                Value::String(s) => hex_bits(s, size).map(|b| {
                    // the bits of a two's complement integer of `size` bytes
                    let b = i128::from(b);
                    if b >= half { b - 2 * half } else { b }
                }),
                _ => None,
            };
            (
                x.filter(|x| (-half..half).contains(x))
                    .map(|x| (x as u128) & u128::from(bits(8 * size as u32))),
                format!("a whole number from {} to {}", -half, half - 1),
            )
        }
        b'u' => {
            let x = match v {
                Value::Number(n) => n.as_u64(),
                Value::Bool(b) => Some(u64::from(*b)),
                Value::String(s) => hex_bits(s, size),
                _ => None,
            };
            (
                x.filter(|&x| x <= bits(8 * size as u32)).map(u128::from),
                format!("a whole number from 0 to {}", bits(8 * size as u32)),
            )
        }
        b'f' => (
            float_bits(v, size).map(u128::from),
            format!(
                "a number, \"NaN\", \"Infinity\", \"-Infinity\" or \"0x\" and {} hex digits",
                2 * size
            ),
        ),
        b'c' => {
            let part = size / 2;
            let x = match v.as_array().map(Vec::as_slice) {
                Some([re, im]) => float_bits(re, part)
                    .zip(float_bits(im, part))
                    .map(|(re, im)| u128::from(re) | u128::from(im) << (8 * part)),
                _ => None,
            };
            (
                x,
                format!(
                    "[real, imaginary], each a number, \"NaN\", \"Infinity\", \"-Infinity\" or \
                     \"0x\" and {} hex digits",
                    2 * part
                ),
            )
        }
        _ => (None, "a value of a supported data type".into()),
    };
    let bad = || ZarrProblem::FillValue {
        found: show(v),
        data_type: if is_bool { "bool" } else { zarr_type::<T>() },
        expected: expected.clone(),
    };
    let word = word.ok_or_else(bad)?;
    if size > 16 || cfg!(target_endian = "big") {
        // Element types are native-endian; the word above is built little-endian.
        return Err(bad());
    }
    Ok(bytemuck::pod_read_unaligned(&word.to_le_bytes()[..size]))
}

/// `fill` as `zarr.json` spells it, read back exactly by [`parse`]: integers as numbers,
/// floats as the shortest number that reads back as the same `f64` (an `f32` or `f16` is
/// widened first, exactly, so it reads back through `f64` too), `"Infinity"`,
/// `"-Infinity"`, `"NaN"` for the canonical NaN and `"0x…"` bits for any other, complex as
/// `[re, im]`.
pub(crate) fn fill_json<T: Element>(fill: T) -> String {
    let b = bytemuck::bytes_of(&fill);
    let n = b.len();
    let word = |part: &[u8]| -> u64 {
        let mut w = [0u8; 8];
        let k = part.len().min(8);
        w[..k].copy_from_slice(&part[..k]);
        u64::from_le_bytes(w)
    };
    let float = |part: &[u8]| -> String {
        let width = part.len();
        let bits = word(part);
        let x = match width {
            2 => f16_to_f64(bits as u16),
            4 => f64::from(f32::from_bits(bits as u32)),
            _ => f64::from_bits(bits),
        };
        if x.is_nan() {
            if bits == canonical_nan(width) {
                "\"NaN\"".into()
            } else {
                format!("\"0x{bits:0w$x}\"", w = 2 * width)
            }
        } else if x.is_infinite() {
            if x > 0.0 {
                "\"Infinity\""
            } else {
                "\"-Infinity\""
            }
            .into()
        } else {
            format!("{x:?}") // the shortest spelling that reads back as the same f64
        }
    };
    match T::NPY_DESCR.as_bytes().get(1) {
        Some(b'i') => {
            let shift = 64 - 8 * n.min(8) as u32;
            (((word(b) << shift) as i64) >> shift).to_string()
        }
        Some(b'f') => float(b),
        Some(b'c') => format!("[{}, {}]", float(&b[..n / 2]), float(&b[n / 2..])),
        _ => word(b).to_string(),
    }
}

/// An IEEE half's value.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f64.powi(-24),
        31 if man == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// `zarr.json` for a new array of `T`: regular grid, default `/` keys, `bytes` little
/// endian after a reversing `transpose` when `fortran`, and `fill` (see [`fill_json`]).
pub(crate) fn new_array_json<T: Element>(
    shape: &[usize],
    chunk: &[usize],
    fill: &str,
    fortran: bool,
) -> String {
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
         \"fill_value\": {fill},\n  \"codecs\": [{transpose}{{\"name\": \"bytes\", \"configuration\": {{\"endian\": \"little\"}}}}],\n  \
         \"attributes\": {{}}\n}}\n",
        list(shape),
        zarr_type::<T>(),
        list(chunk)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(codecs: &str, fill: &str, dtype: &str) -> String {
        format!(
            r#"{{"zarr_format": 3, "node_type": "array", "shape": [10, 7], "data_type": "{dtype}",
            "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [4, 3]}}}},
            "chunk_key_encoding": {{"name": "default", "configuration": {{"separator": "/"}}}},
            "fill_value": {fill}, "codecs": {codecs}, "attributes": {{}}}}"#
        )
    }
    const BYTES: &str = r#"[{"name": "bytes", "configuration": {"endian": "little"}}]"#;
    const CRC: &str =
        r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]"#;

    /// `zarr.json` of a 1-d array of `u8` with `shape`, `chunk` and one codec `codec`.
    fn one_d(shape: &str, chunk: &str, codec: &str) -> String {
        format!(
            r#"{{"zarr_format": 3, "node_type": "array", "shape": {shape}, "data_type": "uint8",
            "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": {chunk}}}}},
            "chunk_key_encoding": {{"name": "default"}}, "fill_value": 0, "codecs": [{codec}]}}"#
        )
    }

    /// `meta` with the field `key` of the top-level object replaced by `value`.
    fn with(json: &str, key: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(json).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn fill_f64(fill: &str) -> f64 {
        parse::<f64>(meta(BYTES, fill, "float64").as_bytes())
            .unwrap()
            .fill
    }

    /// A message for people: no Rust debug forms, no escaped JSON, lowercase, no period.
    fn readable(p: &ZarrProblem) -> String {
        let m = p.to_string();
        for bad in ["Some(", " None", "\\\"", "\\n", "Value::", "String("] {
            assert!(!m.contains(bad), "{bad} in: {m}");
        }
        assert!(!m.ends_with('.'), "{m}");
        assert!(m.starts_with(|c: char| !c.is_uppercase()), "{m}");
        m
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283); // the standard check value
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn sharding_with_plain_inner_chunks_maps_and_the_rest_is_named() {
        let shard = |inner: &str, codecs: &str, index: &str, at: &str| {
            let c = format!(
                r#"[{{"name": "sharding_indexed", "configuration": {{"chunk_shape": {inner},
                "codecs": {codecs}, "index_codecs": {index}, "index_location": {at}}}}}]"#
            );
            parse::<f32>(meta(&c, "0.0", "float32").as_bytes())
        };
        let l = shard("[2, 1]", BYTES, CRC, r#""end""#).unwrap();
        assert_eq!(l.chunk, [2, 1]);
        let s = l.shard.unwrap();
        assert_eq!((s.shape, s.index_at_end, s.crc), (vec![4, 3], true, true));
        assert_eq!((s.inner_grid, s.index_len), (vec![2, 3], 6 * 16 + 4));
        let s = shard("[4, 3]", BYTES, BYTES, r#""start""#)
            .unwrap()
            .shard
            .unwrap();
        assert_eq!((s.index_at_end, s.index_len), (false, 16));
        // inner chunks that do not divide the shard, compressed ones, odd indexes
        let e = shard("[3, 3]", BYTES, CRC, r#""end""#).unwrap_err();
        assert!(
            readable(&e).contains("chunk_shape is [3, 3]")
                && e.to_string().contains("dividing the shard shape [4, 3]"),
            "{e}"
        );
        let zstd =
            r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd"}]"#;
        assert!(
            matches!(shard("[2, 1]", zstd, CRC, r#""end""#), Err(ZarrProblem::Codec { name }) if name == "zstd")
        );
        let e = shard("[2, 1]", BYTES, CRC, r#""middle""#).unwrap_err();
        assert!(matches!(e, ZarrProblem::Malformed { .. }), "{e}");
        let odd = r#"[{"name": "crc32c"}, {"name": "bytes"}]"#;
        let e = shard("[2, 1]", BYTES, odd, r#""end""#).unwrap_err();
        assert!(
            readable(&e).contains("[crc32c, bytes]")
                && matches!(e, ZarrProblem::Unsupported { .. }),
            "{e}"
        );
    }

    /// Defect 9: an index of `count * 16 (+ 4)` bytes that overflows, or cannot be a file,
    /// was accepted and overflowed where a chunk was looked up.
    #[test]
    fn a_shard_index_too_long_for_a_file_is_refused_when_parsed() {
        let sharded = |shard: u64, crc: bool| {
            let index = if crc { CRC } else { BYTES };
            one_d(
                &format!("[{shard}]"),
                &format!("[{shard}]"),
                &format!(
                    r#"{{"name": "sharding_indexed", "configuration": {{"chunk_shape": [1],
                    "codecs": ["bytes"], "index_codecs": {index}}}}}"#
                ),
            )
        };
        for (count, crc) in [(1u64 << 62, true), (1 << 60, false), (1 << 59, true)] {
            let e = parse::<u8>(sharded(count, crc).as_bytes()).unwrap_err();
            let m = readable(&e);
            assert!(
                matches!(e, ZarrProblem::Unsupported { .. })
                    && m.contains(&format!("a shard of {count} inner chunks"))
                    && m.contains("longer than the largest file"),
                "{m}"
            );
        }
        // The largest index that fits: (2^59 - 1) * 16 + 4 <= i64::MAX.
        let l = parse::<u8>(sharded((1 << 59) - 1, true).as_bytes()).unwrap();
        let s = l.shard.unwrap();
        assert_eq!(s.index_len, ((1u64 << 59) - 1) * 16 + 4);
        assert_eq!(s.inner_grid, [(1usize << 59) - 1]);
        // Several axes whose product overflows u64 are refused too (by the shard's size).
        let two = format!(
            r#"{{"zarr_format": 3, "node_type": "array", "shape": [4294967296, 4294967296],
            "data_type": "uint8", "chunk_grid": {{"name": "regular", "configuration":
            {{"chunk_shape": [4294967296, 4294967296]}}}}, "chunk_key_encoding": {{"name": "default"}},
            "fill_value": 0, "codecs": [{{"name": "sharding_indexed", "configuration":
            {{"chunk_shape": [1, 1], "codecs": ["bytes"], "index_codecs": {CRC}}}}}]}}"#
        );
        assert!(parse::<u8>(two.as_bytes()).is_err());
    }

    #[test]
    fn plain_bytes_is_c_order_and_transpose_is_fortran() {
        let l = parse::<f32>(meta(BYTES, "0.0", "float32").as_bytes()).unwrap();
        assert_eq!(
            (l.shape, l.chunk, l.order),
            (vec![10, 7], vec![4, 3], Order::C)
        );
        let t = r#"[{"name": "transpose", "configuration": {"order": [1, 0]}}, {"name": "bytes", "configuration": {"endian": "little"}}]"#;
        let l = parse::<f32>(meta(t, "\"NaN\"", "float32").as_bytes()).unwrap();
        assert_eq!(l.order, Order::F);
        assert!(l.fill.is_nan());
    }

    #[test]
    fn compressors_and_wrong_types_are_named() {
        let z = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 0}}]"#;
        assert_eq!(
            parse::<f32>(meta(z, "0", "float32").as_bytes()).unwrap_err(),
            ZarrProblem::Codec {
                name: "zstd".into()
            }
        );
        assert_eq!(
            parse::<f64>(meta(BYTES, "0", "float32").as_bytes()).unwrap_err(),
            ZarrProblem::DataType {
                found: "float32".into(),
                expected: "float64"
            }
        );
        assert!(matches!(
            parse::<i8>(meta(BYTES, "300", "int8").as_bytes()).unwrap_err(),
            ZarrProblem::FillValue { .. }
        ));
        let v2 = r#"{"zarr_format": 2, "node_type": "array"}"#;
        assert!(matches!(
            parse::<f32>(v2.as_bytes()).unwrap_err(),
            ZarrProblem::NotV3Array { .. }
        ));
        assert!(matches!(
            parse::<f32>(b"{not json").unwrap_err(),
            ZarrProblem::Json { .. }
        ));
    }

    #[test]
    fn fill_values_in_every_spelling() {
        assert_eq!(
            parse::<i16>(meta(BYTES, "-5", "int16").as_bytes())
                .unwrap()
                .fill,
            -5
        );
        assert_eq!(
            parse::<u32>(meta(BYTES, "\"0x0000002a\"", "uint32").as_bytes())
                .unwrap()
                .fill,
            42
        );
        assert_eq!(
            parse::<i16>(meta(BYTES, "\"0xfffe\"", "int16").as_bytes())
                .unwrap()
                .fill,
            -2
        );
        assert_eq!(fill_f64("\"-Infinity\""), f64::NEG_INFINITY);
        assert_eq!(
            fill_f64("\"0x7ff8000000000001\"").to_bits(),
            0x7ff8_0000_0000_0001
        );
        let c =
            parse::<num_complex::Complex<f32>>(meta(BYTES, "[1.5, -2]", "complex64").as_bytes())
                .unwrap()
                .fill;
        assert_eq!((c.re, c.im), (1.5, -2.0));
        assert_eq!(
            parse::<u8>(meta(BYTES, "true", "bool").as_bytes())
                .unwrap()
                .fill,
            1
        );
        // Malformed spellings are refused, saying what the type takes.
        for (fill, dtype) in [
            ("\"0x+0000002\"", "uint32"), // from_str_radix took the sign
            ("\"0x2a\"", "uint32"),       // two hex digits per byte
            ("5", "bool"),
            ("-1", "uint8"),
            ("1.5", "int16"),
            ("\"nan\"", "float64"),
            ("\"0x7fc00000\"", "float64"),
            ("[1, 2, 3]", "complex64"),
            ("null", "float32"),
        ] {
            let e = match dtype {
                "uint32" => parse::<u32>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ()),
                "int16" => parse::<i16>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ()),
                "float64" => parse::<f64>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ()),
                "float32" => parse::<f32>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ()),
                "complex64" => {
                    parse::<num_complex::Complex<f32>>(meta(BYTES, fill, dtype).as_bytes())
                        .map(|_| ())
                }
                _ => parse::<u8>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ()),
            }
            .unwrap_err();
            assert!(matches!(e, ZarrProblem::FillValue { .. }), "{fill}: {e}");
            assert!(readable(&e).starts_with("fill_value "), "{e}");
        }
        let e = parse::<u8>(meta(BYTES, "-1", "uint8").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "fill_value -1 cannot be read as uint8: the spec allows a whole number from 0 to 255"
        );
    }

    /// Defect 12: floats must read back exactly, whatever wrote them (serde_json parses
    /// exactly only with its `float_roundtrip` feature).
    #[test]
    fn float_fill_values_round_trip_exactly() {
        // What zarr-python 3.1 writes (json.dumps of the double) for these fill values.
        for (text, x) in [
            ("0.1", 0.1),
            ("1e-300", 1e-300),
            ("3.141592653589793", std::f64::consts::PI),
            ("5e-324", 5e-324),
            ("1.7976931348623157e+308", f64::MAX),
            ("2.2250738585072014e-308", f64::MIN_POSITIVE),
            ("-0.0", -0.0),
            ("0.30000000000000004", 0.1 + 0.2),
            ("9007199254740993", 9_007_199_254_740_992.0),
            ("1.2345678901234567e-200", 1.234_567_890_123_456_7e-200),
        ] {
            assert_eq!(fill_f64(text).to_bits(), f64::to_bits(x), "{text}");
        }
        // Python's repr of this double; serde_json without float_roundtrip read it 1 ULP off.
        assert_eq!(
            fill_f64("-1.638344060600543e-227").to_bits(),
            10_437_328_418_169_017_477
        );
        // float32 fills are written as the double of the float32.
        let f32_of = |text: &str| {
            parse::<f32>(meta(BYTES, text, "float32").as_bytes())
                .unwrap()
                .fill
        };
        assert_eq!(f32_of("0.10000000149011612"), 0.1f32);
        assert_eq!(f32_of("3.4028234663852886e+38"), f32::MAX);
        // fill_json -> parse is the identity on the bits, over many random patterns.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for i in 0..20_000 {
            let mut bits = next();
            if i % 4 == 0 {
                // subnormals and numbers near the exponent's ends
                bits &= 0x800F_FFFF_FFFF_FFFF | (next() & 0x0010_0000_0000_0000);
            }
            let x = f64::from_bits(bits);
            let json = fill_json(x);
            let back = fill_f64(&json);
            assert_eq!(back.to_bits(), bits, "{json}");
            let y = f32::from_bits(bits as u32);
            let json = fill_json(y);
            let back = parse::<f32>(meta(BYTES, &json, "float32").as_bytes())
                .unwrap()
                .fill;
            assert_eq!(back.to_bits(), y.to_bits(), "{json}");
            let c = num_complex::Complex::new(x, f64::from_bits(next()));
            let json = fill_json(c);
            let back =
                parse::<num_complex::Complex<f64>>(meta(BYTES, &json, "complex128").as_bytes())
                    .unwrap()
                    .fill;
            assert_eq!(
                (back.re.to_bits(), back.im.to_bits()),
                (c.re.to_bits(), c.im.to_bits()),
                "{json}"
            );
        }
        // NaNs keep their bits: "NaN" is the canonical one, others are written in hex.
        for bits in [
            0x7ff8_0000_0000_0000u64,
            0xfff8_0000_0000_0000,
            0x7ff0_0000_0000_0001,
        ] {
            let json = fill_json(f64::from_bits(bits));
            assert_eq!(fill_f64(&json).to_bits(), bits, "{json}");
        }
        assert_eq!(fill_json(f64::NAN), "\"NaN\"");
        assert_eq!(fill_json(f32::from_bits(0xffc0_0000)), "\"0xffc00000\"");
        assert_eq!(fill_json(-f64::INFINITY), "\"-Infinity\"");
        assert_eq!(fill_json(-3i8), "-3");
        assert_eq!(fill_json(u64::MAX), "18446744073709551615");
    }

    #[test]
    #[cfg(feature = "half")]
    fn half_fill_values_round_trip_exactly() {
        for bits in 0..=u16::MAX {
            let h = half::f16::from_bits(bits);
            let json = fill_json(h);
            let back = parse::<half::f16>(meta(BYTES, &json, "float16").as_bytes())
                .unwrap()
                .fill;
            assert_eq!(back.to_bits(), bits, "{json}");
        }
        // zarr-python writes float16(0.1) as the double of the half
        let l = parse::<half::f16>(meta(BYTES, "0.0999755859375", "float16").as_bytes()).unwrap();
        assert_eq!(l.fill, half::f16::from_f32(0.1));
    }

    /// Defect 14: complex parts may be hex bit patterns of the part's width.
    #[test]
    fn complex_fill_values_take_hex_parts() {
        let c64 = |fill: &str| {
            parse::<num_complex::Complex<f32>>(meta(BYTES, fill, "complex64").as_bytes())
                .map(|l| (l.fill.re.to_bits(), l.fill.im.to_bits()))
        };
        assert_eq!(
            c64(r#"["0x7fc00000", "0x3fc00000"]"#).unwrap(),
            (0x7fc0_0000, 0x3fc0_0000)
        );
        assert_eq!(
            c64(r#"["-Infinity", "NaN"]"#).unwrap(),
            (f32::NEG_INFINITY.to_bits(), 0x7fc0_0000)
        );
        assert_eq!(
            c64(r#"[0.5, "0x80000000"]"#).unwrap(),
            (0x3f00_0000, 0x8000_0000)
        );
        let c128 = |fill: &str| {
            parse::<num_complex::Complex<f64>>(meta(BYTES, fill, "complex128").as_bytes())
                .map(|l| (l.fill.re.to_bits(), l.fill.im.to_bits()))
        };
        assert_eq!(
            c128(r#"["0x7ff8000000000000", "0x3ff8000000000000"]"#).unwrap(),
            (0x7ff8_0000_0000_0000, 0x3ff8_0000_0000_0000)
        );
        assert_eq!(
            c128(r#"[0.1, 1e-300]"#).unwrap(),
            (0.1f64.to_bits(), 1e-300f64.to_bits())
        );
        // a part of the other width, or a pattern for the whole number, is refused
        assert!(c64(r#"["0x7ff8000000000000", "0x3fc00000"]"#).is_err());
        assert!(c128(r#"["0x7fc00000", "0x3fc00000"]"#).is_err());
        assert!(c64(r#""0x7fc000003fc00000""#).is_err());
    }

    /// Defect 15: a Zarr v2 directory, and a v3 group, say what they are.
    #[test]
    #[cfg(not(miri))]
    fn v2_arrays_and_groups_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(v2_hint(tmp.path()), None);
        std::fs::write(tmp.path().join(".zgroup"), "{\"zarr_format\": 2}").unwrap();
        let g = v2_hint(tmp.path()).unwrap();
        assert_eq!(g, ZarrProblem::V2 { group: true });
        assert!(readable(&g).contains("Zarr v2 group"), "{g}");
        std::fs::write(tmp.path().join(".zarray"), "{}").unwrap();
        let a = v2_hint(tmp.path()).unwrap();
        let m = readable(&a);
        assert!(
            m.contains("Zarr v2 array")
                && m.contains("zarr_format=2")
                && m.contains("zarr_format=3"),
            "{m}"
        );
    }

    #[test]
    fn a_group_is_named_as_a_group_with_its_arrays() {
        let plain = r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#;
        let e = parse::<f32>(plain.as_bytes()).unwrap_err();
        assert_eq!(e, ZarrProblem::Group { arrays: vec![] });
        assert!(readable(&e).contains("group, not an array"), "{e}");
        let consolidated = r#"{"zarr_format": 3, "node_type": "group", "consolidated_metadata":
            {"kind": "inline", "must_understand": false, "metadata": {
            "sub": {"zarr_format": 3, "node_type": "group"},
            "x": {"zarr_format": 3, "node_type": "array"},
            "sub/y": {"zarr_format": 3, "node_type": "array"}}}}"#;
        let e = parse::<f32>(consolidated.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            ZarrProblem::Group {
                arrays: vec!["sub/y".into(), "x".into()]
            }
        );
        assert!(readable(&e).contains("\"sub/y\", \"x\""), "{e}");
    }

    /// Defect 16: what the v3.1 spec allows is read.
    #[test]
    fn short_hand_names_and_ignorable_extensions_are_read() {
        let l = parse::<u16>(
            meta(r#"["bytes"]"#, "7", "uint8")
                .replace("uint8", "uint16")
                .as_bytes(),
        );
        // "bytes" alone is fine for 1-byte types; a 2-byte type needs its endian
        assert!(matches!(l, Err(ZarrProblem::Missing { .. })), "{l:?}");
        let l = parse::<u8>(meta(r#"["bytes"]"#, "7", "uint8").as_bytes()).unwrap();
        assert_eq!((l.fill, l.order), (7, Order::C));
        let j = with(&meta(BYTES, "1", "int32"), "chunk_key_encoding", r#""v2""#);
        let j = with(&j, "data_type", r#"{"name": "int32"}"#);
        let l = parse::<i32>(j.as_bytes()).unwrap();
        assert_eq!((l.separator.as_str(), l.v2_keys), (".", true));
        // codecs and storage transformers marked must_understand: false are ignored
        let c = r#"[{"name": "x-hint", "must_understand": false, "configuration": {"a": 1}},
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "x-stats", "must_understand": false}]"#;
        assert!(parse::<f32>(meta(c, "0", "float32").as_bytes()).is_ok());
        let j = with(
            &meta(BYTES, "0", "float32"),
            "storage_transformers",
            r#"[{"name": "x-cache", "must_understand": false}]"#,
        );
        assert!(parse::<f32>(j.as_bytes()).is_ok());
        // ... but not when they must be understood, nor a known compressor marked so
        let j = with(
            &meta(BYTES, "0", "float32"),
            "storage_transformers",
            r#"[{"name": "x-cache"}]"#,
        );
        let e = parse::<f32>(j.as_bytes()).unwrap_err();
        assert_eq!(
            readable(&e),
            "storage transformer \"x-cache\" is not supported"
        );
        let c = r#"[{"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "must_understand": false}]"#;
        assert!(matches!(
            parse::<f32>(meta(c, "0", "float32").as_bytes()),
            Err(ZarrProblem::Codec { .. })
        ));
        let c = r#"["bytes", {"name": "x-unknown"}]"#;
        assert!(matches!(
            parse::<u8>(meta(c, "0", "uint8").as_bytes()),
            Err(ZarrProblem::Codec { .. })
        ));
        // a sharded array whose inner codec is short-hand, without index_codecs (zarr-python
        // then takes bytes + crc32c)
        let s = r#"[{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 1],
            "codecs": ["bytes"]}}]"#;
        let l = parse::<u8>(meta(s, "0", "uint8").as_bytes()).unwrap();
        let sh = l.shard.unwrap();
        assert!(sh.crc && sh.index_at_end);
    }

    /// Defect 16: `chunk_shape: [0]` for `shape: [0]` (zarr-python writes it) is read, and
    /// the layout has no 0 to divide by.
    #[test]
    fn a_zero_chunk_on_an_empty_axis_is_read() {
        let l = parse::<u8>(one_d("[0]", "[0]", r#""bytes""#).as_bytes()).unwrap();
        assert_eq!((l.shape, l.chunk), (vec![0], vec![1]));
        let j = r#"{"zarr_format": 3, "node_type": "array", "shape": [0, 3], "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [0, 3]}},
            "chunk_key_encoding": {"name": "default"}, "fill_value": 0, "codecs": ["bytes"]}"#;
        let l = parse::<u8>(j.as_bytes()).unwrap();
        assert_eq!((&l.shape[..], &l.chunk[..]), (&[0, 3][..], &[1, 3][..]));
        let grid: Vec<usize> = l
            .shape
            .iter()
            .zip(&l.chunk)
            .map(|(&n, &c)| n.div_ceil(c))
            .collect();
        assert_eq!(grid, [0, 1]);
        // shards on an empty axis: a 0 shard and a 0 inner chunk
        let s = |shard: &str, inner: &str| {
            one_d(
                "[0]",
                shard,
                &format!(
                    r#"{{"name": "sharding_indexed", "configuration": {{"chunk_shape": {inner},
                    "codecs": ["bytes"], "index_codecs": {CRC}}}}}"#
                ),
            )
        };
        for (shard, inner, want) in [
            ("[0]", "[0]", (1, 1)),
            ("[0]", "[5]", (5, 5)),
            ("[10]", "[5]", (10, 5)),
        ] {
            let l = parse::<u8>(s(shard, inner).as_bytes()).unwrap();
            let sh = l.shard.unwrap();
            assert_eq!((sh.shape[0], l.chunk[0]), want, "{shard} {inner}");
            assert!(sh.shape[0].is_multiple_of(l.chunk[0]) && sh.inner_grid[0] >= 1);
        }
        // a 0 elsewhere stays refused
        assert!(matches!(
            parse::<u8>(one_d("[4]", "[0]", r#""bytes""#).as_bytes()),
            Err(ZarrProblem::Shape { .. })
        ));
        assert!(parse::<u8>(s("[10]", "[0]").as_bytes()).is_err());
        let e = parse::<u8>(one_d("[4]", "[0]", r#""bytes""#).as_bytes()).unwrap_err();
        assert!(readable(&e).contains("a 0"), "{e}");
    }

    /// Defect 16: malformed values were read as defaults; now each is refused, naming the
    /// field and the value.
    #[test]
    fn malformed_values_are_refused_naming_the_field_and_value() {
        let base = meta(BYTES, "0", "float32");
        let sharded = |conf: &str| {
            meta(
                &format!(
                    r#"[{{"name": "sharding_indexed", "configuration": {{"chunk_shape": [2, 1],
                    "codecs": ["bytes"], {conf}}}}}]"#
                ),
                "0",
                "uint8",
            )
            .replace("float32", "uint8")
        };
        let cases: Vec<(String, &str)> = vec![
            (
                sharded(r#""index_location": 7"#),
                "codec \"sharding_indexed\" index_location is 7, but the spec allows only \"start\" or \"end\"",
            ),
            (
                with(
                    &base,
                    "chunk_key_encoding",
                    r#"{"name": "default", "configuration": {"separator": 1}}"#,
                ),
                "chunk_key_encoding separator is 1, but the spec allows only \"/\" or \".\"",
            ),
            (
                with(
                    &base,
                    "chunk_key_encoding",
                    r#"{"name": "default", "configuration": {"separator": null}}"#,
                ),
                "chunk_key_encoding separator is null, but the spec allows only \"/\" or \".\"",
            ),
            (
                with(
                    &base,
                    "chunk_key_encoding",
                    r#"{"name": "v2", "configuration": {"separator": "-"}}"#,
                ),
                "chunk_key_encoding separator is \"-\", but the spec allows only \"/\" or \".\"",
            ),
            (
                with(
                    &base,
                    "chunk_key_encoding",
                    r#"{"name": "default", "configuration": null}"#,
                ),
                "chunk_key_encoding \"default\" configuration is null, but the spec allows only an object",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": "middle"}}]"#,
                ),
                "codec \"bytes\" endian is \"middle\", but the spec allows only \"little\" or \"big\"",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": "big"}}]"#,
                ),
                "codec \"bytes\" with endian \"big\" (only little-endian chunks map without a copy) is not supported",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": null}}]"#,
                ),
                "codec \"bytes\" endian is null, but the spec allows only \"little\" or \"big\"",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": "little", "x": 1}}]"#,
                ),
                "codec \"bytes\" with the configuration key \"x\" is not supported",
            ),
            (
                with(&base, "codecs", "[]"),
                "codecs is [], but the spec allows only a list holding one array-to-bytes codec such as \"bytes\"",
            ),
            (
                with(&base, "codecs", r#"[{"name": 5}]"#),
                "codecs[0] name is 5, but the spec allows only a string",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": "little"}, "must_understand": "no"}]"#,
                ),
                "codecs[0] \"bytes\" must_understand is \"no\", but the spec allows only true or false",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "transpose", "configuration": {"order": [0, 0]}}, "bytes"]"#,
                ),
                "codec \"transpose\" order is [0, 0], but the spec allows only a permutation of the axes 0 to 1",
            ),
            (
                with(
                    &base,
                    "codecs",
                    r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "transpose", "configuration": {"order": [1, 0]}}]"#,
                ),
                "codecs is [\"bytes\", \"transpose\"], but the spec allows only array-to-array codecs (transpose), then one array-to-bytes codec (bytes), then bytes-to-bytes codecs",
            ),
            (
                with(&base, "shape", "[4.0, 7]"),
                "shape is [4.0, 7], but the spec allows only a list of whole numbers, each at least 0",
            ),
            (
                with(
                    &base,
                    "chunk_grid",
                    r#"{"name": "regular", "configuration": {"chunk_shape": [-1, 3]}}"#,
                ),
                "chunk_grid chunk_shape is [-1, 3], but the spec allows only a list of whole numbers, each at least 0",
            ),
            (
                with(&base, "chunk_grid", r#""regular""#),
                "chunk_grid chunk_shape is missing (the spec requires it)",
            ),
            (
                with(&base, "node_type", "1"),
                "node_type is 1, but the spec allows only \"array\" or \"group\"",
            ),
            (
                with(&base, "zarr_format", r#""3""#),
                "zarr_format is \"3\", but the spec allows only the number 3",
            ),
            (
                with(&base, "attributes", "[]"),
                "attributes is [], but the spec allows only an object",
            ),
            (
                with(&base, "dimension_names", r#"["x"]"#),
                "dimension_names is [\"x\"], but the spec allows only a list of 2 names (strings or null), one per axis",
            ),
            (
                with(&base, "fill_value", r#""0xzz""#),
                "fill_value \"0xzz\" cannot be read as float32: the spec allows a number, \"NaN\", \"Infinity\", \"-Infinity\" or \"0x\" and 8 hex digits",
            ),
            (
                with(&base, "extra", r#"{"must_understand": true}"#),
                "extension field \"extra\" is not marked \"must_understand\": false, and this crate does not know it",
            ),
            (
                with(&base, "data_type", r#""float64""#),
                "data_type \"float64\" is not the element type asked for (float32)",
            ),
            (
                with(
                    &base,
                    "chunk_grid",
                    r#"{"name": "rectangular", "configuration": {}}"#,
                ),
                "chunk_grid \"rectangular\" is not supported",
            ),
        ];
        for (json, want) in cases {
            let e = match parse::<u8>(json.as_bytes()) {
                Err(ZarrProblem::DataType { .. }) => parse::<f32>(json.as_bytes()).unwrap_err(),
                other => other.unwrap_err(),
            };
            assert_eq!(readable(&e), want);
        }
        // the old messages, now without debug forms
        assert_eq!(
            ZarrProblem::Codec {
                name: "zstd".into()
            }
            .to_string(),
            "codec \"zstd\" changes the chunk bytes, so chunks cannot be mapped; write the array \
             uncompressed (zarr.create_array(..., compressors=None), or dask's to_zarr(..., \
             compressors=None))"
        );
    }

    #[test]
    fn the_json_we_write_parses_back() {
        let j = new_array_json::<i64>(&[5, 0], &[2, 1], "0", false);
        let l = parse::<i64>(j.as_bytes()).unwrap();
        assert_eq!((l.shape, l.chunk, l.fill), (vec![5, 0], vec![2, 1], 0));
    }

    #[test]
    fn no_input_panics() {
        // every prefix of a valid document, and odd values in every field
        let full = meta(CRC, "[1, 2]", "complex128");
        for end in 0..full.len() {
            let _ = parse::<num_complex::Complex<f64>>(&full.as_bytes()[..end]);
        }
        let odd = [
            "null",
            "true",
            "-1",
            "1e300",
            "18446744073709551616",
            "\"\"",
            "[]",
            "{}",
            "[[]]",
            "[null]",
            "{\"name\": {}}",
            "\"0x\"",
            "[\"0x\", \"0x\"]",
        ];
        for key in [
            "zarr_format",
            "node_type",
            "shape",
            "data_type",
            "chunk_grid",
            "chunk_key_encoding",
            "fill_value",
            "codecs",
            "storage_transformers",
            "dimension_names",
            "attributes",
        ] {
            for v in odd {
                let j = with(&meta(BYTES, "0", "float32"), key, v);
                let _ = parse::<f32>(j.as_bytes()).map_err(|e| e.to_string());
                let _ = parse::<num_complex::Complex<f32>>(j.as_bytes()).map_err(|e| e.to_string());
                let _ = parse::<i8>(j.as_bytes()).map_err(|e| e.to_string());
            }
        }
    }
}
