//! One client's session: `handle_client`, run on the client's own thread.
//!
//! The thread reads the socket, splits it into lines with the protocol crate,
//! executes commands through the registry and hands media frames to
//! [`handle_connection`](crate::relay::handle_connection). It never writes to
//! a socket: everything it says goes through outboxes.
//!
//! Deadlines: between messages a client may stay silent for as long as it
//! likes (TCP keepalive finds dead peers). Once a line or frame has started,
//! it must complete within `--io-timeout`, or the connection is closed with
//! `error timeout`. That ends slowloris-style connections.

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::{Command, ErrorCode, FramingError, ParseError, Status, next_line};

use crate::auth::Verdict;
use crate::config::Config;
use crate::gate::{Fate, Pending};
use crate::listener::Shared;
use crate::registry::Conn;
use crate::splice::Pipe;
use crate::transport::ReadHalf;

const READ_CHUNK: usize = 8 << 10;
/// How long a closing connection is drained, so the client reads our last
/// error line instead of a TCP reset.
const LINGER: Duration = Duration::from_secs(2);

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    /// The client closed the connection.
    Eof,
    /// A started line or frame did not complete in time.
    Timeout,
    /// The client broke the framing; the error line has been queued.
    Fatal(ErrorCode),
    /// The socket failed (reset, shut down by the server, dead peer).
    Io(io::Error),
}

/// The buffered reading side of a client socket, with the item deadline.
pub struct Reader {
    /// The socket, for timeouts only: bytes come from `source`.
    stream: TcpStream,
    source: ReadHalf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    item_started: Option<Instant>,
    io_timeout: Duration,
    read_timeout: Option<Duration>,
    /// For splicing large payloads (plain text only), made when first needed.
    pipe: Option<Pipe>,
}

impl Reader {
    fn new(stream: TcpStream, source: ReadHalf, io_timeout: Duration) -> Reader {
        Reader {
            stream,
            source,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            item_started: None,
            io_timeout,
            read_timeout: None,
            pipe: None,
        }
    }

    /// The buffered, unconsumed bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
    }

    /// Marks the current item complete: the next one's deadline starts when it does.
    pub fn item_done(&mut self) {
        self.item_started = if self.start == self.end { None } else { Some(Instant::now()) };
    }

    /// Reads into `out` from the socket, waiting at most until the item deadline.
    ///
    /// # Errors
    /// [`End::Eof`], [`End::Timeout`] or [`End::Io`].
    pub fn read_into(&mut self, out: &mut [u8]) -> Result<usize, End> {
        self.before_deadline(|r| r.source.read(out))
    }

    /// Retries `read` (a read from the socket, under its read timeout) until
    /// it gives bytes, fails, or the item deadline passes. `Ok(0)` is EOF.
    fn before_deadline(
        &mut self,
        mut read: impl FnMut(&mut Reader) -> io::Result<usize>,
    ) -> Result<usize, End> {
        loop {
            let started = *self.item_started.get_or_insert_with(Instant::now);
            let left = self.io_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.set_read_timeout(Some(left)).map_err(End::Io)?;
            match read(self) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Io(e)),
            }
        }
    }

    /// Whether the next `len` payload bytes can be spliced: the connection
    /// is plain text, they have all arrived (so splicing them cannot wait on
    /// the sender while the receiver's socket is claimed), and a pipe exists.
    pub fn splice_ready(&mut self, len: usize) -> bool {
        if !matches!(self.source, ReadHalf::Plain(_)) {
            return false;
        }
        let buffered = self.end - self.start;
        if buffered + crate::splice::readable(self.stream.as_raw_fd()) < len {
            return false;
        }
        if self.pipe.is_none() {
            self.pipe = Pipe::new().map_err(|e| crate::log!(Debug, "no pipe for splicing: {e}")).ok();
        }
        self.pipe.is_some()
    }

    /// Closes the pipe, whatever it holds; the next splice makes a new one.
    pub fn drop_pipe(&mut self) {
        self.pipe = None;
    }

    /// The pipe made by [`Reader::splice_ready`].
    pub fn pipe(&mut self) -> Option<&mut Pipe> {
        self.pipe.as_mut()
    }

    /// Splices up to `max` payload bytes from the socket into the pipe, after
    /// the buffered ones are used up, waiting at most until the item deadline.
    ///
    /// # Errors
    /// [`End::Eof`], [`End::Timeout`] or [`End::Io`]; `Io` too without a pipe.
    pub fn splice_into(&mut self, max: usize) -> Result<usize, End> {
        debug_assert_eq!(self.start, self.end, "buffered bytes go first");
        let fd = self.stream.as_raw_fd();
        self.before_deadline(|r| match r.pipe.as_mut() {
            Some(pipe) => pipe.fill_from(fd, max),
            None => Err(io::ErrorKind::Unsupported.into()),
        })
    }

    /// Reads more bytes into the buffer. Without a partial item, waits as long as needed.
    fn fill(&mut self) -> Result<(), End> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        if self.start == self.end {
            self.item_started = None;
            self.set_read_timeout(None).map_err(End::Io)?;
            let mut chunk = std::mem::take(&mut self.buf);
            let result = loop {
                match self.source.read(&mut chunk[self.end..]) {
                    Ok(0) => break Err(End::Eof),
                    Ok(n) => break Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(End::Io(e)),
                }
            };
            self.buf = chunk;
            self.end += result?;
            self.item_started = Some(Instant::now());
            return Ok(());
        }
        let mut chunk = std::mem::take(&mut self.buf);
        let end = self.end;
        let result = self.read_into(&mut chunk[end..]);
        self.buf = chunk;
        self.end += result?;
        Ok(())
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // Round up to whole 100 ms steps so a busy stream does not make a
        // system call per read.
        let rounded = timeout.map(|t| Duration::from_millis(t.as_millis().div_ceil(100) as u64 * 100).max(t));
        if rounded.map(|t| t.as_millis() / 100) != self.read_timeout.map(|t| t.as_millis() / 100) {
            self.stream.set_read_timeout(rounded)?;
            self.read_timeout = rounded;
        }
        Ok(())
    }

    /// Discards `n` bytes of payload, from the buffer and then the socket.
    ///
    /// # Errors
    /// As [`Reader::read_into`].
    pub fn skip(&mut self, mut n: usize) -> Result<(), End> {
        let buffered = n.min(self.end - self.start);
        self.consume(buffered);
        n -= buffered;
        let mut scratch = [0u8; 4096];
        while n > 0 {
            let want = n.min(scratch.len());
            n -= self.read_into(&mut scratch[..want])?;
        }
        Ok(())
    }

    /// Reads and discards input for a short while, so the client can read
    /// the last lines before the socket closes.
    fn linger(&mut self) {
        let deadline = Instant::now() + LINGER;
        let mut scratch = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.source.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Reads and executes everything client `conn` sends, until it leaves or
/// breaks the protocol. Greets it, and adds it to the registry once it has
/// logged in (at once when the server has no password). The caller removes
/// it from the registry afterwards.
///
/// Until it has logged in (on an open server: until now), the connection is
/// in the [gate](crate::gate) as `login`; if the gate closes it, the client
/// is told why.
pub fn handle_client(
    stream: TcpStream,
    source: ReadHalf,
    conn: &Arc<Conn>,
    shared: &Shared,
    login: &Pending,
) -> End {
    let config = &shared.config;
    let mut reader = Reader::new(stream, source, config.io_timeout());
    let mut joined = !shared.auth.required();
    if joined {
        // Before hello, so that joining follows it as closely as before.
        shared.gate.remove(login);
    }
    let hello =
        komunikator_protocol::ServerMsg::Hello { id: conn.id, version: komunikator_protocol::VERSION };
    if joined {
        shared.registry.join(Arc::clone(conn), Some(&hello));
    } else {
        conn.send(&hello);
    }
    let end = loop {
        let step = if joined {
            step(&mut reader, conn, shared)
        } else {
            login_step(&mut reader, conn, shared, login)
        };
        match step {
            Ok(Progress::Continue) => {}
            Ok(Progress::LoggedIn) => {
                joined = true;
                shared.gate.remove(login);
                shared.registry.join(Arc::clone(conn), None);
            }
            Err(end) => break gate_closed(login, conn, shared).unwrap_or(end),
        }
    };
    match &end {
        End::Fatal(code) => crate::log!(Info, "{}: closing after error {code}", conn.id),
        End::Timeout => {
            conn.send_error(ErrorCode::Timeout, "a line or frame did not complete in time");
            crate::log!(Info, "{}: closing, a line or frame did not complete in time", conn.id);
        }
        End::Eof => crate::log!(Debug, "{}: closed by the client", conn.id),
        End::Io(e) => crate::log!(Info, "{}: connection lost: {e}", conn.id),
    }
    if matches!(end, End::Fatal(_) | End::Timeout) {
        conn.outbox.close();
        reader.linger();
    }
    end
}

/// If the gate closed the connection (it took too long to log in, or made
/// room for a newer one), tells the client and ends the session.
fn gate_closed(login: &Pending, conn: &Conn, shared: &Shared) -> Option<End> {
    let (code, text) = match login.fate() {
        Fate::Waiting => return None,
        Fate::TimedOut => {
            (ErrorCode::Timeout, format!("log in within {} s of connecting", shared.gate.grace().as_secs()))
        }
        Fate::Evicted => (ErrorCode::Full, "too many connections waiting to log in".to_owned()),
    };
    conn.send_error(code, &text);
    crate::log!(Info, "{}: closing: {text}", conn.id);
    Some(End::Fatal(code))
}

/// What a step achieved.
enum Progress {
    /// Keep reading.
    Continue,
    /// The password was right: join the registry.
    LoggedIn,
}

/// The next complete line, or `None` after reading more bytes.
fn next(reader: &mut Reader, conn: &Conn, config: &Config) -> Result<Option<(Vec<u8>, usize)>, End> {
    match next_line(reader.buffered(), config.max_line) {
        Ok(Status::Complete { item, consumed }) => Ok(Some((item.to_vec(), consumed))),
        Ok(Status::Partial) => reader.fill().map(|()| None),
        Err(e) => Err(broken(conn, e)),
    }
}

/// Answers a stream that cannot be framed any more; the session ends.
fn broken(conn: &Conn, e: FramingError) -> End {
    conn.send_error(e.code(), &e.to_string());
    End::Fatal(e.code())
}

/// Answers a line that did not parse. A fatal error ends the session;
/// otherwise any payload the line announced is skipped, to stay in sync.
fn refuse(reader: &mut Reader, conn: &Conn, e: &ParseError) -> Result<Progress, End> {
    conn.send_error(e.code, e.reason);
    if e.code.is_fatal() {
        return Err(End::Fatal(e.code));
    }
    reader.skip(e.skip as usize)?;
    Ok(Progress::Continue)
}

/// Before logging in, only `auth` and `ping` are accepted.
fn login_step(reader: &mut Reader, conn: &Conn, shared: &Shared, login: &Pending) -> Result<Progress, End> {
    let config = &shared.config;
    let Some((line, consumed)) = next(reader, conn, config)? else { return Ok(Progress::Continue) };
    reader.consume(consumed);
    let progress = match Command::parse(&line, config.max_frame) {
        Ok(Command::Ping) => {
            conn.send(&komunikator_protocol::ServerMsg::Pong);
            Progress::Continue
        }
        Ok(Command::Auth(password)) => {
            // Waits for the guessing budgets, giving up if the client leaves or the gate closes it.
            let wanted = || login.fate() == Fate::Waiting && !peer_closed(&reader.stream);
            match shared.auth.check(conn.id.ip(), password, &wanted) {
                Verdict::Ok => {
                    conn.send(&komunikator_protocol::ServerMsg::OkAuth);
                    crate::log!(Info, "{}: logged in", conn.id);
                    Progress::LoggedIn
                }
                Verdict::Failed => {
                    conn.send_error(ErrorCode::AuthFailed, "wrong password");
                    crate::log!(Warn, "{}: wrong password", conn.id);
                    return Err(End::Fatal(ErrorCode::AuthFailed));
                }
                Verdict::Abandoned => return Err(End::Eof),
            }
        }
        Ok(Command::Media(header)) => {
            conn.send_error(ErrorCode::AuthRequired, "send auth <password> first");
            reader.skip(header.len as usize)?;
            Progress::Continue
        }
        Ok(_) => {
            conn.send_error(ErrorCode::AuthRequired, "send auth <password> first");
            Progress::Continue
        }
        Err(e) => refuse(reader, conn, &e)?,
    };
    reader.item_done();
    Ok(progress)
}

/// Whether the client has closed its side: a peek without waiting sees the FIN.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: one byte into a valid buffer; MSG_PEEK leaves it in the socket.
    let n = unsafe {
        libc::recv(stream.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    };
    n == 0
}

/// Forwards `command` (its `line`) to the node `conn` is carried to, if it
/// is, unless this node answers it itself (the list, the nick, blocks,
/// features). `true` when it went there.
fn carried(shared: &Shared, conn: &Conn, command: &Command<'_>, line: &[u8]) -> bool {
    let here = matches!(
        command,
        Command::Refresh | Command::Name(_) | Command::Block(_) | Command::Unblock(_) | Command::Features(_)
    );
    let Some(cluster) = shared.cluster.as_ref().filter(|_| !here && conn.is_carried()) else { return false };
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    cluster.up(conn, &bytes)
}

/// Handles one complete item, or reads more bytes.
fn step(reader: &mut Reader, conn: &Arc<Conn>, shared: &Shared) -> Result<Progress, End> {
    let config = &shared.config;
    let (line, consumed) = match next_line(reader.buffered(), config.max_line) {
        Ok(Status::Complete { item, consumed }) => (item, consumed),
        Ok(Status::Partial) => return reader.fill().map(|()| Progress::Continue),
        Err(e) => return Err(broken(conn, e)),
    };
    let media = match Command::parse(line, config.max_frame) {
        Ok(Command::Media(header)) => Some(header),
        Ok(Command::Ping) => {
            conn.send(&komunikator_protocol::ServerMsg::Pong);
            None
        }
        Ok(Command::Auth(_)) => {
            // Already logged in (or no password is set): nothing to do.
            conn.send(&komunikator_protocol::ServerMsg::OkAuth);
            None
        }
        Ok(command) => {
            if !carried(shared, conn, &command, line) {
                shared.registry.execute(conn.id, &command);
            }
            None
        }
        Err(e) => {
            reader.consume(consumed);
            refuse(reader, conn, &e)?;
            reader.item_done();
            return Ok(Progress::Continue);
        }
    };
    reader.consume(consumed);
    match (media, &shared.cluster) {
        (Some(header), Some(cluster)) if conn.is_carried() => {
            let frame = crate::relay::read_frame(reader, header)?;
            cluster.up(conn, &frame);
        }
        (Some(header), _) => crate::relay::handle_connection(reader, conn, header, config.splice)?,
        (None, _) => {}
    }
    reader.item_done();
    Ok(Progress::Continue)
}
