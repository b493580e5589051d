//! The call page's "Waiting for the picture" ends with the first picture,
//! not at the first quality reading (two ticks of a second later). The
//! window logs how many pictures the engine had decoded (its
//! `video_frames_decoded`) when the indicator left "Waiting"; at 30 frames a
//! second a reading-driven indicator would have let some 30 go by.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, answer, exclusive, press};
use support::{Server, target_dir};

const NICK: &str = "watcher";

/// The most pictures that may be decoded before the indicator follows: half
/// a second at 30 frames a second, for a busy main loop.
const PROMPT: u64 = 15;

#[test]
fn waiting_for_the_picture_ends_with_the_first_picture() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-waiting-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", NICK], &home.join("shots"), &home);
    window.wait_for(&format!("name accepted: {NICK}"));
    let peer = answer(&window, &display, &server.addr, NICK, "ala", false);
    window.wait_for("call-video.png");
    let log = window.log();
    let line = log
        .lines()
        .find(|l| l.contains("indicator: ") && !l.contains("Waiting"))
        .unwrap_or_else(|| panic!("the indicator never left Waiting; window log:\n{log}"));
    let decoded: u64 = line
        .split_whitespace()
        .rev()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(decoded <= PROMPT, "the indicator left Waiting only after {decoded} decoded pictures: {line:?}");
    press(&display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}", peer.stderr);
    let _ = std::fs::remove_dir_all(&home);
}
