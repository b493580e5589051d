//! Shared by the GUI tests: an X display (`DISPLAY`, or an `Xvfb` started
//! here), the real window as a child process with its log, key presses
//! through XTEST with xdotool, a raw `refresh`, and reading screenshots.
//! Builds on the core's `support` module (server, headless clients).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gtk::prelude::*;

use crate::support::{Client, args, gst_registry, test_media};

/// How long the window may take for each step.
pub const WAIT: Duration = Duration::from_secs(60);

static X: Mutex<()> = Mutex::new(());

/// One window on the display at a time: xdotool finds windows by title.
pub fn exclusive() -> MutexGuard<'static, ()> {
    X.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An X display: the one in `DISPLAY`, or an `Xvfb` of our own.
pub struct Display {
    name: String,
    xvfb: Option<Child>,
}

impl Display {
    /// `DISPLAY`, or a new Xvfb.
    pub fn get() -> Display {
        if let Some(name) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
            return Display { name, xvfb: None };
        }
        for n in 90..120 {
            if display_in_use(n) {
                continue;
            }
            let name = format!(":{n}");
            let mut child = Command::new("Xvfb")
                .args([name.as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("DISPLAY is unset and Xvfb cannot start ({e}): install xvfb or run under xvfb-run")
                });
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                // Listening (a stale socket left by a killed Xvfb refuses).
                if std::os::unix::net::UnixStream::connect(format!("/tmp/.X11-unix/X{n}")).is_ok() {
                    return Display { name, xvfb: Some(child) };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("Xvfb {name} did not come up within 10 s");
        }
        panic!("DISPLAY is unset and no free X display number was found for Xvfb");
    }
}

/// Whether X display `:n` belongs to a live server: its lock file names a
/// running process. A killed Xvfb leaves its socket and lock file behind;
/// a new Xvfb replaces those.
fn display_in_use(n: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/tmp/.X{n}-lock")) else {
        return Path::new(&format!("/tmp/.X11-unix/X{n}")).exists();
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    text.trim().parse::<i32>().is_ok_and(|pid| pid > 0 && unsafe { libc::kill(pid, 0) } == 0)
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(c) = &mut self.xvfb {
            // SIGTERM lets Xvfb remove its socket and lock file; SIGKILL after 5 s.
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A window manager (openbox) on a display, for what only a window manager
/// does, such as making a window fullscreen. Stopped on drop.
pub struct WindowManager(Child);

impl WindowManager {
    /// Starts openbox on `display` and waits until it manages the screen.
    pub fn start(display: &Display) -> WindowManager {
        let child = Command::new("openbox")
            .args(["--sm-disable"])
            .env("DISPLAY", &display.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("openbox cannot start ({e}): install openbox"));
        let wm = WindowManager(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let out = Command::new("xprop")
                .args(["-root", "_NET_SUPPORTING_WM_CHECK"])
                .env("DISPLAY", &display.name)
                .output();
            if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("window id")) {
                return wm;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("openbox did not take the screen within {WAIT:?}");
    }
}

impl Drop for WindowManager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The window process and its stderr, line by line.
pub struct Window {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Window {
    /// Starts the window with `app_args`, test media, its own empty config
    /// home and working directory `home`, and screenshots into `shots`.
    pub fn start(display: &Display, app_args: &[&str], shots: &Path, home: &Path) -> Window {
        Window::start_with_env(display, app_args, shots, home, &[])
    }

    /// [`Window::start`] with more environment variables (such as `LANG`, or
    /// `DBUS_SESSION_BUS_ADDRESS` for a session of the test's own).
    pub fn start_with_env(
        display: &Display,
        app_args: &[&str],
        shots: &Path,
        home: &Path,
        env: &[(&str, &str)],
    ) -> Window {
        Window::start_with_media(display, app_args, &test_media("ball", 660), shots, home, env)
    }

    /// [`Window::start_with_env`] with other test media (such as
    /// `test_media("smpte", 440)`), to tell two windows' pictures apart.
    pub fn start_with_media(
        display: &Display,
        app_args: &[&str],
        media: &[String],
        shots: &Path,
        home: &Path,
        env: &[(&str, &str)],
    ) -> Window {
        let bin = env!("CARGO_BIN_EXE_komunikator");
        let app_args = [args(&[app_args]), media.to_vec()].concat();
        std::fs::create_dir_all(home).expect("test home");
        // GtkApplication wants a D-Bus session; start one when there is none.
        let bus_given = env.iter().any(|(k, _)| *k == "DBUS_SESSION_BUS_ADDRESS");
        let mut cmd = if bus_given || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            Command::new(bin)
        } else {
            let mut c = Command::new("dbus-run-session");
            c.args(["--", bin]);
            c
        };
        let mut child = cmd
            .args(&app_args)
            .current_dir(home)
            .env("DISPLAY", &display.name)
            .env("GDK_BACKEND", "x11")
            .env("GSK_RENDERER", "cairo")
            .env("NO_AT_BRIDGE", "1")
            .env("LANG", "C.UTF-8")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .env("GST_REGISTRY", gst_registry())
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("KOMUNIKATOR_SCREENSHOT_DIR", shots)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the komunikator window (is dbus-run-session installed?)");
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Window { child, lines, log }
    }

    /// Everything the window logged.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_for(&self, needle: &str) {
        self.wait_for_line(&[needle]);
    }

    /// Waits for a stderr line containing every one of `needles`; the line.
    pub fn wait_for_line(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(_) => {}
                Err(_) => panic!("the window never logged a line with {needles:?}; its log:\n{}", self.log()),
            }
        }
    }

    /// The window's process id (signals go straight to it when the tests
    /// run in their own D-Bus session).
    /// Waits until every one of `needles` has shown in a line, in any order.
    pub fn wait_for_each(&self, needles: &[&str]) {
        let deadline = Instant::now() + WAIT;
        let mut missing: Vec<&str> = needles.to_vec();
        while !missing.is_empty() {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => missing.retain(|n| !line.contains(n)),
                Err(_) => panic!("the window never logged {missing:?}; its log:\n{}", self.log()),
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the process to exit; its exit code.
    pub fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the window did not quit within {timeout:?}; its log:\n{}", self.log());
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs xdotool on `display`; its stdout.
pub fn xdotool(display: &Display, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", &display.name)
        .output()
        .unwrap_or_else(|e| panic!("xdotool cannot run ({e}): install xdotool"));
    assert!(out.status.success(), "xdotool {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The X window of `window`'s process, raised and given the keyboard
/// focus: for tests with several windows (found by process id, which needs
/// the tests' own D-Bus session so that the window is not a child of
/// `dbus-run-session`).
pub fn focus(display: &Display, window: &Window) -> String {
    let pid = window.child.id().to_string();
    // By name too: a tooltip is a window of the same process.
    let ids = xdotool(
        display,
        &["search", "--all", "--sync", "--onlyvisible", "--pid", &pid, "--name", "Komunikator"],
    );
    let id = ids.lines().next().expect("the window is on the display").trim().to_owned();
    xdotool(display, &["windowraise", &id]);
    xdotool(display, &["windowfocus", "--sync", &id]);
    id
}

/// Presses `key` in `window` (one of several) through XTEST.
pub fn press_in(display: &Display, window: &Window, key: &str) {
    focus(display, window);
    xdotool(display, &["key", "--clearmodifiers", key]);
}

/// Types `text` in `window` (one of several) through XTEST.
pub fn type_in(display: &Display, window: &Window, text: &str) {
    focus(display, window);
    // Until GTK has taken the focus in: letters typed sooner are lost.
    std::thread::sleep(Duration::from_millis(700));
    xdotool(display, &["type", "--delay", "40", text]);
}

/// Clicks the left button at `x`,`y` in `window` (one of several) through XTEST.
pub fn click_in(display: &Display, window: &Window, x: &str, y: &str) {
    let id = focus(display, window);
    xdotool(display, &["mousemove", "--sync", "--window", &id, x, y]);
    xdotool(display, &["click", "1"]);
    // Away, so that no tooltip stays up.
    xdotool(display, &["mousemove", "--sync", "--window", &id, "1", "1"]);
}

/// The X id of the main window, whose title ends in "Komunikator" ("ala —
/// Komunikator", "Call with bob — Komunikator").
pub fn main_window(display: &Display) -> String {
    let ids = xdotool(display, &["search", "--sync", "--onlyvisible", "--name", "Komunikator$"]);
    ids.lines().next().expect("the window is on the display").trim().to_owned()
}

/// Asks the window manager for `w`×`h` of the main window and waits until
/// the window has that width; panics with the width it kept.
pub fn resize(display: &Display, window: &Window, w: u32, h: u32) {
    let id = main_window(display);
    let deadline = Instant::now() + WAIT;
    let mut geometry = String::new();
    while Instant::now() < deadline {
        xdotool(display, &["windowsize", &id, &w.to_string(), &h.to_string()]);
        std::thread::sleep(Duration::from_millis(500));
        geometry = xdotool(display, &["getwindowgeometry", &id]);
        if geometry.contains(&format!("Geometry: {w}x")) {
            return;
        }
    }
    panic!("asked for {w}×{h}, the window stayed {geometry:?}; its log:\n{}", window.log());
}

/// Gives the window the keyboard focus and presses `key` through XTEST.
pub fn press(display: &Display, key: &str) {
    let id = main_window(display);
    xdotool(display, &["windowfocus", "--sync", &id]);
    xdotool(display, &["key", "--clearmodifiers", key]);
}

/// Gives the window the keyboard focus and types `text` through XTEST.
pub fn type_text(display: &Display, text: &str) {
    let id = main_window(display);
    xdotool(display, &["windowfocus", "--sync", &id]);
    xdotool(display, &["type", "--delay", "40", text]);
}

/// A headless peer `nick` calls the window (registered as `callee`) with
/// test media; the prompt is answered with the Return key, after the
/// prompt's screenshot when `shot`. The peer, in the call.
pub fn answer(
    window: &Window,
    display: &Display,
    server: &str,
    callee: &str,
    nick: &str,
    shot: bool,
) -> Client {
    let peer_args = [args(&[&["--name", nick, "--call", callee]]), test_media("smpte", 440)].concat();
    let peer = Client::start(server, &peer_args);
    window.wait_for("view: incoming");
    window.wait_for(&format!("incoming call from {nick}"));
    if shot {
        window.wait_for("screenshot saved: ");
    }
    press(display, "Return");
    window.wait_for("view: call");
    peer
}

/// A directory holding the compiled `pl_PL.UTF-8` locale, for `LOCPATH`
/// (the test machine may have no Polish locale installed); made once with
/// `localedef` from the glibc locale sources.
pub fn polish_locale() -> std::path::PathBuf {
    let dir = crate::support::target_dir().join("test-locale");
    if dir.join("pl_PL.UTF-8/LC_MESSAGES").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("test locale directory");
    let status = Command::new("localedef")
        .args(["-i", "pl_PL", "-f", "UTF-8"])
        .arg(dir.join("pl_PL.UTF-8"))
        .status()
        .unwrap_or_else(|e| panic!("localedef cannot run ({e}): install the locales package"));
    // localedef exits 1 for mere warnings; the directory is what counts.
    assert!(
        status.code().is_some_and(|c| c <= 1) && dir.join("pl_PL.UTF-8/LC_MESSAGES").exists(),
        "localedef could not compile pl_PL.UTF-8 (install the locales package)"
    );
    dir
}

/// The nicks a raw protocol client sees with `refresh`.
pub fn refreshed_nicks(server: &str) -> Vec<String> {
    refreshed_nicks_after(server, "")
}

/// The nicks a raw protocol client sees with `refresh` after sending
/// `before` (lines with their newlines, such as `auth PASSWORD\n`).
pub fn refreshed_nicks_after(server: &str, before: &str) -> Vec<String> {
    let mut stream = TcpStream::connect(server).expect("connect to the server");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("hello");
    assert!(line.starts_with("hello "), "server greeted with {line:?}");
    stream.write_all(format!("{before}refresh\n").as_bytes()).expect("send refresh");
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "the server closed the connection");
        assert!(!line.starts_with("error"), "the server answered {line:?}");
        if let Some(n) = line.trim().strip_prefix("clients ") {
            let n: usize = n.parse().expect("count");
            return (0..n)
                .map(|_| {
                    line.clear();
                    reader.read_line(&mut line).expect("client line");
                    line.split_whitespace().nth(2).unwrap_or("-").to_owned()
                })
                .collect();
        }
    }
}

/// The share of a row's pixels in each SMPTE bar colour (white, yellow,
/// cyan, green, magenta, red, blue), from a PNG screenshot.
pub fn bar_shares(png: &Path) -> Vec<f64> {
    let texture = gtk::gdk::Texture::from_filename(png).expect("read the screenshot");
    let (w, h) = (texture.width() as usize, texture.height() as usize);
    let stride = w * 4;
    let mut data = vec![0u8; stride * h];
    texture.download(&mut data, stride);
    let row = &data[(h / 4) * stride..(h / 4 + 1) * stride];
    // GdkTexture downloads as B8G8R8A8 premultiplied; the video is opaque.
    let bars = [(1, 1, 1), (1, 1, 0), (0, 1, 1), (0, 1, 0), (1, 0, 1), (1, 0, 0), (0, 0, 1)];
    let level = |v: u8| match v {
        0..=70 => Some(0),
        150..=255 => Some(1),
        _ => None,
    };
    let mut counts = [0usize; 7];
    for px in row.chunks_exact(4) {
        let rgb = (level(px[2]), level(px[1]), level(px[0]));
        if let (Some(r), Some(g), Some(b)) = rgb
            && let Some(i) = bars.iter().position(|c| *c == (r, g, b))
        {
            counts[i] += 1;
        }
    }
    counts.iter().map(|c| *c as f64 / w as f64).collect()
}
