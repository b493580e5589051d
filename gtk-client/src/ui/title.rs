//! The window's title, which names who you are and whom you are calling,
//! so that windows tell themselves apart in the overview, Alt+Tab and the
//! taskbar: "Komunikator" before a nick is settled, "ala — Komunikator" in
//! the lobby, "Call with bob — Komunikator" from dialling or ringing to
//! hanging up; the header bar shows "Call with bob" then too. Pure; the
//! window sets both from its model on the main thread.

use super::i18n::{i18n, i18n_f};
use super::state::Link;
use crate::call::CallState;
use crate::text::nick_label;

/// The title for the link `link`, the call `call` and its peer as shown (`peer`).
pub fn title(link: &Link, call: &CallState, peer: &str) -> String {
    let app = i18n("Komunikator");
    if !call.is_idle() && !peer.is_empty() {
        return i18n_f("Call with {} — {}", &[peer, &app]);
    }
    match link {
        Link::Online { nick: Some(nick), .. } => i18n_f("{} — {}", &[&nick_label(nick), &app]),
        _ => app,
    }
}

/// Whom a call is with, for the titles: "bob", "bob and cecylia", "bob,
/// cecylia and dawid", then "bob, cecylia and others (3)". Names come
/// isolated ([`nick_label`]).
pub fn with(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        // Translators: the people in a call, "bob and cecylia".
        [a, b] => i18n_f("{} and {}", &[a, b]),
        // Translators: the people in a call, "bob, cecylia and dawid".
        [a, b, c] => i18n_f("{}, {} and {}", &[a, b, c]),
        // Translators: the people in a call, "bob, cecylia and others (3)".
        [a, b, rest @ ..] => i18n_f("{}, {} and others ({})", &[a, b, &rest.len().to_string()]),
    }
}

/// The title in the window's header bar: whom you are calling during a
/// call ("Call with bob"), else the application's name. (The subtitle says
/// where you are connected.)
pub fn header(call: &CallState, peer: &str) -> String {
    if !call.is_idle() && !peer.is_empty() {
        return i18n_f("Call with {}", &[peer]);
    }
    i18n("Komunikator")
}

#[cfg(test)]
mod tests {
    use super::*;
    use komunikator_protocol::ClientId;

    #[test]
    fn names_you_in_the_lobby_and_the_peer_in_a_call() {
        let id = ClientId::from(([127, 0, 0, 1], 7));
        let online = Link::Online { server: "s:1".into(), id, nick: Some("ala".into()) };
        assert_eq!(title(&online, &CallState::Idle, ""), "\u{2068}ala\u{2069} — Komunikator");
        let anonymous = Link::Online { server: "s:1".into(), id, nick: None };
        assert_eq!(title(&anonymous, &CallState::Idle, ""), "Komunikator");
        assert_eq!(title(&Link::Setup, &CallState::Idle, ""), "Komunikator");
        let ringing = CallState::Ringing { caller: id, nick: Some("bob".into()) };
        assert_eq!(title(&online, &ringing, "bob"), "Call with bob — Komunikator");
        assert_eq!(header(&ringing, "bob"), "Call with bob");
        assert_eq!(header(&CallState::Idle, ""), "Komunikator");
    }

    #[test]
    fn a_group_call_names_everyone_in_it() {
        let names: Vec<String> = ["bob", "cecylia", "dawid", "ela", "franek"].map(String::from).to_vec();
        assert_eq!(with(&names[..1]), "bob");
        assert_eq!(with(&names[..2]), "bob and cecylia");
        assert_eq!(with(&names[..3]), "bob, cecylia and dawid");
        assert_eq!(with(&names), "bob, cecylia and others (3)");
        assert_eq!(with(&[]), "");
    }
}
