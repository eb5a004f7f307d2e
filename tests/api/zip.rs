//! The streaming `Zip` against ndarray's own `Zip`, the axis reductions against
//! ndarray's `fold_axis`, and `chunks`: random shapes, layouts, chunk sizes, 1 to 6
//! operands, in memory and on mapped files (comparing the bytes on disk), plus the
//! errors, the aliasing rule and cancelling.

use std::ops::ControlFlow;

use ndarray::{Array1, ArrayD, ArrayViewD, Axis};
use ndarray_mmap::ops::{self, StreamOptions, Zip};
use ndarray_mmap::{Error, MapOptions, Order, create_array, mmap_array, mmap_array_mut};
use proptest::prelude::*;

use crate::ops::{
    Held, Layout, chunk, file_bytes_in_order, file_with, layout, opts_for, order_of,
    read_only_file_with,
};

/// The formula for `n` operands: the output is `2*in1 - 3*in2 + in3 + 5*in4 - in5`
/// (wrapping), as far as there are inputs; with none it doubles itself.
fn formula(n: usize, d: i32, x: &[i32]) -> i32 {
    let k = [2i32, -3, 1, 5, -1];
    if n == 1 {
        return d.wrapping_mul(2);
    }
    x.iter()
        .zip(k)
        .fold(0i32, |acc, (&v, k)| acc.wrapping_add(v.wrapping_mul(k)))
}

/// Runs the formula with our Zip over `n` operands (the output first).
fn ours(
    n: usize,
    out: &mut ndarray::ArrayViewMutD<'_, i32>,
    ins: &[ArrayViewD<'_, i32>],
    opts: StreamOptions<'_>,
) -> Result<(), Error> {
    match n {
        1 => Zip::from(out)
            .with(opts)
            .for_each(|d| *d = formula(1, *d, &[])),
        2 => Zip::from(out)
            .and(&ins[0])
            .with(opts)
            .for_each(|d, &a| *d = formula(2, *d, &[a])),
        3 => Zip::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .with(opts)
            .for_each(|d, &a, &b| *d = formula(3, *d, &[a, b])),
        4 => Zip::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .with(opts)
            .for_each(|d, &a, &b, &c| *d = formula(4, *d, &[a, b, c])),
        5 => Zip::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .and(&ins[3])
            .with(opts)
            .for_each(|d, &a, &b, &c, &e| *d = formula(5, *d, &[a, b, c, e])),
        _ => Zip::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .and(&ins[3])
            .and(&ins[4])
            .with(opts)
            .for_each(|d, &a, &b, &c, &e, &f| *d = formula(6, *d, &[a, b, c, e, f])),
    }
}

/// The same formula with ndarray's own Zip.
fn reference(n: usize, out: &mut ArrayD<i32>, ins: &[ArrayViewD<'_, i32>]) {
    use ndarray::Zip as Nd;
    match n {
        1 => Nd::from(out).for_each(|d| *d = formula(1, *d, &[])),
        2 => Nd::from(out)
            .and(&ins[0])
            .for_each(|d, &a| *d = formula(2, *d, &[a])),
        3 => Nd::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .for_each(|d, &a, &b| *d = formula(3, *d, &[a, b])),
        4 => Nd::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .for_each(|d, &a, &b, &c| *d = formula(4, *d, &[a, b, c])),
        5 => Nd::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .and(&ins[3])
            .for_each(|d, &a, &b, &c, &e| *d = formula(5, *d, &[a, b, c, e])),
        _ => Nd::from(out)
            .and(&ins[0])
            .and(&ins[1])
            .and(&ins[2])
            .and(&ins[3])
            .and(&ins[4])
            .for_each(|d, &a, &b, &c, &e, &f| *d = formula(6, *d, &[a, b, c, e, f])),
    }
}

/// `map_assign_into` of the formula over `ins` (1 to 5) into `out`.
fn ours_assign<'o, O>(
    out: O,
    ins: &[ArrayViewD<'_, i32>],
    opts: StreamOptions<'_>,
) -> Result<(), Error>
where
    O: ndarray_mmap::ops::IntoPart<'o, Part = ndarray_mmap::ops::Output<'o, i32>>,
{
    let k = ins.len() + 1;
    match ins {
        [a] => Zip::from(a)
            .with(opts)
            .map_assign_into(out, |&a| formula(k, 0, &[a])),
        [a, b] => Zip::from(a)
            .and(b)
            .with(opts)
            .map_assign_into(out, |&a, &b| formula(k, 0, &[a, b])),
        [a, b, c] => Zip::from(a)
            .and(b)
            .and(c)
            .with(opts)
            .map_assign_into(out, |&a, &b, &c| formula(k, 0, &[a, b, c])),
        [a, b, c, d] => Zip::from(a)
            .and(b)
            .and(c)
            .and(d)
            .with(opts)
            .map_assign_into(out, |&a, &b, &c, &d| formula(k, 0, &[a, b, c, d])),
        [a, b, c, d, e] => Zip::from(a)
            .and(b)
            .and(c)
            .and(d)
            .and(e)
            .with(opts)
            .map_assign_into(out, |&a, &b, &c, &d, &e| formula(k, 0, &[a, b, c, d, e])),
        _ => unreachable!("1 to 5 inputs"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn map_assign_into_matches_ndarray(
        shape in prop::collection::vec(0usize..7, 1..4),
        n in 1usize..=5,
        layouts in prop::collection::vec(layout(), 6),
        mapped_out in any::<bool>(),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let held: Vec<Held<i32>> = (0..n).map(|k| Held::new(&shape, layouts[k + 1], seed ^ k as u64)).collect();
        let ins: Vec<ArrayViewD<'_, i32>> = held.iter().map(|h| h.view()).collect();
        // ndarray's own map_assign_into (through its Zip of the inputs).
        let mut want = ArrayD::<i32>::zeros(shape.clone());
        let k = n + 1;
        match ins.as_slice() {
            [a] => ndarray::Zip::from(a).map_assign_into(&mut want, |&a| formula(k, 0, &[a])),
            [a, b] => ndarray::Zip::from(a).and(b).map_assign_into(&mut want, |&a, &b| formula(k, 0, &[a, b])),
            [a, b, c] => ndarray::Zip::from(a).and(b).and(c)
                .map_assign_into(&mut want, |&a, &b, &c| formula(k, 0, &[a, b, c])),
            [a, b, c, d] => ndarray::Zip::from(a).and(b).and(c).and(d)
                .map_assign_into(&mut want, |&a, &b, &c, &d| formula(k, 0, &[a, b, c, d])),
            [a, b, c, d, e] => ndarray::Zip::from(a).and(b).and(c).and(d).and(e)
                .map_assign_into(&mut want, |&a, &b, &c, &d, &e| formula(k, 0, &[a, b, c, d, e])),
            _ => unreachable!(),
        }
        // The output holds other values before: every element must be overwritten.
        let init = Held::<i32>::new(&shape, layouts[0], seed ^ 0xAA);
        if mapped_out {
            let order = order_of(layouts[0]);
            let mut out = file_with(dir.path(), "out", &init.view(), order);
            out.flush().unwrap();
            ours_assign(&mut out, &ins, opts_for(chunk)).unwrap();
            prop_assert_eq!(out.view(), want.view());
            out.close().unwrap();
            let on_disk = std::fs::read(dir.path().join("out")).unwrap();
            prop_assert_eq!(on_disk, file_bytes_in_order(&want.view(), order));
        } else {
            let mut out = init.view().to_owned();
            ours_assign(&mut out, &ins, StreamOptions::new().chunk_bytes(chunk)).unwrap();
            prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn zip_matches_ndarray_in_memory(
        shape in prop::collection::vec(0usize..6, 0..4),
        n in 1usize..=6,
        layouts in prop::collection::vec(layout(), 6),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let held: Vec<Held<i32>> = (1..n).map(|k| Held::new(&shape, layouts[k], seed ^ k as u64)).collect();
        let ins: Vec<ArrayViewD<'_, i32>> = held.iter().map(|h| h.view()).collect();
        let mut out = Held::<i32>::new(&shape, layouts[0], seed ^ 0xAA);
        let mut want = out.view().to_owned();
        reference(n, &mut want, &ins);
        ours(n, &mut out.view_mut(), &ins, StreamOptions::new().chunk_bytes(chunk)).unwrap();
        prop_assert_eq!(out.view(), want.view());
    }

    #[test]
    fn zip_on_mapped_files_matches_ndarray(
        shape in prop::collection::vec(0usize..7, 1..4),
        n in 2usize..=4,
        layouts in prop::collection::vec(layout(), 4),
        mapped in prop::collection::vec(any::<bool>(), 4),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let held: Vec<Held<i32>> = (1..n).map(|k| Held::new(&shape, layouts[k], seed ^ k as u64)).collect();
        let ins: Vec<ArrayViewD<'_, i32>> = held.iter().map(|h| h.view()).collect();
        let init = Held::<i32>::new(&shape, layouts[0], seed ^ 0xAA);
        let mut want = init.view().to_owned();
        reference(n, &mut want, &ins);
        let order = order_of(layouts[0]);
        let mut out = file_with(dir.path(), "out", &init.view(), order);
        // Some inputs mapped (C or F, as their layout says), the others in memory.
        let maps: Vec<_> = (1..n)
            .map(|k| mapped[k].then(|| read_only_file_with(dir.path(), &format!("in{k}"), &ins[k - 1], order_of(layouts[k]))))
            .collect();
        let views: Vec<ArrayViewD<'_, i32>> = (1..n)
            .map(|k| maps[k - 1].as_ref().map_or_else(|| ins[k - 1].view(), |m| m.view()))
            .collect();
        let opts = opts_for(chunk);
        match n {
            2 => match &maps[0] {
                Some(m) => Zip::from(&mut out).and(m).with(opts).for_each(|d, &a| *d = formula(2, *d, &[a])),
                None => Zip::from(&mut out).and(&views[0]).with(opts).for_each(|d, &a| *d = formula(2, *d, &[a])),
            },
            3 => Zip::from(&mut out).and(&views[0]).and(&views[1]).with(opts)
                .for_each(|d, &a, &b| *d = formula(3, *d, &[a, b])),
            _ => Zip::from(&mut out).and(&views[0]).and(&views[1]).and(&views[2]).with(opts)
                .for_each(|d, &a, &b, &c| *d = formula(4, *d, &[a, b, c])),
        }.unwrap();
        prop_assert_eq!(out.view(), want.view());
        out.close().unwrap();
        let on_disk = std::fs::read(dir.path().join("out")).unwrap();
        prop_assert_eq!(on_disk, file_bytes_in_order(&want.view(), order));
    }

    #[test]
    fn fold_matches_a_plain_fold(
        shape in prop::collection::vec(0usize..7, 0..4),
        la in layout(),
        lb in layout(),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let a = Held::<i64>::new(&shape, la, seed);
        let b = Held::<i64>::new(&shape, lb, seed ^ 1);
        let want = ndarray::Zip::from(&a.view()).and(&b.view())
            .fold(0i64, |acc, &x, &y| acc.wrapping_add(x.wrapping_mul(y)));
        let got = Zip::from(&a.view()).and(&b.view()).with(StreamOptions::new().chunk_bytes(chunk))
            .fold(0i64, |acc, &x, &y| acc.wrapping_add(x.wrapping_mul(y))).unwrap();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn axis_reductions_match_fold_axis(
        shape in prop::collection::vec(1usize..7, 1..4),
        axis in 0usize..3,
        la in layout(),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let axis = Axis(axis % shape.len());
        let a = Held::<i32>::new(&shape, la, seed);
        let v = a.view();
        let opts = || StreamOptions::new().chunk_bytes(chunk);
        let sum = v.fold_axis(axis, 0i64, |&acc, &x| acc.wrapping_add(i64::from(x)));
        prop_assert_eq!(ops::sum_axis_with(&v, axis, opts()).unwrap(), sum.clone());
        let n = shape[axis.index()] as f64;
        let mean = v.fold_axis(axis, 0.0f64, |&acc, &x| acc + f64::from(x)).mapv(|s| s / n);
        prop_assert_eq!(ops::mean_axis_with(&v, axis, opts()).unwrap(), mean);
        let min = v.fold_axis(axis, i32::MAX, |&m, &x| m.min(x));
        prop_assert_eq!(ops::min_axis_with(&v, axis, opts()).unwrap(), min);
        let max = v.fold_axis(axis, i32::MIN, |&m, &x| m.max(x));
        prop_assert_eq!(ops::max_axis_with(&v, axis, opts()).unwrap(), max);
    }

    #[test]
    fn axis_reductions_on_mapped_files(
        shape in prop::collection::vec(1usize..9, 1..4),
        axis in 0usize..3,
        fortran in any::<bool>(),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let axis = Axis(axis % shape.len());
        let data = Held::<f32>::new(&shape, Layout::C, seed);
        let order = if fortran { Order::F } else { Order::C };
        let m = read_only_file_with(dir.path(), "m", &data.view(), order);
        let opts = || opts_for(chunk);
        let v = data.view();
        let sum = v.fold_axis(axis, 0.0f64, |&acc, &x| acc + f64::from(x));
        prop_assert_eq!(ops::sum_axis_with(&m, axis, opts()).unwrap(), sum);
        let max = v.fold_axis(axis, f32::MIN, |&m, &x| m.max(x));
        prop_assert_eq!(ops::max_axis_with(&m, axis, opts()).unwrap(), max);
    }
}

#[test]
fn and_broadcast_adds_a_row_to_every_row() {
    let a = ndarray::Array2::<f64>::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64);
    let row = ndarray::array![10.0, 20.0, 30.0];
    let mut d = ndarray::Array2::<f64>::zeros((5, 3));
    Zip::from(&mut d)
        .and(&a)
        .and_broadcast(&row)
        .with(StreamOptions::new().chunk_bytes(16))
        .for_each(|d, &a, &r| *d = a - r)
        .unwrap();
    assert_eq!(d, &a - &row);
    let bad = ndarray::array![1.0, 2.0];
    let err = Zip::from(&mut d)
        .and_broadcast(&bad)
        .for_each(|_, _| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot broadcast operand 2 of the Zip (shape [2]) to the Zip's first operand (shape [5, 3])"
    );
}

#[test]
fn shape_errors_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = unsafe { create_array::<u8>(dir.path().join("d"), [4, 3]) }.unwrap();
    d.view_mut().fill(7);
    let a = ndarray::Array2::<u8>::ones((4, 3));
    let wrong = ndarray::Array2::<u8>::ones((3, 4));
    let err = Zip::from(&mut d)
        .and(&a)
        .and(&wrong)
        .for_each(|d, &a, &b| *d = a + b)
        .unwrap_err();
    assert!(matches!(err, Error::Broadcast { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot broadcast operand 3 of the Zip (shape [3, 4]) to the Zip's first operand (shape [4, 3])"
    );
    assert!(d.view().iter().all(|&x| x == 7));
    d.close().unwrap();
    assert_eq!(std::fs::read(dir.path().join("d")).unwrap(), vec![7u8; 12]);
}

#[test]
fn an_input_mapping_the_output_bytes_reads_each_element_before_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.i64");
    let mut w = unsafe { create_array::<i64>(&path, [1000]) }.unwrap();
    w.view_mut().assign(&Array1::from_iter(0..1000));
    w.flush().unwrap();
    let r = unsafe { mmap_array::<i64>(&path, [-1]) }.unwrap();
    // d = x[i] + 1 where x is d's own file: in place, chunk after chunk.
    Zip::from(&mut w)
        .and(&r)
        .with(StreamOptions::new().chunk_bytes(64))
        .for_each(|d, &x| *d = x + 1)
        .unwrap();
    assert_eq!(w.view(), Array1::from_iter(1..1001).into_dyn());
}

#[test]
fn overlapping_operands_of_one_file_are_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.i32");
    let mut w = unsafe { create_array::<i32>(&path, [64]) }.unwrap();
    w.view_mut().fill(5);
    w.flush().unwrap();
    // The same file seen shifted by 4 elements: any write would change unread input.
    let shifted = unsafe { MapOptions::new().offset(16).open::<i32>(&path, [-1]) }.unwrap();
    let mut short = w.view_mut();
    let mut out = short.slice_mut(ndarray::s![..60]);
    let err = Zip::from(&mut out)
        .and(&shifted.view())
        .for_each(|d, &x| *d = x + 1)
        .unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    // Two outputs over the same bytes: refused even in the same layout.
    let mut w2 = unsafe { mmap_array_mut::<i32>(&path, [-1]) }.unwrap();
    let err = Zip::from(&mut w)
        .and(&mut w2)
        .for_each(|a, b| {
            *a = 1;
            *b = 2;
        })
        .unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    assert!(w2.view().iter().all(|&x| x == 5));
}

#[test]
fn cancelling_keeps_the_chunks_done() {
    let mut d = ndarray::Array1::<u32>::zeros(100);
    let a = ndarray::Array1::<u32>::ones(100);
    let mut calls = 0;
    let opts = StreamOptions::new().chunk_bytes(40).progress(|p| {
        calls += 1;
        assert_eq!(p.total, 400);
        if calls == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = Zip::from(&mut d)
        .and(&a)
        .with(opts)
        .for_each(|d, &a| *d = a)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                done: 120,
                total: 400,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(d.iter().filter(|&&x| x == 1).count(), 30);
    assert!(d.iter().skip(30).all(|&x| x == 0));
}

#[test]
fn axis_errors_and_nan() {
    let a = ndarray::array![[1.0f32, f32::NAN], [3.0, 4.0]];
    let err = ops::sum_axis(&a, Axis(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "axis 2 does not exist: the array has 2 dimension(s), shape [2, 2]"
    );
    let m = ops::max_axis(&a, Axis(0)).unwrap();
    assert_eq!(m[0], 3.0);
    assert!(m[1].is_nan());
    let empty = ndarray::Array2::<f32>::zeros((0, 3));
    let err = ops::min_axis(&empty, Axis(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "axis 0 of shape [0, 3] has length 0: min and max of nothing are undefined"
    );
    assert_eq!(
        ops::sum_axis(&empty, Axis(0)).unwrap(),
        ndarray::Array1::<f64>::zeros(3).into_dyn()
    );
    assert!(
        ops::mean_axis(&empty, Axis(0))
            .unwrap()
            .iter()
            .all(|x| x.is_nan())
    );
}

#[test]
fn chunks_cover_every_row_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = unsafe { create_array::<u32>(dir.path().join("m"), [1000, 3]) }.unwrap();
    for (i, mut row) in m.view_mut().outer_iter_mut().enumerate() {
        row.fill(i as u32);
    }
    for (axis, len) in [(0usize, 64usize), (0, 1000), (0, 0), (1, 2)] {
        let blocks: Vec<_> = ops::chunks(&m, Axis(axis), len).unwrap().collect();
        let step = len.max(1);
        assert_eq!(blocks.len(), m.shape()[axis].div_ceil(step));
        let joined = ndarray::concatenate(
            Axis(axis),
            &blocks.iter().map(|b| b.view()).collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(joined, m.view());
    }
    assert!(matches!(
        ops::chunks(&m, Axis(2), 4),
        Err(Error::Axis { axis: 2, .. })
    ));
}

#[test]
fn min_and_max_agree_with_ndarray_on_big_mapped_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = unsafe { create_array::<f32>(dir.path().join("m"), [100_003]) }.unwrap();
    m.view_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = ((i * 7919) % 100_003) as f32 - 50_000.0);
    let min = m.view().iter().copied().fold(f32::INFINITY, f32::min);
    let max = m.view().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(ops::min(&m).unwrap(), Some(min));
    assert_eq!(ops::max(&m).unwrap(), Some(max));
    m.view_mut()[77_777] = f32::NAN;
    assert!(ops::max(&m).unwrap().unwrap().is_nan());
    assert!(ops::min(&m).unwrap().unwrap().is_nan());
}

#[test]
fn a_huge_broadcast_input_reports_and_cancels_without_overflow() {
    let one = ndarray::Array1::from_elem(1, 1.0f64);
    let big = one.broadcast(1usize << 62).unwrap();
    let mut seen = None;
    let err = Zip::from(&big)
        .with(StreamOptions::new().progress(|p| {
            seen = Some((p.done, p.total));
            ControlFlow::Break(())
        }))
        .fold(0.0, |s, &x| s + x)
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    let (done, total) = seen.unwrap();
    assert_eq!(total, u64::MAX, "the byte count saturates");
    assert!(done > 0 && done < total);
}

#[test]
fn nothing_to_do_still_reports_the_end() {
    let empty = ndarray::Array2::<f32>::zeros((0, 3));
    let mut reports = Vec::new();
    let s = Zip::from(&empty)
        .with(StreamOptions::new().progress(|p| {
            reports.push((p.done, p.total));
            ControlFlow::Continue(())
        }))
        .fold(0.0f32, |s, &x| s + x)
        .unwrap();
    assert_eq!((s, reports), (0.0, vec![(0, 0)]));
}

#[test]
fn the_same_bytes_in_layouts_differing_only_on_unit_axes_are_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.i32");
    let mut w = unsafe { MapOptions::new().create::<i32>(&path, [1, 16]) }.unwrap();
    w.view_mut().assign(
        &ndarray::Array::from_iter(0..16)
            .into_shape_with_order((1, 16))
            .unwrap(),
    );
    w.flush().unwrap();
    // [1, 16] in Fortran order: strides [1, 1] against [16, 1], the same element at every byte.
    let r = unsafe {
        MapOptions::new()
            .order(Order::F)
            .open::<i32>(&path, [1, 16])
    }
    .unwrap();
    Zip::from(&mut w)
        .and(&r)
        .for_each(|w, &x| *w = x + 1)
        .unwrap();
    assert_eq!(
        w.view().iter().copied().collect::<Vec<_>>(),
        (1..17).collect::<Vec<_>>()
    );
}

#[cfg(feature = "rayon")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn par_for_each_and_par_fold_match_the_serial_forms(
        shape in prop::collection::vec(0usize..40, 1..4),
        layouts in prop::collection::vec(layout(), 3),
        mapped in any::<bool>(),
        chunk in chunk(),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let a = Held::<i32>::new(&shape, layouts[1], seed);
        let b = Held::<i32>::new(&shape, layouts[2], seed ^ 7);
        let init = Held::<i32>::new(&shape, layouts[0], seed ^ 9);
        let mut want = init.view().to_owned();
        ndarray::Zip::from(&mut want).and(&a.view()).and(&b.view())
            .for_each(|d, &a, &b| *d = formula(3, *d, &[a, b]));
        let opts = || opts_for(chunk);
        if mapped {
            let mut out = file_with(dir.path(), "out", &init.view(), order_of(layouts[0]));
            let ma = read_only_file_with(dir.path(), "a", &a.view(), order_of(layouts[1]));
            Zip::from(&mut out).and(&ma).and(&b.view()).with(opts())
                .par_for_each(|d, &a, &b| *d = formula(3, *d, &[a, b])).unwrap();
            prop_assert_eq!(out.view(), want.view());
            let s = Zip::from(&ma).and(&b.view()).with(opts())
                .par_fold(|| 0i64, |s, &x, &y| s.wrapping_add(i64::from(x) * i64::from(y)), i64::wrapping_add)
                .unwrap();
            let t = Zip::from(&ma).and(&b.view())
                .fold(0i64, |s, &x, &y| s.wrapping_add(i64::from(x) * i64::from(y))).unwrap();
            prop_assert_eq!(s, t);
        } else {
            let mut out = init.view().to_owned();
            Zip::from(&mut out).and(&a.view()).and(&b.view()).with(opts())
                .par_for_each(|d, &a, &b| *d = formula(3, *d, &[a, b])).unwrap();
            prop_assert_eq!(out, want);
        }
    }
}

#[test]
fn map_assign_into_checks_the_output_shape_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Array1::<i32>::ones(10);
    let mut out = unsafe { create_array::<i32>(dir.path().join("o"), [11]) }.unwrap();
    out.view_mut().fill(7);
    let err = Zip::from(&a).map_assign_into(&mut out, |&x| x).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Broadcast {
                operand: "the output",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "cannot broadcast the output (shape [11]) to the Zip's first operand (shape [10])"
    );
    assert!(out.view().iter().all(|&x| x == 7));
}

/// Under `Paging::Bounded`, `map_assign_into` never reads its (existing, dense, uncached)
/// output from the disk; writing the same values through `for_each` does, page by page.
/// Bytes read are this thread's own (`/proc/thread-self/io`), so other tests running at
/// the same time do not count.
#[cfg(target_os = "linux")]
#[test]
fn map_assign_into_does_not_read_the_output_it_overwrites() {
    use crate::page_cache::{drop_file, read_bytes};
    // On the disk: a tmpfs (often /tmp) reads nothing either way.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 4 << 20; // 16 MiB of f32
    let path = dir.path().join("d.f32");
    std::fs::write(&path, vec![1u8; 4 * n]).unwrap();
    let a = Array1::from_iter((0..n).map(|i| i as f32));
    let opts = || StreamOptions::new().paging(ops::Paging::Bounded);
    let mut read = [0u64; 2];
    for (k, assign) in [true, false].into_iter().enumerate() {
        drop_file(&path);
        let mut d = unsafe { mmap_array_mut::<f32>(&path, [-1]) }.unwrap();
        let before = read_bytes();
        if assign {
            Zip::from(&a)
                .with(opts())
                .map_assign_into(&mut d, |&x| x * 2.0)
        } else {
            Zip::from(&mut d)
                .and(&a)
                .with(opts())
                .for_each(|d, &x| *d = x * 2.0)
        }
        .unwrap();
        read[k] = read_bytes() - before;
        assert_eq!(d.view()[n - 1], (n - 1) as f32 * 2.0);
    }
    let [assign, for_each] = read;
    assert!(
        for_each >= 4 * n as u64 / 2,
        "for_each read only {for_each} bytes: this test cannot tell"
    );
    assert!(
        assign < 1 << 20,
        "map_assign_into read {assign} bytes of its 16 MiB output"
    );
}
