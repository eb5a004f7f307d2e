// SAFETY (for every unsafe block below): the files are the tests' own, in private
// temporary directories; the only other process touching them is the tests' own helper.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Child;

use common::{Tmpfs, child, skip, spawn_until, tell_parent, wait_for_parent};
use ndarray_mmap::{Error, MapOptions};

pub(crate) fn suite() -> common::Suite {
    common::suite(
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
    )
}

/// The constructors: raw files, then `.npy` files.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ctor {
    Open,
    OpenMut,
    OpenCopy,
    Create,
    OpenNpy,
    OpenNpyMut,
    OpenNpyCopy,
    CreateNpy,
}
use Ctor::*;

/// Constructors that read an existing file.
const OPENS: &[Ctor] = &[Open, OpenMut, OpenCopy, OpenNpy, OpenNpyMut, OpenNpyCopy];
/// Raw constructors that read an existing file (they take a shape).
const RAW_OPENS: &[Ctor] = &[Open, OpenMut, OpenCopy];
/// Constructors that take a shape.
const SHAPED: &[Ctor] = &[Open, OpenMut, OpenCopy, Create, CreateNpy];
/// Constructors that read a `.npy` header.
const NPY_OPENS: &[Ctor] = &[OpenNpy, OpenNpyMut, OpenNpyCopy];
const ALL: &[Ctor] = &[
    Open,
    OpenMut,
    OpenCopy,
    Create,
    OpenNpy,
    OpenNpyMut,
    OpenNpyCopy,
    CreateNpy,
];
const WRITERS: &[Ctor] = &[OpenMut, Create, OpenNpyMut, CreateNpy];

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

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A `.npy` header dict with these values, keys in numpy's order.
fn dict(descr: &str, fortran_order: &str, shape: &str) -> String {
    format!("{{'descr': {descr}, 'fortran_order': {fortran_order}, 'shape': {shape}, }}")
}

/// A `.npy` file: `magic`, version `major`.0, the dict padded with spaces and `\n` so the
/// data starts at a multiple of 64, then `data_len` bytes of data.
fn npy_bytes(magic: &[u8], major: u8, dict: &str, data_len: usize) -> Vec<u8> {
    let prefix = if major == 1 { 10 } else { 12 };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let header_len = total - prefix;
    let mut b = magic.to_vec();
    b.extend_from_slice(&[major, 0]);
    if major == 1 {
        b.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    b.extend_from_slice(dict.as_bytes());
    b.resize(total - 1, b' ');
    b.push(b'\n');
    b.extend((0..data_len).map(|i| i as u8));
    b
}

/// A version 1.0 `.npy` file with any dict text.
fn npy_text(dict: &str, data_len: usize) -> Vec<u8> {
    npy_bytes(MAGIC, 1, dict, data_len)
}

/// A case for the `.npy` readers.
fn npy_case(name: &'static str, file: Vec<u8>, expect: &'static [&'static str]) -> Case {
    case(
        name,
        Input::File(file),
        MapOptions::new(),
        &[],
        NPY_OPENS,
        expect,
    )
}

fn cases() -> Vec<Case> {
    let o = MapOptions::new;
    let bytes = |n: usize| (0..n).map(|i| i as u8 ^ 0x5a).collect::<Vec<u8>>();
    let max = isize::MAX;
    vec![
        case(
            "nonexistent path",
            Input::Missing,
            o(),
            &[-1],
            OPENS,
            &["cannot open for", "No such file or directory"],
        ),
        case(
            "parent directory missing",
            Input::MissingParent,
            o(),
            &[4],
            ALL,
            &["No such file or directory"],
        ),
        case("a directory", Input::Dir, o(), &[4], ALL, &["directory"]),
        case(
            "a FIFO",
            Input::Fifo,
            o(),
            &[4],
            ALL,
            &["not a regular file (a FIFO)"],
        ),
        case(
            "/dev/null",
            Input::DevNull,
            o(),
            &[4],
            ALL,
            &["not a regular file (a character device)"],
        ),
        case(
            "empty file, explicit shape",
            Input::File(vec![]),
            o(),
            &[4],
            RAW_OPENS,
            &["shape [4] of f32 needs 16 bytes but 0 bytes are available"],
        ),
        case(
            "file shorter than the shape",
            Input::File(bytes(12)),
            o(),
            &[2, 2],
            RAW_OPENS,
            &["shape [2, 2] of f32 needs 16 bytes but 12 bytes are available"],
        ),
        case(
            "length not a whole number of elements",
            Input::File(bytes(10)),
            o(),
            &[-1],
            RAW_OPENS,
            &["10 bytes is not a whole number of f32 (4 bytes each)"],
        ),
        case(
            "length not a whole number of rows",
            Input::File(bytes(40)),
            o(),
            &[-1, 3],
            RAW_OPENS,
            &["40 bytes is not a whole number of rows of 3 f32 (12 bytes each)"],
        ),
        case(
            "len not a whole number of elements",
            Input::File(bytes(40)),
            o().len(6),
            &[-1],
            RAW_OPENS,
            &["6 bytes is not a whole number of f32 (4 bytes each)"],
        ),
        case(
            "misaligned offset",
            Input::File(bytes(18)),
            o().offset(2),
            &[4],
            &[Open, OpenMut, OpenCopy, Create],
            &["offset 2 is not a multiple of the alignment of f32 (4 bytes)"],
        ),
        case(
            "offset past the end",
            Input::File(bytes(16)),
            o().offset(32),
            &[-1],
            OPENS,
            &["offset 32 lies past the end of the file (16 bytes)"],
        ),
        case(
            "len past the end",
            Input::File(bytes(16)),
            o().offset(4).len(16),
            &[-1],
            OPENS,
            &["bytes 4..20 lie past the end of the file (16 bytes)"],
        ),
        case(
            "offset + len overflowing u64",
            Input::File(bytes(16)),
            o().offset(8).len(u64::MAX),
            &[-1],
            OPENS,
            &["bytes 8..18446744073709551615 lie past the end of the file (16 bytes)"],
        ),
        case(
            "huge offset",
            Input::File(bytes(16)),
            o().offset(u64::MAX - 3),
            &[-1],
            OPENS,
            &["offset 18446744073709551612 lies past the end of the file (16 bytes)"],
        ),
        case(
            "offset + shape overflowing u64",
            Input::File(bytes(16)),
            o().offset(u64::MAX - 3),
            &[4],
            &[Create],
            &["shape [4] of f32 is too large"],
        ),
        case(
            "two -1s",
            Input::File(bytes(16)),
            o(),
            &[-1, -1],
            SHAPED,
            &["shape [-1, -1] has more than one -1"],
        ),
        case(
            "negative dimension",
            Input::File(bytes(16)),
            o(),
            &[3, -2],
            SHAPED,
            &["shape [3, -2]: dimension 1 is -2"],
        ),
        case(
            "-1 beside a zero",
            Input::File(bytes(16)),
            o(),
            &[0, -1],
            RAW_OPENS,
            &[
                "shape [0, -1]: dimension 1 (-1) cannot be inferred because the other dimensions multiply to 0",
            ],
        ),
        case(
            "-1 when creating",
            Input::File(bytes(16)),
            o(),
            &[-1, 2],
            &[Create, CreateNpy],
            &["shape [-1, 2]: dimension 0 is -1, but a new array needs every length given"],
        ),
        case(
            "element count overflowing usize",
            Input::File(bytes(16)),
            o(),
            &[max, max],
            SHAPED,
            &["shape [9223372036854775807, 9223372036854775807] of f32 is too large"],
        ),
        case(
            "byte count overflowing isize",
            Input::File(bytes(16)),
            o(),
            &[max / 2],
            SHAPED,
            &["shape [4611686018427387903] of f32 is too large"],
        ),
        case(
            "row product overflowing beside a -1",
            Input::File(bytes(16)),
            o(),
            &[-1, max, 4],
            RAW_OPENS,
            &["shape [-1, 9223372036854775807, 4] of f32 is too large"],
        ),
        case(
            "read-only filesystem",
            Input::ReadOnlyFs(bytes(16)),
            o(),
            &[4],
            WRITERS,
            &["Read-only file system"],
        ),
        case(
            "read-only file (mode 0444)",
            Input::ReadOnlyMode(bytes(16)),
            o(),
            &[4],
            WRITERS,
            &["Permission denied"],
        ),
        case(
            "immutable file (chattr +i)",
            Input::Immutable(bytes(16)),
            o(),
            &[4],
            WRITERS,
            &["Operation not permitted"],
        ),
        case(
            "locked and truncated by a resizing process",
            Input::HeldByResizer(bytes(16), 8),
            o(),
            &[4],
            ALL,
            &["lock"],
        ),
        // .npy headers: every field missing, repeated, of the wrong type, with garbage.
        npy_case(
            "npy: empty file",
            vec![],
            &["the .npy header needs 8 bytes but the file has only 0"],
        ),
        npy_case(
            "npy: wrong magic",
            npy_bytes(b"\x93NUMPZ", 1, &dict("'<f4'", "False", "(4,)"), 16),
            &["not a .npy file"],
        ),
        npy_case(
            "npy: a zip file (.npz)",
            b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            &["not a .npy file: it starts with b\"PK\\x03\\x04"],
        ),
        npy_case(
            "npy: cut inside the magic",
            b"\x93NUM".to_vec(),
            &["the .npy header needs 8 bytes but the file has only 4"],
        ),
        npy_case(
            "npy: cut before the header length",
            b"\x93NUMPY\x01\x00\x76".to_vec(),
            &["needs", "but the file has only 9"],
        ),
        npy_case(
            "npy: version 4.0",
            npy_bytes(MAGIC, 4, &dict("'<f4'", "False", "(4,)"), 16),
            &["unsupported .npy format version 4.0"],
        ),
        npy_case(
            "npy: header length past EOF",
            {
                let mut b = npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(4,)"), 16);
                b[8..10].copy_from_slice(&1000u16.to_le_bytes());
                b
            },
            &["the .npy header needs 1010 bytes but the file has only 144"],
        ),
        npy_case(
            "npy: huge header length (2.0)",
            {
                let mut b = b"\x93NUMPY\x02\x00".to_vec();
                b.extend_from_slice(&u32::MAX.to_le_bytes());
                b.extend_from_slice(&[b' '; 100]);
                b
            },
            &["the .npy header is 4294967295 bytes long, more than the 10000"],
        ),
        npy_case(
            "npy: 3.0 header not UTF-8",
            {
                let mut b = npy_bytes(MAGIC, 3, &dict("'<f4'", "False", "(4,)"), 16);
                b[14] = 0xff;
                b
            },
            &["not valid UTF-8"],
        ),
        npy_case(
            "npy: descr missing",
            npy_text("{'fortran_order': False, 'shape': (4,), }", 16),
            &["has no 'descr' key"],
        ),
        npy_case(
            "npy: fortran_order missing",
            npy_text("{'descr': '<f4', 'shape': (4,), }", 16),
            &["has no 'fortran_order' key"],
        ),
        npy_case(
            "npy: shape missing",
            npy_text("{'descr': '<f4', 'fortran_order': False, }", 16),
            &["has no 'shape' key"],
        ),
        npy_case(
            "npy: descr twice",
            npy_text(
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                16,
            ),
            &["has the key 'descr' more than once"],
        ),
        npy_case(
            "npy: fortran_order twice",
            npy_text(
                "{'descr': '<f4', 'fortran_order': False, 'fortran_order': True, 'shape': (4,), }",
                16,
            ),
            &["has the key 'fortran_order' more than once"],
        ),
        npy_case(
            "npy: shape twice",
            npy_text(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'shape': (2, 2), }",
                16,
            ),
            &["has the key 'shape' more than once"],
        ),
        npy_case(
            "npy: an extra key",
            npy_text(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'foo': 1, }",
                16,
            ),
            &["unexpected key", "foo"],
        ),
        npy_case(
            "npy: descr not a string",
            npy_bytes(MAGIC, 1, &dict("5", "False", "(4,)"), 16),
            &["'descr' is"],
        ),
        npy_case(
            "npy: fortran_order a string",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "'yes'", "(4,)"), 16),
            &["'fortran_order' is"],
        ),
        npy_case(
            "npy: fortran_order an int",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "1", "(4,)"), 16),
            &["'fortran_order' is"],
        ),
        npy_case(
            "npy: fortran_order None",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "None", "(4,)"), 16),
            &["not a valid dict literal: expected a value at byte 44"],
        ),
        npy_case(
            "npy: shape a list",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "[4]"), 16),
            &["'shape' is"],
        ),
        npy_case(
            "npy: shape an int",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "4"), 16),
            &["'shape' is"],
        ),
        npy_case(
            "npy: shape a string",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "'4'"), 16),
            &["'shape' is"],
        ),
        npy_case(
            "npy: negative dimension",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(-1,)"), 16),
            &["dimension 0 = -1"],
        ),
        npy_case(
            "npy: dimension past u64",
            npy_bytes(
                MAGIC,
                1,
                &dict("'<f4'", "False", "(2, 1180591620717411303424)"),
                16,
            ),
            &["dimension 1 = 1180591620717411303424"],
        ),
        npy_case(
            "npy: float dimension",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(1.5,)"), 16),
            &["not a valid dict literal: expected ',' or ')' at byte 62"],
        ),
        npy_case(
            "npy: shape product overflowing",
            npy_bytes(
                MAGIC,
                1,
                &dict("'<f4'", "False", "(9223372036854775807, 4)"),
                16,
            ),
            &["9223372036854775807", "too large"],
        ),
        npy_case(
            "npy: unterminated dict",
            npy_text("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)", 16),
            &["not a valid dict literal"],
        ),
        npy_case(
            "npy: not a dict",
            npy_text("[1, 2, 3]", 16),
            &["not a valid dict literal"],
        ),
        npy_case(
            "npy: unterminated string",
            npy_text(
                "{'descr: '<f4', 'fortran_order': False, 'shape': (4,), }",
                16,
            ),
            &["the .npy header"],
        ),
        npy_case(
            "npy: descr garbage",
            npy_bytes(MAGIC, 1, &dict("'zz'", "False", "(4,)"), 16),
            &["'zz'"],
        ),
        npy_case(
            "npy: descr empty",
            npy_bytes(MAGIC, 1, &dict("''", "False", "(4,)"), 16),
            &["''"],
        ),
        // descr mismatches: valid headers that are not f32 on this machine.
        npy_case(
            "npy: f64 data asked as f32",
            npy_bytes(MAGIC, 1, &dict("'<f8'", "False", "(2,)"), 16),
            &["dtype mismatch: the file holds '<f8' but f32"],
        ),
        npy_case(
            "npy: i4 data asked as f32",
            npy_bytes(MAGIC, 1, &dict("'<i4'", "False", "(4,)"), 16),
            &["dtype mismatch: the file holds '<i4' but f32"],
        ),
        npy_case(
            "npy: big-endian f32",
            npy_bytes(MAGIC, 1, &dict("'>f4'", "False", "(4,)"), 16),
            &["'>f4'", "byte order"],
        ),
        npy_case(
            "npy: pickled objects",
            npy_bytes(MAGIC, 1, &dict("'|O'", "False", "(2,)"), 16),
            &["'|O'", "cannot be mapped"],
        ),
        npy_case(
            "npy: unicode strings",
            npy_bytes(MAGIC, 1, &dict("'<U1'", "False", "(4,)"), 16),
            &["'<U1'"],
        ),
        npy_case(
            "npy: booleans asked as f32",
            npy_bytes(MAGIC, 1, &dict("'|b1'", "False", "(16,)"), 16),
            &["'|b1'"],
        ),
        npy_case(
            "npy: structured dtype",
            npy_bytes(MAGIC, 1, &dict("[('a', '<f4')]", "False", "(4,)"), 16),
            &["dtype '[('a', '<f4')]' cannot be mapped: structured dtypes"],
        ),
        // The data does not match the header.
        npy_case(
            "npy: data shorter than the shape",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(10,)"), 8),
            &[
                "shape (10,) of '<f4': 40 data bytes after the 128-byte header, 168 in all, but the file has 136 bytes",
            ],
        ),
        npy_case(
            "npy: data cut short",
            npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(2,)"), 4),
            &[
                "shape (2,) of '<f4': 8 data bytes after the 128-byte header, 136 in all, but the file has 132 bytes",
            ],
        ),
        case(
            "npy: data misaligned by the offset",
            Input::File({
                let mut b = vec![0u8; 2];
                b.extend(npy_bytes(MAGIC, 1, &dict("'<f4'", "False", "(4,)"), 16));
                b
            }),
            o().offset(2),
            &[],
            NPY_OPENS,
            &["the data starts at byte 130, not a multiple of the alignment of f32 (4 bytes)"],
        ),
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
            OpenNpy => opts.open_npy::<f32>(path).map(drop),
            OpenNpyMut => opts.open_npy_mut::<f32>(path).map(drop),
            OpenNpyCopy => opts.open_npy_copy::<f32>(path).map(drop),
            CreateNpy => opts.create_npy::<f32>(path, shape).map(drop),
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
            // The message with its sources, as an error reporter prints it.
            msg: common::chain(&e),
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
            tell_parent(&format!("ERR\t{p}\t{}", common::chain(&e)));
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
