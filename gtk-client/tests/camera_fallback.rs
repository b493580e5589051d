//! A missing camera falls back to the live test pattern, says so, and the
//! peer still receives pictures.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, test_media};

#[test]
fn missing_camera_sends_the_test_pattern() {
    let server = Server::start();
    let callee = Client::start(
        &server.addr,
        &[args(&[&["--name", "callee", "--answer"]]), test_media("ball", 660)].concat(),
    );
    callee.wait_for("komunikator: ready", READY);
    // /dev/video200 does not exist here (nor on any ordinary machine).
    let caller_args = args(&[&[
        "--call",
        "callee",
        "--duration",
        "3",
        "--video-source",
        "camera",
        "--camera",
        "200",
        "--audio-source",
        "test",
        "--audio-output",
        "none",
    ]]);
    let caller = Client::start(&server.addr, &caller_args).finish(Duration::from_secs(60));
    let callee = callee.finish(Duration::from_secs(20));
    assert_eq!(caller.code, Some(0), "{}", caller.stderr);
    assert!(caller.stderr.contains("camera /dev/video200 not found"), "{}", caller.stderr);
    assert_eq!(caller.json()["video_source"], "test:smpte");
    let notices = caller.json()["notices"].to_string();
    assert!(notices.contains("/dev/video200 not found"), "{notices}");
    let sent = caller.n("video_frames_sent");
    assert!(sent > 60, "{}", caller.json());
    assert!(callee.n("video_frames_decoded") * 100 >= sent * 80, "{}", callee.json());
}
