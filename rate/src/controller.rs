//! [`Controller`]: the sender's video bitrate and picture size, following
//! the path. Owned by the client's writer thread, which ticks it with an
//! [`Observation`] about every [`TICK`]; the sending pipeline reads its
//! [`Decision`] (through atomics) and applies it to the encoder.
//!
//! The path has two ends that can limit a call: the sender's own uplink,
//! which the sender sees as media waiting in its queue and socket, and the
//! receiver's downlink, which the server measures and reports (`rate`).
//! The rule, in the spirit of delay-based congestion control:
//!
//! * **Down at once.** When media waits longer than [`CONGESTED`] to drain
//!   at the measured uplink rate, or the server reports the peer's downlink,
//!   the video rate drops to [`HEADROOM`] of that rate minus the audio, in
//!   the same tick: the leftover drains the queue.
//! * **Up by probing.** After [`CALM_AFTER`] with nothing waiting and no
//!   limit reported, the rate grows by [`FAST_GROWTH`] a second, slowing to
//!   [`SLOW_GROWTH`] near the link rate last measured, so a link that
//!   grows is found within seconds and a link that did not is touched
//!   gently; [`OUTGROWN`] past that rate, growth is fast again.
//! * **Smaller pictures at low rates.** Each [`Rung`] of the ladder needs a
//!   minimum rate; below it the next smaller picture (and, at the bottom,
//!   half the frame rate) is used, so every frame stays small enough to
//!   cross the link in well under the audio's latency budget. Going back up
//!   needs [`UP_MARGIN`] above the threshold for [`UP_AFTER`].

use std::time::{Duration, Instant};

/// How often the owner should tick the controller.
pub const TICK: Duration = Duration::from_millis(100);

/// Media waiting longer than this to drain means the uplink is full.
pub const CONGESTED: Duration = Duration::from_millis(60);

/// The share of a measured rate that the whole call's media may take.
pub const HEADROOM: f64 = 0.85;

/// Quiet time after congestion before the rate grows again.
pub const CALM_AFTER: Duration = Duration::from_millis(600);

/// The uplink's own rate is cut at most this often: a backlog takes a
/// while to drain after a cut, and the estimate is noisy.
pub const CUT_EVERY: Duration = Duration::from_millis(500);

/// Queueing delay on the path (a round-trip time above its minimum: the
/// socket's, or the server's answers to `ping`) beyond which the uplink
/// counts as full even while nothing waits in the sender: a router's
/// buffer is filling.
pub const QUEUE_DELAY: Duration = Duration::from_millis(60);

/// Queueing delay beyond which the rate stops growing: the path holds more
/// than it should, probing further would only fill it.
pub const HOLD_DELAY: Duration = Duration::from_millis(25);

/// The rate grows only while the encoder uses at least this share of it:
/// an encoder that undershoots (a still picture) proves nothing about the
/// link, so growing the target would only store up a burst.
pub const USED_SHARE: f64 = 0.75;

/// The most one cut takes off the rate.
pub const MAX_CUT: f64 = 0.25;

/// Growth per second well below the link rate last measured (or with none).
pub const FAST_GROWTH: f64 = 0.4;

/// Growth per second when the rate comes near the link rate last measured:
/// probing gently for more. It doubles every [`PROBE_DOUBLING`] of calm, up
/// to [`FAST_GROWTH`], so a link that grew is found within seconds.
pub const SLOW_GROWTH: f64 = 0.05;

/// See [`SLOW_GROWTH`].
pub const PROBE_DOUBLING: Duration = Duration::from_secs(2);

/// A rate this far above the link rate last measured, reached with no queue
/// building, means the link grew: growth is fast again.
pub const OUTGROWN: f64 = 1.25;

/// A bigger picture needs this much more than its threshold...
pub const UP_MARGIN: f64 = 1.25;

/// ...for this long.
pub const UP_AFTER: Duration = Duration::from_secs(2);

/// The video rate below which the smallest picture is used, for a
/// 640x480@30 picture; scaled by pixel rate for other sizes.
const VGA_FULL_KBPS: f64 = 450.0;

/// The same for the middle rung.
const VGA_MIDDLE_KBPS: f64 = 240.0;

/// One picture size the sender may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// The video rate this size needs, in kbit/s (0 for the smallest).
    pub min_kbps: u32,
}

/// The ladder for a configured picture, biggest first: the picture itself,
/// three quarters of it, then half of it at no more than 15 frames/s.
/// Pictures of 320 pixels wide or less have only one rung.
pub fn ladder(width: u32, height: u32, fps: u32) -> Vec<Rung> {
    let even = |v: u32| (v / 2 * 2).max(2);
    let scale = (f64::from(width) * f64::from(height) * f64::from(fps)) / (640.0 * 480.0 * 30.0);
    let need = |vga: f64| (vga * scale.powf(0.75)).round() as u32;
    if width <= 320 {
        return vec![Rung { width, height, fps, min_kbps: 0 }];
    }
    vec![
        Rung { width, height, fps, min_kbps: need(VGA_FULL_KBPS) },
        Rung {
            width: even(width * 3 / 4),
            height: even(height * 3 / 4),
            fps,
            min_kbps: need(VGA_MIDDLE_KBPS),
        },
        Rung { width: even(width / 2), height: even(height / 2), fps: fps.min(15), min_kbps: 0 },
    ]
}

/// What the owner knows at one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Now.
    pub at: Instant,
    /// The uplink's drain rate in bytes per second, if it was measured.
    pub uplink: Option<f64>,
    /// Bytes of media waiting in the sender: its queue and its socket's
    /// unsent bytes.
    pub backlog: usize,
    /// The peer's downlink as the server last reported it, in kbit/s.
    pub peer_kbps: Option<u32>,
    /// What the audio takes, framing included, in bit/s.
    pub audio_bps: u32,
    /// What the video actually took lately, in bit/s.
    pub video_bps: u32,
    /// The path's queueing delay: a round-trip time above its recent
    /// minimum (the larger of the socket's and the application's).
    pub queue_delay: Duration,
    /// How long our media queues on its way to the peer, as the peer
    /// measures it and reports it (`delay`): the queue on its downlink
    /// (and on our uplink) that no measurement of ours can see.
    pub peer_delay: Duration,
}

/// Which end of the path limits the video now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limit {
    /// Neither: video runs at the user's maximum or is growing towards it.
    #[default]
    None,
    /// Our own uplink.
    Uplink,
    /// The peer's downlink, as the server reported it.
    Downlink,
}

/// What the sender should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The encoder's bitrate, in kbit/s.
    pub video_kbps: u32,
    /// The picture to send.
    pub rung: Rung,
    /// What limits it.
    pub limit: Limit,
}

/// The sender's rate controller. See the module documentation.
#[derive(Debug, Clone)]
pub struct Controller {
    min_kbps: f64,
    max_kbps: f64,
    target: f64,
    ladder: Vec<Rung>,
    rung: usize,
    last_tick: Option<Instant>,
    congested_at: Option<Instant>,
    cut_at: Option<Instant>,
    /// When the uplink was last full or the downlink last reported.
    limited_at: Option<Instant>,
    /// The whole call's rate at the last limit (the link, as measured);
    /// growth slows near it.
    last_link: Option<f64>,
    /// Since when the target has been high enough for the next bigger rung.
    up_since: Option<Instant>,
    limit: Limit,
}

impl Controller {
    /// A controller that starts at `max_kbps` (the user's maximum), never
    /// goes below `min_kbps`, and picks pictures from `ladder` (biggest first,
    /// not empty).
    pub fn new(min_kbps: u32, max_kbps: u32, ladder: Vec<Rung>) -> Controller {
        let ladder =
            if ladder.is_empty() { vec![Rung { width: 0, height: 0, fps: 0, min_kbps: 0 }] } else { ladder };
        let max = f64::from(max_kbps.max(min_kbps).max(1));
        let mut c = Controller {
            min_kbps: f64::from(min_kbps.min(max_kbps)),
            max_kbps: max,
            target: max,
            ladder,
            rung: 0,
            last_tick: None,
            congested_at: None,
            cut_at: None,
            limited_at: None,
            last_link: None,
            up_since: None,
            limit: Limit::None,
        };
        c.rung = c.rung_for(c.target, 1.0);
        c
    }

    /// The current decision, without ticking.
    pub fn decision(&self) -> Decision {
        Decision { video_kbps: self.target.round() as u32, rung: self.ladder[self.rung], limit: self.limit }
    }

    /// Takes an observation and decides.
    pub fn tick(&mut self, obs: Observation) -> Decision {
        let dt = self
            .last_tick
            .map_or(Duration::ZERO, |t| obs.at.saturating_duration_since(t))
            .min(Duration::from_secs(1))
            .as_secs_f64();
        self.last_tick = Some(obs.at);
        let audio_kbps = f64::from(obs.audio_bps) / 1000.0;
        let allowed = |link_kbps: f64| link_kbps * HEADROOM - audio_kbps;
        let backlogged = match obs.uplink {
            Some(rate) if rate > 0.0 => obs.backlog as f64 / rate > CONGESTED.as_secs_f64(),
            // Not measured yet: only a large backlog counts.
            _ => obs.backlog > 64 << 10,
        };
        let delay = obs.queue_delay.max(obs.peer_delay);
        let queueing = delay > QUEUE_DELAY;
        // Which end the queue is at. The peer's figure includes our uplink's
        // queue (and what waits in our own socket), so it names the
        // downlink only when most of it lies beyond what we measure
        // ourselves, by a clear margin: noise between two measurements of
        // one queue must not tell the user the wrong end.
        let beyond_ours = obs.peer_delay.saturating_sub(obs.queue_delay);
        let queue_end = if beyond_ours > obs.queue_delay && beyond_ours > QUEUE_DELAY {
            Limit::Downlink
        } else {
            Limit::Uplink
        };
        // A queue in the network: what we send is more than the link takes
        // (an upper bound on it, and what the cut starts from).
        let sent_kbps = f64::from(obs.video_bps.saturating_add(obs.audio_bps)) / 1000.0;
        // A queue on the path drains only at what the link takes beyond
        // what is sent: the deeper it is, the deeper the cut (down to half).
        let drain = (1.0 - delay.as_secs_f64()).clamp(0.5, 1.0);
        let uplink_kbps = match (backlogged, queueing) {
            (true, _) => obs.uplink.map(|r| r * 8.0 / 1000.0),
            (false, true) => Some(sent_kbps),
            (false, false) => None,
        };
        // The cap, what limits it, the link rate measured behind it (none
        // when it comes from what got through a queue: that only bounds the
        // link from above), and whether it comes from a queue (spaced cuts)
        // or a report.
        let (mut cap, mut limit, mut link, mut from_queue) = (f64::INFINITY, Limit::None, None, false);
        // Within one stretch of congestion, every cut's measurement counts.
        let continuing = !self.calm(obs.at);
        if backlogged || queueing {
            self.congested_at = Some(obs.at);
            self.limited_at = Some(obs.at);
            let may_cut = self.cut_at.is_none_or(|t| obs.at.saturating_duration_since(t) >= CUT_EVERY);
            if let Some(up) = uplink_kbps.filter(|_| may_cut) {
                cap = allowed(up * drain);
                limit = if backlogged { Limit::Uplink } else { queue_end };
                (link, from_queue) = (backlogged.then_some(up), true);
            }
        }
        if let Some(peer) = obs.peer_kbps {
            let down = allowed(f64::from(peer));
            self.limited_at = Some(obs.at);
            // A report is a measurement of the link: one above the link
            // remembered means it grew (or the first was low).
            if self.last_link.is_some_and(|l| f64::from(peer) > l) {
                self.last_link = Some(f64::from(peer));
            }
            if down < cap {
                (cap, limit, link, from_queue) = (down, Limit::Downlink, Some(f64::from(peer)), false);
            }
        }
        // One cut takes at most three quarters off the rate: a stalled
        // measurement (a busy machine, a lost burst of ACKs) must not send
        // it to the floor.
        cap = cap.max(self.target * MAX_CUT);
        if cap < self.target {
            // A queue that builds while we send bounds the link from above
            // by what we send: a measurement above it is stale or counts
            // buffers filling, not the link.
            let link = link.map(|l| if queueing { l.min(sent_kbps) } else { l });
            self.remember_link(link, (cap + audio_kbps) / HEADROOM, continuing);
            // What limits the rate stays the answer until it is back at the maximum.
            self.limit = limit;
            // A queue takes a while to drain after a cut, whichever end it
            // is at; a reported rate is a cap, not a cut, and may apply at
            // every tick.
            if from_queue {
                self.cut_at = Some(obs.at);
            }
            self.target = cap;
        } else if self.calm(obs.at)
            && delay <= HOLD_DELAY
            && f64::from(obs.video_bps) / 1000.0 >= self.target * USED_SHARE
        {
            // Growth, up to a reported rate if there is one: a report
            // below which the rate was cut (a stale one, from the start of
            // the call) must not hold it there.
            self.target = (self.target * (1.0 + self.growth(obs.at, audio_kbps) * dt)).min(cap);
            // Well past the last link measured with no queue building: the
            // link grew, and probing gently near its old rate is over.
            if self.last_link.is_some_and(|link| self.target + audio_kbps > link * OUTGROWN) {
                self.last_link = None;
            }
        }
        self.target = self.target.clamp(self.min_kbps, self.max_kbps);
        if self.target >= self.max_kbps {
            self.limit = Limit::None;
        }
        self.step_rung(obs.at);
        self.decision()
    }

    /// Keeps the link rate behind a cut, which growth slows near: the
    /// lowest `measured` in one stretch of congestion (the first may be
    /// stale, just after the link shrank), not the deeper rate that drains
    /// its queue. Without a measurement, `bound` (the rate cut to, with
    /// headroom) unless this stretch measured one.
    fn remember_link(&mut self, measured: Option<f64>, bound: f64, continuing: bool) {
        let kept = self.last_link.filter(|_| continuing);
        self.last_link = match (measured, kept) {
            (Some(m), Some(k)) => Some(m.min(k)),
            (Some(m), None) => Some(m),
            (None, Some(k)) => Some(k),
            (None, None) => Some(bound),
        };
    }

    /// Growth per second now: fast while well below the last measured link,
    /// then slow, speeding up the longer it stays calm.
    fn growth(&self, now: Instant, audio_kbps: f64) -> f64 {
        let Some(link) = self.last_link else { return FAST_GROWTH };
        if self.target + audio_kbps < link * 0.9 {
            return FAST_GROWTH;
        }
        let calm = self.limited_at.map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
        (SLOW_GROWTH * 2f64.powf(calm / PROBE_DOUBLING.as_secs_f64())).min(FAST_GROWTH)
    }

    fn calm(&self, now: Instant) -> bool {
        self.congested_at.is_none_or(|t| now.saturating_duration_since(t) >= CALM_AFTER)
    }

    /// The index of the biggest rung whose threshold × `margin` the target meets.
    fn rung_for(&self, target: f64, margin: f64) -> usize {
        self.ladder
            .iter()
            .position(|r| target >= f64::from(r.min_kbps) * margin)
            .unwrap_or(self.ladder.len() - 1)
    }

    fn step_rung(&mut self, now: Instant) {
        let down = self.rung_for(self.target, 1.0);
        if down > self.rung {
            (self.rung, self.up_since) = (down, None);
            return;
        }
        let up = self.rung_for(self.target, UP_MARGIN);
        if up >= self.rung {
            self.up_since = None;
            return;
        }
        let since = *self.up_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= UP_AFTER {
            (self.rung, self.up_since) = (self.rung - 1, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: u32 = 34_000;

    fn obs(at: Instant, uplink_kbps: Option<f64>, backlog_ms: f64, peer: Option<u32>) -> Observation {
        let uplink = uplink_kbps.map(|k| k * 1000.0 / 8.0);
        let backlog = uplink.map_or(0.0, |r| r * backlog_ms / 1000.0) as usize;
        // The encoder uses what it is given.
        Observation {
            at,
            uplink,
            backlog,
            peer_kbps: peer,
            audio_bps: AUDIO,
            video_bps: u32::MAX / 2,
            queue_delay: Duration::ZERO,
            peer_delay: Duration::ZERO,
        }
    }

    /// Runs `secs` of ticks with the same link and returns the last decision.
    fn run(
        c: &mut Controller,
        t: &mut Instant,
        secs: f64,
        f: impl Fn(f64, Instant) -> Observation,
    ) -> Decision {
        let mut d = c.decision();
        for _ in 0..(secs / TICK.as_secs_f64()).round() as usize {
            *t += TICK;
            d = c.tick(f(c.decision().video_kbps.into(), *t));
        }
        d
    }

    /// A link of `kbps`: the backlog is what sending above it for one tick leaves.
    fn link(kbps: f64) -> impl Fn(f64, Instant) -> Observation {
        move |video, at| {
            let total = video + f64::from(AUDIO) / 1000.0;
            let backlog_ms = if total > kbps { 100.0 * (total - kbps) / kbps * 10.0 } else { 0.0 };
            obs(at, Some(kbps), backlog_ms, None)
        }
    }

    #[test]
    fn the_ladder_of_a_vga_picture() {
        let l = ladder(640, 480, 30);
        let sizes: Vec<_> = l.iter().map(|r| (r.width, r.height, r.fps)).collect();
        assert_eq!(sizes, [(640, 480, 30), (480, 360, 30), (320, 240, 15)]);
        assert_eq!(l[0].min_kbps, 450);
        assert_eq!(ladder(320, 240, 30).len(), 1);
        assert!(ladder(1280, 720, 30)[0].min_kbps > 900);
    }

    #[test]
    fn a_fast_link_keeps_the_maximum() {
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let mut t = Instant::now();
        let d = run(&mut c, &mut t, 10.0, link(100_000.0));
        assert_eq!((d.video_kbps, d.rung.width, d.limit), (1000, 640, Limit::None));
    }

    #[test]
    fn a_slow_uplink_cuts_the_rate_in_one_tick_and_shrinks_the_picture() {
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let t = Instant::now() + TICK;
        let d = c.tick(obs(t, Some(500.0), 300.0, None));
        assert_eq!((d.limit, d.video_kbps), (Limit::Uplink, (500.0 * HEADROOM - 34.0f64).round() as u32));
        assert_eq!(d.rung.width, 480, "391 kbit/s is below the full picture's 450");
        let d = c.tick(obs(t + TICK, Some(300.0), 300.0, None));
        assert_eq!(d.rung.width, 480, "cuts are spaced");
        let d = c.tick(obs(t + CUT_EVERY, Some(300.0), 300.0, None));
        assert_eq!((d.rung.width, d.rung.fps), (320, 15));
    }

    #[test]
    fn a_reported_downlink_caps_the_rate_until_lifted() {
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let mut t = Instant::now();
        let d = run(&mut c, &mut t, 3.0, |_, at| obs(at, None, 0.0, Some(500)));
        assert_eq!((d.video_kbps, d.limit), (391, Limit::Downlink));
        // Lifted: growing back, and the downlink stays the answer until the maximum.
        let d = run(&mut c, &mut t, 1.0, |_, at| obs(at, None, 0.0, None));
        assert_eq!(d.limit, Limit::Downlink);
        let d = run(&mut c, &mut t, 10.0, |_, at| obs(at, None, 0.0, None));
        assert_eq!((d.video_kbps, d.limit, d.rung.width), (1000, Limit::None, 640));
    }

    #[test]
    fn a_step_down_and_back_up_is_followed() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        let d = run(&mut c, &mut t, 5.0, link(2000.0));
        assert!(d.video_kbps >= 1400, "{d:?}");
        // 300 kbit/s: cut at once, below the link within a second.
        t += TICK;
        let first = c.tick(link(300.0)(f64::from(d.video_kbps), t));
        assert!(first.video_kbps <= d.video_kbps / 2 + 1, "{first:?}");
        let d = run(&mut c, &mut t, 1.0, link(300.0));
        assert!(f64::from(d.video_kbps) + 34.0 < 300.0, "{d:?}");
        let d = run(&mut c, &mut t, 10.0, link(300.0));
        assert!(f64::from(d.video_kbps) + 34.0 < 330.0, "{d:?}");
        assert!(d.video_kbps > 150, "no collapse: {d:?}");
        // Back to 2000: at least 70 % of the link within 10 s.
        let d = run(&mut c, &mut t, 10.0, link(2000.0));
        assert!(d.video_kbps >= 1400 - 34, "{d:?}");
        assert_eq!(d.rung.width, 640);
    }

    #[test]
    fn a_reported_rate_above_the_target_lets_it_grow_to_it() {
        // A low first report (the server measured the call's first burst),
        // then the downlink's real rate: the video follows it up.
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let mut t = Instant::now();
        let d = run(&mut c, &mut t, 1.0, |_, at| obs(at, None, 0.0, Some(168)));
        assert_eq!(d.video_kbps, 109);
        let d = run(&mut c, &mut t, 8.0, |_, at| obs(at, None, 0.0, Some(500)));
        assert_eq!((d.video_kbps, d.limit), (391, Limit::Downlink));
    }

    #[test]
    fn a_deep_cut_to_drain_a_queue_grows_back_fast_to_the_link() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        run(&mut c, &mut t, 3.0, link(2000.0));
        // A second and a half queued at 300 kbit/s: cut to half the link's
        // share and lower, to drain it...
        let queued = |_, at| Observation {
            queue_delay: Duration::from_millis(1500),
            ..obs(at, Some(300.0), 300.0, None)
        };
        let d = run(&mut c, &mut t, 2.0, queued);
        assert!(d.video_kbps < 150, "{d:?}");
        // ...and once it drained, back near the link quickly: 300 kbit/s
        // was the link, not the drained rate.
        let d = run(&mut c, &mut t, 3.0, link(300.0));
        assert!(d.video_kbps >= 200, "{d:?}");
    }

    #[test]
    fn one_stretch_of_congestion_remembers_its_lowest_measured_link() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        run(&mut c, &mut t, 3.0, link(2000.0));
        // Just after the drop the drain rate is stale (1000), then right
        // (300), then noisy (600): 300 is the link.
        for kbps in [1000.0, 300.0, 600.0] {
            t += CUT_EVERY;
            c.tick(obs(t, Some(kbps), 300.0, None));
        }
        assert_eq!(c.last_link, Some(300.0));
        // What got through a queue is only an upper bound: it does not
        // replace a measurement of the same stretch.
        t += CUT_EVERY;
        c.tick(Observation {
            queue_delay: Duration::from_millis(200),
            video_bps: 50_000,
            ..obs(t, None, 0.0, None)
        });
        assert_eq!(c.last_link, Some(300.0));
        // A new stretch after calm measures afresh.
        run(&mut c, &mut t, 5.0, |_, at| obs(at, None, 0.0, None));
        t += TICK;
        let before = c.decision().video_kbps;
        c.tick(obs(t, Some(400.0), 300.0, None));
        assert!(c.decision().video_kbps < before);
        assert_eq!(c.last_link, Some(400.0));
    }

    #[test]
    fn a_link_that_grew_past_its_old_rate_is_probed_fast() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        run(&mut c, &mut t, 3.0, link(2000.0));
        let d = run(&mut c, &mut t, 10.0, link(300.0));
        assert!(f64::from(d.video_kbps) + 34.0 < 300.0, "{d:?}");
        // Gently near 300, then fast once well past it: 70 % of the new
        // link within 8 s.
        let d = run(&mut c, &mut t, 8.0, link(2000.0));
        assert!(d.video_kbps + 34 >= 1400, "{d:?}");
    }

    #[test]
    fn the_floor_and_the_maximum_hold() {
        let mut c = Controller::new(100, 800, ladder(640, 480, 30));
        let t = Instant::now();
        let mut t = t;
        let d = run(&mut c, &mut t, 3.0, |_, at| obs(at, Some(50.0), 1000.0, None));
        assert_eq!(d.video_kbps, 100);
        let d = run(&mut c, &mut t, 30.0, link(100_000.0));
        assert_eq!(d.video_kbps, 800);
        // A degenerate ladder or limits never panic.
        let mut c = Controller::new(500, 100, Vec::new());
        let d = c.tick(obs(t, Some(0.0), 0.0, Some(1)));
        assert!((100..=500).contains(&d.video_kbps), "{d:?}");
    }

    #[test]
    fn a_growing_network_queue_cuts_to_what_got_through() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let t = Instant::now();
        let mut o = obs(t, None, 0.0, None);
        (o.video_bps, o.queue_delay) = (700_000, Duration::from_millis(150));
        let d = c.tick(o);
        assert_eq!((d.video_kbps, d.limit), (500, Limit::Uplink), "a quarter of 2000 at most");
        // Cuts are spaced: the same queue a tick later does not cut again.
        o.at += TICK;
        assert_eq!(c.tick(o).video_kbps, d.video_kbps);
        o.at += CUT_EVERY;
        // 150 ms of queue: 85 % of what got through, less 15 % to drain it.
        assert_eq!(c.tick(o).video_kbps, ((734.0 * 0.85 * HEADROOM) - 34.0f64).round() as u32);
    }

    #[test]
    fn a_queue_the_peer_reports_cuts_and_names_the_downlink() {
        let mut c = Controller::new(100, 500, ladder(640, 480, 30));
        let t = Instant::now();
        let mut o = obs(t, None, 0.0, None);
        (o.video_bps, o.peer_delay) = (500_000, Duration::from_millis(200));
        let d = c.tick(o);
        assert_eq!(d.limit, Limit::Downlink);
        assert_eq!(d.video_kbps, ((534.0 * 0.8 * HEADROOM) - 34.0f64).round() as u32);
        // The same report a tick later: the queue has had no time to drain,
        // so it does not cut again (it used to, every tick, to the floor).
        (o.at, o.video_bps) = (o.at + TICK, d.video_kbps * 1000);
        assert_eq!(c.tick(o).video_kbps, d.video_kbps, "cuts for the peer's queue are spaced too");
        o.at += CUT_EVERY;
        assert!(c.tick(o).video_kbps < d.video_kbps, "a queue that stays is cut again");
    }

    #[test]
    fn one_queue_seen_from_both_ends_is_our_uplink() {
        // Our uplink's queue delays our probes (120 ms) and, a little more,
        // the media the peer receives (170 ms): that is not the downlink.
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let mut o = obs(Instant::now(), None, 0.0, None);
        (o.video_bps, o.queue_delay, o.peer_delay) =
            (500_000, Duration::from_millis(120), Duration::from_millis(170));
        assert_eq!(c.tick(o).limit, Limit::Uplink);
        // A queue mostly beyond what we see is the peer's downlink.
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        (o.queue_delay, o.peer_delay) = (Duration::from_millis(40), Duration::from_millis(170));
        assert_eq!(c.tick(o).limit, Limit::Downlink);
    }

    #[test]
    fn a_filling_path_holds_the_rate() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        t += TICK;
        c.tick(obs(t, Some(1000.0), 300.0, None));
        let low = c.decision().video_kbps;
        let d = run(&mut c, &mut t, 5.0, |_, at| Observation {
            queue_delay: HOLD_DELAY + Duration::from_millis(10),
            ..obs(at, None, 0.0, None)
        });
        assert_eq!(d.video_kbps, low, "no growth while the path holds 50 ms");
    }

    #[test]
    fn an_encoder_that_undershoots_does_not_raise_the_target() {
        let mut c = Controller::new(100, 2000, ladder(640, 480, 30));
        let mut t = Instant::now();
        t += TICK;
        c.tick(obs(t, Some(500.0), 300.0, None));
        let low = c.decision().video_kbps;
        let d =
            run(&mut c, &mut t, 10.0, |_, at| Observation { video_bps: 50_000, ..obs(at, None, 0.0, None) });
        assert_eq!(d.video_kbps, low, "a still picture uses 50 kbit/s of {low}");
    }

    #[test]
    fn an_unmeasured_backlog_only_counts_when_large() {
        let mut c = Controller::new(100, 1000, ladder(640, 480, 30));
        let mut t = Instant::now();
        let o = |at| Observation {
            at,
            uplink: None,
            backlog: 100 << 10,
            peer_kbps: None,
            audio_bps: AUDIO,
            video_bps: 1_000_000,
            queue_delay: Duration::ZERO,
            peer_delay: Duration::ZERO,
        };
        let d = run(&mut c, &mut t, 2.0, |_, at| o(at));
        assert_eq!((d.video_kbps, d.limit), (1000, Limit::None), "no rate to cut to: unchanged");
    }
}
