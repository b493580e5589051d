//! Calls over a slow link, through the link emulator (`linkem/`, its
//! user-space shaper, so the same on every machine): a caller whose uplink
//! is 500 kbit/s, and a callee whose downlink is. Either way the call must
//! stay a call: the audio arrives, and arrives in time, and the picture
//! keeps moving. Before the client adapted, the slow uplink left audio
//! seconds behind and half of it undelivered; the slow downlink left
//! video at about 2 pictures a second.
//!
//! The bounds are generous (a busy 2-core machine runs these); the figures
//! against the targets are in BENCHMARKS.md (`scripts/bench`).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use komunikator_linkem::{Backend, Link, LinkSpec};
use support::{Client, Outcome, READY, Server, args, test_media};

/// How long each call lasts: long enough that the first seconds, while the
/// sender does not know its path yet (the server's first downlink report
/// can be far off), do not decide the whole call's frame rate.
const CALL_SECONDS: &str = "20";

/// Starts a link to `server` shaped by `up` and `down` (linkem's text form).
fn link(server: &Server, up: &str, down: &str) -> Link {
    let spec = LinkSpec::parse(up, down).expect("a link spec");
    let upstream: SocketAddr = server.addr.parse().expect("the server's address");
    Link::start(upstream, &spec, Backend::UserSpace).expect("start the link emulator")
}

/// Bob answers at `bob_addr`; ala calls him from `ala_addr`; both outcomes.
fn call(bob_addr: &str, ala_addr: &str) -> (Outcome, Outcome) {
    let bob = Client::start(
        bob_addr,
        &[args(&[&["--name", "bob", "--answer"]]), test_media("smpte", 660)].concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    let ala_args = args(&[&["--name", "ala", "--call", "bob", "--duration", CALL_SECONDS]]);
    let ala = Client::start(ala_addr, &[ala_args, test_media("snow", 440)].concat());
    let ala = ala.finish(Duration::from_secs(90));
    let bob = bob.finish(Duration::from_secs(30));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    (ala, bob)
}

/// What `to` got of what `from` sent must sound and look like a call. A
/// failure shows both ends' reports: the sender's rate timeline is where
/// the cause usually is.
fn still_a_call(what: &str, from: &Outcome, to: &Outcome) {
    let both = || format!("\nreceiver: {}\nsender: {}", to.json(), from.json());
    let (sent, decoded) = (from.n("audio_packets_sent"), to.n("audio_packets_decoded"));
    assert!(decoded * 100 >= sent * 90, "{what}: {decoded} of {sent} audio packets decoded{}", both());
    let age = to.f("audio_age_ms_p95");
    assert!(age < 1000.0, "{what}: audio arrives {age} ms late (p95){}", both());
    let fps = to.n("video_frames_decoded") as f64 / to.f("call_seconds").max(1.0);
    assert!(fps >= 8.0, "{what}: only {fps:.1} pictures/s decoded{}", both());
    let delay = to.f("latency_ms_p95");
    assert!(delay < 1500.0, "{what}: pictures arrive {delay} ms late (p95){}", both());
}

/// The sender's send-rate timeline: (kbit/s, what limited it) per change.
fn rate_timeline(o: &Outcome) -> Vec<(u64, String)> {
    let points = o.json()["video_rate"].as_array().cloned().unwrap_or_default();
    points.iter().filter_map(|p| Some((p["kbps"].as_u64()?, p["limit"].as_str()?.to_owned()))).collect()
}

#[test]
fn a_slow_uplink_keeps_the_call_a_call() {
    let server = Server::start();
    let link = link(&server, "500kbit,queue=100ms", "unlimited");
    let (ala, bob) = call(&server.addr, &link.client_addr().to_string());
    still_a_call("ala -> bob over ala's 500 kbit/s uplink", &ala, &bob);
    // Ala found her own uplink: she cut below it and named it. (On a busy
    // machine a starved callee may also report a queue of its own; that
    // is honest, so other points may name the downlink.)
    let timeline = rate_timeline(&ala);
    assert!(
        timeline.iter().any(|(kbps, limit)| *kbps < 500 && limit == "uplink"),
        "ala never cut below her 500 kbit/s uplink naming it: {timeline:?}"
    );
}

#[test]
fn a_slow_downlink_keeps_the_call_a_call() {
    let server = Server::start();
    let link = link(&server, "unlimited", "500kbit,queue=100ms");
    let (ala, bob) = call(&link.client_addr().to_string(), &server.addr);
    still_a_call("ala -> bob over bob's 500 kbit/s downlink", &ala, &bob);
}
