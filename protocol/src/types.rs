//! The small values that appear inside messages.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::MAX_NICK_CHARS;
use crate::error::ParseError;

/// A client's id: `IP:PORT` of its connection as the server sees it.
pub type ClientId = SocketAddr;

/// A nick as it appears on the wire; `None` is written `-` ("no nick").
pub type Nick<'a> = Option<&'a str>;

/// Whether `s` is a nick a client may claim: 1-32 letters, digits, `-`, `_`
/// or `.`, and not `-` alone (which means "no nick").
pub fn is_valid_nick(s: &str) -> bool {
    let count = s.chars().count();
    (1..=MAX_NICK_CHARS).contains(&count)
        && s != "-"
        && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(crate) fn parse_nick(s: &str) -> Result<Nick<'_>, ParseError> {
    match s {
        "-" => Ok(None),
        s if is_valid_nick(s) => Ok(Some(s)),
        _ => Err(ParseError::bad("not a valid nick")),
    }
}

pub(crate) fn parse_id(s: &str) -> Result<ClientId, ParseError> {
    s.parse().map_err(|_| ParseError::bad("not a client id (IP:PORT)"))
}

/// Writes a nick, or `-` for none.
pub(crate) struct NickDisplay<'a>(pub Nick<'a>);

impl fmt::Display for NickDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.unwrap_or("-"))
    }
}

/// Whom a `connect` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// An exact client id.
    Id(ClientId),
    /// A bare IP; valid when exactly one client has it.
    Ip(IpAddr),
    /// A nick, compared case-insensitively.
    Nick(&'a str),
}

impl<'a> Target<'a> {
    pub(crate) fn parse(s: &'a str) -> Result<Target<'a>, ParseError> {
        if let Ok(id) = s.parse() {
            Ok(Target::Id(id))
        } else if let Ok(ip) = s.parse() {
            Ok(Target::Ip(ip))
        } else if is_valid_nick(s) {
            Ok(Target::Nick(s))
        } else {
            Err(ParseError::bad("target must be IP:PORT, an IP or a nick"))
        }
    }
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => id.fmt(f),
            Target::Ip(ip) => ip.fmt(f),
            Target::Nick(nick) => f.write_str(nick),
        }
    }
}

/// A client's availability as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Can be called.
    Free,
    /// Ringing or in a call.
    Busy,
}

impl PeerState {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Free => "free",
            PeerState::Busy => "busy",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<PeerState, ParseError> {
        match s {
            "free" => Ok(PeerState::Free),
            "busy" => Ok(PeerState::Busy),
            _ => Err(ParseError::bad("state must be free or busy")),
        }
    }
}

/// The state word of a `presence` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The client is connected and can be called.
    Free,
    /// The client is ringing or in a call.
    Busy,
    /// The client has left.
    Gone,
}

impl Presence {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Free => "free",
            Presence::Busy => "busy",
            Presence::Gone => "gone",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Presence, ParseError> {
        match s {
            "free" => Ok(Presence::Free),
            "busy" => Ok(Presence::Busy),
            "gone" => Ok(Presence::Gone),
            _ => Err(ParseError::bad("presence must be free, busy or gone")),
        }
    }
}

impl From<PeerState> for Presence {
    fn from(state: PeerState) -> Presence {
        match state {
            PeerState::Free => Presence::Free,
            PeerState::Busy => Presence::Busy,
        }
    }
}

/// Why a call ended, as told to the other party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The peer sent `stop` during the call.
    Hangup,
    /// The caller stopped while it was ringing.
    Cancelled,
    /// Nobody answered within the ring timeout.
    Timeout,
    /// The peer's connection ended.
    Disconnected,
}

impl StopReason {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Hangup => "hangup",
            StopReason::Cancelled => "cancelled",
            StopReason::Timeout => "timeout",
            StopReason::Disconnected => "disconnected",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<StopReason, ParseError> {
        match s {
            "hangup" => Ok(StopReason::Hangup),
            "cancelled" => Ok(StopReason::Cancelled),
            "timeout" => Ok(StopReason::Timeout),
            "disconnected" => Ok(StopReason::Disconnected),
            _ => Err(ParseError::bad("unknown stop reason")),
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An H.264 access unit, byte-stream format.
    Video,
    /// One Opus packet.
    Audio,
}

impl MediaKind {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

/// A sender's switch for one kind of media: `media <audio|video> <on|off>`.
/// `off` means the user turned it off on purpose (muted the microphone,
/// turned the camera off), not that the network lost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaState {
    /// Which switch.
    pub kind: MediaKind,
    /// `on` (true) or `off` (false).
    pub on: bool,
}

impl MediaState {
    /// Parses the two fields after `media`.
    pub(crate) fn parse(args: Option<&str>) -> Result<MediaState, ParseError> {
        let [kind, on] = crate::line::fields::<2>(args)?;
        let kind = match kind {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => return Err(ParseError::bad("media takes audio or video")),
        };
        let on = match on {
            "on" => true,
            "off" => false,
            _ => return Err(ParseError::bad("media takes on or off")),
        };
        Ok(MediaState { kind, on })
    }

    /// The line's text without its newline, e.g. `media video off`.
    pub fn line(self) -> String {
        format!("media {} {}", self.kind.as_str(), if self.on { "on" } else { "off" })
    }
}

/// The header line of a media frame: `video|audio <pts> <k|-> <len>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaHeader {
    /// Audio or video.
    pub kind: MediaKind,
    /// Presentation time in microseconds, chosen by the sender.
    pub pts: u64,
    /// A keyframe (video) or an independent packet (audio): flag `k`.
    pub key: bool,
    /// The payload length in bytes that follows the line.
    pub len: u32,
}

impl MediaHeader {
    /// Parses the fields after `video` or `audio`.
    ///
    /// The length is checked first, so that a header whose length is good but
    /// whose other fields are not still tells the reader how much to skip.
    pub(crate) fn parse(
        kind: MediaKind,
        args: Option<&str>,
        max_frame: u32,
    ) -> Result<MediaHeader, ParseError> {
        let [pts, flags, len] = crate::line::fields::<3>(args)?;
        let len = parse_len(len, max_frame)?;
        let with_skip = |mut e: ParseError| {
            e.skip = len;
            e
        };
        let pts = pts.parse::<u64>().map_err(|_| with_skip(ParseError::bad("pts must be a u64")))?;
        let key = match flags {
            "k" => true,
            "-" => false,
            _ => return Err(with_skip(ParseError::bad("flags must be k or -"))),
        };
        Ok(MediaHeader { kind, pts, key, len })
    }

    /// Appends the header line, with its newline, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let flag = if self.key { 'k' } else { '-' };
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, "{} {} {} {}", self.kind.as_str(), self.pts, flag, self.len);
    }
}

/// Parses a payload length: a decimal number from 1 to `max_frame`.
fn parse_len(s: &str, max_frame: u32) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::bad("length must be a decimal number"));
    }
    let len = s.parse::<u64>().unwrap_or(u64::MAX);
    if len == 0 {
        return Err(ParseError::bad("length must be at least 1"));
    }
    if len > u64::from(max_frame) {
        return Err(ParseError::new(crate::ErrorCode::FrameTooLarge, "frame larger than the limit"));
    }
    // len <= max_frame, which is a u32.
    Ok(len as u32)
}

/// The longest queueing a `delay` line may report, in ms.
pub const MAX_DELAY_MS: u32 = 60_000;

/// Parses the `<ms>` of a `delay` line: a decimal number from 0 to
/// [`MAX_DELAY_MS`].
///
/// # Errors
/// `bad-argument` for anything else.
pub fn parse_delay_ms(s: &str) -> Result<u32, crate::ParseError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(crate::ParseError::bad("delay must be a decimal number of milliseconds"));
    }
    s.parse::<u32>()
        .ok()
        .filter(|ms| *ms <= MAX_DELAY_MS)
        .ok_or(crate::ParseError::bad("delay is at most 60000 ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        assert!(is_valid_nick("ala"));
        assert!(is_valid_nick("Łukasz_2.0-x"));
        assert!(is_valid_nick(&"a".repeat(32)));
        assert!(!is_valid_nick(&"a".repeat(33)));
        assert!(!is_valid_nick(""));
        assert!(!is_valid_nick("-"));
        assert!(!is_valid_nick("a b"));
        assert!(!is_valid_nick("a:b"));
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("127.0.0.1:5").unwrap(), Target::Id("127.0.0.1:5".parse().unwrap()));
        assert_eq!(Target::parse("[::1]:5").unwrap(), Target::Id("[::1]:5".parse().unwrap()));
        assert_eq!(Target::parse("10.0.0.1").unwrap(), Target::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(Target::parse("ala").unwrap(), Target::Nick("ala"));
        assert!(Target::parse("").is_err());
        assert!(Target::parse(&"x".repeat(300)).is_err());
        assert!(Target::parse("1.2.3.4:99999").is_err());
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_len("1", 10), Ok(1));
        assert_eq!(parse_len("10", 10), Ok(10));
        assert_eq!(parse_len("11", 10).unwrap_err().code, crate::ErrorCode::FrameTooLarge);
        assert_eq!(parse_len("4294967295", 1 << 20).unwrap_err().code, crate::ErrorCode::FrameTooLarge);
        assert_eq!(
            parse_len("99999999999999999999999", 10).unwrap_err().code,
            crate::ErrorCode::FrameTooLarge
        );
        assert_eq!(parse_len("0", 10).unwrap_err().code, crate::ErrorCode::BadArgument);
        assert_eq!(parse_len("-1", 10).unwrap_err().code, crate::ErrorCode::BadArgument);
        assert_eq!(parse_len("x", 10).unwrap_err().code, crate::ErrorCode::BadArgument);
        assert_eq!(parse_len("+1", 10).unwrap_err().code, crate::ErrorCode::BadArgument);
    }
}
