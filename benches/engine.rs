//! The engine's figures in the page cache, for `benches/engine.sh` (which runs numpy on
//! the same files in the same run and prints the ratios). Not a criterion bench: each
//! case is timed `REPEAT` times on warm files and the median printed as `name seconds`.
//!
//! `cargo bench --bench engine -- DIR MIB REPEAT` (the script passes them). Files in DIR:
//! `a b c` (inputs, f32) and `d` (output), `m` (a MIB-sized C-order matrix of 1024
//! columns), made here if missing.

use std::path::Path;
use std::time::Instant;

use ndarray::Axis;
use ndarray_mmap::ops::{self, Zip};
use ndarray_mmap::{MmapArray, MmapArrayMut, create_array, mmap_array, mmap_array_mut};

fn make(dir: &Path, name: &str, n: usize, v: f32) {
    let p = dir.join(name);
    if std::fs::metadata(&p).is_ok_and(|m| m.len() == 4 * n as u64) {
        return;
    }
    let mut m = unsafe { create_array::<f32>(&p, [n]) }.expect("create");
    m.view_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = v + (i % 7) as f32);
    m.close().expect("close");
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn time(name: &str, repeat: usize, mut f: impl FnMut()) {
    // ENGINE_ONLY=name runs one case (for perf).
    if std::env::var("ENGINE_ONLY").is_ok_and(|only| only != name) {
        return;
    }
    f(); // warm
    let t = (0..repeat)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    println!("{name} {:.6}", median(t));
}

fn ro(dir: &Path, name: &str) -> MmapArray<f32> {
    unsafe { mmap_array::<f32>(dir.join(name), [-1]) }.expect("map")
}

fn rw(dir: &Path, name: &str) -> MmapArrayMut<f32> {
    unsafe { mmap_array_mut::<f32>(dir.join(name), [-1]) }.expect("map")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: cargo bench --bench engine -- DIR MIB REPEAT (see benches/engine.sh)");
        return;
    };
    let dir = Path::new(dir);
    let mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let repeat: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
    let n = mib << 18;
    for (name, v) in [("a", 1.0), ("b", 2.0), ("c", 5.0), ("d", 0.0), ("m", 0.5)] {
        make(dir, name, n, v);
    }

    time("add_open_op", repeat, || {
        let (a, b, mut d) = (ro(dir, "a"), ro(dir, "b"), rw(dir, "d"));
        ops::add_into(&a, &b, &mut d).expect("add");
    });
    time("add_open_op_flush", repeat, || {
        let (a, b, mut d) = (ro(dir, "a"), ro(dir, "b"), rw(dir, "d"));
        ops::add_into(&a, &b, &mut d).expect("add");
        d.flush().expect("flush");
    });
    // The same, telling the engine a flush follows: write-back overlaps the add.
    time("add_open_op_flush_wt", repeat, || {
        let (a, b, mut d) = (ro(dir, "a"), ro(dir, "b"), rw(dir, "d"));
        let opts = ops::StreamOptions::new().write_through(true);
        ops::add_into_with(&a, &b, &mut d, opts).expect("add");
        d.flush().expect("flush");
    });
    // d = a*x + b*y + c with scalars x = 2, y = 3: four arrays, as in the issue.
    time("formula_zip", repeat, || {
        let (a, b, c, mut d) = (ro(dir, "a"), ro(dir, "b"), ro(dir, "c"), rw(dir, "d"));
        Zip::from(&mut d)
            .and(&a)
            .and(&b)
            .and(&c)
            .for_each(|d, &a, &b, &c| *d = a * 2.0 + b * 3.0 + c)
            .expect("zip");
    });
    #[cfg(feature = "rayon")]
    time("formula_zip_par", repeat, || {
        let (a, b, c, mut d) = (ro(dir, "a"), ro(dir, "b"), ro(dir, "c"), rw(dir, "d"));
        Zip::from(&mut d)
            .and(&a)
            .and(&b)
            .and(&c)
            .par_for_each(|d, &a, &b, &c| *d = a * 2.0 + b * 3.0 + c)
            .expect("zip");
    });
    time("formula_ndarray_zip", repeat, || {
        let (a, b, c, mut d) = (ro(dir, "a"), ro(dir, "b"), ro(dir, "c"), rw(dir, "d"));
        ndarray::Zip::from(d.view_mut())
            .and(a.view())
            .and(b.view())
            .and(c.view())
            .for_each(|d, &a, &b, &c| *d = a * 2.0 + b * 3.0 + c);
    });
    let m = || unsafe { mmap_array::<f32>(dir.join("m"), [-1, 1024]) }.expect("map");
    time("sum", repeat, || {
        std::hint::black_box(ops::sum(&m()).expect("sum"));
    });
    time("min", repeat, || {
        std::hint::black_box(ops::min(&m()).expect("min"));
    });
    time("max", repeat, || {
        std::hint::black_box(ops::max(&m()).expect("max"));
    });
    time("sum_axis0", repeat, || {
        std::hint::black_box(ops::sum_axis(&m(), Axis(0)).expect("sum_axis"));
    });
    time("sum_axis1", repeat, || {
        std::hint::black_box(ops::sum_axis(&m(), Axis(1)).expect("sum_axis"));
    });
}
