//! What reading the `.npy` header costs: `open_npy` (open, lock, read and parse the header,
//! check it, map) against mapping the same data as a raw array at the same offset
//! (`MapOptions::offset(128).open`), on one sparse 1 GiB file; plus the header parser
//! alone on numpy's bytes.
//!
//! `cargo bench --bench npy`. The ratio open_npy / raw is the header's overhead.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray_mmap::{MapOptions, NpyHeader, Order, open_npy};

fn npy_open(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.npy");
    let rows = 1usize << 18; // 2^18 × 1024 f32 = 1 GiB, sparse
    unsafe {
        MapOptions::new()
            .preallocate(false)
            .create_npy::<f32>(&path, [rows as isize, 1024])
    }
    .expect("create")
    .close()
    .expect("close");

    let mut group = c.benchmark_group("npy_open_view_1GiB");
    group.sample_size(50);
    group.bench_function("raw MapOptions::offset(128).open", |b| {
        b.iter(|| {
            let a = unsafe { MapOptions::new().offset(128).open::<f32>(&path, [-1, 1024]) }
                .expect("map");
            black_box(a.view().shape()[0]);
        })
    });
    group.bench_function("open_npy", |b| {
        b.iter(|| {
            let a = unsafe { open_npy::<f32>(&path) }.expect("map");
            black_box(a.view().shape()[0]);
        })
    });
    group.finish();

    let bytes = NpyHeader::new("<f4", &[rows, 1024], Order::C)
        .expect("header")
        .to_bytes();
    c.bench_function("NpyHeader::parse (128-byte header)", |b| {
        b.iter(|| {
            black_box(
                NpyHeader::parse(black_box(&bytes))
                    .expect("parse")
                    .shape()
                    .len(),
            )
        })
    });
}

criterion_group!(benches, npy_open);
criterion_main!(benches);
