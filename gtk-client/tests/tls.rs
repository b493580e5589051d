//! The client always uses TLS unless told otherwise, pins the server's
//! certificate on first use, refuses a changed one, and can be told to trust
//! the new one or to expect a fingerprint up front.

mod support;

use std::time::Duration;

use support::{Client, READY, Server, args, client_config_home};

fn known_servers(server: &Server) -> String {
    std::fs::read_to_string(client_config_home(&server.addr).join("komunikator/known_servers"))
        .unwrap_or_default()
}

fn quiet() -> Vec<String> {
    args(&[&["--video-source", "none", "--audio-source", "none", "--audio-output", "none"]])
}

/// A client that connects, names itself and leaves after `seconds` in a call
/// that never comes: enough to see whether the connection was accepted.
fn visit(server: &Server, extra: &[&str]) -> support::Outcome {
    let c = Client::start(
        &server.addr,
        &[args(&[&["--name", "gosc", "--call", "nobody"], extra]), quiet()].concat(),
    );
    c.finish(Duration::from_secs(30))
}

#[test]
fn a_call_is_encrypted_and_the_certificate_pinned_on_first_use() {
    let server = Server::start();
    let bob = Client::start(
        &server.addr,
        &[args(&[&["--name", "bob", "--answer"]]), support::test_media("ball", 660)].concat(),
    );
    bob.wait_for("komunikator: ready", READY);
    let ala = Client::start(
        &server.addr,
        &[args(&[&["--name", "ala", "--call", "bob", "--duration", "3"]]), support::test_media("smpte", 440)]
            .concat(),
    )
    .finish(Duration::from_secs(60));
    let bob = bob.finish(Duration::from_secs(20));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    assert!(bob.n("video_frames_decoded") > 30, "{}", bob.json());
    // Only a TLS handshake pins a certificate.
    let pins = known_servers(&server);
    assert!(pins.lines().any(|l| l.starts_with(&format!("{} ", server.addr))), "{pins}");
}

#[test]
fn a_changed_certificate_is_refused_until_trusted() {
    let server = Server::start();
    // First use pins the real certificate; then pretend it was another one.
    let first = visit(&server, &[]);
    assert!(first.stderr.contains("no-such-client") || first.code.is_some(), "{}", first.stderr);
    let path = client_config_home(&server.addr).join("komunikator/known_servers");
    let real = std::fs::read_to_string(&path).unwrap();
    let real_fp =
        real.lines().find(|l| l.starts_with(&server.addr)).unwrap().split(' ').nth(1).unwrap().to_owned();
    let fake = komunikator_tls::fingerprint(b"an older certificate");
    std::fs::write(&path, format!("{} {fake}\n", server.addr)).unwrap();

    let refused = visit(&server, &[]);
    assert_ne!(refused.code, Some(0), "a changed certificate must be refused");
    assert!(refused.stderr.contains("has changed"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&fake) && refused.stderr.contains(&real_fp),
        "both fingerprints: {}",
        refused.stderr
    );

    let trusted = visit(&server, &["--trust-new-certificate"]);
    assert!(!trusted.stderr.contains("has changed"), "{}", trusted.stderr);
    assert!(std::fs::read_to_string(&path).unwrap().contains(&real_fp), "the new certificate is pinned");
}

#[test]
fn fingerprint_flag_pins_up_front() {
    let server = Server::start();
    let wrong = komunikator_tls::fingerprint(b"not the server");
    let refused = visit(&server, &["--fingerprint", &wrong]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("has changed") && refused.stderr.contains(&wrong), "{}", refused.stderr);
    let bad = visit(&server, &["--fingerprint", "nonsense"]);
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("fingerprint"), "{}", bad.stderr);
}

#[test]
fn plaintext_flag_speaks_plain_text() {
    let server = Server::start();
    let out = visit(&server, &["--plaintext"]);
    assert!(out.stderr.contains("no-such-client") || out.stderr.contains("nobody"), "{}", out.stderr);
    assert!(known_servers(&server).is_empty(), "no TLS, so nothing was pinned");
}
