//! The callee's process dies mid-call: the caller is told `disconnected`,
//! stops its pipelines and reports the call.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, test_media};

#[test]
fn callee_killed_mid_call() {
    let server = Server::start();
    let callee = Client::start(
        &server.addr,
        &[args(&[&["--name", "callee", "--answer"]]), test_media("ball", 660)].concat(),
    );
    callee.wait_for("komunikator: ready", READY);
    let caller = Client::start(
        &server.addr,
        &[args(&[&["--call", "callee", "--duration", "60"]]), test_media("smpte", 440)].concat(),
    );
    callee.wait_for("call started", READY);
    std::thread::sleep(Duration::from_secs(2));
    callee.signal(libc::SIGKILL);
    let caller = caller.finish(Duration::from_secs(30));
    assert_eq!(caller.end_reason(), "peer-disconnected", "{}", caller.stderr);
    assert_eq!(caller.code, Some(0));
    assert!(caller.f("call_seconds") < 30.0);
    assert!(caller.n("video_frames_decoded") > 10, "media flowed before the kill: {}", caller.json());
    let _ = callee.finish(Duration::from_secs(5));
}
