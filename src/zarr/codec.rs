//! Stored chunk bytes that are not the elements themselves (the `zarr` feature): the
//! bytes-to-bytes codecs `zstd`, `gzip` and `crc32c`, and `bytes` in the other byte order.
//! Such a chunk cannot be mapped: it is read whole and decoded into a buffer of exactly its
//! elements' size, never more (a stored chunk that would decode to more bytes, or fewer, is
//! an error, whatever its header claims). The codecs are the field's libraries: `zstd`
//! (libzstd, what zarr-python, tensorstore and zarrs use) and `flate2` (with the pure-Rust
//! `miniz_oxide`).

use std::io::Read;

/// One bytes-to-bytes codec of a chain, with the level it compresses at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteCodec {
    /// A zstd frame (or several, one after another).
    Zstd { level: i32 },
    /// A gzip member (or several).
    Gzip { level: u32 },
    /// A CRC-32C of the bytes before it, 4 bytes little endian, appended.
    Crc32c,
}

impl ByteCodec {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ByteCodec::Zstd { .. } => "zstd",
            ByteCodec::Gzip { .. } => "gzip",
            ByteCodec::Crc32c => "crc32c",
        }
    }

    /// The codec's entry in `zarr.json`.
    pub(crate) fn json(self) -> String {
        match self {
            ByteCodec::Zstd { level } => format!(
                "{{\"name\": \"zstd\", \"configuration\": {{\"level\": {level}, \"checksum\": false}}}}"
            ),
            ByteCodec::Gzip { level } => {
                format!("{{\"name\": \"gzip\", \"configuration\": {{\"level\": {level}}}}}")
            }
            ByteCodec::Crc32c => "{\"name\": \"crc32c\"}".into(),
        }
    }

    /// Encodes `raw` (the bytes before this codec).
    fn encode(self, raw: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            ByteCodec::Zstd { level } => {
                zstd::bulk::compress(raw, level).map_err(|e| format!("zstd: {e}"))
            }
            ByteCodec::Gzip { level } => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 2),
                    flate2::Compression::new(level.min(9)),
                );
                e.write_all(raw).map_err(|e| format!("gzip: {e}"))?;
                e.finish().map_err(|e| format!("gzip: {e}"))
            }
            ByteCodec::Crc32c => {
                let mut v = Vec::with_capacity(raw.len() + 4);
                v.extend_from_slice(raw);
                v.extend_from_slice(&crc32c::crc32c(raw).to_le_bytes());
                Ok(v)
            }
        }
    }
}

/// How a chunk's elements are stored after the array-to-bytes codec: in the other byte
/// order (`swap`), then through `codecs` in order. Plain (nothing to undo) for the
/// chunks that map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    /// `bytes` with the endianness this machine does not have, for elements of more than
    /// one byte.
    pub(crate) swap: bool,
    pub(crate) codecs: Vec<ByteCodec>,
}

impl Chain {
    /// The codecs as error messages name them, e.g. `bytes (big endian), zstd`.
    pub(crate) fn names(&self) -> String {
        let mut v: Vec<&str> = Vec::new();
        if self.swap {
            v.push("bytes (the other byte order)");
        }
        v.extend(self.codecs.iter().map(|c| c.name()));
        v.join(", ")
    }

    /// The stored bytes are the elements in this machine's order: the chunk maps.
    pub(crate) fn is_plain(&self) -> bool {
        !self.swap && self.codecs.is_empty()
    }

    /// The most bytes a stored chunk of `raw` decoded bytes may hold: what the codecs'
    /// worst cases allow (incompressible data grows a little), so that a file of any other
    /// size is refused before it is read.
    pub(crate) fn max_stored(&self, raw: u64) -> u64 {
        if self.codecs.is_empty() {
            return raw;
        }
        self.codecs.iter().fold(raw, |n, c| match c {
            ByteCodec::Crc32c => n.saturating_add(4),
            // zstd's bound is n + n/256 + a little; gzip's stored blocks add 5 bytes per
            // 64 KiB plus a header. Both well inside this.
            ByteCodec::Zstd { .. } | ByteCodec::Gzip { .. } => {
                n.saturating_add(n / 64).saturating_add(1024)
            }
        })
    }

    /// Decodes `stored` into `out`, which must come out exactly full; `elem` is the
    /// element size (for the byte order). The error says what did not fit.
    pub(crate) fn decode(&self, stored: &[u8], out: &mut [u8], elem: usize) -> Result<(), String> {
        let mut buf: Option<Vec<u8>> = None;
        let mut n = self.codecs.len();
        // Undo the codecs last to first; the first one decodes straight into `out`.
        while n > 0 {
            n -= 1;
            let codec = self.codecs[n];
            let src: &[u8] = buf.as_deref().unwrap_or(stored);
            let next = match codec {
                ByteCodec::Crc32c => {
                    let Some(split) = src.len().checked_sub(4) else {
                        return Err(format!(
                            "{} bytes cannot end with a crc32c (4 bytes)",
                            src.len()
                        ));
                    };
                    let (data, sum) = src.split_at(split);
                    let stored_sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
                    if crc32c::crc32c(data) != stored_sum {
                        return Err("its crc32c does not match (a damaged chunk)".into());
                    }
                    if n == 0 {
                        return fill(out, data, elem, self.swap);
                    }
                    data.to_vec()
                }
                ByteCodec::Zstd { .. } | ByteCodec::Gzip { .. } => {
                    // The size this stage must decode to: the chunk's, or what the codecs
                    // before it may have made of it.
                    let want = if n == 0 {
                        out.len() as u64
                    } else {
                        Chain {
                            swap: false,
                            codecs: self.codecs[..n].to_vec(),
                        }
                        .max_stored(out.len() as u64)
                    };
                    let exact = n == 0;
                    let got = match codec {
                        ByteCodec::Zstd { .. } => zstd_decode(src, want, exact, out)?,
                        _ => gzip_decode(src, want, exact, out)?,
                    };
                    match got {
                        None => return swap_in_place(out, elem, self.swap),
                        Some(v) => v,
                    }
                }
            };
            buf = Some(next);
        }
        // No byte codecs: only the byte order to undo.
        fill(out, buf.as_deref().unwrap_or(stored), elem, self.swap)
    }
}

impl Chain {
    /// Encodes a chunk's elements (`raw`, in this machine's byte order) into the bytes its
    /// file holds; `elem` is the element size.
    pub(crate) fn encode(&self, raw: &[u8], elem: usize) -> Result<Vec<u8>, String> {
        let mut bytes = raw.to_vec();
        swap_in_place(&mut bytes, elem, self.swap)?;
        for c in &self.codecs {
            bytes = c.encode(&bytes)?;
        }
        Ok(bytes)
    }
}

/// Copies `data` into `out` (exactly its size), swapping each element's bytes if asked.
fn fill(out: &mut [u8], data: &[u8], elem: usize, swap: bool) -> Result<(), String> {
    if data.len() != out.len() {
        return Err(format!(
            "it decodes to {} bytes, not the {} of a chunk",
            data.len(),
            out.len()
        ));
    }
    out.copy_from_slice(data);
    swap_in_place(out, elem, swap)
}

fn swap_in_place(out: &mut [u8], elem: usize, swap: bool) -> Result<(), String> {
    if swap && elem > 1 {
        for e in out.chunks_exact_mut(elem) {
            e.reverse();
        }
    }
    Ok(())
}

/// Decodes zstd frames: into `out` when `exact` (which must come out full), else into a
/// buffer of at most `limit` bytes.
fn zstd_decode(
    src: &[u8],
    limit: u64,
    exact: bool,
    out: &mut [u8],
) -> Result<Option<Vec<u8>>, String> {
    let mut d = zstd::stream::read::Decoder::with_buffer(src)
        .map_err(|e| format!("its zstd frame cannot be read: {e}"))?;
    read_limited(&mut d, limit, exact, out, "zstd")
}

/// Decodes gzip members, as [`zstd_decode`] does zstd frames.
fn gzip_decode(
    src: &[u8],
    limit: u64,
    exact: bool,
    out: &mut [u8],
) -> Result<Option<Vec<u8>>, String> {
    let mut d = flate2::bufread::MultiGzDecoder::new(src);
    read_limited(&mut d, limit, exact, out, "gzip")
}

/// Reads a decoder to its end: exactly `out.len()` bytes into `out` when `exact`, else
/// at most `limit` bytes into a new buffer. One byte more than allowed is an error, so a
/// decompression bomb costs no more than the chunk's size.
fn read_limited(
    d: &mut impl Read,
    limit: u64,
    exact: bool,
    out: &mut [u8],
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    let bad = |e: std::io::Error| format!("its {what} data cannot be decoded: {e}");
    if exact {
        let mut filled = 0;
        while filled < out.len() {
            match d.read(&mut out[filled..]) {
                Ok(0) => {
                    return Err(format!(
                        "its {what} data decodes to {filled} bytes, not the {} of a chunk",
                        out.len()
                    ));
                }
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(e)),
            }
        }
        let mut more = [0u8; 1];
        loop {
            match d.read(&mut more) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    return Err(format!(
                        "its {what} data decodes to more than the {} bytes of a chunk",
                        out.len()
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(e)),
            }
        }
    }
    let mut v = Vec::new();
    d.take(limit.saturating_add(1))
        .read_to_end(&mut v)
        .map_err(bad)?;
    if v.len() as u64 > limit {
        return Err(format!(
            "its {what} data decodes to more than the {limit} bytes the codecs before it can make"
        ));
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zstd(b: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(b, 3).unwrap()
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
        std::io::Write::write_all(&mut e, b).unwrap();
        e.finish().unwrap()
    }

    fn with_crc(mut b: Vec<u8>) -> Vec<u8> {
        let c = crc32c::crc32c(&b);
        b.extend_from_slice(&c.to_le_bytes());
        b
    }

    fn chain(codecs: &[ByteCodec]) -> Chain {
        Chain {
            swap: false,
            codecs: codecs.to_vec(),
        }
    }

    #[test]
    fn chains_decode_to_exactly_the_chunk() {
        let raw: Vec<u8> = (0..4000u32).flat_map(|i| (i % 77).to_le_bytes()).collect();
        let mut out = vec![0u8; raw.len()];
        for (c, stored) in [
            (chain(&[ByteCodec::Zstd { level: 3 }]), zstd(&raw)),
            (chain(&[ByteCodec::Gzip { level: 5 }]), gzip(&raw)),
            (chain(&[ByteCodec::Crc32c]), with_crc(raw.clone())),
            (
                chain(&[ByteCodec::Zstd { level: 3 }, ByteCodec::Crc32c]),
                with_crc(zstd(&raw)),
            ),
            (
                chain(&[ByteCodec::Gzip { level: 5 }, ByteCodec::Zstd { level: 3 }]),
                zstd(&gzip(&raw)),
            ),
        ] {
            out.fill(0);
            c.decode(&stored, &mut out, 4).unwrap();
            assert_eq!(out, raw, "{c:?}");
            assert!(stored.len() as u64 <= c.max_stored(raw.len() as u64));
        }
        // Big endian: each element's bytes reversed.
        let be: Vec<u8> = (0..4000u32).flat_map(|i| (i % 77).to_be_bytes()).collect();
        let c = Chain {
            swap: true,
            codecs: vec![ByteCodec::Zstd { level: 3 }],
        };
        c.decode(&zstd(&be), &mut out, 4).unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn encoding_decodes_back() {
        let raw: Vec<u8> = (0..5000u32).flat_map(|i| (i % 91).to_le_bytes()).collect();
        for swap in [false, true] {
            for codecs in [
                vec![],
                vec![ByteCodec::Zstd { level: 1 }],
                vec![ByteCodec::Gzip { level: 9 }, ByteCodec::Crc32c],
            ] {
                let c = Chain { swap, codecs };
                let stored = c.encode(&raw, 4).unwrap();
                assert!(stored.len() as u64 <= c.max_stored(raw.len() as u64));
                let mut out = vec![0u8; raw.len()];
                c.decode(&stored, &mut out, 4).unwrap();
                assert_eq!(out, raw, "{c:?}");
            }
        }
    }

    #[test]
    fn wrong_sizes_bombs_and_damage_are_errors() {
        let raw = vec![7u8; 1 << 16];
        let c = chain(&[ByteCodec::Zstd { level: 3 }]);
        // One byte short, one byte long, a bomb (64 MiB of zeros for a 4 KiB chunk).
        let mut out = vec![0u8; raw.len() + 1];
        assert!(
            c.decode(&zstd(&raw), &mut out, 1)
                .unwrap_err()
                .contains("not the")
        );
        let mut out = vec![0u8; raw.len() - 1];
        assert!(
            c.decode(&zstd(&raw), &mut out, 1)
                .unwrap_err()
                .contains("more than")
        );
        let bomb = {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..64 {
                std::io::Write::write_all(&mut e, &zeros).unwrap();
            }
            e.finish().unwrap()
        };
        let mut out = vec![0u8; 4096];
        assert!(
            c.decode(&bomb, &mut out, 1)
                .unwrap_err()
                .contains("more than")
        );
        let g = chain(&[ByteCodec::Gzip { level: 5 }]);
        let mut out = vec![0u8; raw.len()];
        let mut damaged = gzip(&raw);
        let k = damaged.len() / 2;
        damaged.truncate(k);
        assert!(g.decode(&damaged, &mut out, 1).is_err());
        assert!(c.decode(b"not zstd", &mut out, 1).is_err());
        let k = chain(&[ByteCodec::Crc32c]);
        let mut bad = with_crc(raw.clone());
        bad[3] ^= 1;
        assert!(k.decode(&bad, &mut out, 1).unwrap_err().contains("crc32c"));
        assert!(k.decode(b"abc", &mut out, 1).is_err());
    }
}
