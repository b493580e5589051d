//! Look-alike nicks: with `alice` online, none of the look-alikes from
//! issue 13 can be claimed, each refusal says which rule it broke, and
//! `alice` can still be called by name.

mod support;

use support::{Server, ring};

#[test]
fn look_alikes_of_an_online_nick_are_refused_with_the_rule() {
    let server = Server::start();
    let mut alice = server.named("alice");
    let mut mallory = server.client();
    let refused = [
        ("\u{430}lice", "error bad-name nick must use one script"),
        ("ａｌｉｃｅ", "error bad-name nick must be in NFKC form"),
        ("𝐚𝐥𝐢𝐜𝐞", "error bad-name nick must be in NFKC form"),
        ("ⓐlice", "error bad-name nick must be in NFKC form"),
        ("alice\u{3164}", "error bad-name nick must not contain invisible characters"),
        ("ali\u{307}ce", "error bad-name nick must not put combining marks"),
        ("alıce", "error name-taken"),
        ("ALİCE", "error name-taken"),
        ("ALICE", "error name-taken"),
        ("10.0.0.1", "error bad-name nick must not look like an IP address"),
    ];
    for (nick, expected) in refused {
        mallory.send(&format!("name {nick}"));
        let got = mallory.expect_prefix("error ");
        assert!(got.starts_with(expected), "name {nick:?}: {got:?}");
    }
    // Whatever was tried, alice is reached by her own name.
    mallory.send("name mallory");
    mallory.expect("ok name mallory");
    mallory.nick = "mallory".to_owned();
    ring(&mut mallory, &mut alice);
}
