//! Blocking a caller from the window: on the incoming-call page, Tab from
//! Accept reaches "Block This Caller", and Return there declines the call
//! and asks the server to stop rings from the caller's address for the
//! rest of the connection. A second caller from that address (here every
//! client is on 127.0.0.1), under another nick, then hears `busy`, and the
//! window never rings.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press};
use support::{Client, Server, args, target_dir, test_media};

#[test]
fn block_this_caller_declines_and_stops_rings_from_that_address() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-block-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "callee"], &home.join("shots"), &home);
    window.wait_for("name accepted: callee");
    let ring = |nick: &str| {
        Client::start(
            &server.addr,
            &[args(&[&["--name", nick, "--call", "callee"]]), test_media("smpte", 440)].concat(),
        )
    };
    let pest = ring("pest");
    window.wait_for("incoming call from pest");
    std::thread::sleep(Duration::from_millis(500));
    // The focus is on Accept; Tab reaches Block This Caller.
    press(&display, "Tab");
    press(&display, "Return");
    let pest = pest.finish(Duration::from_secs(30));
    assert_eq!(pest.end_reason(), "declined", "{}\nwindow:\n{}", pest.stderr, window.log());
    window.wait_for("no more calls from 127.0.0.1 while connected");
    let again = ring("pest2").finish(Duration::from_secs(30));
    assert_eq!(again.end_reason(), "busy", "{}\nwindow:\n{}", again.stderr, window.log());
    assert!(!window.log().contains("incoming call from pest2"), "the window rang:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}
