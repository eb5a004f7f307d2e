//! `sum_axis` out of core, for `benches/residency.sh`: `cargo bench --bench axis -- PATH COLS
//! AXIS` maps `PATH` as a C-order f32 matrix of `COLS` columns, sums it along `AXIS` (one
//! pass in file order, `Paging::Bounded`), and prints `sum_axis_s SECONDS` and a checksum.

use std::time::Instant;

use ndarray::Axis;
use ndarray_mmap::mmap_array;
use ndarray_mmap::ops::{self, Paging, StreamOptions};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [path, cols, axis] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench axis -- PATH COLS AXIS");
        std::process::exit(2);
    };
    let cols: isize = cols.parse().expect("COLS");
    let axis: usize = axis.parse().expect("AXIS");
    let t = Instant::now();
    // SAFETY: the benchmark's file is not touched by anything else while it runs.
    let m = unsafe { mmap_array::<f32>(path, [-1, cols]) }.expect("map");
    let opts = StreamOptions::new().paging(Paging::Bounded);
    let s = ops::sum_axis_with(&m, Axis(axis), opts).expect("sum_axis");
    println!("sum_axis_s {:.4}", t.elapsed().as_secs_f64());
    println!("checksum {}", s.sum());
}
