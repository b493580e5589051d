//! Lines a client sends to the server.

use std::io::Write;

use crate::error::ParseError;
use crate::line::{fields, line_text, split_command};
use crate::types::{ClientId, MediaHeader, MediaKind, MediaState, Target, parse_id};
use crate::{ErrorCode, MAX_FRAME};

/// One line from a client, parsed. Borrows from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `name <nick>`: claim a nick.
    Name(&'a str),
    /// `refresh`: list the other clients.
    Refresh,
    /// `connect <target>`: call someone.
    Connect(Target<'a>),
    /// `ask yes`: accept the call being offered.
    AskYes,
    /// `ask no`: decline the call being offered.
    AskNo,
    /// `stop`: cancel, decline or hang up the current call.
    Stop,
    /// `start`: the seed's "start the video call". The server starts a call
    /// itself (it sends `start <peer>` to both parties after `ask yes`), so
    /// in a started call this does nothing; elsewhere it is `not-in-call`.
    Start,
    /// `video|audio <pts> <flags> <len>`: a media frame follows.
    Media(MediaHeader),
    /// `keyframe`: ask the peer for an independent video frame.
    Keyframe,
    /// `msg <text>`: a chat line for the peer.
    Msg(&'a str),
    /// `ping`: answered with `pong`.
    Ping,
    /// `auth <password>`: log in to a password-protected server. The
    /// password is the rest of the line and may contain single spaces.
    Auth(&'a str),
    /// `block <target>`: no more `ask` prompts from that nick or address,
    /// for the rest of this connection.
    Block(Target<'a>),
    /// `unblock <target>`: undo a `block` of the same target.
    Unblock(Target<'a>),
    /// `delay <ms>`: during a call, how long the media from the peer waits
    /// in queues on its way to this client (0: none); relayed to the peer,
    /// whose sender should slow down.
    Delay(u32),
    /// `media <audio|video> <on|off>`: during a call, the user turned the
    /// microphone or the camera off or back on; relayed to the peer.
    MediaState(MediaState),
    /// `features <name>...`: turn on protocol features (group calls:
    /// [`crate::FEATURE_GROUP`]); the names, one space apart.
    Features(&'a str),
    /// `invite <target>`: during a call, ask someone to join it.
    Invite(Target<'a>),
    /// `keyframe <id>`: in a group call, ask one party for an independent
    /// video frame.
    KeyframeOf(ClientId),
    /// `delay <ms> <id>`: in a group call, how long one party's media waits
    /// on its way to this client; relayed to that party only.
    DelayOf(u32, ClientId),
}

impl<'a> Command<'a> {
    /// Parses one line (without its newline), allowing media payloads up to
    /// `max_frame` bytes.
    ///
    /// # Errors
    /// A [`ParseError`] with the code to answer: `unknown-command` for an
    /// unknown or empty line, `bad-argument` for wrong arguments, invalid
    /// UTF-8 or control characters, `bad-name` for an invalid nick, and
    /// `frame-too-large` for a media header above `max_frame`.
    pub fn parse(line: &'a [u8], max_frame: u32) -> Result<Command<'a>, ParseError> {
        let text = line_text(line)?;
        let (word, args) = split_command(text);
        match word {
            "name" => {
                let [nick] = fields::<1>(args)?;
                crate::nick::check_nick(nick)
                    .map(|()| Command::Name(nick))
                    .map_err(|rule| ParseError::new(ErrorCode::BadName, rule.reason()))
            }
            "refresh" => fields::<0>(args).map(|_| Command::Refresh),
            "connect" => {
                let [target] = fields::<1>(args)?;
                Target::parse(target).map(Command::Connect)
            }
            "ask" => match fields::<1>(args)? {
                ["yes"] => Ok(Command::AskYes),
                ["no"] => Ok(Command::AskNo),
                _ => Err(ParseError::bad("ask takes yes or no")),
            },
            "stop" => fields::<0>(args).map(|_| Command::Stop),
            "start" => fields::<0>(args).map(|_| Command::Start),
            "video" => MediaHeader::parse(MediaKind::Video, args, max_frame).map(Command::Media),
            "audio" => MediaHeader::parse(MediaKind::Audio, args, max_frame).map(Command::Media),
            "keyframe" => match args {
                None => Ok(Command::Keyframe),
                Some(_) => parse_id(fields::<1>(args)?[0]).map(Command::KeyframeOf),
            },
            "msg" => match args {
                Some(text) if !text.is_empty() => Ok(Command::Msg(text)),
                _ => Err(ParseError::bad("msg needs text")),
            },
            "ping" => fields::<0>(args).map(|_| Command::Ping),
            "auth" => match args {
                Some(password) if !password.is_empty() => Ok(Command::Auth(password)),
                _ => Err(ParseError::bad("auth needs a password")),
            },
            "block" => {
                let [target] = fields::<1>(args)?;
                Target::parse(target).map(Command::Block)
            }
            "unblock" => {
                let [target] = fields::<1>(args)?;
                Target::parse(target).map(Command::Unblock)
            }
            "delay" => match fields::<2>(args) {
                Ok([ms, id]) => Ok(Command::DelayOf(crate::types::parse_delay_ms(ms)?, parse_id(id)?)),
                Err(_) => crate::types::parse_delay_ms(fields::<1>(args)?[0]).map(Command::Delay),
            },
            "features" => {
                let list = args.unwrap_or("");
                crate::group::check_features(list, false).map(|()| Command::Features(list))
            }
            "invite" => {
                let [target] = fields::<1>(args)?;
                Target::parse(target).map(Command::Invite)
            }
            "media" => MediaState::parse(args).map(Command::MediaState),
            "" => Err(ParseError::unknown("empty line")),
            _ => Err(ParseError::unknown("no such command")),
        }
    }

    /// Parses with the default frame limit, [`MAX_FRAME`].
    ///
    /// # Errors
    /// As [`Command::parse`].
    pub fn parse_default(line: &'a [u8]) -> Result<Command<'a>, ParseError> {
        Command::parse(line, MAX_FRAME)
    }

    /// Appends the line, with its newline, to `out`. A media command writes
    /// only its header; the caller appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Command::Name(nick) => writeln!(out, "name {nick}"),
            Command::Refresh => writeln!(out, "refresh"),
            Command::Connect(target) => writeln!(out, "connect {target}"),
            Command::AskYes => writeln!(out, "ask yes"),
            Command::AskNo => writeln!(out, "ask no"),
            Command::Stop => writeln!(out, "stop"),
            Command::Start => writeln!(out, "start"),
            Command::Media(header) => {
                header.encode(out);
                Ok(())
            }
            Command::Keyframe => writeln!(out, "keyframe"),
            Command::Msg(text) => writeln!(out, "msg {text}"),
            Command::Ping => writeln!(out, "ping"),
            Command::Delay(ms) => writeln!(out, "delay {ms}"),
            Command::MediaState(state) => writeln!(out, "{}", state.line()),
            Command::Auth(password) => writeln!(out, "auth {password}"),
            Command::Block(target) => writeln!(out, "block {target}"),
            Command::Unblock(target) => writeln!(out, "unblock {target}"),
            Command::Features(list) => writeln!(out, "features {list}"),
            Command::Invite(target) => writeln!(out, "invite {target}"),
            Command::KeyframeOf(id) => writeln!(out, "keyframe {id}"),
            Command::DelayOf(ms, id) => writeln!(out, "delay {ms} {id}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command<'_>, ParseError> {
        Command::parse_default(s.as_bytes())
    }

    #[test]
    fn every_command() {
        assert_eq!(parse("name ala"), Ok(Command::Name("ala")));
        assert_eq!(parse("refresh"), Ok(Command::Refresh));
        assert_eq!(parse("connect ala"), Ok(Command::Connect(Target::Nick("ala"))));
        assert_eq!(parse("ask yes"), Ok(Command::AskYes));
        assert_eq!(parse("ask no"), Ok(Command::AskNo));
        assert_eq!(parse("stop"), Ok(Command::Stop));
        assert_eq!(parse("start"), Ok(Command::Start));
        assert_eq!(parse("keyframe"), Ok(Command::Keyframe));
        assert_eq!(parse("delay 0"), Ok(Command::Delay(0)));
        assert_eq!(parse("delay 150"), Ok(Command::Delay(150)));
        assert_eq!(parse("delay 60000"), Ok(Command::Delay(60_000)));
        for bad in ["delay", "delay 60001", "delay -1", "delay 1.5", "delay 99999999999", "delay 1 2"] {
            assert_eq!(parse(bad).map_err(|e| e.code), Err(ErrorCode::BadArgument), "{bad}");
        }
        assert_eq!(
            parse("media video off"),
            Ok(Command::MediaState(MediaState { kind: MediaKind::Video, on: false }))
        );
        assert_eq!(
            parse("media audio on"),
            Ok(Command::MediaState(MediaState { kind: MediaKind::Audio, on: true }))
        );
        for bad in ["media", "media video", "media video yes", "media screen off", "media audio off x"] {
            assert_eq!(parse(bad).map_err(|e| e.code), Err(ErrorCode::BadArgument), "{bad}");
        }
        assert_eq!(parse("msg hello there"), Ok(Command::Msg("hello there")));
        let id: ClientId = "10.0.0.2:5".parse().unwrap();
        assert_eq!(parse("features group"), Ok(Command::Features("group")));
        assert_eq!(parse("features group later-thing"), Ok(Command::Features("group later-thing")));
        assert_eq!(parse("invite cecylia"), Ok(Command::Invite(Target::Nick("cecylia"))));
        assert_eq!(parse("keyframe 10.0.0.2:5"), Ok(Command::KeyframeOf(id)));
        assert_eq!(parse("delay 40 10.0.0.2:5"), Ok(Command::DelayOf(40, id)));
        for bad in
            ["features", "features ", "features GROUP", "invite", "keyframe x", "keyframe ", "delay 40 x"]
        {
            assert_eq!(parse(bad).map_err(|e| e.code), Err(ErrorCode::BadArgument), "{bad}");
        }
        assert_eq!(parse("ping"), Ok(Command::Ping));
        assert_eq!(parse("auth tajne hasło"), Ok(Command::Auth("tajne hasło")));
        assert_eq!(parse("block ala"), Ok(Command::Block(Target::Nick("ala"))));
        assert_eq!(parse("unblock 10.0.0.1"), Ok(Command::Unblock(Target::Ip([10, 0, 0, 1].into()))));
        assert_eq!(
            parse("video 123 k 10"),
            Ok(Command::Media(MediaHeader { kind: MediaKind::Video, pts: 123, key: true, len: 10 }))
        );
        assert_eq!(
            parse("audio 0 - 1"),
            Ok(Command::Media(MediaHeader { kind: MediaKind::Audio, pts: 0, key: false, len: 1 }))
        );
    }

    #[test]
    fn strictness() {
        assert_eq!(parse("ASK YES").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(parse("ask  yes").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("ask yes x").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("ask maybe").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(parse("   ").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(parse("ping ").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("name a b").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("name -").unwrap_err().code, ErrorCode::BadName);
        assert_eq!(parse("connect").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("connect ").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("msg").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("start now").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("block").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("block a b").unwrap_err().code, ErrorCode::BadArgument);
        assert_eq!(parse("unblock -").unwrap_err().code, ErrorCode::BadArgument);
    }

    #[test]
    fn media_errors_say_how_much_to_skip() {
        let e = parse("video x k 10").unwrap_err();
        assert_eq!((e.code, e.skip), (ErrorCode::BadArgument, 10));
        let e = parse("video 1 z 10").unwrap_err();
        assert_eq!((e.code, e.skip), (ErrorCode::BadArgument, 10));
        let e = parse("video 1 k -5").unwrap_err();
        assert_eq!((e.code, e.skip), (ErrorCode::BadArgument, 0));
        let e = parse("video 1 k 1048577").unwrap_err();
        assert_eq!(e.code, ErrorCode::FrameTooLarge);
        assert!(parse("video 1 k 1048576").is_ok());
    }

    #[test]
    fn encode_round_trips() {
        for line in [
            "name ala",
            "refresh",
            "connect 10.0.0.1:4",
            "ask yes",
            "ask no",
            "stop",
            "video 5 k 7",
            "audio 9 - 3",
            "keyframe",
            "media audio off",
            "media video on",
            "msg a b c",
            "ping",
            "block ala",
            "block 10.0.0.1:4",
            "unblock 10.0.0.1",
        ] {
            let mut out = Vec::new();
            parse(line).unwrap().encode(&mut out);
            assert_eq!(out, format!("{line}\n").into_bytes());
        }
    }
}
