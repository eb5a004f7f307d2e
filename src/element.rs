//! The numeric element types, with the names and `.npy` descriptors they carry.

use bytemuck::Pod;
use num_complex::Complex;

/// A numeric element type: `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `Complex<f32>` and
/// `Complex<f64>` (numpy's `complex64`, `complex128`), and `half::f16` with the `half`
/// feature. numpy's `bool` (`|b1`) maps as `u8`: a Rust `bool` must be 0 or 1, which would
/// need every byte checked, and opening a map reads nothing.
///
/// Every [`bytemuck::Pod`] type can be mapped from a raw file; `Element` adds what a
/// self-describing format needs: the numpy type descriptor in the machine's byte order.
/// It is sealed: the set matches the dtypes numpy and this crate agree on.
///
/// ```
/// use ndarray_mmap::Element;
/// # #[cfg(target_endian = "little")]
/// assert_eq!(f32::NPY_DESCR, "<f4");
/// assert_eq!(u8::NPY_DESCR, "|u1");
/// assert_eq!(i64::NAME, "i64");
/// # #[cfg(target_endian = "little")]
/// assert_eq!(<num_complex::Complex<f64>>::NPY_DESCR, "<c16");
/// ```
pub trait Element: Pod + Send + Sync + sealed::Sealed {
    /// The Rust name, for messages (`"f32"`).
    const NAME: &'static str;
    /// numpy's `descr` for this type in native byte order (`"<f4"` on little-endian).
    const NPY_DESCR: &'static str;
}

mod sealed {
    pub trait Sealed {}
}

#[cfg(target_endian = "little")]
macro_rules! endian {
    ($code:literal) => {
        concat!("<", $code)
    };
}
#[cfg(target_endian = "big")]
macro_rules! endian {
    ($code:literal) => {
        concat!(">", $code)
    };
}

macro_rules! element {
    ($($t:ty => $descr:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const NAME: &'static str = stringify!($t);
            const NPY_DESCR: &'static str = $descr;
        }
    )*};
}

element! {
    i8 => "|i1", u8 => "|u1",
    i16 => endian!("i2"), u16 => endian!("u2"),
    i32 => endian!("i4"), u32 => endian!("u4"),
    i64 => endian!("i8"), u64 => endian!("u8"),
    f32 => endian!("f4"), f64 => endian!("f8"),
    Complex<f32> => endian!("c8"), Complex<f64> => endian!("c16"),
}

#[cfg(feature = "half")]
element! {
    half::f16 => endian!("f2"),
}

/// A short name for `T` in messages: the last path segment of its type name.
pub(crate) fn type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    // keep generic arguments intact: only strip the module path before the first `<`
    let head_end = full.find('<').unwrap_or(full.len());
    match full[..head_end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptors() {
        assert_eq!(type_name::<f32>(), "f32");
        assert_eq!(type_name::<[u16; 3]>(), "[u16; 3]");
        assert_eq!(<u16 as Element>::NAME, "u16");
        assert_eq!(i8::NPY_DESCR, "|i1");
        #[cfg(target_endian = "little")]
        assert_eq!(f64::NPY_DESCR, "<f8");
    }
}
