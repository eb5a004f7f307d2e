//! The process-level tests, in one binary that re-invokes itself as child processes
//! (`common::main`): sharing between processes, races and crashes, the hostile-input
//! table and the full disk. `cargo test --test process NAME` runs those whose name
//! contains NAME.

mod common;
mod full_disk;
mod hostile;
mod races;
mod sharing;

fn main() {
    let (mut tests, mut helpers) = (Vec::new(), Vec::new());
    for (t, h) in [
        sharing::suite(),
        races::suite(),
        hostile::suite(),
        full_disk::suite(),
    ] {
        tests.extend(t);
        helpers.extend(h);
    }
    common::main(&tests, &helpers);
}
