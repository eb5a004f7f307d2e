//! zarrs' side of `benches/zarr_peers.sh`, written as a zarrs user would: a rayon loop over
//! the output's chunks (zarrs' own default parallelism inside each call), default codec
//! options. Each command prints `NAME seconds`.
//!
//! - `zarrs-peer add DIR A B C`: `C = A + B` (f32), `C` created with `A`'s metadata (same
//!   chunks, same codecs);
//! - `zarrs-peer sum DIR A`: the sum of every element of `A` (f64 per chunk, then added).

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Every chunk index of `array`, in C order.
fn chunks(array: &Array<FilesystemStore>) -> Vec<Vec<u64>> {
    ArraySubset::new_with_shape(array.chunk_grid_shape().to_vec())
        .indices()
        .into_iter()
        .map(|ix| ix.to_vec())
        .collect()
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: zarrs-peer add DIR A B C | sum DIR A";
    let (Some(cmd), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let store = Arc::new(FilesystemStore::new(dir)?);
    let open = |name: &String| Array::open(store.clone(), &format!("/{name}"));
    match (cmd.as_str(), &args[3..]) {
        ("add", [a, b, c]) => {
            let t = Instant::now();
            let (a, b) = (open(a)?, open(b)?);
            let c =
                Array::new_with_metadata(store.clone(), &format!("/{c}"), a.metadata().clone())?;
            c.store_metadata()?;
            chunks(&a).par_iter().try_for_each(|ix| -> Res<()> {
                let x: Vec<f32> = a.retrieve_chunk(ix)?;
                let y: Vec<f32> = b.retrieve_chunk(ix)?;
                let z: Vec<f32> = x.iter().zip(&y).map(|(p, q)| p + q).collect();
                c.store_chunk(ix, z)?;
                Ok(())
            })?;
            println!("add_s {:.4}", t.elapsed().as_secs_f64());
        }
        ("sum", [a]) => {
            let t = Instant::now();
            let a = open(a)?;
            let s = chunks(&a)
                .par_iter()
                .map(|ix| -> Res<f64> {
                    let x: Vec<f32> = a.retrieve_chunk(ix)?;
                    Ok(x.iter().map(|&v| f64::from(v)).sum())
                })
                .try_reduce(|| 0.0, |p, q| Ok(p + q))?;
            println!("sum_s {:.4}", t.elapsed().as_secs_f64());
            println!("sum {s}");
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
