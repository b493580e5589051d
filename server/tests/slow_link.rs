//! A receiver on a link too slow for the video: keyframes reach it at most
//! once every 2 s, audio keeps flowing, and video comes back soon after the
//! link speeds up.

mod support;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use komunikator_protocol::{Decoded, Decoder, MediaKind, Status};
use support::{Client, Msg, Server, Throttle};

/// The receiver's drain rate while slow: 1 Mbit/s.
const SLOW_RATE: f64 = 125_000.0;

/// A frame as the receiver saw it: kind, keyframe flag, capture time, arrival time.
struct Got {
    kind: MediaKind,
    key: bool,
    captured: Duration,
    arrived: Duration,
}

/// Payloads start with their capture time, in microseconds since `t0`.
fn payload(t0: Instant, len: usize) -> Vec<u8> {
    let mut p = vec![0x5a; len];
    p[..8].copy_from_slice(&(t0.elapsed().as_micros() as u64).to_le_bytes());
    p
}

/// Reads `stream` at [`SLOW_RATE`] until `speedup`, then at full speed until `end`.
fn receive(stream: &mut std::net::TcpStream, t0: Instant, speedup: Instant, end: Instant) -> Vec<Got> {
    stream.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let (mut buf, mut chunk, mut got) = (Vec::new(), vec![0u8; 64 << 10], Vec::new());
    let mut throttle = Throttle::new(SLOW_RATE, 4096);
    while Instant::now() < end {
        let want = if Instant::now() < speedup {
            let Some(n) = throttle.allowance() else { continue };
            n
        } else {
            chunk.len()
        };
        let n = match stream.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => continue,
        };
        throttle.took(n);
        buf.extend_from_slice(&chunk[..n]);
        let arrived = t0.elapsed();
        let dec = Decoder::new(1 << 16, 1 << 24);
        while let Ok(Status::Complete { item, consumed }) = dec.decode_server(&buf) {
            if let Decoded::Media { header, payload, .. } = item {
                let micros = u64::from_le_bytes(payload[..8].try_into().unwrap());
                let captured = Duration::from_micros(micros);
                got.push(Got { kind: header.kind, key: header.key, captured, arrived });
            }
            buf.drain(..consumed);
        }
    }
    got
}

#[test]
fn a_slow_receiver_gets_spaced_keyframes_and_prompt_audio_then_video_again() {
    let server = Server::start();
    let slow = Client::connect_small_rcvbuf(server.addr, 4096);
    let (mut a, mut b) = support::call_between(server.named("ala"), slow);
    let t0 = Instant::now();
    let speedup = t0 + Duration::from_secs(5);
    let end = speedup + Duration::from_secs(3);
    let stop = AtomicBool::new(false);
    let mut writer = a.stream.try_clone().unwrap();
    let got = thread::scope(|scope| {
        let stop = &stop;
        // 50 video frames a second, 10 KB each and a 30 KB keyframe five
        // times a second (far more than the link takes), with an audio packet
        // after each.
        scope.spawn(move || {
            use std::io::Write;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = i % 10 == 0;
                let video = payload(t0, if key { 30_000 } else { 10_000 });
                let header = format!("video 1 {} {}\n", if key { "k" } else { "-" }, video.len());
                let mut out = header.into_bytes();
                out.extend_from_slice(&video);
                let audio = payload(t0, 100);
                out.extend_from_slice(format!("audio 1 k {}\n", audio.len()).as_bytes());
                out.extend_from_slice(&audio);
                if writer.write_all(&out).is_err() {
                    break;
                }
                i += 1;
                thread::sleep(Duration::from_millis(20));
            }
        });
        let got = receive(&mut b.stream, t0, speedup, end);
        stop.store(true, Ordering::Relaxed);
        got
    });
    let slow_phase = |g: &&Got| g.arrived < speedup - t0;
    let keys: Vec<Duration> = got
        .iter()
        .filter(slow_phase)
        .filter(|g| g.kind == MediaKind::Video && g.key)
        .map(|g| g.captured)
        .collect();
    assert!(keys.len() >= 2, "some keyframes got through: {keys:?}");
    for pair in keys.windows(2) {
        // Captured at least 2 s apart (less one frame interval for scheduling noise).
        assert!(pair[1] - pair[0] > Duration::from_millis(1900), "keyframes too close: {keys:?}");
    }
    let audio = got.iter().filter(slow_phase).filter(|g| g.kind == MediaKind::Audio).count();
    assert!(audio > 200, "audio kept flowing on the slow link ({audio} packets in 5 s)");
    let fresh_video = got.iter().find(|g| {
        g.kind == MediaKind::Video
            && g.arrived > speedup - t0
            && g.arrived - g.captured < Duration::from_millis(100)
    });
    let back = fresh_video.map(|g| g.arrived - (speedup - t0));
    assert!(back.is_some_and(|d| d < Duration::from_millis(2500)), "video back after the speed-up: {back:?}");
    let requests = a.sync().iter().filter(|m| *m == &Msg::Line("keyframe".into())).count();
    assert!(requests <= 6, "{requests} keyframe requests in 8 s");
}
