//! Shared helpers for the integration tests: start the real
//! `komunikator-server` on port 0 and real `komunikator --headless` clients,
//! collect their stderr, and read their final JSON line.
//!
//! The server binary is `<target dir>/debug/komunikator-server`. Cargo cannot
//! name another package's binary, so when it is missing this module builds it
//! with `cargo build -p komunikator-server`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod desktop;
pub mod peer;

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// A GStreamer registry cache private to these tests.
pub fn gst_registry() -> PathBuf {
    target_dir().join("gst-registry-komunikator-tests.bin")
}

static BUILD_SERVER: Once = Once::new();

/// The server binary, built if needed.
pub fn server_binary() -> PathBuf {
    let path = target_dir().join("debug/komunikator-server");
    BUILD_SERVER.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "komunikator-server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p komunikator-server");
        assert!(status.success(), "cargo build -p komunikator-server failed");
    });
    assert!(path.exists(), "{} missing after building it", path.display());
    path
}

/// A running server; killed with SIGTERM when dropped.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its certificate's directory, removed on drop.
    state: PathBuf,
}

impl Server {
    /// Starts the server on a free port and waits for `listening on`.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// The same, with more server flags.
    pub fn start_with(flags: &[&str]) -> Server {
        let state = test_dir(&format!("server-state-{}-{}", std::process::id(), next_id()));
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .arg("--state-dir")
            .arg(&state)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start komunikator-server");
        let stdout = child.stdout.take().expect("server stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the server's first line");
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("server said {line:?}"));
        // A new server has a new certificate: pins left under its address by
        // an earlier server on the same port (a run that was killed before
        // its drop) would refuse it.
        let _ = std::fs::remove_dir_all(client_config_home(addr));
        Server { addr: addr.to_owned(), child, state }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.state);
        // Clients pinned this server's certificate under its address; a later
        // server on the same port has another one.
        let _ = std::fs::remove_dir_all(client_config_home(&self.addr));
    }
}

/// A directory under the target dir for these tests' files.
pub fn test_dir(name: &str) -> PathBuf {
    target_dir().join("komunikator-tests").join(name)
}

/// Where clients of the server at `addr` keep their config and pinned
/// certificates (`XDG_CONFIG_HOME`).
pub fn client_config_home(addr: &str) -> PathBuf {
    test_dir(&format!("config-{}", addr.replace([':', '.', '[', ']'], "_")))
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn terminate(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The options every test client gets: test sources, no speakers.
pub fn test_media(pattern: &str, tone: u32) -> Vec<String> {
    let tone = tone.to_string();
    [
        "--video-source",
        "test",
        "--test-pattern",
        pattern,
        "--audio-source",
        "test",
        "--tone",
        &tone,
        "--audio-output",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A running `komunikator --headless`.
pub struct Client {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

/// How a client ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// The final JSON line, if one was printed.
    pub summary: Option<Value>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Outcome {
    /// The summary, or a panic that shows stderr.
    pub fn json(&self) -> &Value {
        self.summary.as_ref().unwrap_or_else(|| panic!("no JSON summary; stderr:\n{}", self.stderr))
    }

    /// A counter from the summary.
    pub fn n(&self, key: &str) -> u64 {
        self.json()[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {}", self.json()))
    }

    /// A number from the summary.
    pub fn f(&self, key: &str) -> f64 {
        self.json()[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {}", self.json()))
    }

    /// `end_reason`.
    pub fn end_reason(&self) -> &str {
        self.json()["end_reason"].as_str().unwrap_or("")
    }
}

impl Client {
    /// Starts `komunikator --headless --server ADDR` with more arguments.
    pub fn start(server: &str, args: &[String]) -> Client {
        Client::start_with_env(server, args, &[])
    }

    /// [`Client::start`] with more environment variables (set last).
    pub fn start_with_env(server: &str, args: &[String], env: &[(&str, &std::ffi::OsStr)]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_komunikator"))
            .args(["--headless", "--server", server])
            .args(args)
            .env("GST_REGISTRY", gst_registry())
            .env("XDG_CONFIG_HOME", client_config_home(server))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start komunikator");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let err = child.stderr.take().expect("stderr");
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Client { child: Some(child), stderr, lines, stdout: Some(stdout) }
    }

    /// Waits until a stderr line contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => {
                    panic!("no {needle:?} on stderr within {timeout:?}; stderr:\n{}", self.stderr_text())
                }
            }
        }
    }

    /// What the client wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()).unwrap_or(0)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the client to exit (killing it after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Outcome {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().and_then(|t| t.join().ok()).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr_text();
        let summary = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok());
        assert!(status.is_some(), "client did not exit within {timeout:?}; stderr:\n{stderr}");
        Outcome { code: status.and_then(|s| s.code()), summary, stderr }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// Concatenates string slices into owned arguments.
pub fn args(parts: &[&[&str]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().map(|s| s.to_string())).collect()
}

/// How long a client may take to connect and be ready.
pub const READY: Duration = Duration::from_secs(30);
