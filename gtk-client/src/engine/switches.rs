//! The microphone and camera switches on the wire (`media audio|video
//! on|off`, docs/PROTOCOL.md "Microphone and camera switches"): ours, told
//! to the peer at the start of a call and on every change, and the peer's,
//! told to the user as [`super::Event::PeerMedia`]. An older server answers
//! `error unknown-command`; then the lines stop for the rest of the
//! connection, quietly. Owned by the control thread.

use komunikator_protocol::{ClientId, MediaKind, MediaState};
use serde::Serialize;

use crate::media::session::Controls;

/// The peer's switches as it last told us; both on when a call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PeerMedia {
    /// The peer muted its microphone.
    pub muted: bool,
    /// The peer turned its camera off: no pictures come until it is on again.
    pub camera_off: bool,
}

impl PeerMedia {
    /// The switches after `state`.
    pub fn with(self, state: MediaState) -> PeerMedia {
        match state.kind {
            MediaKind::Audio => PeerMedia { muted: !state.on, ..self },
            MediaKind::Video => PeerMedia { camera_off: !state.on, ..self },
        }
    }
}

/// What the control thread keeps about the switches.
#[derive(Debug, Default)]
pub(super) struct Switches {
    /// The peer's, in the current call.
    pub(super) peer: PeerMedia,
    /// The other parties' of a group call, as far as they were told.
    parties: Vec<(ClientId, PeerMedia)>,
    /// `media` lines sent on this connection that an older server's
    /// `error unknown-command` may still answer.
    unanswered: u32,
    /// The server does not know `media` lines: send no more.
    refused: bool,
}

impl Switches {
    /// The lines that tell the peer `controls` at the start of a call: only
    /// the switches that are off (a call starts with both on).
    pub(super) fn at_start(&mut self, controls: Controls) -> Vec<MediaState> {
        self.peer = PeerMedia::default();
        self.parties.clear();
        self.off(controls)
    }

    /// The lines that tell a party who just joined a group call `controls`:
    /// as at the start, since it heard none of the earlier ones (the others
    /// hear them again, which changes nothing for them).
    pub(super) fn off(&mut self, controls: Controls) -> Vec<MediaState> {
        let mut lines = Vec::new();
        if controls.muted {
            lines.push(MediaState { kind: MediaKind::Audio, on: false });
        }
        if !controls.camera_enabled {
            lines.push(MediaState { kind: MediaKind::Video, on: false });
        }
        lines.into_iter().filter(|_| self.may_send()).collect()
    }

    /// Party `id` (not the first) switched: its switches now, if they changed.
    pub(super) fn party(&mut self, id: ClientId, state: MediaState) -> Option<PeerMedia> {
        let i = match self.parties.iter().position(|p| p.0 == id) {
            Some(i) => i,
            None if self.parties.len() < crate::call::MAX_PARTIES => {
                self.parties.push((id, PeerMedia::default()));
                self.parties.len() - 1
            }
            None => return None,
        };
        let now = self.parties[i].1.with(state);
        (std::mem::replace(&mut self.parties[i].1, now) != now).then_some(now)
    }

    /// Whether a line may go now; counts it as sent.
    pub(super) fn may_send(&mut self) -> bool {
        if !self.refused {
            self.unanswered = self.unanswered.saturating_add(1);
        }
        !self.refused
    }

    /// Notes an `error unknown-command`: returns whether it answers one of
    /// our `media` lines (as many errors as lines were sent), which then stop.
    pub(super) fn refuse(&mut self) -> bool {
        let ours = self.unanswered > 0;
        self.unanswered = self.unanswered.saturating_sub(1);
        self.refused |= ours;
        ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_off_is_told_at_start_and_a_refusal_stops_the_lines() {
        let mut s = Switches::default();
        assert!(s.at_start(Controls::default()).is_empty());
        assert!(!s.refuse(), "an unknown-command before any media line is not ours");
        let off = Controls { muted: true, camera_enabled: false };
        assert_eq!(s.at_start(off).len(), 2);
        assert!(s.refuse() && s.refuse(), "one error for each line sent");
        assert!(!s.refuse(), "no third line was sent");
        assert!(s.at_start(off).is_empty() && !s.may_send());
    }

    #[test]
    fn the_peer_switches_follow_its_lines() {
        let p = PeerMedia::default().with(MediaState { kind: MediaKind::Video, on: false });
        assert_eq!(p, PeerMedia { muted: false, camera_off: true });
        let p = p.with(MediaState { kind: MediaKind::Audio, on: false });
        assert_eq!(p, PeerMedia { muted: true, camera_off: true });
        let p = p.with(MediaState { kind: MediaKind::Video, on: true });
        assert_eq!(p, PeerMedia { muted: true, camera_off: false });
    }

    #[test]
    fn each_party_has_its_own_switches() {
        let (a, b): (ClientId, ClientId) = (([10, 0, 0, 1], 1).into(), ([10, 0, 0, 2], 2).into());
        let mut s = Switches::default();
        let off = MediaState { kind: MediaKind::Audio, on: false };
        assert_eq!(s.party(a, off), Some(PeerMedia { muted: true, camera_off: false }));
        assert_eq!(s.party(a, off), None, "no change");
        assert_eq!(s.party(b, MediaState { kind: MediaKind::Audio, on: true }), None, "on, as a call starts");
        assert_eq!(s.peer, PeerMedia::default(), "the first party's are apart");
        s.at_start(Controls::default());
        assert_eq!(s.party(a, off), Some(PeerMedia { muted: true, camera_off: false }), "a new call");
    }
}
