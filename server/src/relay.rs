//! `handle_connection`: passes a call's media from one party to the other.
//!
//! Runs on the sending client's session thread. A frame normally is read
//! straight from the socket into one buffer that already holds its header
//! line, then queued on the peer's outbox under the drop policy (see
//! [`crate::outbox`]). A large video frame between two plain-text clients
//! whose payload has fully arrived may skip the buffer (`--splice`) when the
//! peer's socket is idle: its payload is spliced from socket to socket (see [`crate::splice`]),
//! and whatever the peer's socket cannot take at once is read into memory
//! and left to the peer's writer thread. A frame outside a call is read and
//! discarded, so the stream stays in sync.

use std::sync::Arc;

use komunikator_protocol::{ErrorCode, MediaHeader, MediaKind, ServerMsg};

use crate::outbox::{Direct, DirectWrite, MediaFrame, Outbox, Pushed};
use crate::registry::Conn;
use crate::session::{End, Reader};
use crate::splice::SPLICE_MIN;

/// Reads the payload announced by `header` and relays it to `conn`'s peer;
/// `splice`: large video payloads may be spliced (`--splice`).
///
/// # Errors
/// When the payload cannot be read (closed, reset or too slow).
pub fn handle_connection(
    reader: &mut Reader,
    conn: &Arc<Conn>,
    header: MediaHeader,
    splice: bool,
) -> Result<(), End> {
    let len = header.len as usize;
    let direct = splice && header.kind == MediaKind::Video && len >= SPLICE_MIN && reader.splice_ready(len);
    let mut head = Vec::with_capacity(if direct { 48 + reader.buffered().len().min(len) } else { len + 48 });
    header.encode(&mut head);
    let claim = conn.with_peer(|peer| {
        peer.map(
            |p| if direct { Outbox::begin_direct(p, header.key, head.len() + len) } else { Direct::Busy },
        )
    });
    match claim {
        None => {
            reader.skip(len)?;
            conn.send_error(ErrorCode::NotInCall, "media is relayed only during a call");
            Ok(())
        }
        Some(Direct::Dropped(pushed)) => {
            reader.skip(len)?;
            answer(conn, Some(pushed));
            Ok(())
        }
        Some(Direct::Claimed(out)) => splice_frame(reader, out, head, len),
        Some(Direct::Busy) => {
            let frame = read_frame(reader, header, head, len)?;
            answer(conn, conn.with_peer(|peer| peer.map(|p| p.push_media(frame))));
            Ok(())
        }
    }
}

/// Reads the payload into `bytes`, after the header line already there.
fn read_frame(
    reader: &mut Reader,
    header: MediaHeader,
    mut bytes: Vec<u8>,
    len: usize,
) -> Result<MediaFrame, End> {
    read_payload(reader, &mut bytes, len)?;
    Ok(MediaFrame { kind: header.kind, key: header.key, bytes })
}

/// Appends the next `len` payload bytes, buffered ones first, to `out`.
fn read_payload(reader: &mut Reader, out: &mut Vec<u8>, len: usize) -> Result<(), End> {
    let at = out.len();
    out.resize(at + len, 0);
    let buffered = reader.buffered().len().min(len);
    out[at..at + buffered].copy_from_slice(&reader.buffered()[..buffered]);
    reader.consume(buffered);
    let mut filled = at + buffered;
    while filled < out.len() {
        match reader.read_into(&mut out[filled..]) {
            Ok(n) => filled += n,
            Err(e) => {
                out.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes the frame to the claimed socket: the header and buffered payload,
/// then the rest spliced through the session's pipe. From the first write
/// the socket cannot take in time, the rest of the frame is read into memory
/// for the writer thread (the claim's spill), so the sender is never held up
/// by a slow receiver. If the sender fails mid-frame, dropping the claim pads
/// the frame, so the receiver's stream stays well formed.
fn splice_frame(reader: &mut Reader, mut out: DirectWrite, mut head: Vec<u8>, len: usize) -> Result<(), End> {
    let buffered = reader.buffered().len().min(len);
    head.extend_from_slice(&reader.buffered()[..buffered]);
    reader.consume(buffered);
    let mut left = len - buffered;
    let sent = out.send(&head);
    if sent < head.len() {
        out.spill().extend_from_slice(&head[sent..]);
        return read_payload(reader, out.spill(), left);
    }
    while left > 0 {
        left -= reader.splice_into(left)?;
        let Some(pipe) = reader.pipe() else { return read_payload(reader, out.spill(), left) };
        let held = pipe.held();
        if out.splice_from(pipe, left > 0) < held {
            if let Err(e) = pipe.take_into(out.spill()) {
                // Zeros stand in for what the pipe still holds, and the pipe
                // goes, so those bytes never reach the next frame.
                crate::log!(Warn, "reading back a pipe failed: {e}");
                let lost = pipe.held();
                reader.drop_pipe();
                let spill = out.spill();
                spill.resize(spill.len() + lost, 0);
            }
            return read_payload(reader, out.spill(), left);
        }
    }
    Ok(())
}

/// Tells the sender what its frame's fate asks of it.
fn answer(conn: &Conn, pushed: Option<Pushed>) {
    match pushed {
        None => {
            conn.send_error(ErrorCode::NotInCall, "the call ended");
        }
        Some(Pushed::DroppedNeedKeyframe) => {
            conn.send(&ServerMsg::Keyframe);
        }
        Some(Pushed::Queued | Pushed::Dropped | Pushed::Closed) => {}
    }
}
