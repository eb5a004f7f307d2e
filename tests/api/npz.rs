//! `.npz` both ways against numpy (feature `npz`): numpy's stored members map (1-byte
//! types; wider ones are refused as misaligned, naming the fix), compressed ones are
//! refused naming `np.savez`, and archives written by `NpzWriter` load in numpy with the
//! right dtypes, shapes, orders and values while every member maps here. Without numpy the
//! tests print SKIPPED, or fail under `NDARRAY_MMAP_REQUIRE_NUMPY=1`.
#![cfg(all(feature = "npz", not(miri)))]

use std::process::Command;

use crate::python::{can_import, python};
use ndarray_mmap::{Error, NpzProblem, NpzWriter, open_npz};

/// Whether numpy can be imported (see [`can_import`]).
fn numpy(test: &str) -> bool {
    can_import(test, "import numpy", "numpy", "numpy")
}

fn run_python(script: &str, dir: &std::path::Path) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn numpys_archives_map_where_they_can_and_say_why_not_where_they_cannot() {
    if !numpy("numpys_archives_map_where_they_can_and_say_why_not_where_they_cannot") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run_python(
        "import numpy as np\n\
         np.savez('s.npz', b=np.arange(12, dtype=np.uint8).reshape(3, 4), f=np.arange(5.0))\n\
         np.savez_compressed('c.npz', b=np.arange(3, dtype=np.uint8))\n",
        tmp.path(),
    );
    let z = open_npz(tmp.path().join("s.npz")).unwrap();
    assert_eq!(z.names(), ["b", "f"]);
    let b = unsafe { z.member::<u8>("b") }.unwrap();
    assert_eq!(b.shape(), &[3, 4]);
    assert_eq!(
        b.view().iter().copied().collect::<Vec<_>>(),
        (0..12).collect::<Vec<u8>>()
    );
    let err = unsafe { z.member::<f64>("f") }.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Npz {
                problem: NpzProblem::Misaligned { align: 8, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NpzWriter"), "{err}");
    let err = unsafe { z.member::<u8>("nope") }.unwrap_err();
    assert!(err.to_string().contains("[\"b\", \"f\"]"), "{err}");
    let c = open_npz(tmp.path().join("c.npz")).unwrap();
    let err = unsafe { c.member::<u8>("b") }.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Npz {
                problem: NpzProblem::Compressed { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("np.savez, not np.savez_compressed"),
        "{err}"
    );
}

#[test]
fn our_archives_load_in_numpy_and_every_member_maps() {
    if !numpy("our_archives_load_in_numpy_and_every_member_maps") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ours.npz");
    let x = ndarray::Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f64 * 0.5);
    let t = ndarray::Array2::from_shape_fn((2, 5), |(i, j)| (i * 5 + j) as i32 - 4).reversed_axes();
    let c = ndarray::array![num_complex::Complex::new(1.0f32, -2.0)];
    let mut w = NpzWriter::create(&path).unwrap();
    w.add("x", &x).unwrap();
    w.add("t", &t).unwrap();
    w.add("c", &c).unwrap();
    w.finish().unwrap();
    let out = run_python(
        "import numpy as np\n\
         z = np.load('ours.npz')\n\
         assert z.files == ['x', 't', 'c'], z.files\n\
         assert (z['x'] == np.arange(12).reshape(4, 3) * 0.5).all() and z['x'].dtype == np.float64\n\
         t = z['t']\n\
         assert t.dtype == np.int32 and t.shape == (5, 2) and t.flags.f_contiguous\n\
         assert (t == (np.arange(10).reshape(2, 5) - 4).T).all()\n\
         assert z['c'].dtype == np.complex64 and z['c'][0] == 1 - 2j\n\
         print('ok')\n",
        tmp.path(),
    );
    assert_eq!(out.trim(), "ok");
    let z = open_npz(&path).unwrap();
    assert_eq!(
        unsafe { z.member::<f64>("x") }.unwrap().view(),
        x.view().into_dyn()
    );
    let mt = unsafe { z.member::<i32>("t") }.unwrap();
    assert_eq!(mt.view(), t.view().into_dyn());
    assert!(mt.order().is_column_major());
    assert_eq!(
        unsafe { z.member::<num_complex::Complex<f32>>("c") }
            .unwrap()
            .view()[0],
        c[0]
    );
}

#[test]
fn a_member_said_to_run_into_the_next_is_refused_and_errors_name_the_member() {
    if !numpy("a_member_said_to_run_into_the_next_is_refused_and_errors_name_the_member") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run_python(
        "import numpy as np, zipfile, io, struct\n\
         def npy(a):\n    b = io.BytesIO(); np.save(b, a); return b.getvalue()\n\
         h = npy(np.zeros(100, dtype='u1'))\n\
         short = h[:len(h) - 100] + bytes(range(5))\n\
         for name in ('short.npz', 'lie.npz'):\n\
         \x20   with zipfile.ZipFile(name, 'w') as z:\n\
         \x20       z.writestr('a.npy', short)\n\
         \x20       z.writestr('b.npy', npy(np.full(200, 0xAB, dtype='u1')))\n\
         d = bytearray(open('lie.npz', 'rb').read())\n\
         i = d.find(b'PK\\x01\\x02')\n\
         c, u = struct.unpack_from('<II', d, i + 20)\n\
         struct.pack_into('<II', d, i + 20, c + 100, u + 100)\n\
         open('lie.npz', 'wb').write(d)\n",
        tmp.path(),
    );
    let err = open_npz(tmp.path().join("lie.npz")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Npz {
                problem: NpzProblem::Bounds { .. },
                ..
            }
        ),
        "{err}"
    );
    // A header claiming more data than the member holds: an error naming the member.
    let z = open_npz(tmp.path().join("short.npz")).unwrap();
    let err = unsafe { z.member::<u8>("a") }.unwrap_err();
    assert!(err.to_string().contains("member \"a\""), "{err}");
    let err = unsafe { z.member::<f64>("b") }.unwrap_err();
    assert!(err.to_string().contains("member \"b\""), "{err}");
}

#[test]
fn a_second_member_of_one_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = NpzWriter::create(tmp.path().join("d.npz")).unwrap();
    w.add("a", &ndarray::array![1u8]).unwrap();
    let err = w.add("a", &ndarray::array![2u8]).unwrap_err();
    assert!(
        matches!(&err, Error::Npz { problem: NpzProblem::Duplicate { member }, .. } if member == "a"),
        "{err}"
    );
}

/// Python that builds zip archives byte by byte, so that tests can make them lie:
/// `build(entries, comment=b'')` returns the bytes; each entry is a dict with `name` (str or
/// bytes) and `data`, and optionally `flags`, `method`, `local_name`, `local_extra`,
/// `local_extra_len` (the length the local header claims), `csize`, `usize`, `crc`,
/// `central_extra`, `offset_of` (point the directory entry at entry k's local header) and
/// `cd_only` (no local header or data of its own), `version` (the version needed to extract,
/// in both headers; 20 unless given). Keywords of `build`: `count` and `cd_size` (what the
/// end record says, if not the truth), `prefix` (bytes before the archive; its offsets count
/// them when `absolute`), `zip64` (a zip64 end record and locator too, the classic record's
/// fields saturated) and `count64` (what the zip64 record counts). `npy(a)` is `np.save`'s
/// bytes.
const ZIP_BUILDER: &str = r#"
import numpy as np, io, struct, zlib
def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()
def raw(n):
    return n if isinstance(n, bytes) else n.encode()
def build(entries, comment=b'', count=None, cd_size=None, prefix=b'', absolute=False,
          zip64=False, count64=None):
    out = bytearray(prefix); offs = []
    shift = 0 if absolute else len(prefix)
    for e in entries:
        name = raw(e['name']); data = e.get('data', b'')
        flags = e.get('flags', 0x800 if any(c > 127 for c in name) else 0)
        if e.get('cd_only'):
            offs.append(None); continue
        lname = raw(e.get('local_name', name)); lextra = e.get('local_extra', b'')
        offs.append(len(out) - shift)
        out += struct.pack('<IHHHHHIIIHH', 0x04034b50, e.get('version', 20), flags,
                           e.get('method', 0), 0, 0x21,
                           zlib.crc32(data), len(data), len(data), len(lname),
                           e.get('local_extra_len', len(lextra)))
        out += lname + lextra + data
    cd = len(out)
    for i, e in enumerate(entries):
        name = raw(e['name']); data = e.get('data', b'')
        flags = e.get('flags', 0x800 if any(c > 127 for c in name) else 0)
        cextra = e.get('central_extra', b'')
        off = offs[e['offset_of']] if 'offset_of' in e else e.get('offset', offs[i])
        out += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, e.get('version', 20), flags,
                           e.get('method', 0),
                           0, 0x21, e.get('crc', zlib.crc32(data)), e.get('csize', len(data)),
                           e.get('usize', len(data)), len(name), len(cextra), 0, 0, 0, 0, off)
        out += name + cextra
    n = len(entries) if count is None else count
    size = len(out) - cd if cd_size is None else cd_size
    if zip64:
        n64 = len(entries) if count64 is None else count64
        at64 = len(out) - shift
        out += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, n64, n64, size,
                           cd - shift)
        out += struct.pack('<IIQI', 0x07064b50, 0, at64, 1)
        n, size, cdoff = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF
    else:
        cdoff = cd - shift
    out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n, n, size, cdoff,
                       len(comment)) + comment
    return bytes(out)
"#;

fn err_problem(err: &Error) -> &NpzProblem {
    match err {
        Error::Npz { problem, .. } => problem,
        other => panic!("not an Npz error: {other}"),
    }
}

/// numpy (`NpzFile.__getitem__`) takes the entry named exactly as asked when there is one,
/// then the name with `.npy`: with entries `x.npy` and `x`, `z['x']` is the entry `x`.
#[test]
fn the_entry_named_exactly_is_taken_before_its_npy_namesake() {
    if !numpy("the_entry_named_exactly_is_taken_before_its_npy_namesake") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = run_python(
        &format!(
            "{ZIP_BUILDER}\n\
             open('x.npz', 'wb').write(build([\n\
             \x20   dict(name='x.npy', data=npy(np.arange(4, dtype=np.uint8))),\n\
             \x20   dict(name='x', data=npy(np.full(3, 9, dtype=np.uint8)))]))\n\
             z = np.load('x.npz')\n\
             assert z.files == ['x', 'x'], z.files\n\
             assert z['x'].tolist() == [9, 9, 9] and z['x.npy'].tolist() == [0, 1, 2, 3]\n\
             print('ok')\n"
        ),
        tmp.path(),
    );
    assert_eq!(out.trim(), "ok");
    let z = open_npz(tmp.path().join("x.npz")).unwrap();
    assert_eq!(z.names(), ["x", "x"]);
    let x = unsafe { z.member::<u8>("x") }.unwrap();
    assert_eq!(x.view().iter().copied().collect::<Vec<_>>(), [9, 9, 9]);
    let x_npy = unsafe { z.member::<u8>("x.npy") }.unwrap();
    assert_eq!(
        x_npy.view().iter().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
}

/// A refused `add` takes nothing: the name is free for the corrected call, and the
/// archive holds exactly the members added.
#[test]
fn a_refused_add_leaves_the_name_free_and_the_archive_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.npz");
    let mut w = NpzWriter::create(&path).unwrap();
    let deep = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[1; 65]));
    let err = w.add("x", &deep).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Member { member, .. } if member == "x"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("r.npz") && msg.contains("member \"x\"") && msg.contains("65"),
        "{msg}"
    );
    w.add("x", &ndarray::array![1.5f32, 2.5]).unwrap();
    // Too long for a zip entry: refused, twice, never "already added". The zip writer
    // refuses 65502 bytes when the member starts and 65466 only when the archive is
    // finished (its directory entry would pass 65535 bytes): both are refused here, up
    // front.
    for len in [65_502, 65_502, 65_466, 65_458] {
        let err = w.add(&"n".repeat(len), &ndarray::array![1u8]).unwrap_err();
        assert!(
            matches!(err_problem(&err), NpzProblem::BadName { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
        assert!(err.to_string().len() < 400, "{err}");
    }
    // The longest name, whatever the member's offset (past 4 GiB its directory entry
    // holds 8 more bytes).
    let longest = "n".repeat(65_457);
    w.add(&longest, &ndarray::array![7u8]).unwrap();
    w.finish().unwrap();
    let z = open_npz(&path).unwrap();
    assert_eq!(z.names(), ["x", longest.as_str()]);
    let x = unsafe { z.member::<f32>("x") }.unwrap();
    assert_eq!(x.view().iter().copied().collect::<Vec<_>>(), [1.5, 2.5]);
    assert_eq!(unsafe { z.member::<u8>(&longest) }.unwrap().view()[0], 7);
    if numpy("a_refused_add_leaves_the_name_free_and_the_archive_whole") {
        let out = run_python(
            "import numpy as np\n\
             z = np.load('r.npz')\n\
             assert z.files == ['x', 'n' * 65457], [len(f) for f in z.files]\n\
             assert z['x'].tolist() == [1.5, 2.5] and z['n' * 65457].tolist() == [7]\n\
             print('ok')\n",
            tmp.path(),
        );
        assert_eq!(out.trim(), "ok");
    }
}

/// Names numpy reads back under another name (or not at all) are refused, saying why;
/// all others (empty, with '/', "..", non-ASCII, ending in ".npy", with spaces or a
/// newline) round-trip through numpy and through `member`.
#[test]
fn names_numpy_cannot_read_back_are_refused_and_the_rest_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("n.npz");
    let mut w = NpzWriter::create(&path).unwrap();
    w.add("x", &ndarray::array![0u8]).unwrap();
    w.add("y.npy", &ndarray::array![0u8]).unwrap();
    for (bad, says) in [
        ("a\0b", "NUL"),
        ("a\\b", "'\\'"),
        ("x.npy", "np.load would give for \"x.npy\""),
        ("y", "np.load gives for member \"y.npy\""),
    ] {
        let err = w.add(bad, &ndarray::array![1u8]).unwrap_err();
        assert!(
            matches!(err_problem(&err), NpzProblem::BadName { member, .. } if member == bad),
            "{bad:?}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("n.npz") && msg.contains(&format!("{bad:?}")) && msg.contains(says),
            "{msg}"
        );
    }
    let good = [
        "",
        "a/b",
        "/a",
        "a/",
        "../a",
        "é",
        "z.npy",
        "a b",
        "a\nb",
        "C:/a",
        "a//b",
        "\u{1f600}",
    ];
    for (i, name) in good.iter().enumerate() {
        w.add(name, &ndarray::array![i as u8 + 1]).unwrap();
    }
    // "" is written as entry ".npy", which np.load gives for ".npy".
    let err = w.add(".npy", &ndarray::array![1u8]).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::BadName { .. }),
        "{err}"
    );
    w.finish().unwrap();
    let z = open_npz(&path).unwrap();
    let mut all = vec!["x", "y.npy"];
    all.extend(good);
    assert_eq!(z.names(), all);
    for (i, name) in good.iter().enumerate() {
        let a = unsafe { z.member::<u8>(name) }.unwrap();
        assert_eq!(a.view()[0], i as u8 + 1, "{name:?}");
    }
    if !numpy("names_numpy_cannot_read_back_are_refused_and_the_rest_round_trip") {
        return;
    }
    let hex: Vec<String> = good
        .iter()
        .map(|n| n.bytes().map(|b| format!("{b:02x}")).collect())
        .collect();
    std::fs::write(tmp.path().join("names.txt"), hex.join("\n")).unwrap();
    let out = run_python(
        "import numpy as np\n\
         names = [bytes.fromhex(h).decode() for h in open('names.txt').read().split('\\n')]\n\
         z = np.load('n.npz')\n\
         assert z.files == ['x', 'y.npy'] + names, z.files\n\
         for i, n in enumerate(names):\n\
         \x20   assert z[n].tolist() == [i + 1], (n, z[n])\n\
         print('ok')\n",
        tmp.path(),
    );
    assert_eq!(out.trim(), "ok");
}

/// A second directory entry pointing at another member's local header: numpy's zipfile
/// refuses it ("File name in directory ... and header ... differ"); so does `open_npz`,
/// instead of mapping the other member's array under this name.
#[test]
fn a_directory_entry_on_another_members_local_header_is_refused() {
    if !numpy("a_directory_entry_on_another_members_local_header_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = run_python(
        &format!(
            "{ZIP_BUILDER}\n\
             import zipfile\n\
             a = npy(np.arange(5, dtype=np.uint8))\n\
             open('h.npz', 'wb').write(build([dict(name='a.npy', data=a),\n\
             \x20   dict(name='b.npy', data=a, cd_only=True, offset_of=0)]))\n\
             z = np.load('h.npz')\n\
             assert z['a'].tolist() == [0, 1, 2, 3, 4]\n\
             try:\n\
             \x20   z['b']; print('numpy read it')\n\
             except zipfile.BadZipFile as e:\n\
             \x20   print('refused', e)\n"
        ),
        tmp.path(),
    );
    assert!(out.starts_with("refused"), "{out}");
    let err = open_npz(tmp.path().join("h.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::HeaderName { member, offset: 0, local }
            if member == "b" && local == "a.npy"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("h.npz") && msg.contains("member \"b\"") && msg.contains("\"a.npy\""),
        "{msg}"
    );
}

/// Runs `script` after [`ZIP_BUILDER`] in `dir`.
fn build_archives(dir: &std::path::Path, script: &str) -> String {
    run_python(&format!("{ZIP_BUILDER}\n{script}"), dir)
}

/// The values of member `name` as bytes, or the error.
fn member_u8(z: &ndarray_mmap::Npz, name: &str) -> Result<Vec<u8>, Error> {
    unsafe { z.member::<u8>(name) }.map(|a| a.view().iter().copied().collect())
}

/// A local header whose extra field length says the data starts past the zip directory
/// (here in the archive comment, which holds another `.npy`): refused, where the old
/// bounds check let the last member's data start anywhere after the directory.
#[test]
fn a_local_header_whose_extra_length_points_past_the_directory_is_refused() {
    if !numpy("a_local_header_whose_extra_length_points_past_the_directory_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_archives(
        tmp.path(),
        "a = npy(np.zeros(16, dtype=np.uint8)); c = npy(np.full(16, 7, dtype=np.uint8))\n\
         plain = build([dict(name='a.npy', data=a)], comment=c)\n\
         at = len(plain) - len(c)\n\
         open('p.npz', 'wb').write(build([dict(name='a.npy', data=a,\n\
         \x20   local_extra_len=at - 30 - 5)], comment=c))\n",
    );
    let err = open_npz(tmp.path().join("p.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Bounds { member, .. } if member == "a"),
        "{err}"
    );
    assert!(err.to_string().contains("zip directory"), "{err}");
}

/// Two entries read under one name (the same name twice, or names numpy's zipfile cuts at
/// a NUL to the same one): numpy lists both and reads the last; the zip crate kept one,
/// and `names` listed one name (or names numpy does not show). Refused as ambiguous.
#[test]
fn two_entries_read_under_one_name_are_refused() {
    if !numpy("two_entries_read_under_one_name_are_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = build_archives(
        tmp.path(),
        "one = npy(np.arange(3, dtype=np.uint8)); two = npy(np.arange(5, dtype=np.uint8))\n\
         open('d.npz', 'wb').write(build([dict(name='a.npy', data=one),\n\
         \x20   dict(name='b.npy', data=one), dict(name='a.npy', data=two)]))\n\
         open('n.npz', 'wb').write(build([dict(name='b.npy', data=one),\n\
         \x20   dict(name='c\\0x.npy', data=one), dict(name='c\\0y.npy', data=two)]))\n\
         for f in ('d.npz', 'n.npz'):\n\
         \x20   z = np.load(f); print(z.files, len(z[z.files[-1]]))\n",
    );
    assert_eq!(out, "['a', 'b', 'a'] 5\n['b', 'c', 'c'] 5\n");
    for (file, member) in [("d.npz", "a"), ("n.npz", "c")] {
        let err = open_npz(tmp.path().join(file)).unwrap_err();
        assert!(
            matches!(err_problem(&err), NpzProblem::SameName { member: m } if m == member),
            "{file}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(file) && msg.contains(&format!("member {member:?}")),
            "{msg}"
        );
    }
}

/// Names are read as numpy's zipfile reads them: cut at a NUL, code page 437 unless the
/// entry is flagged UTF-8, and a Unicode Path extra field ignored (the zip crate reads the
/// first two otherwise and takes the third over the name).
#[test]
fn names_are_read_as_numpy_reads_them() {
    if !numpy("names_are_read_as_numpy_reads_them") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = build_archives(
        tmp.path(),
        "one = npy(np.arange(1, 4, dtype=np.uint8))\n\
         upath = b'\\x01' + struct.pack('<I', zlib.crc32(b'u.npy')) + b'v.npy'\n\
         upath = struct.pack('<HH', 0x7075, len(upath)) + upath\n\
         open('n.npz', 'wb').write(build([dict(name='c\\0hidden.npy', data=one),\n\
         \x20   dict(name='\\u00e9.npy'.encode(), data=one, flags=0),\n\
         \x20   dict(name='u.npy', data=one, local_extra=upath, central_extra=upath)]))\n\
         z = np.load('n.npz')\n\
         assert all(z[f].tolist() == [1, 2, 3] for f in z.files)\n\
         print('\\n'.join(f.encode().hex() for f in z.files))\n",
    );
    let numpys: Vec<String> = out
        .lines()
        .map(|h| {
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap()
        })
        .collect();
    assert_eq!(numpys, ["c", "├⌐", "u"]);
    let z = open_npz(tmp.path().join("n.npz")).unwrap();
    assert_eq!(z.names(), numpys);
    for name in &numpys {
        assert_eq!(member_u8(&z, name).unwrap(), [1, 2, 3], "{name:?}");
    }
}

/// A stored member whose two sizes differ: numpy reads the uncompressed size and fails its
/// CRC; `open_npz` mapped the stored size. Refused.
#[test]
fn a_stored_member_whose_sizes_differ_is_refused() {
    if !numpy("a_stored_member_whose_sizes_differ_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_archives(
        tmp.path(),
        "a = npy(np.arange(10, dtype=np.uint8))\n\
         open('s.npz', 'wb').write(build([dict(name='a.npy', data=a, usize=len(a) - 10)]))\n",
    );
    let err = open_npz(tmp.path().join("s.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Sizes { member, stored, size }
            if member == "a" && stored - size == 10),
        "{err}"
    );
}

/// A member whose local header hides inside another's (in its extra field), so that both
/// have the same data: Python 3.11.7's zipfile reads it (newer ones refuse "overlapped
/// entries"); `open_npz` mapped it. Refused.
#[test]
fn a_local_header_inside_another_is_refused() {
    if !numpy("a_local_header_inside_another_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    build_archives(
        tmp.path(),
        "a = npy(np.arange(6, dtype=np.uint8))\n\
         fake = struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 0, 0, 0x21, zlib.crc32(a),\n\
         \x20   len(a), len(a), 5, 0) + b'b.npy'\n\
         extra = struct.pack('<HH', 0xcafe, len(fake)) + fake\n\
         open('o.npz', 'wb').write(build([dict(name='a.npy', data=a, local_extra=extra),\n\
         \x20   dict(name='b.npy', data=a, cd_only=True, offset=30 + 5 + 4)]))\n",
    );
    let err = open_npz(tmp.path().join("o.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Overlap { member, other, offset: 39 }
            if member == "a" && other == "b"),
        "{err}"
    );
}

/// Hostile archives that were already refused cleanly (or read right), kept as a
/// regression table: each opens and maps as numpy reads it, or fails with an error, and
/// nothing panics or maps past its member.
#[test]
fn hostile_archives_fail_cleanly_or_read_as_numpy_reads_them() {
    if !numpy("hostile_archives_fail_cleanly_or_read_as_numpy_reads_them") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = build_archives(
        tmp.path(),
        "a = npy(np.arange(4, dtype=np.uint8)); b = npy(np.arange(8, dtype=np.uint8))\n\
         def z64(*v): return struct.pack('<HH', 1, 8 * len(v)) + struct.pack('<' + 'Q' * len(v), *v)\n\
         M = 0xFFFFFFFF\n\
         cases = {\n\
         \x20 'ok': [dict(name='a.npy', data=a), dict(name='b.npy', data=b)],\n\
         \x20 'zip64_sizes': [dict(name='a.npy', data=a, csize=M, usize=M,\n\
         \x20     central_extra=z64(2**63, 2**63))],\n\
         \x20 'zip64_offset': [dict(name='a.npy', data=a, offset=M, central_extra=z64(2**62))],\n\
         \x20 'zip64_offset_wraps': [dict(name='a.npy', data=a, offset=M,\n\
         \x20     central_extra=z64(2**64 - 10))],\n\
         \x20 'past_eof': [dict(name='a.npy', data=a, csize=0xFFFFFF00, usize=0xFFFFFF00)],\n\
         \x20 'bad_local_sig': [dict(name='a.npy', data=a), dict(name='b.npy', data=b, offset=3)],\n\
         \x20 'extra_len_short': [dict(name='a.npy', data=a, local_extra=b'\\0' * 8,\n\
         \x20     local_extra_len=2)],\n\
         \x20 'extra_len_long': [dict(name='a.npy', data=a, local_extra_len=40),\n\
         \x20     dict(name='b.npy', data=b)],\n\
         \x20 'empty': [dict(name='a.npy', data=b'')],\n\
         \x20 'encrypted': [dict(name='a.npy', data=a, flags=1)],\n\
         \x20 'deflated': [dict(name='a.npy', data=a, method=8)],\n\
         \x20 'descriptor': [dict(name='a.npy', data=a, flags=8)],\n\
         \x20 'into_next': [dict(name='a.npy', data=a, csize=len(a) + 1, usize=len(a) + 1),\n\
         \x20     dict(name='b.npy', data=b)],\n\
         }\n\
         for k, v in cases.items(): open(k + '.npz', 'wb').write(build(v))\n\
         ok = build(cases['ok'])\n\
         open('prefixed.npz', 'wb').write(b'#!/bin/sh\\nexit 0\\n' + ok)\n\
         d = bytearray(ok); d[-12:-10] = struct.pack('<H', 3); d[-14:-12] = d[-12:-10]\n\
         open('count_lies.npz', 'wb').write(d)\n\
         for k in list(cases) + ['prefixed', 'count_lies']:\n\
         \x20 try:\n\
         \x20   z = np.lib.npyio.NpzFile(open(k + '.npz', 'rb'))\n\
         \x20   print(k, [z[f].tolist() for f in z.files])\n\
         \x20 except Exception as e: print(k, 'error')\n",
    );
    let a: Vec<u8> = (0..4).collect();
    let b: Vec<u8> = (0..8).collect();
    // What numpy's NpzFile said (np.load itself takes a file not starting with a zip
    // signature, 'prefixed' here, for a pickle, and so it is refused here), then what must
    // happen here.
    let numpy_says: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once(' ')).collect();
    // (case, what numpy reads, whether it is read here): where numpy reads an archive
    // whose directory is impossible (a member past the end of the file; an entry count
    // the directory does not hold), it is refused here, since a mapped member's CRC is
    // never checked (numpy checks it only on reading a member to its end).
    const A: &str = "[[0, 1, 2, 3]]";
    const AB: &str = "[[0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7]]";
    let cases: &[(&str, &str, bool)] = &[
        ("ok", AB, true),
        ("prefixed", AB, false),
        ("descriptor", A, true),
        ("zip64_sizes", A, false),
        ("past_eof", A, false),
        ("count_lies", AB, false),
        ("zip64_offset", "error", false),
        ("zip64_offset_wraps", "error", false),
        ("bad_local_sig", "error", false),
        ("extra_len_short", "error", false),
        ("extra_len_long", "error", false),
        ("empty", "error", false),
        ("encrypted", "error", false),
        ("deflated", "error", false),
        ("into_next", "error", false),
    ];
    for &(case, numpy_result, read) in cases {
        assert_eq!(
            numpy_says.get(case),
            Some(&numpy_result),
            "numpy on {case}:\n{out}"
        );
        let path = tmp.path().join(format!("{case}.npz"));
        let got = open_npz(&path).and_then(|z| {
            let names: Vec<String> = z.names().iter().map(|s| s.to_string()).collect();
            names
                .iter()
                .map(|n| member_u8(&z, n))
                .collect::<Result<Vec<_>, _>>()
        });
        match got {
            Ok(v) => {
                assert!(read, "{case}: read {v:?}");
                let want = if numpy_result == AB {
                    vec![a.clone(), b.clone()]
                } else {
                    vec![a.clone()]
                };
                assert_eq!(v, want, "{case}");
            }
            Err(e) => {
                assert!(!read, "{case}: {e}");
                let msg = e.to_string();
                assert!(msg.contains(&format!("{case}.npz")), "{case}: {msg}");
            }
        }
    }
    // A zip64 offset far past the end: no local header there (seeking to it failed with
    // EINVAL on ext4, reported as an I/O error).
    let err = open_npz(tmp.path().join("zip64_offset.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::NoLocalHeader { member, offset }
            if member == "a" && *offset == 1 << 62),
        "{err:?}"
    );
}

/// Every truncation of an archive, and every byte of it flipped: `open_npz` and `member`
/// return errors or arrays, never panic, and never map outside the file.
#[test]
fn every_truncation_and_flipped_byte_of_an_archive_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.npz");
    let mut w = NpzWriter::create(&path).unwrap();
    w.add("a", &ndarray::array![1u8, 2, 3]).unwrap();
    w.add("b", &ndarray::array![[1.5f64, 2.5]]).unwrap();
    w.finish().unwrap();
    let whole = std::fs::read(&path).unwrap();
    let bad = tmp.path().join("bad.npz");
    let try_all = |bytes: &[u8]| {
        std::fs::write(&bad, bytes).unwrap();
        if let Ok(z) = open_npz(&bad) {
            for name in z.names() {
                let _ = unsafe { z.member::<u8>(name) }.map(|a| a.view().iter().max().copied());
                let _ = unsafe { z.member::<f64>(name) }.map(|a| a.view().sum());
            }
        }
    };
    for len in 0..whole.len() {
        let err = open_npz({
            std::fs::write(&bad, &whole[..len]).unwrap();
            &bad
        });
        assert!(err.is_err(), "a truncation to {len} bytes opened");
    }
    for i in 0..whole.len() {
        let mut flipped = whole.clone();
        flipped[i] ^= 0xff;
        try_all(&flipped);
    }
}

/// `member` maps by the offsets `open_npz` read: when the archive at the path is replaced
/// meanwhile (as `NpzWriter::finish` replaces it, by a rename, when no member is mapped),
/// they describe another file. Here the new archive holds the same sizes in another order,
/// so member "a" mapped the new "b" without a word; it is refused, saying to open the
/// archive again.
#[test]
fn an_archive_replaced_after_it_was_opened_is_not_mapped_by_its_old_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("r.npz");
    let write = |members: &[(&str, [u8; 3])]| {
        let mut w = NpzWriter::create(&path).unwrap();
        for (name, values) in members {
            w.add(name, &ndarray::arr1(values)).unwrap();
        }
        w.finish().unwrap();
    };
    write(&[("a", [1, 2, 3]), ("b", [4, 5, 6])]);
    let z = open_npz(&path).unwrap();
    assert_eq!(member_u8(&z, "a").unwrap(), [1, 2, 3]);
    write(&[("b", [7, 8, 9]), ("a", [10, 11, 12])]);
    let err = member_u8(&z, "a").unwrap_err();
    assert!(matches!(err_problem(&err), NpzProblem::Replaced), "{err}");
    assert!(
        err.to_string().contains("r.npz") && err.to_string().contains("open_npz"),
        "{err}"
    );
    let z = open_npz(&path).unwrap();
    assert_eq!(member_u8(&z, "a").unwrap(), [10, 11, 12]);
}

/// The end-of-directory record's entry count (and size) against the directory itself:
/// numpy's zipfile reads entries until the record's size is used up, ignoring its count,
/// where the zip crate read as many as the count said. With a count of 1 over a directory
/// of 2, `names` listed one member (and the first of two `a.npy` entries, where numpy reads
/// the second); with a wrong size (numpy: "Bad magic number for central directory") every
/// member mapped. Refused unless the entries fill the directory exactly and every count
/// agrees, the zip64 record's too.
#[test]
fn the_directory_must_hold_what_its_end_record_says() {
    if !numpy("the_directory_must_hold_what_its_end_record_says") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = build_archives(
        tmp.path(),
        "a = npy(np.arange(3, dtype=np.uint8)); b = npy(np.arange(5, dtype=np.uint8))\n\
         two = [dict(name='a.npy', data=a), dict(name='b.npy', data=b)]\n\
         dup = [dict(name='a.npy', data=a), dict(name='a.npy', data=b)]\n\
         size = 2 * (46 + 5)\n\
         cases = dict(count1=build(two, count=1), count1dup=build(dup, count=1),\n\
         \x20   size_long=build(two, cd_size=size + 8), size_short=build(two, cd_size=size - 1),\n\
         \x20   zip64_count1=build(two, zip64=True, count64=1),\n\
         \x20   zip64_size=build(two, zip64=True, cd_size=size + 8),\n\
         \x20   zip64_ok=build(two, zip64=True))\n\
         for k, v in cases.items():\n\
         \x20   open(k + '.npz', 'wb').write(v)\n\
         \x20   try:\n\
         \x20       z = np.load(k + '.npz'); print(k, z.files, [len(z[f]) for f in z.files])\n\
         \x20   except Exception as e: print(k, 'refused', type(e).__name__, e)\n",
    );
    let numpy_says: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once(' ')).collect();
    for (case, says) in [
        ("count1", "['a', 'b'] [3, 5]"),
        ("count1dup", "['a', 'a'] [5, 5]"),
        ("zip64_count1", "['a', 'b'] [3, 5]"),
        ("zip64_ok", "['a', 'b'] [3, 5]"),
    ] {
        assert_eq!(numpy_says.get(case), Some(&says), "{case}:\n{out}");
    }
    for case in ["size_long", "size_short", "zip64_size"] {
        let says = numpy_says.get(case).unwrap();
        assert!(
            says.starts_with("refused BadZipFile Bad magic number for central directory"),
            "{case}: {says}"
        );
    }
    let z = open_npz(tmp.path().join("zip64_ok.npz")).unwrap();
    assert_eq!(z.names(), ["a", "b"]);
    assert_eq!(member_u8(&z, "b").unwrap(), [0, 1, 2, 3, 4]);
    for (case, says) in [
        ("count1", "counts 1 entry"),
        ("count1dup", "counts 1 entry"),
        ("zip64_count1", "counts 1 entry"),
        ("size_long", "no directory entry at byte"),
        ("size_short", "no directory entry at byte"),
        ("zip64_size", "no directory entry at byte"),
    ] {
        let got = open_npz(tmp.path().join(format!("{case}.npz")));
        let err = match got {
            Ok(z) => panic!("{case}: opened, members {:?}", z.names()),
            Err(e) => e,
        };
        assert!(
            matches!(err_problem(&err), NpzProblem::Directory { .. }),
            "{case}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{case}.npz")) && msg.contains(says) && msg.contains("corrupt"),
            "{case}: {msg}"
        );
    }
}

/// Archives numpy cannot read: an entry flagged as compressed patched data (flag bit 5) or
/// strongly encrypted (bit 6), where numpy lists the member and refuses to read it; an
/// entry needing a zip version above 6.3, where `np.load` refuses the archive; data before
/// the archive (a self-extractor's stub), where `np.load` does not take the file for an
/// archive at all (it goes by the first bytes). Each was mapped; each is refused, saying
/// why, as numpy does (the flagged member when mapped, the others when opened).
#[test]
fn archives_numpy_cannot_read_are_refused() {
    if !numpy("archives_numpy_cannot_read_are_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = build_archives(
        tmp.path(),
        "a = npy(np.arange(3, dtype=np.uint8)); b = npy(np.arange(5, dtype=np.uint8))\n\
         two = [dict(name='a.npy', data=a), dict(name='b.npy', data=b)]\n\
         stub = b'MZ' + bytes(98)\n\
         cases = dict(patched=[dict(name='a.npy', data=a, flags=0x20)],\n\
         \x20   strong=[dict(name='a.npy', data=a, flags=0x40)],\n\
         \x20   v64=[dict(name='a.npy', data=a), dict(name='b.npy', data=b, version=64)],\n\
         \x20   v63=[dict(name='a.npy', data=a, version=63)])\n\
         for k, v in cases.items(): open(k + '.npz', 'wb').write(build(v))\n\
         open('stub.npz', 'wb').write(build(two, prefix=stub))\n\
         open('stub_abs.npz', 'wb').write(build(two, prefix=stub, absolute=True))\n\
         for k in list(cases) + ['stub', 'stub_abs']:\n\
         \x20   try: z = np.load(k + '.npz')\n\
         \x20   except Exception as e: print(k, 'load', type(e).__name__); continue\n\
         \x20   for f in z.files:\n\
         \x20       try: print(k, f, z[f].tolist())\n\
         \x20       except Exception as e: print(k, f, type(e).__name__, e)\n",
    );
    assert_eq!(
        out,
        "patched a NotImplementedError compressed patched data (flag bit 5)\n\
         strong a NotImplementedError strong encryption (flag bit 6)\n\
         v64 load NotImplementedError\n\
         v63 a [0, 1, 2]\n\
         stub load ValueError\n\
         stub_abs load ValueError\n"
    );
    let z = open_npz(tmp.path().join("v63.npz")).unwrap();
    assert_eq!(member_u8(&z, "a").unwrap(), [0, 1, 2]);
    for (case, bit) in [("patched", "flag bit 5"), ("strong", "flag bit 6")] {
        let z = open_npz(tmp.path().join(format!("{case}.npz"))).unwrap();
        assert_eq!(z.names(), ["a"]);
        let err = member_u8(&z, "a").unwrap_err();
        assert!(
            matches!(err_problem(&err), NpzProblem::Unsupported { member, .. } if member == "a"),
            "{case}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(bit) && msg.contains("numpy"), "{case}: {msg}");
    }
    let err = open_npz(tmp.path().join("v64.npz")).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Unsupported { member, .. } if member == "b"),
        "{err}"
    );
    assert!(err.to_string().contains("6.4"), "{err}");
    for case in ["stub", "stub_abs"] {
        let err = open_npz(tmp.path().join(format!("{case}.npz"))).unwrap_err();
        assert!(
            matches!(err_problem(&err), NpzProblem::Prefixed { .. }),
            "{case}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("MZ") && msg.contains("np.load"),
            "{case}: {msg}"
        );
    }
}

/// `NpzWriter::create` at a FIFO said "only regular files can be mapped", though nothing
/// was to be mapped: it says the archive cannot be written there.
#[cfg(unix)]
#[test]
fn an_archive_is_not_written_over_a_fifo_and_the_error_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("f.npz");
    let p = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
    let err = NpzWriter::create(&fifo).unwrap_err();
    assert!(
        matches!(err_problem(&err), NpzProblem::Destination { kind } if kind == "a FIFO"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("f.npz")
            && msg.contains("cannot write the archive")
            && msg.contains("a FIFO")
            && !msg.contains("mapped"),
        "{msg}"
    );
}

/// Extra fields read as Python's zipfile reads them (round 3 of the adversarial runs): two
/// zip64 blocks (Python takes the first, the zip crate the last: another member's bytes)
/// and a block longer than the field (numpy: "Corrupt extra field") are refused; a version
/// needed to extract with the host system in its high byte (0x0314) reads, as it does in
/// numpy, which looks at the low byte only.
#[test]
fn extra_fields_and_versions_are_read_as_numpy_reads_them() {
    const TEST: &str = "extra_fields_and_versions_are_read_as_numpy_reads_them";
    if !numpy(TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let said = run_python(
        r#"
import io, struct, zlib, numpy as np
def npy(a): b = io.BytesIO(); np.save(b, a); return b.getvalue()
def local(name, data):
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data), len(name), 0) + name
def central(name, data, off, extra=b"", ver=20):
    return struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, ver, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data), len(name), len(extra), 0, 0, 0, 0, off) + name + extra
def eocd(n, size, off): return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, size, off, 0)
A, B = npy(np.arange(6, dtype=np.uint8)), npy(np.arange(6, 12, dtype=np.uint8))
la, lb = local(b"a.npy", A) + A, local(b"a.npy", B) + B
ex = struct.pack("<HHQ", 1, 8, 0) + struct.pack("<HHQ", 1, 8, len(la))
cd = central(b"a.npy", A, 0xFFFFFFFF, ex)
open("two_z64.npz", "wb").write(la + lb + cd + eocd(1, len(cd), len(la + lb)))
cd = central(b"a.npy", A, 0, struct.pack("<HH", 1, 40) + b"\0" * 4)
open("overlong.npz", "wb").write(la + cd + eocd(1, len(cd), len(la)))
cd = central(b"a.npy", A, 0, ver=0x0314)
open("ver.npz", "wb").write(la + cd + eocd(1, len(cd), len(la)))
print(np.load("two_z64.npz")["a"].tolist())
try:
    np.load("overlong.npz"); print("read")
except Exception as e: print(type(e).__name__)
print(np.load("ver.npz")["a"].tolist())
"#,
        tmp.path(),
    );
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        ["[0, 1, 2, 3, 4, 5]", "BadZipFile", "[0, 1, 2, 3, 4, 5]"],
        "numpy's reading changed"
    );
    let err = open_npz(tmp.path().join("two_z64.npz")).unwrap_err();
    assert!(err.to_string().contains("two zip64 blocks"), "{err}");
    let err = open_npz(tmp.path().join("overlong.npz")).unwrap_err();
    assert!(err.to_string().contains("extra field is corrupt"), "{err}");
    let z = open_npz(tmp.path().join("ver.npz")).unwrap();
    assert_eq!(member_u8(&z, "a").unwrap(), [0, 1, 2, 3, 4, 5]);
}

/// `Npz::read` reads any member as numpy's `np.load` does: the members `np.savez` leaves
/// unaligned, the deflated members of `np.savez_compressed`, Fortran order, every value
/// equal; a damaged deflated member is an error naming it, never a panic.
#[test]
fn read_takes_every_member_numpy_writes() {
    if !numpy("read_takes_every_member_numpy_writes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run_python(
        "import numpy as np\n\
         f = np.arange(5.0) * 1.25\n\
         m = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4) - 6)\n\
         np.savez('s.npz', f=f, m=m)\n\
         np.savez_compressed('c.npz', f=f, m=m, big=np.arange(100000, dtype=np.int64) % 7)\n",
        tmp.path(),
    );
    let f = ndarray::Array1::from_iter((0..5).map(|i| i as f64 * 1.25)).into_dyn();
    let m = ndarray::Array::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i32 - 6).into_dyn();
    for name in ["s.npz", "c.npz"] {
        let z = open_npz(tmp.path().join(name)).unwrap();
        assert_eq!(z.read::<f64>("f").unwrap(), f, "{name}");
        assert_eq!(z.read::<i32>("m.npy").unwrap(), m, "{name}");
        let err = z.read::<f32>("f").unwrap_err();
        assert!(err.to_string().contains("f4"), "{err}");
    }
    let c = open_npz(tmp.path().join("c.npz")).unwrap();
    let big = c.read::<i64>("big").unwrap();
    assert!(big.iter().enumerate().all(|(i, &x)| x == i as i64 % 7));
    // Damage inside a deflated member: an error, the archive unchanged.
    let path = tmp.path().join("c.npz");
    let mut bytes = std::fs::read(&path).unwrap();
    let k = bytes.len() / 2;
    for b in &mut bytes[k..k + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    // The damage lies in `big`'s data (its deflated bytes fill most of the archive): the
    // archive opens, and reading the member is an error (its CRC-32), never wrong values.
    let c = open_npz(&path).unwrap();
    let err = c.read::<i64>("big").unwrap_err();
    assert!(matches!(err, Error::Npz { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
