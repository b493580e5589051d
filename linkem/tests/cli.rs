//! The `komunikator-linkem` binary: it prints where clients connect, shapes
//! what goes through (here: a delay), and exits cleanly on SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::server;

#[test]
fn runs_until_sigterm() {
    let (upstream, srv) = server("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_komunikator-linkem"))
        .args(["--upstream", &upstream.to_string(), "--up", "1mbit,delay=100ms", "--down", "unlimited"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.strip_suffix(" (backend: user-space shaper)\n"))
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let mut c = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    assert!(start.elapsed() >= Duration::from_millis(100), "no delay: {:?}", start.elapsed());
    srv.join().unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("up: 5 bytes delivered"), "{rest}");
}
