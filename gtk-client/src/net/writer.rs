//! The `writer` thread: the only code that writes to the socket.

use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use komunikator_protocol::{Command, MediaHeader, MediaKind};

use super::{NetError, NetEvent};

/// A media payload: any owned bytes, such as a mapped `gst::Buffer`, so the
/// encoder's output is written without a copy.
pub type Payload = Box<dyn AsRef<[u8]> + Send>;

/// One item for the writer.
pub enum Outgoing {
    /// A complete line, with its newline.
    Line(Vec<u8>),
    /// A media header and its payload, written back to back.
    Media {
        /// The header; its `len` matches the payload.
        header: MediaHeader,
        /// The payload.
        payload: Payload,
    },
}

/// The cloneable sending half of the connection.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: SyncSender<Outgoing>,
}

impl Writer {
    pub(super) fn channel(bound: usize) -> (Writer, Receiver<Outgoing>) {
        let (tx, rx) = sync_channel(bound);
        (Writer { tx }, rx)
    }

    /// Queues a command line. Blocks while the queue is full.
    ///
    /// # Errors
    /// [`NetError::Closed`] when the connection is closed.
    pub fn command(&self, cmd: &Command<'_>) -> Result<(), NetError> {
        let mut line = Vec::with_capacity(64);
        cmd.encode(&mut line);
        self.tx.send(Outgoing::Line(line)).map_err(|_| NetError::Closed)
    }

    /// Queues a media frame. Blocks while the queue is full, which is how a
    /// slow connection pushes back on the sending pipeline.
    ///
    /// # Errors
    /// [`NetError::Closed`] when the connection is closed. A payload larger
    /// than `u32::MAX` bytes is also refused with `Closed` (it cannot be framed).
    pub fn media(&self, kind: MediaKind, pts: u64, key: bool, payload: Payload) -> Result<(), NetError> {
        let len = u32::try_from((*payload).as_ref().len()).map_err(|_| NetError::Closed)?;
        let header = MediaHeader { kind, pts, key, len };
        self.tx.send(Outgoing::Media { header, payload }).map_err(|_| NetError::Closed)
    }

    /// Queues a media frame only if there is room right now.
    ///
    /// # Errors
    /// `Ok(false)` when the queue is full; [`NetError::Closed`] when closed.
    pub fn try_media(
        &self,
        kind: MediaKind,
        pts: u64,
        key: bool,
        payload: Payload,
    ) -> Result<bool, NetError> {
        let len = u32::try_from((*payload).as_ref().len()).map_err(|_| NetError::Closed)?;
        let header = MediaHeader { kind, pts, key, len };
        match self.tx.try_send(Outgoing::Media { header, payload }) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Disconnected(_)) => Err(NetError::Closed),
        }
    }
}

/// Writes items until every sender is gone or a write fails.
/// `shutdown` is the same socket, shut down when a write fails so that the
/// receive thread notices too.
pub(super) fn run(
    stream: impl Write,
    shutdown: TcpStream,
    rx: Receiver<Outgoing>,
    events: impl Fn(NetEvent),
) {
    let mut out = BufWriter::with_capacity(256 * 1024, stream);
    let mut header_line = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        let mut item = Some(first);
        let mut result = Ok(());
        // Write everything already queued, then flush once.
        while let Some(current) = item.take() {
            result = write_item(&mut out, &mut header_line, current);
            if result.is_err() {
                break;
            }
            item = rx.try_recv().ok();
        }
        if let Err(e) = result.and_then(|()| out.flush()) {
            events(NetEvent::Closed(format!("write failed: {e}")));
            let _ = shutdown.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn write_item(out: &mut impl Write, header_line: &mut Vec<u8>, item: Outgoing) -> std::io::Result<()> {
    match item {
        Outgoing::Line(line) => out.write_all(&line),
        Outgoing::Media { header, payload } => {
            header_line.clear();
            header.encode(header_line);
            out.write_all(header_line)?;
            out.write_all((*payload).as_ref())
        }
    }
}
