//! The group call in progress, as the control thread keeps it: the parties
//! that joined after the first, what each sent us, and what each party's
//! link reports about our media. Owned and used by the control thread only.
//!
//! One encoder serves every receiver, so the rate it follows is chosen for
//! them all: the median receiver's (of two, the faster's), not the slowest's. Receivers without a
//! limit count as unlimited, and without a `delay` report as no delay. In a
//! two-party call (one receiver) that is the peer's own report. In a call
//! of four, one receiver on a slow link does not lower the picture the
//! other two get: the server thins the video for that receiver alone (its
//! own queue and drop policy), and its audio, which goes first, stays
//! whole. Sending it a second, smaller encoding (simulcast) would serve it
//! better; that is not built (BENCHMARKS.md sections 11 and 13 measure the
//! choice and what a second encoding would cost).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::ClientId;

use super::bounds::Outbox;
use super::{Event, PartyStats};
use crate::media::Stats;

/// See the module documentation. `None` keys stand for the peer of a
/// two-party call, whose lines carry no sender.
#[derive(Default)]
pub(super) struct Group {
    /// Parties after the first: id, nick, what they sent us.
    parties: Vec<(ClientId, Option<String>, Arc<Stats>)>,
    /// The `rate` in force from each receiver that is the limit.
    rates: HashMap<Option<ClientId>, u32>,
    /// The last `delay` each receiver reported.
    delays: HashMap<Option<ClientId>, u32>,
    /// An `invite` was sent and the server has not answered it yet: the
    /// next `inviting`, `busy` or error is its answer.
    invite_unanswered: bool,
    /// Parties that joined and have not left (the first party is not counted).
    joined_here: usize,
    /// The server turned group calls on for this connection.
    on: bool,
    /// When a keyframe was last asked of each party.
    requests: HashMap<ClientId, Instant>,
    /// `with` lines told for the invitation ringing now.
    withs: usize,
}

/// See [`Group::keyframe_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyframeTo {
    /// `keyframe <id>`.
    Party(ClientId),
    /// `keyframe`, to every party (the peer of a two-party call).
    Everyone,
    /// That party was asked a moment ago.
    NotNow,
}

/// The most parties kept, as the call state keeps ([`crate::call::MAX_PARTIES`]).
const MAX_PARTIES: usize = crate::call::MAX_PARTIES;

impl Group {
    /// The server answered `features`: says so when group calls were wanted
    /// and it has none.
    pub(super) fn features(&mut self, on: bool, wanted: bool, events: &Outbox) {
        self.on = on;
        if wanted && !on {
            events.send(Event::Notice("the server has no group calls; only two-party calls work".into()));
        }
    }

    /// A call starts: everything but the connection's features is forgotten.
    pub(super) fn new_call(&mut self) {
        *self = Group { on: self.on, ..Group::default() };
    }

    /// Whom to ask for a keyframe when one is wanted of party `of` (`None`:
    /// not known): with group calls on, that party alone, at most every
    /// `gap`; otherwise everyone.
    pub(super) fn keyframe_to(&mut self, of: Option<ClientId>, gap: Duration) -> KeyframeTo {
        let Some(id) = of.filter(|_| self.on) else { return KeyframeTo::Everyone };
        let now = Instant::now();
        if self.requests.get(&id).is_some_and(|t| now.duration_since(*t) < gap) {
            return KeyframeTo::NotNow;
        }
        if self.requests.len() < MAX_PARTIES {
            self.requests.insert(id, now);
        }
        KeyframeTo::Party(id)
    }

    /// An invitation (or a call) rings: its `with` lines are counted afresh.
    pub(super) fn asked(&mut self) {
        self.withs = 0;
    }

    /// Whether a `with` line is told: no more than a call can hold, so that
    /// a server cannot make the prompt list people without end.
    pub(super) fn with_told(&mut self) -> bool {
        self.withs += 1;
        self.withs < MAX_PARTIES
    }

    /// An `invite` went out.
    pub(super) fn invite_sent(&mut self) {
        self.invite_unanswered = true;
    }

    /// Whether an `invite` was waiting for the server's answer; the line
    /// being handled is that answer.
    pub(super) fn invite_answered(&mut self) -> bool {
        std::mem::take(&mut self.invite_unanswered)
    }

    /// Party `id` joined.
    pub(super) fn joined(&mut self, id: ClientId, nick: Option<String>) {
        if self.parties.len() < MAX_PARTIES && !self.parties.iter().any(|p| p.0 == id) {
            self.parties.push((id, nick, Arc::new(Stats::default())));
            self.joined_here += 1;
        }
    }

    /// Where party `id`'s received frames are counted.
    pub(super) fn stats_of(&self, id: ClientId) -> Arc<Stats> {
        self.parties.iter().find(|p| p.0 == id).map_or_else(Arc::default, |p| p.2.clone())
    }

    /// What party `id` sent us, if it joined after the first.
    pub(super) fn stats_if(&self, id: ClientId) -> Option<Arc<Stats>> {
        self.parties.iter().find(|p| p.0 == id).map(|p| p.2.clone())
    }

    /// How many parties receive what we send (in a two-party call, one).
    fn receivers(&self) -> usize {
        1 + self.joined_here
    }

    /// Party `id` left: its reports no longer count (what it sent stays in
    /// the summary). Returns the rate now in force.
    pub(super) fn left(&mut self, id: ClientId) -> Option<u32> {
        self.joined_here = self.joined_here.saturating_sub(1);
        self.rates.remove(&Some(id));
        self.delays.remove(&Some(id));
        self.rate_in_force()
    }

    /// A receiver's `rate` (`None`: no longer the limit). Returns the rate in force.
    pub(super) fn rate(&mut self, from: Option<ClientId>, kbps: Option<u32>) -> Option<u32> {
        match kbps {
            Some(k) if bounded(&self.rates, from) => self.rates.insert(from, k),
            Some(_) => None,
            None => self.rates.remove(&from),
        };
        self.rate_in_force()
    }

    /// The median receiver's limit (`None`: unlimited).
    fn rate_in_force(&self) -> Option<u32> {
        let mut limits: Vec<Option<u32>> = self.rates.values().copied().map(Some).collect();
        limits.resize(self.receivers().max(limits.len()), None);
        // `None` (unlimited) sorts first: put it last.
        limits.sort_by_key(|l| l.map_or(u64::MAX, u64::from));
        limits[limits.len() / 2]
    }

    /// A receiver's `delay`. Returns the median receiver's.
    pub(super) fn delay(&mut self, from: Option<ClientId>, ms: u32) -> u32 {
        if bounded(&self.delays, from) {
            self.delays.insert(from, ms);
        }
        let mut delays: Vec<u32> = self.delays.values().copied().collect();
        delays.resize(self.receivers().max(delays.len()), 0);
        delays.sort_unstable_by(|a, b| b.cmp(a));
        delays[delays.len() / 2]
    }

    /// What each party after the first sent us.
    pub(super) fn summary(&self) -> Vec<PartyStats> {
        self.parties
            .iter()
            .map(|(id, nick, stats)| PartyStats {
                id: id.to_string(),
                nick: nick.clone(),
                stats: stats.snapshot(),
            })
            .collect()
    }
}

/// Whether a report from `from` may be kept in `reports`: one per party a
/// call can hold (the peer of a two-party call, the first party and the
/// others), however many ids a server names.
fn bounded<T>(reports: &HashMap<Option<ClientId>, T>, from: Option<ClientId>) -> bool {
    reports.len() <= MAX_PARTIES || reports.contains_key(&from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_are_asked_of_the_party_whose_pictures_broke() {
        let a: ClientId = ([10, 0, 0, 1], 1).into();
        let gap = Duration::from_secs(60);
        let mut g = Group::default();
        assert_eq!(g.keyframe_to(Some(a), gap), KeyframeTo::Everyone, "group calls are off");
        g.on = true;
        assert_eq!(g.keyframe_to(None, gap), KeyframeTo::Everyone);
        assert_eq!(g.keyframe_to(Some(a), gap), KeyframeTo::Party(a));
        assert_eq!(g.keyframe_to(Some(a), gap), KeyframeTo::NotNow);
        g.new_call();
        assert_eq!(g.keyframe_to(Some(a), gap), KeyframeTo::Party(a), "a new call, and still on");
    }

    #[test]
    fn one_receiver_decides_a_two_party_call() {
        let mut g = Group::default();
        assert_eq!(g.rate(None, Some(300)), Some(300));
        assert_eq!(g.delay(None, 90), 90);
        assert_eq!(g.rate(None, None), None);
    }

    #[test]
    fn the_sender_follows_the_median_receiver_not_the_slowest() {
        let first: ClientId = ([10, 0, 0, 1], 1).into();
        let (b, c): (ClientId, ClientId) = (([10, 0, 0, 2], 2).into(), ([10, 0, 0, 3], 3).into());
        let mut g = Group::default();
        g.joined(b, Some("bob".into()));
        g.joined(c, None);
        g.joined(c, None);
        assert_eq!(g.summary().len(), 2);
        // Three receivers: one slow one does not set the rate.
        assert_eq!(g.rate(Some(c), Some(100)), None);
        assert_eq!(g.delay(Some(c), 400), 0);
        // Two slow ones do: the faster of them.
        assert_eq!(g.rate(Some(first), Some(700)), Some(700));
        assert_eq!(g.rate(Some(b), Some(900)), Some(700));
        assert_eq!(g.delay(Some(b), 60), 60);
        assert_eq!(g.rate(Some(first), None), Some(900));
        // b leaves: of the two receivers left, the faster (unlimited) decides.
        assert_eq!(g.left(b), None);
        assert_eq!(g.summary().len(), 2, "what b sent stays in the summary");
        assert!(Arc::ptr_eq(&g.stats_of(c), &g.stats_of(c)));
    }

    #[test]
    fn reports_from_endless_ids_are_bounded() {
        let mut g = Group::default();
        for i in 0..10_000u32 {
            let id: ClientId = (i.to_be_bytes(), 7).into();
            g.rate(Some(id), Some(100));
            g.delay(Some(id), 50);
        }
        assert_eq!((g.rates.len(), g.delays.len()), (MAX_PARTIES + 1, MAX_PARTIES + 1));
    }
}
