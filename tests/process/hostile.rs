//! Hostile and broken input, table-driven: every case is tried against every constructor
//! it applies to, and each call must return an `Err` whose message names the path and
//! the numbers at fault, must not panic, and must leave the file exactly as it was.
//!
//! Cases that need root (a read-only tmpfs, `chattr +i`) print a SKIPPED line where they
//! cannot run; CI runs as root.
// SAFETY (for every unsafe block in the module): see the module.
#![allow(clippy::undocumented_unsafe_blocks)]

use crate::common;

#[cfg(unix)]
#[path = "unix/hostile.rs"]
mod unix;

#[cfg(unix)]
pub(crate) fn suite() -> common::Suite {
    unix::suite()
}

#[cfg(not(unix))]
pub(crate) fn suite() -> common::Suite {
    common::suite(
        &[("hostile_unix_only", || {
            common::skip(
                "hostile",
                "the table builds FIFOs, devices, chmod/chattr and uid-dropped inputs (Unix only)",
            )
        })],
        &[],
    )
}
