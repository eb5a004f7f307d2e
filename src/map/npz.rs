//! `.npz` archives (the `npz` feature): [`open_npz`] lists the members and maps a stored
//! (uncompressed) member as an [`MmapArray`] with its `.npy` header checked;
//! [`NpzWriter`] writes archives whose members' data is aligned, so that every member
//! maps, and `np.load` reads them as it reads `np.savez`'s.

use std::fs::File;
use std::io::Write;
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
    name: String,
    method: CompressionMethod,
    encrypted: bool,
    data_start: u64,
    size: u64,
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
}

/// Opens the `.npz` archive at `path` and reads its directory (not the members' data).
///
/// # Errors
/// [`NpzProblem::NotZip`] for a file that is not a zip archive; the I/O error opening it.
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
    let not_zip = |e: zip::result::ZipError| {
        zerr(
            path,
            NpzProblem::NotZip {
                message: e.to_string(),
            },
        )
    };
    let mut zip = zip::ZipArchive::new(f).map_err(not_zip)?;
    let mut members = Vec::with_capacity(zip.len());
    // Where each member's local header starts, and the directory: no member's data may
    // run past the next of these.
    let mut starts = vec![zip.central_directory_start()];
    for i in 0..zip.len() {
        let m = zip.by_index_raw(i).map_err(not_zip)?;
        let name = m.name().map_err(not_zip)?.into_owned();
        let data_start = m.data_start().ok_or_else(|| {
            zerr(
                path,
                NpzProblem::NotZip {
                    message: format!("member {name:?} has no data offset"),
                },
            )
        })?;
        starts.push(m.header_start());
        members.push(Member {
            method: m.compression(),
            encrypted: m.encrypted(),
            data_start,
            size: m.compressed_size(),
            name,
        });
    }
    starts.sort_unstable();
    for m in &members {
        let next = starts
            .iter()
            .copied()
            .find(|&s| s >= m.data_start)
            .unwrap_or(u64::MAX);
        let end = m.data_start.saturating_add(m.size);
        if end > next {
            return Err(zerr(
                path,
                NpzProblem::Bounds {
                    member: m.name.strip_suffix(".npy").unwrap_or(&m.name).to_owned(),
                    start: m.data_start,
                    end,
                    next,
                },
            ));
        }
    }
    Ok(Npz {
        path: path.to_path_buf(),
        members,
    })
}

impl Npz {
    /// The members' names as numpy shows them (`NpzFile.files`): without `.npy`.
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
        self.members
            .iter()
            .map(|m| m.name.strip_suffix(".npy").unwrap_or(&m.name))
            .collect()
    }

    /// Maps member `name` (with or without `.npy`) read-only, its header checked against
    /// `T`.
    ///
    /// # Safety
    /// As for [`MapOptions::open`]: the archive must not be modified while mapped.
    ///
    /// # Errors
    /// [`NpzProblem::NoMember`], [`NpzProblem::Compressed`] (`np.savez_compressed`),
    /// [`NpzProblem::Encrypted`], [`NpzProblem::Misaligned`] (`np.savez` does not align
    /// members, so only 1-byte types map from its archives), and the header errors of
    /// [`MapOptions::open_npy`].
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
        let m = self
            .members
            .iter()
            .find(|m| m.name == name || m.name.strip_suffix(".npy") == Some(name))
            .ok_or_else(|| {
                zerr(
                    &self.path,
                    NpzProblem::NoMember {
                        name: name.to_owned(),
                        members: self.names().iter().map(|s| s.to_string()).collect(),
                    },
                )
            })?;
        let member = m.name.strip_suffix(".npy").unwrap_or(&m.name).to_owned();
        if m.encrypted {
            return Err(zerr(&self.path, NpzProblem::Encrypted { member }));
        }
        if m.method != CompressionMethod::Stored {
            return Err(zerr(
                &self.path,
                NpzProblem::Compressed {
                    member,
                    method: method_name(m.method),
                },
            ));
        }
        // SAFETY: forwarded to the caller; the member's bytes lie inside the archive.
        let r = unsafe {
            MapOptions::new()
                .offset(m.data_start)
                .len(m.size)
                .open_npy::<T>(&self.path)
        };
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
    zip: zip::ZipWriter<File>,
    names: std::collections::HashSet<String>,
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
    /// The I/O errors of creating the temporary file beside `path`.
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
        };
        let staged = file::stage(&path, &[], 0, how)?;
        let handle = staged
            .file
            .try_clone()
            .map_err(|e| Error::io(&path, "create", e))?;
        Ok(NpzWriter {
            path,
            staged,
            zip: zip::ZipWriter::new(handle),
            names: std::collections::HashSet::new(),
        })
    }

    /// Adds `array` as member `name` (`name.npy` in the archive), in its own memory
    /// order when that is Fortran order, else C order.
    ///
    /// # Errors
    /// The header errors of [`NpyHeader::for_element`]; the I/O errors of writing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut w = ndarray_mmap::NpzWriter::create(dir.path().join("a.npz"))?;
    /// w.add("t", &ndarray::array![[1i64, 2], [3, 4]].reversed_axes())?; // Fortran order
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
        let path = self.path.clone();
        if !self.names.insert(name.to_owned()) {
            return Err(zerr(
                &path,
                NpzProblem::Duplicate {
                    member: name.to_owned(),
                },
            ));
        }
        let io = |e: std::io::Error| Error::io(&path, "write", e);
        let zip_err =
            |e: zip::result::ZipError| Error::io(&path, "write", std::io::Error::other(e));
        let (order, view) = file_order(array);
        let header = NpyHeader::for_element::<T>(array.shape(), order).map_err(|e| e.at(&path))?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(true)
            .with_alignment(64);
        self.zip
            .start_file(format!("{name}.npy"), options)
            .map_err(zip_err)?;
        self.zip.write_all(&header.to_bytes()).map_err(io)?;
        write_elements(&view, |b| self.zip.write_all(b)).map_err(io)
    }

    /// Writes the zip directory, syncs the archive and renames it into place.
    ///
    /// # Errors
    /// The I/O errors of writing, syncing and renaming.
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
            path, staged, zip, ..
        } = self;
        zip.finish()
            .map_err(|e| Error::io(&path, "write", std::io::Error::other(e)))?;
        finish(staged, &path)
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
