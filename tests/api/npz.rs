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
