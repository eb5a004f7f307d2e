//! Stored chunk bytes that are not the elements themselves (the `zarr` feature): the
//! bytes-to-bytes codecs `zstd`, `gzip` and `crc32c`, and `bytes` in the other byte order.
//! Such a chunk cannot be mapped: it is read whole and decoded into a buffer of exactly its
//! elements' size, never more (a stored chunk that would decode to more bytes, or fewer, is
//! an error, whatever its header claims). The codecs are the field's libraries: `zstd`
//! (libzstd, what zarr-python, tensorstore and zarrs use), `flate2` (with the pure-Rust
//! `miniz_oxide`) and `blosc-src` (c-blosc, as zarrs uses it); the two calls into c-blosc
//! are this module's only `unsafe`.

use std::io::{Read, Write};

/// One bytes-to-bytes codec of a chain, with the level it compresses at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteCodec {
    /// A zstd frame (or several, one after another).
    Zstd { level: i32 },
    /// A gzip member (or several).
    Gzip { level: u32 },
    /// A CRC-32C of the bytes before it, 4 bytes little endian, appended.
    Crc32c,
    /// A Blosc buffer (self-describing when read; these settings are for writing).
    Blosc(Blosc),
}

/// The settings of a `blosc` codec (c-blosc 1, as numcodecs and zarr-python write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blosc {
    /// An index into [`BLOSC_NAMES`].
    pub(crate) cname: usize,
    pub(crate) clevel: u8,
    /// 0 no shuffle, 1 byte shuffle, 2 bit shuffle (c-blosc's numbers).
    pub(crate) shuffle: u8,
    pub(crate) typesize: u8,
    pub(crate) blocksize: usize,
}

/// The compressors c-blosc is built with here, by their Zarr names (in the order of
/// [`BloscName`](super::BloscName)).
pub(crate) const BLOSC_NAMES: &[&str] = &["blosclz", "lz4", "lz4hc", "zlib", "zstd"];

/// The Zarr names of the shuffle settings, by c-blosc's numbers.
pub(crate) const BLOSC_SHUFFLES: &[&str] = &["noshuffle", "shuffle", "bitshuffle"];

impl ByteCodec {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ByteCodec::Zstd { .. } => "zstd",
            ByteCodec::Gzip { .. } => "gzip",
            ByteCodec::Crc32c => "crc32c",
            ByteCodec::Blosc(_) => "blosc",
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
            ByteCodec::Blosc(b) => format!(
                "{{\"name\": \"blosc\", \"configuration\": {{\"cname\": \"{}\", \"clevel\": {}, \
                 \"shuffle\": \"{}\", \"typesize\": {}, \"blocksize\": {}}}}}",
                BLOSC_NAMES[b.cname],
                b.clevel,
                BLOSC_SHUFFLES[usize::from(b.shuffle)],
                b.typesize,
                b.blocksize
            ),
        }
    }

    /// Encodes `raw` (the bytes before this codec).
    fn encode(self, raw: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            ByteCodec::Zstd { level } => zstd_encode(raw, level),
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
            ByteCodec::Blosc(b) => blosc_encode(raw, b),
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
        max_stored(&self.codecs, raw)
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
                ByteCodec::Zstd { .. } | ByteCodec::Gzip { .. } | ByteCodec::Blosc(_) => {
                    // The size this stage must decode to: the chunk's, or what the codecs
                    // before it may have made of it.
                    let want = if n == 0 {
                        out.len() as u64
                    } else {
                        max_stored(&self.codecs[..n], out.len() as u64)
                    };
                    let exact = n == 0;
                    let got = match codec {
                        ByteCodec::Zstd { .. } => zstd_decode(src, want, exact, out)?,
                        ByteCodec::Blosc(_) => blosc_decode(src, want, exact, out)?,
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
    /// A reader of a stored chunk's decoded bytes (before the byte order is undone: see
    /// [`swap`](Self::swap)), for chains that decode as a stream: one `zstd` or `gzip`
    /// codec. `None` for the others (decoded whole). `raw` + 1 bytes at most come out of
    /// it (a frame that asks for a window bigger than the chunk is refused), so a chunk
    /// bigger than the memory left is decoded a piece at a time.
    pub(crate) fn stream_decoder(
        &self,
        stored: Box<dyn std::io::BufRead + Send>,
        raw: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, String> {
        // One byte more than a chunk may come out, so that `end_stream` can tell a chunk
        // that decodes to more.
        let limited =
            |d: Box<dyn Read + Send>| Some(Box::new(d.take(raw + 1)) as Box<dyn Read + Send>);
        match self.codecs.as_slice() {
            [ByteCodec::Zstd { .. }] => {
                let mut d = zstd::stream::read::Decoder::with_buffer(stored)
                    .map_err(|e| format!("its zstd frame cannot be read: {e}"))?;
                // A window no larger than twice the chunk (as for a chunk decoded whole).
                let log = (64 - raw.max(1).leading_zeros()).clamp(10, 27);
                d.window_log_max(log)
                    .map_err(|e| format!("its zstd frame cannot be read: {e}"))?;
                Ok(limited(Box::new(d)))
            }
            [ByteCodec::Gzip { .. }] => Ok(limited(Box::new(
                flate2::bufread::MultiGzDecoder::new(stored),
            ))),
            _ => Ok(None),
        }
    }

    /// Whether chunks decode and encode as a stream ([`stream_decoder`](Self::stream_decoder),
    /// [`stream_encoder`](Self::stream_encoder)).
    pub(crate) fn streams(&self) -> bool {
        matches!(
            self.codecs.as_slice(),
            [ByteCodec::Zstd { .. } | ByteCodec::Gzip { .. }]
        )
    }

    /// An encoder of a chunk's bytes (in the stored byte order: see [`swap`](Self::swap))
    /// into `w`, for chains that encode as a stream (one `zstd` or `gzip` codec).
    pub(crate) fn stream_encoder<W: Write + Send + 'static>(
        &self,
        w: W,
        raw: u64,
    ) -> Result<Option<Box<dyn Encoding<W>>>, String> {
        let bad = |e: std::io::Error| format!("a zstd encoder cannot be made: {e}");
        match self.codecs.as_slice() {
            [ByteCodec::Zstd { level }] => {
                // The frame says its size (as a chunk encoded whole does), so its window
                // is no larger than the chunk and readers may decode it as a stream.
                let mut e = zstd::stream::write::Encoder::new(w, *level).map_err(bad)?;
                e.set_pledged_src_size(Some(raw)).map_err(bad)?;
                e.include_contentsize(true).map_err(bad)?;
                Ok(Some(Box::new(e)))
            }
            [ByteCodec::Gzip { level }] => Ok(Some(Box::new(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(*level),
            )))),
            _ => Ok(None),
        }
    }

    /// Undoes the byte order of decoded bytes (elements of `elem` bytes), when the chain
    /// stores the other one.
    pub(crate) fn swap(&self, bytes: &mut [u8], elem: usize) {
        let _ = swap_in_place(bytes, elem, self.swap);
    }

    /// Encodes a chunk's elements (`raw`, in this machine's byte order) into the bytes its
    /// file holds; `elem` is the element size.
    pub(crate) fn encode(&self, raw: &[u8], elem: usize) -> Result<Vec<u8>, String> {
        // A copy only to swap the byte order; the codecs read `raw` itself.
        let mut bytes = std::borrow::Cow::Borrowed(raw);
        if self.swap && elem > 1 {
            swap_in_place(bytes.to_mut(), elem, true)?;
        }
        for c in &self.codecs {
            bytes = std::borrow::Cow::Owned(c.encode(&bytes)?);
        }
        Ok(bytes.into_owned())
    }
}

/// A stream encoder ([`Chain::stream_encoder`]): bytes in, and at the end the writer
/// back with the whole encoded chunk written to it.
pub(crate) trait Encoding<W>: Write + Send {
    fn finish(self: Box<Self>) -> std::io::Result<W>;
}

impl<W: Write + Send> Encoding<W> for zstd::stream::write::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> std::io::Result<W> {
        (*self).finish()
    }
}

impl<W: Write + Send> Encoding<W> for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> std::io::Result<W> {
        (*self).finish()
    }
}

/// The most bytes `codecs` can make of `raw` bytes (see [`Chain::max_stored`]).
fn max_stored(codecs: &[ByteCodec], raw: u64) -> u64 {
    codecs.iter().fold(raw, |n, c| match c {
        ByteCodec::Crc32c => n.saturating_add(4),
        ByteCodec::Blosc(_) => n.saturating_add(u64::from(blosc_src::BLOSC_MAX_OVERHEAD)),
        // zstd's bound is n + n/256 + a little; gzip's stored blocks add 5 bytes per
        // 64 KiB plus a header. Both well inside this.
        ByteCodec::Zstd { .. } | ByteCodec::Gzip { .. } => {
            n.saturating_add(n / 64).saturating_add(1024)
        }
    })
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

thread_local! {
    /// This thread's zstd contexts, kept between chunks: a context is megabytes of tables
    /// at the levels zarr-python writes, and making one per chunk cost page faults and
    /// clearing on every chunk. `ZSTD_compress2` and `ZSTD_decompressDCtx` start each frame
    /// afresh, so one chunk never sees another's state.
    static ZSTD_COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The largest chunk encoded by the compressor kept per thread.
const KEEP_CONTEXT_FOR: usize = 16 << 20;

/// `raw` as one zstd frame at `level`, by this thread's compressor.
fn zstd_encode(raw: &[u8], level: i32) -> Result<Vec<u8>, String> {
    let err = |e: std::io::Error| format!("zstd: {e}");
    // A context grows with what it compresses: one kept per thread stays small (chunks
    // of a few MiB); a big chunk pays for its own, which its size amortizes.
    if raw.len() > KEEP_CONTEXT_FOR {
        return zstd::bulk::compress(raw, level).map_err(err);
    }
    ZSTD_COMPRESSOR.with(|c| {
        let Ok(mut slot) = c.try_borrow_mut() else {
            return zstd::bulk::compress(raw, level).map_err(err);
        };
        match &mut *slot {
            Some((l, _)) if *l == level => {}
            _ => *slot = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?)),
        }
        let (_, z) = slot.as_mut().expect("set above");
        z.compress(raw).map_err(err)
    })
}

/// Runs `f` with this thread's zstd decompressor (a new one if it is in use).
fn with_zstd_decompressor<R>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<R>,
) -> std::io::Result<R> {
    ZSTD_DECOMPRESSOR.with(|c| match c.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            f(slot.as_mut().expect("set above"))
        }
        Err(_) => f(&mut zstd::bulk::Decompressor::new()?),
    })
}

/// Decodes zstd frames: into `out` when `exact` (which must come out full), else into a
/// buffer of at most `limit` bytes.
fn zstd_decode(
    src: &[u8],
    limit: u64,
    exact: bool,
    out: &mut [u8],
) -> Result<Option<Vec<u8>>, String> {
    if exact {
        // In one pass straight into `out`, with no window buffer of the frame's choosing
        // (a hostile frame may declare 128 MiB for a 4 KiB chunk); more than `out` holds
        // is an error.
        let n = with_zstd_decompressor(|d| d.decompress_to_buffer(src, &mut *out))
            .map_err(|e| format!("its zstd data cannot be decoded to one chunk: {e}"))?;
        if n != out.len() {
            return Err(format!(
                "its zstd data decodes to {n} bytes, not the {} of a chunk",
                out.len()
            ));
        }
        return Ok(None);
    }
    let mut d = zstd::stream::read::Decoder::with_buffer(src)
        .map_err(|e| format!("its zstd frame cannot be read: {e}"))?;
    // A window no larger than what this stage may make (at least zstd's smallest).
    let log = (64 - limit.max(1).leading_zeros()).clamp(10, 27);
    d.window_log_max(log)
        .map_err(|e| format!("its zstd frame cannot be read: {e}"))?;
    read_limited(&mut d, limit, exact, out, "zstd")
}

/// Decodes a Blosc buffer, as [`zstd_decode`] does zstd frames: its header is validated
/// (every size in it within `src`) and its decoded size checked before anything is
/// decoded, so a hostile buffer costs no more than the chunk.
fn blosc_decode(
    src: &[u8],
    limit: u64,
    exact: bool,
    out: &mut [u8],
) -> Result<Option<Vec<u8>>, String> {
    let mut nbytes = 0usize;
    // SAFETY: c-blosc reads at most `src.len()` bytes of `src`, and writes one usize.
    let rc =
        unsafe { blosc_src::blosc_cbuffer_validate(src.as_ptr().cast(), src.len(), &mut nbytes) };
    if rc != 0 {
        return Err(format!(
            "its {} bytes are not a valid blosc buffer",
            src.len()
        ));
    }
    let fits = if exact {
        nbytes == out.len()
    } else {
        nbytes as u64 <= limit
    };
    if !fits {
        return Err(format!(
            "its blosc header gives {nbytes} bytes, not the {} of a chunk",
            if exact { out.len() as u64 } else { limit }
        ));
    }
    let mut buf = Vec::new();
    let dest: &mut [u8] = if exact {
        out
    } else {
        buf.resize(nbytes, 0);
        &mut buf
    };
    // SAFETY: the buffer was validated above (its header's sizes lie within `src`, and it
    // decodes to `dest.len()` bytes); c-blosc writes at most `dest.len()` bytes to `dest`
    // and reads only `src`. One internal thread: the `_ctx` form keeps no global state.
    let n = unsafe {
        blosc_src::blosc_decompress_ctx(
            src.as_ptr().cast(),
            dest.as_mut_ptr().cast(),
            dest.len(),
            1,
        )
    };
    if n < 0 || n as usize != dest.len() {
        return Err(format!(
            "its blosc data cannot be decoded (c-blosc returned {n})"
        ));
    }
    Ok((!exact).then_some(buf))
}

/// Encodes `raw` as one Blosc buffer with the settings `b`.
fn blosc_encode(raw: &[u8], b: Blosc) -> Result<Vec<u8>, String> {
    let cap = raw.len() + blosc_src::BLOSC_MAX_OVERHEAD as usize;
    let mut dest = vec![0u8; cap];
    let cname = std::ffi::CString::new(BLOSC_NAMES[b.cname]).expect("no NUL in a name");
    // SAFETY: c-blosc reads `raw.len()` bytes of `raw` and writes at most `cap` bytes to
    // `dest` (which is enough for any input: BLOSC_MAX_OVERHEAD); `cname` is a C string.
    let n = unsafe {
        blosc_src::blosc_compress_ctx(
            i32::from(b.clevel),
            i32::from(b.shuffle),
            usize::from(b.typesize.max(1)),
            raw.len(),
            raw.as_ptr().cast(),
            dest.as_mut_ptr().cast(),
            cap,
            cname.as_ptr(),
            b.blocksize,
            1,
        )
    };
    if n <= 0 {
        return Err(format!(
            "blosc could not encode {} bytes (c-blosc returned {n})",
            raw.len()
        ));
    }
    dest.truncate(n as usize);
    Ok(dest)
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
            let blosc = |cname, shuffle| {
                ByteCodec::Blosc(Blosc {
                    cname,
                    clevel: 5,
                    shuffle,
                    typesize: 4,
                    blocksize: 0,
                })
            };
            for codecs in [
                vec![],
                vec![ByteCodec::Zstd { level: 1 }],
                vec![ByteCodec::Gzip { level: 9 }, ByteCodec::Crc32c],
                vec![blosc(1, 1)],
                vec![blosc(4, 2), ByteCodec::Crc32c],
                vec![blosc(3, 0)],
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
                .contains("one chunk")
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
                .contains("one chunk")
        );
        // A frame that declares a 128 MiB window and no size, for a small chunk: decoded
        // into the chunk's buffer alone; also as an inner stage (window capped).
        let big_window = {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            e.window_log(27).unwrap();
            e.include_contentsize(false).unwrap();
            e.long_distance_matching(true).unwrap();
            std::io::Write::write_all(&mut e, &raw).unwrap();
            e.finish().unwrap()
        };
        let mut out = vec![0u8; raw.len()];
        c.decode(&big_window, &mut out, 1).unwrap();
        assert_eq!(out, raw);
        let twice = chain(&[ByteCodec::Zstd { level: 3 }, ByteCodec::Zstd { level: 3 }]);
        out.fill(0);
        twice.decode(&zstd(&big_window), &mut out, 1).unwrap();
        assert_eq!(out, raw);
        let g = chain(&[ByteCodec::Gzip { level: 5 }]);
        let mut out = vec![0u8; raw.len()];
        let mut damaged = gzip(&raw);
        let k = damaged.len() / 2;
        damaged.truncate(k);
        assert!(g.decode(&damaged, &mut out, 1).is_err());
        assert!(c.decode(b"not zstd", &mut out, 1).is_err());
        // Blosc: a header that lies about its sizes, or another chunk's size.
        let b = chain(&[ByteCodec::Blosc(Blosc {
            cname: 1,
            clevel: 5,
            shuffle: 1,
            typesize: 1,
            blocksize: 0,
        })]);
        let good = b.encode(&raw, 1).unwrap();
        let mut out = vec![0u8; raw.len()];
        b.decode(&good, &mut out, 1).unwrap();
        let mut lying = good.clone();
        lying[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes()); // nbytes: 1 GiB
        assert!(b.decode(&lying, &mut out, 1).is_err());
        let mut short = vec![0u8; raw.len() - 1];
        assert!(b.decode(&good, &mut short, 1).is_err());
        assert!(b.decode(&good[..good.len() / 2], &mut out, 1).is_err());
        assert!(b.decode(b"tiny", &mut out, 1).is_err());
        let k = chain(&[ByteCodec::Crc32c]);
        let mut bad = with_crc(raw.clone());
        bad[3] ^= 1;
        assert!(k.decode(&bad, &mut out, 1).unwrap_err().contains("crc32c"));
        assert!(k.decode(b"abc", &mut out, 1).is_err());
    }
}
