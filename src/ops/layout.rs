//! How a piece of an operand lies in memory: densely (one run of bytes, in C or Fortran
//! order) or not. No I/O.

use ndarray::ArrayViewD;

/// The order a piece of a write-only output is laid out densely in (C or Fortran), when it
/// goes through the scratch buffer and `pwrite`; `None` keeps it on the map (another
/// layout, or more than 64 MiB: the buffer is heap memory).
pub(super) fn dense<T>(v: &ArrayViewD<'_, T>) -> Option<crate::Order> {
    const SCRATCH_MAX: usize = 64 << 20;
    if v.len().saturating_mul(std::mem::size_of::<T>()) > SCRATCH_MAX {
        None
    } else if v.is_standard_layout() {
        Some(crate::Order::C)
    } else if v.t().is_standard_layout() {
        Some(crate::Order::F)
    } else {
        None
    }
}
