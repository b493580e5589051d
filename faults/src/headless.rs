//! The real `komunikator --headless` client as a child process: its stderr
//! lines with their arrival times, and its final JSON line.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::{bin_dir, binary};

/// A running headless client; killed when dropped.
pub struct Headless {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stdout: Arc<Mutex<String>>,
    /// A label for error messages.
    pub label: String,
}

/// Flags for test media and no speakers.
/// `--plaintext`: the scenarios are about the protocol, and a TLS client
/// would pin each test server's certificate in the user's configuration.
pub const TEST_MEDIA: &[&str] = &[
    "--plaintext",
    "--video-source",
    "test",
    "--audio-source",
    "test",
    "--audio-output",
    "none",
    "--fps",
    "15",
];

impl Headless {
    /// Starts `komunikator --headless --server ADDR ARGS`.
    ///
    /// # Errors
    /// When the binary is missing or cannot start.
    pub fn spawn(label: &str, server: &str, args: &[&str]) -> Result<Headless> {
        let mut cmd = Command::new(binary("komunikator")?);
        cmd.args(["--headless", "--server", server]).args(args);
        if std::env::var_os("GST_REGISTRY").is_none() {
            cmd.env("GST_REGISTRY", bin_dir().join("../gst-registry-faults.bin"));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start komunikator ({label})"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stderr = child.stderr.take().context("stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push((Instant::now(), line));
                }
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = Arc::clone(&stdout);
        let mut pipe = child.stdout.take().context("stdout")?;
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = pipe.read_to_string(&mut all);
            if let Ok(mut o) = out.lock() {
                *o = all;
            }
        });
        Ok(Headless { child, lines, stdout, label: label.to_owned() })
    }

    /// Waits for a stderr line containing `text` that arrived after `since`; returns its arrival time.
    ///
    /// # Errors
    /// When none arrives within `wait`.
    pub fn wait_line(&self, text: &str, since: Instant, wait: Duration) -> Result<Instant> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(at) = self.find(text, since) {
                return Ok(at);
            }
            if Instant::now() > deadline {
                bail!("{}: no line with {text:?} within {wait:?}; stderr:\n{}", self.label, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The arrival time of the first stderr line after `since` containing `text`.
    pub fn find(&self, text: &str, since: Instant) -> Option<Instant> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find(|(at, l)| *at >= since && l.contains(text)).map(|(at, _)| *at)
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> String {
        self.lines
            .lock()
            .map(|l| l.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Sends SIGTERM (the client hangs up and prints its summary).
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits for the exit and parses the final JSON line.
    ///
    /// # Errors
    /// When it does not exit within `wait`, or its last stdout line is not JSON.
    pub fn finish(mut self, wait: Duration) -> Result<(ExitStatus, serde_json::Value)> {
        let deadline = Instant::now() + wait;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("{}: still running after {wait:?}; stderr:\n{}", self.label, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The stdout reader finishes right after the exit.
        std::thread::sleep(Duration::from_millis(50));
        let out = self.stdout.lock().map(|o| o.clone()).unwrap_or_default();
        let last = out.lines().last().unwrap_or_default().to_owned();
        let json = serde_json::from_str(&last).with_context(|| {
            format!(
                "{}: exit {status}, last line {last:?} is not JSON; stderr:\n{}",
                self.label,
                self.stderr()
            )
        })?;
        Ok((status, json))
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
