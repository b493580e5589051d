//! Peer-controlled text made safe to show: nicks, chat lines, error texts
//! and notices that quote the server. Pure functions, any thread.
//!
//! A server or another user chooses these strings. Bidi controls (U+202A-202E,
//! U+2066-2069, U+200E/200F, U+061C) can reorder what follows them, so that a
//! nick or a log line reads differently from what it is; invisible characters
//! (zero-width spaces, U+2060-2064, U+FEFF, the Hangul fillers U+115F, U+1160,
//! U+3164, U+FFA0, tag characters and the other default-ignorable code
//! points) make two different nicks look the same or hide text. [`escape`]
//! shows each of them as `<U+XXXX>`, so it is visible and cannot act; the
//! headless client passes everything it prints through it, and the window
//! passes nicks and chat through it before they reach a label.
//!
//! Chat keeps what writing needs ([`Kind::Chat`]): the zero-width joiner and
//! non-joiner (emoji sequences, Persian and Indic scripts) and variation
//! selectors (emoji presentation). They cannot reorder text. A nick keeps none
//! of them: in a name they only serve to imitate another.
//!
//! In the window an escaped nick is also wrapped in FSI ... PDI
//! ([`isolate`]), so that a right-to-left nick does not pull the text around
//! it (", calling ...") into its own direction.

use std::borrow::Cow;
use std::fmt::Write;

/// What a string is, which decides what it may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A nick or an identifier: every invisible character is escaped.
    Nick,
    /// Chat or free text: joiners and variation selectors stay.
    Chat,
}

/// `text` with bidi controls, invisible and control characters written as
/// `<U+XXXX>`. Borrows when nothing needs escaping.
pub fn escape(text: &str, kind: Kind) -> Cow<'_, str> {
    if !text.chars().any(|c| hidden(c, kind)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c, kind) {
            let _ = write!(out, "<U+{:04X}>", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE, for a
/// label that shows it next to other text. Escape it first.
pub fn isolate(text: &str) -> String {
    format!("\u{2068}{text}\u{2069}")
}

/// A nick as a label shows it: escaped, then isolated.
pub fn nick_label(nick: &str) -> String {
    isolate(&escape(nick, Kind::Nick))
}

/// Whether `c` must be escaped in text of this kind.
fn hidden(c: char, kind: Kind) -> bool {
    let kept_in_chat =
        matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}');
    if kind == Kind::Chat && kept_in_chat {
        return false;
    }
    c.is_control() || default_ignorable(c) || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode
/// 15.1), which includes every bidi control.
fn default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        for s in ["alice", "Zażółć gęślą jaźń", "שלום", "مرحبا", "東京", ""] {
            assert!(matches!(escape(s, Kind::Nick), Cow::Borrowed(_)), "{s}");
            assert!(matches!(escape(s, Kind::Chat), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn bidi_controls_are_escaped_everywhere() {
        let s = "file\u{202E}gpj.exe \u{2066}x\u{2069} \u{200F}\u{061C}";
        let want = "file<U+202E>gpj.exe <U+2066>x<U+2069> <U+200F><U+061C>";
        assert_eq!(escape(s, Kind::Chat), want);
        assert_eq!(escape(s, Kind::Nick), want);
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(escape(&c.to_string(), Kind::Chat), format!("<U+{:04X}>", u32::from(c)));
        }
    }

    #[test]
    fn invisible_characters_are_escaped() {
        let hidden = [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{3164}',
            '\u{115F}',
            '\u{1160}',
            '\u{FFA0}',
            '\u{00AD}',
            '\u{180E}',
            '\u{E0041}',
            '\u{FE0F}',
        ];
        for c in hidden {
            let s = format!("al{c}ice");
            assert_eq!(escape(&s, Kind::Nick), format!("al<U+{:04X}>ice", u32::from(c)), "{c:?}");
        }
        assert_eq!(escape("a\u{1}b\u{7F}c\u{85}\u{2028}", Kind::Chat), "a<U+0001>b<U+007F>c<U+0085><U+2028>");
    }

    #[test]
    fn chat_keeps_joiners_and_variation_selectors() {
        for s in ["👨\u{200D}👩\u{200D}👧", "❤\u{FE0F}", "می\u{200C}خواهم"] {
            assert_eq!(escape(s, Kind::Chat), s);
            assert_ne!(escape(s, Kind::Nick), s);
        }
        assert_eq!(escape("a\u{200B}b", Kind::Chat), "a<U+200B>b");
    }

    #[test]
    fn isolation_wraps() {
        assert_eq!(isolate("אב"), "\u{2068}אב\u{2069}");
        assert_eq!(nick_label("a\u{3164}"), "\u{2068}a<U+3164>\u{2069}");
    }
}
