//! The slow receiver: one call whose receiver drains its socket at 1 Mbit/s
//! through a small receive buffer while its peer sends 2.5 Mbit/s of video
//! plus audio; then the receiver speeds up.
//!
//! Frames are stamped with their capture time (their place in the schedule),
//! not the time the write started, so a sender that the relay blocks shows
//! up as age, as it would in a real client. Threads: one sender, one reader
//! of the sender's socket (it counts `keyframe` lines), one receiver.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use komunikator_protocol::MediaKind;

use crate::engine::sleep_until;
use crate::net::{Endpoint, write_all};
use crate::stats::Samples;
use crate::wire::{Event, encode_frame, now_ns, ns_of};

/// The receiver's drain rate in the slow phase, bytes per second (1 Mbit/s).
pub const SLOW_RATE: f64 = 125_000.0;
/// The receiver's SO_RCVBUF (the kernel doubles it).
pub const RCVBUF: usize = 4096;
/// Video frame sizes: 2.5 Mbit/s at 30 frames/s with a keyframe every 2 s.
const VIDEO_FRAME: usize = 10_000;
const KEY_FRAME: usize = 30_000;
const KEY_EVERY: u64 = 60;
const AGE_OK_NS: u64 = 50_000_000;

/// One second of the run as the receiver saw it.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Audio age samples delivered in this second.
    pub audio: Samples,
    /// Video age samples delivered in this second.
    pub video: Samples,
}

/// What the slow-receiver run measured.
#[derive(Debug, Default)]
pub struct Slow {
    /// Per second of the run, by delivery time.
    pub seconds: Vec<Second>,
    /// Audio ages delivered during the slow phase.
    pub audio_slow: Samples,
    /// Video ages delivered during the slow phase.
    pub video_slow: Samples,
    /// Video frames sent and delivered during the whole run.
    pub video: (u64, u64),
    /// Audio packets sent and delivered during the whole run.
    pub audio: (u64, u64),
    /// `keyframe` lines the sender received.
    pub keyframe_requests: u64,
    /// Seconds from the speed-up until no delivered frame is older than 50 ms.
    pub recovery_s: f64,
    /// Seconds from the speed-up to the first delivered video frame younger
    /// than 50 ms (video flowing again); `None` if none came.
    pub video_back_s: Option<f64>,
    /// Length of the slow phase, seconds.
    pub slow_s: f64,
}

/// Runs the slow-receiver scenario on `pair` (`.1` is the slow receiver).
///
/// # Errors
/// When sockets fail or a thread panics.
pub fn run(pair: (Endpoint, Endpoint), slow: Duration, fast: Duration) -> anyhow::Result<Slow> {
    let (a, mut b) = pair;
    let mut a_reader = a;
    let mut a_writer = a_reader.stream.try_clone()?;
    a_reader.stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    b.stream.set_read_timeout(Some(Duration::from_millis(5)))?;
    a_writer.set_write_timeout(Some(Duration::from_millis(500)))?;
    let start = Instant::now() + Duration::from_millis(20);
    let speedup = start + slow;
    let end = speedup + fast;
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let key_wanted = AtomicBool::new(false);
    let keyframes = AtomicU64::new(0);
    let sent = [AtomicU64::new(0), AtomicU64::new(0)];
    let mut out = Slow { slow_s: slow.as_secs_f64(), ..Slow::default() };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (stop, done, key_wanted, keyframes, sent) = (&stop, &done, &key_wanted, &keyframes, &sent);
        scope.spawn(move || {
            let mut buf = [0u8; 4096];
            while !done.load(Ordering::Relaxed) {
                let n = match a_reader.stream.read(&mut buf) {
                    Ok(0) | Err(_) if done.load(Ordering::Relaxed) => break,
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => continue,
                };
                let _ = a_reader.parser.feed(&buf[..n], |e| {
                    if e == Event::Line("keyframe".into()) {
                        keyframes.fetch_add(1, Ordering::Relaxed);
                        key_wanted.store(true, Ordering::Relaxed);
                    }
                });
            }
        });
        let sender = scope.spawn(move || {
            let mut buf = Vec::with_capacity(64 << 10);
            let (mut video_due, mut audio_due, mut frames) = (start, start + Duration::from_millis(7), 0u64);
            while !stop.load(Ordering::Relaxed) && video_due.min(audio_due) < end {
                let video = video_due <= audio_due;
                let due = if video { video_due } else { audio_due };
                sleep_until(due);
                buf.clear();
                if video {
                    let key = frames % KEY_EVERY == 0 || key_wanted.swap(false, Ordering::Relaxed);
                    let len = if key { KEY_FRAME } else { VIDEO_FRAME };
                    encode_frame(&mut buf, MediaKind::Video, key, len, ns_of(due));
                    frames += 1;
                    video_due += Duration::from_nanos(33_333_333);
                } else {
                    encode_frame(&mut buf, MediaKind::Audio, true, 100, ns_of(due));
                    audio_due += Duration::from_millis(20);
                }
                // A write blocked past the end of the run gives up quietly.
                if write_all(&mut a_writer, &buf, stop).is_err() {
                    break;
                }
                sent[usize::from(video)].fetch_add(1, Ordering::Relaxed);
            }
        });
        let received = receive(&mut b, start, speedup, end, &mut out)?;
        stop.store(true, Ordering::SeqCst);
        let _ = sender.join();
        done.store(true, Ordering::SeqCst);
        out.audio = (sent[0].load(Ordering::SeqCst), received.0);
        out.video = (sent[1].load(Ordering::SeqCst), received.1);
        out.keyframe_requests = keyframes.load(Ordering::SeqCst);
        Ok(())
    })?;
    Ok(out)
}

/// Reads `b` at [`SLOW_RATE`] until `speedup`, then at full speed until a
/// while after `end`. Returns (audio, video) frames delivered.
fn receive(
    b: &mut Endpoint,
    start: Instant,
    speedup: Instant,
    end: Instant,
    out: &mut Slow,
) -> anyhow::Result<(u64, u64)> {
    let mut buf = vec![0u8; 64 << 10];
    let mut tokens = 0.0f64;
    let mut last = Instant::now();
    let mut delivered = (0u64, 0u64);
    let mut last_bad: Option<Instant> = None;
    let stop_at = end + Duration::from_secs(2);
    while Instant::now() < stop_at {
        let now = Instant::now();
        let want = if now < speedup {
            tokens = (tokens + now.duration_since(last).as_secs_f64() * SLOW_RATE).min(4096.0);
            last = now;
            if tokens < 512.0 {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            tokens as usize
        } else {
            buf.len()
        };
        let n = match b.stream.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        };
        if now < speedup {
            tokens -= n as f64;
        }
        let at = Instant::now();
        let at_ns = now_ns();
        let sec = at.saturating_duration_since(start).as_secs() as usize;
        b.parser.feed(&buf[..n], |e| {
            let Event::Media { kind, stamp_ns, .. } = e else { return };
            let age = at_ns.saturating_sub(stamp_ns);
            if out.seconds.len() <= sec {
                out.seconds.resize(sec + 1, Second::default());
            }
            let slow_phase = at < speedup;
            match kind {
                MediaKind::Audio => {
                    delivered.0 += 1;
                    out.seconds[sec].audio.push(age);
                    if slow_phase {
                        out.audio_slow.push(age);
                    }
                }
                MediaKind::Video => {
                    delivered.1 += 1;
                    out.seconds[sec].video.push(age);
                    if slow_phase {
                        out.video_slow.push(age);
                    }
                }
            }
            if !slow_phase && age > AGE_OK_NS {
                last_bad = Some(at);
            }
            if !slow_phase && kind == MediaKind::Video && age <= AGE_OK_NS && out.video_back_s.is_none() {
                out.video_back_s = Some(at.duration_since(speedup).as_secs_f64());
            }
        })?;
    }
    out.recovery_s = last_bad.map_or(0.0, |t| t.duration_since(speedup).as_secs_f64());
    Ok(delivered)
}
