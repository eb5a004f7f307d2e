//! [`NpyProblem`]: what is wrong with a `.npy` header, and its messages.

use std::fmt;

/// The `.npy` magic string, defined here because the error layer imports nothing; the
/// npy layer publishes it as `npy::MAGIC`.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// What is wrong with a `.npy` file or header; carried by [`Error::Npy`](crate::Error::Npy).
///
/// ```
/// use ndarray_mmap::{Error, NpyHeader, NpyProblem};
/// let err = NpyHeader::parse(b"PK\x03\x04").unwrap_err();
/// assert!(matches!(err, Error::Npy { problem: NpyProblem::NotNpy { .. }, .. }));
/// assert_eq!(err.to_string(), r#"not a .npy file: it starts with b"PK\x03\x04", not b"\x93NUMPY""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NpyProblem {
    /// The bytes do not start with [`MAGIC`](crate::npy::MAGIC).
    NotNpy {
        /// The first bytes found (at most 6).
        found: Vec<u8>,
    },
    /// A format version other than 1.0, 2.0 and 3.0.
    Version {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The bytes end inside the header.
    Truncated {
        /// Bytes the header needs (up to where the data starts).
        needed: u64,
        /// Bytes there are.
        found: u64,
    },
    /// The header is longer than [`MAX_HEADER_LEN`](crate::npy::MAX_HEADER_LEN).
    HeaderTooLong {
        /// Its length in bytes.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The shape has more dimensions than numpy allows (64).
    TooManyDims {
        /// Dimensions in the shape.
        ndim: usize,
        /// numpy's limit.
        max: usize,
    },
    /// A version 3.0 header is not valid UTF-8.
    NotUtf8 {
        /// Byte offset in the file of the first invalid byte.
        at: u64,
    },
    /// The header is not a Python dict literal of the form numpy writes.
    Syntax {
        /// Byte offset in the file where parsing stopped.
        at: u64,
        /// What was expected there.
        expected: &'static str,
    },
    /// One of `descr`, `fortran_order`, `shape` is missing.
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A key other than `descr`, `fortran_order`, `shape`.
    UnexpectedKey {
        /// The key.
        key: String,
    },
    /// A key appears twice.
    DuplicateKey {
        /// The key.
        key: &'static str,
    },
    /// A field has a value of the wrong kind.
    BadValue {
        /// The field.
        key: &'static str,
        /// The value as written (shortened when long).
        found: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A shape dimension is negative or does not fit in `usize`.
    BadDim {
        /// The axis.
        axis: usize,
        /// The dimension as written.
        found: String,
    },
    /// The dtype cannot be mapped as any element type (objects, strings, structured
    /// records, non-native byte order, ...).
    UnsupportedDtype {
        /// The descriptor as written.
        descr: String,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// The file holds another element type than the one asked for.
    DtypeMismatch {
        /// The file's descriptor.
        descr: String,
        /// The Rust element type asked for.
        elem: &'static str,
        /// Its descriptor.
        expected: &'static str,
    },
    /// The data does not start at a multiple of the element's alignment (numpy before
    /// 1.14 wrote such files).
    MisalignedData {
        /// Where the data starts.
        data_offset: u64,
        /// The element type.
        elem: &'static str,
        /// Its alignment.
        align: usize,
    },
    /// The file's length is not the header's length plus the data's.
    DataLength {
        /// The header's shape.
        shape: Vec<usize>,
        /// The header's descriptor.
        descr: String,
        /// Where the data starts.
        data_offset: u64,
        /// The file length the header implies.
        expected: u64,
        /// The file's length.
        file_len: u64,
    },
}

/// Writes `b"..."` with non-printable bytes escaped.
struct ByteStr<'a>(&'a [u8]);

impl fmt::Display for ByteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b\"")?;
        for &b in self.0 {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        f.write_str("\"")
    }
}

impl fmt::Display for NpyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyProblem::NotNpy { found } => write!(
                f,
                "not a .npy file: it starts with {}, not {}",
                ByteStr(found),
                ByteStr(MAGIC)
            ),
            NpyProblem::Version { major, minor } => write!(
                f,
                "unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are known)"
            ),
            NpyProblem::Truncated { needed, found } => write!(
                f,
                "the .npy header needs {needed} bytes but the file has only {found}"
            ),
            NpyProblem::HeaderTooLong { len, max } => write!(
                f,
                "the .npy header is {len} bytes long, more than the {max} numpy reads by default (max_header_size)"
            ),
            NpyProblem::TooManyDims { ndim, max } => write!(
                f,
                "the shape has {ndim} dimensions; numpy allows at most {max}"
            ),
            NpyProblem::NotUtf8 { at } => {
                write!(f, "the .npy 3.0 header is not valid UTF-8 (byte {at})")
            }
            NpyProblem::Syntax { at, expected } => write!(
                f,
                "the .npy header is not a valid dict literal: expected {expected} at byte {at}"
            ),
            NpyProblem::MissingKey { key } => write!(f, "the .npy header has no '{key}' key"),
            NpyProblem::UnexpectedKey { key } => write!(
                f,
                "the .npy header has an unexpected key {key:?} (only 'descr', 'fortran_order' and 'shape' are allowed)"
            ),
            NpyProblem::DuplicateKey { key } => {
                write!(f, "the .npy header has the key '{key}' more than once")
            }
            NpyProblem::BadValue {
                key,
                found,
                expected,
            } => write!(
                f,
                "the .npy header's '{key}' is {found}; expected {expected}"
            ),
            NpyProblem::BadDim { axis, found } => write!(
                f,
                "the .npy header's 'shape' has dimension {axis} = {found}; dimensions must be integers from 0 to {}",
                usize::MAX
            ),
            NpyProblem::UnsupportedDtype { descr, reason } => {
                write!(f, "dtype '{descr}' cannot be mapped: {reason}")
            }
            NpyProblem::DtypeMismatch {
                descr,
                elem,
                expected,
            } => write!(
                f,
                "dtype mismatch: the file holds '{descr}' but {elem} ('{expected}') was asked for"
            ),
            NpyProblem::MisalignedData {
                data_offset,
                elem,
                align,
            } => write!(
                f,
                "the data starts at byte {data_offset}, not a multiple of the alignment of {elem} ({align} bytes); \
                 numpy before 1.14 wrote such files: load and save it again with a current numpy"
            ),
            NpyProblem::DataLength {
                shape,
                descr,
                data_offset,
                expected,
                file_len,
            } => {
                write!(f, "the .npy header describes shape (")?;
                for (i, d) in shape.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                if shape.len() == 1 {
                    f.write_str(",")?;
                }
                write!(
                    f,
                    ") of '{descr}': {} data bytes after the {data_offset}-byte header, {expected} in all, \
                     but the file has {file_len} bytes",
                    expected.saturating_sub(*data_offset)
                )
            }
        }
    }
}

/// What is wrong with a `.npz` archive or one of its members; carried by
/// [`Error::Npz`](crate::Error::Npz).
///
/// ```
/// use ndarray_mmap::NpzProblem;
/// let p = NpzProblem::Compressed { member: "a".into(), method: "Deflated".into() };
/// assert!(p.to_string().contains("np.savez"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NpzProblem {
    /// The file is not a zip archive the reader understands.
    NotZip {
        /// The zip reader's message.
        message: String,
    },
    /// No member of that name (with or without `.npy`).
    NoMember {
        /// The name asked for.
        name: String,
        /// The members there are.
        members: Vec<String>,
    },
    /// The member is compressed (`np.savez_compressed`): its bytes cannot be mapped.
    Compressed {
        /// The member.
        member: String,
        /// The zip compression method.
        method: String,
    },
    /// The member is encrypted.
    Encrypted {
        /// The member.
        member: String,
    },
    /// The member's bytes, as the zip directory gives them, run into the next member or
    /// the directory: the archive is corrupt (numpy reports a bad CRC).
    Bounds {
        /// The member.
        member: String,
        /// Where its data starts.
        start: u64,
        /// Where the directory says it ends.
        end: u64,
        /// Where the next member (or the directory) starts.
        next: u64,
    },
    /// Two members of one name ([`NpzWriter::add`](crate::NpzWriter::add)).
    Duplicate {
        /// The member.
        member: String,
    },
    /// The member's `.npy` data cannot be mapped as asked.
    Member {
        /// The member.
        member: String,
        /// Why, as the `.npy` layer says it (its "file" is the member).
        message: String,
    },
    /// The member's array data does not start at a multiple of the element's alignment.
    /// numpy's `np.savez` does not align members, so only 1-byte types map from its files.
    Misaligned {
        /// The member.
        member: String,
        /// Where the array data starts in the archive.
        offset: u64,
        /// The alignment the element type needs.
        align: usize,
    },
    /// The zip directory says the member's local header is at a byte where there is none
    /// (or the file ends inside it): the archive is truncated or corrupt.
    NoLocalHeader {
        /// The member.
        member: String,
        /// Where the directory says its local header starts.
        offset: u64,
    },
    /// The member's local header names another entry than the zip directory does: the
    /// archive is corrupt (numpy's zipfile refuses it: "File name in directory and header
    /// differ"), e.g. a second directory entry pointing at another member's bytes.
    HeaderName {
        /// The member, as the directory names it.
        member: String,
        /// Where its local header starts.
        offset: u64,
        /// The entry name in the local header.
        local: String,
    },
    /// Another member's local header lies inside this member's local header: the archive
    /// is corrupt.
    Overlap {
        /// The member.
        member: String,
        /// The member whose local header lies inside it.
        other: String,
        /// Where that local header starts.
        offset: u64,
    },
    /// A stored (uncompressed) member whose directory entry gives different stored and
    /// uncompressed sizes: the archive is corrupt.
    Sizes {
        /// The member.
        member: String,
        /// The bytes stored in the archive.
        stored: u64,
        /// The bytes of data the member is said to hold.
        size: u64,
    },
    /// Two entries of the archive are read under one name (numpy reads only the last of
    /// them): the archive is ambiguous.
    SameName {
        /// The name, as numpy lists it.
        member: String,
    },
    /// [`NpzWriter::add`](crate::NpzWriter::add) refuses a name numpy could not read back
    /// under that name.
    BadName {
        /// The name.
        member: String,
        /// Why not.
        reason: String,
    },
    /// The file at the archive's path is no longer the one [`open_npz`](crate::open_npz)
    /// read the directory of (replaced, say by a rename, removed, or resized): its offsets
    /// would describe another file.
    Replaced,
    /// The zip directory disagrees with the end-of-directory record that counts and
    /// measures it (or with itself, or the zip reader and numpy's zipfile would read
    /// different directories): readers disagree on the members, so the archive is refused
    /// as corrupt. numpy's zipfile reads entries until the record's size is used up and
    /// ignores its count; other readers trust the count.
    Directory {
        /// What disagrees.
        message: String,
    },
    /// The member uses a zip feature numpy's zipfile cannot read either: compressed patched
    /// data (flag bit 5) or strong encryption (flag bit 6), refused when the member is
    /// mapped, as numpy refuses to read it; or a zip version above 6.3 needed to extract
    /// it, refused when the archive is opened, as `np.load` refuses the archive.
    Unsupported {
        /// The member.
        member: String,
        /// Which feature.
        feature: String,
    },
    /// The file does not start with a zip signature (data before the archive, as in a
    /// self-extracting one): `np.load` goes by a file's first bytes and does not take it
    /// for an archive.
    Prefixed {
        /// The file's first bytes (up to 4).
        first: Vec<u8>,
    },
    /// [`NpzWriter::create`](crate::NpzWriter::create) was given a path naming something
    /// other than a regular file (a FIFO, a device, a directory): the archive cannot be
    /// written there.
    Destination {
        /// What the path names.
        kind: String,
    },
    /// An earlier [`NpzWriter::add`](crate::NpzWriter::add) failed partway through
    /// writing its member: the archive is left incomplete, and the writer refuses to add
    /// more or to finish it (the file at the path is untouched).
    Unusable {
        /// The member whose writing failed.
        member: String,
        /// What failed.
        message: String,
    },
}

/// A member name for a message: long ones (a zip name may take 65505 bytes) cut short,
/// with their length.
struct Short<'a>(&'a str);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KEEP: usize = 40;
        if self.0.len() <= 2 * KEEP {
            return write!(f, "{:?}", self.0);
        }
        let mut end = KEEP;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{:?}... ({} bytes)", &self.0[..end], self.0.len())
    }
}

impl fmt::Display for NpzProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpzProblem::NotZip { message } => write!(f, "not a .npz (zip) archive: {message}"),
            NpzProblem::NoMember { name, members } => {
                write!(f, "no member {name:?}; the members are {members:?}")
            }
            NpzProblem::Compressed { member, method } => write!(
                f,
                "member {member:?} is compressed ({method}) and cannot be mapped; save with \
                 np.savez, not np.savez_compressed"
            ),
            NpzProblem::Bounds {
                member,
                start,
                end,
                next,
            } => write!(
                f,
                "member {member:?} is said to span bytes {start}..{end}, past byte {next}, where \
                 the next member or the zip directory starts: the archive is corrupt"
            ),
            NpzProblem::Duplicate { member } => {
                write!(
                    f,
                    "member {} was already added to the archive",
                    Short(member)
                )
            }
            NpzProblem::Member { member, message } => write!(f, "member {member:?}: {message}"),
            NpzProblem::Encrypted { member } => {
                write!(f, "member {member:?} is encrypted and cannot be mapped")
            }
            NpzProblem::Misaligned {
                member,
                offset,
                align,
            } => write!(
                f,
                "member {member:?}'s data starts at byte {offset}, not a multiple of {align}: \
                 np.savez does not align members; write the archive with ndarray_mmap::NpzWriter \
                 (aligned, and np.load reads it), or save the array with np.save"
            ),
            NpzProblem::NoLocalHeader { member, offset } => write!(
                f,
                "member {member:?}: the zip directory puts its local header at byte {offset}, \
                 where there is none: the archive is truncated or corrupt"
            ),
            NpzProblem::HeaderName {
                member,
                offset,
                local,
            } => write!(
                f,
                "member {member:?}: the local header at byte {offset} names entry {local:?}, \
                 not the entry the zip directory names: the archive is corrupt"
            ),
            NpzProblem::Overlap {
                member,
                other,
                offset,
            } => write!(
                f,
                "member {member:?}: the local header of member {other:?} is said to start at \
                 byte {offset}, inside this member's local header: the archive is corrupt"
            ),
            NpzProblem::Sizes {
                member,
                stored,
                size,
            } => write!(
                f,
                "member {member:?} is stored uncompressed, yet the zip directory gives {stored} \
                 bytes stored for {size} bytes of data: the archive is corrupt"
            ),
            NpzProblem::SameName { member } => write!(
                f,
                "two entries of the archive are read as member {member:?} (numpy reads only \
                 the last): the archive is ambiguous"
            ),
            NpzProblem::BadName { member, reason } => {
                write!(f, "member name {} refused: {reason}", Short(member))
            }
            NpzProblem::Replaced => write!(
                f,
                "the archive was replaced, removed or resized since open_npz read its \
                 directory; open it again"
            ),
            NpzProblem::Directory { message } => {
                write!(f, "{message}: the archive is corrupt")
            }
            NpzProblem::Unsupported { member, feature } => write!(
                f,
                "member {} uses a zip feature numpy (Python's zipfile) cannot read either: \
                 {feature}",
                Short(member)
            ),
            NpzProblem::Prefixed { first } => write!(
                f,
                "the file starts with \"{}\", not with a zip signature (\"PK\\x03\\x04\"): \
                 np.load would not read it as an archive (data before the archive, as a \
                 self-extracting one has, is refused)",
                first.escape_ascii()
            ),
            NpzProblem::Destination { kind } => write!(
                f,
                "cannot write the archive there: the path names {kind}, and an archive can \
                 only replace a regular file (or be created at a new path)"
            ),
            NpzProblem::Unusable { member, message } => write!(
                f,
                "writing member {} failed partway ({message}): the archive is incomplete and \
                 cannot be added to or finished; start a new NpzWriter",
                Short(member)
            ),
        }
    }
}
