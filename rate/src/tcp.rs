//! `TCP_INFO` and `TCP_NOTSENT_LOWAT` on a connected socket. Called by
//! whichever thread owns the socket's writing side; never blocks.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// What the kernel says about a TCP socket at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Bytes the receiver has acknowledged since the connection started.
    pub acked: u64,
    /// Bytes written to the socket and not yet sent.
    pub notsent: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Smoothed round-trip time, in microseconds (0 before the first ACK).
    pub rtt_us: u32,
}

impl Sample {
    /// Nothing unsent and nothing in flight: the far end has everything.
    pub fn idle(&self) -> bool {
        self.notsent == 0 && self.unacked == 0
    }
}

/// Reads `TCP_INFO` of `socket`. Never blocks.
///
/// # Errors
/// When `getsockopt` fails (not a TCP socket, or closed).
pub fn sample(socket: &impl AsRawFd) -> io::Result<Sample> {
    // SAFETY: tcp_info is plain old data; zeroes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `info`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Sample {
        at: Instant::now(),
        acked: info.tcpi_bytes_acked,
        notsent: info.tcpi_notsent_bytes,
        unacked: info.tcpi_unacked,
        rtt_us: info.tcpi_rtt,
    })
}

/// Sets `TCP_NOTSENT_LOWAT`: the socket counts as writable, and a blocking
/// write proceeds, only while fewer than `bytes` are written and unsent. So
/// the kernel never holds much more than one frame that has not started on
/// the wire, and what waits, waits in the sender's own queue, where audio
/// can overtake it.
///
/// # Errors
/// When `setsockopt` fails.
pub fn set_notsent_lowat(socket: &impl AsRawFd, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;

    #[test]
    fn sampling_a_real_socket_works() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _b = listener.accept().unwrap();
        set_notsent_lowat(&a, 16 << 10).unwrap();
        let before = sample(&a).unwrap();
        a.write_all(&[0; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let after = sample(&a).unwrap();
        assert_eq!((after.acked - before.acked, after.notsent, after.unacked), (1000, 0, 0));
        assert!(after.idle());
    }

    #[test]
    fn a_listener_is_not_a_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // TCP_INFO works on a listening socket, but tells nothing sent.
        let s = sample(&listener).unwrap();
        assert_eq!((s.acked, s.notsent), (0, 0));
    }
}
