//! `ZipDyn`, the Zip of operands chosen at run time: many operands of mixed element types,
//! mapped and in memory, against ndarray; its chunk indices; its errors and aliasing rule.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use ndarray_mmap::ops::{AnyView, AnyViewMut, Paging, StreamOptions, ZipDyn};
use ndarray_mmap::{Error, create_array, mmap_array};
use proptest::prelude::*;

/// Every input as `f64`, element by element, for the reference.
fn as_f64(v: &AnyView<'_>) -> ArrayD<f64> {
    match v {
        AnyView::I8(a) => a.mapv(f64::from),
        AnyView::U16(a) => a.mapv(f64::from),
        AnyView::I32(a) => a.mapv(f64::from),
        AnyView::F32(a) => a.mapv(f64::from),
        AnyView::F64(a) => a.to_owned(),
        other => panic!("not an operand of this test: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// d = i8 + u16 + i32 + f32 + f64 (the last two mapped files), streamed in chunks of
    /// any size, with the pieces' indices: the file holds ndarray's result.
    #[test]
    fn mixed_types_on_files_match_ndarray(rows in 1usize..300, cols in 1usize..40, chunk in 1usize..5000, bounded in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let n = rows * cols;
        let a = Array2::from_shape_fn((rows, cols), |(i, j)| (((i * 7 + j) % 200) as i16 - 100) as i8);
        let b = Array2::from_shape_fn((rows, cols), |(i, j)| (i * 31 + j * 3) as u16);
        let c = Array2::from_shape_fn((rows, cols), |(i, j)| (i as i32 - 50) * (j as i32 + 1));
        let mut e = unsafe { create_array::<f32>(dir.path().join("e.f32"), [rows, cols]) }.unwrap();
        e.view_mut().iter_mut().enumerate().for_each(|(k, x)| *x = k as f32 * 0.25);
        let mut f = unsafe { create_array::<f64>(dir.path().join("f.f64"), [rows, cols]) }.unwrap();
        f.view_mut().iter_mut().enumerate().for_each(|(k, x)| *x = (n - k) as f64 / 3.0);
        let mut d = unsafe { create_array::<f64>(dir.path().join("d.f64"), [rows, cols]) }.unwrap();
        let mut covered = Array2::<u8>::zeros((rows, cols));
        let opts = StreamOptions::new()
            .chunk_bytes(chunk)
            .paging(if bounded { Paging::Bounded } else { Paging::Cached });
        ZipDyn::new(&[rows, cols])
            .overwrite(&mut d)
            .input(&a)
            .input(&b)
            .input(&c)
            .input(&e)
            .input(&f)
            .with(opts)
            .for_each(|index, outs, ins| {
                let sum = ins.iter().map(as_f64).fold(ArrayD::zeros(IxDyn(ins[0].shape())), |s, x| s + x);
                match &mut outs[0] {
                    AnyViewMut::F64(d) => d.assign(&sum),
                    other => panic!("{other:?}"),
                }
                covered
                    .slice_mut(ndarray::s![index[0].clone(), index[1].clone()])
                    .mapv_inplace(|k| k + 1);
            })
            .unwrap();
        prop_assert!(covered.iter().all(|&k| k == 1), "every element visited once");
        let want = a.mapv(f64::from) + b.mapv(f64::from) + c.mapv(f64::from) + e.view().mapv(f64::from) + f.view();
        prop_assert_eq!(d.view(), want.view().into_dyn());
        d.close().unwrap();
        let back = unsafe { mmap_array::<f64>(dir.path().join("d.f64"), [rows, cols]) }.unwrap();
        prop_assert_eq!(back.view(), want.into_dyn());
    }
}

#[test]
fn fold_gets_each_chunks_index_so_axis_sums_can_be_built() {
    let a = Array2::from_shape_fn((257, 13), |(i, j)| (i * 13 + j) as f64);
    let mut rows = vec![0.0; 257];
    let total = ZipDyn::new(&[257, 13])
        .input(&a)
        .with(StreamOptions::new().chunk_bytes(1000))
        .fold(0.0, |acc, index, _outs, ins| {
            let AnyView::F64(v) = &ins[0] else {
                panic!("f64 in")
            };
            for (i, row) in index[0].clone().zip(v.outer_iter()) {
                rows[i] += row.sum();
            }
            acc + v.sum()
        })
        .unwrap();
    assert_eq!(total, a.sum());
    assert_eq!(rows, a.sum_axis(Axis(1)).to_vec());
}

#[test]
fn errors_name_the_operand_before_anything_is_written() {
    let a = ndarray::Array1::<f32>::ones(10);
    let wrong = ndarray::Array1::<f32>::ones(3);
    let mut c = ndarray::Array1::<f32>::from_elem(10, 7.0);
    let e = ZipDyn::new(&[10])
        .overwrite(&mut c)
        .input(&a)
        .input(&wrong)
        .for_each(|_, outs, _| {
            if let AnyViewMut::F32(c) = &mut outs[0] {
                c.fill(0.0);
            }
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Broadcast {
                operand: "operand 3 of the ZipDyn",
                ..
            }
        ),
        "{e}"
    );
    assert!(c.iter().all(|&x| x == 7.0));
    let mut small = ndarray::Array1::<f32>::zeros(4);
    let e = ZipDyn::new(&[10])
        .output(&mut small)
        .for_each(|_, _, _| ())
        .unwrap_err();
    assert!(e.to_string().contains("operand 1 of the ZipDyn"), "{e}");
}

#[test]
fn in_place_on_one_file_reads_each_element_before_writing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.i64");
    let mut m = unsafe { create_array::<i64>(&path, [1000]) }.unwrap();
    m.view_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(k, x)| *x = k as i64);
    m.flush().unwrap();
    let r = unsafe { mmap_array::<i64>(&path, [1000]) }.unwrap();
    ZipDyn::new(&[1000])
        .output(&mut m)
        .input(&r)
        .with(StreamOptions::new().chunk_bytes(800))
        .for_each(|_, outs, ins| {
            if let (AnyViewMut::I64(m), AnyView::I64(r)) = (&mut outs[0], &ins[0]) {
                ndarray::Zip::from(m)
                    .and(r)
                    .for_each(|m, &r| *m = r * 2 + 1);
            }
        })
        .unwrap();
    assert!(
        m.view()
            .iter()
            .enumerate()
            .all(|(k, &x)| x == 2 * k as i64 + 1)
    );
}

#[test]
fn a_cancel_stops_between_chunks() {
    let a = ndarray::Array1::<u8>::ones(1000);
    let mut seen = 0;
    let opts = StreamOptions::new()
        .chunk_bytes(100)
        .progress(|p| match p.done >= 300 {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        });
    let e = ZipDyn::new(&[1000])
        .input(&a)
        .with(opts)
        .for_each(|_, _, _| seen += 1)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Cancelled {
                done: 300,
                total: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(seen, 3);
}
