//! With `--splice`, large video payloads move from socket to socket through
//! a pipe; they must arrive exactly as sent, whether the receiver keeps up
//! or its socket fills mid-frame and the writer thread finishes the frame.

mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Client, Msg, Server};

/// Limits high enough that a slow test thread never makes the server drop video.
const NO_DROPS: [&str; 5] = ["--splice", "--max-queue-ms", "600000", "--max-queue-bytes", "1000000000"];

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 131 + j * 7 + j / 4096) as u8).collect()
}

fn frame(i: usize, len: usize) -> Vec<u8> {
    let p = payload(i, len);
    let mut out = format!("video {i} {} {}\n", if i % 10 == 0 { "k" } else { "-" }, p.len()).into_bytes();
    out.extend_from_slice(&p);
    out
}

/// Frame `i`'s size in these tests: `first` for frame 0, then `sizes` in turn.
fn size(i: usize, first: usize, sizes: &[usize]) -> usize {
    if i == 0 { first } else { sizes[(i - 1) % sizes.len()] }
}

/// Sends frame 0 while the server is stopped (SIGSTOP), so that its whole
/// payload waits in the server's socket when the server reads the header:
/// the frame is then certain to qualify for splicing.
fn send_first_while_paused(server: &Server, a: &mut Client, len: usize) {
    let pid = server.pid().to_string();
    let kill = |sig: &str| assert!(Command::new("kill").args(["-s", sig, &pid]).status().unwrap().success());
    kill("STOP");
    a.stream.write_all(&frame(0, len)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill("CONT");
}

/// Sends frames 1..=count on a thread, each in one write.
fn send_rest(a: &Client, sizes: &'static [usize], count: usize) -> std::thread::JoinHandle<()> {
    let mut writer = a.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for i in 1..=count {
            writer.write_all(&frame(i, size(i, 0, sizes))).unwrap();
        }
    })
}

fn expect_frames(b: &mut Client, first: usize, sizes: &[usize], count: usize) {
    for i in 0..=count {
        let Msg::Media { header, payload: got } = b.recv_event() else { panic!("expected media") };
        let n: usize = header.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(n, i, "frames in order");
        assert!(got == payload(i, size(i, first, sizes)), "frame {i} corrupted");
    }
}

/// Ends the call and reads the server's statistics for `b`:
/// (frames spliced, of them finished by the writer).
fn end_call_and_count(server: &Server, a: &mut Client, b: &mut Client) -> (u64, u64) {
    a.send("stop");
    b.expect("stop hangup");
    let find = |log: &str| {
        log.lines()
            .find(|l| l.contains(&format!("{}: ", b.id)) && l.contains("video frames spliced"))
            .map(str::to_owned)
    };
    // The log is read by a thread: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = server.log();
        match find(&log) {
            Some(line) => break line,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("no splice statistics for {} in:\n{log}", b.id),
        }
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "video").unwrap();
    let of = words.iter().position(|w| *w == "of").unwrap();
    (words[at - 1].parse().unwrap(), words[of - 1].parse().unwrap())
}

#[test]
fn spliced_frames_arrive_byte_identical_and_in_order() {
    let server = Server::start_with(&NO_DROPS);
    let (mut a, mut b) = support::call_pair(&server, "ala", "bob");
    // Frame 0 is spliced; the rest are spliced or copied as they come.
    send_first_while_paused(&server, &mut a, 66_000);
    const SIZES: &[usize] = &[65_536, 1_000_000, 300_001, 70_000, 20_000];
    let sender = send_rest(&a, SIZES, 100);
    expect_frames(&mut b, 66_000, SIZES, 100);
    sender.join().unwrap();
    let (spliced, _) = end_call_and_count(&server, &mut a, &mut b);
    assert!(spliced >= 1, "frame 0 was not spliced");
}

#[test]
fn a_receiver_whose_socket_fills_mid_frame_still_gets_every_frame_whole() {
    let server = Server::start_with(&NO_DROPS);
    let slow = Client::connect_small_rcvbuf(server.addr, 16 << 10);
    let (mut a, mut b) = support::call_between(server.named("ala"), slow);
    // bob does not read yet: his socket takes part of frame 0, the writer
    // thread finishes it, and the frames behind it queue.
    send_first_while_paused(&server, &mut a, 100_000);
    const SIZES: &[usize] = &[400_000, 70_000];
    let sender = send_rest(&a, SIZES, 12);
    std::thread::sleep(Duration::from_millis(500));
    expect_frames(&mut b, 100_000, SIZES, 12);
    sender.join().unwrap();
    let (spliced, spilled) = end_call_and_count(&server, &mut a, &mut b);
    assert!(spilled >= 1, "{spliced} frames spliced, none finished by the writer");
}
