//! The pure part of a Zarr array's layout (no I/O; tested under Miri): the grid of chunks,
//! chunk indices in C order, and a shard's index decoded and checked.

/// Chunks per axis of an array of `shape` cut into chunks of `chunk` (a 0 chunk length,
/// allowed only on an empty axis, counts as 1).
pub(super) fn grid(shape: &[usize], chunk: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .zip(chunk)
        .map(|(&n, &c)| n.div_ceil(c.max(1)))
        .collect()
}

/// Every chunk index of a grid, in C order (the last axis fastest).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.zarr");
/// let w = unsafe { ndarray_mmap::zarr::create::<u8>(&path, &[3, 4], &[2, 2]) }?;
/// let all: Vec<Vec<usize>> = w.chunk_indices().collect();
/// assert_eq!(all, [[0, 0], [0, 1], [1, 0], [1, 1]]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkIndices {
    grid: Vec<usize>,
    next: Vec<usize>,
    done: bool,
}

impl Iterator for ChunkIndices {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.done {
            return None;
        }
        let out = self.next.clone();
        let mut k = self.grid.len();
        loop {
            if k == 0 {
                self.done = true;
                break;
            }
            k -= 1;
            self.next[k] += 1;
            if self.next[k] < self.grid[k] {
                break;
            }
            self.next[k] = 0;
        }
        Some(out)
    }
}

impl ChunkIndices {
    /// Every index of `grid`, from all zeros (none when an axis has no chunk).
    pub(super) fn of(grid: Vec<usize>) -> ChunkIndices {
        ChunkIndices {
            done: grid.contains(&0),
            next: vec![0; grid.len()],
            grid,
        }
    }
}

/// Decodes a shard's index (`raw`: 16 bytes per inner chunk, little-endian offset and
/// length, then a `crc32c` when `crc`) and checks it: the checksum, every entry missing
/// (all bits set) or an inner chunk of `lengths.0..=lengths.1` bytes (the chunk's bytes
/// both, uncompressed) inside the shard's `data` byte range, no two overlapping. Returns
/// the `(offset, nbytes)` entries, or what is wrong.
pub(super) fn decode_index(
    raw: &[u8],
    crc: bool,
    data: (u64, u64),
    lengths: (u64, u64),
) -> Result<Vec<(u64, u64)>, String> {
    let words_len = if crc {
        raw.len().saturating_sub(4)
    } else {
        raw.len()
    };
    if crc && raw.len() < 4 || words_len % 16 != 0 {
        return Err(format!(
            "an index of {} bytes is not 16 bytes per inner chunk{}",
            raw.len(),
            if crc { " and a crc32c" } else { "" }
        ));
    }
    if crc {
        let (words, sum) = raw.split_at(raw.len() - 4);
        let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        if super::meta::crc32c(words) != stored {
            return Err("its crc32c does not match (a damaged or half-written shard)".into());
        }
    }
    let word = |k: usize| {
        let b: [u8; 8] = raw[k * 8..k * 8 + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(b)
    };
    let entries: Vec<(u64, u64)> = (0..words_len / 16)
        .map(|k| (word(2 * k), word(2 * k + 1)))
        .collect();
    let (lo, hi) = data;
    let mut used: Vec<(u64, u64, usize)> = Vec::new();
    for (k, &(offset, nbytes)) in entries.iter().enumerate() {
        if offset == u64::MAX && nbytes == u64::MAX {
            continue;
        }
        if lengths.0 == lengths.1 && nbytes != lengths.0 {
            return Err(format!(
                "inner chunk {k} (in C order) is {nbytes} bytes long by its entry, not the {} \
                     of an uncompressed inner chunk",
                lengths.0
            ));
        }
        if nbytes < lengths.0 || nbytes > lengths.1 {
            return Err(format!(
                "inner chunk {k} (in C order) is {nbytes} bytes long by its entry, not the \
                     {}..={} bytes its codecs can make of an inner chunk",
                lengths.0, lengths.1
            ));
        }
        let end = offset
            .checked_add(nbytes)
            .filter(|&e| offset >= lo && e <= hi);
        let Some(end) = end else {
            return Err(format!(
                "inner chunk {k} (in C order) at bytes {offset}..{} lies outside the data \
                     ({lo}..{hi})",
                offset.saturating_add(nbytes)
            ));
        };
        used.push((offset, end, k));
    }
    used.sort_unstable();
    if let Some(w) = used.windows(2).find(|w| w[1].0 < w[0].1) {
        return Err(format!(
            "inner chunks {} and {} (in C order) overlap at bytes {}..{} (a damaged index: \
                 writing one would change the other)",
            w[0].2,
            w[1].2,
            w[1].0,
            w[0].1.min(w[1].1)
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(u64, u64)], crc: bool) -> Vec<u8> {
        let mut raw: Vec<u8> = entries
            .iter()
            .flat_map(|&(o, n)| o.to_le_bytes().into_iter().chain(n.to_le_bytes()))
            .collect();
        if crc {
            let sum = super::super::meta::crc32c(&raw);
            raw.extend_from_slice(&sum.to_le_bytes());
        }
        raw
    }

    #[test]
    fn grids_and_indices_in_c_order() {
        assert_eq!(grid(&[10, 7], &[4, 3]), [3, 3]);
        assert_eq!(grid(&[0, 4], &[0, 2]), [0, 2]);
        let all: Vec<Vec<usize>> = ChunkIndices::of(vec![2, 2]).collect();
        assert_eq!(all, [[0, 0], [0, 1], [1, 0], [1, 1]]);
        assert_eq!(ChunkIndices::of(vec![0, 2]).count(), 0);
        assert_eq!(ChunkIndices::of(vec![]).count(), 1); // 0-d: one chunk
    }

    #[test]
    fn shard_indexes_decode_and_are_checked() {
        const M: u64 = u64::MAX;
        let good = [(0, 16), (M, M), (16, 16)];
        for crc in [false, true] {
            let raw = index(&good, crc);
            assert_eq!(decode_index(&raw, crc, (0, 32), (16, 16)).unwrap(), good);
        }
        let mut damaged = index(&good, true);
        damaged[3] ^= 1;
        assert!(
            decode_index(&damaged, true, (0, 32), (16, 16))
                .unwrap_err()
                .contains("crc32c")
        );
        let overlap = index(&[(0, 16), (8, 16)], false);
        assert!(
            decode_index(&overlap, false, (0, 32), (16, 16))
                .unwrap_err()
                .contains("overlap")
        );
        let outside = index(&[(24, 16)], false);
        assert!(
            decode_index(&outside, false, (0, 32), (16, 16))
                .unwrap_err()
                .contains("outside")
        );
        let wrong = index(&[(0, 8)], false);
        assert!(
            decode_index(&wrong, false, (0, 32), (16, 16))
                .unwrap_err()
                .contains("8 bytes long")
        );
        let past = index(&[(M - 4, 16)], false);
        assert!(decode_index(&past, false, (0, M), (16, 16)).is_err());
        assert!(decode_index(&[0; 15], false, (0, 32), (16, 16)).is_err());
        assert!(decode_index(&[0; 3], true, (0, 32), (16, 16)).is_err());
    }
}
