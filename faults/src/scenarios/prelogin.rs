//! Pre-login flood: on a password server, connections from 32 addresses
//! that never send a byte (500; 2,000 in long mode). The caps on connections
//! not yet logged in (`--max-pending`, 128) keep the server near two threads
//! per waiting connection, two users still log in, list each other and set
//! up a call within 1 s, and the login grace period closes the rest while
//! the attacker still holds its sockets open.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::Harness;
use crate::client::{Client, Rng, call_between};
use crate::server::{Bystander, ServerProc, ms};
use crate::{Mode, Ran};

const SOURCES: u8 = 32;
const MAX_PENDING: usize = 128;
const PASSWORD: &str = "sezamie otwórz się";
const CALL_BOUND: Duration = Duration::from_secs(1);

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let (connections, grace) = match mode {
        Mode::Quick => (500, 3),
        Mode::Long => (2000, 10),
    };
    let file = std::env::temp_dir().join(format!("komunikator-faults-pw-{}", std::process::id()));
    std::fs::write(&file, format!("{PASSWORD}\n")).context("write the password file")?;
    let path = file.to_str().context("a UTF-8 temporary path")?.to_owned();
    let server = ServerProc::start(&["--password-file", &path, "--login-grace", &grace.to_string()])?;
    let addr = server.addr;
    warm_up(addr, &server, 300)?;
    let h =
        Harness::with_bystander(server, Bystander::with(log_in(addr, IpAddr::V4(Ipv4Addr::LOCALHOST))?)?)?;
    let mut flood = Vec::with_capacity(connections);
    for i in 0..connections {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1 + (i % SOURCES as usize) as u8));
        flood.push(Client::raw_from(source, addr).with_context(|| format!("idle connection {i}"))?);
    }
    let peak = h.server.metrics().threads;
    // Two threads per waiting connection, and some evicted ones still ending.
    let bound = h.baseline.threads + 2 * MAX_PENDING + 64;
    ensure!(peak <= bound, "{peak} server threads under {connections} idle connections (bound {bound})");
    // Two users log in, see each other and call.
    let call = Instant::now();
    let mut a = log_in(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))?;
    a.name("pre-a")?;
    let mut b = log_in(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)))?;
    b.name("pre-b")?;
    b.send("refresh")?;
    b.wait_for(CALL_BOUND, |m| m.line().ends_with(" free pre-a"))?;
    call_between(&mut a, &mut b, "pre-b")?;
    let call_took = call.elapsed();
    ensure!(call_took <= CALL_BOUND, "logging in and calling took {call_took:?} during the flood");
    drop((a, b));
    // The flood's sockets stay open on our side: the grace period frees the server's.
    let deadline = Instant::now() + Duration::from_secs(grace + 10);
    let (evicted, timed_out) = loop {
        let log = h.server.log();
        let counts =
            (log.matches("evicted, too many waiting").count(), log.matches("did not log in in time").count());
        if counts.0 + counts.1 >= connections {
            break counts;
        }
        ensure!(
            Instant::now() < deadline,
            "after {grace} s, {counts:?} of {connections} closed (evicted, timed out)"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let checks = h.finish()?;
    drop(flood);
    let _ = std::fs::remove_file(&file);
    Ok(Ran::Done(format!(
        "{connections} idle connections from {SOURCES} addresses on a password server: at most {peak} \
         server threads (bound {bound}), {evicted} evicted with `error full` and {timed_out} closed by \
         --login-grace {grace}; two users logged in, listed each other and set up a call in {:.1} ms \
         (bound 1000 ms); {checks}",
        ms(call_took)
    )))
}

/// Connects from `source`, logs in and returns the client.
fn log_in(addr: SocketAddr, source: IpAddr) -> Result<Client> {
    let mut c = Client::connect_from(source, addr)?;
    c.send(&format!("auth {PASSWORD}"))?;
    c.expect("ok auth")?;
    Ok(c)
}

/// Logs `n` connections in (one at a time from 127.0.5.x, so none waits
/// behind another) and closes them, as `super::warm_up` does for open servers.
fn warm_up(addr: SocketAddr, server: &ServerProc, n: usize) -> Result<()> {
    let before = server.metrics();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(log_in(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 5, 1 + (i / 50) as u8)))?);
    }
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metrics().threads != before.threads || server.metrics().fds != before.fds {
        ensure!(Instant::now() < deadline, "the warm-up connections did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
