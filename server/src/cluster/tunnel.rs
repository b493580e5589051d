//! Tunnels: a client carried to the node where its call lives (see the
//! parent module). The home side forwards what its client sends and
//! delivers what comes back; the host side runs a hidden stand-in in its
//! registry. Session threads call the home side's sending half; the
//! cluster thread handles what arrives; a stand-in's bus-writer thread
//! sends what the host queues for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, Command, Decoded, Decoder, MAX_FRAME, ServerMsg, Status};

use super::link::Route;
use super::wire::Bus;
use super::{Cluster, lock};
use crate::listener::Shared;
use crate::outbox::{self, Limits, MediaFrame, Outbox, Pushed};
use crate::registry::Conn;

/// A client of this node carried to `host`: kept in its [`Conn`].
#[derive(Debug, Clone)]
pub struct TunnelOut {
    /// The node its call lives on.
    pub host: String,
    /// The tunnel's number.
    pub tid: u64,
    /// The next `up` message's number.
    seq: u64,
    /// The way its messages go.
    route: Route,
}

/// What the cluster thread keeps about tunnels.
#[derive(Default)]
pub(super) struct Tunnels {
    /// Ours, by number.
    outward: HashMap<u64, Outward>,
    /// Others' clients here, by (home node, number): the stand-in's id, the
    /// next `up` number, and the way the tunnel came (its `down`s go back so).
    inward: HashMap<(String, u64), (ClientId, u64, Route)>,
    /// Tunnels opened by a node not heard from yet (its first directory may
    /// come a moment after): held until it is, or [`WAIT_FOR_NODE`].
    waiting: Vec<Waiting>,
}

/// One of our clients carried elsewhere.
struct Outward {
    user: ClientId,
    host: String,
    /// The next `down` number.
    next: u64,
    route: Route,
}

/// An `open`, and the `up`s after it, from a node not heard from yet.
struct Waiting {
    from: String,
    tid: u64,
    user: ClientId,
    who: (Option<String>, bool),
    since: Instant,
    ups: Vec<(u64, Vec<u8>)>,
}

/// How long an `open` from a node not heard from waits for its directory.
const WAIT_FOR_NODE: Duration = Duration::from_secs(2);

/// Tunnels held waiting at most, and `up`s held for each.
const MAX_WAITING: usize = 64;
const MAX_HELD_UPS: usize = 32;

/// Bytes of one `down` message at most; a larger batch is split between
/// items. (NATS's default limit is 1 MiB a message.)
const DOWN_BYTES: usize = 512 << 10;

impl Cluster {
    /// Carries `conn` (nick `nick`, group calls `group`) to `host`: the
    /// stand-in there starts with `first` (the `connect` line), if given.
    /// The tunnel's number, or `None` when the broker's queue is full.
    pub fn tunnel_out(
        &self,
        conn: &Conn,
        host: &str,
        (nick, group): (Option<&str>, bool),
        first: Option<&[u8]>,
    ) -> Option<u64> {
        let tid = self.tid();
        let route = self.route_to(host);
        let open = Bus::Open { from: &self.node, tid, user: conn.id, nick, group };
        if !self.send_via(host, route, &open) {
            return None;
        }
        let mut seq = 0;
        if let Some(bytes) = first {
            if !self.send_via(host, route, &Bus::Up { from: &self.node, tid, seq, bytes }) {
                return None;
            }
            seq += 1;
        }
        let outward = Outward { user: conn.id, host: host.to_owned(), next: 0, route };
        lock(&self.tunnels).outward.insert(tid, outward);
        *lock(&conn.tunnel) = Some(TunnelOut { host: host.to_owned(), tid, seq, route });
        // Its writer here measures its connection for the senders there.
        conn.outbox.start_call();
        let way = if route.is_some() { "direct link" } else { "broker" };
        crate::log!(Info, "{}: carried to node {host} (tunnel {tid}, {way})", conn.id);
        Some(tid)
    }

    /// Forwards one item `conn` sent (a command line, or a whole frame) if
    /// it is carried to another node; `false` when it is not.
    pub fn up(&self, conn: &Conn, bytes: &[u8]) -> bool {
        let mut slot = lock(&conn.tunnel);
        let Some(t) = slot.as_mut() else { return false };
        let sent =
            self.send_via(&t.host, t.route, &Bus::Up { from: &self.node, tid: t.tid, seq: t.seq, bytes });
        t.seq += 1;
        if !sent {
            let tid = t.tid;
            drop(slot);
            crate::log!(Warn, "{}: its tunnel cannot keep up; ending it", conn.id);
            self.end_outward(tid, true);
        }
        true
    }

    /// Hands the `rate` line `conn`'s writer decided to its host, when it is
    /// carried (its call's senders are there); `false` when it is not.
    pub fn rate_up(&self, conn: &Conn) -> bool {
        let Some(t) = lock(&conn.tunnel).clone() else { return false };
        if let Some(kbps) = conn.outbox.take_report() {
            self.send_via(&t.host, t.route, &Bus::Rate { from: &self.node, tid: t.tid, kbps });
        }
        true
    }

    /// `rate`: how fast the connection of the client of tunnel (`from`,
    /// `tid`) takes media; told to the senders of its call here.
    pub(super) fn on_rate(&self, from: &str, tid: u64, kbps: Option<std::num::NonZeroU32>) {
        let Some((user, ..)) = lock(&self.tunnels).inward.get(&(from.to_owned(), tid)).copied() else {
            return;
        };
        if let Some(conn) = self.shared().and_then(|s| s.registry.conn(user)) {
            crate::feedback::tell_senders(&conn, kbps);
        }
    }

    /// `conn` left while carried: its host hears it is gone.
    pub fn gone(&self, conn: &Conn) {
        let Some(t) = lock(&conn.tunnel).take() else { return };
        lock(&self.tunnels).outward.remove(&t.tid);
        self.send_via(&t.host, t.route, &Bus::Gone { from: &self.node, tid: t.tid });
    }

    /// Ends our tunnel `tid`: its client is home again, told `stop
    /// disconnected` first when the host failed (`failed`).
    fn end_outward(&self, tid: u64, failed: bool) {
        let Some(Outward { user, host, route, .. }) = lock(&self.tunnels).outward.remove(&tid) else {
            return;
        };
        if failed {
            self.send_via(&host, route, &Bus::Gone { from: &self.node, tid });
        }
        if let Some(shared) = self.shared() {
            shared.registry.tunnel_ended(user, tid, failed);
        }
    }

    /// `down`: items from `from` for the client of our tunnel `tid`.
    pub(super) fn on_down(&self, from: &str, tid: u64, seq: u64, bytes: &[u8]) {
        let user = {
            let mut t = lock(&self.tunnels);
            match t.outward.get_mut(&tid) {
                Some(o) if o.host == from && o.next == seq => {
                    o.next += 1;
                    Some(o.user)
                }
                Some(o) if o.host == from => None,
                _ => return,
            }
        };
        let Some(user) = user else {
            crate::log!(Warn, "tunnel {tid} from {from}: a message was lost; ending it");
            return self.end_outward(tid, true);
        };
        let Some(conn) = self.shared().and_then(|s| s.registry.conn(user)) else { return };
        if deliver(&conn, bytes) {
            // Its video was dropped here: the senders are asked for a
            // keyframe, as the client itself would ask.
            self.up(&conn, b"keyframe\n");
        }
    }

    /// `close`: the call of our tunnel `tid`'s client is over. A tunnel
    /// closed before anything came back (the host refused it) ends as failed.
    pub(super) fn on_close(&self, from: &str, tid: u64) {
        let answered = match lock(&self.tunnels).outward.get(&tid) {
            Some(o) if o.host == from => o.next > 0,
            _ => return,
        };
        self.end_outward(tid, !answered);
    }

    /// `open`: a client of `from` comes to call one of ours, by `via`.
    pub(super) fn on_open(
        self: &Arc<Self>,
        from: &str,
        tid: u64,
        user: ClientId,
        who: (Option<&str>, bool),
        via: Route,
    ) {
        let key = (from.to_owned(), tid);
        if lock(&self.tunnels).inward.contains_key(&key) {
            return;
        }
        // Only a node this one has heard from may carry a client here; one
        // that has just started may be heard a moment after its `open`.
        if !self.directory().knows(from) {
            let mut t = lock(&self.tunnels);
            if t.waiting.len() < MAX_WAITING && !t.waiting.iter().any(|w| w.from == from && w.tid == tid) {
                let who = (who.0.map(str::to_owned), who.1);
                t.waiting.push(Waiting {
                    from: from.to_owned(),
                    tid,
                    user,
                    who,
                    since: Instant::now(),
                    ups: Vec::new(),
                });
            } else {
                drop(t);
                self.send_via(from, via, &Bus::Close { from: &self.node, tid });
            }
            return;
        }
        let Some(shared) = self.shared() else { return };
        let conn = Arc::new(Conn::new(user, Arc::new(Outbox::new(Limits::of(&shared.config), None))));
        if !shared.registry.join_stand_in(Arc::clone(&conn), who.0, who.1) {
            crate::log!(Warn, "tunnel {tid} from {from}: {user} is already here; refused");
            self.send_via(from, via, &Bus::Close { from: &self.node, tid });
            return;
        }
        lock(&self.tunnels).inward.insert(key.clone(), (user, 0, via));
        let (cluster, home) = (Arc::clone(self), from.to_owned());
        let mut seq = 0;
        let sink = move |batch: &[Vec<u8>]| {
            for chunk in chunks(batch) {
                let msg = Bus::Down { from: &cluster.node, tid, seq, bytes: &chunk };
                seq += 1;
                if !cluster.send_via(&home, via, &msg) {
                    return false;
                }
            }
            true
        };
        let (cluster, home) = (Arc::clone(self), from.to_owned());
        let on_end = move || {
            lock(&cluster.tunnels).inward.remove(&(home.clone(), tid));
            cluster.send_via(&home, via, &Bus::Close { from: &cluster.node, tid });
            if let Some(shared) = cluster.shared() {
                shared.registry.leave_stand_in(user, false);
            }
        };
        let name = format!("bus writer {user}");
        if let Err(e) = outbox::spawn_drain(Arc::clone(&conn.outbox), name, sink, on_end) {
            crate::log!(Error, "tunnel {tid} from {from}: cannot start its thread: {e}");
            shared.registry.leave_stand_in(user, false);
            lock(&self.tunnels).inward.remove(&key);
        }
        crate::log!(Info, "{user} of node {from} is here (tunnel {tid})");
    }

    /// `up`: the client of tunnel (`from`, `tid`) sent `bytes`.
    pub(super) fn on_up(&self, from: &str, tid: u64, seq: u64, bytes: &[u8]) {
        let key = (from.to_owned(), tid);
        let user = {
            let mut t = lock(&self.tunnels);
            if let Some(w) = t.waiting.iter_mut().find(|w| w.from == from && w.tid == tid) {
                if w.ups.len() < MAX_HELD_UPS {
                    w.ups.push((seq, bytes.to_vec()));
                }
                return;
            }
            let Some((user, next, _)) = t.inward.get_mut(&key) else { return };
            if *next != seq {
                crate::log!(Warn, "tunnel {tid} from {from}: a message was lost; ending it");
                let user = *user;
                t.inward.remove(&key);
                drop(t);
                // Its client is told, if the way back still works.
                return self.drop_stand_in(user, true);
            }
            *next += 1;
            *user
        };
        let Some(shared) = self.shared() else { return };
        execute(&shared, user, bytes);
    }

    /// Node `from` was heard from: the tunnels it opened meanwhile go ahead.
    pub(super) fn node_heard(self: &Arc<Self>, from: &str) {
        let held: Vec<Waiting> = {
            let mut t = lock(&self.tunnels);
            let (held, rest) = std::mem::take(&mut t.waiting).into_iter().partition(|w| w.from == from);
            t.waiting = rest;
            held
        };
        for w in held {
            self.on_open(&w.from, w.tid, w.user, (w.who.0.as_deref(), w.who.1), None);
            for (seq, bytes) in &w.ups {
                self.on_up(&w.from, w.tid, *seq, bytes);
            }
        }
    }

    /// Tunnels from nodes still not heard from after [`WAIT_FOR_NODE`] are refused.
    pub(super) fn expire_waiting(&self, now: Instant) {
        let old: Vec<(String, u64)> = {
            let mut t = lock(&self.tunnels);
            let (old, rest): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut t.waiting)
                .into_iter()
                .partition(|w| now.duration_since(w.since) >= WAIT_FOR_NODE);
            t.waiting = rest;
            old.into_iter().map(|w| (w.from, w.tid)).collect()
        };
        for (from, tid) in old {
            crate::log!(Warn, "tunnel {tid} from unknown node {from}: refused");
            self.send_to(&from, &Bus::Close { from: &self.node, tid });
        }
    }

    /// `gone`: the client of tunnel (`from`, `tid`) disconnected.
    pub(super) fn on_gone(&self, from: &str, tid: u64) {
        lock(&self.tunnels).waiting.retain(|w| !(w.from == from && w.tid == tid));
        let inward = lock(&self.tunnels).inward.remove(&(from.to_owned(), tid));
        if let Some((user, ..)) = inward {
            self.drop_stand_in(user, false);
        }
    }

    /// Node `node` is dead: our clients it hosted are home (`stop
    /// disconnected`), and its clients here have left.
    pub(super) fn node_dead(&self, node: &str) {
        self.close_link(node);
        self.end_tunnels(node, |_| true);
    }

    /// Link `id` with `node` broke: the tunnels over it end as a dead node's.
    pub(super) fn route_dead(&self, node: &str, id: u64) {
        self.end_tunnels(node, |route| *route == Some(id));
    }

    /// Ends the tunnels with `node` whose way `which` picks: our clients
    /// it hosted are home (`stop disconnected`), its clients here leave.
    fn end_tunnels(&self, node: &str, which: impl Fn(&Route) -> bool) {
        let on_it = |h: &str, r: &Route| h == node && which(r);
        let (outward, inward): (Vec<u64>, Vec<ClientId>) = {
            let mut t = lock(&self.tunnels);
            let outward =
                t.outward.iter().filter(|(_, o)| on_it(&o.host, &o.route)).map(|(tid, _)| *tid).collect();
            let inward =
                t.inward.iter().filter(|((h, _), (.., r))| on_it(h, r)).map(|(_, (u, ..))| *u).collect();
            t.inward.retain(|(h, _), (.., r)| !on_it(h, r));
            (outward, inward)
        };
        for tid in outward {
            self.end_outward(tid, true);
        }
        for user in inward {
            self.drop_stand_in(user, false);
        }
    }

    /// The way tunnel `tid` of ours goes.
    pub(super) fn route_of(&self, tid: u64) -> Route {
        lock(&self.tunnels).outward.get(&tid).and_then(|o| o.route)
    }

    /// The stand-in `user` leaves the registry as a client that
    /// disconnected; its client is sent `stop disconnected` when `failed`.
    fn drop_stand_in(&self, user: ClientId, failed: bool) {
        if let Some(shared) = self.shared() {
            shared.registry.leave_stand_in(user, failed);
        }
    }
}

/// Runs one item a carried client sent: a command through the registry, a
/// frame through the relay.
fn execute(shared: &Shared, user: ClientId, bytes: &[u8]) {
    let Some(conn) = shared.registry.conn(user) else { return };
    let end = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
    let line = bytes[..end].strip_suffix(b"\n").unwrap_or(&bytes[..end]);
    match Command::parse(line, shared.config.max_frame) {
        Ok(Command::Media(header)) if bytes.len() - end == header.len as usize => {
            crate::relay::relay_frame(&conn, header, bytes.to_vec(), end);
        }
        Ok(Command::Media(_) | Command::Auth(_)) => {
            crate::log!(Warn, "{user}: a broken frame came through the tunnel; ignored");
        }
        Ok(Command::Ping) => {
            conn.send(&ServerMsg::Pong);
        }
        Ok(command) => shared.registry.execute(user, &command),
        Err(e) => {
            conn.send_error(e.code, e.reason);
        }
    }
}

/// Queues `bytes` (whole lines and frames from the host) for `conn`: lines
/// as control lines, frames under its drop policy. `true` when that policy
/// dropped video and wants a keyframe.
fn deliver(conn: &Conn, bytes: &[u8]) -> bool {
    let mut keyframe = false;
    let decoder = Decoder::new(komunikator_protocol::MAX_LINE, MAX_FRAME);
    let mut rest = bytes;
    while !rest.is_empty() {
        match decoder.decode_server(rest) {
            Ok(Status::Complete { item, consumed }) => {
                let raw = rest[..consumed].to_vec();
                match item {
                    Decoded::Media { header, from, .. } => {
                        let from = from.unwrap_or(conn.id);
                        let frame = MediaFrame { from, kind: header.kind, key: header.key, bytes: raw };
                        keyframe |= conn.outbox.push_media(frame) == Pushed::DroppedNeedKeyframe;
                    }
                    Decoded::Message(_) | Decoded::Invalid(_) => {
                        conn.outbox.push_control(raw);
                    }
                }
                rest = &rest[consumed..];
            }
            Ok(Status::Partial) | Err(_) => {
                // Refused like bad input: the rest is dropped, never half-passed on.
                crate::log!(Warn, "{}: a broken message came through the tunnel; dropped", conn.id);
                return keyframe;
            }
        }
    }
    keyframe
}

/// A batch in pieces of at most [`DOWN_BYTES`], split between items (an
/// item larger than that is a piece of its own).
fn chunks(batch: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for item in batch {
        match out.last_mut() {
            Some(last) if last.len() + item.len() <= DOWN_BYTES => last.extend_from_slice(item),
            _ => out.push(item.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_between_items() {
        let small = vec![0u8; 100 << 10];
        let big = vec![0u8; 700 << 10];
        let pieces = chunks(&[small.clone(), small.clone(), big, small]);
        let sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![200 << 10, 700 << 10, 100 << 10]);
    }
}
