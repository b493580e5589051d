//! Operations: help, version, port taken, and a clean exit on signals.

mod support;

use std::process::Command;

use support::{Server, call_pair};

const BIN: &str = env!("CARGO_BIN_EXE_komunikator-server");

#[test]
fn help_lists_every_limit() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--port",
        "--max-queue-ms",
        "--max-line",
        "--max-frame",
        "--max-clients",
        "--max-per-ip",
        "--io-timeout",
        "--ring-timeout",
        "--dead-peer-timeout",
        "--connect-burst",
        "--connect-rate",
        "--log-level",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("komunikator-server "));
}

#[test]
fn a_taken_port_is_a_clear_error_and_exit_code_1() {
    let server = Server::start();
    let out = Command::new(BIN)
        .args(["--no-tls", "--bind", "127.0.0.1", "--port", &server.addr.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on") && err.contains("in use"), "{err}");
}

#[test]
fn bad_flags_are_refused() {
    let out = Command::new(BIN).args(["--port", "99999"]).output().unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN).args(["--log-level", "loud"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn sigterm_and_sigint_close_every_connection_and_exit_0() {
    for signal in ["TERM", "INT"] {
        let server = Server::start();
        let (mut a, mut b) = call_pair(&server, "ala", "bob");
        let status = server.signal(signal);
        assert!(status.success(), "{signal}: {status:?}");
        a.expect_closed();
        b.expect_closed();
    }
}
