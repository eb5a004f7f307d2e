//! The Zarr hand-off, both ways, against real zarr-python 3 and dask (feature `zarr`):
//! arrays zarr-python and dask write (uncompressed) map here chunk by chunk with the right
//! values, edge chunks and missing (fill) chunks included; arrays written here read in
//! zarr-python and dask, and a 2-process dask cluster sums them to what `ops` gives.
//! Without zarr and dask each test prints a SKIPPED line, or fails under
//! `NDARRAY_MMAP_REQUIRE_NUMPY=1` (set by `.ci/run`, which pip-installs them).
#![cfg(all(feature = "zarr", not(miri)))]

use std::path::Path;
use std::process::Command;

use crate::python::{can_import, python};
use ndarray::{ArrayD, IxDyn};
use ndarray_mmap::ops;
use ndarray_mmap::{Error, ZarrProblem, open_npy, zarr};

/// Whether zarr 3 and dask import (see [`can_import`]).
fn available(test: &str) -> bool {
    can_import(
        test,
        "import zarr, dask.array, dask.distributed; assert int(zarr.__version__.split('.')[0]) >= 3",
        "zarr 3 with dask",
        "'zarr>=3' 'dask[array,distributed]'",
    )
}

/// Runs a script file (dask's worker processes need an importable main module).
fn run(dir: &Path, script: &str, args: &[&str]) -> String {
    let file = dir.join("script.py");
    std::fs::write(&file, script).unwrap();
    let out = Command::new(python())
        .arg(&file)
        .args(args)
        .current_dir(dir)
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

/// Assembles a whole array from its chunks, as the mapping sees them.
fn assemble<T: ndarray_mmap::Element + Default>(z: &zarr::ZarrArray<T>) -> ArrayD<T> {
    let mut all = ArrayD::from_elem(IxDyn(z.shape()), T::default());
    for idx in z.chunk_indices() {
        let region = z.region(&idx).unwrap();
        let c = z.chunk(&idx).unwrap();
        all.slice_each_axis_mut(|d| ndarray::Slice::from(region[d.axis.index()].clone()))
            .assign(&c.view());
    }
    all
}

#[test]
fn what_zarr_python_and_dask_write_maps_chunk_by_chunk() {
    if !available("what_zarr_python_and_dask_write_maps_chunk_by_chunk") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run(
        tmp.path(),
        r#"
import numpy as np, zarr, dask.array as da, warnings
warnings.simplefilter("ignore")
if __name__ == "__main__":
    a = (np.arange(10 * 7, dtype=np.float32) * 0.5 - 3).reshape(10, 7)
    z = zarr.create_array("f32.zarr", shape=a.shape, chunks=(4, 3), dtype="float32", compressors=None, fill_value=0)
    z[:] = a
    np.save("f32.npy", a)
    # only two chunks written: the rest stay missing and read as the fill value -1
    i = zarr.create_array("i32.zarr", shape=(5, 5), chunks=(2, 2), dtype="int32", compressors=None, fill_value=-1)
    i[0:2, 0:2] = 7
    i[4:5, 4:5] = 9
    np.save("i32.npy", i[...])
    d = (da.arange(3 * 11, chunks=5, dtype="float64") * 1.5).reshape(3, 11).rechunk((2, 4))
    d.to_zarr("dask.zarr", compressors=None)
    np.save("dask.npy", d.compute())
    zarr.create_array("zstd.zarr", shape=(4,), chunks=(2,), dtype="float32")[:] = 1
"#,
        &[],
    );
    let p = |n: &str| tmp.path().join(n);
    let z = unsafe { zarr::open::<f32>(p("f32.zarr")) }.unwrap();
    let want = unsafe { open_npy::<f32>(p("f32.npy")) }.unwrap();
    assert_eq!((z.grid(), z.chunk_shape()), (vec![3, 3], &[4, 3][..]));
    assert_eq!(assemble(&z), want.view());
    assert_eq!(z.chunk(&[2, 2]).unwrap().view().shape(), &[2, 1]);

    let i = unsafe { zarr::open::<i32>(p("i32.zarr")) }.unwrap();
    assert_eq!(i.fill_value(), -1);
    assert!(i.chunk(&[1, 1]).unwrap().is_fill());
    assert!(!i.chunk(&[0, 0]).unwrap().is_fill());
    let want = unsafe { open_npy::<i32>(p("i32.npy")) }.unwrap();
    assert_eq!(assemble(&i), want.view());

    let d = unsafe { zarr::open::<f64>(p("dask.zarr")) }.unwrap();
    let want = unsafe { open_npy::<f64>(p("dask.npy")) }.unwrap();
    assert_eq!(assemble(&d), want.view());

    // zarr-python's default compressor: read (decoded into buffers); written by streams
    // (each chunk encoded whole), never mapped for writing.
    let z = unsafe { zarr::open::<f32>(p("zstd.zarr")) }.unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 4.0);
    let mut w = unsafe { zarr::open_mut::<f32>(p("zstd.zarr")) }.unwrap();
    let err = w.chunk_mut(&[0]).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    ops::map_inplace(&mut w, |x: f32| x + 1.0).unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 8.0);
    let err = unsafe { zarr::open::<f64>(p("f32.zarr")) }.unwrap_err();
    assert!(err.to_string().contains("\"float32\""), "{err}");
}

#[test]
fn what_we_write_reads_in_zarr_python_and_a_dask_cluster() {
    if !available("what_we_write_reads_in_zarr_python_and_a_dask_cluster") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let shape = [9usize, 13];
    let value_a = |i: usize, j: usize| (i * 13 + j) as f32;
    let value_b = |i: usize, j: usize| (i as f32) * 0.5 - j as f32;
    let mut a = unsafe { zarr::create::<f32>(p("a.zarr"), &shape, &[4, 5]) }.unwrap();
    let mut b = unsafe { zarr::create::<f32>(p("b.zarr"), &shape, &[4, 5]) }.unwrap();
    for idx in a.chunk_indices() {
        let r = a.region(&idx).unwrap();
        let mut ca = a.chunk_mut(&idx).unwrap();
        let mut cb = b.chunk_mut(&idx).unwrap();
        for ((k, x), y) in ca
            .view_mut()
            .indexed_iter_mut()
            .zip(cb.view_mut().iter_mut())
        {
            let (i, j) = (r[0].start + k[0], r[1].start + k[1]);
            *x = value_a(i, j);
            *y = value_b(i, j);
        }
        ca.flush().unwrap();
        cb.flush().unwrap();
    }
    // c = a + b with ops::add_into over the whole arrays, and its sum with ops.
    let (ra, rb) = unsafe {
        (
            zarr::open::<f32>(p("a.zarr")),
            zarr::open::<f32>(p("b.zarr")),
        )
    };
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    // (c's chunks differ from a's and b's: the engine streams across both grids)
    let mut c = unsafe { zarr::create::<f32>(p("c.zarr"), &shape, &[3, 13]) }.unwrap();
    ops::add_into(&ra, &rb, &mut c).unwrap();
    c.flush().unwrap();
    let total = ops::sum(&c).unwrap();
    let out = run(
        tmp.path(),
        r#"
import sys, numpy as np, zarr, dask.array as da, warnings
warnings.simplefilter("ignore")
if __name__ == "__main__":
    i, j = np.meshgrid(np.arange(9), np.arange(13), indexing="ij")
    a = (i * 13 + j).astype(np.float32)
    b = (i.astype(np.float32) * 0.5 - j).astype(np.float32)
    assert (zarr.open_array("a.zarr")[...] == a).all()
    assert (da.from_zarr("b.zarr").compute() == b).all()
    assert (zarr.open_array("c.zarr")[...] == a + b).all()
    from dask.distributed import LocalCluster, Client
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cl, Client(cl):
        s = (da.from_zarr("a.zarr").astype("f8") + da.from_zarr("b.zarr")).sum().compute()
    print(repr(float(s)))
"#,
        &[],
    );
    let dask_sum: f64 = out.trim().parse().unwrap();
    assert_eq!(dask_sum, total, "dask's (a + b).sum() against ours");
}

#[test]
fn sharded_arrays_map_inner_chunk_by_inner_chunk_and_write_in_place() {
    if !available("sharded_arrays_map_inner_chunk_by_inner_chunk_and_write_in_place") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = r#"
import sys, numpy as np, zarr, warnings
warnings.simplefilter("ignore")
if __name__ == "__main__":
    if sys.argv[1] == "write":
        x = np.arange(10 * 7, dtype="i4").reshape(10, 7)
        s = zarr.create_array("s.zarr", shape=(10, 7), chunks=(2, 3), shards=(4, 6), dtype="i4",
                              compressors=None, fill_value=-1)
        s[0:8, :] = x[0:8]          # the shards of rows 8..10 are never written
        s[0:2, 0:3] = -1            # an inner chunk of fill values: not stored
        np.save("s.npy", s[...])
        zarr.create_array("z.zarr", shape=(8,), chunks=(2,), shards=(4,), dtype="i4")[:] = 1
    else:
        print(int(zarr.open_array("s.zarr")[2:4, 0:3].sum()))
"#;
    run(tmp.path(), script, &["write"]);
    let p = |n: &str| tmp.path().join(n);
    let z = unsafe { zarr::open::<i32>(p("s.zarr")) }.unwrap();
    assert_eq!(
        (z.shard_shape(), z.chunk_shape(), z.grid()),
        (Some(&[4, 6][..]), &[2, 3][..], vec![5, 3])
    );
    let want = unsafe { open_npy::<i32>(p("s.npy")) }.unwrap();
    assert_eq!(assemble(&z), want.view());
    assert!(z.chunk(&[0, 0]).unwrap().is_fill()); // not in its shard
    assert!(z.chunk(&[4, 1]).unwrap().is_fill()); // no shard file
    assert!(!z.chunk(&[1, 0]).unwrap().is_fill());
    // Whole-array streaming over the inner chunks.
    let total: i64 = want.view().iter().map(|&x| i64::from(x)).sum();
    assert_eq!(ops::sum(&z).unwrap(), total);
    drop(z);
    // In place: an inner chunk the shard holds; zarr-python reads the new values.
    let mut w = unsafe { zarr::open_mut::<i32>(p("s.zarr")) }.unwrap();
    w.chunk_mut(&[1, 0]).unwrap().view_mut().fill(5);
    w.flush().unwrap();
    assert_eq!(run(tmp.path(), script, &["read"]).trim(), "30");
    // One the shard does not hold: a clear error, nothing changed.
    let err = w.chunk_mut(&[0, 0]).unwrap_err();
    assert!(err.to_string().contains("shards=None"), "{err}");
    let mut out = unsafe { zarr::create::<i32>(p("o.zarr"), &[10, 7], &[5, 7]) }.unwrap();
    ops::map_into(&w, &mut out, |x: i32| x * 2).unwrap();
    let err = ops::map_into(&out, &mut w, |x: i32| x).unwrap_err();
    assert!(err.to_string().contains("shards=None"), "{err}");
    drop(w);
    // A damaged index is named.
    let shard = p("s.zarr").join("c").join("0").join("0");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let z = unsafe { zarr::open::<i32>(p("s.zarr")) }.unwrap();
    let err = z.chunk(&[1, 0]).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Zarr {
                problem: ZarrProblem::ShardIndex { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("crc32c"), "{err}");
    // Compressed inner chunks (zarr-python's default): read, decoded into buffers.
    let z = unsafe { zarr::open::<i32>(p("z.zarr")) }.unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 8);
}

/// Arrays as zarr-python, dask and numpy users write them (zarr-python's defaults: zstd,
/// and sharding with compressed inner chunks; gzip; a crc32c; big-endian `bytes`; every
/// type of element) read here with every value equal, bit for bit, and stream through
/// `ops` like mapped arrays. Damaged chunks are errors that name the chunk and the codec.
#[test]
fn compressed_arrays_as_zarr_python_writes_them_read_bit_for_bit() {
    if !available("compressed_arrays_as_zarr_python_writes_them_read_bit_for_bit") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run(
        tmp.path(),
        r#"
import numpy as np, zarr, dask.array as da, warnings
from zarr.codecs import BytesCodec, ZstdCodec, GzipCodec, Crc32cCodec, TransposeCodec
warnings.simplefilter("ignore")
if __name__ == "__main__":
    rng = np.random.default_rng(7)
    smooth = np.sin(np.arange(37 * 23) / 50.0).reshape(37, 23).astype("f8")
    counts = rng.poisson(3.0, size=(37, 23)).astype("i4")
    def save(name, a, **kw):
        z = zarr.create_array(name + ".zarr", shape=a.shape, dtype=a.dtype, chunks=(8, 5), **kw)
        z[:] = a
        np.save(name + ".npy", z[...].astype(a.dtype.newbyteorder("=")))  # .npy: native order
    save("default_f8", smooth, fill_value=0)                              # zstd (the default)
    save("default_i4", counts, fill_value=-1)
    save("gzip_f4", smooth.astype("f4"), compressors=GzipCodec(level=6), fill_value=0)
    save("crc_i4", counts, compressors=[ZstdCodec(level=1), Crc32cCodec()], fill_value=0)
    save("big_f8", smooth, serializer=BytesCodec(endian="big"), compressors=ZstdCodec(), fill_value=0)
    save("big_u2", counts.astype(">u2"), serializer=BytesCodec(endian="big"), compressors=None, fill_value=0)
    save("big_c8", (smooth + 1j * smooth[::-1]).astype(">c8"), serializer=BytesCodec(endian="big"), compressors=ZstdCodec(), fill_value=0)
    save("fortran_f4", smooth.astype("f4"), filters=[TransposeCodec(order=(1, 0))], fill_value=0)
    from zarr.codecs import BloscCodec
    save("blosc_lz4_f4", smooth.astype("f4"), compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), fill_value=0)
    save("blosc_zstd_i4", counts, compressors=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"), fill_value=0)
    save("blosc_zlib_f8", smooth, compressors=BloscCodec(cname="zlib", clevel=1, shuffle="noshuffle"), fill_value=0)
    save("sharded_i4", counts, shards=(16, 10), fill_value=0)             # inner zstd, index crc32c
    z = zarr.create_array("partial.zarr", shape=(37, 23), dtype="f8", chunks=(8, 5), fill_value=2.5)
    z[0:8, 0:5] = smooth[0:8, 0:5]                                        # the rest: missing
    np.save("partial.npy", z[...])
    d = da.from_array(smooth, chunks=(10, 6))
    d.to_zarr("dask.zarr")                                                # dask's defaults
    np.save("dask.npy", smooth)
"#,
        &[],
    );
    let p = |n: &str| tmp.path().join(n);
    fn check<T>(dir: &Path, name: &str)
    where
        T: ndarray_mmap::Element + ndarray_mmap::ops::Numeric + Default,
        T::Sum: num_traits::ToPrimitive,
    {
        let z = unsafe { zarr::open::<T>(dir.join(format!("{name}.zarr"))) }.unwrap();
        let want = unsafe { open_npy::<T>(dir.join(format!("{name}.npy"))) }.unwrap();
        let got = assemble(&z);
        let same = got
            .iter()
            .zip(want.view().iter())
            .all(|(a, b)| bytemuck::bytes_of(a) == bytemuck::bytes_of(b));
        assert!(
            same && got.shape() == want.view().shape(),
            "{name}: values differ"
        );
        // Whole-array streams over decoded chunks, against the same sum in memory (floats
        // add in the chunks' order: equal to rounding).
        let f = |s: T::Sum| num_traits::ToPrimitive::to_f64(&s).unwrap();
        let (s, w) = (f(ops::sum(&z).unwrap()), f(ops::sum(&want.view()).unwrap()));
        assert!(
            (s - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{name}: sums {s} and {w}"
        );
    }
    // Complex numbers in the other byte order: each part swapped, not the whole element.
    let z = unsafe { zarr::open::<num_complex::Complex<f32>>(p("big_c8.zarr")) }.unwrap();
    let want = unsafe { open_npy::<num_complex::Complex<f32>>(p("big_c8.npy")) }.unwrap();
    assert_eq!(
        assemble(&z),
        want.view().into_dyn(),
        "big_c8: values differ"
    );
    check::<f64>(tmp.path(), "default_f8");
    check::<i32>(tmp.path(), "default_i4");
    check::<f32>(tmp.path(), "gzip_f4");
    check::<i32>(tmp.path(), "crc_i4");
    check::<f64>(tmp.path(), "big_f8");
    check::<u16>(tmp.path(), "big_u2");
    check::<f32>(tmp.path(), "fortran_f4");
    check::<f32>(tmp.path(), "blosc_lz4_f4");
    check::<i32>(tmp.path(), "blosc_zstd_i4");
    check::<f64>(tmp.path(), "blosc_zlib_f8");
    check::<i32>(tmp.path(), "sharded_i4");
    check::<f64>(tmp.path(), "partial");
    check::<f64>(tmp.path(), "dask");
    // A decoded array is an operand like any other: added into a mapped Zarr output.
    let a = unsafe { zarr::open::<f64>(p("default_f8.zarr")) }.unwrap();
    let b = unsafe { zarr::open::<f64>(p("dask.zarr")) }.unwrap();
    let mut c = unsafe { zarr::create::<f64>(p("c.zarr"), [37, 23], [8, 23]) }.unwrap();
    ops::add_into(&a, &b, &mut c).unwrap();
    let smooth = unsafe { open_npy::<f64>(p("dask.npy")) }.unwrap();
    assert_eq!(
        assemble(&unsafe { zarr::open::<f64>(p("c.zarr")) }.unwrap()),
        smooth.view().mapv(|x| 2.0 * x)
    );
    // Damage: a flipped byte in a crc32c chunk, a truncated zstd chunk, a chunk grown past
    // what zstd can make of it: each an error naming the codec, nothing panics.
    let chunk = p("crc_i4.zarr").join("c").join("1").join("1");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[3] ^= 0x40;
    std::fs::write(&chunk, &bytes).unwrap();
    let z = unsafe { zarr::open::<i32>(p("crc_i4.zarr")) }.unwrap();
    let err = z.chunk(&[1, 1]).unwrap_err();
    assert!(
        matches!(&err, Error::Zarr { problem: ZarrProblem::Decode { .. }, path, .. } if path == &chunk)
            && err.to_string().contains("crc32c"),
        "{err}"
    );
    assert!(ops::sum(&z).is_err());
    let chunk = p("default_f8.zarr").join("c").join("0").join("0");
    let bytes = std::fs::read(&chunk).unwrap();
    std::fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
    let err = unsafe { zarr::open::<f64>(p("default_f8.zarr")) }
        .unwrap()
        .chunk(&[0, 0])
        .unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
    std::fs::write(&chunk, vec![0u8; 8 * 8 * 5 * 2 + 4096]).unwrap();
    let err = unsafe { zarr::open::<f64>(p("default_f8.zarr")) }
        .unwrap()
        .chunk(&[0, 0])
        .unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

/// A bounded stream over a sharded array drops the pages it brought in, although its
/// read-ahead runs from one inner chunk into the next of the same shard file (each inner
/// chunk used to record the pages read ahead into it as cached before the stream: 98%
/// of the shards stayed cached).
#[cfg(target_os = "linux")]
#[test]
fn bounded_streams_over_shards_drop_what_they_brought_in() {
    use crate::page_cache::{drop_file, resident};
    if !available("bounded_streams_over_shards_drop_what_they_brought_in") {
        return;
    }
    // On the disk: a tmpfs (often /tmp) keeps its pages in the page cache for good.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = r#"
import numpy as np, zarr, warnings
warnings.simplefilter("ignore")
if __name__ == "__main__":
    n = 8 << 20  # 32 MiB of i4 in 2 shards of 16 MiB, inner chunks of 256 KiB
    s = zarr.create_array("s.zarr", shape=(n,), chunks=(1 << 16,), shards=(4 << 20,),
                          dtype="i4", compressors=None)
    s[:] = np.arange(n, dtype="i4") % 1000
"#;
    run(tmp.path(), script, &[]);
    let shards: Vec<_> = (0..2)
        .map(|i| tmp.path().join(format!("s.zarr/c/{i}")))
        .collect();
    let cached = || {
        shards
            .iter()
            .map(|p| resident(p))
            .fold((0, 0), |(r, a), (res, all)| (r + res, a + all))
    };
    let z = unsafe { zarr::open::<i32>(tmp.path().join("s.zarr")) }.unwrap();
    let want: i64 = (0..8i64 << 20).map(|i| i % 1000).sum();
    for chunk in [64usize << 10, 8 << 20] {
        shards.iter().for_each(|p| drop_file(p));
        let (res, all) = cached();
        assert!(
            res * 20 < all,
            "eviction did not work here: {res} of {all} pages cached"
        );
        let opts = ops::StreamOptions::new()
            .chunk_bytes(chunk)
            .paging(ops::Paging::Bounded);
        assert_eq!(ops::sum_with(&z, opts).unwrap(), want);
        let (res, all) = cached();
        assert!(
            res * 10 < all,
            "{chunk}-byte chunks: {res} of {all} pages of the shards still cached"
        );
    }
}

#[test]
fn a_fill_value_and_fortran_chunks_we_write_read_in_zarr_python() {
    if !available("a_fill_value_and_fortran_chunks_we_write_read_in_zarr_python") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let opts = zarr::CreateOptions::new()
        .fill_value(f32::NAN)
        .order(ndarray_mmap::Order::F);
    let mut w = unsafe { opts.create(p("f.zarr"), [5, 4], [2, 3]) }.unwrap();
    let mut c = w.chunk_mut(&[1, 1]).unwrap(); // rows 2..4, column 3
    for ((i, j), x) in c
        .view_mut()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter_mut()
    {
        *x = (10 * i + j) as f32;
    }
    drop(c);
    w.flush().unwrap();
    let i16s = zarr::CreateOptions::new().fill_value(-7i16);
    drop(unsafe { i16s.create(p("i.zarr"), [3], [2]) }.unwrap());
    let out = run(
        tmp.path(),
        r#"
import numpy as np, zarr, warnings
warnings.simplefilter("ignore")
if __name__ == "__main__":
    f = zarr.open_array("f.zarr")[...]
    assert np.isnan(f[0:2]).all() and np.isnan(f[4]).all() and np.isnan(f[2:4, 0:3]).all(), f
    assert (f[2:4, 3] == [0, 10]).all(), f
    i = zarr.open_array("i.zarr")
    assert (i[...] == -7).all() and i.fill_value == -7
    print("ok")
"#,
        &[],
    );
    assert_eq!(out.trim(), "ok");
}

/// Hostile metadata and layouts, without Python: each is a clear `Err`, fast, and nothing
/// changes.
#[test]
fn hostile_arrays_are_clear_errors_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h.zarr");
    std::fs::create_dir(&dir).unwrap();
    let json = |shape: &str, chunk: &str, extra: &str| {
        format!(
            r#"{{"zarr_format": 3, "node_type": "array", "shape": {shape}, "data_type": "uint8",
            "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": {chunk}}}}},
            "chunk_key_encoding": {{"name": "default"}}, "fill_value": 7,
            "codecs": [{{"name": "bytes"}}]{extra}}}"#
        )
    };
    let put = |s: String| std::fs::write(dir.join("zarr.json"), s).unwrap();
    // A chunk too large to map is refused at open, not when a missing chunk is read.
    put(json("[9223372036854775808]", "[9223372036854775808]", ""));
    assert!(matches!(
        unsafe { zarr::open::<u8>(&dir) },
        Err(Error::Zarr {
            problem: ZarrProblem::Shape { .. },
            ..
        })
    ));
    // A huge missing chunk reads as the fill value without allocating it.
    put(json("[1099511627776]", "[1099511627776]", ""));
    let z = unsafe { zarr::open::<u8>(&dir) }.unwrap();
    let c = z.chunk(&[0]).unwrap();
    assert!(c.is_fill());
    assert_eq!((c.view().len(), c.view()[12345]), (1 << 40, 7));
    // Extensions: refused unless they say they may be ignored; attributes are user data.
    put(json("[4]", "[2]", r#", "foo": {"bar": 1}"#));
    assert!(matches!(
        unsafe { zarr::open::<u8>(&dir) },
        Err(Error::Zarr {
            problem: ZarrProblem::MustUnderstand { .. },
            ..
        })
    ));
    put(json(
        "[4]",
        "[2]",
        r#", "foo": {"must_understand": false}, "attributes": {"must_understand": true}"#,
    ));
    assert!(unsafe { zarr::open::<u8>(&dir) }.is_ok());
    // A chunk path that is a directory is named as such.
    std::fs::create_dir_all(dir.join("c").join("0")).unwrap();
    let err = z_open(&dir).chunk(&[0]).unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }), "{err}");
    // create over an existing array: refused, nothing replaced.
    let before = std::fs::read(dir.join("zarr.json")).unwrap();
    let err = unsafe { zarr::create::<u8>(&dir, &[8], &[4]) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Zarr {
                problem: ZarrProblem::Exists,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("zarr.json")).unwrap(), before);
    // zarr.json as a FIFO: refused at once instead of blocking.
    #[cfg(unix)]
    {
        let fifo = tmp.path().join("f.zarr");
        std::fs::create_dir(&fifo).unwrap();
        let p = std::ffi::CString::new(fifo.join("zarr.json").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            unsafe { zarr::open::<u8>(&fifo) },
            Err(Error::NotAFile { .. })
        ));
    }
}

fn z_open(dir: &Path) -> zarr::ZarrArray<u8> {
    unsafe { zarr::open::<u8>(dir) }.unwrap()
}

/// Compressed arrays we write (zstd and gzip, C and Fortran chunks, a fill value, some
/// chunks never written) read in zarr-python with every value equal, and zarr-python
/// reports the codecs we wrote.
#[test]
fn compressed_arrays_we_write_read_in_zarr_python() {
    if !available("compressed_arrays_we_write_read_in_zarr_python") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    let a = ndarray::Array::from_shape_fn((37, 23), |(i, j)| (i * 23 + j) as f64 * 0.25 - 7.0)
        .into_dyn();
    for (name, comp, order) in [
        ("z", zarr::Compressor::zstd(3), ndarray_mmap::Order::C),
        ("g", zarr::Compressor::gzip(6), ndarray_mmap::Order::F),
        (
            "b",
            zarr::Compressor::blosc(zarr::BloscName::Lz4, 5, zarr::Shuffle::Byte),
            ndarray_mmap::Order::C,
        ),
        (
            "bz",
            zarr::Compressor::blosc(zarr::BloscName::Zstd, 3, zarr::Shuffle::Bit),
            ndarray_mmap::Order::F,
        ),
    ] {
        let mut w = unsafe {
            zarr::CreateOptions::new()
                .fill_value(f64::NAN)
                .order(order)
                .compressor(comp)
                .create(p(&format!("{name}.zarr")), [37, 23], [8, 5])
        }
        .unwrap();
        ops::map_into(&a, &mut w, |x| x * 2.0).unwrap();
    }
    // One more, written in part: the chunks of rows 16.. are never written (a cancel).
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .fill_value(f64::NAN)
            .compressor(zarr::Compressor::zstd(1))
            .create(p("part.zarr"), [37, 23], [8, 23])
    }
    .unwrap();
    let opts = ops::StreamOptions::new()
        .chunk_bytes(8 * 23 * 8)
        .progress(|q| match q.done >= 2 * 8 * 23 * 8 {
            true => std::ops::ControlFlow::Break(()),
            false => std::ops::ControlFlow::Continue(()),
        });
    assert!(ops::map_into_with(&a, &mut w, |x| x, opts).is_err());
    let out = run(
        tmp.path(),
        r#"
import numpy as np, zarr
if __name__ == "__main__":
    for name in ("z", "g", "b", "bz", "part"):
        z = zarr.open_array(name + ".zarr")
        np.save(name + ".npy", z[...])
        print(name, [type(c).__name__ for c in z.compressors], z.fill_value)
"#,
        &[],
    );
    assert!(
        out.contains("z ['ZstdCodec'] nan") && out.contains("g ['GzipCodec'] nan"),
        "{out}"
    );
    assert!(
        out.contains("b ['BloscCodec'] nan") && out.contains("bz ['BloscCodec'] nan"),
        "{out}"
    );
    for name in ["z", "g", "b", "bz"] {
        let got = unsafe { open_npy::<f64>(p(&format!("{name}.npy"))) }.unwrap();
        assert_eq!(got.view(), a.mapv(|x| x * 2.0), "{name}");
    }
    let got = unsafe { open_npy::<f64>(p("part.npy")) }.unwrap();
    let v = got.view();
    assert!(
        v.slice_each_axis(|d| match d.axis.index() {
            0 => ndarray::Slice::from(0..16),
            _ => ndarray::Slice::from(..),
        }) == a.slice_each_axis(|d| match d.axis.index() {
            0 => ndarray::Slice::from(0..16),
            _ => ndarray::Slice::from(..),
        })
    );
    assert!(v.iter().skip(16 * 23).all(|x| x.is_nan()));
}
