//! Integration tests of the core contract: real files in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Ix1, Ix2, IxDyn, arr2};
use ndarray_mmap::{
    Error, MapOptions, Order, ShapeProblem, create_array, mmap_array, mmap_array_mut,
};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write_f32(path: &Path, values: &[f32]) {
    fs::write(path, bytemuck::cast_slice(values)).unwrap();
}

fn seq(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

/// Asserts `err`'s message starts with the path and contains every one of `parts`.
fn assert_msg(err: &Error, path: &Path, parts: &[&str]) {
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "message does not name the path: {msg}"
    );
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn c_order_values_and_strides() {
    let dir = tmp();
    let path = dir.path().join("a.f32");
    write_f32(&path, &seq(48));
    let a = unsafe { mmap_array::<f32>(&path, [-1, 24]) }.unwrap();
    let v = a.view();
    assert_eq!(v.shape(), &[2, 24]);
    assert_eq!(v.strides(), &[24, 1]);
    assert_eq!(v[[1, 3]], 27.0);
    assert_eq!(v.sum(), (0..48).sum::<i32>() as f32);
    // zero copy: the view points into the mapping
    assert_eq!(v.as_ptr() as usize, a.as_bytes().as_ptr() as usize);
}

#[test]
fn fortran_order_values_and_strides() {
    let dir = tmp();
    let path = dir.path().join("f.f32");
    write_f32(&path, &seq(6));
    let a = unsafe {
        MapOptions::new()
            .order(Order::F)
            .open::<f32>(&path, [2, -1])
    }
    .unwrap();
    let v = a.view();
    assert_eq!(v.shape(), &[2, 3]);
    assert_eq!(v.strides(), &[1, 2]);
    assert_eq!(
        v.into_dimensionality::<Ix2>().unwrap(),
        arr2(&[[0., 2., 4.], [1., 3., 5.]])
    );
}

#[test]
fn shape_arguments_of_every_kind() {
    let dir = tmp();
    let path = dir.path().join("a.f32");
    write_f32(&path, &seq(12));
    let slice: &[isize] = &[3, -1];
    let shapes: Vec<Vec<usize>> = vec![
        unsafe { mmap_array::<f32>(&path, [3, 4]) }
            .unwrap()
            .shape()
            .to_vec(),
        unsafe { mmap_array::<f32>(&path, &[3, 4]) }
            .unwrap()
            .shape()
            .to_vec(),
        unsafe { mmap_array::<f32>(&path, slice) }
            .unwrap()
            .shape()
            .to_vec(),
        unsafe { mmap_array::<f32>(&path, vec![-1isize, 4]) }
            .unwrap()
            .shape()
            .to_vec(),
        unsafe { mmap_array::<f32>(&path, Ix2(3, 4)) }
            .unwrap()
            .shape()
            .to_vec(),
        unsafe { mmap_array::<f32>(&path, IxDyn(&[3, 4])) }
            .unwrap()
            .shape()
            .to_vec(),
    ];
    for s in shapes {
        assert_eq!(s, [3, 4]);
    }
}

#[test]
fn explicit_shape_smaller_than_file_maps_a_prefix() {
    let dir = tmp();
    let path = dir.path().join("a.f32");
    write_f32(&path, &seq(100));
    let a = unsafe { mmap_array::<f32>(&path, [2, 5]) }.unwrap();
    assert_eq!(a.as_bytes().len(), 40);
    assert_eq!(a.view()[[1, 4]], 9.0);
}

#[test]
fn typed_dimension() {
    let dir = tmp();
    let path = dir.path().join("a.f32");
    write_f32(&path, &seq(12));
    let a = unsafe { mmap_array::<f32>(&path, [-1, 4]) }.unwrap();
    let a = a.into_dimensionality::<Ix2>().unwrap();
    assert_eq!(a.view().dim(), (3, 4));
    let a = unsafe { mmap_array::<f32>(&path, [-1, 4]) }.unwrap();
    let err = a.into_dimensionality::<Ix1>().unwrap_err();
    assert!(matches!(
        err,
        Error::Dimensionality {
            expected: 1,
            found: 2,
            ..
        }
    ));
    assert_msg(&err, &path, &["2 dimension", "the 1 asked for"]);
}

#[test]
fn empty_file_with_minus_one_is_shape_zero() {
    let dir = tmp();
    let path = dir.path().join("empty.f64");
    fs::write(&path, []).unwrap();
    let a = unsafe { mmap_array::<f64>(&path, [-1]) }.unwrap();
    assert_eq!(a.shape(), &[0]);
    assert_eq!(a.view().sum(), 0.0);
    let a = unsafe { mmap_array::<f64>(&path, [-1, 3]) }.unwrap();
    assert_eq!(a.shape(), &[0, 3]);
    let mut m = unsafe { mmap_array_mut::<f64>(&path, [-1]) }.unwrap();
    m.flush().unwrap();
    assert!(m.view_mut().is_empty());
}

#[test]
fn zero_d_array() {
    let dir = tmp();
    let path = dir.path().join("scalar.f32");
    write_f32(&path, &[7.0]);
    let a = unsafe { mmap_array::<f32>(&path, [0isize; 0]) }.unwrap();
    assert_eq!(a.view().ndim(), 0);
    assert_eq!(a.view()[[]], 7.0);
}

#[test]
fn read_write_reaches_file_and_other_maps() {
    let dir = tmp();
    let path = dir.path().join("b.f64");
    fs::write(&path, [0u8; 80]).unwrap();
    let reader = unsafe { mmap_array::<f64>(&path, [-1]) }.unwrap();
    let mut b = unsafe { mmap_array_mut::<f64>(&path, [-1]) }.unwrap();
    b.view_mut().fill(1.0);
    b.view_mut()[3] = -2.5;
    // shared mapping: the other map sees the write at once, without re-opening
    assert_eq!(reader.view()[3], -2.5);
    b.flush().unwrap();
    b.flush_async().unwrap();
    b.flush_range(2..5).unwrap();
    b.close().unwrap();
    let bytes = fs::read(&path).unwrap();
    let back: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(back[0], 1.0);
    assert_eq!(back[3], -2.5);
}

#[test]
fn flush_range_checks_bounds() {
    let dir = tmp();
    let path = dir.path().join("b.f64");
    let b = unsafe { create_array::<f64>(&path, [10]) }.unwrap();
    let err = b.flush_range(5..11).unwrap_err();
    assert!(matches!(
        err,
        Error::ElementRange {
            start: 5,
            end: 11,
            len: 10,
            ..
        }
    ));
    assert_msg(&err, &path, &["5..11", "10 elements"]);
    #[allow(clippy::reversed_empty_ranges)]
    let err = b.flush_range(6..5).unwrap_err();
    assert!(matches!(err, Error::ElementRange { .. }));
}

#[test]
fn copy_on_write_never_reaches_the_file() {
    let dir = tmp();
    let path = dir.path().join("c.f32");
    write_f32(&path, &seq(8));
    let before = fs::read(&path).unwrap();
    let mut c = unsafe { MapOptions::new().open_copy::<f32>(&path, [-1]) }.unwrap();
    assert!(c.is_copy_on_write());
    c.view_mut().fill(9.0);
    assert_eq!(c.view().sum(), 72.0);
    c.flush().unwrap();
    c.close().unwrap();
    assert_eq!(fs::read(&path).unwrap(), before);
}

fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn read_only_open_leaves_bytes_and_mtime_unchanged() {
    let dir = tmp();
    let path = dir.path().join("ro.f32");
    write_f32(&path, &seq(1024));
    let old = mtime(&path);
    let before = fs::read(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let a = unsafe { mmap_array::<f32>(&path, [-1, 32]) }.unwrap();
    assert_eq!(a.view().sum(), (0..1024).sum::<i32>() as f32);
    a.advise(ndarray_mmap::Advice::Sequential).unwrap();
    a.close().unwrap();
    let c = unsafe { MapOptions::new().open_copy::<f32>(&path, [-1]) }.unwrap();
    drop(c);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(mtime(&path), old);
}

#[test]
fn create_sizes_zeroed_and_truncates() {
    let dir = tmp();
    let path = dir.path().join("c.i32");
    fs::write(&path, [0xffu8; 10_000]).unwrap();
    let mut c = unsafe { create_array::<i32>(&path, [1000, 24]) }.unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 96_000);
    assert_eq!(c.view().iter().filter(|&&x| x != 0).count(), 0);
    c.view_mut()[[999, 23]] = 5;
    c.close().unwrap();
    let a = unsafe { mmap_array::<i32>(&path, [-1, 24]) }.unwrap();
    assert_eq!(a.view()[[999, 23]], 5);
    assert_eq!(a.view().sum(), 5);
}

#[test]
fn create_with_offset_and_fortran_order() {
    let dir = tmp();
    let path = dir.path().join("c.f64");
    let mut c = unsafe {
        MapOptions::new()
            .offset(128)
            .order(Order::F)
            .create::<f64>(&path, [2, 3])
    }
    .unwrap();
    c.view_mut()[[1, 0]] = 1.0;
    c.close().unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 128 + 48);
    assert!(bytes[..128].iter().all(|&b| b == 0));
    assert_eq!(&bytes[136..144], &1.0f64.to_ne_bytes());
}

#[test]
fn create_new_refuses_an_existing_file() {
    let dir = tmp();
    let path = dir.path().join("x.u8");
    fs::write(&path, [1u8, 2, 3]).unwrap();
    let err = unsafe { MapOptions::new().create_new(true).create::<u8>(&path, [8]) }.unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
    );
    assert_msg(&err, &path, &["create"]);
    assert_eq!(fs::read(&path).unwrap(), [1, 2, 3]);
}

#[test]
fn create_refuses_a_mapped_file_and_leaves_it_alone() {
    let dir = tmp();
    let path = dir.path().join("x.f32");
    write_f32(&path, &seq(16));
    let before = fs::read(&path).unwrap();
    let a = unsafe { mmap_array::<f32>(&path, [-1]) }.unwrap();
    let err = unsafe { create_array::<f32>(&path, [4]) }.unwrap_err();
    assert!(matches!(
        err,
        Error::Locked {
            exclusive: true,
            ..
        }
    ));
    assert_msg(&err, &path, &["mapped elsewhere"]);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(a.view()[15], 15.0);
    a.close().unwrap();
    // once closed, creating works
    unsafe { create_array::<f32>(&path, [4]) }.unwrap();
}

type Attempt = Box<dyn Fn(&Path) -> Result<(), Error>>;

/// Each bad input, the error it must give, and words its message must contain.
#[test]
fn every_bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tmp();
    let path = dir.path().join("data.f32");
    write_f32(&path, &seq(250)); // 1000 bytes
    let odd = dir.path().join("odd.f32");
    fs::write(&odd, [0u8; 1001]).unwrap();
    let before = fs::read(&path).unwrap();
    let before_odd = fs::read(&odd).unwrap();

    let o = MapOptions::new();
    let cases: Vec<(&str, PathBuf, Attempt, Vec<&str>)> = vec![
        (
            "two -1",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [-1, -1]) }.map(drop)),
            vec!["[-1, -1]", "more than one -1"],
        ),
        (
            "negative",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [5, -2]) }.map(drop)),
            vec!["dimension 1 is -2"],
        ),
        (
            "not whole elements",
            odd.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [-1]) }.map(drop)),
            vec!["1001 bytes", "whole number of f32 (4 bytes each)"],
        ),
        (
            "not whole rows",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [-1, 24]) }.map(drop)),
            vec!["1000 bytes is not a whole number of rows of 24 f32 (96 bytes each)"],
        ),
        (
            "-1 with zero",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [0, -1]) }.map(drop)),
            vec!["dimension 1 (-1)", "multiply to 0"],
        ),
        (
            "too short",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [100, 3]) }.map(drop)),
            vec!["[100, 3]", "needs 1200 bytes", "1000 bytes are available"],
        ),
        (
            "element overflow",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [isize::MAX, 2]) }.map(drop)),
            vec!["overflows"],
        ),
        (
            "byte overflow",
            path.clone(),
            Box::new(move |p| unsafe { o.open::<f64>(p, [isize::MAX / 4]) }.map(drop)),
            vec!["overflows"],
        ),
        (
            "misaligned",
            path.clone(),
            Box::new(move |p| unsafe { o.offset(2).open::<f32>(p, [-1]) }.map(drop)),
            vec!["offset 2", "alignment of f32 (4 bytes)"],
        ),
        (
            "offset past end",
            path.clone(),
            Box::new(move |p| unsafe { o.offset(1004).open::<f32>(p, [-1]) }.map(drop)),
            vec!["offset 1004", "past the end", "1000 bytes"],
        ),
        (
            "len past end",
            path.clone(),
            Box::new(move |p| unsafe { o.offset(8).len(996).open::<f32>(p, [-1]) }.map(drop)),
            vec!["8..1004", "past the end"],
        ),
        (
            "len vs shape",
            path.clone(),
            Box::new(move |p| unsafe { o.len(400).open::<f32>(p, [10, 5]) }.map(drop)),
            vec!["needs 200 bytes", "400 bytes are available"],
        ),
        (
            "mut two -1",
            path.clone(),
            Box::new(move |p| unsafe { o.open_mut::<f32>(p, [-1, -1]) }.map(drop)),
            vec!["more than one -1"],
        ),
        (
            "mut too short",
            path.clone(),
            Box::new(move |p| unsafe { o.open_mut::<f32>(p, [1001]) }.map(drop)),
            vec!["needs 4004 bytes"],
        ),
        (
            "copy misaligned",
            path.clone(),
            Box::new(move |p| unsafe { o.offset(1).open_copy::<f32>(p, [-1]) }.map(drop)),
            vec!["offset 1"],
        ),
        (
            "create -1",
            path.clone(),
            Box::new(move |p| unsafe { o.create::<f32>(p, [-1, 4]) }.map(drop)),
            vec!["dimension 0 is -1", "every length"],
        ),
        (
            "create negative",
            path.clone(),
            Box::new(move |p| unsafe { o.create::<f32>(p, [4, -3]) }.map(drop)),
            vec!["dimension 1 is -3"],
        ),
        (
            "create overflow",
            path.clone(),
            Box::new(move |p| unsafe { o.create::<u64>(p, [isize::MAX, isize::MAX]) }.map(drop)),
            vec!["overflows"],
        ),
        (
            "create misaligned",
            path.clone(),
            Box::new(move |p| unsafe { o.offset(3).create::<u32>(p, [4]) }.map(drop)),
            vec!["offset 3"],
        ),
        (
            "missing",
            dir.path().join("nope.f32"),
            Box::new(move |p| unsafe { o.open::<f32>(p, [-1]) }.map(drop)),
            vec!["cannot open for reading"],
        ),
        (
            "directory",
            dir.path().to_path_buf(),
            Box::new(move |p| unsafe { o.open::<f32>(p, [-1]) }.map(drop)),
            vec!["directory"],
        ),
    ];
    for (name, p, attempt, parts) in &cases {
        let err = attempt(p).expect_err(name);
        assert_msg(&err, p, parts);
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::read(&odd).unwrap(), before_odd);
    assert!(!dir.path().join("nope.f32").exists());
}

#[test]
fn zero_sized_elements_are_refused() {
    let dir = tmp();
    let path = dir.path().join("z");
    fs::write(&path, [0u8; 4]).unwrap();
    let err = unsafe { mmap_array::<()>(&path, [-1]) }.unwrap_err();
    assert!(matches!(err, Error::ZeroSizedElement { .. }));
    assert!(err.to_string().contains("size 0"), "{err}");
}

#[cfg(unix)]
#[test]
fn devices_are_not_files() {
    let err = unsafe { mmap_array::<f32>("/dev/null", [-1]) }.unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }));
    assert_msg(&err, Path::new("/dev/null"), &["character device"]);
}

#[test]
fn shape_problem_is_inspectable() {
    let dir = tmp();
    let path = dir.path().join("a.f32");
    write_f32(&path, &seq(4));
    let err = unsafe { mmap_array::<f32>(&path, [-1, -1]) }.unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidShape {
            reason: ShapeProblem::SeveralInferred,
            ..
        }
    ));
    assert_eq!(err.path(), Some(path.as_path()));
}

#[test]
fn offset_and_len_map_part_of_a_file() {
    let dir = tmp();
    let path = dir.path().join("x.bin");
    let mut bytes = vec![0xAAu8; 128];
    for i in 0..700 {
        bytes.extend_from_slice(&f64::from(i).to_ne_bytes());
    }
    fs::write(&path, &bytes).unwrap();
    let part = unsafe {
        MapOptions::new()
            .offset(128)
            .len(4800)
            .order(Order::F)
            .open::<f64>(&path, [-1, 3])
    }
    .unwrap();
    assert_eq!(part.shape(), &[200, 3]);
    assert_eq!(part.view()[[0, 1]], 200.0);
    assert_eq!(part.view()[[199, 2]], 599.0);
    // offsets that are not page-aligned work for every aligned value
    for off in (0..64u64).step_by(8) {
        let a = unsafe { MapOptions::new().offset(128 + off).open::<f64>(&path, [-1]) }.unwrap();
        assert_eq!(a.view()[0], (off / 8) as f64);
    }
}

#[test]
fn hints_and_populate() {
    let dir = tmp();
    let path = dir.path().join("h.u8");
    fs::write(&path, vec![3u8; 10_000]).unwrap();
    for advice in [
        ndarray_mmap::Advice::Normal,
        ndarray_mmap::Advice::Sequential,
        ndarray_mmap::Advice::Random,
        ndarray_mmap::Advice::WillNeed,
    ] {
        let a = unsafe {
            MapOptions::new()
                .advise(advice)
                .populate(true)
                .open::<u8>(&path, [-1])
        }
        .unwrap();
        assert_eq!(a.view().iter().map(|&x| x as u64).sum::<u64>(), 30_000);
        let m = unsafe { MapOptions::new().advise(advice).open_mut::<u8>(&path, [-1]) }.unwrap();
        m.advise(advice).unwrap();
    }
}

#[test]
fn huge_sparse_file_opens_without_reading() {
    let dir = tmp();
    let path = dir.path().join("huge.f32");
    let f = fs::File::create(&path).unwrap();
    f.set_len(64 << 30).unwrap();
    drop(f);
    let a = unsafe { mmap_array::<f32>(&path, [-1, 1024]) }.unwrap();
    assert_eq!(a.shape(), &[(64 << 30) / 4096, 1024]);
    assert_eq!(a.view()[[12345, 7]], 0.0);
}

#[test]
fn debug_names_the_array() {
    let dir = tmp();
    let path = dir.path().join("d.u16");
    let c = unsafe { create_array::<u16>(&path, [2, 2]) }.unwrap();
    let s = format!("{c:?}");
    assert!(
        s.contains("MmapArrayMut") && s.contains("u16") && s.contains("[2, 2]"),
        "{s}"
    );
}

/// The smaller defects of the file-safety issue: each a clear error naming what is wrong.
#[test]
fn zero_sized_types_and_lengths_past_isize_max_are_named_errors() {
    let dir = tmp();
    let path = dir.path().join("z.bin");
    fs::write(&path, [0u8; 8]).unwrap();
    let err = unsafe { mmap_array::<()>(&path, [-1]) }.unwrap_err();
    assert!(matches!(err, Error::ZeroSizedElement { .. }), "{err}");
    assert_msg(&err, &path, &["size 0"]);
    let err = unsafe { create_array::<()>(&path, [1]) }.unwrap_err();
    assert_msg(&err, &path, &["size 0"]);
    // A Dim length above isize::MAX is refused, not saturated into another shape.
    let err = unsafe { create_array::<u8>(&path, IxDyn(&[usize::MAX, 0])) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidShape {
                reason: ndarray_mmap::ShapeProblem::TooLong { axis: 0 },
                ..
            }
        ),
        "{err}"
    );
    assert_msg(&err, &path, &["dimension 0", "isize::MAX"]);
    // A zero axis beside axes whose product overflows: ndarray's rule, a shape error.
    let err = unsafe { create_array::<u8>(&path, [0, isize::MAX, 2]) }.unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), [0u8; 8]);
}

/// Shapes as ndarray users hold them: usize arrays, another array's `shape()`, tuples,
/// `Vec<usize>`, unsuffixed literals, and `-1` where inferring.
#[test]
fn shapes_of_usize_tuples_and_literals() {
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);
    let n: usize = 1000;
    let a = unsafe { create_array::<f32>(p("a.f32"), [n, 24]) }.unwrap();
    let b = unsafe { create_array::<f32>(p("b.f32"), a.shape()) }.unwrap();
    let c = unsafe { create_array::<f32>(p("c.f32"), (n, 24)) }.unwrap();
    let d = unsafe { create_array::<f32>(p("d.f32"), vec![n, 24]) }.unwrap();
    let e = unsafe { create_array::<i32>(p("e.i32"), [1000, 24]) }.unwrap();
    let z = unsafe { create_array::<i32>(p("z.i32"), ()) }.unwrap();
    for s in [a.shape(), b.shape(), c.shape(), d.shape(), e.shape()] {
        assert_eq!(s, &[1000, 24]);
    }
    assert_eq!(z.shape(), &[] as &[usize]);
    a.close().unwrap();
    let f = unsafe { mmap_array::<f32>(p("a.f32"), [-1, 24]) }.unwrap();
    assert_eq!(f.shape(), &[1000, 24]);
    let g = unsafe { mmap_array::<f32>(p("a.f32"), (500, 48)) }.unwrap();
    assert_eq!(g.shape(), &[500, 48]);
    // A usize length past isize::MAX is refused by axis, not wrapped into a negative.
    let err = unsafe { create_array::<u8>(p("h.u8"), [1, usize::MAX]) }.unwrap_err();
    assert!(err.to_string().contains("dimension 1"), "{err}");
    assert!(!p("h.u8").exists());
}

/// The typed owners and ndarray's own Order, as the API issue spells them.
#[test]
fn typed_owners_and_ndarrays_order() {
    use ndarray::{Ix1, Ix2, Order};
    use ndarray_mmap::{MmapArray, MmapArrayMut, write_npy};
    let dir = tmp();
    let p = |name: &str| dir.path().join(name);
    let a = unsafe { create_array::<f32>(p("a.f32"), [1000usize, 24]) }.unwrap();
    a.close().unwrap();
    let m = unsafe { MmapArray::<f32, Ix2>::open(p("a.f32"), [-1, 24]) }.unwrap();
    let v: ndarray::ArrayView2<f32> = m.view();
    let row: ndarray::ArrayView1<f32> = v.row(3);
    assert_eq!(row.len(), 24);
    assert!(matches!(
        unsafe { MmapArray::<f32, Ix1>::open(p("a.f32"), [-1, 24]) },
        Err(Error::Dimensionality {
            expected: 1,
            found: 2,
            ..
        })
    ));
    fs::write(p("w.f64"), [0u8; 64]).unwrap();
    let mut w = unsafe { MmapArrayMut::<f64, Ix1>::open(p("w.f64"), [-1]) }.unwrap();
    w.view_mut()[7] = 2.0;
    let mut z = unsafe { MmapArrayMut::<i32, Ix2>::create(p("z.i32"), (1000, 24)) }.unwrap();
    z.view_mut()[[999, 23]] = 1;
    // The wrong rank is refused before a file is made.
    assert!(unsafe { MmapArrayMut::<i32, Ix1>::create(p("n.i32"), (2, 2)) }.is_err());
    assert!(!p("n.i32").exists());
    let y = unsafe { MmapArrayMut::<f32, Ix2>::create_npy(p("y.npy"), (10, 3)) }.unwrap();
    y.close().unwrap();
    let x = unsafe { MmapArray::<f32, Ix2>::open_npy(p("y.npy")) }.unwrap();
    assert_eq!(x.view().dim(), (10, 3));
    assert!(unsafe { MmapArray::<f32, Ix1>::open_npy(p("y.npy")) }.is_err());
    fs::write(p("x.bin"), [0u8; 48]).unwrap();
    let g = unsafe {
        MapOptions::new()
            .order(Order::F)
            .open::<f64>(p("x.bin"), [-1, 3])
    }
    .unwrap();
    assert_eq!(g.view().strides(), &[1, 2]);
    write_npy(p("out.npy"), &ndarray::Array2::<f64>::zeros((3, 4))).unwrap();
    assert_eq!(
        ndarray_mmap::NpyHeader::from_path(p("out.npy"))
            .unwrap()
            .shape(),
        &[3, 4]
    );
}
