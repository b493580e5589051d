//! Runs every benchmark in turn and collects the figures. A benchmark that
//! fails is recorded as broken (and the report still written); slow figures
//! never count as broken.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Args;
use crate::engine::{self, Flow, Outcome, Plan};
use crate::idle::{self, Idle};
use crate::links::{self, Links};
use crate::net;
use crate::procfs::{Sample, Server};
use crate::realcall::{self, RealCall};
use crate::reference::{self, Reference};
use crate::slow::{self, Slow};
use crate::throughput::{self, Throughput};
use crate::tlscost::{self, Mode, TlsCost};
use komunikator_protocol::MediaKind;

/// Flags every load run gives the server, so one IP may open thousands of clients.
pub const LOAD_FLAGS: [&str; 4] = ["--max-clients", "5000", "--max-per-ip", "5000"];

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lat {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Samples.
    pub n: usize,
}

/// One side (direct or relay) of a load run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// All frames.
    pub all: Lat,
    /// Audio frames.
    pub audio: Lat,
    /// Video frames.
    pub video: Lat,
    /// Frames sent in the whole run.
    pub sent: u64,
    /// Frames sent and never received.
    pub lost: u64,
    /// Sender lateness p99, µs (how far behind its schedule the generator ran).
    pub late_p99: f64,
    /// The bench's own CPU in the window, percent of one core.
    pub bench_cpu: f64,
    /// Server CPU in the window, percent of one core (relay only).
    pub server_cpu: f64,
    /// Server RSS at the window's end, KiB (relay only).
    pub server_rss: u64,
    /// Server threads at the window's end (relay only).
    pub server_threads: u64,
}

impl Load {
    /// The figures of a load run.
    pub fn of_outcome(o: Outcome) -> Load {
        Load::of(o)
    }

    fn of(mut o: Outcome) -> Load {
        let mut all = o.audio.clone();
        all.extend(&o.video);
        let (server_cpu, server_rss, server_threads) = match o.probe {
            Some((s, e)) => (s.cpu_percent_until(&e), e.rss_kib, e.threads),
            None => (0.0, 0, 0),
        };
        Load {
            all: lat(&mut all),
            audio: lat(&mut o.audio),
            video: lat(&mut o.video),
            sent: o.sent[0] + o.sent[1],
            lost: o.lost(),
            late_p99: o.late.pct_us(99.0),
            bench_cpu: o.me.map_or(0.0, |(s, e)| s.cpu_percent_until(&e)),
            server_cpu,
            server_rss,
            server_threads,
        }
    }
}

fn lat(s: &mut crate::stats::Samples) -> Lat {
    Lat { p50: s.pct_us(50.0), p99: s.pct_us(99.0), n: s.len() }
}

/// The latency benchmark at one frame size.
#[derive(Debug, Clone, Copy)]
pub struct LatencyRow {
    /// Payload bytes.
    pub size: usize,
    /// Frames per second sent.
    pub rate: f64,
    /// Direct loopback.
    pub direct: Load,
    /// Through the server.
    pub relay: Load,
}

/// The many-calls benchmark at one number of calls.
#[derive(Debug, Clone, Copy)]
pub struct CallsRow {
    /// Simultaneous calls.
    pub calls: usize,
    /// The same number of direct pairs with the same traffic.
    pub direct: Load,
    /// Through the server.
    pub relay: Load,
    /// Server RSS with no client, KiB (same server instance, before the calls).
    pub server_rss_empty: u64,
}

/// The stripped server binary and its idle footprint.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Bytes of the release binary as built.
    pub built: u64,
    /// Bytes after `strip`.
    pub stripped: u64,
    /// RSS of the idle server, KiB.
    pub idle_rss: u64,
    /// Threads of the idle server.
    pub idle_threads: u64,
}

/// One path of the throughput run.
#[derive(Debug, Clone)]
pub struct ThroughputPath {
    /// How the report names it.
    pub label: String,
    /// The round with the median throughput.
    pub median: Throughput,
    /// Each round's throughput over the direct run of the same round.
    pub ratios: Vec<f64>,
}

/// Everything the run measured.
#[derive(Debug, Default)]
pub struct Results {
    /// Frame size of the throughput runs, bytes.
    pub throughput_frame: usize,
    /// (direct, relay), medians of the rounds.
    pub throughput: Option<(Throughput, Throughput)>,
    /// Every path of the throughput run, in the report's order, with the
    /// median of its rounds and every round's ratio of that round's direct run.
    pub throughput_paths: Vec<ThroughputPath>,
    /// Rounds of the throughput run.
    pub throughput_rounds: usize,
    /// One row per frame size.
    pub latency: Vec<LatencyRow>,
    /// One row per number of calls.
    pub calls: Vec<CallsRow>,
    /// Idle clients.
    pub idle: Option<Idle>,
    /// (drop policy on, `--no-drop-policy`).
    pub slow: Option<(Slow, Slow)>,
    /// Binary size and idle RSS.
    pub size: Option<Size>,
    /// TLS against plain text through one server.
    pub tls: Option<TlsCost>,
    /// The real-call benchmark, or why it was not measured.
    pub real_call: RealCall,
    /// Calls over emulated links, adaptive against `--no-adapt`.
    pub links: Links,
    /// Group calls against two-party calls.
    pub rooms: Option<crate::rooms::Rooms>,
    /// A real four-party call against a two-party one.
    pub group_call: crate::groupcall::GroupCall,
    /// The sender's CPU for one encoding against two (simulcast).
    pub simulcast: crate::simulcast::Simulcast,
    /// NATS against Redis as the cluster's message broker.
    pub bus: crate::bus::Bus,
    /// Calls across the nodes of a cluster against calls on one node.
    pub cluster: crate::cluster::Cluster,
    /// Every server command line started, in order.
    pub commands: Vec<String>,
    /// Instruments that failed, with the error.
    pub broken: Vec<String>,
    /// How long the whole run took.
    pub elapsed: Duration,
}

fn wanted(args: &Args, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|o| o == name)
}

/// Runs every benchmark `args` asks for.
///
/// # Errors
/// Never for a failing benchmark (it is recorded as broken); only for setup errors.
pub fn all(args: &Args) -> anyhow::Result<Results> {
    let started = Instant::now();
    let mut r = Results::default();
    let smoke = args.smoke;
    let step = |name: &str, r: &mut Results, f: &mut dyn FnMut(&mut Results) -> anyhow::Result<()>| {
        if !wanted(args, name) {
            return;
        }
        eprintln!("bench: {name} ...");
        let t = Instant::now();
        if let Err(e) = f(r) {
            eprintln!("bench: {name}: BROKEN: {e:#}");
            r.broken.push(format!("{name}: {e:#}"));
        } else {
            eprintln!("bench: {name}: done in {:.1} s", t.elapsed().as_secs_f64());
        }
    };
    step("size", &mut r, &mut |r| size(args, r));
    step("throughput", &mut r, &mut |r| run_throughput(args, smoke, r));
    step("latency", &mut r, &mut |r| run_latency(args, smoke, r));
    step("calls", &mut r, &mut |r| run_calls(args, smoke, r));
    step("tls", &mut r, &mut |r| run_tls(args, smoke, r));
    step("idle", &mut r, &mut |r| {
        let levels: &[usize] = if smoke { &[50] } else { &[1000, 2000, 3000] };
        let idle = idle::run(&args.server, levels)?;
        r.commands.push(idle.command.clone());
        r.idle = Some(idle);
        Ok(())
    });
    step("slow", &mut r, &mut |r| run_slow(args, smoke, r));
    step("call", &mut r, &mut |r| {
        r.real_call = realcall::run(&args.client, &args.server, smoke)?;
        Ok(())
    });
    step("rooms", &mut r, &mut |r| {
        let rooms = crate::rooms::run(args, smoke)?;
        r.commands.extend(rooms.commands.iter().cloned());
        r.rooms = Some(rooms);
        Ok(())
    });
    step("group-call", &mut r, &mut |r| {
        r.group_call = crate::groupcall::run(&args.client, &args.server, smoke)?;
        Ok(())
    });
    step("simulcast", &mut r, &mut |r| {
        r.simulcast = crate::simulcast::run(smoke)?;
        Ok(())
    });
    step("cluster", &mut r, &mut |r| {
        r.cluster = crate::cluster::run(&args.server, smoke)?;
        Ok(())
    });
    step("bus", &mut r, &mut |r| {
        r.bus = crate::bus::run(smoke)?;
        Ok(())
    });
    step("links", &mut r, &mut |r| {
        r.links = links::run(&args.client, &args.server, smoke, &args.link_cases)?;
        if let Links::Measured { server, .. } = &r.links {
            r.commands.push(server.clone());
        }
        r.broken.extend(r.links.failures());
        Ok(())
    });
    r.elapsed = started.elapsed();
    Ok(r)
}

impl Results {
    /// The step case's plot, when it ran in both modes.
    pub fn step_plot(&self) -> Option<String> {
        let Links::Measured { cases, .. } = &self.links else { return None };
        cases.iter().find(|c| c.case == links::Case::Step).and_then(crate::linkplot::step_svg)
    }
}

fn start(args: &Args, extra: &[&str], r: &mut Results) -> anyhow::Result<Server> {
    let mut flags = LOAD_FLAGS.to_vec();
    flags.extend_from_slice(extra);
    let server = Server::start(&args.server, &flags)?;
    r.commands.push(server.command.clone());
    Ok(server)
}

fn size(args: &Args, r: &mut Results) -> anyhow::Result<()> {
    let built = std::fs::metadata(&args.server)?.len();
    let tmp = std::env::temp_dir().join(format!("komunikator-server-stripped-{}", std::process::id()));
    std::fs::copy(&args.server, &tmp)?;
    let status = std::process::Command::new("strip").arg(&tmp).status().context("running strip")?;
    anyhow::ensure!(status.success(), "strip failed");
    let stripped = std::fs::metadata(&tmp)?.len();
    let _ = std::fs::remove_file(&tmp);
    let server = Server::start(&args.server, &[])?;
    r.commands.push(server.command.clone());
    std::thread::sleep(Duration::from_millis(500));
    let s = server.sample()?;
    r.size = Some(Size { built, stripped, idle_rss: s.rss_kib, idle_threads: s.threads });
    Ok(())
}

fn run_throughput(args: &Args, smoke: bool, r: &mut Results) -> anyhow::Result<()> {
    let frame = 1 << 20;
    let (warm, measure, rounds) = if smoke {
        (Duration::from_millis(200), Duration::from_millis(500), 1)
    } else {
        (Duration::from_secs(1), Duration::from_secs(3), 3)
    };
    r.throughput_frame = frame;
    r.throughput_rounds = rounds;
    let plain = start(args, &[], r)?;
    let spliced = start(args, &["--splice"], r)?;
    let servers = [("Through komunikator-server", &plain), ("Through komunikator-server --splice", &spliced)];
    let references = [Reference::Copy, Reference::Splice];
    // Rounds interleave the paths, so a noisy neighbour hits all of them alike.
    let labels = std::iter::once("Direct loopback TCP")
        .chain(references.iter().map(|k| k.label()))
        .chain(servers.iter().map(|(l, _)| *l));
    let mut runs: Vec<(String, Vec<Throughput>)> = labels.map(|l| (l.to_owned(), Vec::new())).collect();
    for _ in 0..rounds {
        let mut i = 0;
        let mut record = |t: Throughput| {
            runs[i].1.push(t);
            i += 1;
        };
        record(throughput::run(net::direct_pairs(1, None)?.remove(0), frame, warm, measure, &|| None)?);
        for kind in references {
            let (pair, relay) = reference::pair(kind)?;
            let t = throughput::run(pair, frame, warm, measure, &|| None)?;
            relay.join().map_err(|_| anyhow::anyhow!("the reference relay panicked"))??;
            record(t);
        }
        for (_, server) in servers {
            let pair = net::calls(server.addr, 1, None)?.remove(0);
            record(throughput::run(pair, frame, warm, measure, &|| server.sample().ok())?);
        }
    }
    let direct: Vec<f64> = runs[0].1.iter().map(|t| t.bytes_per_s).collect();
    anyhow::ensure!(runs.iter().all(|(_, ts)| ts.iter().all(|t| t.bytes_per_s > 0.0)), "no bytes arrived");
    r.throughput_paths = runs
        .into_iter()
        .map(|(label, ts)| {
            let ratios = ts.iter().zip(&direct).map(|(t, d)| t.bytes_per_s / d).collect();
            let mut sorted = ts.clone();
            sorted.sort_by(|a, b| a.bytes_per_s.total_cmp(&b.bytes_per_s));
            ThroughputPath { label, median: sorted[sorted.len() / 2], ratios }
        })
        .collect();
    let direct = r.throughput_paths[0].median;
    let relay = r.throughput_paths[references.len() + 1].median;
    r.throughput = Some((direct, relay));
    Ok(())
}

fn one_way(flow: Flow, smoke: bool) -> Plan {
    Plan {
        flows: vec![flow],
        both_ways: false,
        warmup: Duration::from_millis(if smoke { 200 } else { 1000 }),
        measure: Duration::from_millis(if smoke { 1000 } else { 10_000 }),
        senders: 1,
        receivers: 1,
    }
}

pub fn checked(o: Outcome, what: &str) -> anyhow::Result<Load> {
    anyhow::ensure!(o.received[0] + o.received[1] > 0, "{what}: no frame arrived");
    Ok(Load::of(o))
}

fn run_latency(args: &Args, smoke: bool, r: &mut Results) -> anyhow::Result<()> {
    let server = start(args, &[], r)?;
    for (size, kind) in [(100, MediaKind::Audio), (20_000, MediaKind::Video)] {
        let rate = 200.0;
        let plan = one_way(Flow { kind, min: size, max: size, per_s: rate, key_every: 1 }, smoke);
        let direct = checked(engine::run(net::direct_pairs(1, None)?, &plan, &|| None)?, "direct")?;
        let pairs = net::calls(server.addr, 1, None)?;
        let relay = checked(engine::run(pairs, &plan, &|| server.sample().ok())?, "relay")?;
        r.latency.push(LatencyRow { size, rate, direct, relay });
    }
    Ok(())
}

fn run_calls(args: &Args, smoke: bool, r: &mut Results) -> anyhow::Result<()> {
    let levels = if !args.calls.is_empty() {
        args.calls.clone()
    } else if smoke {
        vec![2]
    } else {
        vec![10, 100, 250, 500]
    };
    let plan = Plan::calls(smoke);
    for calls in levels {
        eprintln!("bench: calls: {calls} ...");
        let direct = checked(engine::run(net::direct_pairs(calls, None)?, &plan, &|| None)?, "direct")?;
        let server = start(args, &[], r)?;
        std::thread::sleep(Duration::from_millis(200));
        let empty: Sample = server.sample()?;
        let pairs = net::calls(server.addr, calls, None)?;
        let relay = checked(engine::run(pairs, &plan, &|| server.sample().ok())?, "relay")?;
        r.calls.push(CallsRow { calls, direct, relay, server_rss_empty: empty.rss_kib });
    }
    Ok(())
}

fn run_slow(args: &Args, smoke: bool, r: &mut Results) -> anyhow::Result<()> {
    let (slow_for, fast_for) = if smoke {
        (Duration::from_secs(2), Duration::from_secs(1))
    } else {
        (Duration::from_secs(30), Duration::from_secs(10))
    };
    let mut one = |extra: &[&str]| -> anyhow::Result<Slow> {
        let mut server = start(args, extra, r)?;
        let pair = net::calls(server.addr, 1, Some(slow::RCVBUF))?.remove(0);
        let out = slow::run(pair, slow_for, fast_for)?;
        anyhow::ensure!(server.alive(), "the server died");
        anyhow::ensure!(out.audio.1 > 0, "no audio arrived");
        Ok(out)
    };
    let policy = one(&[])?;
    let naive = one(&["--no-drop-policy"])?;
    r.slow = Some((policy, naive));
    Ok(())
}

fn run_tls(args: &Args, smoke: bool, r: &mut Results) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("komunikator-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = tls_with(args, smoke, &dir, r);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tls_with(args: &Args, smoke: bool, dir: &std::path::Path, r: &mut Results) -> anyhow::Result<()> {
    let server = Server::start_tls(&args.server, dir, &LOAD_FLAGS)?;
    r.commands.push(server.command.clone());
    let (bulk, lat) = if smoke {
        let short = (Duration::from_millis(200), Duration::from_millis(500));
        (short, short)
    } else {
        ((Duration::from_secs(1), Duration::from_secs(5)), (Duration::from_secs(1), Duration::from_secs(10)))
    };
    let frame = 1 << 20;
    let probe = || server.sample().ok();
    let mut t = TlsCost { frame, rate: 200.0, ..TlsCost::default() };
    let plain = tlscost::throughput(server.addr, Mode::Plain, frame, bulk, &probe)?;
    let tls = tlscost::throughput(server.addr, Mode::Tls, frame, bulk, &probe)?;
    anyhow::ensure!(plain.bytes_per_s > 0.0 && tls.bytes_per_s > 0.0, "no bytes arrived");
    t.throughput = Some((plain, tls));
    for size in [100, 20_000] {
        let plain = tlscost::latency(server.addr, Mode::Plain, size, t.rate, lat)?;
        let tls = tlscost::latency(server.addr, Mode::Tls, size, t.rate, lat)?;
        t.latency.push((size, plain, tls));
    }
    r.tls = Some(t);
    Ok(())
}
