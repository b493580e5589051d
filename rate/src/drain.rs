//! [`DrainEstimator`]: how fast the far end of a TCP connection takes bytes,
//! estimated from [`Sample`]s of the socket. Owned by the thread that writes
//! the socket, which takes the samples: the server's writer thread for a
//! receiver (inside its pacer), the client's writer thread for its uplink.
//!
//! Between two samples that both found unsent bytes, the connection was the
//! bottleneck all along (probably), so the bytes acknowledged per second are
//! its drain rate: they go into a decaying average. Any interval gives a
//! lower bound; one over at least [`SPEED_UP_BYTES`] that is faster than the
//! estimate replaces it: that is how a link that speeds up is noticed. So do
//! [`PROBE_BYTES`] acknowledged since the socket was last idle, an interval
//! that leaves out the idle time before a write: a probe after a pause is
//! measured by its own bytes, and a stale low estimate cannot lock a fast
//! link out. [`DrainEstimator::forget_if_idle`] forgets an estimate once the
//! socket has been idle for [`FORGET_AFTER`].

use std::time::{Duration, Instant};

use crate::tcp::Sample;

/// Intervals shorter than this say too little about the drain rate.
const MIN_INTERVAL: Duration = Duration::from_millis(5);

/// The estimate averages backlogged intervals over about this long, which
/// smooths the bursts in which a small receive window is acknowledged.
const AVERAGE_OVER: f64 = 0.5;

/// Backlogged time needed before the first estimate, by default.
const FIRST_ESTIMATE_AFTER: Duration = Duration::from_millis(50);

/// Backlogged time in the average before the estimate is settled
/// ([`DrainEstimator::settled_rate`]); the average's weights make that
/// about a quarter of a second of backlog.
const SETTLED_AFTER: f64 = 0.2;

/// A write to the socket that took this long waited for the far end: the
/// socket was backlogged all along (see [`DrainEstimator::observe_write`]).
pub const BLOCKED: Duration = MIN_INTERVAL;

/// A sample taken at most this long before a write started marks the
/// write's start.
const WRITE_LEAD: Duration = Duration::from_millis(2);

/// An interval in which the far end took at least this much, faster than
/// the estimate, replaces it. Less could be a receive window acknowledged
/// at once, which says nothing about the rate.
pub const SPEED_UP_BYTES: u64 = 16 << 10;

/// Bytes acknowledged since the socket was last idle that bound the rate
/// from below, however long the socket was idle before.
pub const PROBE_BYTES: u64 = 64 << 10;

/// An estimate is forgotten once every sample for this long found the
/// socket idle (see [`DrainEstimator::forget_if_idle`]).
pub const FORGET_AFTER: Duration = Duration::from_secs(1);

/// The estimated drain rate of one connection. See the module documentation.
#[derive(Debug, Clone)]
pub struct DrainEstimator {
    /// Backlogged seconds needed before the first estimate.
    first_after: f64,
    last: Option<Sample>,
    /// Where the interval of the next lower bound starts.
    anchor: Option<Sample>,
    /// The last sample that found the socket idle: bytes acknowledged since
    /// then were all sent since then, so they bound the rate from below.
    idle: Option<Sample>,
    /// When a sample last found the socket busy (not idle).
    busy_at: Option<Instant>,
    /// The end of the last backlogged interval.
    backlogged_at: Option<Instant>,
    /// Bytes acknowledged and seconds elapsed in backlogged intervals, both
    /// decaying with [`AVERAGE_OVER`].
    bytes: f64,
    secs: f64,
    /// Bytes per second; `None` until the socket has been seen backlogged.
    rate: Option<f64>,
}

impl Default for DrainEstimator {
    fn default() -> DrainEstimator {
        DrainEstimator::first_estimate_after(FIRST_ESTIMATE_AFTER)
    }
}

impl DrainEstimator {
    /// An estimator that gives its first estimate only after `backlogged`
    /// time: longer smooths the bursts of a link that delivers in chunks.
    pub fn first_estimate_after(backlogged: Duration) -> DrainEstimator {
        DrainEstimator {
            first_after: backlogged.as_secs_f64(),
            last: None,
            anchor: None,
            idle: None,
            busy_at: None,
            backlogged_at: None,
            bytes: 0.0,
            secs: 0.0,
            rate: None,
        }
    }

    /// Takes a new sample into the estimate.
    pub fn observe(&mut self, now: Sample) {
        self.observe_waiting(now, false);
    }

    /// Takes a new sample into the estimate, where `waiting` says whether
    /// the sender itself holds more to send beyond the socket: then the
    /// connection counts as backlogged even while its unsent bytes are zero
    /// for a moment.
    pub fn observe_waiting(&mut self, now: Sample, waiting: bool) {
        self.take(now, false, waiting);
    }

    /// Takes a sample taken after a write that started at `started` and
    /// took at least [`BLOCKED`]: the write waited for the far end, so when
    /// the previous sample marks its start, the far end was the bottleneck
    /// from that sample to this one, whatever either found unsent. This is
    /// how a far end that takes data as fast as the writer gives it (never
    /// two samples with unsent bytes in a row) is measured.
    pub fn observe_write(&mut self, now: Sample, started: Instant) {
        let marked = self.last.is_some_and(|l| started.saturating_duration_since(l.at) <= WRITE_LEAD);
        self.take(now, marked, false);
    }

    fn take(&mut self, now: Sample, blocked: bool, waiting: bool) {
        self.average(now, blocked, waiting);
        self.bound(now);
        if blocked || !now.idle() {
            self.busy_at = Some(now.at);
        }
    }

    fn average(&mut self, now: Sample, blocked: bool, waiting: bool) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        let dt = now.at.saturating_duration_since(last.at);
        if dt < MIN_INTERVAL {
            return;
        }
        self.last = Some(now);
        if blocked || (last.notsent > 0 && (now.notsent > 0 || waiting)) {
            self.backlogged_at = Some(now.at);
            let (acked, dt) = (now.acked.saturating_sub(last.acked), dt.as_secs_f64());
            let keep = (-dt / AVERAGE_OVER).exp();
            self.bytes = self.bytes * keep + acked as f64;
            self.secs = self.secs * keep + dt;
            if self.rate.is_some() || self.secs >= self.first_after {
                self.rate = Some(self.bytes / self.secs);
            }
        }
    }

    /// Every [`SPEED_UP_BYTES`] acknowledged, busy or not, give a lower
    /// bound; so do [`PROBE_BYTES`] acknowledged since the socket was last
    /// idle.
    fn bound(&mut self, now: Sample) {
        if let Some(idle) = self.idle {
            self.raise(idle, now, PROBE_BYTES);
        }
        if now.idle() {
            self.idle = Some(now);
        }
        let Some(anchor) = self.anchor else {
            self.anchor = Some(now);
            return;
        };
        if self.raise(anchor, now, SPEED_UP_BYTES) {
            self.anchor = Some(now);
        }
    }

    /// Takes the bytes acknowledged from `from` to `now` as a lower bound,
    /// if they are at least `enough`; returns whether they were.
    fn raise(&mut self, from: Sample, now: Sample, enough: u64) -> bool {
        let acked = now.acked.saturating_sub(from.acked);
        if acked < enough {
            return false;
        }
        let dt = now.at.saturating_duration_since(from.at).max(MIN_INTERVAL).as_secs_f64();
        if self.rate.is_some_and(|r| acked as f64 / dt > r) {
            (self.bytes, self.secs) = (acked as f64, dt);
            self.rate = Some(self.bytes / self.secs);
        }
        true
    }

    /// Forgets the estimate when the socket was idle at every sample for
    /// [`FORGET_AFTER`] before `now`: nothing unsent and nothing in flight
    /// means the far end is not the limit any more, and a new backlog is
    /// measured afresh.
    pub fn forget_if_idle(&mut self, now: Instant) {
        let quiet = self.busy_at.is_none_or(|t| now.saturating_duration_since(t) >= FORGET_AFTER);
        if self.rate.is_some() && quiet {
            self.forget();
        }
    }

    /// Forgets the estimate; the next backlog measures afresh.
    pub fn forget(&mut self) {
        (self.bytes, self.secs, self.rate) = (0.0, 0.0, None);
    }

    /// The estimated drain rate in bytes per second, if the connection was
    /// backlogged (and not forgotten since).
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// The estimate, once it rests on at least [`SETTLED_AFTER`] of
    /// backlogged time (decayed like the average): over shorter spans a
    /// small receive window is acknowledged in bursts, and the rate swings
    /// between nothing and plenty. This is what is worth telling a sender.
    pub fn settled_rate(&self) -> Option<f64> {
        self.rate.filter(|_| self.secs >= SETTLED_AFTER)
    }

    /// When the connection was last seen backlogged.
    pub fn backlogged_at(&self) -> Option<Instant> {
        self.backlogged_at
    }

    /// How long `bytes` take to drain at the estimated rate; zero while the
    /// rate is unknown (the connection never fell behind).
    pub fn drain_time(&self, bytes: usize) -> Duration {
        match self.rate {
            Some(rate) if rate > 0.0 => Duration::from_secs_f64((bytes as f64 / rate).min(3600.0)),
            Some(_) => Duration::MAX,
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample with `notsent` bytes unsent, and something in flight if any.
    fn at(t0: Instant, ms: u64, acked: u64, notsent: u32) -> Sample {
        let unacked = u32::from(notsent > 0);
        Sample { at: t0 + Duration::from_millis(ms), acked, notsent, unacked, rtt_us: 0 }
    }

    #[test]
    fn idle_intervals_alone_give_no_rate() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe(at(t0, 0, 0, 0));
        e.observe(at(t0, 100, 1_000, 0));
        e.observe(at(t0, 200, 2_000, 4_000));
        assert_eq!(e.rate(), None);
        assert_eq!(e.drain_time(1 << 20), Duration::ZERO);
    }

    #[test]
    fn a_backlogged_connection_is_measured() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe(at(t0, 0, 0, 5_000));
        e.observe(at(t0, 100, 12_500, 3_000));
        assert_eq!(e.rate(), Some(125_000.0));
        assert_eq!(e.drain_time(12_500), Duration::from_millis(100));
        assert_eq!(e.backlogged_at(), Some(t0 + Duration::from_millis(100)));
        // Samples closer than MIN_INTERVAL are ignored.
        e.observe(at(t0, 101, 12_600, 3_000));
        assert_eq!(e.rate(), Some(125_000.0));
        e.forget();
        assert_eq!(e.rate(), None);
    }

    #[test]
    fn what_waits_in_the_sender_counts_as_backlog() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe_waiting(at(t0, 0, 0, 5_000), true);
        // The socket ran empty for a moment while the sender still held more.
        e.observe_waiting(at(t0, 100, 12_500, 0), true);
        assert_eq!(e.rate(), Some(125_000.0));
    }

    #[test]
    fn the_estimate_follows_a_slower_link_and_jumps_to_a_faster_one() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe(at(t0, 0, 0, 5_000));
        e.observe(at(t0, 100, 12_500, 5_000));
        // Half the speed, still backlogged: the average moves towards it.
        e.observe(at(t0, 200, 18_750, 5_000));
        let slower = e.rate().unwrap();
        assert!(62_500.0 < slower && slower < 100_000.0, "{slower}");
        // A partly idle interval slower than the estimate says nothing.
        e.observe(at(t0, 300, 25_000, 0));
        assert_eq!(e.rate(), Some(slower));
        // Nor does a receive window acknowledged at once.
        e.observe(at(t0, 305, 29_096, 0));
        assert_eq!(e.rate(), Some(slower));
        // 20 KB in 10 ms: the link sped up (the bound starts at 200 ms).
        e.observe(at(t0, 310, 39_096, 0));
        assert_eq!(e.rate(), Some(20_346.0 / 0.11));
        // Then 30 KB in 10 ms.
        e.observe(at(t0, 320, 69_096, 0));
        assert_eq!(e.rate(), Some(3_000_000.0));
    }

    #[test]
    fn an_estimate_settles_after_a_quarter_of_a_second_of_backlog() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe(at(t0, 0, 0, 5_000));
        e.observe(at(t0, 100, 12_500, 3_000));
        assert_eq!(e.rate(), Some(125_000.0));
        assert_eq!(e.settled_rate(), None);
        // A little slower, so that no lower bound replaces the average.
        for ms in [150, 200, 250, 300] {
            e.observe(at(t0, ms, 12_500 + 6_000 * (ms - 100) / 50, 3_000));
        }
        assert!(e.settled_rate().is_some_and(|r| 120_000.0 < r && r < 125_000.0), "{e:?}");
    }

    #[test]
    fn a_write_that_waited_for_the_far_end_measures_it() {
        let t0 = Instant::now();
        let mut e = DrainEstimator::default();
        e.observe(at(t0, 0, 0, 0));
        // A 30 KB keyframe written from 1 ms on took until 241 ms.
        e.observe_write(at(t0, 241, 26_000, 0), t0 + Duration::from_millis(1));
        let rate = e.rate().unwrap();
        assert!((rate - 26_000.0 / 0.241).abs() < 1.0, "{rate}");
        // Not when the last sample is older than the write's start.
        let mut f = DrainEstimator::default();
        f.observe(at(t0, 0, 0, 0));
        f.observe_write(at(t0, 241, 26_000, 0), t0 + Duration::from_millis(100));
        assert_eq!(f.rate(), None);
    }
}
