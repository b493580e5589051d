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
    ClientId, Command, ErrorCode, PeerState, Presence, Relayed, ServerMsg, StopReason, Target,
};

use crate::call::{Call, TokenBucket};
use crate::config::Config;
use crate::floods::{self, Callee, Quiet, Refusal, RingLimits, Sources};
use crate::outbox::Outbox;
use crate::room::Rooms;

mod calls;
mod group;
mod remote;

use calls::{answer, end_call, link, log_call_end, unlink};

/// Where one party's lines and frames go: another party of its call.
#[derive(Clone)]
pub struct Link {
    /// The receiving party.
    pub id: ClientId,
    /// Its outbox.
    pub outbox: Arc<Outbox>,
    /// It turned on group calls: everything relayed to it goes in the
    /// `from <id> ...` envelope.
    pub enveloped: bool,
}

/// A connected client as its session thread and the media path see it.
pub struct Conn {
    /// The client's id: its address as the server sees it.
    pub id: ClientId,
    /// Where to queue lines and frames for this client.
    pub outbox: Arc<Outbox>,
    /// The other parties of its call while one is up (empty otherwise). Set
    /// and cleared by the registry under its lock; media frames are pushed
    /// while holding this slot, so none can slip out after the call has
    /// ended or a party has left.
    links: Mutex<Vec<Link>>,
    /// The node of the cluster this client is carried to, while it is.
    pub tunnel: Mutex<Option<crate::cluster::TunnelOut>>,
    /// When media outside a call was last answered `error not-in-call`.
    media_refused: Mutex<Option<Instant>>,
}

impl Conn {
    /// A connection handle for `id` that sends through `outbox`.
    pub fn new(id: ClientId, outbox: Arc<Outbox>) -> Conn {
        Conn {
            id,
            outbox,
            links: Mutex::new(Vec::new()),
            tunnel: Mutex::new(None),
            media_refused: Mutex::new(None),
        }
    }

    /// Answers media sent outside a call with `error not-in-call <text>`, at
    /// most once a second: a client that keeps sending after its call ended
    /// (until it reads the `stop`) must not flood its own control queue.
    pub fn refuse_media(&self, text: &str) {
        let now = Instant::now();
        let mut last = self.media_refused.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            *last = Some(now);
            drop(last);
            self.send_error(ErrorCode::NotInCall, text);
        }
    }

    /// Whether this client is carried to another node of the cluster.
    pub fn is_carried(&self) -> bool {
        self.tunnel.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// Runs `f` with the other parties of the call (none outside a call), holding the slot.
    pub fn with_links<R>(&self, f: impl FnOnce(&[Link]) -> R) -> R {
        let slot = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        f(&slot)
    }

    fn links(&self) -> MutexGuard<'_, Vec<Link>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// It turned on group calls (`features group`).
    group: bool,
    /// Whether this client's refused rings are being logged.
    rings_log: Quiet,
    /// A stand-in for a client of another node (see `cluster`): not listed,
    /// told no `presence`; `Some(true)` once it has sent a command.
    stand_in: Option<bool>,
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
    /// The calls.
    rooms: Rooms,
}

/// The shared client table. See the module documentation.
pub struct Registry {
    table: Mutex<Table>,
    config: Config,
    /// This node's cluster, with `--cluster`.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Registry {
    /// An empty table enforcing `config`'s limits.
    pub fn new(config: Config) -> Registry {
        Registry { table: Mutex::new(Table::default()), config, cluster: std::sync::OnceLock::new() }
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
        t.clients.insert(id, self.new_client(conn));
        broadcast_presence(&t, id);
        self.local_changed();
    }

    /// A free client without a nick, with fresh limits.
    fn new_client(&self, conn: Arc<Conn>) -> Client {
        Client {
            conn,
            nick: None,
            nick_key: None,
            call: Call::Idle,
            connects: TokenBucket::new(self.config.connect_burst, self.config.connect_rate),
            renames: floods::renames(),
            renames_log: Quiet::default(),
            callee: Callee::new(self.ring_limits()),
            rings_log: Quiet::default(),
            group: false,
            stand_in: None,
        }
    }

    /// Removes a client: ends its call (the peer gets `stop disconnected`)
    /// and tells everyone it is gone.
    pub fn leave(&self, id: ClientId) {
        let mut t = self.lock();
        end_call(&mut t, id, StopReason::Disconnected);
        broadcast_presence_as(&t, id, Presence::Gone);
        if let Some(client) = t.clients.remove(&id) {
            client.conn.links().clear();
            if let Some(cluster) = self.cluster.get() {
                cluster.gone(&client.conn);
            }
        }
        release_ip(&mut t, id.ip());
        self.settle(&mut t);
        self.local_changed();
    }

    /// Executes one command that is not media, from client `id`.
    pub fn execute(&self, id: ClientId, command: &Command<'_>) {
        let mut t = self.lock();
        let Some(conn) = t.clients.get(&id).map(|c| Arc::clone(&c.conn)) else { return };
        self.run(&mut t, &conn, command);
        if let Some(c) = t.clients.get_mut(&id).filter(|c| c.stand_in.is_some()) {
            c.stand_in = Some(true);
        }
        self.settle(&mut t);
        // What may change someone's nick or state goes to the cluster's
        // directory at once (the rest waits for its heartbeat).
        if matches!(
            command,
            Command::Name(_)
                | Command::Connect(_)
                | Command::Invite(_)
                | Command::AskYes
                | Command::AskNo
                | Command::Stop
        ) {
            self.local_changed();
        }
    }

    fn run(&self, t: &mut Table, conn: &Arc<Conn>, command: &Command<'_>) {
        let id = conn.id;
        match *command {
            Command::Name(nick) => self.name(t, conn, nick),
            Command::Refresh => self.refresh(t, conn),
            Command::Connect(target) => self.connect(t, conn, target),
            Command::AskYes => answer(t, conn, true),
            Command::AskNo => answer(t, conn, false),
            Command::Stop => {
                if !end_call(t, id, StopReason::Hangup) {
                    conn.send_error(ErrorCode::NotInCall, "no call to stop");
                }
            }
            // The seed's `start`: the call started when the callee said
            // `ask yes`; in it there is nothing more to do.
            Command::Start => {
                if conn.with_links(<[Link]>::is_empty) {
                    conn.send_error(
                        ErrorCode::NotInCall,
                        "no started call: the server sends start when one begins",
                    );
                }
            }
            Command::Keyframe => forward(conn, Relayed::Keyframe, None, None),
            Command::KeyframeOf(to) => forward(conn, Relayed::Keyframe, Some(to), None),
            Command::Delay(ms) => forward(conn, Relayed::Delay(ms), None, Some("delay ")),
            Command::DelayOf(ms, to) => forward(conn, Relayed::Delay(ms), Some(to), Some("delay ")),
            // One switch queued per kind at most: a newer one replaces it.
            Command::MediaState(state) => {
                let key = format!("media {} ", state.kind.as_str());
                forward(conn, Relayed::MediaState(state), None, Some(&key));
            }
            Command::Msg(text) => forward(conn, Relayed::Msg(text), None, None),
            Command::Features(list) => group::features(t, conn, list),
            Command::Invite(target) => self.invite(t, conn, target),
            Command::Ping => {
                conn.send(&ServerMsg::Pong);
            }
            Command::Block(target) => block(t, conn, target, true),
            Command::Unblock(target) => block(t, conn, target, false),
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
        if matches!(resolve(t, target), Err((ErrorCode::NoSuchClient, _)))
            && self.connect_remote(t, conn, target)
        {
            return;
        }
        let Some(callee) = resolve_other(t, conn, target, "you cannot call yourself") else { return };
        if !admit_ring(self.ring_limits(), t, (id, callee), now) {
            return;
        }
        let Some(callee_client) = t.clients.get_mut(&callee) else { return };
        callee_client.call = Call::Asked { caller: id, since: now, room: None };
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
        if !expired.is_empty() {
            self.local_changed();
        }
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
        group::expire_invites(&mut t, now, timeout);
        self.settle(&mut t);
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

/// The client `target` names, other than `conn` itself; otherwise `conn`
/// has been told why not (`error self` with `self_text`, or the error of
/// [`resolve`]).
fn resolve_other(t: &Table, conn: &Conn, target: Target<'_>, self_text: &str) -> Option<ClientId> {
    match resolve(t, target) {
        Ok(other) if other == conn.id => {
            conn.send_error(ErrorCode::SelfCall, self_text);
            None
        }
        Ok(other) => Some(other),
        Err((code, text)) => {
            conn.send_error(code, text);
            None
        }
    }
}

fn resolve(t: &Table, target: Target<'_>) -> Result<ClientId, (ErrorCode, &'static str)> {
    const NOBODY: (ErrorCode, &str) =
        (ErrorCode::NoSuchClient, "nobody with that id, IP or nick is connected");
    let listed = |id: &ClientId| t.clients.get(id).is_some_and(remote::listed);
    match target {
        Target::Id(id) => listed(&id).then_some(id).ok_or(NOBODY),
        Target::Ip(ip) => {
            let mut matching = t.clients.keys().filter(|id| id.ip() == ip && listed(id));
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
                .find(|(_, c)| c.nick_key.as_deref() == Some(key.as_str()) && remote::listed(c))
                .map(|(id, _)| *id)
                .ok_or(NOBODY)
        }
    }
}

/// Sends `msg` from `conn` to the other parties of its call (only to `to`,
/// when given), or answers `error not-in-call`. With `latest`, the line
/// replaces one of the same kind (starting with `latest`, inside the same
/// envelope) still queued for the receiver: only the latest report
/// matters, and a flood of them cannot fill a receiver's queue.
fn forward(conn: &Conn, msg: Relayed<'_>, to: Option<ClientId>, latest: Option<&str>) {
    let sent = conn.with_links(|links| {
        let mut sent = false;
        for link in links.iter().filter(|l| to.is_none_or(|id| l.id == id)) {
            let line = msg.to_line(conn.id, link.enveloped);
            match latest {
                Some(kind) if link.enveloped => {
                    let key = format!("from {} {kind}", conn.id);
                    link.outbox.push_control_replacing(line, key.as_bytes());
                }
                Some(kind) => {
                    link.outbox.push_control_replacing(line, kind.as_bytes());
                }
                None => {
                    link.outbox.push_control(line);
                }
            }
            sent = true;
        }
        sent
    });
    if !sent {
        let text =
            if to.is_some() { "that client is not in your call" } else { "only possible during a call" };
        conn.send_error(ErrorCode::NotInCall, text);
    }
}

fn broadcast_presence(t: &Table, id: ClientId) {
    if let Some(state) = t.clients.get(&id).map(|c| c.presence()) {
        broadcast_presence_as(t, id, state.into());
    }
}

fn broadcast_presence_as(t: &Table, id: ClientId, state: Presence) {
    let Some(subject) = t.clients.get(&id).filter(|c| remote::listed(c)) else { return };
    let line = ServerMsg::Presence { id, state, nick: subject.nick.as_deref() }.to_line();
    // A newer presence of the same client replaces one still queued.
    let key = format!("presence {id} ");
    for c in t.clients.values().filter(|c| c.conn.id != id && remote::listed(c)) {
        c.conn.outbox.push_control_replacing(line.clone(), key.as_bytes());
    }
}
