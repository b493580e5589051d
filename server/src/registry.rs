//! The `clients` table of the seed: who is connected, their nick and call
//! state, and how to reach them. Shared by every session thread behind one
//! `Mutex`.
//!
//! Ownership and locking:
//! * [`Registry`] owns the table. Session threads call its methods; the
//!   housekeeping thread calls [`Registry::expire_rings`].
//! * Each client's [`Conn`] is shared between its session thread, its writer
//!   thread (through the outbox) and the table. Its `peer` slot holds the
//!   peer's outbox while a call is up; the media path reads only that slot and
//!   never takes the registry lock.
//! * Lock order: registry, then a `peer` slot, then an outbox. Only the
//!   registry, under its lock, ever holds two slots at once (both parties',
//!   when a call starts); a session holds only its own. Replies and
//!   notifications are pushed into outboxes while the registry lock is held,
//!   which keeps every client's view of events in one order; pushing never
//!   blocks and never touches a socket (an overflowing outbox only shuts its
//!   socket down, which does not block).
//! * A client's writer thread reads its own `peer` slot too, to send its peer
//!   `rate` ([`crate::feedback::deliver`]): the slot, then its own outbox
//!   (released), then the peer's outbox; never two outboxes at once.
//! * A poisoned lock is recovered: every method leaves the table consistent
//!   between statements, and one failed session must not stop the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use komunikator_protocol::{
    ClientId, Command, ErrorCode, PeerState, Presence, ServerMsg, StopReason, Target,
};

use crate::call::{Call, TokenBucket};
use crate::config::Config;
use crate::floods::{self, Callee, Quiet, Refusal, RingLimits, Sources};
use crate::outbox::Outbox;

/// A connected client as its session thread and the media path see it.
pub struct Conn {
    /// The client's id: its address as the server sees it.
    pub id: ClientId,
    /// Where to queue lines and frames for this client.
    pub outbox: Arc<Outbox>,
    /// The peer's outbox while a call is up. Set and cleared by the registry
    /// under its lock; media frames are pushed while holding this slot, so
    /// none can slip out after the call has ended.
    peer: Mutex<Option<Arc<Outbox>>>,
}

impl Conn {
    /// A connection handle for `id` that sends through `outbox`.
    pub fn new(id: ClientId, outbox: Arc<Outbox>) -> Conn {
        Conn { id, outbox, peer: Mutex::new(None) }
    }

    /// Runs `f` with the peer's outbox, or `None` outside a call, holding the slot.
    pub fn with_peer<R>(&self, f: impl FnOnce(Option<&Arc<Outbox>>) -> R) -> R {
        let slot = self.peer.lock().unwrap_or_else(PoisonError::into_inner);
        f(slot.as_ref())
    }

    fn set_peer(&self, peer: Option<Arc<Outbox>>) {
        *self.peer.lock().unwrap_or_else(PoisonError::into_inner) = peer;
    }

    /// Queues one server message for this client.
    pub fn send(&self, msg: &ServerMsg<'_>) -> bool {
        self.outbox.push_control(msg.to_line())
    }

    /// Queues `error <code> <text>` for this client.
    pub fn send_error(&self, code: ErrorCode, text: &str) -> bool {
        self.send(&ServerMsg::Error { code, text: Some(text) })
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `--max-clients` clients are connected.
    #[error("server full")]
    Full,
    /// `--max-per-ip` connections come from this address.
    #[error("too many connections from this address")]
    PerIp,
}

struct Client {
    conn: Arc<Conn>,
    nick: Option<String>,
    /// The nick's look-alike key ([`komunikator_protocol::nick_key`]), for uniqueness.
    nick_key: Option<String>,
    call: Call,
    connects: TokenBucket,
    /// The rename limit ([`floods::renames`]).
    renames: TokenBucket,
    /// Whether refused renames are being logged.
    renames_log: Quiet,
    /// Ring limits and blocks as a callee.
    callee: Callee,
    /// Whether this client's refused rings are being logged.
    rings_log: Quiet,
}

impl Client {
    fn presence(&self) -> PeerState {
        if self.call.is_idle() { PeerState::Free } else { PeerState::Busy }
    }
}

#[derive(Default)]
struct Table {
    clients: HashMap<ClientId, Client>,
    per_ip: HashMap<IpAddr, usize>,
    /// Ring limits per source address; they outlive connections.
    sources: Sources,
}

/// The shared client table. See the module documentation.
pub struct Registry {
    table: Mutex<Table>,
    config: Config,
}

impl Registry {
    /// An empty table enforcing `config`'s limits.
    pub fn new(config: Config) -> Registry {
        Registry { table: Mutex::new(Table::default()), config }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether nobody is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the connection limits and reserves a place for a client from `ip`.
    ///
    /// # Errors
    /// [`Refused`] when the server or this address is full.
    pub fn reserve(&self, ip: IpAddr) -> Result<(), Refused> {
        let mut t = self.lock();
        let reserved: usize = t.per_ip.values().sum();
        if reserved >= self.config.max_clients {
            return Err(Refused::Full);
        }
        let n = t.per_ip.entry(ip).or_insert(0);
        if *n >= self.config.max_per_ip {
            return Err(Refused::PerIp);
        }
        *n += 1;
        Ok(())
    }

    /// Gives back a place taken by [`Registry::reserve`] for a client that never joined.
    pub fn unreserve(&self, ip: IpAddr) {
        release_ip(&mut self.lock(), ip);
    }

    /// Adds a client that holds a reservation and tells everyone else.
    /// `greeting` (its `hello`, unless it was greeted before logging in) is
    /// queued under the table's lock, just before the client enters the
    /// table: so it comes first, and the client misses no `presence` of
    /// anyone who joins after it has read it.
    pub fn join(&self, conn: Arc<Conn>, greeting: Option<&ServerMsg<'_>>) {
        let mut t = self.lock();
        if let Some(hello) = greeting {
            conn.send(hello);
        }
        let id = conn.id;
        let connects = TokenBucket::new(self.config.connect_burst, self.config.connect_rate);
        let client = Client {
            conn,
            nick: None,
            nick_key: None,
            call: Call::Idle,
            connects,
            renames: floods::renames(),
            renames_log: Quiet::default(),
            callee: Callee::new(self.ring_limits()),
            rings_log: Quiet::default(),
        };
        t.clients.insert(id, client);
        broadcast_presence(&t, id);
    }

    /// Removes a client: ends its call (the peer gets `stop disconnected`)
    /// and tells everyone it is gone.
    pub fn leave(&self, id: ClientId) {
        let mut t = self.lock();
        end_call(&mut t, id, StopReason::Disconnected);
        broadcast_presence_as(&t, id, Presence::Gone);
        if let Some(client) = t.clients.remove(&id) {
            client.conn.set_peer(None);
        }
        release_ip(&mut t, id.ip());
    }

    /// Executes one command that is not media, from client `id`.
    pub fn execute(&self, id: ClientId, command: &Command<'_>) {
        let mut t = self.lock();
        let Some(conn) = t.clients.get(&id).map(|c| Arc::clone(&c.conn)) else { return };
        match *command {
            Command::Name(nick) => name(&mut t, &conn, nick),
            Command::Refresh => refresh(&t, &conn),
            Command::Connect(target) => self.connect(&mut t, &conn, target),
            Command::AskYes => answer(&mut t, &conn, true),
            Command::AskNo => answer(&mut t, &conn, false),
            Command::Stop => {
                if !end_call(&mut t, id, StopReason::Hangup) {
                    conn.send_error(ErrorCode::NotInCall, "no call to stop");
                }
            }
            // The seed's `start`: the call started when the callee said
            // `ask yes`; in it there is nothing more to do.
            Command::Start => {
                if conn.with_peer(|peer| peer.is_none()) {
                    conn.send_error(
                        ErrorCode::NotInCall,
                        "no started call: the server sends start when one begins",
                    );
                }
            }
            Command::Keyframe => forward(&conn, &ServerMsg::Keyframe),
            Command::Delay(ms) => forward_latest(&conn, &ServerMsg::Delay(ms), b"delay "),
            // One switch queued per kind at most: a newer one replaces it.
            Command::MediaState(state) => {
                let key = format!("media {} ", state.kind.as_str());
                forward_latest(&conn, &ServerMsg::MediaState(state), key.as_bytes());
            }
            Command::Msg(text) => forward(&conn, &ServerMsg::Msg(text)),
            Command::Ping => {
                conn.send(&ServerMsg::Pong);
            }
            Command::Block(target) => block(&mut t, &conn, target, true),
            Command::Unblock(target) => block(&mut t, &conn, target, false),
            Command::Media(_) | Command::Auth(_) => {
                crate::log!(Error, "{id}: media or auth reached the registry; the session handles them");
            }
        }
    }

    fn connect(&self, t: &mut Table, conn: &Conn, target: Target<'_>) {
        let now = Instant::now();
        let id = conn.id;
        let Some(caller) = t.clients.get_mut(&id) else { return };
        if !caller.connects.take(now) {
            conn.send_error(ErrorCode::RateLimited, "too many connect commands; wait a second");
            return;
        }
        if !caller.call.is_idle() {
            conn.send_error(ErrorCode::Busy, "you are already ringing or in a call");
            return;
        }
        let callee = match resolve(t, target) {
            Ok(callee) if callee == id => {
                conn.send_error(ErrorCode::SelfCall, "you cannot call yourself");
                return;
            }
            Ok(callee) => callee,
            Err((code, text)) => {
                conn.send_error(code, text);
                return;
            }
        };
        if !admit_ring(self.ring_limits(), t, (id, callee), now) {
            return;
        }
        let Some(callee_client) = t.clients.get_mut(&callee) else { return };
        callee_client.call = Call::Asked { caller: id, since: now };
        let callee_conn = Arc::clone(&callee_client.conn);
        let Some(caller) = t.clients.get_mut(&id) else { return };
        caller.call = Call::Calling { callee, since: now };
        let caller_nick = caller.nick.clone();
        callee_conn.send(&ServerMsg::Ask { id, nick: caller_nick.as_deref() });
        conn.send(&ServerMsg::Calling(callee));
        crate::log!(Info, "{id} calls {callee}");
        broadcast_presence(t, id);
        broadcast_presence(t, callee);
    }

    /// Ends every call that has rung longer than the ring timeout; both parties get `stop timeout`.
    pub fn expire_rings(&self, now: Instant) {
        let mut t = self.lock();
        let timeout = self.config.ring_timeout();
        let expired: Vec<ClientId> = t
            .clients
            .iter()
            .filter_map(|(id, c)| match c.call {
                Call::Calling { since, .. } if now.duration_since(since) >= timeout => Some(*id),
                _ => None,
            })
            .collect();
        for caller in expired {
            let callee = match t.clients.get(&caller).map(|c| c.call) {
                Some(Call::Calling { callee, .. }) => callee,
                _ => continue,
            };
            crate::log!(Info, "{caller} -> {callee}: unanswered, ring timeout");
            for id in [caller, callee] {
                if let Some(c) = t.clients.get_mut(&id) {
                    c.call = Call::Idle;
                    c.conn.send(&ServerMsg::Stop(StopReason::Timeout));
                }
            }
            broadcast_presence(&t, caller);
            broadcast_presence(&t, callee);
        }
    }

    fn ring_limits(&self) -> RingLimits {
        let c = &self.config;
        RingLimits { pair: c.rings_per_pair, callee: c.rings_per_callee, source: c.rings_per_address }
    }

    /// Disconnects everyone now (server shutdown).
    pub fn abort_all(&self) {
        for c in self.lock().clients.values() {
            c.conn.outbox.abort();
        }
    }
}

/// Whether `caller` may ring `callee` now: the callee is free, has not
/// blocked the caller, and no ring limit is reached. Otherwise the caller got
/// its answer: `busy` for a busy callee or a block (which is not revealed),
/// `error rate-limited` for a limit. Counts an admitted ring.
fn admit_ring(
    limits: RingLimits,
    t: &mut Table,
    (caller, callee): (ClientId, ClientId),
    now: Instant,
) -> bool {
    let Some(c) = t.clients.get(&caller) else { return false };
    let (conn, nick_key) = (Arc::clone(&c.conn), c.nick_key.clone());
    let Table { clients, sources, .. } = t;
    let Some(callee_client) = clients.get_mut(&callee) else { return false };
    let refusal = if callee_client.call.is_idle() {
        let who = (caller.ip(), nick_key.as_deref());
        floods::admit_ring(limits, sources, &mut callee_client.callee, who, now).err()
    } else {
        Some(Refusal::Blocked)
    };
    let Some(refusal) = refusal else {
        if let Some(c) = clients.get_mut(&caller) {
            c.rings_log.accepted();
        }
        return true;
    };
    match refusal {
        Refusal::Blocked => {
            conn.send(&ServerMsg::Busy(callee));
        }
        Refusal::Limited(text) => {
            if clients.get_mut(&caller).is_some_and(|c| c.rings_log.refused()) {
                crate::log!(Warn, "{caller} -> {callee}: ring refused: {text}");
            }
            conn.send_error(ErrorCode::RateLimited, text);
        }
    }
    false
}

/// `block <target>` (`on`) or `unblock <target>` from `conn`.
fn block(t: &mut Table, conn: &Conn, target: Target<'_>, on: bool) {
    let Some(c) = t.clients.get_mut(&conn.id) else { return };
    if !on {
        c.callee.unblock(target, komunikator_protocol::nick_key);
        conn.send(&ServerMsg::OkUnblock(target));
    } else if c.callee.block(target, komunikator_protocol::nick_key) {
        conn.send(&ServerMsg::OkBlock(target));
    } else {
        conn.send_error(ErrorCode::BadArgument, "block list full; unblock someone first");
    }
}

fn release_ip(t: &mut Table, ip: IpAddr) {
    if let Some(n) = t.per_ip.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            t.per_ip.remove(&ip);
        }
    }
}

fn resolve(t: &Table, target: Target<'_>) -> Result<ClientId, (ErrorCode, &'static str)> {
    const NOBODY: (ErrorCode, &str) =
        (ErrorCode::NoSuchClient, "nobody with that id, IP or nick is connected");
    match target {
        Target::Id(id) => t.clients.contains_key(&id).then_some(id).ok_or(NOBODY),
        Target::Ip(ip) => {
            let mut matching = t.clients.keys().filter(|id| id.ip() == ip);
            match (matching.next(), matching.next()) {
                (Some(id), None) => Ok(*id),
                (Some(_), Some(_)) => {
                    Err((ErrorCode::Ambiguous, "several clients have that IP; use IP:PORT"))
                }
                (None, _) => Err(NOBODY),
            }
        }
        Target::Nick(nick) => {
            let key = komunikator_protocol::nick_key(nick);
            t.clients
                .iter()
                .find(|(_, c)| c.nick_key.as_deref() == Some(key.as_str()))
                .map(|(id, _)| *id)
                .ok_or(NOBODY)
        }
    }
}

fn name(t: &mut Table, conn: &Conn, nick: &str) {
    let key = komunikator_protocol::nick_key(nick);
    let taken = t.clients.iter().any(|(id, c)| *id != conn.id && c.nick_key.as_deref() == Some(key.as_str()));
    if taken {
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

fn refresh(t: &Table, conn: &Conn) {
    let mut out = Vec::with_capacity(32 + 48 * t.clients.len());
    let others = t.clients.values().filter(|c| c.conn.id != conn.id);
    ServerMsg::Clients(others.clone().count() as u32).encode(&mut out);
    for c in others {
        ServerMsg::Client { id: c.conn.id, state: c.presence(), nick: c.nick.as_deref() }.encode(&mut out);
    }
    conn.outbox.push_control(out);
}

fn answer(t: &mut Table, conn: &Conn, yes: bool) {
    let callee = conn.id;
    let caller = match t.clients.get(&callee).map(|c| c.call) {
        Some(Call::Asked { caller, .. }) => caller,
        _ => {
            conn.send_error(ErrorCode::NotAsked, "nobody is calling you");
            return;
        }
    };
    let Some(caller_conn) = t.clients.get(&caller).map(|c| Arc::clone(&c.conn)) else { return };
    if yes {
        caller_conn.send(&ServerMsg::AskYes);
        for (a, b) in [(&*caller_conn, conn), (conn, &*caller_conn)] {
            a.outbox.start_call();
            if let Some(c) = t.clients.get_mut(&a.id) {
                c.call = Call::InCall { peer: b.id };
            }
        }
        link(&caller_conn, conn);
        crate::log!(Info, "{caller} <-> {callee}: call started");
    } else {
        for id in [caller, callee] {
            if let Some(c) = t.clients.get_mut(&id) {
                c.call = Call::Idle;
            }
        }
        caller_conn.send(&ServerMsg::AskNo);
        crate::log!(Info, "{callee} declined {caller}");
        broadcast_presence(t, caller);
        broadcast_presence(t, callee);
    }
}

/// Opens the media path between `a` and `b` and queues `start` for both,
/// holding both peer slots: no frame can be queued ahead of a `start`, and a
/// client that has read its `start` finds its slot set.
fn link(a: &Conn, b: &Conn) {
    let mut a_slot = a.peer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut b_slot = b.peer.lock().unwrap_or_else(PoisonError::into_inner);
    *a_slot = Some(Arc::clone(&b.outbox));
    *b_slot = Some(Arc::clone(&a.outbox));
    a.send(&ServerMsg::Start(b.id));
    b.send(&ServerMsg::Start(a.id));
}

/// Ends `id`'s call, if any, telling the other party why. Returns whether
/// there was a call. A caller's `stop` while ringing is reported as `cancelled`.
///
/// The end of a call is a barrier for its media: once this returns, no frame
/// of the call is queued for either party, and none can be (see
/// [`Outbox::purge_media`] for frames being written at that moment).
fn end_call(t: &mut Table, id: ClientId, reason: StopReason) -> bool {
    let Some(call) = t.clients.get(&id).map(|c| c.call) else { return false };
    let (other, reason) = match call {
        Call::Idle => return false,
        Call::Calling { callee, .. } if reason == StopReason::Hangup => (callee, StopReason::Cancelled),
        Call::Calling { callee: other, .. }
        | Call::Asked { caller: other, .. }
        | Call::InCall { peer: other } => (other, reason),
    };
    // The barrier: first unlink both directions (waiting out any push in
    // progress, which holds a peer slot), then purge both outboxes, so no
    // frame can be queued after its receiver's purge.
    for party in [id, other] {
        if let Some(c) = t.clients.get_mut(&party) {
            c.call = Call::Idle;
            c.conn.set_peer(None);
        }
    }
    for party in [id, other] {
        if let Some(c) = t.clients.get(&party) {
            c.conn.outbox.purge_media();
        }
    }
    if let Some(c) = t.clients.get(&other) {
        c.conn.send(&ServerMsg::Stop(reason));
        log_call_end(t, id, other, reason);
    }
    broadcast_presence(t, id);
    broadcast_presence(t, other);
    true
}

fn log_call_end(t: &Table, id: ClientId, other: ClientId, reason: StopReason) {
    crate::log!(Info, "{id} -> {other}: call ended ({})", reason.as_str());
    for party in [id, other] {
        if let Some(c) = t.clients.get(&party) {
            let s = c.conn.outbox.stats();
            if s.video_dropped + s.audio_dropped > 0 {
                crate::log!(
                    Info,
                    "{party}: received {} video, {} audio; dropped {} video, {} audio; {} keyframe requests",
                    s.video_queued,
                    s.audio_queued,
                    s.video_dropped,
                    s.audio_dropped,
                    s.keyframe_requests
                );
            }
            if s.video_spliced + s.video_spilled > 0 {
                crate::log!(
                    Info,
                    "{party}: {} video frames spliced, {} of them finished by the writer",
                    s.video_spliced + s.video_spilled,
                    s.video_spilled
                );
            }
        }
    }
}

/// Sends `msg` to `conn`'s peer in an active call, or `error not-in-call`.
fn forward(conn: &Conn, msg: &ServerMsg<'_>) {
    let sent = conn.with_peer(|peer| peer.map(|p| p.push_control(msg.to_line())));
    if sent.is_none() {
        conn.send_error(ErrorCode::NotInCall, "only possible during a call");
    }
}

/// Like [`forward`], but the line replaces one of the same kind (starting
/// with `key`) still queued for the peer: only the latest report matters,
/// and a flood of them cannot fill the peer's queue.
fn forward_latest(conn: &Conn, msg: &ServerMsg<'_>, key: &[u8]) {
    let sent = conn.with_peer(|peer| peer.map(|p| p.push_control_replacing(msg.to_line(), key)));
    if sent.is_none() {
        conn.send_error(ErrorCode::NotInCall, "only possible during a call");
    }
}

fn broadcast_presence(t: &Table, id: ClientId) {
    if let Some(state) = t.clients.get(&id).map(|c| c.presence()) {
        broadcast_presence_as(t, id, state.into());
    }
}

fn broadcast_presence_as(t: &Table, id: ClientId, state: Presence) {
    let Some(subject) = t.clients.get(&id) else { return };
    let line = ServerMsg::Presence { id, state, nick: subject.nick.as_deref() }.to_line();
    // A newer presence of the same client replaces one still queued.
    let key = format!("presence {id} ");
    for c in t.clients.values().filter(|c| c.conn.id != id) {
        c.conn.outbox.push_control_replacing(line.clone(), key.as_bytes());
    }
}
