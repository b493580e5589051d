//! Keyframes: a `keyframe` from the peer makes the next video frame an IDR
//! (long before the encoder's own GOP would), and video that cannot be
//! decoded makes the client ask the peer for one.

mod support;

use std::time::{Duration, Instant};

use gst::prelude::*;
use komunikator_protocol::{Command, MediaHeader, MediaKind, Target};
use support::peer::{Got, Peer};
use support::{Client, READY, Server, args, test_media};

/// The encoder's own keyframe interval is 60 frames = 2 s.
const GOP: Duration = Duration::from_secs(2);

fn call_headless(server: &Server) -> (Client, Peer) {
    let cam = Client::start(
        &server.addr,
        &[args(&[&["--name", "cam", "--answer"]]), test_media("ball", 440)].concat(),
    );
    cam.wait_for("komunikator: ready", READY);
    let mut peer = Peer::connect(&server.addr);
    peer.send(&Command::Connect(Target::Nick("cam")));
    peer.expect_line("start ", Duration::from_secs(20));
    (cam, peer)
}

#[test]
fn keyframe_request_forces_an_idr() {
    let server = Server::start();
    let (cam, mut peer) = call_headless(&server);
    // Let the call's first keyframe pass, then ask mid-GOP.
    let started = Instant::now();
    let mut frames = 0;
    while started.elapsed() < Duration::from_millis(600) {
        if let Some(Got::Media(h, _)) = peer.next(Duration::from_millis(100)) {
            frames += u32::from(h.kind == MediaKind::Video);
        }
    }
    assert!(frames > 5, "video flows before the request");
    peer.send(&Command::Keyframe);
    let asked = Instant::now();
    let keyframe_after = loop {
        match peer.next(GOP) {
            Some(Got::Media(h, payload)) if h.kind == MediaKind::Video && h.key => {
                assert!(contains_idr(&payload), "a frame flagged k holds an IDR slice");
                break asked.elapsed();
            }
            Some(_) => {}
            None => panic!("no keyframe within {GOP:?} of asking"),
        }
    };
    assert!(keyframe_after < Duration::from_millis(700), "forced keyframe took {keyframe_after:?}");
    peer.send(&Command::Stop);
    let cam = cam.finish(Duration::from_secs(20));
    assert_eq!(cam.end_reason(), "peer-hangup");
    assert!(cam.n("keyframes_forced") >= 1, "{}", cam.json());
}

#[test]
fn undecodable_video_asks_for_a_keyframe() {
    let server = Server::start();
    let (cam, mut peer) = call_headless(&server);
    // The client asks once when the call starts.
    peer.expect_line("keyframe", Duration::from_secs(5));
    let asked_at_start = Instant::now();
    // Then send delta frames whose keyframe (with SPS/PPS) never came.
    let deltas = encoded_deltas(40);
    let mut asked_again = None;
    for (i, frame) in deltas.iter().enumerate() {
        let header = MediaHeader {
            kind: MediaKind::Video,
            pts: i as u64 * 33_333,
            key: false,
            len: frame.len() as u32,
        };
        peer.send_media(header, frame);
        let deadline = Instant::now() + Duration::from_millis(33);
        while let Some(got) = peer.next(deadline.saturating_duration_since(Instant::now())) {
            if got == Got::Line("keyframe".into()) {
                asked_again.get_or_insert(asked_at_start.elapsed());
            }
        }
    }
    if asked_again.is_none() && peer.expect_line_within("keyframe", Duration::from_secs(2)) {
        asked_again = Some(asked_at_start.elapsed());
    }
    assert!(asked_again.is_some(), "undecodable video did not make the client ask for a keyframe");
    peer.send(&Command::Stop);
    let cam = cam.finish(Duration::from_secs(20));
    assert!(cam.n("keyframes_requested") >= 2, "{}", cam.json());
    assert_eq!(cam.n("video_frames_received"), deltas.len() as u64);
}

/// A peer that sends the moment it reads `start` (as every client does)
/// while the callee is still building its receiving pipelines: the first
/// keyframe and what follows it are kept until the pipelines are ready,
/// and all of it is decoded. They were dropped, so the callee showed
/// nothing until a keyframe it asked for again arrived.
#[test]
fn frames_sent_right_after_start_are_kept_until_the_pipelines_are_ready() {
    let server = Server::start();
    let frames = encoded_frames(15);
    let (cam, mut peer) = call_headless(&server);
    for (i, frame) in frames.iter().enumerate() {
        let header = MediaHeader {
            kind: MediaKind::Video,
            pts: i as u64 * 33_333,
            key: i == 0,
            len: frame.len() as u32,
        };
        peer.send_media(header, frame);
    }
    // Reads what the callee sends meanwhile, so nothing stalls.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        peer.next(Duration::from_millis(100));
    }
    peer.send(&Command::Stop);
    let cam = cam.finish(Duration::from_secs(20));
    assert_eq!(cam.n("video_frames_received"), frames.len() as u64, "{}", cam.json());
    assert_eq!(cam.n("video_frames_decoded"), frames.len() as u64, "{}", cam.json());
}

/// Encodes a moving test pattern and returns every frame after the first
/// keyframe: valid H.264 that cannot be decoded without that keyframe.
fn encoded_deltas(n: usize) -> Vec<Vec<u8>> {
    let mut frames = encoded_frames(n);
    frames.remove(0);
    assert!(frames.iter().all(|f| !contains_idr(f)), "only delta frames remain");
    frames
}

/// Encodes a moving test pattern: a keyframe, then `n` delta frames.
fn encoded_frames(n: usize) -> Vec<Vec<u8>> {
    gst::init().unwrap();
    let launch = format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1,format=I420 ! \
         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=1000 ! h264parse config-interval=-1 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
        n + 1
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        frames.push(buffer.map_readable().unwrap().to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames.len(), n + 1);
    assert!(contains_idr(&frames[0]), "the first frame is a keyframe");
    frames
}

/// Whether an Annex B access unit holds an IDR slice (NAL type 5).
fn contains_idr(au: &[u8]) -> bool {
    au.windows(4).any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}
