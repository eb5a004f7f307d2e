//! A small test runner for the process-level tests, which re-invoke their own binary as
//! child processes (`harness = false`): `--child NAME ARGS..` runs a helper instead of
//! the tests, so no test exists only to be called by another. Unlike libtest it never
//! captures output, so a skip message always reaches the terminal.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A test: a name and a function that panics on failure.
pub type Test = (&'static str, fn());
/// A child helper: a name and a function given the remaining arguments.
pub type Helper = (&'static str, fn(&[String]));

/// One file's tests and child helpers.
pub type Suite = (Vec<Test>, Vec<Helper>);

/// Collects a file's tests and helpers (its `suite()` returns this).
pub fn suite(tests: &[Test], helpers: &[Helper]) -> Suite {
    (tests.to_vec(), helpers.to_vec())
}

/// Runs the helper named after `--child`, or else every test whose name contains the
/// first free argument, on `--test-threads N` threads (libtest's other flags are ignored).
pub fn main(tests: &[Test], helpers: &[Helper]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for (i, (name, _)) in helpers.iter().enumerate() {
        assert!(
            helpers[..i].iter().all(|(n, _)| n != name),
            "two child helpers are named {name}"
        );
    }
    if args.first().map(String::as_str) == Some("--child") {
        let name = &args[1];
        let (_, f) = helpers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no child helper named {name}"));
        f(&args[2..]);
        std::process::exit(0);
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filter = args
        .iter()
        .enumerate()
        .find(|&(i, a)| !a.starts_with('-') && (i == 0 || args[i - 1] != "--test-threads"))
        .map(|(_, a)| a);
    let chosen: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filter.is_none_or(|flt| name.contains(flt.as_str())))
        .collect();
    // As libtest: `--test-threads N`, else RUST_TEST_THREADS, else one per core. Tests
    // share nothing but the machine (each has its own directory and child processes).
    let threads = args
        .iter()
        .position(|a| a == "--test-threads")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .or_else(|| std::env::var("RUST_TEST_THREADS").ok()?.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(chosen.len()) {
            s.spawn(|| {
                while let Some((name, f)) =
                    chosen.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    println!("test {name} ...");
                    match std::panic::catch_unwind(f) {
                        Ok(()) => println!("test {name} ... ok"),
                        Err(_) => {
                            println!("test {name} ... FAILED");
                            failed.lock().unwrap().push(*name);
                        }
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    let ran = chosen.len();
    let skipped = SKIPPED.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "\ntest result: {}. {} passed; {} failed; {skipped} skipped (each SKIPPED line above says why)",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
}

/// An error's message followed by each of its sources, as `anyhow` prints a chain.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s = format!("{s}: {inner}");
        source = inner.source();
    }
    s
}

/// Skips counted by [`skip`], for the summary line.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A visible skip message (never a silent skip), counted in the summary. Under
/// `NDARRAY_MMAP_NO_SKIPS=1` (set by `.ci/run` for its Linux runs, as root) a skip is a
/// failure: there every test must run.
pub fn skip(test: &str, why: &str) {
    if std::env::var("NDARRAY_MMAP_NO_SKIPS").as_deref() == Ok("1") {
        panic!("{test} would be skipped ({why}), but NDARRAY_MMAP_NO_SKIPS=1 requires it to run");
    }
    SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// `Command` for this test binary running helper `name`.
pub fn child(name: &str, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary path"));
    c.arg("--child").arg(name).args(args);
    c
}

/// Spawns `cmd`. Under Wine, CreateProcess now and then fails for a moment ("Internal
/// error", os error 1359) while other tests spawn and kill many children: a few tries, then
/// the error.
pub fn spawn(cmd: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if tries < 5 && e.kind() != std::io::ErrorKind::NotFound => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * tries));
            }
            Err(e) => panic!("spawn child: {e:?}"),
        }
    }
}

/// Spawns a helper with piped stdin/stdout and waits for it to print `line`.
pub fn spawn_until(mut cmd: Command, line: &str) -> (Child, BufReader<ChildStdout>) {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = spawn(&mut cmd);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut got = String::new();
    out.read_line(&mut got).expect("read child's stdout");
    assert_eq!(got.trim_end(), line, "child said {got:?}");
    (child, out)
}

/// Prints `line` for the parent and flushes.
pub fn tell_parent(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Blocks until the parent closes our stdin (or dies).
pub fn wait_for_parent() {
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

/// Runs `f` on a thread and fails if it has not returned within `secs`: for calls that
/// must not hang (a liveness check, not a speed target).
pub fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("the call did not return within {secs} s (it hangs)"))
}

/// A tmpfs of `size` mounted on `dir` for the life of the value.
pub struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts, or says why it cannot (not root, no mount command, in a sandbox, ...).
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (needs root or CAP_SYS_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Remounts read-only.
    pub fn remount_ro(&self) {
        let st = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount read-only failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Whether this process runs as root (mounts work, permissions do not stop writes).
pub fn is_root() -> bool {
    #[cfg(unix)]
    // SAFETY: geteuid has no preconditions and touches no memory.
    return unsafe { libc::geteuid() == 0 };
    #[cfg(not(unix))]
    false
}

/// Runs `code` in Python with numpy imported as `np` and the path as `p`; panics if it
/// fails. Without numpy it skips visibly, or fails under `NDARRAY_MMAP_REQUIRE_NUMPY=1`.
pub fn numpy_check(path: &Path, code: &str) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = Command::new(&python).args(["-c", "import numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var("NDARRAY_MMAP_REQUIRE_NUMPY").as_deref() == Ok("1") {
            panic!("numpy is required (NDARRAY_MMAP_REQUIRE_NUMPY=1) but cannot be imported");
        }
        skip("numpy check", "numpy cannot be imported");
        return;
    }
    let script = format!("import sys\nimport numpy as np\np = sys.argv[1]\n{code}\n");
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "numpy check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
