//! Audio-first pacing of video towards a slow receiver: how fast a client
//! drains its socket, and whether a video frame may be handed to the kernel
//! now.
//!
//! A [`Pacer`] lives in a client's outbox state, under the outbox lock. The
//! client's writer thread feeds it [`Sample`]s of the socket (taken with
//! `TCP_INFO`, which never blocks) and asks it before each video frame;
//! pushers ask it whether a video frame may skip the writer.
//!
//! Why: a frame is never split on the wire, so an audio packet waits for
//! every byte ahead of it, and on a slow link bytes are time (10 KB at
//! 1 Mbit/s is 80 ms). The kernel accepts a whole frame as soon as its unsent
//! data drops below `TCP_NOTSENT_LOWAT`, so video written back to back keeps
//! a frame and more queued in the kernel, where audio can no longer overtake
//! it. The pacer holds video in the outbox, where audio does overtake it,
//! until the kernel has sent what it holds, whenever writing the frame now
//! would put more than [`HOLD_ABOVE`] of draining ahead of the next audio
//! packet. On a fast link that never happens, and video is not held.
//!
//! An estimate must never lock a fast receiver out. Video that is held or
//! dropped is not written, so it cannot be measured; the writer therefore
//! keeps sampling while video is dropped and after every write. An estimate
//! is forgotten once the socket has been idle for [`FORGET_AFTER`]
//! ([`Pacer::forget_if_idle`]): nothing unsent and nothing in flight means
//! the receiver is not the limit now, and whether it still is can only be
//! learnt by sending. A link that is still slow is measured again within
//! the first write that waits for it ([`Pacer::observe_write`]), and a write
//! that starts from an idle socket bounds the rate from below by its own
//! bytes, so a big probe on a link that sped up is measured at once. The
//! estimator itself is `komunikator_rate::DrainEstimator`, shared with the
//! client's uplink.

use std::time::{Duration, Instant};

use komunikator_rate::DrainEstimator;
pub use komunikator_rate::drain::{BLOCKED, FORGET_AFTER};
pub use komunikator_rate::{Sample, sample};

/// Video is held back while the socket has unsent bytes and they, with the
/// frame, would take longer than this to drain.
pub const HOLD_ABOVE: Duration = Duration::from_millis(20);

/// A frame that takes longer than this to drain is big: every audio packet
/// that comes while it is on the wire waits behind it, up to its whole drain
/// time (a 30 KB keyframe takes 240 ms at 1 Mbit/s, a 10 KB frame 80 ms).
pub const BIG_FRAME: Duration = Duration::from_millis(100);

/// On a slow link, big frames go at most this often: the drop policy drops a
/// big frame (and the rest of its group of pictures) that comes sooner. This
/// bounds the share of audio delayed by keyframes to a few percent, and it is
/// also the longest a receiver that speeds up waits for video: a big frame is
/// the only probe of the link that a frozen picture allows.
pub const BIG_FRAME_GAP: Duration = Duration::from_secs(2);

/// The longest a held frame waits before the socket is looked at again
/// (audio that arrives meanwhile wakes the writer at once).
const MAX_RECHECK: Duration = Duration::from_millis(10);

/// What the writer may do with the video frame at the head of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Write it now.
    Go,
    /// Hold it; look at the socket again after this long, or when audio comes.
    Hold(Duration),
}

/// The receiver's drain rate, estimated from socket samples, and when the
/// last big frame went. See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Pacer {
    estimator: DrainEstimator,
    /// When the last big frame was let through, and its length.
    last_big: Option<(Instant, usize)>,
}

impl Pacer {
    /// Takes a new sample into the estimate (see [`DrainEstimator`]).
    pub fn observe(&mut self, now: Sample) {
        self.estimator.observe(now);
    }

    /// Takes a sample taken after a write that started at `started` and
    /// took at least [`BLOCKED`] (see [`DrainEstimator::observe_write`]).
    pub fn observe_write(&mut self, now: Sample, started: Instant) {
        self.estimator.observe_write(now, started);
    }

    /// The estimate once it is settled (see [`DrainEstimator::settled_rate`]):
    /// what is worth telling a sender.
    pub fn settled_rate(&self) -> Option<f64> {
        self.estimator.settled_rate()
    }

    /// Forgets the estimate when the socket was idle at every sample for
    /// [`FORGET_AFTER`] before `now`, the time of the last sample. Only while
    /// video flows: see the module documentation.
    pub fn forget_if_idle(&mut self, now: Instant) {
        self.estimator.forget_if_idle(now);
    }

    /// The estimated drain rate in bytes per second, if the receiver was
    /// backlogged (and has not been idle for [`FORGET_AFTER`] since).
    pub fn rate(&self) -> Option<f64> {
        self.estimator.rate()
    }

    /// How long `bytes` take to drain at the estimated rate; zero while the
    /// rate is unknown (the receiver never fell behind).
    pub fn drain_time(&self, bytes: usize) -> Duration {
        self.estimator.drain_time(bytes)
    }

    /// Whether a video frame of `len` bytes must go through the writer, which
    /// asks [`Pacer::gate`], instead of straight to the socket.
    pub fn paced(&self, len: usize) -> bool {
        self.drain_time(len) > HOLD_ABOVE
    }

    /// Whether the writer may write a video frame of `len` bytes now, with
    /// `notsent` bytes still unsent in the socket.
    pub fn gate(&self, notsent: u32, len: usize) -> Gate {
        let notsent = notsent as usize;
        if notsent == 0 || !self.paced(notsent + len) {
            return Gate::Go;
        }
        Gate::Hold(self.drain_time(notsent).clamp(Duration::from_millis(1), MAX_RECHECK))
    }

    /// Whether a video frame of `len` bytes is big ([`BIG_FRAME`]) and comes
    /// less than [`BIG_FRAME_GAP`] after the last big one let through.
    pub fn too_soon(&self, len: usize, now: Instant) -> bool {
        self.big(len) && self.big_frames_wait_until(now).is_some()
    }

    /// Notes a video frame of `len` bytes let through now. A keyframe let
    /// through before the rate is known counts as well if it turns out big.
    pub fn let_through(&mut self, len: usize, key: bool, now: Instant) {
        if self.big(len) || (key && self.rate().is_none()) {
            self.last_big = Some((now, len));
        }
    }

    /// Until when the next big frame would come too soon, if it would.
    pub fn big_frames_wait_until(&self, now: Instant) -> Option<Instant> {
        self.last_big.filter(|&(_, len)| self.big(len)).map(|(t, _)| t + BIG_FRAME_GAP).filter(|&t| now < t)
    }

    fn big(&self, len: usize) -> bool {
        self.drain_time(len) > BIG_FRAME
    }

    /// Forgets the last big frame (a new call starts afresh); the rate is kept.
    pub fn forget_big_frames(&mut self) {
        self.last_big = None;
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
    fn unknown_rate_never_holds() {
        let p = Pacer::default();
        assert_eq!(p.rate(), None);
        assert!(!p.paced(1 << 20));
        assert_eq!(p.gate(100_000, 30_000), Gate::Go);
    }

    #[test]
    fn a_backlogged_receiver_is_measured_and_video_held() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // 125 KB/s (1 Mbit/s) with bytes waiting all along.
        p.observe(at(t0, 0, 0, 5_000));
        p.observe(at(t0, 100, 12_500, 3_000));
        assert_eq!(p.rate(), Some(125_000.0));
        assert!(p.paced(10_000), "a 10 KB frame takes 80 ms");
        assert!(!p.paced(1_000), "1 KB takes 8 ms");
        assert_eq!(p.gate(0, 30_000), Gate::Go, "nothing unsent: write it");
        assert_eq!(p.gate(1_000, 10_000), Gate::Hold(Duration::from_millis(8)));
        assert_eq!(p.gate(100, 1_000), Gate::Go, "small enough");
        assert_eq!(p.gate(100_000, 10_000), Gate::Hold(MAX_RECHECK));
        // Samples closer than MIN_INTERVAL are ignored.
        p.observe(at(t0, 101, 12_600, 3_000));
        assert_eq!(p.rate(), Some(125_000.0));
    }

    #[test]
    fn a_receiver_that_speeds_up_is_not_paced_any_more() {
        // The estimator's own steps are tested in komunikator_rate::drain.
        let t0 = Instant::now();
        let mut p = Pacer::default();
        p.observe(at(t0, 0, 0, 5_000));
        p.observe(at(t0, 100, 12_500, 5_000));
        assert!(p.paced(30_000));
        // 30 KB in 10 ms after an idle moment: the receiver sped up.
        p.observe(at(t0, 310, 39_096, 0));
        p.observe(at(t0, 320, 69_096, 0));
        assert_eq!(p.rate(), Some(3_000_000.0));
        assert!(!p.paced(30_000));
    }

    #[test]
    fn big_frames_are_spaced_on_a_slow_link_only() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // Unknown rate: nothing is big (yet).
        p.let_through(30_000, true, t0);
        assert!(!p.too_soon(30_000, t0));
        assert_eq!(p.big_frames_wait_until(t0), None);
        p.observe(at(t0, 0, 0, 5_000));
        p.observe(at(t0, 100, 12_500, 3_000));
        // 125 KB/s: 30 KB (240 ms) is big, 10 KB (80 ms) is not; the keyframe
        // let through before the rate was known counts.
        assert!(p.too_soon(30_000, t0 + BIG_FRAME_GAP / 2));
        p.forget_big_frames();
        p.let_through(10_000, true, t0);
        assert_eq!(p.big_frames_wait_until(t0), None);
        p.let_through(30_000, false, t0);
        assert!(p.too_soon(30_000, t0 + BIG_FRAME_GAP / 2));
        assert!(!p.too_soon(10_000, t0 + BIG_FRAME_GAP / 2));
        assert!(!p.too_soon(30_000, t0 + BIG_FRAME_GAP));
        assert_eq!(p.big_frames_wait_until(t0 + BIG_FRAME_GAP / 2), Some(t0 + BIG_FRAME_GAP));
        assert_eq!(p.big_frames_wait_until(t0 + BIG_FRAME_GAP), None);
        p.forget_big_frames();
        assert!(!p.too_soon(30_000, t0));
    }

    /// 125 KB/s measured from a backlog at 0-100 ms.
    fn slow(t0: Instant) -> Pacer {
        let mut p = Pacer::default();
        p.observe(at(t0, 0, 0, 5_000));
        p.observe(at(t0, 100, 12_500, 3_000));
        assert_eq!(p.rate(), Some(125_000.0));
        p
    }

    #[test]
    fn a_probe_after_a_pause_is_measured_by_its_own_bytes() {
        let t0 = Instant::now();
        let mut p = slow(t0);
        // Video dropped for a while: the writer's samples find the socket idle.
        p.observe(at(t0, 500, 20_000, 0));
        p.observe(at(t0, 900, 20_000, 0));
        assert!(p.paced(1 << 20), "a 1 MiB frame takes 8 s at the old estimate");
        // A 1 MiB probe written right after the last sample, taken in 5 ms.
        p.observe(Sample { unacked: 4, ..at(t0, 905, 1_020_000, 0) });
        assert_eq!(p.rate(), Some(200_000_000.0));
        assert!(!p.paced(1 << 20) && !p.too_soon(1 << 20, t0));
    }

    #[test]
    fn an_estimate_is_forgotten_after_a_second_of_idle_socket_only() {
        let t0 = Instant::now();
        let mut p = slow(t0);
        // Bytes in flight are not idle.
        p.observe(Sample { unacked: 3, ..at(t0, 600, 14_000, 0) });
        p.observe(at(t0, 1_500, 14_500, 0));
        p.forget_if_idle(t0 + Duration::from_millis(1_500));
        assert_eq!(p.rate(), Some(125_000.0));
        p.observe(at(t0, 1_600, 14_500, 0));
        p.forget_if_idle(t0 + Duration::from_millis(1_600));
        assert_eq!(p.rate(), None);
        assert!(!p.paced(1 << 20));
        // A new backlog is measured afresh, without the old average.
        p.observe(at(t0, 1_700, 14_500, 4_000));
        p.observe(at(t0, 1_800, 20_750, 4_000));
        assert_eq!(p.rate(), Some(62_500.0));
    }
}
