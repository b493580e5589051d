//! Slowloris: 500 connections (from ten loopback addresses, under the
//! per-address cap) each start a line and then send one more byte every
//! 10 s. The server closes each with `error timeout` when `--io-timeout` runs
//! out, and meanwhile a new pair of clients still sets up a call within 1 s.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::{Harness, percentile};
use crate::client::{Client, Rng, call_between};
use crate::server::ms;
use crate::{Mode, Ran};

const CONNECTIONS: usize = 500;
const SOURCES: u8 = 10;
const BYTE_EVERY: Duration = Duration::from_secs(10);
const CALL_BOUND: Duration = Duration::from_secs(1);

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    // Quick mode shortens the deadline; long mode keeps the documented 30 s.
    let io_timeout = match mode {
        Mode::Quick => 2,
        Mode::Long => 30,
    };
    let flag = io_timeout.to_string();
    let h = Harness::start(&["--io-timeout", &flag], 500)?;
    let addr = h.server.addr;
    let mut slow = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (i % SOURCES as usize) as u8));
        slow.push(Client::connect_from(source, addr).with_context(|| format!("slow connection {i}"))?);
    }
    // Every connection starts a line ("pi" of "ping") and never finishes it.
    let started = Instant::now();
    for c in &mut slow {
        c.send_bytes(b"p")?;
    }
    // Meanwhile, a new pair sets up a call.
    let call = Instant::now();
    let mut a = Client::connect(addr)?;
    a.name("slow-a")?;
    let mut b = Client::connect(addr)?;
    b.name("slow-b")?;
    call_between(&mut a, &mut b, "slow-b")?;
    let call_took = call.elapsed();
    ensure!(call_took <= CALL_BOUND, "the call took {call_took:?} to set up during the slowloris");
    // One byte every 10 s until the server closes them.
    let mut next_byte = started + BYTE_EVERY;
    let mut closed_after = Vec::with_capacity(CONNECTIONS);
    let mut timeouts = 0;
    let give_up = started + Duration::from_secs(io_timeout + 15);
    while closed_after.len() < CONNECTIONS {
        ensure!(
            Instant::now() < give_up,
            "{} of {CONNECTIONS} slow connections still open after {:?}",
            CONNECTIONS - closed_after.len(),
            started.elapsed()
        );
        if Instant::now() >= next_byte {
            for c in slow.iter_mut().filter(|c| !c.closed) {
                let _ = c.send_bytes(b"i");
            }
            next_byte += BYTE_EVERY;
        }
        for c in slow.iter_mut().filter(|c| !c.closed) {
            while let Some(m) = c.try_recv(Duration::ZERO) {
                if m.line().starts_with("error timeout") {
                    timeouts += 1;
                }
            }
            if c.closed {
                closed_after.push(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(slow);
    ensure!(timeouts == CONNECTIONS, "only {timeouts} of {CONNECTIONS} got `error timeout` before the close");
    closed_after.sort();
    let first = closed_after[0];
    ensure!(
        first >= Duration::from_secs(io_timeout).saturating_sub(Duration::from_millis(200)),
        "a slow connection was closed after only {first:?}, before the deadline"
    );
    // The call still works after all that.
    a.send_media("video", 1, true, b"still here")?;
    b.wait_for(Duration::from_secs(2), |m| m.line() == "video 1 k 10")?;
    drop((a, b));
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{CONNECTIONS} slow connections (--io-timeout {io_timeout}): all got `error timeout` and were \
         closed {:.1}-{:.1} s after their first byte; a new call was set up in {:.1} ms meanwhile \
         (bound 1000 ms); {checks}",
        first.as_secs_f64(),
        percentile(&closed_after, 1.0).as_secs_f64(),
        ms(call_took),
    )))
}
