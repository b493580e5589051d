//! Plain text and TLS on the same port, told apart by the first byte.
//!
//! Runs on the client's session thread, before anything else. A TLS client
//! speaks first (its ClientHello starts with 0x16); a plain-text client such
//! as `nc` waits for `hello`. So the session waits briefly for a first byte:
//! 0x16 means TLS, anything else (or silence past the grace period) means
//! plain text, which `--plaintext deny` refuses with one error line.
//!
//! The result is a reading half for the session thread and a writing half
//! for the writer thread; inside TLS the protocol is exactly the same.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::{ErrorCode, ServerMsg};
use komunikator_tls::split::{self, TlsReader, TlsWriter};
use komunikator_tls::{HANDSHAKE_BYTE, server::Identity};
use rustls::{Connection, ServerConnection};

use crate::config::Config;

/// The reading half of a client connection.
pub enum ReadHalf {
    /// Plain text.
    Plain(TcpStream),
    /// Inside TLS.
    Tls(TlsReader),
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(s) => s.read(buf),
            ReadHalf::Tls(t) => t.read(buf),
        }
    }
}

/// The writing half of a client connection.
pub enum WriteHalf {
    /// Plain text.
    Plain(TcpStream),
    /// Inside TLS.
    Tls(TlsWriter),
}

impl WriteHalf {
    /// Ends the stream cleanly: `close_notify` inside TLS.
    pub fn close(&mut self) {
        if let WriteHalf::Tls(t) = self {
            let _ = t.close();
        }
    }

    /// The socket underneath, for shutdown.
    pub fn socket(&self) -> &TcpStream {
        match self {
            WriteHalf::Plain(s) => s,
            WriteHalf::Tls(t) => t.socket(),
        }
    }

    /// Whether bytes written to the raw socket reach the client unchanged,
    /// which allows writing frames straight to the socket.
    pub fn is_plain(&self) -> bool {
        matches!(self, WriteHalf::Plain(_))
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Plain(s) => s.write(buf),
            WriteHalf::Tls(t) => t.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            WriteHalf::Plain(s) => s.write_vectored(bufs),
            WriteHalf::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a connection got no session.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A plain-text client on a server that requires TLS; it was told so.
    #[error("plain text refused (--plaintext deny)")]
    PlaintextDenied,
    /// The TLS handshake failed or stalled.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The socket failed before anything was said.
    #[error("{0}")]
    Io(io::Error),
}

/// Decides plain text or TLS for a new connection, and completes the TLS
/// handshake within `--io-timeout`.
///
/// # Errors
/// [`Refused`] when the connection must be closed.
pub fn establish(
    stream: &TcpStream,
    config: &Config,
    tls: Option<&Identity>,
) -> Result<(ReadHalf, WriteHalf), Refused> {
    let halves = || -> Result<(TcpStream, TcpStream), Refused> {
        Ok((stream.try_clone().map_err(Refused::Io)?, stream.try_clone().map_err(Refused::Io)?))
    };
    let Some(identity) = tls else {
        let (r, w) = halves()?;
        return Ok((ReadHalf::Plain(r), WriteHalf::Plain(w)));
    };
    let plaintext_allowed = config.plaintext_allowed();
    let wait = if plaintext_allowed {
        Duration::from_millis(config.plaintext_grace_ms.max(1))
    } else {
        config.io_timeout()
    };
    let first = first_byte(stream, wait).map_err(Refused::Io)?;
    if first == Some(HANDSHAKE_BYTE) {
        return handshake(stream, config, identity);
    }
    if !plaintext_allowed {
        let text = "this server accepts only TLS connections; use the Komunikator client or openssl s_client";
        let line = ServerMsg::Error { code: ErrorCode::TlsRequired, text: Some(text) }.to_line();
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = (&*stream).write_all(&line);
        return Err(Refused::PlaintextDenied);
    }
    let (r, w) = halves()?;
    Ok((ReadHalf::Plain(r), WriteHalf::Plain(w)))
}

/// The first byte the client sent, without consuming it; `None` if it sent
/// nothing within `wait`.
fn first_byte(stream: &TcpStream, wait: Duration) -> io::Result<Option<u8>> {
    stream.set_read_timeout(Some(wait))?;
    let mut byte = [0u8; 1];
    let result = loop {
        match stream.peek(&mut byte) {
            Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => break Ok(Some(byte[0])),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                break Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    stream.set_read_timeout(None)?;
    result
}

fn handshake(
    stream: &TcpStream,
    config: &Config,
    identity: &Identity,
) -> Result<(ReadHalf, WriteHalf), Refused> {
    let conn = ServerConnection::new(Arc::clone(&identity.config))
        .map_err(|e| Refused::Handshake(io::Error::other(e)))?;
    let mut conn = Connection::from(conn);
    // The whole handshake, not each read, must finish within the deadline,
    // so a peer trickling bytes cannot hold the thread longer.
    let mut socket = Deadline { stream, until: Instant::now() + config.io_timeout() };
    split::handshake(&mut conn, &mut socket).map_err(Refused::Handshake)?;
    stream.set_read_timeout(None).map_err(Refused::Io)?;
    stream.set_write_timeout(Some(config.dead_peer_timeout())).map_err(Refused::Io)?;
    let (r, w) = split::split(
        conn,
        stream.try_clone().map_err(Refused::Io)?,
        stream.try_clone().map_err(Refused::Io)?,
    );
    Ok((ReadHalf::Tls(r), WriteHalf::Tls(w)))
}

/// A socket whose reads and writes fail once `until` has passed.
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Deadline<'_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() { Err(io::ErrorKind::TimedOut.into()) } else { Ok(left) }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        (&*self.stream).read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        (&*self.stream).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
