//! The real `komunikator-server` as a child process, its /proc readings, the
//! bystander that keeps pinging it, and the check that a scenario left no
//! thread, descriptor or memory behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::client::Client;

/// How much the server's resident memory may stay above its baseline after a
/// scenario, in KiB. The allocator keeps some freed pages (glibc keeps one
/// arena per thread that ever allocated, and trims them lazily), so a
/// thousand short-lived client threads leave a few MiB resident that are
/// reused, not leaked; see faults/RESULTS.md for the measurements behind this figure.
pub const RSS_TOLERANCE_KIB: usize = 8 << 10;

/// The bystander's ping must come back within this.
pub const PING_BOUND: Duration = Duration::from_millis(100);

/// The directory holding the workspace's binaries: `KOMUNIKATOR_BIN_DIR`, or
/// the directory of this executable (or its parent, for test executables in `deps/`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KOMUNIKATOR_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A workspace binary by name.
///
/// # Errors
/// When it has not been built.
pub fn binary(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    ensure!(path.exists(), "{} is missing: run `cargo build --workspace` first", path.display());
    Ok(path)
}

/// What /proc says about the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// Threads.
    pub threads: usize,
    /// Open descriptors.
    pub fds: usize,
    /// Resident memory, KiB.
    pub rss_kib: usize,
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} threads, {} fds, {} KiB RSS", self.threads, self.fds, self.rss_kib)
    }
}

/// A running server, killed when dropped.
pub struct ServerProc {
    child: Child,
    /// Where clients reach it.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServerProc {
    /// Starts the server on 127.0.0.1 and a free port, with extra flags.
    ///
    /// The scenarios drive the plain-text protocol, so the server runs with
    /// `--no-tls`: otherwise every client that waits for `hello` would first
    /// wait out the server's grace period for a TLS handshake, and a scenario
    /// of a thousand connections would measure that instead of the server.
    /// TLS itself is tested in server/tests/tls.rs and gtk-client/tests/tls.rs.
    ///
    /// # Errors
    /// When it does not start or does not print `listening on`.
    pub fn start(args: &[&str]) -> Result<ServerProc> {
        let mut cmd = Command::new(binary("komunikator-server")?);
        cmd.arg("--no-tls");
        if !args.contains(&"--bind") {
            cmd.args(["--bind", "127.0.0.1"]);
        }
        if !args.contains(&"--port") {
            cmd.args(["--port", "0"]);
        }
        cmd.args(args);
        ServerProc::spawn(cmd, None)
    }

    /// Starts `cmd` (the server, perhaps wrapped in `ip netns exec`) and waits
    /// for `listening on`. `host` replaces an unspecified listening address.
    ///
    /// # Errors
    /// When it does not start or does not print `listening on` within 10 s.
    pub fn spawn(mut cmd: Command, host: Option<std::net::IpAddr>) -> Result<ServerProc> {
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context("start komunikator-server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().context("server stderr")?;
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut log) = sink.lock() {
                    // Keep the log bounded: scenarios only look at recent lines.
                    if log.len() > 4 << 20 {
                        log.clear();
                    }
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let mut server = ServerProc { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log };
        let line = rx.recv_timeout(Duration::from_secs(10)).context("the server printed nothing")?;
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line {line:?}; log: {}", server.log()))?
            .parse()
            .context("listening address")?;
        server.addr = if addr.ip().is_unspecified() {
            SocketAddr::new(host.unwrap_or([127, 0, 0, 1].into()), addr.port())
        } else {
            addr
        };
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged (the last few MiB).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Threads, descriptors and resident memory now.
    pub fn metrics(&self) -> Metrics {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(|d| d.count()).unwrap_or(0);
        Metrics { threads: field("Threads:"), fds, rss_kib: field("VmRSS:") }
    }

    /// Waits (up to `wait`) until threads and descriptors are back at
    /// `baseline` and memory within [`RSS_TOLERANCE_KIB`] of it.
    ///
    /// # Errors
    /// When they do not return, with the last reading.
    pub fn settles_to(&self, baseline: Metrics, wait: Duration) -> Result<Metrics> {
        let deadline = Instant::now() + wait;
        loop {
            let now = self.metrics();
            if now.threads == baseline.threads
                && now.fds == baseline.fds
                && now.rss_kib <= baseline.rss_kib + RSS_TOLERANCE_KIB
            {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("did not return to baseline within {wait:?}: now {now}, baseline {baseline}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client that pings the server every 50 ms for the whole scenario.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(Client, Vec<Duration>)>>,
}

/// The bystander's connection, kept open until the baseline check is done.
pub struct Finished {
    /// The round trips.
    pub pings: Pings,
    /// The connection (part of the baseline: dropping it early would skew it).
    pub client: Client,
}

/// The bystander's round trips.
#[derive(Debug, Clone, Copy)]
pub struct Pings {
    /// Pings sent during the scenario.
    pub count: usize,
    /// Median round trip during the scenario.
    pub median: Duration,
    /// 99th percentile during the scenario.
    pub p99: Duration,
    /// Slowest during the scenario.
    pub max: Duration,
    /// The median of five round trips after the scenario.
    pub after: Duration,
}

impl std::fmt::Display for Pings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bystander ping: {} during (median {:.1} ms, p99 {:.1} ms, max {:.1} ms), {:.1} ms after",
            self.count,
            ms(self.median),
            ms(self.p99),
            ms(self.max),
            ms(self.after)
        )
    }
}

/// A duration in milliseconds, for reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Bystander {
    /// Connects a bystander to `addr` and starts pinging.
    ///
    /// # Errors
    /// When it cannot connect.
    pub fn start(addr: SocketAddr) -> Result<Bystander> {
        Bystander::with(Client::connect(addr)?)
    }

    /// Starts pinging over an existing connection.
    ///
    /// # Errors
    /// When the thread cannot start.
    pub fn with(mut client: Client) -> Result<Bystander> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("bystander".into()).spawn(move || {
            let mut rtts = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                rtts.push(client.ping(Duration::from_secs(5)).context("bystander ping during the scenario")?);
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok((client, rtts))
        })?;
        Ok(Bystander { stop, thread })
    }

    /// Stops pinging and checks a final ping against [`PING_BOUND`].
    ///
    /// # Errors
    /// When a ping failed or the final one was slower than the bound.
    pub fn finish(self) -> Result<Finished> {
        self.stop.store(true, Ordering::Relaxed);
        let (mut client, mut rtts) =
            self.thread.join().map_err(|_| anyhow::anyhow!("bystander thread panicked"))??;
        // Five pings after the scenario; their median is the figure, so one
        // scheduling hiccup of this shared machine does not decide it.
        let mut five = Vec::with_capacity(5);
        for _ in 0..5 {
            five.push(client.ping(Duration::from_secs(5))?);
        }
        five.sort();
        let after = five[2];
        rtts.sort();
        let pick = |q: f64| rtts.get(((rtts.len() as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
        let pings = Pings {
            count: rtts.len(),
            median: pick(0.5),
            p99: pick(0.99),
            max: rtts.last().copied().unwrap_or_default(),
            after,
        };
        ensure!(after <= PING_BOUND, "the bystander's ping after the scenario took {:.1} ms", ms(after));
        ensure!(
            pings.median <= PING_BOUND,
            "the bystander's median ping during the scenario was {:.1} ms",
            ms(pings.median)
        );
        Ok(Finished { pings, client })
    }
}
