//! Server restart during a call: two real headless clients (`--reconnect`)
//! are in a call when the server is killed with SIGKILL; it comes back on the
//! same port 2.2 s later. Both clients notice at once, retry with doubling
//! backoff, claim their nicks again on their own, and a new call to one of
//! them is set up as soon as they are back.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::Harness;
use crate::client::{Client, Rng};
use crate::headless::{Headless, TEST_MEDIA};
use crate::server::{ServerProc, ms};
use crate::{Mode, Ran};

const DOWN: Duration = Duration::from_millis(2200);
const CALL_BOUND: Duration = Duration::from_secs(1);
/// GStreamer start-up on a loaded machine.
const START: Duration = Duration::from_secs(30);

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let rounds = match mode {
        Mode::Quick => 1,
        Mode::Long => 3,
    };
    let mut first = ServerProc::start(&[])?;
    let port = first.addr.port();
    let addr = first.addr.to_string();
    let with = |extra: &[&'static str]| [TEST_MEDIA, &["--reconnect"], extra].concat();
    let bob_args = with(&["--name", "bob", "--answer", "--duration", "2"]);
    let mut bob = Headless::spawn("bob", &addr, &bob_args)?;
    let t0 = Instant::now();
    bob.wait_line("ready", t0, START)?;
    let ala = Headless::spawn("ala", &addr, &with(&["--name", "ala", "--call", "bob", "--duration", "600"]))?;
    ala.wait_line("call started", t0, START)?;
    bob.wait_line("call started", t0, START)?;
    let mut lines = Vec::new();
    let mut server = None;
    for round in 0..rounds {
        // Let media flow, then pull the plug.
        std::thread::sleep(Duration::from_secs(1));
        let killed = Instant::now();
        match server.take() {
            None => first.kill(),
            Some(h) => drop::<Harness>(h),
        }
        let noticed = [&ala, &bob].map(|c| c.wait_line("reconnecting to", killed, Duration::from_secs(10)));
        let noticed = noticed.into_iter().collect::<Result<Vec<_>>>()?;
        std::thread::sleep(DOWN.saturating_sub(killed.elapsed()));
        let again = ServerProc::start(&["--port", &port.to_string()]).context("restart on the same port")?;
        let back = Instant::now();
        let h = Harness::around(again)?;
        // The baseline must be the server with only its bystander.
        let mut observer = Client::connect(h.server.addr)?;
        let rejoined = wait_rejoined(&mut observer, back)?;
        let attempts = bob.stderr().matches("reconnecting to").count();
        // A call can be placed again at once: the observer calls bob.
        let call = Instant::now();
        observer.send("connect bob")?;
        observer.expect_prefix("calling ")?;
        observer.expect("ask yes")?;
        observer.expect_prefix("start ")?;
        let setup = call.elapsed();
        ensure!(setup <= CALL_BOUND, "round {round}: the call after the restart took {setup:?}");
        observer.wait_for(Duration::from_secs(10), |m| m.line() == "stop hangup")?;
        drop(observer);
        lines.push(format!(
            "round {round}: both noticed within {:.0} ms, rejoined {:.0} ms after the server was back \
             (bob: {attempts} reconnect attempts so far), a new call was set up in {:.1} ms",
            noticed.iter().map(|t| ms(t.duration_since(killed))).fold(0.0, f64::max),
            ms(rejoined),
            ms(setup)
        ));
        if round + 1 < rounds {
            // bob answered the observer and hung up after its --duration,
            // which ends a headless run: the next round needs a new bob in
            // the table before the server is killed again.
            let (status, json) = bob.finish(Duration::from_secs(20))?;
            ensure!(status.success(), "round {round}: bob exited with {status}: {json}");
            bob = Headless::spawn("bob", &addr, &bob_args)?;
            bob.wait_line("ready", Instant::now(), START)?;
            server = Some(h);
        } else {
            return finish(h, ala, bob, lines);
        }
    }
    unreachable!("the last round returns")
}

/// Polls `refresh` until both clients are back with their nicks; returns how long it took.
fn wait_rejoined(observer: &mut Client, since: Instant) -> Result<Duration> {
    loop {
        observer.send("refresh")?;
        let head = observer.expect_prefix("clients ")?;
        let n: usize = head["clients ".len()..].parse()?;
        let mut nicks = Vec::new();
        for _ in 0..n {
            nicks.push(observer.recv()?.line().to_owned());
        }
        if ["ala", "bob"].iter().all(|w| nicks.iter().any(|l| l.ends_with(&format!(" {w}")))) {
            return Ok(since.elapsed());
        }
        ensure!(since.elapsed() < Duration::from_secs(30), "the clients did not come back: {nicks:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(h: Harness, ala: Headless, bob: Headless, lines: Vec<String>) -> Result<Ran> {
    let (bob_status, bob_json) = bob.finish(Duration::from_secs(20))?;
    ensure!(bob_status.success(), "bob exited with {bob_status}");
    ensure!(bob_json["end_reason"] == "hangup", "bob's last call ended with {}", bob_json["end_reason"]);
    ala.terminate();
    let (ala_status, ala_json) = ala.finish(Duration::from_secs(20))?;
    ensure!(ala_status.success(), "ala exited with {ala_status}: {ala_json}");
    let backoff: Vec<String> = ala_json["notices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .filter_map(|n| n.strip_prefix("reconnecting to ").and_then(|r| r.split(" in ").nth(1)))
        .map(|r| r.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{}; ala's waits between attempts (s): {}; both exited 0; {checks}",
        lines.join("; "),
        backoff.join(", ")
    )))
}
