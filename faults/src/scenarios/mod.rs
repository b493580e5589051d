//! The scenarios, in the order they run, and the harness they share.

mod churn;
mod client_side;
mod flood;
mod kill;
mod prelogin;
mod restart;
mod silent;
mod slowloris;

use std::time::Duration;

use anyhow::Result;

use crate::Scenario;
use crate::client::Client;
use crate::server::{Bystander, Metrics, ServerProc};

/// Every scenario.
pub static ALL: &[Scenario] = &[
    Scenario { name: "kill-reset", run: kill::run },
    Scenario { name: "churn", run: churn::run },
    Scenario { name: "slowloris", run: slowloris::run },
    Scenario { name: "flood-one-address", run: flood::run },
    Scenario { name: "prelogin-flood", run: prelogin::run },
    Scenario { name: "silent-peer", run: silent::run },
    Scenario { name: "server-restart", run: restart::run },
    Scenario { name: "garbage-media", run: client_side::garbage_media },
    Scenario { name: "malformed-server", run: client_side::malformed_server },
    Scenario { name: "camera-lost", run: client_side::camera_lost },
];

/// A server with its baseline taken and a bystander pinging it.
pub(crate) struct Harness {
    pub server: ServerProc,
    pub baseline: Metrics,
    bystander: Bystander,
}

impl Harness {
    /// Starts a server with `args`, warms it up with `warm` connections,
    /// connects the bystander, and takes the baseline.
    pub fn start(args: &[&str], warm: usize) -> Result<Harness> {
        let server = ServerProc::start(args)?;
        warm_up(&server, warm)?;
        Harness::around(server)
    }

    /// Takes the baseline of a running server and starts its bystander.
    pub fn around(server: ServerProc) -> Result<Harness> {
        let bystander = Bystander::start(server.addr)?;
        Harness::with_bystander(server, bystander)
    }

    /// Takes the baseline of a running server that `bystander` already pings.
    pub fn with_bystander(server: ServerProc, bystander: Bystander) -> Result<Harness> {
        // Let the bystander's threads start before the baseline is read.
        std::thread::sleep(Duration::from_millis(100));
        let baseline = server.metrics();
        Ok(Harness { server, baseline, bystander })
    }

    /// The common checks: bystander pings, then threads, descriptors and memory back to baseline.
    pub fn finish(self) -> Result<String> {
        let finished = self.bystander.finish()?;
        let pings = finished.pings;
        let after = self.server.settles_to(self.baseline, Duration::from_secs(15))?;
        drop(finished.client);
        Ok(format!(
            "{pings}; baseline {} -> after {} (RSS {:+} KiB)",
            self.baseline,
            after,
            after.rss_kib as i64 - self.baseline.rss_kib as i64
        ))
    }
}

/// Opens `n` connections (from 127.0.3.x, 50 per address), pings on each,
/// closes them and waits for the server's threads to end. Done before the
/// baseline, so the allocator has already grown its per-thread arenas to what
/// the scenario's peak needs: what the baseline check then sees is growth
/// that repeats, which is what a leak looks like (see faults/RESULTS.md).
pub(crate) fn warm_up(server: &ServerProc, n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let before = server.metrics();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let source = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 3, 1 + (i / 50) as u8));
        let mut c = Client::connect_from(source, server.addr)?;
        c.send("ping")?;
        conns.push(c);
    }
    for c in &mut conns {
        c.expect("pong")?;
    }
    drop(conns);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while server.metrics().threads != before.threads || server.metrics().fds != before.fds {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the warm-up connections did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Percentile `q` (0..=1) of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted.get(((sorted.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or_default()
}
