//! Adds two large f32 files into a third, streaming through memory maps with bounded
//! memory: the seed experiment of the original package, made the fast path.
//!
//! ```text
//! cargo run --release --example add_files                    # 2 × 512 MiB in a temp dir, verified
//! cargo run --release --example add_files -- --size 4G       # other sizes (K, M, G suffixes)
//! cargo run --release --example add_files -- a.f32 b.f32 out.f32   # your files (out is created)
//! cargo run --release --example add_files -- a.npy b.npy out.npy   # .npy files, where supported
//! cargo run --release --example add_files -- --formula       # d = 2a + 3b + c with ops::Zip
//! ```
//!
//! Options: `--size N` (bytes per array, default 512M), `--chunk N` (bytes per chunk,
//! default: the engine's), `--dir DIR` (where the temporary files go, default the system's
//! temp dir), `--serial` (one thread even with the `rayon` feature), `--verify` (check the
//! result of a run on your files too; always done on generated ones), `--formula` (three
//! inputs, `d = a * 2 + b * 3 + c` in one pass with `ops::Zip`; your files: `A B C OUT`),
//! `--bounded` / `--cached` (force `Paging::Bounded` or `Paging::Cached`; by default the
//! engine chooses, `Paging::Auto`, and the example says what it chose and why),
//! `--machine` (also print `key value` lines for scripts: `add_s`, `vmhwm_mib`).
//!
//! Under a memory limit (Linux, root, cgroup v1; caches dropped first):
//! ```text
//! cargo build --release --example add_files
//! DROP_CACHES=1 benches/memlimit 64 -- target/release/examples/add_files
//! ```

use std::error::Error;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray_mmap::ops::{self, Paging, StreamOptions};
use ndarray_mmap::{MmapArray, MmapArrayMut, create_array, create_npy, mmap_array, open_npy};

const MIB: f64 = 1024.0 * 1024.0;

struct Args {
    size: u64,
    /// `--chunk`; else the engine's default.
    chunk: Option<usize>,
    dir: Option<PathBuf>,
    serial: bool,
    verify: bool,
    formula: bool,
    /// `--bounded` / `--cached`; else the engine's choice.
    paging: Paging,
    machine: bool,
    paths: Vec<PathBuf>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], mul)
        }
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    Ok((n * mul as f64) as u64)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size: 512 << 20,
        chunk: None,
        dir: None,
        serial: false,
        verify: false,
        formula: false,
        paging: Paging::Auto,
        machine: false,
        paths: Vec::new(),
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        let mut value = |name: &str| {
            it.next()
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or(format!("{name} needs a value"))
        };
        match s.as_str() {
            "--size" => args.size = parse_size(&value("--size")?)?,
            "--chunk" => args.chunk = Some(parse_size(&value("--chunk")?)? as usize),
            "--dir" => args.dir = Some(PathBuf::from(value("--dir")?)),
            "--serial" => args.serial = true,
            "--verify" => args.verify = true,
            "--formula" => args.formula = true,
            "--bounded" => args.paging = Paging::Bounded,
            "--cached" => args.paging = Paging::Cached,
            "--machine" => args.machine = true,
            "-h" | "--help" => {
                println!(
                    "usage: add_files [--size N] [--chunk N] [--dir DIR] [--serial] [--verify] \
                     [--formula] [--bounded | --cached] [--machine] [A B [C] OUT]"
                );
                std::process::exit(0);
            }
            _ if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => args.paths.push(PathBuf::from(a)),
        }
    }
    let want = if args.formula { 4 } else { 3 };
    if !(args.paths.is_empty() || args.paths.len() == want) {
        return Err(if args.formula {
            "give no paths, or four: A B C OUT".into()
        } else {
            "give no paths, or three: A B OUT".into()
        });
    }
    Ok(args)
}

/// Peak resident memory of this process (VmHWM), where the system reports it.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The generated inputs: a[i] and b[i] are small integers, so every sum is exact.
fn value_a(i: usize) -> f32 {
    (i % 1000) as f32
}
fn value_b(i: usize) -> f32 {
    ((i * 7) % 1000) as f32 * 0.5
}
fn value_c(i: usize) -> f32 {
    (i % 13) as f32
}

/// The `--formula` mode's expression (exact for the generated inputs).
fn formula(a: f32, b: f32, c: f32) -> f32 {
    a * 2.0 + b * 3.0 + c
}

/// Writes `n` f32 values `f(i)` with plain writes, syncs them, and drops them from the
/// page cache, so the add that follows reads from the disk like a fresh run would.
fn write_input(path: &Path, n: usize, f: fn(usize) -> f32) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let block = 1 << 20; // elements per write
    let mut buf = vec![0f32; block];
    let mut i = 0;
    while i < n {
        let m = block.min(n - i);
        for (k, x) in buf[..m].iter_mut().enumerate() {
            *x = f(i + k);
        }
        file.write_all(bytemuck::cast_slice(&buf[..m]))?;
        i += m;
    }
    file.sync_all()?;
    drop_cache(&file);
    Ok(())
}

#[cfg(target_os = "linux")]
fn drop_cache(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a hint on an open descriptor; it touches no memory of ours.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}
#[cfg(not(target_os = "linux"))]
fn drop_cache(_: &std::fs::File) {}

fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Maps an input: a `.npy` file of f32 (any shape, C or Fortran order), or a raw file of
/// f32 as one long vector.
fn open_input(path: &Path) -> Result<MmapArray<f32>, Box<dyn Error>> {
    // SAFETY (of the maps): the example's inputs are not modified while it runs.
    Ok(if is_npy(path) {
        unsafe { open_npy::<f32>(path) }?
    } else {
        unsafe { mmap_array::<f32>(path, [-1]) }?
    })
}

/// Creates the output (truncating an existing file): new, its blocks reserved but
/// unwritten, so writing it reads nothing from the disk.
fn create_output(path: &Path, shape: &[usize]) -> Result<MmapArrayMut<f32>, Box<dyn Error>> {
    let shape: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    // SAFETY (of the maps): nothing else touches the output while the example runs.
    Ok(if is_npy(path) {
        unsafe { create_npy::<f32>(path, shape) }?
    } else {
        unsafe { create_array::<f32>(path, shape) }?
    })
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

mod report;

const NAME: &str = "add_files";

fn main() {
    if let Err(e) = run() {
        report::report(NAME, e.as_ref());
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let tmp;
    let (a_path, b_path, c_path, out_path, generated) = if args.paths.is_empty() {
        tmp = match &args.dir {
            Some(d) => tempfile::tempdir_in(d)?,
            None => tempfile::tempdir()?,
        };
        let n = (args.size / 4) as usize;
        let (a, b) = (tmp.path().join("a.f32"), tmp.path().join("b.f32"));
        let t = Instant::now();
        write_input(&a, n, value_a)?;
        write_input(&b, n, value_b)?;
        let c = args.formula.then(|| tmp.path().join("c.f32"));
        if let Some(c) = &c {
            write_input(c, n, value_c)?;
        }
        println!(
            "created {} × {:.0} MiB of f32 in {} in {:.2} s (synced, dropped from the page cache)",
            2 + usize::from(args.formula),
            args.size as f64 / MIB,
            tmp.path().display(),
            t.elapsed().as_secs_f64()
        );
        (a, b, c, tmp.path().join("out.f32"), true)
    } else {
        let p = &args.paths;
        let c = args.formula.then(|| p[2].clone());
        (p[0].clone(), p[1].clone(), c, p[p.len() - 1].clone(), false)
    };

    // --- the measured part: map, add (streaming), flush -------------------------------
    let t = Instant::now();
    let a = open_input(&a_path)?;
    let b = open_input(&b_path)?;
    if b.view().broadcast(a.shape()).is_none() {
        // checked before creating (and so truncating) the output file
        return Err(format!(
            "{} (shape {:?}) cannot be added to {} (shape {:?})",
            b_path.display(),
            b.shape(),
            a_path.display(),
            a.shape()
        )
        .into());
    }
    let mut out = create_output(&out_path, a.shape())?;
    let total = out.len() as u64 * 4;
    let bar = progress_bar(total);
    let mut opts = StreamOptions::new();
    if let Some(bytes) = args.chunk {
        opts = opts.chunk_bytes(bytes);
    }
    // The engine's default policy unless one is forced; say which it comes to, and why.
    let files = 3 + usize::from(c_path.is_some());
    let cached =
        a.resident_share().is_none_or(|s| s >= 0.5) && b.resident_share().is_none_or(|s| s >= 0.5);
    let out_cached = out.resident_share().is_none_or(|s| s >= 0.5);
    let (_, why) = args
        .paging
        .decide_for(total * files as u64, cached, out_cached);
    println!("paging: {why}");
    let opts = opts
        .paging(args.paging)
        .parallel(!args.serial)
        .progress(|p| {
            bar.set_position(p.done);
            ControlFlow::Continue(())
        });
    let c = c_path.as_deref().map(open_input).transpose()?;
    match &c {
        // One pass over four files: no temporaries, no second traversal, and `out` only
        // written (an existing output is not read from the disk first).
        Some(c) => ops::Zip::from(&a)
            .and(&b)
            .and(c)
            .with(opts)
            .map_assign_into(&mut out, |&a, &b, &c| formula(a, b, c))?,
        None => ops::add_into_with(&a, &b, &mut out, opts)?,
    }
    out.close()?; // msync: the result is in the file
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let files = if c.is_some() { 4.0 } else { 3.0 };
    let moved = files * total as f64 / MIB;
    let what = match &c_path {
        Some(c) => format!(
            "computed {} = {} * 2 + {} * 3 + {}",
            out_path.display(),
            a_path.display(),
            b_path.display(),
            c.display()
        ),
        None => format!(
            "added {} + {} into {}",
            a_path.display(),
            b_path.display(),
            out_path.display()
        ),
    };
    println!(
        "{what} ({:.0} MiB each) in {:.3} s: {:.0} MiB/s of disk traffic ({:.0} MiB/s of output)",
        total as f64 / MIB,
        secs,
        moved / secs,
        total as f64 / MIB / secs
    );
    match peak_rss_mib() {
        Some(p) => println!("peak resident memory during the add: {p:.1} MiB"),
        None => println!("peak resident memory: not reported on this system"),
    }
    if args.machine {
        println!("add_s {secs:.4}");
        if let Some(p) = peak_rss_mib() {
            println!("vmhwm_mib {p:.1}");
        }
    }
    drop((a, b, c));

    // --- verification (not timed) --------------------------------------------------------
    if generated || args.verify {
        let t = Instant::now();
        let c = open_input(&out_path)?;
        let bad = if generated {
            let v = c.view();
            let s = v.as_slice().expect("a fresh map is contiguous");
            let want = |i| match c_path {
                Some(_) => formula(value_a(i), value_b(i), value_c(i)),
                None => value_a(i) + value_b(i),
            };
            s.iter().enumerate().filter(|&(i, &x)| x != want(i)).count()
        } else {
            let (a, b) = (open_input(&a_path)?, open_input(&b_path)?);
            let mut bad = 0usize;
            match &c_path {
                Some(p) => {
                    let third = open_input(p)?;
                    ndarray::Zip::from(&a.view())
                        .and(&b.view())
                        .and(&third.view())
                        .and(&c.view())
                        .for_each(|&x, &y, &w, &z| {
                            bad += usize::from(formula(x, y, w).to_bits() != z.to_bits())
                        });
                }
                None => ndarray::Zip::from(&a.view())
                    .and(&b.view())
                    .and(&c.view())
                    .for_each(|&x, &y, &z| bad += usize::from((x + y).to_bits() != z.to_bits())),
            }
            bad
        };
        if bad != 0 {
            return Err(format!("verification failed: {bad} elements differ").into());
        }
        println!(
            "verified all {} elements in {:.2} s",
            c.len(),
            t.elapsed().as_secs_f64()
        );
    }
    // What /usr/bin/time reports: the whole run's peak, the verification pass included
    // (it reads the output through one map, whose clean pages count while resident).
    if let Some(p) = peak_rss_mib() {
        println!("peak resident memory of the whole run, verification included: {p:.1} MiB");
        if args.machine {
            println!("vmhwm_run_mib {p:.1}");
        }
    }
    Ok(())
}
