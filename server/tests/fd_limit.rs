//! The open-file limit: raised to the hard limit at start, and when the
//! server runs out of descriptors anyway, every extra client gets
//! `error full` instead of silence, and the server recovers.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use support::{Server, call_pair};

/// Starts the server with `RLIMIT_NOFILE` set to `soft` and `hard`.
fn start_limited(soft: u64, hard: u64) -> Server {
    Server::start_adjusted(&["--no-tls"], |command| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    })
}

/// The first line the server sends on a new connection, or "" for silence.
/// A client that got `hello` checks that it is served with `ping`.
fn first_line(server: &Server) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    if line.starts_with("hello ") {
        stream.write_all(b"ping\n").unwrap();
        // Others joining or leaving meanwhile are announced first.
        let mut pong = String::new();
        while reader.read_line(&mut pong).is_ok_and(|n| n > 0) && pong.starts_with("presence ") {
            pong.clear();
        }
        assert_eq!(pong, "pong\n");
    }
    (stream, line.trim_end().to_owned())
}

fn soft_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_owned();
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
fn the_soft_limit_is_raised_to_the_hard_one() {
    let server = start_limited(64, 512);
    assert_eq!(soft_limit(server.pid()), "512");
    server.wait_for_log("open-file limit raised from 64 to 512");
}

#[test]
fn out_of_descriptors_every_extra_client_hears_error_full() {
    let server = start_limited(64, 64);
    let mut kept = Vec::new();
    let mut full = 0;
    for _ in 0..40 {
        let (stream, line) = first_line(&server);
        if line.starts_with("hello ") {
            kept.push(stream);
        } else {
            assert!(line.starts_with("error full"), "expected hello or error full, got {line:?}");
            full += 1;
        }
    }
    assert!(full >= 10, "only {full} of 40 clients were refused under a limit of 64 descriptors");
    assert!(kept.len() >= 5, "only {} clients fit in 64 descriptors", kept.len());
    // Once they leave (their sessions notice and close their descriptors,
    // which takes a moment on a busy machine), the server serves a whole
    // call again.
    drop(kept);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, line) = first_line(&server);
        if line.starts_with("hello ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {line:?} 10 s after the clients left");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (mut a, mut b) = call_pair(&server, "ala", "ola");
    a.send_media("audio", true, b"opus");
    assert_eq!(b.recv().line(), "audio 1 k 4");
}
