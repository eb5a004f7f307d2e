//! Advisory locks with separate roles, on one byte each far past any data.
//!
//! | role | shared by | exclusive by |
//! |---|---|---|
//! | [`Role::Map`] | every live map of the file | whoever replaces the file or moves its data |
//! | [`Role::Gate`] | nobody | whoever wants `Map` exclusively (one at a time) |
//! | [`Role::Append`] | nobody | the one appender (grow/append) at a time |
//! | [`Role::Header`] | a reader of a `.npy` header, for the read | an appender, while it rewrites the header |
//! | [`Role::Intent`] | a header reader, only while it takes `Header` | an appender about to take `Header` |
//!
//! `Intent` gives the header writer precedence: once it holds `Intent`, no new reader
//! takes `Header`, so a stream of readers cannot starve an appender.
//!
//! Readers never block appenders: appending needs only `Append`, and extending a file
//! never invalidates a map of it. Taking `Map` exclusively while holding it shared (an
//! upgrade) goes through `Gate`: with the gate held, dropping our shared lock, trying the
//! exclusive one and taking the shared one back cannot let another upgrader in, because
//! every exclusive taker of `Map` holds the gate first. So a refused upgrade always keeps
//! its shared lock, on every platform.
//!
//! - Linux and Android: open file description locks (`F_OFD_SETLK`), which conflict
//!   between two opens of a file in one process too and are released when the last
//!   descriptor of that open closes (or the process dies).
//! - Windows: `LockFileEx` byte ranges, per handle. The bytes lie at 2^62, so the
//!   mandatory range locks never cover data that is read, written or mapped.
//! - Other Unix (macOS, BSD): POSIX record locks (`F_SETLK`), the same ranges, with
//!   their known weakness: two maps in one process do not conflict, and closing any
//!   descriptor of the file drops the process's locks on it.
//!
//! On Unix every map also holds a whole-file shared `flock`, and replacing or moving
//! takes it exclusively (without waiting), so that programs that lock with `flock(1)`
//! and this crate respect each other.
//!
//! Nothing here waits without a bound: [`lock`] polls until a deadline.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

/// The first lock byte: far past any real file, below `i64::MAX` (`off_t`).
const BASE: u64 = 1 << 62;

/// What a lock is for; each role has its own byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Held shared while mapped; exclusive to replace the file or move its data.
    Map,
    /// Held exclusive by whoever is about to take `Map` exclusively.
    Gate,
    /// Held exclusive by the one appender.
    Append,
    /// Shared while reading a `.npy` header, exclusive while rewriting it.
    Header,
    /// Taken by a header writer before `Header`, and briefly by readers before theirs.
    Intent,
}

impl Role {
    fn byte(self) -> u64 {
        BASE + match self {
            Role::Map => 0,
            Role::Gate => 1,
            Role::Append => 2,
            Role::Header => 3,
            Role::Intent => 4,
        }
    }
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Shared,
    Exclusive,
}

/// Tries to take `role` as `kind` without waiting: `Ok(false)` when another holder
/// conflicts.
pub(crate) fn try_lock(file: &File, role: Role, kind: Kind) -> io::Result<bool> {
    sys::try_lock(file, role.byte(), kind)
}

/// Releases `role` (held in either kind).
pub(crate) fn unlock(file: &File, role: Role) -> io::Result<()> {
    sys::unlock(file, role.byte())
}

/// Takes `role` as `kind`, polling until `wait` has passed (`None`: one try). `Ok(false)`
/// when it could not be had in time.
pub(crate) fn lock(
    file: &File,
    role: Role,
    kind: Kind,
    wait: Option<Duration>,
) -> io::Result<bool> {
    // The header locks are held for one small read or write: poll them finely. The others
    // may be held for as long as a map lives: back off to 10 ms.
    let longest = match role {
        Role::Header | Role::Intent => Duration::from_micros(50),
        Role::Map | Role::Gate | Role::Append => Duration::from_millis(10),
    };
    let deadline = wait.map(|w| Instant::now() + w);
    let mut pause = Duration::from_micros(5);
    loop {
        if try_lock(file, role, kind)? {
            return Ok(true);
        }
        match deadline {
            Some(d) if Instant::now() < d => {
                std::thread::sleep(pause.min(d.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(longest);
            }
            _ => return Ok(false),
        }
    }
}

/// Takes `Header` as `kind` the fair way (see [`Role::Intent`]), waiting at most `wait`
/// for each of the two locks.
pub(crate) fn lock_header(file: &File, kind: Kind, wait: Option<Duration>) -> io::Result<bool> {
    let deadline = deadline(wait);
    if !lock(file, Role::Intent, kind, wait)? {
        return Ok(false);
    }
    let got = lock(file, Role::Header, kind, left(deadline));
    // A writer keeps `Intent` until it lets `Header` go (see `unlock_header`).
    if kind == Kind::Shared || !matches!(got, Ok(true)) {
        unlock(file, Role::Intent)?;
    }
    got
}

/// Releases what [`lock_header`] took.
pub(crate) fn unlock_header(file: &File, kind: Kind) -> io::Result<()> {
    let a = unlock(file, Role::Header);
    if kind == Kind::Exclusive {
        unlock(file, Role::Intent)?;
    }
    a
}

/// The instant `wait` from now (`None`: no waiting at all).
pub(crate) fn deadline(wait: Option<Duration>) -> Option<Instant> {
    wait.map(|w| Instant::now() + w)
}

/// What is left until `deadline`, for the next lock of several taken under one bound.
pub(crate) fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether another open of the file holds `role` exclusively, without taking anything
/// (`F_OFD_GETLK`). `None` where the platform cannot tell.
pub(crate) fn held_exclusively_elsewhere(file: &File, role: Role) -> Option<bool> {
    sys::probe(file, role.byte())
}

/// The whole-file `flock` that programs outside this crate use (Unix; nothing elsewhere).
pub(crate) mod interop {
    use super::Kind;
    use std::fs::{File, TryLockError};
    use std::io;

    /// Tries to take the `flock` as `kind`. A refused shared→exclusive conversion may
    /// drop the shared lock (Linux does); callers take it back with `try_lock(Shared)`.
    pub(crate) fn try_lock(file: &File, kind: Kind) -> io::Result<bool> {
        if cfg!(not(unix)) {
            return Ok(true);
        }
        let r = match kind {
            Kind::Shared => file.try_lock_shared(),
            Kind::Exclusive => file.try_lock(),
        };
        match r {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Releases the `flock`.
    pub(crate) fn unlock(file: &File) -> io::Result<()> {
        if cfg!(not(unix)) {
            return Ok(());
        }
        file.unlock()
    }
}

#[cfg(unix)]
mod sys {
    use super::Kind;
    use std::fs::File;
    use std::io;
    use std::os::unix::io::AsRawFd;

    // The OFD commands have the same values on every Linux architecture.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const SETLK: libc::c_int = 37; // F_OFD_SETLK
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const GETLK: libc::c_int = 36; // F_OFD_GETLK
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const SETLK: libc::c_int = libc::F_SETLK;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const GETLK: libc::c_int = libc::F_GETLK;

    fn record(byte: u64, ty: libc::c_int) -> libc::flock {
        // SAFETY: `flock` is a plain C struct of integers; all zeros is a valid value
        // (and OFD locks require `l_pid == 0`).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = ty as _;
        fl.l_whence = libc::SEEK_SET as _;
        fl.l_start = byte as libc::off_t;
        fl.l_len = 1;
        fl
    }

    fn fcntl(file: &File, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
        loop {
            // SAFETY: `fl` is a valid, exclusively borrowed `flock` for the call; the
            // descriptor is open because `file` is borrowed.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *mut libc::flock) };
            if rc != -1 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    pub(super) fn try_lock(file: &File, byte: u64, kind: Kind) -> io::Result<bool> {
        let ty = match kind {
            Kind::Shared => libc::F_RDLCK,
            Kind::Exclusive => libc::F_WRLCK,
        };
        match fcntl(file, SETLK, &mut record(byte, ty)) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn unlock(file: &File, byte: u64) -> io::Result<()> {
        fcntl(file, SETLK, &mut record(byte, libc::F_UNLCK))
    }

    pub(super) fn probe(file: &File, byte: u64) -> Option<bool> {
        // Would a shared lock be refused? Only an exclusive holder refuses it.
        let mut fl = record(byte, libc::F_RDLCK);
        fcntl(file, GETLK, &mut fl).ok()?;
        Some(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

#[cfg(windows)]
mod sys {
    use super::Kind;
    use std::ffi::c_void;
    use std::fs::File;
    use std::io;
    use std::os::windows::io::AsRawHandle;

    #[repr(C)]
    struct Overlapped {
        internal: usize,
        internal_high: usize,
        offset: u32,
        offset_high: u32,
        event: *mut c_void,
    }

    const LOCKFILE_FAIL_IMMEDIATELY: u32 = 1;
    const LOCKFILE_EXCLUSIVE_LOCK: u32 = 2;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    const ERROR_IO_PENDING: i32 = 997;

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn LockFileEx(
            file: *mut c_void,
            flags: u32,
            reserved: u32,
            len_low: u32,
            len_high: u32,
            overlapped: *mut Overlapped,
        ) -> i32;
        fn UnlockFileEx(
            file: *mut c_void,
            reserved: u32,
            len_low: u32,
            len_high: u32,
            overlapped: *mut Overlapped,
        ) -> i32;
    }

    fn at(byte: u64) -> Overlapped {
        Overlapped {
            internal: 0,
            internal_high: 0,
            offset: byte as u32,
            offset_high: (byte >> 32) as u32,
            event: std::ptr::null_mut(),
        }
    }

    pub(super) fn try_lock(file: &File, byte: u64, kind: Kind) -> io::Result<bool> {
        let mut flags = LOCKFILE_FAIL_IMMEDIATELY;
        if kind == Kind::Exclusive {
            flags |= LOCKFILE_EXCLUSIVE_LOCK;
        }
        let mut ov = at(byte);
        // SAFETY: the handle is open (borrowed from `file`), and `ov` outlives the call,
        // which with LOCKFILE_FAIL_IMMEDIATELY on a synchronous handle does not pend.
        let ok = unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut ov) };
        if ok != 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(ERROR_LOCK_VIOLATION) | Some(ERROR_IO_PENDING) => Ok(false),
            _ => Err(e),
        }
    }

    pub(super) fn unlock(file: &File, byte: u64) -> io::Result<()> {
        let mut ov = at(byte);
        // SAFETY: as in `try_lock`.
        let ok = unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut ov) };
        if ok != 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn probe(_file: &File, _byte: u64) -> Option<bool> {
        None
    }
}

#[cfg(not(any(unix, windows)))]
mod sys {
    use super::Kind;
    use std::fs::File;
    use std::io;

    pub(super) fn try_lock(_: &File, _: u64, _: Kind) -> io::Result<bool> {
        Ok(true)
    }
    pub(super) fn unlock(_: &File, _: u64) -> io::Result<()> {
        Ok(())
    }
    pub(super) fn probe(_: &File, _: u64) -> Option<bool> {
        None
    }
}

#[cfg(all(
    test,
    not(miri),
    any(target_os = "linux", target_os = "android", windows)
))]
mod tests {
    use super::*;

    fn two_opens() -> (tempfile::TempDir, File, File) {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("l");
        std::fs::write(&p, b"x").unwrap();
        let a = File::options().read(true).write(true).open(&p).unwrap();
        let b = File::options().read(true).write(true).open(&p).unwrap();
        (tmp, a, b)
    }

    #[test]
    fn roles_are_independent_and_two_opens_in_one_process_conflict() {
        let (_t, a, b) = two_opens();
        assert!(try_lock(&a, Role::Map, Kind::Shared).unwrap());
        assert!(try_lock(&b, Role::Map, Kind::Shared).unwrap());
        assert!(try_lock(&a, Role::Append, Kind::Exclusive).unwrap());
        assert!(!try_lock(&b, Role::Append, Kind::Exclusive).unwrap());
        assert!(!try_lock(&b, Role::Map, Kind::Exclusive).unwrap());
        unlock(&a, Role::Append).unwrap();
        assert!(try_lock(&b, Role::Append, Kind::Exclusive).unwrap());
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn a_refused_exclusive_keeps_the_shared_lock_and_probe_sees_holders() {
        let (_t, a, b) = two_opens();
        assert!(try_lock(&a, Role::Map, Kind::Shared).unwrap());
        assert!(try_lock(&b, Role::Map, Kind::Shared).unwrap());
        assert!(!try_lock(&a, Role::Map, Kind::Exclusive).unwrap());
        // `a` still holds its shared lock: `b` cannot take the exclusive one either.
        unlock(&b, Role::Map).unwrap();
        assert!(!try_lock(&b, Role::Map, Kind::Exclusive).unwrap());
        assert_eq!(held_exclusively_elsewhere(&b, Role::Append), Some(false));
        assert!(try_lock(&a, Role::Append, Kind::Exclusive).unwrap());
        assert_eq!(held_exclusively_elsewhere(&b, Role::Append), Some(true));
    }

    #[test]
    fn lock_waits_at_most_its_bound() {
        let (_t, a, b) = two_opens();
        assert!(try_lock(&a, Role::Header, Kind::Exclusive).unwrap());
        let start = Instant::now();
        let wait = Some(Duration::from_millis(50));
        assert!(!lock(&b, Role::Header, Kind::Shared, wait).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(50));
        unlock(&a, Role::Header).unwrap();
        assert!(lock(&b, Role::Header, Kind::Shared, wait).unwrap());
    }
}
