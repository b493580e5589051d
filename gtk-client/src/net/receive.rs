//! The `receive` thread: reads the socket and splits it into messages.

use std::io::Read;
use std::sync::Arc;

use komunikator_protocol::{Decoded, Decoder, ServerMsg, Status};

use super::{FrameSink, NetEvent, PeerInfo};

/// Bytes read from the socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// A `clients` list being collected: how many entries are still to come.
struct PendingList {
    remaining: u32,
    peers: Vec<PeerInfo>,
}

/// Reads until the socket closes or the stream cannot be framed any more.
pub(super) fn run(mut stream: impl Read, events: impl Fn(NetEvent), frames: Arc<dyn FrameSink>) {
    let decoder = Decoder::default();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut list: Option<PendingList> = None;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return events(NetEvent::Closed("the server closed the connection".into())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return events(NetEvent::Closed(format!("read failed: {e}"))),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        loop {
            match decoder.decode_server(&buf[at..]) {
                Ok(Status::Complete { item, consumed }) => {
                    at += consumed;
                    match item {
                        Decoded::Media { header, payload } => frames.frame(&header, payload),
                        Decoded::Message(msg) => handle(msg, &mut list, &events),
                        Decoded::Invalid(e) => events(NetEvent::Invalid(e.to_string())),
                    }
                }
                Ok(Status::Partial) => break,
                Err(e) => return events(NetEvent::Closed(format!("unreadable stream from the server: {e}"))),
            }
        }
        buf.drain(..at);
    }
}

fn handle(msg: ServerMsg<'_>, list: &mut Option<PendingList>, events: &impl Fn(NetEvent)) {
    if let ServerMsg::Client { id, state, nick } = msg {
        if let Some(pending) = list.as_mut() {
            pending.peers.push(PeerInfo { id, state, nick: nick.map(str::to_owned) });
            pending.remaining = pending.remaining.saturating_sub(1);
            if pending.remaining == 0 {
                let done = list.take().map(|p| p.peers).unwrap_or_default();
                events(NetEvent::Clients(done));
            }
        } else {
            events(NetEvent::Invalid(format!("client entry {id} outside a clients list")));
        }
        return;
    }
    if let Some(pending) = list.take() {
        // The list was cut short; report what arrived.
        events(NetEvent::Clients(pending.peers));
    }
    let event = match msg {
        ServerMsg::Clients(0) => NetEvent::Clients(Vec::new()),
        ServerMsg::Clients(n) => {
            *list = Some(PendingList { remaining: n, peers: Vec::with_capacity(n.min(1024) as usize) });
            return;
        }
        other => owned(other),
    };
    events(event);
}

fn owned(msg: ServerMsg<'_>) -> NetEvent {
    let s = |n: Option<&str>| n.map(str::to_owned);
    match msg {
        ServerMsg::Hello { id, version } => NetEvent::Hello { id, version: version.to_owned() },
        ServerMsg::OkName(nick) => NetEvent::NameOk(nick.to_owned()),
        ServerMsg::Presence { id, state, nick } => NetEvent::Presence { id, state, nick: s(nick) },
        ServerMsg::Calling(id) => NetEvent::Calling(id),
        ServerMsg::Ask { id, nick } => NetEvent::Ask { id, nick: s(nick) },
        ServerMsg::AskYes => NetEvent::AskYes,
        ServerMsg::AskNo => NetEvent::AskNo,
        ServerMsg::Busy(id) => NetEvent::Busy(id),
        ServerMsg::Start(id) => NetEvent::Start(id),
        ServerMsg::Stop(reason) => NetEvent::Stop(reason),
        ServerMsg::Keyframe => NetEvent::Keyframe,
        ServerMsg::Rate(kbps) => NetEvent::Rate(kbps.map(std::num::NonZeroU32::get)),
        ServerMsg::Delay(ms) => NetEvent::Delay(ms),
        ServerMsg::Msg(text) => NetEvent::Msg(text.to_owned()),
        ServerMsg::Pong => NetEvent::Pong,
        ServerMsg::OkAuth => NetEvent::AuthOk,
        ServerMsg::Error { code, text } => NetEvent::Error { code, text: s(text) },
        // Lists and media are handled by the caller; a message this client
        // does not know yet (a newer server) is reported, not fatal.
        other => NetEvent::Invalid(format!(
            "unsupported message: {}",
            String::from_utf8_lossy(&other.to_line()).trim_end()
        )),
    }
}
