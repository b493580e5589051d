//! Errors: the framing errors that end a connection, the parse errors that
//! answer one line, and the error codes of the wire format.

use std::fmt;

/// The `<code>` of an `error <code> [text]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The first word of the line is not a command.
    UnknownCommand,
    /// The command is known, but its arguments are not what it takes.
    BadArgument,
    /// `connect` named nobody who is connected.
    NoSuchClient,
    /// `connect` named a bare IP that more than one client has.
    Ambiguous,
    /// `connect` named the caller itself.
    SelfCall,
    /// The caller is itself ringing or in a call.
    Busy,
    /// `ask yes` or `ask no` from a client that is not being asked.
    NotAsked,
    /// Media, `keyframe` or `msg` outside an active call, or `stop` outside any call.
    NotInCall,
    /// Another client already has this nick (compared case-insensitively).
    NameTaken,
    /// The nick is not 1-32 letters, digits, `-`, `_` or `.`.
    BadName,
    /// A line longer than the limit; the server closes the connection.
    LineTooLong,
    /// A media payload larger than the limit; the server closes the connection.
    FrameTooLarge,
    /// Too many `connect`s in a short time.
    RateLimited,
    /// The server is full, or this address has too many connections.
    Full,
    /// A line or frame did not complete in time; the server closes the connection.
    Timeout,
    /// The server requires a password: send `auth <password>` first.
    AuthRequired,
    /// Wrong password; the server closes the connection.
    AuthFailed,
    /// The server accepts only TLS connections; it closes this one.
    TlsRequired,
    /// `invite`: the invited client, or a party of the call, has not turned
    /// on group calls (`features group`).
    NotSupported,
    /// `invite`: the call already has as many parties (and pending
    /// invitations) as the server allows.
    RoomFull,
}

impl ErrorCode {
    /// Every code, in the order `docs/PROTOCOL.md` lists them.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::UnknownCommand,
        ErrorCode::BadArgument,
        ErrorCode::NoSuchClient,
        ErrorCode::Ambiguous,
        ErrorCode::SelfCall,
        ErrorCode::Busy,
        ErrorCode::NotAsked,
        ErrorCode::NotInCall,
        ErrorCode::NameTaken,
        ErrorCode::BadName,
        ErrorCode::LineTooLong,
        ErrorCode::FrameTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Full,
        ErrorCode::Timeout,
        ErrorCode::AuthRequired,
        ErrorCode::AuthFailed,
        ErrorCode::TlsRequired,
        ErrorCode::NotSupported,
        ErrorCode::RoomFull,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownCommand => "unknown-command",
            ErrorCode::BadArgument => "bad-argument",
            ErrorCode::NoSuchClient => "no-such-client",
            ErrorCode::Ambiguous => "ambiguous",
            ErrorCode::SelfCall => "self",
            ErrorCode::Busy => "busy",
            ErrorCode::NotAsked => "not-asked",
            ErrorCode::NotInCall => "not-in-call",
            ErrorCode::NameTaken => "name-taken",
            ErrorCode::BadName => "bad-name",
            ErrorCode::LineTooLong => "line-too-long",
            ErrorCode::FrameTooLarge => "frame-too-large",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::Full => "full",
            ErrorCode::Timeout => "timeout",
            ErrorCode::AuthRequired => "auth-required",
            ErrorCode::AuthFailed => "auth-failed",
            ErrorCode::TlsRequired => "tls-required",
            ErrorCode::NotSupported => "not-supported",
            ErrorCode::RoomFull => "room-full",
        }
    }

    /// Parses a code from the wire.
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the server closes the connection after sending this code.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::LineTooLong
                | ErrorCode::FrameTooLarge
                | ErrorCode::Full
                | ErrorCode::Timeout
                | ErrorCode::AuthFailed
                | ErrorCode::TlsRequired
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stream that can no longer be split into lines and frames. The server
/// answers with the matching error code and closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// No `\n` within the line limit.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded, in bytes including the newline.
        limit: usize,
    },
    /// A media header announced more bytes than the frame limit.
    #[error("frame of {len} bytes is larger than the limit of {limit}")]
    FrameTooLarge {
        /// The announced length (saturated at `u64::MAX`).
        len: u64,
        /// The limit that was exceeded.
        limit: u32,
    },
}

impl FramingError {
    /// The error code the server sends before closing.
    pub fn code(self) -> ErrorCode {
        match self {
            FramingError::LineTooLong { .. } => ErrorCode::LineTooLong,
            FramingError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
        }
    }
}

/// A complete line that is not a valid message. The connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct ParseError {
    /// The code to answer with.
    pub code: ErrorCode,
    /// A short human-readable reason, sent after the code.
    pub reason: &'static str,
    /// Payload bytes that follow this line and must be skipped to stay in
    /// sync: non-zero only for a media header whose length parsed but whose
    /// other fields did not.
    pub skip: u32,
}

impl ParseError {
    pub(crate) fn new(code: ErrorCode, reason: &'static str) -> ParseError {
        ParseError { code, reason, skip: 0 }
    }

    pub(crate) fn unknown(reason: &'static str) -> ParseError {
        ParseError::new(ErrorCode::UnknownCommand, reason)
    }

    pub(crate) fn bad(reason: &'static str) -> ParseError {
        ParseError::new(ErrorCode::BadArgument, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("nope"), None);
    }
}
