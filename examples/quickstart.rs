//! Creates a file-backed array, maps it, edits it, re-reads it, and prints what it did.
//!
//! ```text
//! cargo run --release --example quickstart            # in a temporary directory
//! cargo run --release --example quickstart -- my.f32  # at a path of your choice (kept)
//! ```

use std::error::Error;
use std::time::Instant;

use ndarray::{Axis, Ix2, s};
use ndarray_mmap::{MapOptions, create_array, mmap_array, mmap_array_mut};

mod report;

const NAME: &str = "quickstart";

fn main() {
    if let Err(e) = run() {
        report::report(NAME, e.as_ref());
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let path = match std::env::args_os().nth(1) {
        Some(p) => p.into(),
        None => tmp.path().join("quickstart.f32"),
    };
    let (rows, cols) = (100_000isize, 24isize);

    // 1. Create: a sparse file of rows × cols f32, reading as zeros.
    let t = Instant::now();
    let mut a =
        unsafe { create_array::<f32>(&path, [rows, cols]) }?.into_dimensionality::<Ix2>()?;
    println!(
        "created {} ({} × {} f32, {} bytes) in {:?}",
        path.display(),
        rows,
        cols,
        std::fs::metadata(&path)?.len(),
        t.elapsed()
    );

    // 2. Edit through an ordinary ArrayViewMut2.
    let t = Instant::now();
    for (i, mut row) in a.view_mut().axis_iter_mut(Axis(0)).enumerate() {
        row.fill(i as f32);
    }
    a.close()?; // flush + unmap + unlock, errors reported
    println!("filled row i with i and flushed in {:?}", t.elapsed());

    // 3. Re-open read-write with the first dimension inferred, and scale one column.
    let mut b = unsafe { mmap_array_mut::<f32>(&path, [-1, cols]) }?;
    b.view_mut().slice_mut(s![.., 0]).mapv_inplace(|x| -x);
    b.close()?;
    println!("negated column 0 in place");

    // 4. Re-read read-only and check every value.
    let t = Instant::now();
    let c = unsafe { mmap_array::<f32>(&path, [-1, cols]) }?;
    let v = c.view();
    println!(
        "mapped again read-only: shape {:?} in {:?}",
        v.shape(),
        t.elapsed()
    );
    let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
    let n = rows as f64;
    let expected = (cols as f64 - 2.0) * n * (n - 1.0) / 2.0;
    println!("sum = {sum} (expected {expected})");
    assert_eq!(sum, expected, "the file does not hold what was written");

    // 5. Part of the file: rows 10..20 only, through the builder.
    let row_bytes = cols as u64 * 4;
    let part = unsafe {
        MapOptions::new()
            .offset(10 * row_bytes)
            .len(10 * row_bytes)
            .open::<f32>(&path, [-1, cols])
    }?;
    println!(
        "rows 10..20 mapped alone: column 1 = {}",
        part.view().index_axis(Axis(1), 1)
    );
    Ok(())
}
