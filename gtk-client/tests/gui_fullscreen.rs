//! Fullscreen during a call, through X like a person would: F11 makes the
//! window fullscreen and Escape leaves it without hanging up; a double-click
//! on the peer's picture makes it fullscreen again; Escape in the chat
//! entry stays the entry's (it clears the line) and neither leaves
//! fullscreen nor hangs up. Only then does Escape leave fullscreen, and the
//! next Escape hang up. A window manager (openbox) makes the window
//! fullscreen; the window logs the state it gets (`fullscreen: on`).
//!
//! Needs an X display, like `gui.rs`, and openbox.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{
    Display, Window, WindowManager, answer, exclusive, main_window, press, type_text, xdotool,
};
use support::{Server, target_dir};

#[test]
fn f11_and_a_double_click_go_fullscreen_and_escape_leaves_it_before_hanging_up() {
    let _x = exclusive();
    let display = Display::get();
    let _wm = WindowManager::start(&display);
    let server = Server::start();
    let home = target_dir().join(format!("gui-fullscreen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "ala"], &home.join("shots"), &home);
    window.wait_for("name accepted: ala");
    let peer = answer(&window, &display, &server.addr, "ala", "bob", false);
    std::thread::sleep(Duration::from_secs(1));
    press(&display, "F11");
    window.wait_for("fullscreen: on");
    press(&display, "Escape");
    window.wait_for("fullscreen: off");
    assert!(!window.log().contains("call ended"), "Escape hung up:\n{}", window.log());
    // A double-click in the middle of the window, on the peer's picture.
    let id = main_window(&display);
    xdotool(&display, &["mousemove", "--window", &id, "400", "300"]);
    xdotool(&display, &["click", "--repeat", "2", "--delay", "80", "1"]);
    window.wait_for("fullscreen: on");
    // In the chat entry, Escape clears the line and stays there.
    press(&display, "F9");
    window.wait_for("chat: the entry has the focus");
    type_text(&display, "lost");
    press(&display, "Escape");
    std::thread::sleep(Duration::from_millis(500));
    type_text(&display, "kept");
    press(&display, "Return");
    peer.wait_for("message: kept", Duration::from_secs(30));
    let log = window.log();
    assert_eq!(log.matches("fullscreen: off").count(), 1, "Escape in the entry left fullscreen:\n{log}");
    assert!(!log.contains("call ended"), "Escape in the entry hung up:\n{log}");
    // Escape on the empty entry leaves it, the next leaves fullscreen, the next hangs up.
    press(&display, "Escape");
    window.wait_for("chat: the entry let go of the focus");
    press(&display, "Escape");
    window.wait_for("fullscreen: off");
    assert!(!window.log().contains("call ended"), "Escape hung up:\n{}", window.log());
    press(&display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "{}\nwindow:\n{}", peer.stderr, window.log());
    let _ = std::fs::remove_dir_all(&home);
}
