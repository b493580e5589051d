//! The group-call benchmark: rooms of several parties through one server,
//! against two-party calls carrying the same frames in the same run (as many
//! frames sent, and as many delivered), and its section of the report.
//!
//! Runs on the bench's main thread, which starts one server per
//! configuration and hands the connections to the load [`engine`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::Args;
use crate::engine::{self, Plan};
use crate::net;
use crate::procfs::Server;
use crate::runs::{LOAD_FLAGS, Load, checked};
use crate::svg::fmt_us;

/// One configuration's figures.
#[derive(Debug, Clone)]
pub struct Row {
    /// What ran, for the table.
    pub what: String,
    /// Parties sending.
    pub senders: usize,
    /// Copies of each frame the server writes.
    pub receivers_each: usize,
    /// Through the server.
    pub load: Load,
}

/// The group-call benchmark's results.
#[derive(Debug, Clone, Default)]
pub struct Rooms {
    /// Rooms of `size` parties, then the two-party baselines.
    pub rows: Vec<Row>,
    /// Every server command line started.
    pub commands: Vec<String>,
}

/// Runs `rooms` rooms of `size` parties (smoke: 2 rooms of 5), then as many
/// two-party calls as send the same frames, then as many as deliver the
/// same frames, each on a fresh server with the same load plan.
///
/// # Errors
/// When a call cannot be set up or an engine run fails.
pub fn run(args: &Args, smoke: bool) -> anyhow::Result<Rooms> {
    let (rooms, size) = if smoke { (2, 5) } else { (50, 5) };
    let plan = Plan::calls(smoke);
    let senders = rooms * size;
    let deliveries = senders * (size - 1);
    let mut out = Rooms::default();
    let configs = [
        (format!("{rooms} rooms of {size}"), senders, size - 1),
        (format!("{} two-party calls (as many frames sent)", senders / 2), senders, 1),
        (format!("{} two-party calls (as many frames delivered)", deliveries / 2), deliveries, 1),
    ];
    for (what, senders, receivers_each) in configs {
        eprintln!("bench: rooms: {what} ...");
        let server = Server::start(&args.server, &LOAD_FLAGS)?;
        out.commands.push(server.command.clone());
        std::thread::sleep(Duration::from_millis(200));
        let groups = if receivers_each > 1 {
            net::rooms(server.addr, rooms, size)?
        } else {
            net::calls(server.addr, senders / 2, None)?.into_iter().map(|(a, b)| vec![a, b]).collect()
        };
        let outcome = engine::run_groups(groups, &plan, &|| server.sample().ok())?;
        out.rows.push(Row { what, senders, receivers_each, load: checked(outcome, "rooms")? });
    }
    Ok(out)
}

/// The report's section on group calls.
pub fn render(s: &mut String, r: &Rooms) {
    let _ = writeln!(s, "## 10. Group calls: rooms against two-party calls\n");
    let _ = writeln!(
        s,
        "Every party sends the traffic of section 3 (30 video frames/s of 5-20 KB, 50 audio packets/s \
         of 100 B); in a room the server writes each frame to every other party. The two-party rows \
         carry, in the same run and through the same generator, as many frames sent, and as many \
         frames delivered, as the rooms. Latency is send-to-receive over all frames in the window; \
         frames sent are counted once per receiver.\n"
    );
    let _ = writeln!(
        s,
        "| Configuration | Sending parties | Copies per frame | p50 | p99 | Audio p99 | Video p99 | Dropped / sent | Server CPU | Server RSS | Generator late p99 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for row in &r.rows {
        let l = &row.load;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | **{}** | {} | {} | {} / {} | {:.0} % | {:.1} MB | {} |",
            row.what,
            row.senders,
            row.receivers_each,
            fmt_us(l.all.p50),
            fmt_us(l.all.p99),
            fmt_us(l.audio.p99),
            fmt_us(l.video.p99),
            l.lost,
            l.sent,
            l.server_cpu,
            l.server_rss as f64 / 1024.0,
            fmt_us(l.late_p99)
        );
    }
    let _ = writeln!(s);
}
