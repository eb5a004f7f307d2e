//! The file layer: opening (regular files only, FIFOs refused without blocking), the lock
//! protocol of [`super::lock`] applied to paths, file identity, creating a file aside and
//! moving it into place, disk reservation, positioned writes, and the syncs that make a
//! created name durable.
//!
//! Creating never touches an existing file's bytes: the new file is built under a
//! temporary name in the same directory, locked, sized and mapped there, and only then
//! renamed over the old one (or linked into place without replacing, for `create_new`).
//! A failure or a crash at any step leaves either the old file or nothing (at worst a
//! stray `.NAME.PID.N.ndarray-mmap.tmp` after a crash), and no call removes a path it
//! did not create.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::lock::{self, Kind, Role, interop};

// The system calls, one file per platform (as memmap2 does).
#[cfg_attr(unix, path = "file/unix.rs")]
#[cfg_attr(windows, path = "file/windows.rs")]
#[cfg_attr(not(any(unix, windows)), path = "file/other.rs")]
mod os;
use crate::error::Error;

/// Which file: device and inode (Unix), volume serial and file index (Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of an open file.
pub(crate) fn identity(file: &File) -> io::Result<FileId> {
    os::identity(file)
}

/// The identity of what `path` names now (`None` where that cannot be asked).
pub(crate) fn identity_of_path(path: &Path) -> Option<io::Result<FileId>> {
    os::identity_of_path(path)
}

/// The identity of the entry `path` names now, not following a link there (a link is
/// itself: never the file it points to); `None` off Unix.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))] // Zarr chunks
pub(crate) fn identity_of_entry(path: &Path) -> Option<io::Result<FileId>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(std::fs::symlink_metadata(path).map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What a file is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
    Copy,
}

/// Opens `path` and checks that it is a regular file, without blocking on FIFOs.
pub(crate) fn open_regular(
    path: &Path,
    oo: &OpenOptions,
    action: &'static str,
) -> Result<File, Error> {
    // Opening a FIFO for reading would wait for a writer; the check below rejects it.
    let oo = os::nonblocking(oo);
    let file = match oo.open(path) {
        Ok(f) => f,
        // Windows refuses to open a directory as a file with "access denied".
        Err(e) if cfg!(windows) && std::fs::metadata(path).is_ok_and(|m| m.is_dir()) => {
            let _ = e;
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: "a directory",
            });
        }
        Err(e) => return Err(Error::io(path, action, e)),
    };
    let ft = file
        .metadata()
        .map_err(|e| Error::io(path, "read metadata of", e))?
        .file_type();
    if !ft.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(&ft),
        });
    }
    Ok(file)
}

pub(crate) fn file_kind(ft: &std::fs::FileType) -> &'static str {
    if let Some(kind) = os::special_kind(ft) {
        kind
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn locked(path: &Path, action: &'static str, exclusive: bool, wait: Option<Duration>) -> Error {
    Error::Locked {
        path: path.to_path_buf(),
        exclusive,
        action,
        waited: wait,
    }
}

fn lock_io(path: &Path, e: io::Error) -> Error {
    Error::io(path, "lock", e)
}

/// Takes the map locks every live map holds (the shared `flock`, `Map` shared), waiting
/// at most `wait`.
pub(crate) fn lock_map_shared(
    file: &File,
    path: &Path,
    wait: Option<Duration>,
) -> Result<(), Error> {
    let deadline = wait.map(|w| std::time::Instant::now() + w);
    loop {
        if interop::try_lock(file, Kind::Shared).map_err(|e| lock_io(path, e))? {
            match lock::try_lock(file, Role::Map, Kind::Shared) {
                Ok(true) => return Ok(()),
                Ok(false) => interop::unlock(file).map_err(|e| lock_io(path, e))?,
                Err(e) => {
                    let _ = interop::unlock(file);
                    return Err(lock_io(path, e));
                }
            }
        }
        match deadline {
            Some(d) if std::time::Instant::now() < d => {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return Err(locked(path, "map", false, wait)),
        }
    }
}

/// Releases what [`lock_map_shared`] took.
pub(crate) fn unlock_map(file: &File, path: &Path) -> Result<(), Error> {
    let a = lock::unlock(file, Role::Map);
    let b = interop::unlock(file);
    a.and(b).map_err(|e| Error::io(path, "unlock", e))
}

/// Takes `Map` (and the `flock`) exclusively, to replace the file or move its data:
/// refused while any other map of the file is alive. `holding` says whether this open
/// already holds the shared map locks; a refusal keeps them (see [`super::lock`]).
/// On success the gate is held too; [`release_exclusive`] gives everything back.
pub(crate) fn take_exclusive(
    file: &File,
    path: &Path,
    action: &'static str,
    holding: bool,
    wait: Option<Duration>,
) -> Result<(), Error> {
    let io = |e| lock_io(path, e);
    let deadline = lock::deadline(wait);
    if !lock::lock(file, Role::Gate, Kind::Exclusive, wait).map_err(io)? {
        return Err(locked(path, action, true, wait));
    }
    let refused = |file: &File| -> Result<Error, Error> {
        if holding && !lock::try_lock(file, Role::Map, Kind::Shared).map_err(io)? {
            // Cannot happen: every exclusive taker of `Map` holds the gate, and we do.
            return Err(Error::io(
                path,
                "lock",
                io::Error::other("lost the shared map lock"),
            ));
        }
        lock::unlock(file, Role::Gate).map_err(io)?;
        Ok(locked(path, action, true, wait))
    };
    if holding {
        lock::unlock(file, Role::Map).map_err(io)?;
    }
    if !lock::lock(file, Role::Map, Kind::Exclusive, lock::left(deadline)).map_err(io)? {
        return Err(refused(file)?);
    }
    if !interop::try_lock(file, Kind::Exclusive).map_err(io)? {
        // A program outside this crate holds the flock. Take our shared one back if it
        // was dropped by the refused conversion (best effort: never wait for it).
        if holding {
            let _ = interop::try_lock(file, Kind::Shared);
        }
        lock::unlock(file, Role::Map).map_err(io)?;
        return Err(refused(file)?);
    }
    Ok(())
}

/// Gives back what [`take_exclusive`] took, keeping the shared map locks when
/// `keep_shared`.
pub(crate) fn release_exclusive(file: &File, path: &Path, keep_shared: bool) -> Result<(), Error> {
    let io = |e| lock_io(path, e);
    lock::unlock(file, Role::Map).map_err(io)?;
    if keep_shared {
        // With the gate held nobody else can take `Map` exclusively: this cannot fail.
        if !lock::try_lock(file, Role::Map, Kind::Shared).map_err(io)? {
            return Err(Error::io(
                path,
                "lock",
                io::Error::other("lost the shared map lock"),
            ));
        }
        // Converting the flock back cannot be refused by this crate's maps; a foreign
        // exclusive holder that slips in keeps it (best effort, never waits).
        let _ = interop::try_lock(file, Kind::Shared);
    } else {
        interop::unlock(file).map_err(io)?;
    }
    lock::unlock(file, Role::Gate).map_err(io)
}

/// Opens `path` for `mode`, checks that it is a regular file, takes the map locks, and
/// returns the file with its length (read under the lock) and identity. If the path was
/// replaced between the open and the lock, opens the new file instead.
pub(crate) fn open_locked(
    path: &Path,
    mode: Mode,
    wait: Option<Duration>,
) -> Result<(File, u64, FileId), Error> {
    let mut oo = OpenOptions::new();
    oo.read(true).write(mode == Mode::Write);
    let action = match mode {
        Mode::Write => "open for reading and writing",
        Mode::Read | Mode::Copy => "open for reading",
    };
    let mut tries = 0;
    let deadline = lock::deadline(wait);
    loop {
        let file = open_regular(path, &oo, action)?;
        lock_map_shared(&file, path, lock::left(deadline))?;
        let id = identity(&file).map_err(|e| Error::io(path, "read metadata of", e))?;
        // A replacer renames a new file over the path while holding the old one
        // exclusively: if that happened between our open and our lock, we hold the old,
        // unlinked file. Open again (a bounded number of times).
        tries += 1;
        if let Some(now) = identity_of_path(path)
            && now.ok() != Some(id)
        {
            // Replaced between our open and our lock: open again, 16 times at least
            // and for as long as we may wait; then say so rather than map a stale file.
            if tries < 16 || lock::left(deadline).is_some_and(|d| !d.is_zero()) {
                continue;
            }
            return Err(locked(
                path,
                "open (it was replaced while being opened)",
                false,
                wait,
            ));
        }
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(path, "read metadata of", e))?
            .len();
        return Ok((file, file_len, id));
    }
}

/// Checks that `path` could be mapped for writing now: opened read-write and its map
/// locks taken (then let go), so that a stream finds a locked or read-only file before it
/// writes anything.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn probe_writable(path: &Path, wait: Option<Duration>) -> Result<(), Error> {
    let (file, _, _) = open_locked(path, Mode::Write, wait)?;
    unlock_map(&file, path)
}

/// Removes `path` if it is still the file `id`, nobody maps it (its map lock taken
/// exclusively, without waiting) and it holds only `fill` repeated: for taking back a
/// file this process created, never one that replaced it since, that another map is
/// using, or that another writer wrote. Whether it was removed.
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn remove_if_unused(path: &Path, id: FileId, fill: &[u8]) -> bool {
    // (Read-write: an exclusive lock needs a descriptor open for writing.)
    let mut oo = OpenOptions::new();
    oo.read(true).write(true);
    let Ok(f) = open_regular(path, &oo, "open for reading and writing") else {
        return false;
    };
    if identity(&f).ok() != Some(id) || take_exclusive(&f, path, "remove", false, None).is_err() {
        return false;
    }
    let still = identity_of_path(path).is_some_and(|now| now.ok() == Some(id));
    let removed = still && holds_only(&f, fill) && std::fs::remove_file(path).is_ok();
    let _ = release_exclusive(&f, path, false);
    removed
}

/// Whether the file holds `pattern` repeated and nothing else (a chunk never written
/// since it was made with its fill value).
fn holds_only(file: &File, pattern: &[u8]) -> bool {
    if pattern.is_empty() {
        return false;
    }
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut buf = vec![0u8; (1 << 20) / pattern.len() * pattern.len()];
    let mut at = 0u64;
    while at < len {
        let n = buf.len().min((len - at) as usize);
        if read_exact_at(file, &mut buf[..n], at).is_err()
            || buf[..n]
                .chunks(pattern.len())
                .any(|c| c != &pattern[..c.len()])
        {
            return false;
        }
        at += n as u64;
    }
    true
}

/// The target of a create: `path`, or what it links to.
pub(crate) fn resolve_target(path: &Path) -> Result<PathBuf, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .map_err(|e| Error::io(path, "open for reading and writing", e)),
        _ => Ok(path.to_path_buf()),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary name beside `target`, unique in this process.
fn temp_name(target: &Path, n: u64) -> PathBuf {
    let name = target
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the temporary name under NAME_MAX whatever the file's name is.
    let mut cut = name.len().min(100);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let tmp = format!(
        ".{}.{}.{n}.ndarray-mmap.tmp",
        &name[..cut],
        std::process::id()
    );
    parent_dir(target).join(tmp)
}

/// A new file, complete but not yet at its path: locked (shared map locks), sized,
/// reserved. Dropping it removes it; [`Staged::commit`] moves it into place.
pub(crate) struct Staged {
    pub(crate) file: File,
    /// Its temporary name; `None` for a file that has no name yet (`O_TMPFILE`).
    temp: Option<PathBuf>,
    target: PathBuf,
    /// What it replaces.
    replaces: Replaces,
    wait: Option<Duration>,
    committed: bool,
}

/// What a staged file replaces at its path.
enum Replaces {
    /// Nothing, and it must not (`create_new`).
    Nothing,
    /// Whatever is there now, if nobody maps it: the file, held exclusively, when there
    /// was one at staging.
    Current(Option<File>),
    /// The file with this identity, which the caller holds exclusively (a `.npy` whose
    /// data moves): if the path names another file now, nothing is replaced.
    Held(FileId),
}

/// How to create.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CreateHow {
    pub(crate) create_new: bool,
    pub(crate) reserve: bool,
    pub(crate) wait: Option<Duration>,
    /// A link at the path is replaced itself, never followed (a Zarr chunk: its bytes must
    /// stay inside the array's directory).
    pub(crate) no_follow: bool,
}

/// Opens the file at `target` to replace it: one we may write, that nobody maps (its
/// map lock held exclusively), and that the path still names. `None` if there is none.
fn open_to_replace(
    path: &Path,
    target: &Path,
    wait: Option<Duration>,
) -> Result<Option<File>, Error> {
    let mut oo = OpenOptions::new();
    oo.read(true).write(true);
    for _ in 0..16 {
        let f = match open_regular(target, &oo, "open for reading and writing") {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        take_exclusive(&f, path, "replace", false, wait)?;
        // Another create may have replaced it while we waited for the lock: then the
        // file we hold is not the one at the path any more. Look again.
        let held = identity(&f).map_err(|e| Error::io(path, "read metadata of", e))?;
        match identity_of_path(target) {
            Some(Ok(now)) if now != held => continue,
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => return Ok(Some(f)),
        }
    }
    Err(locked(path, "replace", true, wait))
}

/// Builds a file of `total` bytes starting with `head` (zeros after it) beside `path`,
/// ready to be mapped and then [committed](Staged::commit). Nothing at `path` changes.
pub(crate) fn stage(path: &Path, head: &[u8], total: u64, how: CreateHow) -> Result<Staged, Error> {
    let exists = std::fs::symlink_metadata(path).is_ok();
    if how.create_new && exists {
        return Err(Error::io(
            path,
            "create",
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    let target = if how.create_new || how.no_follow {
        path.to_path_buf()
    } else {
        resolve_target(path)?
    };
    // The file this replaces must be one we may write, and nobody may map it: found out
    // before anything is built. (Checked again when the new file moves into place.)
    let old = if how.create_new || !exists {
        None
    } else {
        open_to_replace(path, &target, how.wait)?
    };
    let old_len = old
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    let mut staged = stage_aside(path, &target, old_len, total, how.reserve)?;
    staged.wait = how.wait;
    staged.replaces = if how.create_new {
        Replaces::Nothing
    } else {
        Replaces::Current(old)
    };
    if !head.is_empty() {
        write_all_at(&staged.file, head, 0)
            .map_err(|e| Error::io(path, "write the header of", e))?;
    }
    Ok(staged)
}

/// A new, empty-but-sized file of `total` bytes (zeros, blocks reserved when `reserve`)
/// beside `target`, holding the shared map locks; `path` is the name errors give, and
/// `old_len` the length of the file it will replace.
pub(crate) fn stage_aside(
    path: &Path,
    target: &Path,
    old_len: u64,
    total: u64,
    reserve_blocks: bool,
) -> Result<Staged, Error> {
    // Linux: a file with no name at all until it is linked into place (`O_TMPFILE`), so
    // even a kill leaves nothing behind. Elsewhere, or where the filesystem cannot, a
    // temporary name beside the target.
    let (file, temp) = match open_unnamed(target) {
        Some(f) => (f, None),
        None => {
            let mut oo = OpenOptions::new();
            oo.read(true).write(true).create_new(true);
            loop {
                let temp = temp_name(target, COUNTER.fetch_add(1, Ordering::Relaxed));
                match oo.open(&temp) {
                    Ok(f) => break (f, Some(temp)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        return Err(Error::io(
                            path,
                            "create (a new file is built in the file's directory and renamed into \
                             place, so the directory must be writable)",
                            e,
                        ));
                    }
                    Err(e) => return Err(Error::io(path, "create", e)),
                }
            }
        }
    };
    let staged = Staged {
        file,
        temp,
        target: target.to_path_buf(),
        replaces: Replaces::Current(None),
        wait: None,
        committed: false,
    };
    lock_map_shared(&staged.file, path, None)?;
    if reserve_blocks {
        reserve(&staged.file, 0, total).map_err(|source| Error::Reserve {
            path: path.to_path_buf(),
            from: old_len,
            to: total,
            source,
        })?;
    }
    staged
        .file
        .set_len(total)
        .map_err(|e| Error::io(path, "resize", e))?;
    Ok(staged)
}

impl Staged {
    /// This file replaces the one with identity `id`, which the caller holds
    /// exclusively, and nothing else.
    pub(crate) fn replacing_held(mut self, id: FileId) -> Staged {
        self.replaces = Replaces::Held(id);
        self
    }

    /// Moves the file into place: over the file it replaces (renamed over it), or where
    /// nothing is (linked without replacing, failing if a file appeared meanwhile: then
    /// that one is replaced by the same rules). Returns the file and its directory.
    pub(crate) fn commit(mut self, path: &Path) -> Result<(File, Directory), Error> {
        let fail = |e| Error::io(path, "create", e);
        for _ in 0..16 {
            match std::mem::replace(&mut self.replaces, Replaces::Nothing) {
                Replaces::Nothing => {
                    self.place_new().map_err(fail)?;
                    return self.committed_file(path);
                }
                Replaces::Current(None) => match self.place_new() {
                    Ok(()) => return self.committed_file(path),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Someone created it since: replace it if nobody maps it.
                        let old = open_to_replace(path, &self.target, self.wait)?;
                        self.replaces = Replaces::Current(old);
                    }
                    Err(e) => return Err(fail(e)),
                },
                Replaces::Current(Some(old)) => {
                    let held =
                        identity(&old).map_err(|e| Error::io(path, "read metadata of", e))?;
                    if identity_of_path(&self.target).is_some_and(|now| now.ok() != Some(held)) {
                        // Replaced or removed since we locked it: look again.
                        drop(old);
                        let again = open_to_replace(path, &self.target, self.wait)?;
                        self.replaces = Replaces::Current(again);
                        continue;
                    }
                    self.take_on(&old, path)?;
                    // Windows cannot rename over a file that is open: let the old one go
                    // first (its own sharing rules then refuse a file someone maps).
                    #[cfg(windows)]
                    {
                        drop(old);
                        self.place_over_open_files(path)?;
                    }
                    #[cfg(not(windows))]
                    {
                        self.place_over().map_err(fail)?;
                        // The old file's locks go with it: maps of it that ignore the
                        // locks keep the old inode, so nothing faults.
                        drop(old);
                    }
                    return self.committed_file(path);
                }
                Replaces::Held(id) => {
                    if identity_of_path(&self.target).is_some_and(|now| now.ok() != Some(id)) {
                        return Err(Error::CannotGrow {
                            path: path.to_path_buf(),
                            reason: crate::error::GrowProblem::PathChanged,
                        });
                    }
                    self.file
                        .sync_all()
                        .map_err(|e| Error::io(path, "sync", e))?;
                    self.place_over().map_err(fail)?;
                    return self.committed_file(path);
                }
            }
        }
        Err(locked(path, "replace", true, self.wait))
    }

    /// Takes on the old file's permissions (and owner, where we may), and syncs: the new
    /// file must be on disk before its name replaces the old one, or a power loss could
    /// leave neither.
    fn take_on(&self, old: &File, path: &Path) -> Result<(), Error> {
        if let Ok(m) = old.metadata() {
            os::take_owner(&self.file, &m);
            let _ = self.file.set_permissions(m.permissions());
        }
        self.file.sync_all().map_err(|e| Error::io(path, "sync", e))
    }

    /// Puts the file at the target, which must not exist.
    fn place_new(&mut self) -> io::Result<()> {
        match &self.temp {
            None => link_unnamed(&self.file, &self.target),
            Some(temp) => link_no_replace(temp, &self.target),
        }
    }

    /// Windows: the rename fails while anyone has the old file open (another waiting
    /// creator, a reader): try again until the lock timeout, then report it as locked.
    #[cfg(windows)]
    fn place_over_open_files(&mut self, path: &Path) -> Result<(), Error> {
        let deadline = lock::deadline(self.wait);
        loop {
            match self.place_over() {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    if lock::left(deadline).is_none_or(|d| d.is_zero()) {
                        return Err(locked(path, "replace", true, self.wait));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(Error::io(path, "create", e)),
            }
        }
    }

    /// Puts the file at the target, replacing what is there.
    fn place_over(&mut self) -> io::Result<()> {
        if self.temp.is_none() {
            // Give it a name beside the target first; renaming that is atomic.
            let temp = loop {
                let t = temp_name(&self.target, COUNTER.fetch_add(1, Ordering::Relaxed));
                match link_unnamed(&self.file, &t) {
                    Ok(()) => break t,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            };
            self.temp = Some(temp);
        }
        let temp = self.temp.as_ref().expect("named above");
        std::fs::rename(temp, &self.target)
    }

    fn committed_file(&mut self, path: &Path) -> Result<(File, Directory), Error> {
        self.committed = true;
        let dir = Directory::of(&self.target);
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io(path, "open", e))?;
        Ok((file, dir))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let (false, Some(temp)) = (self.committed, &self.temp) {
            // Ours, never moved into place: removing it changes nothing the user has.
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Counts temporary names in this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new file without a name in `target`'s directory (`O_TMPFILE`), where the kernel, the
/// filesystem and `/proc` (to link it later) allow.
fn open_unnamed(target: &Path) -> Option<File> {
    os::open_unnamed(parent_dir(target))
}

/// Gives the unnamed file `file` the name `to`; fails if `to` exists.
fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    os::link_unnamed(file, to)
}

/// Moves file or directory `from` to `to` unless `to` exists, atomically (a directory
/// only where the system renames without replacing: Linux, Windows).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    link_no_replace(from, to)
}

/// Moves `from` to `to` unless `to` exists, atomically.
fn link_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    os::link_no_replace(from, to)
}

/// The directory of a created file, opened once (so a later rename of it does not
/// matter), for syncing the new name.
#[derive(Debug)]
pub(crate) struct Directory(Option<File>);

impl Directory {
    fn of(target: &Path) -> Directory {
        Directory(os::open_dir(parent_dir(target)))
    }
}

impl Directory {
    /// Syncs the directory (so the new name survives a power loss); `path` names the file
    /// in errors.
    pub(crate) fn sync(self, path: &Path) -> Result<(), Error> {
        match self.0 {
            Some(d) => d
                .sync_all()
                .map_err(|e| Error::io(parent_dir(path), "sync the directory", e)),
            None => Ok(()),
        }
    }
}

/// Metadata the next flush must sync beyond the data pages.
#[derive(Debug, Default)]
pub(crate) struct PendingSync {
    bits: AtomicU8,
    dir: Mutex<Option<File>>,
}

impl PendingSync {
    /// The file's length and block map (`fsync`).
    pub(crate) const FILE: u8 = 1;
    /// The directory entry of a file this crate created.
    const DIR: u8 = 2;

    /// After a create: the file and its directory entry.
    pub(crate) fn created(dir: Directory) -> PendingSync {
        PendingSync {
            bits: AtomicU8::new(Self::FILE | Self::DIR),
            dir: Mutex::new(dir.0),
        }
    }

    pub(crate) fn set(&self, bits: u8) {
        self.bits.fetch_or(bits, Ordering::AcqRel);
    }

    /// A new directory (after the file was replaced by one built aside).
    pub(crate) fn replaced(&self, dir: Directory) {
        if let Ok(mut d) = self.dir.lock() {
            *d = dir.0;
        }
        self.set(Self::FILE | Self::DIR);
    }

    /// Syncs what is pending. A failed file sync stays pending for the next flush; a
    /// failed directory sync is reported once.
    pub(crate) fn run(&self, file: &File, path: &Path) -> Result<(), Error> {
        let bits = self.bits.load(Ordering::Acquire);
        if bits & Self::FILE != 0 {
            file.sync_all().map_err(|e| Error::io(path, "sync", e))?;
            self.bits.fetch_and(!Self::FILE, Ordering::AcqRel);
        }
        if bits & Self::DIR != 0 {
            self.bits.fetch_and(!Self::DIR, Ordering::AcqRel);
            let dir = self.dir.lock().ok().and_then(|mut d| d.take());
            if let Some(d) = dir {
                d.sync_all()
                    .map_err(|e| Error::io(parent_dir(path), "sync the directory", e))?;
            }
        }
        Ok(())
    }
}

/// Reserves disk blocks for bytes `from..to` of `file`, extending it to `to` if it is
/// shorter. Does nothing (and succeeds) where the filesystem or platform cannot reserve.
pub(crate) fn reserve(file: &File, from: u64, to: u64) -> io::Result<()> {
    fallocate(file, from, to, false)
}

/// Reserves disk blocks for bytes `from..to` without changing the file's length (the
/// blocks past the end stay invisible until written).
pub(crate) fn reserve_keep_size(file: &File, from: u64, to: u64) -> io::Result<()> {
    fallocate(file, from, to, true)
}

fn fallocate(file: &File, from: u64, to: u64, keep_size: bool) -> io::Result<()> {
    if to <= from {
        return Ok(());
    }
    os::fallocate(file, from, to, keep_size)
}

/// Writes all of `buf` at `offset` (the file's position is not used).
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    os::write_all_at(file, buf, offset)
}

/// Whether the bytes at `at` start with the `.npy` magic string (`false` past the end).
pub(crate) fn npy_magic_at(file: &File, at: u64) -> io::Result<bool> {
    let mut magic = [0u8; 6];
    match read_exact_at(file, &mut magic, at) {
        Ok(()) => Ok(&magic == crate::npy::MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// One positioned read of up to `buf.len()` bytes (0 at the end of the file).
#[cfg_attr(not(feature = "zarr"), allow(dead_code))]
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    os::read_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    os::read_exact_at(file, buf, offset)
}

/// The bytes of a destination for a read of `len` bytes at file offset `offset`: `len`
/// bytes of `buf` (replaced by a bigger one as needed; the contents are not kept)
/// starting at an address equal to `offset` modulo 64.
///
/// The kernel copies what `pread` reads with `rep movsb`, which on AMD's Zen cores runs
/// about 3x slower when the destination is 1 to 63 bytes past the source within a page:
/// exactly where a large allocation starts (16 bytes into a page) for a read at offset 0.
/// Measured here (2-core EPYC VM, page cache warm, 650 KB reads): 1.3-1.7 GB/s at a distance
/// of 4-24 bytes, 3.9-4.7 GB/s at 0, 32 and beyond. glibc's `memmove` avoids the same case
/// in user space; the kernel's copy does not.
#[cfg_attr(not(any(feature = "zarr", feature = "npz")), allow(dead_code))]
pub(crate) fn read_buffer(buf: &mut Vec<u8>, len: usize, offset: u64) -> &mut [u8] {
    let skip = read_start(buf, len, offset);
    &mut buf[skip..skip + len]
}

/// Where in `buf` the bytes of [`read_buffer`] start.
#[cfg_attr(not(any(feature = "zarr", feature = "npz")), allow(dead_code))]
pub(crate) fn read_start(buf: &mut Vec<u8>, len: usize, offset: u64) -> usize {
    const LINE: usize = 64;
    if buf.len() < len + LINE {
        // Zeroed by the allocator (fresh pages, not a pass over them, nor a copy of the
        // old bytes).
        *buf = vec![0; len + LINE];
    }
    (offset as usize).wrapping_sub(buf.as_ptr() as usize) % LINE
}

#[cfg(test)]
mod read_buffer_tests {
    #[test]
    fn a_read_buffer_starts_where_the_file_offset_does_modulo_64() {
        let mut buf = Vec::new();
        for (len, offset) in [(0, 0), (1, 5), (4096, 63), (100, 64), (7, 1 << 40)] {
            let b = super::read_buffer(&mut buf, len, offset);
            assert_eq!(b.len(), len);
            assert_eq!(
                b.as_ptr() as usize % 64,
                offset as usize % 64,
                "{len} at {offset}"
            );
        }
    }
}
