//! How the examples print an error: the error and every error it wraps, on one line.

use std::error::Error;

/// Prints `e` and every error it wraps (`source()`), one chain on one line, after `name`.
pub fn report(name: &str, e: &dyn Error) {
    let mut line = format!("{name}: {e}");
    let mut next = e.source();
    while let Some(cause) = next {
        line.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    eprintln!("{line}");
}
