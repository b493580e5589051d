//! The window's title names who you are and whom you call, as the desktop
//! (overview, Alt+Tab, taskbar) reads it from X: "ala — Komunikator" in the
//! list, "Call with bob — Komunikator" while bob rings, and back to "ala —
//! Komunikator" after. Read with `xdotool getwindowname`; the caller is a
//! raw protocol client on the real server.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::{Duration, Instant};

use gui_support::{Display, WAIT, Window, exclusive, main_window, xdotool};
use komunikator_protocol::{Command, Target};
use support::peer::Peer;
use support::{Server, target_dir};

/// Waits until the main window's title contains all of `parts`.
fn title_becomes(display: &Display, window: &Window, parts: &[&str]) {
    let deadline = Instant::now() + WAIT;
    let mut title = String::new();
    while Instant::now() < deadline {
        title = xdotool(display, &["getwindowname", &main_window(display)]);
        if parts.iter().all(|p| title.contains(p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the title stayed {title:?}, not with {parts:?}; the log:\n{}", window.log());
}

#[test]
fn the_title_names_you_and_whom_you_call() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-title-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "ala"], &home.join("shots"), &home);
    window.wait_for("name accepted: ala");
    title_becomes(&display, &window, &["ala", "— Komunikator"]);
    let mut bob = Peer::connect(&server.addr);
    bob.send(&Command::Name("bob"));
    bob.send(&Command::Connect(Target::Nick("ala")));
    window.wait_for("view: incoming");
    title_becomes(&display, &window, &["Call with", "bob", "— Komunikator"]);
    bob.send(&Command::Stop);
    window.wait_for("view: lobby");
    title_becomes(&display, &window, &["ala", "— Komunikator"]);
    let _ = std::fs::remove_dir_all(&home);
}
