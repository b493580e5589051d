//! The group call in progress, as the control thread keeps it: the parties
//! that joined after the first, what each sent us, and what each party's
//! link reports about our media. Owned and used by the control thread only.
//!
//! One encoder serves every receiver, so the sender follows the slowest:
//! the lowest `rate` in force and the highest `delay` reported are handed to
//! the rate controller.

use std::collections::HashMap;
use std::sync::Arc;

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
}

/// The most parties kept: the server's largest room size.
const MAX_PARTIES: usize = 64;

impl Group {
    /// The server answered `features`: says so when group calls were wanted
    /// and it has none.
    pub(super) fn features(&mut self, on: bool, wanted: bool, events: &Outbox) {
        if wanted && !on {
            events.send(Event::Notice("the server has no group calls; only two-party calls work".into()));
        }
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
        }
    }

    /// Where party `id`'s received frames are counted.
    pub(super) fn stats_of(&self, id: ClientId) -> Arc<Stats> {
        self.parties.iter().find(|p| p.0 == id).map_or_else(Arc::default, |p| p.2.clone())
    }

    /// Party `id` left: its reports no longer count. Returns the rate now in force.
    pub(super) fn left(&mut self, id: ClientId) -> Option<u32> {
        self.rates.remove(&Some(id));
        self.delays.remove(&Some(id));
        self.rates.values().min().copied()
    }

    /// A receiver's `rate` (`None`: no longer the limit). Returns the lowest in force.
    pub(super) fn rate(&mut self, from: Option<ClientId>, kbps: Option<u32>) -> Option<u32> {
        match kbps {
            Some(k) => self.rates.insert(from, k),
            None => self.rates.remove(&from),
        };
        self.rates.values().min().copied()
    }

    /// A receiver's `delay`. Returns the highest reported.
    pub(super) fn delay(&mut self, from: Option<ClientId>, ms: u32) -> u32 {
        self.delays.insert(from, ms);
        self.delays.values().max().copied().unwrap_or(ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_follows_the_slowest_receiver() {
        let (a, b): (ClientId, ClientId) = (([10, 0, 0, 1], 1).into(), ([10, 0, 0, 2], 2).into());
        let mut g = Group::default();
        assert_eq!(g.rate(Some(a), Some(800)), Some(800));
        assert_eq!(g.rate(Some(b), Some(300)), Some(300));
        assert_eq!(g.rate(Some(b), None), Some(800), "b is no longer the limit");
        assert_eq!(g.rate(Some(b), Some(300)), Some(300));
        assert_eq!(g.left(b), Some(800), "b left");
        assert_eq!(g.delay(Some(a), 20), 20);
        assert_eq!(g.delay(Some(b), 90), 90);
        assert_eq!(g.delay(Some(a), 10), 90);
        g.joined(b, Some("bob".into()));
        g.joined(b, None);
        assert_eq!(g.summary().len(), 1);
        assert!(Arc::ptr_eq(&g.stats_of(b), &g.stats_of(b)));
    }
}
