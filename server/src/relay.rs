//! `handle_connection`: passes a call's media from one party to the others.
//!
//! Runs on the sending client's session thread. A frame normally is read
//! straight from the socket into one buffer that already holds its header
//! line, then queued on each receiver's outbox under that receiver's own
//! drop policy (see [`crate::outbox`]), so one slow party never holds up the
//! others. A receiver that turned on group calls gets it in the `from <id>`
//! envelope. A large video frame between two plain-text clients
//! whose payload has fully arrived may skip the buffer (`--splice`) when the
//! peer's socket is idle: its payload is spliced from socket to socket (see [`crate::splice`]),
//! and whatever the peer's socket cannot take at once is read into memory
//! and left to the peer's writer thread. A frame outside a call is read and
//! discarded, so the stream stays in sync.

use std::sync::Arc;

use komunikator_protocol::{ClientId, MediaHeader, MediaKind, Relayed, ServerMsg};

use crate::outbox::{Direct, DirectWrite, MediaFrame, Outbox, Pushed};
use crate::registry::{Conn, Link};
use crate::session::{End, Reader};
use crate::splice::SPLICE_MIN;

/// Reads the payload announced by `header` and relays it to the other
/// parties of `conn`'s call; `splice`: large video payloads may be spliced
/// (`--splice`) when there is one receiver.
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
    let buffered = reader.buffered().len().min(len);
    let claim = conn.with_links(|links| match links {
        [] => None,
        [only] if direct => {
            let mut head = Vec::with_capacity(96 + buffered);
            head.extend_from_slice(&Relayed::Media(header).to_line(conn.id, only.enveloped));
            let claim = Outbox::begin_direct(&only.outbox, (conn.id, header.key), head.len() + len);
            Some((claim, head))
        }
        _ => Some((Direct::Busy, Vec::new())),
    });
    match claim {
        None => {
            reader.skip(len)?;
            conn.refuse_media("media is relayed only during a call");
            Ok(())
        }
        Some((Direct::Dropped(pushed), _)) => {
            reader.skip(len)?;
            answer(conn, Some(pushed));
            Ok(())
        }
        Some((Direct::Claimed(out), head)) => splice_frame(reader, out, head, len),
        Some((Direct::Busy, _)) => {
            let mut bytes = Vec::with_capacity(len + 48);
            header.encode(&mut bytes);
            let at = bytes.len();
            read_payload(reader, &mut bytes, len)?;
            answer(conn, conn.with_links(|links| fan_out(conn.id, links, header, bytes, at)));
            Ok(())
        }
    }
}

/// Relays one whole frame from `conn` (`bytes`: its bare header line,
/// `payload_at` long, then the payload) to the other parties of its call:
/// a frame that came through a cluster tunnel.
pub fn relay_frame(conn: &Conn, header: MediaHeader, bytes: Vec<u8>, payload_at: usize) {
    answer(conn, conn.with_links(|links| fan_out(conn.id, links, header, bytes, payload_at)));
}

/// Reads the payload announced by `header` into one buffer after the
/// header line: a frame a carried client sends, for the tunnel.
///
/// # Errors
/// When the payload cannot be read (closed, reset or too slow).
pub fn read_frame(reader: &mut Reader, header: MediaHeader) -> Result<Vec<u8>, End> {
    let mut bytes = Vec::with_capacity(header.len as usize + 48);
    header.encode(&mut bytes);
    read_payload(reader, &mut bytes, header.len as usize)?;
    Ok(bytes)
}

/// Queues one frame (`bytes`: the bare header line, `payload_at` long, and
/// the payload) for every receiver in `links`, in the envelope for those
/// that asked for it. Returns the most urgent fate for the sender, or
/// `None` outside a call.
fn fan_out(
    from: ClientId,
    links: &[Link],
    header: MediaHeader,
    bytes: Vec<u8>,
    payload_at: usize,
) -> Option<Pushed> {
    let (last, rest) = links.split_last()?;
    let copy_for = |link: &Link, bytes: &[u8]| {
        if link.enveloped {
            let mut out = Relayed::Media(header).to_line(from, true);
            out.extend_from_slice(&bytes[payload_at..]);
            out
        } else {
            bytes.to_vec()
        }
    };
    let frame = |bytes| MediaFrame { from, kind: header.kind, key: header.key, bytes };
    let mut fate = Pushed::Queued;
    for link in rest {
        fate = worse(fate, link.outbox.push_media(frame(copy_for(link, &bytes))));
    }
    let bytes = if last.enveloped { copy_for(last, &bytes) } else { bytes };
    Some(worse(fate, last.outbox.push_media(frame(bytes))))
}

/// Of two fates, the one the sender must act on: a keyframe request wins.
fn worse(a: Pushed, b: Pushed) -> Pushed {
    if b == Pushed::DroppedNeedKeyframe { b } else { a }
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
        None => conn.refuse_media("the call ended"),
        Some(Pushed::DroppedNeedKeyframe) => {
            conn.send(&ServerMsg::Keyframe);
        }
        Some(Pushed::Queued | Pushed::Dropped | Pushed::Closed) => {}
    }
}
