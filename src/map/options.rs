//! [`MapOptions`], the builder every map is made through, and [`Advice`]: the checks
//! of a request against the file (offset, alignment, window) and the map calls.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytemuck::Pod;
use memmap2::MmapOptions;
use ndarray::IxDyn;

use crate::bytes::{self, elem_size};
use crate::element::type_name;
use crate::error::Error;
use crate::shape::{Order, ShapeArg, Spec};

use super::file::{self, FileId, Mode, PendingSync};
use super::owner::{Inner, MmapArray, MmapArrayMut};
use super::{lock, pager};

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
    pub(super) offset: u64,
    /// Whether [`MapOptions::offset`] was called (a raw map of a `.npy` then is meant).
    pub(super) offset_given: bool,
    pub(super) len: Option<u64>,
    pub(super) order: Order,
    pub(super) advice: Option<Advice>,
    pub(super) populate: bool,
    pub(super) create_new: bool,
    /// `true` when [`MapOptions::preallocate`] was turned off (the default reserves).
    pub(super) sparse: bool,
    pub(super) lock_timeout: Option<Duration>,
}

/// An open, locked, regular file and the byte region of it to map.
pub(super) struct Region {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) id: FileId,
    /// Copy-on-write: writes through the map never reach the file.
    pub(super) private: bool,
    pub(super) offset: u64,
    pub(super) shape: Vec<usize>,
    pub(super) nbytes: usize,
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
        // SAFETY: forwarded to the caller; `open_region` checked the region.
        unsafe { self.map_read(r, self.order) }
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
        // SAFETY: forwarded to the caller; `open_region` checked the region and opened
        // the file read-write.
        unsafe { self.map_write(r, self.order) }
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
        // SAFETY: forwarded to the caller; `open_region` checked the region.
        unsafe { self.map_copy(r, self.order) }
    }

    /// Maps a checked region read-only as an owner (raw and `.npy` opens alike).
    ///
    /// # Safety
    /// As for [`open`](Self::open); `r` lies inside its file.
    pub(super) unsafe fn map_read<T: Pod>(
        &self,
        r: Region,
        order: Order,
    ) -> Result<MmapArray<T>, Error> {
        // SAFETY: the caller upholds the no-truncate/no-modify contract, and the region
        // lies inside the file.
        let map = unsafe { self.mmap_options(&r).map(&r.file) }
            .map_err(|e| Error::io(&r.path, "map", e))?;
        MmapArray::new(
            Inner::new(map, r, order, self, self.len.is_some()),
            self.advice,
        )
    }

    /// Maps a checked region read-write, shared with the file.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut); `r` lies inside its file, opened read-write.
    pub(super) unsafe fn map_write<T: Pod>(
        &self,
        r: Region,
        order: Order,
    ) -> Result<MmapArrayMut<T>, Error> {
        // SAFETY: as in `map_read`; the file was opened read-write, so a shared writable
        // map is permitted.
        let map = unsafe { self.mmap_options(&r).map_mut(&r.file) }
            .map_err(|e| Error::io(&r.path, "map read-write", e))?;
        let inner = Inner::new(map, r, order, self, self.len.is_some());
        MmapArrayMut::new(inner, false, self, PendingSync::default())
    }

    /// Maps a checked region copy-on-write.
    ///
    /// # Safety
    /// As for [`open_copy`](Self::open_copy); `r` lies inside its file.
    pub(super) unsafe fn map_copy<T: Pod>(
        &self,
        r: Region,
        order: Order,
    ) -> Result<MmapArrayMut<T>, Error> {
        // SAFETY: as in `map_read`; a private map never writes to the file.
        let map = unsafe { self.mmap_options(&r).map_copy(&r.file) }
            .map_err(|e| Error::io(&r.path, "map copy-on-write", e))?;
        let inner = Inner::new(map, r, order, self, self.len.is_some());
        MmapArrayMut::new(inner, true, self, PendingSync::default())
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
        unsafe { self.create_mapped(path, &spec, shape, nbytes, &[], self.offset, None) }
    }

    /// [`create`](Self::create), with every element set to `fill` before the file
    /// appears at its path: a crash or a reader never sees it holding anything else.
    ///
    /// # Safety
    /// As for [`create`](Self::create).
    #[cfg_attr(not(feature = "zarr"), allow(dead_code))] // Zarr chunks
    pub(crate) unsafe fn create_filled<T: Pod>(
        &self,
        path: &Path,
        shape: &[usize],
        fill: T,
    ) -> Result<MmapArrayMut<T>, Error> {
        let (spec, shape, nbytes) = create_shape::<T>(path, shape)?;
        check_offset::<T>(path, self.offset)?;
        let pattern = bytemuck::bytes_of(&fill);
        let fill = pattern.iter().any(|&b| b != 0).then_some(pattern);
        // SAFETY: forwarded to the caller.
        unsafe { self.create_mapped(path, &spec, shape, nbytes, &[], self.offset, fill) }
    }

    /// Creates `path` holding `head` then zeros, `nbytes` of array data from `data_start`,
    /// and maps the data read-write as `shape`. The file is built aside and mapped
    /// before it replaces anything: a failure at any step leaves `path` as it was.
    ///
    /// # Safety
    /// As for [`open_mut`](Self::open_mut).
    #[allow(clippy::too_many_arguments)] // the shape's three forms, the header, the fill
    pub(super) unsafe fn create_mapped<T: Pod>(
        &self,
        path: &Path,
        spec: &Spec,
        shape: Vec<usize>,
        nbytes: usize,
        head: &[u8],
        data_start: u64,
        fill: Option<&[u8]>,
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
            no_follow: false,
        };
        let staged = file::stage(path, head, total, how)?;
        let mut opts = MmapOptions::new();
        opts.offset(data_start).len(nbytes);
        if self.populate {
            opts.populate();
        }
        // SAFETY: the caller upholds `open_mut`'s contract; the staged file is ours, open
        // read-write and exactly `total` bytes long, so the region lies inside it.
        let mut map = unsafe { opts.map_mut(&staged.file) }
            .map_err(|e| Error::io(path, "map read-write", e))?;
        bytes::view::<T, _>(&map, IxDyn(&shape), self.order).map_err(|e| e.at(path))?;
        if let Some(pattern) = fill.filter(|p| !p.is_empty()) {
            // Before the file has its name: nobody sees it unfilled. (The blocks are
            // reserved, so the writes cannot fault on a full disk.)
            for elem in map.chunks_exact_mut(pattern.len()) {
                elem.copy_from_slice(pattern);
            }
        }
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

    pub(super) fn mmap_options(&self, r: &Region) -> MmapOptions {
        let mut opts = MmapOptions::new();
        opts.offset(r.offset).len(r.nbytes);
        if self.populate {
            opts.populate();
        }
        opts
    }

    /// Opens, checks and locks `path`, and resolves the shape against its length.
    pub(super) fn open_region<T: Pod>(
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
    pub(super) fn window(&self, path: &Path, file_len: u64) -> Result<u64, Error> {
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
pub(super) fn create_shape<T: Pod>(
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

pub(super) fn check_offset<T>(path: &Path, offset: u64) -> Result<(), Error> {
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
pub(super) fn check_align<T>(path: &Path) -> Result<(), Error> {
    let (align, page) = (std::mem::align_of::<T>(), pager::page_size());
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
