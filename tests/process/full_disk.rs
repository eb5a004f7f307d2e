//! A full disk is an `Err` at create or grow time, never a SIGBUS mid-write, and a
//! failed create or grow leaves the file as it was. Runs on a 4 MiB tmpfs that the test
//! mounts itself (root or CAP_SYS_ADMIN needed; CI runs as root). Where mounting is
//! impossible each test prints a SKIPPED line on stderr.
// SAFETY (for every unsafe block in the module): see the module.
#![allow(clippy::undocumented_unsafe_blocks)]

use crate::common;

#[cfg(unix)]
#[path = "unix/full_disk.rs"]
mod unix;

#[cfg(unix)]
pub(crate) fn suite() -> common::Suite {
    unix::suite()
}

#[cfg(not(unix))]
pub(crate) fn suite() -> common::Suite {
    common::suite(
        &[("full_disk_unix_only", || {
            common::skip("full_disk", "the tests mount a small tmpfs (Unix only)")
        })],
        &[],
    )
}
