//! The accept loop and the threads it starts.
//!
//! The main thread accepts connections. Each accepted client gets two
//! threads: its session (`handle_client`, reading) and its writer (draining
//! its outbox). One housekeeping thread ends calls that ring too long.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use komunikator_protocol::{ErrorCode, ServerMsg};
use socket2::{SockRef, TcpKeepalive};

use crate::auth::{Auth, AuthError};
use crate::config::Config;
use crate::fdlimit::{self, Reserve};
use crate::feedback;
use crate::gate::{Gate, Pending};
use crate::outbox::{self, Outbox};
use crate::registry::{Conn, Registry};
use crate::session;
use crate::transport;
use komunikator_tls::server::Identity;

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// What every thread of the server shares.
pub struct Shared {
    /// The clients table.
    pub registry: Registry,
    /// The settings.
    pub config: Config,
    /// Session threads still running.
    pub sessions: AtomicUsize,
    /// The certificate, unless `--no-tls`.
    pub tls: Option<Identity>,
    /// The password gate.
    pub auth: Auth,
    /// Connections that have not logged in yet.
    pub gate: Gate,
    /// This node's cluster, with `--cluster`.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound (for example, the port is taken).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The certificate could not be loaded or created.
    #[error("TLS certificate: {0} (use --state-dir, --tls-cert and --tls-key, or --no-tls)")]
    Tls(#[from] komunikator_tls::TlsError),
    /// The password file is unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The cluster could not be joined.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl Server {
    /// Reads the password file, loads or creates the certificate, and binds
    /// the listening socket.
    ///
    /// # Errors
    /// When the address cannot be bound (for example, the port is taken), or
    /// the certificate or password file cannot be used.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        let auth = match &config.password_file {
            Some(path) => Auth::from_file(path)?,
            None => Auth::open(),
        };
        let tls = if config.no_tls {
            None
        } else {
            let (cert, key) = (config.tls_cert.as_deref(), config.tls_key.as_deref());
            Some(komunikator_tls::server::load_or_create(cert, key, &config.state_dir())?)
        };
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        let registry = Registry::new(config.clone());
        let gate = Gate::new(config.login_grace(), config.max_pending, config.max_pending_per_ip);
        let cluster = match config.cluster {
            Some(_) => Some(crate::cluster::Cluster::start(&config, tls.as_ref())?),
            None => None,
        };
        if let Some(c) = &cluster {
            registry.set_cluster(Arc::clone(c));
        }
        let shared =
            Arc::new(Shared { registry, config, sessions: AtomicUsize::new(0), tls, auth, gate, cluster });
        if let Some(c) = &shared.cluster {
            c.attach(&shared);
        }
        Ok(Server { listener, shared })
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// When the socket cannot report it.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle on the shared state, for shutdown.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Starts the housekeeping thread, calls `ready` once the server is fully
    /// up, then accepts clients forever.
    ///
    /// # Errors
    /// When the housekeeping thread cannot be started.
    pub fn run(self, ready: impl FnOnce()) -> io::Result<()> {
        let housekeeping = Arc::clone(&self.shared);
        std::thread::Builder::new().name("housekeeping".into()).stack_size(crate::THREAD_STACK).spawn(
            move || loop {
                std::thread::sleep(Duration::from_millis(100));
                housekeeping.registry.expire_rings(Instant::now());
                housekeeping.gate.expire(Instant::now());
            },
        )?;
        let mut reserve = Reserve::new();
        ready();
        for stream in self.listener.incoming() {
            match stream {
                Ok(stream) => accept(&self.shared, stream),
                Err(e) if crate::fdlimit::is_exhaustion(&e) => {
                    if !reserve.refuse_one(&self.listener) {
                        crate::log!(Warn, "accept failed: {e}");
                        // Give sessions time to end.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                Err(e) => {
                    crate::log!(Warn, "accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }
}

impl Shared {
    /// Disconnects every client and waits up to `wait` for their sessions to end.
    pub fn shutdown(&self, wait: Duration) {
        if let Some(cluster) = &self.cluster {
            cluster.bye();
        }
        self.registry.abort_all();
        let deadline = Instant::now() + wait;
        while self.sessions.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn accept(shared: &Arc<Shared>, stream: TcpStream) {
    let Ok(id) = stream.peer_addr() else { return };
    if let Err(refused) = shared.registry.reserve(id.ip()) {
        crate::log!(Warn, "{id}: refused: {refused}");
        reject(&stream, &refused.to_string());
        return;
    }
    if let Err(e) = configure(&stream, &shared.config) {
        crate::log!(Warn, "{id}: cannot set socket options: {e}");
    }
    // A plain-text connection to an open server is logged in as soon as it is greeted.
    let gated = shared.auth.required() || shared.tls.is_some();
    let admitted = if gated { shared.gate.admit(id.ip(), &stream) } else { Ok(Pending::detached()) };
    let pending = match admitted {
        Ok(pending) => pending,
        Err(e) => {
            crate::log!(Warn, "{id}: refused: {e}");
            reject(&stream, "server full: out of file descriptors");
            shared.registry.unreserve(id.ip());
            return;
        }
    };
    let for_thread = Arc::clone(shared);
    shared.sessions.fetch_add(1, Ordering::SeqCst);
    // The stream comes back here if the thread cannot start, to be told why.
    let slot = Arc::new(std::sync::Mutex::new(Some((stream, pending))));
    let for_session = Arc::clone(&slot);
    let spawned = std::thread::Builder::new()
        .name(format!("client {id}"))
        .stack_size(crate::THREAD_STACK)
        .spawn(move || {
            let stream = for_session.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            drop(for_session);
            if let Some((stream, pending)) = stream {
                run_session(&for_thread, stream, id, pending);
            }
        });
    if let Err(e) = spawned {
        crate::log!(Error, "{id}: cannot start a thread: {e}");
        if let Some((stream, pending)) = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            reject(&stream, "server full: cannot start a thread");
            shared.gate.remove(&pending);
        }
        shared.sessions.fetch_sub(1, Ordering::SeqCst);
        shared.registry.unreserve(id.ip());
    }
}

/// Tells a refused client `error full <why>`, without ever blocking.
pub(crate) fn reject(stream: &TcpStream, why: &str) {
    let line = ServerMsg::Error { code: ErrorCode::Full, text: Some(why) }.to_line();
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&*stream).write(&line);
    }
}

fn configure(stream: &TcpStream, config: &Config) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = SockRef::from(stream);
    let dead = config.dead_peer_timeout();
    // Idle for half the budget, then probe every sixth; three lost probes end it.
    // The kernel takes whole seconds and refuses 0 (EINVAL, which used to skip
    // every option below): short budgets round up to 1 s.
    let secs = |d: Duration| d.max(Duration::from_secs(1));
    let keepalive =
        TcpKeepalive::new().with_time(secs(dead / 2)).with_interval(secs(dead / 6)).with_retries(3);
    socket.set_tcp_keepalive(&keepalive)?;
    // Data sent but not acknowledged for this long also ends the connection.
    socket.set_tcp_user_timeout(Some(dead))?;
    if config.sndbuf > 0 {
        socket.set_send_buffer_size(config.sndbuf)?;
    }
    set_notsent_lowat(stream, NOTSENT_LOWAT)?;
    stream.set_write_timeout(Some(dead))?;
    Ok(())
}

/// Bytes the kernel may hold unsent per client socket. Beyond it, writes
/// wait (or fail with `EAGAIN` on the fast path), so a slow receiver's backlog
/// stays in its outbox, where the drop policy sees its age, instead of
/// hiding in a send buffer that no policy can trim.
const NOTSENT_LOWAT: i32 = 4 << 10;

fn set_notsent_lowat(stream: &TcpStream, bytes: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `bytes` outlives the call and the length matches its type.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Removes the client from the table however its session ends, even by panic.
struct Leave<'a> {
    shared: &'a Shared,
    conn: Arc<Conn>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.shared.registry.leave(self.conn.id);
        self.conn.outbox.close();
        let s = self.conn.outbox.stats();
        if s.video_dropped + s.audio_dropped > 0 {
            crate::log!(
                Info,
                "{}: left; dropped {} video frames and {} audio packets for it in all",
                self.conn.id,
                s.video_dropped,
                s.audio_dropped
            );
        }
        self.shared.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Takes a connection out of the gate however its session ends.
struct LeaveGate<'a> {
    gate: &'a Gate,
    pending: Pending,
}

impl Drop for LeaveGate<'_> {
    fn drop(&mut self) {
        self.gate.remove(&self.pending);
    }
}

fn run_session(shared: &Shared, stream: TcpStream, id: SocketAddr, pending: Pending) {
    let config = &shared.config;
    let login = LeaveGate { gate: &shared.gate, pending };
    let limits = outbox::Limits::of(config);
    // A client turned away for lack of descriptors, memory or threads is
    // told `error full`; one that failed by itself is just closed.
    let give_up = |why: &dyn std::fmt::Display, exhausted: bool| {
        crate::log!(Info, "{id}: {why}");
        if exhausted {
            reject(&stream, "server full: out of resources");
        }
        shared.registry.unreserve(id.ip());
        shared.sessions.fetch_sub(1, Ordering::SeqCst);
    };
    let (source, sink) = match transport::establish(&stream, config, shared.tls.as_ref()) {
        Ok(halves) => halves,
        Err(e) => {
            let exhausted = matches!(&e, transport::Refused::Io(io) if fdlimit::is_exhaustion(io));
            return give_up(&e, exhausted);
        }
    };
    let tls = !sink.is_plain();
    let for_abort = match stream.try_clone() {
        Ok(for_abort) => for_abort,
        Err(e) => return give_up(&format!("cannot clone the socket: {e}"), true),
    };
    let mut outbox = Outbox::new(limits, Some(for_abort));
    if !tls {
        // Plain text: media may skip the writer thread (never under TLS),
        // through the handle kept for shutdown (no extra descriptor).
        outbox = outbox.with_fast_path();
    }
    let outbox = Arc::new(outbox);
    let conn = Arc::new(Conn::new(id, Arc::clone(&outbox)));
    // The writer tells the peer how fast this client takes media (`rate`).
    // Carried to another node, it tells the senders there.
    let (for_writer, cluster) = (Arc::downgrade(&conn), shared.cluster.clone());
    let report = move || {
        if let Some(conn) = for_writer.upgrade()
            && !cluster.as_ref().is_some_and(|c| c.rate_up(&conn))
        {
            feedback::deliver(&conn);
        }
    };
    if let Err(e) = outbox::spawn_writer(outbox, sink, format!("writer {id}"), report) {
        return give_up(&format!("cannot start a writer thread: {e}"), true);
    }
    crate::log!(Info, "{id}: connected{}", if tls { " (TLS)" } else { "" });
    let leave = Leave { shared, conn };
    session::handle_client(stream, source, &leave.conn, shared, &login.pending);
    crate::log!(Info, "{id}: disconnected");
}
