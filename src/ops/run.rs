//! The run loop every streaming operation uses: the paging policy and chunk size, the Zarr
//! survey, regions and pieces in the lead operand's memory order, the paging hooks around
//! each piece, progress and cancel, and the hooks always finished.

use std::ops::{ControlFlow, Range};

use ndarray::Slice;

use crate::error::Error;
use crate::map::room::memory_available;

use super::options::{DEFAULT_CHUNK_BYTES, Paging, Progress, StreamOptions, Through};
use super::plan::{Plan, Regions};

/// Tells the progress callback, and turns its cancel into [`Error::Cancelled`].
pub(super) fn report(opts: &mut StreamOptions<'_>, done: u64, total: u64) -> Result<(), Error> {
    if let Some(f) = opts.progress.as_mut() {
        // A cancel after the last chunk comes too late to cancel anything: the work is
        // done, and the result stands.
        if let ControlFlow::Break(()) = f(Progress { done, total })
            && done < total
        {
            return Err(Error::Cancelled { done, total });
        }
    }
    Ok(())
}

/// The engine: checks aliasing, plans pieces in the lead operand's memory order, runs
/// the paging hooks around `each(piece)`, reports progress, and always finishes the
/// hooks (write-back of what was written, even after an error or a cancel).
pub(super) fn run<P: Parts + ?Sized>(
    parts: &mut P,
    shape: &[usize],
    error: Option<Error>,
    mut opts: StreamOptions<'_>,
    mut each: impl FnMut(&mut P, &[Slice]),
) -> Result<(), Error> {
    if let Some(e) = error {
        return Err(e);
    }
    parts.check_aliasing()?;
    let (lead_strides, size) = parts.lead();
    let size = size.max(1);
    // Saturating: a broadcast view can have more elements than memory has bytes.
    let bytes_of = |elems: usize| (elems as u64).saturating_mul(size as u64);
    let total_elems = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    let total = bytes_of(total_elems);
    let mapped = parts.mapped_len() as u64;
    let available = if mapped > 0 { memory_available() } else { None };
    let bounded = opts
        .paging
        .decide_for(mapped, !parts.cold(), !parts.output_cold())
        .0
        == Paging::Bounded;
    // The chunk adapts to the memory left only where results cannot depend on it: an
    // elementwise stream writes each element alike whatever the chunks, but a fold or a
    // float sum adds in an order the chunks decide.
    let chunk_bytes = match (opts.chunk_bytes, available) {
        (Some(c), _) => c,
        (None, Some(room)) if bounded && parts.writes() => {
            let (sizes, ahead) = parts.read_ahead();
            bounded_chunk(room, sizes.div_ceil(size), ahead)
        }
        (None, _) => DEFAULT_CHUNK_BYTES,
    };
    let chunk = (chunk_bytes / size).max(1);
    // Zarr operands cut the array into regions inside their chunks; without them the
    // one region is the whole array.
    let grids = parts.grids();
    parts.survey()?;
    let regions = Regions::new(shape, &grids, &lead_strides);
    let one_grid = grids.windows(2).all(|w| w[0] == w[1]);
    let sequential = regions.sequential();
    parts.start(
        &lead_strides,
        bounded,
        sequential,
        sequential || one_grid,
        &grids,
        Through {
            write: opts.write_through,
            read: opts.read_through,
        },
    );
    let mut done = 0usize;
    let mut result = Ok(());
    // A cancel is taken where the work done is a prefix of the output in memory order
    // (what `Error::Cancelled` promises): at once when the regions follow memory order,
    // else at the end of the first region after which it is.
    let mut cancelling = false;
    let mut regions = regions;
    'regions: while let Some(region) = regions.next() {
        if let Err(e) = parts.enter(&region) {
            result = Err(e);
            break;
        }
        // A Zarr operand's bytes are known once its chunk is mapped.
        if !grids.is_empty()
            && let Err(e) = parts.check_aliasing()
        {
            result = Err(e);
            break;
        }
        let lens: Vec<usize> = region.iter().map(ExactSizeIterator::len).collect();
        for rel in Plan::new(&lens, &lead_strides, chunk) {
            let piece = absolute(&rel, &region);
            if let Err(e) = parts.before(&piece) {
                result = Err(e);
                break 'regions;
            }
            each(parts, &piece);
            if let Err(e) = parts.after() {
                result = Err(e);
                break 'regions;
            }
            let n = piece
                .iter()
                .map(|s| s.end.map_or(0, |e| e - s.start) as usize)
                .product::<usize>();
            done = done.saturating_add(n);
            if cancelling {
                continue;
            }
            match report(&mut opts, bytes_of(done), total) {
                Ok(()) => {}
                Err(Error::Cancelled { .. }) if !sequential => cancelling = true,
                Err(e) => {
                    result = Err(e);
                    break 'regions;
                }
            }
        }
        if cancelling && regions.prefix_after(&region) {
            let done = bytes_of(done);
            if done < total {
                result = Err(Error::Cancelled { done, total });
            }
            break;
        }
    }
    if total == 0 {
        // Nothing to do is done: a progress bar still reaches its end.
        report(&mut opts, 0, 0)?;
    }
    let finished = parts.finish(result.is_ok());
    match (result, finished) {
        // A write that failed while finishing (a chunk encoded behind the stream) breaks
        // the prefix a cancel promises: the failure is what the caller must see.
        (Err(Error::Cancelled { .. }), Err(e)) => Err(e),
        (result, finished) => result.and(finished),
    }
}

/// Whether chunk shape `g` divides every grid of `grids` along every axis: the regions
/// (cut at every grid's boundaries) are then exactly `g`'s chunks.
pub(super) fn divides_all(g: &[usize], grids: &[Vec<usize>]) -> bool {
    grids
        .iter()
        .all(|o| o.len() == g.len() && o.iter().zip(g).all(|(&o, &g)| g > 0 && o % g == 0))
}

/// The chunk size of a bounded stream that writes, when the user left it to the engine:
/// the largest power of two from 1 MiB to [`DEFAULT_CHUNK_BYTES`] whose stream fits in
/// 3/4 of the `room` left (1 MiB when none does). A stream holds, besides the kernel's
/// read-ahead (`ahead`, for all mapped operands), about one piece per mapped operand
/// (`operands` chunks in all: an operand with elements twice the lead's counts twice)
/// plus one chunk more (an output's scratch and the write-back in flight), and a few
/// MiB of its own.
/// Measured (`benches/out_of_core.sh`, c = a + b, 8 MiB read-ahead per input): 40, 43,
/// 49.5 and 62 MiB of cgroup peak at 1, 2, 4 and 8 MiB chunks; the model says 41, 45,
/// 53 and 69.
fn bounded_chunk(room: u64, operands: usize, ahead: u64) -> usize {
    const MIB: u64 = 1 << 20;
    let budget = room / 4 * 3;
    let needs = |chunk: u64| ahead + (operands as u64 + 1) * chunk + 5 * MIB;
    let mut chunk = DEFAULT_CHUNK_BYTES as u64;
    while chunk > MIB && needs(chunk) > budget {
        chunk /= 2;
    }
    chunk as usize
}

/// A piece of a region (as a [`Plan`] of the region's lengths gives it) in the array's
/// indices: bounded ranges with unit steps.
fn absolute(rel: &[Slice], region: &[Range<usize>]) -> Vec<Slice> {
    rel.iter()
        .zip(region)
        .map(|(s, r)| {
            let start = r.start + s.start as usize;
            let end = r.start + s.end.map_or(r.len(), |e| e as usize);
            Slice::from(start..end)
        })
        .collect()
}

/// A tuple of parts, as the engine drives them.
pub(super) trait Parts {
    fn check_aliasing(&mut self) -> Result<(), Error>;
    /// The strides the chunking follows (the first written part's, else the first
    /// part's) and its element size.
    fn lead(&mut self) -> (Vec<isize>, usize);
    fn mapped_len(&mut self) -> usize;
    /// Whether a mapped operand the stream reads (an input, or an output read in place or
    /// through its map) is mostly not in the page cache.
    fn cold(&mut self) -> bool;
    /// Whether a mapped output is mostly not in the page cache.
    fn output_cold(&mut self) -> bool;
    /// Whether any operand is written.
    fn writes(&mut self) -> bool;
    /// The bytes per element of the mapped operands together, and the bytes the kernel
    /// may read ahead of them in all.
    fn read_ahead(&mut self) -> (usize, u64);
    /// The chunk shapes of the Zarr operands.
    fn grids(&mut self) -> Vec<Vec<usize>>;
    /// Checks the Zarr operands' chunk files against every operand, then lets Zarr outputs
    /// create their missing chunks: before anything is written.
    fn survey(&mut self) -> Result<(), Error>;
    /// `chunks_in_order` as for [`Part::start`], for every Zarr operand; one whose grid
    /// divides every other (each of its chunks is then one region, visited once) gets it
    /// anyway. `grids` are the Zarr operands' chunk shapes.
    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        sequential: bool,
        chunks_in_order: bool,
        grids: &[Vec<usize>],
        through: Through,
    );
    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error>;
    fn before(&mut self, piece: &[Slice]) -> Result<(), Error>;
    fn after(&mut self) -> Result<(), Error>;
    fn finish(&mut self, completed: bool) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn bounded_chunks_shrink_to_fit_the_room_left() {
        // c = a + b (3 mapped operands) with 8 MiB of read-ahead per input, as measured.
        let ahead = 2 * 16 * MIB;
        assert_eq!(bounded_chunk(60 * MIB, 3, ahead), 2 << 20);
        assert_eq!(bounded_chunk(124 * MIB, 3, ahead), DEFAULT_CHUNK_BYTES);
        assert_eq!(bounded_chunk(1 << 40, 6, 6 * ahead), DEFAULT_CHUNK_BYTES);
        // Nothing fits: the smallest chunk, never zero.
        assert_eq!(bounded_chunk(0, 3, ahead), 1 << 20);
        // The kernel's default read-ahead (128 KiB) leaves the default under 64 MiB.
        assert_eq!(bounded_chunk(60 * MIB, 3, 512 << 10), DEFAULT_CHUNK_BYTES);
        // Every choice fits in 3/4 of the room whenever one can.
        for room in (8..512).map(|m| m * MIB) {
            for operands in 1..=6 {
                let c = bounded_chunk(room, operands, operands as u64 * 16 * MIB) as u64;
                let needs = operands as u64 * 16 * MIB + (operands as u64 + 1) * c + 5 * MIB;
                assert!(c == MIB || needs <= room / 4 * 3, "{room} {operands} {c}");
                assert!(c.is_power_of_two() && c <= DEFAULT_CHUNK_BYTES as u64);
            }
        }
    }
}
