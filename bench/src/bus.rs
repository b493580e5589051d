//! Which message broker the cluster of issue 16 should ride on: NATS
//! (`nats-server`, core subjects) against Redis (`redis-server`, pub/sub),
//! each started by the bench on a free 127.0.0.1 port with no persistence.
//! For each load, one connection publishes and another, subscribed to every
//! subject, receives; each payload carries its send time, so the receiver's
//! `now - stamp` is the time the message spent in the clients and the broker.
//! Loads are a light rate of one message size, and N "calls" each sending
//! audio and video on their own subject. The brokers run side by side and
//! the loads alternate between them, so a noisy neighbour hits both alike.
//!
//! Threads: the calling thread starts the brokers and builds a fresh tokio
//! runtime for each run (dropping it ends that run's connections and tasks);
//! see [`crate::busclient`] for the tasks.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;

use crate::busclient::{self, Broker, Kind, Outcome, Stream};
use crate::busdir::{self, Directory};
use crate::runs::Lat;

/// One load offered to a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// One subject, `per_s` messages of `size` bytes.
    Light {
        /// Payload bytes.
        size: usize,
        /// Messages per second.
        per_s: u32,
    },
    /// `n` calls, each 50 audio messages of 120 B and 30 video messages of 8,000 B per second on its own subject.
    Calls {
        /// Simultaneous calls.
        n: u32,
    },
}

/// Audio and video of one call: (bytes, messages per second).
const AUDIO: (usize, f64) = (120, 50.0);
const VIDEO: (usize, f64) = (8_000, 30.0);

impl Load {
    fn streams(self) -> Vec<Stream> {
        match self {
            Load::Light { size, per_s } => {
                vec![Stream { subject: 0, kind: 0, size, per_s: f64::from(per_s) }]
            }
            Load::Calls { n } => (0..n)
                .flat_map(|subject| {
                    [(1, AUDIO), (2, VIDEO)].map(|(kind, (size, per_s))| Stream {
                        subject,
                        kind,
                        size,
                        per_s,
                    })
                })
                .collect(),
        }
    }

    fn label(self) -> String {
        match self {
            Load::Light { size, per_s } => format!("{size} B at {per_s}/s"),
            Load::Calls { n } => format!("{n} calls"),
        }
    }

    /// Messages per second offered.
    fn rate(self) -> f64 {
        self.streams().iter().map(|s| s.per_s).sum()
    }
}

fn loads(smoke: bool) -> Vec<Load> {
    if smoke {
        return vec![Load::Calls { n: 10 }];
    }
    let light = [200, 1_200, 12_000].map(|size| Load::Light { size, per_s: 100 });
    light.into_iter().chain([10, 50, 100, 250].map(|n| Load::Calls { n })).collect()
}

/// One run of one load through one broker.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which broker.
    pub kind: Kind,
    /// The load.
    pub load: Load,
    /// All messages, control, audio, video.
    pub lat: [Lat; 4],
    /// Sent in the window.
    pub sent: u64,
    /// Of those, never received.
    pub lost: u64,
    /// Broker CPU over the window, % of one core.
    pub cpu: f64,
    /// Broker RSS at the window's end, KiB.
    pub rss: u64,
    /// The bench's own CPU (both clients), % of one core.
    pub bench_cpu: f64,
}

/// The bus benchmark's outcome.
#[derive(Debug, Clone, Default)]
pub enum Bus {
    /// Not requested.
    #[default]
    NotRun,
    /// Measured (a broker that is missing is named in `missing`).
    Measured {
        /// One row per load and broker, the loads in order.
        rows: Vec<Row>,
        /// (broker, command line, version) of each broker started.
        brokers: Vec<(Kind, String, String)>,
        /// Why a broker was not measured.
        missing: Vec<String>,
        /// The directory benchmark, one per broker.
        directory: Vec<Directory>,
        /// Warm-up and window of each run.
        window: (Duration, Duration),
    },
}

fn lat(s: &mut crate::stats::Samples) -> Lat {
    Lat { p50: s.pct_us(50.0), p99: s.pct_us(99.0), n: s.len() }
}

impl Row {
    fn of(kind: Kind, load: Load, mut o: Outcome) -> Row {
        let mut all = o.lat[0].clone();
        all.extend(&o.lat[1]);
        all.extend(&o.lat[2]);
        let [c, a, v] = &mut o.lat;
        let (cpu, rss) = o.broker.map_or((0.0, 0), |(s, e)| (s.cpu_percent_until(&e), e.rss_kib));
        Row {
            kind,
            load,
            lat: [lat(&mut all), lat(c), lat(a), lat(v)],
            sent: o.sent,
            lost: o.sent.saturating_sub(o.received),
            cpu,
            rss,
            bench_cpu: o.me.map_or(0.0, |(s, e)| s.cpu_percent_until(&e)),
        }
    }
}

/// Starts every broker found and runs every load through each (100/s of 200 B, 1,200 B, 12 KB;
/// 10, 50, 100, 250 calls), 5 s windows; smoke: 10 calls, 1 s.
///
/// # Errors
/// When a broker is there but does not start, or a run fails or receives nothing.
pub fn run(smoke: bool) -> anyhow::Result<Bus> {
    let (warm, measure) = if smoke {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    };
    let mut started = Vec::new();
    let mut missing = Vec::new();
    for kind in [Kind::Nats, Kind::Redis] {
        match busclient::find(kind.binary()) {
            Some(path) => started.push(Broker::start(kind, &path, &[])?),
            None => missing.push(format!("{} not found", kind.binary())),
        }
    }
    let brokers = started.iter().map(|b| (b.kind, b.command.clone(), b.version.clone())).collect();
    let mut rows = Vec::new();
    for load in loads(smoke) {
        for broker in &started {
            eprintln!("bench: bus: {} through {}", load.label(), broker.kind.binary());
            let streams = load.streams();
            let drain = Duration::from_secs(1);
            let o = runtime()?.block_on(busclient::run(broker, &streams, warm, measure, drain))?;
            anyhow::ensure!(o.received > 0, "{}: {}: no message arrived", broker.kind.binary(), load.label());
            rows.push(Row::of(broker.kind, load, o));
        }
    }
    let kinds: Vec<Kind> = started.iter().map(|b| b.kind).collect();
    drop(started);
    let directory = directories(&kinds, smoke)?;
    Ok(Bus::Measured { rows, brokers, missing, directory, window: (warm, measure) })
}

/// A fresh runtime: dropping it ends a run's connections and tasks.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// The directory benchmark on a broker of each kind started for it alone.
fn directories(kinds: &[Kind], smoke: bool) -> anyhow::Result<Vec<Directory>> {
    let plan = if smoke {
        busdir::Plan { keys: 10, ttl: Duration::from_secs(1), wait: Duration::from_secs(1) }
    } else {
        busdir::Plan { keys: 100, ttl: Duration::from_secs(2), wait: Duration::from_secs(3) }
    };
    let mut out = Vec::new();
    for &kind in kinds {
        let extra: &[&str] = match kind {
            Kind::Nats => &["-js"],
            Kind::Redis => &["--notify-keyspace-events", "Ex"],
        };
        let path = busclient::find(kind.binary()).context("the broker went away")?;
        let broker = Broker::start(kind, &path, extra)?;
        eprintln!("bench: bus: directory on {}", kind.binary());
        out.push(runtime()?.block_on(busdir::run(&broker, plan))?);
    }
    Ok(out)
}

fn us(l: &Lat) -> String {
    if l.n == 0 { "—".to_owned() } else { format!("{:.0} / {:.0}", l.p50, l.p99) }
}

/// The report's section.
pub fn render(s: &mut String, b: &Bus) {
    let title = "## 14. A message broker for the cluster: NATS against Redis\n";
    let Bus::Measured { rows, brokers, missing, directory, window: (warm, measure) } = b else { return };
    let _ = writeln!(s, "{title}");
    for why in missing {
        let _ = writeln!(s, "**Not measured: {why}.**\n");
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Each broker started by the bench on a free 127.0.0.1 port, no persistence, both running side by \
         side; the loads alternate between them. Per run, one connection publishes and a second one, \
         subscribed to every subject (NATS, `async-nats`) or channel (Redis `SUBSCRIBE`, the `redis` crate's \
         async pub/sub; publishing on a multiplexed connection, each `PUBLISH` awaiting its reply), \
         receives, on a 2-worker tokio runtime in the bench. A \"call\" sends {} audio messages of {} B and \
         {} video messages of {} B per second on its own subject, at a random phase. Latency is send to \
         receive (a timestamp in the payload, one clock), µs p50 / p99, over the messages sent in a {:.0} s \
         window after {:.1} s of warm-up; lost are those never received (1 s allowed to drain). Broker CPU: \
         utime+stime from `/proc` over the window, % of one core; RSS at its end. Bench CPU: both clients \
         together, same window.\n",
        AUDIO.1,
        AUDIO.0,
        VIDEO.1,
        VIDEO.0,
        measure.as_secs_f64(),
        warm.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "| Load | Messages/s | Broker | All, µs p50 / p99 | Audio | Video | Sent | Lost | Broker CPU, % of \
         one core | Broker RSS | Bench CPU, % |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | **{}** | {} | {} | {} | {} | **{:.1}** | {:.1} MiB | {:.0} |",
            r.load.label(),
            r.load.rate(),
            r.kind.binary(),
            us(&r.lat[0]),
            us(&r.lat[2]),
            us(&r.lat[3]),
            r.sent,
            r.lost,
            r.cpu,
            r.rss as f64 / 1024.0,
            r.bench_cpu
        );
    }
    let _ = writeln!(s, "\nBrokers:\n");
    for (_, command, version) in brokers {
        let _ = writeln!(s, "    {command}    # {version}");
    }
    let _ = writeln!(s);
    render_directory(s, directory);
}

fn ms(us: f64) -> String {
    format!("{:.0} ms", us / 1000.0)
}

fn render_directory(s: &mut String, ds: &[Directory]) {
    let Some(plan) = ds.first().map(|d| d.plan) else { return };
    let _ = writeln!(
        s,
        "A directory of users: presence entries that expire when their node stops refreshing them. Each \
         broker started again for this alone: NATS with JetStream (`-js`), a key-value bucket in file \
         storage whose `max_age` is the TTL (nats-server 2.9 has no per-key TTL); Redis with keyspace \
         events (`--notify-keyspace-events Ex`), `SET key value PX ttl`. {} keys, TTL {:.0} s. Write: one \
         presence write acknowledged, µs p50 / p99. Then, with nobody reading those keys, the expiries a \
         second connection is told of (a KV watcher of the bucket; a subscriber to \
         `__keyevent@0__:expired`) within {:.0} s past the TTL, and how late past the TTL (from the \
         write's acknowledgement), median / largest. Then fresh keys, each read with a `get` every 20 ms: \
         how late the first `get` finds it gone (to within the 20 ms between reads).\n",
        plan.keys,
        plan.ttl.as_secs_f64(),
        plan.wait.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "| Broker | Write, µs p50 / p99 | Expiries told of | Told, late by (median / largest) | Found gone by a \
         `get` | Gone, late by (median / largest) |\n|---|---|---|---|---|---|"
    );
    for d in ds {
        let late =
            |l: &Lat| if l.n == 0 { "—".to_owned() } else { format!("{} / {}", ms(l.p50), ms(l.p99)) };
        let _ = writeln!(
            s,
            "| {} | {} | **{} of {}** | {} | {} of {} | {} |",
            d.kind.binary(),
            us(&d.put),
            d.noticed.n,
            d.plan.keys,
            late(&d.noticed),
            d.gone.n,
            d.plan.keys,
            late(&d.gone)
        );
    }
    let _ = writeln!(s, "\nBrokers for the directory:\n");
    for d in ds {
        let _ = writeln!(s, "    {}", d.command);
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_audio_and_video_on_its_own_subject() {
        let streams = Load::Calls { n: 3 }.streams();
        assert_eq!(streams.len(), 6);
        assert_eq!(streams.iter().filter(|s| s.subject == 2).count(), 2);
        assert_eq!(Load::Calls { n: 100 }.rate(), 8_000.0);
        assert_eq!(Load::Light { size: 200, per_s: 100 }.rate(), 100.0);
    }

    #[test]
    fn a_missing_broker_is_said_not_measured() {
        let missing = vec!["nats-server not found".to_owned(), "redis-server not found".to_owned()];
        let bus = Bus::Measured {
            rows: vec![],
            brokers: vec![],
            missing,
            directory: vec![],
            window: (Duration::ZERO, Duration::ZERO),
        };
        let mut s = String::new();
        render(&mut s, &bus);
        assert!(s.contains("**Not measured: nats-server not found.**"), "{s}");
        assert!(!s.contains("| Load"), "{s}");
    }

    #[test]
    fn percentiles_of_all_kinds_merge() {
        let mut o = Outcome { sent: 4, received: 3, ..Outcome::default() };
        for (kind, us) in [(1, 100), (1, 300), (2, 2_000)] {
            o.lat[kind].push(us * 1000);
        }
        let r = Row::of(Kind::Nats, Load::Calls { n: 1 }, o);
        assert_eq!(r.lost, 1);
        assert_eq!((r.lat[0].n, r.lat[0].p50, r.lat[0].p99), (3, 300.0, 2_000.0));
        assert_eq!((r.lat[2].p50, r.lat[3].p50, r.lat[1].n), (100.0, 2_000.0, 0));
    }
}
