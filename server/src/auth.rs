//! The optional server password (`--password-file`). Checks wait for the
//! guessing budgets in [`throttle`](crate::throttle); nobody is locked out.
//! Any session thread may call [`Auth::check`].

use std::net::IpAddr;
use std::path::Path;

use crate::throttle::{Budgets, Throttle};

/// The answer to an `auth` attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right password.
    Ok,
    /// Wrong password.
    Failed,
    /// The connection went away (or the gate closed it) while waiting for its turn.
    Abandoned,
}

/// The password gate.
pub struct Auth {
    password: Option<Vec<u8>>,
    throttle: Throttle,
}

/// Why the password file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// It could not be read.
    #[error("cannot read the password file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a regular file (a FIFO, a device, a directory).
    #[error("the password file {0} is not a regular file")]
    NotRegular(String),
    /// It is larger than [`MAX_PASSWORD_FILE`].
    #[error("the password file {0} is larger than {MAX_PASSWORD_FILE} bytes")]
    TooLarge(String),
    /// Its first line is empty or has characters a line cannot carry.
    #[error(
        "the password file {0} must hold the password on its first line \
         (UTF-8, at most 512 bytes, no control characters)"
    )]
    Empty(String),
}

/// Largest password file accepted, in bytes. The password is one line of at
/// most 512 bytes; anything much larger is a mistake (or `/dev/zero`).
pub const MAX_PASSWORD_FILE: u64 = 4 << 10;

impl Auth {
    /// No password: every client is in at once.
    pub fn open() -> Auth {
        Auth { password: None, throttle: Throttle::new(Budgets::DEFAULT) }
    }

    /// The password on the first line of `path` (without the newline).
    ///
    /// # Errors
    /// When the file cannot be read or its first line is not a usable password.
    pub fn from_file(path: &Path) -> Result<Auth, AuthError> {
        let text = read_password_file(path)?;
        // Editors on Windows start UTF-8 files with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() || line.chars().any(char::is_control) || line.len() > 512 {
            return Err(AuthError::Empty(path.display().to_string()));
        }
        Ok(Auth { password: Some(line.as_bytes().to_vec()), throttle: Throttle::new(Budgets::DEFAULT) })
    }

    /// Whether clients must log in.
    pub fn required(&self) -> bool {
        self.password.is_some()
    }

    /// Checks an attempt from `ip`, once the guessing budgets allow it;
    /// `wanted` tells whether the connection is still there to answer.
    pub fn check(&self, ip: IpAddr, attempt: &str, wanted: &dyn Fn() -> bool) -> Verdict {
        let Some(password) = &self.password else { return Verdict::Ok };
        let Some(permit) = self.throttle.wait(ip, wanted) else { return Verdict::Abandoned };
        if constant_time_eq(password, attempt.as_bytes()) {
            self.throttle.refund(permit);
            Verdict::Ok
        } else {
            Verdict::Failed
        }
    }
}

/// Reads a regular file of at most [`MAX_PASSWORD_FILE`] bytes, without
/// blocking on a FIFO or reading a device forever.
fn read_password_file(path: &Path) -> Result<String, AuthError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let name = || path.display().to_string();
    let read_error = |source| AuthError::Read { path: name(), source };
    // Refuse anything but a regular file before opening it: opening a FIFO
    // for reading waits for a writer.
    if !std::fs::metadata(path).map_err(read_error)?.is_file() {
        return Err(AuthError::NotRegular(name()));
    }
    // O_NONBLOCK too, in case it was swapped for a FIFO meanwhile; checked again below.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(AuthError::NotRegular(name()));
    }
    if meta.len() > MAX_PASSWORD_FILE {
        return Err(AuthError::TooLarge(name()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PASSWORD_FILE + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_PASSWORD_FILE {
        return Err(AuthError::TooLarge(name()));
    }
    String::from_utf8(bytes).map_err(|_| AuthError::Empty(name()))
}

/// Compares without leaking, through timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_and_wrong() {
        let auth = Auth { password: Some(b"sekret".to_vec()), throttle: Throttle::new(Budgets::DEFAULT) };
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(auth.check(ip, "sekret", &|| true), Verdict::Ok);
        assert_eq!(auth.check(ip, "guess", &|| true), Verdict::Failed);
        assert_eq!(Auth::open().check(ip, "anything", &|| false), Verdict::Ok);
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
