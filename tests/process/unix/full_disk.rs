// SAFETY (for every unsafe block below): the tests map files on their own private tmpfs.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Tmpfs, skip};
use ndarray_mmap::{Error, MapOptions, create_array, create_npy, mmap_array_mut, open_npy};

const MIB: usize = 1 << 20;

pub(crate) fn suite() -> common::Suite {
    common::suite(
        &[
            (
                "create_on_a_full_disk_fails_and_leaves_nothing",
                create_fails_cleanly,
            ),
            (
                "create_over_an_existing_file_keeps_it_on_a_full_disk",
                create_keeps_old_file,
            ),
            (
                "grow_on_a_full_disk_fails_and_keeps_the_array",
                grow_fails_cleanly,
            ),
            (
                "writes_to_a_reserved_map_never_fault_on_a_full_disk",
                reserved_writes_succeed,
            ),
            ("npy_create_and_grow_on_a_full_disk", npy_full_disk),
            (
                "a_stream_into_a_sparse_output_on_a_full_disk_writes_whole_chunks_only",
                stream_full_disk,
            ),
            #[cfg(feature = "zarr")]
            (
                "zarr_create_on_a_full_disk_fails_and_leaves_nothing",
                zarr_full_disk,
            ),
            #[cfg(feature = "zarr")]
            (
                "a_stream_into_a_zarr_array_on_a_full_disk_writes_nothing",
                zarr_stream_full_disk,
            ),
            #[cfg(feature = "zarr")]
            (
                "a_stream_into_a_compressed_zarr_array_on_a_full_disk_leaves_whole_chunks",
                zarr_compressed_stream_full_disk,
            ),
            #[cfg(feature = "npz")]
            (
                "an_npz_writer_on_a_full_disk_fails_and_keeps_the_old_file",
                npz_full_disk,
            ),
        ],
        &[],
    )
}

/// A fresh 4 MiB tmpfs, or `None` after printing why not.
fn small_disk(test: &str) -> Option<(tempfile::TempDir, Tmpfs, PathBuf)> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("disk");
    std::fs::create_dir(&dir).unwrap();
    match Tmpfs::mount(&dir, "4m") {
        Ok(fs) => Some((tmp, fs, dir)),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}

fn is_no_space(e: &Error) -> bool {
    matches!(e, Error::Reserve { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
}

fn create_fails_cleanly() {
    let Some((_tmp, _fs, dir)) = small_disk("create_on_a_full_disk_fails_and_leaves_nothing")
    else {
        return;
    };
    let path = dir.join("big.f64");
    let err = unsafe { create_array::<f64>(&path, [MIB as isize]) }.unwrap_err(); // 8 MiB
    assert!(is_no_space(&err), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("big.f64") && msg.contains("8388608 bytes"),
        "{msg}"
    );
    assert!(!path.exists(), "a failed create left a file behind");
    // create_new too, and with an offset.
    let err = unsafe {
        MapOptions::new()
            .create_new(true)
            .offset(64)
            .create::<u8>(&path, [5 * MIB as isize])
    }
    .unwrap_err();
    assert!(is_no_space(&err), "{err:?}");
    assert!(!path.exists());
    // The space is all still free: 3 MiB fits.
    let a = unsafe { create_array::<u8>(&path, [3 * MIB as isize]) }.unwrap();
    a.close().unwrap();
    // Sparse on request: the 8 MiB file is made, though it could never be filled.
    std::fs::remove_file(&path).unwrap();
    let s = unsafe {
        MapOptions::new()
            .preallocate(false)
            .create::<f64>(&path, [MIB as isize])
    }
    .unwrap();
    assert_eq!(s.len(), MIB);
}

fn create_keeps_old_file() {
    let Some((_tmp, _fs, dir)) = small_disk("create_over_an_existing_file_keeps_it_on_a_full_disk")
    else {
        return;
    };
    let path = dir.join("old.u8");
    let old: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &old).unwrap();
    let err = unsafe { create_array::<u8>(&path, [6 * MIB as isize]) }.unwrap_err();
    assert!(is_no_space(&err), "{err:?}");
    assert!(err.to_string().contains("it was 1048576 bytes"), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == old,
        "a failed create changed the file"
    );
    // The new file is built beside the old one (so that a failure or a crash leaves the
    // old one): 2 MiB fits beside it, and reads zeros.
    let a = unsafe { create_array::<u8>(&path, [2 * MIB as isize]) }.unwrap();
    assert!(a.view().iter().all(|&x| x == 0));
}

fn grow_fails_cleanly() {
    let Some((_tmp, _fs, dir)) = small_disk("grow_on_a_full_disk_fails_and_keeps_the_array") else {
        return;
    };
    let path = dir.join("log.u32");
    let row: usize = 256; // 1 KiB rows
    let mut a = unsafe { create_array::<u32>(&path, [1024, row as isize]) }.unwrap(); // 1 MiB
    a.view_mut().fill(5);
    let err = a.grow(8 * 1024).unwrap_err();
    assert!(is_no_space(&err), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("log.u32") && msg.contains("8388608") && msg.contains("1048576"),
        "{msg}"
    );
    assert_eq!(a.shape(), &[1024, row]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), MIB as u64);
    a.view_mut()[[1023, 0]] = 6; // still usable
    assert_eq!(a.view().sum(), 5 * (MIB as u32 / 4) + 1);
    // A smaller step fits.
    a.grow(2048).unwrap();
    assert_eq!(a.view().sum(), 5 * (MIB as u32 / 4) + 1);
    a.close().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * MIB as u64);
}

/// Fills whatever space is left with another file.
fn fill_disk(dir: &Path) {
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![1u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filler: {e}"),
        }
    }
}

fn reserved_writes_succeed() {
    let Some((_tmp, _fs, dir)) = small_disk("writes_to_a_reserved_map_never_fault_on_a_full_disk")
    else {
        return;
    };
    let path = dir.join("reserved.u8");
    let mut a = unsafe { create_array::<u8>(&path, [MIB as isize]) }.unwrap();
    a.grow(2 * MIB).unwrap();
    fill_disk(&dir);
    // Without reservation, touching these pages now would kill the process with SIGBUS.
    a.view_mut().fill(0xAB);
    a.close().unwrap();
    let b = unsafe { mmap_array_mut::<u8>(&path, [-1]) }.unwrap();
    assert_eq!(b.len(), 2 * MIB);
    assert!(b.view().iter().all(|&x| x == 0xAB));
}

fn npy_full_disk() {
    let Some((_tmp, _fs, dir)) = small_disk("npy_create_and_grow_on_a_full_disk") else {
        return;
    };
    let path = dir.join("a.npy");
    let err = unsafe { create_npy::<f64>(&path, [MIB as isize]) }.unwrap_err();
    assert!(is_no_space(&err), "{err:?}");
    assert!(err.to_string().contains("a.npy"), "{err}");
    assert!(!path.exists(), "a failed create_npy left a file behind");
    let mut a = unsafe { create_npy::<u8>(&path, [1024, 1024]) }.unwrap(); // 1 MiB
    a.view_mut().fill(3);
    let before = std::fs::read(&path).unwrap();
    let err = a.grow(8 * 1024).unwrap_err();
    assert!(is_no_space(&err), "{err:?}");
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a failed grow changed the .npy"
    );
    a.grow(2048).unwrap();
    a.close().unwrap();
    let b = unsafe { open_npy::<u8>(&path) }.unwrap();
    assert_eq!(b.shape(), &[2048, 1024]);
    assert_eq!(
        b.view().iter().map(|&x| x as u64).sum::<u64>(),
        3 * MIB as u64
    );
}

/// A Zarr array bigger than the disk: `create` fails (no space for a chunk) and removes
/// what it made, and the disk is as free as before.
#[cfg(feature = "zarr")]
fn zarr_full_disk() {
    let Some((_tmp, _fs, dir)) = small_disk("zarr_create_on_a_full_disk_fails_and_leaves_nothing")
    else {
        return;
    };
    let path = dir.join("a.zarr");
    let err =
        unsafe { ndarray_mmap::zarr::create::<f32>(&path, &[2 << 20], &[1 << 18]) }.unwrap_err();
    assert!(is_no_space(&err), "{err}");
    assert!(
        !path.exists(),
        "a failed create left the array's directory behind"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// A stream into a Zarr array whose missing chunks do not fit on the disk (a fill value
/// other than 0: `create` made no chunk files): the chunks are created before anything is
/// written, so the call fails with nothing written and the chunk files it made removed.
#[cfg(feature = "zarr")]
fn zarr_stream_full_disk() {
    use ndarray_mmap::{ops, zarr};
    let Some((_tmp, _fs, dir)) =
        small_disk("a_stream_into_a_zarr_array_on_a_full_disk_writes_nothing")
    else {
        return;
    };
    let path = dir.join("a.zarr");
    let opts = zarr::CreateOptions::new().fill_value(7.0f32);
    let mut w = unsafe { opts.create(&path, [2 << 20], [1 << 18]) }.unwrap(); // 8 MiB
    let json = std::fs::read(path.join("zarr.json")).unwrap();
    assert!(
        !path.join("c").exists(),
        "create made chunk files for a non-zero fill"
    );
    let a = ndarray::Array1::<f32>::from_elem(2 << 20, 1.0);
    let err = ops::map_into(&a, &mut w, |x: f32| x * 2.0).unwrap_err();
    assert!(is_no_space(&err), "{err}");
    assert_eq!(std::fs::read(path.join("zarr.json")).unwrap(), json);
    let left: Vec<_> = walk(&path.join("c"));
    assert!(
        left.is_empty(),
        "the failed call left chunk files: {left:?}"
    );
    // The array still reads as its fill value.
    assert_eq!(ops::max(&w).unwrap(), Some(7.0));
}

/// A stream into a compressed array runs out of disk half-way (its chunks are encoded and
/// written on another thread, behind the stream): the error says so, and every chunk is
/// whole, old or new, with no temporary file left.
#[cfg(feature = "zarr")]
fn zarr_compressed_stream_full_disk() {
    use ndarray_mmap::{ops, zarr};
    let Some((_tmp, _fs, dir)) =
        small_disk("a_stream_into_a_compressed_zarr_array_on_a_full_disk_leaves_whole_chunks")
    else {
        return;
    };
    let path = dir.join("c.zarr");
    let (n, chunk) = (2 << 20, 1 << 14); // 8 MiB of f32 that do not compress, 64 KiB chunks
    let opts = zarr::CreateOptions::new()
        .fill_value(7.0f32)
        .compressor(zarr::Compressor::zstd(1));
    let mut w = unsafe { opts.create(&path, [n], [chunk]) }.unwrap();
    let json = std::fs::read(path.join("zarr.json")).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let a = ndarray::Array1::<f32>::from_shape_simple_fn(n, || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f32::from_bits((x >> 41) as u32 | 0x3f80_0000) // in [1, 2), random mantissas
    });
    let err = ops::map_into(&a, &mut w, |v: f32| v).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&std::io::Error::from_raw_os_error(libc::ENOSPC).to_string()),
        "not a full disk: {text}"
    );
    assert_eq!(std::fs::read(path.join("zarr.json")).unwrap(), json);
    let files = walk(&path);
    let stray: Vec<_> = files
        .iter()
        .filter(|p| {
            p.strip_prefix(&path)
                .unwrap()
                .to_string_lossy()
                .contains("tmp")
        })
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
    let r = unsafe { zarr::open::<f32>(&path) }.unwrap();
    let (mut new, mut old) = (0, 0);
    for idx in r.chunk_indices() {
        let c = r.chunk(&idx).unwrap();
        let start = idx[0] * chunk;
        if c.view().iter().all(|&v| v == 7.0) {
            old += 1;
        } else {
            assert_eq!(
                c.view(),
                a.slice(ndarray::s![start..start + chunk]).into_dyn(),
                "chunk {idx:?} is neither old nor new"
            );
            new += 1;
        }
    }
    assert!(new > 0 && old > 0, "{new} chunks new, {old} old");
}

/// Every file under `dir` (none when it does not exist).
#[cfg(feature = "zarr")]
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An archive bigger than the disk: the writer fails, and the old archive at the path is
/// whole and the only file there.
#[cfg(feature = "npz")]
fn npz_full_disk() {
    let Some((_tmp, _fs, dir)) =
        small_disk("an_npz_writer_on_a_full_disk_fails_and_keeps_the_old_file")
    else {
        return;
    };
    let path = dir.join("a.npz");
    let mut w = ndarray_mmap::NpzWriter::create(&path).unwrap();
    w.add("small", &ndarray::array![1u8, 2, 3]).unwrap();
    w.finish().unwrap();
    let before = std::fs::read(&path).unwrap();
    let big = ndarray::Array1::<f32>::zeros(2 << 20); // 8 MiB on a 4 MiB disk
    let r = ndarray_mmap::NpzWriter::create(&path).and_then(|mut w| {
        w.add("big", &big)?;
        w.finish()
    });
    let err = r.unwrap_err();
    assert!(err.to_string().contains("a.npz"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

/// The elementwise functions under `Bounded` write an output's chunks with `pwrite`: on a
/// full disk a chunk fails before any byte of it is written (its blocks are reserved
/// first), so exactly the chunks reported done are in the file, as through the map.
fn stream_full_disk() {
    use ndarray_mmap::ops::{self, Paging, StreamOptions};
    use std::ops::ControlFlow;
    let Some((_tmp, _fs, dir)) =
        small_disk("a_stream_into_a_sparse_output_on_a_full_disk_writes_whole_chunks_only")
    else {
        return;
    };
    for paging in [Paging::Bounded, Paging::Cached] {
        let path = dir.join("sparse.u8");
        let n = 3 * MIB;
        let mut c = unsafe {
            MapOptions::new()
                .preallocate(false)
                .create::<u8>(&path, [n as isize])
        }
        .unwrap();
        std::fs::write(dir.join("room"), vec![0u8; 700 << 10]).unwrap();
        fill_disk(&dir);
        std::fs::remove_file(dir.join("room")).unwrap();
        let a = ndarray::Array1::<u8>::from_elem(n, 9);
        let mut done = 0;
        let opts = StreamOptions::new()
            .paging(paging)
            .chunk_bytes(300 << 10)
            .progress(|p| {
                done = p.done;
                ControlFlow::Continue(())
            });
        let r = ops::map_into_with(&a, &mut c, |x| x, opts);
        drop(c);
        assert!(r.is_err(), "{paging:?}: the disk had room for all of it");
        let nines = std::fs::read(&path)
            .unwrap()
            .iter()
            .filter(|&&x| x == 9)
            .count();
        assert_eq!(nines as u64, done, "{paging:?}: {r:?}");
        assert!(done > 0, "{paging:?}: no chunk fitted");
        std::fs::remove_file(&path).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}
