//! Shape specifications with one inferred `-1`, checked size arithmetic, memory order.
//!
//! Pure arithmetic: no I/O, no unsafe. Errors carry no path; the file layer adds it.

use crate::error::{Error, ShapeProblem};

/// The memory order of an array's elements in the file: ndarray's own [`ndarray::Order`],
/// re-exported. `Order::C` (row-major, numpy's default) or `Order::F` (column-major,
/// numpy's `order='F'`); a map is in C order unless [`MapOptions::order`](crate::MapOptions::order)
/// says otherwise.
///
/// ```
/// use ndarray_mmap::Order;
/// assert_eq!(Order::C, ndarray::Order::RowMajor);
/// assert!(Order::F.is_column_major());
/// ```
pub use ndarray::Order;

/// What [`ShapeArg::to_spec`] gives for a length above `isize::MAX`; parsing refuses it.
pub(crate) const TOO_LONG: isize = isize::MIN;

/// A shape argument: a list of lengths where at most one may be `-1` (inferred).
///
/// Implemented, as arrays `[_; N]`, slices `&[_]` and `Vec<_>` (and references to them),
/// for `isize` and `i32` (so `[-1, 24]` and `[1000, 24]` need no suffix), for `usize`
/// (`[n, 24]` with `n: usize`, or `a.shape()` of another array), and as tuples like
/// ndarray's (`(n, 24)`, up to six lengths), and for ndarray's own shapes (`Ix1(5)`,
/// `IxDyn(&[2, 3])`, ...), which have no `-1`. A `usize` length above `isize::MAX` is
/// refused when parsed ([`ShapeProblem::TooLong`](crate::ShapeProblem::TooLong)).
///
/// Unsuffixed literals are `i32` when nothing else decides (Rust's rule), so a literal
/// length past `i32::MAX` needs a suffix (`[3_000_000_000usize, 2]`), and the 0-d shape
/// is `()` (an empty `[]` has no element type to pick an impl by).
///
/// ```
/// use ndarray_mmap::ShapeArg;
/// assert_eq!([-1, 24].to_spec(), vec![-1, 24]);
/// assert_eq!(vec![2isize, 3].to_spec(), vec![2, 3]);
/// let n: usize = 7;
/// assert_eq!([n, 24].to_spec(), vec![7, 24]);
/// assert_eq!((n, 24).to_spec(), vec![7, 24]);
/// assert_eq!(ndarray::Array2::<f32>::zeros((2, 3)).shape().to_spec(), vec![2, 3]);
/// assert_eq!(ndarray::Ix2(2, 3).to_spec(), vec![2, 3]);
/// ```
pub trait ShapeArg {
    /// The lengths, `-1` meaning "infer from the data's length".
    fn to_spec(&self) -> Vec<isize>;
}

/// One length as a spec entry: `usize` above `isize::MAX` becomes [`TOO_LONG`].
trait Length: Copy {
    fn spec(self) -> isize;
}

impl Length for isize {
    fn spec(self) -> isize {
        self
    }
}

impl Length for i32 {
    fn spec(self) -> isize {
        self as isize
    }
}

impl Length for usize {
    fn spec(self) -> isize {
        isize::try_from(self).unwrap_or(TOO_LONG)
    }
}

macro_rules! shape_arg_for {
    ($($t:ty),*) => {$(
        impl<const N: usize> ShapeArg for [$t; N] {
            fn to_spec(&self) -> Vec<isize> {
                self.iter().map(|&d| d.spec()).collect()
            }
        }
        impl<const N: usize> ShapeArg for &[$t; N] {
            fn to_spec(&self) -> Vec<isize> {
                self.iter().map(|&d| d.spec()).collect()
            }
        }
        impl ShapeArg for &[$t] {
            fn to_spec(&self) -> Vec<isize> {
                self.iter().map(|&d| d.spec()).collect()
            }
        }
        impl ShapeArg for Vec<$t> {
            fn to_spec(&self) -> Vec<isize> {
                self.iter().map(|&d| d.spec()).collect()
            }
        }
        impl ShapeArg for &Vec<$t> {
            fn to_spec(&self) -> Vec<isize> {
                self.iter().map(|&d| d.spec()).collect()
            }
        }
    )*};
}

shape_arg_for!(isize, i32, usize);

/// The 0-dimensional shape, as ndarray spells it (`Array0::zeros(())`). An empty array
/// literal `[]` has no element type to pick an impl by: write `()` instead.
impl ShapeArg for () {
    fn to_spec(&self) -> Vec<isize> {
        Vec::new()
    }
}

macro_rules! shape_arg_for_tuples {
    ($t:ty: $(($($n:ident),+)),+) => {$(
        impl ShapeArg for ($(shape_arg_for_tuples!(@ty $n $t),)+) {
            #[allow(non_snake_case)]
            fn to_spec(&self) -> Vec<isize> {
                let ($($n,)+) = *self;
                vec![$($n.spec()),+]
            }
        }
    )+};
    (@ty $n:ident $t:ty) => { $t };
}

shape_arg_for_tuples!(usize: (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F));
shape_arg_for_tuples!(i32: (A), (A, B), (A, B, C), (A, B, C, D), (A, B, C, D, E), (A, B, C, D, E, F));

impl<I> ShapeArg for ndarray::Dim<I>
where
    ndarray::Dim<I>: ndarray::Dimension,
{
    fn to_spec(&self) -> Vec<isize> {
        // A length above isize::MAX cannot be mapped, and saturating would change the
        // shape asked for: `isize::MIN` marks it, and parsing refuses it by axis.
        ndarray::Dimension::slice(self)
            .iter()
            .map(|&d| isize::try_from(d).unwrap_or(TOO_LONG))
            .collect()
    }
}

/// A checked spec: lengths, with the axis to infer if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) given: Vec<isize>,
    /// Lengths with the inferred axis (if any) set to 1.
    known: Vec<usize>,
    pub(crate) infer: Option<usize>,
}

impl Spec {
    /// Validates the sign pattern: at most one `-1`, nothing else negative.
    pub(crate) fn parse(given: Vec<isize>) -> Result<Spec, Error> {
        let mut infer = None;
        let mut known = Vec::with_capacity(given.len());
        for (axis, &d) in given.iter().enumerate() {
            let problem = match d {
                -1 if infer.is_some() => Some(ShapeProblem::SeveralInferred),
                -1 => {
                    infer = Some(axis);
                    None
                }
                TOO_LONG => Some(ShapeProblem::TooLong { axis }),
                d if d < 0 => Some(ShapeProblem::Negative { axis }),
                _ => None,
            };
            if let Some(reason) = problem {
                return Err(Error::InvalidShape {
                    path: None,
                    shape: given,
                    reason,
                });
            }
            // d >= 0 here, or -1 which counts as 1 in the known product
            known.push(usize::try_from(d).unwrap_or(1));
        }
        Ok(Spec {
            given,
            known,
            infer,
        })
    }

    /// Like [`Spec::parse`] but rejects `-1` (creating needs every length).
    pub(crate) fn parse_explicit(given: Vec<isize>) -> Result<Spec, Error> {
        let spec = Spec::parse(given)?;
        match spec.infer {
            Some(axis) => Err(Error::InvalidShape {
                path: None,
                shape: spec.given,
                reason: ShapeProblem::InferredWhenCreating { axis },
            }),
            None => Ok(spec),
        }
    }

    /// The lengths of an explicit shape (no `-1`, none negative), as given.
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // Zarr arrays
    pub(crate) fn explicit(shape: &impl ShapeArg) -> Result<Vec<usize>, Error> {
        Ok(Spec::parse_explicit(shape.to_spec())?.known)
    }

    /// Resolves the spec against `available` bytes of elements of `elem_size` bytes.
    ///
    /// With a `-1`, the available bytes must be a whole number of rows; without one, the
    /// shape must fit (`exact` demands it uses every byte). Returns the shape and its byte
    /// count.
    pub(crate) fn resolve(
        &self,
        elem: &'static str,
        elem_size: usize,
        available: u64,
        exact: bool,
    ) -> Result<(Vec<usize>, usize), Error> {
        let overflow = || Error::Overflow {
            path: None,
            shape: self.given.clone(),
            elem,
        };
        let row_elems = checked_product(&self.known).ok_or_else(overflow)?;
        let row_bytes = byte_count(row_elems, elem_size).ok_or_else(overflow)?;
        match self.infer {
            None => {
                if exact && row_bytes as u64 != available || row_bytes as u64 > available {
                    return Err(Error::LengthMismatch {
                        path: None,
                        shape: self.known.clone(),
                        elem,
                        needed: row_bytes as u64,
                        available,
                    });
                }
                Ok((self.known.clone(), row_bytes))
            }
            Some(axis) => {
                if !available.is_multiple_of(elem_size as u64) {
                    return Err(Error::NotWholeElements {
                        path: None,
                        bytes: available,
                        elem,
                        elem_size,
                    });
                }
                if row_elems == 0 {
                    // Any length would fit (numpy refuses too): ambiguous, so an error.
                    return Err(Error::InvalidShape {
                        path: None,
                        shape: self.given.clone(),
                        reason: ShapeProblem::InferredWithZero { axis },
                    });
                }
                if !available.is_multiple_of(row_bytes as u64) {
                    return Err(Error::NotWholeRows {
                        path: None,
                        bytes: available,
                        row_elems,
                        elem,
                        row_bytes: row_bytes as u64,
                    });
                }
                let rows = usize::try_from(available / row_bytes as u64).map_err(|_| overflow())?;
                let mut shape = self.known.clone();
                shape[axis] = rows;
                let bytes = byte_count(checked_product(&shape).ok_or_else(overflow)?, elem_size)
                    .ok_or_else(overflow)?;
                Ok((shape, bytes))
            }
        }
    }
}

/// The product of `dims`, or `None` when the product of the nonzero lengths exceeds
/// `isize::MAX` (ndarray's rule for every shape, even an empty one). Any zero makes it
/// zero.
pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    let nonzero = dims
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&p| p <= isize::MAX as usize)?;
    Some(if dims.contains(&0) { 0 } else { nonzero })
}

/// `elems * elem_size`, or `None` past `isize::MAX` (the most a slice may span).
pub(crate) fn byte_count(elems: usize, elem_size: usize) -> Option<usize> {
    elems
        .checked_mul(elem_size)
        .filter(|&b| b <= isize::MAX as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolve(spec: &[isize], avail: u64) -> Result<Vec<usize>, Error> {
        Spec::parse(spec.to_vec())?
            .resolve("f32", 4, avail, false)
            .map(|(s, _)| s)
    }

    #[test]
    fn infers_leading_and_trailing() {
        assert_eq!(resolve(&[-1, 24], 96 * 10).unwrap(), vec![10, 24]);
        assert_eq!(resolve(&[24, -1], 96 * 10).unwrap(), vec![24, 10]);
        assert_eq!(resolve(&[-1], 0).unwrap(), vec![0]);
        assert_eq!(resolve(&[], 4).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            resolve(&[-1, -1], 16),
            Err(Error::InvalidShape {
                reason: ShapeProblem::SeveralInferred,
                ..
            })
        ));
        assert!(matches!(
            resolve(&[3, -2], 16),
            Err(Error::InvalidShape {
                reason: ShapeProblem::Negative { axis: 1 },
                ..
            })
        ));
        assert!(matches!(
            resolve(&[0, -1], 16),
            Err(Error::InvalidShape {
                reason: ShapeProblem::InferredWithZero { axis: 1 },
                ..
            })
        ));
        assert!(matches!(
            resolve(&[-1], 5),
            Err(Error::NotWholeElements { bytes: 5, .. })
        ));
        let e = resolve(&[-1, 24], 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1000 bytes is not a whole number of rows of 24 f32 (96 bytes each)"
        );
        assert!(matches!(
            resolve(&[10, 10], 399),
            Err(Error::LengthMismatch {
                needed: 400,
                available: 399,
                ..
            })
        ));
        assert!(matches!(
            resolve(&[isize::MAX, 2], 16),
            Err(Error::Overflow { .. })
        ));
        assert!(matches!(
            resolve(&[isize::MAX / 4 + 1], 16),
            Err(Error::Overflow { .. })
        ));
        assert!(matches!(
            Spec::parse_explicit(vec![3, -1]),
            Err(Error::InvalidShape {
                reason: ShapeProblem::InferredWhenCreating { axis: 1 },
                ..
            })
        ));
    }

    #[test]
    fn exact_demands_every_byte() {
        let spec = Spec::parse(vec![2, 2]).unwrap();
        assert!(spec.resolve("f32", 4, 20, false).is_ok());
        assert!(matches!(
            spec.resolve("f32", 4, 20, true),
            Err(Error::LengthMismatch {
                needed: 16,
                available: 20,
                ..
            })
        ));
    }

    /// A deliberately naive model of inference, in 128-bit arithmetic.
    fn model(spec: &[isize], elem: u64, avail: u64) -> Option<Vec<usize>> {
        if spec.iter().filter(|&&d| d == -1).count() > 1 || spec.iter().any(|&d| d < -1) {
            return None;
        }
        // ndarray's rule: the product of the nonzero lengths is at most isize::MAX, even
        // when a zero length makes the array empty. 128 bits hold any product of two
        // isize lengths; a third overflows the cap anyway (checked_mul says so).
        let nonzero = spec
            .iter()
            .filter(|&&d| d > 0)
            .try_fold(1i128, |acc, &d| acc.checked_mul(d as i128))
            .filter(|&p| p <= isize::MAX as i128)?;
        let known = if spec.contains(&0) { 0 } else { nonzero };
        let known = Some(known).filter(|&k| {
            k.checked_mul(elem as i128)
                .is_some_and(|b| b <= isize::MAX as i128)
        })?;
        match spec.iter().position(|&d| d == -1) {
            None => (known * elem as i128 <= avail as i128)
                .then(|| spec.iter().map(|&d| d as usize).collect()),
            Some(axis) => {
                if !avail.is_multiple_of(elem) {
                    return None;
                }
                let n = (avail / elem) as i128;
                if known == 0 {
                    return None;
                }
                if n % known != 0 {
                    return None;
                }
                let mut out: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
                out[axis] = (n / known) as usize;
                Some(out)
            }
        }
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore)] // thousands of cases: too slow under Miri
        fn matches_naive_model(
            spec in prop::collection::vec(prop_oneof![Just(-1isize), -3isize..0, 0isize..7, Just(isize::MAX / 3)], 0..5),
            elem in prop_oneof![Just(1u64), Just(2), Just(4), Just(8)],
            avail in prop_oneof![0u64..2000, Just(u64::MAX / 2)],
        ) {
            let got = Spec::parse(spec.clone())
                .and_then(|s| s.resolve("t", elem as usize, avail, false))
                .ok()
                .map(|(s, _)| s);
            prop_assert_eq!(got, model(&spec, elem, avail));
        }
    }
}
