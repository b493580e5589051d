//! Either side can hang up; the other is told `peer-hangup` and both exit 0.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, test_media};

fn call(caller_duration: &str, callee_duration: &str) -> (support::Outcome, support::Outcome) {
    let server = Server::start();
    let callee = Client::start(
        &server.addr,
        &[args(&[&["--name", "callee", "--answer", "--duration", callee_duration]]), test_media("ball", 660)]
            .concat(),
    );
    callee.wait_for("komunikator: ready", READY);
    let caller = Client::start(
        &server.addr,
        &[args(&[&["--call", "callee", "--duration", caller_duration]]), test_media("smpte", 440)].concat(),
    );
    let caller = caller.finish(Duration::from_secs(60));
    let callee = callee.finish(Duration::from_secs(20));
    (caller, callee)
}

#[test]
fn callee_hangs_up() {
    let (caller, callee) = call("60", "2");
    assert_eq!(callee.end_reason(), "hangup", "{}", callee.stderr);
    assert_eq!(caller.end_reason(), "peer-hangup", "{}", caller.stderr);
    assert_eq!((caller.code, callee.code), (Some(0), Some(0)));
    assert!(caller.f("call_seconds") < 30.0, "the caller stopped when told, not at its own deadline");
    assert!(caller.n("video_frames_decoded") > 0 && callee.n("video_frames_decoded") > 0);
}

#[test]
fn caller_hangs_up() {
    let (caller, callee) = call("2", "60");
    assert_eq!(caller.end_reason(), "hangup", "{}", caller.stderr);
    assert_eq!(callee.end_reason(), "peer-hangup", "{}", callee.stderr);
    assert_eq!((caller.code, callee.code), (Some(0), Some(0)));
    assert!(callee.f("call_seconds") < 30.0);
}

#[test]
fn sigterm_hangs_up_cleanly() {
    let server = Server::start();
    let callee = Client::start(
        &server.addr,
        &[args(&[&["--name", "callee", "--answer"]]), test_media("ball", 660)].concat(),
    );
    callee.wait_for("komunikator: ready", READY);
    let caller =
        Client::start(&server.addr, &[args(&[&["--call", "callee"]]), test_media("smpte", 440)].concat());
    caller.wait_for("call started", READY);
    std::thread::sleep(Duration::from_secs(1));
    caller.signal(libc::SIGTERM);
    let caller = caller.finish(Duration::from_secs(20));
    let callee = callee.finish(Duration::from_secs(20));
    assert_eq!(caller.end_reason(), "hangup", "{}", caller.stderr);
    assert_eq!(callee.end_reason(), "peer-hangup", "{}", callee.stderr);
    assert_eq!(caller.code, Some(0));
}
