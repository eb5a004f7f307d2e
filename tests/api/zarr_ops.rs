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
        let opts = || StreamOptions::new().chunk_bytes(chunk_bytes).paging(paging);
        Zip::from(&mut zd).and(&za).and(&zb).and(&rc).and(&e).with(opts())
            .for_each(|d, &a, &b, &c, &e| *d = formula(*d, a, b, c, e)).unwrap();
        prop_assert_eq!(assemble(&zd), want.clone());
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
