//! The body of the fuzz target, shared with the corpus regression test so
//! that every input the fuzzer ever kept is re-checked on stable Rust.

use crate::{Command, Decoded, Decoder, ServerMsg, Status};

/// Decodes `data` as a client stream and as a server stream, and checks:
/// nothing panics, every step consumes bytes and stays in bounds, and every
/// message that parses encodes back to a line that parses to the same message.
///
/// # Panics
/// When one of those properties does not hold: that is the bug the fuzzer reports.
pub fn check(data: &[u8]) {
    let decoder = Decoder::new(256, 4096);
    let mut at = 0;
    while let Ok(Status::Complete { item, consumed }) = decoder.decode_client(&data[at..]) {
        assert!(consumed > 0 && at + consumed <= data.len());
        if let Decoded::Message(cmd) = item {
            let mut line = Vec::new();
            cmd.encode(&mut line);
            let again = Command::parse(&line[..line.len() - 1], 4096).expect("encoded command parses");
            assert_eq!(again, cmd);
        }
        at += consumed;
    }
    let mut at = 0;
    while let Ok(Status::Complete { item, consumed }) = decoder.decode_server(&data[at..]) {
        assert!(consumed > 0 && at + consumed <= data.len());
        if let Decoded::Message(msg) = item {
            let line = msg.to_line();
            let again = ServerMsg::parse(&line[..line.len() - 1], 4096).expect("encoded message parses");
            assert_eq!(again, msg);
        }
        at += consumed;
    }
}
