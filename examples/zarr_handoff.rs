//! The hand-off to dask and back, through Zarr v3, with no copy (feature `zarr`).
//!
//! ```text
//! cargo run --release --features zarr --example zarr_handoff          # 2 × 64 MiB, temp dir
//! cargo run --release --features zarr --example zarr_handoff -- --rows 1000000 --dir /data
//! ```
//!
//! 1. Rust creates `a.zarr` and `b.zarr` (f32, `rows × 64`, chunks of 16384 rows), fills
//!    them chunk by chunk through maps, and computes `c = a + b` into `c.zarr` with
//!    `ops::add_into` over the whole arrays (the engine maps chunk after chunk).
//! 2. Python (`examples/zarr_handoff.py`, if `python3` has zarr 3 and dask) reads `a` and
//!    `b` with `dask.array.from_zarr`, sums `a + b` on a 2-process `LocalCluster`, and
//!    writes `d = 2 * a` back with `to_zarr(..., compressors=None)`.
//! 3. Rust streams `d.zarr` (dask's chunks) against `a.zarr` (ours) in one `ops::Zip`,
//!    checks every element, and checks dask's sum against its own.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray_mmap::ops::{self, Zip};
use ndarray_mmap::zarr;

fn value_a(i: usize, j: usize) -> f32 {
    ((i * 64 + j) % 1000) as f32
}
fn value_b(i: usize, j: usize) -> f32 {
    ((i + j) % 7) as f32 * 0.5
}

mod report;

const NAME: &str = "zarr_handoff";

fn main() {
    if let Err(e) = run() {
        report::report(NAME, e.as_ref());
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut rows = 262_144usize; // 64 MiB of f32 per array
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => rows = args.next().ok_or("--rows needs a value")?.parse()?,
            "--dir" => dir = Some(args.next().ok_or("--dir needs a value")?.into()),
            _ => return Err(format!("usage: zarr_handoff [--rows N] [--dir DIR]; got {a}").into()),
        }
    }
    let tmp = match &dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let d = tmp.path();
    let (shape, chunks) = ([rows, 64], [16_384, 64]);

    // 1. Rust writes a and b, then c = a + b, chunk by chunk through maps.
    let t = Instant::now();
    // SAFETY (of every map below): the example's files are touched only by itself and,
    // after Rust is done with them, by the Python script.
    for (name, f) in [
        ("a.zarr", value_a as fn(usize, usize) -> f32),
        ("b.zarr", value_b),
    ] {
        let mut w = unsafe { zarr::create::<f32>(d.join(name), &shape, &chunks) }?;
        for idx in w.chunk_indices() {
            let r = w.region(&idx)?;
            let mut c = w.chunk_mut(&idx)?;
            for (k, x) in c.view_mut().indexed_iter_mut() {
                *x = f(r[0].start + k[0], k[1]);
            }
            c.flush()?;
        }
    }
    let (a, b) = unsafe {
        (
            zarr::open::<f32>(d.join("a.zarr"))?,
            zarr::open::<f32>(d.join("b.zarr"))?,
        )
    };
    let mut c = unsafe { zarr::create::<f32>(d.join("c.zarr"), &shape, &chunks) }?;
    ops::add_into(&a, &b, &mut c)?; // whole arrays: the engine maps chunk after chunk
    c.flush()?; // one sync for every chunk written
    let ours = ops::sum(&c)?;
    println!(
        "rust: wrote a.zarr, b.zarr and c.zarr = a + b ({rows} x 64 f32, {} chunks each) in {} in {:.2} s; sum(c) = {ours}",
        a.chunk_indices().count(),
        d.display(),
        t.elapsed().as_secs_f64()
    );

    // 2. dask reads them, sums on a cluster, writes d = 2a back.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/zarr_handoff.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let t = Instant::now();
    let out = Command::new(&python).arg(&script).arg(d).output();
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            println!(
                "python: skipped the dask half ({} failed: {}); install with `{python} -m pip install 'zarr>=3' 'dask[array,distributed]'`",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return Ok(());
        }
        Err(e) => {
            println!("python: skipped the dask half (cannot run {python}: {e})");
            return Ok(());
        }
    };
    for line in out.lines().filter(|l| !l.starts_with("sum ")) {
        println!("{line}");
    }
    let theirs: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("sum "))
        .ok_or("the script printed no sum")?
        .parse()?;
    println!(
        "python: took {:.2} s (starting the cluster included)",
        t.elapsed().as_secs_f64()
    );

    // 3. Rust maps what dask wrote and checks it.
    let t = Instant::now();
    let back = unsafe { zarr::open::<f32>(d.join("d.zarr")) }?;
    // dask chose its own chunks: the Zip streams both arrays across their two grids.
    let bad = Zip::from(&back)
        .and(&a)
        .fold(0usize, |n, &x, &y| n + usize::from(x != 2.0 * y))?;
    if bad != 0 || theirs != ours {
        return Err(format!(
            "mismatch: {bad} elements of d differ; dask's sum {theirs} vs ours {ours}"
        )
        .into());
    }
    println!(
        "rust: mapped d.zarr back ({} chunks, shape {:?}), every element is 2a; dask's sum equals ours; in {:.2} s",
        back.chunk_indices().count(),
        back.shape(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
