//! Direct links between nodes: one TLS connection per pair of nodes,
//! carrying their tunnels' messages instead of the broker. On by default: a
//! node takes links on a free port of its `--bind` address (or on
//! `--cluster-link`), and lists the address on its route to the broker
//! (or `--cluster-link-advertise`); `--no-cluster-link` turns them off.
//!
//! The broker sets each link up and vouches for both ends. A node that
//! takes links lists their address and its certificate's fingerprint in its
//! directory. The node that dials (of two that both take links, the one
//! whose name sorts first, and the other after [`TURN`] without a link;
//! else the one that does not take links) first sends the
//! other a one-time token on the broker (`link`), then connects, checks the
//! certificate against the listed fingerprint, and says `link <node>
//! <token>`; the other answers `ok`. A link is thus as trusted as the
//! broker, and its listener takes nothing from anyone else. After the
//! greeting, each message is a 4-byte big-endian length and one bus
//! message, in both directions.
//!
//! A link with nothing to send says `alive` every [`super::HEARTBEAT`], and
//! whatever arrives on it counts as hearing from its node: two linked nodes
//! do not take each other for dead while the broker is away, so their calls
//! go on.
//!
//! A tunnel keeps the way it was opened: one opened over a link goes over
//! that link both ways, so its messages stay in order; one opened while no
//! link was up stays on the broker. When a link breaks, or cannot keep up
//! ([`LINK_BYTES`] queued), both ends see it and end its tunnels as a dead
//! node's (`stop disconnected`); the next directory message dials again.
//!
//! Threads: `cluster link` accepts; each link has a reader thread (which
//! handles what arrives, as the cluster thread handles the broker's) and a
//! writer thread draining its queue. A dial runs on its own thread, which
//! becomes the link's reader.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use komunikator_tls::server::Identity;
use komunikator_tls::split::{TlsReader, TlsWriter};
use rustls::pki_types::ServerName;

use super::wire::{Bus, LinkAddr, is_token};
use super::{Cluster, ClusterError, lock};
use crate::config::Config;

/// Which way a tunnel's messages go: `None` through the broker, or over
/// the link with this number (numbers are this node's own).
pub type Route = Option<u64>;

/// Bytes queued on one link at most: a link that falls this far behind is
/// broken, and its tunnels end.
pub const LINK_BYTES: usize = 16 << 20;

/// The largest message a link takes: a `down` of [`super::tunnel`]'s
/// 512 KiB, or one item past that (tunnels carry frames of at most the
/// protocol's 1 MiB), and a header. Larger breaks the link.
const MAX_MESSAGE: usize = 4 << 20;

/// How long connecting, the TLS handshake and the greeting may take.
const SETUP: Duration = Duration::from_secs(5);

/// How long a greeting waits for its token (and its node's directory) to
/// come through the broker.
const TOKEN_WAIT: Duration = Duration::from_secs(3);

/// A write stalled this long breaks the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Links being set up at once, at most; more connections are closed.
const MAX_SETUPS: usize = 16;

/// Of two nodes that both take links, the one whose name sorts first
/// dials; the other dials too once it has waited this long in vain (the
/// first may not reach it: a NAT, a firewall that lets one way through).
const TURN: Duration = Duration::from_secs(5);

/// Dials after a failure wait this long, doubling up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// This node's side of links: where it takes them, and its certificate.
pub(super) struct Local {
    /// What other nodes dial.
    advertise: String,
    fingerprint: String,
    tls: Arc<rustls::ServerConfig>,
    listener: Mutex<Option<TcpListener>>,
}

impl Local {
    /// Binds `--cluster-link` and settles what to advertise.
    /// Binds `--cluster-link`, or by default a free port on the server's
    /// `--bind` address, and settles what to advertise. A default that
    /// cannot be had leaves the node without links (the broker carries its
    /// calls); an explicit one that cannot is an error.
    pub(super) fn bind(config: &Config, tls: Option<&Identity>) -> Result<Option<Local>, ClusterError> {
        if config.no_cluster_link {
            return Ok(None);
        }
        match Local::try_bind(config, tls) {
            Ok(local) => Ok(Some(local)),
            Err(e) if config.cluster_link.is_some() => Err(e),
            Err(e) => {
                crate::log!(Warn, "cluster: no direct links ({e}); the broker carries calls between nodes");
                Ok(None)
            }
        }
    }

    fn try_bind(config: &Config, tls: Option<&Identity>) -> Result<Local, ClusterError> {
        let bind = config.cluster_link.unwrap_or(SocketAddr::new(config.bind, 0));
        let identity = match tls {
            Some(identity) => identity.clone(),
            None => komunikator_tls::server::load_or_create(None, None, &config.state_dir())
                .map_err(|e| ClusterError::Link(format!("no certificate for links: {e}")))?,
        };
        let listener = TcpListener::bind(bind)
            .map_err(|e| ClusterError::Link(format!("cannot listen on {bind}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| ClusterError::Link(e.to_string()))?;
        let advertise = match &config.cluster_link_advertise {
            Some(a) if a.contains(':') && a.len() <= 255 && a.bytes().all(|b| b.is_ascii_graphic()) => {
                a.clone()
            }
            Some(a) => {
                return Err(ClusterError::Link(format!("--cluster-link-advertise {a:?} is not HOST:PORT")));
            }
            None if bound.ip().is_unspecified() => {
                let url = config.cluster.as_deref().unwrap_or_default();
                let ip = facing(url).ok_or_else(|| {
                    ClusterError::Link(format!(
                        "{bind} is every address, and none faces the broker: say which one other nodes \
                         dial with --cluster-link-advertise"
                    ))
                })?;
                SocketAddr::new(ip, bound.port()).to_string()
            }
            None => bound.to_string(),
        };
        Ok(Local {
            advertise,
            fingerprint: identity.fingerprint,
            tls: identity.config,
            listener: Mutex::new(Some(listener)),
        })
    }

    /// What the directory lists.
    pub(super) fn addr(&self) -> LinkAddr<'_> {
        LinkAddr { addr: &self.advertise, fingerprint: &self.fingerprint }
    }
}

/// The links, and what setting them up needs.
#[derive(Default)]
pub(super) struct Links {
    /// Up, by the other node's name.
    up: HashMap<String, Handle>,
    /// Nodes being dialled now.
    dialing: HashSet<String>,
    /// After a failed dial: not before this, and the next wait.
    retry: HashMap<String, (Instant, Duration)>,
    /// Nodes that take links, with none up with them since when.
    unlinked: HashMap<String, Instant>,
    /// Tokens nodes said they will greet with, and when.
    tokens: HashMap<String, (String, Instant)>,
    next_id: u64,
}

/// One link that is up.
struct Handle {
    id: u64,
    tx: Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    socket: TcpStream,
}

/// Connections being set up now (accepted and dialled).
static SETUPS: AtomicUsize = AtomicUsize::new(0);

/// Counts one setup while it lives.
struct SetupSlot;

impl SetupSlot {
    fn take() -> Option<SetupSlot> {
        let n = SETUPS.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_SETUPS {
            SETUPS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(SetupSlot)
    }
}

impl Drop for SetupSlot {
    fn drop(&mut self) {
        SETUPS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Cluster {
    /// Starts taking links, if this node does.
    pub(super) fn listen_links(self: &Arc<Self>) -> io::Result<()> {
        let Some(listener) = self.link.as_ref().and_then(|l| lock(&l.listener).take()) else { return Ok(()) };
        crate::log!(
            Info,
            "cluster: taking direct links on {}",
            self.link.as_ref().map_or("", |l| &l.advertise)
        );
        let cluster = Arc::clone(self);
        std::thread::Builder::new().name("cluster link".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(slot) = SetupSlot::take() else {
                    crate::log!(Warn, "cluster: too many links being set up; one closed");
                    continue;
                };
                let cluster = Arc::clone(&cluster);
                let spawned = std::thread::Builder::new()
                    .name("cluster link in".into())
                    .stack_size(crate::THREAD_STACK)
                    .spawn(move || cluster.accept(stream, slot));
                if let Err(e) = spawned {
                    crate::log!(Error, "cluster: cannot start a link thread: {e}");
                }
            }
        })?;
        Ok(())
    }

    /// The way to `node` for a tunnel opened now: its link, if one is up.
    pub(super) fn route_to(&self, node: &str) -> Route {
        lock(&self.links).up.get(node).map(|h| h.id)
    }

    /// Sends `msg` to `node` the way `route` says; `false` when it cannot
    /// go (the link is gone, or it was too far behind and is now broken).
    pub(super) fn send_via(&self, node: &str, route: Route, msg: &Bus<'_>) -> bool {
        let Some(id) = route else { return self.send_to(node, msg) };
        let frame = frame(msg);
        let links = lock(&self.links);
        let Some(h) = links.up.get(node).filter(|h| h.id == id) else { return false };
        if h.queued.load(Ordering::Relaxed) + frame.len() > LINK_BYTES {
            crate::log!(Warn, "cluster: the link to {node} is {LINK_BYTES} bytes behind; breaking it");
            let _ = h.socket.shutdown(Shutdown::Both);
            return false;
        }
        h.queued.fetch_add(frame.len(), Ordering::Relaxed);
        h.tx.send(frame).is_ok()
    }

    /// `link`: node `from` will dial with `token`.
    pub(super) fn on_link_token(&self, from: &str, token: &str) {
        if self.link.is_none() {
            return;
        }
        let mut links = lock(&self.links);
        links.tokens.retain(|_, (_, at)| at.elapsed() < TOKEN_WAIT * 2);
        if links.tokens.len() < super::directory::MAX_NODES || links.tokens.contains_key(from) {
            links.tokens.insert(from.to_owned(), (token.to_owned(), Instant::now()));
        }
    }

    /// Node `peer` listed `addr`: dial it, if this node is the one to and
    /// no link is up, being set up, or waiting after a failure.
    pub(super) fn maybe_dial(self: &Arc<Self>, peer: &str, addr: Option<LinkAddr<'_>>) {
        let Some(addr) = addr else { return };
        let now = Instant::now();
        {
            let mut links = lock(&self.links);
            if links.up.contains_key(peer) {
                links.unlinked.remove(peer);
                return;
            }
            let since = *links.unlinked.entry(peer.to_owned()).or_insert(now);
            if self.link.is_some() && self.node.as_str() > peer && now.duration_since(since) < TURN {
                return; // It dials this node.
            }
            let waiting = links.retry.get(peer).is_some_and(|(at, _)| now < *at);
            if links.dialing.contains(peer) || waiting {
                return;
            }
            links.dialing.insert(peer.to_owned());
        }
        let (cluster, peer, target, fingerprint) =
            (Arc::clone(self), peer.to_owned(), addr.addr.to_owned(), addr.fingerprint.to_owned());
        let spawned = std::thread::Builder::new()
            .name("cluster link out".into())
            .stack_size(crate::THREAD_STACK)
            .spawn(move || cluster.dial(&peer, &target, fingerprint));
        if let Err(e) = spawned {
            crate::log!(Error, "cluster: cannot start a link thread: {e}");
        }
    }

    /// Dials `peer` at `target` and, once greeted, reads the link.
    fn dial(self: Arc<Self>, peer: &str, target: &str, fingerprint: String) {
        let setup = SetupSlot::take().ok_or_else(|| io::Error::other("too many links being set up"));
        let dialled = setup.and_then(|_slot| self.connect(peer, target, fingerprint));
        let mut links = lock(&self.links);
        links.dialing.remove(peer);
        match dialled {
            Ok((reader, writer)) => {
                links.retry.remove(peer);
                drop(links);
                crate::log!(Info, "cluster: direct link to {peer} at {target} is up");
                self.run_link(peer, reader, writer);
            }
            Err(e) => {
                let wait = links.retry.get(peer).map_or(BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
                links.retry.insert(peer.to_owned(), (Instant::now() + wait, wait));
                drop(links);
                let why = format!(
                    "cluster: no direct link to {peer} at {target} ({e}); the broker carries its calls"
                );
                // Said once; the tries after it (behind a firewall) only at debug level.
                if wait == BACKOFF {
                    crate::log!(Warn, "{why}");
                } else {
                    crate::log!(Debug, "{why}");
                }
            }
        }
    }

    /// Connects, checks the certificate and greets.
    fn connect(&self, peer: &str, target: &str, fingerprint: String) -> io::Result<(TlsReader, TlsWriter)> {
        let token = token().ok_or_else(|| io::Error::other("no randomness for a token"))?;
        if !self.send_to(peer, &Bus::Link { from: &self.node, token: &token }) {
            return Err(io::Error::other("the broker's queue is full"));
        }
        let addrs: Vec<SocketAddr> = target.to_socket_addrs()?.collect();
        let mut socket = connect_any(&addrs)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(SETUP))?;
        socket.set_write_timeout(Some(SETUP))?;
        let verifier = Arc::new(komunikator_tls::pin::TofuVerifier::new(Some(fingerprint)));
        let config = verifier.client_config().map_err(io::Error::other)?;
        let name = ServerName::try_from("komunikator-node").map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        let mut conn = rustls::Connection::Client(conn);
        komunikator_tls::split::handshake(&mut conn, &mut socket).map_err(|e| match verifier.mismatch() {
            Some(_) => io::Error::other("its certificate is not the one it listed"),
            None => e,
        })?;
        let (mut reader, mut writer) = split(conn, &socket)?;
        writer.write_all(format!("link {} {token}\n", self.node).as_bytes())?;
        let mut answer = [0; 3];
        reader.read_exact(&mut answer)?;
        if &answer != b"ok\n" {
            return Err(io::Error::other("refused"));
        }
        socket.set_read_timeout(None)?;
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok((reader, writer))
    }

    /// Takes one connection on the link listener: TLS, then the greeting.
    fn accept(self: Arc<Self>, mut socket: TcpStream, slot: SetupSlot) {
        let from = socket.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        // A peer that trickles its handshake or greeting byte by byte is
        // cut off once the whole setup took too long.
        let (done, watch) = channel::<()>();
        if let Ok(guard) = socket.try_clone() {
            let spawned = std::thread::Builder::new().name("cluster link watch".into()).spawn(move || {
                if watch.recv_timeout(SETUP + TOKEN_WAIT) == Err(RecvTimeoutError::Timeout) {
                    let _ = guard.shutdown(Shutdown::Both);
                }
            });
            if spawned.is_err() {
                return;
            }
        }
        let greeted = self.greeted(&mut socket);
        let _ = done.send(());
        match greeted {
            Ok((peer, reader, writer)) => {
                drop(slot);
                crate::log!(Info, "cluster: direct link from {peer} ({from}) is up");
                self.run_link(&peer, reader, writer);
            }
            Err(e) => {
                crate::log!(Warn, "cluster: a link from {from} refused: {e}");
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }

    /// The TLS handshake and the greeting of an accepted connection.
    fn greeted(&self, socket: &mut TcpStream) -> io::Result<(String, TlsReader, TlsWriter)> {
        let local = self.link.as_ref().ok_or_else(|| io::Error::other("not taking links"))?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(SETUP))?;
        socket.set_write_timeout(Some(SETUP))?;
        let conn = rustls::ServerConnection::new(Arc::clone(&local.tls)).map_err(io::Error::other)?;
        let mut conn = rustls::Connection::Server(conn);
        komunikator_tls::split::handshake(&mut conn, socket)?;
        let (reader, mut writer) = split(conn, socket)?;
        let mut line = String::new();
        let mut reader = BufReader::with_capacity(1, reader);
        reader.by_ref().take(100).read_line(&mut line)?;
        let mut f = line.trim_end_matches('\n').split(' ');
        let (Some("link"), Some(peer), Some(token), None) = (f.next(), f.next(), f.next(), f.next()) else {
            return Err(io::Error::other("not a greeting"));
        };
        if !super::wire::is_valid_node(peer) || !is_token(token) || peer == self.node {
            return Err(io::Error::other("not a greeting"));
        }
        // The token and the node's directory come through the broker, and
        // may come a moment after the dial.
        let deadline = Instant::now() + TOKEN_WAIT;
        loop {
            let expected = lock(&self.links).tokens.get(peer).map(|(t, _)| t.clone());
            if let Some(expected) = expected
                && self.directory().knows(peer)
            {
                if !same(expected.as_bytes(), token.as_bytes()) {
                    return Err(io::Error::other(format!("a wrong token for {peer}")));
                }
                lock(&self.links).tokens.remove(peer);
                break;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!("no token from {peer} on the broker")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        writer.write_all(b"ok\n")?;
        socket.set_read_timeout(None)?;
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok((peer.to_owned(), reader.into_inner(), writer))
    }

    /// Registers an established link to `peer`, starts its writer, and reads
    /// it on this thread until it breaks.
    fn run_link(self: &Arc<Self>, peer: &str, mut reader: TlsReader, writer: TlsWriter) {
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let Ok(socket) = reader.socket().try_clone() else { return };
        let id = {
            let mut links = lock(&self.links);
            links.next_id += 1;
            let id = links.next_id;
            let handle = Handle { id, tx, queued: Arc::clone(&queued), socket };
            if let Some(old) = links.up.insert(peer.to_owned(), handle) {
                let _ = old.socket.shutdown(Shutdown::Both);
            }
            id
        };
        let (cluster, name) = (Arc::clone(self), peer.to_owned());
        let alive = frame(&Bus::Alive { from: &self.node });
        let spawned = std::thread::Builder::new()
            .name("cluster link write".into())
            .stack_size(crate::THREAD_STACK)
            .spawn(move || {
                write_link(rx, writer, &queued, &alive);
                cluster.link_broke(&name, id);
            });
        if spawned.is_err() {
            return self.link_broke(peer, id);
        }
        let why = self.read_link(peer, id, &mut reader);
        crate::log!(Warn, "cluster: the direct link with {peer} is down ({why})");
        self.link_broke(peer, id);
    }

    /// Handles what arrives on link `id` from `peer` until it breaks; why it did.
    fn read_link(self: &Arc<Self>, peer: &str, id: u64, reader: &mut TlsReader) -> String {
        let mut buf = Vec::new();
        let mut counted: Option<Instant> = None;
        loop {
            let mut len = [0; 4];
            if let Err(e) = reader.read_exact(&mut len) {
                return e.to_string();
            }
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_MESSAGE {
                return format!("a message of {len} bytes");
            }
            buf.resize(len, 0);
            if let Err(e) = reader.read_exact(&mut buf) {
                return e.to_string();
            }
            // It is alive (counted four times a heartbeat at most).
            let now = Instant::now();
            if counted.is_none_or(|at| now.duration_since(at) >= super::HEARTBEAT / 4) {
                counted = Some(now);
                self.directory().heard(peer, now);
            }
            match Bus::parse(&buf) {
                Ok(msg)
                    if msg.from() == peer
                        && !matches!(msg, Bus::Dir { .. } | Bus::Bye { .. } | Bus::Link { .. }) =>
                {
                    self.on_message(msg, Some(id));
                }
                Ok(msg) => return format!("it sent {msg:?}"),
                Err(e) => return e.to_string(),
            }
        }
    }

    /// Link `id` with `peer` is down: closed, and its tunnels end.
    fn link_broke(&self, peer: &str, id: u64) {
        {
            let mut links = lock(&self.links);
            if links.up.get(peer).is_some_and(|h| h.id == id)
                && let Some(h) = links.up.remove(peer)
            {
                let _ = h.socket.shutdown(Shutdown::Both);
            }
        }
        self.route_dead(peer, id);
    }

    /// Node `node` is dead or gone: its link is closed.
    pub(super) fn close_link(&self, node: &str) {
        let mut links = lock(&self.links);
        links.retry.remove(node);
        links.unlinked.remove(node);
        if let Some(h) = links.up.remove(node) {
            let _ = h.socket.shutdown(Shutdown::Both);
        }
    }
}

/// `msg` as a link sends it: its length (4 bytes, big-endian), then it.
fn frame(msg: &Bus<'_>) -> Vec<u8> {
    let mut frame = vec![0; 4];
    msg.encode(&mut frame);
    let len = u32::try_from(frame.len() - 4).unwrap_or(u32::MAX);
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

/// Writes what is queued for a link, a batch at a time, and `alive` after
/// a heartbeat with nothing to write, until the link breaks or is dropped.
fn write_link(rx: Receiver<Vec<u8>>, mut writer: TlsWriter, queued: &AtomicUsize, alive: &[u8]) {
    let mut batch = Vec::with_capacity(64 << 10);
    loop {
        let first = match rx.recv_timeout(super::HEARTBEAT) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => {
                if writer.write_all(alive).is_err() {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 256 << 10 {
            let Ok(next) = rx.try_recv() else { break };
            batch.extend_from_slice(&next);
        }
        if writer.write_all(&batch).is_err() {
            return;
        }
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
    }
    let _ = writer.close();
}

/// This machine's address on the route to the broker at `url`: the one
/// other nodes that reach the same broker most likely reach it by. (A
/// connected UDP socket only looks the route up; nothing is sent.)
fn facing(url: &str) -> Option<std::net::IpAddr> {
    let addr: async_nats::ServerAddr = url.parse().ok()?;
    let broker = (addr.host(), addr.port()).to_socket_addrs().ok()?.next()?;
    let any: SocketAddr = if broker.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(broker).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// Connects to the first of `addrs` that answers.
fn connect_any(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::other("the name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, SETUP) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Both halves of an established connection, for a reader and a writer thread.
fn split(conn: rustls::Connection, socket: &TcpStream) -> io::Result<(TlsReader, TlsWriter)> {
    Ok(komunikator_tls::split::split(conn, socket.try_clone()?, socket.try_clone()?))
}

/// A new one-time token: 16 random bytes in hex (`None` without randomness).
fn token() -> Option<String> {
    let mut bytes = [0u8; 16];
    komunikator_tls::provider().secure_random.fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (super::token().unwrap(), super::token().unwrap());
        assert!(super::is_token(&a) && super::is_token(&b));
        assert_ne!(a, b);
        assert!(super::same(a.as_bytes(), a.as_bytes()));
        assert!(!super::same(a.as_bytes(), b.as_bytes()));
    }
}
