//! Open + view cost against file size (sparse files, 1 MiB to 64 GiB), next to
//! `std::fs::read` of the same file where memory allows.
//!
//! `cargo bench --bench open`. Opening maps the file and builds the view; nothing is read,
//! so the time should be flat in the size, while reading grows with it.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray_mmap::mmap_array;

const MIB: u64 = 1 << 20;

fn sparse(dir: &Path, size: u64) -> std::path::PathBuf {
    let path = dir.join(format!("sparse_{size}.f32"));
    let f = std::fs::File::create(&path).expect("create bench file");
    f.set_len(size).expect("size bench file");
    path
}

fn label(size: u64) -> String {
    if size >= 1 << 30 {
        format!("{}GiB", size >> 30)
    } else {
        format!("{}MiB", size >> 20)
    }
}

fn open_vs_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("open_view");
    group.sample_size(20);
    for size in [MIB, 64 * MIB, 1024 * MIB, 16 << 30, 64 << 30] {
        let path = sparse(dir.path(), size);
        group.bench_with_input(
            BenchmarkId::new("mmap_array+view", label(size)),
            &path,
            |b, p| {
                b.iter(|| {
                    let a = unsafe { mmap_array::<f32>(p, [-1, 1024]) }.expect("map");
                    let v = a.view();
                    black_box(v.shape()[0]);
                })
            },
        );
        // Reading needs the whole file in memory: only where that is cheap enough.
        if size <= 1024 * MIB {
            group.bench_with_input(BenchmarkId::new("fs::read", label(size)), &path, |b, p| {
                b.iter(|| black_box(std::fs::read(p).expect("read").len()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, open_vs_read);
criterion_main!(benches);
