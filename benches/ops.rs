//! In the page cache (no memory limit, warm): `add_into` against the memory-bandwidth
//! baselines, on one thread and (with `--features rayon`) split across cores.
//!
//! `cargo bench --bench ops` (add `--features rayon` for the parallel rows). Sizes: three
//! arrays of `OPS_BENCH_MIB` MiB each (default 64, well past the CPU caches).
//! - `compute/*`: the arithmetic alone. `vec_loop` is a plain `Vec<f32>` add (the
//!   memory-bandwidth bound), `ndarray_zip` ndarray's `Zip`, `ndarray_alloc` is `&a + &b`
//!   (allocates its result), `add_into_views` the crate on in-memory arrays,
//!   `add_assign_views` its in-place form `c += b`,
//!   `add_into_maps` the crate on mapped files already in the page cache.
//! - `maps_flush/*`: `add_into` on mapped files including `flush()` (the data reaches the
//!   disk), the figure to put next to numpy's `np.add(a, b, out=c); c.flush()` on
//!   `np.memmap` (`benches/in_cache.sh` runs both and prints the ratio).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Zip};
use ndarray_mmap::ops::{StreamOptions, add_assign_with, add_into_with};
use ndarray_mmap::{MmapArrayMut, create_array};

fn mib() -> usize {
    std::env::var("OPS_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

fn thread_modes() -> Vec<(&'static str, bool)> {
    if cfg!(feature = "rayon") {
        vec![("1thread", false), ("rayon", true)]
    } else {
        vec![("1thread", false)]
    }
}

fn filled(dir: &std::path::Path, name: &str, n: usize, v: f32) -> MmapArrayMut<f32> {
    let mut m = unsafe { create_array::<f32>(dir.join(name), [n as isize]) }.expect("create");
    m.view_mut().fill(v);
    m.flush().expect("flush");
    m
}

fn compute(c: &mut Criterion) {
    let n = mib() << 18; // f32 per array
    let mut group = c.benchmark_group("compute");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(3 * 4 * n as u64));

    let a = vec![1.5f32; n];
    let b = vec![2.25f32; n];
    let mut out = vec![0f32; n];
    group.bench_function("vec_loop", |bench| {
        bench.iter(|| {
            for ((c, x), y) in out.iter_mut().zip(&a).zip(&b) {
                *c = x + y;
            }
            black_box(&out);
        })
    });

    let aa = Array1::from_elem(n, 1.5f32);
    let bb = Array1::from_elem(n, 2.25f32);
    let mut cc = Array1::<f32>::zeros(n);
    group.bench_function("ndarray_zip", |bench| {
        bench.iter(|| {
            Zip::from(&mut cc)
                .and(&aa)
                .and(&bb)
                .for_each(|c, &x, &y| *c = x + y);
            black_box(&cc);
        })
    });
    group.bench_function("ndarray_alloc", |bench| bench.iter(|| black_box(&aa + &bb)));
    for (label, parallel) in thread_modes() {
        group.bench_function(format!("add_into_views/{label}"), |bench| {
            bench.iter(|| {
                let opts = StreamOptions::new().parallel(parallel);
                add_into_with(&aa.view(), &bb.view(), &mut cc.view_mut(), opts).unwrap();
                black_box(&cc);
            })
        });
    }

    // In place, `cc += bb`: two arrays of traffic instead of three (the throughput
    // figure counts three, to compare times with the rows above).
    group.bench_function("add_assign_views/1thread", |bench| {
        bench.iter(|| {
            let opts = StreamOptions::new().parallel(false);
            add_assign_with(&mut cc.view_mut(), &bb.view(), opts).unwrap();
            black_box(&cc);
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let ma = filled(dir.path(), "a", n, 1.5);
    let mb = filled(dir.path(), "b", n, 2.25);
    let mut mc = filled(dir.path(), "c", n, 0.0);
    for (label, parallel) in thread_modes() {
        // The views of the maps, so no paging hooks: the arithmetic over page-cache memory.
        group.bench_function(format!("add_into_maps/{label}"), |bench| {
            bench.iter(|| {
                let opts = StreamOptions::new().parallel(parallel);
                add_into_with(&ma.view(), &mb.view(), &mut mc.view_mut(), opts).unwrap();
                black_box(mc.as_bytes());
            })
        });
    }
    group.finish();
}

fn maps_flush(c: &mut Criterion) {
    let n = mib() << 18;
    let mut group = c.benchmark_group("maps_flush");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(3 * 4 * n as u64));
    let dir = tempfile::tempdir().expect("temp dir");
    let ma = filled(dir.path(), "a", n, 1.5);
    let mb = filled(dir.path(), "b", n, 2.25);
    let mut mc = filled(dir.path(), "c", n, 0.0);
    for (label, parallel) in thread_modes() {
        group.bench_function(format!("add_into+flush/{label}"), |bench| {
            bench.iter(|| {
                let opts = StreamOptions::new().parallel(parallel);
                add_into_with(&ma, &mb, &mut mc, opts).unwrap();
                mc.flush().unwrap();
            })
        });
    }
    group.finish();
}

/// The compute rows again, interleaved round by round (A, B, C, A, B, C, ...) so that load
/// from other processes hits every contender alike; prints medians and ratios to the
/// `Vec<f32>` loop. Not a criterion benchmark: a same-run ratio for a shared machine.
fn interleaved(_: &mut Criterion) {
    use std::time::Instant;
    let n = mib() << 18;
    let a = Array1::from_elem(n, 1.5f32);
    let b = Array1::from_elem(n, 2.25f32);
    let mut c = Array1::<f32>::zeros(n);
    let (va, vb) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    let mut vc = vec![0f32; n];
    let modes = thread_modes();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); 1 + modes.len()];
    for _ in 0..41 {
        let t = Instant::now();
        for ((c, x), y) in vc.iter_mut().zip(va).zip(vb) {
            *c = x + y;
        }
        black_box(&vc);
        times[0].push(t.elapsed().as_secs_f64());
        for (k, (_, parallel)) in modes.iter().enumerate() {
            let t = Instant::now();
            let opts = StreamOptions::new().parallel(*parallel);
            add_into_with(&a.view(), &b.view(), &mut c.view_mut(), opts).unwrap();
            black_box(&c);
            times[k + 1].push(t.elapsed().as_secs_f64());
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = med(&mut times[0]);
    println!("interleaved/vec_loop: median {:.3} ms", base * 1e3);
    for (k, (label, _)) in modes.iter().enumerate() {
        let m = med(&mut times[k + 1]);
        println!(
            "interleaved/add_into/{label}: median {:.3} ms, vec_loop / add_into = {:.2}x",
            m * 1e3,
            base / m
        );
    }
}

criterion_group!(benches, interleaved, compute, maps_flush);
criterion_main!(benches);
