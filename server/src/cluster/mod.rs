//! Several servers that look like one (`--cluster nats://HOST:PORT --node
//! NAME`), over a NATS broker. Owns this node's link to the broker, the
//! directory of the other nodes' users, and the tunnels that carry a user
//! to the node where its call lives.
//!
//! * **Directory.** Every node publishes its users on `komunikator.dir`
//!   once a second and at once when one joins, leaves, renames or changes
//!   state; every node applies the others' lists ([`directory`]) and tells
//!   its clients as `presence`, so `refresh` lists everyone. A node not
//!   heard for [`directory::NODE_TTL`] is dead: its users are gone.
//! * **Calls across nodes.** A call lives in one node's registry: the
//!   callee's. When a client's `connect` names a user of another node, its
//!   home node *tunnels* the client there: the host node adds a hidden
//!   stand-in for it (same id and nick) that sends `connect` as the client
//!   would; from then on the home node forwards what the client sends
//!   (`komunikator.node.<host>`, in order, numbered) and the host sends back
//!   what its registry queues for the stand-in (`komunikator.node.<home>`).
//!   Consent, busy state, rooms and the end-of-call barrier are the host
//!   registry's, unchanged. When the stand-in is idle again the host closes
//!   the tunnel and the client is home. A lost message (a gap in the
//!   numbers), or the other node dying, ends the tunnel like a
//!   disconnect: `stop disconnected`.
//! * **Invitations across nodes** ([`pull`]): the call's node asks the
//!   invitee's home node to carry the invitee to it, and the invitation
//!   then rings on the stand-in as any other.
//! * **Direct links** ([`link`], on unless `--no-cluster-link`): where
//!   nodes can reach each other, a tunnel's messages go over a TLS
//!   connection between the two nodes instead of through the broker,
//!   which only sets it up.
//!
//! Threads: one `cluster` thread runs a single-threaded tokio runtime with
//! the NATS client; it publishes what session threads queue (never
//! waiting on them), and applies what arrives. Each stand-in has its own
//! bus-writer thread draining its outbox, as a client's writer drains into
//! a socket. Each direct link has a reader thread, which applies what
//! arrives on it as the cluster thread does, and a writer thread. Lock
//! order: the registry, then [`Cluster`]'s locks (leaves).

pub mod directory;
mod link;
mod pull;
mod tunnel;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use komunikator_protocol::{ClientId, Target};

use crate::config::Config;
use crate::listener::Shared;
use directory::Directory;
pub use tunnel::TunnelOut;
use wire::Bus;

mod bus;

/// The subject every node's directory goes to.
const DIR_SUBJECT: &str = "komunikator.dir";

/// Messages queued for the broker before a sender is refused (a tunnel
/// that cannot queue is ended; the directory tries again next second).
const QUEUE: usize = 4096;

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--node` is missing or not a valid name.
    #[error("--node must be 1-32 of a-z, 0-9 and '-' (got {0:?})")]
    BadNode(String),
    /// The runtime or its thread could not start.
    #[error("cannot start the cluster thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The `--cluster-link` given cannot be used.
    #[error("--cluster-link: {0}")]
    Link(String),
}

/// A message for the broker.
struct Outgoing {
    subject: String,
    bytes: Vec<u8>,
}

/// This node's part in the cluster. See the module documentation.
pub struct Cluster {
    /// This node's name.
    pub node: String,
    /// When this run of the node started, in ns since the epoch.
    epoch: u64,
    dir: Mutex<Directory>,
    tunnels: Mutex<tunnel::Tunnels>,
    /// Invitations waiting for the invitee's node, by request number.
    pulls: Mutex<std::collections::HashMap<u64, pull::Pending>>,
    out: tokio::sync::mpsc::Sender<Outgoing>,
    /// Set when this node's users changed: publish the directory now.
    changed: tokio::sync::Notify,
    next_tid: AtomicU64,
    /// The server, for what arrives (weak: the server owns the cluster).
    shared: Mutex<Weak<Shared>>,
    /// Where this node takes direct links, unless `--no-cluster-link`.
    link: Option<link::Local>,
    links: Mutex<link::Links>,
}

impl Cluster {
    /// Starts the cluster thread for `config` (which has `--cluster`). It
    /// connects in the background and keeps reconnecting; until the broker
    /// answers, this node is alone. Direct links use `tls`, the server's
    /// certificate (with `--no-tls`, the one in the state directory).
    ///
    /// # Errors
    /// [`ClusterError`] for a bad `--node`, a `--cluster-link` that cannot
    /// be used, or a thread that cannot start.
    pub fn start(
        config: &Config,
        tls: Option<&komunikator_tls::server::Identity>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let node = config.node.clone().unwrap_or_default();
        if !wire::is_valid_node(&node) {
            return Err(ClusterError::BadNode(node));
        }
        let link = link::Local::bind(config, tls)?;
        let (out, rx) = tokio::sync::mpsc::channel(QUEUE);
        let epoch =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let cluster = Arc::new(Cluster {
            node,
            epoch,
            dir: Mutex::new(Directory::default()),
            tunnels: Mutex::new(tunnel::Tunnels::default()),
            pulls: Mutex::new(std::collections::HashMap::new()),
            out,
            changed: tokio::sync::Notify::new(),
            next_tid: AtomicU64::new(1),
            shared: Mutex::new(Weak::new()),
            link,
            links: Mutex::new(link::Links::default()),
        });
        cluster.listen_links()?;
        bus::spawn(Arc::clone(&cluster), config, rx)?;
        Ok(cluster)
    }

    /// Hands the cluster the server it serves (once the server is built).
    pub fn attach(&self, shared: &Arc<Shared>) {
        *lock(&self.shared) = Arc::downgrade(shared);
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        lock(&self.shared).upgrade()
    }

    /// The other nodes' users (read under the cluster's lock).
    pub fn directory(&self) -> MutexGuard<'_, Directory> {
        lock(&self.dir)
    }

    /// The node and id of the remote user `target` names, if one does.
    pub fn find(&self, target: Target<'_>) -> Option<(String, ClientId)> {
        self.directory().find(target)
    }

    /// This node's users changed: the directory goes out now.
    pub fn local_changed(&self) {
        self.changed.notify_one();
    }

    /// Queues `msg` for node `node`; `false` when the queue is full.
    fn send_to(&self, node: &str, msg: &Bus<'_>) -> bool {
        let subject = node_subject(node);
        self.out.try_send(Outgoing { subject, bytes: msg.to_bytes() }).is_ok()
    }

    /// This node is shutting down: the others forget its users at once.
    pub fn bye(&self) {
        let msg = Bus::Bye { from: &self.node };
        let _ = self.out.try_send(Outgoing { subject: DIR_SUBJECT.to_owned(), bytes: msg.to_bytes() });
        // The publisher runs on its own thread; give it a moment.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Handles a message sent to this node, which came through the broker
    /// (`via` is `None`) or over the link `via`.
    fn on_message(self: &Arc<Self>, msg: Bus<'_>, via: link::Route) {
        match msg {
            Bus::Open { from, tid, user, nick, group } => self.on_open(from, tid, user, (nick, group), via),
            Bus::Up { from, tid, seq, bytes } => self.on_up(from, tid, seq, bytes),
            Bus::Gone { from, tid } => self.on_gone(from, tid),
            Bus::Down { from, tid, seq, bytes } => self.on_down(from, tid, seq, bytes),
            Bus::Close { from, tid } => self.on_close(from, tid),
            Bus::Rate { from, tid, kbps } => self.on_rate(from, tid, kbps),
            Bus::Pull { from, pid, user, inviter, nick } => self.on_pull(from, pid, user, (inviter, nick)),
            Bus::Pulled { pid, .. } => self.on_pulled(pid),
            Bus::Refuse { pid, why, .. } => self.on_refuse(pid, why),
            Bus::Link { from, token } if via.is_none() => self.on_link_token(from, token),
            // Counted by the link's reader.
            Bus::Alive { .. } if via.is_some() => {}
            other => crate::log!(Warn, "cluster: {other:?} on this node's subject; ignored"),
        }
    }

    /// A new tunnel number.
    fn tid(&self) -> u64 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }
}

/// The subject node `node` receives its tunnels' messages on.
fn node_subject(node: &str) -> String {
    format!("komunikator.node.{node}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often this node's directory goes out when nothing changes.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
