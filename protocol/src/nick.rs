//! The rules a nick must follow to be claimed with `name`, and the key that
//! makes two nicks "the same" for uniqueness. Pure functions over Unicode
//! data from the unicode-rs crates (UTS #39 security mechanisms, NFKC,
//! scripts); no tables of our own.
//!
//! The rules, in the order they are checked (the first broken one is the
//! `bad-name` text):
//! 1. 1-32 characters, not `-` alone.
//! 2. No default-ignorable (invisible) character, such as U+3164 HANGUL FILLER
//!    or a zero-width joiner.
//! 3. In NFKC form: fullwidth, mathematical, circled or other compatibility
//!    letters, and accents typed as separate combining marks, are refused
//!    (the client can send the normalized form instead).
//! 4. Letters, digits, `-`, `_` and `.` only (as before).
//! 5. Every character allowed in identifiers by the UTS #39 General
//!    Security Profile (no obsolete, technical or limited-use characters).
//! 6. One script: digits and `-_.` belong to every script (they are
//!    "Common"), so `ola_2` is Latin and `оля-2` Cyrillic, but Cyrillic
//!    `а` inside Latin `аlice` is refused.
//! 7. In Latin, Greek and Cyrillic, no combining mark is left over after
//!    normalization: a letter with an accent is one character there.
//! 8. Not shaped like an IP address: digits and dots with at least one dot.
//!
//! Uniqueness compares [`nick_key`]s: the UTS #39 confusable skeleton of the
//! lowercased NFKC form, without the marks of rule 7, so `alıce`, `ALİCE`
//! and `alicé` are the same nick as `alice`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_script::{Script, UnicodeScript};
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::{GeneralSecurityProfile, MixedScript, skeleton};

use crate::MAX_NICK_CHARS;

/// Which nick rule a claim broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickError {
    /// Empty, longer than 32 characters, or `-` alone.
    Length,
    /// A default-ignorable (invisible) character.
    Invisible,
    /// Not in Unicode normalization form NFKC.
    NotNfkc,
    /// A character other than a letter, a digit, `-`, `_` or `.`.
    Character,
    /// A character restricted from identifiers by UTS #39.
    Restricted,
    /// Letters from more than one script.
    MixedScript,
    /// A combining mark on a Latin, Greek or Cyrillic letter.
    CombiningMark,
    /// Looks like an IP address.
    IpShaped,
}

impl NickError {
    /// The rule, as the text of the `bad-name` error.
    pub fn reason(self) -> &'static str {
        match self {
            NickError::Length => "nick must be 1-32 characters, and not - alone",
            NickError::Invisible => "nick must not contain invisible characters",
            NickError::NotNfkc => {
                "nick must be in NFKC form: no fullwidth, styled or circled letters, no separate accents"
            }
            NickError::Character => "nick must be letters, digits, - _ . only",
            NickError::Restricted => "nick has a character not allowed in identifiers (Unicode TS #39)",
            NickError::MixedScript => {
                "nick must use one script (mixed scripts, such as Latin with Cyrillic, are refused)"
            }
            NickError::CombiningMark => {
                "nick must not put combining marks on Latin, Greek or Cyrillic letters"
            }
            NickError::IpShaped => "nick must not look like an IP address",
        }
    }
}

impl std::fmt::Display for NickError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for NickError {}

/// Checks that `nick` may be claimed. See the module documentation.
///
/// # Errors
/// The first rule the nick breaks.
pub fn check_nick(nick: &str) -> Result<(), NickError> {
    let count = nick.chars().count();
    if !(1..=MAX_NICK_CHARS).contains(&count) || nick == "-" {
        return Err(NickError::Length);
    }
    if nick.chars().any(|c| c.identifier_type() == Some(IdentifierType::Default_Ignorable)) {
        return Err(NickError::Invisible);
    }
    if !nick.chars().eq(nick.nfkc()) {
        return Err(NickError::NotNfkc);
    }
    if !nick.chars().all(|c| c.is_alphanumeric() || is_combining_mark(c) || matches!(c, '-' | '_' | '.')) {
        return Err(NickError::Character);
    }
    if !nick.chars().all(|c| c.is_ascii() || c.identifier_allowed()) {
        return Err(NickError::Restricted);
    }
    if !nick.is_single_script() {
        return Err(NickError::MixedScript);
    }
    if nick
        .chars()
        .zip(nick.chars().skip(1))
        .any(|(base, mark)| is_combining_mark(mark) && needs_precomposed(base))
    {
        return Err(NickError::CombiningMark);
    }
    if nick.contains('.') && nick.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(NickError::IpShaped);
    }
    Ok(())
}

/// Whether a mark after `base` is refused: Latin, Greek and Cyrillic (and
/// Common characters such as digits) write accented letters as one character.
fn needs_precomposed(base: char) -> bool {
    matches!(base.script(), Script::Latin | Script::Greek | Script::Cyrillic | Script::Common)
}

/// The key under which nicks are unique: two nicks with the same key look
/// alike. Also used to find a nick given to `connect`.
pub fn nick_key(nick: &str) -> String {
    let folded: String = nick.nfkc().flat_map(char::to_lowercase).collect();
    let mut key = String::with_capacity(folded.len());
    let mut base = None;
    for c in skeleton(&folded) {
        if is_combining_mark(c) {
            if base.is_some_and(needs_precomposed) {
                continue;
            }
        } else {
            base = Some(c);
        }
        key.push(c);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_alikes_from_issue_13_are_refused_or_collide_with_alice() {
        let alice = nick_key("alice");
        let cases = [
            ("\u{430}lice", Err(NickError::MixedScript)), // Cyrillic а
            ("ａｌｉｃｅ", Err(NickError::NotNfkc)),      // fullwidth
            ("𝐚𝐥𝐢𝐜𝐞", Err(NickError::NotNfkc)),           // mathematical bold
            ("ⓐlice", Err(NickError::NotNfkc)),           // circled
            ("alice\u{3164}", Err(NickError::Invisible)), // Hangul filler
            ("alice\u{200d}", Err(NickError::Invisible)), // zero-width joiner
            ("ali\u{0307}ce", Err(NickError::CombiningMark)),
            ("alic\u{0301}e", Err(NickError::NotNfkc)), // composes to é
            ("a\u{0336}lice", Err(NickError::Restricted)), // strikethrough overlay
        ];
        for (nick, expected) in cases {
            assert_eq!(check_nick(nick), expected, "{nick:?}");
        }
        // Allowed on their own, but the same nick as alice (accents do not
        // make a Latin nick distinct).
        for nick in ["alıce", "ALİCE", "ALICE", "Alice", "alicé"] {
            assert_eq!(check_nick(nick), Ok(()), "{nick:?}");
            assert_eq!(nick_key(nick), alice, "{nick:?}");
        }
    }

    #[test]
    fn ordinary_nicks_in_one_script_are_fine_and_distinct() {
        for nick in ["ala", "Łukasz_2.0-x", "оля-2", "Ζωή", "山田", "नमस्ते", "x.y", "12345", "a"]
        {
            assert_eq!(check_nick(nick), Ok(()), "{nick:?}");
        }
        assert_ne!(nick_key("ala"), nick_key("ola"));
        assert_ne!(nick_key("оля"), nick_key("ola"));
        // The skeleton takes ł for a look-alike of l.
        assert_eq!(nick_key("Łukasz"), nick_key("lukasz"));
    }

    #[test]
    fn ip_shaped_long_and_odd_nicks_are_refused() {
        assert_eq!(check_nick("10.0.0.1"), Err(NickError::IpShaped));
        assert_eq!(check_nick("1.2"), Err(NickError::IpShaped));
        assert_eq!(check_nick(""), Err(NickError::Length));
        assert_eq!(check_nick("-"), Err(NickError::Length));
        assert_eq!(check_nick(&"a".repeat(33)), Err(NickError::Length));
        assert_eq!(check_nick("a b"), Err(NickError::Character));
        assert_eq!(check_nick("a:b"), Err(NickError::Character));
    }
}
