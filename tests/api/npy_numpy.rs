//! Interop with real numpy, both ways: files numpy writes are mapped here with the right
//! values, and files written here are loaded by `np.load(..., mmap_mode='r')` with the
//! right dtype, shape, order and values, and byte-for-byte the header numpy writes.
//!
//! Needs `python3` with numpy (`python3 -m pip install numpy`; `PYTHON` picks another
//! interpreter). Without numpy each test prints a SKIPPED line to stderr and passes,
//! unless `NDARRAY_MMAP_REQUIRE_NUMPY=1` (set by `.ci/run`), which makes it fail.
#![cfg(not(miri))]

use std::path::Path;
use std::process::Command;

use crate::python::{can_import, python};
use ndarray::{ArrayD, IxDyn};
use ndarray_mmap::{
    Element, Error, MapOptions, NpyHeader, NpyProblem, Order, open_npy, open_npy_mut,
};

/// Whether numpy can be imported (see [`can_import`]).
fn numpy_available(test: &str) -> bool {
    can_import(test, "import numpy", "numpy", "numpy")
}

/// Runs a Python script with `args`; panics with its output unless it succeeds.
fn run_python(script: &str, args: &[&Path]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value at C-order index `k` of every test array, the same formula on both sides:
/// `(arange(n, int64) * 37 - 11).astype(dt)` (wrapping) for integers,
/// `arange(n, float64) * 0.25 - 3` for floats.
trait Gen: Element + std::fmt::Debug + PartialEq {
    fn make(k: usize) -> Self;
}

macro_rules! gen_int {
    ($($t:ty),*) => {$(
        impl Gen for $t {
            fn make(k: usize) -> Self {
                (k as i64).wrapping_mul(37).wrapping_sub(11) as $t
            }
        }
    )*};
}
gen_int!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Gen for f32 {
    fn make(k: usize) -> Self {
        (k as f64 * 0.25 - 3.0) as f32
    }
}

impl Gen for f64 {
    fn make(k: usize) -> Self {
        k as f64 * 0.25 - 3.0
    }
}

fn expected<T: Gen>(shape: &[usize]) -> ArrayD<T> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(T::make).collect()).unwrap()
}

/// Calls `$f::<T>($args)` with `T` chosen by a numpy type code.
macro_rules! by_code {
    ($code:expr, $f:ident ( $($arg:expr),* )) => {
        match $code {
            "i1" => $f::<i8>($($arg),*),
            "i2" => $f::<i16>($($arg),*),
            "i4" => $f::<i32>($($arg),*),
            "i8" => $f::<i64>($($arg),*),
            "u1" => $f::<u8>($($arg),*),
            "u2" => $f::<u16>($($arg),*),
            "u4" => $f::<u32>($($arg),*),
            "u8" => $f::<u64>($($arg),*),
            "f4" => $f::<f32>($($arg),*),
            "f8" => $f::<f64>($($arg),*),
            other => panic!("unknown type code {other}"),
        }
    };
}

const CODES: [&str; 10] = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"];

const SHAPES: [&[usize]; 9] = [
    &[],
    &[0],
    &[7],
    &[0, 3],
    &[3, 0],
    &[3, 4],
    &[2, 3, 4],
    &[2, 1, 3, 5],
    &[1, 1, 1, 1, 2],
];

/// numpy writes every dtype × shape × order × version and lists what it wrote.
const NUMPY_WRITES: &str = r#"
import sys, os, numpy as np
out = sys.argv[1]
codes = sys.argv[2].split(',')
shapes = [tuple(int(d) for d in s.split('x')) if s else () for s in sys.argv[3].split(',')]
lines = []
for code in codes:
    dt = np.dtype(code)
    for shape in shapes:
        n = int(np.prod(shape, dtype=np.int64))
        if dt.kind == 'f':
            flat = (np.arange(n, dtype=np.float64) * 0.25 - 3).astype(dt)
        else:
            flat = (np.arange(n, dtype=np.int64) * 37 - 11).astype(dt)
        a = flat.reshape(shape)
        for order in 'CF':
            arr = np.array(a, order=order)  # asfortranarray would make a 0-d array 1-d
            for version in [(1, 0), (2, 0), (3, 0)]:
                name = '%s_%s_%s_v%d.npy' % (code, 'x'.join(map(str, shape)) or 'scalar', order, version[0])
                with open(os.path.join(out, name), 'wb') as f:
                    np.lib.format.write_array(f, arr, version=version)
                # numpy's rule (header_data_from_array_1_0): C-contiguous wins
                fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
                lines.append('%s %s %s %s %d' % (name, code, 'x'.join(map(str, shape)), 'F' if fortran else 'C', version[0]))
print('\n'.join(lines))
"#;

fn shape_arg(shapes: &[&[usize]]) -> String {
    shapes
        .iter()
        .map(|s| {
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_shape(s: &str) -> Vec<usize> {
    if s.is_empty() {
        return vec![];
    }
    s.split('x').map(|d| d.parse().unwrap()).collect()
}

fn check_numpy_file<T: Gen>(path: &Path, shape: &[usize], fortran: bool, version: u8) {
    let h = NpyHeader::from_path(path).unwrap();
    assert_eq!(h.version(), (version, 0), "{}", path.display());
    assert_eq!(h.shape(), shape);
    assert_eq!(h.fortran_order(), fortran);
    assert_eq!(h.data_offset() % 64, 0);

    let a = unsafe { open_npy::<T>(path) }.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.shape(), shape, "{}", path.display());
    assert_eq!(a.order(), if fortran { Order::F } else { Order::C });
    assert_eq!(a.view(), expected::<T>(shape).view(), "{}", path.display());
    // and through the other entry points
    let c = unsafe { MapOptions::new().open_npy_copy::<T>(path) }.unwrap();
    assert_eq!(c.view(), a.view());
    let m = unsafe { MapOptions::new().open_npy_mut::<T>(path) };
    drop(a);
    drop(c);
    assert_eq!(m.unwrap().view(), expected::<T>(shape).view());
}

#[test]
fn numpy_files_map_with_the_right_values() {
    if !numpy_available("numpy_files_map_with_the_right_values") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let listing = Command::new(python())
        .arg("-c")
        .arg(NUMPY_WRITES)
        .arg(tmp.path())
        .arg(CODES.join(","))
        .arg(shape_arg(&SHAPES))
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = String::from_utf8(listing.stdout).unwrap();
    let mut count = 0;
    let mut fortran_seen = 0;
    for line in listing.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (name, code, shape, order, version) = (f[0], f[1], f[2], f[3], f[4]);
        let shape = parse_shape(shape);
        let fortran = order == "F";
        fortran_seen += usize::from(fortran);
        let version: u8 = version.parse().unwrap();
        by_code!(
            code,
            check_numpy_file(&tmp.path().join(name), &shape, fortran, version)
        );
        count += 1;
    }
    // every dtype × shape × order × version, and numpy did write Fortran headers
    assert_eq!(count, CODES.len() * SHAPES.len() * 2 * 3);
    assert!(fortran_seen >= CODES.len() * 3 * 3, "{fortran_seen}");
}

fn write_rust_file<T: Gen>(path: &Path, shape: &[usize], order: Order) {
    let spec: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    let mut w = unsafe { MapOptions::new().order(order).create_npy::<T>(path, &spec) }.unwrap();
    w.view_mut().assign(&expected::<T>(shape));
    w.close().unwrap();
}

/// numpy loads every file Rust wrote and checks it; prints one line per file.
const NUMPY_READS: &str = r#"
import sys, io, os, numpy as np
out = sys.argv[1]
ok = 0
for line in open(os.path.join(out, 'manifest.txt')).read().split('\n'):
    if not line:
        continue
    name, code, shape, order = line.split(' ')
    shape = tuple(int(d) for d in shape.split('x')) if shape else ()
    path = os.path.join(out, name)
    a = np.load(path, mmap_mode='r')
    assert isinstance(a, np.memmap), (name, type(a))
    dt = np.dtype(code)
    assert a.dtype == dt and a.dtype.str == dt.str, (name, a.dtype.str, dt.str)
    assert a.shape == shape, (name, a.shape, shape)
    n = int(np.prod(shape, dtype=np.int64))
    if dt.kind == 'f':
        flat = (np.arange(n, dtype=np.float64) * 0.25 - 3).astype(dt)
    else:
        flat = (np.arange(n, dtype=np.int64) * 37 - 11).astype(dt)
    want = flat.reshape(shape)
    assert np.array_equal(a, want), (name, a, want)
    if order == 'F':
        assert a.flags.f_contiguous, name
    else:
        assert a.flags.c_contiguous, name
    # the header is byte for byte what numpy writes for this dict (version 1.0)
    with open(path, 'rb') as f:
        raw = f.read()
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {'descr': dt.str, 'fortran_order': order == 'F', 'shape': shape})
    head = buf.getvalue()
    assert raw[:len(head)] == head, (name, raw[:len(head)], head)
    assert len(raw) == len(head) + a.nbytes, (name, len(raw), len(head), a.nbytes)
    # and numpy's own save of the same array is identical, header and data
    if order == 'C' or len(shape) >= 2 and sum(1 for d in shape if d > 1) >= 2:
        buf = io.BytesIO()
        np.save(buf, np.array(want, order=order))
        assert raw == buf.getvalue(), name
    del a
    ok += 1
print(ok)
"#;

#[test]
fn numpy_loads_files_written_here() {
    if !numpy_available("numpy_loads_files_written_here") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut manifest = String::new();
    let mut count = 0;
    for code in CODES {
        for shape in SHAPES {
            for order in [Order::C, Order::F] {
                let o = if order == Order::C { "C" } else { "F" };
                let dims = shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("x");
                let name = format!(
                    "{code}_{}_{o}.npy",
                    if dims.is_empty() { "scalar" } else { &dims }
                );
                by_code!(code, write_rust_file(&tmp.path().join(&name), shape, order));
                manifest.push_str(&format!("{name} {code} {dims} {o}\n"));
                count += 1;
            }
        }
    }
    std::fs::write(tmp.path().join("manifest.txt"), manifest).unwrap();
    let out = run_python(NUMPY_READS, &[tmp.path()]);
    assert_eq!(out.trim(), count.to_string());
}

#[test]
fn writes_are_shared_both_ways_while_mapped() {
    if !numpy_available("writes_are_shared_both_ways_while_mapped") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("shared.npy");
    run_python(
        "import sys, numpy as np; np.save(sys.argv[1], np.arange(12, dtype=np.float64).reshape(3, 4))",
        &[&path],
    );
    let mut m = unsafe { open_npy_mut::<f64>(&path) }.unwrap();
    assert_eq!(m.view()[[2, 3]], 11.0);
    m.view_mut()[[1, 1]] = -1.5;
    m.flush().unwrap();
    // numpy maps the file while this map is alive, sees the write, and writes back
    run_python(
        "import sys, numpy as np\n\
         a = np.load(sys.argv[1], mmap_mode='r+')\n\
         assert a[1, 1] == -1.5, a\n\
         a[0, 0] = 42.0\n\
         a.flush()",
        &[&path],
    );
    assert_eq!(m.view()[[0, 0]], 42.0);
    m.close().unwrap();
}

#[test]
fn numpy_dtypes_that_cannot_be_mapped_are_clear_errors() {
    if !numpy_available("numpy_dtypes_that_cannot_be_mapped_are_clear_errors") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run_python(
        r#"
import sys, os, numpy as np
d = sys.argv[1]
np.save(os.path.join(d, 'big.npy'), np.arange(4, dtype='>i4'))
np.save(os.path.join(d, 'obj.npy'), np.array([1, 'a', None], dtype=object), allow_pickle=True)
np.save(os.path.join(d, 'rec.npy'), np.zeros(3, dtype='i4,f8'))
np.save(os.path.join(d, 'str.npy'), np.array(['ab', 'c']))
np.save(os.path.join(d, 'bool.npy'), np.array([True, False, True]))
np.save(os.path.join(d, 'c8.npy'), np.zeros(2, dtype=np.complex64))
np.save(os.path.join(d, 'f2.npy'), np.zeros(2, dtype=np.float16))
np.save(os.path.join(d, 'dt.npy'), np.zeros(2, dtype='M8[ns]'))
"#,
        &[tmp.path()],
    );
    let problem = |name: &str, err: Error| -> NpyProblem {
        let msg = err.to_string();
        assert!(msg.contains(name), "the message names the file: {msg}");
        match err {
            Error::Npy { problem, .. } => problem,
            other => panic!("{name}: {other:?}"),
        }
    };
    let p = |name: &str| tmp.path().join(name);
    let e = unsafe { open_npy::<i32>(p("big.npy")) }.unwrap_err();
    let msg = e.to_string();
    if cfg!(target_endian = "little") {
        assert!(msg.contains("'>i4'") && msg.contains("byte order"), "{msg}");
        assert!(matches!(
            problem("big.npy", e),
            NpyProblem::UnsupportedDtype { .. }
        ));
    }
    let e = unsafe { open_npy::<u64>(p("obj.npy")) }.unwrap_err();
    assert!(e.to_string().contains("'|O'"), "{e}");
    assert!(matches!(
        problem("obj.npy", e),
        NpyProblem::UnsupportedDtype { .. }
    ));
    let e = unsafe { open_npy::<f64>(p("rec.npy")) }.unwrap_err();
    assert!(e.to_string().contains("structured"), "{e}");
    let e = unsafe { open_npy::<u8>(p("str.npy")) }.unwrap_err();
    assert!(e.to_string().contains("string"), "{e}");
    // bools map as u8 only
    let b = unsafe { open_npy::<u8>(p("bool.npy")) }.unwrap();
    assert_eq!(b.as_bytes(), &[1, 0, 1]);
    assert!(unsafe { open_npy::<i8>(p("bool.npy")) }.is_err());
    for (name, asked) in [("c8.npy", "f32"), ("f2.npy", "u16")] {
        let e = if asked == "f32" {
            unsafe { open_npy::<f32>(p(name)) }.unwrap_err()
        } else {
            unsafe { open_npy::<u16>(p(name)) }.unwrap_err()
        };
        assert!(
            matches!(problem(name, e), NpyProblem::DtypeMismatch { elem, .. } if elem == asked),
            "{name}"
        );
    }
    let e = unsafe { open_npy::<i64>(p("dt.npy")) }.unwrap_err();
    assert!(e.to_string().contains("datetime"), "{e}");
    // a type mismatch on a good file names both descriptors
    run_python(
        "import sys, numpy as np; np.save(sys.argv[1], np.zeros((2, 2), dtype=np.float64))",
        &[&p("f8.npy")],
    );
    let e = unsafe { open_npy::<f32>(p("f8.npy")) }.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(f64::NPY_DESCR) && msg.contains(f32::NPY_DESCR),
        "{msg}"
    );
}

/// The README's ".npy and numpy" round trip, as written there.
#[test]
fn readme_round_trip() {
    if !numpy_available("readme_round_trip") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (x_path, y_path) = (tmp.path().join("x.npy"), tmp.path().join("y.npy"));
    run_python(
        "import sys, numpy as np\n\
         np.save(sys.argv[1], np.arange(12, dtype=np.float32).reshape(3, 4))",
        &[&x_path],
    );
    let x = unsafe { open_npy::<f32>(&x_path) }.unwrap();
    assert_eq!(x.view().sum(), 66.0);
    let h = NpyHeader::from_path(&x_path).unwrap();
    assert_eq!((h.descr(), h.shape()), (f32::NPY_DESCR, &[3, 4][..]));

    let mut y = unsafe {
        MapOptions::new()
            .order(Order::F)
            .create_npy::<i64>(&y_path, [1000, 3])
    }
    .unwrap()
    .into_dimensionality::<ndarray::Ix2>()
    .unwrap();
    y.view_mut().column_mut(2).fill(7);
    y.close().unwrap();
    run_python(
        "import sys, numpy as np\n\
         y = np.load(sys.argv[1], mmap_mode='r')\n\
         assert isinstance(y, np.memmap)\n\
         assert y.dtype == np.int64 and y.shape == (1000, 3) and y.flags.f_contiguous\n\
         assert (y[:, 2] == 7).all() and (y[:, :2] == 0).all()",
        &[&y_path],
    );
}

/// One call from an in-memory array to a `.npy` numpy loads: C order, Fortran order (as
/// numpy writes an F-contiguous array), any other layout, 0-d and empty.
#[test]
fn write_npy_writes_what_numpy_loads() {
    use ndarray::{Array2, Array3, ShapeBuilder, s};
    if !numpy_available("write_npy_writes_what_numpy_loads") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let c = Array2::from_shape_fn((3, 4), |(i, j)| (i * 10 + j) as f64);
    let f = Array3::from_shape_fn((2, 3, 4).f(), |(i, j, k)| (i * 100 + j * 10 + k) as i32);
    type Write<'a> = Box<dyn Fn(&Path) -> Result<(), Error> + 'a>;
    let cases: Vec<(&str, Write, &str)> = vec![
        (
            "c.npy",
            Box::new(|p| ndarray_mmap::write_npy(p, &c)),
            "a = np.load(p); assert not np.isfortran(a) and (a == np.arange(4) + 10 * np.arange(3)[:, None]).all()",
        ),
        (
            "f.npy",
            Box::new(|p| ndarray_mmap::write_npy(p, &f)),
            "a = np.load(p); assert np.isfortran(a) and a.shape == (2, 3, 4) and a[1, 2, 3] == 123 and a[0, 1, 2] == 12",
        ),
        (
            "v.npy",
            Box::new(|p| ndarray_mmap::write_npy(p, &c.slice(s![..;2, ..;-1]))),
            "a = np.load(p); assert a.tolist() == [[3.0, 2.0, 1.0, 0.0], [23.0, 22.0, 21.0, 20.0]]",
        ),
        (
            "z.npy",
            Box::new(|p| ndarray_mmap::write_npy(p, &ndarray::arr0(7u16))),
            "a = np.load(p); assert a.shape == () and a == 7",
        ),
        (
            "e.npy",
            Box::new(|p| ndarray_mmap::write_npy(p, &Array2::<f32>::zeros((0, 3)))),
            "a = np.load(p); assert a.shape == (0, 3) and a.dtype == np.float32",
        ),
    ];
    for (name, write, check) in cases {
        let path = tmp.path().join(name);
        write(&path).unwrap();
        run_python(
            &format!("import sys\nimport numpy as np\np = sys.argv[1]\n{check}\n"),
            &[&path],
        );
    }
    // Our own reader agrees, and a raw map of a .npy is refused by name.
    let path = tmp.path().join("f.npy");
    let back = unsafe { open_npy::<i32>(&path) }.unwrap();
    assert_eq!(back.view(), f.view().into_dyn());
    let err = unsafe { ndarray_mmap::mmap_array::<i32>(&path, [-1]) }.unwrap_err();
    assert!(matches!(err, Error::IsNpy { .. }), "{err}");
    assert!(err.to_string().contains("open_npy"), "{err}");
    let raw = unsafe { MapOptions::new().offset(0).open::<u8>(&path, [-1]) }.unwrap();
    assert_eq!(&raw.as_bytes()[..6], b"\x93NUMPY");
}

/// numpy's complex64 / complex128 (and float16 with the `half` feature) map with their
/// values, and what we write numpy reads back.
#[test]
fn complex_and_half_precision_both_ways() {
    use num_complex::Complex;
    if !numpy_available("complex_and_half_precision_both_ways") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    run_python(
        "import sys, numpy as np\n\
         z = (np.arange(6) + 1j * (np.arange(6) * 10)).reshape(2, 3)\n\
         np.save(sys.argv[1], z.astype(np.complex64)); np.save(sys.argv[2], z.astype(np.complex128))\n\
         np.save(sys.argv[3], np.array([0.5, -2.0, 65504.0], dtype=np.float16))",
        &[&p("c8.npy"), &p("c16.npy"), &p("f2.npy")],
    );
    let a = unsafe { open_npy::<Complex<f32>>(p("c8.npy")) }.unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(a.view()[[1, 2]], Complex::new(5.0, 50.0));
    let b = unsafe { open_npy::<Complex<f64>>(p("c16.npy")) }.unwrap();
    assert_eq!(b.view()[[0, 1]], Complex::new(1.0, 10.0));
    assert!(unsafe { open_npy::<Complex<f64>>(p("c8.npy")) }.is_err());
    let out = ndarray::arr1(&[Complex::new(1.5f64, -2.0), Complex::new(0.0, 3.0)]);
    ndarray_mmap::write_npy(p("w.npy"), &out).unwrap();
    run_python(
        "import sys, numpy as np; a = np.load(sys.argv[1]); assert a.dtype == np.complex128 and a.tolist() == [1.5-2j, 3j]",
        &[&p("w.npy")],
    );
    #[cfg(feature = "half")]
    {
        let h = unsafe { open_npy::<half::f16>(p("f2.npy")) }.unwrap();
        let v: Vec<f32> = h.view().iter().map(|x| x.to_f32()).collect();
        assert_eq!(v, vec![0.5, -2.0, 65504.0]);
    }
    #[cfg(not(feature = "half"))]
    assert!(unsafe { open_npy::<u16>(p("f2.npy")) }.is_err());
}
