//! Test support: the real `komunikator-server` binary on 127.0.0.1, port 0,
//! and a line-oriented test client speaking the protocol over real TCP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use komunikator_protocol::{Decoded, Decoder, Status};

pub mod broker;

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
    /// and a private state directory) and waits for `listening on`. Unless
    /// `args` set one of the ring limits (`--rings-per-*`), they are lifted:
    /// every test client rings from 127.0.0.1, many of them the same callee.
    pub fn start_exact(args: &[&str]) -> Server {
        Server::start_adjusted(args, |_| {})
    }

    /// Like [`Server::start_exact`], with `adjust` applied to the command
    /// first (for example a `pre_exec` that lowers a resource limit).
    pub fn start_adjusted(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let bind: &[&str] = if args.contains(&"--bind") { &[] } else { &["--bind", "127.0.0.1"] };
        let rings: &[&str] = if args.iter().any(|a| a.starts_with("--rings-per")) {
            &[]
        } else {
            &["--rings-per-pair", "0", "--rings-per-callee", "0"]
        };
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
        command.args(bind).args(rings).args(["--port", "0"]).args(own_state).args(args);
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

    /// Waits until the server's log (read by another thread, so it may lag
    /// behind the replies a test has already read) contains `needle`;
    /// returns the log. Panics with the log after [`WAIT`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "the server never logged {needle:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// A line the server may send at any moment, unasked: `presence`, and
    /// `rate` whenever a receiver falls behind (a loaded test machine makes
    /// any test receiver slow now and then; in the `from` envelope for a
    /// group-capable client). Tests of other things skip them.
    pub fn is_notice(&self) -> bool {
        let line = self.line();
        let bare = match line.strip_prefix("from ") {
            Some(rest) => rest.split_once(' ').map_or(rest, |(_, l)| l),
            None => line,
        };
        line.starts_with("presence ") || bare.starts_with("rate ")
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
    /// Held for each write, so a [`Streamer`] never splits a command.
    write_lock: Arc<Mutex<()>>,
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
        let mut c = Client {
            stream,
            buf: Vec::new(),
            id: String::new(),
            nick: String::new(),
            write_lock: Arc::new(Mutex::new(())),
        };
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
        let _held = self.write_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.stream.write_all(bytes).expect("send");
    }

    /// Starts sending `kind` frames with `payload` flat out from another
    /// thread, on this client's connection, until the streamer is dropped.
    /// Commands sent meanwhile go between whole frames.
    pub fn stream(&self, kind: &str, payload: &[u8]) -> Streamer {
        let mut frame = format!("{kind} 1 k {}\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        let mut stream = self.stream.try_clone().expect("clone stream");
        let lock = Arc::clone(&self.write_lock);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&sent);
        let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pause = Arc::clone(&paused);
        let thread = std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !stopped.load(Ordering::Relaxed) {
                if pause.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let _held = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if stream.write_all(&frame).is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Streamer { stop, sent, paused, thread: Some(thread) }
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
                // The line as received (a media header with its envelope, if any).
                let end = self.buf.iter().position(|&b| b == b'\n').unwrap();
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let msg = match item {
                    Decoded::Media { payload, .. } => Msg::Media { header: line, payload: payload.to_vec() },
                    _ => Msg::Line(line),
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

    /// The next message that is not a notice ([`Msg::is_notice`]).
    pub fn recv_event(&mut self) -> Msg {
        loop {
            let msg = self.recv();
            if !msg.is_notice() {
                return msg;
            }
        }
    }

    /// Expects the next line that is not a notice to be exactly `line`.
    pub fn expect(&mut self, line: &str) {
        let got = self.recv_event();
        assert_eq!(got.line(), line, "client {}", self.id);
    }

    /// Expects the next line that is not a notice to start with `prefix`; returns it.
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

    /// Like [`Client::sync`], without notices ([`Msg::is_notice`]).
    pub fn sync_events(&mut self) -> Vec<Msg> {
        self.sync().into_iter().filter(|m| !m.is_notice()).collect()
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

/// A thread sending media flat out on a client's connection; see [`Client::stream`].
pub struct Streamer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
    paused: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Streamer {
    /// Frames written so far.
    pub fn sent(&self) -> usize {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pauses (`true`) or resumes sending, between whole frames.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

/// A call in which the caller (a small receive buffer) reads nothing, and
/// the callee's video has filled what the kernel holds for it and then the
/// server's queue: control lines for the caller now wait in that queue.
/// (caller, callee).
pub fn call_with_stalled_reader(server: &Server) -> (Client, Client) {
    let caller = Client::connect_small_rcvbuf(server.addr, 4096);
    let (caller, mut callee) = call_between(caller, server.named("bob"));
    for _ in 0..40 {
        callee.send_media("video", true, &[7u8; 64 << 10]);
    }
    (caller, callee)
}

/// A reader's speed limit: a token bucket of `bytes_per_s` with bursts of
/// up to `burst` bytes, as a client behind a slow link reads.
pub struct Throttle {
    bytes_per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    pub fn new(bytes_per_s: f64, burst: usize) -> Throttle {
        Throttle { bytes_per_s, burst: burst as f64, tokens: 0.0, last: Instant::now() }
    }

    /// How much may be read now, or `None` after sleeping a little when too
    /// little (an eighth of the burst) may.
    pub fn allowance(&mut self) -> Option<usize> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.bytes_per_s).min(self.burst);
        self.last = now;
        if self.tokens < self.burst / 8.0 {
            std::thread::sleep(Duration::from_millis(2));
            return None;
        }
        Some(self.tokens as usize)
    }

    /// Counts `n` bytes read.
    pub fn took(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

/// Reads and discards what `stream` receives until `until`: at most
/// `bytes_per_s` (with bursts of 4 KiB), or as fast as it comes for `None`.
/// Returns how many bytes it read.
pub fn drain(stream: &mut TcpStream, bytes_per_s: Option<f64>, until: Instant) -> usize {
    stream.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut chunk = vec![0u8; 64 << 10];
    let mut throttle = bytes_per_s.map(|rate| Throttle::new(rate, 4096));
    let mut total = 0;
    while Instant::now() < until {
        let want = match throttle.as_mut().map(Throttle::allowance) {
            Some(None) => continue,
            Some(Some(n)) => n.min(chunk.len()),
            None => chunk.len(),
        };
        match stream.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(t) = throttle.as_mut() {
                    t.took(n);
                }
                total += n;
            }
            Err(_) => {}
        }
    }
    total
}

/// Sets its flag when dropped, also by a failed assertion, so the threads
/// of a scope that watch it end and the test fails instead of hanging.
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends about 2 Mbit/s until `stop`: every 20 ms a 5 KB video frame (a 15 KB
/// keyframe every 25th) and a 100-byte audio packet.
pub fn send_media(mut stream: TcpStream, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = i % 25 == 0;
        let len = if key { 15_000 } else { 5_000 };
        let mut out = format!("video {i} {} {len}\n", if key { "k" } else { "-" }).into_bytes();
        out.resize(out.len() + len, 0x5a);
        out.extend_from_slice(format!("audio {i} k 100\n").as_bytes());
        out.resize(out.len() + 100, 0xa5);
        if stream.write_all(&out).is_err() {
            return;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `rate` lines `client` receives until `until`, with when they came.
pub fn rates_until(client: &mut Client, t0: Instant, until: Instant) -> Vec<(Duration, String)> {
    let mut got = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(Msg::Line(line)) = client.try_recv(left) {
            if line.starts_with("rate") {
                got.push((t0.elapsed(), line));
            }
        }
    }
    got
}
