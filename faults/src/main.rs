//! `komunikator-faults`: runs the fault and soak scenarios against the built
//! binaries and prints one line per scenario with its measured outcome.
//!
//!   komunikator-faults --quick | --long  [--only NAME] [--seed N]

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use komunikator_faults::{Mode, Verdict};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("komunikator-faults: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut mode = Mode::Quick;
    let mut only = None;
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => mode = Mode::Quick,
            "--long" => mode = Mode::Long,
            "--only" => only = Some(args.next().context("--only needs a scenario name")?),
            "--seed" => seed = Some(args.next().context("--seed needs a number")?.parse().context("--seed")?),
            "-h" | "--help" => {
                println!("usage: komunikator-faults [--quick|--long] [--only NAME] [--seed N]");
                return Ok(ExitCode::SUCCESS);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("komunikator-faults: {} mode, seed {seed}", mode.as_str());
    let started = std::time::Instant::now();
    let outcomes = komunikator_faults::run(mode, only.as_deref(), seed, |o| println!("{o}"));
    let failed = outcomes.iter().filter(|o| o.verdict == Verdict::Fail).count();
    let skipped = outcomes.iter().filter(|o| o.verdict == Verdict::Skip).count();
    println!(
        "komunikator-faults: {} scenarios, {failed} failed, {skipped} skipped, {:.0} s (seed {seed})",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
