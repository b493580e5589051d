//! The registry's side of the cluster (see `cluster`): listing and naming
//! with the other nodes' users in view, carrying a caller to the node of
//! the user it calls, and the hidden stand-ins of other nodes' callers.
//! Run by whichever thread calls the registry (session threads, and the
//! cluster thread for what arrives), under the registry's lock.

use std::sync::Arc;
use std::time::Instant;

use komunikator_protocol::{
    ClientId, Command, ErrorCode, PeerState, Presence, ServerMsg, StopReason, Target,
};

use super::{Call, Client, Conn, Registry, Table, broadcast_presence, end_call};
use crate::cluster::Cluster;
use crate::cluster::directory::Change;
use crate::cluster::wire::{DirUser, Refusal};
use crate::floods;
use crate::room::{Invite, RoomId};

impl Registry {
    /// Joins this registry to its node's cluster.
    pub fn set_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    pub(super) fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Tells the cluster this node's users changed.
    pub(super) fn local_changed(&self) {
        if let Some(c) = self.cluster() {
            c.local_changed();
        }
    }

    /// Client `id`'s connection, if it is here.
    pub fn conn(&self, id: ClientId) -> Option<Arc<Conn>> {
        self.lock().clients.get(&id).map(|c| Arc::clone(&c.conn))
    }

    /// This node's users, as its directory lists them (stand-ins are not).
    pub fn local_directory(&self) -> Vec<DirUser> {
        let t = self.lock();
        let listed = t.clients.values().filter(|c| c.stand_in.is_none());
        listed.map(|c| DirUser { id: c.conn.id, state: c.presence(), nick: c.nick.clone() }).collect()
    }

    /// `name`: unique among this node's clients and the other nodes' users.
    pub(super) fn name(&self, t: &mut Table, conn: &Conn, nick: &str) {
        let key = komunikator_protocol::nick_key(nick);
        let taken =
            t.clients.iter().any(|(id, c)| *id != conn.id && c.nick_key.as_deref() == Some(key.as_str()));
        let elsewhere = self.cluster().is_some_and(|c| c.directory().nick_node(&key).is_some());
        if taken || elsewhere {
            conn.send_error(ErrorCode::NameTaken, "another client has that nick");
            return;
        }
        let Some(c) = t.clients.get_mut(&conn.id) else { return };
        if !c.renames.take(Instant::now()) {
            if c.renames_log.refused() {
                crate::log!(Warn, "{}: renaming too fast; refusing renames for a while", conn.id);
            }
            conn.send_error(ErrorCode::RateLimited, "too many name commands; wait 10 seconds");
            return;
        }
        c.renames_log.accepted();
        c.nick = Some(nick.to_owned());
        c.nick_key = Some(key);
        conn.send(&ServerMsg::OkName(nick));
        crate::log!(Info, "{} is now {nick}", conn.id);
        broadcast_presence(t, conn.id);
    }

    /// `refresh`: this node's other clients, then the other nodes' users
    /// (but for an id that a client here has too).
    pub(super) fn refresh(&self, t: &Table, conn: &Conn) {
        let mut list: Vec<(ClientId, PeerState, Option<String>)> = t
            .clients
            .values()
            .filter(|c| c.conn.id != conn.id && c.stand_in.is_none())
            .map(|c| (c.conn.id, c.presence(), c.nick.clone()))
            .collect();
        if let Some(cluster) = self.cluster() {
            let dir = cluster.directory();
            let remote =
                dir.users().filter(|(_, r)| r.user.id != conn.id && !t.clients.contains_key(&r.user.id));
            list.extend(remote.map(|(_, r)| (r.user.id, r.user.state, r.user.nick.clone())));
        }
        let mut out = Vec::with_capacity(32 + 48 * list.len());
        ServerMsg::Clients(list.len() as u32).encode(&mut out);
        for (id, state, nick) in &list {
            ServerMsg::Client { id: *id, state: *state, nick: nick.as_deref() }.encode(&mut out);
        }
        conn.outbox.push_control(out);
    }

    /// `connect` to `target`, which no client here is but a user of another
    /// node may be: carries the caller there and returns `true`; `false`
    /// when nobody in the cluster is `target`.
    pub(super) fn connect_remote(&self, t: &mut Table, conn: &Conn, target: Target<'_>) -> bool {
        let Some(cluster) = self.cluster() else { return false };
        let Some((node, _)) = cluster.find(target) else { return false };
        let Some(caller) = t.clients.get_mut(&conn.id) else { return true };
        let mut line = Vec::new();
        Command::Connect(target).encode(&mut line);
        let who = (caller.nick.as_deref(), caller.group);
        if cluster.tunnel_out(conn, &node, who, Some(&line)).is_none() {
            conn.send_error(ErrorCode::Full, "the cluster is overloaded; try again");
            return true;
        }
        caller.call = Call::Remote;
        broadcast_presence(t, conn.id);
        true
    }

    /// Client `id`'s tunnel `tid` ended: it is home and free again; told
    /// `stop disconnected` first when the other node failed (`failed`).
    pub fn tunnel_ended(&self, id: ClientId, tid: u64, failed: bool) {
        let mut t = self.lock();
        let Some(c) = t.clients.get_mut(&id) else { return };
        {
            let mut slot = c.conn.tunnel.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if slot.as_ref().is_some_and(|s| s.tid != tid) {
                return;
            }
            *slot = None;
        }
        if failed {
            c.conn.send(&ServerMsg::Stop(StopReason::Disconnected));
        }
        // Its call is over, as at the end of a call here: its media and
        // drop state go, and its writer stops measuring it for senders.
        c.conn.outbox.purge_media();
        if c.call == Call::Remote {
            c.call = Call::Idle;
        }
        crate::log!(
            Info,
            "{id}: back from its tunnel {tid}{}",
            if failed { " (the other node failed)" } else { "" }
        );
        broadcast_presence(&t, id);
        drop(t);
        self.local_changed();
    }

    /// Adds `conn`, a stand-in for a client of another node called `nick`
    /// (group calls `group`): hidden from lists and `presence`. `false`
    /// when a client here has its id, or the server is full.
    pub fn join_stand_in(&self, conn: Arc<Conn>, nick: Option<&str>, group: bool) -> bool {
        let mut t = self.lock();
        if t.clients.contains_key(&conn.id) || t.clients.len() >= self.config.max_clients {
            return false;
        }
        let id = conn.id;
        let client =
            Client { nick: nick.map(str::to_owned), group, stand_in: Some(false), ..self.new_client(conn) };
        t.clients.insert(id, client);
        true
    }

    /// The stand-in `id` leaves, as a client that disconnected (its call's
    /// other parties get `stop disconnected` or `left`); its outbox closes,
    /// which ends its bus writer. When the tunnel `failed` (a lost message),
    /// its client is first sent `stop disconnected` through it.
    pub fn leave_stand_in(&self, id: ClientId, failed: bool) {
        let mut t = self.lock();
        let Some(c) = t.clients.get(&id).filter(|c| c.stand_in.is_some()) else { return };
        if failed && !c.call.is_idle() {
            // Its client hears through the tunnel, before it closes.
            c.conn.send(&ServerMsg::Stop(StopReason::Disconnected));
        }
        end_call(&mut t, id, StopReason::Disconnected);
        if let Some(c) = t.clients.remove(&id) {
            c.conn.links().clear();
            c.conn.outbox.close();
        }
        self.settle(&mut t);
    }

    /// Stand-ins whose call is over (after their first command) leave the
    /// table; their outbox closes once drained, and their bus writer then
    /// closes the tunnel.
    pub(super) fn settle(&self, t: &mut Table) {
        if self.cluster().is_none() {
            return;
        }
        let done: Vec<ClientId> = t
            .clients
            .values()
            .filter(|c| c.stand_in == Some(true) && c.call.is_idle())
            .map(|c| c.conn.id)
            .collect();
        for id in done {
            if let Some(c) = t.clients.remove(&id) {
                c.conn.outbox.close();
            }
        }
    }

    /// The other nodes' users changed: this node's clients are told, and a
    /// nick held here that a user of an earlier-named node holds too (both
    /// nodes took it at once) goes to that user.
    pub fn remote_presence(&self, changes: &[Change], cluster: &Cluster) {
        if changes.is_empty() {
            return;
        }
        let mut t = self.lock();
        for ch in changes {
            let line = ServerMsg::Presence { id: ch.id, state: ch.state, nick: ch.nick.as_deref() }.to_line();
            let key = format!("presence {} ", ch.id);
            for c in t.clients.values().filter(|c| c.stand_in.is_none() && c.conn.id != ch.id) {
                c.conn.outbox.push_control_replacing(line.clone(), key.as_bytes());
            }
        }
        let lost: Vec<ClientId> = changes
            .iter()
            .filter(|ch| ch.state != Presence::Gone)
            .filter_map(|ch| ch.nick.as_deref().map(komunikator_protocol::nick_key))
            .filter_map(|key| {
                let node = cluster.directory().nick_node(&key).map(str::to_owned)?;
                let mine = t.clients.values().find(|c| c.nick_key.as_deref() == Some(key.as_str()))?;
                (node.as_str() < cluster.node.as_str()).then_some(mine.conn.id)
            })
            .collect();
        for id in lost {
            revoke_nick(&mut t, id);
        }
    }
}

impl Registry {
    /// `invite` naming `invitee` of node `node` (`elsewhere`): its seat is
    /// held in `room` while that node is asked to carry it here.
    pub(super) fn invite_elsewhere(
        &self,
        t: &mut Table,
        conn: &Conn,
        room: RoomId,
        (node, invitee): (String, ClientId),
        now: Instant,
    ) {
        let Some(cluster) = self.cluster() else { return };
        let nick = t.clients.get(&conn.id).and_then(|c| c.nick.clone());
        let Some(r) = t.rooms.get_mut(room) else { return };
        r.invites.push(Invite { inviter: conn.id, invitee, since: now });
        if !cluster.pull(&node, invitee, (conn.id, nick.as_deref()), room) {
            r.take_invite(invitee);
            conn.send_error(ErrorCode::Full, "the cluster is overloaded; try again");
        }
    }

    /// On the invitee's node: carries our `user` to an invitation by
    /// `inviter` (called `nick`) of another node, if it is free, takes part
    /// in group calls, has not blocked the inviter, and its ring limits
    /// allow. Marks it busy there.
    ///
    /// # Errors
    /// Why it cannot come.
    pub fn carry_for_invite(
        &self,
        user: ClientId,
        (inviter, nick): (ClientId, Option<&str>),
    ) -> Result<(Arc<Conn>, Option<String>, bool), Refusal> {
        let limits = self.ring_limits();
        let mut t = self.lock();
        let Table { clients, sources, .. } = &mut *t;
        let Some(c) = clients.get_mut(&user).filter(|c| c.stand_in.is_none() && c.call.is_idle()) else {
            return Err(Refusal::Busy);
        };
        if !c.group {
            return Err(Refusal::NotSupported);
        }
        let key = nick.map(komunikator_protocol::nick_key);
        match floods::admit_ring(
            limits,
            sources,
            &mut c.callee,
            (inviter.ip(), key.as_deref()),
            Instant::now(),
        ) {
            Ok(()) => {}
            Err(floods::Refusal::Blocked) => return Err(Refusal::Busy),
            Err(floods::Refusal::Limited(_)) => return Err(Refusal::RateLimited),
        }
        c.call = Call::Remote;
        let out = (Arc::clone(&c.conn), c.nick.clone(), c.group);
        broadcast_presence(&t, user);
        drop(t);
        self.local_changed();
        Ok(out)
    }

    /// `invitee`, asked for by `inviter`'s invitation into `room`, is
    /// carried here: the invitation rings on its stand-in, unless it ended
    /// meanwhile (then the stand-in, never asked, is settled and goes home).
    pub fn invite_carried(&self, inviter: ClientId, room: RoomId, invitee: ClientId) {
        let mut t = self.lock();
        let held = t.rooms.get_mut(room).and_then(|r| r.take_invite(invitee)).is_some();
        let Some(stand_in) = t.clients.get_mut(&invitee).filter(|c| c.stand_in.is_some()) else { return };
        stand_in.stand_in = Some(true);
        let inviter_conn = t.clients.get(&inviter).map(|c| Arc::clone(&c.conn));
        if let (true, Some(conn)) = (held, inviter_conn) {
            super::group::ring(&mut t, &conn, room, invitee, Instant::now());
        }
        self.settle(&mut t);
    }

    /// `invitee` of another node cannot come to `inviter`'s invitation
    /// into `room`: the inviter hears it as for a local invitee.
    pub fn invite_refused(&self, inviter: ClientId, room: RoomId, invitee: ClientId, why: Refusal) {
        let mut t = self.lock();
        if t.rooms.get_mut(room).and_then(|r| r.take_invite(invitee)).is_none() {
            return;
        }
        let Some(conn) = t.clients.get(&inviter).map(|c| Arc::clone(&c.conn)) else { return };
        match why {
            Refusal::Busy => {
                conn.send(&ServerMsg::Busy(invitee));
            }
            Refusal::NotSupported => {
                conn.send_error(ErrorCode::NotSupported, "that client cannot take part in group calls");
            }
            Refusal::RateLimited => {
                conn.send_error(ErrorCode::RateLimited, "too many calls to that client; wait a minute");
            }
        }
    }
}

/// Takes client `id`'s nick away: another node's user holds it too, and wins.
fn revoke_nick(t: &mut Table, id: ClientId) {
    let Some(c) = t.clients.get_mut(&id) else { return };
    let Some(nick) = c.nick.take() else { return };
    c.nick_key = None;
    crate::log!(Warn, "{id}: nick {nick} is held on another node too, which keeps it");
    c.conn.send_error(ErrorCode::NameTaken, "a user of another server took that nick at the same moment");
    broadcast_presence(t, id);
}

/// Whether `c` is listed and told `presence` (not a stand-in).
pub(super) fn listed(c: &Client) -> bool {
    c.stand_in.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stand_in_is_not_listed() {
        let r = Registry::new(crate::config::Config::defaults());
        let limits = crate::outbox::Limits::of(&crate::config::Config::defaults());
        let out = Arc::new(crate::outbox::Outbox::new(limits, None));
        let id: ClientId = ([10, 0, 0, 1], 1).into();
        assert!(r.join_stand_in(Arc::new(Conn::new(id, out.clone())), Some("ala"), false));
        assert!(!r.join_stand_in(Arc::new(Conn::new(id, out)), Some("ala"), false), "one per id");
        assert!(r.local_directory().is_empty());
        r.leave_stand_in(id, false);
        assert!(r.conn(id).is_none());
    }
}
