//! The real group call: four headless GStreamer clients (`komunikator
//! --headless --group`) on test sources in one call through the server,
//! against a two-party call of the same clients and media in the same run.
//! Each client measures the capture-to-decode latency of every other
//! party's video, from its own receiving pipelines; the report shows the
//! median of the receivers' medians and the worst receiver's p95.
//!
//! Threads: the calling thread starts the processes and waits for them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::procfs::Server;
use crate::realcall::Reaper;

/// Smaller than the two-party benchmark's 640x480@30: four clients encode
/// once and decode three times each on the same two cores.
const SIZE: &str = "320x240";
const FPS: &str = "15";

/// One call's figures, over every (receiver, sender) pair.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// People in the call.
    pub parties: usize,
    /// Median over the pairs of the capture-to-decode p50, ms.
    pub p50: f64,
    /// The worst pair's p95, ms.
    pub p95: f64,
    /// The lowest pictures-per-second any receiver decoded of any sender.
    pub fps: f64,
    /// Pairs measured.
    pub pairs: usize,
}

/// The group-call benchmark's outcome.
#[derive(Debug, Clone, Default)]
pub enum GroupCall {
    /// Not requested.
    #[default]
    NotRun,
    /// Not measured, and why.
    NotMeasured(String),
    /// Two-party then four-party.
    Measured {
        /// The rows.
        rows: Vec<Row>,
        /// Call length, seconds.
        seconds: u64,
        /// Command lines.
        commands: Vec<String>,
    },
}

/// Runs a two-party and a four-party call with `client` through `server`.
///
/// # Errors
/// When the client exists but a call cannot be run.
pub fn run(client: &Path, server: &Path, smoke: bool) -> anyhow::Result<GroupCall> {
    if let Some(why) = crate::realcall::absent(client) {
        return Ok(GroupCall::NotMeasured(why));
    }
    let seconds = if smoke { 4 } else { 15 };
    let dir = std::env::temp_dir().join(format!("komunikator-bench-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut commands = Vec::new();
    let mut rows = Vec::new();
    for parties in [2, 4] {
        let row = call(client, server, &dir, (parties, seconds), &mut commands);
        match row {
            Ok(row) => rows.push(row),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.context(format!("the {parties}-party call")));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(GroupCall::Measured { rows, seconds, commands })
}

/// One call of `parties` people lasting `seconds`: p0 calls p1 and invites the rest.
fn call(
    client: &Path,
    server: &Path,
    dir: &Path,
    (parties, seconds): (usize, u64),
    commands: &mut Vec<String>,
) -> anyhow::Result<Row> {
    let server = Server::start(server, &[])?;
    commands.push(server.command.clone());
    let addr = server.addr.to_string();
    let spawn = |args: Vec<String>| -> anyhow::Result<(Reaper, String)> {
        let mut all = vec!["--headless".to_owned(), "--plaintext".into(), "--server".into(), addr.clone()];
        all.extend(crate::realcall::media_flags_at(SIZE, FPS).into_iter().map(str::to_owned));
        all.extend(args);
        let child = Command::new(client)
            .args(&all)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the client")?;
        Ok((Reaper(child), format!("{} {}", client.display(), all.join(" "))))
    };
    let stay = (seconds + 5).to_string();
    let mut clients = Vec::new();
    for p in 1..parties {
        let args = ["--name", &format!("p{p}"), "--answer", "--group", "--duration", &stay];
        clients.push(spawn(args.iter().map(|s| (*s).to_owned()).collect())?);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut caller = vec!["--name".to_owned(), "p0".into(), "--call".into(), "p1".into()];
    for p in 2..parties {
        caller.extend(["--invite".to_owned(), format!("p{p}")]);
    }
    caller.extend(["--group".to_owned(), "--duration".into(), seconds.to_string()]);
    clients.insert(0, spawn(caller)?);
    commands.extend(clients.iter().map(|(_, c)| c.clone()));
    let deadline = Instant::now() + Duration::from_secs(seconds + 40);
    let mut pairs = Vec::new();
    for (reaper, _) in &mut clients {
        let line = reaper.finish(deadline)?;
        let json: Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
        pairs.extend(received(&json)?);
    }
    anyhow::ensure!(pairs.len() == parties * (parties - 1), "{} pairs measured", pairs.len());
    let mut p50s: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    p50s.sort_by(f64::total_cmp);
    Ok(Row {
        parties,
        p50: p50s[p50s.len() / 2],
        p95: pairs.iter().map(|p| p.1).fold(0.0, f64::max),
        fps: pairs.iter().map(|p| p.2).fold(f64::INFINITY, f64::min),
        pairs: pairs.len(),
    })
}

/// (p50 ms, p95 ms, decoded pictures/s) of each party a client received:
/// its first party at the top level, the others in `parties`.
fn received(json: &Value) -> anyhow::Result<Vec<(f64, f64, f64)>> {
    let seconds = json["call_seconds"].as_f64().filter(|s| *s > 0.5).context("the call did not run")?;
    let one = |v: &Value| -> anyhow::Result<(f64, f64, f64)> {
        let f = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {v}"));
        Ok((f("latency_ms_p50")?, f("latency_ms_p95")?, f("video_frames_decoded")? / seconds))
    };
    let mut out = vec![one(json)?];
    for party in json["parties"].as_array().into_iter().flatten() {
        out.push(one(party)?);
    }
    Ok(out)
}

/// The report's section.
pub fn render(s: &mut String, g: &GroupCall) {
    let _ = writeln!(s, "## 12. A real group call (four headless GStreamer clients)\n");
    let (rows, seconds, commands) = match g {
        GroupCall::NotRun => return,
        GroupCall::NotMeasured(why) => {
            let _ = writeln!(s, "**Not measured.** {why}.\n");
            return;
        }
        GroupCall::Measured { rows, seconds, commands } => (rows, seconds, commands),
    };
    let _ = writeln!(
        s,
        "`komunikator --headless --group` clients on test sources (320x240@15, a test pattern and a tone) \
         in one call through the server for {seconds} s: p0 calls p1 and invites the others. Every client \
         measures the capture-to-decode latency of every other party's video from that party's own \
         receiving pipelines (all clients share this machine's clock). The two-party row is the same clients \
         and media in a call of two, in the same run. A four-party call runs four encoders and twelve \
         decoders on this machine's two cores, so part of its latency is CPU, not network. Pictures per \
         second are over the receiver's whole call, so a party that joined a few seconds after it shows \
         fewer than it sent.\n"
    );
    let _ = writeln!(
        s,
        "| People | Pairs measured | Latency p50 (median pair) | Latency p95 (worst pair) | Lowest pictures/s decoded |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} ms | **{:.1} ms** | {:.1} |",
            r.parties, r.pairs, r.p50, r.p95, r.fps
        );
    }
    let _ = writeln!(s, "\nCommands:\n");
    for c in commands {
        let _ = writeln!(s, "    {c}");
    }
    let _ = writeln!(s);
}
