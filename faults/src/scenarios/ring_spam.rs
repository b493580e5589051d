//! Ring spam by reconnecting: a caller at 127.0.0.2 opens a connection,
//! rings the victim and hangs up, over and over. The ring limits are kept
//! per source address, so only a handful of `ask`s reach the victim
//! (`--rings-per-pair`, 5 a minute by default), the rest get
//! `error rate-limited`, and a caller from another address still gets
//! through; the victim can also call out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use super::Harness;
use crate::client::{Client, Rng, call_between};
use crate::{Mode, Ran};

/// The default `--rings-per-pair`: a burst of 5 ...
const PER_PAIR: usize = 5;
/// ... then one per 60 / 5 seconds.
const REFILL_SECS: f64 = 12.0;

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let spam_for = match mode {
        Mode::Quick => Duration::from_secs(2),
        Mode::Long => Duration::from_secs(20),
    };
    let h = Harness::start(&[], 50)?;
    let addr = h.server.addr;
    let mut victim = Client::connect(addr)?;
    victim.name("ofiara")?;
    let spammer = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let (mut rings, mut limited, mut asks) = (0, 0, 0);
    let start = Instant::now();
    while start.elapsed() < spam_for {
        let mut c = Client::connect_from(spammer, addr)?;
        c.send("connect ofiara")?;
        let reply = c.recv()?;
        rings += 1;
        limited += usize::from(reply.line().starts_with("error rate-limited"));
        // Gone at once, as the reported attack did; the victim reads as it goes.
        drop(c);
        while let Some(m) = victim.try_recv(Duration::ZERO) {
            asks += usize::from(m.line().starts_with("ask "));
        }
    }
    asks += count_until_pong(&mut victim, "ask ")?;
    // The burst, then one more per 12 s.
    let allowed = PER_PAIR + (start.elapsed().as_secs_f64() / REFILL_SECS) as usize;
    ensure!(asks <= allowed, "{asks} asks reached the victim from one address in {spam_for:?}");
    ensure!(limited + allowed >= rings, "{rings} rings, only {limited} rate-limited");
    // Others still call the victim, and the victim calls out.
    let other = |last| Client::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), addr);
    let mut friend = other(3)?;
    friend.name("przyjaciel")?;
    call_between(&mut friend, &mut victim, "ofiara")?;
    drop(friend);
    victim.expect("stop disconnected")?;
    let mut callee = other(4)?;
    callee.name("ktos")?;
    call_between(&mut victim, &mut callee, "ktos")?;
    drop((victim, callee));
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{rings} reconnect-and-ring rounds from 127.0.0.2 in {spam_for:?}: {asks} asks reached the victim, \
         {limited} got `error rate-limited`; a caller from 127.0.0.3 and the victim itself then set up \
         calls; {checks}"
    )))
}

/// Pings `c` and counts the lines starting with `prefix` that came before the pong.
pub(super) fn count_until_pong(c: &mut Client, prefix: &str) -> Result<usize> {
    c.send("ping")?;
    let mut n = 0;
    loop {
        let m = c.recv()?;
        if m.line() == "pong" {
            return Ok(n);
        }
        n += usize::from(m.line().starts_with(prefix));
    }
}
