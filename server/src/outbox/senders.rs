//! Each sender's video as one receiver's outbox sees it. In a group call a
//! receiver gets video from several parties: after a congestion drops its
//! queued video, every sender's stream resumes only at that sender's own
//! keyframe (a picture from one sender cannot be decoded after another's
//! keyframe), and keyframe requests are spaced per sender. Part of the
//! outbox's state, so it runs under the outbox lock on whichever thread
//! pushes a frame.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use komunikator_protocol::ClientId;

/// The video state of every party sending to one receiver in its current
/// call. At most one entry per party of the call: the outbox forgets a
/// sender when it leaves and everyone when the call ends.
#[derive(Debug, Default)]
pub(super) struct Senders {
    map: HashMap<ClientId, Sender>,
}

#[derive(Debug, Default)]
struct Sender {
    /// Its video was dropped and has not had a keyframe since.
    cut: bool,
    /// When a keyframe was last asked of it on this receiver's behalf.
    last_request: Option<Instant>,
}

impl Senders {
    /// A congestion began: every sender's video was dropped.
    pub(super) fn cut_all(&mut self) {
        for sender in self.map.values_mut() {
            sender.cut = true;
        }
    }

    /// Whether `from`'s video is still cut. A keyframe outside a congestion
    /// (`key && !dropping`) ends the cut; a sender first seen during a
    /// congestion starts cut.
    pub(super) fn cut(&mut self, from: ClientId, key: bool, dropping: bool) -> bool {
        let sender = self.map.entry(from).or_insert(Sender { cut: dropping, last_request: None });
        if key && !dropping {
            sender.cut = false;
        }
        sender.cut
    }

    /// Whether a keyframe may be asked of `from` now (none in the last
    /// `gap`); if so, counts it as asked.
    pub(super) fn keyframe_due(&mut self, from: ClientId, now: Instant, gap: Duration) -> bool {
        let sender = self.map.entry(from).or_default();
        let due = sender.last_request.is_none_or(|t| now.duration_since(t) >= gap);
        if due {
            sender.last_request = Some(now);
        }
        due
    }

    /// `from` left the call.
    pub(super) fn forget(&mut self, from: ClientId) {
        self.map.remove(&from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sender_resumes_at_its_own_keyframe() {
        let (a, b): (ClientId, ClientId) = (([10, 0, 0, 1], 1).into(), ([10, 0, 0, 2], 2).into());
        let mut s = Senders::default();
        assert!(!s.cut(a, false, false) && !s.cut(b, false, false));
        s.cut_all();
        assert!(s.cut(a, true, true), "no resuming during the congestion");
        assert!(!s.cut(a, true, false), "a's keyframe resumes a");
        assert!(s.cut(b, false, false), "but not b");
        assert!(!s.cut(b, true, false));
        let c: ClientId = ([10, 0, 0, 3], 3).into();
        assert!(s.cut(c, false, true), "a new sender during a congestion starts cut");
        let t0 = Instant::now();
        let gap = Duration::from_millis(300);
        assert!(s.keyframe_due(a, t0, gap) && s.keyframe_due(b, t0, gap));
        assert!(!s.keyframe_due(a, t0 + Duration::from_millis(100), gap));
        assert!(s.keyframe_due(a, t0 + gap, gap));
        s.forget(a);
        assert!(s.keyframe_due(a, t0, gap), "forgotten");
    }
}
