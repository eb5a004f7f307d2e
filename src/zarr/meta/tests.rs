//! The unit tests of `zarr.json` parsing and writing.

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
    // compressed inner chunks are read into buffers (their codecs kept for that)
    let zstd = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd"}]"#;
    let l = shard("[2, 1]", zstd, CRC, r#""end""#).unwrap();
    assert_eq!(l.codecs.codecs, [ByteCodec::Zstd { level: 0 }]);
    let other = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "x-lzma"}]"#;
    assert!(
        matches!(shard("[2, 1]", other, CRC, r#""end""#), Err(ZarrProblem::Codec { name }) if name == "x-lzma")
    );
    let e = shard("[2, 1]", BYTES, CRC, r#""middle""#).unwrap_err();
    assert!(matches!(e, ZarrProblem::Malformed { .. }), "{e}");
    let odd = r#"[{"name": "crc32c"}, {"name": "bytes"}]"#;
    let e = shard("[2, 1]", BYTES, odd, r#""end""#).unwrap_err();
    assert!(
        readable(&e).contains("[crc32c, bytes]") && matches!(e, ZarrProblem::Unsupported { .. }),
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
    let z = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 0, "checksum": false}}]"#;
    let l = parse::<f32>(meta(z, "0", "float32").as_bytes()).unwrap();
    assert_eq!(
        (l.codecs.swap, l.codecs.codecs),
        (false, vec![ByteCodec::Zstd { level: 0 }])
    );
    let g = r#"[{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip", "configuration": {"level": 5}}, "crc32c"]"#;
    let l = parse::<f32>(meta(g, "0", "float32").as_bytes()).unwrap();
    assert_eq!(
        (l.codecs.swap, l.codecs.codecs),
        (true, vec![ByteCodec::Gzip { level: 5 }, ByteCodec::Crc32c])
    );
    // one byte elements have no byte order to swap
    let l = parse::<u8>(meta(g, "0", "uint8").as_bytes()).unwrap();
    assert!(!l.codecs.swap);
    let b = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle", "typesize": 4, "blocksize": 0}}]"#;
    let l = parse::<f32>(meta(b, "0", "float32").as_bytes()).unwrap();
    assert!(matches!(
        l.codecs.codecs[..],
        [ByteCodec::Blosc(Blosc {
            cname: 4,
            clevel: 3,
            shuffle: 2,
            typesize: 4,
            blocksize: 0
        })]
    ));
    let b = r#"["bytes", {"name": "blosc", "configuration": {"cname": "snappy"}}]"#;
    let e = parse::<u8>(meta(b, "0", "uint8").as_bytes()).unwrap_err();
    assert!(readable(&e).contains("one of blosclz, lz4"), "{e}");
    let b = r#"[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "x-lzma"}]"#;
    assert_eq!(
        parse::<f32>(meta(b, "0", "float32").as_bytes()).unwrap_err(),
        ZarrProblem::Codec {
            name: "x-lzma".into()
        }
    );
    // a compressor before bytes, or settings it does not have
    let z = r#"[{"name": "zstd"}, {"name": "bytes", "configuration": {"endian": "little"}}]"#;
    assert!(matches!(
        parse::<f32>(meta(z, "0", "float32").as_bytes()),
        Err(ZarrProblem::Malformed { .. })
    ));
    let z = r#"["bytes", {"name": "zstd", "configuration": {"dictionary": 1}}]"#;
    assert!(matches!(
        parse::<u8>(meta(z, "0", "uint8").as_bytes()),
        Err(ZarrProblem::Unsupported { .. })
    ));
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
    let c = parse::<num_complex::Complex<f32>>(meta(BYTES, "[1.5, -2]", "complex64").as_bytes())
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
                parse::<num_complex::Complex<f32>>(meta(BYTES, fill, dtype).as_bytes()).map(|_| ())
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
        let back = parse::<num_complex::Complex<f64>>(meta(BYTES, &json, "complex128").as_bytes())
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
        m.contains("Zarr v2 array") && m.contains("zarr_format=2") && m.contains("zarr_format=3"),
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
    // A known codec marked optional is still applied (its chunks are encoded with it).
    let c = r#"[{"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "zstd", "must_understand": false}]"#;
    let l = parse::<f32>(meta(c, "0", "float32").as_bytes()).unwrap();
    assert_eq!(l.codecs.codecs, [ByteCodec::Zstd { level: 0 }]);
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
        "codec \"zstd\" is not supported (zstd, gzip and crc32c are read; chunks without codecs \
         after bytes map with no copy); write the array with zstd, or uncompressed \
         (zarr.create_array(..., compressors=None), or dask's to_zarr(..., compressors=None))"
    );
}

#[test]
fn the_json_we_write_parses_back() {
    let j = new_array_json::<i64>(&[5, 0], &[2, 1], "0", false, None);
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
