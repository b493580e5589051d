//! One direction of one proxied connection: a reader thread fills the
//! bounded bottleneck buffer from the source socket, and a sender thread
//! releases it at the shape's current rate and delivers each released chunk
//! to the destination socket after the one-way delay.
//!
//! The rate is a virtual clock (GCRA): a chunk of `n` bytes may leave at
//! `next`, which then moves on by `n / rate`, so oversleeping does not
//! accumulate into a lower rate; after idling the sender may be at most one
//! quantum ahead (the burst). When the buffer is full the reader stops
//! reading, so the back-pressure reaches the sending peer's socket.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Counters;
use crate::spec::Shape;

/// Bytes released but not yet delivered, at most (only reachable with an
/// unlimited rate and a delay).
const MAX_IN_FLIGHT: usize = 4 * 1024 * 1024;

/// How late a wake-up may be without costing rate: the virtual clock may
/// lag the real one by this much (or one quantum, if longer), which is also
/// the largest burst after idling.
const MAX_LATENESS: Duration = Duration::from_millis(50);

/// The largest single read from the source.
const READ_CHUNK: usize = 16 * 1024;

/// How the source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still open.
    Open,
    /// Orderly end of stream (FIN): deliver what is queued, then half-close.
    Eof,
    /// An error (reset) or a stop: drop what is queued, close both ways.
    Abort,
}

/// The bottleneck buffer shared by a direction's two threads.
struct Bottleneck {
    buf: VecDeque<u8>,
    bound: usize,
    end: End,
}

/// A direction's shared state.
pub(super) struct Pipe {
    q: Mutex<Bottleneck>,
    cv: Condvar,
    counters: Arc<Counters>,
}

impl Pipe {
    /// A pipe with an empty buffer of `bound` bytes, counting into `counters`.
    pub(super) fn new(bound: usize, counters: Arc<Counters>) -> Arc<Pipe> {
        let q = Bottleneck { buf: VecDeque::new(), bound, end: End::Open };
        Arc::new(Pipe { q: Mutex::new(q), cv: Condvar::new(), counters })
    }

    fn lock(&self) -> MutexGuard<'_, Bottleneck> {
        self.q.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes both threads finish soon (the sockets are shut down separately).
    pub(super) fn stop(&self) {
        self.lock().end = End::Abort;
        self.cv.notify_all();
    }

    fn finish(&self, end: End) {
        let mut q = self.lock();
        if q.end == End::Open {
            q.end = end;
        }
        self.cv.notify_all();
    }

    /// The reader thread's body: source socket into the buffer until the
    /// source ends or the pipe stops.
    pub(super) fn read_loop(&self, mut src: &TcpStream) {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let room = {
                let mut q = self.lock();
                while q.end == End::Open && q.buf.len() >= q.bound {
                    q = self.cv.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if q.end != End::Open {
                    return;
                }
                (q.bound - q.buf.len()).min(READ_CHUNK)
            };
            let n = match src.read(&mut chunk[..room]) {
                Ok(0) => return self.finish(End::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.finish(End::Abort),
            };
            let mut q = self.lock();
            if q.end != End::Open {
                return;
            }
            q.buf.extend(&chunk[..n]);
            self.counters.bytes_in.fetch_add(n as u64, Relaxed);
            self.counters.queued.fetch_add(n as u64, Relaxed);
            self.counters.max_queued.fetch_max(q.buf.len() as u64, Relaxed);
            self.cv.notify_all();
        }
    }
}

/// The sender thread's state.
pub(super) struct Sender {
    pipe: Arc<Pipe>,
    shape: Shape,
    started: Instant,
    /// When the next chunk may leave.
    next: Instant,
    /// Released chunks with the time each is due at the destination.
    line: VecDeque<(Instant, Vec<u8>)>,
    in_flight: usize,
    /// Whether the queue had bytes left after the last release.
    backlogged: bool,
}

impl Sender {
    /// A sender for `pipe` shaped by `shape`, whose schedule counts from `started`.
    pub(super) fn new(pipe: Arc<Pipe>, shape: Shape, started: Instant) -> Sender {
        Sender {
            pipe,
            shape,
            started,
            next: Instant::now(),
            line: VecDeque::new(),
            in_flight: 0,
            backlogged: false,
        }
    }

    /// The sender thread's body. At the end it half-closes `dst` after an
    /// orderly end, or shuts both sockets down after an error.
    pub(super) fn run(mut self, src: &TcpStream, mut dst: &TcpStream) {
        let end = self.pump(&mut dst);
        if end != End::Eof {
            // First, so that the reader adds nothing after the count below.
            self.pipe.stop();
        }
        let left = std::mem::take(&mut self.pipe.lock().buf);
        let c = &self.pipe.counters;
        c.queued.fetch_sub(left.len() as u64, Relaxed);
        c.in_flight.fetch_sub(self.in_flight as u64, Relaxed);
        if end == End::Eof {
            let _ = dst.shutdown(Shutdown::Write);
        } else {
            let _ = dst.shutdown(Shutdown::Both);
            let _ = src.shutdown(Shutdown::Both);
        }
    }

    /// Releases and delivers until the source has ended and everything it
    /// sent has been delivered, or something failed; returns how it ended.
    fn pump(&mut self, dst: &mut &TcpStream) -> End {
        loop {
            let now = Instant::now();
            while self.line.front().is_some_and(|(due, _)| *due <= now) {
                let Some((_, chunk)) = self.line.pop_front() else { break };
                if dst.write_all(&chunk).is_err() {
                    return End::Abort;
                }
                self.in_flight -= chunk.len();
                let c = &self.pipe.counters;
                c.in_flight.fetch_sub(chunk.len() as u64, Relaxed);
                c.bytes_out.fetch_add(chunk.len() as u64, Relaxed);
            }
            let (kbps, delay) = self.shape.at(now.duration_since(self.started));
            let pipe = Arc::clone(&self.pipe);
            let mut q = pipe.lock();
            match q.end {
                End::Abort => return End::Abort,
                End::Eof if q.buf.is_empty() && self.line.is_empty() => return End::Eof,
                _ => {}
            }
            let can_release = !q.buf.is_empty() && self.in_flight < MAX_IN_FLIGHT;
            if can_release && self.next <= now {
                let n = q.buf.len().min(quantum(kbps));
                let chunk: Vec<u8> = q.buf.drain(..n).collect();
                let backlogged = std::mem::replace(&mut self.backlogged, !q.buf.is_empty());
                pipe.counters.queued.fetch_sub(n as u64, Relaxed);
                pipe.cv.notify_all();
                drop(q);
                self.release(now, (kbps, delay), backlogged, chunk);
                continue;
            }
            let wake_release = can_release.then_some(self.next);
            let wake_deliver = self.line.front().map(|(due, _)| *due);
            match wake_release.into_iter().chain(wake_deliver).min() {
                Some(at) => drop(pipe.cv.wait_timeout(q, at.saturating_duration_since(now))),
                None => drop(pipe.cv.wait(q)),
            }
        }
    }

    /// Puts a released chunk on the delay line and moves the virtual clock.
    fn release(&mut self, now: Instant, (kbps, delay): (u32, Duration), backlogged: bool, chunk: Vec<u8>) {
        if kbps > 0 {
            let bytes_per_sec = f64::from(kbps) * 125.0;
            let burst = Duration::from_secs_f64(quantum(kbps) as f64 / bytes_per_sec);
            let lag = if backlogged { burst.max(MAX_LATENESS) } else { burst };
            let from = self.next.max(now.checked_sub(lag).unwrap_or(now));
            self.next = from + Duration::from_secs_f64(chunk.len() as f64 / bytes_per_sec);
        }
        // FIFO even when the delay shrinks: a byte stream cannot reorder.
        let due = (now + delay).max(self.line.back().map_or(now, |(d, _)| *d));
        self.in_flight += chunk.len();
        self.pipe.counters.in_flight.fetch_add(chunk.len() as u64, Relaxed);
        self.line.push_back((due, chunk));
    }
}

/// The most bytes released at once: one 1500-byte packet, or 2 ms worth at
/// high rates (so the release timing stays above the sleep granularity);
/// 64 KiB when unlimited.
fn quantum(kbps: u32) -> usize {
    if kbps == 0 {
        return 64 * 1024;
    }
    (kbps as usize * 125 / 500).max(1500)
}
