//! The `writer` thread, the only code that writes to the socket, and the
//! queue in front of it.
//!
//! Any thread pushes into the [`Writer`]'s queue; the `writer` thread drains
//! it. With adaptation on (the default) the queue has three lanes, taken in
//! this order: control lines, audio, then video. Video waits in its lane,
//! where audio overtakes it, while the socket still holds unsent bytes that
//! would delay the next audio packet (see [`super::uplink`]); the socket's
//! own unsent bytes are kept small with `TCP_NOTSENT_LOWAT`. Nothing
//! pushing media ever blocks: audio past [`MAX_AUDIO_PACKETS`] drops the
//! oldest packet, and video past [`MAX_VIDEO_BYTES`] drops the queued
//! frames and the following ones until a keyframe, which the encoder is
//! asked for. Video that would arrive stale (the lane takes longer than
//! [`super::uplink::MAX_LANE`] to drain at the measured rate, or the path
//! already queues that long: the link just shrank) is cut back to the
//! newest keyframe queued, or to nothing and a keyframe owed. Raw pictures
//! are normally skipped before the encoder long before either
//! ([`super::uplink::Uplink::should_skip`]).
//!
//! With adaptation off (`--no-adapt`, for benchmarks) it is the old single
//! first-in-first-out queue of [`FIFO_ITEMS`] items that blocks pushers.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use komunikator_protocol::{Command, MediaHeader, MediaKind};

use super::uplink::{Uplink, UplinkControl};
use super::{NetError, NetEvent};

/// A media payload: any owned bytes, such as a mapped `gst::Buffer`, so the
/// encoder's output is written without a copy.
pub type Payload = Box<dyn AsRef<[u8]> + Send>;

/// Control lines queued before [`Writer::command`] blocks.
pub const MAX_LINES: usize = 64;

/// Items of the first-in-first-out queue without adaptation.
pub const FIFO_ITEMS: usize = 64;

/// Audio packets queued (one second) before the oldest is dropped.
pub const MAX_AUDIO_PACKETS: usize = 50;

/// Video bytes queued before encoded frames are dropped.
pub const MAX_VIDEO_BYTES: usize = 1 << 20;

/// One item for the writer.
pub enum Outgoing {
    /// A complete line, with its newline.
    Line(Vec<u8>),
    /// A media header and its payload, written back to back.
    Media {
        /// The header; its `len` matches the payload.
        header: MediaHeader,
        /// The payload.
        payload: Payload,
    },
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Line(l) => l.len(),
            Outgoing::Media { payload, .. } => (**payload).as_ref().len(),
        }
    }
}

/// What became of a pushed media frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// It will be written.
    Yes,
    /// It was dropped: the queue was full of video. The encoder should
    /// send a keyframe next ([`Uplink::take_keyframe_owed`] says so too).
    Dropped,
}

#[derive(Default)]
struct Lanes {
    /// Control lines (adaptive), or everything (first-in-first-out).
    lines: VecDeque<Outgoing>,
    audio: VecDeque<Outgoing>,
    video: VecDeque<Outgoing>,
    video_bytes: usize,
    /// Video is being dropped until the next keyframe.
    dropping_video: bool,
    /// Live [`Writer`] handles.
    writers: usize,
    /// The writer thread has stopped.
    closed: bool,
}

impl Lanes {
    /// The video lane would arrive stale: keeps only what a decoder can
    /// start from. From the newest keyframe queued on when there is one
    /// after the front; otherwise the front frame if it is a keyframe (what
    /// follows it goes, and a new keyframe is owed); otherwise nothing, and
    /// a new keyframe is owed. A lone keyframe is never dropped here, so a
    /// keyframe larger than the bound cannot be dropped and owed forever.
    fn trim_stale_video(&mut self, uplink: &Uplink) {
        let is_key = |item: &Outgoing| matches!(item, Outgoing::Media { header, .. } if header.key);
        let keep_from = match self.video.iter().rposition(is_key) {
            Some(newest) if newest > 0 => newest,
            _ if self.video.front().is_some_and(is_key) => {
                self.video.truncate(1);
                self.video_bytes = self.video.front().map_or(0, Outgoing::len);
                self.dropping_video = true;
                uplink.owe_keyframe();
                return;
            }
            _ => self.video.len(),
        };
        for item in self.video.drain(..keep_from) {
            self.video_bytes -= item.len();
        }
        if self.video.is_empty() {
            self.dropping_video = true;
            uplink.owe_keyframe();
        }
    }
}

struct Queue {
    lanes: Mutex<Lanes>,
    /// Signalled when there is something to write (or the last writer left).
    ready: Condvar,
    /// Signalled when room is made for blocked pushers.
    room: Condvar,
    uplink: Arc<Uplink>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The cloneable sending half of the connection.
pub struct Writer {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("adapts", &self.queue.uplink.adapts()).finish_non_exhaustive()
    }
}

impl Clone for Writer {
    fn clone(&self) -> Writer {
        self.queue.lock().writers += 1;
        Writer { queue: self.queue.clone() }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut lanes = self.queue.lock();
        lanes.writers = lanes.writers.saturating_sub(1);
        drop(lanes);
        self.queue.ready.notify_all();
    }
}

/// The writer thread's end of the queue.
pub(super) struct Drain {
    queue: Arc<Queue>,
}

impl Writer {
    pub(super) fn channel(uplink: Arc<Uplink>) -> (Writer, Drain) {
        let lanes = Lanes { writers: 1, ..Lanes::default() };
        let queue =
            Arc::new(Queue { lanes: Mutex::new(lanes), ready: Condvar::new(), room: Condvar::new(), uplink });
        (Writer { queue: queue.clone() }, Drain { queue })
    }

    /// The uplink's shared state.
    pub fn uplink(&self) -> &Arc<Uplink> {
        &self.queue.uplink
    }

    /// Queues a command line. Blocks while [`MAX_LINES`] lines wait.
    ///
    /// # Errors
    /// [`NetError::Closed`] when the connection is closed.
    pub fn command(&self, cmd: &Command<'_>) -> Result<(), NetError> {
        let mut line = Vec::with_capacity(64);
        cmd.encode(&mut line);
        let mut lanes = self.wait_for_room(MAX_LINES)?;
        lanes.lines.push_back(Outgoing::Line(line));
        drop(lanes);
        self.queue.ready.notify_one();
        Ok(())
    }

    fn wait_for_room(&self, max: usize) -> Result<MutexGuard<'_, Lanes>, NetError> {
        let mut lanes = self.queue.lock();
        while !lanes.closed && lanes.lines.len() >= max {
            lanes = self.queue.room.wait(lanes).unwrap_or_else(PoisonError::into_inner);
        }
        if lanes.closed {
            return Err(NetError::Closed);
        }
        Ok(lanes)
    }

    /// Queues a media frame. Never blocks with adaptation on; without it,
    /// blocks while the queue is full, which is how a slow connection
    /// pushes back on the sending pipeline.
    ///
    /// # Errors
    /// [`NetError::Closed`] when the connection is closed. A payload larger
    /// than `u32::MAX` bytes is also refused with `Closed` (it cannot be framed).
    pub fn media(&self, kind: MediaKind, pts: u64, key: bool, payload: Payload) -> Result<Queued, NetError> {
        let len = u32::try_from((*payload).as_ref().len()).map_err(|_| NetError::Closed)?;
        let item = Outgoing::Media { header: MediaHeader { kind, pts, key, len }, payload };
        if !self.queue.uplink.adapts() {
            let mut lanes = self.wait_for_room(FIFO_ITEMS)?;
            lanes.lines.push_back(item);
            drop(lanes);
            self.queue.ready.notify_one();
            return Ok(Queued::Yes);
        }
        let mut lanes = self.queue.lock();
        if lanes.closed {
            return Err(NetError::Closed);
        }
        let queued = match kind {
            MediaKind::Audio => {
                if lanes.audio.len() >= MAX_AUDIO_PACKETS {
                    lanes.audio.pop_front();
                }
                lanes.audio.push_back(item);
                Queued::Yes
            }
            MediaKind::Video => self.push_video(&mut lanes, item, key, len as usize),
        };
        drop(lanes);
        self.queue.ready.notify_one();
        Ok(queued)
    }

    /// Queues a video frame, or drops it (and what is queued) when the lane
    /// is full, and then every frame until a keyframe.
    fn push_video(&self, lanes: &mut Lanes, item: Outgoing, key: bool, len: usize) -> Queued {
        if lanes.dropping_video && !key {
            return Queued::Dropped;
        }
        if lanes.video_bytes + len > MAX_VIDEO_BYTES {
            lanes.video.clear();
            lanes.video_bytes = 0;
            if !key {
                lanes.dropping_video = true;
                self.queue.uplink.owe_keyframe();
                return Queued::Dropped;
            }
        }
        lanes.dropping_video = false;
        lanes.video_bytes += len;
        lanes.video.push_back(item);
        Queued::Yes
    }
}

impl Drain {
    /// The next item to write, once it may be written; `None` once every
    /// [`Writer`] is gone and everything queued is written.
    fn next(&self, socket: &TcpStream, control: &mut UplinkControl) -> Option<Outgoing> {
        let mut lanes = self.queue.lock();
        loop {
            let mut wait = None;
            let notsent = match control.adapts().then(|| komunikator_rate::sample(socket)) {
                Some(Ok(sample)) => {
                    control.observe(sample, lanes.video_bytes);
                    wait = Some(control.next_tick().saturating_duration_since(Instant::now()));
                    sample.notsent
                }
                _ => 0,
            };
            if control.probe_due(Instant::now()) {
                // The probe goes first, past queued media, as its answer does.
                return Some(Outgoing::Line(b"ping\n".to_vec()));
            }
            if let Some(ms) = control.report_due(Instant::now()) {
                let mut line = Vec::with_capacity(16);
                Command::Delay(ms).encode(&mut line);
                return Some(Outgoing::Line(line));
            }
            if let Some(item) = lanes.lines.pop_front().or_else(|| lanes.audio.pop_front()) {
                self.queue.room.notify_all();
                return Some(item);
            }
            if control.adapts() && lanes.video.len() > 1 && control.lane_too_long(lanes.video_bytes) {
                lanes.trim_stale_video(&self.queue.uplink);
            }
            if let Some(len) = lanes.video.front().map(Outgoing::len) {
                match control.gate(notsent).filter(|_| control.adapts()) {
                    None => {
                        lanes.video_bytes -= len;
                        return lanes.video.pop_front();
                    }
                    Some(hold) => wait = Some(wait.map_or(hold, |w: Duration| w.min(hold))),
                }
            } else if lanes.writers == 0 {
                return None;
            }
            lanes = match wait {
                Some(w) => {
                    let w = w.max(Duration::from_millis(1));
                    self.queue.ready.wait_timeout(lanes, w).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.queue.ready.wait(lanes).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    fn close(&self) {
        let mut lanes = self.queue.lock();
        lanes.closed = true;
        lanes.lines.clear();
        lanes.audio.clear();
        lanes.video.clear();
        lanes.video_bytes = 0;
        drop(lanes);
        self.queue.room.notify_all();
    }
}

/// Writes items until every sender is gone or a write fails.
/// `socket` is the same socket: sampled for the uplink's state, and shut
/// down when a write fails so that the receive thread notices too.
pub(super) fn run(stream: impl Write, socket: TcpStream, drain: Drain, events: impl Fn(NetEvent)) {
    let mut control = UplinkControl::new(drain.queue.uplink.clone());
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let mut header_line = Vec::with_capacity(64);
    while let Some(item) = drain.next(&socket, &mut control) {
        if let Outgoing::Media { header, .. } = &item {
            // About 24 bytes of header line, and TCP/IP's 40 per packet.
            control.written(header.kind, header.len as usize + 64);
        }
        if let Err(e) = write_item(&mut out, &mut header_line, item).and_then(|()| out.flush()) {
            drain.close();
            events(NetEvent::Closed(format!("write failed: {e}")));
            let _ = socket.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    drain.close();
}

fn write_item(out: &mut impl Write, header_line: &mut Vec<u8>, item: Outgoing) -> std::io::Result<()> {
    match item {
        Outgoing::Line(line) => out.write_all(&line),
        Outgoing::Media { header, payload } => {
            header_line.clear();
            header.encode(header_line);
            out.write_all(header_line)?;
            out.write_all((*payload).as_ref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::uplink::RateConfig;
    use super::*;

    fn writer(adapt: bool) -> (Writer, Drain) {
        let config = if adapt {
            RateConfig::adaptive(640, 480, 30, 1000)
        } else {
            RateConfig::fixed(640, 480, 30, 1000)
        };
        Writer::channel(Uplink::new(config))
    }

    fn kinds(drain: &Drain) -> Vec<Option<MediaKind>> {
        let lanes = drain.queue.lock();
        lanes
            .lines
            .iter()
            .chain(&lanes.audio)
            .chain(&lanes.video)
            .map(|o| match o {
                Outgoing::Line(_) => None,
                Outgoing::Media { header, .. } => Some(header.kind),
            })
            .collect()
    }

    #[test]
    fn lines_then_audio_then_video() {
        let (w, drain) = writer(true);
        w.media(MediaKind::Video, 1, true, Box::new(vec![0; 10])).unwrap();
        w.media(MediaKind::Audio, 2, true, Box::new(vec![0; 10])).unwrap();
        w.command(&Command::Ping).unwrap();
        assert_eq!(kinds(&drain), [None, Some(MediaKind::Audio), Some(MediaKind::Video)]);
    }

    #[test]
    fn a_full_video_lane_drops_until_a_keyframe_and_owes_one() {
        let (w, drain) = writer(true);
        let big = || Box::new(vec![0u8; MAX_VIDEO_BYTES / 2 + 1]) as Payload;
        assert_eq!(w.media(MediaKind::Video, 1, true, big()).unwrap(), Queued::Yes);
        assert_eq!(w.media(MediaKind::Video, 2, false, big()).unwrap(), Queued::Dropped);
        assert!(w.uplink().take_keyframe_owed());
        assert_eq!(w.media(MediaKind::Video, 3, false, Box::new(vec![0; 10])).unwrap(), Queued::Dropped);
        assert_eq!(w.media(MediaKind::Video, 4, true, Box::new(vec![0; 10])).unwrap(), Queued::Yes);
        assert_eq!(drain.queue.lock().video.len(), 1, "the full lane was emptied");
        for i in 0..(MAX_AUDIO_PACKETS as u64 + 10) {
            w.media(MediaKind::Audio, i, true, Box::new(vec![0; 10])).unwrap();
        }
        assert_eq!(drain.queue.lock().audio.len(), MAX_AUDIO_PACKETS, "audio is bounded too");
    }

    /// The pts and keyframe flag of each queued video frame.
    fn video(drain: &Drain) -> Vec<(u64, bool)> {
        let lanes = drain.queue.lock();
        let frame = |o: &Outgoing| match o {
            Outgoing::Media { header, .. } => Some((header.pts, header.key)),
            Outgoing::Line(_) => None,
        };
        lanes.video.iter().filter_map(frame).collect()
    }

    #[test]
    fn a_stale_lane_keeps_only_what_a_decoder_can_start_from() {
        let (w, drain) = writer(true);
        let push = |pts, key| w.media(MediaKind::Video, pts, key, Box::new(vec![0; 100])).unwrap();
        let trim = || drain.queue.lock().trim_stale_video(w.uplink());
        // From the newest keyframe after the front, owing nothing.
        for (pts, key) in [(1, false), (2, true), (3, false), (4, true), (5, false)] {
            push(pts, key);
        }
        trim();
        assert_eq!(video(&drain), [(4, true), (5, false)]);
        assert!(!w.uplink().take_keyframe_owed());
        // A keyframe at the front stays; what depends on it goes, and the
        // next pictures wait for a new keyframe, which is owed.
        trim();
        assert_eq!(video(&drain), [(4, true)]);
        assert!(w.uplink().take_keyframe_owed());
        assert_eq!(push(6, false), Queued::Dropped);
        assert_eq!(drain.queue.lock().video_bytes, 100);
        // A lone keyframe is never dropped: it is what the decoder needs.
        trim();
        assert_eq!(video(&drain), [(4, true)]);
        // No keyframe at all: everything goes, and one is owed.
        drain.queue.lock().video.clear();
        drain.queue.lock().video_bytes = 0;
        push(7, true);
        drain.queue.lock().video.pop_front();
        drain.queue.lock().video_bytes = 0;
        push(8, false);
        push(9, false);
        trim();
        assert!(video(&drain).is_empty());
        assert_eq!(drain.queue.lock().video_bytes, 0);
        assert!(w.uplink().take_keyframe_owed());
    }

    #[test]
    fn without_adaptation_it_is_one_queue_in_order() {
        let (w, drain) = writer(false);
        w.media(MediaKind::Video, 1, true, Box::new(vec![0; 10])).unwrap();
        w.media(MediaKind::Audio, 2, true, Box::new(vec![0; 10])).unwrap();
        w.command(&Command::Ping).unwrap();
        assert_eq!(kinds(&drain), [Some(MediaKind::Video), Some(MediaKind::Audio), None]);
    }
}
