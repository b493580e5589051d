//! kill -9, TCP reset or plain close of either party in every state (idle,
//! calling, asked, in call, mid-frame), in random order: the other party gets
//! `stop disconnected` (or, when idle, `presence <id> gone`) within 1 s.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::{Harness, percentile};
use crate::client::{Client, Rng, call_between};
use crate::server::ms;
use crate::{Mode, Ran};

/// The bound on how soon the other party hears of it.
const STOP_BOUND: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Both named, no call; the victim leaves.
    Idle,
    /// The caller leaves while it rings.
    Calling,
    /// The callee leaves while it rings.
    Asked,
    /// One party leaves during the call.
    InCall { caller: bool },
    /// One party leaves halfway through sending a frame.
    MidFrame { caller: bool },
}

const STATES: [State; 7] = [
    State::Idle,
    State::Calling,
    State::Asked,
    State::InCall { caller: true },
    State::InCall { caller: false },
    State::MidFrame { caller: true },
    State::MidFrame { caller: false },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// The process holding the socket is killed with SIGKILL.
    Kill9,
    /// SO_LINGER 0: the kernel sends a reset.
    Reset,
    /// A plain close (FIN).
    Close,
}

pub(super) fn run(mode: Mode, rng: &mut Rng) -> Result<Ran> {
    let n = match mode {
        Mode::Quick => 140,
        Mode::Long => 1000,
    };
    let h = Harness::start(&[], 2)?;
    let mut latencies = Vec::with_capacity(n);
    let mut by_how = [0usize; 3];
    for i in 0..n {
        let state = STATES[rng.below(STATES.len())];
        let how = [How::Kill9, How::Reset, How::Close][rng.below(3)];
        by_how[how as usize] += 1;
        let took = once(&h, i, state, how).with_context(|| format!("round {i}: {state:?}, {how:?}"))?;
        ensure!(took <= STOP_BOUND, "round {i}: {state:?}, {how:?}: the other party heard after {took:?}");
        latencies.push(took);
    }
    latencies.sort();
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{n} rounds ({} kill -9, {} reset, {} close) over 7 state/party cases: stop always arrived, \
         median {:.1} ms, p99 {:.1} ms, max {:.1} ms (bound 1000 ms); {checks}",
        by_how[0],
        by_how[1],
        by_how[2],
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    )))
}

/// One round: sets up `state`, ends the victim `how`, and returns how long
/// until the other party was told.
fn once(h: &Harness, i: usize, state: State, how: How) -> Result<Duration> {
    let addr = h.server.addr;
    let (na, nb) = (format!("k{i}a"), format!("k{i}b"));
    let mut a = Client::connect(addr)?;
    a.name(&na)?;
    let mut b = Client::connect(addr)?;
    b.name(&nb)?;
    match state {
        State::Idle => {}
        State::Calling | State::Asked => {
            a.send(&format!("connect {nb}"))?;
            a.expect(&format!("calling {}", b.id))?;
            b.expect_prefix("ask ")?;
        }
        State::InCall { .. } | State::MidFrame { .. } => call_between(&mut a, &mut b, &nb)?,
    }
    let victim_is_a = matches!(
        state,
        State::Idle | State::Calling | State::InCall { caller: true } | State::MidFrame { caller: true }
    );
    let (mut victim, mut survivor) = if victim_is_a { (a, b) } else { (b, a) };
    if let State::MidFrame { .. } = state {
        // A header announcing 1000 bytes, then only 500 of them.
        let mut half = b"video 1 k 1000\n".to_vec();
        half.extend_from_slice(&[0x55; 500]);
        victim.send_bytes(&half)?;
        // The server is now inside the frame; make sure it has read it.
        std::thread::sleep(Duration::from_millis(2));
    }
    survivor.drain();
    let victim_id = victim.id.clone();
    let start = match how {
        How::Kill9 => {
            let mut child = victim.hand_to_child()?;
            let start = Instant::now();
            child.kill().context("kill -9")?;
            child.wait().context("reap")?;
            start
        }
        How::Reset => {
            let start = Instant::now();
            victim.reset();
            start
        }
        How::Close => {
            let start = Instant::now();
            drop(victim);
            start
        }
    };
    let wait = Duration::from_secs(5);
    if state == State::Idle {
        let gone = format!("presence {victim_id} gone ");
        survivor.wait_for(wait, |m| m.line().starts_with(&gone))?;
    } else {
        survivor.wait_for(wait, |m| m.line() == "stop disconnected")?;
    }
    let took = start.elapsed();
    // The survivor is free again and can still talk to the server.
    survivor.ping(wait)?;
    Ok(took)
}
