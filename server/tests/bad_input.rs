//! The bad-input list of the protocol issue: every item gets a clear error or
//! a clean close, never a crash, hang or leak.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{Msg, Server, call_pair};

fn assert_alive(server: &Server) {
    let mut probe = server.client();
    probe.send("ping");
    probe.expect("pong");
}

#[test]
fn ten_megabytes_without_newline_closes_with_line_too_long() {
    let server = Server::start();
    let baseline = server.counts();
    let mut c = server.client();
    // Write from another thread: the server stops reading after the limit.
    let mut writer = c.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..160 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let got = c.expect_closed();
    assert!(got.iter().any(|m| m.line().starts_with("error line-too-long")), "{got:?}");
    flood.join().unwrap();
    drop(c);
    assert_alive(&server);
    server.settles_to(baseline);
}

#[test]
fn one_byte_every_few_seconds_is_closed_by_the_deadline() {
    let server = Server::start_with(&["--io-timeout", "2"]);
    let mut c = server.client();
    let started = Instant::now();
    let mut writer = c.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..10 {
            if writer.write_all(b"p").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(900));
        }
    });
    let got = c.expect_closed();
    let took = started.elapsed();
    assert!(got.iter().any(|m| m.line().starts_with("error timeout")), "{got:?}");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(4), "{took:?}");
    assert_alive(&server);
}

#[test]
fn empty_and_whitespace_lines_are_errors_that_keep_the_connection() {
    let server = Server::start();
    let mut c = server.client();
    for line in ["", " ", "   ", "\t"] {
        c.send(line);
        let got = c.expect_prefix("error ");
        assert!(got.starts_with("error unknown-command") || got.starts_with("error bad-argument"), "{got}");
    }
    c.send_bytes(b"\r\n");
    c.expect_prefix("error unknown-command");
    c.send("ping");
    c.expect("pong");
}

#[test]
fn one_byte_writes_and_one_big_write_give_the_same_answers() {
    let script = "ping\nname ala\nrefresh\nASK YES\nstop\nping\n";
    let server = Server::start();
    let mut slow = server.client();
    for b in script.bytes() {
        slow.send_bytes(&[b]);
    }
    let slow_got: Vec<String> = (0..6).map(|_| slow.recv_event().line().to_owned()).collect();
    let server = Server::start();
    let mut fast = server.client();
    fast.send_bytes(script.as_bytes());
    let fast_got: Vec<String> = (0..6).map(|_| fast.recv_event().line().to_owned()).collect();
    assert_eq!(slow_got, fast_got);
    assert_eq!(slow_got[0], "pong");
    assert_eq!(slow_got[1], "ok name ala");
}

#[test]
fn a_thousand_commands_in_one_write_are_answered_in_order() {
    let server = Server::start();
    let mut c = server.client();
    let mut script = String::new();
    for i in 0..1000 {
        script.push_str(if i % 2 == 0 { "ping\n" } else { "stop\n" });
    }
    c.send_bytes(script.as_bytes());
    for i in 0..1000 {
        let got = c.recv_event();
        if i % 2 == 0 {
            assert_eq!(got.line(), "pong", "answer {i}");
        } else {
            assert!(got.line().starts_with("error not-in-call"), "answer {i}: {got:?}");
        }
    }
}

#[test]
fn case_and_spacing_are_strict() {
    let server = Server::start();
    let mut c = server.client();
    for (line, code) in [
        ("ASK YES", "unknown-command"),
        ("ask  yes", "bad-argument"),
        ("ask yes x", "bad-argument"),
        ("Ping", "unknown-command"),
        ("START", "unknown-command"),
        ("start now", "bad-argument"),
        ("refresh now", "bad-argument"),
    ] {
        c.send(line);
        c.expect_prefix(&format!("error {code}"));
    }
}

#[test]
fn nul_and_invalid_utf8_are_bad_arguments() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    a.send_bytes(b"msg hi\0there\n");
    a.expect_prefix("error bad-argument");
    a.send_bytes(b"msg \xff\xfe\n");
    a.expect_prefix("error bad-argument");
    a.send_bytes(b"name a\0b\n");
    a.expect_prefix("error bad-argument");
    assert!(b.sync_events().is_empty(), "nothing reached the peer");
    a.send("ping");
    a.expect("pong");
}

#[test]
fn bad_connect_targets() {
    let server = Server::start_with(&["--connect-burst", "100"]);
    let mut c = server.client();
    for target in ["", &"a".repeat(300), "1.2.3.4:99999", "1.2.3.4:", "[::1", "a:b:c", "ala ma kota"] {
        c.send(&format!("connect {target}"));
        let got = c.expect_prefix("error ");
        assert!(
            got.starts_with("error bad-argument") || got.starts_with("error no-such-client"),
            "connect {target:?}: {got}"
        );
    }
    c.send(&format!("connect {}", c.id.clone()));
    c.expect_prefix("error self");
    c.send("connect");
    c.expect_prefix("error bad-argument");
}

#[test]
fn frame_lengths() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    for header in ["video 1 k 0", "video 1 k -1", "video 1 k abc", "video 1 k 1e3", "video 1 k "] {
        a.send(header);
        a.expect_prefix("error bad-argument");
    }
    // Exactly the limit is relayed.
    let big = vec![7u8; 1 << 20];
    a.send_media("video", true, &big);
    match b.recv_event() {
        Msg::Media { payload, .. } => assert_eq!(payload, big),
        other => panic!("{other:?}"),
    }
    for len in [(1u64 << 20) + 1, (1 << 32) - 1, 1 << 40] {
        let mut c = server.client();
        c.send(&format!("audio 1 - {len}"));
        let got = c.expect_closed();
        assert!(got.iter().any(|m| m.line().starts_with("error frame-too-large")), "{len}: {got:?}");
    }
    assert!(b.sync_events().is_empty());
}

#[test]
fn a_bad_header_with_a_good_length_skips_its_payload() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    a.send_bytes(b"video notanumber k 5\nping\nping\n");
    a.expect_prefix("error bad-argument");
    // "ping\n" was payload, so only one pong comes back.
    a.expect("pong");
    a.send("msg after");
    b.expect("msg after");
}

#[test]
fn truncated_frame_then_silence_is_closed_by_the_deadline() {
    let server = Server::start_with(&["--io-timeout", "2"]);
    let baseline = server.counts();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    a.send_bytes(b"video 1 k 1048576\n0123456789");
    let got = a.expect_closed();
    assert!(got.iter().any(|m| m.line().starts_with("error timeout")), "{got:?}");
    b.expect("stop disconnected");
    drop((a, b));
    server.settles_to(baseline);
}

#[test]
fn media_outside_a_call_is_consumed_and_refused() {
    let server = Server::start();
    let mut c = server.client();
    c.send_bytes(b"video 1 k 5\nping\nping\n");
    c.expect_prefix("error not-in-call");
    c.expect("pong");
    c.send("ping");
    c.expect("pong");
}

#[test]
fn a_burst_of_connects_is_rate_limited() {
    let server = Server::start();
    let mut a = server.named("ala");
    let _b = server.named("bob");
    let mut script = String::new();
    for _ in 0..1000 {
        script.push_str("connect nobody\n");
    }
    a.send_bytes(script.as_bytes());
    let answers: Vec<String> = (0..1000).map(|_| a.recv_event().line().to_owned()).collect();
    let limited = answers.iter().filter(|l| l.starts_with("error rate-limited")).count();
    assert!(limited >= 990, "only {limited} of 1000 were rate-limited");
    assert!(answers[0].starts_with("error no-such-client"));
    a.send("ping");
    a.expect("pong");
}
