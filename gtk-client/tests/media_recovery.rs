//! Mid-call media recovery, through the real server: garbage H.264 and Opus
//! from the peer do not stop the call, the video decoder is rebuilt and
//! pictures come back at the next keyframe; a camera or microphone that
//! fails mid-call (injected with the hidden `--inject-source-failure`, which
//! makes the real source element post an error or end its stream) is
//! replaced by the test pattern or silence, the call goes on, and the user
//! is told.

mod support;

use std::time::{Duration, Instant};

use komunikator_protocol::{Command, MediaHeader, MediaKind, Target};
use support::peer::{Got, Peer};
use support::{Client, Outcome, READY, Server, args, test_media};

/// Random bytes, reproducible (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Start codes and NAL headers (SPS, PPS, IDR, slice, SEI) over random
/// bytes: it gets through `h264parse` to the decoder, and bogus SPSs make
/// caps that the rest of the pipeline cannot take (`not-negotiated`).
fn garbage_h264(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.push([0x67, 0x68, 0x65, 0x41, 0x06][rng.below(5)]);
        let n = 16 + rng.below(3000);
        out.extend(rng.bytes(n));
    }
    out
}

fn media(kind: MediaKind, pts: u64, key: bool, payload: &[u8]) -> MediaHeader {
    MediaHeader { kind, pts, key, len: payload.len() as u32 }
}

/// Mean absolute difference of two luma grids from a summary.
fn luma_distance(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else { return f64::INFINITY };
    let d: f64 =
        a.iter().zip(b).map(|(x, y)| (x.as_f64().unwrap_or(0.0) - y.as_f64().unwrap_or(0.0)).abs()).sum();
    d / a.len().max(1) as f64
}

#[test]
fn garbage_media_from_the_peer_does_not_stop_received_video() {
    let server = Server::start();
    let target = Client::start(
        &server.addr,
        &[args(&[&["--name", "target", "--answer", "--fps", "15"]]), test_media("smpte", 440)].concat(),
    );
    target.wait_for("komunikator: ready", READY);
    let mut peer = Peer::connect(&server.addr);
    peer.send(&Command::Connect(Target::Nick("target")));
    peer.expect_line("start ", Duration::from_secs(20));
    // Phase 1: 3 s of garbage video (H.264-like NALs and plain noise) and garbage Opus.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut pts = 1_000_000;
    let mut garbage = 0;
    while started.elapsed() < Duration::from_secs(3) {
        pts += 33_333;
        let n = 1 + rng.below(2000);
        let video = if garbage % 4 == 0 { rng.bytes(n) } else { garbage_h264(&mut rng) };
        peer.send_media(media(MediaKind::Video, pts, garbage % 5 == 0, &video), &video);
        let n = 1 + rng.below(200);
        let audio = rng.bytes(n);
        peer.send_media(media(MediaKind::Audio, pts, true, &audio), &audio);
        garbage += 1;
        let tick = Instant::now() + Duration::from_millis(33);
        while peer.next(tick.saturating_duration_since(Instant::now())).is_some() {}
    }
    // Phase 2: 5 s of valid media: the target's own, mirrored back, with its
    // keyframe requests passed back to it.
    let mirror_until = Instant::now() + Duration::from_secs(5);
    let (mut mirrored_video, mut keyframe_requests) = (0u64, 0);
    while Instant::now() < mirror_until {
        match peer.next(Duration::from_millis(50)) {
            Some(Got::Media(h, payload)) => {
                mirrored_video += u64::from(h.kind == MediaKind::Video);
                peer.send_media(h, &payload);
            }
            Some(Got::Line(l)) if l == "keyframe" => {
                keyframe_requests += 1;
                peer.send(&Command::Keyframe);
            }
            Some(Got::Line(l)) => assert!(!l.starts_with("stop"), "the call ended: {l}"),
            None => {}
        }
    }
    peer.send(&Command::Stop);
    let target = target.finish(Duration::from_secs(20));
    assert_eq!(target.code, Some(0), "{}", target.stderr);
    assert_eq!(target.end_reason(), "peer-hangup");
    let notices = target.json()["notices"].to_string();
    assert!(notices.contains("the video decoder was restarted"), "no restart: {notices}");
    assert!(keyframe_requests > 0, "the restarted decoder did not ask for a keyframe");
    // Pictures came back: most mirrored frames were decoded, and the last
    // one decoded is the target's own test pattern, not garbage.
    let decoded = target.n("video_frames_decoded");
    assert!(decoded * 2 >= mirrored_video, "{decoded} of {mirrored_video} decoded: {}", target.json());
    let d = luma_distance(&target.json()["video_received_luma"], &target.json()["video_sent_luma"]);
    assert!(d < 12.0, "the last decoded picture is not the pattern (distance {d}): {}", target.json());
    assert!(target.n("audio_packets_decoded") > 100, "{}", target.json());
    assert_restarts_bounded(&target, 3 + 5 + 1);
}

/// Restarts are rate-limited: at most 4 a second over the call, and never a storm.
fn assert_restarts_bounded(outcome: &Outcome, seconds: u64) {
    let restarts = outcome.stderr.matches("decoder was restarted").count() as u64;
    assert!(restarts <= 4 * seconds, "{restarts} restarts in {seconds} s:\n{}", outcome.stderr);
}

/// A call of `seconds` at 30 frames/s in which `inject` fails the caller's source at 1.5 s.
fn call_with_failure(inject: &str, seconds: &str) -> (Outcome, Outcome) {
    let server = Server::start();
    let callee = Client::start(
        &server.addr,
        &[args(&[&["--name", "callee", "--answer"]]), test_media("ball", 660)].concat(),
    );
    callee.wait_for("komunikator: ready", READY);
    let caller_args = [
        args(&[&["--call", "callee", "--duration", seconds, "--inject-source-failure", inject]]),
        test_media("smpte", 440),
    ]
    .concat();
    let caller = Client::start(&server.addr, &caller_args).finish(Duration::from_secs(60));
    let callee = callee.finish(Duration::from_secs(20));
    assert_eq!(caller.code, Some(0), "{}", caller.stderr);
    assert_eq!(caller.end_reason(), "hangup");
    assert_eq!(callee.end_reason(), "peer-hangup");
    (caller, callee)
}

#[test]
fn lost_camera_falls_back_to_the_test_pattern_and_the_call_goes_on() {
    let (caller, callee) = call_with_failure("video:1.5", "5");
    // The real source element posted the error, and the user was told.
    assert!(caller.stderr.contains("send-video: error: Could not read from resource"), "{}", caller.stderr);
    let told = "stopped mid-call: sending a test pattern instead; the call goes on";
    assert!(caller.stderr.contains(told), "{}", caller.stderr);
    assert!(caller.json()["notices"].to_string().contains(told), "{}", caller.json());
    // Frames kept coming for the whole call (30/s for 5 s; without the
    // fallback they stop at 1.5 s) and the callee kept decoding them.
    let sent = caller.n("video_frames_sent");
    assert!(sent >= 110, "{sent} frames sent: {}", caller.json());
    let decoded = callee.n("video_frames_decoded");
    assert!(decoded * 100 >= sent * 80, "{decoded} of {sent} decoded: {}", callee.json());
    let d = luma_distance(&callee.json()["video_received_luma"], &caller.json()["video_sent_luma"]);
    assert!(d < 12.0, "the callee's last picture is not the caller's (distance {d})");
}

#[test]
fn lost_microphone_falls_back_to_silence_and_the_call_goes_on() {
    // End-of-stream from the source, as a microphone that goes away sends it.
    let (caller, callee) = call_with_failure("audio:1.5:eos", "5");
    assert!(caller.stderr.contains("send-audio: the source ended"), "{}", caller.stderr);
    let told = "the test tone stopped mid-call: sending silence instead; the call goes on";
    assert!(caller.stderr.contains(told), "{}", caller.stderr);
    assert!(caller.json()["notices"].to_string().contains(told), "{}", caller.json());
    // 50 packets/s for 5 s; without the fallback they stop at 1.5 s.
    let sent = caller.n("audio_packets_sent");
    assert!(sent >= 200, "{sent} packets sent: {}", caller.json());
    assert!(callee.n("audio_packets_decoded") >= 180, "{}", callee.json());
    // The last second the callee heard is the fallback's silence, not the tone.
    assert!(callee.f("audio_rms") < 0.01, "{}", callee.json());
    // The summary names what was sent at the end, not what the call began with.
    assert_eq!(caller.json()["audio_source"], "silence", "{}", caller.json());
    assert_eq!(callee.json()["audio_source"], "tone:660", "{}", callee.json());
    // Video was untouched.
    assert!(caller.n("video_frames_sent") >= 110, "{}", caller.json());
}
