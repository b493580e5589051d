//! Lines the server sends to a client.

use std::io::Write;
use std::num::NonZeroU32;

use crate::error::{ErrorCode, ParseError};
use crate::group::{DeclineReason, Relayed, check_features};
use crate::line::{fields, line_text, split_command};
use crate::types::{
    ClientId, MediaHeader, MediaKind, MediaState, Nick, NickDisplay, PeerState, Presence, StopReason, Target,
    parse_id, parse_nick,
};

/// One line from the server, parsed. Borrows from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// `hello <id> <version>`: sent on accept; `id` is the client's own id.
    Hello {
        /// The client's id as the server sees it.
        id: ClientId,
        /// The protocol version, `komunikator/1`.
        version: &'a str,
    },
    /// `ok name <nick>`.
    OkName(&'a str),
    /// `ok auth`: the password was right.
    OkAuth,
    /// `ok block <target>`: no more `ask` prompts from that target.
    OkBlock(Target<'a>),
    /// `ok unblock <target>`: that target may ring again.
    OkUnblock(Target<'a>),
    /// `clients <n>`: n [`ServerMsg::Client`] lines follow.
    Clients(u32),
    /// `<id> <free|busy> <nick>`: one entry of a `clients` list.
    Client {
        /// The other client's id.
        id: ClientId,
        /// Whether it can be called.
        state: PeerState,
        /// Its nick, if it set one.
        nick: Nick<'a>,
    },
    /// `presence <id> <free|busy|gone> <nick>`.
    Presence {
        /// The client whose presence changed.
        id: ClientId,
        /// Its new presence.
        state: Presence,
        /// Its nick, if it set one.
        nick: Nick<'a>,
    },
    /// `calling <callee-id>`: the callee is being asked.
    Calling(ClientId),
    /// `ask <caller-id> <caller-nick>`: someone is calling you.
    Ask {
        /// The caller's id.
        id: ClientId,
        /// The caller's nick.
        nick: Nick<'a>,
    },
    /// `ask yes`: the callee accepted.
    AskYes,
    /// `ask no`: the callee declined.
    AskNo,
    /// `busy <callee-id>`: the callee is ringing or in a call.
    Busy(ClientId),
    /// `start <peer-id>`: the call is up; media may flow.
    Start(ClientId),
    /// `stop <reason>`: the call ended.
    Stop(StopReason),
    /// `video|audio ...`: a media frame from the peer follows.
    Media(MediaHeader),
    /// `keyframe`: the peer asks for an independent video frame.
    Keyframe,
    /// `msg <text>`: a chat line from the peer.
    Msg(&'a str),
    /// `pong`.
    Pong,
    /// `delay <ms>`: during a call, how long the media this client sends
    /// waits in queues on its way to the peer, as the peer measures it.
    Delay(u32),
    /// `media <audio|video> <on|off>`: during a call, the peer turned its
    /// microphone or camera off on purpose, or back on.
    MediaState(MediaState),
    /// `rate <kbps>` or `rate -`: during a call, how fast the peer's
    /// connection takes media from the server, in kbit/s, when it is the
    /// limit (the sender should keep its media below it); `None` (`rate -`)
    /// when it no longer is.
    Rate(Option<NonZeroU32>),
    /// `ok features [<name>...]`: the features turned on, of those asked for.
    OkFeatures(&'a str),
    /// `inviting <id>`: the invited client is being asked to join your call.
    Inviting(ClientId),
    /// `with <id> <nick>`: right after an `ask`, one more party already in
    /// the call you are asked to join (group calls).
    With {
        /// That party's id.
        id: ClientId,
        /// Its nick.
        nick: Nick<'a>,
    },
    /// `joined <id> <nick>`: a party is now in your call; its media may follow.
    Joined {
        /// The party's id.
        id: ClientId,
        /// Its nick.
        nick: Nick<'a>,
    },
    /// `left <id> <reason>`: a party left your call, which goes on; nothing
    /// more of it follows.
    Left {
        /// The party's id.
        id: ClientId,
        /// `hangup` or `disconnected`.
        reason: StopReason,
    },
    /// `declined <id> <reason>`: your invitation did not end in a join.
    Declined {
        /// The invited client's id.
        id: ClientId,
        /// Why.
        reason: DeclineReason,
    },
    /// `from <id> <line>`: a line (or media frame) from party `id`, or
    /// `rate` about it, to a client that turned on group calls.
    From {
        /// The party the line is from or about.
        id: ClientId,
        /// The line.
        msg: Relayed<'a>,
    },
    /// `error <code> [text]`.
    Error {
        /// The error code.
        code: ErrorCode,
        /// Optional human-readable detail.
        text: Option<&'a str>,
    },
}

impl<'a> ServerMsg<'a> {
    /// Parses one line (without its newline), allowing payloads up to `max_frame`.
    ///
    /// # Errors
    /// A [`ParseError`] when the line is not a valid server message.
    pub fn parse(line: &'a [u8], max_frame: u32) -> Result<ServerMsg<'a>, ParseError> {
        let text = line_text(line)?;
        let (word, args) = split_command(text);
        let msg = match word {
            "hello" => {
                let [id, version] = fields::<2>(args)?;
                ServerMsg::Hello { id: parse_id(id)?, version }
            }
            "ok" if args.is_some_and(|a| a == "features" || a.starts_with("features ")) => {
                let list = args.and_then(|a| a.strip_prefix("features")).unwrap_or("");
                let list = list.strip_prefix(' ').unwrap_or(list);
                if list.is_empty() && args.is_some_and(|a| a.len() > "features".len()) {
                    return Err(ParseError::bad("ok features: names one space apart"));
                }
                check_features(list, true)?;
                ServerMsg::OkFeatures(list)
            }
            "ok" => match (fields::<2>(args), fields::<1>(args)) {
                (Ok(["name", nick]), _) => ServerMsg::OkName(nick),
                (Ok(["block", target]), _) => ServerMsg::OkBlock(Target::parse(target)?),
                (Ok(["unblock", target]), _) => ServerMsg::OkUnblock(Target::parse(target)?),
                (_, Ok(["auth"])) => ServerMsg::OkAuth,
                _ => return Err(ParseError::bad("unknown ok")),
            },
            "clients" => {
                let [n] = fields::<1>(args)?;
                ServerMsg::Clients(n.parse().map_err(|_| ParseError::bad("count must be a number"))?)
            }
            "presence" => {
                let [id, state, nick] = fields::<3>(args)?;
                let (id, state, nick) = (parse_id(id)?, Presence::parse(state)?, parse_nick(nick)?);
                ServerMsg::Presence { id, state, nick }
            }
            "calling" => ServerMsg::Calling(one_id(args)?),
            "ask" => match fields::<2>(args) {
                Ok([id, nick]) => ServerMsg::Ask { id: parse_id(id)?, nick: parse_nick(nick)? },
                Err(_) => match fields::<1>(args)? {
                    ["yes"] => ServerMsg::AskYes,
                    ["no"] => ServerMsg::AskNo,
                    _ => return Err(ParseError::bad("ask takes an id and a nick, yes or no")),
                },
            },
            "busy" => ServerMsg::Busy(one_id(args)?),
            "start" => ServerMsg::Start(one_id(args)?),
            "stop" => ServerMsg::Stop(StopReason::parse(fields::<1>(args)?[0])?),
            "video" => ServerMsg::Media(MediaHeader::parse(MediaKind::Video, args, max_frame)?),
            "audio" => ServerMsg::Media(MediaHeader::parse(MediaKind::Audio, args, max_frame)?),
            "keyframe" => fields::<0>(args).map(|_| ServerMsg::Keyframe)?,
            "msg" => ServerMsg::Msg(args.filter(|t| !t.is_empty()).ok_or(ParseError::bad("msg needs text"))?),
            "pong" => fields::<0>(args).map(|_| ServerMsg::Pong)?,
            "rate" => ServerMsg::Rate(parse_rate(fields::<1>(args)?[0])?),
            "delay" => ServerMsg::Delay(crate::types::parse_delay_ms(fields::<1>(args)?[0])?),
            "media" => ServerMsg::MediaState(MediaState::parse(args)?),
            "error" => parse_error(args)?,
            "inviting" => ServerMsg::Inviting(one_id(args)?),
            "with" => {
                let [id, nick] = fields::<2>(args)?;
                ServerMsg::With { id: parse_id(id)?, nick: parse_nick(nick)? }
            }
            "joined" => {
                let [id, nick] = fields::<2>(args)?;
                ServerMsg::Joined { id: parse_id(id)?, nick: parse_nick(nick)? }
            }
            "left" => {
                let [id, reason] = fields::<2>(args)?;
                ServerMsg::Left { id: parse_id(id)?, reason: StopReason::parse(reason)? }
            }
            "declined" => {
                let [id, reason] = fields::<2>(args)?;
                ServerMsg::Declined { id: parse_id(id)?, reason: DeclineReason::parse(reason)? }
            }
            "from" => parse_from(args, max_frame)?,
            _ => return parse_client_entry(word, args),
        };
        Ok(msg)
    }

    /// Appends the line, with its newline, to `out`. A media message writes
    /// only its header; the caller appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match *self {
            ServerMsg::Hello { id, version } => writeln!(out, "hello {id} {version}"),
            ServerMsg::OkName(nick) => writeln!(out, "ok name {nick}"),
            ServerMsg::OkAuth => writeln!(out, "ok auth"),
            ServerMsg::OkBlock(target) => writeln!(out, "ok block {target}"),
            ServerMsg::OkUnblock(target) => writeln!(out, "ok unblock {target}"),
            ServerMsg::Clients(n) => writeln!(out, "clients {n}"),
            ServerMsg::Client { id, state, nick } => {
                writeln!(out, "{id} {} {}", state.as_str(), NickDisplay(nick))
            }
            ServerMsg::Presence { id, state, nick } => {
                writeln!(out, "presence {id} {} {}", state.as_str(), NickDisplay(nick))
            }
            ServerMsg::Calling(id) => writeln!(out, "calling {id}"),
            ServerMsg::Ask { id, nick } => writeln!(out, "ask {id} {}", NickDisplay(nick)),
            ServerMsg::AskYes => writeln!(out, "ask yes"),
            ServerMsg::AskNo => writeln!(out, "ask no"),
            ServerMsg::Busy(id) => writeln!(out, "busy {id}"),
            ServerMsg::Start(id) => writeln!(out, "start {id}"),
            ServerMsg::Stop(reason) => writeln!(out, "stop {}", reason.as_str()),
            ServerMsg::Media(header) => {
                header.encode(out);
                Ok(())
            }
            ServerMsg::Keyframe => writeln!(out, "keyframe"),
            ServerMsg::Msg(text) => writeln!(out, "msg {text}"),
            ServerMsg::Pong => writeln!(out, "pong"),
            ServerMsg::Rate(Some(kbps)) => writeln!(out, "rate {kbps}"),
            ServerMsg::Rate(None) => writeln!(out, "rate -"),
            ServerMsg::Delay(ms) => writeln!(out, "delay {ms}"),
            ServerMsg::MediaState(state) => writeln!(out, "{}", state.line()),
            ServerMsg::OkFeatures("") => writeln!(out, "ok features"),
            ServerMsg::OkFeatures(list) => writeln!(out, "ok features {list}"),
            ServerMsg::Inviting(id) => writeln!(out, "inviting {id}"),
            ServerMsg::With { id, nick } => writeln!(out, "with {id} {}", NickDisplay(nick)),
            ServerMsg::Joined { id, nick } => writeln!(out, "joined {id} {}", NickDisplay(nick)),
            ServerMsg::Left { id, reason } => writeln!(out, "left {id} {}", reason.as_str()),
            ServerMsg::Declined { id, reason } => writeln!(out, "declined {id} {reason}"),
            ServerMsg::From { id, msg } => {
                msg.encode_from(id, out);
                Ok(())
            }
            ServerMsg::Error { code, text: Some(text) } => writeln!(out, "error {code} {text}"),
            ServerMsg::Error { code, text: None } => writeln!(out, "error {code}"),
        };
    }

    /// The encoded line, with its newline, as a new vector.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out);
        out
    }
}

fn one_id(args: Option<&str>) -> Result<ClientId, ParseError> {
    parse_id(fields::<1>(args)?[0])
}

/// `from <id> <line>`. The inner line is parsed first, so that a media
/// frame inside an envelope whose id is bad still has its payload skipped.
fn parse_from(args: Option<&str>, max_frame: u32) -> Result<ServerMsg<'_>, ParseError> {
    let (id, rest) = split_command(args.ok_or(ParseError::bad("from needs an id and a line"))?);
    let msg = Relayed::parse(rest.ok_or(ParseError::bad("from needs a line"))?, max_frame)?;
    match parse_id(id) {
        Ok(id) => Ok(ServerMsg::From { id, msg }),
        Err(mut e) => {
            if let Relayed::Media(header) = msg {
                e.skip = header.len;
            }
            Err(e)
        }
    }
}

/// `-`, or a decimal number of kbit/s from 1 to `u32::MAX`.
pub(crate) fn parse_rate(s: &str) -> Result<Option<NonZeroU32>, ParseError> {
    if s == "-" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::bad("rate must be a decimal number of kbit/s or -"));
    }
    let kbps = s.parse::<u32>().map_err(|_| ParseError::bad("rate too large"))?;
    NonZeroU32::new(kbps).map(Some).ok_or(ParseError::bad("rate must be at least 1"))
}

fn parse_error(args: Option<&str>) -> Result<ServerMsg<'_>, ParseError> {
    let args = args.ok_or(ParseError::bad("error needs a code"))?;
    let (code, text) = split_command(args);
    let code = ErrorCode::from_wire(code).ok_or(ParseError::bad("unknown error code"))?;
    Ok(ServerMsg::Error { code, text: text.filter(|t| !t.is_empty()) })
}

fn parse_client_entry<'a>(word: &'a str, args: Option<&'a str>) -> Result<ServerMsg<'a>, ParseError> {
    let Ok(id) = word.parse::<ClientId>() else {
        return Err(ParseError::unknown("no such message"));
    };
    let [state, nick] = fields::<2>(args)?;
    Ok(ServerMsg::Client { id, state: PeerState::parse(state)?, nick: parse_nick(nick)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_FRAME;

    #[test]
    fn round_trips() {
        for line in [
            "hello 127.0.0.1:40000 komunikator/1",
            "ok name ala",
            "ok block ala",
            "ok unblock 10.0.0.1:5",
            "ok auth",
            "error auth-failed",
            "clients 2",
            "127.0.0.1:1 free ala",
            "[::1]:2 busy -",
            "presence 127.0.0.1:1 gone -",
            "calling 127.0.0.1:1",
            "ask 127.0.0.1:1 ala",
            "ask yes",
            "ask no",
            "busy 127.0.0.1:1",
            "start 127.0.0.1:1",
            "stop hangup",
            "stop disconnected",
            "video 1 k 100",
            "audio 2 - 3",
            "keyframe",
            "msg hi there",
            "pong",
            "rate 1",
            "rate 480",
            "rate 4294967295",
            "rate -",
            "error not-in-call",
            "error bad-argument ask takes yes or no",
            "error room-full",
            "ok features",
            "ok features group",
            "inviting 127.0.0.1:3",
            "with 127.0.0.1:3 cecylia",
            "joined [::1]:3 -",
            "left 127.0.0.1:3 hangup",
            "declined 127.0.0.1:3 timeout",
            "from 127.0.0.1:3 video 1 k 100",
            "from 127.0.0.1:3 msg dzień dobry",
            "from 127.0.0.1:3 rate -",
        ] {
            let msg = ServerMsg::parse(line.as_bytes(), MAX_FRAME).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(msg.to_line(), format!("{line}\n").into_bytes(), "{line}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for line in [
            "",
            "hello",
            "stop maybe",
            "ask 1.2.3.4:5",
            "clients x",
            "error",
            "error nope",
            "1.2.3.4:5 idle ala",
            "wat",
            "ok features ",
            "ok features Group",
            "ok featuresx",
            "left 1.2.3.4:5 cancelled x",
            "declined 1.2.3.4:5 maybe",
            "from 1.2.3.4:5",
            "from 1.2.3.4:5 pong",
            "from x keyframe",
        ] {
            assert!(ServerMsg::parse(line.as_bytes(), MAX_FRAME).is_err(), "{line}");
        }
    }

    #[test]
    fn a_bad_envelope_still_skips_its_payload() {
        let e = ServerMsg::parse(b"from nobody video 1 k 7", MAX_FRAME).unwrap_err();
        assert_eq!((e.code, e.skip), (ErrorCode::BadArgument, 7));
        let e = ServerMsg::parse(b"from 1.2.3.4:5 video x k 7", MAX_FRAME).unwrap_err();
        assert_eq!(e.skip, 7);
    }

    #[test]
    fn rate_takes_kbps_from_1_to_u32_max_or_a_dash() {
        fn parse(line: &str) -> Result<ServerMsg<'_>, ParseError> {
            ServerMsg::parse(line.as_bytes(), MAX_FRAME)
        }
        assert_eq!(parse("rate 480"), Ok(ServerMsg::Rate(NonZeroU32::new(480))));
        assert_eq!(parse("rate 007"), Ok(ServerMsg::Rate(NonZeroU32::new(7))));
        assert_eq!(parse("rate -"), Ok(ServerMsg::Rate(None)));
        assert_eq!(parse("delay 120"), Ok(ServerMsg::Delay(120)));
        assert_eq!(
            parse("media video off"),
            Ok(ServerMsg::MediaState(MediaState { kind: MediaKind::Video, on: false }))
        );
        assert!(parse("media video").is_err() && parse("media x on").is_err());
        assert!(parse("delay 60001").is_err() && parse("delay x").is_err() && parse("delay").is_err());
        for line in [
            "rate",
            "rate ",
            "rate 0",
            "rate 000",
            "rate 4294967296",
            "rate 99999999999999999999",
            "rate -1",
            "rate +5",
            "rate 1.5",
            "rate 5k",
            "rate x",
            "rate --",
            "rate 5 6",
            "rate  5",
            "rate 5 ",
        ] {
            let e = parse(line).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadArgument, "{line}");
            assert_eq!(e.skip, 0, "{line}");
        }
    }
}
