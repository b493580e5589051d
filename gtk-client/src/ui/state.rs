//! The window's state as plain data, and the pure rules that turn engine
//! events into it: the link to the server with its reconnect backoff, the
//! roster of other users kept live from `clients` and `presence`, and the
//! words for why a call ended. No widgets; unit-tested here.

use std::collections::BTreeMap;
use std::time::Duration;

use komunikator_protocol::{ClientId, ErrorCode, PeerState, Presence};

use super::i18n::{i18n, i18n_f};
use crate::call::EndReason;
use crate::net::PeerInfo;
use crate::text::nick_label;

/// The most users the roster holds. A `clients` list is at most as long
/// (net/receive.rs); `presence` lines for more new ids are ignored, so that a
/// server cannot grow the window's list without bound.
pub const MAX_ROSTER: usize = crate::net::MAX_LIST as usize;

/// The link to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// No server is known yet (first run): ask for its address.
    Setup,
    /// Media is being set up or the TCP connection is being made.
    Connecting {
        /// `HOST:PORT`.
        server: String,
    },
    /// Greeted by the server.
    Online {
        /// `HOST:PORT`.
        server: String,
        /// Our id.
        id: ClientId,
        /// Our nick, once the server accepted it.
        nick: Option<String>,
    },
    /// Not connected; a retry is scheduled.
    Offline {
        /// `HOST:PORT`.
        server: String,
        /// Why, in a translated sentence.
        reason: String,
        /// Why, technically (the error's own words), for the details.
        detail: String,
        /// A connection was made and then lost (else none was made).
        lost: bool,
        /// Consecutive failures so far (1 after the first).
        attempt: u32,
    },
}

impl Link {
    /// The server, when one is known.
    pub fn server(&self) -> Option<&str> {
        match self {
            Link::Setup => None,
            Link::Connecting { server } | Link::Online { server, .. } | Link::Offline { server, .. } => {
                Some(server)
            }
        }
    }

    /// One line for the header bar's subtitle.
    pub fn describe(&self) -> String {
        match self {
            Link::Setup => i18n("Not set up"),
            Link::Connecting { server } => i18n_f("Connecting to {}…", &[server]),
            Link::Online { server, nick: Some(nick), .. } => {
                i18n_f("Connected as {} at {}", &[&nick_label(nick), server])
            }
            Link::Online { server, id, nick: None } => {
                i18n_f("Connected as {} at {}", &[&id.to_string(), server])
            }
            Link::Offline { server, lost: true, .. } => i18n_f("Disconnected from {}", &[server]),
            Link::Offline { server, lost: false, .. } => i18n_f("Could not connect to {}", &[server]),
        }
    }
}

/// The wait before reconnect attempt number `attempt` (1-based): 1, 2, 4, 8,
/// 16 seconds, then 30 seconds from then on.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(30))
}

/// Another client as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: ClientId,
    /// Its nick, if it set one.
    pub nick: Option<String>,
    /// Whether it can be called.
    pub free: bool,
}

impl User {
    /// The nick as a label shows it (escaped and isolated, see
    /// [`crate::text`]), or the id for a client without one.
    pub fn label(&self) -> String {
        self.nick.as_deref().map_or_else(|| self.id.to_string(), nick_label)
    }

    /// What to call: the id, which is exact even when nicks repeat.
    pub fn target(&self) -> String {
        self.id.to_string()
    }

    /// Whether `query` (already lower-case) matches the nick or the id.
    pub fn matches(&self, query: &str) -> bool {
        query.is_empty()
            || self.nick.as_deref().is_some_and(|n| n.to_lowercase().contains(query))
            || self.id.to_string().contains(query)
    }
}

/// The other clients on the server, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    users: BTreeMap<ClientId, User>,
}

impl Roster {
    /// Replaces everything with a `clients` list.
    pub fn replace(&mut self, list: &[PeerInfo]) {
        self.users = list
            .iter()
            .map(|p| (p.id, User { id: p.id, nick: p.nick.clone(), free: p.state == PeerState::Free }))
            .collect();
    }

    /// Applies one `presence` line.
    pub fn apply(&mut self, id: ClientId, state: Presence, nick: Option<String>) {
        match state {
            Presence::Gone => {
                self.users.remove(&id);
            }
            Presence::Free | Presence::Busy => {
                if self.users.len() >= MAX_ROSTER && !self.users.contains_key(&id) {
                    return;
                }
                self.users.insert(id, User { id, nick, free: state == Presence::Free });
            }
        }
    }

    /// Forgets everyone (the connection ended).
    pub fn clear(&mut self) {
        self.users.clear();
    }

    /// The users matching `query`, sorted by label (case-insensitively), then id.
    pub fn visible(&self, query: &str) -> Vec<User> {
        let query = query.trim().to_lowercase();
        let mut v: Vec<User> = self.users.values().filter(|u| u.matches(&query)).cloned().collect();
        v.sort_by_key(|u| (u.nick.as_deref().map_or_else(|| u.id.to_string(), str::to_lowercase), u.id));
        v
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether nobody else is online.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The nick of `id`, if known.
    pub fn nick_of(&self, id: ClientId) -> Option<String> {
        self.users.get(&id).and_then(|u| u.nick.clone())
    }
}

/// What the user is told when a call ends, or `None` when it was their own doing.
pub fn end_message(reason: EndReason, who: &str) -> Option<String> {
    let text = match reason {
        EndReason::LocalHangup | EndReason::LocalDecline => return None,
        EndReason::PeerHangup => i18n_f("{} hung up", &[who]),
        EndReason::Cancelled => i18n_f("{} stopped calling", &[who]),
        EndReason::Timeout => i18n_f("No answer from {}", &[who]),
        EndReason::PeerDisconnected => i18n_f("{} was disconnected", &[who]),
        EndReason::Declined => i18n_f("{} declined the call", &[who]),
        EndReason::Busy => i18n_f("{} is busy in another call", &[who]),
        EndReason::ConnectionLost => i18n("The call ended: the connection to the server was lost"),
        EndReason::Refused(code) => refused_message(code, who),
    };
    Some(text)
}

fn refused_message(code: ErrorCode, who: &str) -> String {
    match code {
        ErrorCode::NoSuchClient => i18n_f("{} is not online any more", &[who]),
        ErrorCode::Ambiguous => i18n_f("Several people match {}; call one from the list", &[who]),
        ErrorCode::SelfCall => i18n("You cannot call yourself"),
        ErrorCode::Busy => i18n("Finish the current call first"),
        ErrorCode::RateLimited => i18n("Too many calls in a short time; wait a moment"),
        _ => i18n_f("The server refused the call to {}", &[who]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(port: u16) -> ClientId {
        ClientId::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let secs: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(0).as_secs(), 1);
        assert_eq!(backoff(200).as_secs(), 30);
    }

    #[test]
    fn roster_follows_presence() {
        let mut r = Roster::default();
        r.replace(&[
            PeerInfo { id: id(2), state: PeerState::Free, nick: Some("Zed".into()) },
            PeerInfo { id: id(3), state: PeerState::Busy, nick: None },
        ]);
        assert_eq!(r.len(), 2);
        r.apply(id(4), Presence::Free, Some("ala".into()));
        r.apply(id(3), Presence::Free, Some("bob".into()));
        let labels: Vec<String> = r.visible("").iter().map(User::label).collect();
        assert_eq!(labels, ["ala", "bob", "Zed"].map(crate::text::isolate));
        assert!(r.visible("").iter().all(|u| u.free));
        r.apply(id(2), Presence::Busy, Some("Zed".into()));
        assert!(!r.visible("zed")[0].free);
        r.apply(id(2), Presence::Gone, Some("Zed".into()));
        assert_eq!(r.len(), 2);
        assert_eq!(r.visible("127.0.0.1:4").len(), 1);
        assert_eq!(r.nick_of(id(3)).as_deref(), Some("bob"));
        r.clear();
        assert!(r.is_empty());
    }

    #[test]
    fn the_roster_is_bounded_and_shows_nicks_escaped() {
        let mut r = Roster::default();
        for port in 1..=u16::try_from(MAX_ROSTER + 10).unwrap() {
            r.apply(id(port), Presence::Free, None);
        }
        assert_eq!(r.len(), MAX_ROSTER);
        // Those already listed still change.
        r.apply(id(1), Presence::Busy, Some("al\u{202E}a".into()));
        assert_eq!(r.nick_of(id(1)).as_deref(), Some("al\u{202E}a"));
        let u = User { id: id(1), nick: Some("al\u{202E}a".into()), free: true };
        assert_eq!(u.label(), "\u{2068}al<U+202E>a\u{2069}");
    }

    #[test]
    fn users_without_nick_show_their_id() {
        let u = User { id: id(9), nick: None, free: true };
        assert_eq!(u.label(), "127.0.0.1:9");
        assert_eq!(u.target(), "127.0.0.1:9");
    }

    #[test]
    fn every_ending_the_user_did_not_cause_is_told() {
        assert_eq!(end_message(EndReason::LocalHangup, "x"), None);
        assert_eq!(end_message(EndReason::LocalDecline, "x"), None);
        for r in [
            EndReason::PeerHangup,
            EndReason::Cancelled,
            EndReason::Timeout,
            EndReason::PeerDisconnected,
            EndReason::Declined,
            EndReason::Busy,
            EndReason::ConnectionLost,
            EndReason::Refused(ErrorCode::NoSuchClient),
        ] {
            assert!(end_message(r, "ala").is_some_and(|m| !m.is_empty()), "{r:?}");
        }
        assert!(end_message(EndReason::Busy, "ala").unwrap().contains("ala"));
    }

    #[test]
    fn link_texts() {
        let online = Link::Online { server: "s:1".into(), id: id(5), nick: Some("ala".into()) };
        assert_eq!(online.describe(), "Connected as \u{2068}ala\u{2069} at s:1");
        assert_eq!(online.server(), Some("s:1"));
        assert_eq!(Link::Setup.server(), None);
    }
}
