//! The bench's side of the wire: synthetic frames with a timestamp inside,
//! and a streaming parser for what a receiver reads.
//!
//! Every payload starts with 8 bytes: nanoseconds since [`epoch`], little
//! endian, taken by the sender. Sender and receiver run in this one process,
//! so the receiver's `now - stamp` is the time the frame spent between the
//! two: in the server (relay runs) or in the kernel only (direct runs).

use std::sync::OnceLock;
use std::time::Instant;

use komunikator_protocol::{MediaHeader, MediaKind, Relayed, ServerMsg, Status, next_line};

/// Bytes of timestamp at the start of every payload; payloads are at least this long.
pub const STAMP: usize = 8;

/// The process-wide clock origin shared by senders and receivers.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    ns_of(Instant::now())
}

/// Nanoseconds from [`epoch`] to `at`.
pub fn ns_of(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// Appends one media frame (header line and payload) of `len` payload bytes
/// stamped `stamp_ns` to `out`.
pub fn encode_frame(out: &mut Vec<u8>, kind: MediaKind, key: bool, len: usize, stamp_ns: u64) {
    let len = len.max(STAMP);
    MediaHeader { kind, pts: stamp_ns / 1000, key, len: len as u32 }.encode(out);
    out.extend_from_slice(&stamp_ns.to_le_bytes());
    // The rest of the payload is filler; its content does not matter to the server.
    out.resize(out.len() + len - STAMP, 0x5a);
}

/// One item a receiver saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete media frame and the stamp from its payload.
    Media {
        /// Audio or video.
        kind: MediaKind,
        /// Its keyframe flag.
        key: bool,
        /// Payload bytes.
        len: usize,
        /// The header's `pts`, µs (the Komunikator client's capture time).
        pts: u64,
        /// The sender's timestamp, nanoseconds since [`epoch`].
        stamp_ns: u64,
    },
    /// Any other line, as text (control traffic is rare).
    Line(String),
}

/// Splits a byte stream into [`Event`]s without buffering payloads: only
/// header lines and the 8-byte stamp are kept.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    media: Option<MediaHeader>,
    left: usize,
    stamp: [u8; STAMP],
    have: usize,
}

impl Parser {
    /// Feeds bytes read from the socket; calls `on` for every completed item.
    ///
    /// # Errors
    /// When the stream is not valid server output (the bench stops the run).
    pub fn feed(&mut self, mut data: &[u8], mut on: impl FnMut(Event)) -> anyhow::Result<()> {
        while !data.is_empty() {
            if let Some(header) = self.media {
                let n = self.left.min(data.len());
                let offset = header.len as usize - self.left;
                if offset < STAMP {
                    let take = (STAMP - offset).min(n);
                    self.stamp[self.have..self.have + take].copy_from_slice(&data[..take]);
                    self.have += take;
                }
                self.left -= n;
                data = &data[n..];
                if self.left == 0 {
                    self.media = None;
                    let stamp_ns = if self.have == STAMP { u64::from_le_bytes(self.stamp) } else { 0 };
                    on(Event::Media {
                        kind: header.kind,
                        key: header.key,
                        len: header.len as usize,
                        pts: header.pts,
                        stamp_ns,
                    });
                }
                continue;
            }
            let (line, used) = if self.line.is_empty() {
                match next_line(data, 4096)? {
                    Status::Complete { item, consumed } => (item, consumed),
                    Status::Partial => {
                        self.line.extend_from_slice(data);
                        return Ok(());
                    }
                }
            } else {
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.line.extend_from_slice(&data[..=i]);
                        data = &data[i + 1..];
                        let line = std::mem::take(&mut self.line);
                        self.handle_line(&line, &mut on)?;
                        continue;
                    }
                    None => {
                        self.line.extend_from_slice(data);
                        anyhow::ensure!(self.line.len() < 4096, "line too long from the peer");
                        return Ok(());
                    }
                }
            };
            data = &data[used..];
            self.handle_line(line, &mut on)?;
        }
        Ok(())
    }

    fn handle_line(&mut self, line: &[u8], on: &mut impl FnMut(Event)) -> anyhow::Result<()> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match ServerMsg::parse(line, u32::MAX) {
            // A group call's frames come in the `from <id>` envelope.
            Ok(ServerMsg::Media(header) | ServerMsg::From { msg: Relayed::Media(header), .. }) => {
                self.media = Some(header);
                self.left = header.len as usize;
                self.have = 0;
            }
            _ => on(Event::Line(String::from_utf8_lossy(line).into_owned())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let mut bytes = b"ask yes\n".to_vec();
        encode_frame(&mut bytes, MediaKind::Video, true, 20, 1234);
        encode_frame(&mut bytes, MediaKind::Audio, false, 3, 99);
        bytes.extend_from_slice(b"keyframe\n");
        for chunk in 1..bytes.len() {
            let mut p = Parser::default();
            let mut seen = Vec::new();
            for piece in bytes.chunks(chunk) {
                p.feed(piece, |e| seen.push(e)).unwrap();
            }
            assert_eq!(seen.len(), 4, "chunk {chunk}: {seen:?}");
            assert_eq!(seen[0], Event::Line("ask yes".into()));
            assert_eq!(
                seen[1],
                Event::Media { kind: MediaKind::Video, key: true, len: 20, pts: 1, stamp_ns: 1234 }
            );
            assert_eq!(
                seen[2],
                Event::Media { kind: MediaKind::Audio, key: false, len: 8, pts: 0, stamp_ns: 99 }
            );
            assert_eq!(seen[3], Event::Line("keyframe".into()));
        }
    }

    #[test]
    fn frames_in_the_group_envelope_are_frames() {
        let mut bytes = b"from 127.0.0.1:9 ".to_vec();
        encode_frame(&mut bytes, MediaKind::Audio, true, 12, 77);
        let mut p = Parser::default();
        let mut seen = Vec::new();
        p.feed(&bytes, |e| seen.push(e)).unwrap();
        assert_eq!(seen, [Event::Media { kind: MediaKind::Audio, key: true, len: 12, pts: 0, stamp_ns: 77 }]);
    }
}
