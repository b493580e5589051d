//! The server under test as a child process, and what `/proc` says about it
//! (CPU time, resident memory, threads) and about the bench itself.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A snapshot of one process from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// User plus system CPU time, in seconds.
    pub cpu_s: f64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
    /// Number of threads.
    pub threads: u64,
}

impl Sample {
    /// Samples process `pid` (`"self"` for the bench).
    ///
    /// # Errors
    /// When `/proc` cannot be read (the process is gone).
    pub fn of(pid: &str) -> anyhow::Result<Sample> {
        let at = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
        // The command name is in parentheses and may contain spaces: split after it.
        let after = stat.rsplit_once(") ").map(|(_, rest)| rest).context("odd /proc/PID/stat")?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after the name.
        let ticks: u64 =
            fields.get(11..13).context("short stat")?.iter().filter_map(|f| f.parse::<u64>().ok()).sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Sample { at, cpu_s: ticks as f64 / hz, rss_kib: field("VmRSS:"), threads: field("Threads:") })
    }

    /// CPU used between `self` and `later`, as a percentage of one core.
    pub fn cpu_percent_until(&self, later: &Sample) -> f64 {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        if wall <= 0.0 { 0.0 } else { 100.0 * (later.cpu_s - self.cpu_s) / wall }
    }
}

/// A running `komunikator-server`, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The exact command line, for the report.
    pub command: String,
}

impl Server {
    /// Starts `binary` on 127.0.0.1 port 0 with `extra` flags and waits for
    /// its `listening on` line.
    ///
    /// # Errors
    /// When it cannot start or does not report its address within 10 s.
    pub fn start(binary: &Path, extra: &[&str]) -> anyhow::Result<Server> {
        // A server that also speaks TLS waits for a first byte before greeting
        // plain-text clients; the benchmarks measure the plain-text relay.
        let tls = if supports(binary, "--no-tls") { ["--no-tls"].as_slice() } else { &[] };
        Server::spawn(binary, &[tls, extra].concat())
    }

    /// Starts `binary` with TLS on (and plain text allowed), its certificate
    /// in the state directory `state_dir`.
    ///
    /// # Errors
    /// As [`Server::start`], and when the binary has no TLS.
    pub fn start_tls(binary: &Path, state_dir: &Path, extra: &[&str]) -> anyhow::Result<Server> {
        anyhow::ensure!(supports(binary, "--state-dir"), "{} has no TLS (--state-dir)", binary.display());
        let dir = state_dir.to_str().context("state dir is not UTF-8")?;
        Server::spawn(binary, &[&["--state-dir", dir], extra].concat())
    }

    fn spawn(binary: &Path, extra: &[&str]) -> anyhow::Result<Server> {
        let mut args = vec!["--bind", "127.0.0.1", "--port", "0", "--log-level", "warn"];
        args.extend_from_slice(extra);
        let command = format!("{} {}", binary.display(), args.join(" "));
        let mut child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{command}: no `listening on` line within 10 s");
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .with_context(|| format!("{command}: unexpected first line {line:?}"))?;
        Ok(Server { child, addr, command })
    }

    /// The child's process id, as `/proc` wants it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Samples the server process.
    ///
    /// # Errors
    /// When the server has exited.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        Sample::of(&self.pid())
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first for a clean exit; SIGKILL if it lingers.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill with a valid pid and signal has no memory effects.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `binary --help` lists `flag`.
fn supports(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split(|c: char| !(c.is_alphanumeric() || c == '-'))
                .any(|w| w == flag)
        })
        .unwrap_or(false)
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Waits until `server` has `threads` threads or `timeout` passes; returns the last sample.
///
/// # Errors
/// When the server cannot be sampled.
pub fn wait_threads(server: &Server, threads: u64, timeout: Duration) -> anyhow::Result<Sample> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = server.sample()?;
        if s.threads >= threads || Instant::now() >= deadline {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
