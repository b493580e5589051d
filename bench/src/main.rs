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

mod engine;
mod idle;
mod net;
mod procfs;
mod realcall;
mod reference;
mod report;
mod runs;
mod slow;
mod stats;
mod svg;
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
    /// Run only these benchmarks (comma-separated: throughput, latency, calls, tls, idle, slow, size, call).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Numbers of simultaneous calls for the load benchmark.
    #[arg(long, value_delimiter = ',')]
    pub calls: Vec<usize>,
    /// The command line to print in the report (set by scripts/bench).
    #[arg(long, default_value = "")]
    pub invoked_as: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    wire::epoch();
    procfs::raise_fd_limit();
    anyhow::ensure!(args.server.exists(), "no server binary at {}", args.server.display());
    let results = runs::all(&args)?;
    let svg = svg::latency_vs_calls(&results.calls);
    if let Some(dir) = args.svg.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.svg, svg).with_context(|| format!("writing {}", args.svg.display()))?;
    let text = report::render(&args, &results);
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {} and {}", args.out.display(), args.svg.display());
    if let Some(broken) = results.broken.first() {
        anyhow::bail!("instrument broken: {broken}");
    }
    Ok(())
}
