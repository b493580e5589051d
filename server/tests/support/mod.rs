//! Test support: the real `komunikator-server` binary on 127.0.0.1, port 0,
//! and a line-oriented test client speaking the protocol over real TCP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use komunikator_protocol::{Decoded, Decoder, Status};

/// How long a test waits for an expected message.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// The certificate fingerprint the server printed, when TLS is on.
    pub fingerprint: Option<String>,
    /// A state directory this support made, removed on drop.
    own_state: Option<std::path::PathBuf>,
}

fn nick_of(c: &mut Client) {
    if c.nick.is_empty() {
        c.nick = format!("n{}", c.id.rsplit(':').next().unwrap_or("x"));
        let nick = c.nick.clone();
        c.send(&format!("name {nick}"));
        c.expect(&format!("ok name {nick}"));
    }
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a plain-text server (`--no-tls`) with extra flags and waits for
    /// `listening on`. Plain text lets a test client get `hello` at once
    /// instead of after the grace period for a TLS handshake.
    pub fn start_with(args: &[&str]) -> Server {
        let mut all = vec!["--no-tls"];
        all.extend_from_slice(args);
        Server::start_exact(&all)
    }

    /// Starts the server with exactly these flags (plus a bind address, port 0
    /// and a private state directory) and waits for `listening on`.
    pub fn start_exact(args: &[&str]) -> Server {
        Server::start_adjusted(args, |_| {})
    }

    /// Like [`Server::start_exact`], with `adjust` applied to the command
    /// first (for example a `pre_exec` that lowers a resource limit).
    pub fn start_adjusted(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let bind: &[&str] = if args.contains(&"--bind") { &[] } else { &["--bind", "127.0.0.1"] };
        let state = match args.iter().position(|a| *a == "--state-dir") {
            Some(i) => std::path::PathBuf::from(args[i + 1]),
            None => {
                std::env::temp_dir().join(format!("komunikator-test-{}-{}", std::process::id(), next_id()))
            }
        };
        let given = args.contains(&"--state-dir");
        let own_state: &[&std::ffi::OsStr] =
            if given { &[] } else { &["--state-dir".as_ref(), state.as_os_str()] };
        let own_state_dir = (!given).then(|| state.clone());
        let mut command = Command::new(env!("CARGO_BIN_EXE_komunikator-server"));
        command.args(bind).args(["--port", "0"]).args(own_state).args(args);
        adjust(&mut command);
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start komunikator-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse::<SocketAddr>()
            .expect("address");
        let addr =
            if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
        let fingerprint = (!args.contains(&"--no-tls")).then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read fingerprint line");
            line.trim()
                .strip_prefix("TLS certificate SHA-256 fingerprint ")
                .expect("fingerprint line")
                .to_owned()
        });
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server { child, addr, log, fingerprint, own_state: own_state_dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A client that has set its nick.
    pub fn named(&self, nick: &str) -> Client {
        let mut c = self.client();
        c.send(&format!("name {nick}"));
        c.expect(&format!("ok name {nick}"));
        c.nick = nick.to_owned();
        c
    }

    pub fn threads(&self) -> usize {
        proc_status(self.pid(), "Threads:")
    }

    pub fn rss_kib(&self) -> usize {
        proc_status(self.pid(), "VmRSS:")
    }

    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0)
    }

    /// Waits until the thread and descriptor counts are back to `baseline`.
    pub fn settles_to(&self, baseline: (usize, usize)) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = (self.threads(), self.fds());
            if now == baseline {
                return;
            }
            assert!(Instant::now() < deadline, "threads/fds {now:?} did not return to {baseline:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.threads(), self.fds())
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill").args(["-s", signal, &self.pid().to_string()]).status().expect("kill");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit after {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.own_state {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn proc_status(pid: u32, key: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One thing received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Line(String),
    Media { header: String, payload: Vec<u8> },
}

impl Msg {
    pub fn line(&self) -> &str {
        match self {
            Msg::Line(l) => l,
            Msg::Media { header, .. } => header,
        }
    }
}

/// A protocol client over a real socket.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// This client's id, from `hello`.
    pub id: String,
    /// The nick it set, if any.
    pub nick: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects from a chosen loopback source address, such as 127.0.0.2.
    pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<Client> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect(&addr.into())?;
        Ok(Client::from_stream(socket.into()))
    }

    /// Connects with a small receive buffer, as a client behind a slow link
    /// has little data in flight; on loopback the kernel would otherwise
    /// buffer megabytes.
    pub fn connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> Client {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        socket.connect(&addr.into()).expect("connect");
        Client::from_stream(socket.into())
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).unwrap();
        let mut c = Client { stream, buf: Vec::new(), id: String::new(), nick: String::new() };
        let hello = c.recv();
        let id = hello
            .line()
            .strip_prefix("hello ")
            .and_then(|r| r.strip_suffix(" komunikator/1"))
            .unwrap_or_else(|| panic!("expected hello, got {hello:?}"))
            .to_owned();
        c.id = id;
        c
    }

    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a media frame with this payload.
    pub fn send_media(&mut self, kind: &str, key: bool, payload: &[u8]) {
        let mut out = format!("{kind} 1 {} {}\n", if key { "k" } else { "-" }, payload.len()).into_bytes();
        out.extend_from_slice(payload);
        self.send_bytes(&out);
    }

    /// The next message, or `None` if nothing arrives within `wait`.
    pub fn try_recv(&mut self, wait: Duration) -> Option<Msg> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(msg) = self.decode() {
                return Some(msg);
            }
            // Zero waits still look at what the socket already holds.
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    fn decode(&mut self) -> Option<Msg> {
        let dec = Decoder::new(1 << 16, 1 << 24);
        let (msg, consumed) = match dec.decode_server(&self.buf) {
            Ok(Status::Complete { item, consumed }) => {
                let msg = match item {
                    Decoded::Media { header, payload } => {
                        let mut h = Vec::new();
                        header.encode(&mut h);
                        Msg::Media {
                            header: String::from_utf8_lossy(&h).trim_end().to_owned(),
                            payload: payload.to_vec(),
                        }
                    }
                    _ => {
                        let end = self.buf.iter().position(|&b| b == b'\n').unwrap();
                        Msg::Line(String::from_utf8_lossy(&self.buf[..end]).into_owned())
                    }
                };
                (msg, consumed)
            }
            Ok(Status::Partial) => return None,
            Err(e) => panic!("server broke framing: {e}"),
        };
        self.buf.drain(..consumed);
        Some(msg)
    }

    /// The next message; panics after [`WAIT`].
    pub fn recv(&mut self) -> Msg {
        self.try_recv(WAIT).expect("timed out waiting for a message")
    }

    /// The next message that is not `presence`.
    pub fn recv_event(&mut self) -> Msg {
        loop {
            let msg = self.recv();
            if !msg.line().starts_with("presence ") {
                return msg;
            }
        }
    }

    /// Expects the next non-presence line to be exactly `line`.
    pub fn expect(&mut self, line: &str) {
        let got = self.recv_event();
        assert_eq!(got.line(), line, "client {}", self.id);
    }

    /// Expects the next non-presence line to start with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let got = self.recv_event();
        assert!(got.line().starts_with(prefix), "client {}: expected {prefix:?}, got {got:?}", self.id);
        got.line().to_owned()
    }

    /// Sends `ping` and returns everything received before the `pong`.
    pub fn sync(&mut self) -> Vec<Msg> {
        self.send("ping");
        let mut got = Vec::new();
        loop {
            let msg = self.recv();
            if msg.line() == "pong" {
                return got;
            }
            got.push(msg);
        }
    }

    /// Like [`Client::sync`], without presence lines.
    pub fn sync_events(&mut self) -> Vec<Msg> {
        self.sync().into_iter().filter(|m| !m.line().starts_with("presence ")).collect()
    }

    /// Waits for the server to close the connection; returns what came before.
    pub fn expect_closed(&mut self) -> Vec<Msg> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "connection was not closed; got {got:?}");
            if let Some(msg) = self.decode() {
                got.push(msg);
                continue;
            }
            self.stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return got,
            }
        }
    }

    /// Closes with a TCP reset, as a killed process with unread data would.
    pub fn reset(self) {
        socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO)).unwrap();
        drop(self);
    }
}

/// `caller` calls `callee` by nick; checks both sides of the ringing.
pub fn ring(caller: &mut Client, callee: &mut Client) {
    caller.send(&format!("connect {}", callee.nick));
    caller.expect(&format!("calling {}", callee.id));
    let nick = if caller.nick.is_empty() { "-" } else { caller.nick.as_str() };
    callee.expect(&format!("ask {} {nick}", caller.id));
}

/// Two named clients in a call: (caller, callee).
pub fn call_pair(server: &Server, a: &str, b: &str) -> (Client, Client) {
    let caller = server.named(a);
    let callee = server.named(b);
    call_between(caller, callee)
}

/// Names `callee` and puts the two in a call.
pub fn call_between(mut caller: Client, mut callee: Client) -> (Client, Client) {
    nick_of(&mut caller);
    nick_of(&mut callee);
    ring(&mut caller, &mut callee);
    callee.send("ask yes");
    caller.expect("ask yes");
    caller.expect(&format!("start {}", callee.id));
    callee.expect(&format!("start {}", caller.id));
    (caller, callee)
}
