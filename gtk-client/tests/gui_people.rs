//! People are shown by nick and avatar, not by address: the list of people
//! gives each one an avatar with initials and the nick, the address only in
//! the row's details; the incoming-call prompt shows the caller's avatar and
//! nick, the address under "Details". The window logs what each page shows
//! (`shows NAME: …`, its labels on screen); the other person is a raw
//! protocol client on the real server.
//!
//! Needs an X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive};
use komunikator_protocol::{Command, Target};
use support::peer::Peer;
use support::{Server, target_dir};

#[test]
fn the_list_and_the_prompt_show_nick_and_avatar_and_keep_the_address_in_details() {
    let _x = exclusive();
    let display = Display::get();
    let server = Server::start();
    let home = target_dir().join(format!("gui-people-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "ala"], &home.join("shots"), &home);
    window.wait_for("name accepted: ala");
    let mut bob = Peer::connect(&server.addr);
    bob.send(&Command::Name("bob"));
    let listed = window.wait_for_line(&["shows people:", "bob"]);
    assert!(listed.contains("[avatar bob]"), "no avatar for bob in the list: {listed}");
    assert!(!listed.contains("127.0.0.1"), "the list shows the address: {listed}");
    bob.send(&Command::Connect(Target::Nick("ala")));
    let prompt = window.wait_for_line(&["shows prompt:"]);
    assert!(prompt.contains("bob") && prompt.contains("is calling"), "{prompt}");
    assert!(prompt.contains("[avatar bob]"), "no avatar for bob on the prompt: {prompt}");
    assert!(prompt.contains("Details"), "no details on the prompt: {prompt}");
    assert!(!prompt.contains("127.0.0.1"), "the prompt shows the address outside its details: {prompt}");
    bob.send(&Command::Stop);
    window.wait_for("view: lobby");
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::fs::remove_dir_all(&home);
}
