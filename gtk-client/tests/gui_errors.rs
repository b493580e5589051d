//! Errors in the window are sentences for people in the user's language:
//! a Polish window pointed at a port where nothing listens says so in
//! Polish, with no "os error 111" in the sentence (the technical detail
//! sits under Details), and its header says it could not connect rather
//! than "Disconnected", since no connection ever existed. A name someone
//! else uses is a Polish sentence too, not the wire's `name-taken`.
//!
//! Needs an X display, like `gui.rs`, and `localedef` (glibc's locales).

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, polish_locale, press};
use support::{Client, Server, args, target_dir, test_media};

/// The line of the window's log that starts with `prefix` (after `komunikator: `).
fn logged(window: &Window, prefix: &str) -> String {
    window.wait_for(prefix);
    let log = window.log();
    log.lines()
        .find_map(|l| l.strip_prefix("komunikator: ").filter(|l| l.starts_with(prefix)).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {prefix:?} line in the log:\n{log}"))
}

#[test]
fn a_refused_connection_is_a_polish_sentence_not_an_os_error() {
    let _x = exclusive();
    let display = Display::get();
    let locales = polish_locale();
    let home = target_dir().join(format!("gui-errors-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let locpath = locales.to_string_lossy().into_owned();
    let env = [("LANG", "pl_PL.UTF-8"), ("LOCPATH", locpath.as_str())];
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let mut window =
        Window::start_with_env(&display, &["--server", "127.0.0.1:1"], &home.join("s"), &home, &env);
    let status = logged(&window, "status: ");
    assert_eq!(
        status,
        "status: Serwer nie przyjmuje połączeń. Może nie być uruchomiony albo port jest nieprawidłowy.",
        "window log:\n{}",
        window.log()
    );
    let subtitle = logged(&window, "subtitle: Nie udało się połączyć z 127.0.0.1:1");
    assert!(!window.log().contains("Rozłączono"), "said disconnected before any connection:\n{subtitle}");
    // The detail is still there for whoever debugs it.
    assert!(window.log().contains("os error 111"), "the technical detail is gone:\n{}", window.log());
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_name_in_use_is_a_polish_sentence_not_a_wire_code() {
    let _x = exclusive();
    let display = Display::get();
    let locales = polish_locale();
    let server = Server::start();
    let ala = Client::start(
        &server.addr,
        &[args(&[&["--name", "ala", "--answer"]]), test_media("ball", 440)].concat(),
    );
    ala.wait_for("name accepted", Duration::from_secs(30));
    let home = target_dir().join(format!("gui-errors-name-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let locpath = locales.to_string_lossy().into_owned();
    let env = [("LANG", "pl_PL.UTF-8"), ("LOCPATH", locpath.as_str())];
    let app_args = ["--server", server.addr.as_str(), "--name", "ala"];
    let mut window = Window::start_with_env(&display, &app_args, &home.join("s"), &home, &env);
    window.wait_for("name ala rejected: name-taken");
    window.wait_for("Ktoś już używa nazwy ala. Wybierz inną w Preferencjach.");
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}
