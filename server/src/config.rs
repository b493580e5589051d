//! The server's settings: every limit is a command-line flag with a safe default.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::log::Level;

/// Komunikator call server: relays audio and video calls between clients.
///
/// Clients connect over TCP and speak the text protocol in docs/PROTOCOL.md.
/// Every limit below has a safe default for a small box such as a Raspberry Pi.
#[derive(Debug, Clone, Parser)]
#[command(name = "komunikator-server", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// TCP port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = komunikator_protocol::DEFAULT_PORT)]
    pub port: u16,

    /// Media queued for one receiver, in milliseconds, above which its video is
    /// dropped until the next keyframe.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub max_queue_ms: u64,

    /// Media queued for one receiver, in bytes, above which its video is dropped.
    #[arg(long, default_value_t = 2 << 20, value_name = "BYTES")]
    pub max_queue_bytes: usize,

    /// Hard cap on queued audio for one receiver, in milliseconds; older audio is dropped past it.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub max_audio_queue_ms: u64,

    /// Control lines queued for one client, in bytes; a client past it is disconnected.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_control_bytes: usize,

    /// Longest line in bytes, including the newline.
    #[arg(long, default_value_t = komunikator_protocol::MAX_LINE, value_name = "BYTES",
          value_parser = clap::value_parser!(usize))]
    pub max_line: usize,

    /// Largest media payload in bytes.
    #[arg(long, default_value_t = komunikator_protocol::MAX_FRAME, value_name = "BYTES")]
    pub max_frame: u32,

    /// Most clients connected at once.
    #[arg(long, default_value_t = 2000)]
    pub max_clients: usize,

    /// Most connections from one IP address.
    #[arg(long, default_value_t = 64)]
    pub max_per_ip: usize,

    /// Seconds a connection may take to log in (a correct `auth` on a
    /// password server; on an open one, its TLS handshake) before it is
    /// closed with `error timeout`.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub login_grace: u64,

    /// Most connections waiting to log in at once; past it, the oldest one
    /// from the address with the most is closed with `error full`.
    #[arg(long, default_value_t = 128)]
    pub max_pending: usize,

    /// Most connections waiting to log in from one IP address; past it, the
    /// oldest one from that address is closed with `error full`.
    #[arg(long, default_value_t = 8)]
    pub max_pending_per_ip: usize,

    /// Seconds a started line or frame may take to complete before the connection is closed.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub io_timeout: u64,

    /// Seconds a call may ring unanswered.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub ring_timeout: u64,

    /// Most parties in one call, counting invitations still ringing
    /// (group calls; 2 turns `invite` off).
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=64))]
    pub max_room: u32,

    /// Seconds after which a silent peer (vanished without closing) is considered dead.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub dead_peer_timeout: u64,

    /// `connect` commands a client may send in a burst.
    #[arg(long, default_value_t = 5)]
    pub connect_burst: u32,

    /// `connect` commands per second a client may send after its burst.
    #[arg(long, default_value_t = 1.0)]
    pub connect_rate: f64,

    /// `ask`s one callee may get per minute from one source address (all at
    /// once, or spread out); past it the caller gets `error rate-limited`.
    /// 0: no limit.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rings_per_pair: u32,

    /// `ask`s one callee may get per minute from everyone. 0: no limit.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub rings_per_callee: u32,

    /// Rings one source address may make per minute, to anyone. 0 (the
    /// default): no limit; clients behind one NAT address share it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub rings_per_address: u32,

    /// Kernel send buffer per client socket, in bytes (0 leaves the system default).
    /// Small buffers keep latency visible to the drop policy.
    #[arg(long, default_value_t = 256 << 10, value_name = "BYTES")]
    pub sndbuf: usize,

    /// Move large video payloads (64 KiB and up) between plain-text clients
    /// with splice(2) instead of copying them through the server. Measured
    /// slower than copying on a 2-core virtual machine (see BENCHMARKS.md);
    /// it may pay off where copying memory is expensive.
    #[arg(long)]
    pub splice: bool,

    /// Benchmarking only: disable the drop policy, so a slow receiver slows its sender
    /// the way a naive relay does.
    #[arg(long, hide = true)]
    pub no_drop_policy: bool,

    /// Whether plain-text clients are accepted besides TLS ones: allow or deny.
    /// Use deny for a server reachable from the internet.
    #[arg(long, default_value = "allow", value_parser = ["allow", "deny"])]
    pub plaintext: String,

    /// TLS certificate chain (PEM). Without --tls-cert and --tls-key, a
    /// self-signed certificate is created in --state-dir on first start.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where the self-signed certificate is kept [default: $STATE_DIRECTORY,
    /// else $XDG_STATE_HOME/komunikator-server, else ~/.local/state/komunikator-server].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Serve plain text only, without TLS.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub no_tls: bool,

    /// A regular file (at most 4 KiB) whose first line is the server password.
    /// Clients must then send `auth <password>` before anything but `ping`.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,

    /// Milliseconds to wait for a TLS handshake before greeting a silent
    /// plain-text client (such as nc) with `hello`.
    #[arg(long, default_value_t = 300, value_name = "MS", hide = true)]
    pub plaintext_grace_ms: u64,

    /// Least severe log level printed to stderr: error, warn, info or debug.
    #[arg(long, default_value = "info")]
    pub log_level: Level,

    /// Join a cluster of servers through the NATS broker at this URL
    /// (nats://HOST:PORT, or tls://HOST:PORT): every node lists the users
    /// of all, and a call to a user of another node rings there. Without
    /// it the server stands alone and needs no broker.
    #[arg(long, value_name = "URL", requires = "node")]
    pub cluster: Option<String>,

    /// This server's name in the cluster: 1-32 of a-z, 0-9 and '-', unique
    /// among the nodes.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,

    /// A NATS credentials file (.creds) for the broker.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_creds: Option<PathBuf>,

    /// A CA certificate (PEM) the broker's TLS certificate must chain to;
    /// TLS to the broker is then required.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub cluster_ca: Option<PathBuf>,

    /// Take direct links from other nodes on this address (for example
    /// 10.0.0.5:12346), so a firewall can let them through. Calls between
    /// nodes go node to node, over TLS, instead of through the broker,
    /// which only sets each link up. By default links are taken on a free
    /// port of the --bind address.
    #[arg(long, value_name = "ADDR:PORT", requires = "cluster")]
    pub cluster_link: Option<SocketAddr>,

    /// Take no direct links: the broker carries every call between this
    /// node and another that cannot dial it.
    #[arg(long, requires = "cluster", conflicts_with_all = ["cluster_link", "cluster_link_advertise"])]
    pub no_cluster_link: bool,

    /// The HOST:PORT other nodes dial for --cluster-link, when it is not
    /// the address bound (0.0.0.0, a container, a NAT).
    #[arg(long, value_name = "HOST:PORT", requires = "cluster_link")]
    pub cluster_link_advertise: Option<String>,
}

impl Config {
    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Config {
        Config::parse_from(["komunikator-server"])
    }

    /// How long a started line or frame may take.
    pub fn io_timeout(&self) -> Duration {
        Duration::from_secs(self.io_timeout.max(1))
    }

    /// How long a connection may take to log in.
    pub fn login_grace(&self) -> Duration {
        Duration::from_secs(self.login_grace.max(1))
    }

    /// How long a call may ring.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout.max(1))
    }

    /// Whether plain-text clients are accepted.
    pub fn plaintext_allowed(&self) -> bool {
        self.plaintext != "deny"
    }

    /// The directory for the self-signed certificate.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        // systemd's StateDirectory= sets STATE_DIRECTORY (possibly a list).
        if let Some(dirs) = std::env::var("STATE_DIRECTORY").ok().filter(|v| !v.is_empty()) {
            return PathBuf::from(dirs.split(':').next().unwrap_or(&dirs));
        }
        env("XDG_STATE_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".local/state")))
            .map_or_else(|| PathBuf::from("/var/lib/komunikator"), |d| d.join("komunikator-server"))
    }

    /// How long before a silent peer is declared dead.
    pub fn dead_peer_timeout(&self) -> Duration {
        Duration::from_secs(self.dead_peer_timeout.max(3))
    }
}
