//! The Zarr layer under other writers, crashes and other people's directories (feature
//! `zarr`): concurrent creates of one array and of one chunk, chunks on the same bytes,
//! links out of the array, locked chunks, cancels that can be resumed, shard indexes read
//! once, and inner chunks not aligned for their type. Each test fails without the fix it
//! names.
#![cfg(all(feature = "zarr", not(miri)))]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use ndarray::{Array2, ArrayD, IxDyn, s};
use ndarray_mmap::ops::{self, StreamOptions};
use ndarray_mmap::{Error, ZarrProblem, create_array, zarr};

fn chunk_file(array: &Path, idx: &[usize]) -> PathBuf {
    let mut p = array.join("c");
    p.extend(idx.iter().map(usize::to_string));
    p
}

/// Every element of a Zarr array, read chunk by chunk.
fn assemble<T: ndarray_mmap::Element + Default>(z: &zarr::ZarrArray<T>) -> ArrayD<T> {
    let mut out = ArrayD::from_elem(IxDyn(z.shape()), T::default());
    for idx in z.chunk_indices() {
        let r = z.region(&idx).unwrap();
        out.slice_each_axis_mut(|d| ndarray::Slice::from(r[d.axis.index()].clone()))
            .assign(&z.chunk(&idx).unwrap().view());
    }
    out
}

/// Of many creates of one array at once, one succeeds, the others fail with `Exists` and
/// leave everything of the winner's alone, also what it wrote after its `Ok`.
#[test]
fn concurrent_creates_of_one_array_leave_the_winners_array_whole() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..40 {
        let path = dir.path().join(format!("a{round}.zarr"));
        let n = 4;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match unsafe { zarr::create::<i32>(&path, &[64, 8], &[8, 8]) } {
                        Ok(mut w) => {
                            for idx in w.chunk_indices() {
                                w.chunk_mut(&idx).unwrap().view_mut().fill(t as i32 + 1);
                            }
                            Some(t)
                        }
                        Err(Error::Zarr {
                            problem: ZarrProblem::Exists,
                            ..
                        }) => None,
                        Err(e) => panic!("round {round}: {e}"),
                    }
                })
            })
            .collect();
        let won: Vec<usize> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {won:?} all created the array");
        let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
        let got = assemble(&z);
        assert!(
            got.iter().all(|&x| x == won[0] as i32 + 1),
            "round {round}: the winner's writes were lost"
        );
        let names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["c", "zarr.json"], "round {round}: left behind");
    }
}

/// Two writers making one missing chunk at once: both writes stand (the second opens the
/// chunk the first made, never replaces it).
#[test]
fn concurrent_writers_of_a_missing_chunk_keep_both_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    drop(
        unsafe {
            zarr::CreateOptions::new()
                .fill_value(-1i32)
                .create(&path, [64], [64])
        }
        .unwrap(),
    );
    for round in 0..150 {
        let c0 = chunk_file(&path, &[0]);
        if c0.exists() {
            std::fs::remove_file(&c0).unwrap();
        }
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2usize)
            .map(|t| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut w = unsafe { zarr::open_mut::<i32>(&path) }.unwrap();
                    barrier.wait();
                    let mut c = w.chunk_mut(&[0]).unwrap();
                    c.view_mut()[t] = t as i32 + 10;
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
        let c = z.chunk(&[0]).unwrap();
        let v = c.view();
        assert_eq!(
            (v[0], v[1], v[2]),
            (10, 11, -1),
            "round {round}: a write was lost"
        );
    }
}

/// A new chunk appears at its path already holding the fill value: a reader (or a crash)
/// never sees it full of zeros.
#[test]
fn a_new_chunk_appears_filled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.zarr");
    let n = 8 << 20; // 32 MiB of f32: filling it takes long enough to be seen
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .fill_value(f32::NAN)
            .create(&path, [n], [n])
    }
    .unwrap();
    let file = chunk_file(&path, &[0]);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let (file, done, seen) = (file.clone(), done.clone(), seen.clone());
        std::thread::spawn(move || {
            use std::io::{Read, Seek, SeekFrom};
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut f) = std::fs::File::open(&file) else {
                    continue;
                };
                let mut head = [0u8; 4096];
                let mut tail = [0u8; 4096];
                f.read_exact(&mut head).unwrap();
                f.seek(SeekFrom::End(-4096)).unwrap();
                f.read_exact(&mut tail).unwrap();
                for b in [head, tail] {
                    let x: &[f32] = bytemuck::cast_slice(&b);
                    assert!(
                        x.iter().all(|v| v.is_nan()),
                        "a new chunk was seen unfilled"
                    );
                }
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    drop(w.chunk_mut(&[0]).unwrap());
    // Until the watcher has looked at the chunk (a loaded machine may be slow to run it).
    let start = std::time::Instant::now();
    while seen.load(std::sync::atomic::Ordering::Relaxed) == 0
        && start.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(
        seen.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the watcher never saw the chunk"
    );
}

/// Bytes this thread has read with `read` calls (`rchar` of `/proc/thread-self/io`): page
/// faults on maps do not count.
#[cfg(target_os = "linux")]
fn rchar() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A minimal crc32c (Castagnoli), for the shard indexes these tests write.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 1-d sharded array of `f64` at `path`: shape `n`, one shard of `n`, inner chunks of
/// `inner`, the index (with a crc32c) at the start or the end; `entries(k)` gives inner
/// chunk `k`'s (offset, nbytes) in place of the natural ones when `Some`.
fn sharded(
    path: &Path,
    n: usize,
    inner: usize,
    at_start: bool,
    entries: impl Fn(usize) -> Option<(u64, u64)>,
) -> Vec<f64> {
    let count = n / inner;
    let index_len = count * 16 + 4;
    let values: Vec<f64> = (0..n).map(|i| i as f64 * 0.5 + 1.0).collect();
    // 8 bytes of room after the chunks, for entries that move one.
    let data: Vec<u8> = [bytemuck::cast_slice::<f64, u8>(&values), &[0u8; 8]].concat();
    let data = data.as_slice();
    let base = if at_start { index_len } else { 0 };
    let mut index = Vec::new();
    for k in 0..count {
        let natural = ((base + k * inner * 8) as u64, (inner * 8) as u64);
        let (o, b) = entries(k).unwrap_or(natural);
        index.extend_from_slice(&o.to_le_bytes());
        index.extend_from_slice(&b.to_le_bytes());
    }
    let sum = crc32c(&index);
    index.extend_from_slice(&sum.to_le_bytes());
    let shard = if at_start {
        [index.as_slice(), data].concat()
    } else {
        [data, index.as_slice()].concat()
    };
    std::fs::create_dir_all(path.join("c")).unwrap();
    std::fs::write(path.join("c").join("0"), shard).unwrap();
    let json = format!(
        r#"{{"zarr_format": 3, "node_type": "array", "shape": [{n}], "data_type": "float64",
        "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [{n}]}}}},
        "chunk_key_encoding": {{"name": "default", "configuration": {{"separator": "/"}}}},
        "fill_value": 0.0,
        "codecs": [{{"name": "sharding_indexed", "configuration": {{"chunk_shape": [{inner}],
            "codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}}],
            "index_codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}},
                             {{"name": "crc32c"}}],
            "index_location": "{}"}}}}],
        "attributes": {{}}}}"#,
        if at_start { "start" } else { "end" }
    );
    std::fs::write(path.join("zarr.json"), json).unwrap();
    values
}

/// Chunks of one output on the same bytes are refused before anything is written:
/// hard-linked chunk files, and overlapping entries of one shard index.
#[test]
fn chunks_of_one_output_on_the_same_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    let mut w = unsafe { zarr::create::<i32>(&path, &[8], &[4]) }.unwrap();
    w.chunk_mut(&[0]).unwrap().view_mut().fill(5);
    let (c0, c1) = (chunk_file(&path, &[0]), chunk_file(&path, &[1]));
    std::fs::remove_file(&c1).unwrap();
    std::fs::hard_link(&c0, &c1).unwrap();
    let input = ndarray::Array1::from_iter(0..8i32);
    let err = ops::map_into(&input, &mut w, |x: i32| x).unwrap_err();
    assert!(err.to_string().contains("hard links"), "{err}");
    assert_eq!(
        std::fs::read(&c0).unwrap(),
        bytemuck::cast_slice::<i32, u8>(&[5i32; 4])
    );

    // Two index entries over one inner chunk's bytes: a damaged index, refused on read
    // and on write.
    let sh = dir.path().join("s.zarr");
    sharded(&sh, 8, 4, false, |k| (k == 1).then_some((0, 32)));
    let z = unsafe { zarr::open::<f64>(&sh) }.unwrap();
    let err = z.chunk(&[0]).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Zarr {
                problem: ZarrProblem::ShardIndex { .. },
                ..
            }
        ) && err.to_string().contains("overlap"),
        "{err}"
    );
    let before = std::fs::read(chunk_file(&sh, &[0])).unwrap();
    let mut w = unsafe { zarr::open_mut::<f64>(&sh) }.unwrap();
    let input = ndarray::Array1::from_elem(8, 9.0f64);
    assert!(ops::map_into(&input, &mut w, |x: f64| x).is_err());
    assert_eq!(std::fs::read(chunk_file(&sh, &[0])).unwrap(), before);
}

/// Chunks that are links out of the array, or a `c/` that is one, are never written
/// through: the link's target stays as it was.
#[cfg(unix)]
#[test]
fn links_out_of_the_array_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.bin");
    std::fs::write(&victim, [7u8; 16]).unwrap();
    let path = dir.path().join("a.zarr");
    let mut w = unsafe { zarr::create::<i32>(&path, &[8], &[4]) }.unwrap();
    let c1 = chunk_file(&path, &[1]);
    std::fs::remove_file(&c1).unwrap();
    std::os::unix::fs::symlink(&victim, &c1).unwrap();
    let err = w.chunk_mut(&[1]).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    let input = ndarray::Array1::from_elem(8, 1i32);
    assert!(ops::map_into(&input, &mut w, |x: i32| x).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), [7u8; 16]);
    // nothing else was written either
    assert_eq!(std::fs::read(chunk_file(&path, &[0])).unwrap(), [0u8; 16]);

    // A `c/` that links elsewhere: a missing chunk is not made there.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let b = dir.path().join("b.zarr");
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .fill_value(3i32)
            .create(&b, [8], [4])
    }
    .unwrap();
    std::os::unix::fs::symlink(&outside, b.join("c")).unwrap();
    assert!(w.chunk_mut(&[0]).is_err());
    assert!(ops::map_into(&input, &mut w, |x: i32| x).is_err());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // Reading through links is fine.
    let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
    assert_eq!(z.chunk(&[1]).unwrap().view()[0], i32::from_ne_bytes([7; 4]));
}

/// A chunk far into the output locked by another program fails the stream before any
/// chunk is written.
#[cfg(unix)]
#[test]
fn a_locked_chunk_far_into_the_output_fails_before_anything_is_written() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    let mut w = unsafe { zarr::create::<i32>(&path, &[64], &[4]) }.unwrap();
    let last = chunk_file(&path, &[15]);
    let holder = std::fs::File::open(&last).unwrap();
    // SAFETY: a plain system call on an open descriptor (what `flock -x` does).
    assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) }, 0);
    let input = ndarray::Array1::from_elem(64, 1i32);
    let err = ops::map_into(&input, &mut w, |x: i32| x).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    for k in 0..16 {
        assert_eq!(
            std::fs::read(chunk_file(&path, &[k])).unwrap(),
            [0u8; 16],
            "chunk {k} was written"
        );
    }
    drop(holder);
    ops::map_into(&input, &mut w, |x: i32| x).unwrap();
    assert_eq!(
        std::fs::read(&last).unwrap(),
        bytemuck::cast_slice::<i32, u8>(&[1i32; 4])
    );
}

/// A cancel with a Zarr grid that cuts an inner axis keeps `Cancelled`'s promise: the
/// first `done` bytes of the output in memory order hold new values, the rest are
/// unchanged; the caller resumes from there and gets the whole result.
#[test]
fn a_cancel_over_a_grid_cutting_an_inner_axis_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let zpath = dir.path().join("z.zarr");
    let a = Array2::from_shape_fn((40, 9), |(i, j)| (i * 9 + j) as i32);
    let mut z = unsafe { zarr::create::<i32>(&zpath, &[40, 9], &[10, 3]) }.unwrap();
    for idx in z.chunk_indices() {
        let r = z.region(&idx).unwrap();
        z.chunk_mut(&idx)
            .unwrap()
            .view_mut()
            .assign(&a.slice(s![r[0].clone(), r[1].clone()]));
    }
    let z = unsafe { zarr::open::<i32>(&zpath) }.unwrap();
    for stop_after in [1, 2, 4, 7] {
        let opath = dir.path().join(format!("out{stop_after}.i32"));
        let mut out = unsafe { create_array::<i32>(&opath, [40, 9]) }.unwrap();
        out.view_mut().fill(-7);
        let mut calls = 0;
        let opts = StreamOptions::new().chunk_bytes(40).progress(|_| {
            calls += 1;
            if calls >= stop_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let err = ops::map_into_with(&z, &mut out, |x: i32| x + 1, opts).unwrap_err();
        let Error::Cancelled { done, total, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(total, 40 * 9 * 4);
        assert!(done > 0 && done < total);
        let done_elems = (done / 4) as usize;
        let flat: Vec<i32> = out.view().iter().copied().collect();
        let want: Vec<i32> = a.iter().map(|x| x + 1).collect();
        assert_eq!(flat[..done_elems], want[..done_elems], "the prefix done");
        assert!(
            flat[done_elems..].iter().all(|&x| x == -7),
            "stop {stop_after}: values past done = {done} bytes were written"
        );
        // Resume: whole rows are done, the rest is computed from there.
        assert_eq!(done_elems % 9, 0, "a band of whole rows");
        let rows = done_elems / 9;
        let rest = a.slice(s![rows.., ..]).to_owned();
        let mut o = out.view_mut();
        let mut tail = o.slice_mut(s![rows.., ..]);
        ops::map_into(&rest, &mut tail, |x: i32| x + 1).unwrap();
        assert_eq!(out.view(), a.mapv(|x| x + 1).into_dyn());
    }
}

/// Each shard index is read once, not once per inner chunk: summing an array of 4096
/// inner chunks in one shard reads about the index's bytes once (a read per lookup read
/// 4096 × 2 × 64 KiB).
#[cfg(target_os = "linux")]
#[test]
fn a_shard_index_is_read_once_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.zarr");
    let values = sharded(&path, 4096, 1, false, |_| None);
    let z = unsafe { zarr::open::<f64>(&path) }.unwrap();
    let before = rchar();
    let total = ops::sum(&z).unwrap();
    let read = rchar() - before;
    assert_eq!(total, values.iter().sum::<f64>());
    assert!(read < 1 << 20, "{read} bytes read for a 64 KiB index");
}

/// Inner chunks 4 bytes off 8-byte alignment (the index at the start, with a crc32c, as
/// zarr-python writes it) read as they are; writing them in place is refused, saying why.
#[test]
fn misaligned_inner_chunks_of_eight_byte_types_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.zarr");
    let values = sharded(&path, 16, 4, true, |_| None);
    let z = unsafe { zarr::open::<f64>(&path) }.unwrap();
    assert_eq!(assemble(&z).into_raw_vec_and_offset().0, values);
    assert_eq!(ops::sum(&z).unwrap(), values.iter().sum::<f64>());
    let mut w = unsafe { zarr::open_mut::<f64>(&path) }.unwrap();
    let err = w.chunk_mut(&[1]).unwrap_err();
    assert!(err.to_string().contains("alignment"), "{err}");
}

/// A Zarr v2 array (`.zarray`, no `zarr.json`) is named as such, not a bare missing file.
#[test]
fn a_zarr_v2_array_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.zarr");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join(".zarray"), r#"{"zarr_format": 2}"#).unwrap();
    let err = unsafe { zarr::open::<f32>(&path) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Zarr {
                problem: ZarrProblem::V2 { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("v2"), "{err}");
    // Nothing there at all: the I/O error, naming zarr.json.
    let err = unsafe { zarr::open::<f32>(dir.path().join("none.zarr")) }.unwrap_err();
    assert!(err.to_string().contains("zarr.json"), "{err}");
}

/// A chunk length of 0 is allowed on an axis of length 0 (the spec allows it, zarr-python
/// writes it) and refused elsewhere, with nothing made.
#[test]
fn a_zero_chunk_length_on_an_empty_axis_creates_and_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.zarr");
    let w = unsafe { zarr::create::<f32>(&path, &[0, 4], &[0, 2]) }.unwrap();
    assert_eq!(w.grid(), [0, 2]);
    assert_eq!(w.chunk_indices().count(), 0);
    let z = unsafe { zarr::open::<f32>(&path) }.unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 0.0);
    let bad = dir.path().join("bad.zarr");
    let err = unsafe { zarr::create::<f32>(&bad, &[3, 4], &[0, 2]) }.unwrap_err();
    assert!(matches!(
        err,
        Error::Zarr {
            problem: ZarrProblem::Shape { .. },
            ..
        }
    ));
    assert!(!bad.exists());
}

/// A chunk file that is also another array's (hard links, as `cp -al` makes) is never
/// written in place: not by a stream, not by `chunk_mut`; the other array stays as it was.
#[cfg(unix)]
#[test]
fn chunks_shared_with_another_array_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.zarr");
    let mut w = unsafe { zarr::create::<f32>(&a, &[8], &[4]) }.unwrap();
    for idx in w.chunk_indices() {
        w.chunk_mut(&idx).unwrap().view_mut().fill(1.0);
    }
    drop(w);
    let b = dir.path().join("b.zarr");
    let ok = std::process::Command::new("cp")
        .args(["-al"])
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(ok.success());
    let before = std::fs::read(chunk_file(&a, &[0])).unwrap();
    let mut wb = unsafe { zarr::open_mut::<f32>(&b) }.unwrap();
    let ones = ndarray::Array1::from_elem(8, 1.0f32);
    let err = ops::add_into(&ones, &ones, &mut wb).unwrap_err();
    assert!(err.to_string().contains("hard links"), "{err}");
    assert!(wb.chunk_mut(&[1]).is_err());
    assert_eq!(std::fs::read(chunk_file(&a, &[0])).unwrap(), before);
    assert_eq!(std::fs::read(chunk_file(&a, &[1])).unwrap(), before);
}

/// A stream into a shard one of whose inner chunks is not aligned for its type fails
/// before writing any inner chunk (reading it works).
#[test]
fn a_misaligned_inner_chunk_later_in_the_output_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.zarr");
    // inner chunks of 4 f64 at 0, 32, 64, then 100 (4 bytes off); the index at the end
    let values = sharded(&path, 16, 4, false, |k| (k == 3).then_some((100, 32)));
    let before = std::fs::read(chunk_file(&path, &[0])).unwrap();
    let z = unsafe { zarr::open::<f64>(&path) }.unwrap();
    let sum: f64 = ops::sum(&z).unwrap();
    assert!(sum.is_finite());
    let _ = values;
    let mut w = unsafe { zarr::open_mut::<f64>(&path) }.unwrap();
    let err = ops::map_inplace(&mut w, |x: f64| x + 100.0).unwrap_err();
    assert!(err.to_string().contains("alignment"), "{err}");
    assert_eq!(std::fs::read(chunk_file(&path, &[0])).unwrap(), before);
}

/// A 0-d array is created (its one chunk is the file `c`) and reads back.
#[test]
fn a_zero_dimensional_array_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.zarr");
    let mut w = unsafe { zarr::create::<f32>(&path, (), ()) }.unwrap();
    w.chunk_mut(&[]).unwrap().view_mut()[[]] = 2.5;
    let z = unsafe { zarr::open::<f32>(&path) }.unwrap();
    assert_eq!(ops::sum(&z).unwrap(), 2.5);
    assert!(path.join("c").is_file());
    let names = std::fs::read_dir(&path).unwrap().count();
    assert_eq!(names, 2, "zarr.json and c only");
}

/// With `read_through(true)` under `Bounded`, a Zarr input is read with `pread` (no map to
/// fault on, so a truncated chunk is an `Err`, never a SIGBUS) also when its grid cuts an
/// inner axis: the bytes come through `read` calls (`rchar`), not page faults.
#[cfg(target_os = "linux")]
#[test]
fn read_through_reads_zarr_chunks_cut_across_an_inner_axis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.zarr");
    let mut w = unsafe { zarr::create::<f32>(&path, &[256, 1024], &[64, 384]) }.unwrap();
    for idx in w.chunk_indices() {
        w.chunk_mut(&idx).unwrap().view_mut().fill(1.0);
    }
    drop(w);
    let z = unsafe { zarr::open::<f32>(&path) }.unwrap();
    let bytes = 256 * 1024 * 4;
    for through in [false, true] {
        let opts = StreamOptions::new()
            .paging(ops::Paging::Bounded)
            .read_through(through);
        let before = rchar();
        assert_eq!(ops::sum_with(&z, opts).unwrap(), 256.0 * 1024.0);
        let read = rchar() - before;
        if through {
            assert!(read >= bytes, "{read} bytes read through the file");
        } else {
            assert!(read < bytes / 2, "{read} bytes read through the file");
        }
    }
}

/// Another program holds an exclusive lock on chunk 1 while the stream is in chunk 0 and
/// lets it go before the stream gets there: the chunk read ahead met the lock, so the
/// stream reads it again when it reaches it, and the sum succeeds as it would have without
/// reading ahead (the error of a read ahead is never the stream's).
#[cfg(unix)]
#[test]
fn a_lock_released_before_the_stream_reaches_a_chunk_read_ahead_does_not_fail_it() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zarr");
    let n = 1 << 16;
    let mut w = unsafe { zarr::create::<i32>(&path, &[4 * n], &[n]) }.unwrap();
    for k in 0..4 {
        w.chunk_mut(&[k]).unwrap().view_mut().fill(1);
    }
    w.flush().unwrap();
    drop(w);
    let holder = std::fs::File::open(path.join("c").join("1")).unwrap();
    // SAFETY: a plain call on an open descriptor.
    assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) }, 0);
    let z = unsafe { zarr::open::<i32>(&path) }.unwrap();
    let mut first = true;
    let opts = ops::StreamOptions::new()
        .paging(ops::Paging::Cached)
        .chunk_bytes(4096)
        .progress(|_| {
            if first {
                first = false;
                std::thread::sleep(std::time::Duration::from_millis(200));
                // SAFETY: as above.
                assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_UN) }, 0);
            }
            std::ops::ControlFlow::Continue(())
        });
    assert_eq!(ops::sum_with(&z, opts).unwrap(), (4 * n) as i64);
}

/// A chunk shape far bigger than memory in someone's `zarr.json` (2**35 elements: 128 GiB
/// for 64 of data): reading, summing and writing the chunk are errors naming it. The
/// allocation's failure aborted the process before.
#[test]
fn a_chunk_bigger_than_memory_is_an_err_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.zarr");
    let mut w = unsafe {
        zarr::CreateOptions::new()
            .compressor(zarr::Compressor::zstd(1))
            .create(&path, [64], [64])
    }
    .unwrap();
    w.write_chunk(&[0], &ndarray::Array1::<f32>::ones(64))
        .unwrap();
    drop(w);
    let meta = path.join("zarr.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let hostile = text.replacen("[64]", "[34359738368]", 2); // the shape stays 64: the chunk grows
    assert_ne!(hostile, text);
    let hostile = hostile.replacen("[34359738368]", "[64]", 1);
    std::fs::write(&meta, hostile).unwrap();
    let z = unsafe { zarr::open::<f32>(&path) }.unwrap();
    assert_eq!(
        (z.shape(), z.chunk_shape()),
        (&[64][..], &[34359738368][..])
    );
    let e = z.chunk(&[0]).map(drop).unwrap_err();
    assert!(e.to_string().contains("do not fit in memory"), "{e}");
    assert!(ops::sum(&z).is_err());
    let mut w = unsafe { zarr::open_mut::<f32>(&path) }.unwrap();
    let e = w
        .write_chunk(&[0], &ndarray::Array1::<f32>::zeros(64))
        .unwrap_err();
    assert!(e.to_string().contains("do not fit in memory"), "{e}");
}

/// Someone who can write the array's directory keeps swapping a link to a file outside it
/// in place of a chunk file, and the real file back: the checks before the open saw the
/// real file, the open followed the link, and the chunk's writes reached the file outside
/// (within seconds, every run). The file opened is now checked to be the entry at the
/// path before anything is written.
#[cfg(unix)]
#[test]
fn a_link_swapped_in_while_a_chunk_is_opened_is_never_written_through() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.bin");
    std::fs::write(&victim, [7u8; 16]).unwrap();
    let path = dir.path().join("a.zarr");
    let mut w = unsafe { zarr::create::<f32>(&path, &[4], &[4]) }.unwrap();
    w.chunk_mut(&[0]).unwrap().view_mut().fill(2.0);
    let chunk = chunk_file(&path, &[0]);
    let real = std::fs::read(&chunk).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, chunk, victim, real) = (stop.clone(), chunk.clone(), victim.clone(), real);
        std::thread::spawn(move || {
            let (link, copy) = (chunk.with_extension("l"), chunk.with_extension("r"));
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&victim, &link).unwrap();
                std::fs::rename(&link, &chunk).unwrap();
                std::fs::write(&copy, &real).unwrap();
                std::fs::rename(&copy, &chunk).unwrap();
            }
        })
    };
    let (mut written, mut refused) = (0, 0);
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(3) {
        match w.chunk_mut(&[0]) {
            Ok(mut c) => {
                c.view_mut().fill(1.0);
                written += 1;
            }
            Err(_) => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        [7u8; 16],
        "written through the link ({written} chunks written, {refused} refused)"
    );
    assert!(
        written > 0 && refused > 0,
        "{written} written, {refused} refused"
    );
}
