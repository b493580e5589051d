//! Splitting a byte stream into lines.

use crate::error::{FramingError, ParseError};

/// The result of looking for the next item in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// An item was found; `consumed` bytes of the buffer belong to it.
    Complete {
        /// The item.
        item: T,
        /// How many bytes of the buffer it used.
        consumed: usize,
    },
    /// More bytes are needed. This is not an error.
    Partial,
}

/// Finds the first complete line in `buf`.
///
/// The returned line excludes the `\n` and a `\r` right before it;
/// `consumed` includes them. `max_line` counts the `\n`.
///
/// # Errors
/// [`FramingError::LineTooLong`] when no `\n` appears within `max_line` bytes.
pub fn next_line(buf: &[u8], max_line: usize) -> Result<Status<&[u8]>, FramingError> {
    let window = &buf[..buf.len().min(max_line)];
    match window.iter().position(|&b| b == b'\n') {
        Some(pos) => {
            let line = &buf[..pos];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Status::Complete { item: line, consumed: pos + 1 })
        }
        None if buf.len() >= max_line => Err(FramingError::LineTooLong { limit: max_line }),
        None => Ok(Status::Partial),
    }
}

/// Checks that a line is UTF-8 without control characters, and returns it as text.
pub(crate) fn line_text(line: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(line).map_err(|_| ParseError::bad("line is not valid UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(ParseError::bad("line contains a control character"));
    }
    Ok(text)
}

/// Splits `text` at single spaces into exactly `N` fields after the command word.
///
/// Fails on double spaces, leading or trailing spaces and a wrong field count.
pub(crate) fn fields<const N: usize>(args: Option<&str>) -> Result<[&str; N], ParseError> {
    let mut out = [""; N];
    let Some(args) = args else {
        return if N == 0 { Ok(out) } else { Err(ParseError::bad("missing argument")) };
    };
    let mut parts = args.split(' ');
    for slot in out.iter_mut() {
        match parts.next() {
            Some(part) if !part.is_empty() => *slot = part,
            _ => {
                return Err(ParseError::bad("fields must be separated by exactly one space"));
            }
        }
    }
    if parts.next().is_some() {
        return Err(ParseError::bad("too many arguments"));
    }
    Ok(out)
}

/// Splits a line into its command word and the rest after the first space.
pub(crate) fn split_command(text: &str) -> (&str, Option<&str>) {
    match text.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_and_strips_cr() {
        assert_eq!(
            next_line(b"ping\r\nrest", 1024),
            Ok(Status::Complete { item: &b"ping"[..], consumed: 6 })
        );
        assert_eq!(next_line(b"pin", 1024), Ok(Status::Partial));
        assert_eq!(next_line(b"\n", 1024), Ok(Status::Complete { item: &b""[..], consumed: 1 }));
    }

    #[test]
    fn limit_counts_the_newline() {
        let mut exact = vec![b'a'; 1023];
        exact.push(b'\n');
        assert!(matches!(next_line(&exact, 1024), Ok(Status::Complete { consumed: 1024, .. })));
        let long = vec![b'a'; 1024];
        assert_eq!(next_line(&long, 1024), Err(FramingError::LineTooLong { limit: 1024 }));
        assert_eq!(next_line(&long[..1023], 1024), Ok(Status::Partial));
    }

    #[test]
    fn fields_are_strict() {
        assert_eq!(fields::<1>(Some("yes")), Ok(["yes"]));
        assert!(fields::<1>(Some(" yes")).is_err());
        assert!(fields::<1>(Some("yes x")).is_err());
        assert!(fields::<1>(Some("")).is_err());
        assert!(fields::<1>(None).is_err());
        assert!(fields::<0>(Some("x")).is_err());
        assert_eq!(fields::<3>(Some("1 k 5")), Ok(["1", "k", "5"]));
        assert!(fields::<3>(Some("1  k 5")).is_err());
    }

    #[test]
    fn rejects_nul_and_bad_utf8() {
        assert!(line_text(b"ping\0").is_err());
        assert!(line_text(b"\xff\xfe").is_err());
        assert_eq!(line_text("msg cześć".as_bytes()), Ok("msg cześć"));
    }
}
