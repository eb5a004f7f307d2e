//! A Zarr array on the filesystem: its directory and checked layout, where each chunk's
//! bytes are (its own file, or a range of its shard's found through the shard's index),
//! chunks read and checked, and what a stream surveys before it writes.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;

use super::grid::ChunkIndices;
use super::meta::{self, Layout};
use super::{Chunk, ChunkData, zerr};
use crate::element::Element;
use crate::error::{Error, ZarrProblem};
use crate::map::MapOptions;

/// The bytes the other byte order reverses in an element of `T`: the whole element, but
/// each part of a complex number (Zarr stores its real and imaginary parts, each in the
/// array's byte order).
fn swap_unit<T: Element>() -> usize {
    let size = std::mem::size_of::<T>();
    match T::NPY_DESCR.contains('c') {
        true => size / 2,
        false => size,
    }
}

/// A chunk written as a stream, in order, encoded as it goes (see [`Array::chunk_writer`]).
pub(crate) struct ChunkWriter {
    encoder: Box<dyn super::codec::Encoding<crate::map::ReplacingWriter>>,
    index: Vec<usize>,
    path: PathBuf,
    /// Decoded bytes written so far.
    pos: u64,
    /// A block of the fill value in the stored byte order (made on first use).
    fill: Vec<u8>,
}

impl ChunkWriter {
    /// Whether anything was written to it.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

/// A chunk's decoded bytes, read forward a piece at a time (see [`Array::chunk_stream`]).
pub(crate) struct ChunkStream {
    reader: Box<dyn std::io::Read + Send>,
    /// Decoded bytes read so far.
    pos: u64,
    path: PathBuf,
}

/// A chunk file's stored bytes, read in order a megabyte at a time into a buffer of its own
/// (placed for the kernel's fast copy: [`read_buffer`](crate::map::read_buffer)); with
/// `leave_cold`, each megabyte read is dropped from the page cache behind the reader.
struct Stored {
    file: std::fs::File,
    at: u64,
    leave_cold: bool,
    /// Bytes per read.
    read: usize,
    buf: Vec<u8>,
    /// The bytes of `buf` read and not consumed yet.
    unread: std::ops::Range<usize>,
}

impl Stored {
    /// The reader of `file`, `len` bytes long when opened (a read at a time: a megabyte,
    /// or the whole of a smaller file).
    fn new(file: std::fs::File, len: u64, leave_cold: bool) -> Self {
        Stored {
            file,
            at: 0,
            leave_cold,
            read: usize::try_from(len).map_or(1 << 20, |n| n.clamp(1, 1 << 20)),
            buf: Vec::new(),
            unread: 0..0,
        }
    }
}

impl std::io::BufRead for Stored {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.unread.is_empty() {
            let start = crate::map::read_start(&mut self.buf, self.read, self.at);
            let n = crate::map::pager::read_some_at(
                &self.file,
                &mut self.buf[start..start + self.read],
                self.at,
                self.leave_cold,
            )?;
            self.at += n as u64;
            self.unread = start..start + n;
        }
        Ok(&self.buf[self.unread.clone()])
    }

    fn consume(&mut self, n: usize) {
        self.unread.start = (self.unread.start + n).min(self.unread.end);
    }
}

impl std::io::Read for Stored {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let have = std::io::BufRead::fill_buf(self)?;
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl Drop for Stored {
    /// What the kernel read ahead past the last read goes too.
    fn drop(&mut self) {
        if self.leave_cold {
            crate::map::pager::drop_from_cache(&self.file, 0, 0);
        }
    }
}

/// Reads `buf.len()` bytes at `offset` of the regular file at `path` (the file layer's
/// open, which refuses FIFOs without blocking, and positioned read).
fn read_at(path: &Path, offset: u64, buf: &mut [u8], action: &'static str) -> Result<(), Error> {
    let f = crate::map::open_regular(path, std::fs::OpenOptions::new().read(true), "open")?;
    crate::map::pager::read_once_at(&f, buf, offset, false).map_err(|e| Error::io(path, action, e))
}

/// What both array types share: the directory and its checked layout.
#[derive(Debug)]
pub(crate) struct Array<T> {
    pub(super) dir: PathBuf,
    pub(super) layout: Layout<T>,
    /// The shard indexes read last (each read and checked once, not per inner chunk).
    indexes: IndexCache,
    /// The chunk (or shard) files written through this handle: what `ZarrArrayMut::flush`
    /// syncs (not every file of the array, which made a flush per task of a job over many
    /// tasks cost the whole array's files each time). See [`Written`]. Shared with the
    /// handle of the threads that write chunks behind a stream ([`writer`](Self::writer)).
    written: std::sync::Arc<std::sync::Mutex<Written>>,
}

/// The files a handle wrote: those written whole (a compressed chunk, replaced) until a
/// flush syncs them, and those it mapped writable for good (a `ChunkMut` may be written
/// after a flush, so every flush syncs them again).
#[derive(Debug, Default)]
struct Written {
    whole: std::collections::BTreeSet<PathBuf>,
    mapped: std::collections::BTreeSet<PathBuf>,
}

/// What a shard file was when its index was read: a change of any of these reads it anew.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// Device and inode (Unix): a shard replaced by another file of the same length.
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            },
        }
    }
}

/// A shard index: `(offset, nbytes)` per inner chunk, checked.
type Entries = std::sync::Arc<[(u64, u64)]>;

/// The last few shard indexes read.
#[derive(Default)]
struct IndexCache(std::sync::Mutex<Vec<(PathBuf, Stamp, Entries)>>);

impl IndexCache {
    const KEEP: usize = 8;

    fn get(&self, path: &Path, stamp: &Stamp) -> Option<Entries> {
        let cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .iter()
            .find(|(p, s, _)| p == path && s == stamp)
            .map(|(_, _, e)| e.clone())
    }

    fn put(&self, path: &Path, stamp: Stamp, entries: Entries) {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|(p, _, _)| p != path);
        if cache.len() >= Self::KEEP {
            cache.remove(0);
        }
        cache.push((path.to_path_buf(), stamp, entries));
    }
}

impl Clone for IndexCache {
    fn clone(&self) -> Self {
        IndexCache::default()
    }
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexCache")
    }
}

impl<T: Element> Array<T> {
    /// The array at `dir` with `layout` (checked already).
    pub(super) fn new(dir: &Path, layout: Layout<T>) -> Self {
        Array {
            dir: dir.to_path_buf(),
            layout,
            indexes: IndexCache::default(),
            written: Default::default(),
        }
    }

    /// Another handle of the same array, for a thread of its own (see
    /// [`ahead`](super::ahead)): the same layout, caches of its own, nothing written.
    pub(crate) fn handle(&self) -> Self {
        Array::new(&self.dir, self.layout.clone())
    }

    /// Another handle of the same array, for a thread that writes chunks for this one:
    /// the files it writes count as written through this handle (for its flush) the moment
    /// they are in place, even when the stream that wanted them stops before it hears back
    /// (an error, a panic in the caller's function). Its writes never overlap a flush of
    /// this handle (the stream that owns the threads holds the array mutably, and joins
    /// them before it returns or unwinds), so `synced` cannot drop a newer write.
    pub(crate) fn writer(&self) -> Self {
        Array {
            written: std::sync::Arc::clone(&self.written),
            ..self.handle()
        }
    }

    /// Notes that the file at `path` was written whole through this handle (see
    /// [`Written`]).
    pub(crate) fn mark_written(&self, path: &Path) {
        self.record().whole.insert(path.to_path_buf());
    }

    /// Notes that the file at `path` is mapped writable through this handle.
    pub(crate) fn mark_mapped(&self, path: &Path) {
        self.record().mapped.insert(path.to_path_buf());
    }

    /// The record of files written, whole even after a thread panicked holding it.
    fn record(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The files a flush syncs now: every one mapped writable and every one written whole
    /// since the last [`synced`](Self::synced).
    pub(crate) fn to_sync(&self) -> std::collections::BTreeSet<PathBuf> {
        let w = self.record();
        w.whole.union(&w.mapped).cloned().collect()
    }

    /// `paths` (from [`to_sync`](Self::to_sync)) and their directories are synced: the
    /// files written whole among them need no sync again.
    pub(crate) fn synced(&self, paths: &std::collections::BTreeSet<PathBuf>) {
        self.record().whole.retain(|p| !paths.contains(p));
    }

    pub(super) fn open(dir: &Path) -> Result<Self, Error> {
        let json_path = dir.join("zarr.json");
        let json = match crate::map::read_small_file(&json_path, 16 << 20) {
            Ok(json) => json,
            // A Zarr v2 array or group has no zarr.json: say so, and what to do.
            Err(e @ Error::Io { .. }) => match meta::v2_hint(dir) {
                Some(problem) => return Err(zerr(dir, problem)),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let layout = meta::parse::<T>(&json).map_err(|p| zerr(&json_path, p))?;
        Ok(Array::new(dir, layout))
    }

    /// Refuses to write chunk file `path` in place when it has other names (hard links, as
    /// `cp -al` or a deduplicator make): the bytes of another array, or of a snapshot, would
    /// change with it. (Unix: elsewhere the count is not asked.)
    pub(crate) fn check_one_name(&self, path: &Path) -> Result<(), Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.nlink() > 1 => {
                    return Err(zerr(
                        path,
                        ZarrProblem::Unsupported {
                            what: format!(
                                "writing a chunk file that has {} names (hard links, as cp -al \
                                 makes): writing it in place would change the other names too; \
                                 copy the file to break the link",
                                m.nlink()
                            ),
                        },
                    ));
                }
                _ => {}
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }

    /// Refuses to write chunk file `path` when it, or a directory between the array's and
    /// it, is a symbolic link: the bytes would land outside the array's directory (a
    /// downloaded or shared array must never make us write elsewhere). Reading through
    /// links is left alone.
    pub(crate) fn check_no_links(&self, path: &Path) -> Result<(), Error> {
        let Ok(rest) = path.strip_prefix(&self.dir) else {
            return Ok(());
        };
        let mut at = self.dir.clone();
        for part in rest.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(zerr(
                        &at,
                        ZarrProblem::Unsupported {
                            what: format!(
                                "writing chunk {} through a symbolic link (its bytes would land \
                                 outside the array's directory; replace the link with a copy of \
                                 what it points to)",
                                path.display()
                            ),
                        },
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&at, "inspect", e)),
            }
        }
        Ok(())
    }

    /// After a chunk file was opened by `path` to be written in place: the file opened
    /// (`opened`) is the entry at `path`, reached through no link. Whoever else can write
    /// the directory could swap a link in between [`check_no_links`](Self::check_no_links)
    /// and the open, which then followed it out of the array's directory; this refuses
    /// such a file before any byte of it is written. (Unix; elsewhere the checks before.)
    pub(crate) fn check_opened(
        &self,
        path: &Path,
        opened: crate::map::FileId,
    ) -> Result<(), Error> {
        self.check_no_links(path)?;
        match crate::map::identity_of_entry(path) {
            Some(Ok(now)) if now == opened => Ok(()),
            Some(Ok(_)) => Err(zerr(
                path,
                ZarrProblem::Unsupported {
                    what: "writing a chunk whose file changed while it was opened (a link or \
                           another file was put in its place): the file opened may lie \
                           outside the array's directory"
                        .into(),
                },
            )),
            Some(Err(e)) => Err(Error::io(path, "inspect", e)),
            None => Ok(()),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    pub(crate) fn chunk_shape(&self) -> &[usize] {
        &self.layout.chunk
    }

    /// What a chunk never written holds.
    pub(crate) fn fill_value(&self) -> T {
        self.layout.fill
    }

    /// The order of the elements inside each chunk file.
    pub(crate) fn order(&self) -> crate::Order {
        self.layout.order
    }

    /// Every chunk file, checked as [`read_chunk`](Self::read_chunk) would (the size of
    /// each file, no directory in its place) and with its identity, so that a stream can
    /// refuse what it would otherwise find only half-way (at most 2^24 chunks).
    pub(crate) fn survey(&self) -> Result<Vec<ChunkFile>, Error> {
        const MAX: usize = 1 << 24;
        let chunks = self
            .grid()
            .iter()
            .try_fold(1usize, |n, &g| n.checked_mul(g));
        if chunks.is_none_or(|n| n > MAX) {
            return Err(zerr(
                &self.dir,
                ZarrProblem::Unsupported {
                    what: format!(
                        "streaming an array of more than 2^24 chunks (its grid is {:?}; choose \
                         larger chunks)",
                        self.grid()
                    ),
                },
            ));
        }
        let mut out = Vec::new();
        for index in self.indices() {
            let (place, _) = self.place(&index)?;
            let (path, offset, there) = match place {
                Place::File(p) => (p, 0, true),
                Place::InShard { path, offset, .. } => (path, offset, true),
                Place::Missing(p) => (p, 0, false),
            };
            let id = if there {
                match crate::map::identity_of_path(&path) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(e)) => return Err(Error::io(&path, "inspect", e)),
                    None => None,
                }
            } else {
                None
            };
            out.push(ChunkFile {
                index,
                path,
                offset,
                id,
            });
        }
        Ok(out)
    }

    /// Chunk `index` mapped read-only, or read into a buffer (a compressed chunk, decoded;
    /// an inner chunk not aligned for `T` in its shard), or the fill value for a chunk never
    /// written.
    pub(crate) fn read_chunk(&self, index: &[usize]) -> Result<Chunk<T>, Error> {
        self.read_chunk_into(index, None, false)
    }

    /// [`read_chunk`](Self::read_chunk), decoding into `spare` (a buffer of a chunk the
    /// caller is done with) when the chunk is read into a buffer; with `leave_cold` (a
    /// bounded stream), the stored bytes read are dropped from the page cache unless they
    /// were cached before.
    pub(crate) fn read_chunk_into(
        &self,
        index: &[usize],
        spare: Option<Vec<T>>,
        leave_cold: bool,
    ) -> Result<Chunk<T>, Error> {
        let (place, edge) = self.place(index)?;
        let l = &self.layout;
        let opts = MapOptions::new().order(l.order);
        let plain = l.codecs.is_plain();
        let data = match place {
            Place::File(path) if plain => {
                // SAFETY: the contract of `open` / `open_mut` covers every chunk file.
                let m = unsafe { opts.open::<T>(&path, l.chunk.as_slice()) }?;
                ChunkData::Mapped(m)
            }
            Place::File(path) => {
                // The whole file, its length taken from the descriptor read: a file replaced
                // meanwhile (by another writer, or by this stream's own writer threads) is
                // read whole, old or new.
                ChunkData::Owned(self.read_copy(&path, 0, None, spare, leave_cold)?)
            }
            // zarr-python's index at the start puts inner chunks 4 bytes off 8-byte
            // alignment: such a chunk is read into an aligned buffer instead.
            Place::InShard { path, offset, len }
                if !plain || offset % std::mem::align_of::<T>() as u64 != 0 =>
            {
                ChunkData::Owned(self.read_copy(&path, offset, Some(len), spare, leave_cold)?)
            }
            Place::InShard { path, offset, .. } => {
                let opts = opts.offset(offset).len(self.chunk_bytes());
                // SAFETY: the contract of `open` / `open_mut` covers every shard file.
                let m = unsafe { opts.open::<T>(&path, l.chunk.as_slice()) }?;
                ChunkData::Mapped(m)
            }
            Place::Missing(_) => {
                ChunkData::Fill(ArrayD::from_elem(vec![1; edge.len()], self.layout.fill))
            }
        };
        Ok(Chunk { data, edge })
    }

    /// The chunk stored at bytes `offset..offset + len` of `path`, read (and decoded,
    /// when its codecs say so) into a buffer of its own, aligned for `T`, in the chunk's
    /// order. A stored chunk longer than its codecs can make of a chunk is refused before
    /// it is read.
    /// `spare`, when it holds one chunk, is used instead of a new buffer: every element is
    /// overwritten (a decode that does not fill exactly one chunk is an error).
    pub(super) fn read_copy(
        &self,
        path: &Path,
        offset: u64,
        len: Option<u64>,
        spare: Option<Vec<T>>,
        leave_cold: bool,
    ) -> Result<ArrayD<T>, Error> {
        let l = &self.layout;
        let n: usize = l.chunk.iter().product();
        let file = crate::map::open_regular(path, std::fs::OpenOptions::new().read(true), "open")?;
        let len = match len {
            Some(len) => len,
            None => file
                .metadata()
                .map_err(|e| Error::io(path, "inspect", e))?
                .len(),
        };
        let read = |buf: &mut [u8]| {
            crate::map::pager::read_once_at(&file, buf, offset, leave_cold)
                .map_err(|e| Error::io(path, "read a chunk of", e))
        };
        let mut data: Vec<T> = match spare {
            Some(v) if v.len() == n => v,
            _ => super::chunk_buffer(n, bytemuck::Zeroable::zeroed(), path)?,
        };
        let out: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
        if l.codecs.is_plain() {
            read(out)?;
        } else {
            let most = l.codecs.max_stored(self.chunk_bytes());
            if len > most {
                return Err(self.too_long(path, len));
            }
            // (`len` is at most a little more than the chunk's bytes, which fit in memory.)
            with_stored_buffer(len as usize, offset, |stored| {
                read(stored)?;
                l.codecs
                    .decode(stored, out, swap_unit::<T>())
                    .map_err(|detail| self.decode_error(path, detail))
            })?;
        }
        let dim = ndarray::IxDyn(&l.chunk);
        let shape: ndarray::StrideShape<ndarray::IxDyn> = if l.order == crate::Order::F {
            ndarray::ShapeBuilder::f(dim).into()
        } else {
            dim.into()
        };
        ArrayD::from_shape_vec(shape, data).map_err(|e| {
            Error::io(
                path,
                "read a chunk of",
                std::io::Error::other(e.to_string()),
            )
        })
    }

    /// Chunk `index`'s decoded bytes as a stream read forward ([`ChunkStream`]), when its
    /// codecs decode as one ([`Chain::stream_decoder`](super::codec::Chain::stream_decoder))
    /// and it has a file of its own; `None` otherwise (read it with
    /// [`read_chunk`](Self::read_chunk)). With `leave_cold`, what is read of a file not
    /// cached before is dropped from the page cache as the stream goes.
    pub(crate) fn chunk_stream(
        &self,
        index: &[usize],
        leave_cold: bool,
    ) -> Result<Option<ChunkStream>, Error> {
        let (Place::File(path), _) = self.place(index)? else {
            return Ok(None);
        };
        let file = crate::map::open_regular(&path, std::fs::OpenOptions::new().read(true), "open")?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(&path, "inspect", e))?
            .len();
        let codecs = &self.layout.codecs;
        if len > codecs.max_stored(self.chunk_bytes()) {
            return Err(self.too_long(&path, len));
        }
        // A file cached before the stream stays cached.
        let leave_cold = leave_cold && !crate::map::pager::all_cached(&file, 0, len);
        let stored: Box<dyn std::io::BufRead + Send> = Box::new(Stored::new(file, len, leave_cold));
        let decoder = codecs
            .stream_decoder(stored, self.chunk_bytes())
            .map_err(|detail| self.decode_error(&path, detail))?;
        Ok(decoder.map(|reader| ChunkStream {
            reader,
            pos: 0,
            path,
        }))
    }

    /// Whether chunks decode and encode as a stream (one `zstd` or `gzip` codec, no shards).
    pub(crate) fn streams_chunks(&self) -> bool {
        self.layout.codecs.streams() && self.layout.shard.is_none()
    }

    /// Chunk `index` written anew as a stream: bytes go in, in the chunk's order, and are
    /// encoded as they come into a file beside the old one, which
    /// [`finish_stream`](Self::finish_stream) puts in its place in one step (with
    /// `leave_cold`, written back and dropped from the page cache as it goes). `None` when
    /// the chunks do not encode as a stream.
    pub(crate) fn chunk_writer(
        &self,
        index: &[usize],
        leave_cold: bool,
    ) -> Result<Option<ChunkWriter>, Error> {
        if !self.streams_chunks() {
            return Ok(None);
        }
        let (path, _) = self.locate(index)?;
        // No link on the way, before a directory is made and again before the file is.
        self.check_no_links(&path)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
        }
        self.check_no_links(&path)?;
        let w = crate::map::ReplacingWriter::new(&path, leave_cold)?;
        let encoder = self
            .layout
            .codecs
            .stream_encoder(w, self.chunk_bytes())
            .map_err(|detail| self.encode_error(&path, detail))?;
        Ok(encoder.map(|encoder| ChunkWriter {
            encoder,
            index: index.to_vec(),
            path,
            pos: 0,
            fill: Vec::new(),
        }))
    }

    fn encode_error(&self, path: &Path, detail: String) -> Error {
        zerr(
            path,
            ZarrProblem::Encode {
                codecs: self.layout.codecs.names(),
                detail,
            },
        )
    }

    /// Writes `bytes` (whole elements, in this machine's byte order; turned into the
    /// stored order in place) at decoded offset `offset` of the chunk; the bytes between
    /// the last write and `offset` hold the fill value.
    pub(crate) fn write_stream(
        &self,
        w: &mut ChunkWriter,
        offset: u64,
        bytes: &mut [u8],
    ) -> Result<(), Error> {
        use std::io::Write;
        if offset < w.pos {
            return Err(zerr(
                &w.path,
                ZarrProblem::Unsupported {
                    what: "writing a chunk encoded as a stream out of its order".into(),
                },
            ));
        }
        self.fill_stream(w, offset)?;
        self.layout.codecs.swap(bytes, swap_unit::<T>());
        w.encoder
            .write_all(bytes)
            .map_err(|e| Error::io(&w.path, "write", e))?;
        w.pos = offset + bytes.len() as u64;
        Ok(())
    }

    /// The fill value from the last write up to decoded offset `to`.
    fn fill_stream(&self, w: &mut ChunkWriter, to: u64) -> Result<(), Error> {
        use std::io::Write;
        if to <= w.pos {
            return Ok(());
        }
        if w.fill.is_empty() {
            let block = vec![self.layout.fill; (64 << 10) / std::mem::size_of::<T>().max(1)];
            w.fill = bytemuck::cast_slice(&block).to_vec();
            self.layout.codecs.swap(&mut w.fill, swap_unit::<T>());
        }
        while w.pos < to {
            let n = (to - w.pos).min(w.fill.len() as u64) as usize;
            w.encoder
                .write_all(&w.fill[..n])
                .map_err(|e| Error::io(&w.path, "write", e))?;
            w.pos += n as u64;
        }
        Ok(())
    }

    /// Ends chunk `w`: the bytes not written hold the old chunk's (`keep_old`: the stream
    /// stopped inside the chunk; a chunk never written, the fill value) or the fill value
    /// (past the array's edge), and the file is put in place in one step and counted as
    /// written through this handle; with `leave_cold`, written back and dropped from the
    /// page cache. On an error the old chunk stays as it was.
    pub(crate) fn finish_stream(
        &self,
        mut w: ChunkWriter,
        keep_old: bool,
        leave_cold: bool,
    ) -> Result<(), Error> {
        use std::io::Write;
        let total = self.chunk_bytes();
        let old = match keep_old && w.pos < total {
            true => self.chunk_stream(&w.index, leave_cold)?,
            false => None,
        };
        match old {
            Some(mut old) => {
                let mut buf = vec![0u8; 1 << 20];
                while w.pos < total {
                    let n = (total - w.pos).min(buf.len() as u64) as usize;
                    self.read_stream(&mut old, w.pos, &mut buf[..n])?;
                    self.layout.codecs.swap(&mut buf[..n], swap_unit::<T>());
                    w.encoder
                        .write_all(&buf[..n])
                        .map_err(|e| Error::io(&w.path, "write", e))?;
                    w.pos += n as u64;
                }
                self.end_stream(&mut old)?;
            }
            None => self.fill_stream(&mut w, total)?,
        }
        let writer = w
            .encoder
            .finish()
            .map_err(|e| Error::io(&w.path, "write", e))?;
        // No link on the way now either: a chunk's worth of computing went by since the
        // check at `chunk_writer`.
        self.check_no_links(&w.path)?;
        // Counted for the flush before the commit: a commit can fail after its rename (a
        // write-back error), with the new file in place (a file that did not change, or
        // is missing, costs the flush nothing).
        self.mark_written(&w.path);
        writer.commit(leave_cold)
    }

    fn decode_error(&self, path: &Path, detail: String) -> Error {
        zerr(
            path,
            ZarrProblem::Decode {
                codecs: self.layout.codecs.names(),
                detail,
            },
        )
    }

    /// Reads `buf.len()` decoded bytes of `stream` at `offset` of the chunk (offsets only
    /// go forward; the bytes skipped are decoded and dropped), in this machine's byte
    /// order.
    pub(crate) fn read_stream(
        &self,
        stream: &mut ChunkStream,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), Error> {
        use std::io::Read;
        let bad = |e: std::io::Error| {
            self.decode_error(
                &stream.path,
                format!("its data cannot be decoded to one chunk: {e}"),
            )
        };
        if offset < stream.pos {
            return Err(zerr(
                &stream.path,
                ZarrProblem::Unsupported {
                    what: "reading a chunk decoded as a stream out of its order".into(),
                },
            ));
        }
        let skip = offset - stream.pos;
        let skipped = std::io::copy(&mut (&mut stream.reader).take(skip), &mut std::io::sink())
            .map_err(bad)?;
        if skipped < skip {
            return Err(bad(std::io::ErrorKind::UnexpectedEof.into()));
        }
        stream.reader.read_exact(buf).map_err(bad)?;
        stream.pos = offset + buf.len() as u64;
        self.layout.codecs.swap(buf, swap_unit::<T>());
        Ok(())
    }

    /// The end of `stream`: the rest of the chunk is decoded (and dropped), and the data
    /// must end there: exactly one chunk, with the codec's own checks (gzip's CRC-32 and
    /// length, zstd's checksum when the frame has one) passed, as for a chunk decoded
    /// whole.
    pub(crate) fn end_stream(&self, stream: &mut ChunkStream) -> Result<(), Error> {
        use std::io::Read;
        let raw = self.chunk_bytes();
        let bad = |e: std::io::Error| {
            self.decode_error(
                &stream.path,
                format!("its data cannot be decoded to one chunk: {e}"),
            )
        };
        let rest = raw.saturating_sub(stream.pos);
        let got = std::io::copy(&mut (&mut stream.reader).take(rest), &mut std::io::sink())
            .map_err(bad)?;
        let mut one = [0u8; 1];
        let more = stream.reader.read(&mut one).map_err(bad)?;
        stream.pos += got;
        if got < rest || more > 0 {
            return Err(self.decode_error(
                &stream.path,
                format!(
                    "its data decodes to {} bytes, not the {raw} of a chunk",
                    if more > 0 {
                        format!("more than {raw}")
                    } else {
                        format!("{}", stream.pos)
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Where chunk `index` is (see [`Place`]), and its lengths cut to the array's edge.
    pub(super) fn place(&self, index: &[usize]) -> Result<(Place, Vec<usize>), Error> {
        let (path, edge) = self.locate(index)?;
        let Some(shard) = &self.layout.shard else {
            let place = if self.check_size(&path)? {
                Place::File(path)
            } else {
                Place::Missing(path)
            };
            return Ok((place, edge));
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => {
                return Err(Error::NotAFile {
                    path,
                    kind: crate::map::file_kind(&m.file_type()),
                });
            }
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Place::Missing(path), edge));
            }
            Err(e) => return Err(Error::io(&path, "inspect", e)),
        };
        // The inner chunk's position in its shard, in C order of the shard's inner grid.
        let position = index
            .iter()
            .zip(&shard.inner_grid)
            .fold(0usize, |p, (&i, &n)| p * n + i % n);
        let entries = self.shard_index(&path, &meta)?;
        let (offset, nbytes) = entries[position];
        if offset == u64::MAX && nbytes == u64::MAX {
            return Ok((Place::Missing(path), edge));
        }
        Ok((
            Place::InShard {
                path,
                offset,
                len: nbytes,
            },
            edge,
        ))
    }

    /// The index of the shard at `path` (whose metadata is `meta`): every entry missing or
    /// an uncompressed inner chunk inside the shard's data, no two overlapping, the
    /// `crc32c` matching. Read once per shard file (while it does not change), not once
    /// per inner chunk.
    pub(super) fn shard_index(
        &self,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<Entries, Error> {
        let stamp = Stamp::of(meta);
        if let Some(e) = self.indexes.get(path, &stamp) {
            return Ok(e);
        }
        let l = &self.layout;
        let shard = l.shard.as_ref().expect("a sharded layout");
        let bad = |detail: String| zerr(path, ZarrProblem::ShardIndex { detail });
        let len = stamp.len;
        // (The index's length was checked to be computable when zarr.json was parsed.)
        let index_len = shard.index_len;
        if index_len > len || index_len > 1 << 30 {
            return Err(bad(format!(
                "the file holds {len} bytes, and its index of {} inner chunks (16 bytes each) \
                 is longer, or longer than the 1 GiB this crate reads",
                index_len / 16
            )));
        }
        let at = if shard.index_at_end {
            len - index_len
        } else {
            0
        };
        let mut raw = vec![0u8; index_len as usize];
        read_at(path, at, &mut raw, "read the shard index of")?;
        let data = if shard.index_at_end {
            (0, len - index_len)
        } else {
            (index_len, len)
        };
        // Uncompressed inner chunks are exactly the chunk's bytes long; compressed ones at
        // most what their codecs can make of it.
        let lengths = match l.codecs.is_plain() {
            true => (self.chunk_bytes(), self.chunk_bytes()),
            false => (1, l.codecs.max_stored(self.chunk_bytes())),
        };
        let entries: Entries = super::grid::decode_index(&raw, shard.crc, data, lengths)
            .map_err(bad)?
            .into();
        self.indexes.put(path, stamp, entries.clone());
        Ok(entries)
    }

    pub(super) fn grid(&self) -> Vec<usize> {
        super::grid::grid(&self.layout.shape, &self.layout.chunk)
    }

    /// Checks `index` against the grid; returns the chunk's file and its lengths cut to
    /// the array's edge.
    pub(super) fn locate(&self, index: &[usize]) -> Result<(PathBuf, Vec<usize>), Error> {
        let grid = self.grid();
        if index.len() != grid.len() || index.iter().zip(&grid).any(|(&i, &g)| i >= g) {
            return Err(zerr(
                &self.dir,
                ZarrProblem::ChunkIndex {
                    index: index.to_vec(),
                    grid,
                },
            ));
        }
        let l = &self.layout;
        let edge = index
            .iter()
            .zip(&l.chunk)
            .zip(&l.shape)
            .map(|((&i, &c), &n)| c.min(n - i * c))
            .collect();
        // An inner chunk of a shard lives in its shard's file.
        let key_index: Vec<usize> = match &l.shard {
            Some(sh) => index
                .iter()
                .zip(&l.chunk)
                .zip(&sh.shape)
                .map(|((&i, &c), &s)| i * c / s)
                .collect(),
            None => index.to_vec(),
        };
        let key: Vec<String> = key_index.iter().map(usize::to_string).collect();
        let mut path = self.dir.clone();
        if l.v2_keys {
            path.push(if key.is_empty() {
                "0".to_owned()
            } else {
                key.join(&l.separator)
            });
        } else if l.separator == "/" {
            path.push("c");
            path.extend(&key);
        } else {
            let mut k = vec!["c".to_owned()];
            k.extend(key);
            path.push(k.join(&l.separator));
        }
        Ok((path, edge))
    }

    /// The bytes of one stored chunk.
    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.layout.chunk.iter().product::<usize>() as u64 * std::mem::size_of::<T>() as u64
    }

    pub(super) fn indices(&self) -> ChunkIndices {
        ChunkIndices::of(self.grid())
    }

    /// The shard shape, for a sharded array.
    pub(crate) fn shard_shape(&self) -> Option<&[usize]> {
        self.layout.shard.as_ref().map(|s| s.shape.as_slice())
    }

    /// Whether chunks are stored encoded (compressed, or in the other byte order): then
    /// they are read into buffers and written whole, never mapped.
    pub(crate) fn is_coded(&self) -> bool {
        !self.layout.codecs.is_plain()
    }

    /// Encodes `chunk` (the whole stored chunk, in the chunk's order) and writes it as
    /// chunk `index`'s file, replacing the old one in one step (see
    /// [`write_file_replacing`](crate::map::write_file_replacing)); returns the file's path.
    /// With `leave_cold` (a bounded stream), the file is written back at once and its pages
    /// dropped from the page cache.
    pub(crate) fn write_encoded(
        &self,
        index: &[usize],
        chunk: &ArrayD<T>,
        leave_cold: bool,
    ) -> Result<PathBuf, Error> {
        let raw: &[T] = chunk
            .as_slice_memory_order()
            .expect("a chunk buffer is contiguous");
        self.write_encoded_raw(index, raw, leave_cold)
    }

    /// [`write_encoded`](Self::write_encoded) from the chunk's elements in its order.
    pub(crate) fn write_encoded_raw(
        &self,
        index: &[usize],
        raw: &[T],
        leave_cold: bool,
    ) -> Result<PathBuf, Error> {
        let (path, _) = self.locate(index)?;
        let bytes = self
            .layout
            .codecs
            .encode(bytemuck::cast_slice(raw), swap_unit::<T>())
            .map_err(|detail| self.encode_error(&path, detail))?;
        // No link on the way, before a directory is made and again before the file is.
        self.check_no_links(&path)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create", e))?;
        }
        self.check_no_links(&path)?;
        // Counted for the flush first: the write can fail after its rename.
        self.mark_written(&path);
        crate::map::write_file_replacing(&path, &bytes, leave_cold)?;
        Ok(path)
    }

    /// The refusal of a stored (compressed) chunk of `len` bytes, more than its codecs can
    /// make of a chunk.
    fn too_long(&self, path: &Path, len: u64) -> Error {
        let codecs = &self.layout.codecs;
        zerr(
            path,
            ZarrProblem::Decode {
                codecs: codecs.names(),
                detail: format!(
                    "it holds {len} bytes, more than the {} its codecs can make of a chunk of {} \
                     bytes",
                    codecs.max_stored(self.chunk_bytes()),
                    self.chunk_bytes()
                ),
            },
        )
    }

    pub(super) fn check_size(&self, path: &Path) -> Result<bool, Error> {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: crate::map::file_kind(&m.file_type()),
            }),
            Ok(m) if m.len() == self.chunk_bytes() => Ok(true),
            Ok(m)
                if !self.layout.codecs.is_plain()
                    && m.len() <= self.layout.codecs.max_stored(self.chunk_bytes()) =>
            {
                Ok(true)
            }
            Ok(m) if !self.layout.codecs.is_plain() => Err(self.too_long(path, m.len())),
            Ok(m) => Err(zerr(
                path,
                ZarrProblem::ChunkSize {
                    expected: self.chunk_bytes(),
                    found: m.len(),
                },
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, "inspect", e)),
        }
    }
}

/// Where a chunk's bytes are.
pub(super) enum Place {
    /// Its own file (no shards), of the right size.
    File(PathBuf),
    /// Bytes `offset..offset + len` of its shard's file (`len` is the chunk's bytes when
    /// its inner chunks are not compressed).
    InShard {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
    /// Nowhere (no file, or not in its shard): it reads as the fill value. The path is
    /// where its file, or its shard's, would be.
    Missing(PathBuf),
}

/// A chunk file as a stream checks it before it starts.
pub(crate) struct ChunkFile {
    pub(crate) index: Vec<usize>,
    pub(crate) path: PathBuf,
    /// Where the chunk starts in the file (0 without shards).
    pub(crate) offset: u64,
    /// `None` for a chunk with no file (it reads as the fill value).
    pub(crate) id: Option<crate::map::FileId>,
}

/// The refusal to write an inner chunk in place that starts at byte `offset` of its shard,
/// not aligned for `T`.
pub(crate) fn misaligned<T>(path: &Path, index: &[usize], offset: u64) -> Error {
    zerr(
        path,
        ZarrProblem::Unsupported {
            what: format!(
                "writing inner chunk {index:?} in place: it starts at byte {offset} of its \
                 shard, not a multiple of the {}-byte alignment of {} (reading copies it; \
                 zarr-python's index at the start puts inner chunks there: write shards with \
                 index_location=\"end\")",
                std::mem::align_of::<T>(),
                crate::element::type_name::<T>()
            ),
        },
    )
}

thread_local! {
    /// This thread's buffer for a stored chunk's bytes, kept between chunks (up to
    /// [`KEEP_STORED`]): a new one per chunk cost a fresh mapping, its page faults and its
    /// clearing on every chunk.
    static STORED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most bytes of [`STORED`] kept for the next chunk.
const KEEP_STORED: usize = 64 << 20;

/// Runs `f` on a buffer of `len` bytes (of no particular content) to read from file offset
/// `offset` ([`read_buffer`](crate::map::read_buffer): placed for the kernel's fast copy):
/// this thread's kept one when it is free.
fn with_stored_buffer<R>(len: usize, offset: u64, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = STORED.with(|c| {
        c.try_borrow_mut()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    });
    let r = f(crate::map::read_buffer(&mut buf, len, offset));
    if buf.capacity() <= KEEP_STORED {
        STORED.with(|c| {
            if let Ok(mut v) = c.try_borrow_mut() {
                *v = buf;
            }
        });
    }
    r
}
