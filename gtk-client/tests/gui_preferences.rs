//! Preferences in a window started with `--server`: they show the server in
//! use, and a new name saved there (typed through X, Return saves) keeps
//! that server: conf.txt gets it and the window reconnects to it under the
//! new name. A name the server's rules refuse (one that looks like an
//! address) is refused in Preferences, with the rule, and not saved.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press, xdotool};
use support::{Server, target_dir};

#[test]
fn preferences_keep_the_server_given_with_dash_dash_server() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let (host, port) = server.addr.rsplit_once(':').expect("HOST:PORT");
    let home = target_dir().join(format!("gui-prefs-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut window =
        Window::start(&display, &["--server", &server.addr, "--name", "before"], &home.join("shots"), &home);
    window.wait_for("name accepted: before");
    press(&display, "ctrl+comma");
    let prefs = xdotool(&display, &["search", "--sync", "--onlyvisible", "--name", "^Preferences$"]);
    let prefs = prefs.lines().next().expect("a preferences window").trim().to_owned();
    xdotool(&display, &["windowfocus", "--sync", &prefs]);
    std::thread::sleep(Duration::from_millis(500));
    // The cursor starts at the end of the address, which is not selected:
    // a key typed and taken back leaves it as it was. Two Tabs reach the
    // name past the address and the port, which must not need retyping.
    for key in ["x", "BackSpace", "Tab", "Tab", "ctrl+a"] {
        xdotool(&display, &["key", key]);
        std::thread::sleep(Duration::from_millis(300));
    }
    // A name the server would refuse is refused here, with its rule, and
    // nothing is saved (it used to be saved, and the server said bad-name).
    xdotool(&display, &["type", "--delay", "40", "10.0.0.1"]);
    xdotool(&display, &["key", "Return"]);
    window.wait_for_line(&["preferences refused the name:", "looks like an address"]);
    assert!(!window.log().contains("Preferences saved"), "{}", window.log());
    xdotool(&display, &["key", "ctrl+a"]);
    xdotool(&display, &["type", "--delay", "40", "after"]);
    xdotool(&display, &["key", "Return"]);
    window.wait_for("Preferences saved; reconnecting");
    window.wait_for("name accepted: after");
    let conf = std::fs::read_to_string(home.join("config/komunikator/conf.txt")).expect("conf.txt written");
    assert_eq!(conf, format!("{host}\n{port}\n0\n"), "conf.txt does not keep the server in use");
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}
