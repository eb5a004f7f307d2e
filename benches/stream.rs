//! Out-of-core cases for `benches/residency.sh`, each timed once (the script repeats and
//! takes medians under a memory limit):
//!
//! - `cargo bench --bench stream -- sum_axis PATH COLS AXIS` maps `PATH` as a C-order f32
//!   matrix of `COLS` columns and sums it along `AXIS` (one pass in file order);
//! - `... -- add_into A B OUT` adds the f32 files `A` and `B` into the existing file `OUT`
//!   (a dense file: written through `pwrite`, its old pages are not read first).
//!
//! Both stream with `Paging::Bounded` and print `seconds SECONDS` and a checksum.

use std::time::Instant;

use ndarray::Axis;
use ndarray_mmap::ops::{self, Paging, StreamOptions};
use ndarray_mmap::{mmap_array, mmap_array_mut};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let opts = || StreamOptions::new().paging(Paging::Bounded);
    let t = Instant::now();
    // SAFETY (every map): the benchmark's files are not touched by anything else meanwhile.
    let checksum = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sum_axis", path, cols, axis] => {
            let cols: isize = cols.parse().expect("COLS");
            let m = unsafe { mmap_array::<f32>(path, [-1, cols]) }.expect("map");
            let axis = Axis(axis.parse().expect("AXIS"));
            let s = ops::sum_axis_with(&m, axis, opts()).expect("sum_axis");
            s.sum()
        }
        ["add_into", a, b, out] => {
            let a = unsafe { mmap_array::<f32>(a, [-1]) }.expect("map a");
            let b = unsafe { mmap_array::<f32>(b, [-1]) }.expect("map b");
            let mut c = unsafe { mmap_array_mut::<f32>(out, [-1]) }.expect("map out");
            ops::add_into_with(&a, &b, &mut c, opts()).expect("add");
            c.flush().expect("flush");
            f64::from(c.view()[12345])
        }
        _ => {
            eprintln!(
                "usage: cargo bench --bench stream -- sum_axis PATH COLS AXIS | add_into A B OUT"
            );
            std::process::exit(2);
        }
    };
    println!("seconds {:.4}", t.elapsed().as_secs_f64());
    println!("checksum {checksum}");
}
