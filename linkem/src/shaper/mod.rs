//! The user-space back end: a TCP proxy that shapes each accepted
//! connection in both directions. The accept thread (started by
//! [`Proxy::start`]) connects each client to the upstream and starts four
//! threads per connection: for `up` and `down`, a reader and a sender
//! ([`pipe`]). Each connection has its own bottleneck, like a client behind
//! its own router; the counters add up over all connections.
//!
//! The proxy's sockets have small kernel buffers ([`SOCKET_BUFFER`], set
//! before listen and connect so the advertised window is small too) and an
//! Ethernet-sized MSS, so the kernel does not hold an unshaped queue of
//! megabytes and the peers' TCP sees the bottleneck as window back-pressure.

mod pipe;

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::spec::LinkSpec;
use crate::{Dir, LinkError};
use pipe::{Pipe, Sender};

/// SO_RCVBUF and SO_SNDBUF asked for on the proxy's sockets (Linux doubles
/// it for bookkeeping).
pub const SOCKET_BUFFER: usize = 8 * 1024;

/// The MSS of the proxy's sockets: Ethernet's, not loopback's 64 KiB.
const MSS: u32 = 1448;

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One direction's counters, summed over connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) max_queued: AtomicU64,
    pub(crate) in_flight: AtomicU64,
}

/// A proxied connection, as [`Proxy`]'s drop needs it.
struct Conn {
    sockets: [TcpStream; 2],
    pipes: [Arc<Pipe>; 2],
    threads: Vec<JoinHandle<()>>,
}

impl Conn {
    fn stop(&self) {
        for p in &self.pipes {
            p.stop();
        }
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// State shared by the accept thread and the [`Proxy`] handle.
struct Shared {
    upstream: SocketAddr,
    spec: LinkSpec,
    started: Instant,
    stop: AtomicBool,
    conns: Mutex<Vec<Conn>>,
    counters: [Arc<Counters>; 2],
    accepted: AtomicU64,
}

/// A running user-space shaper; dropping it closes every connection and
/// joins every thread.
pub(crate) struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `listen` and starts the accept thread.
    ///
    /// # Errors
    /// When the listening socket cannot be made or bound.
    pub(crate) fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        spec: &LinkSpec,
        started: Instant,
    ) -> Result<Proxy, LinkError> {
        let io = |what| move |source| LinkError::Io { what, source };
        let socket = small_socket(listen).map_err(io("make the listening socket"))?;
        socket.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
        socket.bind(&listen.into()).map_err(io("bind the listening socket"))?;
        socket.listen(128).map_err(io("listen"))?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().map_err(io("read the listening address"))?;
        let shared = Arc::new(Shared {
            upstream,
            spec: spec.clone(),
            started,
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            counters: Default::default(),
            accepted: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("linkem-accept".into())
            .spawn(move || accept_loop(&listener, &s))
            .map_err(io("start the accept thread"))?;
        Ok(Proxy { addr, shared, accept: Some(accept) })
    }

    /// The address clients dial.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One direction's counters.
    pub(crate) fn counters(&self, dir: Dir) -> &Counters {
        &self.shared.counters[dir as usize]
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.shared.accepted.load(Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        // Wake the accept thread with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        for c in &conns {
            c.stop();
        }
        for c in conns {
            c.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A TCP socket for `addr`'s family with small buffers and an Ethernet MSS.
fn small_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.set_tcp_mss(MSS)?;
    Ok(socket)
}

/// The accept thread: accepts until the proxy is dropped.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Relaxed) {
            return;
        }
        let Ok(client) = client else {
            // Out of descriptors or similar: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(server) = connect_upstream(shared.upstream) else { continue };
        let _ = client.set_nodelay(true);
        shared.accepted.fetch_add(1, Relaxed);
        let mut conns = lock(&shared.conns);
        let (done, live): (Vec<Conn>, Vec<Conn>) =
            std::mem::take(&mut *conns).into_iter().partition(|c| c.threads.iter().all(|t| t.is_finished()));
        *conns = live;
        if let Ok(conn) = start_conn(client, server, shared) {
            conns.push(conn);
        }
        drop(conns);
        done.into_iter().for_each(Conn::join);
    }
}

fn connect_upstream(upstream: SocketAddr) -> io::Result<TcpStream> {
    let socket = small_socket(upstream)?;
    socket.set_tcp_nodelay(true)?;
    socket.connect_timeout(&upstream.into(), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

/// Starts the four threads of one connection.
fn start_conn(client: TcpStream, server: TcpStream, shared: &Shared) -> io::Result<Conn> {
    let shapes = [&shared.spec.up, &shared.spec.down];
    let pipes = [Dir::Up, Dir::Down]
        .map(|d| Pipe::new(shapes[d as usize].queue_bytes(), Arc::clone(&shared.counters[d as usize])));
    let mut conn = Conn { sockets: [client.try_clone()?, server.try_clone()?], pipes, threads: Vec::new() };
    for (dir, src, dst) in [(Dir::Up, &client, &server), (Dir::Down, &server, &client)] {
        if let Err(e) = start_dir(&mut conn, dir, src, dst, shapes[dir as usize], shared.started) {
            conn.stop();
            conn.join();
            return Err(e);
        }
    }
    Ok(conn)
}

/// Starts one direction's reader and sender threads.
fn start_dir(
    conn: &mut Conn,
    dir: Dir,
    src: &TcpStream,
    dst: &TcpStream,
    shape: &crate::Shape,
    started: Instant,
) -> io::Result<()> {
    let pipe = Arc::clone(&conn.pipes[dir as usize]);
    let sender = Sender::new(Arc::clone(&pipe), shape.clone(), started);
    let (src_r, src_s, dst_s) = (src.try_clone()?, src.try_clone()?, dst.try_clone()?);
    let name = dir.as_str();
    let reader = std::thread::Builder::new()
        .name(format!("linkem-{name}-rd"))
        .spawn(move || pipe.read_loop(&src_r))?;
    conn.threads.push(reader);
    let sender = std::thread::Builder::new()
        .name(format!("linkem-{name}-tx"))
        .spawn(move || sender.run(&src_s, &dst_s))?;
    conn.threads.push(sender);
    Ok(())
}
