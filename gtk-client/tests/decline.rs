//! A client that does not answer declines: the caller learns `declined` and
//! exits with the "call failed" code; calling nobody fails the same way.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, test_media};

#[test]
fn callee_declines() {
    let server = Server::start();
    // Without --answer, a headless client declines incoming calls.
    let callee =
        Client::start(&server.addr, &[args(&[&["--name", "busybee"]]), test_media("ball", 660)].concat());
    callee.wait_for("komunikator: ready", READY);
    let caller =
        Client::start(&server.addr, &[args(&[&["--call", "busybee"]]), test_media("smpte", 440)].concat());
    let caller = caller.finish(Duration::from_secs(30));
    let callee = callee.finish(Duration::from_secs(20));
    assert_eq!(caller.end_reason(), "declined", "{}", caller.stderr);
    assert_eq!(caller.code, Some(2), "a call that never started is a failure");
    assert_eq!(caller.n("video_frames_sent"), 0);
    assert_eq!(callee.end_reason(), "declined-by-us", "{}", callee.stderr);
    assert_eq!(callee.code, Some(0));
}

#[test]
fn calling_nobody_fails() {
    let server = Server::start();
    let caller =
        Client::start(&server.addr, &[args(&[&["--call", "nobody"]]), test_media("smpte", 440)].concat());
    let caller = caller.finish(Duration::from_secs(30));
    assert_eq!(caller.end_reason(), "refused:no-such-client", "{}", caller.stderr);
    assert_eq!(caller.code, Some(2));
}
