//! [`StreamOptions`]: chunk size, threads and the progress callback of one operation.

use std::fmt;
use std::ops::ControlFlow;

/// Default chunk size of the streaming path, in bytes of output (or of input, for the
/// reductions). Chosen by measurement (`benches/out_of_core.sh`): 4 to 8 MiB ran as fast
/// as larger chunks with nothing read twice. A bounded stream (see [`Paging`]) that writes
/// an output, with the chunk size left to the engine, takes smaller chunks, down to 1 MiB, when this one
/// and the kernel's read-ahead would fill more than 3/4 of the memory left: c = a + b
/// under a 64 MiB cgroup, with 8 MiB of read-ahead per input, peaks at 62 MiB with
/// 8 MiB chunks and 43 MiB with 2 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;

/// Under `Paging::Auto`, a stream over cached inputs into a new output maps at most this
/// many bytes in all, or it streams `Bounded` on a machine where memory taken anew is dear
/// (see `Paging::Auto`): below it, the output's pages cost less than the
/// waits for write-back that bound them. Measured with `benches/policy_matrix.sh` in a VM
/// whose host takes freed pages back, c = a + b: `Cached` was 1.7-2.3x faster than
/// `Bounded` at 48 MiB mapped (16 MiB per array); at 192 MiB it was 1.4x faster in one set
/// of runs and 1.6x slower in another; `Bounded` was 2.2x faster at 384 MiB, 2.5x at 1.5 GiB.
pub(crate) const SMALL_STREAM_BYTES: u64 = 64 << 20;

/// Below this many bytes of output per chunk, work stays on the calling thread.
pub(super) const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// How far a streaming operation has got: `done` of `total` bytes (of output for the
/// `*_into` functions, of input for the reductions).
///
/// ```
/// let p = ndarray_mmap::ops::Progress { done: 256, total: 1024 };
/// assert_eq!(p.fraction(), 0.25);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes processed so far.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

impl Progress {
    /// `done / total`, 1.0 when there is nothing to do.
    ///
    /// ```
    /// let p = ndarray_mmap::ops::Progress { done: 0, total: 0 };
    /// assert_eq!(p.fraction(), 1.0);
    /// ```
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        }
    }
}

pub(super) type ProgressFn<'a> = Box<dyn FnMut(Progress) -> ControlFlow<()> + 'a>;

/// Options for one streaming operation: chunk size, threads, progress and cancelling.
///
/// Built by value and consumed by the `*_with` functions.
///
/// ```
/// use std::ops::ControlFlow;
/// use ndarray_mmap::ops::{self, StreamOptions};
///
/// let a = ndarray::Array1::<u8>::from_elem(10_000, 3);
/// let mut c = ndarray::Array1::<u8>::zeros(10_000);
/// // Cancel after the first 4 KiB chunk.
/// let opts = StreamOptions::new().chunk_bytes(4096).progress(|p| {
///     if p.done >= 4096 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// });
/// let err = ops::map_into_with(&a, &mut c, |x| x * 2, opts).unwrap_err();
/// assert!(matches!(err, ndarray_mmap::Error::Cancelled { done: 4096, total: 10_000, .. }));
/// assert_eq!(c[4095], 6);
/// assert_eq!(c[4096], 0); // not reached: unchanged
/// ```
#[must_use]
pub struct StreamOptions<'a> {
    /// `None`: the engine's choice ([`DEFAULT_CHUNK_BYTES`], less under a tight limit).
    pub(super) chunk_bytes: Option<usize>,
    pub(super) parallel: bool,
    pub(super) progress: Option<ProgressFn<'a>>,
    pub(super) paging: Paging,
    /// `None`: the engine's choice (see [`StreamOptions::write_through`]).
    pub(super) write_through: Option<bool>,
    pub(super) read_through: bool,
}

/// What a stream hands to the file rather than the map: finished output pieces to
/// write-back ([`StreamOptions::write_through`]), input pieces read with `pread`
/// ([`StreamOptions::read_through`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Through {
    pub(super) write: Option<bool>,
    pub(super) read: bool,
}

/// How a stream treats the pages of mapped operands ([`StreamOptions::paging`]).
///
/// ```
/// use ndarray_mmap::ops::{Paging, StreamOptions};
/// let opts = StreamOptions::new().paging(Paging::Bounded);
/// assert!(format!("{opts:?}").contains("Bounded"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Paging {
    /// The default: decides at the start of each stream from what is true then.
    ///
    /// - [`Bounded`](Paging::Bounded) when the mapped inputs are mostly not in the page
    ///   cache (a `mincore` sample of each): cold data streams from the disk with
    ///   read-ahead in a few chunks of memory, whatever its size, and the pages it
    ///   brought in are dropped behind it, even when it would fit (keeping them would
    ///   cost memory and, measured, no time: the disk is the bound).
    /// - [`Bounded`](Paging::Bounded) too when the mapped operands do not fit in half the
    ///   memory available (the cgroup's room or the kernel's `MemAvailable`, whichever is
    ///   smaller), or that memory is unknown (not Linux).
    /// - [`Cached`](Paging::Cached) when warm inputs fit: every page is where it is used,
    ///   and leaving everything to the kernel is the fastest. A new output (its pages
    ///   mostly not in the page cache) that the operation only writes, in its file order,
    ///   is then written with `pwrite`: its pages go to the page cache (they count there,
    ///   and are written back) but never into the process. A mapped output of 16 MiB or
    ///   more is handed to write-back chunk by chunk from a helper thread (see
    ///   [`StreamOptions::write_through`]), so a flush or `close` after the stream
    ///   overlaps it. An output the operation reads too (in place), whose pages are not
    ///   cached, is a cold input here: `Bounded`. Measured with `benches/policy_matrix.sh` (`QUIET=1`): in the
    ///   page cache this was 1.1-1.5x faster than `Bounded`, which waits for the disk.
    /// - But [`Bounded`](Paging::Bounded) for a new output when memory taken anew is dear:
    ///   in a virtual machine whose host takes freed pages back (a virtio balloon that
    ///   reports free pages), every page of a big new output costs a fault in the host, and
    ///   recycling a few chunks of memory behind the stream was 2-3x faster than `Cached`
    ///   at 512 MiB per array. Streams that map 64 MiB or less in all (inputs and output)
    ///   stay `Cached` there too (1.7-2.3x faster than `Bounded` at 16 MiB per array).
    ///
    /// Under either choice, an output the operation only writes (`c = a + b`), laid out
    /// like the stream and mostly not in the page cache (a new file, or one on the disk
    /// only) is written with `pwrite` rather than through its map: its old pages are never
    /// read from the disk nor faulted into the process (Linux).
    ///
    /// Pages that were in the page cache before a stream stay there under either choice.
    /// [`Paging::decide_for`] says what it comes to, and why, in words.
    #[default]
    Auto,
    /// Keep memory bounded: input pages are dropped behind the stream (from the process,
    /// and from the page cache unless they were cached before it began), and output
    /// pages are written back as chunks finish, at most two chunks of dirty pages in
    /// flight. For arrays bigger than RAM.
    Bounded,
    /// Leave every page where the kernel puts it: no forced write-back (unless
    /// [`StreamOptions::write_through`] asks for it), nothing dropped. Fastest when
    /// everything fits in memory; the data reaches the disk when the kernel writes it
    /// back, or on `flush`.
    Cached,
}

impl Paging {
    /// What this policy comes to for a stream whose mapped operands hold `mapped` bytes,
    /// started now: [`Bounded`](Paging::Bounded) or [`Cached`](Paging::Cached), and why, in
    /// words (what the engine decides; `Auto` looks at the memory available now).
    ///
    /// ```
    /// use ndarray_mmap::ops::Paging;
    /// let (p, why) = Paging::Auto.choose(1 << 20);
    /// assert!(p == Paging::Cached || p == Paging::Bounded, "{why}");
    /// assert_eq!(Paging::Bounded.choose(1 << 20).0, Paging::Bounded);
    /// ```
    pub fn choose(self, mapped: u64) -> (Paging, String) {
        self.decide(mapped, true)
    }

    /// [`choose`](Self::choose), knowing whether the stream's mapped inputs are in the
    /// page cache (`inputs_cached`; see [`MmapArray::resident_share`]): under `Auto`,
    /// inputs mostly not cached stream [`Bounded`](Paging::Bounded) whatever their size
    /// (read ahead, dropped behind: a few chunks of memory), as the engine decides.
    ///
    /// [`MmapArray::resident_share`]: crate::MmapArray::resident_share
    ///
    /// ```
    /// use ndarray_mmap::ops::Paging;
    /// assert_eq!(Paging::Auto.decide(1 << 20, false).0, Paging::Bounded);
    /// assert_eq!(Paging::Cached.decide(1 << 20, false).0, Paging::Cached);
    /// ```
    pub fn decide(self, mapped: u64, inputs_cached: bool) -> (Paging, String) {
        self.decide_for(mapped, inputs_cached, true)
    }

    /// [`decide`](Self::decide), knowing also whether the pages of the stream's mapped
    /// output are in the page cache (`output_cached`; `true` when it writes no mapped
    /// output): under `Auto`, a new output (a new file, or one on the disk only) over warm
    /// inputs streams [`Bounded`](Paging::Bounded) on a machine where memory taken anew is
    /// dear and the stream maps more than 64 MiB, [`Cached`](Paging::Cached) elsewhere
    /// (see [`Paging::Auto`]). This is what the engine decides.
    ///
    /// ```
    /// use ndarray_mmap::ops::Paging;
    /// // Small, cached inputs, a new output: left to the kernel (where the memory available
    /// // is known: Linux).
    /// if cfg!(target_os = "linux") {
    ///     assert_eq!(Paging::Auto.decide_for(1 << 20, true, false).0, Paging::Cached);
    /// }
    /// assert_eq!(Paging::Auto.decide_for(0, true, false).0, Paging::Cached); // nothing mapped
    /// assert_eq!(Paging::Auto.decide_for(1 << 20, false, true).0, Paging::Bounded); // cold inputs
    /// assert_eq!(Paging::Bounded.decide_for(1 << 20, true, false).0, Paging::Bounded);
    /// ```
    pub fn decide_for(
        self,
        mapped: u64,
        inputs_cached: bool,
        output_cached: bool,
    ) -> (Paging, String) {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        use crate::map::room::{fresh_memory_dear, memory_available};
        let available = (mapped > 0).then(memory_available).flatten();
        match self {
            Paging::Bounded => (Paging::Bounded, "Bounded, as asked".into()),
            Paging::Cached => (Paging::Cached, "Cached, as asked".into()),
            // Bounded unless the mapped operands fit comfortably (in half) in the memory
            // available (the cgroup's limit, or MemAvailable), or unknown memory.
            Paging::Auto => match available {
                _ if mapped == 0 => (Paging::Cached, "Cached: no operand is mapped".into()),
                _ if !inputs_cached => (
                    Paging::Bounded,
                    format!(
                        "Bounded: the mapped inputs ({:.0} MiB in all with the outputs) are \
                         mostly not in the page cache, so they stream from the disk and are \
                         dropped behind it",
                        mib(mapped)
                    ),
                ),
                None => (
                    Paging::Bounded,
                    "Bounded: the memory available is not known here".into(),
                ),
                Some(m) if mapped > m / 2 => (
                    Paging::Bounded,
                    format!(
                        "Bounded: the mapped operands ({:.0} MiB) do not fit in half the memory \
                         available ({:.0} MiB)",
                        mib(mapped),
                        mib(m)
                    ),
                ),
                Some(_) if !output_cached && mapped > SMALL_STREAM_BYTES && fresh_memory_dear() => {
                    (
                        Paging::Bounded,
                        format!(
                            "Bounded: the output is not in the page cache, and memory taken anew is \
                         dear on this machine (its host takes freed pages back), so the output \
                         is written through the file and written back as the stream goes, in a \
                         few chunks of memory ({:.0} MiB mapped in all); cached inputs stay cached",
                            mib(mapped)
                        ),
                    )
                }
                Some(m) if !output_cached => (
                    Paging::Cached,
                    format!(
                        "Cached: the inputs are in the page cache and the mapped operands ({:.0} \
                         MiB) fit in half the memory available ({:.0} MiB); the new output goes \
                         to the page cache, written back as the stream goes",
                        mib(mapped),
                        mib(m)
                    ),
                ),
                Some(m) => (
                    Paging::Cached,
                    format!(
                        "Cached: the mapped operands ({:.0} MiB) fit in half the memory available \
                         ({:.0} MiB)",
                        mib(mapped),
                        mib(m)
                    ),
                ),
            },
        }
    }
}

impl Default for StreamOptions<'_> {
    fn default() -> Self {
        StreamOptions {
            chunk_bytes: None,
            parallel: cfg!(feature = "rayon"),
            progress: None,
            paging: Paging::Auto,
            write_through: None,
            read_through: false,
        }
    }
}

impl fmt::Debug for StreamOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamOptions")
            .field("chunk_bytes", &self.chunk_bytes)
            .field("parallel", &self.parallel)
            .field("paging", &self.paging)
            .field("write_through", &self.write_through)
            .field("read_through", &self.read_through)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> StreamOptions<'a> {
    /// Defaults: chunks of [`DEFAULT_CHUNK_BYTES`] (less for a bounded stream that writes,
    /// under a tight memory limit; see [`chunk_bytes`](Self::chunk_bytes)), parallel when the `rayon` feature is on,
    /// no progress callback.
    ///
    /// ```
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let total = ops::sum_with(&ndarray::array![1u32, 2, 3], StreamOptions::new())?;
    /// assert_eq!(total, 6);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of output (of input, for reductions) per chunk; at least one element is done
    /// per chunk whatever the value. Resident memory of the streaming path is a few
    /// chunks; progress is reported once per chunk. Unset, it is [`DEFAULT_CHUNK_BYTES`],
    /// or, for a bounded stream that writes an output, the largest power of two down to
    /// 1 MiB with which the stream and the kernel's read-ahead fit in 3/4 of the memory
    /// left. Reductions and folds keep [`DEFAULT_CHUNK_BYTES`]: the order in which they
    /// add depends on the chunks, and their results must not depend on the memory free.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let mut chunks = 0;
    /// let opts = StreamOptions::new()
    ///     .chunk_bytes(16) // 4 u32 per chunk: 10 elements take 3 chunks
    ///     .progress(|_| { chunks += 1; ControlFlow::Continue(()) });
    /// assert_eq!(ops::sum_with(&ndarray::Array1::<u32>::ones(10), opts)?, 10);
    /// assert_eq!(chunks, 3);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = Some(bytes);
        self
    }

    /// The chunk size set, or the default: for folds, whose results depend on the chunks
    /// (the engine would otherwise choose it from the memory free).
    pub(super) fn fixed_chunks(mut self) -> Self {
        self.chunk_bytes.get_or_insert(DEFAULT_CHUNK_BYTES);
        self
    }

    /// Whether a chunk may be split across threads (only with the `rayon` feature, and
    /// only for chunks of 1 MiB of output or more; on by default with the feature).
    ///
    /// ```
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let a = ndarray::Array1::<f64>::ones(1000);
    /// let mut c = ndarray::Array1::<f64>::zeros(1000);
    /// ops::map_into_with(&a, &mut c, |x| x * 3.0, StreamOptions::new().parallel(false))?;
    /// assert_eq!(c.sum(), 3000.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// How the pages of mapped operands are treated: [`Paging::Auto`] (the default),
    /// or forced [`Bounded`](Paging::Bounded) or [`Cached`](Paging::Cached).
    ///
    /// ```
    /// use ndarray_mmap::ops::{self, Paging, StreamOptions};
    /// let a = ndarray::array![1.0f32, 2.0];
    /// let s = ops::sum_with(&a, StreamOptions::new().paging(Paging::Cached))?;
    /// assert_eq!(s, 3.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn paging(mut self, paging: Paging) -> Self {
        self.paging = paging;
        self
    }

    /// Whether each finished chunk of a mapped output is handed to the kernel's write-back
    /// at once (without waiting), so that writing to the disk overlaps computing and a
    /// `flush` or `close` that follows finds most of the work done. A helper thread starts
    /// that write-back for maps of 16 MiB or more, so the stream's thread does not wait
    /// for it.
    ///
    /// **By default the engine decides:** on for outputs of 16 MiB or more (a Zarr
    /// array's whole size, however small its chunks), off below (their flush is short
    /// anyway). Measured with `benches/policy_matrix.sh` (one big map): on, a flush after
    /// the stream overlaps it; with no flush, the stream's time is unchanged and the kernel
    /// writes the pages a little earlier than it would have (extra disk writes only when
    /// the same bytes are written again before the kernel's own write-back, 30 s later).
    /// The chunks of a Zarr array under 16 MiB each are handed over by the stream's own
    /// thread, one call per chunk: with 1 MiB chunks (`benches/zarr_peers.sh`) the stream
    /// alone measured up to 20% slower, and the stream and its flush 25% faster. `false`
    /// keeps every page dirty in memory until the kernel or a flush writes it; `true`
    /// writes through whatever the size.
    ///
    /// Has no effect under [`Paging::Bounded`], which writes back as it goes anyway, and
    /// acts only where write-back can be started (Linux), on shared (not copy-on-write)
    /// maps written in their file order: an output laid out like the stream's chunking, or
    /// each Zarr chunk when the Zarr operands share one grid.
    ///
    /// ```
    /// use ndarray_mmap::{create_array, ops::{self, StreamOptions}};
    /// # let dir = tempfile::tempdir()?;
    /// let a = ndarray::Array1::<f32>::ones(1 << 20);
    /// let mut c = unsafe { create_array::<f32>(dir.path().join("c.f32"), [1 << 20]) }?;
    /// ops::map_into_with(&a, &mut c, |x| x * 2.0, StreamOptions::new().write_through(true))?;
    /// c.flush()?; // finds the pages written back already, or on their way
    /// assert_eq!(c.view()[7], 2.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_through(mut self, write_through: bool) -> Self {
        self.write_through = Some(write_through);
        self
    }

    /// Under [`Paging::Bounded`], reads each dense piece of a mapped input (raw, `.npy`,
    /// a Zarr chunk) through the file with `pread` into a buffer, instead of through the
    /// map: a file another program truncates behind the advisory locks is then always an
    /// [`Error::Unreadable`](crate::Error::Unreadable), never a SIGBUS that ends the
    /// process (through the map, a truncation between a piece's prefault and its last
    /// touch still raises one). Off by default: it copies every input byte once more and
    /// holds a buffer per input, which cost 13% of the time of an out-of-core add and 17
    /// MiB more memory here (`benches/results.md`). No effect under
    /// [`Paging::Cached`], nor on copy-on-write maps (the file may lack their writes).
    ///
    /// ```
    /// use ndarray_mmap::{create_array, mmap_array, ops::{self, Paging, StreamOptions}};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.f32");
    /// # drop(unsafe { create_array::<f32>(&path, [1 << 16]) }?);
    /// let a = unsafe { mmap_array::<f32>(&path, [-1]) }?;
    /// let opts = StreamOptions::new().paging(Paging::Bounded).read_through(true);
    /// assert_eq!(ops::sum_with(&a, opts)?, 0.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_through(mut self, read_through: bool) -> Self {
        self.read_through = read_through;
        self
    }

    /// Calls `f` after each chunk with the bytes done so far. Returning
    /// `ControlFlow::Break(())` cancels the operation, which then returns
    /// [`Error::Cancelled`](crate::Error::Cancelled): the chunks done so far are written (the first `done` bytes
    /// of the output in its memory order), the rest of the output is unchanged.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use ndarray_mmap::ops::{self, StreamOptions};
    /// let mut last = 0.0;
    /// let opts = StreamOptions::new()
    ///     .chunk_bytes(400)
    ///     .progress(|p| { last = p.fraction(); ControlFlow::Continue(()) });
    /// ops::sum_with(&ndarray::Array1::<f32>::ones(1000), opts)?;
    /// assert_eq!(last, 1.0);
    /// # Ok::<(), ndarray_mmap::Error>(())
    /// ```
    pub fn progress(mut self, f: impl FnMut(Progress) -> ControlFlow<()> + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
}

#[cfg(all(test, target_os = "linux", not(miri)))] // reads /proc and /sys
mod tests {
    use super::*;
    use crate::map::room::{fresh_memory_dear, memory_available};

    /// The rules of `Paging::Auto` for a stream into a new output (issue 19): cold inputs
    /// stream `Bounded`; warm ones over a small stream stay `Cached`; over a big one that
    /// fits, `Cached` unless memory taken anew is dear on this machine.
    #[test]
    fn auto_decides_a_new_output_by_size_and_by_what_fresh_memory_costs() {
        let decide = |mapped, warm| Paging::Auto.decide_for(mapped, warm, false);
        let small = SMALL_STREAM_BYTES;
        assert_eq!(decide(small, false).0, Paging::Bounded, "cold inputs");
        let (p, why) = decide(small, true);
        assert_eq!(p, Paging::Cached, "a small stream: {why}");
        let room = memory_available().expect("Linux knows its memory");
        let big = 4 * small;
        // Well clear of the "fits in half the memory available" line either way, which
        // moves as the memory available does between two readings.
        if room / 2 > 2 * big {
            let (p, why) = decide(big, true);
            let want = if fresh_memory_dear() {
                Paging::Bounded
            } else {
                Paging::Cached
            };
            assert_eq!(p, want, "{why}");
            assert!(why.contains("dear") == (want == Paging::Bounded), "{why}");
        } else if room / 2 < big / 2 {
            assert_eq!(
                decide(big, true).0,
                Paging::Bounded,
                "no room for {big} bytes"
            );
        }
        // Too big for the memory: bounded whatever fresh memory costs.
        assert_eq!(decide(room, true).0, Paging::Bounded);
    }
}
