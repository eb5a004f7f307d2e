//! Hostile and broken input, table-driven: every case is tried against every constructor
//! it applies to, and each call must return an `Err` whose message names the path and
//! the numbers at fault, must not panic, and must leave the file exactly as it was.
//!
//! Cases that need root (a read-only tmpfs, `chattr +i`) print a SKIPPED line where they
//! cannot run; CI runs as root.
// SAFETY (for every unsafe block below): the files are the tests' own, in private
// temporary directories; the only other process touching them is the tests' own helper.
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Child;

use common::{child, skip, spawn_until, tell_parent, wait_for_parent, Tmpfs};
use ndarray_mmap::{Error, MapOptions};

#[cfg(unix)]
fn main() {
    common::main(
        &[
            ("every_hostile_case_against_every_constructor", table),
            (
                "a_file_truncated_before_the_map_fails_cleanly",
                truncated_then_opened,
            ),
        ],
        &[
            ("truncate_and_hold", child_truncate_and_hold),
            ("try", child_try),
        ],
    );
}

#[cfg(not(unix))]
fn main() {
    common::skip("hostile", "the table uses Unix FIFOs, devices and mounts");
}

/// The constructors. `.npy` ones join this list when they exist.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ctor {
    Open,
    OpenMut,
    OpenCopy,
    Create,
}
use Ctor::*;

const OPENS: &[Ctor] = &[Open, OpenMut, OpenCopy];
const ALL: &[Ctor] = &[Open, OpenMut, OpenCopy, Create];
const WRITERS: &[Ctor] = &[OpenMut, Create];

/// What the path points at.
enum Input {
    /// Nothing at all.
    Missing,
    /// A file inside a directory that does not exist.
    MissingParent,
    Dir,
    Fifo,
    DevNull,
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A file with these bytes on a tmpfs remounted read-only (root only).
    ReadOnlyFs(Vec<u8>),
    /// A file with these bytes and mode 0444 (run as a user other than root).
    ReadOnlyMode(Vec<u8>),
    /// A file with these bytes made immutable with `chattr +i` (root only).
    Immutable(Vec<u8>),
    /// A file another process has locked exclusively and truncated to this many bytes,
    /// as a cooperating resizer would, and still holds.
    HeldByResizer(Vec<u8>, u64),
}

struct Case {
    name: &'static str,
    input: Input,
    opts: MapOptions,
    shape: Vec<isize>,
    ctors: &'static [Ctor],
    /// Fragments the message must contain, besides the path.
    expect: &'static [&'static str],
}

fn case(
    name: &'static str,
    input: Input,
    opts: MapOptions,
    shape: &[isize],
    ctors: &'static [Ctor],
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        input,
        opts,
        shape: shape.to_vec(),
        ctors,
        expect,
    }
}

fn cases() -> Vec<Case> {
    let o = MapOptions::new;
    let bytes = |n: usize| (0..n).map(|i| i as u8 ^ 0x5a).collect::<Vec<u8>>();
    let max = isize::MAX;
    vec![
        case("nonexistent path", Input::Missing, o(), &[-1], OPENS,
             &["cannot open for", "No such file or directory"]),
        case("parent directory missing", Input::MissingParent, o(), &[4], ALL,
             &["No such file or directory"]),
        case("a directory", Input::Dir, o(), &[4], ALL, &["directory"]),
        case("a FIFO", Input::Fifo, o(), &[4], ALL, &["not a regular file (a FIFO)"]),
        case("/dev/null", Input::DevNull, o(), &[4], ALL,
             &["not a regular file (a character device)"]),
        case("empty file, explicit shape", Input::File(vec![]), o(), &[4], OPENS,
             &["shape [4] of f32 needs 16 bytes but 0 bytes are available"]),
        case("file shorter than the shape", Input::File(bytes(12)), o(), &[2, 2], OPENS,
             &["shape [2, 2] of f32 needs 16 bytes but 12 bytes are available"]),
        case("length not a whole number of elements", Input::File(bytes(10)), o(), &[-1],
             OPENS, &["10 bytes is not a whole number of f32 (4 bytes each)"]),
        case("length not a whole number of rows", Input::File(bytes(40)), o(), &[-1, 3],
             OPENS, &["40 bytes is not a whole number of rows of 3 f32 (12 bytes each)"]),
        case("len not a whole number of elements", Input::File(bytes(40)), o().len(6), &[-1],
             OPENS, &["6 bytes is not a whole number of f32 (4 bytes each)"]),
        case("misaligned offset", Input::File(bytes(18)), o().offset(2), &[4], ALL,
             &["offset 2 is not a multiple of the alignment of f32 (4 bytes)"]),
        case("offset past the end", Input::File(bytes(16)), o().offset(32), &[-1], OPENS,
             &["offset 32 lies past the end of the file (16 bytes)"]),
        case("len past the end", Input::File(bytes(16)), o().offset(4).len(16), &[-1], OPENS,
             &["bytes 4..20 lie past the end of the file (16 bytes)"]),
        case("offset + len overflowing u64", Input::File(bytes(16)), o().offset(8).len(u64::MAX),
             &[-1], OPENS, &["bytes 8..18446744073709551615 lie past the end of the file (16 bytes)"]),
        case("huge offset", Input::File(bytes(16)), o().offset(u64::MAX - 3), &[-1], OPENS,
             &["offset 18446744073709551612 lies past the end of the file (16 bytes)"]),
        case("offset + shape overflowing u64", Input::File(bytes(16)), o().offset(u64::MAX - 3),
             &[4], &[Create], &["shape [4] of f32 is too large"]),
        case("two -1s", Input::File(bytes(16)), o(), &[-1, -1], ALL,
             &["shape [-1, -1] has more than one -1"]),
        case("negative dimension", Input::File(bytes(16)), o(), &[3, -2], ALL,
             &["shape [3, -2]: dimension 1 is -2"]),
        case("-1 beside a zero", Input::File(bytes(16)), o(), &[0, -1], OPENS,
             &["shape [0, -1]: dimension 1 (-1) cannot be inferred because the other dimensions multiply to 0"]),
        case("-1 when creating", Input::File(bytes(16)), o(), &[-1, 2], &[Create],
             &["shape [-1, 2]: dimension 0 is -1, but a new array needs every length given"]),
        case("element count overflowing usize", Input::File(bytes(16)), o(), &[max, max], ALL,
             &["shape [9223372036854775807, 9223372036854775807] of f32 is too large"]),
        case("byte count overflowing isize", Input::File(bytes(16)), o(), &[max / 2], ALL,
             &["shape [4611686018427387903] of f32 is too large"]),
        case("row product overflowing beside a -1", Input::File(bytes(16)), o(), &[-1, max, 4],
             OPENS, &["shape [-1, 9223372036854775807, 4] of f32 is too large"]),
        case("read-only filesystem", Input::ReadOnlyFs(bytes(16)), o(), &[4], WRITERS,
             &["Read-only file system"]),
        case("read-only file (mode 0444)", Input::ReadOnlyMode(bytes(16)), o(), &[4], WRITERS,
             &["Permission denied"]),
        case("immutable file (chattr +i)", Input::Immutable(bytes(16)), o(), &[4], WRITERS,
             &["Operation not permitted"]),
        case("locked and truncated by a resizing process", Input::HeldByResizer(bytes(16), 8),
             o(), &[4], ALL, &["lock"]),
    ]
}

/// What a call must not change.
#[derive(Debug, PartialEq)]
enum Snapshot {
    Absent,
    Dir(u32),
    Special(String, u64),
    File(Vec<u8>, u32),
}

fn snapshot(path: &Path) -> Snapshot {
    match std::fs::symlink_metadata(path) {
        Err(_) => Snapshot::Absent,
        Ok(m) if m.is_dir() => Snapshot::Dir(m.mode()),
        Ok(m) if m.is_file() => Snapshot::File(std::fs::read(path).unwrap(), m.mode()),
        Ok(m) => Snapshot::Special(format!("{:?}", m.file_type()), m.rdev()),
    }
}

fn call(ctor: Ctor, opts: &MapOptions, path: &Path, shape: &[isize]) -> Result<(), Error> {
    let shape = shape.to_vec();
    unsafe {
        match ctor {
            Open => opts.open::<f32>(path, shape).map(drop),
            OpenMut => opts.open_mut::<f32>(path, shape).map(drop),
            OpenCopy => opts.open_copy::<f32>(path, shape).map(drop),
            Create => opts.create::<f32>(path, shape).map(drop),
        }
    }
}

/// The input made real, and what must be undone afterwards.
struct Prepared {
    path: PathBuf,
    _fs: Option<Tmpfs>,
    holder: Option<Child>,
    immutable: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(mut h) = self.holder.take() {
            drop(h.stdin.take());
            let _ = h.wait();
        }
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.path)
                .status();
        }
    }
}

/// Makes the input in `dir`; `Err` says why it cannot be made here (a visible skip).
fn prepare(input: &Input, dir: &Path) -> Result<Prepared, String> {
    let mut p = Prepared {
        path: dir.join("input.f32"),
        _fs: None,
        holder: None,
        immutable: false,
    };
    match input {
        Input::Missing => {}
        Input::MissingParent => p.path = dir.join("no-such-dir").join("input.f32"),
        Input::Dir => std::fs::create_dir(&p.path).unwrap(),
        Input::Fifo => {
            let c = std::ffi::CString::new(p.path.to_str().unwrap()).unwrap();
            // SAFETY: `c` is a valid NUL-terminated path.
            let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
            assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
        }
        Input::DevNull => p.path = PathBuf::from("/dev/null"),
        Input::File(b) => std::fs::write(&p.path, b).unwrap(),
        Input::ReadOnlyFs(b) => {
            let mnt = dir.join("ro");
            std::fs::create_dir(&mnt).unwrap();
            let fs = Tmpfs::mount(&mnt, "1m")?;
            p.path = mnt.join("input.f32");
            std::fs::write(&p.path, b).unwrap();
            fs.remount_ro();
            p._fs = Some(fs);
        }
        Input::ReadOnlyMode(b) => {
            // As root the call runs in a child that has dropped to uid 65534 (see `table`);
            // it needs to reach the file.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(&p.path, b).unwrap();
            std::fs::set_permissions(&p.path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        Input::Immutable(b) => {
            std::fs::write(&p.path, b).unwrap();
            let out = std::process::Command::new("chattr")
                .arg("+i")
                .arg(&p.path)
                .output()
                .map_err(|e| format!("cannot run chattr: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "chattr +i failed (needs root and a filesystem with the flag): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            p.immutable = true;
        }
        Input::HeldByResizer(b, len) => {
            std::fs::write(&p.path, b).unwrap();
            let cmd = child(
                "truncate_and_hold",
                &[p.path.to_str().unwrap(), &len.to_string()],
            );
            let (kid, _) = spawn_until(cmd, "held");
            p.holder = Some(kid);
        }
    }
    Ok(p)
}

/// How a call ended.
enum Outcome {
    Panicked,
    Ok,
    Err { path: Option<PathBuf>, msg: String },
}

fn outcome(r: std::thread::Result<Result<(), Error>>) -> Outcome {
    match r {
        Err(_) => Outcome::Panicked,
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Err {
            path: e.path().map(Path::to_path_buf),
            msg: e.to_string(),
        },
    }
}

/// Runs case `case` with `ctor` on `path` in a child process running as uid/gid 65534
/// ("nobody"), so that file permissions apply. `Err` says why that is impossible here.
fn call_as_nobody(case: usize, ctor: Ctor, path: &Path) -> Result<Outcome, String> {
    use std::os::unix::process::CommandExt;
    let ctor = ALL.iter().position(|&c| c == ctor).unwrap();
    let out = child(
        "try",
        &[&case.to_string(), &ctor.to_string(), path.to_str().unwrap()],
    )
    .uid(65534)
    .gid(65534)
    .output()
    .map_err(|e| format!("cannot run this test binary as uid 65534: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    Ok(if let Some(rest) = line.strip_prefix("ERR\t") {
        let (p, msg) = rest.split_once('\t').unwrap();
        Outcome::Err {
            path: (!p.is_empty()).then(|| PathBuf::from(p)),
            msg: msg.to_string(),
        }
    } else if line == "OK" {
        Outcome::Ok
    } else if out.status.code() == Some(101) {
        Outcome::Panicked
    } else {
        return Err(format!(
            "the child running as uid 65534 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    })
}

/// Child: runs one case with one constructor and reports how it ended.
fn child_try(args: &[String]) {
    let cases = cases();
    let c = &cases[args[0].parse::<usize>().unwrap()];
    let ctor = ALL[args[1].parse::<usize>().unwrap()];
    match call(ctor, &c.opts, Path::new(&args[2]), &c.shape) {
        Ok(()) => tell_parent("OK"),
        Err(e) => {
            let p = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            tell_parent(&format!("ERR\t{p}\t{e}"));
        }
    }
}

/// Child: locks the file exclusively, truncates it, says "held", waits for the parent.
fn child_truncate_and_hold(args: &[String]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&args[0])
        .unwrap();
    f.lock().unwrap();
    f.set_len(args[1].parse().unwrap()).unwrap();
    tell_parent("held");
    wait_for_parent();
}

fn table() {
    let cases = cases();
    let (mut calls, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        for &ctor in c.ctors {
            let tmp = tempfile::tempdir().unwrap();
            let prepared = match prepare(&c.input, tmp.path()) {
                Ok(p) => p,
                Err(why) => {
                    skip(&format!("hostile case {:?} / {ctor:?}", c.name), &why);
                    skipped += 1;
                    continue;
                }
            };
            let path = &prepared.path;
            let before = snapshot(path);
            let got = if matches!(c.input, Input::ReadOnlyMode(_)) && common::is_root() {
                match call_as_nobody(i, ctor, path) {
                    Ok(got) => got,
                    Err(why) => {
                        skip(&format!("hostile case {:?} / {ctor:?}", c.name), &why);
                        skipped += 1;
                        continue;
                    }
                }
            } else {
                outcome(catch_unwind(AssertUnwindSafe(|| {
                    call(ctor, &c.opts, path, &c.shape)
                })))
            };
            calls += 1;
            let after = snapshot(path);
            let what = format!("{:?} with {ctor:?}", c.name);
            match got {
                Outcome::Panicked => failures.push(format!("{what}: panicked")),
                Outcome::Ok => failures.push(format!("{what}: returned Ok")),
                Outcome::Err {
                    path: err_path,
                    msg,
                } => {
                    let shown = path.display().to_string();
                    if !msg.contains(&shown) {
                        failures.push(format!("{what}: message lacks the path {shown}: {msg}"));
                    }
                    if err_path.as_deref() != Some(path.as_path()) {
                        failures.push(format!("{what}: error.path() is {err_path:?}"));
                    }
                    for frag in c.expect {
                        if !msg.contains(frag) {
                            failures.push(format!("{what}: message lacks {frag:?}: {msg}"));
                        }
                    }
                }
            }
            if before != after {
                failures.push(format!("{what}: the file changed: {before:?} -> {after:?}"));
            }
        }
    }
    println!(
        "hostile table: {} cases, {calls} constructor calls checked, {skipped} skipped",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The other half of "truncated between open and map": once the resizer lets go, the
/// open sees the new length and fails cleanly, naming both byte counts.
fn truncated_then_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let p = prepare(&Input::HeldByResizer(vec![1; 16], 8), tmp.path()).unwrap();
    let path = p.path.clone();
    let e = unsafe { MapOptions::new().open::<f32>(&path, [4]) }.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Locked {
                exclusive: false,
                ..
            }
        ),
        "{e}"
    );
    drop(p); // the resizer finishes
    let e = unsafe { MapOptions::new().open::<f32>(&path, [4]) }.unwrap_err();
    assert!(
        e.to_string()
            .contains("needs 16 bytes but 8 bytes are available"),
        "{e}"
    );
    let a = unsafe { MapOptions::new().open::<f32>(&path, [-1]) }.unwrap();
    assert_eq!(a.shape(), &[2]);
}
