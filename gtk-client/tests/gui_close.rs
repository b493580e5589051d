//! Closing the window during a call asks first. In a call, Ctrl+W opens
//! "Hang up and close?"; Escape in it (Cancel) keeps the call going on both
//! sides; asked again, "Hang Up and Close" hangs up (the peer hears
//! `peer-hangup`) and the window exits 0. Real key events through XTEST.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, answer, exclusive, press, xdotool};
use support::{Server, target_dir};

/// Focuses the confirmation dialog and presses `keys` in it, one by one.
fn press_in_dialog(display: &Display, keys: &[&str]) {
    let ids = xdotool(display, &["search", "--sync", "--onlyvisible", "--name", "^Hang up and close\\?$"]);
    let id = ids.lines().next().expect("the dialog is on the display").trim().to_owned();
    xdotool(display, &["windowfocus", "--sync", &id]);
    for key in keys {
        xdotool(display, &["key", "--clearmodifiers", key]);
    }
}

#[test]
fn closing_during_a_call_asks_and_cancel_keeps_the_call() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-close-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut window =
        Window::start(&display, &["--server", &server.addr, "--name", "callee"], &home.join("shots"), &home);
    window.wait_for("name accepted: callee");
    let peer = answer(&window, &display, &server.addr, "callee", "ala", false);
    std::thread::sleep(Duration::from_secs(1));

    press(&display, "ctrl+w");
    window.wait_for("asking before closing during a call");
    press_in_dialog(&display, &["Escape"]);
    window.wait_for("close during a call: cancel");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!window.log().contains("call ended"), "the call ended:\n{}", window.log());
    assert!(!peer.stderr_text().contains("call ended"), "the peer's call ended:\n{}", peer.stderr_text());

    press(&display, "ctrl+w");
    window.wait_for("asking before closing during a call");
    press_in_dialog(&display, &["Tab", "Return"]);
    window.wait_for("close during a call: close");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}", peer.stderr);
    let _ = std::fs::remove_dir_all(&home);
}
