//! File safety under concurrency and crashes, with real processes: appenders racing,
//! readers polling a growing log, SIGKILL at random instants, creates that fail or race,
//! and foreign lock holders. Each test spawns this binary again as child helpers
//! (`tests/common`).
//!
//! Rows are `[k, 3k + 1]` (i64) so that a zero row, a torn row or a misplaced row is
//! recognised wherever it is seen.
// SAFETY (for every unsafe block below): the files live in the tests' own temporary
// directories and are touched only by these processes, which use this crate's locks; the
// one exception (a foreign lock holder) never writes.
#![allow(clippy::undocumented_unsafe_blocks)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{child, spawn, spawn_until, tell_parent, wait_for_parent, within};
use ndarray::{Array2, arr1};
use ndarray_mmap::{Error, MapOptions, MmapArrayMut};

pub(crate) fn suite() -> common::Suite {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut tests: Vec<common::Test> = vec![
        ("two_appenders_race_npy", || two_appenders_race("npy")),
        ("two_appenders_race_raw", || two_appenders_race("raw")),
        ("readers_never_see_a_torn_row_npy", || {
            readers_never_see_torn_rows("npy")
        }),
        ("readers_never_see_a_torn_row_raw", || {
            readers_never_see_torn_rows("raw")
        }),
        ("sigkill_during_appends_leaves_old_or_new_rows_npy", || {
            sigkill_appender("npy")
        }),
        ("sigkill_during_appends_leaves_old_or_new_rows_raw", || {
            sigkill_appender("raw")
        }),
        (
            "create_new_racing_never_deletes_the_winner",
            create_new_race,
        ),
        (
            "a_failed_create_leaves_the_old_file_and_nothing_else",
            failed_creates,
        ),
        ("a_foreign_lock_holder_never_makes_us_hang", foreign_holders),
        (
            "a_npy_header_without_room_moves_only_when_nobody_maps_it",
            header_move,
        ),
        (
            "flush_after_the_directory_is_renamed",
            flush_after_dir_rename,
        ),
        (
            "two_creates_waiting_on_one_file_never_replace_each_other",
            creates_waiting,
        ),
        (
            "an_array_saved_after_a_npy_is_never_overwritten",
            npy_followed_by_npy,
        ),
    ];
    #[cfg(unix)]
    tests.push((
        "a_create_refused_by_rlimit_as_changes_nothing",
        rlimit_create,
    ));
    #[cfg(unix)]
    tests.push((
        "a_grow_refused_by_rlimit_as_changes_nothing_while_mapped",
        rlimit_grow,
    ));
    #[cfg(target_os = "linux")]
    tests.push((
        "an_input_truncated_behind_the_locks_is_an_err_not_a_crash",
        truncated_inputs,
    ));
    #[cfg(target_os = "linux")]
    tests.push((
        "bounded_streaming_memory_does_not_grow_with_the_array",
        bounded_memory,
    ));
    #[cfg(target_os = "linux")]
    tests.push((
        "a_file_size_limit_below_the_output_never_kills_a_stream",
        rlimit_fsize,
    ));
    #[cfg(target_os = "linux")]
    tests.push((
        "a_stream_under_a_64_mib_cgroup_peaks_below_three_quarters_of_it",
        cgroup_peak,
    ));
    #[cfg(all(target_os = "linux", feature = "zarr"))]
    tests.push((
        "compressed_chunks_bigger_than_a_64_mib_cgroup_are_decoded_and_encoded_as_a_stream",
        cgroup_streamed_chunks,
    ));
    #[cfg(all(target_os = "linux", feature = "zarr"))]
    tests.push((
        "a_zarr_chunk_truncated_after_it_was_mapped_ahead_is_an_err_not_a_crash",
        truncated_chunk_ahead,
    ));
    // Windows refuses to rename a file over one that is mapped: the case cannot arise there.
    #[cfg(unix)]
    tests.push((
        "a_moved_npy_never_replaces_what_its_path_names_now",
        move_after_rename,
    ));
    common::suite(
        &tests,
        &[
            ("append", child_append),
            ("append_forever", child_append_forever),
            ("read_check", child_read_check),
            ("create_new", child_create_new),
            ("hold_flock", child_hold_flock),
            ("hold_append", child_hold_append),
            #[cfg(unix)]
            ("rlimit_create", child_rlimit_create),
            #[cfg(unix)]
            ("rlimit_grow", child_rlimit_grow),
            #[cfg(target_os = "linux")]
            ("truncated_add", child_truncated_add),
            #[cfg(target_os = "linux")]
            ("bounded_add", child_bounded_add),
            #[cfg(target_os = "linux")]
            ("cgroup_add", child_cgroup_add),
            #[cfg(target_os = "linux")]
            ("fsize_add", child_fsize_add),
            #[cfg(all(target_os = "linux", feature = "zarr"))]
            ("truncated_chunk_sum", child_truncated_chunk_sum),
            #[cfg(all(target_os = "linux", feature = "zarr"))]
            ("cgroup_sum_zarr", child_cgroup_sum_zarr),
            #[cfg(all(target_os = "linux", feature = "zarr"))]
            ("cgroup_map_zarr", child_cgroup_map_zarr),
        ],
    )
}

fn row(k: usize) -> [i64; 2] {
    [k as i64, 3 * k as i64 + 1]
}

fn opts() -> MapOptions {
    MapOptions::new().lock_timeout(Duration::from_secs(30))
}

/// Opens the log for appending: `.npy` or raw, two i64 columns.
fn open_log(path: &str, kind: &str) -> MmapArrayMut<i64> {
    match kind {
        "npy" => unsafe { opts().open_npy_mut::<i64>(path) }.unwrap(),
        _ => unsafe { opts().open_mut::<i64>(path, [-1, 2]) }.unwrap(),
    }
}

fn create_log(path: &Path, kind: &str) {
    let a = match kind {
        "npy" => unsafe { MapOptions::new().create_npy::<i64>(path, [0, 2]) },
        _ => unsafe { MapOptions::new().create::<i64>(path, [0, 2]) },
    };
    a.unwrap().close().unwrap();
}

/// The bytes of rows `0..n`.
fn expected_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|k| bytemuck::cast::<[i64; 2], [u8; 16]>(row(k)))
        .collect()
}

/// Checks that the log's counted rows are `row(0), row(1), ..`; returns how many.
fn check_log(path: &Path, kind: &str, expected: &mut Vec<u8>) -> Result<usize, Error> {
    let a = match kind {
        "npy" => unsafe { MapOptions::new().open_npy::<i64>(path) }?,
        _ => unsafe { MapOptions::new().open::<i64>(path, [-1, 2]) }?,
    };
    let n = a.shape()[0];
    if expected.len() < n * 16 {
        *expected = expected_bytes(2 * n);
    }
    if a.as_bytes() != &expected[..n * 16] {
        let v = a.view();
        let bad = (0..n).find(|&k| [v[[k, 0]], v[[k, 1]]] != row(k)).unwrap();
        panic!(
            "a torn or zero row at {bad} of {n}: {:?}",
            [v[[bad, 0]], v[[bad, 1]]]
        );
    }
    Ok(n)
}

/// Every counted row of the log, or the error opening it gave.
fn read_log(path: &Path, kind: &str) -> Result<Vec<[i64; 2]>, Error> {
    let a = match kind {
        "npy" => unsafe { MapOptions::new().open_npy::<i64>(path) }?,
        _ => unsafe { MapOptions::new().open::<i64>(path, [-1, 2]) }?,
    };
    let v = a.view();
    Ok(v.outer_iter().map(|r| [r[0], r[1]]).collect())
}

/// Child: appends `n` rows `[id, i]` one call each.
fn child_append(args: &[String]) {
    let (path, kind, id, n) = (
        &args[0],
        &args[1],
        args[2].parse::<i64>().unwrap(),
        args[3].parse::<i64>().unwrap(),
    );
    let mut a = open_log(path, kind);
    for i in 0..n {
        a.append(&arr1(&[id, i])).unwrap();
    }
    a.close().unwrap();
}

fn two_appenders_race(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(format!("log.{kind}"));
    create_log(&path, kind);
    let n = 1000;
    let p = path.to_str().unwrap();
    let kids: Vec<_> = (1..=2)
        .map(|id| {
            spawn(&mut child(
                "append",
                &[p, kind, &id.to_string(), &n.to_string()],
            ))
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success(), "an appender failed");
    }
    let rows = read_log(&path, kind).unwrap();
    assert_eq!(rows.len(), 2 * n, "rows lost or duplicated");
    for id in 1..=2 {
        let mine: Vec<i64> = rows.iter().filter(|r| r[0] == id).map(|r| r[1]).collect();
        assert_eq!(
            mine,
            (0..n as i64).collect::<Vec<_>>(),
            "appender {id}'s rows"
        );
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let head = if kind == "npy" { 128 } else { 0 };
    assert_eq!(len, head + 2 * n as u64 * 16, "header and length disagree");
    println!(
        "two appenders ({kind}): {} rows, none lost or duplicated",
        rows.len()
    );
}

/// Child: appends rows `row(k)` in batches of 1..=37 until killed or `limit` rows.
fn child_append_forever(args: &[String]) {
    let (path, kind, limit) = (&args[0], &args[1], args[2].parse::<usize>().unwrap());
    let hang = args.get(3).is_some_and(|a| a == "hang");
    let mut a = open_log(path, kind);
    let mut k = a.shape()[0];
    // A child that hangs (waits to be killed) appends `limit` more rows; one that exits
    // appends up to `limit` rows in all.
    let limit = if hang { k + limit } else { limit };
    let mut batch = 1;
    tell_parent("started");
    while k < limit {
        let rows = Array2::from_shape_fn((batch, 2), |(i, j)| row(k + i)[j]);
        a.append(&rows).unwrap();
        k += batch;
        batch = batch % 37 + 1;
    }
    a.close().unwrap();
    if hang {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Child: opens the log `n` times read-only, checking every counted row; prints how many
/// reads and rows it saw.
fn child_read_check(args: &[String]) {
    let (path, kind, n) = (
        Path::new(&args[0]),
        &args[1],
        args[2].parse::<usize>().unwrap(),
    );
    let mut seen = 0;
    let mut expected: Vec<u8> = Vec::new();
    for _ in 0..n {
        match check_log(path, kind, &mut expected) {
            Ok(rows) => seen += rows,
            // A partial last row seen while no appender held its lock is an error, and
            // must not happen while the log is only appended to.
            Err(e) => panic!("reader could not open the log: {e}"),
        }
    }
    tell_parent(&format!("{n} reads, {seen} rows checked"));
}

fn readers_never_see_torn_rows(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(format!("log.{kind}"));
    create_log(&path, kind);
    let p = path.to_str().unwrap();
    let limit = 20_000;
    let (mut writer, _) = spawn_until(
        child("append_forever", &[p, kind, &limit.to_string()]),
        "started",
    );
    let readers: Vec<_> = (0..2)
        .map(|_| {
            spawn(child("read_check", &[p, kind, "5000"]).stdout(std::process::Stdio::piped()))
        })
        .collect();
    let mut total = 0;
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "a reader failed");
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        total += line
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        println!("reader ({kind}): {}", line.trim());
    }
    assert!(writer.wait().unwrap().success(), "the appender failed");
    assert_eq!(total, 10_000);
    let rows = read_log(&path, kind).unwrap();
    assert_eq!(rows.len(), limit.max(rows.len()));
}

fn sigkill_appender(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(format!("log.{kind}"));
    create_log(&path, kind);
    let p = path.to_str().unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let (mut partial, mut last) = (0, 0);
    let mut expected: Vec<u8> = Vec::new();
    let kills = 100;
    for round in 0..kills {
        let (mut kid, _) = spawn_until(
            child("append_forever", &[p, kind, "50000", "hang"]),
            "started",
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 20_000));
        kid.kill().unwrap();
        assert!(!kid.wait().unwrap().success());
        match check_log(&path, kind, &mut expected) {
            Ok(rows) => {
                assert!(rows >= last, "round {round}: rows were lost");
                last = rows;
            }
            // A raw log can end in a partial row after a kill (the only state a kill can
            // leave that is not the old or the new rows: no zero row is counted). The
            // whole rows before it are intact, and the next append completes it.
            Err(Error::NotWholeRows {
                bytes, row_bytes, ..
            }) if kind == "raw" => {
                partial += 1;
                let whole = (bytes / row_bytes) as usize;
                let a = unsafe {
                    MapOptions::new()
                        .len(whole as u64 * 16)
                        .open::<i64>(&path, [-1, 2])
                }
                .unwrap();
                for (k, r) in a.view().outer_iter().enumerate() {
                    assert_eq!([r[0], r[1]], row(k), "round {round}: whole row {k}");
                }
                last = whole;
            }
            Err(e) => panic!("round {round}: the log does not open after a kill: {e}"),
        }
    }
    println!(
        "{kind}: {kills} kills survived, {last} rows at the end, {partial} ended in a partial raw row"
    );
    if kind == "npy" {
        common::numpy_check(
            &path,
            "a = np.load(p, mmap_mode='r'); k = np.arange(len(a)); \
             assert (a[:, 0] == k).all() and (a[:, 1] == 3 * k + 1).all(), 'numpy sees a bad row'",
        );
    }
}

/// Child: races to create the file with `create_new`; the winner appends its id.
fn child_create_new(args: &[String]) {
    let (path, id) = (&args[0], args[1].parse::<i64>().unwrap());
    match unsafe {
        MapOptions::new()
            .create_new(true)
            .create_npy::<i64>(path, [0, 2])
    } {
        Ok(mut a) => {
            a.append(&arr1(&[id, 7])).unwrap();
            a.close().unwrap();
            tell_parent("won");
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            tell_parent("lost")
        }
        Err(e) => panic!("create_new: {e}"),
    }
}

fn create_new_race() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("new.npy");
    let p = path.to_str().unwrap();
    for round in 0..100 {
        let _ = std::fs::remove_file(&path);
        let kids: Vec<_> = (1..=2)
            .map(|id| {
                spawn(
                    child("create_new", &[p, &id.to_string()]).stdout(std::process::Stdio::piped()),
                )
            })
            .collect();
        let mut winners = vec![];
        for (i, k) in kids.into_iter().enumerate() {
            let out = k.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: a child failed");
            if String::from_utf8_lossy(&out.stdout).trim() == "won" {
                winners.push(i as i64 + 1);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let rows = read_log(&path, "npy").expect("the winner's file is gone");
        assert_eq!(rows, vec![[winners[0], 7]], "round {round}");
        let stray: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(
            stray.len(),
            1,
            "round {round}: files left behind: {stray:?}"
        );
    }
}

/// Bytes, length and modification time of a file.
fn snapshot(path: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

fn only_entry(dir: &Path, name: &str) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![name.to_string()], "files left behind");
}

/// An element type aligned to more than any page.
#[derive(Clone, Copy)]
#[repr(C, align(65536))]
struct Huge([u8; 65536]);
// SAFETY: a byte array with no padding (size == alignment); any bit pattern is valid.
unsafe impl bytemuck::Zeroable for Huge {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Huge {}

fn failed_creates() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("old.bin");
    std::fs::write(&path, b"precious bytes").unwrap();
    let before = snapshot(&path);
    std::thread::sleep(Duration::from_millis(20)); // an mtime change would show
    type Try = Box<dyn Fn(&Path) -> Result<(), Error>>;
    let tries: Vec<(&str, Try)> = vec![
        (
            "a zero axis beside axes that overflow",
            Box::new(|p| unsafe {
                MapOptions::new()
                    .create::<f32>(p, [0, isize::MAX, 4])
                    .map(drop)
            }),
        ),
        (
            "the same for .npy",
            Box::new(|p| unsafe {
                MapOptions::new()
                    .create_npy::<f32>(p, [isize::MAX, 0, 4])
                    .map(drop)
            }),
        ),
        (
            "an element type aligned to more than a page",
            Box::new(|p| unsafe { MapOptions::new().create::<Huge>(p, [1]).map(drop) }),
        ),
        (
            "more than 64 dimensions for .npy",
            Box::new(|p| unsafe {
                MapOptions::new()
                    .create_npy::<u8>(p, vec![1isize; 65])
                    .map(drop)
            }),
        ),
        (
            "create_new over an existing file",
            Box::new(|p| unsafe {
                MapOptions::new()
                    .create_new(true)
                    .create::<u8>(p, [4])
                    .map(drop)
            }),
        ),
        (
            "a shape with -1",
            Box::new(|p| unsafe { MapOptions::new().create::<u8>(p, [-1]).map(drop) }),
        ),
    ];
    for (what, attempt) in tries {
        let e = attempt(&path).expect_err(what);
        let msg = e.to_string();
        assert!(
            msg.contains("old.bin"),
            "{what}: the message does not name the file: {msg}"
        );
        assert!(!msg.contains("cannot i/o"), "{what}: {msg}");
        assert_eq!(snapshot(&path), before, "{what} changed the file");
        only_entry(tmp.path(), "old.bin");
        println!("{what}: {msg}");
    }
    // The over-aligned type is refused at any offset, whatever the address would be.
    for offset in [0, 65536, 1 << 20] {
        let e = unsafe { MapOptions::new().offset(offset).open::<Huge>(&path, [-1]) }.unwrap_err();
        assert!(matches!(e, Error::OverAligned { .. }), "{e}");
    }
}

/// Child: limits its address space, then tries to replace `path` with a 4 GiB array.
#[cfg(unix)]
fn child_rlimit_create(args: &[String]) {
    let lim = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let r = unsafe {
        MapOptions::new()
            .preallocate(false)
            .create::<u8>(&args[0], [4isize << 30])
    };
    match r {
        Ok(_) => tell_parent("created"),
        Err(e) => tell_parent(&format!("refused: {e}")),
    }
}

#[cfg(unix)]
fn rlimit_create() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("old.bin");
    std::fs::write(&path, b"precious bytes").unwrap();
    let before = snapshot(&path);
    let out = child("rlimit_create", &[path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("refused: "), "{said}");
    assert!(said.contains("map"), "{said}");
    assert_eq!(snapshot(&path), before, "a refused map changed the file");
    only_entry(tmp.path(), "old.bin");
    println!("RLIMIT_AS: {}", said.trim());
}

/// Child: holds an exclusive `flock` on the file, as `flock -x FILE` would.
fn child_hold_flock(args: &[String]) {
    let f = std::fs::File::open(&args[0]).unwrap();
    #[cfg(unix)]
    f.lock().unwrap();
    tell_parent("held");
    wait_for_parent();
    drop(f);
}

/// Child: holds the append lock byte with a raw OFD lock (a foreign, stuck appender).
fn child_hold_append(args: &[String]) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&args[0])
        .unwrap();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::io::AsRawFd;
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as _;
        fl.l_whence = libc::SEEK_SET as _;
        // The append byte, or the one given (4: the header writer's intent byte).
        fl.l_start = (1i64 << 62) + args.get(1).map_or(2, |b| b.parse::<i64>().unwrap());
        fl.l_len = 1;
        assert_eq!(
            unsafe {
                libc::fcntl(f.as_raw_fd(), 37 /* F_OFD_SETLK */, &mut fl)
            },
            0
        );
    }
    tell_parent("held");
    wait_for_parent();
    drop(f);
}

fn foreign_holders() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("held.npy");
    create_log(&path, "npy");
    let p = path.to_str().unwrap().to_string();
    if cfg!(unix) {
        let (mut kid, _) = spawn_until(child("hold_flock", &[&p]), "held");
        let q = p.clone();
        let (e, waited) = within(20, move || {
            let t = Instant::now();
            let e = unsafe {
                MapOptions::new()
                    .lock_timeout(Duration::from_millis(300))
                    .open_npy::<i64>(&q)
            };
            (e.map(drop).unwrap_err(), t.elapsed())
        });
        assert!(matches!(e, Error::Locked { .. }), "{e}");
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        // Without a timeout: at once.
        let q = p.clone();
        within(20, move || {
            let a = unsafe { MapOptions::new().open_npy_mut::<i64>(&q) };
            assert!(matches!(a.map(drop), Err(Error::Locked { .. })));
        });
        drop(kid.stdin.take());
        kid.wait().unwrap();
    }
    if cfg!(any(target_os = "linux", target_os = "android")) {
        // A header writer that never finishes: readers wait for it as long as they are
        // allowed (their lock timeout, or 2 s without one), never forever.
        let (mut kid, _) = spawn_until(child("hold_append", &[&p, "4"]), "held");
        let q = p.clone();
        let (quick, slow) = within(20, move || {
            let t = Instant::now();
            let zero = MapOptions::new().lock_timeout(Duration::ZERO);
            let e = unsafe { zero.open_npy::<i64>(&q) }.map(drop).unwrap_err();
            let quick = t.elapsed();
            assert!(matches!(e, Error::Locked { .. }), "{e}");
            let t = Instant::now();
            let e = unsafe { MapOptions::new().open_npy::<i64>(&q) }
                .map(drop)
                .unwrap_err();
            assert!(e.to_string().contains("header"), "{e}");
            (quick, t.elapsed())
        });
        assert!(
            quick < Duration::from_millis(500),
            "lock_timeout(0) waited {quick:?}"
        );
        assert!(
            slow >= Duration::from_secs(2),
            "the default header wait was {slow:?}"
        );
        drop(kid.stdin.take());
        kid.wait().unwrap();
    }
    let mut a = unsafe { MapOptions::new().open_npy_mut::<i64>(&p) }.unwrap();
    if cfg!(any(target_os = "linux", target_os = "android")) {
        let (mut kid, _) = spawn_until(child("hold_append", &[&p]), "held");
        let t = Instant::now();
        let e = a.append(&arr1(&[1i64, 2])).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Locked {
                    exclusive: true,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("another appender"), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "append waited for a foreign holder"
        );
        drop(kid.stdin.take());
        kid.wait().unwrap();
    }
    a.append(&arr1(&[1i64, 2])).unwrap();
    assert_eq!(a.shape(), &[1, 2]);
}

/// A `.npy` header written with no spare room (padded to 8 bytes, as numpy allows): 999
/// rows fill it exactly, and 1000 cannot be written in place.
fn tight_npy(path: &Path, rows: usize) {
    let dict = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({rows}, 2), }}");
    let total = (10 + dict.len() + 1).div_ceil(8) * 8;
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    for k in 0..rows {
        h.extend_from_slice(bytemuck::cast_slice(&row(k)));
    }
    std::fs::write(path, h).unwrap();
}

fn header_move() {
    if cfg!(target_endian = "big") {
        common::skip(
            "a hand-written .npy",
            "its header says '<i8' (little-endian)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tight.npy");
    let rows = 999;
    tight_npy(&path, rows);
    assert_eq!(
        ndarray_mmap::NpyHeader::from_path(&path)
            .unwrap()
            .data_offset(),
        72
    );
    let reader = unsafe { MapOptions::new().open_npy::<i64>(&path) }.unwrap();
    let mut w = unsafe { MapOptions::new().open_npy_mut::<i64>(&path) }.unwrap();
    // 1000 rows do not fit the header: the data must move, which a live map refuses.
    let moved = w.append(&arr1(&row(rows))).unwrap_err();
    assert!(
        matches!(
            moved,
            Error::Locked {
                exclusive: true,
                ..
            }
        ),
        "{moved}"
    );
    assert!(moved.to_string().contains("move the data of"), "{moved}");
    // The reader's map, the header and the file are untouched by the refusal.
    for (i, r) in reader.view().outer_iter().enumerate() {
        assert_eq!([r[0], r[1]], row(i));
    }
    assert_eq!(read_log(&path, "npy").unwrap().len(), rows);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 72 + 999 * 16);
    assert_eq!(w.shape(), &[rows, 2]);
    reader.close().unwrap();
    // Alone, the append moves the data after a larger header, built aside.
    w.append(&arr1(&row(rows))).unwrap();
    w.append(&arr1(&row(rows + 1))).unwrap(); // in place now: numpy's spare room
    w.view_mut()[[0, 1]] = 1; // the map is of the live file after the move
    w.close().unwrap();
    let rows_now = read_log(&path, "npy").unwrap();
    assert_eq!(rows_now.len(), rows + 2);
    for (i, r) in rows_now.iter().enumerate() {
        assert_eq!(*r, row(i));
    }
    only_entry(tmp.path(), "tight.npy");
    common::numpy_check(
        &path,
        "a = np.load(p); k = np.arange(len(a)); assert len(a) == 1001 and (a[:, 0] == k).all() and (a[:, 1] == 3 * k + 1).all()",
    );
}

fn flush_after_dir_rename() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let mut a = unsafe { MapOptions::new().create::<f32>(d.join("a.f32"), [4]) }.unwrap();
    a.view_mut().fill(2.0);
    let e = tmp.path().join("e");
    std::fs::rename(&d, &e).unwrap();
    a.flush().unwrap();
    a.flush().unwrap();
    a.close().unwrap();
    assert_eq!(
        std::fs::read(e.join("a.f32")).unwrap(),
        bytemuck::cast_slice::<f32, u8>(&[2.0; 4])
    );
}

/// Two creates wait for the same mapped file; when its map closes, one replaces it and
/// maps the new file, and the other must not replace that (it is mapped) in turn.
fn creates_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.f32");
    for round in 0..3 {
        std::fs::write(&path, [0u8; 16]).unwrap();
        let reader = unsafe { MapOptions::new().open::<f32>(&path, [-1]) }.unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
        let kids: Vec<_> = (1..=2)
            .map(|id| {
                let (p, b) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    // The loser waits 300 ms; the winner holds the file for 500 ms.
                    let o = MapOptions::new().lock_timeout(Duration::from_millis(300));
                    match unsafe { o.create::<f32>(&p, [4]) } {
                        Ok(mut a) => {
                            a.view_mut().fill(id as f32);
                            a.flush().unwrap();
                            std::thread::sleep(Duration::from_millis(500));
                            a.close().unwrap();
                            Some(id)
                        }
                        Err(Error::Locked { .. }) => None,
                        Err(e) => panic!("round {round}: {e}"),
                    }
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(Duration::from_millis(50));
        drop(reader);
        let won: Vec<_> = kids.into_iter().filter_map(|k| k.join().unwrap()).collect();
        assert_eq!(won.len(), 1, "round {round}: both creates went through");
        let a = unsafe { MapOptions::new().open::<f32>(&path, [-1]) }.unwrap();
        assert_eq!(
            a.view().iter().copied().collect::<Vec<_>>(),
            vec![won[0] as f32; 4],
            "round {round}: the winner's data is not at the path"
        );
    }
}

#[cfg(unix)]
fn move_after_rename() {
    if cfg!(target_endian = "big") {
        common::skip(
            "a hand-written .npy",
            "its header says '<i8' (little-endian)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tight.npy");
    tight_npy(&path, 999);
    let mut w = unsafe { MapOptions::new().open_npy_mut::<i64>(&path) }.unwrap();
    // The user moves another file to the path (the mapped file lives on, unnamed).
    let other = tmp.path().join("precious.bin");
    std::fs::write(&other, b"PRECIOUS USER DATA").unwrap();
    std::fs::rename(&other, &path).unwrap();
    let e = w.append(&arr1(&row(999))).unwrap_err();
    assert!(
        matches!(
            e,
            Error::CannotGrow {
                reason: ndarray_mmap::GrowProblem::PathChanged,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"PRECIOUS USER DATA");
    only_entry(tmp.path(), "tight.npy");
    assert_eq!(w.shape(), &[999, 2]);
}

/// `np.save(f, a); np.save(f, b)` into one file: `open_npy` maps `a`, and growing it must
/// not overwrite `b`.
fn npy_followed_by_npy() {
    use ndarray_mmap::{NpyHeader, Order};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("two.npy");
    let first = NpyHeader::for_element::<f64>(&[3, 2], Order::C).unwrap();
    let second = NpyHeader::for_element::<i32>(&[3], Order::C).unwrap();
    let mut bytes = first.to_bytes();
    bytes.extend_from_slice(bytemuck::cast_slice(&[0f64, 1., 2., 3., 4., 5.]));
    bytes.extend_from_slice(&second.to_bytes());
    bytes.extend_from_slice(bytemuck::cast_slice(&[7i32, 8, 9]));
    std::fs::write(&path, &bytes).unwrap();
    let mut a = unsafe { MapOptions::new().open_npy_mut::<f64>(&path) }.unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    let e = a.append(&arr1(&[100.0, 200.0])).unwrap_err();
    assert!(
        matches!(
            e,
            Error::CannotGrow {
                reason: ndarray_mmap::GrowProblem::DataAfter { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(a.grow(10).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    common::numpy_check(
        &path,
        "f = open(p, 'rb'); a = np.load(f); b = np.load(f); assert a.shape == (3, 2) and list(b) == [7, 8, 9]",
    );
}

/// Child: maps a raw log twice (a reader and a writer), limits its address space, and
/// tries to grow the writer past it: the map is refused before anything is written.
#[cfg(unix)]
fn child_rlimit_grow(args: &[String]) {
    let path = &args[0];
    let reader = unsafe { MapOptions::new().open::<i64>(path, [-1, 2]) }.unwrap();
    let mut w = unsafe {
        MapOptions::new()
            .preallocate(false)
            .open_mut::<i64>(path, [-1, 2])
    }
    .unwrap();
    let lim = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let r = w.grow(1 << 27); // 2 GiB of rows
    assert_eq!(reader.shape(), &[4, 2]);
    match r {
        Ok(()) => tell_parent("grown"),
        Err(e) => tell_parent(&format!("refused: {e}")),
    }
}

#[cfg(unix)]
fn rlimit_grow() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.raw");
    std::fs::write(&path, expected_bytes(4)).unwrap();
    let out = child("rlimit_grow", &[path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("refused: "), "{said}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        expected_bytes(4),
        "a refused grow changed the file"
    );
    println!("RLIMIT_AS grow: {}", said.trim());
}

/// Child: `c = a + b` over mapped files while the parent truncates `a` behind the
/// advisory locks. Exits 0 when the add finished, 3 on `Error::Unreadable` (its message on
/// stderr), 4 on any other error; a SIGBUS shows as the signal.
#[cfg(target_os = "linux")]
fn child_truncated_add(args: &[String]) {
    use ndarray_mmap::ops::{self, Paging, StreamOptions};
    let a = unsafe { MapOptions::new().open::<f32>(&args[0], [-1]) }.unwrap();
    let b = unsafe { MapOptions::new().open::<f32>(&args[1], [-1]) }.unwrap();
    let mut c = unsafe { ndarray_mmap::create_array::<f32>(&args[2], a.shape()) }.unwrap();
    tell_parent("mapped");
    let how = args.get(3).map_or("bounded", String::as_str);
    let paging = if how == "cached" {
        Paging::Cached
    } else {
        Paging::Bounded
    };
    let opts = StreamOptions::new()
        .chunk_bytes(64 << 10)
        .paging(paging)
        .read_through(how == "read_through");
    match ops::add_into_with(&a, &b, &mut c, opts) {
        Ok(()) => std::process::exit(0),
        Err(e @ Error::Unreadable { .. }) => {
            eprintln!("{e}");
            std::process::exit(3)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(4)
        }
    }
}

/// Another program truncates an input while `add_into` streams it, 200 times at random
/// moments and lengths per paging policy, with a thread of CPU load beside it. With
/// `read_through(true)` the inputs are read through the file (`pread`), so a truncation
/// is always an `Err(Unreadable)` naming the file and never a SIGBUS. Through the map
/// (`Bounded`, `Cached`), the engine prefaults each chunk, so a chunk it has not reached
/// is an `Err`; what remains is the window between a chunk's prefault and its last
/// touch, which can raise SIGBUS (the counts are printed).
#[cfg(target_os = "linux")]
fn truncated_inputs() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 1u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            x
        })
    };
    let through = truncations("read_through");
    let bounded = truncations("bounded");
    let cached = truncations("cached");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(
        through.2, 0,
        "a stream reading through died of SIGBUS: {through:?}"
    );
    assert!(
        through.1 > 0 && bounded.1 > 0 && cached.1 > 0,
        "no truncation was caught ({through:?}, {bounded:?}, {cached:?})"
    );
}

/// 200 truncations of an input during `add_into` under `paging`: (finished first, ended
/// in `Err(Unreadable)`, died of SIGBUS).
#[cfg(target_os = "linux")]
fn truncations(paging: &str) -> (usize, usize, usize) {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let (pa, pb, pc) = (
        tmp.path().join("a.f32"),
        tmp.path().join("b.f32"),
        tmp.path().join("c.f32"),
    );
    let n = 1 << 19; // 2 MiB of f32
    std::fs::write(&pb, vec![0u8; 4 * n]).unwrap();
    let (mut ok, mut err, mut died) = (0, 0, 0);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::fs::write(&pa, vec![1u8; 4 * n]).unwrap();
        let mut kid = spawn(
            child(
                "truncated_add",
                &[
                    pa.to_str().unwrap(),
                    pb.to_str().unwrap(),
                    pc.to_str().unwrap(),
                    paging,
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
        );
        let mut line = String::new();
        std::io::BufReader::new(kid.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "mapped");
        std::thread::sleep(Duration::from_micros(x % 2000));
        // A program that ignores the advisory locks cuts the file short.
        let len = (x >> 20) % (4 * n as u64) / 4096 * 4096;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&pa)
            .unwrap()
            .set_len(len)
            .unwrap();
        let out = kid.wait_with_output().unwrap();
        match (out.status.code(), out.status.signal()) {
            (Some(0), _) => ok += 1,
            (Some(3), _) => {
                let msg = String::from_utf8_lossy(&out.stderr);
                assert!(msg.contains(pa.to_str().unwrap()), "{msg}");
                assert!(msg.contains("cannot be read into memory"), "{msg}");
                err += 1;
            }
            (_, Some(libc::SIGBUS)) => died += 1,
            other => panic!(
                "unexpected end {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    eprintln!(
        "truncated inputs, {paging}: 200 runs, {ok} finished first, {err} ended in Err(Unreadable), {died} died of SIGBUS"
    );
    (ok, err, died)
}

/// Child: `d = a + b + c` with the Zip over three sparse inputs of `args[1]` MiB each,
/// then `d = 2d` in place through a second map of `d`, both `Paging::Bounded`; prints its
/// peak resident memory (VmHWM, KiB).
#[cfg(target_os = "linux")]
fn child_bounded_add(args: &[String]) {
    use ndarray_mmap::ops::{Paging, StreamOptions, Zip};
    let dir = Path::new(&args[0]);
    let n = args[1].parse::<usize>().unwrap() << 18; // f32 per array
    let sparse = MapOptions::new().preallocate(false);
    let mk = |name: &str| unsafe { sparse.create::<f32>(dir.join(name), [n]) }.unwrap();
    let (a, b, c, mut d) = (mk("a"), mk("b"), mk("c"), mk("d"));
    let opts = || StreamOptions::new().paging(Paging::Bounded);
    Zip::from(&mut d)
        .and(&a)
        .and(&b)
        .and(&c)
        .with(opts())
        .for_each(|d, &a, &b, &c| *d = a + b + c + 1.0)
        .unwrap();
    assert_eq!(d.view()[n - 1], 1.0);
    // In place through a second map of the output's file: its pages go too.
    let again = unsafe { ndarray_mmap::mmap_array::<f32>(dir.join("d"), [-1]) }.unwrap();
    Zip::from(&mut d)
        .and(&again)
        .with(opts())
        .for_each(|d, &x| *d = x * 2.0)
        .unwrap();
    assert_eq!(d.view()[n - 1], 2.0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .to_owned();
    tell_parent(&hwm);
}

/// The streaming engine's memory is a few chunks, not the array: the peak resident
/// memory of a 4-array Zip over 192 MiB arrays is within 24 MiB of the same over 24 MiB.
#[cfg(target_os = "linux")]
fn bounded_memory() {
    let peak = |mib: usize| -> f64 {
        let tmp = tempfile::tempdir().unwrap();
        let out = child(
            "bounded_add",
            &[tmp.path().to_str().unwrap(), &mib.to_string()],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .unwrap()
            / 1024.0
    };
    let (small, big) = (peak(24), peak(192));
    eprintln!(
        "bounded Zip peak resident memory: {small:.1} MiB at 4 x 24 MiB, {big:.1} MiB at 4 x 192 MiB"
    );
    assert!(
        big < small + 24.0,
        "peak memory grew with the array: {small:.1} MiB -> {big:.1} MiB"
    );
}

/// Child: joins the cgroup `args[1]`, then `c = a + b` over the files in `args[0]` with
/// the default options (`Paging::Auto`, the chunk left to the engine); says `ok`.
#[cfg(target_os = "linux")]
fn child_cgroup_add(args: &[String]) {
    let dir = Path::new(&args[0]);
    std::fs::write(
        Path::new(&args[1]).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();
    let a = unsafe { ndarray_mmap::mmap_array::<f32>(dir.join("a"), [-1]) }.unwrap();
    let b = unsafe { ndarray_mmap::mmap_array::<f32>(dir.join("b"), [-1]) }.unwrap();
    let mut c = unsafe { ndarray_mmap::create_array::<f32>(dir.join("c"), [a.len()]) }.unwrap();
    ndarray_mmap::ops::add_into(&a, &b, &mut c).unwrap();
    c.close().unwrap();
    tell_parent("ok");
}

/// The paging policy end to end, under a real memory limit: `c = a + b` over 3 x 128 MiB
/// with the default options, in a 64 MiB cgroup (v1) with the inputs not cached, peaks
/// (page cache included) at no more than 3/4 of the limit. `Auto` must pick `Bounded`,
/// and the engine a chunk that leaves room for the kernel's read-ahead.
#[cfg(target_os = "linux")]
fn cgroup_peak() {
    use std::os::fd::AsRawFd;
    const TEST: &str = "a_stream_under_a_64_mib_cgroup_peaks_below_three_quarters_of_it";
    let limit = 64u64 << 20;
    let Some(cg) = memory_cgroup(TEST, limit) else {
        return;
    };
    // On the disk: a tmpfs (often /tmp) is memory, charged to whoever wrote it.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let n = 32usize << 20; // 128 MiB of f32 per array
    let block: Vec<u8> = (0..1024u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    for name in ["a", "b"] {
        let f = std::fs::File::create(tmp.path().join(name)).unwrap();
        let mut w = std::io::BufWriter::new(&f);
        for _ in 0..n / 1024 {
            std::io::Write::write_all(&mut w, &block).unwrap();
        }
        drop(w);
        f.sync_all().unwrap();
        // SAFETY: a plain system call on an open descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    let out = child(
        "cgroup_add",
        &[tmp.path().to_str().unwrap(), cg.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let peak: u64 = std::fs::read_to_string(cg.join("memory.max_usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_dir(&cg);
    assert!(
        out.status.success(),
        "the child failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    let c = unsafe { ndarray_mmap::mmap_array::<f32>(tmp.path().join("c"), [-1]) }.unwrap();
    assert!(
        [0, 1023, 1024, n - 1]
            .iter()
            .all(|&i| c.view()[i] == 2.0 * (i % 1024) as f32),
        "wrong sums"
    );
    eprintln!(
        "c = a + b, 3 x 128 MiB, in a 64 MiB cgroup: peak {:.1} MiB",
        peak as f64 / f64::from(1 << 20)
    );
    assert!(
        peak * 4 <= limit * 3,
        "the cgroup peaked at {:.1} MiB of its 64 MiB",
        peak as f64 / f64::from(1 << 20)
    );
}

/// A new memory cgroup (v1) of `limit` bytes under this process's, or `None` after saying
/// why `test` is skipped (not root, no memory controller).
#[cfg(target_os = "linux")]
fn memory_cgroup(test: &str, limit: u64) -> Option<std::path::PathBuf> {
    if !common::is_root() {
        common::skip(test, "needs root to make a memory cgroup");
        return None;
    }
    let table = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let Some(rel) = table.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, c, rel) = (f.next()?, f.next()?, f.next()?);
        c.split(',').any(|c| c == "memory").then(|| rel.to_owned())
    }) else {
        common::skip(test, "no cgroup v1 memory controller");
        return None;
    };
    let parent = Path::new("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
    let cg = parent.join(format!(
        "ndarray_mmap_test_{}_{}",
        std::process::id(),
        limit >> 20
    ));
    if let Err(e) = std::fs::create_dir(&cg) {
        common::skip(test, &format!("cannot make a memory cgroup: {e}"));
        return None;
    }
    std::fs::write(cg.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
    Some(cg)
}

/// Child: joins the cgroup `args[1]`, then sums the Zarr array `args[0]` (i64) with the
/// default options; says the sum.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn child_cgroup_sum_zarr(args: &[String]) {
    std::fs::write(
        Path::new(&args[1]).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();
    let z = unsafe { ndarray_mmap::zarr::open::<i64>(&args[0]) }.unwrap();
    tell_parent(&ndarray_mmap::ops::sum(&z).unwrap().to_string());
}

/// Child: joins the cgroup `args[2]`, then writes `x + 1` of the Zarr array `args[0]`
/// (i64) into the Zarr array `args[1]` with the default options and flushes it; says `ok`.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn child_cgroup_map_zarr(args: &[String]) {
    std::fs::write(
        Path::new(&args[2]).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();
    let z = unsafe { ndarray_mmap::zarr::open::<i64>(&args[0]) }.unwrap();
    let mut out = unsafe { ndarray_mmap::zarr::open_mut::<i64>(&args[1]) }.unwrap();
    if args.get(3).map(String::as_str) == Some("cancel") {
        // x + 2, cancelled a quarter of the way: says how many bytes were done.
        let opts =
            ndarray_mmap::ops::StreamOptions::new().progress(|p| match p.done * 4 >= p.total {
                true => std::ops::ControlFlow::Break(()),
                false => std::ops::ControlFlow::Continue(()),
            });
        match ndarray_mmap::ops::map_into_with(&z, &mut out, |x: i64| x + 2, opts) {
            Err(Error::Cancelled { done, .. }) => {
                out.flush().unwrap();
                tell_parent(&done.to_string());
            }
            other => panic!("not cancelled: {other:?}"),
        }
        return;
    }
    ndarray_mmap::ops::map_into(&z, &mut out, |x: i64| x + 1).unwrap();
    out.flush().unwrap();
    tell_parent("ok");
}

/// A zstd array of two 64 MiB chunks, and a gzip 2-d array in Fortran order with edge
/// chunks, not cached, summed with the default options in a 64 MiB cgroup, and x + 1 of the
/// first written into a zstd array of 64 MiB chunks there: each chunk is decoded and
/// encoded a piece at a time (one whole would take the whole limit), the results are
/// exact, and the cgroup peaks at no more than 3/4 of the limit.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn cgroup_streamed_chunks() {
    use ndarray_mmap::zarr;
    const TEST: &str =
        "compressed_chunks_bigger_than_a_64_mib_cgroup_are_decoded_and_encoded_as_a_stream";
    let limit = 64u64 << 20;
    let Some(cg) = memory_cgroup(TEST, limit) else {
        return;
    };
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = tmp.path().join("z.zarr");
    let n = 8usize << 20; // 64 MiB of i64 per chunk
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .compressor(zarr::Compressor::zstd(1))
            .create(&path, [2 * n], [n])
    }
    .unwrap();
    for k in 0..2 {
        let chunk = ndarray::Array1::from_shape_fn(n, |i| ((k * n + i) % 1000) as i64);
        w.write_chunk(&[k], &chunk).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    // A 2-d array in Fortran order, gzip, whose edge chunks cut both axes: 32 MiB chunks,
    // read run by run.
    let path2 = tmp.path().join("f.zarr");
    let (rows, cols) = (3000usize, 2500usize);
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .order(ndarray_mmap::Order::F)
            .compressor(zarr::Compressor::gzip(1))
            .create(&path2, [rows, cols], [2048, 2048])
    }
    .unwrap();
    let value = |r: usize, c: usize| ((r * 7 + c * 13) % 1000) as i64;
    for idx in w.chunk_indices().collect::<Vec<_>>() {
        let region = w.region(&idx).unwrap();
        let (r0, c0) = (region[0].start, region[1].start);
        let part = ndarray::Array2::from_shape_fn((region[0].len(), region[1].len()), |(r, c)| {
            value(r0 + r, c0 + c)
        });
        w.write_chunk(&idx, &part).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    evict_chunks(&path);
    evict_chunks(&path2);
    let mut sums = Vec::new();
    for p in [&path, &path2] {
        sums.push(child_says(
            "cgroup_sum_zarr",
            &[p.to_str().unwrap(), cg.to_str().unwrap()],
        ));
    }
    // And written: x + 1 into a zstd array of the same 64 MiB chunks, encoded as a stream.
    let path3 = tmp.path().join("o.zarr");
    drop(
        unsafe {
            zarr::CreateOptions::<i64>::new()
                .compressor(zarr::Compressor::zstd(1))
                .create(&path3, [2 * n], [n])
        }
        .unwrap(),
    );
    evict_chunks(&path);
    let said = child_says(
        "cgroup_map_zarr",
        &[
            path.to_str().unwrap(),
            path3.to_str().unwrap(),
            cg.to_str().unwrap(),
        ],
    );
    assert_eq!(said, "ok");
    // x + 2, cancelled inside the first chunk: what it did not reach keeps x + 1 (the old
    // chunk read as a stream while the new one is written).
    let said = child_says(
        "cgroup_map_zarr",
        &[
            path.to_str().unwrap(),
            path3.to_str().unwrap(),
            cg.to_str().unwrap(),
            "cancel",
        ],
    );
    let done: usize = said.parse().unwrap();
    let done = done / 8;
    assert!(done > 0 && done < n, "cancelled after {done} elements");
    let peak: u64 = std::fs::read_to_string(cg.join("memory.max_usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_dir(&cg);
    let want: i64 = (0..2 * n).map(|i| (i % 1000) as i64).sum();
    let want2: i64 = (0..rows)
        .flat_map(|r| (0..cols).map(move |c| value(r, c)))
        .sum();
    assert_eq!(sums, [want.to_string(), want2.to_string()]);
    let o = unsafe { zarr::open::<i64>(&path3) }.unwrap();
    for k in 0..2 {
        let c = o.chunk(&[k]).unwrap();
        let bad = c.view().iter().enumerate().position(|(i, &x)| {
            let j = k * n + i;
            x != (j % 1000) as i64 + if j < done { 2 } else { 1 }
        });
        assert_eq!(
            bad, None,
            "chunk {k} (x + 2 up to {done}, then x + 1) is wrong at {bad:?}"
        );
    }
    eprintln!(
        "sums of 64 MiB zstd and 32 MiB gzip chunks, and x + 1 of the first into 64 MiB zstd \
         chunks, in a 64 MiB cgroup: peak {:.1} MiB",
        peak as f64 / f64::from(1 << 20)
    );
    assert!(
        peak * 4 <= limit * 3,
        "the cgroup peaked at {:.1} MiB of its 64 MiB",
        peak as f64 / f64::from(1 << 20)
    );
}

/// Runs child `name` with `args`; what it said, after checking that it succeeded.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn child_says(name: &str, args: &[&str]) -> String {
    let out = child(name, args).output().unwrap();
    assert!(
        out.status.success(),
        "the child failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Drops the chunk files of the Zarr array at `array` from the page cache.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn evict_chunks(array: &Path) {
    for e in walk_files(&array.join("c")) {
        let f = std::fs::File::open(e).unwrap();
        // SAFETY: a plain system call on an open descriptor.
        unsafe {
            libc::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
                0,
                libc::POSIX_FADV_DONTNEED,
            )
        };
    }
}

/// Every file under `dir`.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        match e.file_type().unwrap().is_dir() {
            true => out.extend(walk_files(&e.path())),
            false => out.push(e.path()),
        }
    }
    out
}

/// Child: a file-size limit below the size of an existing output (which `pwrite` obeys,
/// with SIGXFSZ, and writes through a map do not), then a bounded stream into it.
#[cfg(target_os = "linux")]
fn child_fsize_add(args: &[String]) {
    let n = 1usize << 20; // 8 MiB of f64, made by the parent
    let mut c = unsafe { ndarray_mmap::mmap_array_mut::<f64>(&args[0], [n as isize]) }.unwrap();
    let lim = libc::rlimit {
        rlim_cur: 1 << 20,
        rlim_max: libc::RLIM_INFINITY,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    let a = ndarray::Array1::<f64>::from_elem(n, 1.0);
    let opts = ndarray_mmap::ops::StreamOptions::new().paging(ndarray_mmap::ops::Paging::Bounded);
    match ndarray_mmap::ops::map_into_with(&a, &mut c, |x| x + 2.0, opts) {
        Ok(()) => tell_parent(&format!("ok {}", c.view()[n - 1])),
        Err(e) => tell_parent(&format!("err {e}")),
    }
}

#[cfg(target_os = "linux")]
fn rlimit_fsize() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.f64");
    std::fs::write(&path, vec![0u8; 8 << 20]).unwrap();
    let out = child("fsize_add", &[path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child died: {:?}, said {said:?}",
        out.status
    );
    assert_eq!(said.trim(), "ok 3", "{said}");
}

/// Child: the sum of a 4-chunk uncompressed Zarr array (`args[0]`) in the page cache, whose
/// chunk `args[1]` another program cuts to nothing when the stream is in chunk 0, after
/// the read-ahead has mapped and populated the next chunks. Exits 3 on
/// `Error::Unreadable` naming that chunk file, 0 when the sum finished, 4 otherwise; a
/// SIGBUS shows as the signal.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn child_truncated_chunk_sum(args: &[String]) {
    use ndarray_mmap::ops::{self, Paging, StreamOptions};
    let z = unsafe { ndarray_mmap::zarr::open::<i32>(&args[0]) }.unwrap();
    let target = Path::new(&args[0]).join("c").join(&args[1]);
    let mut first = true;
    let opts = StreamOptions::new()
        .paging(Paging::Cached)
        .chunk_bytes(4096)
        .progress(|_| {
            if first {
                first = false;
                // The threads reading ahead map and populate chunks 1.. meanwhile.
                std::thread::sleep(Duration::from_millis(200));
                let f = std::fs::OpenOptions::new().write(true).open(&target);
                f.and_then(|f| f.set_len(0)).unwrap();
            }
            std::ops::ControlFlow::Continue(())
        });
    match ops::sum_with(&z, opts) {
        Ok(_) => std::process::exit(0),
        Err(e @ Error::Unreadable { .. }) if e.to_string().contains(target.to_str().unwrap()) => {
            eprintln!("{e}");
            std::process::exit(3)
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(4)
        }
    }
}

/// The chunks after the stream's are mapped and their pages brought in on other threads
/// (an uncompressed array in the page cache): a chunk file cut short after that, behind
/// the advisory locks, is still an `Err(Unreadable)` naming it when the stream reaches
/// it (its length is checked instead of a second prefault), never a SIGBUS.
#[cfg(all(target_os = "linux", feature = "zarr"))]
fn truncated_chunk_ahead() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.zarr");
    let n = 1 << 16; // 256 KiB chunks of i32
    let mut w = unsafe { ndarray_mmap::zarr::create::<i32>(&path, &[4 * n], &[n]) }.unwrap();
    for k in 0..4 {
        w.chunk_mut(&[k]).unwrap().view_mut().fill(1);
    }
    w.flush().unwrap();
    drop(w);
    for chunk in ["1", "2"] {
        let out = child("truncated_chunk_sum", &[path.to_str().unwrap(), chunk])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            None,
            "chunk {chunk}: died of a signal: {said}"
        );
        assert_eq!(out.status.code(), Some(3), "chunk {chunk}: {said}");
        std::fs::write(path.join("c").join(chunk), vec![0u8; 4 * n]).unwrap();
    }
}
