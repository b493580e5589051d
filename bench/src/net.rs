//! Connections the bench opens: clients of the server paired into calls, and
//! direct loopback pairs (the baseline, same framing, no server).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::wire::{Event, Parser};

/// One end of a call: a socket and the parser of what it receives.
pub struct Endpoint {
    /// The socket (blocking until an engine takes it over).
    pub stream: TcpStream,
    /// Parser state, carried over from the setup into the engine.
    pub parser: Parser,
    /// The id the server gave this client (empty for direct pairs).
    pub id: String,
    /// Lines read during the setup and not yet looked at.
    pending: VecDeque<String>,
}

impl Endpoint {
    fn new(stream: TcpStream) -> Endpoint {
        Endpoint { stream, parser: Parser::default(), id: String::new(), pending: VecDeque::new() }
    }

    /// Sends one control line.
    ///
    /// # Errors
    /// When the socket fails.
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        self.stream.write_all(format!("{line}\n").as_bytes()).context("sending a line")
    }

    /// Reads until a line starting with `prefix` arrives; other lines are skipped.
    ///
    /// # Errors
    /// On timeout (10 s), EOF or an `error` line.
    pub fn wait_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        wait_line(&mut &self.stream, &self.stream, &mut self.parser, &mut self.pending, prefix)
    }
}

/// Opens a client of the server and reads its `hello`.
///
/// # Errors
/// When the server refuses or does not greet.
pub fn client(addr: SocketAddr, rcvbuf: Option<usize>) -> anyhow::Result<Endpoint> {
    let stream = connect(addr, rcvbuf)?;
    let mut ep = Endpoint::new(stream);
    let hello = ep.wait_line("hello ")?;
    ep.id = hello.split(' ').nth(1).unwrap_or_default().to_owned();
    Ok(ep)
}

fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> anyhow::Result<TcpStream> {
    let stream = match rcvbuf {
        None => TcpStream::connect(addr).context("connecting")?,
        Some(size) => {
            // The receive buffer must be set before connecting to limit the window.
            // SAFETY: plain socket system calls on a descriptor we own.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            anyhow::ensure!(fd >= 0, "socket: {}", io::Error::last_os_error());
            // SAFETY: fd is a fresh socket we own.
            let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            set_int(&stream, libc::SOL_SOCKET, libc::SO_RCVBUF, size as i32)?;
            let SocketAddr::V4(v4) = addr else { bail!("IPv4 only") };
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sa is a valid sockaddr_in for the call's duration.
            let rc = unsafe {
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            anyhow::ensure!(rc == 0, "connect: {}", io::Error::last_os_error());
            stream
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sets an integer socket option.
///
/// # Errors
/// When the kernel refuses it.
pub fn set_int(stream: &TcpStream, level: i32, name: i32, value: i32) -> anyhow::Result<()> {
    // SAFETY: value lives for the call; the length matches.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    anyhow::ensure!(rc == 0, "setsockopt: {}", io::Error::last_os_error());
    Ok(())
}

/// Opens `n` calls through the server: two clients each, named, connected,
/// accepted and started. `rcvbuf` applies to the callee (the B side).
///
/// # Errors
/// When any step of any call fails.
pub fn calls(addr: SocketAddr, n: usize, rcvbuf: Option<usize>) -> anyhow::Result<Vec<(Endpoint, Endpoint)>> {
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let a = client(addr, None).with_context(|| format!("call {i}: caller"))?;
        let b = client(addr, rcvbuf).with_context(|| format!("call {i}: callee"))?;
        pairs.push((a, b));
    }
    for (i, (a, b)) in pairs.iter_mut().enumerate() {
        pair_up(a, b, &i.to_string())?;
    }
    Ok(pairs)
}

/// A client that speaks control lines while a call is set up.
pub trait Control {
    /// Sends one control line.
    ///
    /// # Errors
    /// When the connection fails.
    fn send_line(&mut self, line: &str) -> anyhow::Result<()>;
    /// Waits for a line starting with `prefix`.
    ///
    /// # Errors
    /// As [`wait_line`].
    fn wait_line(&mut self, prefix: &str) -> anyhow::Result<String>;
    /// The id the server gave this client.
    fn id(&self) -> &str;
}

impl Control for Endpoint {
    fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        Endpoint::send_line(self, line)
    }

    fn wait_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        Endpoint::wait_line(self, prefix)
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// Names the two clients `a{tag}` and `b{tag}` and puts them in a call, `a` calling.
///
/// # Errors
/// When any step of the call setup fails.
pub fn pair_up(a: &mut impl Control, b: &mut impl Control, tag: &str) -> anyhow::Result<()> {
    a.send_line(&format!("name a{tag}"))?;
    a.wait_line("ok name")?;
    b.send_line(&format!("name b{tag}"))?;
    b.wait_line("ok name")?;
    a.send_line(&format!("connect {}", b.id()))?;
    b.wait_line("ask ")?;
    b.send_line("ask yes")?;
    a.wait_line("start ")?;
    b.wait_line("start ")?;
    Ok(())
}

/// Opens `n` group calls of `size` clients each through the server: every
/// client turns on group calls, the first calls the second, then invites
/// the rest one by one.
///
/// # Errors
/// When any step of any call fails.
pub fn rooms(addr: SocketAddr, n: usize, size: usize) -> anyhow::Result<Vec<Vec<Endpoint>>> {
    anyhow::ensure!(size >= 2, "a call has at least two parties");
    let mut rooms = Vec::with_capacity(n);
    for r in 0..n {
        let mut room = Vec::with_capacity(size);
        for p in 0..size {
            let mut ep = client(addr, None).with_context(|| format!("room {r}: party {p}"))?;
            ep.send_line("features group")?;
            ep.wait_line("ok features group")?;
            room.push(ep);
        }
        let (first, rest) = room.split_at_mut(1);
        pair_up(&mut first[0], &mut rest[0], &format!("r{r}"))?;
        for (p, invitee) in rest.iter_mut().enumerate().skip(1) {
            invitee.send_line(&format!("name p{r}x{p}"))?;
            invitee.wait_line("ok name")?;
            first[0].send_line(&format!("invite {}", invitee.id))?;
            first[0].wait_line("inviting ")?;
            invitee.wait_line("ask ")?;
            invitee.send_line("ask yes")?;
            invitee.wait_line("start ")?;
            let joined = format!("joined {}", invitee.id);
            first[0].wait_line(&joined)?;
        }
        rooms.push(room);
    }
    // Joining links every party under the server's lock: once the first
    // party has read the last `joined`, media from anyone reaches everyone.
    Ok(rooms)
}

/// Opens `n` direct loopback connections: the baseline without a server.
///
/// # Errors
/// When the sockets cannot be made.
pub fn direct_pairs(n: usize, rcvbuf: Option<usize>) -> anyhow::Result<Vec<(Endpoint, Endpoint)>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let a = TcpStream::connect(addr)?;
        let (b, _) = listener.accept()?;
        a.set_nodelay(true)?;
        b.set_nodelay(true)?;
        if let Some(size) = rcvbuf {
            // Accepted sockets take the option too; the window shrinks as the buffer does.
            set_int(&b, libc::SOL_SOCKET, libc::SO_RCVBUF, size as i32)?;
        }
        pairs.push((Endpoint::new(a), Endpoint::new(b)));
    }
    Ok(pairs)
}

/// Writes all of `buf` to a socket that may be non-blocking, waiting for room
/// with poll. Gives up (Ok) when `stop` is set.
///
/// # Errors
/// When the socket fails.
pub fn write_all(stream: &mut TcpStream, mut buf: &[u8], stop: &AtomicBool) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                poll_one(stream.as_raw_fd(), libc::POLLOUT, 100);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits up to `ms` for `events` on `fd`.
pub fn poll_one(fd: i32, events: i16, ms: i32) {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd for the call's duration.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Reads `source` until a line starting with `prefix` arrives; lines before it
/// are skipped, and kept in `pending` when several arrive at once. `socket` is
/// the connection underneath, for the read timeout. Shared by the plain-text
/// endpoints and the TLS peers.
///
/// # Errors
/// On timeout (10 s), EOF or an `error` line.
pub fn wait_line(
    source: &mut impl Read,
    socket: &TcpStream,
    parser: &mut Parser,
    pending: &mut VecDeque<String>,
    prefix: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 16384];
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        while let Some(line) = pending.pop_front() {
            if line.starts_with(prefix) {
                return Ok(line);
            }
            if line.starts_with("error") {
                bail!("waiting for {prefix:?}: got {line:?}");
            }
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {prefix:?}");
        }
        let n = match source.read(&mut buf) {
            Ok(0) => bail!("connection closed while waiting for {prefix:?}"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e).context("reading"),
        };
        parser.feed(&buf[..n], |e| {
            if let Event::Line(l) = e {
                pending.push_back(l);
            }
        })?;
    }
}
