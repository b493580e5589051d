//! The connection to the server: it owns the socket.
//!
//! [`Connection::open`] connects and starts two threads:
//! * `receive` reads the socket, splits it into messages with
//!   [`komunikator_protocol::Decoder`], hands media payloads to a [`FrameSink`]
//!   (the receiving pipelines' appsrcs) on this same thread, and reports every
//!   other message as an owned [`NetEvent`] through a callback;
//! * `writer` drains the [`Writer`]'s queue and writes each item whole, so
//!   lines and frames from different threads never interleave. Control lines
//!   go first, then audio, then video; it also measures our uplink and
//!   decides the video rate ([`uplink`]).
//!
//! [`Writer`] is the cloneable sending half. Media pushes never block (with
//! adaptation on): a slow uplink makes the sending pipeline skip raw
//! pictures before the encoder, never encoded frames.

mod receive;
pub mod security;
pub mod uplink;
mod writer;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

use komunikator_protocol::{ClientId, ErrorCode, MediaHeader, PeerState, Presence, StopReason};

pub use receive::MAX_LIST;
pub use uplink::{RateConfig, Uplink};
pub use writer::{Outgoing, Payload, Queued, Writer};

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
    /// The TLS handshake failed (not a certificate change).
    #[error("{0}")]
    Tls(String),
    /// The server presented a certificate other than the pinned one.
    #[error(
        "the certificate of {server} has changed: pinned {pinned}, presented {presented}. \
         If the administrator confirms the new fingerprint, trust it (--trust-new-certificate)."
    )]
    CertificateChanged {
        /// The server address as given.
        server: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The fingerprint the server presented.
        presented: String,
    },
    /// The pin store could not be read or written.
    #[error("pinned certificates: {0}")]
    Pins(String),
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
    /// `rate <kbps>` or `rate -`: the peer's downlink limits the call to
    /// this many kbit/s, or no longer does. `from`: which party, in a group call.
    Rate {
        /// The party whose link it is (group calls), `None` for the peer.
        from: Option<ClientId>,
        /// The limit, or none.
        kbps: Option<u32>,
    },
    /// `delay <ms>`: our media queues this long on its way to the peer
    /// (`from`: which party, in a group call).
    Delay {
        /// The party that measured it (group calls), `None` for the peer.
        from: Option<ClientId>,
        /// The delay.
        ms: u32,
    },
    /// `media <audio|video> <on|off>`: the peer switched its microphone or camera.
    MediaState {
        /// The party that switched (group calls), `None` for the peer.
        from: Option<ClientId>,
        /// Its switch.
        state: komunikator_protocol::MediaState,
    },
    /// `ok block <target>`: no more rings from it on this connection.
    Blocked(String),
    /// `msg <text>`.
    Msg {
        /// The party that wrote it (group calls), `None` for the peer.
        from: Option<ClientId>,
        /// The line.
        text: String,
    },
    /// `ok features ...`: the server turned group calls on (`true`) or does not have them.
    Features(bool),
    /// `inviting <id>`: the client we invited is being asked.
    Inviting(ClientId),
    /// `with <id> <nick>`: right after an `ask`, another party of the call we are asked into.
    With {
        /// That party.
        id: ClientId,
        /// Its nick.
        nick: Option<String>,
    },
    /// `joined <id> <nick>`: a party joined our call.
    Joined {
        /// The party.
        id: ClientId,
        /// Its nick.
        nick: Option<String>,
    },
    /// `left <id> <reason>`: a party left our call, which goes on.
    Left {
        /// The party.
        id: ClientId,
        /// Why.
        reason: StopReason,
    },
    /// `declined <id> <reason>`: our invitation did not end in a join.
    Declined {
        /// Whom we invited.
        id: ClientId,
        /// Why.
        reason: komunikator_protocol::DeclineReason,
    },
    /// `pong`.
    Pong,
    /// `ok auth`: the server accepted our password.
    AuthOk,
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
    /// One whole frame from the peer, or from party `from` of a group call.
    fn frame(&self, from: Option<ClientId>, header: &MediaHeader, payload: &[u8]);

    /// The server's `start <peer>` was read: frames of the new call follow,
    /// maybe before its pipelines are ready. Called before the `Start` event.
    fn call_started(&self, _peer: ClientId) {}

    /// The server's `stop` was read, or the connection ended: no frame
    /// that came before belongs to a call any more.
    fn call_ended(&self) {}
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
    /// Connects to `addr` (`HOST:PORT`) and starts the `receive` and `writer`
    /// threads. `uplink` says how to treat a slow link, and is where the
    /// writer publishes what it measures and decides.
    ///
    /// # Errors
    /// [`NetError`] when the address does not resolve, connecting fails, or a
    /// thread cannot be started.
    pub fn open(
        addr: &str,
        events: impl Fn(NetEvent) + Send + Sync + Clone + 'static,
        frames: std::sync::Arc<dyn FrameSink>,
        uplink: std::sync::Arc<Uplink>,
    ) -> Result<Connection, NetError> {
        let security = security::current();
        let stream = connect(addr)?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if uplink.adapts() {
            // Best effort: without it the socket holds more, and audio waits longer.
            let _ = komunikator_rate::set_notsent_lowat(&stream, uplink::NOTSENT_LOWAT);
        }
        let local = stream.local_addr().map_err(|source| NetError::Connect { addr: addr.into(), source })?;
        let clone =
            |s: &TcpStream| s.try_clone().map_err(|source| NetError::Connect { addr: addr.into(), source });
        // The server's answers to the writer's `ping` probes time the path.
        let (events, probes) = (events.clone(), uplink.clone());
        let events = move |ev: NetEvent| {
            if ev == NetEvent::Pong {
                probes.pong(std::time::Instant::now());
            }
            events(ev);
        };
        let (writer, writer_rx) = Writer::channel(uplink);
        let shutdown = clone(&stream)?;
        let on_write_error = events.clone();
        let threads = if security.tls {
            let (read_half, write_half, _) = security::handshake(&stream, addr, &security)?;
            spawn_threads(
                move || writer::run(write_half, shutdown, writer_rx, on_write_error),
                move || receive::run(read_half, events, frames),
            )?
        } else {
            let (read_half, write_half) = (clone(&stream)?, clone(&stream)?);
            spawn_threads(
                move || writer::run(write_half, shutdown, writer_rx, on_write_error),
                move || receive::run(read_half, events, frames),
            )?
        };
        if let Some(password) = security::password_for(&security, addr) {
            // Before anything else; a server without a password answers `ok auth` too.
            writer.command(&komunikator_protocol::Command::Auth(&password))?;
        }
        Ok(Connection { writer, stream, local, threads })
    }

    /// A sending handle.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Our local socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Flushes what is queued, closes the socket and waits for both threads.
    /// The writer thread ends once every [`Writer`] clone is dropped (or a
    /// write fails, at the latest after the write timeout), so drop the
    /// other clones first.
    pub fn close(self) {
        let Connection { writer, stream, threads, .. } = self;
        drop(writer);
        let mut threads = threads.into_iter();
        if let Some(writer_thread) = threads.next() {
            let _ = writer_thread.join();
        }
        let _ = stream.shutdown(Shutdown::Both);
        for t in threads {
            let _ = t.join();
        }
    }
}

fn spawn_threads(
    writer: impl FnOnce() + Send + 'static,
    receive: impl FnOnce() + Send + 'static,
) -> Result<Vec<JoinHandle<()>>, NetError> {
    let w = std::thread::Builder::new().name("writer".into()).spawn(writer).map_err(NetError::Thread)?;
    let r = std::thread::Builder::new().name("receive".into()).spawn(receive).map_err(NetError::Thread)?;
    Ok(vec![w, r])
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc::{Receiver, channel};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use komunikator_protocol::{Command, Decoded, Decoder, MediaKind, Status};

    use super::*;

    #[derive(Default)]
    struct Frames(Mutex<Vec<(MediaHeader, Vec<u8>)>>);

    impl FrameSink for Frames {
        fn frame(&self, _: Option<ClientId>, header: &MediaHeader, payload: &[u8]) {
            self.0.lock().unwrap().push((*header, payload.to_vec()));
        }
    }

    fn open() -> (Connection, TcpStream, Receiver<NetEvent>, Arc<Frames>) {
        open_with(RateConfig::adaptive(640, 480, 30, 1000))
    }

    fn open_with(config: RateConfig) -> (Connection, TcpStream, Receiver<NetEvent>, Arc<Frames>) {
        // These tests play the server over plain TCP.
        security::configure(security::Security::plaintext());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let events = Arc::new(move |ev| {
            let _ = tx.lock().unwrap().send(ev);
        });
        let frames = Arc::new(Frames::default());
        let conn =
            Connection::open(&addr, move |ev| events(ev), frames.clone(), Uplink::new(config)).unwrap();
        let (server, _) = listener.accept().unwrap();
        (conn, server, rx, frames)
    }

    fn next(rx: &Receiver<NetEvent>) -> NetEvent {
        rx.recv_timeout(Duration::from_secs(5)).expect("an event")
    }

    #[test]
    fn receive_splits_lines_lists_and_frames() {
        let (conn, mut server, rx, frames) = open();
        let mut bytes = b"hello 127.0.0.1:5 komunikator/1\nclients 2\n127.0.0.1:6 free ala\n".to_vec();
        bytes.extend_from_slice(b"127.0.0.1:7 busy -\nvideo 10 k 4\n\nab\nstop hangup\nnonsense\nkeyframe\n");
        bytes.extend_from_slice(b"rate 480\nrate -\ndelay 150\n");
        // One byte at a time: partial input must never be an error.
        for b in &bytes {
            server.write_all(&[*b]).unwrap();
        }
        assert!(matches!(next(&rx), NetEvent::Hello { .. }));
        let NetEvent::Clients(list) = next(&rx) else { panic!("expected a list") };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].nick.as_deref(), Some("ala"));
        assert_eq!(list[1].nick, None);
        assert_eq!(next(&rx), NetEvent::Stop(StopReason::Hangup));
        assert!(matches!(next(&rx), NetEvent::Invalid(_)));
        assert_eq!(next(&rx), NetEvent::Keyframe);
        assert_eq!(next(&rx), NetEvent::Rate { from: None, kbps: Some(480) });
        assert_eq!(next(&rx), NetEvent::Rate { from: None, kbps: None });
        assert_eq!(next(&rx), NetEvent::Delay { from: None, ms: 150 });
        let got = frames.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![(MediaHeader { kind: MediaKind::Video, pts: 10, key: true, len: 4 }, b"\nab\n".to_vec())]
        );
        drop(server);
        assert!(matches!(next(&rx), NetEvent::Closed(_)));
        conn.close();
    }

    #[test]
    fn oversized_frame_closes_the_connection() {
        let (conn, mut server, rx, _) = open();
        server.write_all(b"video 1 k 4294967295\n").unwrap();
        let NetEvent::Closed(why) = next(&rx) else { panic!("expected Closed") };
        assert!(why.contains("frame"), "{why}");
        conn.close();
    }

    #[test]
    fn frames_from_many_threads_never_interleave() {
        // Without adaptation nothing is dropped, so every frame must arrive whole.
        let (conn, mut server, _rx, _) = open_with(RateConfig::fixed(640, 480, 30, 1000));
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            server.read_to_end(&mut all).unwrap();
            all
        });
        let writer = conn.writer().clone();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let payload = vec![t; 1000 + (i as usize % 7) * 3000];
                        let kind = if t % 2 == 0 { MediaKind::Video } else { MediaKind::Audio };
                        w.media(kind, i, i % 10 == 0, Box::new(payload)).unwrap();
                        if i % 50 == 0 {
                            w.command(&Command::Keyframe).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(writer);
        conn.close();
        let all = reader.join().unwrap();
        let (mut at, mut media, mut lines, dec) = (0, 0, 0, Decoder::default());
        while let Ok(Status::Complete { item, consumed }) = dec.decode_client(&all[at..]) {
            match item {
                Decoded::Media { payload, .. } => {
                    assert!(payload.iter().all(|b| *b == payload[0]), "a payload mixes two frames");
                    media += 1;
                }
                Decoded::Message(Command::Keyframe) => lines += 1,
                other => panic!("unexpected {other:?}"),
            }
            at += consumed;
        }
        assert_eq!((media, lines, at), (800, 16, all.len()));
    }
}
