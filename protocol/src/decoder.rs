//! A stream decoder over a caller-owned buffer: lines and media payloads.

use crate::error::{ErrorCode, FramingError, ParseError};
use crate::group::Relayed;
use crate::line::{Status, next_line};
use crate::types::{ClientId, MediaHeader};
use crate::{Command, MAX_FRAME, MAX_LINE, ServerMsg};

/// One item of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a, M> {
    /// A message that is not media.
    Message(M),
    /// A media frame with its whole payload.
    Media {
        /// Which party sent it, when the server said so (`from <id> video
        /// ...`, to a client that turned on group calls).
        from: Option<ClientId>,
        /// The parsed header line.
        header: MediaHeader,
        /// Exactly `header.len` payload bytes.
        payload: &'a [u8],
    },
    /// A line that is not a valid message. Any payload it announced has been
    /// consumed too, so the stream stays in sync.
    Invalid(ParseError),
}

/// Splits a byte stream into [`Decoded`] items.
///
/// The decoder holds no bytes: the caller appends what it reads to its own
/// buffer, calls a `decode_*` method until it returns [`Status::Partial`],
/// and drops the consumed bytes from the front. A media item is returned only
/// when its whole payload is in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max_line: usize,
    max_frame: u32,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(MAX_LINE, MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder with the given line limit (bytes, including `\n`) and frame limit.
    pub fn new(max_line: usize, max_frame: u32) -> Decoder {
        Decoder { max_line, max_frame }
    }

    /// Decodes the next item sent by a server.
    ///
    /// # Errors
    /// A [`FramingError`] when the stream cannot continue (over-long line or frame).
    pub fn decode_server<'a>(
        &self,
        buf: &'a [u8],
    ) -> Result<Status<Decoded<'a, ServerMsg<'a>>>, FramingError> {
        self.decode(buf, |line| match ServerMsg::parse(line, self.max_frame) {
            Ok(ServerMsg::Media(h)) => Ok(Err((h, None))),
            Ok(ServerMsg::From { id, msg: Relayed::Media(h) }) => Ok(Err((h, Some(id)))),
            other => other.map(Ok),
        })
    }

    /// Decodes the next item sent by a client.
    ///
    /// # Errors
    /// A [`FramingError`] when the stream cannot continue (over-long line or frame).
    pub fn decode_client<'a>(&self, buf: &'a [u8]) -> Result<Status<Decoded<'a, Command<'a>>>, FramingError> {
        self.decode(buf, |line| match Command::parse(line, self.max_frame) {
            Ok(Command::Media(h)) => Ok(Err((h, None))),
            other => other.map(Ok),
        })
    }

    /// `parse` returns `Ok(Ok(message))`, `Ok(Err((media header, sender)))`
    /// or a parse error.
    fn decode<'a, M>(
        &self,
        buf: &'a [u8],
        parse: impl FnOnce(&'a [u8]) -> Result<Result<M, (MediaHeader, Option<ClientId>)>, ParseError>,
    ) -> Result<Status<Decoded<'a, M>>, FramingError> {
        let (line, used) = match next_line(buf, self.max_line)? {
            Status::Complete { item, consumed } => (item, consumed),
            Status::Partial => return Ok(Status::Partial),
        };
        let (item, payload_len) = match parse(line) {
            Ok(Ok(msg)) => (Decoded::Message(msg), 0),
            Ok(Err((header, from))) => {
                let len = header.len as usize;
                match buf.get(used..used + len) {
                    Some(payload) => (Decoded::Media { from, header, payload }, len),
                    None => return Ok(Status::Partial),
                }
            }
            Err(e) if e.code == ErrorCode::FrameTooLarge => {
                return Err(FramingError::FrameTooLarge { len: u64::MAX, limit: self.max_frame });
            }
            Err(e) => {
                let skip = e.skip as usize;
                (Decoded::Invalid(e), skip)
            }
        };
        if buf.len() < used + payload_len {
            return Ok(Status::Partial);
        }
        Ok(Status::Complete { item, consumed: used + payload_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MediaKind;

    fn drain(input: &[u8]) -> (Vec<String>, Option<FramingError>) {
        let dec = Decoder::default();
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            match dec.decode_client(&input[at..]) {
                Ok(Status::Complete { item, consumed }) => {
                    out.push(format!("{item:?}"));
                    at += consumed;
                }
                Ok(Status::Partial) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn media_waits_for_its_payload() {
        let dec = Decoder::default();
        assert_eq!(dec.decode_client(b"video 1 k 4\nab"), Ok(Status::Partial));
        let Ok(Status::Complete { item, consumed }) = dec.decode_client(b"video 1 k 4\nabcdping\n") else {
            panic!("expected a frame");
        };
        assert_eq!(consumed, 16);
        assert_eq!(
            item,
            Decoded::Media {
                from: None,
                header: MediaHeader { kind: MediaKind::Video, pts: 1, key: true, len: 4 },
                payload: b"abcd"
            }
        );
    }

    #[test]
    fn payload_bytes_are_never_parsed_as_lines() {
        let (items, err) = drain(b"audio 1 - 5\nping\nping\n");
        assert_eq!(err, None);
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(items[1].contains("Ping"));
    }

    #[test]
    fn bad_header_skips_its_payload() {
        let (items, err) = drain(b"video x k 3\nabcping\n");
        assert_eq!(err, None);
        assert_eq!(items.len(), 2);
        assert!(items[0].contains("Invalid"));
        assert!(items[1].contains("Ping"));
    }

    #[test]
    fn media_in_an_envelope_names_its_sender() {
        let dec = Decoder::default();
        let Ok(Status::Complete { item, consumed }) = dec.decode_server(b"from 10.0.0.3:9 audio 5 k 2\nxyz")
        else {
            panic!("expected a frame");
        };
        assert_eq!(consumed, 30);
        let from = "10.0.0.3:9".parse().ok();
        let header = MediaHeader { kind: MediaKind::Audio, pts: 5, key: true, len: 2 };
        assert_eq!(item, Decoded::Media { from, header, payload: b"xy" });
        let Ok(Status::Complete { item, consumed }) = dec.decode_server(b"from x audio 5 k 2\nxyping\n")
        else {
            panic!("expected an invalid line");
        };
        assert!(matches!(item, Decoded::Invalid(_)) && consumed == 21, "{item:?} {consumed}");
    }

    #[test]
    fn huge_frame_is_fatal() {
        let (_, err) = drain(b"video 1 k 4294967295\n");
        assert!(matches!(err, Some(FramingError::FrameTooLarge { .. })));
    }
}
