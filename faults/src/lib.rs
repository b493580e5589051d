//! Komunikator's fault and soak suite: scenarios that do to the real
//! `komunikator-server` and `komunikator` binaries what real networks and
//! real people do (kill -9, resets, churn, slowloris, floods, vanished
//! peers, restarts, garbage media, malformed lines), each with its own
//! assertion plus the common ones: a bystander's `ping` still comes back
//! within 100 ms, and the server's threads, descriptors and memory return to
//! their baseline afterwards.
//!
//! Everything runs on the caller's thread, one scenario after another; a
//! scenario may start helper threads (the bystander, load generators) and
//! joins them before it returns. Sockets only go to loopback or to network
//! namespaces a scenario creates and deletes itself.

pub mod client;
pub mod headless;
pub mod scenarios;
pub mod server;

/// Network namespaces, shared with the link emulator.
pub use komunikator_linkem::netns;

use std::time::{Duration, Instant};

use client::Rng;

/// How hard to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A few seconds per scenario, short flag values: runs inside `cargo test`.
    Quick,
    /// The full figures and the documented default timeouts: the release check.
    Long,
}

impl Mode {
    /// `quick` or `long`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Long => "long",
        }
    }
}

/// What a scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// Passed, failed, or skipped (with the reason in `detail`).
    pub verdict: Verdict,
    /// The measured outcome, one line.
    pub detail: String,
    /// How long it ran.
    pub took: Duration,
}

/// A scenario's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every assertion held.
    Pass,
    /// An assertion failed.
    Fail,
    /// The environment does not allow it (for example, no network namespaces).
    Skip,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        write!(f, "{v} {:<18} {:>6.1} s  {}", self.name, self.took.as_secs_f64(), self.detail)
    }
}

/// A scenario's result: the measured outcome, or why it was skipped.
pub enum Ran {
    /// It ran; the text is the measured outcome.
    Done(String),
    /// It could not run here; the text says why.
    Skipped(String),
}

/// One scenario.
pub struct Scenario {
    /// Short name, for `--only` and the report.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Mode, &mut Rng) -> anyhow::Result<Ran>,
}

/// Runs the scenarios whose names contain `only` (all when `None`), printing
/// each outcome as it completes through `report`.
pub fn run(mode: Mode, only: Option<&str>, seed: u64, mut report: impl FnMut(&Outcome)) -> Vec<Outcome> {
    let mut rng = Rng::new(seed);
    let mut outcomes = Vec::new();
    for s in scenarios::ALL.iter().filter(|s| only.is_none_or(|o| s.name.contains(o))) {
        let start = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (s.run)(mode, &mut rng)));
        let (verdict, detail) = match result {
            Ok(Ok(Ran::Done(d))) => (Verdict::Pass, d),
            Ok(Ok(Ran::Skipped(d))) => (Verdict::Skip, d),
            Ok(Err(e)) => (Verdict::Fail, format!("{e:#}")),
            Err(_) => (Verdict::Fail, "panicked".into()),
        };
        let outcome = Outcome { name: s.name, verdict, detail, took: start.elapsed() };
        report(&outcome);
        outcomes.push(outcome);
    }
    outcomes
}
