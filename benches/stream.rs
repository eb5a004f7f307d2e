//! Out-of-core cases for `benches/residency.sh`, each timed once (the script repeats and
//! takes medians under a memory limit):
//!
//! - `cargo bench --bench stream -- sum_axis PATH COLS AXIS` maps `PATH` as a C-order f32
//!   matrix of `COLS` columns and sums it along `AXIS` (one pass in file order);
//! - `... -- add_into A B OUT` adds the f32 files `A` and `B` into the existing file `OUT`
//!   (a dense file: written through `pwrite`, its old pages are not read first).
//!
//! Both stream with `Paging::Bounded` and print `seconds SECONDS` and a checksum.
//!
//! - `... -- policy KIND POLICY CLOSE A B [C] OUT` (for `benches/policy_matrix.sh`): creates
//!   `OUT` (a new f32 file, as numpy's `np.memmap(mode="w+")`; an existing one is written in
//!   place) and computes `KIND` (`add`:
//!   c = a + b with `ops::add_into`; `formula`: d = 2a + 3b + c with `ops::Zip`) under
//!   `POLICY` (`default`: no options; `cached`, `bounded`, each with `_wt` for
//!   `write_through(true)`), then `close()`s the output when `CLOSE` is 1. Prints the
//!   seconds (create to close), the policy `Auto` chose, the peak resident memory, the
//!   bytes this process read from the disk and the share of the first input still in the
//!   page cache afterwards.

use std::time::Instant;

use ndarray::Axis;
use ndarray_mmap::ops::{self, Paging, StreamOptions};
use ndarray_mmap::{create_array, mmap_array, mmap_array_mut};

/// A `key value` line from a `/proc/self` file, as a number.
fn proc_value(file: &str, key: &str) -> f64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// The `policy` case: see the module docs.
fn policy_case(kind: &str, policy: &str, close: &str, paths: &[&str]) -> f64 {
    let opts = || {
        let (paging, wt) = match policy {
            "default" => return StreamOptions::new(),
            "cached" => (Paging::Cached, false),
            "cached_wt" => (Paging::Cached, true),
            "bounded" => (Paging::Bounded, false),
            "bounded_wt" => (Paging::Bounded, true),
            _ => panic!("POLICY: default, cached, cached_wt, bounded or bounded_wt"),
        };
        StreamOptions::new().paging(paging).write_through(wt)
    };
    let (out, inputs) = paths.split_last().expect("A B [C] OUT");
    let ins: Vec<_> = inputs
        .iter()
        .map(|p| unsafe { mmap_array::<f32>(p, [-1]) }.expect("map an input"))
        .collect();
    let n = ins[0].view().len();
    let mapped = (ins.len() as u64 + 1) * n as u64 * 4;
    let cold = ins
        .iter()
        .any(|a| a.resident_share().is_some_and(|s| s < 0.5));
    let t = Instant::now();
    // An existing OUT is written in place (the matrix removes it first).
    let mut c = match std::path::Path::new(out).exists() {
        true => unsafe { mmap_array_mut::<f32>(out, [n]) }.expect("map the output"),
        false => unsafe { create_array::<f32>(out, [n]) }.expect("create the output"),
    };
    let out_cached = c.resident_share().is_none_or(|s| s >= 0.5);
    let chose = Paging::Auto.decide_for(mapped, !cold, out_cached).1;
    match (kind, ins.as_slice()) {
        ("add", [a, b]) => ops::add_into_with(a, b, &mut c, opts()).expect("add"),
        ("formula", [a, b, x]) => ops::Zip::from(a)
            .and(b)
            .and(x)
            .with(opts())
            .map_assign_into(&mut c, |&a, &b, &x| a * 2.0 + b * 3.0 + x)
            .expect("formula"),
        _ => panic!("KIND: add A B OUT, or formula A B C OUT"),
    }
    let check = f64::from(c.view()[n / 2]);
    if close == "1" {
        c.close().expect("close");
    }
    println!("seconds {:.4}", t.elapsed().as_secs_f64());
    println!("chose {}", chose.replace(' ', "_"));
    println!(
        "vmhwm_mib {:.0}",
        proc_value("/proc/self/status", "VmHWM:") / 1024.0
    );
    println!(
        "read_mib {:.0}",
        proc_value("/proc/self/io", "read_bytes:") / 1048576.0
    );
    let warm = ins[0].resident_share().unwrap_or(f64::NAN);
    println!("a_cached_after {warm:.2}");
    check
}

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
        ["policy", kind, policy, close, paths @ ..] => policy_case(kind, policy, close, paths),
        _ => {
            eprintln!(
                "usage: cargo bench --bench stream -- sum_axis PATH COLS AXIS | add_into A B OUT \
                 | policy KIND POLICY CLOSE A B [C] OUT"
            );
            std::process::exit(2);
        }
    };
    println!("seconds {:.4}", t.elapsed().as_secs_f64());
    println!("checksum {checksum}");
}
