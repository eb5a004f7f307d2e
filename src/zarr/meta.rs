//! `zarr.json` for Zarr v3 arrays: parsed with serde_json into the few types needed, then
//! checked into a [`Layout`] this crate can map (regular grid, `bytes` codec, optionally
//! after a full `transpose`). No I/O.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::element::Element;
use crate::error::ZarrProblem;
use crate::shape::Order;

#[derive(Deserialize)]
struct Named {
    name: String,
    #[serde(default)]
    configuration: Option<Value>,
}

#[derive(Deserialize)]
struct ArrayMeta {
    zarr_format: u64,
    node_type: String,
    shape: Vec<u64>,
    data_type: Value,
    chunk_grid: Named,
    chunk_key_encoding: Named,
    fill_value: Value,
    codecs: Vec<Named>,
    #[serde(default)]
    storage_transformers: Vec<Value>,
    // Defined by the spec, not needed for mapping (attributes are user data).
    #[serde(default)]
    #[allow(dead_code)]
    attributes: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    dimension_names: Option<Value>,
    /// Extension fields: refused unless marked `"must_understand": false`.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// What the mapping layer needs from `zarr.json`, checked.
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

/// Parses and checks `zarr.json` for elements of `T`.
pub(crate) fn parse<T: Element>(json: &[u8]) -> Result<Layout<T>, ZarrProblem> {
    // A version or node type other than a v3 array is named before the field checks.
    let raw: Value = serde_json::from_slice(json).map_err(|e| ZarrProblem::Json {
        message: e.to_string(),
    })?;
    match (raw.get("zarr_format"), raw.get("node_type")) {
        (Some(Value::Number(n)), _) if n.as_u64() != Some(3) => {
            return Err(ZarrProblem::NotV3Array {
                found: format!("zarr_format {n}"),
            });
        }
        (_, Some(Value::String(t))) if t != "array" => {
            return Err(ZarrProblem::NotV3Array {
                found: format!("node_type {t}"),
            });
        }
        _ => {}
    }
    let meta: ArrayMeta = serde_json::from_value(raw).map_err(|e| ZarrProblem::Json {
        message: e.to_string(),
    })?;
    if meta.zarr_format != 3 || meta.node_type != "array" {
        return Err(ZarrProblem::NotV3Array {
            found: format!(
                "zarr_format {} node_type {}",
                meta.zarr_format, meta.node_type
            ),
        });
    }
    for (field, v) in &meta.extra {
        // The spec: an extension may be ignored only when it says so.
        let optional = v.get("must_understand").and_then(Value::as_bool) == Some(false);
        if !optional {
            return Err(ZarrProblem::MustUnderstand {
                field: field.clone(),
            });
        }
    }
    if let Some(t) = meta.storage_transformers.first() {
        return Err(ZarrProblem::Unsupported {
            what: format!("storage transformer {t}"),
        });
    }
    let expected = zarr_type::<T>();
    let dtype_ok = match &meta.data_type {
        Value::String(s) => s == expected || (s == "bool" && expected == "uint8"),
        _ => false,
    };
    if !dtype_ok {
        return Err(ZarrProblem::DataType {
            found: meta.data_type.to_string().trim_matches('"').to_owned(),
            expected,
        });
    }
    if meta.chunk_grid.name != "regular" {
        return Err(ZarrProblem::Unsupported {
            what: format!("chunk_grid {:?}", meta.chunk_grid.name),
        });
    }
    let chunk: Vec<u64> = meta
        .chunk_grid
        .configuration
        .as_ref()
        .and_then(|c| c.get("chunk_shape"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .ok_or_else(|| ZarrProblem::Json {
            message: "chunk_grid has no chunk_shape".into(),
        })?;
    if chunk.len() != meta.shape.len() || chunk.contains(&0) {
        return Err(ZarrProblem::Shape {
            shape: meta.shape.clone(),
            chunk_shape: chunk,
        });
    }
    let to_usize =
        |v: &[u64]| -> Option<Vec<usize>> { v.iter().map(|&x| usize::try_from(x).ok()).collect() };
    let (Some(shape), Some(chunk_us)) = (to_usize(&meta.shape), to_usize(&chunk)) else {
        return Err(ZarrProblem::Shape {
            shape: meta.shape.clone(),
            chunk_shape: chunk,
        });
    };
    // One chunk must be mappable (its bytes at most isize::MAX), and the shape an array.
    let fits = |v: &[usize]| {
        v.iter()
            .try_fold(std::mem::size_of::<T>().max(1), |n, &d| {
                n.checked_mul(d.max(1))
            })
            .is_some_and(|n| n <= isize::MAX as usize)
    };
    if !fits(&chunk_us) || !fits(&shape) {
        return Err(ZarrProblem::Shape {
            shape: meta.shape.clone(),
            chunk_shape: chunk,
        });
    }
    let (separator, v2_keys) = key_encoding(&meta.chunk_key_encoding)?;
    let (order, shard, chunk_us) = match meta.codecs.as_slice() {
        [only] if only.name == "sharding_indexed" => {
            let (order, shard, inner) = sharding::<T>(only, &chunk_us)?;
            if !fits(&inner) {
                return Err(ZarrProblem::Shape {
                    shape: meta.shape.clone(),
                    chunk_shape: chunk,
                });
            }
            (order, Some(shard), inner)
        }
        codecs_ => (codecs::<T>(codecs_, shape.len())?, None, chunk_us),
    };
    let fill = fill_value::<T>(&meta.fill_value)?;
    Ok(Layout {
        shape,
        chunk: chunk_us,
        order,
        fill,
        separator,
        v2_keys,
        shard,
    })
}

fn key_encoding(k: &Named) -> Result<(String, bool), ZarrProblem> {
    let sep = k
        .configuration
        .as_ref()
        .and_then(|c| c.get("separator"))
        .and_then(Value::as_str);
    match k.name.as_str() {
        "default" => Ok((sep.unwrap_or("/").to_owned(), false)),
        "v2" => Ok((sep.unwrap_or(".").to_owned(), true)),
        other => Err(ZarrProblem::Unsupported {
            what: format!("chunk_key_encoding {other:?}"),
        }),
    }
    .and_then(|(s, v2)| {
        if s == "/" || s == "." {
            Ok((s, v2))
        } else {
            Err(ZarrProblem::Unsupported {
                what: format!("chunk key separator {s:?}"),
            })
        }
    })
}

/// The element order inside a chunk file: `bytes` (little endian) alone is C order; a
/// `transpose` that reverses the axes before it is Fortran order. Anything else refused.
fn codecs<T: Element>(codecs: &[Named], ndim: usize) -> Result<Order, ZarrProblem> {
    let mut order = Order::C;
    let mut seen_bytes = false;
    for c in codecs {
        match c.name.as_str() {
            "transpose" if !seen_bytes => {
                let perm: Option<Vec<usize>> = c
                    .configuration
                    .as_ref()
                    .and_then(|v| v.get("order"))
                    .and_then(|o| serde_json::from_value(o.clone()).ok());
                let identity: Vec<usize> = (0..ndim).collect();
                let reversed: Vec<usize> = (0..ndim).rev().collect();
                match perm {
                    Some(p) if p == identity => {}
                    Some(p) if p == reversed => {
                        order = if order.is_column_major() {
                            Order::C
                        } else {
                            Order::F
                        };
                    }
                    _ => {
                        return Err(ZarrProblem::Unsupported {
                            what: "a transpose other than the identity or the full reversal".into(),
                        });
                    }
                }
            }
            "bytes" if !seen_bytes => {
                let endian = c
                    .configuration
                    .as_ref()
                    .and_then(|v| v.get("endian"))
                    .and_then(Value::as_str);
                let one_byte = std::mem::size_of::<T>() == 1;
                match endian {
                    Some("little") if cfg!(target_endian = "little") => {}
                    Some("big") if cfg!(target_endian = "big") => {}
                    None if one_byte => {}
                    _ if one_byte => {}
                    other => {
                        return Err(ZarrProblem::Unsupported {
                            what: format!(
                                "bytes codec with endian {other:?} on this machine (only native byte order maps)"
                            ),
                        });
                    }
                }
                seen_bytes = true;
            }
            "sharding_indexed" => {
                return Err(ZarrProblem::Unsupported {
                    what: "sharding (codec \"sharding_indexed\") among other codecs (only a lone \
                           sharding_indexed with uncompressed inner chunks maps; or write without shards, \
                           shards=None)".into(),
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
/// at the start or the end. Returns the inner chunks' order, the shard and the inner
/// chunk shape.
fn sharding<T: Element>(
    c: &Named,
    shard: &[usize],
) -> Result<(Order, Shard, Vec<usize>), ZarrProblem> {
    let conf = c.configuration.as_ref();
    let get = |k: &str| conf.and_then(|v| v.get(k));
    let missing = |what: &str| ZarrProblem::Json {
        message: format!("sharding_indexed has no {what}"),
    };
    let inner: Vec<usize> = get("chunk_shape")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or_else(|| missing("chunk_shape"))?;
    if inner.len() != shard.len()
        || inner
            .iter()
            .zip(shard)
            .any(|(&i, &s)| i == 0 || !s.is_multiple_of(i))
    {
        return Err(ZarrProblem::Shape {
            shape: shard.iter().map(|&x| x as u64).collect(),
            chunk_shape: inner.iter().map(|&x| x as u64).collect(),
        });
    }
    let inner_codecs: Vec<Named> = get("codecs")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .ok_or_else(|| missing("codecs"))?;
    if inner_codecs.iter().any(|k| k.name == "sharding_indexed") {
        return Err(ZarrProblem::Unsupported {
            what: "nested sharding".into(),
        });
    }
    // A compressor inside the shards is named as such (write with compressors=None).
    let order = codecs::<T>(&inner_codecs, shard.len())?;
    let index_codecs: Vec<Named> = get("index_codecs")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let crc = match index_codecs
        .iter()
        .map(|k| {
            let endian = k
                .configuration
                .as_ref()
                .and_then(|v| v.get("endian"))
                .and_then(Value::as_str);
            (k.name.as_str(), endian)
        })
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | [("bytes", Some("little") | None)] => false,
        [("bytes", Some("little") | None), ("crc32c", _)] => true,
        _ => {
            return Err(ZarrProblem::Unsupported {
                what: "a shard index other than bytes (little endian) with an optional crc32c"
                    .into(),
            });
        }
    };
    let index_at_end = match get("index_location").and_then(Value::as_str) {
        None | Some("end") => true,
        Some("start") => false,
        Some(other) => {
            return Err(ZarrProblem::Unsupported {
                what: format!("shard index_location {other:?}"),
            });
        }
    };
    Ok((
        order,
        Shard {
            shape: shard.to_vec(),
            index_at_end,
            crc,
        },
        inner,
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

/// `fill_value` as `T`: a JSON number, `"NaN"`/`"Infinity"`/`"-Infinity"`, a `"0x…"` bit
/// pattern, `[re, im]` for complex, `true`/`false` for bool.
fn fill_value<T: Element>(v: &Value) -> Result<T, ZarrProblem> {
    let bad = || ZarrProblem::FillValue {
        found: v.to_string(),
    };
    let size = std::mem::size_of::<T>();
    let kind = T::NPY_DESCR.as_bytes()[1];
    let float = |v: &Value| -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        }
    };
    let mut bytes = vec![0u8; size];
    // A raw bit pattern, for any type.
    if let Some(hex) = v.as_str().and_then(|s| s.strip_prefix("0x")) {
        let bits = u128::from_str_radix(hex, 16).map_err(|_| bad())?;
        let le = bits.to_le_bytes();
        if size > 16 || (size < 16 && bits >> (8 * size) != 0) {
            return Err(bad());
        }
        bytes.copy_from_slice(&le[..size]);
        return Ok(bytemuck::pod_read_unaligned(&bytes));
    }
    match (kind, size) {
        (b'i', _) => {
            let x = match v {
                Value::Number(n) => n.as_i64().ok_or_else(bad)?,
                Value::Bool(b) => i64::from(*b),
                _ => return Err(bad()),
            };
            let le = x.to_le_bytes();
            if size < 8 && (x >> (8 * size - 1) != 0 && x >> (8 * size - 1) != -1) {
                return Err(bad());
            }
            bytes.copy_from_slice(&le[..size]);
        }
        (b'u' | b'b', _) => {
            let x = match v {
                Value::Number(n) => n.as_u64().ok_or_else(bad)?,
                Value::Bool(b) => u64::from(*b),
                _ => return Err(bad()),
            };
            if size < 8 && x >> (8 * size) != 0 {
                return Err(bad());
            }
            bytes.copy_from_slice(&x.to_le_bytes()[..size]);
        }
        (b'f', 4) => bytes.copy_from_slice(&(float(v).ok_or_else(bad)? as f32).to_le_bytes()),
        (b'f', 8) => bytes.copy_from_slice(&float(v).ok_or_else(bad)?.to_le_bytes()),
        #[cfg(feature = "half")]
        (b'f', 2) => bytes.copy_from_slice(
            &half::f16::from_f64(float(v).ok_or_else(bad)?)
                .to_bits()
                .to_le_bytes(),
        ),
        (b'c', 8 | 16) => {
            let Value::Array(parts) = v else {
                return Err(bad());
            };
            let [re, im] = parts.as_slice() else {
                return Err(bad());
            };
            let (re, im) = (float(re).ok_or_else(bad)?, float(im).ok_or_else(bad)?);
            if size == 8 {
                bytes[..4].copy_from_slice(&(re as f32).to_le_bytes());
                bytes[4..].copy_from_slice(&(im as f32).to_le_bytes());
            } else {
                bytes[..8].copy_from_slice(&re.to_le_bytes());
                bytes[8..].copy_from_slice(&im.to_le_bytes());
            }
        }
        _ => return Err(bad()),
    }
    if cfg!(target_endian = "big") {
        // Element types are native-endian; the bytes above are little-endian per part.
        return Err(bad());
    }
    Ok(bytemuck::pod_read_unaligned(&bytes))
}

/// `fill` as `zarr.json` spells it: integers as numbers, floats as numbers or `"NaN"`,
/// `"Infinity"`, `"-Infinity"`, complex as `[re, im]` (what [`parse`] reads back exactly).
pub(crate) fn fill_json<T: Element>(fill: T) -> String {
    let b = bytemuck::bytes_of(&fill);
    let le = |n: usize| -> [u8; 8] {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&b[..n]);
        w
    };
    let float = |part: &[u8]| -> String {
        let x = match part.len() {
            2 => f16_to_f64(u16::from_le_bytes([part[0], part[1]])),
            4 => f64::from(f32::from_le_bytes([part[0], part[1], part[2], part[3]])),
            _ => f64::from_le_bytes(part.try_into().expect("8 bytes")),
        };
        if x.is_nan() {
            "\"NaN\"".into()
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
    let n = b.len();
    match T::NPY_DESCR.as_bytes()[1] {
        b'i' => {
            let shift = 64 - 8 * n as u32;
            ((i64::from_le_bytes(le(n)) << shift) >> shift).to_string()
        }
        b'f' => float(b),
        b'c' => format!("[{}, {}]", float(&b[..n / 2]), float(&b[n / 2..])),
        _ => u64::from_le_bytes(le(n)).to_string(),
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
        let crc =
            r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]"#;
        let l = shard("[2, 1]", BYTES, crc, r#""end""#).unwrap();
        assert_eq!(l.chunk, [2, 1]);
        let s = l.shard.unwrap();
        assert_eq!((s.shape, s.index_at_end, s.crc), (vec![4, 3], true, true));
        assert!(
            !shard("[4, 3]", BYTES, BYTES, r#""start""#)
                .unwrap()
                .shard
                .unwrap()
                .index_at_end
        );
        // inner chunks that do not divide the shard, compressed ones, odd indexes
        assert!(matches!(
            shard("[3, 3]", BYTES, crc, r#""end""#),
            Err(ZarrProblem::Shape { .. })
        ));
        let zstd =
            r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd"}]"#;
        assert!(
            matches!(shard("[2, 1]", zstd, crc, r#""end""#), Err(ZarrProblem::Codec { name }) if name == "zstd")
        );
        assert!(matches!(
            shard("[2, 1]", BYTES, crc, r#""middle""#),
            Err(ZarrProblem::Unsupported { .. })
        ));
        let odd = r#"[{"name": "crc32c"}, {"name": "bytes"}]"#;
        assert!(matches!(
            shard("[2, 1]", BYTES, odd, r#""end""#),
            Err(ZarrProblem::Unsupported { .. })
        ));
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
            parse::<f64>(meta(BYTES, "\"-Infinity\"", "float64").as_bytes())
                .unwrap()
                .fill,
            f64::NEG_INFINITY
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
    }

    #[test]
    fn the_json_we_write_parses_back() {
        let j = new_array_json::<i64>(&[5, 0], &[2, 1], "0", false);
        let l = parse::<i64>(j.as_bytes()).unwrap();
        assert_eq!((l.shape, l.chunk, l.fill), (vec![5, 0], vec![2, 1], 0));
    }
}
