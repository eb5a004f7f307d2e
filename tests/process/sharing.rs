//! Sharing between processes, advisory locks across processes, and durability of
//! `flush` against SIGKILL. Each test spawns this binary again as a child helper.
// SAFETY (for every unsafe block below): the tests map files in their own temporary
// directories; only the test's own processes, which use this crate's locks, touch them.
#![allow(clippy::undocumented_unsafe_blocks)]

use crate::common;

use std::io::BufRead;
use std::path::Path;

use common::{child, spawn_until, tell_parent, wait_for_parent, within};
use ndarray::{Array2, arr1};
use ndarray_mmap::{Error, create_array, mmap_array, mmap_array_mut};

pub(crate) fn suite() -> common::Suite {
    common::suite(
        &[
            (
                "a_childs_writes_reach_our_live_view",
                childs_writes_reach_our_live_view,
            ),
            (
                "our_growth_is_seen_by_a_new_child_map",
                growth_is_seen_by_a_child,
            ),
            (
                "a_childs_map_refuses_our_replace_at_once_but_not_our_growth",
                childs_map_refuses_resizes,
            ),
            (
                "flushed_data_survives_sigkill",
                flushed_data_survives_sigkill,
            ),
        ],
        &[
            ("write", child_write),
            ("check", child_check),
            ("hold", child_hold),
            ("write_then_hang", child_write_then_hang),
        ],
    )
}

fn value(i: usize) -> f64 {
    i as f64 * 1.5 + 1.0
}

/// Child: checks the parent's values (i as f64), then overwrites them with `value(i)`.
fn child_write(args: &[String]) {
    let mut a = unsafe { mmap_array_mut::<f64>(&args[0], [-1]) }.unwrap();
    for (i, x) in a.view_mut().iter_mut().enumerate() {
        assert_eq!(
            *x, i as f64,
            "the child does not see the parent's write at {i}"
        );
        *x = value(i);
    }
    a.flush().unwrap();
    a.close().unwrap();
}

fn childs_writes_reach_our_live_view() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("shared.f64");
    let n = 10_000;
    let mut a = unsafe { create_array::<f64>(&path, [n]) }.unwrap();
    // Written to the page cache only: no flush, yet the child must see it.
    a.view_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f64);
    let st = child("write", &[path.to_str().unwrap()]).status().unwrap();
    assert!(st.success(), "child failed: {st}");
    // The same map, not re-opened.
    for (i, &x) in a.view().iter().enumerate() {
        assert_eq!(x, value(i), "element {i} does not show the child's write");
    }
}

/// Child: maps `[-1, cols]` f32 and checks it equals rows `r` filled with `r + 1`.
fn child_check(args: &[String]) {
    let cols: isize = args[1].parse().unwrap();
    let rows: usize = args[2].parse().unwrap();
    let a = unsafe { mmap_array::<f32>(&args[0], [-1, cols]) }.unwrap();
    assert_eq!(a.shape(), &[rows, cols as usize]);
    for (r, row) in a.view().outer_iter().enumerate() {
        assert!(row.iter().all(|&x| x == r as f32 + 1.0), "row {r}: {row}");
    }
}

fn growth_is_seen_by_a_child() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("grown.f32");
    let mut a = unsafe { create_array::<f32>(&path, [1, 3]) }.unwrap();
    a.view_mut().fill(1.0);
    for r in 1..50 {
        a.append(&arr1(&[r as f32 + 1.0; 3])).unwrap();
    }
    a.flush().unwrap();
    let p = path.to_str().unwrap();
    let st = child("check", &[p, "3", "50"]).status().unwrap();
    assert!(st.success(), "child saw wrong data: {st}");
    a.grow(60).unwrap();
    a.view_mut()
        .slice_mut(ndarray::s![50.., ..])
        .outer_iter_mut()
        .enumerate()
        .for_each(|(r, mut row)| row.fill(r as f32 + 51.0));
    // Not even flushed: the child reads the page cache.
    let st = child("check", &[p, "3", "60"]).status().unwrap();
    assert!(
        st.success(),
        "child saw wrong data after a second grow: {st}"
    );
}

/// Child: maps the file read-only, says "mapped", and holds the map until stdin closes.
fn child_hold(args: &[String]) {
    let a = unsafe { mmap_array::<u8>(&args[0], [-1]) }.unwrap();
    tell_parent("mapped");
    wait_for_parent();
    // Still mapped and readable whatever the parent did meanwhile (growth never cuts).
    assert_eq!(a.shape(), &[100]);
    assert!(a.view().iter().skip(1).all(|&x| x == 9));
    a.close().unwrap();
}

fn childs_map_refuses_resizes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("held.u8");
    std::fs::write(&path, [9u8; 100]).unwrap();
    let mut ours = unsafe { mmap_array_mut::<u8>(&path, [-1]) }.unwrap();
    let (mut kid, _out) = spawn_until(child("hold", &[path.to_str().unwrap()]), "mapped");

    // A create from this process must fail at once, and not truncate the file.
    let p = path.clone();
    let created = within(30, move || {
        unsafe { create_array::<u8>(&p, [10]) }.map(drop)
    });
    match created {
        Err(Error::Locked {
            exclusive: true,
            ref path,
            ..
        }) => assert_eq!(path, &tmp.path().join("held.u8")),
        other => panic!("create while another process maps the file: {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), [9u8; 100]);
    // Growing our own map does not wait for the reader: extending a file leaves its
    // map valid. The reader keeps its 100 bytes.
    ours.view_mut()[0] = 1;
    ours.grow(200).unwrap();
    assert_eq!(ours.view()[0], 1);
    assert_eq!(ours.view()[150], 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 200);
    drop(kid.stdin.take());
    assert!(kid.wait().unwrap().success(), "the child's map broke");
    ours.close().unwrap();
}

/// Child: creates a 2-column i64 array, appends `n` rows, flushes, says "flushed", and
/// waits to be killed.
fn child_write_then_hang(args: &[String]) {
    let n: usize = args[1].parse().unwrap();
    let mut a = unsafe { create_array::<i64>(&args[0], [0, 2]) }.unwrap();
    let rows = Array2::from_shape_fn((n, 2), |(i, j)| (i * 2 + j) as i64 * 7);
    a.append(&rows).unwrap();
    a.flush().unwrap();
    tell_parent("flushed");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn flushed_data_survives_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("durable.i64");
    let n = 100_000;
    let (mut kid, mut out) = spawn_until(
        child("write_then_hang", &[path.to_str().unwrap(), &n.to_string()]),
        "flushed",
    );
    kid.kill().unwrap(); // SIGKILL: no destructors, no exit handlers
    let st = kid.wait().unwrap();
    assert!(!st.success(), "the child was supposed to be killed: {st}");
    let mut rest = String::new();
    out.read_line(&mut rest).unwrap();
    check_durable(&path, n);
}

fn check_durable(path: &Path, n: usize) {
    assert_eq!(std::fs::metadata(path).unwrap().len(), (n * 16) as u64);
    let a = unsafe { mmap_array::<i64>(path, [-1, 2]) }.unwrap();
    assert_eq!(a.shape(), &[n, 2]);
    for (k, &x) in a.view().iter().enumerate() {
        assert_eq!(x, k as i64 * 7, "element {k} lost");
    }
}
