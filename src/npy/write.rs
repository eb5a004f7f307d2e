//! Writing `.npy` headers: the dict text numpy writes, its padding and spare room.

use super::ARRAY_ALIGN;

/// numpy leaves `GROWTH_AXIS_MAX_DIGITS - len(str(shape[growth axis]))` spare spaces.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Bytes before the dict: magic, version, and the length field.
pub(super) fn prefix_len(version: (u8, u8)) -> Option<usize> {
    match version {
        (1, 0) => Some(10),
        (2, 0) | (3, 0) => Some(12),
        _ => None,
    }
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, as numpy's repr does it.
pub(super) fn dict_text(descr: &str, fortran_order: bool, shape: &[usize]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64 + shape.len() * 8);
    s.push_str("{'descr': '");
    s.push_str(descr);
    s.push_str("', 'fortran_order': ");
    s.push_str(if fortran_order { "True" } else { "False" });
    s.push_str(", 'shape': (");
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{d}");
    }
    if shape.len() == 1 {
        s.push(',');
    }
    s.push_str("), }");
    s
}

/// numpy's spare spaces: `21 - len(repr(shape[growth axis]))`, none for 0-d.
pub(super) fn growth_room(shape: &[usize], fortran_order: bool) -> usize {
    let axis = if fortran_order {
        shape.last()
    } else {
        shape.first()
    };
    match axis {
        Some(d) => GROWTH_AXIS_MAX_DIGITS.saturating_sub(d.to_string().len()),
        None => 0,
    }
}

/// `HEADER_LEN` for a dict of `dict_len` bytes: the dict, the `\n`, and the spaces that
/// put the data on an [`ARRAY_ALIGN`] boundary (numpy adds a whole 64 when already
/// aligned).
pub(super) fn padded_header_len(prefix: usize, dict_len: usize) -> usize {
    let hlen = dict_len + 1;
    let pad = ARRAY_ALIGN - (prefix + hlen) % ARRAY_ALIGN;
    hlen + pad
}
