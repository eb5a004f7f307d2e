//! What growth costs: building a 4 MiB array of 1 KiB rows by `append`ing one row at a time,
//! or 64 at a time, against the baseline of creating the file at its final size and
//! writing the same rows into it. Also `create` with and without disk reservation.
//!
//! `cargo bench --bench growth`. Each `append` upgrades the lock, reserves the new blocks,
//! extends the file and remaps it, so the one-row case measures that fixed cost. Nothing is
//! flushed (a flush costs the same in every case and is dominated by the disk).
// SAFETY (for every unsafe block below): the files are the bench's own, in a private
// temporary directory.
#![allow(clippy::undocumented_unsafe_blocks)]

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array2, s};
use ndarray_mmap::{MapOptions, create_array};

const ROWS: usize = 4096;
const COLS: usize = 256; // 1 KiB rows of f32

fn growth(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("g.f32");
    let rows = Array2::from_shape_fn((ROWS, COLS), |(i, j)| (i * COLS + j) as f32);
    let mut group = c.benchmark_group("build_4MiB_of_1KiB_rows");
    group.sample_size(10);
    group.bench_function("baseline: create at final size, write rows", |b| {
        b.iter(|| {
            let mut a = unsafe { create_array::<f32>(&path, [ROWS as isize, COLS as isize]) }
                .expect("create");
            for (i, row) in rows.outer_iter().enumerate() {
                a.view_mut().slice_mut(s![i, ..]).assign(&row);
            }
            drop(a); // no flush: measure growth, not the disk
        })
    });
    for batch in [64, 1] {
        group.bench_function(format!("append {batch} rows at a time"), |b| {
            b.iter(|| {
                let mut a =
                    unsafe { create_array::<f32>(&path, [0, COLS as isize]) }.expect("create");
                for start in (0..ROWS).step_by(batch) {
                    a.append(&rows.slice(s![start..start + batch, ..]))
                        .expect("append");
                }
                drop(a); // no flush: measure growth, not the disk
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("create_256MiB");
    group.sample_size(10);
    for (name, reserve) in [
        ("sparse (preallocate(false))", false),
        ("reserved (default)", true),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let a = unsafe {
                    MapOptions::new()
                        .preallocate(reserve)
                        .create::<u8>(&path, [256 << 20])
                }
                .expect("create");
                drop(a); // no flush: measure growth, not the disk
            })
        });
    }
    group.finish();
}

criterion_group!(benches, growth);
criterion_main!(benches);
