//! [`Numeric`]: element arithmetic as numpy does it, and the vectorised sums.

use std::fmt;

use crate::element::Element;

/// Element arithmetic as numpy does it: integers wrap around, never panic, and divide by
/// zero to 0; floats follow IEEE 754. Implemented for every [`Element`] type.
///
/// ```
/// use ndarray_mmap::ops::Numeric;
/// assert_eq!(250u8.elem_add(10), 4);              // wraps
/// assert_eq!(i32::MIN.elem_div(-1), i32::MIN);    // wraps
/// assert_eq!(7i64.elem_div(0), 0);                // numpy's x // 0 == 0
/// assert_eq!((-7i32).elem_div(2), -3);            // rounds toward zero, like Rust's `/`
/// assert!(f32::NAN.elem_min(1.0).is_nan());       // NaN propagates, as in np.minimum
/// ```
pub trait Numeric: Element {
    /// The type [`sum`](super::sum) returns: `i64` for signed integers, `u64` for unsigned ones (both
    /// wrapping, as numpy's default integer sum), `f64` for floats.
    type Sum: Copy + Send + Sync + PartialEq + fmt::Debug + 'static;

    /// `self + rhs`, wrapping for integers.
    fn elem_add(self, rhs: Self) -> Self;
    /// `self - rhs`, wrapping for integers.
    fn elem_sub(self, rhs: Self) -> Self;
    /// `self * rhs`, wrapping for integers.
    fn elem_mul(self, rhs: Self) -> Self;
    /// `self / rhs`; for integers rounded toward zero, wrapping (`MIN / -1 == MIN`), and
    /// 0 when `rhs` is 0 (numpy gives 0 there too, with a warning).
    fn elem_div(self, rhs: Self) -> Self;
    /// The smaller value; NaN if either is NaN.
    fn elem_min(self, rhs: Self) -> Self;
    /// The larger value; NaN if either is NaN.
    fn elem_max(self, rhs: Self) -> Self;
    /// The value as `f64` (rounded for 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;

    #[doc(hidden)]
    fn sum_zero() -> Self::Sum;
    #[doc(hidden)]
    fn sum_add(a: Self::Sum, b: Self::Sum) -> Self::Sum;
    #[doc(hidden)]
    fn sum_slice(s: &[Self]) -> Self::Sum;
    #[doc(hidden)]
    fn to_sum(self) -> Self::Sum;
    /// The smallest element of a slice (NaN if any is), `None` when empty; vectorised.
    #[doc(hidden)]
    fn min_slice(s: &[Self]) -> Option<Self>;
    /// The largest element of a slice (NaN if any is), `None` when empty; vectorised.
    #[doc(hidden)]
    fn max_slice(s: &[Self]) -> Option<Self>;
}

/// Sums with eight independent accumulators, so the loop vectorizes.
#[inline]
pub(super) fn fold8<T: Copy, S: Copy>(
    s: &[T],
    zero: S,
    conv: impl Fn(T) -> S,
    add: impl Fn(S, S) -> S,
) -> S {
    let mut acc = [zero; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = add(acc[i], conv(c[i]));
        }
    }
    let mut total = zero;
    for x in chunks.remainder() {
        total = add(total, conv(*x));
    }
    for a in acc {
        total = add(total, a);
    }
    total
}

/// `pick` over a slice in eight independent lanes (so the loop vectorises), with a
/// separate per-lane flag for NaN (`nan`), which propagates as in numpy: the first NaN
/// seen is the result. `None` for an empty slice.
#[inline]
fn lanes8<T: Copy>(s: &[T], pick: impl Fn(T, T) -> T, nan: impl Fn(T) -> bool) -> Option<T> {
    let &first = s.first()?;
    let mut acc = [first; 8];
    let mut bad = [false; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = pick(acc[i], c[i]);
            bad[i] |= nan(c[i]);
        }
    }
    if bad.iter().any(|&b| b) || nan(first) {
        return s.iter().copied().find(|&x| nan(x));
    }
    let mut m = acc[0];
    for &a in &acc[1..] {
        m = pick(m, a);
    }
    for &x in chunks.remainder() {
        if nan(x) {
            return Some(x);
        }
        m = pick(m, x);
    }
    Some(m)
}

macro_rules! numeric_int {
    ($($t:ty => $sum:ty),*) => {$(
        impl Numeric for $t {
            type Sum = $sum;
            #[inline]
            fn elem_add(self, rhs: Self) -> Self { self.wrapping_add(rhs) }
            #[inline]
            fn elem_sub(self, rhs: Self) -> Self { self.wrapping_sub(rhs) }
            #[inline]
            fn elem_mul(self, rhs: Self) -> Self { self.wrapping_mul(rhs) }
            #[inline]
            fn elem_div(self, rhs: Self) -> Self {
                if rhs == 0 { 0 } else { self.wrapping_div(rhs) }
            }
            #[inline]
            fn elem_min(self, rhs: Self) -> Self { Ord::min(self, rhs) }
            #[inline]
            fn elem_max(self, rhs: Self) -> Self { Ord::max(self, rhs) }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            fn sum_zero() -> $sum { 0 }
            #[inline]
            fn sum_add(a: $sum, b: $sum) -> $sum { a.wrapping_add(b) }
            fn sum_slice(s: &[Self]) -> $sum {
                fold8(s, 0, |x| x as $sum, <$sum>::wrapping_add)
            }
            #[inline]
            fn to_sum(self) -> $sum { self as $sum }
            fn min_slice(s: &[Self]) -> Option<Self> {
                lanes8(s, |a, b| if b < a { b } else { a }, |_| false)
            }
            fn max_slice(s: &[Self]) -> Option<Self> {
                lanes8(s, |a, b| if b > a { b } else { a }, |_| false)
            }
        }
    )*};
}

numeric_int!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

macro_rules! numeric_float {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            type Sum = f64;
            #[inline]
            fn elem_add(self, rhs: Self) -> Self { self + rhs }
            #[inline]
            fn elem_sub(self, rhs: Self) -> Self { self - rhs }
            #[inline]
            fn elem_mul(self, rhs: Self) -> Self { self * rhs }
            #[inline]
            fn elem_div(self, rhs: Self) -> Self { self / rhs }
            #[inline]
            fn elem_min(self, rhs: Self) -> Self {
                if self.is_nan() || self <= rhs { self } else { rhs }
            }
            #[inline]
            fn elem_max(self, rhs: Self) -> Self {
                if self.is_nan() || self >= rhs { self } else { rhs }
            }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            fn sum_zero() -> f64 { 0.0 }
            #[inline]
            fn sum_add(a: f64, b: f64) -> f64 { a + b }
            fn sum_slice(s: &[Self]) -> f64 {
                fold8(s, 0.0, |x| x as f64, |a, b| a + b)
            }
            #[inline]
            fn to_sum(self) -> f64 { self as f64 }
            fn min_slice(s: &[Self]) -> Option<Self> {
                lanes8(s, |a, b| if b < a { b } else { a }, |x| x.is_nan())
            }
            fn max_slice(s: &[Self]) -> Option<Self> {
                lanes8(s, |a, b| if b > a { b } else { a }, |x| x.is_nan())
            }
        }
    )*};
}

numeric_float!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_never_panics() {
        assert_eq!(i8::MIN.elem_div(-1), i8::MIN);
        assert_eq!(5u32.elem_div(0), 0);
        assert_eq!(i64::MIN.elem_mul(-1), i64::MIN);
        assert_eq!(u8::MAX.elem_add(1), 0);
        assert_eq!(0u16.elem_sub(1), u16::MAX);
    }

    #[test]
    fn nan_propagates_through_min_and_max() {
        assert!(1.0f64.elem_max(f64::NAN).is_nan());
        assert!(f64::NAN.elem_max(1.0).is_nan());
        assert!(1.0f32.elem_min(f32::NAN).is_nan());
        assert_eq!(1.0f32.elem_min(2.0), 1.0);
    }
}
