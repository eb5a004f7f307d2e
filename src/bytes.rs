//! The pure layer: bytes + shape + order → ndarray views. No I/O, no unsafe.
//!
//! Everything the file layer lends goes through here, so the checks (length, alignment,
//! overflow) live in one place and run under Miri. Use it directly for buffers you own:
//!
//! ```
//! use ndarray_mmap::{bytes, Order};
//! use ndarray::Ix2;
//!
//! let data: Vec<u32> = (0..6).collect();
//! let raw: &[u8] = bytemuck::cast_slice(&data);
//! let v = bytes::view::<u32, _>(raw, Ix2(2, 3), Order::C).unwrap();
//! assert_eq!(v[[1, 0]], 3);
//! let f = bytes::view::<u32, _>(raw, Ix2(2, 3), Order::F).unwrap();
//! assert_eq!(f[[1, 0]], 1);
//! ```

use bytemuck::Pod;
use ndarray::{ArrayView, ArrayViewMut, Dimension, ShapeBuilder};

use crate::element::type_name;
use crate::error::Error;
use crate::shape::{Order, byte_count, checked_product};

/// The number of bytes an array of `shape` and element `T` spans.
///
/// # Errors
/// [`Error::ZeroSizedElement`] for a zero-sized `T`; [`Error::Overflow`] when the count
/// exceeds `isize::MAX`.
///
/// ```
/// assert_eq!(ndarray_mmap::bytes::byte_len::<f64>(&[3, 4]).unwrap(), 96);
/// ```
pub fn byte_len<T: Pod>(shape: &[usize]) -> Result<usize, Error> {
    let size = elem_size::<T>()?;
    checked_product(shape)
        .and_then(|n| byte_count(n, size))
        .ok_or_else(|| Error::Overflow {
            path: None,
            shape: shape
                .iter()
                .map(|&d| isize::try_from(d).unwrap_or(isize::MAX))
                .collect(),
            elem: type_name::<T>(),
        })
}

pub(crate) fn elem_size<T>() -> Result<usize, Error> {
    match std::mem::size_of::<T>() {
        0 => Err(Error::ZeroSizedElement {
            path: None,
            elem: type_name::<T>(),
        }),
        n => Ok(n),
    }
}

/// Checks that `len` bytes at `addr` hold exactly an array of `shape`.
fn check<T: Pod>(addr: usize, len: usize, shape: &[usize]) -> Result<(), Error> {
    let needed = byte_len::<T>(shape)?;
    if needed != len {
        return Err(Error::LengthMismatch {
            path: None,
            shape: shape.to_vec(),
            elem: type_name::<T>(),
            needed: needed as u64,
            available: len as u64,
        });
    }
    let align = std::mem::align_of::<T>();
    if needed != 0 && !addr.is_multiple_of(align) {
        return Err(Error::Misaligned {
            path: None,
            offset: (addr % align) as u64,
            elem: type_name::<T>(),
            align,
        });
    }
    Ok(())
}

fn shaped<D: Dimension>(dim: D, order: Order) -> ndarray::StrideShape<D> {
    if order.is_column_major() {
        dim.f().into()
    } else {
        dim.into()
    }
}

/// Views `bytes` as an array of `T` with `shape` in `order`, without copying.
///
/// # Errors
/// [`Error::LengthMismatch`] unless `bytes` holds exactly the shape's elements,
/// [`Error::Misaligned`] when `bytes` is not aligned for `T`, [`Error::Overflow`] and
/// [`Error::ZeroSizedElement`] as for [`byte_len`].
///
/// ```
/// use ndarray_mmap::{bytes, Order};
/// let raw = [0u8; 12];
/// let v = bytes::view::<u8, _>(&raw, ndarray::IxDyn(&[3, 4]), Order::C).unwrap();
/// assert_eq!(v.shape(), &[3, 4]);
/// ```
pub fn view<T: Pod, D: Dimension>(
    bytes: &[u8],
    shape: D,
    order: Order,
) -> Result<ArrayView<'_, T, D>, Error> {
    check::<T>(bytes.as_ptr() as usize, bytes.len(), shape.slice())?;
    // Both checks above make the cast infallible; an empty array needs no pointer at all.
    let elems: &[T] = if bytes.is_empty() {
        &[]
    } else {
        bytemuck::cast_slice(bytes)
    };
    ArrayView::from_shape(shaped(shape, order), elems).map_err(|e| unreachable_shape(&e))
}

/// Views `bytes` mutably as an array of `T` with `shape` in `order`, without copying.
///
/// # Errors
/// As for [`view`].
///
/// ```
/// use ndarray_mmap::{bytes, Order};
/// let mut raw = [0u64; 4];
/// let mut v = bytes::view_mut::<u64, _>(bytemuck::cast_slice_mut(&mut raw), ndarray::Ix2(2, 2), Order::C).unwrap();
/// v[[1, 0]] = 7;
/// assert_eq!(raw[2], 7);
/// ```
pub fn view_mut<T: Pod, D: Dimension>(
    bytes: &mut [u8],
    shape: D,
    order: Order,
) -> Result<ArrayViewMut<'_, T, D>, Error> {
    check::<T>(bytes.as_ptr() as usize, bytes.len(), shape.slice())?;
    let elems: &mut [T] = if bytes.is_empty() {
        &mut []
    } else {
        bytemuck::cast_slice_mut(bytes)
    };
    ArrayViewMut::from_shape(shaped(shape, order), elems).map_err(|e| unreachable_shape(&e))
}

/// `from_shape` cannot fail after [`check`]; if ndarray ever disagrees, report rather
/// than panic.
#[cold]
fn unreachable_shape(e: &ndarray::ShapeError) -> Error {
    Error::from(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("ndarray rejected a checked shape: {e}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Ix1, Ix2, IxDyn};

    /// A buffer whose data starts `shift` bytes past an 8-aligned address.
    fn shifted(len: usize, shift: usize) -> (Vec<u64>, usize) {
        (vec![0u64; len / 8 + 2], shift)
    }

    #[test]
    fn c_and_fortran_strides() {
        let data: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let raw: &[u8] = bytemuck::cast_slice(&data);
        let c = view::<f32, _>(raw, Ix2(2, 3), Order::C).unwrap();
        assert_eq!(c.strides(), &[3, 1]);
        assert_eq!(c[[1, 2]], 5.0);
        let f = view::<f32, _>(raw, Ix2(2, 3), Order::F).unwrap();
        assert_eq!(f.strides(), &[1, 2]);
        assert_eq!(f[[1, 2]], 5.0);
        assert_eq!(f[[1, 0]], 1.0);
        assert_eq!(c.as_ptr() as usize, raw.as_ptr() as usize);
    }

    #[test]
    fn every_misaligned_start_is_an_error() {
        let (mut buf, _) = shifted(64, 0);
        let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        for shift in 0..8 {
            let r = view::<u64, _>(&raw[shift..shift + 16], Ix1(2), Order::C);
            if shift == 0 {
                assert!(r.is_ok());
            } else {
                assert!(
                    matches!(r, Err(Error::Misaligned { offset, align: 8, .. }) if offset == shift as u64)
                );
            }
            // u8 never needs alignment
            assert!(view::<u8, _>(&raw[shift..shift + 16], Ix1(16), Order::C).is_ok());
            let m = view_mut::<u32, _>(&mut raw[shift..shift + 8], Ix1(2), Order::C);
            assert_eq!(m.is_ok(), shift % 4 == 0);
        }
    }

    #[test]
    fn length_must_match_exactly() {
        let raw = [0u8; 16];
        assert!(matches!(
            view::<u32, _>(&raw[..15], Ix1(4), Order::C),
            Err(Error::LengthMismatch {
                needed: 16,
                available: 15,
                ..
            })
        ));
        assert!(matches!(
            view::<u32, _>(&raw, Ix1(3), Order::C),
            Err(Error::LengthMismatch {
                needed: 12,
                available: 16,
                ..
            })
        ));
    }

    #[test]
    fn empty_and_zero_d() {
        // a misaligned empty slice is still a valid empty view
        let raw = [0u8; 3];
        let v = view::<f64, _>(&raw[1..1], IxDyn(&[0, 5]), Order::C).unwrap();
        assert_eq!(v.len(), 0);
        let mut one = [0u16; 1];
        let v = view::<u16, _>(bytemuck::cast_slice(&one[..]), IxDyn(&[]), Order::C).unwrap();
        assert_eq!(v.ndim(), 0);
        let mut m =
            view_mut::<u16, _>(bytemuck::cast_slice_mut(&mut one[..]), IxDyn(&[]), Order::F)
                .unwrap();
        m[[]] = 9;
        assert_eq!(one[0], 9);
    }

    #[test]
    fn overflow_and_zero_sized() {
        let raw = [0u8; 8];
        assert!(matches!(
            view::<u32, _>(&raw, IxDyn(&[usize::MAX, 2]), Order::C),
            Err(Error::Overflow { .. })
        ));
        assert!(matches!(
            view::<(), _>(&raw, Ix1(2), Order::C),
            Err(Error::ZeroSizedElement { .. })
        ));
    }

    #[test]
    fn writes_reach_the_buffer() {
        let mut buf = [0u32; 6];
        {
            let mut v = view_mut::<u32, _>(bytemuck::cast_slice_mut(&mut buf), Ix2(3, 2), Order::F)
                .unwrap();
            v[[2, 1]] = 42;
            v[[1, 0]] = 7;
        }
        assert_eq!(buf, [0, 7, 0, 0, 0, 42]);
    }
}
