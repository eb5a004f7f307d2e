//! .npy files written and read by this crate alone (numpy interop: `npy_numpy.rs`).

use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndarray_mmap::{
    Error, MapOptions, NpyHeader, NpyProblem, Order, create_npy, open_npy, open_npy_mut,
};

fn npy_problem(e: Error) -> NpyProblem {
    match e {
        Error::Npy { problem, path, .. } => {
            assert!(path.is_some(), "a file error names its path");
            problem
        }
        other => panic!("expected Error::Npy, got {other:?}"),
    }
}

/// Writes a .npy file by hand: `header` bytes then `data`.
fn write(path: &Path, header: &NpyHeader, data: &[u8]) {
    let mut bytes = header.to_bytes();
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn create_then_open_every_shape_and_order() {
    let tmp = tempfile::tempdir().unwrap();
    let shapes: [&[usize]; 7] = [
        &[],
        &[0],
        &[5],
        &[0, 3],
        &[3, 4],
        &[2, 3, 4],
        &[2, 1, 3, 2, 2],
    ];
    for (i, shape) in shapes.iter().enumerate() {
        for order in [Order::C, Order::F] {
            let path = tmp.path().join(format!("a{i}{order:?}.npy"));
            let spec: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
            let n: usize = shape.iter().product();
            let expected = ArrayD::from_shape_vec(
                IxDyn(shape).set_f(order == Order::F),
                (0..n as i32).map(|x| x * 3 - 7).collect(),
            )
            .unwrap();
            let mut w = unsafe {
                MapOptions::new()
                    .order(order)
                    .create_npy::<i32>(&path, &spec)
            }
            .unwrap();
            w.view_mut().assign(&expected);
            w.close().unwrap();

            let len = std::fs::metadata(&path).unwrap().len();
            assert_eq!(len, 128 + 4 * n as u64, "{shape:?}");
            let h = NpyHeader::from_path(&path).unwrap();
            assert_eq!((h.shape(), h.order()), (*shape, order));

            let a = unsafe { open_npy::<i32>(&path) }.unwrap();
            assert_eq!(a.shape(), *shape);
            assert_eq!(a.order(), order);
            assert_eq!(a.view(), expected.view());
            // the bytes are in the file's order
            let raw: &[i32] = bytemuck::cast_slice(a.as_bytes());
            let in_order: Vec<i32> = if order == Order::C {
                expected.iter().copied().collect()
            } else {
                expected.t().iter().copied().collect()
            };
            assert_eq!(raw, &in_order[..]);
        }
    }
}

#[test]
fn open_mut_writes_reach_the_file_and_copy_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.npy");
    unsafe { create_npy::<f64>(&path, [2, 2]) }
        .unwrap()
        .close()
        .unwrap();
    let mut m = unsafe { open_npy_mut::<f64>(&path) }.unwrap();
    m.view_mut()[[1, 1]] = 4.5;
    m.close().unwrap();
    let mut c = unsafe { MapOptions::new().open_npy_copy::<f64>(&path) }.unwrap();
    assert_eq!(c.view()[[1, 1]], 4.5);
    c.view_mut().fill(1.0);
    c.close().unwrap();
    let a = unsafe { open_npy::<f64>(&path) }.unwrap();
    assert_eq!(a.view().sum(), 4.5);
}

#[test]
fn dtype_errors_name_both_descriptors_and_leave_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.npy");
    unsafe { create_npy::<u16>(&path, [3]) }
        .unwrap()
        .close()
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = unsafe { open_npy::<i16>(&path) }.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: dtype mismatch", path.display())),
        "{msg}"
    );
    assert!(
        msg.contains(u16::NPY_DESCR) && msg.contains(i16::NPY_DESCR),
        "{msg}"
    );
    assert!(unsafe { open_npy_mut::<u32>(&path) }.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    use ndarray_mmap::Element;

    // big-endian, objects and bools
    let swapped = if cfg!(target_endian = "little") {
        ">u2"
    } else {
        "<u2"
    };
    for (descr, needle) in [
        (swapped, "byte order"),
        ("|O", "objects"),
        ("<U2", "string"),
    ] {
        write(
            &path,
            &NpyHeader::new(descr, &[3], Order::C).unwrap(),
            &[0; 6],
        );
        let p = npy_problem(unsafe { open_npy::<u16>(&path) }.unwrap_err());
        assert!(
            matches!(p, NpyProblem::UnsupportedDtype { .. }),
            "{descr}: {p:?}"
        );
        assert!(p.to_string().contains(needle), "{p}");
    }
    write(
        &path,
        &NpyHeader::new("|b1", &[3], Order::C).unwrap(),
        &[1, 0, 1],
    );
    assert_eq!(
        unsafe { open_npy::<u8>(&path) }.unwrap().as_bytes(),
        &[1, 0, 1]
    );
    assert!(unsafe { open_npy::<i8>(&path) }.is_err());
}

#[test]
fn the_file_must_hold_the_counted_data_and_may_hold_unpublished_rows_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("l.npy");
    let h = NpyHeader::new("<f4", &[2, 3], Order::C).unwrap();
    let descr = if cfg!(target_endian = "little") {
        "<f4"
    } else {
        ">f4"
    };
    let h = NpyHeader::new(descr, h.shape(), Order::C).unwrap();
    for len in [0, 4, 23] {
        write(&path, &h, &vec![0; len]);
        let e = unsafe { open_npy::<f32>(&path) }.unwrap_err();
        let msg = e.to_string();
        match npy_problem(e) {
            NpyProblem::DataLength {
                expected, file_len, ..
            } => {
                assert_eq!((expected, file_len), (128 + 24, 128 + len as u64));
                assert!(msg.contains("shape (2, 3)"), "{msg}");
            }
            p => panic!("{p:?}"),
        }
    }
    // Bytes after the counted data are rows an appender has not published (or never
    // will, having been killed): they are not mapped.
    for len in [24, 25, 48] {
        let data: Vec<u8> = (0..len as u8).collect();
        write(&path, &h, &data);
        let a = unsafe { open_npy::<f32>(&path) }.unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.as_bytes(), &data[..24]);
    }
    // a file cut inside its header
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..100]).unwrap();
    assert!(matches!(
        npy_problem(unsafe { open_npy::<f32>(&path) }.unwrap_err()),
        NpyProblem::Truncated {
            needed: 128,
            found: 100
        }
    ));
    std::fs::write(&path, b"").unwrap();
    assert!(unsafe { open_npy::<f32>(&path) }.is_err());
}

#[test]
fn misaligned_data_is_an_error_for_wider_types_only() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("old.npy");
    // numpy < 1.14 aligned to 16; some 2.0 files not at all: hand-write an 86-byte header
    let dict = if cfg!(target_endian = "little") {
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    } else {
        "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }"
    };
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header_len = 76u16; // data at 86
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(10 + header_len as usize - 1, b' ');
    bytes.push(b'\n');
    bytes.extend_from_slice(&[0; 16]);
    std::fs::write(&path, &bytes).unwrap();
    let h = NpyHeader::from_path(&path).unwrap();
    assert_eq!(h.data_offset(), 86);
    let e = unsafe { open_npy::<f64>(&path) }.unwrap_err();
    assert!(e.to_string().contains("numpy before 1.14"), "{e}");
    assert!(matches!(
        npy_problem(e),
        NpyProblem::MisalignedData {
            data_offset: 86,
            align: 8,
            ..
        }
    ));
}

#[test]
fn not_npy_and_garbage_headers_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("g.npy");
    std::fs::write(&path, b"hello, world; not numpy").unwrap();
    let e = unsafe { open_npy::<u8>(&path) }.unwrap_err();
    assert!(e.to_string().contains("not a .npy file"), "{e}");
    let e = NpyHeader::from_path(tmp.path()).unwrap_err();
    assert!(
        matches!(e, Error::NotAFile { .. } | Error::Io { .. }),
        "{e:?}"
    );
    let e = NpyHeader::from_path(tmp.path().join("missing.npy")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
}

#[test]
fn npy_inside_a_bigger_file_with_offset_and_len() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wrapped.bin");
    let h = NpyHeader::for_element::<u32>(&[4], Order::C).unwrap();
    let mut bytes = vec![0xAA; 64];
    bytes.extend_from_slice(&h.to_bytes());
    bytes.extend_from_slice(bytemuck::cast_slice(&[1u32, 2, 3, 4]));
    bytes.extend_from_slice(&[0xBB; 10]);
    std::fs::write(&path, &bytes).unwrap();
    let a = unsafe {
        MapOptions::new()
            .offset(64)
            .len(128 + 16)
            .open_npy::<u32>(&path)
    }
    .unwrap();
    assert_eq!(a.view().as_slice().unwrap(), &[1, 2, 3, 4]);
    // without len, the trailing bytes are taken as rows not yet counted: not mapped
    let b = unsafe { MapOptions::new().offset(64).open_npy::<u32>(&path) }.unwrap();
    assert_eq!(b.view().as_slice().unwrap(), &[1, 2, 3, 4]);
    assert!(matches!(
        unsafe {
            MapOptions::new()
                .offset(64)
                .len(10_000)
                .open_npy::<u32>(&path)
        },
        Err(Error::OutOfBounds { .. })
    ));
}

#[test]
fn create_npy_checks_before_touching_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keep.npy");
    std::fs::write(&path, b"precious").unwrap();
    assert!(matches!(
        unsafe { create_npy::<f32>(&path, [2, -1]) },
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        unsafe { create_npy::<f32>(&path, [isize::MAX, 4]) },
        Err(Error::Overflow { .. })
    ));
    let many = vec![1isize; 5000];
    assert!(matches!(
        unsafe { create_npy::<f32>(&path, &many) },
        Err(Error::Npy {
            problem: NpyProblem::TooManyDims {
                ndim: 5000,
                max: 64
            },
            ..
        })
    ));
    assert!(
        unsafe {
            MapOptions::new()
                .create_new(true)
                .create_npy::<f32>(&path, [1])
        }
        .is_err()
    );
    // a mapped file cannot be recreated under its maps
    let other = tmp.path().join("mapped.npy");
    let _m = unsafe { create_npy::<u8>(&other, [3]) }.unwrap();
    assert!(matches!(
        unsafe { create_npy::<u8>(&other, [4]) },
        Err(Error::Locked {
            exclusive: true,
            ..
        })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn many_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nd.npy");
    let shape: Vec<isize> = vec![
        1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 2,
    ];
    let mut w = unsafe { create_npy::<i8>(&path, &shape) }.unwrap();
    w.as_bytes_mut()[15] = 9;
    w.close().unwrap();
    let a = unsafe { open_npy::<i8>(&path) }.unwrap();
    assert_eq!(a.shape().len(), 32);
    assert_eq!(a.view().iter().last(), Some(&9));
}
