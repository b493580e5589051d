//! The client under fire: a peer that sends garbage media, a server that
//! sends malformed lines, and a camera and a microphone that fail mid-call.
//! The client is the real `komunikator --headless` binary; peers and servers
//! are real sockets. The device failures are injected with the client's
//! hidden `--inject-source-failure` flag, which makes the real source element
//! post an error (as `v4l2src` does when its camera is unplugged) or end its
//! stream: this machine has no camera to unplug.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::client::{Client, Msg, Rng};
use crate::headless::{Headless, TEST_MEDIA};
use crate::server::ServerProc;
use crate::{Mode, Ran};

const START: Duration = Duration::from_secs(30);

/// A random H.264-looking frame: start codes and NAL headers (IDR, slice,
/// SPS, PPS) followed by random bytes, so it reaches the decoder.
fn garbage_h264(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.push([0x65, 0x41, 0x67, 0x68, 0x06][rng.below(5)]);
        let n = 16 + rng.below(3000);
        out.extend(rng.bytes(n));
    }
    out
}

pub(super) fn garbage_media(mode: Mode, rng: &mut Rng) -> Result<Ran> {
    let garbage_for = match mode {
        Mode::Quick => Duration::from_millis(1500),
        Mode::Long => Duration::from_secs(10),
    };
    let server = ServerProc::start(&[])?;
    let addr = server.addr.to_string();
    let args = [TEST_MEDIA, &["--name", "target", "--answer", "--duration", "30"]].concat();
    let target = Headless::spawn("target", &addr, &args)?;
    let t0 = Instant::now();
    target.wait_line("ready", t0, START)?;
    let mut peer = Client::connect(server.addr)?;
    peer.name("mirror")?;
    peer.send("connect target")?;
    peer.expect_prefix("calling ")?;
    peer.expect("ask yes")?;
    peer.expect_prefix("start ")?;
    // Phase 1: garbage video (random NALs and plain noise) and garbage Opus.
    let start = Instant::now();
    let (mut sent, mut keyframe_requests) = (0, 0);
    let mut pts = 1_000_000u64;
    while start.elapsed() < garbage_for {
        pts += 33_333;
        let n = 1 + rng.below(2000);
        let video = if sent % 4 == 0 { rng.bytes(n) } else { garbage_h264(rng) };
        peer.send_media("video", pts, sent % 5 == 0, &video)?;
        let n = 1 + rng.below(200);
        let audio = rng.bytes(n);
        peer.send_media("audio", pts, true, &audio)?;
        sent += 1;
        let tick = Instant::now() + Duration::from_millis(30);
        while let Some(m) = peer.try_recv(tick.saturating_duration_since(Instant::now())) {
            keyframe_requests += usize::from(m.line() == "keyframe");
        }
    }
    let garbage_requests = keyframe_requests;
    // Phase 2: the peer mirrors the target's own media back (valid H.264 and
    // Opus), and passes the target's keyframe requests back to it. Long mode
    // leaves more time: a rebuild may be up to 2 s away when the garbage stops.
    let mirror_for = match mode {
        Mode::Quick => Duration::from_secs(3),
        Mode::Long => Duration::from_secs(6),
    };
    let mirror_until = Instant::now() + mirror_for;
    let (mut mirrored, mut mirrored_video) = (0, 0u64);
    while Instant::now() < mirror_until {
        match peer.try_recv(Duration::from_millis(50)) {
            Some(Msg::Media { header, payload }) => {
                let mut f = header.split(' ');
                let (kind, pts, flags) = (f.next(), f.next(), f.next());
                let pts: u64 = pts.unwrap_or("0").parse().unwrap_or(0);
                peer.send_media(kind.unwrap_or("video"), pts, flags == Some("k"), &payload)?;
                mirrored += 1;
                mirrored_video += u64::from(kind == Some("video"));
            }
            Some(m) if m.line() == "keyframe" => {
                keyframe_requests += 1;
                peer.send("keyframe")?;
            }
            Some(m) => ensure!(!m.line().starts_with("stop"), "the call ended: {m:?}"),
            None => {}
        }
    }
    // The call is still up: the target hangs up when told to.
    peer.send("msg still there?")?;
    target.terminate();
    peer.wait_for(Duration::from_secs(10), |m| m.line() == "stop hangup")?;
    let (status, json) = target.finish(Duration::from_secs(20))?;
    ensure!(status.success(), "the target exited with {status}");
    ensure!(json["end_reason"] == "hangup", "the call ended with {}", json["end_reason"]);
    ensure!(garbage_requests > 0, "no keyframe was requested while the video was garbage");
    let decoded = json["video_frames_decoded"].as_u64().unwrap_or(0);
    let audio = json["audio_packets_decoded"].as_u64().unwrap_or(0);
    // Video came back after the garbage: most valid frames were decoded, and
    // the last picture decoded is the target's own pattern, not noise.
    ensure!(decoded * 2 >= mirrored_video, "{decoded} of {mirrored_video} valid frames decoded: {json}");
    let distance = luma_distance(&json["video_received_luma"], &json["video_sent_luma"]);
    ensure!(distance < 12.0, "the last decoded picture is not the pattern (distance {distance:.1}): {json}");
    ensure!(audio > 0, "no audio decoded: {json}");
    let restarts = notices_with(&json, "decoder was restarted");
    let limit = 4 * (garbage_for + mirror_for).as_secs() as usize + 4;
    ensure!(restarts <= limit, "{restarts} decoder restarts: a storm");
    Ok(Ran::Done(format!(
        "{sent} garbage video frames + {sent} garbage audio packets over {:.1} s: call stayed up, \
         {restarts} decoder restarts (rate-limited), {garbage_requests} keyframe requests during the \
         garbage ({keyframe_requests} in all); then {mirrored} valid frames mirrored back: {decoded} of \
         {mirrored_video} pictures decoded, the last one the target's own pattern (luma distance \
         {distance:.1}), {audio} audio packets decoded; the target hung up normally (exit 0)",
        garbage_for.as_secs_f64()
    )))
}

/// Mean absolute difference of two luma grids from a summary (infinite when one is missing).
fn luma_distance(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else { return f64::INFINITY };
    let sum: f64 =
        a.iter().zip(b).map(|(x, y)| (x.as_f64().unwrap_or(0.0) - y.as_f64().unwrap_or(0.0)).abs()).sum();
    sum / a.len().max(1) as f64
}

/// How many of a summary's notices contain `text`.
fn notices_with(json: &serde_json::Value, text: &str) -> usize {
    json["notices"]
        .as_array()
        .map_or(0, |n| n.iter().filter(|n| n.as_str().is_some_and(|t| t.contains(text))).count())
}

/// Lines a broken server might send, none of them fatal to the framing.
const BAD_LINES: &[&[u8]] = &[
    b"HELLO\n",
    b"\n",
    b"presence\n",
    b"presence 1.2.3.4:5 sleepy x\n",
    b"ask\n",
    b"clients 3\n1.2.3.4:5 free a\n",
    b"start not-an-id\n",
    b"stop because\n",
    b"error\n",
    b"error no-such-code\n",
    b"ok name\n",
    b"ping\n",
    b"msg \x00\x01\x02\n",
    b"\xff\xfe\xfd garbage \xc3\x28\n",
    b"video x k 5\nabcde",
    b"audio 1 z 3\nxyz",
    b"keyframe\n",
    b"calling 1.2.3.4:5\n",
    b"busy 1.2.3.4:5\n",
    b"ask yes\n",
    b"stop hangup\n",
    b"  \t  \r\n",
];

pub(super) fn malformed_server(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    // Case 1: garbage that keeps the framing, then a real call.
    let args = [TEST_MEDIA, &["--name", "victim", "--answer", "--duration", "1"]].concat();
    let client = Headless::spawn("victim", &addr, &args)?;
    let (mut s, peer) = accept(&listener)?;
    s.write_all(format!("hello {peer} komunikator/1\n").as_bytes())?;
    let mut c = Client::unread(s.try_clone()?);
    c.wait_for(START, |m| m.line() == "name victim")?;
    s.write_all(b"ok name victim\n")?;
    for line in BAD_LINES {
        s.write_all(line)?;
    }
    // Still understood afterwards: a call comes in.
    s.write_all(b"ask 10.0.0.9:4000 caller\n")?;
    c.wait_for(Duration::from_secs(10), |m| m.line() == "ask yes").context("the client stopped answering")?;
    s.write_all(b"start 10.0.0.9:4000\n")?;
    let (_, first_media) = c.wait_for(Duration::from_secs(20), |m| matches!(m, Msg::Media { .. }))?;
    c.wait_for(Duration::from_secs(10), |m| m.line() == "stop")?;
    drop(c);
    drop(s);
    let (status, json) = client.finish(Duration::from_secs(20))?;
    let ignored = json["notices"]
        .as_array()
        .map_or(0, |n| n.iter().filter(|n| n.as_str().is_some_and(|t| t.contains("ignored"))).count());
    ensure!(status.code().is_some(), "the client died by a signal: {status}");
    ensure!(json["end_reason"] == "hangup", "the call ended with {}", json["end_reason"]);

    // Case 2: a line longer than the protocol allows, then binary noise: the
    // framing is lost, so the client must give up cleanly.
    let args = [TEST_MEDIA, &["--name", "victim2", "--answer"]].concat();
    let client = Headless::spawn("victim2", &addr, &args)?;
    let (mut s, peer) = accept(&listener)?;
    s.write_all(format!("hello {peer} komunikator/1\n").as_bytes())?;
    let mut c = Client::unread(s.try_clone()?);
    c.wait_for(START, |m| m.line() == "name victim2")?;
    s.write_all(b"ok name victim2\n")?;
    let cut = Instant::now();
    let mut long = vec![b'x'; 5000];
    long.push(b'\n');
    s.write_all(&long)?;
    let _ = s.write_all(&Rng::new(7).bytes(4096));
    let (status2, json2) = client.finish(Duration::from_secs(20))?;
    let gave_up = cut.elapsed();
    ensure!(status2.code() == Some(1), "expected exit 1 (connection lost), got {status2}");
    ensure!(json2["end_reason"] == "connection-lost", "ended with {}", json2["end_reason"]);
    drop(s);
    Ok(Ran::Done(format!(
        "{} malformed lines (bad UTF-8, NUL, unknown words, bad ids, a short clients list, bad media \
         headers with payloads, out-of-place call lines): the client ignored them ({ignored} notices), \
         still answered a call, sent media {:.1} s after start and hung up normally (exit {}); \
         a 5000-byte line plus binary noise: it gave up cleanly in {:.0} ms (exit 1, connection-lost); \
         no crash",
        BAD_LINES.len(),
        first_media.as_secs_f64(),
        status.code().unwrap_or(-1),
        gave_up.as_secs_f64() * 1e3,
    )))
}

fn accept(listener: &TcpListener) -> Result<(TcpStream, std::net::SocketAddr)> {
    listener.set_nonblocking(false)?;
    let (s, peer) = listener.accept()?;
    s.set_nodelay(true)?;
    Ok((s, peer))
}

pub(super) fn camera_lost(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let (seconds, fail_at) = match mode {
        Mode::Quick => (5.0, 1.5),
        Mode::Long => (20.0, 5.0),
    };
    let server = ServerProc::start(&[])?;
    let addr = server.addr.to_string();
    // In one call, the callee's microphone ends its stream and the caller's
    // camera posts an error, both `fail_at` seconds in.
    let (seconds_arg, mic, cam) =
        (seconds.to_string(), format!("audio:{fail_at}:eos"), format!("video:{fail_at}"));
    let callee_args =
        [TEST_MEDIA, &["--name", "callee", "--answer", "--inject-source-failure", &mic]].concat();
    let callee = Headless::spawn("callee", &addr, &callee_args)?;
    let t0 = Instant::now();
    callee.wait_line("ready", t0, START)?;
    let caller_args =
        [TEST_MEDIA, &["--call", "callee", "--duration", &seconds_arg, "--inject-source-failure", &cam]]
            .concat();
    let caller = Headless::spawn("caller", &addr, &caller_args)?;
    let started = caller.wait_line("call started", t0, START)?;
    let camera_told = caller.wait_line("sending a test pattern instead", started, Duration::from_secs(20))?;
    let mic_told = callee.wait_line("sending silence instead", started, Duration::from_secs(20))?;
    let (status, caller_json) = caller.finish(Duration::from_secs(60))?;
    let (callee_status, callee_json) = callee.finish(Duration::from_secs(20))?;
    ensure!(status.success() && callee_status.success(), "exit {status} and {callee_status}");
    ensure!(caller_json["end_reason"] == "hangup", "the call ended with {}", caller_json["end_reason"]);
    ensure!(notices_with(&caller_json, "the call goes on") == 1, "caller notices: {caller_json}");
    ensure!(notices_with(&callee_json, "the call goes on") == 1, "callee notices: {callee_json}");
    let n = |j: &serde_json::Value, k: &str| j[k].as_u64().unwrap_or(0);
    // 15 pictures and 50 audio packets a second; without the fallback they
    // stop at `fail_at`.
    let (video_sent, audio_sent) =
        (n(&caller_json, "video_frames_sent"), n(&callee_json, "audio_packets_sent"));
    ensure!(video_sent as f64 >= 15.0 * seconds * 0.8, "{video_sent} pictures sent: {caller_json}");
    ensure!(audio_sent as f64 >= 50.0 * seconds * 0.8, "{audio_sent} audio packets sent: {callee_json}");
    let decoded = n(&callee_json, "video_frames_decoded");
    ensure!(decoded * 100 >= video_sent * 80, "{decoded} of {video_sent} pictures decoded: {callee_json}");
    let heard = n(&caller_json, "audio_packets_decoded");
    ensure!(heard * 100 >= audio_sent * 80, "{heard} of {audio_sent} audio packets decoded: {caller_json}");
    let rms = caller_json["audio_rms"].as_f64().unwrap_or(1.0);
    ensure!(rms < 0.01, "the caller still hears the tone, not the fallback's silence (rms {rms})");
    Ok(Ran::Done(format!(
        "{seconds:.0} s call; at {fail_at:.1} s the caller's video source posted an error and the callee's \
         audio source ended its stream: the user was told ({:.0} and {:.0} ms after the call started), \
         the call went on, {video_sent} pictures sent ({decoded} decoded by the peer) and {audio_sent} \
         audio packets sent ({heard} decoded; the last second is the fallback's silence, rms {rms:.4}); \
         both hung up normally (exit 0)",
        camera_told.saturating_duration_since(started).as_secs_f64() * 1e3,
        mic_told.saturating_duration_since(started).as_secs_f64() * 1e3,
    )))
}
