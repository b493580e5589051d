//! `delay <ms>`: a receiver's report of how long its peer's media queues on
//! the way. The server relays it to the peer during a call, keeps only the
//! latest one queued for a peer that does not read, and refuses it outside
//! a call.

mod support;

use support::{Server, call_pair, call_with_stalled_reader};

#[test]
fn a_delay_report_reaches_the_peer_during_a_call_only() {
    let server = Server::start();
    let mut lone = server.named("lone");
    lone.send("delay 120");
    lone.expect_prefix("error not-in-call");
    let (mut ala, mut bob) = call_pair(&server, "ala", "bob");
    bob.send("delay 120");
    ala.expect("delay 120");
    bob.send("delay 60001");
    bob.expect_prefix("error bad-argument");
    ala.send("delay 0");
    bob.expect("delay 0");
}

#[test]
fn a_peer_that_does_not_read_gets_only_the_latest_report() {
    let server = Server::start();
    let (mut ala, mut bob) = call_with_stalled_reader(&server);
    for ms in 1..=2000 {
        bob.send(&format!("delay {}", ms % 500 + 1));
    }
    // Bob hears keyframe requests for the video dropped on ala's behalf.
    bob.sync();
    // What reaches ala is a handful of reports at most, the latest last.
    let got: Vec<String> = ala.sync().iter().map(|m| m.line().to_owned()).collect();
    let reports: Vec<&String> = got.iter().filter(|l| l.starts_with("delay ")).collect();
    assert!(!reports.is_empty() && reports.len() <= 20, "{} of 2000 reports reached the peer", reports.len());
    assert_eq!(reports.last().map(|s| s.as_str()), Some("delay 1"), "the last report is the latest");
}
