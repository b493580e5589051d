//! `media <audio|video> <on|off>`: a sender's microphone or camera switch.
//! The server relays it to the peer during a call, refuses it outside one,
//! keeps at most one of each kind queued for a peer that does not read, and
//! never lets it reach anyone but the peer.

mod support;

use support::{Server, call_pair, call_with_stalled_reader};

#[test]
fn a_switch_reaches_the_peer_during_a_call_only() {
    let server = Server::start();
    let mut lone = server.named("lone");
    lone.send("media video off");
    lone.expect_prefix("error not-in-call");
    let (mut ala, mut bob) = call_pair(&server, "ala", "bob");
    ala.send("media video off");
    bob.expect("media video off");
    ala.send("media audio off");
    bob.expect("media audio off");
    bob.send("media audio off");
    ala.expect("media audio off");
    ala.send("media video on");
    bob.expect("media video on");
    for bad in ["media video", "media screen off", "media video maybe", "media video off x"] {
        ala.send(bad);
        ala.expect_prefix("error bad-argument");
    }
    // Nothing of it reached the bystander.
    let stray: Vec<String> = lone.sync().iter().map(|m| m.line().to_owned()).collect();
    assert!(stray.iter().all(|l| !l.starts_with("media ")), "{stray:?}");
    ala.send("stop");
    ala.send("media video off");
    ala.expect_prefix("error not-in-call");
}

#[test]
fn a_peer_that_does_not_read_gets_only_the_latest_switch_of_each_kind() {
    let server = Server::start();
    let (mut ala, mut bob) = call_with_stalled_reader(&server);
    for i in 0..2000 {
        bob.send(&format!("media video {}", if i % 2 == 0 { "on" } else { "off" }));
        bob.send(&format!("media audio {}", if i % 3 == 0 { "off" } else { "on" }));
    }
    bob.send("media audio off");
    bob.sync();
    let got: Vec<String> = ala.sync().iter().map(|m| m.line().to_owned()).collect();
    let video: Vec<&String> = got.iter().filter(|l| l.starts_with("media video ")).collect();
    let audio: Vec<&String> = got.iter().filter(|l| l.starts_with("media audio ")).collect();
    assert!(
        !video.is_empty() && video.len() <= 20,
        "{} of 2000 video switches reached the peer",
        video.len()
    );
    assert!(
        !audio.is_empty() && audio.len() <= 20,
        "{} of 2001 audio switches reached the peer",
        audio.len()
    );
    assert_eq!(video.last().map(|s| s.as_str()), Some("media video off"), "the latest video switch is last");
    assert_eq!(audio.last().map(|s| s.as_str()), Some("media audio off"), "the latest audio switch is last");
}
