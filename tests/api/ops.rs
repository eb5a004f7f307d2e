//! The elementwise operations and reductions against the plain in-memory result, over
//! random shapes, layouts, broadcast shapes, element types and chunk sizes; on views and
//! on mapped files (streaming), comparing the bytes on disk.

use std::ops::ControlFlow;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Dimension, IxDyn, ShapeBuilder, Slice, Zip};
use ndarray_mmap::ops::{self, Numeric, StreamOptions};
use ndarray_mmap::{Error, MapOptions, MmapArrayMut, Order, add_into, create_array};
use proptest::prelude::*;

/// How an operand is laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Layout {
    C,
    F,
    /// Every other element of a C array twice the size.
    Strided,
    /// A C array with its first axis reversed (negative stride).
    Reversed,
}

pub(crate) fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::C),
        Just(Layout::F),
        Just(Layout::Strided),
        Just(Layout::Reversed)
    ]
}

/// Test-side element generation and the reference arithmetic, written from std's
/// wrapping methods (not the crate's `Numeric`).
pub(crate) trait Model: Numeric + std::fmt::Debug {
    fn make(x: u64) -> Self;
    fn model(op: Op, a: Self, b: Self) -> Self;
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Add), Just(Op::Sub), Just(Op::Mul), Just(Op::Div)]
}

macro_rules! model_int {
    ($($t:ty),*) => {$(
        impl Model for $t {
            fn make(x: u64) -> Self {
                // mostly small values, sometimes extremes, sometimes 0 and -1
                match x % 16 {
                    0 => <$t>::MIN,
                    1 => <$t>::MAX,
                    2 => 0,
                    3 => (0 as $t).wrapping_sub(1),
                    _ => (x >> 8) as $t,
                }
            }
            fn model(op: Op, a: Self, b: Self) -> Self {
                match op {
                    Op::Add => a.wrapping_add(b),
                    Op::Sub => a.wrapping_sub(b),
                    Op::Mul => a.wrapping_mul(b),
                    Op::Div => a.checked_div(b).unwrap_or(if b == 0 { 0 } else { a.wrapping_div(b) }),
                }
            }
        }
    )*};
}
model_int!(i8, u8, i16, u16, i32, u32, i64, u64);

macro_rules! model_float {
    ($($t:ty),*) => {$(
        impl Model for $t {
            fn make(x: u64) -> Self {
                ((x % 2001) as $t - 1000.0) / 8.0
            }
            fn model(op: Op, a: Self, b: Self) -> Self {
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                }
            }
        }
    )*};
}
model_float!(f32, f64);

pub(crate) fn values<T: Model>(n: usize, seed: u64) -> Vec<T> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            T::make(x.wrapping_mul(0x2545_F491_4F6C_DD1D))
        })
        .collect()
}

/// An owned array whose view has the requested layout.
pub(crate) struct Held<T> {
    data: ArrayD<T>,
    layout: Layout,
}

impl<T: Model> Held<T> {
    pub(crate) fn new(shape: &[usize], layout: Layout, seed: u64) -> Self {
        let n: usize = shape.iter().product();
        let data = match layout {
            Layout::C | Layout::Reversed => ArrayD::from_shape_vec(shape, values(n, seed)).unwrap(),
            Layout::F => ArrayD::from_shape_vec(IxDyn(shape).f(), values(n, seed)).unwrap(),
            Layout::Strided => {
                let big: Vec<usize> = shape.iter().map(|&d| 2 * d).collect();
                let m = big.iter().product();
                ArrayD::from_shape_vec(big, values(m, seed)).unwrap()
            }
        };
        Held { data, layout }
    }

    fn slicer(&self) -> impl Fn(ndarray::AxisDescription) -> Slice + '_ {
        move |d| match self.layout {
            Layout::Strided => Slice::new(0, None, 2),
            Layout::Reversed if d.axis.index() == 0 => Slice::new(0, None, -1),
            _ => Slice::from(..),
        }
    }

    pub(crate) fn view(&self) -> ArrayViewD<'_, T> {
        self.data.slice_each_axis(self.slicer())
    }

    pub(crate) fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        let layout = self.layout;
        self.data.slice_each_axis_mut(move |d| match layout {
            Layout::Strided => Slice::new(0, None, 2),
            Layout::Reversed if d.axis.index() == 0 => Slice::new(0, None, -1),
            _ => Slice::from(..),
        })
    }
}

/// An output shape and two input shapes that broadcast to it.
#[derive(Debug, Clone)]
struct Shapes {
    out: Vec<usize>,
    a: Vec<usize>,
    b: Vec<usize>,
}

fn broadcast_of(out: &[usize], drop: usize, mask: u32) -> Vec<usize> {
    let drop = drop.min(out.len());
    out[drop..]
        .iter()
        .enumerate()
        .map(|(i, &d)| if mask >> i & 1 == 1 { 1 } else { d })
        .collect()
}

fn shapes() -> impl Strategy<Value = Shapes> {
    (
        prop::collection::vec(0usize..6, 0..4),
        0usize..3,
        any::<u32>(),
        0usize..3,
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(out, da, ma, db, mb, full_a)| {
            // half the time `a` has the full shape (the common case and the streaming one)
            let a = if full_a {
                out.clone()
            } else {
                broadcast_of(&out, da, ma)
            };
            let b = broadcast_of(&out, db, mb);
            Shapes { out, a, b }
        })
}

pub(crate) fn chunk() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..64, Just(4096usize), Just(1 << 20)]
}

/// The reference: broadcast with ndarray and apply the model element by element.
fn expected<T: Model>(op: Op, a: &ArrayViewD<T>, b: &ArrayViewD<T>, out: &[usize]) -> ArrayD<T> {
    let a = a.broadcast(out).unwrap();
    let b = b.broadcast(out).unwrap();
    let mut c = ArrayD::from_elem(out, T::make(2));
    Zip::from(&mut c)
        .and(&a)
        .and(&b)
        .for_each(|c, &a, &b| *c = T::model(op, a, b));
    c
}

fn run_op<T: Model, SA, SB, SC>(
    op: Op,
    a: &SA,
    b: &SB,
    c: &mut SC,
    opts: StreamOptions<'_>,
) -> Result<(), Error>
where
    SA: ops::Source<T> + ?Sized,
    SB: ops::Source<T> + ?Sized,
    SC: ops::Sink<T> + ?Sized,
{
    match op {
        Op::Add => ops::add_into_with(a, b, c, opts),
        Op::Sub => ops::sub_into_with(a, b, c, opts),
        Op::Mul => ops::mul_into_with(a, b, c, opts),
        Op::Div => ops::div_into_with(a, b, c, opts),
    }
}

pub(crate) fn bits<T: bytemuck::Pod>(a: impl IntoIterator<Item = T>) -> Vec<u8> {
    a.into_iter()
        .flat_map(|x| bytemuck::bytes_of(&x).to_vec())
        .collect()
}

fn check_views<T: Model>(
    op: Op,
    s: &Shapes,
    la: Layout,
    lb: Layout,
    lc: Layout,
    chunk: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let a = Held::<T>::new(&s.a, la, seed);
    let b = Held::<T>::new(&s.b, lb, seed ^ 0x55);
    let mut c = Held::<T>::new(&s.out, lc, seed ^ 0xAA);
    let want = expected(op, &a.view(), &b.view(), &s.out);
    run_op(
        op,
        &a.view(),
        &b.view(),
        &mut c.view_mut(),
        StreamOptions::new().chunk_bytes(chunk),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bits(c.view().iter().copied()), bits(want.iter().copied()));
    // Strided outputs: the elements between the selected ones are untouched.
    if lc == Layout::Strided {
        let orig = Held::<T>::new(&s.out, lc, seed ^ 0xAA);
        let untouched = |h: &Held<T>| -> Vec<u8> {
            bits(
                h.data
                    .indexed_iter()
                    .filter(|(ix, _)| ix.slice().iter().any(|i| i % 2 == 1))
                    .map(|(_, &x)| x),
            )
        };
        prop_assert_eq!(untouched(&c), untouched(&orig));
    }
    Ok(())
}

macro_rules! view_props {
    ($($name:ident: $t:ty),*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
            $(
            #[test]
            #[cfg_attr(miri, ignore)]
            fn $name(op in op(), s in shapes(), la in layout(), lb in layout(), lc in layout(), chunk in chunk(), seed in any::<u64>()) {
                check_views::<$t>(op, &s, la, lb, lc, chunk, seed)?;
            }
            )*
        }
    };
}

view_props!(views_f32: f32, views_f64: f64, views_i8: i8, views_u8: u8, views_i16: i16, views_u32: u32, views_i64: i64, views_u64: u64);

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Floats against ndarray's own broadcasting `&a + &b`.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn add_matches_ndarray_operator(s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
        let a = Held::<f32>::new(&s.out, la, seed);
        let b = Held::<f32>::new(&s.b, lb, seed ^ 1);
        let mut c = ArrayD::<f32>::zeros(s.out.clone());
        ops::add_into_with(&a.view(), &b.view(), &mut c, StreamOptions::new().chunk_bytes(chunk)).unwrap();
        prop_assert_eq!(c, &a.view() + &b.view());
    }

    /// Shapes that do not broadcast give an error naming both and write nothing.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn shape_errors_write_nothing(out in prop::collection::vec(1usize..5, 1..4), axis in 0usize..3, extra in 1usize..3, second in any::<bool>(), seed in any::<u64>()) {
        let axis = axis % out.len();
        let mut bad = out.clone();
        bad[axis] = out[axis] + extra; // neither equal nor 1
        let good = Held::<i32>::new(&out, Layout::C, seed);
        let bad = Held::<i32>::new(&bad, Layout::C, seed);
        let mut c = Held::<i32>::new(&out, Layout::C, seed ^ 3);
        let before = c.data.clone();
        let (x, y) = if second { (&good, &bad) } else { (&bad, &good) };
        let err = add_into(&x.view(), &y.view(), &mut c.view_mut()).unwrap_err();
        let is_broadcast = matches!(err, Error::Broadcast { .. });
        prop_assert!(is_broadcast);
        let msg = err.to_string();
        prop_assert!(msg.contains(&format!("{:?}", bad.data.shape())), "{}", msg);
        prop_assert!(msg.contains(&format!("{:?}", out)), "{}", msg);
        prop_assert_eq!(c.data, before);
    }

    /// map_into with a type change, on every layout.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn map_into_changes_type(s in shapes(), la in layout(), lc in layout(), chunk in chunk(), seed in any::<u64>()) {
        let a = Held::<i16>::new(&s.a, la, seed);
        let mut c = Held::<f64>::new(&s.out, lc, seed);
        ops::map_into_with(&a.view(), &mut c.view_mut(), |x| f64::from(x) * 0.5, StreamOptions::new().chunk_bytes(chunk)).unwrap();
        let want = a.view().broadcast(s.out.clone()).unwrap().mapv(|x| f64::from(x) * 0.5);
        prop_assert_eq!(c.view(), want.view());
    }

    /// Reductions against ndarray's, on every layout and chunk size.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn reductions_match(shape in prop::collection::vec(0usize..7, 0..4), la in layout(), chunk in chunk(), seed in any::<u64>()) {
        let a = Held::<i32>::new(&shape, la, seed);
        let v = a.view();
        let opts = || StreamOptions::new().chunk_bytes(chunk);
        let want_sum = v.iter().fold(0i64, |s, &x| s.wrapping_add(i64::from(x)));
        prop_assert_eq!(ops::sum_with(&v, opts()).unwrap(), want_sum);
        prop_assert_eq!(ops::min_with(&v, opts()).unwrap(), v.iter().copied().min());
        prop_assert_eq!(ops::max_with(&v, opts()).unwrap(), v.iter().copied().max());
        let mean = ops::mean_with(&v, opts()).unwrap();
        if v.is_empty() {
            prop_assert_eq!(mean, None);
        } else {
            let want = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
            let got = mean.unwrap();
            prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{} vs {}", got, want);
        }
        let f = Held::<f32>::new(&shape, la, seed);
        let want = f.view().iter().map(|&x| f64::from(x)).sum::<f64>();
        prop_assert_eq!(ops::sum_with(&f.view(), opts()).unwrap(), want); // exact: eighths
    }
}

// ---- mapped files: the streaming path ------------------------------------------------

/// Both paging policies on mapped files: chosen by the chunk size, so every proptest
/// run tries each (small files would always get `Cached` from `Auto`).
fn paging_for(chunk: usize) -> ops::Paging {
    if chunk.is_multiple_of(2) {
        ops::Paging::Bounded
    } else {
        ops::Paging::Auto
    }
}

/// Stream options for the file proptests: `chunk` bytes, the paging of [`paging_for`],
/// `write_through` for a third of the chunk sizes (it matters where `Auto` picks `Cached`)
/// and `read_through` for half (it matters under `Bounded`).
pub(crate) fn opts_for<'a>(chunk: usize) -> StreamOptions<'a> {
    StreamOptions::new()
        .chunk_bytes(chunk)
        .paging(paging_for(chunk))
        .write_through(chunk.is_multiple_of(3))
        .read_through(chunk.is_multiple_of(2))
}

pub(crate) fn order_of(l: Layout) -> Order {
    if l == Layout::F { Order::F } else { Order::C }
}

/// A new file holding `data` as an array in `order`.
pub(crate) fn file_with<T: Model>(
    dir: &std::path::Path,
    name: &str,
    data: &ArrayViewD<T>,
    order: Order,
) -> MmapArrayMut<T> {
    let shape: Vec<isize> = data.shape().iter().map(|&d| d as isize).collect();
    let mut m = unsafe {
        MapOptions::new()
            .order(order)
            .create::<T>(dir.join(name), shape)
    }
    .unwrap();
    m.view_mut().assign(data);
    m
}

/// A new file holding `data` in `order`, closed and mapped again read-only.
pub(crate) fn read_only_file_with<T: Model>(
    dir: &std::path::Path,
    name: &str,
    data: &ArrayViewD<T>,
    order: Order,
) -> ndarray_mmap::MmapArray<T> {
    file_with(dir, name, data, order).close().unwrap();
    let shape: Vec<isize> = data.shape().iter().map(|&d| d as isize).collect();
    unsafe {
        MapOptions::new()
            .order(order)
            .open::<T>(dir.join(name), shape)
    }
    .unwrap()
}

pub(crate) fn file_bytes_in_order<T: Model>(a: &ArrayViewD<T>, order: Order) -> Vec<u8> {
    if order.is_column_major() {
        bits(a.t().iter().copied())
    } else {
        bits(a.iter().copied())
    }
}

fn check_files<T: Model>(
    op: Op,
    s: &Shapes,
    la: Layout,
    lb: Layout,
    lc: Layout,
    chunk: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Held::<T>::new(&s.a, Layout::C, seed);
    let b0 = Held::<T>::new(&s.b, Layout::C, seed ^ 0x55);
    let want = expected(op, &a0.view(), &b0.view(), &s.out);
    let a = read_only_file_with(dir.path(), "a", &a0.view(), order_of(la));
    let b = file_with(dir.path(), "b", &b0.view(), order_of(lb)); // a writable map as input
    let c_init = Held::<T>::new(&s.out, Layout::C, seed ^ 0xAA);
    let mut c = file_with(dir.path(), "c", &c_init.view(), order_of(lc));
    c.flush().unwrap();
    run_op(op, &a, &b, &mut c, opts_for(chunk)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bits(c.view().iter().copied()), bits(want.iter().copied()));
    c.close().unwrap();
    let on_disk = std::fs::read(dir.path().join("c")).unwrap();
    prop_assert_eq!(on_disk, file_bytes_in_order(&want.view(), order_of(lc)));
    // the inputs are unchanged
    prop_assert_eq!(
        std::fs::read(dir.path().join("a")).unwrap(),
        file_bytes_in_order(&a0.view(), order_of(la))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn files_f32(op in op(), s in shapes(), la in layout(), lb in layout(), lc in layout(), chunk in chunk(), seed in any::<u64>()) {
        check_files::<f32>(op, &s, la, lb, lc, chunk, seed)?;
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn files_i16(op in op(), s in shapes(), la in layout(), lb in layout(), lc in layout(), chunk in chunk(), seed in any::<u64>()) {
        check_files::<i16>(op, &s, la, lb, lc, chunk, seed)?;
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn files_u64(op in op(), s in shapes(), la in layout(), lb in layout(), lc in layout(), chunk in chunk(), seed in any::<u64>()) {
        check_files::<u64>(op, &s, la, lb, lc, chunk, seed)?;
    }

    /// Reductions over mapped files agree with the in-memory ones.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn file_reductions(shape in prop::collection::vec(0usize..9, 0..4), fortran in any::<bool>(), chunk in chunk(), seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let order = if fortran { Order::F } else { Order::C };
        let a0 = Held::<f64>::new(&shape, Layout::C, seed);
        let m = file_with(dir.path(), "a", &a0.view(), order);
        m.close().unwrap();
        let ishape: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
        let a = unsafe { MapOptions::new().order(order).open::<f64>(dir.path().join("a"), ishape) }.unwrap();
        let opts = || opts_for(chunk);
        prop_assert_eq!(ops::sum_with(&a, opts()).unwrap(), a0.view().sum());
        let fold = |f: fn(f64, f64) -> f64| a0.view().iter().copied().reduce(f);
        prop_assert_eq!(ops::min_with(&a, opts()).unwrap(), fold(f64::min));
        prop_assert_eq!(ops::max_with(&a, opts()).unwrap(), fold(f64::max));
        prop_assert_eq!(ops::mean_with(&a, opts()).unwrap().is_some(), !a0.view().is_empty());
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn the_two_call_forms() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = unsafe { create_array::<f32>(dir.path().join("a"), [100, 24]) }.unwrap();
    let mut b = unsafe { create_array::<f32>(dir.path().join("b"), [24]) }.unwrap();
    let mut c = unsafe { create_array::<f32>(dir.path().join("c"), [100, 24]) }.unwrap();
    a.view_mut().fill(1.0);
    b.view_mut().fill(2.0);
    // on views
    add_into(&a.view(), &b.view(), &mut c.view_mut()).unwrap();
    assert_eq!(c.view().sum(), 7200.0);
    // on the owners: the streaming path, the row broadcast to every row
    ndarray_mmap::sub_into(&a, &b, &mut c).unwrap();
    assert_eq!(ops::sum(&c).unwrap(), -2400.0);
    // mixed: a view and an owner into an owned array
    let mut d = ndarray::Array2::<f32>::zeros((100, 24));
    ndarray_mmap::mul_into(&a, &b.view(), &mut d).unwrap();
    assert_eq!(ops::mean(&d).unwrap(), Some(2.0));
    assert_eq!(ops::min(&d).unwrap(), Some(2.0));
    assert_eq!(ops::max(&c).unwrap(), Some(-1.0));
}

#[test]
#[cfg_attr(miri, ignore)]
fn mapped_shape_error_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let a = unsafe { create_array::<u8>(dir.path().join("a"), [4, 3]) }.unwrap();
    let b = unsafe { create_array::<u8>(dir.path().join("b"), [4]) }.unwrap();
    let mut c = unsafe { create_array::<u8>(dir.path().join("c"), [4, 3]) }.unwrap();
    c.view_mut().fill(7);
    c.flush().unwrap();
    let err = add_into(&a, &b, &mut c).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot broadcast the second input (shape [4]) to the output (shape [4, 3])"
    );
    c.close().unwrap();
    assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), vec![7u8; 12]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn cancelling_a_stream_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = unsafe { create_array::<i32>(dir.path().join("a"), [64, 64]) }.unwrap();
    a.view_mut().fill(5);
    let mut c = unsafe { create_array::<i32>(dir.path().join("c"), [64, 64]) }.unwrap();
    let mut calls = Vec::new();
    let opts = StreamOptions::new().chunk_bytes(4096).progress(|p| {
        calls.push(p);
        if calls.len() == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = ops::add_into_with(&a, &a, &mut c, opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                done: 12288,
                total: 16384,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0],
        ops::Progress {
            done: 4096,
            total: 16384
        }
    );
    c.close().unwrap();
    let bytes = std::fs::read(dir.path().join("c")).unwrap();
    let vals: &[i32] = bytemuck::cast_slice(&bytes);
    assert!(vals[..3072].iter().all(|&x| x == 10));
    assert!(vals[3072..].iter().all(|&x| x == 0));
}

#[test]
#[cfg_attr(miri, ignore)]
fn copy_on_write_output_never_reaches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    std::fs::write(&path, vec![1u8; 3 * 8192]).unwrap();
    let mut c = unsafe { MapOptions::new().open_copy::<u8>(&path, [-1]) }.unwrap();
    let a = ndarray::Array1::<u8>::from_elem(3 * 8192, 4);
    ops::add_into_with(
        &a,
        &a.view(),
        &mut c,
        StreamOptions::new().chunk_bytes(4096),
    )
    .unwrap();
    // the private pages kept their values through the stream's paging hooks
    assert!(c.view().iter().all(|&x| x == 8));
    c.close().unwrap();
    assert!(std::fs::read(&path).unwrap().iter().all(|&x| x == 1));
}

#[test]
#[cfg_attr(miri, ignore)]
fn integer_overflow_wraps_in_debug_builds() {
    let a = ndarray::array![i8::MAX, i8::MIN, 100, i8::MIN];
    let b = ndarray::array![1i8, -1, 100, -1];
    let mut c = ndarray::Array1::<i8>::zeros(4);
    add_into(&a, &b, &mut c).unwrap();
    assert_eq!(c, ndarray::array![i8::MIN, i8::MAX, -56, i8::MAX]);
    ndarray_mmap::mul_into(&a, &b, &mut c).unwrap();
    assert_eq!(c, ndarray::array![i8::MAX, i8::MIN, 16, i8::MIN]);
    ndarray_mmap::div_into(&a, &ndarray::array![0i8, -1, 3, 0], &mut c).unwrap();
    assert_eq!(c, ndarray::array![0, i8::MIN, 33, 0]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn nan_propagates_in_reductions() {
    let a = ndarray::array![1.0f32, f32::NAN, -3.0];
    assert!(ops::min(&a).unwrap().unwrap().is_nan());
    assert!(ops::max(&a).unwrap().unwrap().is_nan());
    assert!(ops::sum(&a).unwrap().is_nan());
    assert_eq!(
        ops::min(&ndarray::array![[2.0f64, -1.0]]).unwrap(),
        Some(-1.0)
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn zero_dimensional_and_empty() {
    let a = ndarray::arr0(3u32);
    let mut c = ndarray::arr0(0u32);
    add_into(&a, &a, &mut c).unwrap();
    assert_eq!(c[()], 6);
    assert_eq!(ops::sum(&a).unwrap(), 3);
    assert_eq!(ops::max(&a).unwrap(), Some(3));
    let e = ndarray::Array2::<u32>::zeros((0, 5));
    let mut ce = ndarray::Array2::<u32>::zeros((0, 5));
    add_into(&e, &ndarray::array![1u32, 2, 3, 4, 5], &mut ce).unwrap();
    assert_eq!(ops::min(&e).unwrap(), None);
    // a scalar broadcast to a whole file
    let dir = tempfile::tempdir().unwrap();
    let mut f = unsafe { create_array::<u32>(dir.path().join("f"), [10, 10]) }.unwrap();
    ndarray_mmap::map_into(&a, &mut f, |x| x + 1).unwrap();
    assert_eq!(ops::sum(&f).unwrap(), 400);
}

/// Many chunks through real write-back, into an output that starts mid-page in its file
/// (a header before it) and a `.npy` output: the bytes before the array are untouched and
/// the array's bytes are right.
#[test]
#[cfg_attr(miri, ignore)]
fn streaming_many_chunks_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let n: usize = 1 << 19; // 2 MiB of f32 per array
    let a0 = ndarray::Array1::from_iter((0..n).map(|i| (i % 1000) as f32));
    let b0 = ndarray::Array1::from_iter((0..n).map(|i| (i % 7) as f32));
    let want: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 + (i % 7) as f32).collect();
    let mut a = unsafe { create_array::<f32>(dir.path().join("a"), [n as isize]) }.unwrap();
    a.view_mut().assign(&a0);
    a.close().unwrap();
    let a = unsafe { ndarray_mmap::mmap_array::<f32>(dir.path().join("a"), [-1]) }.unwrap();
    let mut bm =
        unsafe { ndarray_mmap::create_npy::<f32>(dir.path().join("b.npy"), [n as isize]) }.unwrap();
    bm.view_mut().assign(&b0);
    bm.close().unwrap();
    let b = unsafe { ndarray_mmap::open_npy::<f32>(dir.path().join("b.npy")) }.unwrap();

    for chunk in [4096usize, 65536, 300_000] {
        // raw output after a 100-byte header
        let path = dir.path().join("c");
        let mut c = unsafe {
            MapOptions::new()
                .offset(100)
                .create::<f32>(&path, [n as isize])
        }
        .unwrap();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(&[0xAB; 100]).unwrap(); // at offset 0
        }
        let mut calls = 0;
        let opts = opts_for(chunk).progress(|_| {
            calls += 1;
            ControlFlow::Continue(())
        });
        ops::add_into_with(&a, &b, &mut c, opts).unwrap();
        assert_eq!(calls, (4 * n).div_ceil(chunk));
        c.close().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            &bytes[..100],
            &[0xAB; 100][..],
            "chunk {chunk}: header changed"
        );
        assert_eq!(
            &bytes[100..],
            bytemuck::cast_slice::<f32, u8>(&want),
            "chunk {chunk}"
        );

        // .npy output
        let npath = dir.path().join("c.npy");
        let mut c = unsafe { ndarray_mmap::create_npy::<f32>(&npath, [n as isize]) }.unwrap();
        ops::add_into_with(&a, &b, &mut c, opts_for(chunk)).unwrap();
        c.close().unwrap();
        let c = unsafe { ndarray_mmap::open_npy::<f32>(&npath) }.unwrap();
        assert_eq!(c.view().as_slice().unwrap(), &want[..], "chunk {chunk}");
        assert_eq!(
            ops::sum(&c).unwrap(),
            want.iter().map(|&x| f64::from(x)).sum::<f64>()
        );
    }
}

// ---- in place: `a op= b` -------------------------------------------------------------

fn run_assign<T: Model, SA: ops::Sink<T> + ?Sized, SB: ops::Source<T> + ?Sized>(
    op: Op,
    a: &mut SA,
    b: &SB,
    opts: StreamOptions<'_>,
) -> Result<(), Error> {
    match op {
        Op::Add => ops::add_assign_with(a, b, opts),
        Op::Sub => ops::sub_assign_with(a, b, opts),
        Op::Mul => ops::mul_assign_with(a, b, opts),
        Op::Div => ops::div_assign_with(a, b, opts),
    }
}

/// `a op= b` on views of every layout against the reference computed from a copy of `a`.
fn check_assign_views<T: Model>(
    op: Op,
    s: &Shapes,
    la: Layout,
    lb: Layout,
    chunk: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut a = Held::<T>::new(&s.out, la, seed);
    let b = Held::<T>::new(&s.b, lb, seed ^ 0x55);
    let want = expected(op, &a.view(), &b.view(), &s.out);
    let orig = a.data.clone();
    run_assign(
        op,
        &mut a.view_mut(),
        &b.view(),
        StreamOptions::new().chunk_bytes(chunk),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bits(a.view().iter().copied()), bits(want.iter().copied()));
    if la == Layout::Strided {
        // the elements between the selected ones are untouched
        let between = |d: &ArrayD<T>| -> Vec<u8> {
            bits(
                d.indexed_iter()
                    .filter(|(ix, _)| ix.slice().iter().any(|i| i % 2 == 1))
                    .map(|(_, &x)| x),
            )
        };
        prop_assert_eq!(between(&a.data), between(&orig));
    }
    Ok(())
}

macro_rules! assign_view_props {
    ($($name:ident: $t:ty),*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            $(
            #[test]
            #[cfg_attr(miri, ignore)]
            fn $name(op in op(), s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
                check_assign_views::<$t>(op, &s, la, lb, chunk, seed)?;
            }
            )*
        }
    };
}

assign_view_props!(assign_f32: f32, assign_f64: f64, assign_i8: i8, assign_u16: u16, assign_i32: i32, assign_u64: u64);

/// `a op= b` on a mapped `a` (C or Fortran order file) with a mapped `b`, comparing the
/// bytes on disk.
fn check_assign_files<T: Model>(
    op: Op,
    s: &Shapes,
    la: Layout,
    lb: Layout,
    chunk: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let a0 = Held::<T>::new(&s.out, Layout::C, seed);
    let b0 = Held::<T>::new(&s.b, Layout::C, seed ^ 0x55);
    let want = expected(op, &a0.view(), &b0.view(), &s.out);
    let b = read_only_file_with(dir.path(), "b", &b0.view(), order_of(lb));
    let mut a = file_with(dir.path(), "a", &a0.view(), order_of(la));
    a.flush().unwrap();
    run_assign(op, &mut a, &b, opts_for(chunk)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bits(a.view().iter().copied()), bits(want.iter().copied()));
    a.close().unwrap();
    let on_disk = std::fs::read(dir.path().join("a")).unwrap();
    prop_assert_eq!(on_disk, file_bytes_in_order(&want.view(), order_of(la)));
    prop_assert_eq!(
        std::fs::read(dir.path().join("b")).unwrap(),
        file_bytes_in_order(&b0.view(), order_of(lb))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    #[cfg_attr(miri, ignore)]
    fn assign_files_f32(op in op(), s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
        check_assign_files::<f32>(op, &s, la, lb, chunk, seed)?;
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn assign_files_i16(op in op(), s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
        check_assign_files::<i16>(op, &s, la, lb, chunk, seed)?;
    }

    /// Floats against ndarray's own `a += &b` on a clone.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn add_assign_matches_ndarray_operator(s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
        let mut a = Held::<f32>::new(&s.out, la, seed);
        let b = Held::<f32>::new(&s.b, lb, seed ^ 1);
        let mut want = a.view().to_owned();
        want += &b.view();
        ops::add_assign_with(&mut a.view_mut(), &b.view(), StreamOptions::new().chunk_bytes(chunk)).unwrap();
        prop_assert_eq!(a.view(), want.view());
    }

    /// `map_inplace` and `zip_map_inplace` (with another element type) on every layout.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn map_and_zip_map_inplace(s in shapes(), la in layout(), lb in layout(), chunk in chunk(), seed in any::<u64>()) {
        let opts = || StreamOptions::new().chunk_bytes(chunk);
        let mut a = Held::<f64>::new(&s.out, la, seed);
        let want = a.view().mapv(|x| x * 0.5 - 1.0);
        ops::map_inplace_with(&mut a.view_mut(), |x| x * 0.5 - 1.0, opts()).unwrap();
        prop_assert_eq!(a.view(), want.view());
        let b = Held::<i16>::new(&s.b, lb, seed ^ 7);
        let mut want = a.view().to_owned();
        Zip::from(&mut want).and(&b.view().broadcast(s.out.clone()).unwrap()).for_each(|x, &y| *x += f64::from(y));
        ops::zip_map_inplace_with(&mut a.view_mut(), &b.view(), |x, y| x + f64::from(y), opts()).unwrap();
        prop_assert_eq!(a.view(), want.view());
    }

    /// A `b` that does not broadcast to `a` gives an error naming both shapes and leaves
    /// `a` untouched, on views and on a mapped file.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn assign_shape_errors_leave_a_untouched(out in prop::collection::vec(1usize..5, 1..4), axis in 0usize..3, extra in 1usize..3, op in op(), seed in any::<u64>()) {
        let axis = axis % out.len();
        let mut bad = out.clone();
        bad[axis] = out[axis] + extra; // neither equal nor 1
        let b = Held::<i32>::new(&bad, Layout::C, seed);
        let mut a = Held::<i32>::new(&out, Layout::C, seed ^ 3);
        let before = a.data.clone();
        let err = run_assign(op, &mut a.view_mut(), &b.view(), StreamOptions::new()).unwrap_err();
        prop_assert_eq!(
            err.to_string(),
            format!("cannot broadcast the second input (shape {bad:?}) to the output (shape {out:?})")
        );
        prop_assert_eq!(&a.data, &before);

        let dir = tempfile::tempdir().unwrap();
        let mut m = file_with(dir.path(), "a", &before.view(), Order::C);
        m.flush().unwrap();
        let err = run_assign(op, &mut m, &b.data, StreamOptions::new().chunk_bytes(4)).unwrap_err();
        let is_broadcast = matches!(err, Error::Broadcast { .. });
        prop_assert!(is_broadcast);
        m.close().unwrap();
        prop_assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), bits(before.iter().copied()));
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn cancelling_in_place_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = unsafe { create_array::<i32>(dir.path().join("a"), [64, 64]) }.unwrap();
    a.view_mut().fill(5);
    let b = ndarray::Array1::<i32>::from_elem(64, 2);
    let mut calls = 0;
    let opts = StreamOptions::new().chunk_bytes(4096).progress(|p| {
        calls += 1;
        assert_eq!(p.total, 16384);
        if p.done >= 8192 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let err = ops::mul_assign_with(&mut a, &b, opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                done: 8192,
                total: 16384,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(calls, 2);
    a.close().unwrap();
    let bytes = std::fs::read(dir.path().join("a")).unwrap();
    let vals: &[i32] = bytemuck::cast_slice(&bytes);
    assert!(vals[..2048].iter().all(|&x| x == 10));
    assert!(vals[2048..].iter().all(|&x| x == 5));
}

/// Many chunks through real write-back, in place on a file that starts mid-page (a
/// header before the array) and on a `.npy`, with a mapped `b`; the header is untouched.
#[test]
#[cfg_attr(miri, ignore)]
fn in_place_streaming_many_chunks_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let n: usize = 1 << 18; // 1 MiB of f32
    let a0: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let mut bm = unsafe { create_array::<f32>(dir.path().join("b"), [n as isize]) }.unwrap();
    bm.view_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = (i % 7) as f32);
    bm.close().unwrap();
    let b = unsafe { ndarray_mmap::mmap_array::<f32>(dir.path().join("b"), [-1]) }.unwrap();
    let want: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 - (i % 7) as f32).collect();

    for chunk in [4096usize, 65536, 300_000] {
        let path = dir.path().join("a");
        let mut a = unsafe {
            MapOptions::new()
                .offset(100)
                .create::<f32>(&path, [n as isize])
        }
        .unwrap();
        a.view_mut().assign(&ndarray::ArrayView1::from(&a0[..]));
        a.flush().unwrap();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(&[0xAB; 100]).unwrap(); // at offset 0
        }
        let mut calls = 0;
        let opts = opts_for(chunk).progress(|_| {
            calls += 1;
            ControlFlow::Continue(())
        });
        ops::sub_assign_with(&mut a, &b, opts).unwrap();
        assert_eq!(calls, (4 * n).div_ceil(chunk));
        a.close().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..100], &[0xAB; 100][..], "chunk {chunk}: header");
        assert_eq!(
            &bytes[100..],
            bytemuck::cast_slice::<f32, u8>(&want),
            "chunk {chunk}"
        );

        let npath = dir.path().join("a.npy");
        let mut a = unsafe { ndarray_mmap::create_npy::<f32>(&npath, [n as isize]) }.unwrap();
        a.view_mut().assign(&ndarray::ArrayView1::from(&a0[..]));
        ops::sub_assign_with(&mut a, &b, opts_for(chunk)).unwrap();
        ops::map_inplace_with(&mut a, |x| x * 2.0, opts_for(chunk)).unwrap();
        a.close().unwrap();
        let a = unsafe { ndarray_mmap::open_npy::<f32>(&npath) }.unwrap();
        let want2: Vec<f32> = want.iter().map(|x| x * 2.0).collect();
        assert_eq!(a.view().as_slice().unwrap(), &want2[..], "chunk {chunk}");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn in_place_on_copy_on_write_never_reaches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    std::fs::write(&path, vec![1u8; 3 * 8192]).unwrap();
    let mut a = unsafe { MapOptions::new().open_copy::<u8>(&path, [-1]) }.unwrap();
    let b = ndarray::arr0(4u8);
    ops::add_assign_with(&mut a, &b, StreamOptions::new().chunk_bytes(4096)).unwrap();
    assert!(a.view().iter().all(|&x| x == 5));
    a.close().unwrap();
    assert!(std::fs::read(&path).unwrap().iter().all(|&x| x == 1));
}

/// Default options on 2 MiB arrays: one chunk big enough to be split across threads
/// with the `rayon` feature (`cargo test --features rayon`), on one thread without.
#[test]
#[cfg_attr(miri, ignore)]
fn in_place_big_chunks_match_the_reference() {
    let n = 1usize << 19;
    let mut a = ndarray::Array2::from_shape_fn((n / 64, 64), |(i, j)| (i * 64 + j) as u32);
    let b = ndarray::Array1::from_shape_fn(64, |j| u32::MAX - j as u32);
    let mut want = a.clone();
    want.zip_mut_with(&b.broadcast((n / 64, 64)).unwrap(), |x, &y| {
        *x = x.wrapping_mul(y).wrapping_add(1)
    });
    ops::mul_assign(&mut a, &b).unwrap();
    ops::map_inplace(&mut a.view_mut(), |x| x.wrapping_add(1)).unwrap();
    assert_eq!(a, want);
    let mut t = a.t().to_owned(); // Fortran order: `to_owned` keeps the transposed layout
    ops::zip_map_inplace(&mut t.view_mut(), &a.t(), |x, y| x ^ y).unwrap();
    assert!(t.iter().all(|&x| x == 0));
}

/// Default options on 2 MiB arrays for the `*_into` family: one chunk big enough to be
/// split across threads with the `rayon` feature, on one thread without; on views and on
/// mapped files.
#[test]
#[cfg_attr(miri, ignore)]
fn into_big_chunks_match_the_reference() {
    let n = 1usize << 19;
    let a = ndarray::Array2::from_shape_fn((n / 64, 64), |(i, j)| (i * 64 + j) as i32);
    let b = ndarray::Array1::from_shape_fn(64, |j| i32::MAX - j as i32);
    let want = ndarray::Array2::from_shape_fn((n / 64, 64), |(i, j)| a[[i, j]].wrapping_sub(b[j]));
    let mut c = ndarray::Array2::<i32>::zeros((n / 64, 64));
    ndarray_mmap::sub_into(&a, &b, &mut c).unwrap();
    assert_eq!(c, want);
    let mut f = ndarray::Array2::<i32>::zeros((64, n / 64));
    let mut ft = f.view_mut().reversed_axes(); // Fortran-order output of the same shape
    ndarray_mmap::zip_map_into(&a.view(), &b.view(), &mut ft, |x, y| x.wrapping_sub(y)).unwrap();
    assert_eq!(f.t(), want);

    let dir = tempfile::tempdir().unwrap();
    let pa = dir.path().join("a.i32");
    let mut fa = unsafe { create_array::<i32>(&pa, [(n / 64) as isize, 64]) }.unwrap();
    fa.view_mut().assign(&a.view().into_dyn());
    let mut out =
        unsafe { create_array::<i32>(dir.path().join("c.i32"), [(n / 64) as isize, 64]) }.unwrap();
    ndarray_mmap::sub_into(&fa, &b, &mut out).unwrap();
    out.flush().unwrap();
    assert_eq!(out.view(), want.view().into_dyn());
    assert_eq!(
        ops::sum(&out).unwrap(),
        want.iter().fold(0i64, |s, &x| s.wrapping_add(x as i64))
    );
}

/// Two maps of one file as input and output (file-safety issue, case 9): overlapping
/// bytes at different positions are refused before anything is written; the very same
/// bytes in the same layout are the in-place operation.
#[test]
fn two_maps_of_one_file_alias_only_as_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.f32");
    let vals: Vec<f32> = (1..=8).map(|x| x as f32).collect();
    std::fs::write(&path, bytemuck::cast_slice(&vals)).unwrap();
    let ones = ndarray::Array1::<f32>::ones(7);
    // numpy's a[1:] = a[:-1] + 1 reads every input before writing: a running sum would not.
    let head = unsafe { MapOptions::new().len(28).open::<f32>(&path, [-1]) }.unwrap();
    let mut tail = unsafe { MapOptions::new().offset(4).open_mut::<f32>(&path, [-1]) }.unwrap();
    let e = add_into(&head, &ones, &mut tail).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    assert!(
        e.to_string().contains("bytes 4..32") && e.to_string().contains("bytes 0..28"),
        "{e}"
    );
    let e = ops::add_assign(&mut tail, &head).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytemuck::cast_slice::<f32, u8>(&vals)
    );
    drop((head, tail));
    // The same bytes, the same layout: elementwise in place, as numpy's np.add(a, 1, out=a).
    let a = unsafe { MapOptions::new().open::<f32>(&path, [-1]) }.unwrap();
    let mut c = unsafe { MapOptions::new().open_mut::<f32>(&path, [-1]) }.unwrap();
    add_into(&a, &ndarray::Array1::<f32>::ones(8), &mut c).unwrap();
    let want: Vec<f32> = vals.iter().map(|x| x + 1.0).collect();
    assert_eq!(c.view().iter().copied().collect::<Vec<_>>(), want);
    // The same bytes in another order (a transposed view of them) are refused.
    drop((a, c));
    let a = unsafe { MapOptions::new().open::<f32>(&path, [2, 4]) }.unwrap();
    let mut c = unsafe {
        MapOptions::new()
            .order(Order::F)
            .open_mut::<f32>(&path, [2, 4])
    }
    .unwrap();
    let e = add_into(&a, &ndarray::Array2::<f32>::ones((2, 4)), &mut c).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    // A copy-on-write output never writes the file: no alias.
    let mut p = unsafe { MapOptions::new().open_copy::<f32>(&path, [2, 4]) }.unwrap();
    drop(c);
    let a = unsafe { MapOptions::new().offset(4).len(16).open::<f32>(&path, [-1]) }.unwrap();
    let mut p1 = unsafe { MapOptions::new().open_copy::<f32>(&path, [4]) }.unwrap();
    add_into(&a, &ndarray::Array1::<f32>::ones(4), &mut p1).unwrap();
    assert_eq!(
        p1.view().iter().copied().collect::<Vec<_>>(),
        vec![4.0, 5.0, 6.0, 7.0]
    );
    p.view_mut().fill(0.0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytemuck::cast_slice::<f32, u8>(&want)
    );
}

/// A cancel that arrives with the last chunk finds nothing left to cancel: the call
/// succeeds and the output is whole (file-safety issue, smaller defects).
#[test]
fn a_cancel_after_the_last_chunk_is_not_a_cancel() {
    let a = ndarray::Array1::<u8>::from_elem(10_000, 3);
    let mut c = ndarray::Array1::<u8>::zeros(10_000);
    let opts = StreamOptions::new().chunk_bytes(4096).progress(|p| {
        if p.done == p.total {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    ops::map_into_with(&a, &mut c, |x| x * 2, opts).unwrap();
    assert!(c.iter().all(|&x| x == 6));
    let opts = StreamOptions::new()
        .chunk_bytes(4096)
        .progress(|_| ControlFlow::Break(()));
    let s = ops::sum_with(&ndarray::Array1::<u8>::from_elem(100, 1), opts).unwrap();
    assert_eq!(s, 100);
}

/// Views of two maps of one file alias as much as the maps do: they are located by
/// address in the table of live maps.
#[test]
fn views_of_maps_of_one_file_are_checked_too() {
    use ndarray::s;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.f64");
    let vals: Vec<f64> = (0..8).map(f64::from).collect();
    std::fs::write(&path, bytemuck::cast_slice(&vals)).unwrap();
    let whole = unsafe { MapOptions::new().open::<f64>(&path, [-1]) }.unwrap();
    let mut c = unsafe { MapOptions::new().offset(8).open_mut::<f64>(&path, [-1]) }.unwrap();
    let wv = whole.view();
    let e = ops::map_into(&wv.slice(s![..7]), &mut c, |x| x).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    let e = ops::map_into(&wv.slice(s![1..;-1]), &mut c, |x| x).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    let mut cv = c.view_mut();
    let e = ops::map_into(&wv.slice(s![..7]), &mut cv, |x| x).unwrap_err();
    assert!(matches!(e, Error::Aliased { .. }), "{e}");
    // The same bytes in the same layout through views: in place.
    ops::map_into(&wv.slice(s![1..]), &mut cv, |x| x + 0.5).unwrap();
    drop(cv);
    assert_eq!(c.view()[0], 1.5);
    // Disjoint bytes of the same file are fine.
    let mut d = unsafe { MapOptions::new().offset(32).open_mut::<f64>(&path, [-1]) }.unwrap();
    drop(c);
    ops::map_into(&wv.slice(s![..4]), &mut d, |x| x * 2.0).unwrap();
    drop(wv);
    drop(whole);
    let now: Vec<f64> = bytemuck::cast_slice(&std::fs::read(&path).unwrap()).to_vec();
    assert_eq!(now, vec![0.0, 1.5, 2.5, 3.5, 0.0, 3.0, 5.0, 7.0]);
}

/// Other threads mapping and unmapping files meanwhile never hide an alias: a map's entry
/// in the table of live maps leaves before its memory does, so an address reused by
/// another map is never taken for the old one (found by an adversarial review).
#[test]
fn aliasing_is_found_while_other_threads_map_and_unmap() {
    use ndarray::s;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..4)
        .map(|i| {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, vec![0u8; 8192]).unwrap();
            p
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churn: Vec<_> = (0..2)
        .map(|t| {
            let (files, stop) = (files.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let a = unsafe { ndarray_mmap::mmap_array::<u8>(&files[1 + i % 3], [-1]) };
                    drop(a.unwrap());
                }
            })
        })
        .collect();
    let mut missed = 0;
    let start = std::time::Instant::now();
    let mut rounds = 0;
    while start.elapsed() < std::time::Duration::from_secs(2) {
        rounds += 1;
        let a = unsafe { ndarray_mmap::mmap_array::<u8>(&files[0], [-1]) }.unwrap();
        let mut c = unsafe { MapOptions::new().open_mut::<u8>(&files[0], [-1]) }.unwrap();
        let av = a.view();
        let mut cv = c.view_mut();
        match ops::map_into(&av.slice(s![..8191]), &mut cv.slice_mut(s![1..]), |x| x) {
            Err(Error::Aliased { .. }) => {}
            Ok(()) => missed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
    assert_eq!(missed, 0, "{missed} aliased calls of {rounds} went through");
}

/// An element aligned to more than the scratch buffer's 16 bytes: written through the map
/// under `Bounded`, not through the (misaligned) buffer, and never a panic.
#[test]
fn over_aligned_elements_stream_under_bounded_paging() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C, align(64))]
    struct Wide([f32; 16]);
    // SAFETY: sixteen f32 and no padding (64 bytes, aligned to 64).
    unsafe impl bytemuck::Zeroable for Wide {}
    // SAFETY: as above; every bit pattern is a valid [f32; 16].
    unsafe impl bytemuck::Pod for Wide {}
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.bin");
    let n = 100_000usize; // 1 MiB pieces: malloc returns them 16 bytes past a page
    std::fs::write(&path, vec![0u8; 64 * n]).unwrap();
    let mut c = unsafe { MapOptions::new().open_mut::<Wide>(&path, [-1]) }.unwrap();
    let a = ndarray::Array1::<f32>::from_iter((0..n).map(|i| i as f32));
    let opts = StreamOptions::new()
        .paging(ops::Paging::Bounded)
        .chunk_bytes(1 << 20);
    ops::map_into_with(&a, &mut c, |x| Wide([x; 16]), opts).unwrap();
    assert!(
        c.view()
            .iter()
            .enumerate()
            .all(|(i, w)| w.0 == [i as f32; 16])
    );
}

/// An output truncated behind the locks is an error under every paging, and the file is
/// not grown back (writing through the file could have extended it).
#[test]
fn a_truncated_output_is_an_error_and_stays_truncated() {
    for paging in [ops::Paging::Bounded, ops::Paging::Cached] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.f64");
        std::fs::write(&path, vec![0u8; 8 * 4096]).unwrap();
        let mut c = unsafe { MapOptions::new().open_mut::<f64>(&path, [-1]) }.unwrap();
        let cut = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096);
        if cfg!(windows) {
            // Windows refuses to truncate a mapped file: the case cannot arise there.
            assert!(cut.is_err(), "Windows truncated a mapped file");
            continue;
        }
        cut.unwrap();
        let a = ndarray::Array1::<f64>::from_elem(4096, 1.0);
        let opts = StreamOptions::new().paging(paging).chunk_bytes(4096);
        let r = ops::map_into_with(&a, &mut c, |x| x + 1.0, opts);
        drop(c);
        assert!(
            matches!(r, Err(Error::Unreadable { .. })),
            "{paging:?}: {r:?}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096, "{paging:?}");
    }
}

/// Under `Paging::Bounded` the pages a stream brings in go again, whatever the chunk: the
/// page cache holds a file in folios of up to 2 MiB, and a folio across a chunk boundary
/// used to stay (half the file with 1 MiB chunks, on a kernel that reads ahead in large
/// folios). Also for a map at an offset, whose chunks never meet a folio boundary.
#[cfg(target_os = "linux")]
#[test]
fn bounded_streams_drop_what_they_brought_in_at_any_chunk_size() {
    use crate::page_cache::{drop_file, resident};
    // On the disk: a tmpfs (often /tmp) keeps its pages in the page cache for good.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 32 << 20; // 128 MiB of f32: enough for the read-ahead to reach 2 MiB folios
    let pa = dir.path().join("a.f32");
    let block: Vec<u8> = (0..1000u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let mut w = std::io::BufWriter::new(std::fs::File::create(&pa).unwrap());
    for k in (0..n).step_by(1000) {
        std::io::Write::write_all(&mut w, &block[..4 * (n - k).min(1000)]).unwrap();
    }
    drop(w);
    // The sum of i % 1000 over the first m indices.
    let sum_to =
        |m: u64| (m / 1000 * 499_500 + (m % 1000) * (m % 1000).saturating_sub(1) / 2) as f64;
    for (offset, chunk) in [(0u64, 1usize << 20), (4100, 3 << 20)] {
        drop_file(&pa);
        let (res, all) = resident(&pa);
        assert!(
            res * 20 < all,
            "eviction did not work here: {res} of {all} pages cached"
        );
        let a = unsafe { MapOptions::new().offset(offset).open::<f32>(&pa, [-1]) }.unwrap();
        let opts = || {
            StreamOptions::new()
                .chunk_bytes(chunk)
                .paging(ops::Paging::Bounded)
        };
        let s: f64 = ops::sum_with(&a, opts()).unwrap();
        assert_eq!(s, sum_to(n as u64) - sum_to(offset / 4), "offset {offset}");
        let (res, all) = resident(&pa);
        assert!(
            res * 20 < all,
            "input at offset {offset}, {chunk}-byte chunks: {res} of {all} pages still cached"
        );
        let pc = dir.path().join(format!("c{offset}.f32"));
        let mut c = unsafe { create_array::<f32>(&pc, [a.len()]) }.unwrap();
        drop_file(&pc);
        ops::map_into_with(&a, &mut c, |x| x + 1.0, opts()).unwrap();
        let (res, all) = resident(&pc);
        assert!(
            res * 20 < all,
            "output, {chunk}-byte chunks: {res} of {all} pages still cached"
        );
        assert_eq!(c.view()[7], a.view()[7] + 1.0);
        drop(a);
    }
}

/// The default policy (`Paging::Auto`) looks at the page cache: an input that is not
/// cached streams `Bounded` (its pages dropped behind the stream) even though it fits in
/// memory many times over; an input that is cached is left alone (`Cached`).
#[cfg(target_os = "linux")]
#[test]
fn the_default_drops_a_cold_input_behind_the_stream_and_leaves_a_warm_one() {
    use crate::page_cache::{resident, write_cold};
    // On the disk: a tmpfs (often /tmp) keeps its pages in the page cache for good.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 16 << 20; // 64 MiB of f32
    let pa = dir.path().join("a.f32");
    write_cold(&pa, &vec![1u8; 4 * n]);
    let a = unsafe { ndarray_mmap::mmap_array::<f32>(&pa, [-1]) }.unwrap();
    assert!(a.resident_share().is_some_and(|s| s < 0.5));
    let sum = |a: &ndarray_mmap::MmapArray<f32>| ops::sum_with(a, StreamOptions::new()).unwrap();
    let expected = sum(&a);
    let (res, all) = resident(&pa);
    assert!(
        res * 10 < all,
        "a cold input stayed cached after a default stream: {res} of {all} pages"
    );
    // Warm: read it whole, then the default leaves it cached.
    let _ = std::fs::read(&pa).unwrap();
    assert!(a.resident_share().is_some_and(|s| s > 0.5));
    assert_eq!(sum(&a), expected);
    let (res, all) = resident(&pa);
    assert!(
        res * 10 > all * 9,
        "a warm input was dropped by a default stream: {res} of {all} pages left"
    );
}

/// An output the operation reads too (in place), whose pages are not cached, is read from
/// the disk like a cold input: the default streams it `Bounded`, its pages written back and
/// dropped behind the stream, rather than keeping the whole file in memory.
#[cfg(target_os = "linux")]
#[test]
fn the_default_streams_a_cold_in_place_output_bounded() {
    use crate::page_cache::{resident, write_cold};
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 16 << 20; // 64 MiB of f32
    let path = dir.path().join("c.f32");
    write_cold(&path, &vec![0u8; 4 * n]);
    let mut c = unsafe { ndarray_mmap::mmap_array_mut::<f32>(&path, [-1]) }.unwrap();
    ops::map_inplace_with(&mut c, |x| x + 2.0, StreamOptions::new()).unwrap();
    assert_eq!(c.view()[n - 1], 2.0);
    let (res, all) = resident(&path);
    assert!(
        res * 4 < all,
        "a cold in-place output stayed cached after a default stream: {res} of {all} pages"
    );
}

/// Pages of `path` that are dirty or under write-back, and pages cached (`cachestat`,
/// Linux 6.5).
#[cfg(target_os = "linux")]
fn dirty_pages(path: &std::path::Path) -> (u64, u64) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    let f = std::fs::File::open(path).unwrap();
    let range = Range { off: 0, len: 0 }; // the whole file
    let mut st = Stat::default();
    const SYS_CACHESTAT: libc::c_long = 451; // the same number on every architecture
    // SAFETY: cachestat reads one range and writes one stat struct, both live here.
    let rc = unsafe { libc::syscall(SYS_CACHESTAT, f.as_raw_fd(), &range, &mut st, 0u32) };
    assert_eq!(
        rc,
        0,
        "cachestat (Linux 6.5+) failed: {}",
        std::io::Error::last_os_error()
    );
    (st.dirty, st.cache)
}

/// A flush after a default stream overlaps it: the engine hands each finished chunk of a
/// big mapped output to write-back as it goes, so the pages are on their way to the disk
/// when the stream returns, long before the kernel's own write-back (30 s). A new output
/// and a cached one alike (both `Cached` here: 32 MiB mapped, inputs in memory): a helper
/// thread starts their write-back (16 MiB or more). `Cached` with `write_through(false)` leaves
/// the pages dirty.
#[cfg(target_os = "linux")]
#[test]
fn a_default_stream_starts_writing_a_big_output_back() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 8 << 20; // 32 MiB of f32
    let a = ndarray::Array1::<f32>::from_elem(n, 1.5);
    let run = |name: &str, warm: bool, opts: StreamOptions| {
        let path = dir.path().join(name);
        let mut c = unsafe { create_array::<f32>(&path, [n]) }.unwrap();
        if warm {
            c.view_mut().fill(0.0); // every page in the page cache
            c.flush().unwrap();
        }
        ops::map_into_with(&a, &mut c, |x| x * 2.0, opts).unwrap();
        assert_eq!(c.view()[n - 1], 3.0);
        (path, c)
    };
    // Kept dirty when asked: the kernel would write them in 30 s.
    let (path, _kept) = run(
        "kept.f32",
        true,
        StreamOptions::new()
            .paging(ops::Paging::Cached)
            .write_through(false),
    );
    let (dirty, cached) = dirty_pages(&path);
    assert!(
        dirty * 10 > cached * 9,
        "write_through(false): only {dirty} of {cached} pages dirty"
    );
    // The default, over a new output and over a cached one: written back as it went (the
    // last chunks may still be on their way).
    for (name, warm) in [("new.f32", false), ("warm.f32", true)] {
        let (path, _c) = run(name, warm, StreamOptions::new());
        written_back_within_10_s(name, || dirty_pages(&path));
    }
}

/// Waits until fewer than a tenth of the pages `pages` counts (dirty, cached) are dirty;
/// fails naming `what` when they still are 10 s later.
#[cfg(target_os = "linux")]
fn written_back_within_10_s(what: &str, pages: impl Fn() -> (u64, u64)) {
    let start = std::time::Instant::now();
    loop {
        let (dirty, cached) = pages();
        if dirty * 10 < cached.max(1) {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{what}: a default stream left {dirty} of {cached} pages dirty 10 s later"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The same for a Zarr output of 32 MiB in 1 MiB chunks: the engine decides by the whole
/// array's size, so each small chunk is handed to write-back as it finishes (it was not
/// before, and a flush of such an array then wrote every chunk). `write_through(false)`
/// leaves the pages dirty.
#[cfg(all(target_os = "linux", feature = "zarr"))]
#[test]
fn a_default_stream_starts_writing_back_the_small_chunks_of_a_big_zarr_output() {
    use ndarray_mmap::zarr;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 8 << 20; // 32 MiB of f32
    let a = ndarray::Array1::<f32>::from_elem(n, 1.5);
    // Pages of the chunk files: (dirty or under write-back, cached).
    let dirty_chunks = |path: &std::path::Path| {
        let mut sum = (0, 0);
        for e in std::fs::read_dir(path.join("c")).unwrap() {
            let (d, c) = dirty_pages(&e.unwrap().path());
            sum = (sum.0 + d, sum.1 + c);
        }
        sum
    };
    let run = |name: &str, opts: StreamOptions| {
        let path = dir.path().join(name);
        let mut c = unsafe { zarr::create::<f32>(&path, &[n], &[n / 32]) }.unwrap();
        ops::map_into_with(&a, &mut c, |x| x * 2.0, opts).unwrap();
        assert_eq!(c.chunk(&[31]).unwrap().view()[n / 32 - 1], 3.0);
        (path, c)
    };
    let (path, _kept) = run(
        "kept.zarr",
        StreamOptions::new()
            .paging(ops::Paging::Cached)
            .write_through(false),
    );
    let (dirty, cached) = dirty_chunks(&path);
    assert!(
        cached > 0 && dirty * 10 > cached * 9,
        "write_through(false): only {dirty} of {cached} pages dirty"
    );
    // (`Cached` as the engine picks here, so that a bounded stream's own write-back
    // cannot pass for it.)
    let (path, _c) = run(
        "default.zarr",
        StreamOptions::new().paging(ops::Paging::Cached),
    );
    written_back_within_10_s("the chunks of default.zarr", || dirty_chunks(&path));
}

/// Resident kilobytes of this process's maps of `path` (`/proc/self/smaps`).
#[cfg(target_os = "linux")]
fn mapped_rss_kib(path: &std::path::Path) -> u64 {
    let name = path.canonicalize().unwrap().to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            inside = line.ends_with(&name);
        } else if inside && first == "Rss:" {
            kib += line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib
}

/// An output the operation only writes, whose pages are not in the page cache, is written
/// with `pwrite` by the default policy even when it keeps everything in memory (`Cached`):
/// through the map, every page of a dense file would be read from the disk (and faulted
/// into the process) before it is overwritten. A cached output is written in place.
#[cfg(target_os = "linux")]
#[test]
fn a_default_stream_writes_a_cold_output_through_the_file() {
    use crate::page_cache::drop_file;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 4 << 20; // 16 MiB of f32
    let path = dir.path().join("c.f32");
    std::fs::write(&path, vec![7u8; 4 * n]).unwrap(); // dense, on the disk
    let a = ndarray::Array1::<f32>::from_elem(n, 1.5);
    for warm in [false, true] {
        drop_file(&path);
        if warm {
            let _ = std::fs::read(&path).unwrap();
        }
        let mut c = unsafe { ndarray_mmap::mmap_array_mut::<f32>(&path, [n]) }.unwrap();
        ops::map_into_with(&a, &mut c, |x| x * 2.0, StreamOptions::new()).unwrap();
        let rss = mapped_rss_kib(&path);
        let all = 4 * n as u64 / 1024;
        if warm {
            assert!(
                rss * 10 > all * 9,
                "a cached output: {rss} of {all} KiB mapped in"
            );
        } else {
            assert!(
                rss * 20 < all,
                "a cold output was faulted in: {rss} of {all} KiB"
            );
        }
        assert!(c.view().iter().all(|&x| x == 3.0));
        c.close().unwrap();
    }
}
