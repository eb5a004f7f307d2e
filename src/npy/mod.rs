//! The `.npy` header: parse and write it on bytes. No I/O, no unsafe.
//!
//! A `.npy` file is a magic string, a version, a header length, a Python dict literal
//! (`{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`) padded with spaces to
//! a 64-byte boundary, then the raw data. [`NpyHeader::parse`] reads the first part from a
//! byte prefix of the file; [`NpyHeader::to_bytes`] writes exactly the bytes numpy writes.
//! The file layer ([`open_npy`](crate::open_npy) and friends, [`NpyHeader::from_path`])
//! does the I/O and the mapping.
//!
//! ```
//! use ndarray_mmap::{NpyHeader, Order};
//!
//! let h = NpyHeader::new("<f4", &[3, 4], Order::C)?;
//! let bytes = h.to_bytes();
//! assert_eq!(bytes.len(), 128); // the data starts on a 64-byte boundary
//! assert!(bytes.starts_with(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"));
//!
//! let back = NpyHeader::parse(&bytes)?;
//! assert_eq!(back, h);
//! assert_eq!(back.shape(), &[3, 4]);
//! assert_eq!(back.data_offset(), 128);
//! # Ok::<(), ndarray_mmap::Error>(())
//! ```

use crate::element::Element;
use crate::error::Error;
pub use crate::error::NpyProblem;
use crate::shape::Order;

mod parse;
mod write;

pub(crate) use parse::MAX_DIMS;
use parse::parse;
use write::{dict_text, growth_room, padded_header_len, prefix_len};

/// The 6 bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = crate::error::NPY_MAGIC;

/// The largest header (the dict and its padding, `HEADER_LEN` in numpy's terms) that is
/// read or written: numpy's default `max_header_size`. numpy itself refuses larger headers
/// unless told to trust the file.
pub const MAX_HEADER_LEN: usize = 10_000;

/// The most bytes [`NpyHeader::parse`] ever needs: the longest prefix (12 bytes for
/// versions 2.0 and 3.0) plus [`MAX_HEADER_LEN`]. Reading this many bytes of a file (or
/// all of it, if shorter) is always enough.
pub const MAX_HEADER_BYTES: usize = 12 + MAX_HEADER_LEN;

/// numpy pads the data start to a multiple of this many bytes (numpy >= 1.14).
pub const ARRAY_ALIGN: usize = 64;

/// A parsed (or planned) `.npy` header: the dtype descriptor, shape, memory order, where
/// the data starts, and the format version.
///
/// Made by [`parse`](Self::parse) from a file's first bytes, by
/// [`from_path`](Self::from_path) from a file, or by [`new`](Self::new) to write one.
///
/// ```
/// use ndarray_mmap::{NpyHeader, Order};
/// let h = NpyHeader::new("<f8", &[2, 3], Order::F)?;
/// assert_eq!(h.descr(), "<f8");
/// assert_eq!(h.order(), Order::F);
/// assert!(h.fortran_order());
/// assert_eq!(h.version(), (1, 0));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NpyHeader {
    version: (u8, u8),
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

impl NpyHeader {
    /// Plans the header numpy would write for an array of `descr`, `shape` and `order`:
    /// format version 1.0, numpy's spare room for growth along the first axis (the last
    /// in Fortran order), data aligned to [`ARRAY_ALIGN`] bytes.
    ///
    /// # Errors
    /// [`NpyProblem::UnsupportedDtype`] when `descr` is not a plain descriptor (ASCII
    /// letters, digits and `<>|=[]` only); [`NpyProblem::HeaderTooLong`] when the header
    /// would exceed [`MAX_HEADER_LEN`] (thousands of dimensions).
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let h = NpyHeader::new("|u1", &[], Order::C)?; // a 0-d array
    /// assert_eq!(h.data_offset(), 128);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn new(descr: &str, shape: &[usize], order: Order) -> Result<NpyHeader, Error> {
        Self::with_version(descr, shape, order, (1, 0))
    }

    /// Plans the header for an array of element type `T`: [`new`](Self::new) with
    /// [`Element::NPY_DESCR`].
    ///
    /// # Errors
    /// As for [`new`](Self::new).
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let h = NpyHeader::for_element::<i16>(&[7], Order::C)?;
    /// # #[cfg(target_endian = "little")]
    /// assert_eq!(h.descr(), "<i2");
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn for_element<T: Element>(shape: &[usize], order: Order) -> Result<NpyHeader, Error> {
        Self::new(T::NPY_DESCR, shape, order)
    }

    /// Like [`new`](Self::new) in a given format version, as numpy's
    /// `np.lib.format.write_array(f, a, version=...)` writes it.
    ///
    /// # Errors
    /// As for [`new`](Self::new), and [`NpyProblem::Version`] for a version other than
    /// (1, 0), (2, 0) and (3, 0).
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let h = NpyHeader::with_version("<f4", &[3, 4], Order::C, (2, 0))?;
    /// assert_eq!(&h.to_bytes()[..12], b"\x93NUMPY\x02\x00t\x00\x00\x00");
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn with_version(
        descr: &str,
        shape: &[usize],
        order: Order,
        version: (u8, u8),
    ) -> Result<NpyHeader, Error> {
        let err = |problem| Error::Npy {
            path: None,
            problem,
        };
        let prefix = prefix_len(version).ok_or_else(|| {
            err(NpyProblem::Version {
                major: version.0,
                minor: version.1,
            })
        })?;
        let plain = !descr.is_empty()
            && descr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"<>|=[]".contains(&b));
        if !plain {
            return Err(err(NpyProblem::UnsupportedDtype {
                descr: descr.to_string(),
                reason: "a descriptor written to a .npy header must be a plain numpy type string such as '<f4'",
            }));
        }
        if shape.len() > MAX_DIMS {
            return Err(err(NpyProblem::TooManyDims {
                ndim: shape.len(),
                max: MAX_DIMS,
            }));
        }
        let fortran_order = order == Order::F;
        let dict = dict_text(descr, fortran_order, shape);
        let dict_len = dict.len() + growth_room(shape, fortran_order);
        let header_len = padded_header_len(prefix, dict_len);
        if header_len > MAX_HEADER_LEN {
            return Err(err(NpyProblem::HeaderTooLong {
                len: header_len as u64,
                max: MAX_HEADER_LEN as u64,
            }));
        }
        Ok(NpyHeader {
            version,
            descr: descr.to_string(),
            fortran_order,
            shape: shape.to_vec(),
            data_offset: prefix + header_len,
        })
    }

    /// The format version, `(1, 0)`, `(2, 0)` or `(3, 0)`.
    ///
    /// ```
    /// let h = ndarray_mmap::NpyHeader::new("<f4", &[1], ndarray_mmap::Order::C)?;
    /// assert_eq!(h.version(), (1, 0));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn version(&self) -> (u8, u8) {
        self.version
    }

    /// The dtype descriptor as written, e.g. `"<f4"`.
    ///
    /// ```
    /// let h = ndarray_mmap::NpyHeader::new("<f4", &[1], ndarray_mmap::Order::C)?;
    /// assert_eq!(h.descr(), "<f4");
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn descr(&self) -> &str {
        &self.descr
    }

    /// The shape; empty for a 0-d array (which holds one element).
    ///
    /// ```
    /// let h = ndarray_mmap::NpyHeader::new("<f4", &[0, 3], ndarray_mmap::Order::C)?;
    /// assert_eq!(h.shape(), &[0, 3]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Whether the data is in Fortran (column-major) order.
    ///
    /// ```
    /// let h = ndarray_mmap::NpyHeader::new("<f4", &[2, 2], ndarray_mmap::Order::C)?;
    /// assert!(!h.fortran_order());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }

    /// The memory order of the data, as an [`Order`].
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let h = NpyHeader::new("<f4", &[2, 2], Order::F)?;
    /// assert_eq!(h.order(), Order::F);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn order(&self) -> Order {
        if self.fortran_order {
            Order::F
        } else {
            Order::C
        }
    }

    /// Where the data starts: the length of the magic, version, length field and header.
    ///
    /// ```
    /// let h = ndarray_mmap::NpyHeader::new("<f4", &[2, 2], ndarray_mmap::Order::C)?;
    /// assert_eq!(h.data_offset(), 128);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The exact bytes numpy writes before the data of this array, in this header's
    /// version: magic, version, length, the dict with sorted keys, numpy's spare room for
    /// growth, spaces up to a 64-byte boundary, and `\n`.
    ///
    /// For a header made by [`new`](Self::new) or [`with_version`](Self::with_version),
    /// or parsed from a file numpy wrote, the length is [`data_offset`](Self::data_offset).
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let bytes = NpyHeader::new("<i8", &[5], Order::C)?.to_bytes();
    /// assert_eq!(bytes.len(), 128);
    /// assert_eq!(bytes[127], b'\n');
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let prefix = prefix_len(self.version).unwrap_or(12);
        let mut dict = dict_text(&self.descr, self.fortran_order, &self.shape);
        let room = growth_room(&self.shape, self.fortran_order);
        let header_len = padded_header_len(prefix, dict.len() + room);
        dict.extend(std::iter::repeat_n(' ', header_len - 1 - dict.len()));
        dict.push('\n');
        let mut out = Vec::with_capacity(prefix + header_len);
        out.extend_from_slice(MAGIC);
        out.push(self.version.0);
        out.push(self.version.1);
        if prefix == 10 {
            // header_len <= MAX_HEADER_LEN < u16::MAX by construction
            out.extend_from_slice(&(header_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out
    }

    /// The header rewritten in place for `shape`: the same version and length
    /// ([`data_offset`](Self::data_offset) bytes), the spare spaces absorbing the longer
    /// shape. `None` when the new dict does not fit. For growing an array along its growth
    /// axis without moving the data.
    #[allow(dead_code)] // used by .npy growth
    pub(crate) fn encode_with_shape(&self, shape: &[usize]) -> Option<Vec<u8>> {
        let prefix = prefix_len(self.version)?;
        let header_len = self.data_offset.checked_sub(prefix)?;
        let mut dict = dict_text(&self.descr, self.fortran_order, shape);
        if dict.len() + 1 > header_len {
            return None;
        }
        dict.extend(std::iter::repeat_n(' ', header_len - 1 - dict.len()));
        dict.push('\n');
        let mut out = Vec::with_capacity(self.data_offset);
        out.extend_from_slice(MAGIC);
        out.push(self.version.0);
        out.push(self.version.1);
        if prefix == 10 {
            out.extend_from_slice(&u16::try_from(header_len).ok()?.to_le_bytes());
        } else {
            out.extend_from_slice(&u32::try_from(header_len).ok()?.to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        Some(out)
    }

    /// Parses a `.npy` header from the first bytes of a file. `bytes` may hold more (the
    /// whole file, or [`MAX_HEADER_BYTES`] of it); only the header is read. Versions 1.0,
    /// 2.0 and 3.0; keys in any order; the shape's dimensions as Python ints (with
    /// Python 2's `L` suffix in 1.0 and 2.0 files).
    ///
    /// Never panics, whatever the bytes; headers longer than [`MAX_HEADER_LEN`] are
    /// refused before anything is read from them.
    ///
    /// # Errors
    /// [`Error::Npy`] with the [`NpyProblem`]: not a .npy file, an unknown version, a
    /// header cut short or too long, a syntax error (with its byte offset), a missing,
    /// extra or repeated key, a value of the wrong kind, a dimension that is negative or
    /// too large, or a structured dtype (a list of fields).
    ///
    /// ```
    /// use ndarray_mmap::{Error, NpyHeader, NpyProblem};
    /// let mut bytes = b"\x93NUMPY\x01\x00\x46\x00{'shape': (2,), 'fortran_order': False, 'descr': '<u2'}".to_vec();
    /// bytes.resize(10 + 0x46 - 1, b' ');
    /// bytes.push(b'\n');
    /// let h = NpyHeader::parse(&bytes)?;
    /// assert_eq!((h.descr(), h.shape(), h.data_offset()), ("<u2", &[2usize][..], 80));
    ///
    /// let err = NpyHeader::parse(&bytes[..40]).unwrap_err();
    /// assert_eq!(err.to_string(), "the .npy header needs 80 bytes but the file has only 40");
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<NpyHeader, Error> {
        parse(bytes).map_err(|problem| Error::Npy {
            path: None,
            problem,
        })
    }

    /// Checks that this header's data can be viewed as elements of type `T`: the
    /// descriptor must be `T`'s in this machine's byte order (`'|b1'` is accepted as `u8`;
    /// byte order is irrelevant for one-byte types).
    ///
    /// # Errors
    /// [`NpyProblem::DtypeMismatch`] naming both descriptors, or
    /// [`NpyProblem::UnsupportedDtype`] for non-native byte order, objects, strings,
    /// records, datetimes and `|b1` asked for as anything but `u8`.
    ///
    /// ```
    /// use ndarray_mmap::{NpyHeader, Order};
    /// let h = NpyHeader::new(">f8", &[4], Order::C)?;
    /// let err = h.check_element::<i32>().unwrap_err();
    /// # #[cfg(target_endian = "little")]
    /// assert_eq!(err.to_string(), "dtype mismatch: the file holds '>f8' but i32 ('<i4') was asked for");
    /// # #[cfg(target_endian = "little")]
    /// assert!(h.check_element::<f64>().unwrap_err().to_string().contains("byte order"));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn check_element<T: Element>(&self) -> Result<(), Error> {
        check_descr::<T>(&self.descr).map_err(|problem| Error::Npy {
            path: None,
            problem,
        })
    }
}

/// Why a descriptor does not fit `T`.
fn check_descr<T: Element>(descr: &str) -> Result<(), NpyProblem> {
    if descr == T::NPY_DESCR {
        return Ok(());
    }
    let unsupported = |reason: &'static str| {
        Err(NpyProblem::UnsupportedDtype {
            descr: descr.to_string(),
            reason,
        })
    };
    let mismatch = || {
        Err(NpyProblem::DtypeMismatch {
            descr: descr.to_string(),
            elem: T::NAME,
            expected: T::NPY_DESCR,
        })
    };
    let (order, code) = match descr.as_bytes().first() {
        Some(&c @ (b'<' | b'>' | b'|' | b'=')) => (Some(c), &descr[1..]),
        _ => (None, descr),
    };
    match code.as_bytes().first() {
        Some(b'O') => {
            return unsupported("it holds Python objects (pickles), which have no fixed layout");
        }
        Some(b'S' | b'a' | b'U') => {
            return unsupported("string dtypes are not numeric; convert the array in numpy first");
        }
        Some(b'V') => return unsupported("void and structured dtypes are records, not numbers"),
        Some(b'M' | b'm') => {
            return unsupported(
                "datetime and timedelta arrays are not supported; save a.view('i8') from numpy to map them as i64",
            );
        }
        Some(b'b') if code == "b1" => {
            return if T::NAME == "u8" {
                Ok(())
            } else {
                unsupported(
                    "bool arrays map only as u8 (a bool must be 0 or 1, which a mapped view cannot guarantee)",
                )
            };
        }
        _ => {}
    }
    let t_code = &T::NPY_DESCR[1..];
    if code != t_code {
        return mismatch();
    }
    let one_byte = T::NPY_DESCR.starts_with('|');
    let native = T::NPY_DESCR.as_bytes()[0];
    match order {
        _ if one_byte => Ok(()),
        None | Some(b'=' | b'|') => Ok(()),
        Some(c) if c == native => Ok(()),
        Some(_) => unsupported(if cfg!(target_endian = "little") {
            "big-endian data is not in this machine's byte order; convert it in numpy with a.astype(a.dtype.newbyteorder('<'))"
        } else {
            "little-endian data is not in this machine's byte order; convert it in numpy with a.astype(a.dtype.newbyteorder('>'))"
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problem(bytes: &[u8]) -> NpyProblem {
        match NpyHeader::parse(bytes) {
            Err(Error::Npy { problem, .. }) => problem,
            other => panic!("expected an npy error, got {other:?}"),
        }
    }

    /// A v1 file prefix around `dict`, padded as numpy pads.
    fn v1(dict: &str) -> Vec<u8> {
        let header_len = padded_header_len(10, dict.len());
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.resize(10 + header_len - 1, b' ');
        out.push(b'\n');
        out
    }

    #[test]
    fn writes_exactly_what_numpy_writes() {
        // Captured from numpy 2.4: np.save(f, np.zeros((3, 4), '<f4')) etc.
        let cases: [(&str, &[usize], Order, &str); 5] = [
            (
                "<f4",
                &[3, 4],
                Order::C,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
            ),
            (
                "<i8",
                &[],
                Order::C,
                "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
            ),
            (
                "|u1",
                &[5],
                Order::C,
                "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }",
            ),
            (
                "<f8",
                &[2, 3],
                Order::F,
                "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
            ),
            (
                "<i2",
                &[0, 3],
                Order::C,
                "{'descr': '<i2', 'fortran_order': False, 'shape': (0, 3), }",
            ),
        ];
        for (descr, shape, order, dict) in cases {
            let h = NpyHeader::new(descr, shape, order).unwrap();
            let bytes = h.to_bytes();
            assert_eq!(bytes.len(), 128, "{dict}");
            assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00v\x00");
            assert_eq!(&bytes[10..10 + dict.len()], dict.as_bytes());
            assert!(bytes[10 + dict.len()..127].iter().all(|&b| b == b' '));
            assert_eq!(bytes[127], b'\n');
            assert_eq!(NpyHeader::parse(&bytes).unwrap(), h);
        }
        let v2 = NpyHeader::with_version("<f4", &[3, 4], Order::C, (2, 0)).unwrap();
        assert_eq!(&v2.to_bytes()[..12], b"\x93NUMPY\x02\x00t\x00\x00\x00");
        assert_eq!(v2.data_offset(), 128);
    }

    #[test]
    fn growth_room_and_whole_block_padding() {
        // The growth axis is the first (C) or last (Fortran); its digits eat the room.
        let c = NpyHeader::new("<f4", &[1_000_000, 3], Order::C).unwrap();
        let f = NpyHeader::new("<f4", &[3, 1_000_000], Order::F).unwrap();
        assert_eq!(c.data_offset(), 128);
        assert_eq!(f.data_offset(), 128);
        // numpy adds a whole 64 bytes of padding when the dict already ends on a boundary
        assert_eq!(padded_header_len(10, 53), 64 - 10 + 64);
        assert_eq!(padded_header_len(10, 52), 64 - 10);
        // in-place rewrite keeps the length and absorbs up to 21 digits
        let grown = c.encode_with_shape(&[usize::MAX, 3]).unwrap();
        assert_eq!(grown.len(), 128);
        let back = NpyHeader::parse(&grown).unwrap();
        assert_eq!(back.shape(), &[usize::MAX, 3]);
        assert_eq!(back.data_offset(), 128);
        let many = vec![usize::MAX; 8];
        assert!(c.encode_with_shape(&many).is_none());
    }

    #[test]
    fn reads_any_key_order_spacing_and_python2_longs() {
        let h = NpyHeader::parse(&v1(
            "{ \"shape\" :(3L,4L) ,'fortran_order':True,\n'descr':'<f8' }",
        ))
        .unwrap();
        assert_eq!(
            (h.descr(), h.shape(), h.fortran_order()),
            ("<f8", &[3, 4][..], true)
        );
        let h =
            NpyHeader::parse(&v1("{'descr': '|u1', 'fortran_order': False, 'shape': ()}")).unwrap();
        assert!(h.shape().is_empty());
        // 3.0 headers are UTF-8 and do not take `L` (numpy 2.4, write_array(version=(3, 0)))
        let v3 = |dict: &str| {
            let mut b = b"\x93NUMPY\x03\x00t\x00\x00\x00".to_vec();
            b.extend_from_slice(dict.as_bytes());
            b.resize(127, b' ');
            b.push(b'\n');
            b
        };
        let h = NpyHeader::parse(&v3(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
        ))
        .unwrap();
        assert_eq!(
            (h.version(), h.data_offset(), h.shape()),
            ((3, 0), 128, &[3, 4][..])
        );
        assert!(matches!(
            problem(&v3(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4), }"
            )),
            NpyProblem::Syntax {
                at: 64,
                expected: "a separator after the value"
            }
        ));
        let e = NpyHeader::parse(&v3(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'é': 1}",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("unexpected key \"é\""), "{e}");
        let mut bad = v3("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
        bad[20] = 0xff;
        assert!(matches!(problem(&bad), NpyProblem::NotUtf8 { at: 20 }));
        // latin-1 in 1.0: any byte decodes
        let e = NpyHeader::parse(&v1(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), '\u{e9}': 1}",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("unexpected key"), "{e}");
    }

    #[test]
    fn rejects_bad_headers_with_the_reason() {
        assert!(matches!(
            problem(b""),
            NpyProblem::Truncated {
                needed: 8,
                found: 0
            }
        ));
        assert!(matches!(problem(b"\x93NUM"), NpyProblem::Truncated { .. }));
        assert!(matches!(
            problem(b"\x93NUMPZ\x01\x00"),
            NpyProblem::NotNpy { .. }
        ));
        assert!(matches!(
            problem(b"\x93NUMPY\x04\x00\x00\x00"),
            NpyProblem::Version { major: 4, minor: 0 }
        ));
        assert!(matches!(
            problem(b"\x93NUMPY\x02\x00\xff\xff\xff\xff"),
            NpyProblem::HeaderTooLong {
                len: 0xffff_ffff,
                ..
            }
        ));
        type Check = fn(&NpyProblem) -> bool;
        let cases: [(&str, Check); 12] = [
            ("{'descr': '<f4', 'fortran_order': False}", |p| {
                matches!(p, NpyProblem::MissingKey { key: "shape" })
            }),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                |p| matches!(p, NpyProblem::UnexpectedKey { .. }),
            ),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                |p| matches!(p, NpyProblem::DuplicateKey { key: "descr" }),
            ),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", |p| {
                matches!(
                    p,
                    NpyProblem::BadValue {
                        key: "fortran_order",
                        ..
                    }
                )
            }),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (5)}",
                |p| matches!(p, NpyProblem::BadValue { key: "shape", .. }),
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [5]}",
                |p| matches!(p, NpyProblem::BadValue { key: "shape", .. }),
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}",
                |p| matches!(p, NpyProblem::BadDim { axis: 1, .. }),
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                |p| matches!(p, NpyProblem::BadDim { axis: 0, .. }),
            ),
            (
                "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': ()}",
                |p| matches!(p, NpyProblem::UnsupportedDtype { .. }),
            ),
            (
                "{'descr': '<f4', 'fortran_order': Falsey, 'shape': ()}",
                |p| matches!(p, NpyProblem::Syntax { .. }),
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': ()} x",
                |p| matches!(p, NpyProblem::Syntax { .. }),
            ),
            (
                "{'descr': '<f4' 'fortran_order': False, 'shape': ()}",
                |p| matches!(p, NpyProblem::Syntax { .. }),
            ),
        ];
        for (dict, ok) in cases {
            let p = problem(&v1(dict));
            assert!(ok(&p), "{dict}: {p:?}");
        }
        let deep = format!("{{'descr': {}1{}}}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(problem(&v1(&deep)), NpyProblem::Syntax { .. }));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = NpyHeader::new("<f4", &[3, 4], Order::C).unwrap().to_bytes();
        for n in 0..bytes.len() {
            assert!(NpyHeader::parse(&bytes[..n]).is_err(), "{n}");
        }
        let e = NpyHeader::parse(&bytes[..100]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the .npy header needs 128 bytes but the file has only 100"
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn element_checks_name_both_descriptors() {
        let h = |d: &str| NpyHeader::new(d, &[1], Order::C).unwrap();
        assert!(h("<f4").check_element::<f32>().is_ok());
        assert!(h("=f4").check_element::<f32>().is_ok());
        assert!(h("|u1").check_element::<u8>().is_ok());
        assert!(h("<u1").check_element::<u8>().is_ok());
        assert!(h("|b1").check_element::<u8>().is_ok());
        assert!(h("|i1").check_element::<i8>().is_ok());
        let msg = |d: &str| h(d).check_element::<f32>().unwrap_err().to_string();
        assert_eq!(
            msg("<f8"),
            "dtype mismatch: the file holds '<f8' but f32 ('<f4') was asked for"
        );
        assert!(msg(">f4").contains("big-endian"), "{}", msg(">f4"));
        assert!(msg("|O").contains("Python objects"));
        assert!(msg("<U3").contains("string"));
        assert!(msg("|V8").contains("structured"));
        assert!(msg("<M8[ns]").contains("datetime"));
        assert!(
            h("|b1")
                .check_element::<i8>()
                .unwrap_err()
                .to_string()
                .contains("only as u8")
        );
        assert!(NpyHeader::new("'", &[1], Order::C).is_err());
    }

    #[test]
    fn at_most_numpys_64_dimensions() {
        let shape = vec![1usize; 65];
        assert!(matches!(
            NpyHeader::new("<f4", &shape, Order::C),
            Err(Error::Npy {
                problem: NpyProblem::TooManyDims { ndim: 65, max: 64 },
                ..
            })
        ));
        let shape = vec![1usize; 64];
        let h = NpyHeader::new("<f4", &shape, Order::C).unwrap();
        assert_eq!(NpyHeader::parse(&h.to_bytes()).unwrap(), h);
        // Read as written by hand: 65 is refused too.
        let mut dict = String::from("{'descr': '<f4', 'fortran_order': False, 'shape': (");
        dict.push_str(&"1, ".repeat(65));
        dict.push_str("), }");
        assert!(matches!(
            NpyHeader::parse(&by_hand(1, &dict)),
            Err(Error::Npy {
                problem: NpyProblem::TooManyDims { ndim: 65, .. },
                ..
            })
        ));
    }

    /// A header of version `major` (1 or 3) holding `dict`, padded to 64 bytes.
    fn by_hand(major: u8, dict: &str) -> Vec<u8> {
        let prefix = if major == 1 { 10 } else { 12 };
        let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
        let mut b = b"\x93NUMPY".to_vec();
        b.extend_from_slice(&[major, 0]);
        if major == 1 {
            b.extend_from_slice(&((total - prefix) as u16).to_le_bytes());
        } else {
            b.extend_from_slice(&((total - prefix) as u32).to_le_bytes());
        }
        b.extend_from_slice(dict.as_bytes());
        b.resize(total - 1, b' ');
        b.push(b'\n');
        b
    }

    #[test]
    fn messages_quote_utf8_headers_as_utf8_and_cut_them_whole() {
        let v3 = |dict: &str| NpyHeader::parse(&by_hand(3, dict)).unwrap_err().to_string();
        let msg = v3("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '整形': 1}");
        assert!(msg.contains("整形"), "{msg}");
        let long = "é".repeat(60);
        let msg = v3(&format!(
            "{{'descr': '<f4', 'fortran_order': '{long}', 'shape': (2,), }}"
        ));
        assert!(msg.contains(&format!("'{}...", "é".repeat(39))), "{msg}");
    }

    #[test]
    fn integers_as_python_reads_them() {
        let header = |shape: &str| {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            NpyHeader::parse(&by_hand(1, &dict)).map(|h| h.shape().to_vec())
        };
        // What ast.literal_eval accepts, and what it refuses.
        assert_eq!(header("(+3,)").unwrap(), [3]);
        assert_eq!(header("(00,)").unwrap(), [0]);
        assert_eq!(header("(1_0,)").unwrap(), [10]);
        assert_eq!(header("(- 0,)").unwrap(), [0]);
        for bad in ["(007,)", "(--3,)", "(+-3,)", "(0_1,)", "(-3,)"] {
            assert!(header(bad).is_err(), "{bad} was accepted");
        }
    }

    fn header_strategy() -> impl Strategy<Value = NpyHeader> {
        let descr = prop::sample::select(vec![
            "<f4", "<f8", "|u1", "|i1", "<i2", ">u2", "<i4", "<u4", "<i8", ">u8", "|b1", "<c16",
        ]);
        let dim = prop_oneof![
            0usize..10,
            0usize..100_000,
            Just(usize::MAX),
            any::<usize>()
        ];
        let shape = prop::collection::vec(dim, 0..8);
        let order = prop_oneof![Just(Order::C), Just(Order::F)];
        let version = prop::sample::select(vec![(1u8, 0u8), (2, 0), (3, 0)]);
        (descr, shape, order, version)
            .prop_map(|(d, s, o, v)| NpyHeader::with_version(d, &s, o, v).unwrap())
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore)]
        fn write_then_parse_round_trips(h in header_strategy(), tail in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = h.to_bytes();
            prop_assert_eq!(bytes.len(), h.data_offset());
            prop_assert_eq!(bytes.len() % ARRAY_ALIGN, 0);
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(NpyHeader::parse(&bytes).unwrap(), h);
        }

        #[test]
        #[cfg_attr(miri, ignore)]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = NpyHeader::parse(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = NpyHeader::parse(&with_magic);
        }

        #[test]
        #[cfg_attr(miri, ignore)]
        fn mutated_headers_never_panic(h in header_strategy(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bytes = h.to_bytes();
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if let Ok(back) = NpyHeader::parse(&bytes) {
                prop_assert!(back.data_offset() <= bytes.len());
            }
        }
    }
}
