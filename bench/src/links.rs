//! Calls over emulated links: real headless calls (the real server, two
//! `komunikator --headless --plaintext` clients on test sources) with one
//! client behind the link emulator (`komunikator_linkem::Link`, user-space
//! shaper, docs/LINKEM.md), each case run twice in the same run: adaptive
//! (the default) and `--no-adapt` (a fixed bitrate and picture, one FIFO
//! send queue: the client before issue 12). Besides both clients' final
//! JSON lines, the bench samples the link's counters every 200 ms and times
//! every media frame arriving at the receiver with a [`Tap`].
//!
//! Threads: the calling thread starts the processes and samples the link;
//! the link emulator and the tap run their own threads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use komunikator_linkem::{Backend, Dir, DirStats, Link, LinkSpec, Shape};

use crate::procfs::Server;
use crate::realcall::{Reaper, media_flags};
use crate::tap::{Arrival, Tap, wall_ms};

/// How often the link's counters are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// The emulated-link cases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The caller's uplink at 500 kbit/s.
    Uplink,
    /// The callee's downlink at 500 kbit/s.
    Downlink,
    /// The caller's uplink steps 2000 → 300 → 2000 kbit/s.
    Step,
    /// 100 ms one-way delay both ways at 2000 kbit/s, on the caller's link.
    Delay,
    /// No link: both clients on loopback.
    Loopback,
}

/// When the step case's rate falls, and rises again (link time).
pub const STEP_AT: (f64, f64) = (20.0, 40.0);
/// The step case's rates, kbit/s: before and after, and in between.
pub const STEP_KBPS: (u32, u32) = (2000, 300);

impl Case {
    /// Every case.
    pub const ALL: [Case; 5] = [Case::Uplink, Case::Downlink, Case::Step, Case::Delay, Case::Loopback];

    /// Its name on the command line (`--link-cases`).
    pub fn name(self) -> &'static str {
        match self {
            Case::Uplink => "uplink",
            Case::Downlink => "downlink",
            Case::Step => "step",
            Case::Delay => "delay",
            Case::Loopback => "loopback",
        }
    }

    /// How the report names it.
    pub fn title(self) -> &'static str {
        match self {
            Case::Uplink => "Caller uplink 500 kbit/s",
            Case::Downlink => "Callee downlink 500 kbit/s",
            Case::Step => "Step on the caller's uplink: 2000 → 300 (t=20 s) → 2000 kbit/s (t=40 s)",
            Case::Delay => "100 ms one-way delay both ways, 2000 kbit/s both ways",
            Case::Loopback => "Fast loopback (no link)",
        }
    }

    /// The link's shape, or `None` for loopback.
    pub fn spec(self) -> Option<LinkSpec> {
        let (hi, lo) = STEP_KBPS;
        let two = Shape::kbps(2000).with_delay(Duration::from_millis(100));
        match self {
            Case::Uplink => Some(LinkSpec { up: Shape::kbps(500), down: Shape::unlimited() }),
            Case::Downlink => Some(LinkSpec { up: Shape::unlimited(), down: Shape::kbps(500) }),
            Case::Step => Some(LinkSpec {
                up: Shape::kbps(hi)
                    .then_at(Duration::from_secs_f64(STEP_AT.0), lo)
                    .then_at(Duration::from_secs_f64(STEP_AT.1), hi),
                down: Shape::unlimited(),
            }),
            Case::Delay => Some(LinkSpec { up: two.clone(), down: two }),
            Case::Loopback => None,
        }
    }

    /// Whether the callee (not the caller) dials through the link.
    pub fn callee_behind_link(self) -> bool {
        self == Case::Downlink
    }

    /// The link direction that carries the caller's media to the callee.
    pub fn dir(self) -> Dir {
        if self.callee_behind_link() { Dir::Down } else { Dir::Up }
    }

    /// The clients' highest video bitrate (`--video-kbps`). On the 2000 kbit/s
    /// links: 1800, above the 70 % of the link the targets ask for, and
    /// small enough that the link carries it with audio and framing, so
    /// `--no-adapt` is today's client on a link that fits it until the step.
    pub fn video_kbps(self) -> u32 {
        match self {
            Case::Step | Case::Delay => 1800,
            _ => 1000,
        }
    }
}

/// A point of a sender's `video_rate` timeline.
#[derive(Debug, Clone, Default)]
pub struct RatePt {
    /// Seconds since the link started (loopback: since the caller started).
    pub t_s: f64,
    /// The encoder's bitrate, kbit/s.
    pub kbps: f64,
    /// Picture as `WxH@FPS`.
    pub picture: String,
    /// What limited it.
    pub limit: String,
}

/// One client's final JSON line, the fields this section uses.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// Seconds in the call.
    pub call_s: f64,
    /// Capture-to-decode latency of the video it received, p50 and p95, ms.
    pub latency: (Option<f64>, Option<f64>),
    /// Capture-to-playout age of the audio it received, p50 and p95, ms.
    pub audio_age: (Option<f64>, Option<f64>),
    /// Pictures decoded.
    pub frames_decoded: u64,
    /// Encoded frames sent, raw pictures skipped before the encoder, encoded frames dropped.
    pub frames: (u64, u64, u64),
    /// Video and audio payload bytes sent.
    pub bytes_sent: (u64, u64),
    /// Audio packets sent and decoded.
    pub audio: (u64, u64),
    /// The `video_rate` timeline.
    pub rate: Vec<RatePt>,
    /// The H.264 encoder it used.
    pub encoder: String,
}

impl Side {
    fn parse(line: &str, t0_ms: f64) -> anyhow::Result<Side> {
        let v: serde_json::Value = serde_json::from_str(line).context("a client's JSON line")?;
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let rate = v.get("video_rate").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        let rate = rate
            .iter()
            .map(|p| {
                let n = |k: &str| p.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                RatePt {
                    t_s: (n("at_ms") - t0_ms) / 1000.0,
                    kbps: n("kbps"),
                    picture: format!("{}x{}@{}", n("width"), n("height"), n("fps")),
                    limit: p.get("limit").and_then(|l| l.as_str()).unwrap_or("?").to_owned(),
                }
            })
            .collect();
        Ok(Side {
            call_s: f("call_seconds").context("no call_seconds")?,
            latency: (f("latency_ms_p50"), f("latency_ms_p95")),
            audio_age: (f("audio_age_ms_p50"), f("audio_age_ms_p95")),
            frames_decoded: u("video_frames_decoded"),
            frames: (u("video_frames_sent"), u("video_frames_skipped"), u("video_frames_dropped")),
            bytes_sent: (u("video_bytes_sent"), u("audio_bytes_sent")),
            audio: (u("audio_packets_sent"), u("audio_packets_decoded")),
            rate,
            encoder: v.get("video_encoder").and_then(|e| e.as_str()).unwrap_or("?").to_owned(),
        })
    }

    /// Mean send rate over the call, video and audio payload, kbit/s.
    pub fn send_kbps(&self) -> f64 {
        if self.call_s <= 0.0 {
            0.0
        } else {
            (self.bytes_sent.0 + self.bytes_sent.1) as f64 * 8.0 / 1000.0 / self.call_s
        }
    }

    /// Decoded pictures per call second.
    pub fn fps(&self) -> f64 {
        if self.call_s <= 0.0 { 0.0 } else { self.frames_decoded as f64 / self.call_s }
    }
}

/// A sample of the link's counters for the shaped direction.
#[derive(Debug, Clone, Copy)]
pub struct LinkSample {
    /// Seconds since the link started.
    pub t_s: f64,
    /// The counters.
    pub stats: DirStats,
}

/// One call of one case in one mode.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The client that sends on the shaped direction (the caller).
    pub sender: Side,
    /// The client that receives it (the callee).
    pub receiver: Side,
    /// Link counters over time (empty without a link).
    pub samples: Vec<LinkSample>,
    /// Media frames arriving at the receiver; `at_ms` as [`Arrival`], times in the other series are link time.
    pub arrivals: Vec<Arrival>,
    /// Wall-clock ms when the link started (the origin of every `t_s`).
    pub t0_ms: f64,
    /// Client command lines (callee, caller).
    pub commands: Vec<String>,
}

impl Run {
    /// The link's last counters.
    pub fn last(&self) -> Option<DirStats> {
        self.samples.last().map(|s| s.stats)
    }
}

/// One case: the adaptive run and the `--no-adapt` run, or why each failed.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Which case.
    pub case: Case,
    /// Call length asked for, seconds.
    pub seconds: u64,
    /// Adaptive, then `--no-adapt`.
    pub runs: [Result<Run, String>; 2],
}

/// The section's outcome.
#[derive(Debug, Clone, Default)]
pub enum Links {
    /// Not requested in this run.
    #[default]
    NotRun,
    /// Not measured, and why.
    NotMeasured(String),
    /// Measured.
    Measured {
        /// Every case run.
        cases: Vec<CaseResult>,
        /// The client binary used.
        client: PathBuf,
        /// Load average (1/5/15 min) before and after the section.
        load: (String, String),
        /// The server command line.
        server: String,
    },
}

impl Links {
    /// Every run that failed, as `case, mode: error`.
    pub fn failures(&self) -> Vec<String> {
        let Links::Measured { cases, .. } = self else { return Vec::new() };
        let mut out = Vec::new();
        for c in cases {
            for (mode, r) in ["adaptive", "--no-adapt"].iter().zip(&c.runs) {
                if let Err(e) = r {
                    out.push(format!("links: {}, {mode}: {e}", c.case.title()));
                }
            }
        }
        out
    }
}

/// The 1/5/15-minute load averages now.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_default()
}

/// The client to run: `client`, or in a smoke run the debug build next to it
/// when the release build is missing (CI builds only the debug one).
fn pick_client(client: &Path, smoke: bool) -> Option<PathBuf> {
    if client.exists() {
        return Some(client.to_owned());
    }
    let debug = std::env::current_exe().ok()?.parent()?.parent()?.join("debug").join("komunikator");
    (smoke && debug.exists()).then_some(debug)
}

/// Runs the cases named in `only` (none: every case; smoke: the uplink case
/// only, 8 s), adaptive and `--no-adapt` each.
///
/// # Errors
/// When `only` names no case, or the temporary directory cannot be made;
/// failed runs are recorded in the result.
pub fn run(client: &Path, server: &Path, smoke: bool, only: &[String]) -> anyhow::Result<Links> {
    let chosen: Vec<Case> = if only.is_empty() {
        if smoke { vec![Case::Uplink] } else { Case::ALL.to_vec() }
    } else {
        let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
        for o in only {
            anyhow::ensure!(names.contains(&o.as_str()), "no link case {o:?} (cases: {})", names.join(", "));
        }
        Case::ALL.into_iter().filter(|c| only.iter().any(|o| o == c.name())).collect()
    };
    let Some(client) = pick_client(client, smoke) else {
        return Ok(Links::NotMeasured(format!(
            "`{}` does not exist (scripts/bench builds it for the full run)",
            client.display()
        )));
    };
    let seconds = if smoke { 8 } else { 60 };
    let dir = std::env::temp_dir().join(format!("komunikator-bench-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let before = loadavg();
    let mut out = Vec::new();
    let mut command = String::new();
    for case in chosen {
        let mut one = |adapt: bool| {
            eprintln!(
                "bench: links: {} ({}) ...",
                case.title(),
                if adapt { "adaptive" } else { "--no-adapt" }
            );
            call(&client, server, case, adapt, seconds, &dir, &mut command).map_err(|e| format!("{e:#}"))
        };
        let runs = [one(true), one(false)];
        out.push(CaseResult { case, seconds, runs });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Links::Measured { cases: out, client, load: (before, loadavg()), server: command })
}

fn spawn(client: &Path, args: &[String], dir: &Path) -> anyhow::Result<Reaper> {
    let child: Child = Command::new(client)
        .args(args)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the client")?;
    Ok(Reaper(child))
}

fn client_args(addr: &str, case: Case, adapt: bool, role: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["--headless", "--plaintext", "--server", addr].map(String::from).to_vec();
    a.extend(media_flags().into_iter().map(String::from));
    a.extend(["--video-kbps".to_owned(), case.video_kbps().to_string()]);
    if !adapt {
        a.push("--no-adapt".into());
    }
    a.extend(role.iter().map(|s| (*s).to_owned()));
    a
}

/// One call: a fresh server, the link, the tap, the callee, then the caller.
fn call(
    client: &Path,
    server_bin: &Path,
    case: Case,
    adapt: bool,
    seconds: u64,
    dir: &Path,
    command: &mut String,
) -> anyhow::Result<Run> {
    let server = Server::start(server_bin, &[])?;
    command.clone_from(&server.command);
    let start_link = |spec: &LinkSpec| Link::start(server.addr, spec, Backend::UserSpace).context("the link");
    let spec = case.spec();
    // The callee is behind the link (downlink case) or dials the server; the tap sits right in front of it.
    let callee_link = match (&spec, case.callee_behind_link()) {
        (Some(s), true) => Some(start_link(s)?),
        _ => None,
    };
    let tap = Tap::start(callee_link.as_ref().map_or(server.addr, Link::client_addr))?;
    let mut run = Run::default();
    let callee_args = client_args(&tap.addr().to_string(), case, adapt, &["--name", "callee", "--answer"]);
    let mut callee = spawn(client, &callee_args, dir)?;
    std::thread::sleep(Duration::from_millis(1500));
    // The caller's link starts now, so its schedule counts from the caller's start.
    let caller_link = match (&spec, case.callee_behind_link()) {
        (Some(s), false) => Some(start_link(s)?),
        _ => None,
    };
    let link = caller_link.as_ref().or(callee_link.as_ref());
    run.t0_ms = wall_ms() - link.map_or(0.0, |l| l.elapsed().as_secs_f64() * 1000.0);
    let caller_addr = caller_link.as_ref().map_or(server.addr, Link::client_addr).to_string();
    let duration = seconds.to_string();
    let caller_args = client_args(
        &caller_addr,
        case,
        adapt,
        &["--name", "caller", "--call", "callee", "--duration", &duration],
    );
    let mut caller = spawn(client, &caller_args, dir)?;
    run.commands =
        [callee_args, caller_args].iter().map(|a| format!("{} {}", client.display(), a.join(" "))).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds + 40);
    while matches!(caller.0.try_wait(), Ok(None)) && Instant::now() < deadline {
        if let Some(l) = link {
            run.samples.push(LinkSample { t_s: l.elapsed().as_secs_f64(), stats: l.stats(case.dir()) });
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let caller_line = caller.finish(deadline)?;
    let callee_line = callee.finish(deadline + Duration::from_secs(10))?;
    run.sender = Side::parse(&caller_line, run.t0_ms)?;
    run.receiver = Side::parse(&callee_line, run.t0_ms)?;
    anyhow::ensure!(run.sender.call_s > 0.5, "the call did not run: {caller_line}");
    if let Some(l) = link {
        run.samples.push(LinkSample { t_s: l.elapsed().as_secs_f64(), stats: l.stats(case.dir()) });
    }
    run.arrivals = tap.arrivals();
    Ok(run)
}
