//! The chat during a call, typed through X like a person would: opening the
//! chat (F9) puts the cursor in its entry, so letters are text and never the
//! M (mute) and V (camera off) shortcuts; Escape in the entry clears an
//! unsent line, a second Escape leaves the entry, and neither hangs up. The
//! headless peer logs each chat line it receives. Each line in the chat
//! names who wrote it (the peer's nick, or "You") and when (HH:MM).
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, answer, exclusive, press, type_text};
use komunikator_protocol::{Command, Target};
use support::peer::Peer;
use support::{Client, Server, target_dir};

const NICK: &str = "chatter";

/// The window in a call with a headless peer, and the peer.
fn in_a_call(display: &Display, server: &Server, test: &str) -> (Window, Client, std::path::PathBuf) {
    let home = target_dir().join(format!("gui-chat-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(display, &["--server", &server.addr, "--name", NICK], &home.join("shots"), &home);
    window.wait_for(&format!("name accepted: {NICK}"));
    let peer = answer(&window, display, &server.addr, NICK, "ala", false);
    // Let the call page settle before typing into it.
    std::thread::sleep(Duration::from_secs(1));
    (window, peer, home)
}

/// Hangs up with Escape (the focus outside the entry) and checks the peer
/// saw a hang-up; returns what the peer logged.
fn hang_up(window: &Window, display: &Display, peer: Client) -> String {
    press(display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}\nwindow:\n{}", peer.stderr, window.log());
    window.wait_for("view: lobby");
    peer.stderr
}

#[test]
fn opening_the_chat_focuses_the_entry_and_letters_are_text_not_shortcuts() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let (window, peer, home) = in_a_call(&display, &server, "focus");
    press(&display, "F9");
    window.wait_for("chat: the entry has the focus");
    // "m" and "v" are the mute and camera-off shortcuts outside the entry.
    type_text(&display, "move");
    press(&display, "Return");
    peer.wait_for("message: move", Duration::from_secs(30));
    let log = window.log();
    assert!(!log.contains("mute: on"), "typing in the chat muted the microphone:\n{log}");
    assert!(!log.contains("camera-off: on"), "typing in the chat turned the camera off:\n{log}");
    // Closing the chat gives the letters back to the shortcuts.
    press(&display, "F9");
    window.wait_for("chat: the entry let go of the focus");
    press(&display, "m");
    window.wait_for("mute: on");
    hang_up(&window, &display, peer);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn escape_in_the_chat_entry_clears_it_then_leaves_it_and_never_hangs_up() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let (window, peer, home) = in_a_call(&display, &server, "escape");
    press(&display, "F9");
    window.wait_for("chat: the entry has the focus");
    type_text(&display, "lost");
    // The first Escape clears the unsent line; the call goes on.
    press(&display, "Escape");
    std::thread::sleep(Duration::from_millis(500));
    type_text(&display, "kept");
    press(&display, "Return");
    peer.wait_for("message: kept", Duration::from_secs(30));
    // On the empty entry, Escape leaves it: the call goes on, and M mutes again.
    press(&display, "Escape");
    window.wait_for("chat: the entry let go of the focus");
    press(&display, "m");
    window.wait_for("mute: on");
    let said = hang_up(&window, &display, peer);
    assert!(!said.contains("lost"), "the cleared line was sent:\n{said}");
    let _ = std::fs::remove_dir_all(&home);
}

/// Whether `line` holds a time of day as HH:MM.
fn has_time(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(5).any(|w| {
        w[2] == b':' && [0, 1, 3, 4].iter().all(|&i| w[i].is_ascii_digit()) && w[0] <= b'2' && w[3] <= b'5'
    })
}

#[test]
fn chat_lines_name_the_peer_or_you_and_the_time() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-chat-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", NICK], &home.join("shots"), &home);
    window.wait_for(&format!("name accepted: {NICK}"));
    // A raw protocol peer, which can write chat lines of its own.
    let mut bob = Peer::connect(&server.addr);
    bob.send(&Command::Name("bob"));
    bob.send(&Command::Connect(Target::Nick(NICK)));
    window.wait_for("view: incoming");
    std::thread::sleep(Duration::from_millis(500));
    press(&display, "Return");
    window.wait_for("call state: Active");
    bob.send(&Command::Msg("hello"));
    let theirs = window.wait_for_line(&["shows chat:", "hello"]);
    assert!(theirs.contains("bob") && !theirs.contains("Them"), "not named by nick: {theirs}");
    assert!(has_time(&theirs), "no time: {theirs}");
    // The message opened the chat with the cursor in the entry (logged
    // before or after the line shown, so looked for in the whole log).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !window.log().contains("chat: the entry has the focus") {
        assert!(std::time::Instant::now() < deadline, "the entry never took the focus:\n{}", window.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    type_text(&display, "howdy");
    press(&display, "Return");
    let ours = window.wait_for_line(&["shows chat:", "howdy"]);
    assert!(ours.contains("You"), "our line is not ours: {ours}");
    bob.send(&Command::Stop);
    window.wait_for("view: lobby");
    let _ = std::fs::remove_dir_all(&home);
}
