//! The `rate` message: telling a sender how fast its peer's connection takes
//! media, while that connection is the limit.
//!
//! A [`Feedback`] lives in the receiver's outbox state, under the outbox
//! lock, next to its [`Pacer`](crate::pacing::Pacer). The receiver's writer
//! thread feeds it every socket sample it takes (unsent bytes mean the
//! receiver is backlogged; held video always comes with unsent bytes) and
//! every write that had to wait for the receiver, and pushers note the video
//! they drop for the receiver. After each sample the
//! writer asks it whether a line is due. It delivers the line itself with
//! [`deliver`], after releasing the outbox lock: through the receiver's peer
//! slot to the sender's outbox (lock order: the peer slot, then one outbox at
//! a time), so the line goes only to the peer of the call it was decided in,
//! on the sender's control lane.
//!
//! When (see docs/PROTOCOL.md):
//! * `rate <kbps>` once the receiver has been limited for [`SETTLE`] (a
//!   keyframe's moment of backlog is not a slow link) and the pacer has a
//!   settled estimate ([`Pacer::settled_rate`](crate::pacing::Pacer::settled_rate));
//!   the last one is used while the pacer has none; again every
//!   [`RESEND`] while it stays limited, or after [`MIN_GAP`] when the
//!   estimate fell by more than a fifth ([`FALL`]);
//! * `rate -` once, after a `rate <kbps>`, when the receiver was not limited
//!   for [`CLEAR_AFTER`];
//! * nothing outside an active call; each call starts with no limit known.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use komunikator_protocol::Relayed;

use crate::pacing::Sample;
use crate::registry::Conn;

/// A receiver limited this long, without a break of [`CLEAR_AFTER`], is
/// told about.
pub const SETTLE: Duration = Duration::from_millis(250);

/// Two `rate <kbps>` lines are at least this far apart.
pub const MIN_GAP: Duration = Duration::from_millis(500);

/// While the receiver stays limited, `rate <kbps>` is repeated this often
/// (a little under the promised second: the writer looks every [`TICK`]).
pub const RESEND: Duration = Duration::from_millis(900);

/// A receiver not limited for this long is no longer the limit: `rate -`.
pub const CLEAR_AFTER: Duration = Duration::from_secs(1);

/// An estimate below this share of the last one sent is sent after [`MIN_GAP`]
/// instead of waiting for [`RESEND`].
pub const FALL: f64 = 0.8;

/// How often the writer samples the socket while it has nothing to write
/// but must notice a change ([`Feedback::watching`], or dropped video).
pub const TICK: Duration = Duration::from_millis(100);

/// What a sender is told about its peer's connection during one call. See
/// the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Feedback {
    /// A call is up: lines may be decided.
    in_call: bool,
    /// When the receiver was last seen limited (unsent bytes, video dropped).
    limited_at: Option<Instant>,
    /// When the current episode of being limited began.
    limited_from: Option<Instant>,
    /// The latest estimate of this call, in kbit/s; kept when the pacer
    /// forgets its own while video is still dropped.
    estimate: Option<NonZeroU32>,
    /// The last `rate <kbps>` decided, and when: a limit is in force.
    sent: Option<(Instant, NonZeroU32)>,
    /// A `rate <kbps>` of this call reached the sender's outbox.
    told: bool,
    /// The line decided and not yet delivered: `Some(None)` is `rate -`.
    pending: Option<Option<NonZeroU32>>,
}

impl Feedback {
    /// A call starts: nothing is known or in force.
    pub fn start_call(&mut self) {
        *self = Feedback { in_call: true, ..Feedback::default() };
    }

    /// The call ended: nothing more is sent, and nothing pending goes.
    pub fn end_call(&mut self) {
        *self = Feedback::default();
    }

    /// The receiver was seen limited at `now`: video was dropped for it, or
    /// a write waited for it.
    pub fn limited(&mut self, now: Instant) {
        if !self.in_call {
            return;
        }
        if !self.is_limited(now) {
            self.limited_from = Some(now);
        }
        // Pushers and the writer read the clock before taking the lock.
        self.limited_at = self.limited_at.max(Some(now));
    }

    /// Whether the receiver was limited less than [`CLEAR_AFTER`] before `now`.
    fn is_limited(&self, now: Instant) -> bool {
        self.limited_at.is_some_and(|t| now.saturating_duration_since(t) < CLEAR_AFTER)
    }

    /// Takes a socket sample and the pacer's settled estimate after it
    /// (bytes per second), and decides whether a line is due.
    pub fn observed(&mut self, sample: Sample, rate: Option<f64>) {
        if sample.notsent > 0 {
            self.limited(sample.at);
        }
        self.update(rate, sample.at);
    }

    /// Decides whether a line is due at `now`, given the pacer's estimate.
    pub fn update(&mut self, rate: Option<f64>, now: Instant) {
        if !self.in_call {
            return;
        }
        if let Some(rate) = rate {
            self.estimate = Some(kbps(rate));
        }
        if !self.is_limited(now) {
            if self.sent.take().is_some() {
                // A limit never delivered needs no lifting.
                self.pending = self.told.then_some(None);
                self.told = false;
            }
            return;
        }
        let Some(estimate) = self.estimate else { return };
        // Seen limited at both ends of SETTLE: one moment is no slow link.
        let settled = self
            .limited_from
            .zip(self.limited_at)
            .is_some_and(|(from, last)| last.saturating_duration_since(from) >= SETTLE);
        let due = settled
            && self.sent.is_none_or(|(at, last)| {
                let since = now.saturating_duration_since(at);
                since >= RESEND
                    || (since >= MIN_GAP && f64::from(estimate.get()) < f64::from(last.get()) * FALL)
            });
        if due {
            self.sent = Some((now, estimate));
            self.pending = Some(Some(estimate));
        }
    }

    /// Whether a line waits for delivery.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The line to deliver now, if any: `Some(None)` is `rate -`.
    pub fn take(&mut self) -> Option<Option<NonZeroU32>> {
        let line = self.pending.take();
        if matches!(line, Some(Some(_))) {
            self.told = true;
        }
        line
    }

    /// Whether a limit is in force, so the writer must keep sampling to
    /// repeat it or lift it.
    pub fn watching(&self) -> bool {
        self.sent.is_some()
    }
}

/// Bytes per second as whole kbit/s, rounded down, at least 1.
pub fn kbps(bytes_per_s: f64) -> NonZeroU32 {
    let kbps = (bytes_per_s * 8.0 / 1000.0).floor();
    // `as` saturates (NaN becomes 0), and 0 becomes 1.
    NonZeroU32::new(kbps as u32).unwrap_or(NonZeroU32::MIN)
}

/// Delivers the receiver `conn`'s pending line, if any, to the senders:
/// every other party of its call. In a group call the receiver's link is
/// shared by all of them, so each is told an equal share of the rate.
/// Runs on `conn`'s writer thread, holding no lock when called. Outside a
/// call the line is dropped: it was decided for a call that ended.
pub fn deliver(conn: &Conn) {
    if let Some(rate) = conn.outbox.take_report() {
        tell_senders(conn, rate);
    }
}

/// Tells every other party of `conn`'s call that `conn`'s connection takes
/// `rate` (`None`: it is no longer the limit), as [`deliver`] does. Also
/// runs on a cluster thread, for a client of another node whose home node
/// measured its connection.
pub fn tell_senders(conn: &Conn, rate: Option<NonZeroU32>) {
    conn.with_links(|links| {
        let senders = u32::try_from(links.len()).unwrap_or(u32::MAX).max(1);
        let share = rate.map(|kbps| NonZeroU32::new(kbps.get() / senders).unwrap_or(NonZeroU32::MIN));
        for link in links {
            let line = Relayed::Rate(share).to_line(conn.id, link.enveloped);
            crate::log!(
                Debug,
                "{}: {} is told {}",
                conn.id,
                link.id,
                String::from_utf8_lossy(&line).trim_end()
            );
            link.outbox.push_control(line);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn backlog(t0: Instant, at: u64) -> Sample {
        Sample { at: ms(t0, at), acked: 0, notsent: 1_000, unacked: 1, rtt_us: 0 }
    }

    fn quiet(t0: Instant, at: u64) -> Sample {
        Sample { at: ms(t0, at), acked: 0, notsent: 0, unacked: 0, rtt_us: 0 }
    }

    fn limit(k: u32) -> Option<Option<NonZeroU32>> {
        Some(NonZeroU32::new(k))
    }

    #[test]
    fn kbps_rounds_down_and_is_never_zero() {
        assert_eq!(kbps(60_000.0).get(), 480);
        assert_eq!(kbps(62_499.0).get(), 499);
        assert_eq!(kbps(0.0).get(), 1);
        assert_eq!(kbps(f64::NAN).get(), 1);
        assert_eq!(kbps(1e300).get(), u32::MAX);
    }

    #[test]
    fn nothing_is_said_outside_a_call_or_without_an_estimate() {
        let t0 = Instant::now();
        let mut f = Feedback::default();
        f.observed(backlog(t0, 0), Some(60_000.0));
        assert_eq!(f.take(), None, "no call");
        f.start_call();
        f.observed(backlog(t0, 10), None);
        f.observed(backlog(t0, 20), Some(60_000.0));
        f.observed(quiet(t0, 260), None);
        assert_eq!(f.take(), None, "limited for a moment only");
        f.observed(backlog(t0, 270), None);
        assert_eq!(f.take(), limit(480), "limited for SETTLE, with an estimate");
        f.end_call();
        f.observed(backlog(t0, 2_000), Some(60_000.0));
        f.observed(backlog(t0, 3_000), Some(60_000.0));
        assert_eq!((f.take(), f.watching()), (None, false), "the call ended");
    }

    #[test]
    fn a_limit_is_repeated_while_it_lasts_and_lifted_once() {
        let t0 = Instant::now();
        let mut f = Feedback::default();
        f.start_call();
        f.observed(backlog(t0, 0), Some(60_000.0));
        f.observed(backlog(t0, 250), Some(60_000.0));
        assert_eq!(f.take(), limit(480));
        // Small changes wait for the repeat.
        f.observed(backlog(t0, 600), Some(55_000.0));
        assert_eq!(f.take(), None);
        f.observed(backlog(t0, 1_150), Some(55_000.0));
        assert_eq!(f.take(), limit(440));
        // A fall of more than a fifth goes after MIN_GAP, not sooner.
        f.observed(backlog(t0, 1_550), Some(40_000.0));
        assert_eq!(f.take(), None);
        f.observed(backlog(t0, 1_650), Some(40_000.0));
        assert_eq!(f.take(), limit(320));
        // Dropped video keeps the limit, even once the pacer forgot its estimate.
        f.limited(ms(t0, 2_450));
        f.observed(quiet(t0, 2_550), None);
        assert_eq!(f.take(), limit(320));
        assert!(f.watching());
        // Not limited for CLEAR_AFTER: lifted, once.
        f.observed(quiet(t0, 3_350), None);
        assert_eq!(f.take(), None);
        f.observed(quiet(t0, 3_450), None);
        assert_eq!(f.take(), Some(None));
        assert!(!f.watching());
        f.observed(quiet(t0, 5_000), None);
        assert_eq!(f.take(), None);
    }

    #[test]
    fn a_limit_never_delivered_is_not_lifted() {
        let t0 = Instant::now();
        let mut f = Feedback::default();
        f.start_call();
        f.observed(backlog(t0, 0), Some(60_000.0));
        f.observed(backlog(t0, 300), Some(60_000.0));
        assert!(f.has_pending());
        f.observed(quiet(t0, 1_300), Some(60_000.0));
        assert_eq!(f.take(), None, "rate - without a rate before it");
    }
}
