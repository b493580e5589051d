//! `komunikator-linkem`: a link emulator between a client and the server,
//! for tests, benchmarks and trying a slow link by hand. Each direction
//! (`up`: client to server, `down`: server to client) gets its own
//! [`Shape`]: a rate, a one-way delay, a bounded bottleneck queue and a
//! schedule of changes.
//!
//! Two back ends (see docs/LINKEM.md for their fidelity):
//! * the user-space shaper ([`Backend::UserSpace`], always available): a TCP
//!   proxy on 127.0.0.1 whose threads are described in `shaper`;
//! * network namespaces and `tc tbf` ([`Backend::Netns`], root only): the
//!   client runs inside a namespace ([`Link::command_prefix`]) and the
//!   kernel shapes real packets, with real drops, but no delay.
//!
//! [`Link::start`] returns once the link is ready; dropping the [`Link`]
//! stops its threads and deletes what it created.
//!
//! ```no_run
//! use komunikator_linkem::{Backend, Link, LinkSpec};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = LinkSpec::parse("500kbit,delay=50ms,queue=200ms,at=10s:300kbit", "unlimited")?;
//! let link = Link::start("127.0.0.1:12345".parse()?, &spec, Backend::UserSpace)?;
//! let client = std::net::TcpStream::connect(link.client_addr())?;
//! println!("{} kbit/s up so far", link.stats(komunikator_linkem::Dir::Up).bytes_out * 8 / 1000);
//! # drop(client); Ok(()) }
//! ```

pub mod netns;
mod shaper;
pub mod spec;
mod tc;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

pub use shaper::SOCKET_BUFFER;
pub use spec::{LinkSpec, Queue, Shape, SpecError, Step};

/// A direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server.
    Up = 0,
    /// Server to client.
    Down = 1,
}

impl Dir {
    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }
}

impl LinkSpec {
    /// The shape of direction `dir`.
    pub fn dir(&self, dir: Dir) -> &Shape {
        match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        }
    }
}

/// Which back end to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The user-space TCP proxy.
    UserSpace,
    /// Network namespace, veth and `tc tbf`; fails when that cannot run here
    /// or cannot model the spec (a delay: no netem).
    Netns,
    /// Netns when it can run here and the spec has no delay, else user space
    /// ([`Link::fallback_reason`] says why).
    Auto,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::UserSpace => "user-space shaper",
            Backend::Netns => "netns + tc tbf",
            Backend::Auto => "auto",
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    /// `user`, `netns` or `auto`.
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "user" | "user-space" | "userspace" => Ok(Backend::UserSpace),
            "netns" => Ok(Backend::Netns),
            "auto" => Ok(Backend::Auto),
            _ => Err(format!("unknown back end {s:?} (auto, user or netns)")),
        }
    }
}

/// Why a link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A socket or thread operation of the user-space shaper failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The system's reason.
        source: std::io::Error,
    },
    /// `ip` or `tc` failed (for example: not root, no tbf in the kernel).
    #[error("netns back end: {0}")]
    Netns(#[from] netns::NetnsError),
    /// The netns back end cannot model what was asked.
    #[error("netns back end: {0}")]
    Unsupported(String),
}

/// A direction's counters, as [`Link::stats`] returns them.
///
/// User space: payload bytes, summed over connections. Netns: tbf's
/// counters, whose bytes include IP and TCP headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Bytes taken from the sender (into the bottleneck).
    pub bytes_in: u64,
    /// Bytes delivered to the receiver (past rate and delay).
    pub bytes_out: u64,
    /// Bytes in the bottleneck queue now.
    pub queued: u64,
    /// The most bytes one connection's bottleneck held (netns: the largest
    /// backlog seen by a `stats` call).
    pub max_queued: u64,
    /// Bytes released by the rate limit and still inside the delay.
    pub in_flight: u64,
    /// Packets dropped by the queue (netns only; a TCP proxy cannot drop).
    pub dropped_packets: u64,
    /// The rate in force now, kbit/s (0: unlimited).
    pub kbps: u32,
    /// The one-way delay in force now.
    pub delay: Duration,
}

enum Inner {
    User(shaper::Proxy),
    Netns(tc::NetnsLink),
}

/// A running link. Dropping it stops the shaper's threads (closing the
/// connections through it) or deletes the namespace and veth pair.
pub struct Link {
    inner: Inner,
    spec: LinkSpec,
    started: Instant,
    fallback: Option<String>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("backend", &self.backend())
            .field("client_addr", &self.client_addr())
            .field("up", &self.spec.up.to_string())
            .field("down", &self.spec.down.to_string())
            .finish()
    }
}

impl Link {
    /// Starts a link to `upstream` (the server). The user-space shaper listens
    /// on 127.0.0.1 on a free port. Schedules count from this call.
    ///
    /// # Errors
    /// [`LinkError`]: the socket cannot be made, or (with
    /// [`Backend::Netns`]) the netns back end cannot run or model the spec.
    pub fn start(upstream: SocketAddr, spec: &LinkSpec, backend: Backend) -> Result<Link, LinkError> {
        Link::start_on((Ipv4Addr::LOCALHOST, 0).into(), upstream, spec, backend)
    }

    /// As [`Link::start`], with the user-space shaper listening on `listen`
    /// (ignored by the netns back end).
    ///
    /// # Errors
    /// As [`Link::start`].
    pub fn start_on(
        listen: SocketAddr,
        upstream: SocketAddr,
        spec: &LinkSpec,
        backend: Backend,
    ) -> Result<Link, LinkError> {
        let started = Instant::now();
        let user = || shaper::Proxy::start(listen, upstream, spec, started).map(Inner::User);
        let (inner, fallback) = match backend {
            Backend::UserSpace => (user()?, None),
            Backend::Netns => (Inner::Netns(tc::NetnsLink::start(upstream, spec, started)?), None),
            Backend::Auto if spec.has_delay() => {
                (user()?, Some("a delay is asked for and the netns back end has none".to_owned()))
            }
            Backend::Auto => match tc::NetnsLink::start(upstream, spec, started) {
                Ok(n) => (Inner::Netns(n), None),
                Err(e) => (user()?, Some(e.to_string())),
            },
        };
        Ok(Link { inner, spec: spec.clone(), started, fallback })
    }

    /// The address the client dials: the shaper's listening address, or the
    /// root end of the veth pair with the upstream's port (netns; the
    /// server must listen on 0.0.0.0 or that address).
    pub fn client_addr(&self) -> SocketAddr {
        match &self.inner {
            Inner::User(p) => p.addr(),
            Inner::Netns(n) => n.client_addr(),
        }
    }

    /// The back end that runs: [`Backend::UserSpace`] or [`Backend::Netns`].
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::User(_) => Backend::UserSpace,
            Inner::Netns(_) => Backend::Netns,
        }
    }

    /// Why [`Backend::Auto`] chose user space, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The words to put before a client's command line so it runs where it
    /// must (`ip netns exec NAME` for netns; empty for user space).
    pub fn command_prefix(&self) -> Vec<String> {
        match &self.inner {
            Inner::User(_) => Vec::new(),
            Inner::Netns(n) => n.netns().command_prefix(),
        }
    }

    /// The namespace's name (netns back end), for [`netns::in_ns`].
    pub fn netns_name(&self) -> Option<&str> {
        match &self.inner {
            Inner::User(_) => None,
            Inner::Netns(n) => Some(&n.netns().name),
        }
    }

    /// The spec it runs.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// Time since the link started (what schedules count).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Connections the user-space shaper accepted (0 for netns).
    pub fn connections(&self) -> u64 {
        match &self.inner {
            Inner::User(p) => p.accepted(),
            Inner::Netns(_) => 0,
        }
    }

    /// Direction `dir`'s counters now.
    pub fn stats(&self, dir: Dir) -> DirStats {
        let (kbps, delay) = self.spec.dir(dir).at(self.elapsed());
        match &self.inner {
            Inner::User(p) => {
                let c = p.counters(dir);
                DirStats {
                    bytes_in: c.bytes_in.load(Relaxed),
                    bytes_out: c.bytes_out.load(Relaxed),
                    queued: c.queued.load(Relaxed),
                    max_queued: c.max_queued.load(Relaxed),
                    in_flight: c.in_flight.load(Relaxed),
                    dropped_packets: 0,
                    kbps,
                    delay,
                }
            }
            Inner::Netns(n) => {
                let q = n.stats(dir);
                DirStats {
                    bytes_in: q.bytes + q.backlog,
                    bytes_out: q.bytes,
                    queued: q.backlog,
                    max_queued: n.max_backlog(dir),
                    in_flight: 0,
                    dropped_packets: q.drops,
                    kbps,
                    delay,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Benchmarks keep a link in shared state and read its stats from other threads.
    #[test]
    fn link_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Link>();
    }
}
