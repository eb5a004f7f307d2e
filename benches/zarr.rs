//! Zarr figures for `benches/zarr.sh` (feature `zarr`): each line is `name seconds`.
//!
//! - `cargo bench --features zarr --bench zarr -- open DIR`: zarr::open alone, and open +
//!   mapping every chunk, for a 64 MiB f32 array cut into 1, 16, 256 and 4096 chunks.
//! - `... -- make DIR MIB CHUNK_MIB`: writes `a.zarr`, `b.zarr` (and raw `a.f32`, `b.f32` with
//!   the same values) of MIB MiB each, chunks of CHUNK_MIB MiB.
//! - `... -- add DIR`: `c = a + b` over the whole Zarr arrays (`ops::add_into`, which maps
//!   chunk after chunk), timed; `... -- add_chunks DIR`: the same with a loop over chunks and
//!   a `Zip` per chunk; `... -- add_raw DIR`: the same add on the raw files.
//! - `... -- read DIR`: open `a.zarr` and `ops::sum` it (every chunk mapped; warm, median of 5).
//! - `... -- shards DIR`: open + `ops::sum` of one shard of 2^10, 2^12 and 2^14 inner chunks
//!   (each shard index read once per stream: the time per inner chunk stays flat).

use std::path::Path;
use std::time::Instant;

use ndarray_mmap::ops::{self, Zip};
use ndarray_mmap::{create_array, mmap_array, zarr};

/// `a.zarr` and `b.zarr`, and a new `c.zarr` on their grid.
fn open_add(
    dir: &Path,
) -> (
    zarr::ZarrArray<f32>,
    zarr::ZarrArray<f32>,
    zarr::ZarrArrayMut<f32>,
) {
    // SAFETY: the benchmark's files are touched by nothing else while it runs.
    let a = unsafe { zarr::open::<f32>(dir.join("a.zarr")) }.expect("a");
    let b = unsafe { zarr::open::<f32>(dir.join("b.zarr")) }.expect("b");
    let c =
        unsafe { zarr::create::<f32>(dir.join("c.zarr"), a.shape(), a.chunk_shape()) }.expect("c");
    (a, b, c)
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(cmd), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: cargo bench --features zarr --bench zarr -- open|make|add|add_raw DIR ... (see benches/zarr.sh)"
        );
        return;
    };
    let dir = Path::new(dir);
    // SAFETY (of every map): the benchmark's own files, touched by nothing else meanwhile.
    match cmd.as_str() {
        "open" => {
            let n = 16usize << 20; // 64 MiB of f32
            for chunks in [1usize, 16, 256, 4096] {
                let p = dir.join(format!("open{chunks}.zarr"));
                drop(unsafe { zarr::create::<f32>(&p, &[n], &[n / chunks]) }.expect("create"));
                let open = median(
                    (0..9)
                        .map(|_| {
                            let t = Instant::now();
                            std::hint::black_box(unsafe { zarr::open::<f32>(&p) }.expect("open"));
                            t.elapsed().as_secs_f64()
                        })
                        .collect(),
                );
                let all = median(
                    (0..5)
                        .map(|_| {
                            let t = Instant::now();
                            let z = unsafe { zarr::open::<f32>(&p) }.expect("open");
                            for idx in z.chunk_indices() {
                                std::hint::black_box(z.chunk(&idx).expect("chunk"));
                            }
                            t.elapsed().as_secs_f64()
                        })
                        .collect(),
                );
                println!("open_{chunks}_chunks {open:.6}");
                println!("open_map_all_{chunks}_chunks {all:.6}");
            }
        }
        "make" => {
            let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(512);
            let chunk_mib: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
            let n = mib << 18;
            let c = (chunk_mib << 18).min(n);
            for (name, v) in [("a", 1.0f32), ("b", 2.5)] {
                let mut w =
                    unsafe { zarr::create::<f32>(dir.join(format!("{name}.zarr")), &[n], &[c]) }
                        .expect("create");
                for idx in w.chunk_indices() {
                    let mut ch = w.chunk_mut(&idx).expect("chunk");
                    ch.view_mut().fill(v);
                    ch.flush().expect("flush");
                }
                let mut r = unsafe { create_array::<f32>(dir.join(format!("{name}.f32")), [n]) }
                    .expect("raw");
                r.view_mut().fill(v);
                r.close().expect("close");
            }
        }
        "add" => {
            let t = Instant::now();
            let (a, b, mut c) = open_add(dir);
            ops::add_into(&a, &b, &mut c).expect("add"); // whole arrays, chunk by chunk inside
            let f = Instant::now();
            c.flush().expect("flush"); // one sync at the end, as the raw add's close
            println!("flush_s {:.4}", f.elapsed().as_secs_f64());
            println!("add_s {:.4}", t.elapsed().as_secs_f64());
        }
        "add_chunks" => {
            let t = Instant::now();
            let (a, b, mut c) = open_add(dir);
            for idx in c.chunk_indices() {
                let (ca, cb) = (a.chunk(&idx).expect("a"), b.chunk(&idx).expect("b"));
                let mut cc = c.chunk_mut(&idx).expect("c");
                Zip::from(&mut cc)
                    .and(&ca)
                    .and(&cb)
                    .for_each(|c, &a, &b| *c = a + b)
                    .expect("zip");
            }
            c.flush().expect("flush"); // one sync at the end, as the raw add's close
            println!("add_s {:.4}", t.elapsed().as_secs_f64());
        }
        "peer_add" => {
            // For benches/zarr_peers.sh: C = A + B over whole arrays, C with A's chunks and
            // the codec named (none, zstd, blosc-lz4), then flushed.
            let (Some(a), Some(b), Some(c), Some(codec)) =
                (args.get(2), args.get(3), args.get(4), args.get(5))
            else {
                eprintln!("usage: peer_add DIR A B C none|zstd|blosc-lz4");
                return;
            };
            let t = Instant::now();
            let a = unsafe { zarr::open::<f32>(dir.join(a)) }.expect("a");
            let b = unsafe { zarr::open::<f32>(dir.join(b)) }.expect("b");
            let mut opts = zarr::CreateOptions::new();
            match codec.as_str() {
                "none" => {}
                "zstd" => opts = opts.compressor(zarr::Compressor::zstd(0)),
                "blosc-lz4" => {
                    opts = opts.compressor(zarr::Compressor::blosc(
                        zarr::BloscName::Lz4,
                        5,
                        zarr::Shuffle::Byte,
                    ))
                }
                other => panic!("unknown codec {other}"),
            }
            let mut c = unsafe { opts.create(dir.join(c), a.shape(), a.chunk_shape()) }.expect("c");
            ops::add_into(&a, &b, &mut c).expect("add");
            // zarrs and zarr-python do not sync what they write; tensorstore does (its
            // `file_io_sync`, on by default): both figures are printed.
            println!("add_s {:.4}", t.elapsed().as_secs_f64());
            c.flush().expect("flush");
            println!("add_flush_s {:.4}", t.elapsed().as_secs_f64());
        }
        "peer_sum" => {
            let Some(a) = args.get(2) else {
                eprintln!("usage: peer_sum DIR A");
                return;
            };
            let t = Instant::now();
            let a = unsafe { zarr::open::<f32>(dir.join(a)) }.expect("a");
            let s = ops::sum(&a).expect("sum");
            println!("sum_s {:.4}", t.elapsed().as_secs_f64());
            println!("sum {s}");
        }
        "add_raw" => {
            let t = Instant::now();
            let a = unsafe { mmap_array::<f32>(dir.join("a.f32"), [-1]) }.expect("a");
            let b = unsafe { mmap_array::<f32>(dir.join("b.f32"), [-1]) }.expect("b");
            let mut c = unsafe { create_array::<f32>(dir.join("c.f32"), a.shape()) }.expect("c");
            ops::add_into(&a, &b, &mut c).expect("add");
            c.close().expect("close");
            println!("add_s {:.4}", t.elapsed().as_secs_f64());
        }
        "read" => {
            // Warm, then the median of 5: open, map every chunk, sum it.
            let t: Vec<f64> = (0..6)
                .map(|_| {
                    let t = Instant::now();
                    let a = unsafe { zarr::open::<f32>(dir.join("a.zarr")) }.expect("a");
                    std::hint::black_box(ops::sum(&a).expect("sum"));
                    t.elapsed().as_secs_f64()
                })
                .collect();
            println!("read_sum_s {:.4}", median(t[1..].to_vec()));
        }
        "shards" => {
            // One shard of 2^10 to 2^14 inner chunks of 16 f32: open + sum (warm, median of
            // 5). Each shard index is read once per stream, so the time per inner chunk
            // stays flat as the count grows (it grew with the count when every lookup
            // read the whole index: 158 s for 16384).
            for log in [10u32, 12, 14] {
                let count = 1usize << log;
                let p = dir.join(format!("shards{count}.zarr"));
                write_shard(&p, count, 16);
                let t: Vec<f64> = (0..6)
                    .map(|_| {
                        let t = Instant::now();
                        let a = unsafe { zarr::open::<f32>(&p) }.expect("open");
                        std::hint::black_box(ops::sum(&a).expect("sum"));
                        t.elapsed().as_secs_f64()
                    })
                    .collect();
                let m = median(t[1..].to_vec());
                println!(
                    "shard_sum_{count}_inner_s {m:.4} per_inner_chunk_us {:.2}",
                    m / count as f64 * 1e6
                );
            }
        }
        other => eprintln!("unknown command {other}"),
    }
}

/// A 1-d sharded `float32` array at `path`: one shard of `count` inner chunks of `inner`
/// elements each, the index (no checksum) at the end.
fn write_shard(path: &Path, count: usize, inner: usize) {
    let n = count * inner;
    let data: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let mut shard: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    for k in 0..count {
        let (offset, nbytes) = ((k * inner * 4) as u64, (inner * 4) as u64);
        shard.extend_from_slice(&offset.to_le_bytes());
        shard.extend_from_slice(&nbytes.to_le_bytes());
    }
    std::fs::create_dir_all(path.join("c")).expect("mkdir");
    std::fs::write(path.join("c").join("0"), shard).expect("shard");
    let json = format!(
        r#"{{"zarr_format": 3, "node_type": "array", "shape": [{n}], "data_type": "float32",
        "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [{n}]}}}},
        "chunk_key_encoding": {{"name": "default", "configuration": {{"separator": "/"}}}},
        "fill_value": 0.0,
        "codecs": [{{"name": "sharding_indexed", "configuration": {{"chunk_shape": [{inner}],
            "codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}}],
            "index_codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}}],
            "index_location": "end"}}}}],
        "attributes": {{}}}}"#
    );
    std::fs::write(path.join("zarr.json"), json).expect("zarr.json");
}
