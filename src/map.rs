//! The mapped-owner layer: owner types that hold a memory map and lend ndarray views,
//! the options builder, flush, hints and advisory locks. The only module with `unsafe`.

use std::fs::File;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytemuck::Pod;
use memmap2::{Mmap, MmapMut, MmapOptions};
use ndarray::{ArrayView, ArrayViewMut, Dimension, IxDyn};

use crate::bytes::{self, elem_size};
use crate::element::type_name;
use crate::error::Error;
use crate::shape::{Order, ShapeArg, Spec};

mod file;
mod grow;
pub(crate) mod lock;
mod npy;
pub(crate) mod registry;
pub(crate) mod stream;
pub use npy::{create_npy, open_npy, open_npy_mut, write_npy};

pub(crate) use file::FileId;
use file::{Mode, PendingSync};

/// A paging hint for the kernel (`madvise`); a no-op where the platform has none.
///
/// ```
/// use ndarray_mmap::{Advice, MapOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
/// let a = unsafe { MapOptions::new().advise(Advice::Sequential).open::<f32>(&path, [-1]) }?;
/// assert_eq!(a.view().sum(), 16.0);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (the default).
    Normal,
    /// Pages will be read in order: read ahead aggressively, drop pages soon after.
    Sequential,
    /// Pages will be read in no particular order: do not read ahead.
    Random,
    /// Pages will be needed soon: start reading them in now.
    WillNeed,
}

#[cfg(unix)]
impl From<Advice> for memmap2::Advice {
    fn from(a: Advice) -> Self {
        match a {
            Advice::Normal => memmap2::Advice::Normal,
            Advice::Sequential => memmap2::Advice::Sequential,
            Advice::Random => memmap2::Advice::Random,
            Advice::WillNeed => memmap2::Advice::WillNeed,
        }
    }
}

/// Options for mapping a file: offset, length, order, hints, creation.
///
/// Built by value, so a configured `MapOptions` can be kept and reused. The `open*` and
/// `create` methods map a file with these options.
///
/// ```
/// use ndarray_mmap::{MapOptions, Order};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("x.bin");
/// # std::fs::write(&path, vec![0u8; 128 + 4800]).unwrap();
/// let part = unsafe {
///     MapOptions::new()
///         .offset(128)            // skip a 128-byte header
///         .len(4800)              // map 4800 bytes: 600 f64
///         .order(Order::F)
///         .open::<f64>(&path, [-1, 3])
/// }?;
/// assert_eq!(part.shape(), &[200, 3]);
/// assert_eq!(part.view().strides(), &[1, 200]);
/// # Ok::<(), ndarray_mmap::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct MapOptions {
    offset: u64,
    /// Whether [`MapOptions::offset`] was called (a raw map of a `.npy` then is meant).
    offset_given: bool,
    len: Option<u64>,
    order: Order,
    advice: Option<Advice>,
    populate: bool,
    create_new: bool,
    /// `true` when [`MapOptions::preallocate`] was turned off (the default reserves).
    sparse: bool,
    lock_timeout: Option<Duration>,
}

/// An open, locked, regular file and the byte region of it to map.
struct Region {
    file: File,
    path: PathBuf,
    id: FileId,
    /// Copy-on-write: writes through the map never reach the file.
    private: bool,
    offset: u64,
    shape: Vec<usize>,
    nbytes: usize,
}

impl Default for MapOptions {
    /// [`MapOptions::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl MapOptions {
    /// Default options: whole file from offset 0, C order, no hints.
    ///
    /// ```
    /// let opts = ndarray_mmap::MapOptions::new();
    /// assert_eq!(opts, ndarray_mmap::MapOptions::default());
    /// ```
    pub fn new() -> Self {
        MapOptions {
            offset: 0,
            offset_given: false,
            len: None,
            order: Order::C,
            advice: None,
            populate: false,
            create_new: false,
            sparse: false,
            lock_timeout: None,
        }
    }

    /// Skips `offset` bytes at the start of the file. Any offset that is a multiple of the
    /// element's alignment works; the mapping itself is page-aligned by the crate.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
    /// // skip the first 48 bytes: 4 of the 16 f32 remain
    /// let a = unsafe { ndarray_mmap::MapOptions::new().offset(48).open::<f32>(&path, [-1]) }?;
    /// assert_eq!(a.shape(), &[4]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self.offset_given = true;
        self
    }

    /// Maps exactly `len` bytes after the offset (default: to the end of the file). A `-1`
    /// in the shape is inferred from it; an explicit shape must use exactly `len` bytes.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
    /// let a = unsafe { ndarray_mmap::MapOptions::new().len(24).open::<f32>(&path, [-1]) }?;
    /// assert_eq!(a.shape(), &[6]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }

    /// The memory order of the data (default [`Order::C`]). Takes this crate's [`Order`]
    /// or ndarray's own `ndarray::Order` (`Order::F`, `Order::RowMajor`, ...).
    ///
    /// ```
    /// let opts = ndarray_mmap::MapOptions::new().order(ndarray_mmap::Order::F);
    /// assert_eq!(opts, ndarray_mmap::MapOptions::new().order(ndarray::Order::F));
    /// ```
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Gives the kernel a paging hint right after mapping (see [`MmapArray::advise`]).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
    /// use ndarray_mmap::{Advice, MapOptions};
    /// let a = unsafe { MapOptions::new().advise(Advice::Random).open::<f32>(&path, [4, 4]) }?;
    /// assert_eq!(a.view()[[3, 3]], 1.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn advise(mut self, advice: Advice) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Reads the whole mapping in while mapping (`MAP_POPULATE` on Linux; ignored
    /// elsewhere). Useful when every page will be touched soon.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
    /// let a = unsafe { ndarray_mmap::MapOptions::new().populate(true).open::<f32>(&path, [-1]) }?;
    /// assert_eq!(a.view()[15], 1.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn populate(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }

    /// With [`create`](Self::create): fail if the file already exists instead of
    /// truncating it.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("x.i32");
    /// use ndarray_mmap::MapOptions;
    /// let _a = unsafe { MapOptions::new().create_new(true).create::<i32>(&path, [4]) }?;
    /// let again = unsafe { MapOptions::new().create_new(true).create::<i32>(&path, [4]) };
    /// assert!(again.is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn create_new(mut self, create_new: bool) -> Self {
        self.create_new = create_new;
        self
    }

    /// Whether [`create`](Self::create) and [`MmapArrayMut::grow`] reserve the file's disk
    /// blocks (`fallocate` on Linux) before mapping. Default `true`: a full disk is then an
    /// [`Error::Reserve`] from the call, with the file left as it was, instead of a SIGBUS
    /// when a write later touches a page the filesystem has no room for.
    ///
    /// Set it to `false` for a huge sparse file of which only parts will ever be written:
    /// creating is then instant and takes no space, and writing to a full disk faults.
    /// Filesystems that cannot reserve space (and platforms other than Linux and Android)
    /// behave as if it were `false`.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("sparse.f64");
    /// use ndarray_mmap::MapOptions;
    /// // 1 GiB of address space, no disk space used until pages are written.
    /// let a = unsafe { MapOptions::new().preallocate(false).create::<f64>(&path, [1 << 27]) }?;
    /// assert_eq!(a.len(), 1 << 27);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.sparse = !preallocate;
        self
    }

    /// How long a call may wait for a lock another map or process holds (default: not at
    /// all, [`Error::Locked`] at once). Applies to mapping (while another process
    /// replaces the file), to replacing a file with [`create`](Self::create) (while
    /// others map it), and to [`grow`](MmapArrayMut::grow) and
    /// [`append`](MmapArrayMut::append) (while another appender appends). Waiting polls;
    /// it never blocks past the bound.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 16])).unwrap();
    /// use std::time::Duration;
    /// let opts = ndarray_mmap::MapOptions::new().lock_timeout(Duration::from_secs(2));
    /// let mut w = unsafe { opts.open_mut::<f32>(&path, [-1]) }?;
    /// w.append(&ndarray::arr1(&[2.0f32]))?; // waits up to 2 s for another appender
    /// assert_eq!(w.shape(), &[17]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn lock_timeout(mut self, wait: Duration) -> Self {
        self.lock_timeout = Some(wait);
        self
    }

    /// Maps a file read-only. No mutable view can be had: the type has no such method.
    ///
    /// # Safety
    /// The file must not be truncated or modified by this or another process while the
    /// returned array (or a view of it) is alive: a truncation makes reads fault (SIGBUS),
    /// and a change breaks the immutability `&T` promises. The crate takes an advisory
    /// shared lock to stop cooperating programs from changing the length, but advisory
    /// locks bind only those that ask for them.
    ///
    /// # Errors
    /// An [`Error`] naming the path when the file cannot be opened, is not a regular
    /// file, is locked for a length change, or its length does not fit the shape, offset
    /// and element type.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.u16");
    /// std::fs::write(&path, [1u8, 0, 2, 0, 3, 0, 4, 0])?;
    /// let a = unsafe { ndarray_mmap::MapOptions::new().open::<u16>(&path, [2, -1]) }?;
    /// # #[cfg(target_endian = "little")]
    /// assert_eq!(a.view(), ndarray::arr2(&[[1u16, 2], [3, 4]]).into_dyn());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open<T: Pod>(
        &self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
    ) -> Result<MmapArray<T>, Error> {
        let r = self.open_region::<T>(path.as_ref(), shape, Mode::Read)?;
        // SAFETY: the caller upholds the no-truncate/no-modify contract of this fn; the
        // region lies inside the file (checked by `open_region`).
        let map = unsafe { self.mmap_options(&r).map(&r.file) }
            .map_err(|e| Error::io(&r.path, "map", e))?;
        MmapArray::new(
            Inner::new(map, r, self.order, self, self.len.is_some()),
            self.advice,
        )
    }

    /// Maps a file read-write, shared: writes reach the file (and every other process
    /// mapping it); [`MmapArrayMut::flush`] makes them durable.
    ///
    /// # Safety
    /// As for [`open`](Self::open): the file must not be truncated, nor modified other
    /// than through this map, while the array is alive.
    ///
    /// # Errors
    /// As for [`open`](Self::open), and when the file cannot be opened for writing.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("b.f64");
    /// std::fs::write(&path, [0u8; 32])?;
    /// let mut b = unsafe { ndarray_mmap::MapOptions::new().open_mut::<f64>(&path, [-1]) }?;
    /// b.view_mut().fill(1.5);
    /// b.close()?;
    /// assert_eq!(std::fs::read(&path)?[..8], 1.5f64.to_ne_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_mut<T: Pod>(
        &self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
    ) -> Result<MmapArrayMut<T>, Error> {
        let r = self.open_region::<T>(path.as_ref(), shape, Mode::Write)?;
        // SAFETY: as in `open`; the file was opened read-write so a shared writable map is
        // permitted.
        let map = unsafe { self.mmap_options(&r).map_mut(&r.file) }
            .map_err(|e| Error::io(&r.path, "map read-write", e))?;
        MmapArrayMut::new(
            Inner::new(map, r, self.order, self, self.len.is_some()),
            false,
            self,
            PendingSync::default(),
        )
    }

    /// Maps a file copy-on-write: the view is mutable, but writes stay in this process's
    /// memory and never reach the file (numpy's `mode='c'`). The file needs only read
    /// permission.
    ///
    /// # Safety
    /// As for [`open`](Self::open): pages not yet written may still show changes made
    /// to the file by others, and truncation faults.
    ///
    /// # Errors
    /// As for [`open`](Self::open).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// std::fs::write(&path, [1u8, 2, 3])?;
    /// let mut c = unsafe { ndarray_mmap::MapOptions::new().open_copy::<u8>(&path, [-1]) }?;
    /// c.view_mut()[0] = 9;
    /// assert_eq!(c.view()[0], 9);
    /// c.close()?;
    /// assert_eq!(std::fs::read(&path)?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn open_copy<T: Pod>(
        &self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
    ) -> Result<MmapArrayMut<T>, Error> {
        let r = self.open_region::<T>(path.as_ref(), shape, Mode::Copy)?;
        // SAFETY: as in `open`; a private map never writes to the file.
        let map = unsafe { self.mmap_options(&r).map_copy(&r.file) }
            .map_err(|e| Error::io(&r.path, "map copy-on-write", e))?;
        MmapArrayMut::new(
            Inner::new(map, r, self.order, self, self.len.is_some()),
            true,
            self,
            PendingSync::default(),
        )
    }

    /// Creates a file holding an array of exactly `shape` (no `-1`), after `offset` bytes,
    /// and maps it read-write. The new bytes read as zeros. Their disk blocks are reserved
    /// first (see [`preallocate`](Self::preallocate)), so a full disk is an error here and
    /// not a SIGBUS later. [`len`](Self::len) is ignored: the shape gives the length.
    ///
    /// The new file is built beside the path (with no name at all on Linux, else under a
    /// temporary `.NAME.PID.N.ndarray-mmap.tmp`), mapped, and only then moved into place:
    /// renamed over an existing file, or, with [`create_new`](Self::create_new), linked
    /// where no file may exist. A failure or a crash at any step leaves the old file or
    /// nothing. The new file takes the old one's permissions (and owner, when run as
    /// root); programs that still map the old file keep it (no SIGBUS), but no longer see
    /// the path's contents, and hard links to it keep the old contents. Replacing needs
    /// room on the disk for both files at once, and write permission on the directory.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut).
    ///
    /// # Errors
    /// [`Error::InvalidShape`] for a `-1` or negative length, [`Error::Overflow`] for a
    /// shape too large (ndarray's rule, even for an empty array), [`Error::OverAligned`]
    /// for an element type aligned to more than a page, [`Error::Locked`] when the file
    /// to replace is mapped elsewhere, [`Error::Reserve`] when the disk has no room, an
    /// I/O error naming the path otherwise (`AlreadyExists` for `create_new`). None of
    /// them changes an existing file, and none leaves a file behind.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.i32");
    /// let c = unsafe { ndarray_mmap::MapOptions::new().offset(64).create::<i32>(&path, [10, 3]) }?;
    /// assert_eq!(c.view().sum(), 0);
    /// assert_eq!(std::fs::metadata(&path)?.len(), 64 + 120);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn create<T: Pod>(
        &self,
        path: impl AsRef<Path>,
        shape: impl ShapeArg,
    ) -> Result<MmapArrayMut<T>, Error> {
        let path = path.as_ref();
        let (spec, shape, nbytes) = create_shape::<T>(path, shape)?;
        check_offset::<T>(path, self.offset)?;
        // SAFETY: forwarded to the caller.
        unsafe { self.create_mapped(path, &spec, shape, nbytes, &[], self.offset) }
    }

    /// Creates `path` holding `head` then zeros, `nbytes` of array data from `data_start`,
    /// and maps the data read-write as `shape`. The file is built aside and mapped
    /// before it replaces anything: a failure at any step leaves `path` as it was.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut).
    unsafe fn create_mapped<T: Pod>(
        &self,
        path: &Path,
        spec: &Spec,
        shape: Vec<usize>,
        nbytes: usize,
        head: &[u8],
        data_start: u64,
    ) -> Result<MmapArrayMut<T>, Error> {
        check_align::<T>(path)?;
        let total = data_start
            .checked_add(nbytes as u64)
            .filter(|&t| i64::try_from(t).is_ok())
            .ok_or_else(|| Error::Overflow {
                path: Some(path.to_path_buf()),
                shape: spec.given.clone(),
                elem: type_name::<T>(),
            })?;
        let how = file::CreateHow {
            create_new: self.create_new,
            reserve: !self.sparse,
            wait: self.lock_timeout,
        };
        let staged = file::stage(path, head, total, how)?;
        let mut opts = MmapOptions::new();
        opts.offset(data_start).len(nbytes);
        if self.populate {
            opts.populate();
        }
        // SAFETY: the caller upholds `open_mut`'s contract; the staged file is ours, open
        // read-write and exactly `total` bytes long, so the region lies inside it.
        let map = unsafe { opts.map_mut(&staged.file) }
            .map_err(|e| Error::io(path, "map read-write", e))?;
        bytes::view::<T, _>(&map, IxDyn(&shape), self.order).map_err(|e| e.at(path))?;
        let id =
            file::identity(&staged.file).map_err(|e| Error::io(path, "read metadata of", e))?;
        let (file, dir) = staged.commit(path)?;
        let r = Region {
            file,
            path: path.to_path_buf(),
            id,
            private: false,
            offset: data_start,
            shape,
            nbytes,
        };
        MmapArrayMut::new(
            Inner::new(map, r, self.order, self, false),
            false,
            self,
            PendingSync::created(dir),
        )
    }

    fn mmap_options(&self, r: &Region) -> MmapOptions {
        let mut opts = MmapOptions::new();
        opts.offset(r.offset).len(r.nbytes);
        if self.populate {
            opts.populate();
        }
        opts
    }

    /// Opens, checks and locks `path`, and resolves the shape against its length.
    fn open_region<T: Pod>(
        &self,
        path: &Path,
        shape: impl ShapeArg,
        mode: Mode,
    ) -> Result<Region, Error> {
        let spec = Spec::parse(shape.to_spec()).map_err(|e| e.at(path))?;
        let size = elem_size::<T>().map_err(|e| e.at(path))?;
        check_align::<T>(path)?;
        check_offset::<T>(path, self.offset)?;
        let (file, mut file_len, id) = file::open_locked(path, mode, self.lock_timeout)?;
        if !self.offset_given && file::npy_magic_at(&file, 0).unwrap_or(false) {
            return Err(Error::IsNpy {
                path: path.to_path_buf(),
            });
        }
        let mut looks = 0;
        let (shape, nbytes) = loop {
            looks += 1;
            let available = self.window(path, file_len)?;
            match spec.resolve(type_name::<T>(), size, available, self.len.is_some()) {
                // A partial last row while another process appends (rows arrive page by
                // page): map the whole rows. An appender that just finished has made the
                // file longer: look again. Otherwise it is an error, as ever.
                Err(
                    e @ Error::NotWholeRows {
                        bytes, row_bytes, ..
                    },
                ) if self.len.is_none() => {
                    if lock::held_exclusively_elsewhere(&file, lock::Role::Append) == Some(true) {
                        break spec
                            .resolve(type_name::<T>(), size, bytes - bytes % row_bytes, false)
                            .map_err(|e| e.at(path))?;
                    }
                    let now = file
                        .metadata()
                        .map_err(|e| Error::io(path, "read metadata of", e))?
                        .len();
                    if now == file_len || looks > 100 {
                        return Err(e.at(path));
                    }
                    file_len = now;
                }
                r => break r.map_err(|e| e.at(path))?,
            }
        };
        Ok(Region {
            file,
            path: path.to_path_buf(),
            id,
            private: mode == Mode::Copy,
            offset: self.offset,
            shape,
            nbytes,
        })
    }
}

impl MapOptions {
    /// The number of bytes from [`offset`](Self::offset) that [`len`](Self::len) (or the
    /// rest of a `file_len`-byte file) selects, checked to lie inside the file.
    fn window(&self, path: &Path, file_len: u64) -> Result<u64, Error> {
        let out_of_bounds = || Error::OutOfBounds {
            path: path.to_path_buf(),
            offset: self.offset,
            len: self.len,
            file_len,
        };
        let rest = file_len
            .checked_sub(self.offset)
            .ok_or_else(out_of_bounds)?;
        match self.len {
            Some(len) if len > rest => Err(out_of_bounds()),
            Some(len) => Ok(len),
            None => Ok(rest),
        }
    }
}

/// The shape (no `-1`) and byte count of a new array, with the spec as given.
fn create_shape<T: Pod>(
    path: &Path,
    shape: impl ShapeArg,
) -> Result<(Spec, Vec<usize>, usize), Error> {
    let spec = Spec::parse_explicit(shape.to_spec()).map_err(|e| e.at(path))?;
    let size = elem_size::<T>().map_err(|e| e.at(path))?;
    let (shape, nbytes) = spec
        .resolve(type_name::<T>(), size, u64::MAX, false)
        .map_err(|e| e.at(path))?;
    Ok((spec, shape, nbytes))
}

fn check_offset<T>(path: &Path, offset: u64) -> Result<(), Error> {
    let align = std::mem::align_of::<T>();
    if !offset.is_multiple_of(align as u64) {
        return Err(Error::Misaligned {
            path: Some(path.to_path_buf()),
            offset,
            elem: type_name::<T>(),
            align,
        });
    }
    Ok(())
}

/// Maps start on page boundaries: a type aligned to more than a page cannot be placed
/// reliably at any offset, so it is refused whatever the address would be.
fn check_align<T>(path: &Path) -> Result<(), Error> {
    let (align, page) = (std::mem::align_of::<T>(), stream::page_size());
    if align > page {
        return Err(Error::OverAligned {
            path: Some(path.to_path_buf()),
            elem: type_name::<T>(),
            align,
            page,
        });
    }
    Ok(())
}

/// What both owner types hold: the map, the locked file, and how to view it.
struct Inner<M, D> {
    /// The map's entry in the table of live maps (for telling aliased operands). First,
    /// so that it is dropped (fields drop in order) before the map is unmapped: an entry
    /// must never outlive its memory, or another map at the same address would be taken
    /// for this one.
    reg: registry::Registration,
    map: M,
    file: File,
    path: PathBuf,
    /// Which file (device and inode): two maps of one file are recognised as such.
    id: FileId,
    dim: D,
    order: Order,
    /// Where the mapped bytes start in the file (for `sync_file_range`).
    offset: u64,
    /// Mapped with an explicit [`MapOptions::len`]: the array need not end the file, and
    /// growth must not take in bytes past it.
    bounded: bool,
    /// [`MapOptions::lock_timeout`].
    wait: Option<Duration>,
    private: bool,
}

impl<M: std::ops::Deref<Target = [u8]>> Inner<M, IxDyn> {
    fn new(map: M, r: Region, order: Order, opts: &MapOptions, bounded: bool) -> Self {
        let reg = registry::Registration::new(
            map.as_ptr() as usize,
            map.len(),
            r.id,
            r.offset,
            &r.path,
            r.private,
        );
        Inner {
            reg,
            private: r.private,
            map,
            file: r.file,
            path: r.path,
            id: r.id,
            dim: IxDyn(&r.shape),
            order,
            offset: r.offset,
            bounded,
            wait: opts.lock_timeout,
        }
    }
}

impl<M: std::ops::Deref<Target = [u8]>, D> Inner<M, D> {
    /// Replaces the map (after growth), keeping the table of live maps right; returns the
    /// old map.
    fn set_map(&mut self, map: M) -> M {
        self.reg = registry::Registration::new(
            map.as_ptr() as usize,
            map.len(),
            self.id,
            self.offset,
            &self.path,
            self.private,
        );
        std::mem::replace(&mut self.map, map)
    }
}

impl<M, D: Dimension> Inner<M, D> {
    fn into_dimensionality<D2: Dimension>(self) -> Result<Inner<M, D2>, Error> {
        match D2::from_dimension(&self.dim) {
            Some(dim) => Ok(Inner {
                reg: self.reg,
                private: self.private,
                map: self.map,
                file: self.file,
                path: self.path,
                id: self.id,
                dim,
                order: self.order,
                offset: self.offset,
                bounded: self.bounded,
                wait: self.wait,
            }),
            None => Err(Error::Dimensionality {
                path: Some(self.path),
                expected: D2::NDIM.unwrap_or(0),
                found: self.dim.ndim(),
            }),
        }
    }

    fn unlock(self) -> Result<(), Error> {
        let Inner {
            map,
            file,
            path,
            reg,
            ..
        } = self;
        drop(reg);
        drop(map);
        file::unlock_map(&file, &path)
    }

    fn elem_range<T>(&self, elems: Range<usize>) -> Result<(usize, usize), Error> {
        let len = self.dim.size();
        if elems.start > elems.end || elems.end > len {
            return Err(Error::ElementRange {
                path: Some(self.path.clone()),
                start: elems.start,
                end: elems.end,
                len,
            });
        }
        let size = std::mem::size_of::<T>();
        Ok((elems.start * size, (elems.end - elems.start) * size))
    }
}

/// A read-only memory-mapped array: owns the map and lends [`ArrayView`]s of it.
///
/// Made by [`mmap_array`] or [`MapOptions::open`]. The shape is dynamic (`IxDyn`) unless
/// fixed with [`into_dimensionality`](Self::into_dimensionality).
///
/// Views borrow the owner, so a view cannot outlive it:
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// # std::fs::write(&path, [0u8; 8]).unwrap();
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }.unwrap();
/// let v = a.view();
/// drop(a); // error[E0505]: cannot move out of `a` because it is borrowed
/// println!("{}", v[0]);
/// ```
/// and neither can it outlive [`close`](Self::close):
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// # std::fs::write(&path, [0u8; 8]).unwrap();
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1]) }.unwrap();
/// let v = a.view();
/// a.close().unwrap();
/// println!("{}", v[0]);
/// ```
pub struct MmapArray<T, D = IxDyn> {
    inner: Inner<Mmap, D>,
    elem: PhantomData<T>,
}

impl<T: Pod> MmapArray<T> {
    fn new(inner: Inner<Mmap, IxDyn>, advice: Option<Advice>) -> Result<Self, Error> {
        // Check the shape against the mapped bytes once, here; `view` relies on it.
        bytes::view::<T, _>(&inner.map, inner.dim.clone(), inner.order)
            .map_err(|e| e.at(&inner.path))?;
        let a = MmapArray {
            inner,
            elem: PhantomData,
        };
        if let Some(advice) = advice {
            a.advise(advice)?;
        }
        Ok(a)
    }
}

impl<T: Pod, D: Dimension> MmapArray<T, D> {
    /// Maps `path` read-only with `shape`, as an array of `D`'s rank: `MmapArray::<f32,
    /// Ix2>::open(path, [-1, 24])` lends `ArrayView2`s. Shorthand for
    /// [`MapOptions::new().open(..)`](MapOptions::open) and
    /// [`into_dimensionality`](Self::into_dimensionality).
    ///
    /// # Safety
    /// See [`MapOptions::open`].
    ///
    /// # Errors
    /// As for [`MapOptions::open`], and [`Error::Dimensionality`] when `shape` has
    /// another number of dimensions than `D`.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArray;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32; 48])).unwrap();
    /// let m = unsafe { MmapArray::<f32, Ix2>::open(&path, [-1, 24]) }?;
    /// let v: ndarray::ArrayView2<f32> = m.view();
    /// assert_eq!(v.row(1).sum(), 24.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open::<T>(path, shape) }?.into_dimensionality()
    }
}

impl<T: crate::Element, D: Dimension> MmapArray<T, D> {
    /// Maps the `.npy` file at `path` read-only as an array of `D`'s rank; the shape and
    /// order come from its header.
    ///
    /// # Safety
    /// See [`MapOptions::open_npy`].
    ///
    /// # Errors
    /// As for [`MapOptions::open_npy`], and [`Error::Dimensionality`] when the header's
    /// rank is not `D`'s.
    ///
    /// ```
    /// use ndarray::{Ix1, Ix2};
    /// use ndarray_mmap::MmapArray;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("x.npy");
    /// ndarray_mmap::write_npy(&path, &ndarray::Array2::<f32>::ones((10, 3)))?;
    /// let x = unsafe { MmapArray::<f32, Ix2>::open_npy(&path) }?;
    /// assert_eq!(x.view().dim(), (10, 3));
    /// assert!(unsafe { MmapArray::<f32, Ix1>::open_npy(&path) }.is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open_npy(path: impl AsRef<Path>) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open_npy::<T>(path) }?.into_dimensionality()
    }
}

impl<T: Pod, D: Dimension> MmapArray<T, D> {
    /// A view of the whole array. Costs a few checks, no I/O: pages load on first touch.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, bytemuck::cast_slice(&[1f32, 2., 3., 4.])).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, 2]) }?;
    /// assert_eq!(a.view().sum(), 10.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn view(&self) -> ArrayView<'_, T, D> {
        bytes::view(&self.inner.map, self.inner.dim.clone(), self.inner.order)
            .expect("shape and alignment were checked when the file was mapped")
    }

    /// The mapped bytes (after the offset, exactly the array's bytes).
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.u8");
    /// # std::fs::write(&path, [7u8, 8]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<u8>(&path, [-1]) }?;
    /// assert_eq!(a.as_bytes(), &[7, 8]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.inner.map
    }

    /// Gives the kernel a paging hint for the whole mapping (`madvise`; a no-op where the
    /// platform has none).
    ///
    /// # Errors
    /// The I/O error `madvise` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.u8");
    /// # std::fs::write(&path, [7u8, 8]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<u8>(&path, [-1]) }?;
    /// a.advise(ndarray_mmap::Advice::Sequential)?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn advise(&self, advice: Advice) -> Result<(), Error> {
        #[cfg(unix)]
        if !self.inner.map.is_empty() {
            self.inner
                .map
                .advise(advice.into())
                .map_err(|e| Error::io(&self.inner.path, "advise", e))?;
        }
        #[cfg(not(unix))]
        let _ = advice;
        Ok(())
    }

    /// Fixes the number of dimensions, e.g. `into_dimensionality::<Ix2>()`, so views are
    /// `ArrayView2` and index with `[i, j]`.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] when the array has another number of dimensions.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.f32");
    /// # std::fs::write(&path, [0u8; 96]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, 4]) }?.into_dimensionality::<Ix2>()?;
    /// let v: ndarray::ArrayView2<f32> = a.view();
    /// assert_eq!(v.dim(), (6, 4));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn into_dimensionality<D2: Dimension>(self) -> Result<MmapArray<T, D2>, Error> {
        Ok(MmapArray {
            inner: self.inner.into_dimensionality()?,
            elem: PhantomData,
        })
    }

    /// Unmaps the file and releases its lock, reporting errors instead of hiding them in
    /// `Drop`. Views cannot outlive this call (they borrow the array).
    ///
    /// # Errors
    /// The I/O error from releasing the lock, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("a.u8");
    /// # std::fs::write(&path, [7u8, 8]).unwrap();
    /// let a = unsafe { ndarray_mmap::mmap_array::<u8>(&path, [-1]) }?;
    /// a.close()?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        self.inner.unlock()
    }
}

/// Accessors shared by both owner types.
macro_rules! common_accessors {
    ($ty:ident, $ctor:literal) => {
        impl<T, D: Dimension> $ty<T, D> {
            /// The file this array maps.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [7u8, 8]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert_eq!(a.path(), path);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn path(&self) -> &Path {
                &self.inner.path
            }

            /// The array's lengths.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1, 3]) }?;")]
            /// assert_eq!(a.shape(), &[2, 3]);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn shape(&self) -> &[usize] {
                self.inner.dim.slice()
            }

            /// The number of elements.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1, 3]) }?;")]
            /// assert_eq!(a.len(), 6);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn len(&self) -> usize {
                self.inner.dim.size()
            }

            /// Whether the array has no elements.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, []).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert!(a.is_empty());
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The memory order of the data.
            ///
            /// ```
            /// # let tmp = tempfile::tempdir().unwrap();
            /// # let path = tmp.path().join("a.u8");
            /// # std::fs::write(&path, [0u8; 6]).unwrap();
            #[doc = concat!("let a = unsafe { ", $ctor, "::<u8>(&path, [-1]) }?;")]
            /// assert_eq!(a.order(), ndarray_mmap::Order::C);
            /// # Ok::<(), ndarray_mmap::Error>(())
            /// ```
            pub fn order(&self) -> Order {
                self.inner.order
            }
        }

        impl<T, D: Dimension> std::fmt::Debug for $ty<T, D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("path", &self.inner.path)
                    .field("elem", &type_name::<T>())
                    .field("shape", &self.inner.dim.slice())
                    .field("order", &self.inner.order)
                    .finish()
            }
        }
    };
}

common_accessors!(MmapArray, "ndarray_mmap::mmap_array");
common_accessors!(MmapArrayMut, "ndarray_mmap::mmap_array_mut");

/// A writable memory-mapped array: shared with the file (and other processes), or
/// copy-on-write. Lends [`ArrayView`]s and [`ArrayViewMut`]s.
///
/// Made by [`mmap_array_mut`], [`create_array`], or [`MapOptions::open_mut`],
/// [`open_copy`](MapOptions::open_copy) and [`create`](MapOptions::create).
///
/// ```compile_fail,E0505
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// let mut a = unsafe { ndarray_mmap::create_array::<f32>(&path, [4]) }.unwrap();
/// let mut v = a.view_mut();
/// a.close().unwrap(); // error: `a` is borrowed by `v`
/// v[0] = 1.0;
/// ```
pub struct MmapArrayMut<T, D = IxDyn> {
    inner: Inner<MmapMut, D>,
    copy_on_write: bool,
    /// Whether [`MmapArrayMut::grow`] reserves disk blocks ([`MapOptions::preallocate`]).
    preallocate: bool,
    /// What the next flush must sync beyond the data pages (after a create or a resize).
    sync: PendingSync,
    /// Where the `.npy` header starts, for a map of a `.npy` file's data: growth rewrites
    /// the header's shape.
    npy_start: Option<u64>,
    /// The `.npy` header's `descr` at open: growth refuses a header that changed it.
    npy_descr: String,
    elem: PhantomData<T>,
}

impl<T: Pod> MmapArrayMut<T> {
    fn new(
        inner: Inner<MmapMut, IxDyn>,
        copy_on_write: bool,
        opts: &MapOptions,
        sync: PendingSync,
    ) -> Result<Self, Error> {
        bytes::view::<T, _>(&inner.map, inner.dim.clone(), inner.order)
            .map_err(|e| e.at(&inner.path))?;
        let a = MmapArrayMut {
            inner,
            copy_on_write,
            preallocate: !opts.sparse,
            sync,
            npy_start: None,
            npy_descr: String::new(),
            elem: PhantomData,
        };
        if let Some(advice) = opts.advice {
            a.advise(advice)?;
        }
        Ok(a)
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// Maps `path` read-write with `shape`, as an array of `D`'s rank. Shorthand for
    /// [`MapOptions::new().open_mut(..)`](MapOptions::open_mut) and
    /// [`into_dimensionality`](Self::into_dimensionality).
    ///
    /// # Safety
    /// See [`MapOptions::open_mut`].
    ///
    /// # Errors
    /// As for [`MapOptions::open_mut`], and [`Error::Dimensionality`] for another rank.
    ///
    /// ```
    /// use ndarray::Ix1;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("w.f64");
    /// # std::fs::write(&path, [0u8; 32]).unwrap();
    /// let mut w = unsafe { MmapArrayMut::<f64, Ix1>::open(&path, [-1]) }?;
    /// w.view_mut()[3] = 1.5;
    /// assert_eq!(w.view().sum(), 1.5);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn open(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().open_mut::<T>(path, shape) }?.into_dimensionality()
    }

    /// Creates `path` as a zero-filled array of exactly `shape`, of `D`'s rank, mapped
    /// read-write. Shorthand for [`MapOptions::new().create(..)`](MapOptions::create).
    ///
    /// # Safety
    /// See [`MapOptions::create`].
    ///
    /// # Errors
    /// As for [`MapOptions::create`]; [`Error::Dimensionality`] for another rank, found
    /// before any file is touched.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("z.i32");
    /// let mut z = unsafe { MmapArrayMut::<i32, Ix2>::create(&path, (1000, 24)) }?;
    /// z.view_mut()[[999, 23]] = 7;
    /// assert_eq!(z.view().dim(), (1000, 24));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn create(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        let path = path.as_ref();
        check_rank::<D>(path, shape.to_spec().len())?;
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().create::<T>(path, shape) }?.into_dimensionality()
    }
}

impl<T: crate::Element, D: Dimension> MmapArrayMut<T, D> {
    /// Creates the `.npy` file at `path` for a zero-filled C-order array of exactly
    /// `shape`, of `D`'s rank, and maps its data read-write. Shorthand for
    /// [`MapOptions::new().create_npy(..)`](MapOptions::create_npy).
    ///
    /// # Safety
    /// See [`MapOptions::create_npy`].
    ///
    /// # Errors
    /// As for [`MapOptions::create_npy`]; [`Error::Dimensionality`] for another rank,
    /// found before any file is touched.
    ///
    /// ```
    /// use ndarray::Ix2;
    /// use ndarray_mmap::MmapArrayMut;
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("y.npy");
    /// let y = unsafe { MmapArrayMut::<f32, Ix2>::create_npy(&path, (10, 3)) }?;
    /// assert_eq!(y.view().dim(), (10, 3));
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub unsafe fn create_npy(path: impl AsRef<Path>, shape: impl ShapeArg) -> Result<Self, Error> {
        let path = path.as_ref();
        check_rank::<D>(path, shape.to_spec().len())?;
        // SAFETY: forwarded to the caller.
        unsafe { MapOptions::new().create_npy::<T>(path, shape) }?.into_dimensionality()
    }
}

/// `D`'s rank must be `ndim` (any rank for `IxDyn`).
fn check_rank<D: Dimension>(path: &Path, ndim: usize) -> Result<(), Error> {
    match D::NDIM {
        Some(n) if n != ndim => Err(Error::Dimensionality {
            path: Some(path.to_path_buf()),
            expected: n,
            found: ndim,
        }),
        _ => Ok(()),
    }
}

impl<T: Pod, D: Dimension> MmapArrayMut<T, D> {
    /// A read-only view of the whole array.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.i32");
    /// let c = unsafe { ndarray_mmap::create_array::<i32>(&path, [3, 2]) }?;
    /// assert_eq!(c.view().shape(), &[3, 2]);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn view(&self) -> ArrayView<'_, T, D> {
        bytes::view(&self.inner.map, self.inner.dim.clone(), self.inner.order)
            .expect("shape and alignment were checked when the file was mapped")
    }

    /// A mutable view of the whole array. Writes go to the page cache at once (shared
    /// maps) and reach the disk on [`flush`](Self::flush) or when the kernel writes back.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.i32");
    /// let mut c = unsafe { ndarray_mmap::create_array::<i32>(&path, [3, 2]) }?;
    /// c.view_mut()[[2, 1]] = 5;
    /// assert_eq!(c.view().sum(), 5);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn view_mut(&mut self) -> ArrayViewMut<'_, T, D> {
        bytes::view_mut(
            &mut self.inner.map,
            self.inner.dim.clone(),
            self.inner.order,
        )
        .expect("shape and alignment were checked when the file was mapped")
    }

    /// The mapped bytes.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u16>(&path, [3]) }?;
    /// assert_eq!(c.as_bytes().len(), 6);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.inner.map
    }

    /// The mapped bytes, mutably.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.as_bytes_mut()[1] = 4;
    /// assert_eq!(c.view()[1], 4);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.inner.map
    }

    /// Whether this map is copy-on-write ([`MapOptions::open_copy`]): writes never reach
    /// the file, and flushing does nothing.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// assert!(!c.is_copy_on_write());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn is_copy_on_write(&self) -> bool {
        self.copy_on_write
    }

    /// Writes every modified page to the file and waits (`msync(MS_SYNC)`). When it
    /// returns `Ok`, the data is in the file: other processes reading the file see it and
    /// it survives this process being killed. A no-op for copy-on-write maps.
    ///
    /// On Linux `msync(MS_SYNC)` also writes the pages to the disk. The first flush after
    /// [`create`](MapOptions::create) or [`grow`](Self::grow) also syncs the file's
    /// length and block map (`fsync`), and after creating a new file, its directory
    /// entry, so that the data survives a power loss too (see the README's "Reliability"
    /// section for what the disk itself may still lose).
    ///
    /// # Errors
    /// The I/O error `msync` or `fsync` reports (for example `EIO` after a failed
    /// write-back), with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.view_mut().fill(1);
    /// c.flush()?;
    /// assert_eq!(std::fs::read(&path)?, [1, 1, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        if self.copy_on_write {
            return Ok(());
        }
        if !self.inner.map.is_empty() {
            self.inner
                .map
                .flush()
                .map_err(|e| Error::io(&self.inner.path, "flush", e))?;
        }
        self.sync.run(&self.inner.file, &self.inner.path)
    }

    /// Starts writing modified pages back without waiting (`MS_ASYNC`). On Linux the
    /// kernel already tracks dirty pages, so this only guarantees write-back has been
    /// scheduled; use [`flush`](Self::flush) for durability.
    ///
    /// # Errors
    /// The I/O error `msync` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.flush_async()?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn flush_async(&self) -> Result<(), Error> {
        if self.copy_on_write || self.inner.map.is_empty() {
            return Ok(());
        }
        self.inner
            .map
            .flush_async()
            .map_err(|e| Error::io(&self.inner.path, "flush", e))
    }

    /// Like [`flush`](Self::flush), for the elements `elems` (indices in memory order).
    ///
    /// # Errors
    /// [`Error::ElementRange`] when the range lies outside the array; the I/O error
    /// `msync` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.f32");
    /// let mut c = unsafe { ndarray_mmap::create_array::<f32>(&path, [1000]) }?;
    /// c.view_mut().slice_mut(ndarray::s![..10]).fill(1.0);
    /// c.flush_range(0..10)?;
    /// assert!(c.flush_range(0..1001).is_err());
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn flush_range(&self, elems: Range<usize>) -> Result<(), Error> {
        let (offset, len) = self.inner.elem_range::<T>(elems)?;
        if self.copy_on_write {
            return Ok(());
        }
        if len > 0 {
            self.inner
                .map
                .flush_range(offset, len)
                .map_err(|e| Error::io(&self.inner.path, "flush", e))?;
        }
        self.sync.run(&self.inner.file, &self.inner.path)
    }

    /// Gives the kernel a paging hint for the whole mapping (`madvise`).
    ///
    /// # Errors
    /// The I/O error `madvise` reports, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.advise(ndarray_mmap::Advice::WillNeed)?;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn advise(&self, advice: Advice) -> Result<(), Error> {
        #[cfg(unix)]
        if !self.inner.map.is_empty() {
            self.inner
                .map
                .advise(advice.into())
                .map_err(|e| Error::io(&self.inner.path, "advise", e))?;
        }
        #[cfg(not(unix))]
        let _ = advice;
        Ok(())
    }

    /// Fixes the number of dimensions (see [`MmapArray::into_dimensionality`]).
    ///
    /// # Errors
    /// [`Error::Dimensionality`] when the array has another number of dimensions.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [2, 3]) }?
    ///     .into_dimensionality::<ndarray::Ix2>()?;
    /// c.view_mut()[[1, 2]] = 1;
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn into_dimensionality<D2: Dimension>(self) -> Result<MmapArrayMut<T, D2>, Error> {
        Ok(MmapArrayMut {
            inner: self.inner.into_dimensionality()?,
            copy_on_write: self.copy_on_write,
            preallocate: self.preallocate,
            sync: self.sync,
            npy_start: self.npy_start,
            npy_descr: self.npy_descr,
            elem: PhantomData,
        })
    }

    /// Flushes (for shared maps), unmaps and releases the lock, reporting any error
    /// instead of hiding it in `Drop`. Dropping without `close` loses nothing that was
    /// written (the page cache holds it) but does not wait for the disk.
    ///
    /// # Errors
    /// The I/O error from flushing or unlocking, with the path.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let path = tmp.path().join("c.u8");
    /// let mut c = unsafe { ndarray_mmap::create_array::<u8>(&path, [3]) }?;
    /// c.view_mut()[0] = 1;
    /// c.close()?;
    /// assert_eq!(std::fs::read(&path)?, [1, 0, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        self.flush()?;
        self.inner.unlock()
    }
}

/// Maps `path` read-only as an array of `T` with `shape`; one length may be `-1`,
/// inferred from the file's length. Shorthand for [`MapOptions::new().open(..)`](MapOptions::open).
///
/// # Safety
/// See [`MapOptions::open`]: the file must not be truncated or modified while mapped.
///
/// # Errors
/// See [`MapOptions::open`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("a.f32");
/// std::fs::write(&path, bytemuck::cast_slice(&[1f32; 48]))?;
/// let a = unsafe { ndarray_mmap::mmap_array::<f32>(&path, [-1, 24]) }?;
/// assert_eq!(a.shape(), &[2, 24]);
/// assert_eq!(a.view().sum(), 48.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn mmap_array<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArray<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open(path, shape) }
}

/// Maps `path` read-write (shared with the file) as an array of `T` with `shape`.
/// Shorthand for [`MapOptions::new().open_mut(..)`](MapOptions::open_mut).
///
/// # Safety
/// See [`MapOptions::open_mut`].
///
/// # Errors
/// See [`MapOptions::open_mut`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("b.f64");
/// std::fs::write(&path, [0u8; 80])?;
/// let mut b = unsafe { ndarray_mmap::mmap_array_mut::<f64>(&path, [-1]) }?;
/// b.view_mut().fill(1.0);
/// b.flush()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn mmap_array_mut<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().open_mut(path, shape) }
}

/// Creates (or atomically replaces) `path` as a zero-filled array of `T` with exactly `shape`, and
/// maps it read-write. Shorthand for [`MapOptions::new().create(..)`](MapOptions::create).
///
/// # Safety
/// See [`MapOptions::create`].
///
/// # Errors
/// See [`MapOptions::create`].
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("c.i32");
/// let mut c = unsafe { ndarray_mmap::create_array::<i32>(&path, [1000, 24]) }?;
/// c.view_mut()[[999, 23]] = -1;
/// c.close()?;
/// assert_eq!(std::fs::metadata(&path)?.len(), 96_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub unsafe fn create_array<T: Pod>(
    path: impl AsRef<Path>,
    shape: impl ShapeArg,
) -> Result<MmapArrayMut<T>, Error> {
    // SAFETY: forwarded to the caller.
    unsafe { MapOptions::new().create(path, shape) }
}
