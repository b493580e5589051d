//! TLS and plain text on one port, certificates, and the server password,
//! with the real server binary and a real rustls client.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use komunikator_tls::TofuVerifier;
use rustls::{ClientConnection, StreamOwned};
use support::{Client, Server};

/// A TLS protocol client: one line at a time.
struct TlsClient {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
    id: String,
}

impl TlsClient {
    fn connect(server: &Server, expected: Option<String>) -> Result<(TlsClient, Arc<TofuVerifier>), String> {
        let verifier = Arc::new(TofuVerifier::new(expected));
        let config = Arc::new(verifier.client_config().unwrap());
        let sock = TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(support::WAIT)).unwrap();
        let conn = ClientConnection::new(config, "komunikator".try_into().unwrap()).unwrap();
        let mut c = TlsClient { stream: BufReader::new(StreamOwned::new(conn, sock)), id: String::new() };
        let hello = c.line().map_err(|e| format!("{e}"))?;
        c.id = hello
            .strip_prefix("hello ")
            .and_then(|r| r.strip_suffix(" komunikator/1"))
            .ok_or(hello.clone())?
            .into();
        Ok((c, verifier))
    }

    fn send(&mut self, line: &str) {
        let s = self.stream.get_mut();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        s.flush().unwrap();
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end().to_owned())
    }

    fn expect(&mut self, want: &str) {
        loop {
            let got = self.line().expect("a line");
            if !got.starts_with("presence ") {
                assert_eq!(got, want);
                return;
            }
        }
    }
}

#[test]
fn tls_and_plain_text_share_the_port_and_can_call_each_other() {
    let server = Server::start_exact(&[]);
    let fp = server.fingerprint.clone().expect("the server prints its fingerprint");
    let (mut a, verifier) = TlsClient::connect(&server, None).unwrap();
    assert_eq!(verifier.seen(), Some(fp), "the printed fingerprint is the one presented");
    a.send("name ala");
    a.expect("ok name ala");
    // A plain-text client (nc) gets hello after the short grace period.
    let started = Instant::now();
    let mut b = server.named("bob");
    assert!(started.elapsed() < Duration::from_secs(3));
    a.send("connect bob");
    a.expect(&format!("calling {}", b.id));
    b.expect(&format!("ask {} ala", a.id));
    b.send("ask yes");
    a.expect("ask yes");
    a.expect(&format!("start {}", b.id));
    b.expect(&format!("start {}", a.id));
    b.send_media("video", true, b"through TLS");
    a.expect("video 1 k 11");
    let mut payload = [0u8; 11];
    a.stream.read_exact(&mut payload).unwrap();
    assert_eq!(&payload, b"through TLS");
    a.send("msg cześć");
    b.expect("msg cześć");
    server.wait_for_log("(TLS)");
}

#[test]
fn plain_text_is_refused_with_deny() {
    let server = Server::start_exact(&["--plaintext", "deny"]);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(support::WAIT)).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.starts_with("error tls-required"), "{got:?}");
    let (mut c, _) = TlsClient::connect(&server, server.fingerprint.clone()).unwrap();
    c.send("ping");
    c.expect("pong");
}

#[test]
fn the_certificate_is_kept_and_a_changed_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("komunikator-tls-keep-{}", std::process::id()));
    let dir_s = dir.to_str().unwrap().to_owned();
    let first = Server::start_exact(&["--state-dir", &dir_s]).fingerprint.clone().unwrap();
    let again = Server::start_exact(&["--state-dir", &dir_s]);
    assert_eq!(again.fingerprint.as_ref(), Some(&first), "reused across restarts");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("key.pem")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the key is owner-only");
    // A server with another key: a client pinned to the first one refuses it.
    let other = Server::start_exact(&[]);
    let Err(_) = TlsClient::connect(&other, Some(first.clone())) else {
        panic!("a changed certificate was accepted")
    };
    // Explicit PEM files work too.
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let explicit =
        Server::start_exact(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert_eq!(explicit.fingerprint.as_ref(), Some(&first));
    drop((again, explicit));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_certificate_files_are_a_clear_start_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_komunikator-server"))
        .args(["--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}

#[test]
fn garbage_and_stalled_handshakes_end_cleanly_while_others_are_served() {
    let server = Server::start_exact(&["--io-timeout", "2"]);
    let baseline = server.counts();
    let mut bystander = server.named("widz");
    // Garbage after the TLS record byte, a client stalled mid-handshake, and
    // a plain-text client whose first byte happens to be 0x16.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    let mut confused = TcpStream::connect(server.addr).unwrap();
    confused.write_all(b"\x16ping\n").unwrap();
    bystander.send("ping");
    bystander.expect("pong");
    let started = Instant::now();
    for (name, s) in [("garbage", &mut garbage), ("stalled", &mut stalled), ("confused", &mut confused)] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(
            r.is_ok() || r.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{name}: {r:?}"
        );
        assert!(!buf.starts_with(b"hello"), "{name} was greeted in plain text");
    }
    assert!(started.elapsed() < Duration::from_secs(6), "the stalled handshake outlived --io-timeout");
    let (mut c, _) = TlsClient::connect(&server, None).unwrap();
    c.send("ping");
    c.expect("pong");
    drop((garbage, stalled, confused, c, bystander));
    server.settles_to(baseline);
}

#[test]
fn a_password_protected_server_turns_away_strangers() {
    let pw = std::env::temp_dir().join(format!("komunikator-pw-{}", std::process::id()));
    std::fs::write(&pw, "tajne hasło\n").unwrap();
    let server = Server::start_with(&["--password-file", pw.to_str().unwrap()]);
    let mut member = server.client();
    member.send("refresh");
    member.expect_prefix("error auth-required");
    member.send("ping");
    member.expect("pong");
    member.send("auth tajne hasło");
    member.expect("ok auth");
    member.send("name ala");
    member.expect("ok name ala");
    // A stranger is not listed, and is not told who is there.
    let mut stranger = server.client();
    member.send("refresh");
    member.expect("clients 0");
    stranger.send("connect ala");
    stranger.expect_prefix("error auth-required");
    stranger.send("auth zgaduję");
    let got = stranger.expect_closed();
    assert!(got.iter().any(|m| m.line().starts_with("error auth-failed")), "{got:?}");
    // Wrong guesses from one address are slowed down, but nobody is locked
    // out: after them, the right password from the same address gets in.
    for _ in 0..6 {
        let mut c = server.client();
        c.send("auth nie");
        c.expect_closed();
    }
    let mut late = server.client();
    late.send("auth tajne hasło");
    let answer = late.try_recv(std::time::Duration::from_secs(20)).expect("an answer to auth");
    assert_eq!(answer.line(), "ok auth");
    // Another address is not affected.
    if let Ok(mut other) = Client::connect_from("127.0.0.2".parse().unwrap(), server.addr) {
        other.send("auth tajne hasło");
        other.expect("ok auth");
    }
    let _ = std::fs::remove_file(pw);
}
