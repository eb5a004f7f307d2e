//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

mod npy;
mod zarr;
pub(crate) use npy::MAGIC as NPY_MAGIC;
pub use npy::{NpyProblem, NpzProblem};
pub use zarr::ZarrProblem;

/// Defines [`Error`] from one list: each variant with its fields, where its path is
/// (`[file]`: a `path: PathBuf` field, `[maybe]`: `path: Option<PathBuf>`, `[none]`) and
/// its message (a block that writes to the formatter named after `=>`, with every field
/// bound by reference). Adding a variant is one edit here: `path()`, `at()` and `Display`
/// are generated from it.
macro_rules! errors {
    (
        $(#[$attr:meta])*
        pub enum Error {
            $(
                $(#[$vattr:meta])*
                $V:ident [$where:ident] {
                    $( $(#[$fattr:meta])* $field:ident : $fty:ty ),* $(,)?
                } => $f:ident { $($body:tt)* }
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        pub enum Error {
            $(
                $(#[$vattr])*
                $V { $( $(#[$fattr])* $field : $fty ),* },
            )*
        }

        impl Error {
            /// The file this error is about, when there is one.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// let path = tmp.path().join("missing.f32");
            /// let err = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }.unwrap_err();
            /// assert_eq!(err.path(), Some(path.as_path()));
            /// ```
            pub fn path(&self) -> Option<&Path> {
                let e = self;
                match e {
                    $( Error::$V { .. } => errors!(@get $where e $V), )*
                }
            }

            /// Attaches `path` to an error raised by a layer that does not know about
            /// files (a path already there stays).
            pub(crate) fn at(mut self, at: &Path) -> Self {
                let e = &mut self;
                match e {
                    $( Error::$V { .. } => errors!(@set $where e $V at), )*
                }
                self
            }
        }

        impl fmt::Display for Error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if let Some(path) = self.path() {
                    write!(f, "{}: ", path.display())?;
                }
                match self {
                    $(
                        #[allow(unused_variables)]
                        Error::$V { $($field),* } => {
                            let $f = &mut *f;
                            $($body)*
                        }
                    )*
                }
            }
        }
    };
    (@get file $e:ident $V:ident) => {
        match $e {
            Error::$V { path, .. } => Some(path.as_path()),
            _ => None,
        }
    };
    (@get maybe $e:ident $V:ident) => {
        match $e {
            Error::$V { path, .. } => path.as_deref(),
            _ => None,
        }
    };
    (@get none $e:ident $V:ident) => {
        None
    };
    (@set maybe $e:ident $V:ident $at:ident) => {
        if let Error::$V { path: path @ None, .. } = $e {
            *path = Some($at.to_path_buf());
        }
    };
    (@set $other:ident $e:ident $V:ident $at:ident) => {{}};
}

errors! {
    /// Everything that can go wrong in this crate.
    ///
    /// Each variant carries the facts needed to fix the input: the path (when a file is
    /// involved), the numbers that disagree, the offending dimension. The `Display` output
    /// reads as one lowercase sentence prefixed by the path, for example
    /// `data.f32: 1000 bytes is not a whole number of rows of 24 f32 (96 bytes each)`.
    /// An operating-system error's reason is part of the message of [`Error::Io`],
    /// [`Error::Reserve`] and [`Error::Unreadable`] (`nope.npy: cannot open for reading: No
    /// such file or directory (os error 2)`), as `fs-err` does: printing `{e}` says why.
    /// Their [`source`](std::error::Error::source) is then what the OS error wraps, if
    /// anything, so reporters such as `anyhow` print the reason once. The `io::Error`
    /// itself is in the variant's `source` field.
    ///
    /// ```
    /// use ndarray_mmap::{bytes, Error, Order};
    ///
    /// let err = bytes::view::<f32, _>(&[0u8; 6], ndarray::Ix1(2), Order::C).unwrap_err();
    /// assert!(matches!(err, Error::LengthMismatch { .. }));
    /// assert_eq!(err.to_string(), "shape [2] of f32 needs 8 bytes but 6 bytes are available");
    /// ```
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum Error {
        /// An operating-system call failed.
        #[non_exhaustive]
        Io [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// What was being done, e.g. `"open for reading"`.
            action: &'static str,
            /// The underlying error.
            source: io::Error,
        } => f {
            // The OS's reason is part of the message (a user printing `{e}` learns why);
            // `source()` then skips the `io::Error`, so a printed chain shows it once.
            write!(f, "cannot {action}: {source}")
        },
        /// The path is not a regular file (a directory, FIFO, device, ...).
        #[non_exhaustive]
        NotAFile [file] {
            /// The path.
            path: PathBuf,
            /// What it is instead.
            kind: &'static str,
        } => f {
            write!(
                f,
                "not a regular file ({kind}); only regular files can be mapped"
            )
        },
        /// Another map or process holds a conflicting advisory lock on the file, and the
        /// call did not wait (or waited [`MapOptions::lock_timeout`](crate::MapOptions::lock_timeout)
        /// in vain).
        #[non_exhaustive]
        Locked [file] {
            /// The path.
            path: PathBuf,
            /// `true` when an exclusive lock was wanted: to replace the file or move its data
            /// (which no other map may see), or to append (one appender at a time).
            exclusive: bool,
            /// What could not be done: `"map"`, `"replace"`, `"append to"`, `"move the data of"`,
            /// `"read the header of"`.
            action: &'static str,
            /// How long the call waited, if it was allowed to.
            waited: Option<std::time::Duration>,
        } => f {
            let who = match (*exclusive, *action) {
                (true, "append to") => {
                    "another appender (in this process or another) is appending"
                }
                (true, _) => {
                    "the file is mapped elsewhere (another map or process holds a lock); \
                     every other map of it must be closed first"
                }
                (false, "read the header of") => "another process is rewriting the header",
                (false, _) => {
                    "another process holds it exclusively (replacing it or moving its data)"
                }
            };
            write!(f, "cannot {action} the file: {who}")?;
            match waited {
                Some(w) => write!(f, " (waited {w:?})"),
                None => write!(f, " (not waited for; see MapOptions::lock_timeout)"),
            }
        },
        /// A shape specification is invalid on its own (before looking at any data).
        #[non_exhaustive]
        InvalidShape [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The shape as given.
            shape: Vec<isize>,
            /// What is wrong with it.
            reason: ShapeProblem,
        } => f {
            let shape = Dims(shape);
            match reason {
                ShapeProblem::SeveralInferred => {
                    write!(
                        f,
                        "shape {shape} has more than one -1; at most one length can be inferred"
                    )
                }
                ShapeProblem::Negative { axis } => write!(
                    f,
                    "shape {shape}: dimension {axis} is {}; lengths must be >= 0, or -1 to infer one",
                    Len(shape.0.get(*axis).copied())
                ),
                ShapeProblem::TooLong { axis } => write!(
                    f,
                    "dimension {axis} is longer than isize::MAX; no array can have that length"
                ),
                ShapeProblem::InferredWhenCreating { axis } => write!(
                    f,
                    "shape {shape}: dimension {axis} is -1, but a new array needs every length given"
                ),
                ShapeProblem::InferredWithZero { axis } => write!(
                    f,
                    "shape {shape}: dimension {axis} (-1) cannot be inferred because the other dimensions multiply to 0"
                ),
            }
        },
        /// The number of bytes available is not a whole number of elements.
        #[non_exhaustive]
        NotWholeElements [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The byte count.
            bytes: u64,
            /// The element type's name.
            elem: &'static str,
            /// The element size in bytes.
            elem_size: usize,
        } => f {
            write!(
                f,
                "{bytes} bytes is not a whole number of {elem} ({elem_size} bytes each)"
            )
        },
        /// The number of bytes available is not a whole number of rows (the product of the
        /// dimensions other than the inferred `-1`).
        #[non_exhaustive]
        NotWholeRows [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The byte count.
            bytes: u64,
            /// Elements per row.
            row_elems: usize,
            /// The element type's name.
            elem: &'static str,
            /// Bytes per row.
            row_bytes: u64,
        } => f {
            write!(
                f,
                "{bytes} bytes is not a whole number of rows of {row_elems} {elem} ({row_bytes} bytes each)"
            )
        },
        /// The shape needs a different number of bytes than are available.
        #[non_exhaustive]
        LengthMismatch [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The resolved shape.
            shape: Vec<usize>,
            /// The element type's name.
            elem: &'static str,
            /// Bytes the shape needs.
            needed: u64,
            /// Bytes available.
            available: u64,
        } => f {
            write!(
                f,
                "shape {} of {elem} needs {needed} bytes but {available} bytes are available",
                Dims(shape)
            )
        },
        /// The shape's element or byte count overflows (`isize::MAX` bytes at most).
        #[non_exhaustive]
        Overflow [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The shape.
            shape: Vec<isize>,
            /// The element type's name.
            elem: &'static str,
        } => f {
            write!(
                f,
                "shape {} of {elem} is too large: its byte count overflows isize::MAX",
                Dims(shape)
            )
        },
        /// A byte offset or buffer address is not a multiple of the element's alignment.
        #[non_exhaustive]
        Misaligned [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The offending offset (or address remainder).
            offset: u64,
            /// The element type's name.
            elem: &'static str,
            /// The alignment required.
            align: usize,
        } => f {
            write!(
                f,
                "offset {offset} is not a multiple of the alignment of {elem} ({align} bytes)"
            )
        },
        /// The requested byte range lies (partly) past the end of the file.
        #[non_exhaustive]
        OutOfBounds [file] {
            /// The path.
            path: PathBuf,
            /// Offset requested.
            offset: u64,
            /// Length requested, if one was given.
            len: Option<u64>,
            /// The file's length.
            file_len: u64,
        } => f {
            match len {
                Some(len) => write!(
                    f,
                    "bytes {offset}..{} lie past the end of the file ({file_len} bytes)",
                    offset.saturating_add(*len)
                ),
                None => write!(
                    f,
                    "offset {offset} lies past the end of the file ({file_len} bytes)"
                ),
            }
        },
        /// The element type has size zero; nothing can be mapped as it.
        #[non_exhaustive]
        ZeroSizedElement [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The element type's name.
            elem: &'static str,
        } => f {
            write!(f, "{elem} has size 0 and cannot be mapped")
        },
        /// The element type is aligned to more than a page: no file offset can guarantee the
        /// alignment of a map (maps start on page boundaries).
        #[non_exhaustive]
        OverAligned [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// The element type's name.
            elem: &'static str,
            /// Its alignment.
            align: usize,
            /// The page size.
            page: usize,
        } => f {
            write!(
                f,
                "{elem} is aligned to {align} bytes, more than a page ({page} bytes); maps start on page boundaries, so it cannot be mapped"
            )
        },
        /// Two operands of one operation map overlapping bytes of the same file at different
        /// positions, so writing the output would change inputs not yet read.
        #[non_exhaustive]
        Aliased [maybe] {
            /// The file.
            path: Option<PathBuf>,
            /// The output's byte range in the file.
            output: std::ops::Range<u64>,
            /// The input's byte range in the file.
            input: std::ops::Range<u64>,
        } => f {
            if output == input {
                write!(
                    f,
                    "the output (bytes {}..{} of the file) is also another operand of the call (a second output, \
                     or an input read at other positions); writing it would change what the other reads or writes \
                     (use the in-place operations, or another output file)",
                    output.start, output.end
                )
            } else {
                write!(
                    f,
                    "the output (bytes {}..{} of the file) overlaps an input (bytes {}..{}) at a different position; \
                     writing it would change input not yet read (use the in-place operations, or another output file)",
                    output.start, output.end, input.start, input.end
                )
            }
        },
        /// A raw map (`open`, `mmap_array`) of a file that starts with the `.npy` magic: its
        /// header would be mapped as data. Map it with `open_npy`, or give an explicit
        /// [`MapOptions::offset`](crate::MapOptions::offset) to map its bytes raw.
        #[non_exhaustive]
        IsNpy [file] {
            /// The path.
            path: PathBuf,
        } => f {
            write!(
                f,
                "the file is a .npy file (it starts with \\x93NUMPY): map it with open_npy, which \
                 reads the shape and dtype from its header, or give MapOptions::offset to map its bytes raw"
            )
        },
        /// An element range lies outside the array.
        #[non_exhaustive]
        ElementRange [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// First element asked for.
            start: usize,
            /// One past the last element asked for.
            end: usize,
            /// Elements in the array.
            len: usize,
        } => f {
            write!(
                f,
                "element range {start}..{end} lies outside the array of {len} elements"
            )
        },
        /// Reserving disk space for the file failed (typically a full disk); the file was
        /// left as it was (a file the failed call created is removed again).
        #[non_exhaustive]
        Reserve [file] {
            /// The path.
            path: PathBuf,
            /// The file's length before the call.
            from: u64,
            /// The length the call needed.
            to: u64,
            /// The underlying error (`ENOSPC` for a full disk).
            source: io::Error,
        } => f {
            write!(
                f,
                "cannot reserve disk space to make the file {to} bytes long (it was {from} bytes): \
                 {source}; the file was left as it was"
            )
        },
        /// An array cannot be grown or appended to as asked; nothing was changed.
        #[non_exhaustive]
        CannotGrow [file] {
            /// The path.
            path: PathBuf,
            /// Why not.
            reason: GrowProblem,
        } => f {
            match reason {
                GrowProblem::CopyOnWrite => write!(
                    f,
                    "cannot grow a copy-on-write map: its writes never reach the file"
                ),
                GrowProblem::ZeroDimensional => {
                    write!(f, "cannot grow a 0-dimensional array: it has no axis")
                }
                GrowProblem::Shrink { from, to } => write!(
                    f,
                    "cannot grow from length {from} to {to}: growing never drops rows"
                ),
                GrowProblem::NotAtEnd { end, file_len } => write!(
                    f,
                    "cannot grow: the array ends at byte {end} but the file is {file_len} bytes \
                     long, so growing would overwrite or misplace data"
                ),
                GrowProblem::PathChanged => write!(
                    f,
                    "cannot grow: the path no longer names the mapped file (it was renamed or replaced), \
                     and the header has no room, so the data would move into a new file at the path"
                ),
                GrowProblem::DataAfter { end, file_len } => write!(
                    f,
                    "cannot grow: the array's data ends at byte {end} but other data follows it \
                     (another array, or a container's trailer) up to byte {file_len}; appending would overwrite it"
                ),
                GrowProblem::HeaderChanged { shape } => write!(
                    f,
                    "cannot grow: the .npy header now gives shape {}, not this map's; \
                     another program changed the file",
                    Dims(shape)
                ),
                GrowProblem::RowShape { array, rows, axis } => write!(
                    f,
                    "cannot append rows of shape {} to an array of shape {} along axis {axis}: \
                     the other lengths must match",
                    Dims(rows),
                    Dims(array)
                ),
            }
        },
        /// The array does not have the number of dimensions asked for.
        #[non_exhaustive]
        Dimensionality [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// Dimensions asked for.
            expected: usize,
            /// Dimensions the array has.
            found: usize,
        } => f {
            write!(
                f,
                "the array has {found} dimension(s), not the {expected} asked for"
            )
        },
        /// An operand cannot be broadcast to the shape of the operation: an input of an
        /// elementwise function to its output's, an operand of a [`Zip`](crate::ops::Zip) to
        /// the shape its first operand set.
        #[non_exhaustive]
        Broadcast [none] {
            /// Which operand: `"the first input"`, `"the second input"`, `"the input"`, `"the
            /// output"`, or `"operand 2 of the Zip"` (counting from 1, `Zip::from`'s first).
            operand: &'static str,
            /// The operand's shape.
            input: Vec<usize>,
            /// The shape it had to have (or broadcast to).
            output: Vec<usize>,
            /// Whose shape that is: `"the output"` or `"the Zip's first operand"`.
            onto: &'static str,
        } => f {
            write!(
                f,
                "cannot broadcast {operand} (shape {}) to {onto} (shape {})",
                Dims(input),
                Dims(output)
            )
        },
        /// A streaming operation was cancelled by its progress callback. The first `done`
        /// bytes of the output (in its memory order) hold new values, the rest are unchanged.
        #[non_exhaustive]
        Cancelled [none] {
            /// Bytes processed before cancelling.
            done: u64,
            /// Bytes in all.
            total: u64,
        } => f {
            write!(
                f,
                "cancelled by the progress callback after {done} of {total} bytes; \
                 the output holds new values up to there (in memory order) and old ones after"
            )
        },
        /// Part of a mapped file could not be brought into memory while streaming: it was
        /// truncated by a program that ignores the advisory locks, the disk reported an I/O
        /// error, or a sparse output found no free space. Reported instead of the SIGBUS that
        /// touching those pages would raise.
        #[non_exhaustive]
        Unreadable [file] {
            /// The path.
            path: PathBuf,
            /// The file's bytes that could not be brought in.
            bytes: std::ops::Range<u64>,
            /// The underlying error (`EFAULT` for pages past the end of the file).
            source: io::Error,
        } => f {
            write!(
                f,
                "bytes {}..{} of the file cannot be read into memory (truncated by another \
                 program, an I/O error, or no space for a sparse page): {source}; the operation \
                 stopped before touching them",
                bytes.start, bytes.end
            )
        },
        /// A reduction along an axis cannot be done: the axis does not exist, or (for `min`
        /// and `max`, which have no identity) it has length 0, as numpy refuses.
        #[non_exhaustive]
        Axis [none] {
            /// The axis asked for.
            axis: usize,
            /// The array's shape.
            shape: Vec<usize>,
            /// `true` when the axis exists but is empty.
            empty: bool,
        } => f {
            if *empty {
                write!(
                    f,
                    "axis {axis} of shape {} has length 0: min and max of nothing are undefined",
                    Dims(shape)
                )
            } else {
                write!(
                    f,
                    "axis {axis} does not exist: the array has {} dimension(s), shape {}",
                    shape.len(),
                    Dims(shape)
                )
            }
        },
        /// A Zarr array's metadata or chunks cannot be mapped as asked (`zarr` feature).
        #[non_exhaustive]
        Zarr [file] {
            /// The array's directory, or the chunk file at fault.
            path: PathBuf,
            /// What is wrong.
            problem: ZarrProblem,
        } => f {
            write!(f, "{problem}")
        },
        /// A `.npz` archive or member cannot be mapped as asked (`npz` feature).
        #[non_exhaustive]
        Npz [file] {
            /// The archive.
            path: PathBuf,
            /// What is wrong.
            problem: NpzProblem,
        } => f {
            write!(f, "{problem}")
        },
        /// A `.npy` file or header is malformed or does not fit the element type asked for.
        #[non_exhaustive]
        Npy [maybe] {
            /// The file, when one is involved.
            path: Option<PathBuf>,
            /// What is wrong, naming the header field at fault.
            problem: NpyProblem,
        } => f {
            write!(f, "{problem}")
        },
    }
}

/// Why a shape specification was rejected; carried by [`Error::InvalidShape`].
///
/// ```
/// use ndarray_mmap::{Error, ShapeProblem};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("x.f32");
/// # std::fs::write(&path, [0u8; 16]).unwrap();
/// let err = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, -1]) }.unwrap_err();
/// assert!(matches!(err, Error::InvalidShape { reason: ShapeProblem::SeveralInferred, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeProblem {
    /// More than one dimension is `-1`.
    SeveralInferred,
    /// A dimension is negative and not `-1`.
    Negative {
        /// The axis.
        axis: usize,
    },
    /// `-1` appears where every length must be given (creating a file).
    InferredWhenCreating {
        /// The axis.
        axis: usize,
    },
    /// A length is above `isize::MAX` (no array can have it).
    TooLong {
        /// The axis.
        axis: usize,
    },
    /// `-1` cannot be inferred because the other dimensions multiply to zero.
    InferredWithZero {
        /// The axis of the `-1`.
        axis: usize,
    },
}

/// Why an array cannot grow; carried by [`Error::CannotGrow`].
///
/// ```
/// use ndarray_mmap::{Error, GrowProblem};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("x.f32");
/// let mut a = unsafe { ndarray_mmap::create_array::<f32>(&path, [4, 2]) }?;
/// let err = a.grow(3).unwrap_err();
/// assert!(matches!(err, Error::CannotGrow { reason: GrowProblem::Shrink { from: 4, to: 3 }, .. }));
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrowProblem {
    /// The map is copy-on-write: its writes never reach the file, so neither can growth.
    CopyOnWrite,
    /// A 0-dimensional array has no axis to grow along.
    ZeroDimensional,
    /// The new length is below the current one (`grow` never drops data).
    Shrink {
        /// The current length of the growth axis.
        from: usize,
        /// The length asked for.
        to: usize,
    },
    /// The array does not end where the file ends (bytes follow it, or the file was
    /// changed by someone else), so growing would overwrite or misplace data.
    NotAtEnd {
        /// Where the array's bytes end.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The `.npy` header no longer describes this map (another program rewrote it).
    HeaderChanged {
        /// The shape the header gives now.
        shape: Vec<usize>,
    },
    /// The path no longer names the mapped file (it was renamed or replaced): moving the
    /// data into a new file there would replace a file this map never had.
    PathChanged,
    /// Bytes that are not unpublished rows follow the array in the file (another array
    /// written after it, a container's trailer): appending would overwrite them.
    DataAfter {
        /// Where the array's data ends.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The rows to append do not match the array's other lengths.
    RowShape {
        /// The array's shape.
        array: Vec<usize>,
        /// The shape of the rows given.
        rows: Vec<usize>,
        /// The axis the array grows along.
        axis: usize,
    },
}

impl Error {
    /// A [`Broadcast`](Error::Broadcast) error says whose shape the operand had to fit.
    pub(crate) fn onto(mut self, whose: &'static str) -> Self {
        if let Error::Broadcast { onto, .. } = &mut self {
            *onto = whose;
        }
        self
    }

    /// An I/O error on `path` while doing `action`.
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: Some(path.to_path_buf()),
            action,
            source,
        }
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io {
            path: None,
            action: "i/o",
            source,
        }
    }
}

/// A length that may be missing (an axis out of range in a hand-built error).
struct Len(Option<isize>);

impl fmt::Display for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, "{d}"),
            None => write!(f, "out of range"),
        }
    }
}

/// Writes `[a, b, c]`.
struct Dims<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Dims<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The `io::Error`'s own text is in the message already (as `fs-err` does): the
            // chain goes on with what it wraps, if anything.
            Error::Io { source, .. }
            | Error::Reserve { source, .. }
            | Error::Unreadable { source, .. } => std::error::Error::source(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_static() {
        assert_traits::<Error>();
    }

    #[test]
    fn path_prefix_and_source() {
        let e = Error::io(
            Path::new("a.f32"),
            "open for reading",
            io::Error::from(io::ErrorKind::NotFound),
        );
        // The OS's reason is in the message, and not again in the chain (`anyhow` and
        // `{:#}` print the message, then the sources).
        let reason = io::Error::from(io::ErrorKind::NotFound).to_string();
        assert_eq!(
            e.to_string(),
            format!("a.f32: cannot open for reading: {reason}")
        );
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn at_fills_only_missing_paths() {
        let e = Error::NotWholeElements {
            path: None,
            bytes: 5,
            elem: "f32",
            elem_size: 4,
        }
        .at(Path::new("x"));
        assert_eq!(
            e.to_string(),
            "x: 5 bytes is not a whole number of f32 (4 bytes each)"
        );
        let e = e.at(Path::new("y"));
        assert_eq!(e.path(), Some(Path::new("x")));
    }

    #[test]
    fn shape_messages_name_the_axis() {
        let e = Error::InvalidShape {
            path: None,
            shape: vec![3, -2],
            reason: ShapeProblem::Negative { axis: 1 },
        };
        assert_eq!(
            e.to_string(),
            "shape [3, -2]: dimension 1 is -2; lengths must be >= 0, or -1 to infer one"
        );
    }
}
