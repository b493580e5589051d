//! The connection to the server: it owns the socket.
//!
//! [`Connection::open`] connects and starts two threads:
//! * `receive` reads the socket, splits it into messages with
//!   [`komunikator_protocol::Decoder`], hands media payloads to a [`FrameSink`]
//!   (the receiving pipelines' appsrcs) on this same thread, and reports every
//!   other message as an owned [`NetEvent`] through a callback;
//! * `writer` drains a bounded channel of [`Outgoing`] items and writes each
//!   one whole, so lines and frames from different threads never interleave.
//!
//! [`Writer`] is the cloneable sending half. When the channel is full, senders
//! block: for video that backs up into the sending pipeline, whose leaky queue
//! of raw frames then drops pictures before the encoder, never encoded frames.

mod receive;
mod writer;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

use komunikator_protocol::{ClientId, ErrorCode, MediaHeader, PeerState, Presence, StopReason};

pub use writer::{Outgoing, Payload, Writer};

/// How many items the writer channel holds before senders block.
pub const WRITER_QUEUE: usize = 64;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A write that makes no progress for this long means the server is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the connection.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `HOST:PORT` did not resolve to any address.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The writer thread has stopped, so the connection is closed.
    #[error("the connection to the server is closed")]
    Closed,
    /// Starting a thread failed.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
}

/// One entry of a `clients` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The other client's id.
    pub id: ClientId,
    /// Whether it can be called.
    pub state: PeerState,
    /// Its nick, if any.
    pub nick: Option<String>,
}

/// A message from the server, owned, or the end of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// `hello <id> <version>`.
    Hello {
        /// Our id as the server sees it.
        id: ClientId,
        /// The protocol version it speaks.
        version: String,
    },
    /// `ok name <nick>`.
    NameOk(String),
    /// A complete `clients` list.
    Clients(Vec<PeerInfo>),
    /// `presence <id> <state> <nick>`.
    Presence {
        /// Whose presence changed.
        id: ClientId,
        /// The new state.
        state: Presence,
        /// The nick.
        nick: Option<String>,
    },
    /// `calling <id>`.
    Calling(ClientId),
    /// `ask <id> <nick>`.
    Ask {
        /// The caller.
        id: ClientId,
        /// Its nick.
        nick: Option<String>,
    },
    /// `ask yes`.
    AskYes,
    /// `ask no`.
    AskNo,
    /// `busy <id>`.
    Busy(ClientId),
    /// `start <id>`.
    Start(ClientId),
    /// `stop <reason>`.
    Stop(StopReason),
    /// `keyframe`: the peer wants an independent frame.
    Keyframe,
    /// `msg <text>`.
    Msg(String),
    /// `pong`.
    Pong,
    /// `error <code> [text]`.
    Error {
        /// The code.
        code: ErrorCode,
        /// The optional text.
        text: Option<String>,
    },
    /// A line this client could not parse; the stream stays in sync.
    Invalid(String),
    /// The connection ended; the text says why.
    Closed(String),
}

/// Where the receive thread delivers media payloads. Called on the receive
/// thread, so implementations must not block for long.
pub trait FrameSink: Send + Sync {
    /// One whole frame from the peer.
    fn frame(&self, header: &MediaHeader, payload: &[u8]);
}

/// An open connection: its writer and its two threads.
#[derive(Debug)]
pub struct Connection {
    writer: Writer,
    stream: TcpStream,
    local: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`) and starts the `receive` and `writer` threads.
    ///
    /// # Errors
    /// [`NetError`] when the address does not resolve, connecting fails, or a
    /// thread cannot be started.
    pub fn open(
        addr: &str,
        events: impl Fn(NetEvent) + Send + Sync + Clone + 'static,
        frames: std::sync::Arc<dyn FrameSink>,
    ) -> Result<Connection, NetError> {
        let stream = connect(addr)?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let local = stream.local_addr().map_err(|source| NetError::Connect { addr: addr.into(), source })?;
        let clone =
            |s: &TcpStream| s.try_clone().map_err(|source| NetError::Connect { addr: addr.into(), source });
        let (writer, writer_rx) = Writer::channel(WRITER_QUEUE);
        let write_half = clone(&stream)?;
        let read_half = clone(&stream)?;
        let on_write_error = events.clone();
        let w = std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || writer::run(write_half, writer_rx, on_write_error))
            .map_err(NetError::Thread)?;
        let r = std::thread::Builder::new()
            .name("receive".into())
            .spawn(move || receive::run(read_half, events, frames))
            .map_err(NetError::Thread)?;
        Ok(Connection { writer, stream, local, threads: vec![w, r] })
    }

    /// A sending handle.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Our local socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Closes the socket and waits for both threads. The writer thread ends
    /// once every [`Writer`] clone is dropped or its next write fails.
    pub fn close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        drop(self.writer);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn connect(addr: &str) -> Result<TcpStream, NetError> {
    let addrs: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(|_| NetError::Resolve(addr.into()))?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    if addrs.is_empty() {
        return Err(NetError::Resolve(addr.into()));
    }
    Err(NetError::Connect { addr: addr.into(), source: last })
}
