//! A server older than `media <audio|video> <on|off>` answers it with
//! `error unknown-command`. Against such a server (a fake one on 127.0.0.1
//! that speaks just enough protocol), a client that starts its call muted
//! and with its camera off sends each line once, takes the errors quietly
//! (no server error reported), and its call goes on to its normal end.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::{Client, READY, args};

/// Reads lines until one satisfies `want`, answering each `media` line as an
/// older server does; returns every line read.
fn read_until(reader: &mut BufReader<TcpStream>, out: &mut TcpStream, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => panic!("no {want:?} from the client; it sent {seen:?}"),
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        if line.starts_with("media ") {
            out.write_all(b"error unknown-command no such command\n").unwrap();
        }
        seen.push(line.clone());
        if line == want {
            return seen;
        }
    }
}

#[test]
fn an_older_server_refusing_media_lines_changes_nothing_for_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let flags = ["--plaintext", "--answer", "--mute", "--camera-off"];
    let media = ["--video-source", "test", "--audio-source", "test", "--audio-output", "none"];
    let client = Client::start(&addr, &args(&[&flags, &media]));
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(READY)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream.write_all(b"hello 127.0.0.1:5 komunikator/1\n").unwrap();
    stream.write_all(b"ask 127.0.0.1:6 bob\n").unwrap();
    read_until(&mut reader, &mut stream, "ask yes");
    stream.write_all(b"start 127.0.0.1:6\n").unwrap();
    let mut seen = read_until(&mut reader, &mut stream, "media audio off");
    seen.extend(read_until(&mut reader, &mut stream, "media video off"));
    // The call goes on a while, with both errors delivered.
    std::thread::sleep(Duration::from_secs(2));
    stream.write_all(b"stop hangup\n").unwrap();
    let done = client.finish(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.end_reason(), "peer-hangup", "{}", done.stderr);
    assert!(!done.stderr.contains("server error"), "the refusal was not quiet:\n{}", done.stderr);
    assert_eq!(seen.iter().filter(|l| l.starts_with("media ")).count(), 2, "{seen:?}");
    assert_eq!(done.n("video_frames_sent"), 0, "{}", done.json());
}
