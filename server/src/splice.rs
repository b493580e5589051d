//! Moving a large frame's payload between two plain-text sockets without
//! copying it through the server's memory: splice(2) from the sender's socket
//! into a pipe, and from the pipe into the receiver's socket.
//!
//! A relay that reads each byte into its own buffer and writes it out again
//! does twice the copying of a direct connection, which caps it near half
//! of direct throughput on a small machine (see BENCHMARKS.md). Splicing moves
//! references to the kernel's pages instead.
//!
//! Each session that relays large frames owns one [`Pipe`], created the first
//! time one is needed and kept until the session ends. Only the session's own
//! thread uses it. The decision to splice, and the fallback when the receiver
//! cannot take the bytes, live in [`crate::relay`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Payloads at least this large are spliced; smaller ones are copied, which
/// costs fewer system calls.
pub const SPLICE_MIN: usize = 64 << 10;

/// The pipe size asked for: a 1 MiB frame moves in four rounds.
const PIPE_SIZE: libc::c_int = 256 << 10;

/// A pipe used as the in-kernel buffer between two sockets.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes the pipe holds now.
    held: usize,
    /// What the pipe can hold.
    cap: usize,
}

impl Pipe {
    /// A new non-blocking pipe, as large as the system lets it be up to 256 KiB.
    ///
    /// # Errors
    /// When the process is out of descriptors or pipe memory.
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Best effort: a user over the pipe memory limit keeps the default size.
        // SAFETY: plain fcntl calls on a descriptor we own.
        let cap = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        if cap <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe { read, write, held: 0, cap: cap as usize })
    }

    /// Bytes the pipe holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves up to `max` bytes from `socket` into the pipe (as much as fits).
    /// Waits for data as a read would (the socket's read timeout applies).
    /// `Ok(0)` means the connection is closed.
    ///
    /// # Errors
    /// As splice(2): `WouldBlock` or `TimedOut` when the read timeout passed.
    pub fn fill_from(&mut self, socket: RawFd, max: usize) -> io::Result<usize> {
        let want = max.min(self.cap - self.held);
        let n = splice(socket, self.write.as_raw_fd(), want, libc::SPLICE_F_MOVE)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds into `socket`, as far as the socket takes it
    /// before its write timeout. `more` says that more of the frame follows.
    ///
    /// # Errors
    /// As splice(2): `WouldBlock` when the socket took nothing in time;
    /// `BrokenPipe` and the like when the connection is gone.
    pub fn drain_to(&mut self, socket: RawFd, more: bool) -> io::Result<usize> {
        let flags = libc::SPLICE_F_MOVE | if more { libc::SPLICE_F_MORE } else { 0 };
        let n = splice(self.read.as_raw_fd(), socket, self.held, flags)?;
        self.held -= n;
        Ok(n)
    }

    /// Appends what the pipe holds to `out`, emptying the pipe.
    ///
    /// # Errors
    /// When reading the pipe fails (it should not: the bytes are there).
    pub fn take_into(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        out.reserve(self.held);
        while self.held > 0 {
            let spare = out.spare_capacity_mut();
            let want = self.held.min(spare.len());
            // SAFETY: `spare` is writable memory of at least `want` bytes.
            let n = unsafe { libc::read(self.read.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            // SAFETY: read(2) initialised the first `n` spare bytes.
            unsafe { out.set_len(out.len() + n as usize) };
            self.held -= n as usize;
        }
        Ok(())
    }
}

/// Bytes waiting in `socket`'s receive queue (FIONREAD); 0 when unknown.
pub fn readable(socket: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let rc = unsafe { libc::ioctl(socket, libc::FIONREAD, &mut n) };
    if rc == 0 { n.max(0) as usize } else { 0 }
}

fn splice(from: RawFd, to: RawFd, len: usize, flags: libc::c_uint) -> io::Result<usize> {
    loop {
        // SAFETY: null offsets are allowed for pipes and sockets; no memory is passed.
        let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn moves_bytes_between_sockets_and_hands_back_the_rest() {
        let (mut src, src_peer) = pair();
        let (dst, mut dst_peer) = pair();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        src.write_all(&data).unwrap();
        let mut pipe = Pipe::new().unwrap();
        assert!(pipe.cap >= 64 << 10);
        let mut moved = 0;
        while moved < 200_000 {
            let n = pipe.fill_from(src_peer.as_raw_fd(), 200_000 - moved).unwrap();
            assert!(n > 0);
            moved += pipe.drain_to(dst.as_raw_fd(), true).unwrap();
            assert_eq!(pipe.held(), 0);
        }
        // What stays in the pipe can be taken back into memory.
        let n = pipe.fill_from(src_peer.as_raw_fd(), 100_000).unwrap();
        let mut rest = Vec::new();
        pipe.take_into(&mut rest).unwrap();
        assert_eq!(rest[..], data[200_000..200_000 + n]);
        let mut got = vec![0; 200_000];
        dst_peer.read_exact(&mut got).unwrap();
        assert_eq!(got[..], data[..200_000]);
        assert_eq!(readable(src_peer.as_raw_fd()), 100_000 - n);
    }
}
