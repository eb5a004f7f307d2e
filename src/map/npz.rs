//! `.npz` archives (the `npz` feature): [`open_npz`] lists the members and maps a stored
//! (uncompressed) member as an [`MmapArray`] with its `.npy` header checked;
//! [`NpzWriter`] writes archives whose members' data is aligned, so that every member
//! maps, and `np.load` reads them as it reads `np.savez`'s.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use zip::CompressionMethod;

use super::file;
use super::npy::{file_order, finish, write_elements};
use super::{MapOptions, MmapArray};
use crate::element::Element;
use crate::error::{Error, NpyProblem, NpzProblem};
use crate::npy::NpyHeader;

fn zerr(path: &Path, problem: NpzProblem) -> Error {
    Error::Npz {
        path: path.to_path_buf(),
        problem,
    }
}

#[derive(Debug, Clone)]
struct Member {
    /// The entry's name as numpy reads it (Python's zipfile: UTF-8 when the entry says so,
    /// else code page 437; cut at the first NUL).
    name: String,
    method: CompressionMethod,
    encrypted: bool,
    /// The directory entry's general purpose flags.
    flags: u16,
    data_start: u64,
    /// The bytes stored (compressed, for a compressed member).
    size: u64,
    /// The member's bytes once decompressed (the directory's word for it).
    raw_size: u64,
    /// The CRC-32 of those bytes (the directory's).
    crc32: u32,
}

impl Member {
    /// The name numpy lists (`NpzFile.files`): without `.npy`.
    fn short(&self) -> &str {
        self.name.strip_suffix(".npy").unwrap_or(&self.name)
    }
}

/// An opened `.npz` archive: its members, ready to be mapped one by one.
///
/// ```
/// use ndarray_mmap::{open_npz, NpzWriter};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.npz");
/// let mut w = NpzWriter::create(&path)?;
/// w.add("x", &ndarray::array![[1.0f64, 2.0], [3.0, 4.0]])?;
/// w.add("n", &ndarray::array![7i32, 8, 9])?;
/// w.finish()?;
/// let z = open_npz(&path)?;
/// assert_eq!(z.names(), ["x", "n"]);
/// let x = unsafe { z.member::<f64>("x") }?;
/// assert_eq!(x.view().sum(), 10.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Npz {
    path: PathBuf,
    members: Vec<Member>,
    /// The file whose directory was read: `member` maps no other.
    file: Stamp,
}

/// What tells one file (or one version of it) from another: identity, length and
/// modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    id: Option<file::FileId>,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(f: &File) -> std::io::Result<Stamp> {
        let m = f.metadata()?;
        Ok(Stamp {
            id: Some(file::identity(f)?),
            len: m.len(),
            modified: m.modified().ok(),
        })
    }

    /// The stamp of what `path` names now (`None` if it cannot be read).
    fn of_path(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        let id = match file::identity_of_path(path) {
            Some(id) => Some(id.ok()?),
            None => None,
        };
        Some(Stamp {
            id,
            len: m.len(),
            modified: m.modified().ok(),
        })
    }

    /// Whether `path` still names this file, unchanged (where the platform cannot tell a
    /// file's identity by path, by length and modification time).
    fn matches(&self, path: &Path) -> bool {
        Stamp::of_path(path).is_some_and(|now| {
            now.len == self.len
                && now.modified == self.modified
                && now.id.is_none_or(|id| self.id == Some(id))
        })
    }
}

mod zipdir;
use zipdir::*;

mod read;

/// Opens the `.npz` archive at `path` and reads its directory (not the members' data).
///
/// The directory is read as numpy's zipfile reads it, and checked more, since the members
/// are mapped without their CRCs being checked: the file must start as `np.load` wants an
/// archive to start, the directory's entries must fill exactly the bytes its end record
/// gives it and be as many as the record (and a zip64 one) counts, each member's local
/// header must be where the directory says and name the same entry, no member's header or
/// data may run into the next member or the directory, a stored member's two sizes must
/// agree, and no two entries may be read under one name.
///
/// # Errors
/// [`NpzProblem::NotZip`] for a file that is not a zip archive; [`NpzProblem::Prefixed`]
/// for one that does not start with a zip signature (data before the archive);
/// [`NpzProblem::Directory`], [`NpzProblem::NoLocalHeader`], [`NpzProblem::HeaderName`],
/// [`NpzProblem::Bounds`], [`NpzProblem::Overlap`], [`NpzProblem::Sizes`] and
/// [`NpzProblem::SameName`] for a corrupt or ambiguous one; [`NpzProblem::Unsupported`] for
/// an entry needing a zip version above 6.3 (numpy refuses such archives); the I/O errors of
/// opening and reading it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.npz");
/// # std::fs::write(&path, b"not a zip")?;
/// assert!(ndarray_mmap::open_npz(&path).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_npz(path: impl AsRef<Path>) -> Result<Npz, Error> {
    let path = path.as_ref();
    let f = file::open_regular(
        path,
        std::fs::OpenOptions::new().read(true),
        "open for reading",
    )?;
    let not_zip = |message: String| zerr(path, NpzProblem::NotZip { message });
    let corrupt = |message: String| zerr(path, NpzProblem::Directory { message });
    let io = |e: std::io::Error| Error::io(path, "read", e);
    let stamp = Stamp::of(&f).map_err(|e| Error::io(path, "read metadata of", e))?;
    let zip = zip::ZipArchive::new(&f).map_err(|e| not_zip(e.to_string()))?;
    let archive = (&f, stamp.len);
    // np.load takes a file for an archive by its first bytes, not by its end: data before
    // the archive (a self-extractor's stub, which the zip reader skips) makes it another
    // kind of file for numpy.
    let mut first = [0u8; 4];
    let whole = read_at(&f, 0, &mut first).map_err(io)?;
    if !whole || (first != LOCAL_SIG && first != END_SIG) {
        let n = if whole { first.len() } else { 0 };
        let first = first[..n].to_vec();
        return Err(zerr(path, NpzProblem::Prefixed { first }));
    }
    let (dir_start, entries) = directory(archive, &zip).map_err(io)?.map_err(corrupt)?;
    // Where the zip reader found each entry it reads, to find it among them.
    let mut index = std::collections::HashMap::with_capacity(zip.len());
    for i in 0..zip.len() {
        let e = zip.by_index_data(i).map_err(|e| not_zip(e.to_string()))?;
        index.insert(e.central_header_start(), i);
    }
    // The names as numpy reads them, and what numpy's zipfile refuses while reading the
    // directory, before anything else.
    let mut names = Vec::with_capacity(entries.len());
    for (at, central) in &entries {
        let Some(orig) = decode_name(&central.name, central.flags) else {
            return Err(not_zip(format!(
                "the name of the entry at byte {at} is flagged UTF-8 but is not: {:?}",
                String::from_utf8_lossy(&central.name)
            )));
        };
        // Python's zipfile cuts names at a NUL (against tricks hiding an extension).
        let name = orig.split('\0').next().unwrap_or_default().to_owned();
        if let Some(problem) = extra_problem(&central.extra) {
            return Err(not_zip(format!(
                "the entry at byte {at} ({:?}): {problem}",
                String::from_utf8_lossy(&central.name)
            )));
        }
        if central.version > MAX_VERSION {
            let v = central.version;
            return Err(zerr(
                path,
                NpzProblem::Unsupported {
                    member: name.strip_suffix(".npy").unwrap_or(&name).to_owned(),
                    feature: format!(
                        "version {}.{} is needed to extract it, and numpy reads up to {}.{} \
                         (np.load refuses the whole archive)",
                        v / 10,
                        v % 10,
                        MAX_VERSION / 10,
                        MAX_VERSION % 10
                    ),
                },
            ));
        }
        names.push((name, orig));
    }
    let mut seen = HashSet::with_capacity(names.len());
    if let Some((name, _)) = names.iter().find(|(n, _)| !seen.insert(n.as_str())) {
        let member = name.strip_suffix(".npy").unwrap_or(name).to_owned();
        return Err(zerr(path, NpzProblem::SameName { member }));
    }
    let mut members = Vec::with_capacity(entries.len());
    // Per member: where its local header starts and its data ends.
    let mut spans = Vec::with_capacity(entries.len());
    for (i, ((at, central), (name, orig))) in entries.iter().zip(names).enumerate() {
        // The zip crate keeps one entry of a name's bytes: an entry numpy reads under
        // another name (flagged UTF-8 or not) may be the one it dropped.
        let e = index
            .remove(at)
            .map(|k| zip.by_index_data(k))
            .transpose()
            .map_err(|e| not_zip(e.to_string()))?
            .ok_or_else(|| {
                corrupt(format!(
                    "the zip reader does not read the directory entry at byte {at}, whose \
                     name's bytes another entry has too"
                ))
            })?;
        let short = name.strip_suffix(".npy").unwrap_or(&name).to_owned();
        let offset = e.header_start();
        let local = local_header(archive, offset).map_err(io)?.ok_or_else(|| {
            zerr(
                path,
                NpzProblem::NoLocalHeader {
                    member: short.clone(),
                    offset,
                },
            )
        })?;
        if decode_name(&local.name, local.flags).as_deref() != Some(orig.as_str()) {
            return Err(zerr(
                path,
                NpzProblem::HeaderName {
                    member: short,
                    offset,
                    local: String::from_utf8_lossy(&local.name).into_owned(),
                },
            ));
        }
        let (method, encrypted, size) = (e.compression(), e.encrypted(), e.compressed_size());
        if method == CompressionMethod::Stored && !encrypted && size != e.size() {
            return Err(zerr(
                path,
                NpzProblem::Sizes {
                    member: short,
                    stored: size,
                    size: e.size(),
                },
            ));
        }
        spans.push((offset, local.end, local.end.checked_add(size), i));
        members.push(Member {
            name,
            method,
            encrypted,
            flags: central.flags,
            data_start: local.end,
            size,
            raw_size: e.size(),
            crc32: e.crc32(),
        });
    }
    if let Some(at) = index.keys().min() {
        return Err(corrupt(format!(
            "the zip reader reads an entry at byte {at}, outside the directory numpy's \
             zipfile reads"
        )));
    }
    // Each member's local header and data, in the order of the file, must end before the
    // next member's local header starts, and the last before the directory.
    spans.sort_unstable();
    for (k, &(start, data_start, end, i)) in spans.iter().enumerate() {
        let (next, next_member) = match spans.get(k + 1) {
            Some(&(next, _, _, j)) => (next, Some(j)),
            None => (dir_start, None),
        };
        let end = end.unwrap_or(u64::MAX);
        if end <= next && start < dir_start {
            continue;
        }
        let member = members[i].short().to_owned();
        return Err(zerr(
            path,
            match next_member {
                Some(j) if next < data_start => NpzProblem::Overlap {
                    member,
                    other: members[j].short().to_owned(),
                    offset: next,
                },
                _ => NpzProblem::Bounds {
                    member,
                    start: data_start,
                    end,
                    next: next.min(dir_start),
                },
            },
        ));
    }
    Ok(Npz {
        path: path.to_path_buf(),
        members,
        file: stamp,
    })
}

impl Npz {
    /// The member `name` (with or without `.npy`, as numpy finds it), when this crate can
    /// read it: not encrypted, no zip feature numpy refuses.
    fn readable(&self, name: &str) -> Result<&Member, Error> {
        let with_npy = |m: &&Member| m.name.strip_suffix(".npy") == Some(name);
        let m = self
            .members
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.members.iter().find(with_npy))
            .ok_or_else(|| {
                zerr(
                    &self.path,
                    NpzProblem::NoMember {
                        name: name.to_owned(),
                        members: self.names().iter().map(|s| s.to_string()).collect(),
                    },
                )
            })?;
        let member = m.short().to_owned();
        // As numpy's zipfile checks them, before encryption.
        for (flag, feature) in [
            (PATCHED_FLAG, "compressed patched data (flag bit 5)"),
            (STRONG_FLAG, "strong encryption (flag bit 6)"),
        ] {
            if m.flags & flag != 0 {
                let feature = feature.to_owned();
                return Err(zerr(
                    &self.path,
                    NpzProblem::Unsupported { member, feature },
                ));
            }
        }
        if m.encrypted {
            return Err(zerr(&self.path, NpzProblem::Encrypted { member }));
        }
        Ok(m)
    }

    /// The members' names as numpy shows them (`NpzFile.files`): without `.npy`, in the
    /// archive's order. An archive holding entries `x` and `x.npy` lists `x` twice, as numpy
    /// does ([`member`](Self::member) tells them apart as numpy does).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.npz");
    /// # let mut w = ndarray_mmap::NpzWriter::create(&path)?;
    /// # w.add("a", &ndarray::array![1u8])?;
    /// # w.finish()?;
    /// assert_eq!(ndarray_mmap::open_npz(&path)?.names(), ["a"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(Member::short).collect()
    }

    /// Maps member `name` (with or without `.npy`) read-only, its header checked against
    /// `T`. As in numpy, the entry named exactly `name` is taken when there is one, else
    /// the entry `name.npy`.
    ///
    /// # Safety
    /// As for [`MapOptions::open`]: the archive must not be modified while mapped.
    ///
    /// # Errors
    /// [`NpzProblem::NoMember`], [`NpzProblem::Compressed`] (`np.savez_compressed`),
    /// [`NpzProblem::Encrypted`], [`NpzProblem::Unsupported`] (compressed patched data or
    /// strong encryption, which numpy does not read either), [`NpzProblem::Misaligned`]
    /// (`np.savez` does not align members, so only 1-byte types map from its archives),
    /// [`NpzProblem::Replaced`] when
    /// the path no longer names the file [`open_npz`] read (open it again), and the header
    /// errors of [`MapOptions::open_npy`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.npz");
    /// # let mut w = ndarray_mmap::NpzWriter::create(&path)?;
    /// # w.add("a", &ndarray::array![1u8, 2])?;
    /// # w.finish()?;
    /// let z = ndarray_mmap::open_npz(&path)?;
    /// assert_eq!(unsafe { z.member::<u8>("a.npy") }?.view().sum(), 3);
    /// assert!(unsafe { z.member::<u8>("b") }.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn member<T: Element>(&self, name: &str) -> Result<MmapArray<T>, Error> {
        let m = self.readable(name)?;
        let member = m.short().to_owned();
        if m.method != CompressionMethod::Stored {
            return Err(zerr(
                &self.path,
                NpzProblem::Compressed {
                    member,
                    method: method_name(m.method),
                },
            ));
        }
        // The offsets are this file's: refuse another one at the path (checked again once
        // mapped, so that a replacement while it was opened is seen too).
        let replaced = || zerr(&self.path, NpzProblem::Replaced);
        if !self.file.matches(&self.path) {
            return Err(replaced());
        }
        // SAFETY: forwarded to the caller; the member's bytes lie inside the archive.
        let r = unsafe {
            MapOptions::new()
                .offset(m.data_start)
                .len(m.size)
                .open_npy::<T>(&self.path)
        };
        if !self.file.matches(&self.path) {
            return Err(replaced());
        }
        r.map_err(|e| match e {
            Error::Npy {
                problem:
                    NpyProblem::MisalignedData {
                        data_offset, align, ..
                    },
                ..
            } => zerr(
                &self.path,
                NpzProblem::Misaligned {
                    member,
                    offset: data_offset,
                    align,
                },
            ),
            // Name the member: the .npy layer's "file" is the member here.
            other => {
                let message = other.to_string();
                let prefix = format!("{}: ", self.path.display());
                zerr(
                    &self.path,
                    NpzProblem::Member {
                        member,
                        message: message.strip_prefix(&prefix).unwrap_or(&message).to_owned(),
                    },
                )
            }
        })
    }
}

/// Writes a `.npz` archive whose members' data start on 64-byte boundaries (the zip
/// "extra field" pads them, as Android's `zipalign` does), so every member maps with
/// [`Npz::member`]; `np.load` reads it like any `np.savez` archive. Built aside and
/// renamed into place on [`finish`](Self::finish); dropped unfinished, it leaves nothing.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("out.npz");
/// let mut w = ndarray_mmap::NpzWriter::create(&path)?;
/// w.add("a", &ndarray::Array2::<f32>::ones((3, 4)))?;
/// w.finish()?;
/// assert_eq!(unsafe { ndarray_mmap::open_npz(&path)?.member::<f32>("a") }?.shape(), &[3, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NpzWriter {
    path: PathBuf,
    staged: file::Staged,
    members: Members<File>,
}

impl std::fmt::Debug for NpzWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NpzWriter {
    /// Starts an archive that will replace (or create) `path` when finished.
    ///
    /// # Errors
    /// [`NpzProblem::Destination`] when `path` names something other than a regular file
    /// (a FIFO, a device); the I/O errors of creating the temporary file beside `path`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let w = ndarray_mmap::NpzWriter::create(dir.path().join("a.npz"))?;
    /// w.finish()?; // an empty archive
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> Result<NpzWriter, Error> {
        let path = path.as_ref().to_path_buf();
        let how = file::CreateHow {
            create_new: false,
            reserve: false,
            wait: None,
            no_follow: false,
        };
        let staged = file::stage(&path, &[], 0, how).map_err(destination)?;
        let handle = staged
            .file
            .try_clone()
            .map_err(|e| Error::io(&path, "create", e))?;
        Ok(NpzWriter {
            path,
            staged,
            members: Members::new(handle),
        })
    }

    /// Adds `array` as member `name` (`name.npy` in the archive), in its own memory
    /// order when that is Fortran order, else C order.
    ///
    /// A refused call changes nothing: the name stays free and the archive as it was. A
    /// call that fails while writing the member (an I/O error) leaves the archive
    /// incomplete: later calls of `add` and [`finish`](Self::finish) then fail with
    /// [`NpzProblem::Unusable`], and the file at the path is left as it was.
    ///
    /// # Errors
    /// [`NpzProblem::BadName`] for a name numpy could not read back under that name: one
    /// holding a NUL (Python's zipfile cuts names there) or a `\` (zip names separate
    /// folders with `/`, and numpy on Windows reads `\` as `/`), one too long for a zip
    /// directory entry (over 65457 bytes), or `x.npy` beside `x` (numpy looks `x.npy` up as the
    /// entry of member `x`); [`NpzProblem::Duplicate`] for a name already added;
    /// [`NpzProblem::Member`] for an array no `.npy` header can describe (more than 64
    /// dimensions, say); [`NpzProblem::Unusable`] after a failed write; the I/O errors of
    /// writing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut w = ndarray_mmap::NpzWriter::create(dir.path().join("a.npz"))?;
    /// w.add("t", &ndarray::array![[1i64, 2], [3, 4]].reversed_axes())?; // Fortran order
    /// assert!(w.add("a\0b", &ndarray::array![1u8]).is_err());
    /// w.finish()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<T, S, D>(
        &mut self,
        name: &str,
        array: &ndarray::ArrayBase<S, D>,
    ) -> Result<(), Error>
    where
        T: Element,
        S: ndarray::Data<Elem = T>,
        D: ndarray::Dimension,
    {
        self.members.add(&self.path, name, array)
    }

    /// Writes the zip directory, syncs the archive and renames it into place.
    ///
    /// # Errors
    /// [`NpzProblem::Unusable`] after an [`add`](Self::add) failed partway;
    /// [`NpzProblem::Destination`] when the path has come to name something other than a
    /// regular file; the I/O errors of writing, syncing and renaming.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.npz");
    /// let mut w = ndarray_mmap::NpzWriter::create(&path)?;
    /// w.add("a", &ndarray::array![1.5f32])?;
    /// w.finish()?;
    /// assert!(path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish(self) -> Result<(), Error> {
        let NpzWriter {
            path,
            staged,
            members,
        } = self;
        members.finish(&path)?;
        finish(staged, &path).map_err(destination)
    }
}

/// The file layer's refusal of a path that is no regular file speaks of mapping it: for a
/// writer, say that the archive cannot be written there.
fn destination(e: Error) -> Error {
    match e {
        Error::NotAFile { path, kind } => Error::Npz {
            path,
            problem: NpzProblem::Destination {
                kind: kind.to_owned(),
            },
        },
        other => other,
    }
}

/// The longest member name: a zip directory entry (46 bytes, the name with `.npy`, and up
/// to 28 bytes of zip64 fields: both sizes, and the offset past 4 GiB) may take 65535
/// bytes (APPNOTE 4.4.10; the zip crate refuses a longer one only when it finishes).
const MAX_NAME: usize = u16::MAX as usize - CENTRAL_LEN - 28 - ".npy".len();

/// Why numpy could not read a member written as `name` back under that name, beside the
/// names in `taken`.
fn name_problem(name: &str, taken: &HashSet<String>) -> Option<String> {
    if let Some(at) = name.find('\0') {
        return Some(format!(
            "it holds a NUL byte, where numpy (Python's zipfile) cuts a name short: np.load \
             would list it as {:?}",
            &name[..at]
        ));
    }
    if name.contains('\\') {
        return Some(format!(
            "it holds '\\', which zip names may not (they separate folders with '/'): numpy \
             on Windows would read it as {:?}",
            name.replace('\\', "/")
        ));
    }
    if name.len() > MAX_NAME {
        return Some(format!(
            "it has {} bytes, and a zip directory entry holds a name of at most {MAX_NAME} \
             bytes and \".npy\"",
            name.len()
        ));
    }
    // np.load looks a key up as an entry name first, then with ".npy" added.
    if let Some(stem) = name.strip_suffix(".npy")
        && taken.contains(stem)
    {
        return Some(format!(
            "member {stem:?} is written as entry {name:?}, which np.load would give for \
             {name:?}"
        ));
    }
    let entry = format!("{name}.npy");
    if taken.contains(&entry) {
        return Some(format!(
            "it would be written as entry {entry:?}, which np.load gives for member {entry:?}, \
             already added"
        ));
    }
    None
}

/// The members written so far, over any seekable writer (a file; in tests, one that fails).
struct Members<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    names: HashSet<String>,
    /// The member whose writing failed partway, and why: the archive is incomplete.
    broken: Option<(String, String)>,
}

impl<W: Write + Seek> Members<W> {
    fn new(w: W) -> Self {
        Members {
            zip: zip::ZipWriter::new(w),
            names: HashSet::new(),
            broken: None,
        }
    }

    fn unusable(&self, path: &Path) -> Result<(), Error> {
        match &self.broken {
            Some((member, message)) => Err(zerr(
                path,
                NpzProblem::Unusable {
                    member: member.clone(),
                    message: message.clone(),
                },
            )),
            None => Ok(()),
        }
    }

    /// Checks everything that can be checked before writing a byte, then writes the
    /// member; the name is taken only once it is written.
    fn add<T, S, D>(
        &mut self,
        path: &Path,
        name: &str,
        array: &ndarray::ArrayBase<S, D>,
    ) -> Result<(), Error>
    where
        T: Element,
        S: ndarray::Data<Elem = T>,
        D: ndarray::Dimension,
    {
        self.unusable(path)?;
        if self.names.contains(name) {
            let member = name.to_owned();
            return Err(zerr(path, NpzProblem::Duplicate { member }));
        }
        if let Some(reason) = name_problem(name, &self.names) {
            let member = name.to_owned();
            return Err(zerr(path, NpzProblem::BadName { member, reason }));
        }
        let (order, view) = file_order(array);
        let header = NpyHeader::for_element::<T>(array.shape(), order).map_err(|e| {
            let message = e.to_string();
            zerr(
                path,
                NpzProblem::Member {
                    member: name.to_owned(),
                    message,
                },
            )
        })?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(true)
            .with_alignment(64);
        // From here on a failure may leave bytes of this member (or, in `start_file`, the
        // previous member's header unfinished) in the archive.
        let written = self
            .zip
            .start_file(format!("{name}.npy"), options)
            .map_err(std::io::Error::other)
            .and_then(|()| {
                self.zip.write_all(&header.to_bytes())?;
                write_elements(&view, |b| self.zip.write_all(b))
            });
        match written {
            Ok(()) => {
                self.names.insert(name.to_owned());
                Ok(())
            }
            Err(e) => {
                if self.zip.is_writing_file() {
                    // Out of the directory at least; the writer stays unusable.
                    let _ = self.zip.abort_file();
                }
                self.broken = Some((name.to_owned(), e.to_string()));
                Err(Error::io(path, "write", e))
            }
        }
    }

    /// Writes the directory (after the last member's header is completed).
    fn finish(self, path: &Path) -> Result<W, Error> {
        self.unusable(path)?;
        self.zip
            .finish()
            .map_err(|e| Error::io(path, "write", std::io::Error::other(e)))
    }
}

/// The zip compression method's usual name (the zip crate is built without its codecs, so
/// it knows them only by number).
fn method_name(m: CompressionMethod) -> String {
    let debug = format!("{m:?}");
    match debug.as_str() {
        "Unsupported(8)" | "Deflated" => "Deflate".into(),
        "Unsupported(9)" => "Deflate64".into(),
        "Unsupported(12)" | "Bzip2" => "bzip2".into(),
        "Unsupported(14)" | "Lzma" => "LZMA".into(),
        "Unsupported(93)" | "Zstd" => "zstd".into(),
        "Unsupported(95)" | "Xz" => "xz".into(),
        _ => debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::io::SeekFrom;

    /// Writes to memory, except that the first write reaching byte `fail_at` fails (a
    /// full disk, say, that has room again on the next call).
    #[derive(Debug)]
    struct Flaky {
        inner: Cursor<Vec<u8>>,
        fail_at: u64,
        failed: bool,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let end = self.inner.position() + buf.len() as u64;
            if !self.failed && end > self.fail_at {
                self.failed = true;
                // Part of the buffer goes through, as a short write before ENOSPC would.
                let part = (self.fail_at.saturating_sub(self.inner.position())) as usize;
                self.inner.write_all(&buf[..part.min(buf.len())])?;
                return Err(std::io::Error::other("no space left on device (simulated)"));
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Flaky {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// A write failing inside a member leaves it short in the archive: neither a later
    /// `add` nor `finish` may go on as if it were whole (the zip writer would finish the
    /// short member with a CRC of its bytes, and numpy would read a truncated array).
    #[test]
    fn a_write_failing_partway_leaves_the_writer_unusable() {
        let path = Path::new("a.npz");
        let mut m = Members::new(Flaky {
            inner: Cursor::new(Vec::new()),
            fail_at: 4096,
            failed: false,
        });
        m.add(path, "a", &ndarray::array![1u8, 2, 3]).unwrap();
        let err = m
            .add(path, "b", &ndarray::Array1::<u8>::zeros(10_000))
            .unwrap_err();
        assert!(err.to_string().contains("simulated"), "{err:?}");
        let err = m.add(path, "c", &ndarray::array![4u8]).unwrap_err();
        assert!(
            matches!(&err, Error::Npz { problem: NpzProblem::Unusable { member, .. }, .. } if member == "b"),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("a.npz: writing member \"b\" failed partway (no space left"),
            "{msg}"
        );
        let err = m.finish(path).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Npz {
                    problem: NpzProblem::Unusable { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Names numpy reads back under another name (or not at all) are refused, with why.
    #[test]
    fn name_problems() {
        let taken: HashSet<String> = ["x".to_string(), "y.npy".to_string()].into();
        for (name, says) in [
            ("a\0b", "np.load would list it as \"a\""),
            ("a\\b", "read it as \"a/b\""),
            ("x.npy", "member \"x\" is written as entry \"x.npy\""),
            ("y", "gives for member \"y.npy\""),
        ] {
            let why = name_problem(name, &taken).unwrap();
            assert!(why.contains(says), "{name:?}: {why}");
        }
        assert!(name_problem(&"n".repeat(MAX_NAME + 1), &taken).is_some());
        for ok in [
            "",
            "a/b",
            "/a",
            "../a",
            "é",
            "z.npy",
            ".npy",
            "a b",
            &"n".repeat(MAX_NAME),
        ] {
            assert_eq!(name_problem(ok, &taken), None, "{ok:?}");
        }
    }

    #[test]
    fn names_decode_as_pythons_zipfile_decodes_them() {
        assert_eq!(decode_name(b"a\x80\xff.npy", 0).unwrap(), "aÇ\u{a0}.npy");
        assert_eq!(decode_name("é".as_bytes(), 0).unwrap(), "├⌐");
        assert_eq!(decode_name("é".as_bytes(), UTF8_FLAG).unwrap(), "é");
        assert_eq!(decode_name(b"\xff", UTF8_FLAG), None);
        assert_eq!(CP437.chars().count(), 128);
    }
}
