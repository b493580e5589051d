//! A call survives the wall clock jumping. A Raspberry Pi has no hardware
//! clock: it boots with a stale time and NTP steps it, often minutes or
//! years at once, maybe during a call; a laptop's clock is stepped too.
//! When the sending pipelines ran on the real-time clock, a step forward
//! made the live sources catch up on every "missed" picture at once (a
//! burst of hundreds of frames, seconds of delay), a step back froze them
//! for as long as the step, and the receiver took the jump for seconds of
//! queueing and had the sender cut its video to the floor.
//!
//! Ala's real-time clock (only hers, only the real-time one) is stepped by
//! `libfaketime` mid-call, through a file it re-reads.

mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use support::{Client, READY, Server, args, test_dir, test_media};

/// How long each call lasts, seconds.
const CALL_SECONDS: u64 = 12;

/// The multi-threaded libfaketime, wherever this architecture keeps it.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|arch| arch.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is not installed (apt-get install libfaketime; scripts/deps installs it)")
}

/// Ala calls bob; `step` (libfaketime's offset syntax, "+30" or "-30")
/// moves ala's real-time clock a few seconds into the call.
fn call_with_a_clock_step(name: &str, step: &str) {
    let server = Server::start();
    let dir = test_dir(name);
    std::fs::create_dir_all(&dir).expect("make the test's directory");
    let offset = dir.join("faketime");
    std::fs::write(&offset, "+0\n").expect("write the faketime offset");
    let bob = Client::start(
        &server.addr,
        &[args(&[&["--name", "bob", "--answer"]]), test_media("smpte", 660)].concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    let preload = libfaketime();
    let env: [(&str, &OsStr); 4] = [
        ("LD_PRELOAD", preload.as_os_str()),
        ("FAKETIME_TIMESTAMP_FILE", offset.as_os_str()),
        ("FAKETIME_NO_CACHE", OsStr::new("1")),
        ("DONT_FAKE_MONOTONIC", OsStr::new("1")),
    ];
    let ala_args = args(&[&["--name", "ala", "--call", "bob", "--duration", &CALL_SECONDS.to_string()]]);
    let ala = Client::start_with_env(&server.addr, &[ala_args, test_media("snow", 440)].concat(), &env);
    ala.wait_for("call started", READY);
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&offset, format!("{step}\n")).expect("step the clock");
    let ala = ala.finish(Duration::from_secs(90));
    let bob = bob.finish(Duration::from_secs(30));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    let both = format!("\nala: {}\nbob: {}", ala.json(), bob.json());

    // No burst: ala's camera gave about 30 pictures a second, not the step's worth.
    let seconds = ala.f("call_seconds").max(1.0);
    let pictures = ala.n("video_frames_sent") + ala.n("video_frames_skipped");
    assert!(pictures as f64 <= seconds * 30.0 * 1.3, "{step}: {pictures} pictures in {seconds:.1} s{both}");
    // No freeze: bob kept seeing her.
    let fps = bob.n("video_frames_decoded") as f64 / bob.f("call_seconds").max(1.0);
    assert!(fps >= 15.0, "{step}: bob decoded {fps:.1} pictures/s{both}");
    // No phantom queue: her receiver did not report the step as delay, so
    // bob (on an unshaped loopback) never cut his video for the downlink.
    let cut = bob.json()["video_rate"].as_array().into_iter().flatten().any(|p| p["limit"] == "downlink");
    assert!(!cut, "{step}: bob cut his video for a downlink queue that was a clock step{both}");
}

#[test]
fn a_clock_stepped_forward_mid_call() {
    call_with_a_clock_step("clock-forward", "+30");
}

#[test]
fn a_clock_stepped_back_mid_call() {
    call_with_a_clock_step("clock-back", "-30");
}
