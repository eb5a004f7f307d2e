//! Appends per second to a `.npy` log while 0, 1 and 4 readers poll it (each reader opens
//! the log, checks its last row and closes it, in a loop), printed as ratios to the run
//! with no reader measured in the same process. Readers never block an appender: the
//! ratio shows what they cost (two cores are shared by the appender and the readers).
//!
//! `cargo bench --bench append_readers` (`-- --quick` for fewer repetitions).
// SAFETY (for every unsafe block below): the log lives in a private temporary directory
// and is touched only by this process's maps, which use the crate's locks.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::arr1;
use ndarray_mmap::{create_npy, open_npy};

/// Appends `n` single rows with `readers` reader threads running; returns appends/s and
/// the number of reads the readers made.
fn run(readers: usize, n: usize, pause: Duration) -> (f64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.npy");
    let mut log = unsafe { create_npy::<i64>(&path, [0, 2]) }.unwrap();
    log.append(&arr1(&[0i64, 1])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..readers)
        .map(|_| {
            let (stop, reads, path) = (stop.clone(), reads.clone(), path.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let a = unsafe { open_npy::<i64>(&path) }.unwrap();
                    let v = a.view();
                    let k = v.shape()[0] - 1;
                    assert_eq!(v[[k, 0]], k as i64, "a reader saw an unwritten row");
                    reads.fetch_add(1, Ordering::Relaxed);
                    drop(v);
                    drop(a);
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    for k in 1..=n as i64 {
        log.append(&arr1(&[k, 1])).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    log.close().unwrap();
    (n as f64 / secs, reads.load(Ordering::Relaxed))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (reps, n) = if quick { (3, 500) } else { (7, 2000) };
    println!(
        "appends of one 16-byte row to a .npy log, {n} per run, median of {reps} runs (interleaved)"
    );
    for (what, pause) in [
        ("readers polling every 200 us", Duration::from_micros(200)),
        (
            "readers in a busy loop (more threads than the 2 cores)",
            Duration::ZERO,
        ),
    ] {
        println!("{what}:");
        let counts = [0usize, 1, 4];
        let mut rates = vec![Vec::new(); counts.len()];
        let mut reads = vec![0usize; counts.len()];
        for _ in 0..reps {
            for (i, &r) in counts.iter().enumerate() {
                let (rate, seen) = run(r, n, pause);
                rates[i].push(rate);
                reads[i] += seen;
            }
        }
        let base = median(rates[0].clone());
        for (i, &r) in counts.iter().enumerate() {
            let m = median(rates[i].clone());
            println!(
                "  {r} readers: {m:>9.0} appends/s  ({:.2}x the rate with no reader; {} reads made)",
                m / base,
                reads[i]
            );
        }
    }
}
