//! Honest call controls in the real window, under X, against the real
//! server, with real key events (xdotool):
//!
//! * The peer (headless bob, muted with `--mute`) sends its test picture,
//!   then turns its camera off (`--camera-off-after 4`): the window shows
//!   the muted badge, then an avatar with "bob turned the camera off"
//!   where the picture was (its log, and a screenshot in which none of the
//!   SMPTE bars that were showing is left), and the quality indicator never
//!   calls it a poor connection.
//! * In the window (ala), V and M switch the camera and the microphone:
//!   each button's icon and tooltip follow (its log), and the peer is told
//!   (its log and its summary's `peer_media`).
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, bar_shares, exclusive, press};
use support::{Client, READY, Server, args, target_dir, test_media};

#[test]
fn switches_are_shown_on_both_sides() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-switches-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let shots = home.join("shots");
    let window = Window::start(&display, &["--server", &server.addr, "--name", "ala"], &shots, &home);
    window.wait_for("name accepted: ala");
    let bob_args = [&["--name", "bob", "--call", "ala"][..], &["--mute", "--camera-off-after", "4"]];
    let peer = Client::start(&server.addr, &[args(&bob_args), test_media("smpte", 440)].concat());
    window.wait_for("incoming call from bob");
    press(&display, "Return");
    window.wait_for("view: call");

    // Bob: muted from the start, his picture, then his camera off.
    window.wait_for("peer: muted true, camera off false");
    window.wait_for("call-video.png");
    let before = bar_shares(&shots.join("call-video.png"));
    assert!(before.iter().filter(|s| **s > 0.05).count() >= 5, "bob's bars were not showing: {before:?}");
    // The log escapes the name's bidi isolation marks.
    window.wait_for(
        r#"peer: muted true, camera off true (showing "\u{2068}bob\u{2069} turned the camera off")"#,
    );
    window.wait_for("call-camera-off.png");
    let after = bar_shares(&shots.join("call-camera-off.png"));
    assert!(after.iter().all(|s| *s < 0.02), "a frozen picture of bob is still showing: {after:?}");

    // Ala's switches, with real keys.
    press(&display, "v");
    window.wait_for("button win.camera-off: camera-disabled-symbolic \"Turn the camera on (V)\"");
    peer.wait_for("peer: muted false, camera off true", READY);
    press(&display, "m");
    window.wait_for("button win.mute: microphone-disabled-symbolic \"Unmute the microphone (M)\"");
    peer.wait_for("peer: muted true, camera off true", READY);
    press(&display, "v");
    window.wait_for("button win.camera-off: camera-web-symbolic \"Turn the camera off (V)\"");
    peer.wait_for("peer: muted true, camera off false", READY);
    press(&display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}", peer.stderr);
    assert_eq!(peer.json()["peer_media"], serde_json::json!({"muted": true, "camera_off": false}));
    let log = window.log();
    assert!(!log.contains("quality: Poor connection"), "a camera turned off is no poor connection:\n{log}");
    let _ = std::fs::remove_dir_all(&home);
}
