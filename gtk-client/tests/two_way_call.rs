//! End to end: two headless clients hold a 2-way H.264 + Opus call through the
//! real server for 5 s. Each side must decode at least 80% of the pictures
//! the other sent, with audio that has no gaps and carries the other's tone,
//! and pictures that show the other's test pattern, not garbage. The same
//! call between two servers of a cluster must be no different.

mod support;

// The cluster tests' broker, shared rather than copied.
#[path = "../../server/tests/support/broker.rs"]
mod broker;

use std::time::Duration;

use support::{Client, Outcome, READY, Server, args, test_media};

/// Luma values may differ this much after compression.
const LUMA_TOLERANCE: i64 = 24;

#[test]
fn two_way_call_carries_pictures_and_tones_both_ways() {
    let server = Server::start();
    call_and_check(&server, &server);
}

/// The same call with ala on one server of a cluster and bob on another
/// (`--cluster`, a real nats-server): the call lives on bob's server, and
/// ala's is carried there.
#[test]
fn a_call_between_two_servers_of_a_cluster_is_the_same_call() {
    let broker = broker::Broker::start();
    let node = |name: &str| Server::start_with(&["--cluster", &broker.url, "--node", name]);
    let (n1, n2) = (node("n1"), node("n2"));
    call_and_check(&n1, &n2);
}

/// ala (on `a`) calls bob (on `b`) for 5 s; each must see and hear the other.
fn call_and_check(a: &Server, b: &Server) {
    let bob = Client::start(
        &b.addr,
        &[args(&[&["--name", "bob", "--answer"]]), test_media("gradient", 660)].concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    // Another server hears of bob within its directory's 20 ms.
    std::thread::sleep(Duration::from_millis(500));
    let ala = Client::start(
        &a.addr,
        &[args(&[&["--name", "ala", "--call", "bob", "--duration", "5"]]), test_media("smpte", 440)].concat(),
    );
    let ala = ala.finish(Duration::from_secs(60));
    let bob = bob.finish(Duration::from_secs(20));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    assert_eq!(ala.end_reason(), "hangup");
    assert_eq!(bob.end_reason(), "peer-hangup");
    assert!(ala.f("call_seconds") >= 4.9, "{}", ala.json());
    check_direction("ala -> bob", &ala, &bob, 440.0);
    check_direction("bob -> ala", &bob, &ala, 660.0);
    for side in [&ala, &bob] {
        assert!(side.json()["latency_ms_p50"].as_f64().is_some(), "latency measured: {}", side.json());
        assert!(side.f("latency_ms_p95") < 1000.0, "{}", side.json());
    }
}

fn check_direction(what: &str, from: &Outcome, to: &Outcome, tone_hz: f64) {
    let sent = from.n("video_frames_sent");
    assert!(sent >= 100, "{what}: only {sent} frames sent in 5 s");
    let decoded = to.n("video_frames_decoded");
    assert!(decoded * 100 >= sent * 80, "{what}: decoded {decoded} of {sent} frames");
    // Audio without gaps: every packet arrived and decoded into its 20 ms.
    let audio_sent = from.n("audio_packets_sent");
    assert!(audio_sent >= 200, "{what}: only {audio_sent} audio packets sent");
    assert_eq!(to.n("audio_gaps"), 0, "{what}: gaps in the audio");
    let received = to.n("audio_packets_received");
    assert!(received * 100 >= audio_sent * 95, "{what}: received {received} of {audio_sent} packets");
    assert!(to.n("audio_decoded_ms") >= received * 20 * 95 / 100, "{what}: {}", to.json());
    let hz = to.f("audio_dominant_hz");
    assert!((hz - tone_hz).abs() < 5.0, "{what}: decoded tone is {hz} Hz, expected {tone_hz}");
    assert!(to.f("audio_rms") > 0.05, "{what}: decoded audio is nearly silent");
    // Pictures: the grid of the decoded picture matches what the sender
    // captured, and not what the receiver itself sends.
    let theirs = grid(from, "video_sent_luma");
    let got = grid(to, "video_received_luma");
    let own = grid(to, "video_sent_luma");
    let distance =
        |a: &[i64], b: &[i64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).max().unwrap_or(i64::MAX);
    assert!(
        distance(&got, &theirs) <= LUMA_TOLERANCE,
        "{what}: decoded picture {got:?} is not the sent pattern {theirs:?}"
    );
    assert!(distance(&got, &own) > 60, "{what}: the two patterns should differ");
}

fn grid(o: &Outcome, key: &str) -> Vec<i64> {
    let v = o.json()[key].as_array().unwrap_or_else(|| panic!("{key} missing: {}", o.json()));
    v.iter().filter_map(serde_json::Value::as_i64).collect()
}
