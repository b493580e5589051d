//! A protocol client over a real socket, for driving the server in scenarios.
//! Runs on whichever thread owns it; nothing here spawns threads.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use komunikator_protocol::{Decoded, Decoder, Status};

/// How long a scenario waits for an expected message before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// One thing received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A line, without its newline.
    Line(String),
    /// A media frame: its header line and payload.
    Media {
        /// The header line.
        header: String,
        /// The payload.
        payload: Vec<u8>,
    },
}

impl Msg {
    /// The line, or the media header line.
    pub fn line(&self) -> &str {
        match self {
            Msg::Line(l) => l,
            Msg::Media { header, .. } => header,
        }
    }
}

/// A client connection to the server.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Our id, from `hello`.
    pub id: String,
    /// Set once the connection has ended.
    pub closed: bool,
}

impl Client {
    /// Connects and reads `hello`.
    ///
    /// # Errors
    /// When connecting fails or the server does not greet us.
    pub fn connect(addr: SocketAddr) -> Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, WAIT).with_context(|| format!("connect {addr}"))?;
        Client::greeted(stream)
    }

    /// Connects from a chosen local address, such as 127.0.0.2, without reading anything.
    ///
    /// # Errors
    /// When binding or connecting fails.
    pub fn raw_from(source: IpAddr, addr: SocketAddr) -> Result<Client> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket
            .connect_timeout(&addr.into(), WAIT)
            .with_context(|| format!("connect {addr} from {source}"))?;
        Ok(Client::unread(socket.into()))
    }

    /// Connects from `source` and reads `hello`.
    ///
    /// # Errors
    /// As [`Client::raw_from`], or when the greeting is not `hello`.
    pub fn connect_from(source: IpAddr, addr: SocketAddr) -> Result<Client> {
        let c = Client::raw_from(source, addr)?;
        Client::greeted(c.stream)
    }

    /// Wraps a connected stream without reading.
    pub fn unread(stream: TcpStream) -> Client {
        let _ = stream.set_nodelay(true);
        Client { stream, buf: Vec::new(), id: String::new(), closed: false }
    }

    /// Wraps a connected stream and reads `hello`.
    ///
    /// # Errors
    /// When the first message is not `hello`.
    pub fn greeted(stream: TcpStream) -> Result<Client> {
        let mut c = Client::unread(stream);
        let hello = c.recv()?;
        c.id = hello
            .line()
            .strip_prefix("hello ")
            .and_then(|r| r.strip_suffix(" komunikator/1"))
            .with_context(|| format!("expected hello, got {hello:?}"))?
            .to_owned();
        Ok(c)
    }

    /// Sends one line.
    ///
    /// # Errors
    /// When the socket write fails.
    pub fn send(&mut self, line: &str) -> Result<()> {
        self.send_bytes(format!("{line}\n").as_bytes())
    }

    /// Sends raw bytes.
    ///
    /// # Errors
    /// When the socket write fails.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).context("send")
    }

    /// Sends a media frame.
    ///
    /// # Errors
    /// When the socket write fails.
    pub fn send_media(&mut self, kind: &str, pts: u64, key: bool, payload: &[u8]) -> Result<()> {
        let mut out =
            format!("{kind} {pts} {} {}\n", if key { "k" } else { "-" }, payload.len()).into_bytes();
        out.extend_from_slice(payload);
        self.send_bytes(&out)
    }

    /// The next message, or `None` when nothing arrives within `wait` or the connection ended.
    pub fn try_recv(&mut self, wait: Duration) -> Option<Msg> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(msg) = self.decode() {
                return Some(msg);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(left)).is_err() {
                return None;
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    fn decode(&mut self) -> Option<Msg> {
        let dec = Decoder::new(1 << 16, 1 << 24);
        let (msg, consumed) = match dec.decode_server(&self.buf) {
            Ok(Status::Complete { item: Decoded::Media { header, payload, .. }, consumed }) => {
                let mut h = Vec::new();
                header.encode(&mut h);
                let header = String::from_utf8_lossy(&h).trim_end().to_owned();
                (Msg::Media { header, payload: payload.to_vec() }, consumed)
            }
            Ok(Status::Complete { consumed, .. }) => {
                let end = self.buf.iter().position(|&b| b == b'\n').unwrap_or(consumed);
                (Msg::Line(String::from_utf8_lossy(&self.buf[..end]).trim_end().to_owned()), consumed)
            }
            Ok(Status::Partial) => return None,
            Err(e) => {
                // The server broke the framing: report it as a line the scenario will not expect.
                self.buf.clear();
                return Some(Msg::Line(format!("!framing {e}")));
            }
        };
        self.buf.drain(..consumed);
        Some(msg)
    }

    /// The next message.
    ///
    /// # Errors
    /// When nothing arrives within [`WAIT`].
    pub fn recv(&mut self) -> Result<Msg> {
        self.try_recv(WAIT).with_context(|| format!("client {}: nothing within {WAIT:?}", self.id))
    }

    /// Waits for the first message matching `want`, skipping others; returns it and how long it took.
    ///
    /// # Errors
    /// When it does not arrive within `wait`.
    pub fn wait_for(&mut self, wait: Duration, want: impl Fn(&Msg) -> bool) -> Result<(Msg, Duration)> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_recv(left) {
                Some(m) if want(&m) => return Ok((m, start.elapsed())),
                Some(m) => {
                    if skipped.len() < 8 {
                        skipped.push(m.line().to_owned());
                    }
                }
                None => bail!(
                    "client {}: expected message did not arrive within {wait:?} (closed: {}); skipped {skipped:?}",
                    self.id,
                    self.closed
                ),
            }
        }
    }

    /// Waits for exactly this line, skipping `presence` and anything else.
    ///
    /// # Errors
    /// When it does not arrive within [`WAIT`].
    pub fn expect(&mut self, line: &str) -> Result<Duration> {
        self.wait_for(WAIT, |m| m.line() == line).map(|(_, d)| d)
    }

    /// Waits for a line starting with `prefix`.
    ///
    /// # Errors
    /// When it does not arrive within [`WAIT`].
    pub fn expect_prefix(&mut self, prefix: &str) -> Result<String> {
        self.wait_for(WAIT, |m| m.line().starts_with(prefix)).map(|(m, _)| m.line().to_owned())
    }

    /// Sets a nick.
    ///
    /// # Errors
    /// When the server does not accept it.
    pub fn name(&mut self, nick: &str) -> Result<()> {
        self.send(&format!("name {nick}"))?;
        self.expect(&format!("ok name {nick}")).map(drop)
    }

    /// Sends `ping` and returns the round trip time (everything before `pong` is discarded).
    ///
    /// # Errors
    /// When `pong` does not arrive within `wait`.
    pub fn ping(&mut self, wait: Duration) -> Result<Duration> {
        // Whatever is already buffered is not part of this round trip.
        while self.try_recv(Duration::ZERO).is_some() {}
        let start = Instant::now();
        self.send("ping")?;
        self.wait_for(wait, |m| m.line() == "pong")?;
        Ok(start.elapsed())
    }

    /// Reads and discards whatever has arrived, without waiting.
    pub fn drain(&mut self) {
        while self.try_recv(Duration::ZERO).is_some() {}
    }

    /// Waits until the server closes the connection; returns what came before and how long it took.
    ///
    /// # Errors
    /// When it stays open for `wait`.
    pub fn wait_closed(&mut self, wait: Duration) -> Result<(Vec<Msg>, Duration)> {
        let start = Instant::now();
        let mut got = Vec::new();
        while !self.closed {
            if start.elapsed() > wait {
                bail!("connection {} still open after {wait:?}; got {got:?}", self.id);
            }
            if let Some(m) = self.try_recv(Duration::from_millis(200)) {
                got.push(m);
            }
        }
        Ok((got, start.elapsed()))
    }

    /// Closes with a TCP reset instead of a FIN.
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    /// Hands the socket to a child process (`sleep`) as its descriptor 3 and
    /// closes ours, so that `kill -9` of the child is what ends the
    /// connection, exactly as when a client process is killed.
    ///
    /// # Errors
    /// When the child cannot be started.
    pub fn hand_to_child(self) -> Result<Child> {
        let fd = self.stream.as_raw_fd();
        let mut cmd = Command::new("sleep");
        cmd.arg("3600").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if fd == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("start a child to hold the socket")?;
        drop(self);
        Ok(child)
    }
}

/// Two named clients in a call: (caller, callee).
///
/// # Errors
/// When any step of the call set-up fails.
pub fn call_between(caller: &mut Client, callee: &mut Client, callee_nick: &str) -> Result<()> {
    caller.send(&format!("connect {callee_nick}"))?;
    caller.expect(&format!("calling {}", callee.id))?;
    callee.expect_prefix(&format!("ask {} ", caller.id))?;
    callee.send("ask yes")?;
    caller.expect(&format!("start {}", callee.id))?;
    callee.expect(&format!("start {}", caller.id))?;
    Ok(())
}

/// A tiny deterministic random number generator (xorshift64*), so runs can be replayed by seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
