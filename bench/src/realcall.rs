//! The real call: two headless GStreamer clients (`komunikator --headless`)
//! on test sources calling each other through the server (TLS on, as users
//! run it), against a baseline measured in the same run: the client's own
//! sending and receiving pipelines joined into one bare pipeline per medium,
//! no network and no server (`komunikator-bare-pipeline`, see
//! `bench/src/bin/bare.rs`). Both measure video capture-to-decode latency the
//! same way (real-time clock, capture time = base time + running time,
//! taken at the decoder's output).
//!
//! Threads: the calling thread starts the processes and samples `/proc`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procfs::{Sample, Server};

/// Picture size and rate of the call.
const SIZE: &str = "640x480";
const FPS: &str = "30";

/// The outcome of the real-call benchmark.
#[derive(Debug, Clone, Default)]
pub enum RealCall {
    /// Not requested in this run.
    #[default]
    NotRun,
    /// Not measured, and why.
    NotMeasured(String),
    /// Measured.
    Measured(Box<Measured>),
}

/// One client's figures, from its final JSON line and `/proc`.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Capture-to-decode latency of the peer's video, ms.
    pub p50: f64,
    /// The same, 95th percentile.
    pub p95: f64,
    /// Latency samples.
    pub samples: f64,
    /// Video it sent, kbit/s over the call.
    pub video_kbps: f64,
    /// Audio it sent, kbit/s over the call (None: the client has no byte counter).
    pub audio_kbps: Option<f64>,
    /// CPU in the middle of the call, % of one core.
    pub cpu: f64,
    /// The final JSON line.
    pub json: String,
}

/// The bare pipeline's figures.
#[derive(Debug, Clone, Default)]
pub struct Bare {
    /// Capture-to-decode latency, ms.
    pub p50: f64,
    /// The same, 95th percentile.
    pub p95: f64,
    /// Latency samples.
    pub samples: f64,
    /// Encoded video, kbit/s.
    pub video_kbps: f64,
    /// Encoded audio, kbit/s.
    pub audio_kbps: f64,
    /// CPU, % of one core (video and audio, one direction each).
    pub cpu: f64,
    /// Its JSON line.
    pub json: String,
}

/// Everything measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The caller and the callee.
    pub clients: [Client; 2],
    /// The baseline.
    pub bare: Bare,
    /// Call length asked for, seconds.
    pub seconds: u64,
    /// Encoder and decoder the clients chose.
    pub codecs: String,
    /// Command lines (bare pipeline, callee, caller).
    pub commands: Vec<String>,
}

/// Checks for the client and, when it can run headless, runs the call and the baseline.
///
/// # Errors
/// When the client supports `--headless` but the call or the baseline cannot be run.
pub fn run(client: &Path, server: &Path, smoke: bool) -> anyhow::Result<RealCall> {
    if let Some(why) = absent(client) {
        return Ok(RealCall::NotMeasured(why));
    }
    let bare = std::env::current_exe()?.with_file_name("komunikator-bare-pipeline");
    if !bare.exists() {
        return Ok(RealCall::NotMeasured(format!(
            "`{}` does not exist (build komunikator-bench with `--features gst`)",
            bare.display()
        )));
    }
    let seconds = if smoke { 3 } else { 20 };
    let dir = std::env::temp_dir().join(format!("komunikator-bench-call-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(client, server, &bare, &dir, seconds);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|m| RealCall::Measured(Box::new(m)))
}

/// Why a benchmark of real clients cannot run: `client` is not there.
pub fn absent(client: &Path) -> Option<String> {
    (!client.exists()).then(|| {
        format!(
            "`{}` does not exist (scripts/bench builds it for the full run; --smoke does not)",
            client.display()
        )
    })
}

/// The media flags both clients of a benchmark call get (test sources, no sound out).
pub fn media_flags() -> Vec<&'static str> {
    media_flags_at(SIZE, FPS)
}

/// [`media_flags`] with another picture size and rate.
pub fn media_flags_at(size: &'static str, fps: &'static str) -> Vec<&'static str> {
    vec![
        "--video-source",
        "test",
        "--audio-source",
        "test",
        "--audio-output",
        "none",
        "--size",
        size,
        "--fps",
        fps,
    ]
}

fn measure(client: &Path, server: &Path, bare: &Path, dir: &Path, seconds: u64) -> anyhow::Result<Measured> {
    let mut m = Measured { seconds, ..Measured::default() };
    let (video, audio) = bare_pipelines(client)?;
    let out =
        Command::new(bare).args([&seconds.to_string(), &video, &audio]).output().context("bare pipeline")?;
    m.commands.push(format!("{} {seconds} '{video}' '{audio}'", bare.display()));
    let line = last_json(&String::from_utf8_lossy(&out.stdout)).with_context(|| {
        format!("bare pipeline printed no JSON: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    m.bare = Bare {
        p50: num(&line, "latency_ms_p50")?,
        p95: num(&line, "latency_ms_p95")?,
        samples: num(&line, "latency_samples")?,
        video_kbps: num(&line, "video_kbps")?,
        audio_kbps: num(&line, "audio_kbps")?,
        cpu: num(&line, "cpu_percent")?,
        json: line,
    };
    let server = Server::start_tls(server, &dir.join("server"), &[])?;
    m.commands.push(server.command.clone());
    let addr = server.addr.to_string();
    let mut common = vec!["--headless", "--server", &addr];
    common.extend(media_flags());
    let callee_args = [common.as_slice(), &["--name", "callee", "--answer"]].concat();
    let duration = seconds.to_string();
    let caller_args =
        [common.as_slice(), &["--name", "caller", "--call", "callee", "--duration", &duration]].concat();
    let spawn = |args: &[&str]| -> anyhow::Result<Child> {
        Command::new(client)
            .args(args)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the client")
    };
    for args in [&callee_args, &caller_args] {
        m.commands.push(format!("{} {}", client.display(), args.join(" ")));
    }
    let mut callee = Reaper(spawn(&callee_args)?);
    std::thread::sleep(Duration::from_millis(1500));
    let mut caller = Reaper(spawn(&caller_args)?);
    // The call starts within a few seconds; sample CPU in its middle.
    let window = (Duration::from_secs(3), Duration::from_secs(seconds.saturating_sub(2).max(4)));
    let started = Instant::now();
    std::thread::sleep(window.0);
    let pids = [caller.0.id().to_string(), callee.0.id().to_string()];
    let first = [Sample::of(&pids[0])?, Sample::of(&pids[1])?];
    std::thread::sleep(window.1 - window.0);
    let last = [Sample::of(&pids[0]).ok(), Sample::of(&pids[1]).ok()];
    let deadline = started + Duration::from_secs(seconds + 30);
    let lines = [caller.finish(deadline)?, callee.finish(deadline)?];
    for i in 0..2 {
        let line = &lines[i];
        let call_s = num(line, "call_seconds")?;
        anyhow::ensure!(call_s > 0.5, "the call did not run: {line}");
        let kbps = |bytes: f64| bytes * 8.0 / 1000.0 / call_s;
        m.clients[i] = Client {
            p50: num(line, "latency_ms_p50")?,
            p95: num(line, "latency_ms_p95")?,
            samples: num(line, "latency_samples")?,
            video_kbps: kbps(num(line, "video_bytes_sent")?),
            audio_kbps: num(line, "audio_bytes_sent").ok().map(kbps),
            cpu: last[i].as_ref().map_or(0.0, |l| first[i].cpu_percent_until(l)),
            json: line.clone(),
        };
    }
    m.codecs = format!("{} / {}", text(&lines[0], "video_encoder"), text(&lines[0], "video_decoder"));
    Ok(m)
}

/// Kills the child when dropped (a failed run leaves nothing behind).
pub struct Reaper(pub Child);

impl Reaper {
    /// Waits for the child's exit (killing it past `deadline`) and returns its final JSON line.
    pub fn finish(&mut self, deadline: Instant) -> anyhow::Result<String> {
        while matches!(self.0.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                bail!("a client did not end its call in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        if let Some(mut o) = self.0.stdout.take() {
            o.read_to_string(&mut out)?;
        }
        last_json(&out).with_context(|| format!("the client printed no JSON line: {out:?}"))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The client's own pipelines (`--print-pipelines`), each sender joined to its
/// receiver: the appsink and the appsrc give way to an `identity name=encoded`.
fn bare_pipelines(client: &Path) -> anyhow::Result<(String, String)> {
    let out = Command::new(client).arg("--print-pipelines").args(media_flags()).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let section = |name: &str| -> anyhow::Result<String> {
        let mut lines = text.lines().skip_while(|l| l.trim() != format!("# {name}"));
        lines.next();
        lines.next().map(str::to_owned).with_context(|| format!("--print-pipelines has no {name}"))
    };
    let join = |send: String, receive: String| -> anyhow::Result<String> {
        let at = send.find("appsink name=sink").context("no appsink in the sending pipeline")?;
        let end = send[at..].find(" raw. ").map_or(send.len(), |e| at + e);
        let tail = receive
            .split_once("\" ! ")
            .map(|(_, t)| t)
            .context("no appsrc caps in the receiving pipeline")?;
        Ok(format!("{}identity name=encoded ! {tail}{}", &send[..at], &send[end..]))
    };
    Ok((
        join(section("send-video")?, section("receive-video")?)?,
        join(section("send-audio")?, section("receive-audio")?)?,
    ))
}

/// The last line of `out` that looks like a JSON object.
pub fn last_json(out: &str) -> Option<String> {
    out.lines().rev().find(|l| l.trim_start().starts_with('{')).map(|l| l.trim().to_owned())
}

/// The raw text of a top-level field of a flat JSON line.
fn raw<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn num(line: &str, key: &str) -> anyhow::Result<f64> {
    raw(line, key).and_then(|v| v.parse().ok()).with_context(|| format!("no number {key:?} in {line}"))
}

fn text(line: &str, key: &str) -> String {
    raw(line, key).unwrap_or("?").trim_matches('"').to_owned()
}

/// The rows this benchmark adds to the report's table of targets.
pub fn summary_rows(r: &RealCall) -> Vec<String> {
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let RealCall::Measured(m) = r else {
        return vec![
            "| Real call: added p95 latency over a bare pipeline | < 30 ms | not measured (see below) | — |"
                .into(),
        ];
    };
    let worst = m.clients.iter().map(|c| c.p95).fold(0.0, f64::max);
    let added = worst - m.bare.p95;
    let video = m.clients.iter().map(|c| c.video_kbps).fold(0.0, f64::max);
    let mut rows = vec![
        format!(
            "| Real call: added p95 capture-to-decode latency over a bare pipeline | < 30 ms | {added:.1} ms ({worst:.1} vs {:.1} ms) | {} |",
            m.bare.p95,
            yes(added < 30.0)
        ),
        format!(
            "| Real call: video bitrate, 640x480@30 | < 1500 kbit/s | {video:.0} kbit/s | {} |",
            yes(video < 1500.0)
        ),
    ];
    let audio: Vec<f64> = m.clients.iter().filter_map(|c| c.audio_kbps).collect();
    if let (Some(lo), Some(hi)) =
        (audio.iter().copied().reduce(f64::min), audio.iter().copied().reduce(f64::max))
    {
        rows.push(format!(
            "| Real call: audio bitrate | 24-48 kbit/s | {lo:.1}-{hi:.1} kbit/s | {} |",
            yes(lo >= 24.0 && hi <= 48.0)
        ));
    }
    rows
}

/// Renders the real-call section.
pub fn render(s: &mut String, r: &RealCall) {
    let _ = writeln!(s, "## 6. A real call (two headless GStreamer clients)\n");
    let m = match r {
        RealCall::NotRun => {
            let _ = writeln!(s, "**Not measured**: not requested in this run (`--only`).\n");
            return;
        }
        RealCall::NotMeasured(why) => {
            let _ = writeln!(s, "**Not measured.** {why}.\n");
            return;
        }
        RealCall::Measured(m) => m,
    };
    let _ = writeln!(
        s,
        "Two `komunikator --headless` clients on test sources ({SIZE}@{FPS}, videotestsrc and a 440 Hz tone) \
         call each other for {} s through the server, over TLS (the default). Encoder / decoder: {}. Each \
         client measures the capture-to-decode latency of the video it receives: the sender's pipeline runs on \
         the real-time clock, the frame carries its capture time, the receiver subtracts it from the time the \
         decoder hands the picture out. The baseline, run just before in the same run, is the client's own \
         send and receive pipelines (`--print-pipelines`) joined into one bare pipeline per medium, with no \
         appsink/appsrc, no network and no server, measured the same way (`komunikator-bare-pipeline`). \
         Bitrates are encoded payload bytes over the call's length; CPU is `/proc` utime+stime in the middle \
         of the call, % of one core (a client encodes and decodes both media; the bare pipeline does each once, \
         which is the same work).\n",
        m.seconds, m.codecs
    );
    let _ = writeln!(
        s,
        "| Path | Latency p50 | Latency p95 | Samples | **Added p95** | Video sent | Audio sent | CPU |\n|---|---|---|---|---|---|---|---|"
    );
    let b = &m.bare;
    let _ = writeln!(
        s,
        "| Bare pipeline (baseline) | {:.1} ms | {:.1} ms | {:.0} | — | {:.0} kbit/s | {:.1} kbit/s | {:.0} % |",
        b.p50, b.p95, b.samples, b.video_kbps, b.audio_kbps, b.cpu
    );
    for (name, c) in ["Caller (receives the callee's video)", "Callee (receives the caller's video)"]
        .iter()
        .zip(&m.clients)
    {
        let audio = c.audio_kbps.map_or("— (no counter)".into(), |a| format!("{a:.1} kbit/s"));
        let _ = writeln!(
            s,
            "| {name} | {:.1} ms | {:.1} ms | {:.0} | **{:+.1} ms** | {:.0} kbit/s | {audio} | {:.0} % |",
            c.p50,
            c.p95,
            c.samples,
            c.p95 - b.p95,
            c.video_kbps,
            c.cpu
        );
    }
    let _ = writeln!(s, "\nCommands:\n");
    for c in &m.commands {
        let _ = writeln!(s, "    {c}");
    }
    let _ = writeln!(s, "\nFinal JSON lines (bare pipeline, caller, callee):\n");
    for j in [&m.bare.json, &m.clients[0].json, &m.clients[1].json] {
        let _ = writeln!(s, "    {j}");
    }
    let _ = writeln!(s);
}
