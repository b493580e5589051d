//! A protocol-level peer for tests: a plain TCP client that speaks the wire
//! protocol through `komunikator-protocol`, to drive a real headless client
//! through the real server in ways a second headless client would not (send
//! undecodable video, ask for keyframes at chosen moments).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use komunikator_protocol::{Command, Decoded, Decoder, MediaHeader, ServerMsg, Status};

/// A message from the server, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// A non-media line, as text.
    Line(String),
    /// A media frame.
    Media(MediaHeader, Vec<u8>),
}

/// A raw protocol client.
pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    /// Connects and reads the `hello` line.
    pub fn connect(addr: &str) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        let mut peer = Peer { stream, buf: Vec::new() };
        let hello = peer.next_line(Duration::from_secs(5));
        assert!(hello.starts_with("hello "), "{hello}");
        peer
    }

    /// Sends one command.
    pub fn send(&mut self, cmd: &Command<'_>) {
        let mut line = Vec::new();
        cmd.encode(&mut line);
        self.stream.write_all(&line).expect("write a command");
    }

    /// Sends one media frame.
    pub fn send_media(&mut self, header: MediaHeader, payload: &[u8]) {
        let mut out = Vec::with_capacity(payload.len() + 40);
        header.encode(&mut out);
        out.extend_from_slice(payload);
        self.stream.write_all(&out).expect("write a frame");
    }

    /// The next item within `timeout`, or `None`.
    pub fn next(&mut self, timeout: Duration) -> Option<Got> {
        let deadline = Instant::now() + timeout;
        let dec = Decoder::default();
        loop {
            match dec.decode_server(&self.buf) {
                Ok(Status::Complete { item, consumed }) => {
                    let got = match item {
                        Decoded::Media { header, payload, .. } => Got::Media(header, payload.to_vec()),
                        Decoded::Message(msg) => Got::Line(line_of(&msg)),
                        Decoded::Invalid(e) => Got::Line(format!("invalid: {e}")),
                    };
                    self.buf.drain(..consumed);
                    return Some(got);
                }
                Ok(Status::Partial) => {}
                Err(e) => panic!("server stream broken: {e}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next non-media line, skipping frames.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(Got::Line(l)) => return l,
                Some(Got::Media(..)) => {}
                None => panic!("no line within {timeout:?}"),
            }
        }
    }

    /// Skips items until a line starting with `prefix`.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left);
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

impl Peer {
    /// Whether a line starting with `prefix` arrives within `timeout`.
    pub fn expect_line_within(&mut self, prefix: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(got) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if matches!(&got, Got::Line(l) if l.starts_with(prefix)) {
                return true;
            }
        }
        false
    }
}

fn line_of(msg: &ServerMsg<'_>) -> String {
    let mut out = Vec::new();
    msg.encode(&mut out);
    String::from_utf8_lossy(&out).trim_end().to_owned()
}
