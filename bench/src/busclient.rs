//! The brokers of the message-bus benchmark (issue 16) as child processes,
//! and the load run through one of them: a publishing connection and a
//! subscribing connection, each message stamped with its send time.
//!
//! Threads: the calling thread starts and stops the brokers; a load runs on
//! the tokio runtime the caller gives ([`run`] blocks on it), one task per
//! stream of messages and one per subscription.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt as _;

use crate::procfs::Sample;
use crate::stats::{Rng, Samples};
use crate::wire;

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `nats-server`, core NATS subjects (no JetStream).
    Nats,
    /// `redis-server`, pub/sub channels.
    Redis,
}

impl Kind {
    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Nats => "nats-server",
            Kind::Redis => "redis-server",
        }
    }
}

/// Where `name` is: on `PATH`, else in the sbin directories (Debian puts nats-server in /usr/sbin).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.map(|d| d.join(name)).find(|p| p.is_file())
}

/// A running broker on 127.0.0.1, killed (and its directory removed) when dropped.
pub struct Broker {
    child: Child,
    dir: PathBuf,
    /// Which broker.
    pub kind: Kind,
    /// Its port.
    pub port: u16,
    /// The command line, for the report.
    pub command: String,
    /// What `--version` printed.
    pub version: String,
}

impl Broker {
    /// Starts `binary` as a broker of `kind` on a free port, in a fresh temporary directory, with no
    /// persistence, and `extra` flags (for NATS, `-js` also gets `-sd` in that directory).
    ///
    /// # Errors
    /// When it does not start or does not accept connections within 10 s.
    pub fn start(kind: Kind, binary: &Path, extra: &[&str]) -> anyhow::Result<Broker> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("komunikator-bench-bus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = port.to_string();
        let store = dir.join("jetstream").display().to_string();
        let mut args: Vec<&str> = match kind {
            Kind::Nats => vec!["-a", "127.0.0.1", "-p", &p],
            Kind::Redis => vec!["--port", &p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        };
        args.extend_from_slice(extra);
        if kind == Kind::Nats && extra.contains(&"-js") {
            args.extend_from_slice(&["-sd", &store]);
        }
        let shown: Vec<String> =
            args.iter().map(|a| if a.is_empty() { "''".into() } else { a.to_string() }).collect();
        let command = format!("{} {}", binary.display(), shown.join(" "));
        let log = std::fs::File::create(dir.join("log.txt")).context("creating the broker's log")?;
        let child = Command::new(binary)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {command}"))?;
        let version = version(binary);
        let broker = Broker { child, dir, kind, port, command, version };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(broker.dir.join("log.txt")).unwrap_or_default();
                bail!("{}: not accepting connections within 10 s: {}", broker.command, log.trim());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    /// The broker process's CPU time, RSS and threads.
    ///
    /// # Errors
    /// When it has exited.
    pub fn sample(&self) -> anyhow::Result<Sample> {
        Sample::of(&self.child.id().to_string())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_default()
}

/// One stream of messages: `per_s` messages of `size` bytes on one subject.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Subject (NATS) or channel (Redis) number.
    pub subject: u32,
    /// What the message stands for (0 control, 1 audio, 2 video): its latency is kept apart.
    pub kind: u8,
    /// Payload bytes.
    pub size: usize,
    /// Messages per second.
    pub per_s: f64,
}

/// What a load run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency per kind (control, audio, video), of the messages sent in the window.
    pub lat: [Samples; 3],
    /// Messages sent in the window.
    pub sent: u64,
    /// Of those, received.
    pub received: u64,
    /// Broker and bench samples at the window's start and end.
    pub broker: Option<(Sample, Sample)>,
    /// The bench's own.
    pub me: Option<(Sample, Sample)>,
}

/// The stamp at the start of every payload: send time (ns since [`wire::epoch`]), subject, kind.
pub const HEADER: usize = 13;

/// Writes the stamp into `buf` (at least [`HEADER`] bytes).
pub fn stamp(buf: &mut [u8], sent_ns: u64, subject: u32, kind: u8) {
    buf[..8].copy_from_slice(&sent_ns.to_le_bytes());
    buf[8..12].copy_from_slice(&subject.to_le_bytes());
    buf[12] = kind;
}

/// Reads the stamp back: (send time, subject, kind); `None` for a payload too short or of an unknown kind.
pub fn parse(buf: &[u8]) -> Option<(u64, u32, u8)> {
    let sent = u64::from_le_bytes(buf.get(..8)?.try_into().ok()?);
    let subject = u32::from_le_bytes(buf.get(8..12)?.try_into().ok()?);
    let kind = *buf.get(12)?;
    (kind < 3).then_some((sent, subject, kind))
}

/// The subject (NATS) or channel (Redis) of stream number `n`.
fn subject(n: u32) -> String {
    format!("komunikator.bench.{n}")
}

/// The receiving side's tally; the window is `[from, to)` in send time.
struct Tally {
    from: u64,
    to: u64,
    out: Outcome,
}

impl Tally {
    fn record(&mut self, payload: &[u8]) {
        let now = wire::now_ns();
        if let Some((sent, _, kind)) = parse(payload)
            && (self.from..self.to).contains(&sent)
        {
            self.out.lat[usize::from(kind)].push(now.saturating_sub(sent));
            self.out.received += 1;
        }
    }
}

/// The publishing connection.
#[derive(Clone)]
enum Publisher {
    Nats(async_nats::Client),
    Redis(redis::aio::MultiplexedConnection),
}

impl Publisher {
    async fn send(&mut self, subject: String, payload: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Publisher::Nats(c) => c.publish(subject, payload.into()).await?,
            Publisher::Redis(c) => {
                let _: usize = redis::cmd("PUBLISH").arg(subject).arg(payload).query_async(c).await?;
            }
        }
        Ok(())
    }
}

/// Subscribes a second connection to every stream's subject; the tasks it spawns feed `tally`.
async fn subscribe(broker: &Broker, streams: &[Stream], tally: &Arc<Mutex<Tally>>) -> anyhow::Result<()> {
    let mut subjects: Vec<u32> = streams.iter().map(|s| s.subject).collect();
    subjects.dedup();
    match broker.kind {
        Kind::Nats => {
            let client = async_nats::connect(format!("127.0.0.1:{}", broker.port)).await?;
            for n in subjects {
                let mut sub = client.subscribe(subject(n)).await?;
                let tally = tally.clone();
                tokio::spawn(async move {
                    while let Some(m) = sub.next().await {
                        tally.lock().map(|mut t| t.record(&m.payload)).ok();
                    }
                });
            }
            // The server has every subscription once it answers a ping.
            client.flush().await?;
        }
        Kind::Redis => {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}/", broker.port))?;
            let mut pubsub = client.get_async_pubsub().await?;
            for n in subjects {
                pubsub.subscribe(subject(n)).await?;
            }
            let mut messages = pubsub.into_on_message();
            let tally = tally.clone();
            tokio::spawn(async move {
                while let Some(m) = messages.next().await {
                    tally.lock().map(|mut t| t.record(m.get_payload_bytes())).ok();
                }
            });
        }
    }
    Ok(())
}

async fn publisher(broker: &Broker) -> anyhow::Result<Publisher> {
    Ok(match broker.kind {
        Kind::Nats => Publisher::Nats(async_nats::connect(format!("127.0.0.1:{}", broker.port)).await?),
        Kind::Redis => {
            let client = redis::Client::open(format!("redis://127.0.0.1:{}/", broker.port))?;
            Publisher::Redis(client.get_multiplexed_async_connection().await?)
        }
    })
}

/// Sends one stream from `start` (its first message at a random phase) until `end`;
/// returns how many it sent with a stamp in `window`.
async fn send(
    mut publisher: Publisher,
    s: Stream,
    phase: Duration,
    (start, end): (Instant, Instant),
    window: (u64, u64),
) -> anyhow::Result<u64> {
    let mut ticks = tokio::time::interval_at((start + phase).into(), Duration::from_secs_f64(1.0 / s.per_s));
    let mut counted = 0;
    loop {
        ticks.tick().await;
        if Instant::now() >= end {
            return Ok(counted);
        }
        let mut payload = vec![0x5a; s.size.max(HEADER)];
        let now = wire::now_ns();
        stamp(&mut payload, now, s.subject, s.kind);
        publisher.send(subject(s.subject), payload).await?;
        counted += u64::from((window.0..window.1).contains(&now));
    }
}

/// Runs `streams` through `broker` for `warm` then `measure` and waits up to
/// `drain` for the last messages.
///
/// # Errors
/// When a connection fails or a publish is refused.
pub async fn run(
    broker: &Broker,
    streams: &[Stream],
    warm: Duration,
    measure: Duration,
    drain: Duration,
) -> anyhow::Result<Outcome> {
    let start = Instant::now() + Duration::from_millis(100);
    let (from, to) = (start + warm, start + warm + measure);
    let window = (wire::ns_of(from), wire::ns_of(to));
    let tally = Arc::new(Mutex::new(Tally { from: window.0, to: window.1, out: Outcome::default() }));
    subscribe(broker, streams, &tally).await?;
    let publisher = publisher(broker).await?;
    let mut rng = Rng::new(u64::from(broker.port));
    let mut tasks = Vec::new();
    for s in streams {
        let phase = Duration::from_micros(rng.range(0, (1e6 / s.per_s) as usize) as u64);
        tasks.push(tokio::spawn(send(publisher.clone(), *s, phase, (start, to), window)));
    }
    tokio::time::sleep_until(from.into()).await;
    let first = (broker.sample()?, Sample::of("self")?);
    tokio::time::sleep_until(to.into()).await;
    let last = (broker.sample()?, Sample::of("self")?);
    let mut sent = 0;
    for t in tasks {
        sent += t.await.context("a sender task panicked")??;
    }
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline && tally.lock().map_or(0, |t| t.out.received) < sent {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut t = tally.lock().map_err(|_| anyhow::anyhow!("a receiver task panicked"))?;
    let mut out = std::mem::take(&mut t.out);
    out.sent = sent;
    out.broker = Some((first.0, last.0));
    out.me = Some((first.1, last.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_odd_payloads_are_refused() {
        let mut buf = vec![0; 120];
        stamp(&mut buf, 123_456_789_012, 77, 2);
        assert_eq!(parse(&buf), Some((123_456_789_012, 77, 2)));
        assert_eq!(parse(&buf[..HEADER]), Some((123_456_789_012, 77, 2)));
        assert_eq!(parse(&buf[..HEADER - 1]), None);
        buf[12] = 3;
        assert_eq!(parse(&buf), None);
    }

    #[test]
    fn a_missing_broker_is_not_found() {
        assert_eq!(find("komunikator-no-such-broker"), None);
        assert!(find("sh").is_some());
    }
}
