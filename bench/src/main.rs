//! `komunikator-bench`: the load generator and benchmark runner for
//! komunikator-server.
//!
//! It starts the server binary it is given on 127.0.0.1, opens clients that
//! speak protocol v1 (name, connect, ask yes, start), sends synthetic frames
//! whose payload starts with a send timestamp, and measures on the receiving
//! side. Every figure has a baseline measured in the same run: the same
//! framing over a direct loopback connection, with no server in between.
//! The results are written as Markdown (BENCHMARKS.md) with an SVG plot.
//!
//! Threads: the main thread runs one benchmark after the other; each starts
//! its own sender and receiver threads (see [`engine`]).

mod bus;
mod busclient;
mod busdir;
mod cluster;
mod engine;
mod groupcall;
mod idle;
mod linkfig;
mod linkplot;
mod links;
mod linksreport;
mod net;
mod procfs;
mod realcall;
mod reference;
mod report;
mod rooms;
mod runs;
mod simulcast;
mod slow;
mod stats;
mod svg;
mod tap;
mod throughput;
mod tlscost;
mod wire;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Benchmarks komunikator-server against direct loopback TCP and writes a report.
#[derive(Debug, Parser)]
#[command(name = "komunikator-bench", version, about)]
pub struct Args {
    /// The server binary to benchmark.
    #[arg(long, default_value = "target/release/komunikator-server")]
    pub server: PathBuf,
    /// The client binary for the real-call benchmark (measured only if it supports --headless).
    #[arg(long, default_value = "target/release/komunikator")]
    pub client: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// Where to write the latency-vs-calls plot.
    #[arg(long, default_value = "docs/bench/latency-vs-calls.svg")]
    pub svg: PathBuf,
    /// The plot's path as the report links it (relative to the report).
    #[arg(long, default_value = "docs/bench/latency-vs-calls.svg")]
    pub svg_link: String,
    /// A few seconds per instrument, to check that every one works.
    #[arg(long)]
    pub smoke: bool,
    /// Run only these benchmarks (comma-separated: throughput, latency, calls, tls, idle, slow, size, call, rooms, group-call, links, simulcast, bus, cluster).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Emulated-link cases to run (uplink, downlink, step, delay, loopback; default: all, --smoke: uplink).
    #[arg(long, value_delimiter = ',')]
    pub link_cases: Vec<String>,
    /// Numbers of simultaneous calls for the load benchmark.
    #[arg(long, value_delimiter = ',')]
    pub calls: Vec<usize>,
    /// The command line to print in the report (set by scripts/bench).
    #[arg(long, default_value = "")]
    pub invoked_as: String,
}

/// The step case's plot, next to the latency-vs-calls plot.
const STEP_PLOT: &str = "links-step.svg";

/// `link` (a path as the report links it) with its file name replaced by `name`.
fn sibling(link: &str, name: &str) -> String {
    match link.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_owned(),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    wire::epoch();
    procfs::raise_fd_limit();
    anyhow::ensure!(args.server.exists(), "no server binary at {}", args.server.display());
    let results = runs::all(&args)?;
    if let Some(dir) = args.svg.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A plot is written only when its benchmark ran (`--only` leaves the others as they were).
    let mut plots = Vec::new();
    if !results.calls.is_empty() {
        plots.push((args.svg.clone(), svg::latency_vs_calls(&results.calls)));
    }
    let step = results.step_plot();
    if let Some(svg) = &step {
        plots.push((args.svg.with_file_name(STEP_PLOT), svg.clone()));
    }
    for (path, svg) in &plots {
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    let step_link = step.map(|_| sibling(&args.svg_link, STEP_PLOT));
    let text = report::render(&args, &results, step_link.as_deref());
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    let written: Vec<String> = plots.iter().map(|(p, _)| p.display().to_string()).collect();
    eprintln!("wrote {} {}", args.out.display(), written.join(" "));
    if let Some(broken) = results.broken.first() {
        anyhow::bail!("instrument broken: {broken}");
    }
    Ok(())
}
