//! The Komunikator wire protocol, version 1, without any I/O.
//!
//! This crate owns the byte format described in `docs/PROTOCOL.md`: it turns
//! bytes into messages and messages into bytes, and nothing else. It opens no
//! socket, starts no thread and never panics on input, so the server, the
//! client and the fuzz target all share it.
//!
//! The stream is a sequence of lines of UTF-8 ending in `\n` (a `\r` before the
//! `\n` is ignored). A media line (`video ...` or `audio ...`) announces a
//! binary payload: its byte count is the last field and exactly that many
//! bytes follow the newline.
//!
//! * [`next_line`] finds the next complete line in a buffer, enforcing the
//!   line limit. Partial input is [`Status::Partial`], never an error.
//! * [`Command::parse`] parses a line a client sends; [`ServerMsg::parse`] a
//!   line the server sends. Both borrow from the input.
//! * [`Command::encode`] and [`ServerMsg::encode`] append one line to a buffer.
//! * [`Decoder`] drives the above over a stream, including media payloads, for
//!   readers that keep their own buffer (the client and the tests).

mod command;
mod decoder;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod line;
mod nick;
mod server_msg;
mod types;

pub use command::Command;
pub use decoder::{Decoded, Decoder};
pub use error::{ErrorCode, FramingError, ParseError};
pub use group::{DeclineReason, FEATURE_GROUP, MAX_FEATURES, Relayed};
pub use line::{Status, next_line};
pub use nick::{NickError, check_nick, nick_key};
pub use server_msg::ServerMsg;
pub use types::{
    ClientId, MAX_DELAY_MS, MediaHeader, MediaKind, MediaState, Nick, PeerState, Presence, StopReason,
    Target, is_valid_nick, parse_delay_ms,
};

/// The protocol name and version the server announces in `hello`.
pub const VERSION: &str = "komunikator/1";

/// The TCP port the server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 12345;

/// Longest line, in bytes, including the `\n`.
pub const MAX_LINE: usize = 1024;

/// Largest media payload, in bytes, that the server accepts by default.
pub const MAX_FRAME: u32 = 1 << 20;

/// Longest nick, in characters.
pub const MAX_NICK_CHARS: usize = 32;
