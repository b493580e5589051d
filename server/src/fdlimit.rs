//! Open descriptors: raising the soft limit at start, and a reserve
//! descriptor that lets the accept loop still answer `error full` when the
//! process has none left. Everything here runs on the main thread.

use std::fs::File;
use std::io;
use std::net::TcpListener;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the soft limit
/// before and after (equal when it already was at the hard limit).
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_nofile_limit() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit read just above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, limit.rlim_cur))
}

/// Whether `e` means the process or the system ran out of a resource
/// (descriptors, memory, threads) rather than a problem with one client.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EAGAIN)
    ) || e.kind() == io::ErrorKind::OutOfMemory
}

/// One descriptor kept open for the moment the process has no other: the
/// classic trick to accept a connection anyway, tell it `error full`, and
/// close it, instead of leaving it unanswered in the backlog.
pub struct Reserve {
    file: Option<File>,
}

impl Reserve {
    /// Opens the reserve descriptor (`/dev/null`).
    pub fn new() -> Reserve {
        Reserve { file: File::open("/dev/null").ok() }
    }

    /// After `accept` failed for lack of descriptors: frees the reserve,
    /// accepts one connection, answers `error full`, closes it, and takes
    /// the reserve back. Returns whether a connection was answered.
    pub fn refuse_one(&mut self, listener: &TcpListener) -> bool {
        if self.file.take().is_none() {
            // No reserve (it could not be reopened last time): try again later.
            self.file = File::open("/dev/null").ok();
            return false;
        }
        let answered = match listener.accept() {
            Ok((stream, id)) => {
                crate::log!(Warn, "{id}: refused: out of file descriptors");
                crate::listener::reject(&stream, "server full: out of file descriptors");
                true
            }
            Err(_) => false,
        };
        self.file = File::open("/dev/null").ok();
        answered
    }
}

impl Default for Reserve {
    fn default() -> Reserve {
        Reserve::new()
    }
}
