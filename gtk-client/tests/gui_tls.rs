//! The window's side of TLS pinning and the server password, under X:
//!
//! * a server whose certificate is not the pinned one: the window shows the
//!   warning with both fingerprints (its log and a screenshot), does not
//!   retry by itself, and Alt+T ("Trust the New Certificate", pressed through
//!   XTEST) pins the new fingerprint and connects (a raw `refresh` lists it);
//! * a password-protected server: the window asks, a wrong password typed
//!   through xdotool is refused and asked again, the right one with
//!   "Remember" (Alt+R) logs in (listed by `refresh`) and is saved next to
//!   the pin.
//!
//! Needs an X display, like `gui.rs`. Screenshots go to
//! `target/test-artifacts/gui-tls/`.

mod gui_support;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gui_support::{Display, Window, exclusive, press, refreshed_nicks, refreshed_nicks_after, type_text};
use support::{server_binary, target_dir, test_dir};

/// A server started with extra flags; its address and certificate fingerprint.
struct Server {
    child: Child,
    addr: String,
    fingerprint: String,
    state: PathBuf,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let state = test_dir(&format!("gui-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).expect("server state dir");
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start komunikator-server");
        let mut out = BufReader::new(child.stdout.take().expect("server stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("the server's first line");
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("server said {line:?}"));
        let addr = addr.to_owned();
        line.clear();
        out.read_line(&mut line).expect("the server's second line");
        let fingerprint = line
            .trim()
            .strip_prefix("TLS certificate SHA-256 fingerprint ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .to_owned();
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || out.lines().map_while(Result::ok).for_each(drop));
        Server { child, addr, fingerprint, state }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn known_servers(home: &Path) -> PathBuf {
    home.join("config/komunikator/known_servers")
}

/// Waits up to `WAIT` for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + gui_support::WAIT;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not happen within {:?}", gui_support::WAIT);
}

/// The nicks a raw client that logs in with `password` sees with `refresh`.
fn refreshed_nicks_with(server: &str, password: &str) -> Vec<String> {
    refreshed_nicks_after(server, &format!("auth {password}\n"))
}

fn fresh(name: &str) -> (PathBuf, PathBuf) {
    let shots = target_dir().join("test-artifacts/gui-tls").join(name);
    let _ = std::fs::remove_dir_all(&shots);
    let home = target_dir().join(format!("gui-tls-home-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    (shots, home)
}

#[test]
fn a_changed_certificate_is_shown_and_trusted_with_the_keyboard() {
    let _x = exclusive();
    let started = Instant::now();
    let display = Display::get();
    let (shots, home) = fresh("trust");
    let server = Server::start("trust", &[]);
    let fake = komunikator_tls::fingerprint(b"the certificate of a reinstalled server");
    let pins = known_servers(&home);
    std::fs::create_dir_all(pins.parent().expect("config dir")).expect("config dir");
    std::fs::write(&pins, format!("{} {fake}\n", server.addr)).expect("write known_servers");

    let nick = "tlswindow";
    let window = Window::start(&display, &["--server", &server.addr, "--name", nick], &shots, &home);
    window.wait_for("view: trust");
    let log = window.log();
    let warning = log.lines().find(|l| l.contains("has changed")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains(&fake) && warning.contains(&server.fingerprint), "both fingerprints: {warning}");
    window.wait_for("trust.png");
    assert!(shots.join("trust.png").exists(), "no screenshot of the warning");
    // No retry loop: it waits for the user.
    std::thread::sleep(Duration::from_secs(4));
    let log = window.log();
    assert!(!log.contains("retrying"), "the window retried by itself:\n{log}");
    assert_eq!(log.matches("has changed").count(), 1, "{log}");
    assert!(!refreshed_nicks(&server.addr).iter().any(|n| n == nick), "listed before trusting");
    assert!(
        std::fs::read_to_string(&pins).expect("pins").contains(&fake),
        "the old pin is kept until trusted"
    );

    press(&display, "alt+t");
    window.wait_for(&format!("name accepted: {nick}"));
    assert!(refreshed_nicks(&server.addr).iter().any(|n| n == nick), "refresh does not list {nick}");
    let pinned = std::fs::read_to_string(&pins).expect("pins");
    assert!(pinned.contains(&format!("{} {}", server.addr, server.fingerprint)), "new pin: {pinned}");
    assert!(!pinned.contains(&fake), "the old pin is gone: {pinned}");
    drop(window);
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("certificate test took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_password_is_asked_for_refused_when_wrong_and_remembered() {
    let _x = exclusive();
    let started = Instant::now();
    let display = Display::get();
    let (shots, home) = fresh("password");
    let secret = "tajne-haslo-42";
    std::fs::create_dir_all(&home).expect("home");
    let file = home.join("server-password");
    std::fs::write(&file, format!("{secret}\n")).expect("password file");
    let server = Server::start("password", &["--password-file", file.to_str().expect("utf-8 path")]);

    let nick = "pwwindow";
    let window = Window::start(&display, &["--server", &server.addr, "--name", nick], &shots, &home);
    window.wait_for("view: password");
    window.wait_for("password.png");
    assert!(shots.join("password.png").exists(), "no screenshot of the prompt");

    type_text(&display, "zle-haslo");
    press(&display, "Return");
    window.wait_for("sending the password");
    window.wait_for("wants a password (wrong)");
    window.wait_for("view: password");
    assert!(!window.log().contains(&format!("name accepted: {nick}")), "logged in with a wrong password");

    type_text(&display, secret);
    press(&display, "alt+r");
    press(&display, "alt+l");
    window.wait_for(&format!("name accepted: {nick}"));
    assert!(
        refreshed_nicks_with(&server.addr, secret).iter().any(|n| n == nick),
        "refresh does not list {nick}"
    );
    let pins = known_servers(&home);
    let line = std::fs::read_to_string(&pins).expect("pins");
    let entry = line.lines().find(|l| l.starts_with(&format!("{} ", server.addr))).unwrap_or_default();
    assert_eq!(entry.split(' ').nth(1), Some(server.fingerprint.as_str()), "pinned: {line}");
    eventually("the remembered password", || {
        let text = std::fs::read_to_string(&pins).unwrap_or_default();
        text.lines().any(|l| l.starts_with(&format!("{} ", server.addr)) && l.split(' ').count() == 3)
    });
    drop(window);
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("password test took {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn guesses_from_this_address_do_not_lock_out_a_user_who_knows_the_password() {
    let _x = exclusive();
    let started = Instant::now();
    let display = Display::get();
    let (shots, home) = fresh("limited");
    let secret = "tajne-haslo-42";
    std::fs::create_dir_all(&home).expect("home");
    let file = home.join("server-password");
    std::fs::write(&file, format!("{secret}\n")).expect("password file");
    let server = Server::start("limited", &["--password-file", file.to_str().expect("utf-8 path")]);
    // Someone on this address guessed wrong until the per-address budget ran out.
    for _ in 0..6 {
        let mut stream = TcpStream::connect(&server.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        stream.write_all(b"auth guess\n").expect("send auth");
        let answer = BufReader::new(stream).lines().map_while(Result::ok).find(|l| l.starts_with("error"));
        assert_eq!(answer.as_deref().and_then(|l| l.split(' ').nth(1)), Some("auth-failed"));
    }
    // The user who knows the password is only made to wait, never locked out.
    let window = Window::start(&display, &["--server", &server.addr, "--name", "limited"], &shots, &home);
    window.wait_for("wants a password (required)");
    window.wait_for("view: password");
    type_text(&display, secret);
    press(&display, "Return");
    window.wait_for("name accepted: limited");
    let log = window.log();
    assert!(!log.contains("rate-limited"), "{log}");
    assert_eq!(log.matches("sending the password to").count(), 1, "{log}");
    drop(window);
    let _ = std::fs::remove_dir_all(&home);
    eprintln!("guessing test took {:.1} s", started.elapsed().as_secs_f64());
}
