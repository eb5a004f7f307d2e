//! Growing `.npy` files: the shape is rewritten in place inside numpy's spare header room,
//! or the data moves after a larger header when there is none; numpy reads the result.
// SAFETY (for every unsafe block below): the tests map files in their own temporary
// directories, which nothing else touches while mapped.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use ndarray::{Array2, arr1, arr2};
use ndarray_mmap::{Error, GrowProblem, MapOptions, NpyHeader, Order, create_npy, open_npy};

/// numpy's view of the file, as `shape|fortran|sum`, or `None` (after saying so on
/// stderr, uncaptured) when python3 with numpy is not installed.
fn numpy_sees(path: &Path) -> Option<String> {
    let script = "import sys, numpy as np\n\
                  a = np.load(sys.argv[1], mmap_mode='r')\n\
                  print(tuple(a.shape), a.flags.f_contiguous and a.ndim > 1, float(a.sum()))";
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
    {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            skip_numpy("numpy is not installed")
        }
        Ok(out) => panic!("numpy failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => skip_numpy(&format!("no python3 ({e})")),
    }
}

/// Says why numpy is not checked; fails instead where CI requires numpy
/// (`NDARRAY_MMAP_REQUIRE_NUMPY`, as in `tests/npy_numpy.rs`).
fn skip_numpy(why: &str) -> Option<String> {
    assert!(
        std::env::var_os("NDARRAY_MMAP_REQUIRE_NUMPY").is_none(),
        "numpy is required here: {why}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED numpy check: {why}");
    None
}

#[test]
fn grow_rewrites_the_shape_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.npy");
    let mut a = unsafe { create_npy::<f64>(&path, [2, 3]) }.unwrap();
    a.view_mut().fill(1.0);
    a.grow(4).unwrap();
    a.append(&arr1(&[2.0, 2.0, 2.0])).unwrap();
    assert_eq!(a.shape(), &[5, 3]);
    a.close().unwrap();
    let h = NpyHeader::from_path(&path).unwrap();
    assert_eq!(h.shape(), &[5, 3]);
    assert_eq!(h.data_offset(), 128, "the data did not stay in place");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 128 + 5 * 3 * 8);
    let b = unsafe { open_npy::<f64>(&path) }.unwrap();
    assert_eq!(b.view().sum(), 12.0);
    assert_eq!(b.view()[[4, 2]], 2.0);
    drop(b);
    if let Some(seen) = numpy_sees(&path) {
        assert_eq!(seen, "(5, 3) False 12.0");
    }
    // Growing by many digits still fits numpy's spare room (a 10 GB sparse file).
    let big = tmp.path().join("big.npy");
    unsafe { create_npy::<u8>(&big, [1]) }
        .unwrap()
        .close()
        .unwrap();
    let mut a = unsafe {
        MapOptions::new()
            .preallocate(false)
            .open_npy_mut::<u8>(&big)
    }
    .unwrap();
    a.grow(10_000_000_000).unwrap();
    a.close().unwrap();
    let h = NpyHeader::from_path(&big).unwrap();
    assert_eq!((h.shape(), h.data_offset()), (&[10_000_000_000][..], 128));
}

#[test]
fn fortran_npy_grows_along_the_last_axis() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f.npy");
    let opts = MapOptions::new().order(Order::F);
    let mut a = unsafe { opts.create_npy::<i32>(&path, [2, 2]) }.unwrap();
    a.view_mut().assign(&arr2(&[[1, 2], [3, 4]]));
    a.append(&arr2(&[[5], [6]])).unwrap();
    assert_eq!(a.view(), arr2(&[[1, 2, 5], [3, 4, 6]]).into_dyn());
    a.close().unwrap();
    let h = NpyHeader::from_path(&path).unwrap();
    assert!(h.fortran_order());
    assert_eq!(h.shape(), &[2, 3]);
    let b = unsafe { open_npy::<i32>(&path) }.unwrap();
    assert_eq!(b.view(), arr2(&[[1, 2, 5], [3, 4, 6]]).into_dyn());
    drop(b);
    if let Some(seen) = numpy_sees(&path) {
        assert_eq!(seen, "(2, 3) True 21.0");
    }
}

/// A 1.0 header with no spare room: the 50-character dict fills a 64-byte header.
fn tight_npy(path: &Path, data: &[f32]) {
    let dict = format!(
        "{{'descr':'<f4','fortran_order':False,'shape':({},)}}",
        data.len()
    );
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&54u16.to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.resize(63, b' ');
    b.push(b'\n');
    b.extend_from_slice(bytemuck::cast_slice(data));
    std::fs::write(path, b).unwrap();
}

#[test]
#[cfg(target_endian = "little")]
fn grow_moves_the_data_when_the_header_has_no_room() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tight.npy");
    tight_npy(&path, &[1.0, 2.0, 3.0]);
    assert_eq!(NpyHeader::from_path(&path).unwrap().data_offset(), 64);
    let mut a = unsafe { MapOptions::new().open_npy_mut::<f32>(&path) }.unwrap();
    a.append(&arr1(&[4.0f32, 5.0])).unwrap();
    assert_eq!(a.view(), arr1(&[1.0f32, 2.0, 3.0, 4.0, 5.0]).into_dyn());
    a.view_mut()[0] = 10.0; // the new map is the moved data
    a.grow(1000).unwrap(); // and it grows again, in place now
    a.close().unwrap();
    let h = NpyHeader::from_path(&path).unwrap();
    assert_eq!(h.shape(), &[1000]);
    assert_eq!(
        h.data_offset(),
        128,
        "the data should have moved after a larger header"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 128 + 4000);
    let b = unsafe { open_npy::<f32>(&path) }.unwrap();
    assert_eq!(b.view().sum(), 24.0);
    assert_eq!(b.view()[4], 5.0);
    drop(b);
    if let Some(seen) = numpy_sees(&path) {
        assert_eq!(seen, "(1000,) False 24.0");
    }
}

#[test]
fn grow_refuses_a_header_someone_else_rewrote() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.npy");
    unsafe { create_npy::<u8>(&path, [4]) }
        .unwrap()
        .close()
        .unwrap();
    let mut a = unsafe { MapOptions::new().open_npy_mut::<u8>(&path) }.unwrap();
    // Another program (ignoring locks) rewrites the shape from (4,) to (2,).
    let bytes = rewrite_header(&path, b"(4,)", b"(2,)");
    let err = a.grow(8).unwrap_err();
    assert!(
        matches!(&err, Error::CannotGrow { reason: GrowProblem::HeaderChanged { shape }, .. } if shape == &[2]),
        "{err}"
    );
    assert!(err.to_string().contains("shape [2]"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused grow changed the file"
    );
    assert_eq!(a.shape(), &[4]);
}

#[test]
fn appending_many_rows_keeps_every_value() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.npy");
    let mut a = unsafe { create_npy::<u32>(&path, [0, 4]) }.unwrap();
    for k in 0..50u32 {
        let rows = Array2::from_shape_fn((k as usize % 3 + 1, 4), |(i, j)| {
            k * 100 + i as u32 * 10 + j as u32
        });
        a.append(&rows).unwrap();
    }
    let n = a.shape()[0];
    a.close().unwrap();
    let b = unsafe { open_npy::<u32>(&path) }.unwrap();
    assert_eq!(b.shape(), &[n, 4]);
    let mut r = 0;
    for k in 0..50u32 {
        for i in 0..(k as usize % 3 + 1) {
            for j in 0..4 {
                assert_eq!(b.view()[[r, j]], k * 100 + i as u32 * 10 + j as u32);
            }
            r += 1;
        }
    }
}

#[test]
fn grow_refuses_a_header_whose_dtype_or_order_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.npy");
    for (from, to) in [(&b"'|u1'"[..], &b"'|i1'"[..]), (b"False", b"True ")] {
        // Replacing the file the last round mapped: another test's child process, forked
        // between that map's open and close, holds a copy of its descriptor (and so its
        // open-file-description locks) until it execs. Wait a moment for it.
        let opts = MapOptions::new().lock_timeout(std::time::Duration::from_secs(5));
        unsafe { opts.create_npy::<u8>(&path, [4, 1]) }
            .unwrap()
            .close()
            .unwrap();
        let mut a = unsafe { MapOptions::new().open_npy_mut::<u8>(&path) }.unwrap();
        // Another program (ignoring locks) rewrites the dtype, or the order, in place.
        let bytes = rewrite_header(&path, from, to);
        let err = a.append(&ndarray::arr1(&[9u8])).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::CannotGrow {
                    reason: GrowProblem::HeaderChanged { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "a refused append changed the file"
        );
        assert_eq!(a.shape(), &[4, 1]);
    }
}

/// Rewrites `from` as `to` (the same length) in the 128-byte header of the `.npy` at
/// `path`, as a program ignoring the locks would; returns the file's bytes after.
fn rewrite_header(path: &std::path::Path, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all(&bytes[..128])
        .unwrap();
    bytes
}
