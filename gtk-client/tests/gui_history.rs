//! The call history, with two real windows on one display and real key and
//! mouse events: ala calls bob and gives up, so bob's History shows a missed
//! call from ala, counted and kept in the file under `XDG_DATA_HOME`; bob
//! calls back from the History page with the mouse, ala answers, bob hangs
//! up and is told "Call ended, m:ss", ala "bob hung up, m:ss", and both keep
//! an answered entry with its length.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gui_support::{Display, Window, click_in, exclusive, press_in};
use support::{Server, target_dir};

fn start(display: &Display, server: &Server, nick: &str, extra: &[&str]) -> (Window, PathBuf) {
    let home = target_dir().join(format!("gui-history-{nick}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let app_args = [&["--server", server.addr.as_str(), "--name", nick][..], extra].concat();
    let window = Window::start(display, &app_args, &home.join("shots"), &home);
    window.wait_for(&format!("name accepted: {nick}"));
    (window, home)
}

/// The history file's entries (without the header line).
fn entries(home: &Path) -> Vec<String> {
    let path = home.join("data/komunikator/history");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(1).map(str::to_owned).collect()
}

/// The seconds of the last answered entry with `peer`.
fn answered_secs(home: &Path, direction: &str, peer: &str) -> u64 {
    let lines = entries(home);
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains(&format!("\t{direction}\tanswered\t")) && l.ends_with(&format!("\t{peer}")))
        .unwrap_or_else(|| panic!("no answered {direction} call with {peer} in {lines:?}"));
    line.split('\t').nth(3).and_then(|s| s.parse().ok()).expect("seconds")
}

#[test]
fn a_missed_call_is_listed_and_called_back_and_the_hanger_up_is_told_how_long() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let (bob, bob_home) = start(&display, &server, "bob", &[]);
    let (ala, ala_home) = start(&display, &server, "ala", &["--call", "bob"]);
    ala.wait_for("view: outgoing");
    bob.wait_for("view: incoming");
    std::thread::sleep(Duration::from_secs(1));
    // ala gives up before bob answers.
    press_in(&display, &ala, "Escape");
    bob.wait_for("history: missed call from ala, 1 unseen");
    bob.wait_for("view: lobby");
    let bobs = entries(&bob_home);
    assert!(bobs.iter().any(|l| l.ends_with("\tin\tmissed\t0\tala")), "bob's history file: {bobs:?}");
    ala.wait_for("view: lobby");
    let alas = entries(&ala_home);
    assert!(alas.iter().any(|l| l.ends_with("\tout\tunanswered\t0\tbob")), "ala's history file: {alas:?}");

    // bob opens History (Alt+2) and clicks Call back on ala's entry.
    std::thread::sleep(Duration::from_secs(1));
    press_in(&display, &bob, "alt+2");
    bob.wait_for("history page: shown");
    let line = bob.wait_for_line(&["history: call back "]);
    let at = line.rsplit(" at ").next().expect("position");
    let (x, y) = at.split_once(',').expect("x,y");
    click_in(&display, &bob, x, y);
    bob.wait_for("calling ");
    ala.wait_for("view: incoming");
    ala.wait_for("incoming call from bob");
    press_in(&display, &ala, "Return");
    bob.wait_for("view: call");
    ala.wait_for("view: call");
    std::thread::sleep(Duration::from_secs(3));
    // bob hangs up, and is told how long the call was; so is ala.
    press_in(&display, &bob, "Escape");
    bob.wait_for("Call ended, 0:0");
    ala.wait_for("hung up, 0:0");
    bob.wait_for("view: lobby");
    ala.wait_for("view: lobby");
    let secs = answered_secs(&bob_home, "out", "ala");
    assert!((1..60).contains(&secs), "bob's call lasted {secs} s");
    let secs = answered_secs(&ala_home, "in", "bob");
    assert!((1..60).contains(&secs), "ala's call lasted {secs} s");
    drop((bob, ala));
    let _ = std::fs::remove_dir_all(&bob_home);
    let _ = std::fs::remove_dir_all(&ala_home);
}
