//! Reference relays for the throughput ceiling: the least any relay must do
//! on this machine, measured in the same run as the server.
//!
//! Each one runs on its own thread inside the bench, between two loopback
//! connections, and moves bytes one way with no protocol, no queue and no
//! policy: what a relay process costs before it does anything useful. The
//! server's throughput is then judged against these as well as against a
//! direct connection.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;

use crate::net::{self, Endpoint};

/// Which minimal relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// read(2) into a 1 MiB buffer, write(2) it out: socat's way.
    Copy,
    /// splice(2) from the socket into a 1 MiB pipe and on into the other socket.
    Splice,
}

impl Reference {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Reference::Copy => "Minimal copy relay (one thread, 1 MiB buffer, no protocol)",
            Reference::Splice => "Minimal splice relay (one thread, 1 MiB pipe, no protocol)",
        }
    }
}

/// A reference relay's thread; it ends with the sender's side.
pub type Relay = JoinHandle<io::Result<()>>;

/// A sender and a receiver joined through a `kind` relay thread. The relay
/// ends when the sender's side closes.
///
/// # Errors
/// When the loopback connections or the thread cannot be made.
pub fn pair(kind: Reference) -> anyhow::Result<((Endpoint, Endpoint), Relay)> {
    let mut pairs = net::direct_pairs(2, None)?;
    let (into_relay, receiver) = pairs.pop().expect("two pairs");
    let (sender, from_sender) = pairs.pop().expect("two pairs");
    let (from, to) = (from_sender.stream, into_relay.stream);
    let relay = std::thread::Builder::new().name(format!("{kind:?} relay")).spawn(move || match kind {
        Reference::Copy => copy(from, to),
        Reference::Splice => splice(&from, &to),
    })?;
    Ok(((sender, receiver), relay))
}

fn copy(mut from: TcpStream, mut to: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

fn splice(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are open descriptors owned here.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    };
    const PIPE: usize = 1 << 20;
    // SAFETY: a plain fcntl on a descriptor we own; the default size stays on failure.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE as libc::c_int) };
    let step = |a: i32, b: i32, len: usize| -> io::Result<usize> {
        // SAFETY: null offsets are valid for sockets and pipes; no memory is passed.
        let n = unsafe {
            libc::splice(a, std::ptr::null_mut(), b, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE)
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    };
    loop {
        let mut held = match step(from.as_raw_fd(), w.as_raw_fd(), PIPE) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while held > 0 {
            match step(r.as_raw_fd(), to.as_raw_fd(), held) {
                Ok(n) => held -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
