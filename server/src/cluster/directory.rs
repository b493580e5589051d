//! The users of the other nodes, as their directory messages last listed
//! them: who they are, which node holds each, and when each node was last
//! heard. Applying a node's list, or forgetting a node that fell silent,
//! yields the `presence` changes to tell this node's clients. Pure; kept
//! behind the cluster's lock, used by the cluster thread and (to list and
//! find users) by the registry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, PeerState, Presence, Target, nick_key};

use super::wire::DirUser;

/// A node silent this long is taken for dead: its users are gone.
pub const NODE_TTL: Duration = Duration::from_secs(3);

/// Most other nodes kept; lists from further ones are ignored (and logged).
pub const MAX_NODES: usize = 256;

/// A presence change for this node's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whose.
    pub id: ClientId,
    /// Free, busy or gone.
    pub state: Presence,
    /// Its nick.
    pub nick: Option<String>,
}

/// A remote user with its nick's look-alike key.
#[derive(Debug, Clone)]
pub struct Remote {
    /// As its node lists it.
    pub user: DirUser,
    /// [`nick_key`] of its nick.
    pub key: Option<String>,
}

struct Node {
    epoch: u64,
    seen: Instant,
    users: Vec<Remote>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Directory {
    nodes: HashMap<String, Node>,
}

impl Directory {
    /// Node `from` (started at `epoch`) lists `users` now. A list from an
    /// earlier run of the node than one already seen is stale and ignored.
    pub fn apply(&mut self, from: &str, epoch: u64, users: Vec<DirUser>, now: Instant) -> Vec<Change> {
        let users: Vec<Remote> =
            users.into_iter().map(|user| Remote { key: user.nick.as_deref().map(nick_key), user }).collect();
        let old = match self.nodes.get(from) {
            Some(n) if n.epoch > epoch => return Vec::new(),
            Some(n) => n.users.clone(),
            None if self.nodes.len() >= MAX_NODES => {
                crate::log!(Warn, "cluster: more than {MAX_NODES} nodes; node {from} ignored");
                return Vec::new();
            }
            None => Vec::new(),
        };
        let changes = diff(&old, &users);
        self.nodes.insert(from.to_owned(), Node { epoch, seen: now, users });
        changes
    }

    /// Forgets node `name` (it said goodbye, or fell silent): its users are gone.
    pub fn remove(&mut self, name: &str) -> Vec<Change> {
        let users = self.nodes.remove(name).map(|n| n.users).unwrap_or_default();
        diff(&users, &[])
    }

    /// The nodes not heard for [`NODE_TTL`] by `now`, forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Vec<Change>)> {
        let dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.duration_since(n.seen) >= NODE_TTL)
            .map(|(name, _)| name.clone())
            .collect();
        dead.into_iter().map(|name| (name.clone(), self.remove(&name))).collect()
    }

    /// Node `name` was heard from another way (its direct link) at `now`.
    pub fn heard(&mut self, name: &str, now: Instant) {
        if let Some(n) = self.nodes.get_mut(name) {
            n.seen = n.seen.max(now);
        }
    }

    /// When the run of node `name` that is listed started.
    pub fn epoch(&self, name: &str) -> Option<u64> {
        self.nodes.get(name).map(|n| n.epoch)
    }

    /// Whether node `name` is known (listed and not expired).
    pub fn knows(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// Every remote user, with its node.
    pub fn users(&self) -> impl Iterator<Item = (&str, &Remote)> {
        self.nodes.iter().flat_map(|(name, n)| n.users.iter().map(move |u| (name.as_str(), u)))
    }

    /// The node and id of the remote user `target` names, if exactly one does.
    pub fn find(&self, target: Target<'_>) -> Option<(String, ClientId)> {
        let mut found = self.users().filter(|(_, r)| match target {
            Target::Id(id) => r.user.id == id,
            Target::Ip(ip) => r.user.id.ip() == ip,
            Target::Nick(nick) => r.key.as_deref() == Some(nick_key(nick).as_str()),
        });
        match (found.next(), found.next()) {
            (Some((node, r)), None) => Some((node.to_owned(), r.user.id)),
            _ => None,
        }
    }

    /// The node of a remote user whose nick looks like `key`, if any.
    pub fn nick_node(&self, key: &str) -> Option<&str> {
        self.users().find(|(_, r)| r.key.as_deref() == Some(key)).map(|(node, _)| node)
    }
}

/// The presence lines that turn the list `old` into `new`.
fn diff(old: &[Remote], new: &[Remote]) -> Vec<Change> {
    let mut changes = Vec::new();
    for o in old {
        if !new.iter().any(|n| n.user.id == o.user.id) {
            changes.push(Change { id: o.user.id, state: Presence::Gone, nick: o.user.nick.clone() });
        }
    }
    for n in new {
        let before = old.iter().find(|o| o.user.id == n.user.id);
        if before.is_none_or(|o| o.user != n.user) {
            let state = match n.user.state {
                PeerState::Free => Presence::Free,
                PeerState::Busy => Presence::Busy,
            };
            changes.push(Change { id: n.user.id, state, nick: n.user.nick.clone() });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8, state: PeerState, nick: &str) -> DirUser {
        DirUser { id: ([10, 0, 0, n], 1).into(), state, nick: Some(nick.into()) }
    }

    #[test]
    fn lists_become_presence_changes() {
        let mut d = Directory::default();
        let t = Instant::now();
        let ala = user(1, PeerState::Free, "ala");
        let changes = d.apply("n2", 1, vec![ala.clone()], t);
        assert_eq!(changes, vec![Change { id: ala.id, state: Presence::Free, nick: Some("ala".into()) }]);
        assert!(d.apply("n2", 1, vec![ala.clone()], t).is_empty(), "nothing changed");
        let busy = user(1, PeerState::Busy, "ala");
        assert_eq!(d.apply("n2", 1, vec![busy], t)[0].state, Presence::Busy);
        let gone = d.apply("n2", 1, vec![], t);
        assert_eq!(gone, vec![Change { id: ala.id, state: Presence::Gone, nick: Some("ala".into()) }]);
    }

    #[test]
    fn a_silent_node_expires_and_a_stale_list_is_ignored() {
        let mut d = Directory::default();
        let t = Instant::now();
        d.apply("n2", 5, vec![user(1, PeerState::Free, "ala")], t);
        assert!(d.apply("n2", 4, vec![], t).is_empty(), "an earlier run of the node");
        assert!(d.expire(t + NODE_TTL / 2).is_empty());
        let expired = d.expire(t + NODE_TTL);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].1[0].state, Presence::Gone);
        assert!(!d.knows("n2"));
    }

    #[test]
    fn the_nodes_kept_are_bounded() {
        let mut d = Directory::default();
        let t = Instant::now();
        for i in 0..MAX_NODES + 10 {
            d.apply(&format!("n{i}"), 1, vec![], t);
        }
        assert_eq!(d.nodes.len(), MAX_NODES);
        assert!(d.knows("n0") && !d.knows(&format!("n{}", MAX_NODES + 1)));
    }

    #[test]
    fn users_are_found_by_id_ip_or_look_alike_nick() {
        let mut d = Directory::default();
        let t = Instant::now();
        d.apply("n2", 1, vec![user(1, PeerState::Free, "Ala")], t);
        d.apply("n3", 1, vec![user(2, PeerState::Free, "bob"), user(3, PeerState::Free, "cyd")], t);
        let ala: ClientId = ([10, 0, 0, 1], 1).into();
        assert_eq!(d.find(Target::Nick("ala")), Some(("n2".into(), ala)));
        assert_eq!(d.find(Target::Id(ala)), Some(("n2".into(), ala)));
        assert_eq!(d.find(Target::Ip(ala.ip())), Some(("n2".into(), ala)));
        assert_eq!(d.find(Target::Nick("dawid")), None);
        assert_eq!(d.nick_node(&nick_key("BOB")), Some("n3"));
        assert_eq!(d.users().count(), 3);
    }
}
