//! The sender's side of rate adaptation: what the `writer` thread learns
//! about our uplink, and what it decides, shared with the sending pipeline.
//!
//! The `writer` thread owns the socket, so it samples it (`TCP_INFO`, see
//! [`komunikator_rate::tcp`]), owns the [`DrainEstimator`] of our uplink and
//! the [`Controller`], and ticks them every [`TICK`]. Everything other
//! threads need is in [`Uplink`], as atomics:
//! * the send-video pipeline's raw-frame probe (a GStreamer streaming
//!   thread) asks [`Uplink::should_skip`] before each picture reaches the
//!   encoder, and applies [`Uplink::decision`] to the encoder and the
//!   picture size;
//! * the engine's control thread stores the peer's downlink as the server
//!   reports it (`rate`), with [`Uplink::set_peer_kbps`].

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use komunikator_rate::controller::TICK;
use komunikator_rate::{Controller, Decision, DrainEstimator, Limit, Observation, Rung, Sample};

/// The floor of the video rate, in kbit/s.
pub const MIN_VIDEO_KBPS: u32 = 100;

/// Raw pictures are skipped before the encoder while media already waiting
/// in our queue and socket would take longer than this to drain.
pub const SKIP_ABOVE: Duration = Duration::from_millis(100);

/// Queued video that would take longer than this to drain at the measured
/// uplink rate is dropped (up to a keyframe): after a sudden drop of the
/// link, frames queued at the old rate would all arrive seconds late.
pub const MAX_LANE: Duration = Duration::from_millis(400);

/// Without a measured uplink rate, a backlog larger than this skips pictures.
const SKIP_UNMEASURED_BYTES: u64 = 256 << 10;

/// Video is held in our queue, where audio overtakes it, while the socket's
/// unsent bytes would take longer than this to drain. A frame written sooner
/// would only wait behind them, and delay the next audio packet with them;
/// a frame written later would leave the link idle.
pub const HOLD_ABOVE: Duration = Duration::from_millis(20);

/// Backlogged time before the uplink's first estimate: long enough to
/// average over a few frames.
const FIRST_ESTIMATE_AFTER: Duration = Duration::from_millis(200);

/// The longest a held frame waits before the socket is looked at again.
const MAX_RECHECK: Duration = Duration::from_millis(10);

/// `TCP_NOTSENT_LOWAT` of the client's socket: the kernel takes a new write
/// only when fewer bytes than this wait unsent.
pub const NOTSENT_LOWAT: u32 = 8 << 10;

/// How the sender treats a slow link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateConfig {
    /// Adapt at all. Off (`--no-adapt`, for benchmarks only) restores the
    /// old behaviour: one first-in-first-out queue, a fixed bitrate and
    /// picture, no skipping.
    pub adapt: bool,
    /// The user's maximum video rate (`--video-kbps`).
    pub max_kbps: u32,
    /// The picture sizes to use, biggest (the configured one) first.
    pub ladder: Vec<Rung>,
}

impl RateConfig {
    /// Adaptation for a configured picture and maximum rate.
    pub fn adaptive(width: u32, height: u32, fps: u32, max_kbps: u32) -> RateConfig {
        RateConfig { adapt: true, max_kbps, ladder: komunikator_rate::ladder(width, height, fps) }
    }

    /// No adaptation: the bitrate and picture stay as configured.
    pub fn fixed(width: u32, height: u32, fps: u32, max_kbps: u32) -> RateConfig {
        RateConfig { adapt: false, max_kbps, ladder: vec![Rung { width, height, fps, min_kbps: 0 }] }
    }
}

/// What the writer thread shares about the uplink. See the module documentation.
#[derive(Debug)]
pub struct Uplink {
    config: RateConfig,
    video_kbps: AtomicU32,
    rung: AtomicU8,
    limit: AtomicU8,
    /// The peer's downlink in kbit/s as the server reported it; 0: none.
    peer_kbps: AtomicU32,
    /// Bytes of video waiting in our queue plus the socket's unsent bytes.
    backlog: AtomicU64,
    /// The uplink's measured drain rate in bytes/s; 0: not measured.
    uplink_bps: AtomicU64,
    /// Set when the writer dropped an encoded frame: the encoder owes a keyframe.
    keyframe_owed: AtomicBool,
    /// The `ping`s in flight (the writer sends them; the server answers in
    /// order), and what their answers say about the path.
    probes: Mutex<Probes>,
    /// The queueing on our downlink, µs (see [`Uplink::set_downlink_delay`]).
    downlink_delay_us: AtomicU64,
    /// The queueing the peer reports on our media's way to it (`delay`), ms,
    /// and when it came.
    peer_delay: Mutex<Option<(u32, Instant)>>,
    /// The server refused `delay` (an older server): report no more.
    delay_refused: AtomicBool,
    /// At least one `delay` report was written.
    delay_reported: AtomicBool,
}

/// A peer's `delay` report counts for this long.
const PEER_DELAY_FRESH: Duration = Duration::from_secs(1);

/// Our downlink's queueing is reported (`delay`) at most this often...
pub const REPORT_EVERY: Duration = Duration::from_millis(200);

/// ...when it is at least this, or changed by this much since the last report.
pub const REPORT_ABOVE: Duration = Duration::from_millis(20);

/// Round trips of `ping` through the server: the whole path's queueing,
/// including buffers no socket option can see (a router's, an emulator's).
#[derive(Debug, Default)]
struct Probes {
    /// When each unanswered `ping` was written, oldest first.
    in_flight: VecDeque<Instant>,
    /// The last few round trips.
    recent: VecDeque<Duration>,
    /// The lowest round trip lately, and when it was seen.
    base: Option<(Duration, Instant)>,
}

/// Between two `ping` probes during a call.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Unanswered probes beyond which no more are sent.
const MAX_PROBES_IN_FLIGHT: usize = 16;

/// The queueing delay is the lowest of this many recent round trips above
/// the base: one late answer (a busy machine) is not a queue.
const PROBE_WINDOW: usize = 2;

/// The base round trip is renewed after this long.
const PROBE_BASE_WINDOW: Duration = Duration::from_secs(30);

impl Uplink {
    /// Shared state for one connection.
    pub fn new(config: RateConfig) -> Arc<Uplink> {
        let first = config.ladder.first().copied();
        Arc::new(Uplink {
            video_kbps: AtomicU32::new(config.max_kbps),
            rung: AtomicU8::new(0),
            limit: AtomicU8::new(0),
            peer_kbps: AtomicU32::new(0),
            backlog: AtomicU64::new(0),
            uplink_bps: AtomicU64::new(0),
            keyframe_owed: AtomicBool::new(false),
            probes: Mutex::new(Probes::default()),
            downlink_delay_us: AtomicU64::new(0),
            peer_delay: Mutex::new(None),
            delay_refused: AtomicBool::new(false),
            delay_reported: AtomicBool::new(false),
            config: RateConfig { ladder: first.map_or_else(Vec::new, |_| config.ladder.clone()), ..config },
        })
    }

    /// The user's maximum video rate, kbit/s.
    pub fn max_kbps(&self) -> u32 {
        self.config.max_kbps
    }

    /// Whether the sender adapts at all.
    pub fn adapts(&self) -> bool {
        self.config.adapt
    }

    /// The latest decision: bitrate, picture and what limits them.
    pub fn decision(&self) -> Decision {
        let rung = usize::from(self.rung.load(Relaxed));
        let rung = self.config.ladder.get(rung).or(self.config.ladder.first()).copied().unwrap_or(Rung {
            width: 0,
            height: 0,
            fps: 0,
            min_kbps: 0,
        });
        let limit = match self.limit.load(Relaxed) {
            1 => Limit::Uplink,
            2 => Limit::Downlink,
            _ => Limit::None,
        };
        Decision { video_kbps: self.video_kbps.load(Relaxed), rung, limit }
    }

    /// Stores the peer's downlink as the server reported it (`None`: no limit).
    pub fn set_peer_kbps(&self, kbps: Option<u32>) {
        self.peer_kbps.store(kbps.unwrap_or(0), Relaxed);
    }

    /// Whether a raw picture should be skipped before the encoder now,
    /// because media already waiting, here or on the path, would take
    /// longer than [`SKIP_ABOVE`] to drain.
    pub fn should_skip(&self) -> bool {
        if !self.config.adapt {
            return false;
        }
        if self.path_delay() > SKIP_ABOVE {
            return true;
        }
        let (backlog, rate) = (self.backlog.load(Relaxed), self.uplink_bps.load(Relaxed));
        if rate == 0 {
            return backlog > SKIP_UNMEASURED_BYTES;
        }
        backlog as f64 / rate as f64 > SKIP_ABOVE.as_secs_f64()
    }

    /// Notes that an encoded frame was lost after the encoder.
    pub(super) fn owe_keyframe(&self) {
        self.keyframe_owed.store(true, Relaxed);
    }

    /// Whether the encoder owes a keyframe (and clears it).
    pub fn take_keyframe_owed(&self) -> bool {
        self.keyframe_owed.swap(false, Relaxed)
    }

    /// Notes a `ping` probe written now, if one may be; `false` when too
    /// many are unanswered.
    pub(super) fn probe_sent(&self, now: Instant) -> bool {
        let mut p = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        if p.in_flight.len() >= MAX_PROBES_IN_FLIGHT {
            return false;
        }
        p.in_flight.push_back(now);
        true
    }

    /// Takes the server's `pong` to the oldest probe.
    pub(super) fn pong(&self, now: Instant) {
        let mut p = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sent) = p.in_flight.pop_front() else { return };
        let rtt = now.saturating_duration_since(sent);
        if p.recent.len() == PROBE_WINDOW {
            p.recent.pop_front();
        }
        p.recent.push_back(rtt);
        let fresh =
            p.base.is_some_and(|(b, at)| b <= rtt && now.saturating_duration_since(at) < PROBE_BASE_WINDOW);
        if !fresh {
            p.base = Some((rtt, now));
        }
    }

    /// The queueing on our side of the path, as the probes see it: their
    /// round trip above its base, less what the downlink's queue explains
    /// (that is the peer's sending, which the server reports to the peer).
    pub(super) fn path_delay(&self) -> Duration {
        let p = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(low), Some((base, _))) = (p.recent.iter().min(), p.base) else { return Duration::ZERO };
        let down = Duration::from_micros(self.downlink_delay_us.load(Relaxed));
        low.saturating_sub(base).saturating_sub(down)
    }

    /// Stores the peer's report of how long our media queues on its way (`delay`).
    pub fn set_peer_delay(&self, ms: u32) {
        *self.peer_delay.lock().unwrap_or_else(PoisonError::into_inner) = Some((ms, Instant::now()));
    }

    /// The peer's latest `delay` report, if fresh.
    fn peer_delay(&self, now: Instant) -> Duration {
        let report = *self.peer_delay.lock().unwrap_or_else(PoisonError::into_inner);
        report
            .filter(|(_, at)| now.saturating_duration_since(*at) < PEER_DELAY_FRESH)
            .map_or(Duration::ZERO, |(ms, _)| Duration::from_millis(u64::from(ms)))
    }

    /// Notes that the server does not know `delay` (`error unknown-command`
    /// after we sent one); returns whether a `delay` had been sent, so the
    /// caller can tell this error from others.
    pub fn refuse_delay_reports(&self) -> bool {
        self.delay_refused.store(true, Relaxed);
        // Reports already on their way are answered the same way.
        self.delay_reported.load(Relaxed)
    }

    /// Our downlink's queueing, as the receive thread last measured it.
    pub(super) fn downlink_delay(&self) -> Duration {
        Duration::from_micros(self.downlink_delay_us.load(Relaxed))
    }

    /// Stores how much the peer's audio is queued on its way to us.
    pub fn set_downlink_delay(&self, delay: Duration) {
        self.downlink_delay_us.store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// The uplink's measured rate in bytes/s, if any.
    pub fn uplink_rate(&self) -> Option<f64> {
        Some(self.uplink_bps.load(Relaxed)).filter(|r| *r > 0).map(|r| r as f64)
    }
}

/// The writer thread's own part: the estimator and the controller.
pub(super) struct UplinkControl {
    shared: Arc<Uplink>,
    estimator: DrainEstimator,
    controller: Controller,
    next_tick: Instant,
    /// Audio and video bytes written since the last tick, and their
    /// smoothed rates in bit/s.
    audio_bytes: u64,
    audio_bps: f64,
    video_bytes: u64,
    video_bps: f64,
    last_tick: Instant,
    /// The lowest round-trip time seen lately, and when.
    min_rtt: Option<(u32, Instant)>,
    queue_delay: Duration,
    last_probe: Option<Instant>,
    /// The last `delay` report written, and when.
    last_report: Option<(Duration, Instant)>,
}

/// The minimum round-trip time is forgotten after this long, so a route
/// that got longer is not mistaken for a queue for ever.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);

impl UplinkControl {
    pub(super) fn new(shared: Arc<Uplink>) -> UplinkControl {
        let c = &shared.config;
        let controller = Controller::new(MIN_VIDEO_KBPS, c.max_kbps, c.ladder.clone());
        let now = Instant::now();
        UplinkControl {
            shared,
            estimator: DrainEstimator::first_estimate_after(FIRST_ESTIMATE_AFTER),
            controller,
            next_tick: now,
            audio_bytes: 0,
            audio_bps: 0.0,
            video_bytes: 0,
            video_bps: 0.0,
            last_tick: now,
            min_rtt: None,
            queue_delay: Duration::ZERO,
            last_probe: None,
            last_report: None,
        }
    }

    pub(super) fn adapts(&self) -> bool {
        self.shared.config.adapt
    }

    /// The `delay <ms>` report to write now, if one is due: during a call,
    /// at most every [`REPORT_EVERY`], when our downlink queues at least
    /// [`REPORT_ABOVE`] or has changed that much since the last report.
    pub(super) fn report_due(&mut self, now: Instant) -> Option<u32> {
        let s = &self.shared;
        let flowing = self.video_bps + self.audio_bps > 0.0;
        if !s.config.adapt || !flowing || s.delay_refused.load(Relaxed) {
            return None;
        }
        if self.last_report.is_some_and(|(_, at)| now < at + REPORT_EVERY) {
            return None;
        }
        let delay = s.downlink_delay();
        let last = self.last_report.map_or(Duration::ZERO, |(d, _)| d);
        let changed = delay.abs_diff(last) >= REPORT_ABOVE;
        if delay < REPORT_ABOVE && !changed {
            return None;
        }
        self.last_report = Some((delay, now));
        s.delay_reported.store(true, Relaxed);
        Some(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX).min(komunikator_protocol::MAX_DELAY_MS))
    }

    /// Whether a `ping` probe should be written now: media is flowing
    /// (a call is on) and the last probe is [`PROBE_EVERY`] old.
    pub(super) fn probe_due(&mut self, now: Instant) -> bool {
        let flowing = self.video_bps + self.audio_bps > 0.0 || self.audio_bytes + self.video_bytes > 0;
        if !self.shared.config.adapt || !flowing || self.last_probe.is_some_and(|t| now < t + PROBE_EVERY) {
            return false;
        }
        self.last_probe = Some(now);
        self.shared.probe_sent(now)
    }

    /// Counts media written, for each kind's share of the link.
    pub(super) fn written(&mut self, kind: komunikator_protocol::MediaKind, bytes: usize) {
        match kind {
            komunikator_protocol::MediaKind::Audio => self.audio_bytes += bytes as u64,
            komunikator_protocol::MediaKind::Video => self.video_bytes += bytes as u64,
        }
    }

    /// Follows the round-trip time's recent minimum; the excess is queueing.
    fn track_rtt(&mut self, sample: &Sample) {
        if sample.rtt_us == 0 {
            return;
        }
        let fresh = |(_, at): (u32, Instant)| sample.at.saturating_duration_since(at) < MIN_RTT_WINDOW;
        match self.min_rtt.filter(|m| fresh(*m)) {
            Some((min, _)) if min <= sample.rtt_us => {}
            _ => self.min_rtt = Some((sample.rtt_us, sample.at)),
        }
        let min = self.min_rtt.map_or(sample.rtt_us, |m| m.0);
        self.queue_delay = Duration::from_micros(u64::from(sample.rtt_us.saturating_sub(min)));
    }

    /// Takes a socket sample into the estimate and publishes the backlog.
    pub(super) fn observe(&mut self, sample: Sample, queued_video: usize) {
        self.estimator.observe_waiting(sample, queued_video > 0);
        self.track_rtt(&sample);
        let backlog = queued_video as u64 + u64::from(sample.notsent);
        self.shared.backlog.store(backlog, Relaxed);
        let rate = self.estimator.rate().map_or(0, |r| r.max(1.0) as u64);
        self.shared.uplink_bps.store(rate, Relaxed);
        if sample.at >= self.next_tick {
            self.tick(sample.at, backlog);
        }
    }

    /// Whether `queued_video` bytes would take longer than [`MAX_LANE`] to
    /// drain at the measured uplink rate, or the path already queues that
    /// long (then what waits here would come later still).
    pub(super) fn lane_too_long(&self, queued_video: usize) -> bool {
        if queued_video == 0 {
            return false;
        }
        self.estimator.drain_time(queued_video) > MAX_LANE || self.shared.path_delay() > MAX_LANE
    }

    /// When the controller wants the next sample at the latest.
    pub(super) fn next_tick(&self) -> Instant {
        self.next_tick
    }

    fn tick(&mut self, now: Instant, backlog: u64) {
        self.next_tick = now + TICK;
        let dt = now.saturating_duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        if dt > 0.0 {
            // Smoothed over about half a second.
            let keep = (-dt / 0.5f64).exp();
            let smooth = |avg: f64, bytes: u64| avg * keep + (1.0 - keep) * (bytes as f64 * 8.0 / dt);
            self.audio_bps = smooth(self.audio_bps, self.audio_bytes);
            self.video_bps = smooth(self.video_bps, self.video_bytes);
        }
        (self.audio_bytes, self.video_bytes) = (0, 0);
        if !self.shared.config.adapt {
            return;
        }
        let peer = self.shared.peer_kbps.load(Relaxed);
        let d = self.controller.tick(Observation {
            at: now,
            uplink: self.estimator.rate(),
            backlog: usize::try_from(backlog).unwrap_or(usize::MAX),
            peer_kbps: (peer > 0).then_some(peer),
            audio_bps: self.audio_bps as u32,
            video_bps: self.video_bps as u32,
            queue_delay: self.queue_delay.max(self.shared.path_delay()),
            peer_delay: self.shared.peer_delay(now),
        });
        if std::env::var_os("KOMUNIKATOR_DEBUG_RATE").is_some() {
            eprintln!(
                "rate-debug wall_ms={} est={:?} backlog={} audio_bps={:.0} video_bps={:.0} qdelay={:?} path={:?} peer_kbps={} peer_delay={:?} -> {:?}",
                // The clock of the rate timeline's points, to line them up.
                crate::media::clock::now_us() / 1000,
                self.estimator.rate().map(|r| (r * 8.0 / 1000.0) as u32),
                backlog,
                self.audio_bps,
                self.video_bps,
                self.queue_delay,
                self.shared.path_delay(),
                peer,
                self.shared.peer_delay(now),
                d
            );
        }
        let s = &self.shared;
        let rung = s.config.ladder.iter().position(|r| *r == d.rung).unwrap_or(0);
        s.video_kbps.store(d.video_kbps, Relaxed);
        s.rung.store(u8::try_from(rung).unwrap_or(0), Relaxed);
        s.limit.store(
            match d.limit {
                Limit::None => 0,
                Limit::Uplink => 1,
                Limit::Downlink => 2,
            },
            Relaxed,
        );
    }

    /// Whether a video frame may be written now, with `notsent` bytes still
    /// unsent; otherwise how long to wait at most.
    pub(super) fn gate(&self, notsent: u32) -> Option<Duration> {
        let ahead = self.estimator.drain_time(notsent as usize);
        if ahead <= HOLD_ABOVE {
            return None;
        }
        Some((ahead - HOLD_ABOVE).clamp(Duration::from_millis(1), MAX_RECHECK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_measure_the_queue_above_the_base_round_trip() {
        let up = Uplink::new(RateConfig::adaptive(640, 480, 30, 1000));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for (sent, rtt) in [(0, 10), (200, 12)] {
            assert!(up.probe_sent(t0 + ms(sent)));
            up.pong(t0 + ms(sent + rtt));
        }
        assert_eq!(up.path_delay(), ms(0));
        // A queue builds: 150 ms more on every round trip.
        for sent in [600, 800] {
            up.probe_sent(t0 + ms(sent));
            up.pong(t0 + ms(sent + 160));
        }
        assert_eq!(up.path_delay(), ms(150));
        // One late answer among quick ones is not a queue.
        up.probe_sent(t0 + ms(1200));
        up.pong(t0 + ms(1210));
        assert_eq!(up.path_delay(), ms(0));
        // A pong with no probe in flight changes nothing.
        up.pong(t0 + ms(1300));
        assert_eq!(up.path_delay(), ms(0));
    }

    #[test]
    fn a_lane_longer_than_its_bound_at_the_measured_rate_is_too_long() {
        let mut c = UplinkControl::new(Uplink::new(RateConfig::adaptive(640, 480, 30, 1000)));
        assert!(!c.lane_too_long(1 << 20), "no rate measured, no queue on the path");
        let t0 = Instant::now();
        let at = |ms: u64, acked: u64| Sample {
            at: t0 + Duration::from_millis(ms),
            acked,
            notsent: 4_000,
            unacked: 1,
            rtt_us: 0,
        };
        // 62.5 KB/s (500 kbit/s), backlogged all along.
        c.observe(at(0, 0), 10_000);
        c.observe(at(400, 25_000), 10_000);
        assert!(!c.lane_too_long(20_000), "320 ms");
        assert!(c.lane_too_long(30_000), "480 ms");
        assert!(!c.lane_too_long(0));
    }

    #[test]
    fn skipping_follows_the_backlog_and_the_rate() {
        let up = Uplink::new(RateConfig::adaptive(640, 480, 30, 1000));
        assert!(!up.should_skip());
        up.backlog.store(300 << 10, Relaxed);
        assert!(up.should_skip(), "a large unmeasured backlog");
        up.uplink_bps.store(62_500, Relaxed);
        up.backlog.store(5_000, Relaxed);
        assert!(!up.should_skip(), "80 ms at 500 kbit/s");
        up.backlog.store(7_000, Relaxed);
        assert!(up.should_skip(), "112 ms at 500 kbit/s");
        let fixed = Uplink::new(RateConfig::fixed(640, 480, 30, 1000));
        fixed.backlog.store(1 << 30, Relaxed);
        assert!(!fixed.should_skip(), "no adaptation: never");
        assert_eq!(fixed.decision().rung.width, 640);
        assert_eq!(fixed.decision().video_kbps, 1000);
    }
}
