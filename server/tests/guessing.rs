//! Password guessing: a global budget bounds guesses from any number of
//! addresses, and guessers cannot lock out a user who knows the password.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::Server;

fn password_file() -> String {
    let path = std::env::temp_dir().join(format!("komunikator-guessing-{}", std::process::id()));
    std::fs::write(&path, "correct horse battery staple\n").unwrap();
    path.to_str().unwrap().to_owned()
}

/// A connection from `source` that has sent `auth <guess>`, its `hello` read.
fn guess_from(source: IpAddr, addr: SocketAddr, guess: &str) -> Option<BufReader<TcpStream>> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.bind(&SocketAddr::new(source, 0).into()).ok()?;
    socket.connect(&addr.into()).ok()?;
    let mut stream: TcpStream = socket.into();
    stream.write_all(format!("auth {guess}\n").as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut hello = String::new();
    reader.read_line(&mut hello).ok()?;
    assert!(hello.starts_with("hello "), "{hello:?}");
    Some(reader)
}

/// The next line, or "" if none comes before `until`.
fn line_before(reader: &mut BufReader<TcpStream>, until: Instant) -> String {
    let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    reader.get_ref().set_read_timeout(Some(left)).unwrap();
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line
}

#[test]
fn guesses_from_many_addresses_share_one_budget_and_the_user_still_gets_in() {
    let server = Server::start_with(&["--password-file", &password_file()]);
    // 60 wrong guesses at once from 20 addresses, 3 each: within every
    // address's own budget, so only the global one can hold them back.
    let start = Instant::now();
    let mut guessers = Vec::new();
    for i in 0..60u8 {
        match guess_from(IpAddr::from([127, 0, 2, i % 20 + 1]), server.addr, "hunter2") {
            Some(g) => guessers.push(g),
            None => return eprintln!("note: cannot connect from 127.0.2.x; skipped"),
        }
    }
    let window = start + Duration::from_secs(2);
    let answered = guessers
        .iter_mut()
        .map(|g| line_before(g, window))
        .filter(|l| l.starts_with("error auth-failed"))
        .count();
    // 20 at once, then 4 a second: about 28 in 2 s, never all 60.
    assert!((20..=36).contains(&answered), "{answered} of 60 guesses answered within 2 s");
    // The guessers give up; a user who knows the password, from one of their
    // addresses, gets in without waiting for the whole queue.
    drop(guessers);
    let mut user = guess_from(IpAddr::from([127, 0, 2, 1]), server.addr, "correct horse battery staple")
        .expect("connect");
    let answer = line_before(&mut user, Instant::now() + Duration::from_secs(10));
    assert_eq!(answer, "ok auth\n");
}
