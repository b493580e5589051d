//! A connection flood from one address (127.0.0.2): the per-address cap
//! (`--max-per-ip`, default 64) holds, every refused connection gets
//! `error full`, and clients from other addresses are served meanwhile.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use super::Harness;
use crate::client::{Client, Rng, call_between};
use crate::server::ms;
use crate::{Mode, Ran};

const CAP: usize = 64;

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let (per_wave, waves) = match mode {
        Mode::Quick => (300, 2),
        Mode::Long => (1000, 20),
    };
    let h = Harness::start(&[], 300)?;
    let addr = h.server.addr;
    let flooder = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let others = [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4))];
    let mut worst_other = Duration::ZERO;
    let mut refused_total = 0;
    for wave in 0..waves {
        let mut flood = Vec::with_capacity(per_wave);
        for _ in 0..per_wave {
            // Connecting succeeds at the TCP level; the server then greets or refuses.
            flood.push(Client::raw_from(flooder, addr)?);
        }
        let (mut greeted, mut refused) = (0, 0);
        for c in &mut flood {
            match c.try_recv(Duration::from_secs(5)) {
                Some(m) if m.line().starts_with("hello ") => greeted += 1,
                Some(m) if m.line().starts_with("error full") => refused += 1,
                other => anyhow::bail!("wave {wave}: a flood connection got {other:?}"),
            }
        }
        ensure!(
            greeted == CAP,
            "wave {wave}: {greeted} connections from one address were accepted, cap {CAP}"
        );
        ensure!(refused == per_wave - CAP, "wave {wave}: {refused} refused");
        refused_total += refused;
        // Clients from other addresses are served while the flood holds its 64.
        let start = Instant::now();
        let mut a = Client::connect_from(others[0], addr)?;
        a.name(&format!("fa{wave}"))?;
        let mut b = Client::connect_from(others[1], addr)?;
        b.name(&format!("fb{wave}"))?;
        call_between(&mut a, &mut b, &format!("fb{wave}"))?;
        worst_other = worst_other.max(start.elapsed());
        drop(flood);
        drop((a, b));
        // Once the flood is gone, the address may connect again.
        wait_accepts(addr, flooder)?;
    }
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{waves} waves of {per_wave} connections from 127.0.0.2: exactly {CAP} accepted each time, \
         {refused_total} refused with `error full`; two clients from 127.0.0.3/.4 connected, named and \
         set up a call in {:.1} ms at worst; {checks}",
        ms(worst_other)
    )))
}

/// Waits until the flooding address is accepted again (its old connections are gone).
fn wait_accepts(addr: std::net::SocketAddr, from: IpAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::raw_from(from, addr)?;
        if c.try_recv(Duration::from_secs(2)).is_some_and(|m| m.line().starts_with("hello ")) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "127.0.0.2 is still refused after its flood closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
