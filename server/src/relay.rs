//! `handle_connection`: passes a call's media from one party to the other.
//!
//! Runs on the sending client's session thread. The frame is read straight
//! from the socket into one buffer that already holds its header line, then
//! queued on the peer's outbox under the drop policy (see [`crate::outbox`]).
//! A frame outside a call is read and discarded, so the stream stays in sync.

use std::sync::Arc;

use komunikator_protocol::{ErrorCode, MediaHeader, ServerMsg};

use crate::outbox::{MediaFrame, Pushed};
use crate::registry::Conn;
use crate::session::{End, Reader};

/// Reads the payload announced by `header` and relays it to `conn`'s peer.
///
/// # Errors
/// When the payload cannot be read (closed, reset or too slow).
pub fn handle_connection(reader: &mut Reader, conn: &Arc<Conn>, header: MediaHeader) -> Result<(), End> {
    let len = header.len as usize;
    if !conn.with_peer(|peer| peer.is_some()) {
        reader.skip(len)?;
        conn.send_error(ErrorCode::NotInCall, "media is relayed only during a call");
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(len + 48);
    header.encode(&mut bytes);
    let at = bytes.len();
    bytes.resize(at + len, 0);
    let buffered = reader.buffered().len().min(len);
    bytes[at..at + buffered].copy_from_slice(&reader.buffered()[..buffered]);
    reader.consume(buffered);
    let mut filled = at + buffered;
    while filled < bytes.len() {
        filled += reader.read_into(&mut bytes[filled..])?;
    }
    let frame = MediaFrame { kind: header.kind, key: header.key, bytes };
    match conn.with_peer(|peer| peer.map(|p| p.push_media(frame))) {
        None => {
            conn.send_error(ErrorCode::NotInCall, "the call ended");
        }
        Some(Pushed::DroppedNeedKeyframe) => {
            conn.send(&ServerMsg::Keyframe);
        }
        Some(Pushed::Queued | Pushed::Dropped | Pushed::Closed) => {}
    }
    Ok(())
}
