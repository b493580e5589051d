//! Honest switches, headless, through the real server: a caller with its
//! camera off (`--camera-off`) and its microphone muted (`--mute`) sends
//! no video at all, keeps sending (silent) audio, and its peer is told: its
//! summary's `peer_media` says muted and camera off, and it received no
//! picture. The caller, whose peer switched nothing, is told nothing.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, test_media};

#[test]
fn camera_off_sends_no_video_and_the_peer_is_told() {
    let server = Server::start();
    let bob = Client::start(
        &server.addr,
        &[args(&[&["--name", "bob", "--answer"]]), test_media("gradient", 660)].concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    let ala_args = [&["--name", "ala", "--call", "bob", "--duration", "4"][..], &["--camera-off", "--mute"]];
    let ala = Client::start(&server.addr, &[args(&ala_args), test_media("smpte", 440)].concat());
    let ala = ala.finish(Duration::from_secs(60));
    let bob = bob.finish(Duration::from_secs(20));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    assert_eq!(ala.n("video_frames_sent"), 0, "ala's camera is off: {}", ala.json());
    assert_eq!(ala.n("video_bytes_sent"), 0, "{}", ala.json());
    assert_eq!(
        bob.n("video_frames_received"),
        0,
        "bob got pictures from a camera that is off: {}",
        bob.json()
    );
    assert_eq!(
        bob.json()["peer_media"],
        serde_json::json!({"muted": true, "camera_off": true}),
        "{}",
        bob.json()
    );
    assert_eq!(ala.json()["peer_media"], serde_json::json!({"muted": false, "camera_off": false}));
    // Muted is silence, not nothing: the audio clock and delay measurement go on.
    let audio_sent = ala.n("audio_packets_sent");
    assert!(audio_sent >= 100, "only {audio_sent} audio packets in 4 s: {}", ala.json());
    assert!(bob.n("audio_packets_received") * 100 >= audio_sent * 90, "{}", bob.json());
    assert!(bob.f("audio_rms") < 0.01, "bob hears a muted microphone: {}", bob.json());
    // The other way is untouched.
    assert!(bob.n("video_frames_sent") >= 60, "{}", bob.json());
    assert!(ala.n("video_frames_decoded") >= 30, "{}", ala.json());
}
