//! A peer may send no audio at all while muted (docs/PROTOCOL.md,
//! "Microphone and camera switches"). The client measures its downlink's
//! queueing from the peer's audio and reports it with `delay <ms>`; once
//! the peer says `media audio off` and its audio stops, the client must not
//! go on reporting the last measurement. A fake server on 127.0.0.1 plays
//! the peer: its audio arrives 300 ms later than at first, then it mutes.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Client, READY, args};

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// An Opus packet with only its TOC byte (a 20 ms frame with no data).
fn audio(out: &mut TcpStream, pts: u64) {
    out.write_all(format!("audio {pts} k 1\n").as_bytes()).unwrap();
    out.write_all(&[0xF8]).unwrap();
}

/// The client's lines, read on a thread (media payloads skipped).
fn lines(stream: TcpStream) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let text = line.trim_end().to_owned();
            let len = text.rsplit(' ').next().and_then(|n| n.parse::<usize>().ok());
            if let (true, Some(len)) = (text.starts_with("video ") || text.starts_with("audio "), len) {
                let mut skip = vec![0u8; len];
                if std::io::Read::read_exact(&mut reader, &mut skip).is_err() {
                    return;
                }
            }
            if tx.send(text).is_err() {
                return;
            }
            line.clear();
        }
    });
    rx
}

/// The `delay` values among the lines that arrive within `d`.
fn delays_within(rx: &Receiver<String>, d: Duration) -> Vec<u32> {
    let end = Instant::now() + d;
    let mut got = Vec::new();
    while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if let Some(ms) = line.strip_prefix("delay ").and_then(|n| n.parse().ok()) {
            got.push(ms);
        }
    }
    got
}

#[test]
fn a_muted_peer_that_sends_no_audio_gets_no_stale_delay_reports() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let media = ["--video-source", "test", "--audio-source", "test", "--audio-output", "none"];
    let client = Client::start(&addr, &args(&[&["--plaintext", "--answer"], &media]));
    let (mut stream, _) = listener.accept().unwrap();
    let rx = lines(stream.try_clone().unwrap());
    stream.write_all(b"hello 127.0.0.1:5 komunikator/1\nask 127.0.0.1:6 bob\n").unwrap();
    let deadline = Instant::now() + READY;
    while rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("ask yes") != "ask yes" {
    }
    stream.write_all(b"start 127.0.0.1:6\n").unwrap();
    // Audio on time for a while, then 300 ms late: a queue on the way.
    for i in 0..100u64 {
        let late = if i < 50 { 0 } else { 300_000 };
        audio(&mut stream, now_us() - late);
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = delays_within(&rx, Duration::from_millis(600));
    assert!(before.iter().any(|ms| *ms >= 200), "the queueing was not reported: {before:?}");
    // The peer mutes and sends nothing more.
    stream.write_all(b"media audio off\n").unwrap();
    let _ = delays_within(&rx, Duration::from_millis(500));
    let after = delays_within(&rx, Duration::from_millis(1500));
    assert!(after.iter().all(|ms| *ms < 20), "stale delay reports after the peer muted: {after:?}");
    stream.write_all(b"stop hangup\n").unwrap();
    let done = client.finish(Duration::from_secs(30));
    assert_eq!(done.end_reason(), "peer-hangup", "{}", done.stderr);
}
