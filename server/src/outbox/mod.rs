//! A client's bounded outbound queue and the writer thread that drains it.
//!
//! Every client has one [`Outbox`]. Any thread may push into it (its own
//! session, its peer's session, the registry on behalf of anyone); only the
//! client's own writer thread, started by [`spawn_writer`], writes to its
//! socket. So no thread ever blocks on someone else's socket.
//!
//! Three lanes, drained in priority order: control lines, then audio, then
//! video. Frames are never split, so the wire stays well formed. Control lines
//! always go before media, which keeps `start` ahead of the call's first frame
//! and keeps chat and signalling snappy on a congested link; media of an ended
//! call is purged, so nothing of it follows `stop`.
//!
//! The drop policy lives in [`Outbox::push_media`], under the outbox's own
//! lock:
//! * video is dropped from the moment the queued media is older than
//!   `max_queue_ms` or larger than `max_queue_bytes`, together with the queued
//!   rest of the current group of pictures, until the next keyframe; the
//!   caller is told to ask the sender for a keyframe;
//! * a receiver that stays congested gets fewer keyframes: when congestion
//!   (an old queue, not merely a full one) comes back within [`STILL_SLOW`] of
//!   video resuming, the pause before video
//!   may resume doubles (up to [`KEYFRAME_BACKOFF_MAX`] × `max_queue_ms`).
//!   During the pause every video frame is dropped, keyframes included, and no
//!   keyframe is asked for; then one is asked for, and the first keyframe that
//!   arrives while the queue is short resumes video. On a link too slow for
//!   the video, this keeps large keyframes, which audio must wait behind
//!   (a frame is never interrupted), from taking most of the link;
//! * on a slow link, video is paced (see [`crate::pacing`]): the writer holds
//!   it back while the socket still has unsent bytes, so audio that comes
//!   meanwhile overtakes it instead of waiting behind a frame in the kernel;
//!   and a big frame (one that takes over [`pacing::BIG_FRAME`] to drain at
//!   the measured rate, in practice a keyframe) that comes less than
//!   [`pacing::BIG_FRAME_GAP`] after the last big one is dropped like
//!   congestion, with the pause lasting until that gap is over. Each big
//!   frame delays the audio behind it by its drain time; spacing them keeps
//!   that to a few percent of the audio, and the gap is also the longest a
//!   receiver that speeds up waits for video;
//! * audio is dropped, oldest first, only past `max_audio_queue_ms` or the byte cap;
//! * control lines are never dropped: past `max_control_bytes` the outbox is
//!   closed and the client disconnected.
//!
//! The writer also decides, from the same socket samples, when the peer (the
//! sender) must hear `rate` (see [`crate::feedback`]); it keeps sampling
//! while video is dropped or a limit is in force, so that neither the
//! estimate nor the limit outlives the backlog.
//!
//! Lock order: the registry lock, then a client's peer slot, then an outbox
//! lock. The outbox lock is a leaf; nothing is locked while holding it.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, MediaKind};

use crate::feedback::{self, Feedback};
use crate::pacing::{self, Gate, Pacer, Sample};

mod batch;
mod direct;
mod senders;
mod writer;

pub use direct::{DIRECT_STALL, Direct, DirectWrite};
pub use writer::{spawn_drain, spawn_writer};

/// A media frame as it goes on the wire: its header line and payload in one buffer.
#[derive(Debug)]
pub struct MediaFrame {
    /// The party that sent it.
    pub from: ClientId,
    /// Audio or video.
    pub kind: MediaKind,
    /// A keyframe (video) or independent packet (audio).
    pub key: bool,
    /// Header line and payload, ready to write.
    pub bytes: Vec<u8>,
}

/// The limits of one outbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Queued media older than this starts the video drop.
    pub max_queue: Duration,
    /// Queued media bytes above this start the video drop.
    pub max_queue_bytes: usize,
    /// Queued audio older than this is dropped.
    pub max_audio_queue: Duration,
    /// Queued control bytes above this disconnect the client.
    pub max_control_bytes: usize,
    /// When false (benchmarks only), media is never dropped; pushing blocks instead.
    pub drop_policy: bool,
}

impl Limits {
    /// The limits the server's flags set for every client.
    pub fn of(config: &crate::config::Config) -> Limits {
        Limits {
            max_queue: Duration::from_millis(config.max_queue_ms),
            max_queue_bytes: config.max_queue_bytes,
            max_audio_queue: Duration::from_millis(config.max_audio_queue_ms),
            max_control_bytes: config.max_control_bytes,
            drop_policy: !config.no_drop_policy,
        }
    }
}

/// What happened to a pushed media frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the receiver.
    Queued,
    /// Dropped by the policy.
    Dropped,
    /// Dropped, and the sender should be asked for a keyframe now.
    DroppedNeedKeyframe,
    /// The receiver is gone.
    Closed,
}

/// Counters for one receiver, logged when a call ends and when it leaves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Video frames queued for this client.
    pub video_queued: u64,
    /// Audio packets queued for this client.
    pub audio_queued: u64,
    /// Video frames dropped for this client.
    pub video_dropped: u64,
    /// Audio packets dropped for this client.
    pub audio_dropped: u64,
    /// Keyframe requests made on this client's behalf.
    pub keyframe_requests: u64,
    /// Video frames spliced from the sender's socket to this client's,
    /// never copied through the server (see [`Outbox::begin_direct`]).
    pub video_spliced: u64,
    /// Video frames a splice started and the writer thread finished, because
    /// the socket could not take them at once.
    pub video_spilled: u64,
}

struct Timed {
    at: Instant,
    frame: MediaFrame,
}

#[derive(Default)]
struct State {
    control: VecDeque<Vec<u8>>,
    audio: VecDeque<Timed>,
    video: VecDeque<Timed>,
    control_bytes: usize,
    media_bytes: usize,
    dropping_video: bool,
    /// Each sender's video since the last congestion (see [`senders`]).
    senders: senders::Senders,
    /// Video stays dropped, keyframes included, until then (the backoff).
    paused_until: Option<Instant>,
    /// The current backoff pause; zero when the receiver kept up last time.
    backoff: Duration,
    /// When video last resumed after a drop.
    resumed_at: Option<Instant>,
    /// The receiver's drain rate, and whether video must wait for the socket.
    pacer: Pacer,
    /// What the peer is told about that rate during a call.
    feedback: Feedback,
    /// When the writer last sampled the socket.
    sampled_at: Option<Instant>,
    /// No more pushes; the writer drains the control lane, then exits.
    closing: bool,
    /// The writer has exited; nothing more will be written.
    closed: bool,
    /// The writer holds a batch it is writing: nobody else may write.
    writing: bool,
    /// A pusher is writing a frame to the socket itself (a [`DirectWrite`]):
    /// nobody else may write.
    direct: bool,
    /// The unwritten rest of a frame a pusher started to write itself; it
    /// goes before anything else so the wire stays well formed.
    partial: Option<(Vec<u8>, usize)>,
    stats: Stats,
}

impl State {
    /// Takes no more pushes and forgets everything queued.
    fn drop_everything(&mut self) {
        self.closing = true;
        self.partial = None;
        self.control.clear();
        self.audio.clear();
        self.video.clear();
        self.control_bytes = 0;
        self.media_bytes = 0;
    }

    /// Nothing queued or being written: a pusher may write to the socket.
    fn idle(&self) -> bool {
        !self.writing
            && !self.direct
            && self.partial.is_none()
            && self.control.is_empty()
            && self.audio.is_empty()
            && self.video.is_empty()
            && !self.closing
            && !self.closed
    }

    fn oldest_media(&self) -> Option<Instant> {
        match (self.audio.front(), self.video.front()) {
            (Some(a), Some(v)) => Some(a.at.min(v.at)),
            (a, v) => a.or(v).map(|t| t.at),
        }
    }

    fn purge_video(&mut self) {
        for t in self.video.drain(..) {
            self.media_bytes -= t.frame.bytes.len();
            self.stats.video_dropped += 1;
        }
    }

    fn drop_old_audio(&mut self, now: Instant, limits: &Limits) {
        while let Some(front) = self.audio.front() {
            let too_old = now.duration_since(front.at) > limits.max_audio_queue;
            if !too_old && self.media_bytes <= limits.max_queue_bytes {
                break;
            }
            if let Some(t) = self.audio.pop_front() {
                self.media_bytes -= t.frame.bytes.len();
                self.stats.audio_dropped += 1;
            }
        }
    }
}

/// Congestion that comes back this soon after video resumed means the
/// receiver is still too slow: the keyframe backoff grows.
pub const STILL_SLOW: Duration = Duration::from_secs(2);

/// The longest keyframe backoff, in multiples of `max_queue_ms` (so 1.2 s
/// with the default 300 ms): video comes back at most this long after the
/// receiver speeds up.
pub const KEYFRAME_BACKOFF_MAX: u32 = 4;

/// One client's outbound queue. See the module documentation.
pub struct Outbox {
    state: Mutex<State>,
    ready: Condvar,
    limits: Limits,
    /// A handle on the client's socket, used only to shut it down (which never blocks).
    socket: Option<TcpStream>,
    /// The socket carries plain text: pushers may write to `socket` without
    /// blocking when the writer is idle (see [`Outbox::with_fast_path`]).
    fast: bool,
    /// The socket's usual write timeout, restored after a [`DirectWrite`].
    write_timeout: Option<Duration>,
    /// How many calls have ended for this client ([`Outbox::purge_media`]):
    /// a [`DirectWrite`] claimed during an earlier call writes nothing.
    calls_ended: AtomicU64,
}

impl Outbox {
    /// An empty outbox with these limits. `socket` is shut down when the
    /// client must be disconnected at once (`None` in unit tests).
    pub fn new(limits: Limits, socket: Option<TcpStream>) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            limits,
            socket,
            fast: false,
            write_timeout: None,
            calls_ended: AtomicU64::new(0),
        }
    }

    /// Lets pushers write media straight to the socket given to
    /// [`Outbox::new`] when nothing is queued and the writer is idle, with
    /// `MSG_DONTWAIT` so they never block. This saves a writer wake-up (two
    /// context switches) per frame. Only for a socket that carries the
    /// protocol as plain text: never under TLS. The socket handle is the one
    /// kept for shutdown, so the fast path costs no descriptor.
    pub fn with_fast_path(mut self) -> Outbox {
        self.fast = self.socket.is_some();
        self.write_timeout = self.socket.as_ref().and_then(|s| s.write_timeout().ok().flatten());
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take every client down: the state is
        // consistent between statements, so keep using it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a control line (or several, as one unit).
    ///
    /// Returns false when the outbox is closed, or when the control backlog
    /// overflowed, in which case the outbox is closed now and the client will
    /// be disconnected.
    pub fn push_control(&self, line: Vec<u8>) -> bool {
        self.queue_control(self.lock(), line)
    }

    /// Like [`Outbox::push_control`], for a line that supersedes any queued,
    /// not yet written line starting with `key` (such as an older `presence`
    /// of the same client): those are dropped, so a receiver that falls
    /// behind holds at most one such line per key.
    pub fn push_control_replacing(&self, line: Vec<u8>, key: &[u8]) -> bool {
        let mut s = self.lock();
        let before = s.control_bytes;
        let mut dropped = 0;
        s.control.retain(|queued| {
            let stale = queued.starts_with(key);
            dropped += if stale { queued.len() } else { 0 };
            !stale
        });
        s.control_bytes = before - dropped;
        self.queue_control(s, line)
    }

    fn queue_control(&self, mut s: MutexGuard<'_, State>, line: Vec<u8>) -> bool {
        if s.closing || s.closed {
            return false;
        }
        if s.control_bytes + line.len() > self.limits.max_control_bytes {
            drop(s);
            crate::log!(Warn, "control backlog overflow: disconnecting a client that does not read");
            self.abort();
            return false;
        }
        s.control_bytes += line.len();
        s.control.push_back(line);
        drop(s);
        self.ready.notify_all();
        true
    }

    /// Queues a media frame, applying the drop policy.
    pub fn push_media(&self, frame: MediaFrame) -> Pushed {
        let now = Instant::now();
        let mut s = self.lock();
        if !self.limits.drop_policy {
            return self.push_media_blocking(s, frame, now);
        }
        if s.closing || s.closed {
            return Pushed::Closed;
        }
        let len = frame.bytes.len();
        let outcome = match frame.kind {
            MediaKind::Audio => {
                s.drop_old_audio(now, &self.limits);
                s.stats.audio_queued += 1;
                if let Some(frame) = self.send_now(&mut s, frame) {
                    s.media_bytes += len;
                    s.audio.push_back(Timed { at: now, frame });
                }
                Pushed::Queued
            }
            MediaKind::Video => self.push_video(&mut s, frame, now),
        };
        // A frame written on the fast path needs no writer.
        let for_writer = !s.audio.is_empty() || !s.video.is_empty() || s.partial.is_some();
        drop(s);
        if outcome == Pushed::Queued && for_writer {
            self.ready.notify_all();
        }
        outcome
    }

    fn push_video(&self, s: &mut State, frame: MediaFrame, now: Instant) -> Pushed {
        let len = frame.bytes.len();
        if let Some(dropped) = self.admit_video(s, (frame.from, frame.key), len, now) {
            return dropped;
        }
        // On a slow link video goes through the writer, which paces it.
        let frame = if s.pacer.paced(len) { Some(frame) } else { self.send_now(s, frame) };
        if let Some(frame) = frame {
            s.media_bytes += len;
            s.video.push_back(Timed { at: now, frame });
        }
        Pushed::Queued
    }

    /// The video drop policy: `None` when a `len`-byte frame from `from`
    /// (a keyframe when `key`) may go to the receiver (and is counted as
    /// queued), otherwise how it was dropped. After a congestion every
    /// sender's video resumes only at its own keyframe.
    fn admit_video(
        &self,
        s: &mut State,
        (from, key): (ClientId, bool),
        len: usize,
        now: Instant,
    ) -> Option<Pushed> {
        let too_old = s.oldest_media().is_some_and(|t| now.duration_since(t) > self.limits.max_queue);
        // On a slow link a big frame right after another one is dropped too.
        let congested =
            too_old || s.media_bytes + len > self.limits.max_queue_bytes || s.pacer.too_soon(len, now);
        let paused = s.paused_until.is_some_and(|t| now < t);
        if s.dropping_video && key && !congested && !paused {
            s.dropping_video = false;
            s.resumed_at = Some(now);
        }
        if congested && !s.dropping_video {
            s.dropping_video = true;
            s.purge_video();
            s.senders.cut_all();
            self.back_off(s, now, too_old);
            crate::log!(Debug, "receiver congested: dropping video until the next keyframe");
        }
        let cut = s.senders.cut(from, key, s.dropping_video);
        if s.dropping_video || cut {
            s.stats.video_dropped += 1;
            if s.dropping_video {
                s.feedback.limited(now);
            }
            let paused = s.paused_until.is_some_and(|t| now < t);
            if !paused && s.senders.keyframe_due(from, now, self.limits.max_queue) {
                s.stats.keyframe_requests += 1;
                return Some(Pushed::DroppedNeedKeyframe);
            }
            return Some(Pushed::Dropped);
        }
        s.stats.video_queued += 1;
        s.pacer.let_through(len, key, now);
        None
    }

    /// Lets the caller write a `len`-byte video frame (header and payload)
    /// to the socket itself, when the outbox has the fast path, nothing is
    /// queued or being written, the link is not paced, and the drop policy
    /// admits the frame. The writer keeps off the socket until the returned
    /// [`DirectWrite`] is dropped; anything pushed meanwhile waits behind
    /// the frame.
    ///
    /// The caller must not block on the socket: for as long as the claim
    /// lasts, the socket's writes time out after [`DIRECT_STALL`]. What the
    /// socket does not take in time goes to the writer through
    /// [`DirectWrite::spill`].
    pub fn begin_direct(self: &Arc<Self>, (from, key): (ClientId, bool), len: usize) -> Direct {
        let Some(socket) = self.socket.as_ref().filter(|_| self.fast && self.limits.drop_policy) else {
            return Direct::Busy;
        };
        let now = Instant::now();
        let mut s = self.lock();
        // On a slow link video goes through the writer, which paces it.
        if !s.idle() || s.pacer.paced(len) {
            return Direct::Busy;
        }
        if let Some(dropped) = self.admit_video(&mut s, (from, key), len, now) {
            return Direct::Dropped(dropped);
        }
        s.direct = true;
        drop(s);
        let _ = socket.set_write_timeout(Some(DIRECT_STALL));
        let fd = socket.as_raw_fd();
        let call = self.calls_ended.load(Ordering::SeqCst);
        Direct::Claimed(DirectWrite { outbox: Arc::clone(self), fd, owed: len, len, call, spill: Vec::new() })
    }

    /// Starts a congestion episode's pause: none when the receiver kept up
    /// for [`STILL_SLOW`] since video last resumed, otherwise twice the last
    /// one (at least `max_queue`, at most [`KEYFRAME_BACKOFF_MAX`] times it).
    /// Only an old queue counts: a full one (the byte cap) on a fast link
    /// drains at once and needs no pause.
    fn back_off(&self, s: &mut State, now: Instant, too_old: bool) {
        let still_slow = too_old && s.resumed_at.is_some_and(|t| now.duration_since(t) < STILL_SLOW);
        let base = self.limits.max_queue;
        s.backoff = if still_slow {
            (s.backoff * 2).clamp(base, base * KEYFRAME_BACKOFF_MAX)
        } else {
            Duration::ZERO
        };
        // On a slow link, no big frame before BIG_FRAME_GAP since the last one.
        let pause_end = now + s.backoff;
        s.paused_until = Some(s.pacer.big_frames_wait_until(now).map_or(pause_end, |t| t.max(pause_end)));
    }

    /// The fast path: when nothing is queued and the writer is idle, write the
    /// frame to the socket now, without blocking (`MSG_DONTWAIT`) and without
    /// waking the writer thread. Returns the frame when it must be queued
    /// instead; a partly written frame's rest is handed to the writer.
    ///
    /// Writing here, under the outbox lock, cannot reorder anything: the lock
    /// excludes the writer from taking a batch, and the queues are empty.
    fn send_now(&self, s: &mut State, frame: MediaFrame) -> Option<MediaFrame> {
        let Some(socket) = self.socket.as_ref().filter(|_| self.fast && s.idle()) else {
            return Some(frame);
        };
        match send_dontwait(socket, &frame.bytes) {
            Ok(n) if n == frame.bytes.len() => None,
            Ok(n) if n > 0 => {
                s.partial = Some((frame.bytes, n));
                None
            }
            // Full socket (or an error the writer will meet too): queue it.
            _ => Some(frame),
        }
    }

    /// The naive relay used to show what the drop policy prevents: wait for room.
    fn push_media_blocking(&self, mut s: MutexGuard<'_, State>, frame: MediaFrame, now: Instant) -> Pushed {
        while !(s.closing || s.closed) && s.media_bytes > self.limits.max_queue_bytes {
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.closing || s.closed {
            return Pushed::Closed;
        }
        s.media_bytes += frame.bytes.len();
        match frame.kind {
            MediaKind::Audio => s.stats.audio_queued += 1,
            MediaKind::Video => s.stats.video_queued += 1,
        }
        let lane = if frame.kind == MediaKind::Audio { &mut s.audio } else { &mut s.video };
        lane.push_back(Timed { at: now, frame });
        drop(s);
        self.ready.notify_all();
        Pushed::Queued
    }

    /// A call starts: the peer is told about this client's connection from
    /// now on (see [`crate::feedback`]), starting from nothing known.
    pub fn start_call(&self) {
        self.lock().feedback.start_call();
    }

    /// The `rate` line the writer decided for the peer, if any; see
    /// [`feedback::deliver`].
    pub fn take_report(&self) -> Option<Option<std::num::NonZeroU32>> {
        self.lock().feedback.take()
    }

    /// Drops all queued media (the call ended) and resets the drop state.
    /// A frame being written stays whole: the writer's current batch, and a
    /// [`DirectWrite`] that has written a first byte. One claimed that has
    /// not is dropped: it writes nothing more.
    pub fn purge_media(&self) {
        self.calls_ended.fetch_add(1, Ordering::SeqCst);
        let mut s = self.lock();
        s.audio.clear();
        s.video.clear();
        s.media_bytes = 0;
        s.dropping_video = false;
        s.senders = senders::Senders::default();
        s.paused_until = None;
        s.backoff = Duration::ZERO;
        s.resumed_at = None;
        s.pacer.forget_big_frames();
        s.feedback.end_call();
        drop(s);
        self.ready.notify_all();
    }

    /// Drops the queued media of one sender (it left a call that goes on) and
    /// forgets its video state. A frame being written stays whole.
    pub fn purge_media_from(&self, from: ClientId) {
        let mut s = self.lock();
        let s = &mut *s;
        for lane in [&mut s.audio, &mut s.video] {
            lane.retain(|t| {
                let keep = t.frame.from != from;
                if !keep {
                    s.media_bytes -= t.frame.bytes.len();
                }
                keep
            });
        }
        s.senders.forget(from);
    }

    /// Stops accepting pushes; the writer sends the queued control lines, then
    /// closes the socket.
    pub fn close(&self) {
        self.lock().closing = true;
        self.ready.notify_all();
    }

    /// Disconnects now: drops everything queued and shuts the socket down,
    /// which unblocks both the writer and the session thread. Never blocks.
    pub fn abort(&self) {
        self.lock().drop_everything();
        self.ready.notify_all();
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Whether the writer has finished.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }
}

/// One `send(2)` that never blocks. `EAGAIN` is `Ok(0)`.
fn send_dontwait(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the pointer and length describe `bytes`, which outlives the call.
        let n = unsafe {
            libc::send(
                socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
