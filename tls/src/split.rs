//! One rustls connection shared by a reading thread and a writing thread.
//!
//! Both Komunikator programs read a socket on one thread and write it on
//! another. rustls keeps one state machine per connection, so the two halves
//! share it behind a `Mutex`, and neither holds the lock while it waits on the
//! socket: the reader takes it only to feed received records and take out
//! plaintext, the writer only to encrypt.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustls::Connection;

struct Shared {
    conn: Mutex<Connection>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Completes the handshake on a blocking socket. Use a read timeout on
/// `socket` to bound how long a stalled peer can hold it.
///
/// # Errors
/// When the socket fails or times out, or the handshake fails.
pub fn handshake(conn: &mut Connection, socket: &mut (impl Read + Write)) -> io::Result<()> {
    while conn.is_handshaking() {
        conn.complete_io(socket)?;
    }
    // Anything the handshake left to send (TLS 1.3 session tickets).
    while conn.wants_write() {
        conn.write_tls(socket)?;
    }
    Ok(())
}

/// Splits an established connection into halves for two threads. Each half
/// gets its own handle on the socket (`try_clone`d by the caller).
pub fn split(conn: Connection, read_socket: TcpStream, write_socket: TcpStream) -> (TlsReader, TlsWriter) {
    let shared = Arc::new(Shared { conn: Mutex::new(conn) });
    (
        TlsReader {
            shared: Arc::clone(&shared),
            socket: read_socket,
            raw: vec![0; 17 * 1024],
            pending: 0,
            at: 0,
        },
        TlsWriter { shared, socket: write_socket, out: Vec::with_capacity(32 * 1024) },
    )
}

/// The reading half: plaintext out, records in.
pub struct TlsReader {
    shared: Arc<Shared>,
    socket: TcpStream,
    raw: Vec<u8>,
    /// Received ciphertext in `raw[at..pending]` not yet taken by rustls.
    pending: usize,
    at: usize,
}

impl TlsReader {
    /// The socket, for timeouts and shutdown.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Read for TlsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut conn = self.shared.lock();
                match conn.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.at < self.pending {
                    let mut slice = &self.raw[self.at..self.pending];
                    let taken = conn.read_tls(&mut slice)?;
                    self.at += taken;
                    conn.process_new_packets().map_err(io::Error::other)?;
                    if taken > 0 {
                        continue;
                    }
                }
            }
            // Nothing to decrypt: wait for the socket, without the lock.
            self.at = 0;
            self.pending = 0;
            let n = self.socket.read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending = n;
        }
    }
}

/// The writing half: plaintext in, records out.
pub struct TlsWriter {
    shared: Arc<Shared>,
    socket: TcpStream,
    out: Vec<u8>,
}

impl TlsWriter {
    /// The socket, for timeouts and shutdown.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    fn encrypt(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut conn = self.shared.lock();
        let mut taken = 0;
        for buf in bufs {
            let n = conn.writer().write(buf)?;
            taken += n;
            if n < buf.len() {
                break;
            }
        }
        self.out.clear();
        while conn.wants_write() {
            conn.write_tls(&mut self.out)?;
        }
        Ok(taken)
    }

    /// Sends `close_notify`, so the peer can tell a clean close from a cut.
    ///
    /// # Errors
    /// When the socket fails.
    pub fn close(&mut self) -> io::Result<()> {
        {
            let mut conn = self.shared.lock();
            conn.send_close_notify();
            self.out.clear();
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
        }
        self.socket.write_all(&self.out)
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.encrypt(bufs)?;
        // The lock is released: a slow peer blocks only this thread.
        self.socket.write_all(&self.out)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
