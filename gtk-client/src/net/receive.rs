//! The `receive` thread: reads the socket and splits it into messages.
//!
//! What a server can make it hold is bounded: a `clients` list announcing
//! more than [`MAX_LIST`] entries ends the connection (no server this client
//! works with has that many clients; one that says so is broken or hostile),
//! and lines it cannot read are reported at most [`INVALID_PER_WINDOW`] per
//! [`INVALID_WINDOW`], the rest counted in one line.

use std::io::Read;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, Decoded, Decoder, FEATURE_GROUP, Relayed, ServerMsg, Status};

use super::{FrameSink, NetEvent, PeerInfo};

/// Bytes read from the socket per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// The most entries a `clients` list may announce: five times the server's
/// default `--max-clients` (2000).
pub const MAX_LIST: u32 = 10_000;
/// Unreadable lines reported per [`INVALID_WINDOW`]; the rest are counted.
pub const INVALID_PER_WINDOW: u32 = 10;
/// See [`INVALID_PER_WINDOW`].
pub const INVALID_WINDOW: Duration = Duration::from_secs(1);

/// Unreadable lines: how many were reported in this window, how many not.
struct InvalidLines {
    since: Instant,
    reported: u32,
    ignored: u64,
}

impl InvalidLines {
    /// Reports `text` unless too many were reported in this window; then, or
    /// when a new window starts, reports how many were not.
    fn report(&mut self, text: Option<String>, events: &impl Fn(NetEvent)) {
        if self.since.elapsed() >= INVALID_WINDOW {
            if self.ignored > 0 {
                let n = std::mem::take(&mut self.ignored);
                events(NetEvent::Invalid(format!("{n} more lines from the server were ignored")));
            }
            (self.since, self.reported) = (Instant::now(), 0);
        }
        let Some(text) = text else { return };
        if self.reported < INVALID_PER_WINDOW {
            self.reported += 1;
            events(NetEvent::Invalid(text));
        } else {
            self.ignored += 1;
        }
    }
}

/// A `clients` list being collected: how many entries are still to come.
struct PendingList {
    remaining: u32,
    peers: Vec<PeerInfo>,
}

/// Reads until the socket closes or the stream cannot be framed any more.
pub(super) fn run(mut stream: impl Read, events: impl Fn(NetEvent), frames: Arc<dyn FrameSink>) {
    let mut invalid = InvalidLines { since: Instant::now(), reported: 0, ignored: 0 };
    let why = read(&mut stream, &events, frames.as_ref(), &mut invalid);
    frames.call_ended();
    if invalid.ignored > 0 {
        events(NetEvent::Invalid(format!("{} more lines from the server were ignored", invalid.ignored)));
    }
    events(NetEvent::Closed(why));
}

/// The reading loop; returns why the connection ends.
fn read(
    stream: &mut impl Read,
    events: &impl Fn(NetEvent),
    frames: &dyn FrameSink,
    invalid: &mut InvalidLines,
) -> String {
    let decoder = Decoder::default();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut list: Option<PendingList> = None;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return "the server closed the connection".into(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return format!("read failed: {e}"),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        loop {
            match decoder.decode_server(&buf[at..]) {
                Ok(Status::Complete { item, consumed }) => {
                    at += consumed;
                    match item {
                        Decoded::Media { from, header, payload } => frames.frame(from, &header, payload),
                        Decoded::Message(msg) => {
                            // In stream order: frames after `start` are the
                            // call's, frames after `stop` are nobody's.
                            match msg {
                                ServerMsg::Start(peer) => frames.call_started(peer),
                                ServerMsg::Stop(_) => frames.call_ended(),
                                _ => {}
                            }
                            if let ControlFlow::Break(why) = handle(msg, &mut list, invalid, events) {
                                return why;
                            }
                        }
                        Decoded::Invalid(e) => invalid.report(Some(e.to_string()), events),
                    }
                }
                Ok(Status::Partial) => break,
                Err(e) => return format!("unreadable stream from the server: {e}"),
            }
        }
        buf.drain(..at);
    }
}

/// Hands one message on; `Break` with a reason ends the connection.
fn handle(
    msg: ServerMsg<'_>,
    list: &mut Option<PendingList>,
    invalid: &mut InvalidLines,
    events: &impl Fn(NetEvent),
) -> ControlFlow<String> {
    invalid.report(None, events);
    if let ServerMsg::Client { id, state, nick } = msg {
        if let Some(pending) = list.as_mut() {
            pending.peers.push(PeerInfo { id, state, nick: nick.map(str::to_owned) });
            pending.remaining = pending.remaining.saturating_sub(1);
            if pending.remaining == 0 {
                let done = list.take().map(|p| p.peers).unwrap_or_default();
                events(NetEvent::Clients(done));
            }
        } else {
            invalid.report(Some(format!("client entry {id} outside a clients list")), events);
        }
        return ControlFlow::Continue(());
    }
    if let Some(pending) = list.take() {
        // The list was cut short; report what arrived.
        events(NetEvent::Clients(pending.peers));
    }
    let event = match msg {
        ServerMsg::Clients(0) => NetEvent::Clients(Vec::new()),
        ServerMsg::Clients(n) if n > MAX_LIST => {
            return ControlFlow::Break(format!(
                "the server announced a clients list of {n} entries, more than this client accepts ({MAX_LIST})"
            ));
        }
        ServerMsg::Clients(n) => {
            *list = Some(PendingList { remaining: n, peers: Vec::with_capacity(n.min(1024) as usize) });
            return ControlFlow::Continue(());
        }
        other => owned(other),
    };
    match event {
        NetEvent::Invalid(text) => invalid.report(Some(text), events),
        event => events(event),
    }
    ControlFlow::Continue(())
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
        ServerMsg::Rate(kbps) => NetEvent::Rate { from: None, kbps: kbps.map(std::num::NonZeroU32::get) },
        ServerMsg::Delay(ms) => NetEvent::Delay { from: None, ms },
        ServerMsg::From { id, msg } => relayed(id, msg),
        ServerMsg::OkFeatures(list) => NetEvent::Features(list.split(' ').any(|f| f == FEATURE_GROUP)),
        ServerMsg::Inviting(id) => NetEvent::Inviting(id),
        ServerMsg::With { id, nick } => NetEvent::With { id, nick: s(nick) },
        ServerMsg::Joined { id, nick } => NetEvent::Joined { id, nick: s(nick) },
        ServerMsg::Left { id, reason } => NetEvent::Left { id, reason },
        ServerMsg::Declined { id, reason } => NetEvent::Declined { id, reason },
        ServerMsg::MediaState(state) => NetEvent::MediaState { from: None, state },
        ServerMsg::OkBlock(target) => NetEvent::Blocked(target.to_string()),
        ServerMsg::Msg(text) => NetEvent::Msg { from: None, text: text.to_owned() },
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

/// A line from another party of a group call (`from <id> ...`).
fn relayed(from: ClientId, msg: Relayed<'_>) -> NetEvent {
    match msg {
        Relayed::Keyframe => NetEvent::Keyframe,
        Relayed::Msg(text) => NetEvent::Msg { from: Some(from), text: text.to_owned() },
        Relayed::Delay(ms) => NetEvent::Delay { from: Some(from), ms },
        Relayed::MediaState(state) => NetEvent::MediaState { from: Some(from), state },
        Relayed::Rate(kbps) => NetEvent::Rate { from: Some(from), kbps: kbps.map(std::num::NonZeroU32::get) },
        // Frames are decoded as frames, never as lines.
        Relayed::Media(_) => NetEvent::Invalid(format!("a media header from {from} without its frame")),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use komunikator_protocol::MediaHeader;

    use super::*;

    struct NoFrames;

    impl FrameSink for NoFrames {
        fn frame(&self, _: Option<ClientId>, _: &MediaHeader, _: &[u8]) {}
    }

    fn events_of(input: &[u8]) -> Vec<NetEvent> {
        let got = RefCell::new(Vec::new());
        run(input, |ev| got.borrow_mut().push(ev), Arc::new(NoFrames));
        got.into_inner()
    }

    #[test]
    fn a_list_longer_than_the_cap_ends_the_connection() {
        let got = events_of(format!("clients {}\n127.0.0.1:6 free ala\n", MAX_LIST + 1).as_bytes());
        let [NetEvent::Closed(why)] = &got[..] else { panic!("{got:?}") };
        assert!(why.contains("a clients list of 10001 entries"), "{why}");
        let mut full = format!("clients {MAX_LIST}\n");
        for port in 1..=MAX_LIST {
            full.push_str(&format!("127.0.0.1:{port} free -\n"));
        }
        let got = events_of(full.as_bytes());
        assert!(matches!(&got[..], [NetEvent::Clients(l), NetEvent::Closed(_)] if l.len() == 10_000));
    }

    #[test]
    fn unreadable_lines_are_reported_ten_a_second_and_counted() {
        let got = events_of("nonsense\n".repeat(100).as_bytes());
        assert_eq!(got.len(), 12, "{got:?}");
        assert!(got[..10].iter().all(|e| matches!(e, NetEvent::Invalid(t) if t.contains("unknown"))));
        assert_eq!(got[10], NetEvent::Invalid("90 more lines from the server were ignored".into()));
        assert!(matches!(got[11], NetEvent::Closed(_)));
    }
}
