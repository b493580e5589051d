//! Connections that never log in: the grace period closes them, and the caps
//! on waiting connections (per address and in all) keep room for users who
//! do log in, however many idle connections an attacker opens.

mod support;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use support::{Client, Server, call_between};

fn password_file(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("komunikator-prelogin-{}-{name}", std::process::id()));
    std::fs::write(&path, "sezamie otwórz się\n").unwrap();
    path.to_str().unwrap().to_owned()
}

/// A connection from `source` that never sends a byte, nor reads one.
fn idle_from(source: IpAddr, addr: SocketAddr) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::new(source, 0).into()).ok()?;
    socket.connect(&addr.into()).ok()?;
    Some(socket.into())
}

/// Logs in, names itself and checks it is listed.
fn log_in(server: &Server, nick: &str) -> Client {
    let mut c = server.client();
    c.send("auth sezamie otwórz się");
    c.expect("ok auth");
    c.send(&format!("name {nick}"));
    c.expect(&format!("ok name {nick}"));
    c.nick = nick.to_owned();
    c
}

#[test]
fn a_connection_that_does_not_log_in_in_time_is_told_and_closed() {
    let pw = password_file("grace");
    let server = Server::start_with(&["--password-file", &pw, "--login-grace", "1"]);
    let mut silent = server.client();
    let got = silent.expect_closed();
    assert!(got.iter().any(|m| m.line() == "error timeout log in within 1 s of connecting"), "{got:?}");
    // A user who logs in stays well past the grace period.
    let mut member = log_in(&server, "ala");
    std::thread::sleep(Duration::from_millis(2500));
    member.send("ping");
    member.expect("pong");
}

#[test]
fn on_an_open_server_a_greeted_client_may_stay_silent() {
    // It may be waiting for a call: an open server cannot tell it from an attacker.
    let server = Server::start_with(&["--login-grace", "1"]);
    let mut silent = server.client();
    std::thread::sleep(Duration::from_millis(2500));
    silent.send("ping");
    silent.expect("pong");
}

#[test]
fn hundreds_of_idle_connections_leave_room_for_a_real_user() {
    let pw = password_file("flood");
    let server = Server::start_with(&[
        "--password-file",
        &pw,
        "--max-clients",
        "100",
        "--max-pending",
        "40",
        "--max-pending-per-ip",
        "5",
    ]);
    let baseline = server.threads();
    // 300 connections from ten addresses, none of which ever says a word.
    let mut idle = Vec::new();
    for i in 0..300u32 {
        let source = IpAddr::from([127, 0, 1, (i % 10) as u8 + 2]);
        match idle_from(source, server.addr) {
            Some(s) => idle.push(s),
            None => {
                eprintln!("note: cannot connect from {source}; skipped");
                return;
            }
        }
    }
    // Evicted sessions end; at most 40 stay waiting, two threads each.
    let deadline = std::time::Instant::now() + support::WAIT;
    while server.threads() > baseline + 2 * 40 + 4 {
        assert!(std::time::Instant::now() < deadline, "{} threads for 40 waiting clients", server.threads());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two users log in, see each other and call.
    let ala = log_in(&server, "ala");
    let mut ola = log_in(&server, "ola");
    ola.send("refresh");
    ola.expect_prefix("clients 1");
    ola.expect(&format!("{} free ala", ala.id));
    let (mut ala, mut ola) = call_between(ala, ola);
    ala.send_media("audio", true, b"opus");
    assert_eq!(ola.recv().line(), "audio 1 k 4");
    server.wait_for_log("evicted, too many waiting");
    // The first idle connection was evicted, and told so.
    let mut first = String::new();
    idle[0].set_read_timeout(Some(support::WAIT)).unwrap();
    let _ = std::io::Read::read_to_string(&mut idle[0], &mut first);
    assert!(first.contains("\nerror full too many connections waiting to log in\n"), "{first:?}");
}
