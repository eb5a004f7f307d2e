//! Fill values: read from every spelling the spec allows (numbers, `"NaN"`, `"Infinity"`,
//! hex bit patterns, `[re, im]` pairs) exactly, and written so that they read back bit for
//! bit.

use serde_json::Value;

use super::{show, zarr_type};
use crate::element::Element;
use crate::error::ZarrProblem;

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
pub(super) fn fill_value<T: Element>(v: &Value, is_bool: bool) -> Result<T, ZarrProblem> {
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
