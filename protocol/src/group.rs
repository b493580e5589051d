//! The values of group calls (three or more parties in one call): feature
//! names, why an invitation did not end in a join, and the `from <id> ...`
//! envelope in which a server tells a group-capable client which party a
//! relayed line or frame comes from. See "Group calls" in `docs/PROTOCOL.md`.

use std::fmt;
use std::io::Write;
use std::num::NonZeroU32;

use crate::error::ParseError;
use crate::line::{fields, split_command};
use crate::types::{ClientId, MediaHeader, MediaKind, MediaState, parse_delay_ms};

/// The feature a client turns on with `features group`: group calls, and
/// every relayed line and frame in the `from <id> ...` envelope.
pub const FEATURE_GROUP: &str = "group";

/// The most feature names one `features` line may carry.
pub const MAX_FEATURES: usize = 16;

/// Checks a `features` argument: 1 to [`MAX_FEATURES`] names of 1-32
/// characters `a-z`, `0-9` or `-`, separated by single spaces. An empty
/// list is allowed when `allow_empty` (the server's `ok features` may
/// turn nothing on).
pub(crate) fn check_features(list: &str, allow_empty: bool) -> Result<(), ParseError> {
    if list.is_empty() {
        return if allow_empty { Ok(()) } else { Err(ParseError::bad("features needs at least one name")) };
    }
    let mut n = 0;
    for name in list.split(' ') {
        n += 1;
        let ok = (1..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ParseError::bad("feature names are a-z, 0-9 and -, one space apart"));
        }
    }
    if n > MAX_FEATURES {
        return Err(ParseError::bad("at most 16 features"));
    }
    Ok(())
}

/// Why an invitation ended without a join, as told to the inviter in
/// `declined <id> <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclineReason {
    /// The invited client said `ask no` (or `stop`).
    No,
    /// Nobody answered within the ring timeout.
    Timeout,
    /// The invited client's connection ended.
    Disconnected,
}

impl DeclineReason {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::No => "no",
            DeclineReason::Timeout => "timeout",
            DeclineReason::Disconnected => "disconnected",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<DeclineReason, ParseError> {
        match s {
            "no" => Ok(DeclineReason::No),
            "timeout" => Ok(DeclineReason::Timeout),
            "disconnected" => Ok(DeclineReason::Disconnected),
            _ => Err(ParseError::bad("decline reason must be no, timeout or disconnected")),
        }
    }
}

/// What may come inside a `from <id> ...` envelope: the lines a party sends
/// to the others, and `rate`, which the server says about a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed<'a> {
    /// `video|audio <pts> <flags> <len>`: a media frame from that party follows.
    Media(MediaHeader),
    /// `keyframe`: that party asks you for an independent video frame.
    Keyframe,
    /// `msg <text>`: a chat line from that party, to everyone in the call.
    Msg(&'a str),
    /// `delay <ms>`: how long your media waits on its way to that party.
    Delay(u32),
    /// `media <audio|video> <on|off>`: that party's microphone or camera switch.
    MediaState(MediaState),
    /// `rate <kbps>|-`: that party's connection is the limit for what you
    /// send it (already divided among the parties that send to it), or no
    /// longer is.
    Rate(Option<NonZeroU32>),
}

impl<'a> Relayed<'a> {
    pub(crate) fn parse(text: &'a str, max_frame: u32) -> Result<Relayed<'a>, ParseError> {
        let (word, args) = split_command(text);
        Ok(match word {
            "video" => Relayed::Media(MediaHeader::parse(MediaKind::Video, args, max_frame)?),
            "audio" => Relayed::Media(MediaHeader::parse(MediaKind::Audio, args, max_frame)?),
            "keyframe" => fields::<0>(args).map(|_| Relayed::Keyframe)?,
            "msg" => Relayed::Msg(args.filter(|t| !t.is_empty()).ok_or(ParseError::bad("msg needs text"))?),
            "delay" => Relayed::Delay(parse_delay_ms(fields::<1>(args)?[0])?),
            "media" => Relayed::MediaState(MediaState::parse(args)?),
            "rate" => Relayed::Rate(crate::server_msg::parse_rate(fields::<1>(args)?[0])?),
            _ => return Err(ParseError::bad("from carries media, keyframe, msg, delay, media or rate")),
        })
    }

    /// Appends `from <id> <line>`, with its newline; a media envelope
    /// writes only the header line.
    pub fn encode_from(&self, from: ClientId, out: &mut Vec<u8>) {
        let _ = write!(out, "from {from} ");
        let _ = match *self {
            Relayed::Media(header) => {
                header.encode(out);
                Ok(())
            }
            Relayed::Keyframe => writeln!(out, "keyframe"),
            Relayed::Msg(text) => writeln!(out, "msg {text}"),
            Relayed::Delay(ms) => writeln!(out, "delay {ms}"),
            Relayed::MediaState(state) => writeln!(out, "{}", state.line()),
            Relayed::Rate(Some(kbps)) => writeln!(out, "rate {kbps}"),
            Relayed::Rate(None) => writeln!(out, "rate -"),
        };
    }
}

impl<'a> Relayed<'a> {
    /// The same line as a two-party peer gets it, without the envelope.
    pub fn plain(self) -> crate::ServerMsg<'a> {
        use crate::ServerMsg;
        match self {
            Relayed::Media(header) => ServerMsg::Media(header),
            Relayed::Keyframe => ServerMsg::Keyframe,
            Relayed::Msg(text) => ServerMsg::Msg(text),
            Relayed::Delay(ms) => ServerMsg::Delay(ms),
            Relayed::MediaState(state) => ServerMsg::MediaState(state),
            Relayed::Rate(rate) => ServerMsg::Rate(rate),
        }
    }

    /// The line for one receiver, with its newline: in the envelope (`from
    /// <id> ...`) when the receiver turned on group calls (`enveloped`),
    /// otherwise bare. A media line is only the header.
    pub fn to_line(self, from: ClientId, enveloped: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        if enveloped {
            self.encode_from(from, &mut out);
        } else {
            self.plain().encode(&mut out);
        }
        out
    }
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_lists_are_strict() {
        assert!(check_features("group", false).is_ok());
        assert!(check_features("group simulcast-2", false).is_ok());
        assert!(check_features("", true).is_ok());
        for bad in ["", "Group", "group  x", " group", "group ", "gr_oup", "x ".repeat(17).trim_end()] {
            assert!(check_features(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_features(&"a".repeat(33), false).is_err());
    }

    #[test]
    fn relayed_lines_round_trip() {
        let from: ClientId = "127.0.0.1:7".parse().unwrap();
        for line in [
            "video 1 k 5",
            "audio 2 - 3",
            "keyframe",
            "msg dzień dobry",
            "delay 40",
            "media video off",
            "rate 300",
            "rate -",
        ] {
            let r = Relayed::parse(line, 100).unwrap_or_else(|e| panic!("{line}: {e}"));
            let mut out = Vec::new();
            r.encode_from(from, &mut out);
            assert_eq!(out, format!("from 127.0.0.1:7 {line}\n").into_bytes());
        }
        for bad in ["ping", "from 1.2.3.4:5 keyframe", "stop hangup", "msg", "video 1 k 101", "rate 0"] {
            assert!(Relayed::parse(bad, 100).is_err(), "{bad}");
        }
    }
}
