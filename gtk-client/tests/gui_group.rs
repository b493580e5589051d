//! A group call from the real window, under X, against the real server,
//! with real key events (xdotool): ala (the window) calls bob, then presses
//! Ctrl+I ("Add person"), types cecylia and Enter. cecylia (headless,
//! `--group --answer`) is asked, joins, and her picture shows in a tile of
//! its own next to bob's, with her name; bob and cecylia each receive the
//! other two. bob talks (a test tone) and cecylia is muted: bob's picture is
//! shown large with cecylia's below, and a badge on her tile says she is
//! muted. bob leaves: the title says the call is with cecylia now. Escape
//! ends the call.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press, type_text};
use support::{Client, READY, Server, args, target_dir, test_media};

#[test]
fn the_window_invites_a_third_person_and_shows_both() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-group-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let shots = home.join("shots");
    let answer = |nick: &str, pattern: &str, extra: &[&str]| {
        let own = args(&[&["--name", nick, "--answer", "--group"], extra]);
        let c = Client::start(&server.addr, &[own, test_media(pattern, 550)].concat());
        c.wait_for("komunikator: ready", READY);
        c
    };
    let bob = answer("bob", "smpte", &["--duration", "14"]);
    let cecylia = answer("cecylia", "gradient", &["--duration", "40", "--mute"]);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "ala", "--call", "bob"], &shots, &home);
    window.wait_for("call state: Active");
    window.wait_for("indicator: first picture");
    press(&display, "ctrl+i");
    window.wait_for("add person: open");
    // Until GTK has moved the focus into the entry: letters typed sooner are lost.
    std::thread::sleep(Duration::from_millis(700));
    type_text(&display, "cecylia");
    press(&display, "Return");
    window.wait_for("inviting cecylia");
    window.wait_for("add person: closed");
    window.wait_for("cecylia<U+2069>) joined the call, tile Some(0)");
    window.wait_for_each(&[
        "party tiles shown: 1",
        "party tile 0 shows a picture",
        "call-group.png",
        "title: Call with bob and <U+2068>cecylia<U+2069> — Komunikator",
        "speaker: bob",
        "layout: bob larger, 1 below",
        "peer: muted true",
    ]);
    // bob's call ends after its 14 s: ala and cecylia go on.
    window
        .wait_for_each(&["left the call (hangup)", "title: Call with <U+2068>cecylia<U+2069> — Komunikator"]);
    press(&display, "Escape");
    window.wait_for("call ended: hangup");
    let (bob, cecylia) = (bob.finish(Duration::from_secs(40)), cecylia.finish(Duration::from_secs(40)));
    for (o, who) in [(&bob, "bob"), (&cecylia, "cecylia")] {
        assert_eq!(o.code, Some(0), "{who}: {}", o.stderr);
        // Each decoded the other two: its first party (ala) and one more.
        assert!(o.n("video_frames_decoded") > 0, "{who} saw ala: {}", o.json());
        let parties = o.json()["parties"].as_array().cloned().unwrap_or_default();
        assert_eq!(parties.len(), 1, "{who}: {}", o.json());
        assert!(parties[0]["video_frames_decoded"].as_u64().unwrap_or(0) > 0, "{who}: {}", o.json());
    }
    assert!(!bob.stderr.contains("left the call"), "bob saw nobody leave before him: {}", bob.stderr);
    assert_eq!(cecylia.end_reason(), "peer-hangup", "ala hung up on cecylia: {}", cecylia.stderr);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn an_invitation_says_who_else_is_in_the_call() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-group-invited-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let shots = home.join("shots");
    let window = Window::start(&display, &["--server", &server.addr, "--name", "ala"], &shots, &home);
    window.wait_for("name accepted: ala");
    let bob = Client::start(
        &server.addr,
        &[args(&[&["--name", "bob", "--answer", "--group", "--duration", "12"]]), test_media("smpte", 550)]
            .concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    // cecylia calls bob, then invites ala (the window).
    let own = args(&[&["--name", "cecylia", "--call", "bob", "--invite", "ala", "--duration", "10"]]);
    let cecylia = Client::start(&server.addr, &[own, test_media("gradient", 660)].concat());
    window.wait_for("the call we are asked into has");
    window.wait_for("Also in the call: <U+2068>bob<U+2069>");
    press(&display, "Return");
    window.wait_for("call state: Active");
    window.wait_for("(<U+2068>bob<U+2069>) joined the call");
    window.wait_for("party tile 0 shows a picture");
    let (bob, cecylia) = (bob.finish(Duration::from_secs(40)), cecylia.finish(Duration::from_secs(40)));
    for (o, who) in [(&bob, "bob"), (&cecylia, "cecylia")] {
        assert_eq!(o.code, Some(0), "{who}: {}", o.stderr);
        assert!(o.stderr.contains("joined the call"), "{who} saw ala join: {}", o.stderr);
    }
    let _ = std::fs::remove_dir_all(&home);
}
