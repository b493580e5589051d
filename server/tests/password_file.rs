//! The password file: a byte order mark is not part of the password, and
//! anything but a small regular file is refused at once with a clear message.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Server;

/// Starts the server with `--password-file path`; returns its exit status
/// and stderr, or panics if it is still running after 10 s.
fn refused_at_start(path: &str) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_komunikator-server"))
        .args(["--no-tls", "--bind", "127.0.0.1", "--port", "0", "--password-file", path])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start komunikator-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit with --password-file {path}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).unwrap();
    (status, stderr)
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("komunikator-pwfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_password() {
    let path = temp("bom");
    std::fs::write(&path, "\u{feff}tajne hasło\r\n").unwrap();
    let server = Server::start_with(&["--password-file", path.to_str().unwrap()]);
    let mut c = server.client();
    c.send("auth tajne hasło");
    c.expect("ok auth");
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let path = temp("fifo");
    let _ = std::fs::remove_file(&path);
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(made.success());
    let (status, stderr) = refused_at_start(path.to_str().unwrap());
    assert!(!status.success());
    assert!(stderr.contains("is not a regular file"), "{stderr}");
}

#[test]
fn a_device_is_refused_without_reading_it() {
    let (status, stderr) = refused_at_start("/dev/zero");
    assert!(!status.success());
    assert!(stderr.contains("/dev/zero is not a regular file"), "{stderr}");
}

#[test]
fn a_large_file_is_refused() {
    let path = temp("large");
    std::fs::write(&path, "x".repeat(100_000)).unwrap();
    let (status, stderr) = refused_at_start(path.to_str().unwrap());
    assert!(!status.success());
    assert!(stderr.contains("is larger than 4096 bytes"), "{stderr}");
}
