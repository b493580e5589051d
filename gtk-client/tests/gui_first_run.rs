//! The window without any configuration: a wrong address is a message and a
//! retry, never a crash or a hang; on a first run (no conf.txt, no --server)
//! it asks for the server's address, typed here through X, writes conf.txt
//! and connects; its preferences window opens.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press, xdotool};
use support::{Server, target_dir};

#[test]
fn refused_connection_is_a_message_and_the_window_stays_usable() {
    let _x = exclusive();
    let display = Display::get();
    let home = target_dir().join(format!("gui-refused-home-{}", std::process::id()));
    let shots = home.join("shots");
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let mut window = Window::start(&display, &["--server", "127.0.0.1:1"], &shots, &home);
    window.wait_for("view: status");
    window.wait_for("not connected to 127.0.0.1:1");
    // It tries again by itself (after 1 s, then 2 s, ...).
    window.wait_for("not connected to 127.0.0.1:1");
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn first_run_asks_for_the_server_and_saves_conf_txt() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let (host, port) = server.addr.rsplit_once(':').expect("HOST:PORT");
    let home = target_dir().join(format!("gui-first-run-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut window = Window::start(&display, &[], &home.join("shots"), &home);
    window.wait_for("view: setup");
    std::thread::sleep(Duration::from_millis(500));
    xdotool(&display, &["type", "--delay", "20", host]);
    press(&display, "Tab");
    press(&display, "ctrl+a");
    xdotool(&display, &["type", "--delay", "20", port]);
    press(&display, "Return");
    window.wait_for("connected as");
    window.wait_for("view: lobby");
    let conf = std::fs::read_to_string(home.join("config/komunikator/conf.txt")).expect("conf.txt written");
    assert_eq!(conf, format!("{host}\n{port}\n0\n"));
    // The preferences open over the window (listing devices must not fail
    // on a machine without any) and close with Escape.
    press(&display, "ctrl+comma");
    let prefs = xdotool(&display, &["search", "--sync", "--onlyvisible", "--name", "^Preferences$"]);
    assert!(!prefs.trim().is_empty(), "no preferences window");
    xdotool(&display, &["key", "Escape"]);
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}
