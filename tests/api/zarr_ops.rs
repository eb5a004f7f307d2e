//! Whole Zarr arrays as operands of `ops::Zip` and of every `ops` function (feature
//! `zarr`): streamed chunk by chunk, mixed with raw maps and arrays in memory, against
//! ndarray's own results over random shapes, chunk grids (different per operand), C and
//! Fortran chunks, missing chunks (the fill value), chunk sizes and paging policies.
#![cfg(all(feature = "zarr", not(miri)))]

use std::ops::ControlFlow;
use std::path::Path;

use ndarray::{Array, ArrayD, Axis, IxDyn, ShapeBuilder, Slice};
use ndarray_mmap::ops::{self, Paging, StreamOptions, Zip};
use ndarray_mmap::{Error, MapOptions, Order, ZarrProblem, zarr};
use proptest::prelude::*;

/// Values that differ everywhere, from a seed.
fn values(shape: &[usize], seed: u64) -> ArrayD<i32> {
    let mut x = seed | 1;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2001) as i32 - 1000
    })
}

/// A Zarr array at `dir/name` holding `a` in chunks of `chunk`, its chunks in Fortran
/// order when `fortran` (a reversing `transpose` codec), with fill value `fill`; the
/// chunks flagged in `missing` (in chunk-index order, cycled) have no file, so they read
/// as `fill`, which `a` is changed to match there.
fn zarr_with(
    dir: &Path,
    name: &str,
    a: &mut ArrayD<i32>,
    chunk: &[usize],
    fortran: bool,
    fill: i32,
    missing: &[bool],
) -> zarr::ZarrArrayMut<i32> {
    let path = dir.join(name);
    drop(unsafe { zarr::create::<i32>(&path, a.shape(), chunk) }.unwrap());
    let json_path = path.join("zarr.json");
    let mut json = std::fs::read_to_string(&json_path).unwrap();
    json = json.replace("\"fill_value\": 0", &format!("\"fill_value\": {fill}"));
    if fortran && a.ndim() > 1 {
        let order: Vec<String> = (0..a.ndim()).rev().map(|k| k.to_string()).collect();
        json = json.replace(
            "\"codecs\": [",
            &format!(
                "\"codecs\": [{{\"name\": \"transpose\", \"configuration\": {{\"order\": [{}]}}}}, ",
                order.join(", ")
            ),
        );
    }
    std::fs::write(&json_path, json).unwrap();
    let mut w = unsafe { zarr::open_mut::<i32>(&path) }.unwrap();
    for (k, idx) in w
        .chunk_indices()
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        let region = w.region(&idx).unwrap();
        let mut part = a.slice_each_axis_mut(|d| Slice::from(region[d.axis.index()].clone()));
        if !missing.is_empty() && missing[k % missing.len()] {
            let file = chunk_file(&path, &idx);
            if file.exists() {
                std::fs::remove_file(file).unwrap();
            }
            part.fill(fill);
        } else {
            w.chunk_mut(&idx).unwrap().view_mut().assign(&part);
        }
    }
    w
}

fn chunk_file(array: &Path, idx: &[usize]) -> std::path::PathBuf {
    let mut p = array.join("c");
    p.extend(idx.iter().map(usize::to_string));
    p
}

/// The whole array, read chunk by chunk.
fn assemble(z: &zarr::ZarrArrayMut<i32>) -> ArrayD<i32> {
    let mut all = ArrayD::zeros(IxDyn(z.shape()));
    for idx in z.chunk_indices() {
        let region = z.region(&idx).unwrap();
        all.slice_each_axis_mut(|d| Slice::from(region[d.axis.index()].clone()))
            .assign(&z.chunk(&idx).unwrap().view());
    }
    all
}

/// A raw mapped file holding `a`, in C or Fortran order.
fn raw_with(
    dir: &Path,
    name: &str,
    a: &ArrayD<i32>,
    fortran: bool,
) -> ndarray_mmap::MmapArrayMut<i32> {
    let order = if fortran { Order::F } else { Order::C };
    let mut m = unsafe {
        MapOptions::new()
            .order(order)
            .create::<i32>(dir.join(name), a.shape())
    }
    .unwrap();
    m.view_mut().assign(a);
    m
}

fn chunk_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 3)
}

fn formula(d: i32, a: i32, b: i32, c: i32, e: i32) -> i32 {
    d.wrapping_mul(3)
        .wrapping_add(a.wrapping_mul(2))
        .wrapping_sub(b)
        .wrapping_add(c.wrapping_mul(5))
        .wrapping_add(e)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `d = f(d, a, b, c, e)` with a Zarr output, two Zarr inputs on other grids, a raw
    /// map and an array in memory; then a fold over the same operands.
    #[test]
    fn zip_over_zarr_arrays_matches_ndarray(
        shape in prop::collection::vec(0usize..9, 1..4),
        grids in prop::collection::vec(chunk_shape(), 3),
        fortran in prop::collection::vec(any::<bool>(), 4),
        missing in prop::collection::vec(any::<bool>(), 1..5),
        bounded in any::<bool>(),
        chunk_bytes in 4usize..200,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let n = shape.len();
        let grid = |k: usize| grids[k][..n].to_vec();
        let mut a = values(&shape, seed);
        let mut b = values(&shape, seed ^ 1);
        let c = values(&shape, seed ^ 2);
        // in memory, in Fortran layout
        let e = values(&shape, seed ^ 3).reversed_axes().as_standard_layout().into_owned().reversed_axes();
        let mut d0 = values(&shape, seed ^ 4);
        let za = zarr_with(dir.path(), "a.zarr", &mut a, &grid(0), fortran[0], 7, &missing);
        drop(zarr_with(dir.path(), "b.zarr", &mut b, &grid(1), fortran[1], -3, &[]));
        let zb = unsafe { zarr::open::<i32>(dir.path().join("b.zarr")) }.unwrap();
        let rc = raw_with(dir.path(), "c.raw", &c, fortran[2]);
        // The output's missing chunks read as its fill value before and are created.
        let mut zd = zarr_with(dir.path(), "d.zarr", &mut d0, &grid(2), fortran[3], 1, &missing);
        let mut want = d0.clone();
        ndarray::Zip::from(&mut want).and(&a).and(&b).and(&c).and(&e)
            .for_each(|d, &a, &b, &c, &e| *d = formula(*d, a, b, c, e));
        let paging = if bounded { Paging::Bounded } else { Paging::Cached };
        let opts = || StreamOptions::new().chunk_bytes(chunk_bytes).paging(paging).write_through(chunk_bytes % 3 == 0).read_through(chunk_bytes % 2 == 0);
        Zip::from(&mut zd).and(&za).and(&zb).and(&rc).and(&e).with(opts())
            .for_each(|d, &a, &b, &c, &e| *d = formula(*d, a, b, c, e)).unwrap();
        prop_assert_eq!(assemble(&zd), want.clone());
        // Only written (map_assign_into): under Bounded, dense pieces go through pwrite.
        let mut zw = zarr_with(dir.path(), "w.zarr", &mut values(&shape, seed ^ 5), &grid(1), fortran[0], 4, &missing);
        Zip::from(&za).and(&zb).and(&rc).and(&e).with(opts())
            .map_assign_into(&mut zw, |&a, &b, &c, &e| formula(0, a, b, c, e)).unwrap();
        let mut want_w = ArrayD::<i32>::zeros(IxDyn(&shape));
        ndarray::Zip::from(&mut want_w).and(&a).and(&b).and(&c).and(&e)
            .for_each(|w, &a, &b, &c, &e| *w = formula(0, a, b, c, e));
        prop_assert_eq!(assemble(&zw), want_w.clone());
        // What reached the chunk files, through a new handle.
        drop(zw);
        let zw = unsafe { zarr::open_mut::<i32>(dir.path().join("w.zarr")) }.unwrap();
        prop_assert_eq!(assemble(&zw), want_w);
        // Reading a Zarr array written by the stream, and folding across grids.
        let dot = Zip::from(&zd).and(&za).and(&rc).with(opts())
            .fold(0i64, |s, &d, &a, &c| s + i64::from(d) * i64::from(a) - i64::from(c)).unwrap();
        let mut want_dot = 0i64;
        ndarray::Zip::from(&want).and(&a).and(&c)
            .for_each(|&d, &a, &c| want_dot += i64::from(d) * i64::from(a) - i64::from(c));
        prop_assert_eq!(dot, want_dot);
        drop(za);
    }

    /// Every `ops` function takes Zarr arrays: elementwise into a Zarr or raw output, in
    /// place, reductions whole and along each axis.
    #[test]
    fn ops_functions_take_zarr_arrays(
        shape in prop::collection::vec(1usize..8, 1..4),
        grids in prop::collection::vec(chunk_shape(), 2),
        fortran in any::<bool>(),
        missing in prop::collection::vec(any::<bool>(), 1..4),
        chunk_bytes in 4usize..200,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let n = shape.len();
        let mut a = values(&shape, seed);
        let mut b = values(&shape, seed ^ 5);
        let za = zarr_with(dir.path(), "a.zarr", &mut a, &grids[0][..n], fortran, 2, &missing);
        let zb = zarr_with(dir.path(), "b.zarr", &mut b, &grids[1][..n], false, 0, &[]);
        let opts = || StreamOptions::new().chunk_bytes(chunk_bytes);

        let mut zc = zarr_with(dir.path(), "c.zarr", &mut ArrayD::zeros(IxDyn(&shape)), &grids[1][..n], !fortran, 0, &[true]);
        ops::add_into_with(&za, &zb, &mut zc, opts()).unwrap();
        let sum = &a.mapv(i64::from) + &b.mapv(i64::from);
        prop_assert_eq!(assemble(&zc).mapv(i64::from), sum.mapv(|x| x as i32 as i64));
        // Into a raw map, and a row broadcast from memory.
        let row = values(&shape[n - 1..], seed ^ 6);
        let mut raw = raw_with(dir.path(), "r.raw", &ArrayD::zeros(IxDyn(&shape)), false);
        ops::mul_into(&za, &row, &mut raw).unwrap();
        prop_assert_eq!(raw.view().to_owned(), &a * &row);
        // In place on a Zarr array, from a raw map.
        ops::sub_assign(&mut zc, &raw).unwrap();
        let want_c = &(&a + &b) - &(&a * &row);
        prop_assert_eq!(assemble(&zc), want_c.clone());
        ops::map_inplace(&mut zc, |x: i32| x.wrapping_mul(2)).unwrap();
        prop_assert_eq!(assemble(&zc), want_c.mapv(|x| x.wrapping_mul(2)));
        // Reductions.
        prop_assert_eq!(ops::sum(&za).unwrap(), a.iter().map(|&x| i64::from(x)).sum::<i64>());
        prop_assert_eq!(ops::min(&za).unwrap(), a.iter().copied().min());
        prop_assert_eq!(ops::max(&zc).unwrap(), assemble(&zc).iter().copied().max());
        let mean = ops::mean(&za).unwrap().unwrap();
        prop_assert!((mean - a.mapv(f64::from).mean().unwrap()).abs() < 1e-9);
        for ax in 0..n {
            let s = ops::sum_axis_with(&za, Axis(ax), opts()).unwrap();
            prop_assert_eq!(s, a.mapv(i64::from).sum_axis(Axis(ax)));
            let m = ops::max_axis(&za, Axis(ax)).unwrap();
            prop_assert_eq!(m, a.fold_axis(Axis(ax), i32::MIN, |&m, &x| m.max(x)));
        }
    }
}

#[test]
fn a_zarr_array_streams_in_place_through_a_second_handle() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = values(&[9, 10], 11);
    drop(zarr_with(
        dir.path(),
        "a.zarr",
        &mut a,
        &[4, 3],
        false,
        0,
        &[],
    ));
    let path = dir.path().join("a.zarr");
    let r = unsafe { zarr::open::<i32>(&path) }.unwrap();
    let mut w = unsafe { zarr::open_mut::<i32>(&path) }.unwrap();
    // Each element is read before it is written, as for one array in place.
    Zip::from(&mut w)
        .and(&r)
        .with(StreamOptions::new().chunk_bytes(8))
        .for_each(|w, &r| *w = r * 10 + 1)
        .unwrap();
    assert_eq!(assemble(&w), a.mapv(|x| x * 10 + 1));
    // Two writable views of one array are never right.
    let mut w2 = unsafe { zarr::open_mut::<i32>(&path) }.unwrap();
    let err = Zip::from(&mut w)
        .and(&mut w2)
        .for_each(|_, _| ())
        .unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
}

#[test]
fn shape_errors_come_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = values(&[6, 5], 3);
    let za = zarr_with(dir.path(), "a.zarr", &mut a, &[4, 4], false, 0, &[]);
    let mut out = ArrayD::zeros(IxDyn(&[6, 5]));
    let mut zd = zarr_with(dir.path(), "d.zarr", &mut out, &[2, 2], false, 0, &[true]);
    let d_path = dir.path().join("d.zarr");
    let wrong = Array::<i32, _>::zeros((6, 4));
    let err = ops::add_into(&za, &wrong, &mut zd).unwrap_err();
    assert!(matches!(err, Error::Broadcast { .. }), "{err}");
    let err = Zip::from(&mut zd)
        .and(&wrong)
        .for_each(|_, _| ())
        .unwrap_err();
    assert!(matches!(err, Error::Broadcast { .. }), "{err}");
    // A Zarr array is not broadcast.
    let row_path = dir.path().join("row.zarr");
    let row = unsafe { zarr::create::<i32>(&row_path, &[5], &[2]) }.unwrap();
    let err = Zip::from(&mut zd)
        .and_broadcast(&row)
        .for_each(|_, _| ())
        .unwrap_err();
    assert!(matches!(err, Error::Broadcast { .. }), "{err}");
    // No chunk file was created for the output.
    assert!(!chunk_file(&d_path, &[0, 0]).exists());
    // ops::chunks wants views; it names the way for a Zarr array.
    let err = ops::chunks(&za, Axis(0), 2).unwrap_err();
    assert!(
        matches!(&err, Error::Zarr { problem: ZarrProblem::Unsupported { .. }, path, .. } if path.ends_with("a.zarr")),
        "{err}"
    );
    assert!(err.to_string().contains("chunk_indices"), "{err}");
}

#[test]
fn a_cancelled_stream_keeps_the_chunks_done_and_reports_progress_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = values(&[40, 8], 5);
    let za = zarr_with(dir.path(), "a.zarr", &mut a, &[10, 8], false, 0, &[]);
    let mut out = ArrayD::zeros(IxDyn(&[40, 8]).f());
    let mut zd = zarr_with(dir.path(), "d.zarr", &mut out, &[10, 8], false, 0, &[]);
    let mut seen = Vec::new();
    let opts = StreamOptions::new().chunk_bytes(320).progress(|p| {
        seen.push(p.done);
        if p.done >= 640 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = ops::map_into_with(&za, &mut zd, |x: i32| x + 1, opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                done: 640,
                total: 1280,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(seen, [320, 640]);
    let got = assemble(&zd);
    let rows = |v: &ArrayD<i32>| {
        v.slice_each_axis(|d| {
            if d.axis.index() == 0 {
                Slice::from(0..20)
            } else {
                Slice::from(..)
            }
        })
        .to_owned()
    };
    assert_eq!(rows(&got), rows(&a.mapv(|x| x + 1)));
    assert!(
        got.slice_each_axis(|d| if d.axis.index() == 0 {
            Slice::from(20..)
        } else {
            Slice::from(..)
        })
        .iter()
        .all(|&x| x == 0)
    );
}

fn seq(shape: &[usize]) -> ArrayD<i32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n as i32).collect()).unwrap()
}

/// Every file of the array's directory.
fn files(array: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![array.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Every file's bytes, to tell that a failed call changed nothing.
fn snapshot(array: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files(array)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn a_broadcast_input_on_an_output_chunk_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.zarr");
    let mut a = seq(&[3, 4]);
    let mut b = zarr_with(dir.path(), "b.zarr", &mut a, &[1, 4], false, 0, &[]);
    let before = snapshot(&p);
    // row 1 of b, mapped raw, added to every row of b: the row changes half-way
    let row =
        unsafe { MapOptions::new().open::<i32>(chunk_file(&p, &[1, 0]), [1usize, 4]) }.unwrap();
    let err = ops::add_assign(&mut b, &row).unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    // a later chunk, as a broadcast row: refused before row 0 is written
    let row = unsafe { MapOptions::new().open::<i32>(chunk_file(&p, &[2, 0]), [4usize]) }.unwrap();
    let err = Zip::from(&mut b)
        .and_broadcast(&row)
        .for_each(|y, &r| *y = r + 100)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Aliased { path: Some(f), .. } if f.ends_with("c/2/0")),
        "{err}"
    );
    // the same from the chunk itself
    let c = b.chunk(&[0, 0]).unwrap();
    assert!(
        Zip::from(&mut b)
            .and_broadcast(&c)
            .for_each(|_, _| ())
            .is_err()
    );
    drop(c);
    assert_eq!(snapshot(&p), before);
    // a raw writable map of a one-chunk array's chunk file, with the array as an input:
    // refused (the safe side) before anything is written
    let mut one = seq(&[1, 4]);
    drop(zarr_with(
        dir.path(),
        "one.zarr",
        &mut one,
        &[1, 4],
        false,
        0,
        &[],
    ));
    let q = dir.path().join("one.zarr");
    let before = snapshot(&q);
    let mut raw =
        unsafe { MapOptions::new().open_mut::<i32>(chunk_file(&q, &[0, 0]), [1usize, 4]) }.unwrap();
    let z = unsafe { zarr::open::<i32>(&q) }.unwrap();
    let err = Zip::from(&mut raw)
        .and(&z)
        .for_each(|r, &x| *r = x + 1)
        .unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    assert_eq!(snapshot(&q), before);
}

#[test]
fn a_bad_chunk_further_on_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = seq(&[4, 4]);
    drop(zarr_with(
        dir.path(),
        "a.zarr",
        &mut a,
        &[2, 4],
        false,
        0,
        &[],
    ));
    let pa = dir.path().join("a.zarr");
    std::fs::write(chunk_file(&pa, &[1, 0]), [0u8; 5]).unwrap();
    let a = unsafe { zarr::open::<i32>(&pa) }.unwrap();
    let pd = dir.path().join("d.zarr");
    let mut d = unsafe { zarr::create::<i32>(&pd, &[4, 4], &[2, 4]) }.unwrap();
    std::fs::remove_file(chunk_file(&pd, &[0, 0])).unwrap();
    let before = snapshot(&pd);
    let err = ops::map_into(&a, &mut d, |x: i32| x + 1).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Zarr {
                problem: ZarrProblem::ChunkSize { found: 5, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        snapshot(&pd),
        before,
        "the output changed (or a chunk was created)"
    );
    // an output chunk that cannot be created (a file where its directory should be)
    let good = unsafe { zarr::create::<i32>(dir.path().join("g.zarr"), &[4, 4], &[2, 4]) }.unwrap();
    let pe = dir.path().join("e.zarr");
    let mut e = unsafe { zarr::create::<i32>(&pe, &[4, 4], &[2, 4]) }.unwrap();
    std::fs::remove_dir_all(pe.join("c").join("1")).unwrap();
    std::fs::write(pe.join("c").join("1"), b"x").unwrap();
    let before = snapshot(&pe);
    assert!(ops::map_into(&good, &mut e, |x: i32| x + 1).is_err());
    assert_eq!(snapshot(&pe), before);
    // two writable handles: refused before a missing chunk is created
    let mut w2 = unsafe { zarr::open_mut::<i32>(&pd) }.unwrap();
    let err = Zip::from(&mut d)
        .and(&mut w2)
        .for_each(|_, _| ())
        .unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    assert!(err.to_string().contains("another operand"), "{err}");
    assert_eq!(snapshot(&pd), snapshot(&pd));
    assert!(!chunk_file(&pd, &[0, 0]).exists());
}

#[test]
fn a_grid_of_too_many_chunks_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.zarr");
    drop(unsafe { zarr::create::<u8>(&p, &[8], &[1]) }.unwrap());
    let json = std::fs::read_to_string(p.join("zarr.json")).unwrap();
    std::fs::write(
        p.join("zarr.json"),
        json.replace("\"shape\": [8]", "\"shape\": [68719476736]"),
    )
    .unwrap();
    let z = unsafe { zarr::open::<u8>(&p) }.unwrap();
    let t = std::time::Instant::now();
    let err = ops::sum(&z).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Zarr {
                problem: ZarrProblem::Unsupported { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("2^24 chunks"), "{err}");
    assert!(
        t.elapsed().as_secs() < 5,
        "the refusal took {:?}",
        t.elapsed()
    );
}

/// Pages of the chunk files of `array` in the page cache, and all their pages.
#[cfg(target_os = "linux")]
fn cached(array: &Path) -> (usize, usize) {
    files(array)
        .iter()
        .filter(|p| !p.ends_with("zarr.json"))
        .map(|p| crate::page_cache::resident(p))
        .fold((0, 0), |(r, a), (res, all)| (r + res, a + all))
}

#[cfg(target_os = "linux")]
fn evict(array: &Path) {
    files(array)
        .iter()
        .for_each(|p| crate::page_cache::drop_file(p));
}

/// Under `Paging::Bounded`, chunks cut along every axis are streamed in their own order,
/// so the pages the stream brought in go again, input and output alike.
#[cfg(target_os = "linux")]
#[test]
fn bounded_streams_leave_the_page_cache_as_they_found_it_whatever_the_chunking() {
    // On the disk: a tmpfs (often /tmp) keeps its pages in the page cache for good.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut a = seq(&[2048, 1024]);
    let z = zarr_with(dir.path(), "a.zarr", &mut a, &[256, 256], false, 0, &[]);
    z.flush().unwrap();
    let pa = dir.path().join("a.zarr");
    evict(&pa);
    let (res, all) = cached(&pa);
    assert!(
        res * 10 < all,
        "eviction did not work here: {res} of {all} pages cached"
    );
    let opts = || {
        StreamOptions::new()
            .chunk_bytes(64 << 10)
            .paging(Paging::Bounded)
    };
    let s = ops::sum_with(&z, opts()).unwrap();
    assert_eq!(s, a.iter().map(|&x| i64::from(x)).sum::<i64>());
    let (res, all) = cached(&pa);
    assert!(res * 10 < all, "input: {res} of {all} pages still cached");
    let pd = dir.path().join("d.zarr");
    let mut d = unsafe { zarr::create::<i32>(&pd, &[2048, 1024], &[256, 256]) }.unwrap();
    evict(&pd);
    ops::map_into_with(&z, &mut d, |x: i32| x + 1, opts()).unwrap();
    let (res, all) = cached(&pd);
    assert!(res * 10 < all, "output: {res} of {all} pages still cached");
    assert_eq!(assemble(&d), a.mapv(|x| x + 1));
}

/// Compressed arrays too: under `Paging::Bounded`, the stored bytes a stream reads (on the
/// threads that decode ahead) and the chunk files it writes (on the threads that encode
/// behind) leave the page cache as they found it: cold stays cold, warm stays warm.
#[cfg(target_os = "linux")]
#[test]
fn bounded_streams_over_compressed_arrays_leave_the_page_cache_as_they_found_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pa = dir.path().join("a.zarr");
    let shape = [2048usize, 1024];
    let zstd = || zarr::CreateOptions::new().compressor(zarr::Compressor::zstd(1));
    let mut w = unsafe { zstd().create(&pa, shape, [128, 1024]) }.unwrap();
    // Values that do not compress much, so that the files hold many pages.
    let a = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
        ((ix[0] * 7919 + ix[1] * 104_729) % 1_000_003) as i32
    });
    ops::map_into(&a, &mut w, |x: i32| x).unwrap();
    w.flush().unwrap();
    let z = unsafe { zarr::open::<i32>(&pa) }.unwrap();
    let bounded = || StreamOptions::new().paging(Paging::Bounded);
    evict(&pa);
    let (res, all) = cached(&pa);
    assert!(all > 1000 && res * 10 < all, "eviction: {res} of {all}");
    let s = ops::sum_with(&z, bounded()).unwrap();
    assert_eq!(s, a.iter().map(|&x| i64::from(x)).sum::<i64>());
    let (res, all) = cached(&pa);
    assert!(
        res * 10 < all,
        "a cold input: {res} of {all} pages cached after"
    );
    // Warm before: warm after.
    ops::sum(&z).unwrap();
    let (before, all) = cached(&pa);
    ops::sum_with(&z, bounded()).unwrap();
    let (after, _) = cached(&pa);
    assert!(
        after * 10 >= before * 9,
        "a warm input: {before} -> {after} of {all}"
    );
    // The output's files are written back and dropped.
    let pd = dir.path().join("d.zarr");
    let mut d = unsafe { zstd().create(&pd, shape, [128, 1024]) }.unwrap();
    evict(&pa);
    ops::map_into_with(&z, &mut d, |x: i32| x + 1, bounded()).unwrap();
    let (res, all) = cached(&pd);
    assert!(
        all > 1000 && res * 10 < all,
        "output: {res} of {all} pages cached"
    );
    assert_eq!(assemble(&d), a.mapv(|x| x + 1));
}

/// An output whose missing chunks the stream creates (filled with a non-zero fill value
/// before anything is written) has those pages dropped behind the stream too: they were
/// not cached before it, though they are by the time it maps them.
#[cfg(target_os = "linux")]
#[test]
fn bounded_streams_drop_the_chunks_they_created() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = dir.path().join("w.zarr");
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .fill_value(1i32)
            .create(&p, [8 << 20], [1 << 20])
    }
    .unwrap();
    let a = ndarray::Array1::from_elem(8 << 20, 3i32);
    Zip::from(&a)
        .with(StreamOptions::new().paging(Paging::Bounded))
        .map_assign_into(&mut w, |&x| x * 2)
        .unwrap();
    let (res, all) = cached(&p);
    assert!(res * 10 < all, "{res} of {all} pages still cached");
    assert_eq!(
        assemble(&w),
        ndarray::ArrayD::from_elem(IxDyn(&[8 << 20]), 6i32)
    );
}

/// Under `Bounded`, a write-only stream into an existing Zarr array (every chunk written
/// before) writes its chunks through their files and never reads them from the disk;
/// through `for_each` (which may read) each chunk is read first. Bytes read are this
/// thread's own (`/proc/thread-self/io`).
#[cfg(target_os = "linux")]
#[test]
fn write_only_streams_into_a_zarr_array_do_not_read_it() {
    use crate::page_cache::read_bytes;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = dir.path().join("w.zarr");
    let n = 4usize << 20; // 16 MiB of i32 in 4 chunks
    let mut w = unsafe { zarr::create::<i32>(&p, &[n], &[1 << 20]) }.unwrap();
    for idx in w.chunk_indices().collect::<Vec<_>>() {
        w.chunk_mut(&idx).unwrap().view_mut().fill(9);
    }
    w.flush().unwrap();
    drop(w);
    let a = ndarray::Array1::from_iter((0..n).map(|i| i as i32));
    let opts = || StreamOptions::new().paging(Paging::Bounded);
    let mut read = [0u64; 3];
    for (k, how) in ["assign", "map_into", "for_each"].into_iter().enumerate() {
        evict(&p);
        let mut w = unsafe { zarr::open_mut::<i32>(&p) }.unwrap();
        let before = read_bytes();
        match how {
            "assign" => Zip::from(&a)
                .with(opts())
                .map_assign_into(&mut w, |&x| x * 2),
            "map_into" => ops::map_into_with(&a, &mut w, |x| x * 2, opts()),
            _ => Zip::from(&mut w)
                .and(&a)
                .with(opts())
                .for_each(|w, &x| *w = x * 2),
        }
        .unwrap();
        read[k] = read_bytes() - before;
        assert_eq!(assemble(&w), a.mapv(|x| x * 2).into_dyn(), "{how}");
    }
    let [assign, map_into, for_each] = read;
    assert!(
        for_each >= 4 * n as u64 / 2,
        "for_each read only {for_each} bytes: this test cannot tell"
    );
    assert!(assign < 1 << 20, "map_assign_into read {assign} bytes");
    assert!(map_into < 1 << 20, "map_into read {map_into} bytes");
}

/// The same with an input on a coarser grid that the output's divides (a 2-D grid, so the
/// regions are not one run of the outermost axis): each output chunk is still one
/// region, visited once, so it is written through its file too.
#[cfg(target_os = "linux")]
#[test]
fn write_only_streams_into_a_finer_grid_do_not_read_it() {
    use crate::page_cache::read_bytes;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let shape = [1024usize, 1024];
    let mut a = values(&shape, 11);
    let za = zarr_with(dir.path(), "a.zarr", &mut a, &[512, 512], false, 0, &[]);
    za.flush().unwrap(); // cached: what is read from the disk is the output's
    let p = dir.path().join("w.zarr");
    let w = zarr_with(
        dir.path(),
        "w.zarr",
        &mut values(&shape, 12),
        &[256, 256],
        false,
        0,
        &[],
    );
    w.flush().unwrap();
    drop(w);
    evict(&p);
    let mut w = unsafe { zarr::open_mut::<i32>(&p) }.unwrap();
    let before = read_bytes();
    Zip::from(&za)
        .with(StreamOptions::new().paging(Paging::Bounded))
        .map_assign_into(&mut w, |&x| x.wrapping_mul(3))
        .unwrap();
    let read = read_bytes() - before;
    assert_eq!(assemble(&w), a.mapv(|x| x.wrapping_mul(3)));
    assert!(
        read < 1 << 20,
        "map_assign_into read {read} bytes of its 4 MiB output"
    );
}

/// A whole compressed array (zstd, gzip, blosc) as a stream's output: each chunk written once,
/// encoded, its file replaced; read back equal, also when updated in place and when an
/// operand of another stream, over random shapes and chunk grids; missing chunks read as
/// the fill value until written.
#[test]
fn compressed_outputs_write_whole_chunks_that_read_back() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let strategy = (1usize..4)
        .prop_flat_map(|ndim| {
            (
                proptest::collection::vec(1usize..9, ndim),
                proptest::collection::vec(1usize..6, ndim),
                any::<u64>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(shape, chunk, seed, gzip, fortran)| (shape, chunk, seed, gzip, fortran));
    runner
        .run(&strategy, |(shape, chunk, seed, gzip, fortran)| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.zarr");
            let comp = match (gzip, seed % 2 == 0) {
                (true, _) => zarr::Compressor::gzip(6),
                (false, true) => zarr::Compressor::zstd(1),
                (false, false) => {
                    zarr::Compressor::blosc(zarr::BloscName::Lz4, 5, zarr::Shuffle::Bit)
                }
            };
            let order = if fortran { Order::F } else { Order::C };
            let mut w = unsafe {
                zarr::CreateOptions::new()
                    .fill_value(-7)
                    .order(order)
                    .compressor(comp)
                    .create(&path, shape.as_slice(), chunk.as_slice())
            }
            .unwrap();
            prop_assert_eq!(ops::min(&w).unwrap(), Some(-7)); // every chunk missing
            let a = values(&shape, seed);
            ops::map_into(&a, &mut w, |x| x).unwrap();
            ops::map_inplace(&mut w, |x| x * 3 + 1).unwrap();
            let want = a.mapv(|x| x * 3 + 1);
            let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
            let mut back = ArrayD::zeros(IxDyn(&shape));
            Zip::from(&mut back)
                .and(&z)
                .for_each(|b, &x| *b = x)
                .unwrap();
            prop_assert_eq!(&back, &want);
            // As an input of a stream into a mapped Zarr output.
            let mut out =
                unsafe { zarr::create::<i32>(dir.path().join("o.zarr"), &shape[..], &shape[..]) }
                    .unwrap();
            ops::zip_map_into(&z, &a, &mut out, |x, y| x - y).unwrap();
            let mut diff = ArrayD::zeros(IxDyn(&shape));
            Zip::from(&mut diff)
                .and(&out)
                .for_each(|d, &x| *d = x)
                .unwrap();
            prop_assert_eq!(diff, a.mapv(|x| x * 2 + 1));
            // Nothing but chunks in the array's directory (no temporary files left).
            let stray = walk(&path)
                .into_iter()
                .filter(|p| {
                    p.strip_prefix(&path)
                        .unwrap()
                        .to_string_lossy()
                        .contains("tmp")
                })
                .count();
            prop_assert_eq!(stray, 0);
            Ok(())
        })
        .unwrap();
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// A cancelled stream into a compressed array keeps `Error::Cancelled`'s promise: the
/// output holds new values up to where it stopped (memory order) and old ones after, the
/// chunk it was in written whole with both. `chunk_mut` of a compressed array, and
/// compressed shards, are refused by name, changing nothing.
#[test]
fn compressed_outputs_cancel_to_a_prefix_and_refuse_what_cannot_be_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.zarr");
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .compressor(zarr::Compressor::zstd(3))
            .create(&path, [40, 10], [8, 10])
    }
    .unwrap();
    let ones = Array::from_elem((40, 10), 1i32).into_dyn();
    ops::map_into(&ones, &mut w, |x| x).unwrap();
    let twos = ones.mapv(|x| x * 2);
    let opts = StreamOptions::new().chunk_bytes(4 * 30).progress(|p| {
        if p.done >= 4 * 150 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = ops::map_into_with(&twos, &mut w, |x| x, opts).unwrap_err();
    let Error::Cancelled { done, .. } = err else {
        panic!("{err}")
    };
    let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
    let mut back = ArrayD::zeros(IxDyn(&[40, 10]));
    Zip::from(&mut back)
        .and(&z)
        .for_each(|b, &x| *b = x)
        .unwrap();
    let flat: Vec<i32> = back.iter().copied().collect();
    let k = (done / 4) as usize;
    assert!(k > 0 && k < 400, "{k}");
    assert!(flat[..k].iter().all(|&x| x == 2) && flat[k..].iter().all(|&x| x == 1));
    // A damaged old chunk does not stop a stream that overwrites it whole (it is never
    // decoded), and the array reads whole again after.
    let chunk = path.join("c").join("3").join("0");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes.truncate(3);
    std::fs::write(&chunk, bytes).unwrap();
    assert!(ops::sum(&z).is_err());
    ops::map_into(&twos, &mut w, |x| x + 1).unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 3 * 400);
    // chunk_mut: refused, naming the codec and the way.
    let err = w.chunk_mut(&[0, 0]).unwrap_err();
    assert!(
        err.to_string().contains("zstd") && err.to_string().contains("stream"),
        "{err}"
    );
    // A compressed sharded array: read, never written (shards are written in place).
    let sp = dir.path().join("s.zarr");
    drop(unsafe { zarr::create::<i32>(&sp, [8], [4]) }.unwrap());
    let json = std::fs::read_to_string(sp.join("zarr.json")).unwrap().replace(
        r#""codecs": [{"name": "bytes", "configuration": {"endian": "little"}}]"#,
        r#""codecs": [{"name": "sharding_indexed", "configuration": {"chunk_shape": [2],
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd"}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}}]"#,
    );
    std::fs::remove_dir_all(sp.join("c")).unwrap();
    std::fs::write(sp.join("zarr.json"), json).unwrap();
    let mut s = unsafe { zarr::open_mut::<i32>(&sp) }.unwrap();
    let err = ops::map_into(&Array::from_elem(8, 1i32).into_dyn(), &mut s, |x| x).unwrap_err();
    assert!(err.to_string().contains("sharded"), "{err}");
    assert!(!sp.join("c").exists());
}

/// `write_chunk`: each chunk whole, compressed (C and F order) or mapped, edges cut; the
/// array reads back as the data written; a wrong shape is refused with nothing written.
#[test]
fn write_chunk_writes_each_chunk_whole_compressed_or_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let want = seq(&[7, 5]);
    for (k, (compressed, order)) in [(true, Order::C), (true, Order::F), (false, Order::C)]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("w{k}.zarr"));
        let mut opts = zarr::CreateOptions::new().order(order).fill_value(-1);
        if compressed {
            opts = opts.compressor(zarr::Compressor::zstd(3));
        }
        let mut w = unsafe { opts.create(&path, [7, 5], [3, 2]) }.unwrap();
        for idx in w.chunk_indices() {
            let r = w.region(&idx).unwrap();
            let part = want.slice_each_axis(|ax| Slice::from(r[ax.axis.index()].clone()));
            w.write_chunk(&idx, &part).unwrap();
        }
        let before = snapshot(&path);
        let e = w.write_chunk(&[0, 0], &seq(&[2, 2])).unwrap_err();
        assert!(matches!(e, Error::Broadcast { .. }), "{e}");
        assert_eq!(snapshot(&path), before, "a refused write changed nothing");
        w.flush().unwrap();
        let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
        let mut got = ArrayD::zeros(IxDyn(&[7, 5]));
        for idx in z.chunk_indices() {
            let r = z.region(&idx).unwrap();
            got.slice_each_axis_mut(|ax| Slice::from(r[ax.axis.index()].clone()))
                .assign(&z.chunk(&idx).unwrap().view());
        }
        assert_eq!(got, want, "compressed {compressed}, {order:?}");
    }
}
