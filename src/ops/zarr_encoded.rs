//! (zarr) A Zarr array whose chunks are encoded (compressed, or in the other byte order)
//! as a stream's output. Such chunks are never mapped: while the stream is in a chunk it is
//! held whole in a buffer (decoded from its file, or the fill value for a chunk with
//! none), and when the stream leaves it, it is encoded once and its file replaced in one
//! step (`write_file_replacing`: a crash leaves the old chunk or the new one). The parts of
//! the chunk the stream did not reach keep their old values, so a cancel keeps its promise.

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewMutD, Slice};

use crate::element::Element;
use crate::error::{Error, ZarrProblem};
use crate::zarr::{ChunkWriter, WriteBehind, ZarrArrayMut};

use super::overlap::{Operand, Survey};
use super::part::Writer;
use super::plan::{Scratch, ScratchOf, same_order};
use super::zarr::{dense_strides, place, relative, runs, streams};

/// The chunk a stream is in: its index, where it starts, its whole buffer.
struct Held<T> {
    index: Vec<usize>,
    origin: Vec<usize>,
    chunk: ArrayD<T>,
    /// Started from the fill value instead of the chunk's old values (the operation only
    /// writes it): then the pieces given out so far, and how many elements they hold.
    fresh: Option<(Vec<Vec<Slice>>, usize)>,
    /// The chunk's elements inside the array (edge chunks overhang it).
    inside: usize,
}

/// A chunk written as a stream (chunks bigger than the memory allows, only written):
/// each piece is encoded as the stream leaves it.
struct Encoding {
    w: ChunkWriter,
    index: Vec<usize>,
    origin: Vec<usize>,
    /// The last piece, in the chunk's indices (start, length per axis).
    piece: Vec<(usize, usize)>,
    written: usize,
    inside: usize,
}

/// A Zarr array with encoded chunks, as a stream writes it (see the module docs).
pub(super) struct ZarrEncOut<'a, T> {
    array: &'a mut ZarrArrayMut<T>,
    strides: Vec<isize>,
    held: Option<Held<T>>,
    /// The operation never reads the output: a chunk it will overwrite whole is not
    /// decoded first (nor can a damaged old chunk fail the stream half-way).
    write_only: bool,
    /// Chunks encoded and written on other threads while the stream fills the next.
    behind: Option<WriteBehind<T>>,
    /// A bounded stream: chunk files written are written back and dropped from the page
    /// cache at once.
    bounded: bool,
    /// Chunks are written as a stream (see [`streams`]): the one the stream is in, and the
    /// piece being computed.
    streaming: bool,
    enc: Option<Encoding>,
    scratch: Scratch,
}

impl<'a, T: Element> ZarrEncOut<'a, T> {
    pub(super) fn new(array: &'a mut ZarrArrayMut<T>) -> Self {
        let strides = dense_strides(array.array().shape(), array.array().order());
        ZarrEncOut {
            array,
            strides,
            held: None,
            write_only: false,
            behind: None,
            bounded: false,
            streaming: false,
            enc: None,
            scratch: Scratch::default(),
        }
    }

    /// The stream is done with the chunk it holds: encoded and written. A chunk started
    /// from the fill value and not written whole (a cancel, or regions that come back to
    /// it later) takes the old values where it was not written, so nothing the stream did
    /// not reach changes.
    fn leave(&mut self) -> Result<(), Error> {
        if let Some(e) = self.enc.take() {
            if e.w.is_empty() {
                // Entered, never written: the chunk stays as it is.
                return Ok(());
            }
            // What the stream did not reach keeps its old values.
            let keep_old = e.written < e.inside;
            return self
                .array
                .array()
                .finish_stream(e.w, keep_old, self.bounded);
        }
        let Some(mut h) = self.held.take() else {
            return Ok(());
        };
        if let Some((pieces, written)) = h.fresh.take()
            && written < h.inside
        {
            self.wait_for(&h.index)?;
            let array = self.array.array();
            let mut old = array.read_chunk(&h.index)?.into_whole(
                array.chunk_shape(),
                array.order(),
                array.dir(),
            )?;
            for p in &pieces {
                old.slice_each_axis_mut(|d| p[d.axis.index()])
                    .assign(&h.chunk.slice_each_axis(|d| p[d.axis.index()]));
            }
            h.chunk = old;
        }
        let array = self.array.array();
        match &mut self.behind {
            Some(b) => b.write(array, h.index, h.chunk),
            None => array
                .write_encoded(&h.index, &h.chunk, self.bounded)
                .map(drop),
        }
    }

    /// Chunk `index` is read again: a write of it still on the other thread is waited for.
    fn wait_for(&mut self, index: &[usize]) -> Result<(), Error> {
        match &mut self.behind {
            Some(b) if b.writing(index) => b.drain(self.array.array()),
            _ => Ok(()),
        }
    }
}

impl<T: Element> Writer<T> for ZarrEncOut<'_, T> {
    fn shape(&self) -> Vec<usize> {
        self.array.array().shape().to_vec()
    }

    fn strides(&self) -> Vec<isize> {
        self.strides.clone()
    }

    /// Never mapped: the stream writes new files, so no operand can see its bytes change.
    fn span(&self) -> Operand {
        Operand::apart()
    }

    fn mapped_len(&self) -> usize {
        0
    }

    fn read_ahead(&self) -> Option<u64> {
        None
    }

    fn grid(&self) -> Option<Vec<usize>> {
        Some(self.array.array().chunk_shape().to_vec())
    }

    fn write_only(&mut self) {
        self.write_only = true;
    }

    fn start(
        &mut self,
        lead: &[isize],
        bounded: bool,
        _sequential: bool,
        chunks_in_order: bool,
        _write_through: Option<bool>,
    ) {
        self.bounded = bounded;
        let a = self.array.array();
        let cs = a.chunk_shape();
        let in_order = chunks_in_order && same_order(cs, &dense_strides(cs, a.order()), lead);
        // Only a chunk the operation writes whole, in order, can be encoded as it comes.
        self.streaming = self.write_only
            && a.streams_chunks()
            && streams(a, bounded, in_order, crate::map::room::memory_available());
        self.behind = match self.streaming {
            true => None,
            false => WriteBehind::new(a, bounded),
        };
    }

    /// Every chunk is checked before anything is written: readable as stored (sizes),
    /// and written inside the array's directory (no link on the way). Shards are written
    /// in place only, which encoded inner chunks cannot be.
    fn survey(&mut self) -> Result<Option<Survey>, Error> {
        let array = self.array.array();
        if array.shard_shape().is_some() {
            return Err(Error::Zarr {
                path: array.dir().to_path_buf(),
                problem: ZarrProblem::Unsupported {
                    what: "writing a sharded array whose inner chunks are compressed (shards \
                           are written in place only; write it without shards)"
                        .into(),
                },
            });
        }
        for f in array.survey()? {
            array.check_no_links(&f.path)?;
        }
        Ok(None)
    }

    fn enter(&mut self, region: &[Range<usize>]) -> Result<(), Error> {
        let (index, origin, _) = place(self.array.array().chunk_shape(), region);
        if self.held.as_ref().is_some_and(|h| h.index == index)
            || self.enc.as_ref().is_some_and(|e| e.index == index)
        {
            return Ok(());
        }
        self.leave()?;
        let inside = self.array.region(&index)?.iter().map(|r| r.len()).product();
        if self.streaming
            && let Some(w) = self.array.array().chunk_writer(&index, self.bounded)?
        {
            self.enc = Some(Encoding {
                w,
                index,
                origin,
                piece: Vec::new(),
                written: 0,
                inside,
            });
            return Ok(());
        }
        let spare = self.behind.as_mut().and_then(WriteBehind::spare);
        if !self.write_only {
            self.wait_for(&index)?;
        }
        let array = self.array.array();
        let chunk_shape = array.chunk_shape();
        // Only written: start from the fill value (what a chunk with no file holds), not
        // from a decode of the old chunk, which the stream will overwrite.
        let (chunk, fresh) = if self.write_only {
            let chunk = match spare {
                // A chunk of this array written already: same shape and order.
                Some(mut buf) => {
                    buf.fill(array.fill_value());
                    buf
                }
                None => crate::zarr::Chunk::fill_of(array, chunk_shape.len()).into_whole(
                    chunk_shape,
                    array.order(),
                    array.dir(),
                )?,
            };
            (chunk, Some((Vec::new(), 0)))
        } else {
            let old = array.read_chunk(&index)?;
            (
                old.into_whole(chunk_shape, array.order(), array.dir())?,
                None,
            )
        };
        self.held = Some(Held {
            index,
            origin,
            chunk,
            fresh,
            inside,
        });
        Ok(())
    }

    fn before(&mut self, _piece: &[Slice]) -> Result<(), Error> {
        Ok(())
    }

    fn piece(&mut self, piece: &[Slice]) -> ArrayViewMutD<'_, T> {
        if let Some(e) = &mut self.enc {
            // Computed into the scratch buffer, encoded by `after`.
            e.piece = relative(piece, &e.origin)
                .iter()
                .map(|s| {
                    (
                        s.start as usize,
                        (s.end.unwrap_or(s.start) - s.start) as usize,
                    )
                })
                .collect();
            let lens: Vec<usize> = e.piece.iter().map(|p| p.1).collect();
            return ScratchOf::<T>::view(&mut self.scratch, &lens, self.array.array().order());
        }
        let h = self
            .held
            .as_mut()
            .expect("the engine enters a region before it asks for its pieces");
        let rel = relative(piece, &h.origin);
        let v = h.chunk.slice_each_axis_mut(|d| rel[d.axis.index()]);
        if let Some((pieces, written)) = &mut h.fresh {
            *written += v.len();
            pieces.push(rel);
        }
        v
    }

    /// A piece computed into the scratch buffer of a chunk written as a stream is
    /// encoded, run by run in the chunk's order.
    fn after(&mut self) -> Result<(), Error> {
        let Some(e) = &mut self.enc else {
            return Ok(());
        };
        let a = self.array.array();
        let bytes = ScratchOf::<T>::bytes_mut(&mut self.scratch);
        let mut at = 0;
        for (offset, len) in runs(
            a.chunk_shape(),
            a.order(),
            &e.piece,
            std::mem::size_of::<T>(),
        ) {
            if let Err(err) = a.write_stream(&mut e.w, offset, &mut bytes[at..at + len]) {
                // The encoder may hold part of what failed: the chunk is given up whole
                // (its staged file goes), and the old one stays.
                self.enc = None;
                return Err(err);
            }
            at += len;
        }
        // Counted once encoded: a piece computed but never encoded (another operand failed
        // first) keeps its old values.
        e.written += e.piece.iter().map(|p| p.1).product::<usize>();
        Ok(())
    }

    /// The chunk the stream is in is written, done or not: what it did not reach holds
    /// its old values.
    fn finish(&mut self, _completed: bool) -> Result<(), Error> {
        let left = self.leave();
        let written = match &mut self.behind {
            Some(b) => b.drain(self.array.array()),
            None => Ok(()),
        };
        self.behind = None;
        left.and(written)
    }
}
