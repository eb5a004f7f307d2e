//! (zarr) A chunked array's work beside the stream: chunks read and decoded (or mapped and
//! brought into memory) ahead of it ([`ReadAhead`]) and compressed chunks encoded and
//! written behind it ([`WriteBehind`]), on threads of their own, so that decoding, paging,
//! computing and encoding overlap and use every core. What is in flight is bounded
//! ([`threads`]: a chunk per thread, as many threads as cores up to 4, fewer where the
//! chunks in flight would take more than a quarter of the memory left, none on one
//! core), and the stream takes every result in order, errors
//! included: a chunk read ahead fails the stream only when the stream reaches it, and a
//! chunk written behind fails it at a later write or at the end.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use ndarray::ArrayD;

use super::{Array, Chunk};
use crate::element::Element;
use crate::error::Error;

type Job<R> = Box<dyn FnOnce() -> R + Send>;

/// A thread that runs jobs one after another; their results are taken in the same order.
struct Worker<R> {
    jobs: Option<mpsc::Sender<Job<R>>>,
    results: mpsc::Receiver<R>,
    thread: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> Worker<R> {
    /// `None` when no thread can be started (the caller then works on its own thread).
    fn spawn(name: &str) -> Option<Self> {
        let (jobs, queue) = mpsc::channel::<Job<R>>();
        let (done, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for job in queue {
                    if done.send(job()).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Worker {
            jobs: Some(jobs),
            results,
            thread: Some(thread),
        })
    }

    /// Queues `job`; `false` when the thread is gone.
    fn submit(&self, job: Job<R>) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// The result of the oldest job not taken yet (waiting for it); `None` when the thread
    /// stopped without one.
    fn take(&self) -> Option<R> {
        self.results.recv().ok()
    }
}

impl<R> Drop for Worker<R> {
    /// Waits for the jobs queued (a bounded few) and the thread.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            // A job that panicked has stopped the thread; its result was never taken.
            let _ = t.join();
        }
    }
}

/// A few workers taking jobs in turn; results are taken in the order the jobs were given.
/// A worker's thread starts with its first job (a stream over one chunk starts none).
struct Pool<R> {
    workers: Vec<Worker<R>>,
    /// How many workers the pool may have.
    size: usize,
    name: &'static str,
    turn: usize,
    /// The worker of each job not taken yet, oldest first.
    queue: VecDeque<usize>,
}

impl<R: Send + 'static> Pool<R> {
    fn spawn(name: &'static str, n: usize) -> Option<Self> {
        (n > 0).then(|| Pool {
            workers: Vec::new(),
            size: n,
            name,
            turn: 0,
            queue: VecDeque::new(),
        })
    }

    /// The pool for the chunk work of `array`: `None` when [`threads`] allows none.
    fn for_array<T: Element>(array: &Array<T>, name: &'static str) -> Option<Self> {
        let n = threads(array.chunk_bytes(), crate::map::room::memory_available());
        Self::spawn(name, n)
    }

    fn size(&self) -> usize {
        self.size
    }

    /// Queues `job` on the next worker; `false` when that worker's thread is gone or
    /// cannot start.
    fn submit(&mut self, job: Job<R>) -> bool {
        let w = self.turn;
        if w == self.workers.len() {
            let Some(worker) = Worker::spawn(self.name) else {
                return false;
            };
            self.workers.push(worker);
        }
        self.turn = (w + 1) % self.size;
        let sent = self.workers[w].submit(job);
        if sent {
            self.queue.push_back(w);
        }
        sent
    }

    /// The oldest job's result (waiting for it); `None` when none is queued or its thread
    /// stopped without one.
    fn take(&mut self) -> Option<R> {
        let w = self.queue.pop_front()?;
        self.workers[w].take()
    }
}

/// How many threads a coded operand of a stream gets, each with up to [`QUEUED`] chunks of
/// `chunk_bytes` in flight: one per core up to 4, fewer while the chunks in flight and the
/// one in use (up to four operands') would take more than a quarter of the memory `room`
/// left (1 GiB when unknown); none on one core. Two cores and 128 MiB of room: 2 threads
/// for chunks up to 2 MiB, 1 for 3 MiB, none from 4 MiB; 4 GiB of room: 2 threads for
/// 64 MiB chunks.
pub(crate) fn threads(chunk_bytes: u64, room: Option<u64>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        return 0;
    }
    // Unknown memory (off Linux): as if 1 GiB were left.
    let room = room.unwrap_or(1 << 30);
    let mut n = cores.min(4);
    while n > 0 && 4 * (QUEUED * n as u64 + 1) * chunk_bytes >= room / 4 {
        n -= 1;
    }
    n
}

/// The chunks each thread has in flight. Two (a thread that finishes one goes on with the
/// next while the stream waits for another's) measured no faster than one and held more.
const QUEUED: u64 = 1;

/// The error of a chunk whose worker thread stopped without its result.
fn stopped(array: &Array<impl Element>, what: &'static str) -> Error {
    Error::io(
        array.dir(),
        what,
        std::io::Error::other("the thread that coded its chunks stopped"),
    )
}

/// Chunks of a coded array read and decoded on a thread of their own, ahead of the stream.
pub(crate) struct ReadAhead<T> {
    pool: Pool<Result<Chunk<T>, Error>>,
    /// The thread's own handle of the array (its own shard index cache).
    reader: Arc<Array<T>>,
    /// The chunks asked for, oldest first.
    pending: VecDeque<Vec<usize>>,
    /// Stored bytes not cached before are dropped after they are read (a bounded stream).
    leave_cold: bool,
    /// Buffers of chunks the stream is done with, for the next reads.
    spare: Vec<Vec<T>>,
}

impl<T: Element> ReadAhead<T> {
    /// A reader ahead for `array`, when [`threads`] allows any, and its chunks are coded
    /// or the stream is not bounded (`leave_cold`: see [`Array::read_chunk_into`]).
    ///
    /// A chunk that maps is mapped and its pages brought in (`MADV_POPULATE_READ`) ahead:
    /// the page tables of a small chunk cost more than summing it, and they are filled on
    /// another core meanwhile. A bounded stream maps its chunks as it goes, so that its
    /// pages are released behind it.
    pub(crate) fn new(array: &Array<T>, leave_cold: bool) -> Option<Self> {
        if leave_cold && !array.is_coded() {
            return None;
        }
        Some(ReadAhead {
            pool: Pool::for_array(array, "ndarray-mmap zarr read")?,
            reader: Arc::new(array.handle()),
            pending: VecDeque::new(),
            leave_cold,
            spare: Vec::new(),
        })
    }

    /// Chunk `index`, when it was read ahead; the chunks asked for before it, which the
    /// stream passed by, are dropped. `None`: it was not asked for.
    pub(crate) fn take(&mut self, index: &[usize]) -> Option<Result<Chunk<T>, Error>> {
        if !self.pending.contains(&index.to_vec()) {
            return None;
        }
        while let Some(front) = self.pending.pop_front() {
            let r = self.pool.take();
            if front == index {
                return Some(r.unwrap_or_else(|| Err(stopped(&self.reader, "read a chunk of"))));
            }
        }
        None
    }

    /// Asks for the chunks after `index` (in the order `next` gives) until each thread
    /// has [`QUEUED`].
    pub(crate) fn ahead(&mut self, index: &[usize], next: impl Fn(&[usize]) -> Option<Vec<usize>>) {
        let mut last = self
            .pending
            .back()
            .cloned()
            .unwrap_or_else(|| index.to_vec());
        while self.pending.len() < self.in_flight() {
            let Some(n) = next(&last) else {
                return;
            };
            let reader = Arc::clone(&self.reader);
            let at = n.clone();
            let (spare, cold) = (self.spare.pop(), self.leave_cold);
            let read = move || {
                let chunk = reader.read_chunk_into(&at, spare, cold)?;
                if let (Some(m), _) = chunk.mapped() {
                    let (_, pages) = m.stream_parts();
                    pages.prefault(0, m.as_bytes().len(), false)?;
                }
                Ok(chunk)
            };
            if !self.pool.submit(Box::new(read)) {
                return;
            }
            self.pending.push_back(n.clone());
            last = n;
        }
    }
}

impl<T: Element> ReadAhead<T> {
    fn in_flight(&self) -> usize {
        self.pool.size() * QUEUED as usize
    }

    /// A buffer for a read of the stream's own (a chunk that was not read ahead).
    pub(crate) fn spare(&mut self) -> Option<Vec<T>> {
        self.spare.pop()
    }

    /// The stream is done with `chunk`: its buffer (a decoded chunk's) serves a later read.
    pub(crate) fn recycle(&mut self, chunk: Chunk<T>) {
        if self.spare.len() < self.in_flight()
            && let Some(buf) = chunk.into_buffer()
        {
            self.spare.push(buf);
        }
    }
}

/// Chunks of a coded array encoded and written on threads of their own, behind the
/// stream: one per thread in flight while the stream fills the next.
pub(crate) struct WriteBehind<T> {
    pool: Pool<Result<ArrayD<T>, Error>>,
    writer: Arc<Array<T>>,
    /// The chunks on the threads, oldest first.
    pending: VecDeque<Vec<usize>>,
    /// Buffers of chunks written, for the next chunks.
    spare: Vec<ArrayD<T>>,
    /// Files written are written back at once and dropped from the page cache.
    leave_cold: bool,
}

impl<T: Element> WriteBehind<T> {
    /// A writer behind for `array`, when its chunks are coded and [`threads`] allows any;
    /// `leave_cold`: see [`Array::write_encoded`].
    pub(crate) fn new(array: &Array<T>, leave_cold: bool) -> Option<Self> {
        if !array.is_coded() {
            return None;
        }
        Some(WriteBehind {
            pool: Pool::for_array(array, "ndarray-mmap zarr write")?,
            // (Its files count for `array`'s flush as soon as they are in place.)
            writer: Arc::new(array.writer()),
            pending: VecDeque::new(),
            spare: Vec::new(),
            leave_cold,
        })
    }

    /// Encodes `chunk` (whole, in the chunk's order) and replaces chunk `index`'s file with
    /// it on a thread, once a thread is free (the oldest write's error, if any, is returned
    /// now; this chunk is written all the same).
    pub(crate) fn write(
        &mut self,
        array: &Array<T>,
        index: Vec<usize>,
        chunk: ArrayD<T>,
    ) -> Result<(), Error> {
        // An older write's error does not keep this chunk from being written: the stream
        // stops, and what it computed reaches the file.
        let older = match self.pending.len() >= self.pool.size() * QUEUED as usize {
            true => self.collect(array),
            false => Ok(()),
        };
        let writer = Arc::clone(&self.writer);
        let (at, cold) = (index.clone(), self.leave_cold);
        let job = move || writer.write_encoded(&at, &chunk, cold).map(|_| chunk);
        if !self.pool.submit(Box::new(job)) {
            return older.and(Err(stopped(array, "write a chunk of")));
        }
        self.pending.push_back(index);
        older
    }

    /// The oldest write's result (its file counted for `array`'s flush by the writer
    /// thread already: see [`Array::writer`]), its buffer kept for the next chunk.
    fn collect(&mut self, array: &Array<T>) -> Result<(), Error> {
        self.pending.pop_front();
        let buf = self
            .pool
            .take()
            .unwrap_or_else(|| Err(stopped(array, "write a chunk of")))?;
        if self.spare.len() < self.pool.size() * QUEUED as usize {
            self.spare.push(buf);
        }
        Ok(())
    }

    /// Waits for every write: the first error, if any.
    pub(crate) fn drain(&mut self, array: &Array<T>) -> Result<(), Error> {
        let mut first = Ok(());
        while !self.pending.is_empty() {
            let r = self.collect(array);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Whether chunk `index` is being written on the thread.
    pub(crate) fn writing(&self, index: &[usize]) -> bool {
        self.pending.iter().any(|p| p == index)
    }

    /// A buffer of a chunk written already, to fill anew.
    pub(crate) fn spare(&mut self) -> Option<ArrayD<T>> {
        self.spare.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_bounded_by_the_cores_and_the_room() {
        const MIB: u64 = 1 << 20;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let want = |n: usize| if cores < 2 { 0 } else { n.min(cores).min(4) };
        assert_eq!(threads(MIB, None), want(4));
        assert_eq!(threads(64 * MIB, None), 0); // unknown room: as if 1 GiB
        // 128 MiB of room: a quarter is 32 MiB; four operands of 2 MiB chunks with 2
        // threads hold 4 x 6 MiB; of 3 MiB chunks with 1 thread, 4 x 6 MiB; of 4 MiB with
        // 1 thread, 32 MiB: none.
        assert_eq!(threads(2 * MIB, Some(128 << 20)), want(2));
        assert_eq!(threads(3 * MIB, Some(128 << 20)), want(1));
        assert_eq!(threads(4 * MIB, Some(128 << 20)), 0);
        assert_eq!(threads(64 * MIB, Some(4 << 30)), want(2));
    }

    #[test]
    fn a_pool_takes_results_in_the_order_given() {
        let mut p = Pool::<usize>::spawn("test", 3).expect("threads");
        for k in 0..10usize {
            assert!(p.submit(Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis((10 - k as u64) % 4));
                k
            })));
        }
        let got: Vec<_> = (0..10).map(|_| p.take()).collect();
        assert_eq!(got, (0..10).map(Some).collect::<Vec<_>>());
        assert_eq!(p.take(), None);
    }

    #[test]
    fn a_pool_starts_a_thread_only_for_work() {
        let mut p = Pool::<usize>::spawn("test", 3).expect("a pool");
        assert_eq!(p.workers.len(), 0);
        assert!(p.submit(Box::new(|| 7)));
        assert_eq!((p.workers.len(), p.take()), (1, Some(7)));
        for k in 0..5 {
            assert!(p.submit(Box::new(move || k)));
        }
        assert_eq!(p.workers.len(), 3);
        assert!(Pool::<usize>::spawn("test", 0).is_none());
    }

    #[test]
    fn a_worker_returns_results_in_order_and_says_when_it_stopped() {
        let w = Worker::<usize>::spawn("test").expect("a thread");
        for k in 0..5 {
            assert!(w.submit(Box::new(move || k * k)));
        }
        let got: Vec<_> = (0..5).map(|_| w.take()).collect();
        assert_eq!(got, [0, 1, 4, 9, 16].map(Some));
        assert!(w.submit(Box::new(|| panic!("a job that panics"))));
        assert_eq!(w.take(), None);
    }
}
