//! The client under fire: a peer that sends garbage media, a server that
//! sends malformed lines, and a camera that fails mid-call. The client is
//! the real `komunikator --headless` binary (or, for the camera, the real
//! engine in this process); peers and servers are real sockets.

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
    // Opus), and passes the target's keyframe requests back to it.
    let mirror_until = Instant::now() + Duration::from_secs(3);
    let mut mirrored = 0;
    while Instant::now() < mirror_until {
        match peer.try_recv(Duration::from_millis(50)) {
            Some(Msg::Media { header, payload }) => {
                let mut f = header.split(' ');
                let (kind, pts, flags) = (f.next(), f.next(), f.next());
                let pts: u64 = pts.unwrap_or("0").parse().unwrap_or(0);
                peer.send_media(kind.unwrap_or("video"), pts, flags == Some("k"), &payload)?;
                mirrored += 1;
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
    ensure!(decoded > 0, "no picture decoded after the garbage: {json}");
    Ok(Ran::Done(format!(
        "{sent} garbage video frames + {sent} garbage audio packets over {:.1} s: call stayed up, \
         {garbage_requests} keyframe requests during the garbage ({keyframe_requests} in all); then \
         {mirrored} valid frames mirrored back: {decoded} pictures and {audio} audio packets decoded; \
         the target hung up normally (exit 0)",
        garbage_for.as_secs_f64()
    )))
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

pub(super) fn camera_lost(_mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    // The engine falls back at call start (tests/camera_fallback.rs in
    // gtk-client), but a sending pipeline that fails mid-call is only
    // reported (Event::MediaProblem), not restarted on the fallback source;
    // without a way to unplug a camera here this stays a documented gap.
    Ok(Ran::Skipped(
        "not run: the engine reports a camera or microphone that fails mid-call (MediaProblem) but has no \
         mid-call fallback yet, and this machine has no camera to unplug; start-time fallback is covered \
         by gtk-client/tests/camera_fallback.rs"
            .into(),
    ))
}
