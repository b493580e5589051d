//! The window, end to end, under X: the real server, a headless peer and the
//! real `komunikator` window. The window registers (a raw `refresh` lists its
//! nick); the peer calls it; the incoming prompt appears and is accepted with
//! a real key press through X (xdotool); both sides decode video; a
//! screenshot of the window's video area shows the peer's SMPTE colour bars;
//! Escape hangs up and the peer reports `peer-hangup`. A second call is then
//! answered and the window is closed with Ctrl+Q mid-call: it hangs up first
//! and exits 0.
//!
//! Needs an X display: `DISPLAY` (the README's test command runs under
//! `xvfb-run`), or else the test starts its own `Xvfb`, and fails with a
//! message saying what to install when it cannot. Screenshots are kept in
//! `target/test-artifacts/gui/`.

mod gui_support;
mod support;

use std::time::{Duration, Instant};

use gui_support::{Display, Window, answer, bar_shares, exclusive, press, refreshed_nicks};
use support::{Server, target_dir};

const NICK: &str = "guitest";

#[test]
fn window_answers_shows_video_and_hangs_up_with_the_keyboard() {
    let _x = exclusive();
    let started = Instant::now();
    let display = Display::get();
    let shots = target_dir().join("test-artifacts/gui");
    let _ = std::fs::remove_dir_all(&shots);
    let home = target_dir().join(format!("gui-test-home-{}", std::process::id()));
    let server = Server::start();
    let mut window = Window::start(&display, &["--server", &server.addr, "--name", NICK], &shots, &home);
    window.wait_for(&format!("name accepted: {NICK}"));
    assert!(refreshed_nicks(&server.addr).iter().any(|n| n == NICK), "refresh does not list {NICK}");

    let peer = answer(&window, &display, &server.addr, NICK, "ala", true);
    assert!(shots.join("incoming.png").exists(), "no screenshot of the prompt");
    window.wait_for("call-video.png");
    let shares = bar_shares(&shots.join("call-video.png"));
    assert!(
        shares.iter().all(|s| *s > 0.05),
        "the video area does not show the peer's colour bars (share of each bar: {shares:?}); see {}",
        shots.display()
    );
    press(&display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}\nwindow:\n{}", peer.stderr, window.log());
    assert!(peer.n("video_frames_decoded") > 0, "the peer decoded no video from the window");
    window.wait_for("view: lobby");

    // Closing the window during a call hangs up first.
    let peer = answer(&window, &display, &server.addr, NICK, "bob", false);
    std::thread::sleep(Duration::from_secs(1));
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}", peer.stderr);
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("GUI test took {:.1} s; screenshots in {}", started.elapsed().as_secs_f64(), shots.display());
}
