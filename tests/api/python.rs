//! Running Python for the interop tests (numpy, zarr, dask): which interpreter, and
//! whether what a test needs imports.

use std::process::Command;

/// The interpreter: `$PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether `check` (Python code importing what `test` needs, `what`) runs. When it does
/// not, the test fails under `NDARRAY_MMAP_REQUIRE_NUMPY=1` (set by `.ci/run`), and
/// otherwise prints a SKIPPED line naming the pip packages to install.
pub fn can_import(test: &str, check: &str, what: &str, packages: &str) -> bool {
    let out = Command::new(python()).args(["-c", check]).output();
    let why = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run {}: {e}", python()),
    };
    let install = format!("{} -m pip install {packages}", python());
    if std::env::var("NDARRAY_MMAP_REQUIRE_NUMPY").as_deref() == Ok("1") {
        panic!(
            "{test}: {what} is required (NDARRAY_MMAP_REQUIRE_NUMPY=1) but cannot be imported: {why}\n\
             install it with: {install}"
        );
    }
    // Written straight to stderr, not through eprintln!, which the test harness captures:
    // a skip must show even when the test passes.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {what} cannot be imported ({why}); install it with `{install}`, \
         or set NDARRAY_MMAP_REQUIRE_NUMPY=1 to make this a failure"
    );
    false
}
