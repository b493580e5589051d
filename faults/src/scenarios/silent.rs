//! A silent peer: the network between the server and one party of a call
//! vanishes without a FIN or reset. The server is in one network namespace
//! and the victim in another, joined by a veth pair made here; the victim's
//! end is set down. The other party (on the server's loopback) must get
//! `stop disconnected` within `--dead-peer-timeout` (default 60 s), both
//! when the call is idle (TCP keepalive finds it) and when media is flowing
//! towards the victim (TCP_USER_TIMEOUT finds it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::Harness;
use crate::client::{Client, Rng, call_between};
use crate::netns::{Netns, VethEnd, clean_stale, in_ns, veth_pair};
use crate::server::{Bystander, ServerProc, binary};
use crate::{Mode, Ran};

/// The victim's side and the server's side of the veth pair.
const SERVER_IP: &str = "10.199.0.1";
const VICTIM_IP: &str = "10.199.0.2";

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let dead = match mode {
        Mode::Quick => 3,
        Mode::Long => 60,
    };
    clean_stale(&["kfs", "kfc"]);
    let pid = std::process::id();
    let server_ns = match Netns::create(&format!("kfs{pid}")) {
        Ok(ns) => ns,
        Err(e) => {
            return Ok(Ran::Skipped(format!(
                "cannot create a network namespace here ({e:#}); needs root or CAP_NET_ADMIN"
            )));
        }
    };
    let victim_ns = Netns::create(&format!("kfc{pid}"))?;
    let (a, b) = (format!("kfa{pid}"), format!("kfb{pid}"));
    let (server_cidr, victim_cidr) = (format!("{SERVER_IP}/24"), format!("{VICTIM_IP}/24"));
    veth_pair(
        VethEnd { name: &a, ns: Some(&server_ns), addr: &server_cidr },
        VethEnd { name: &b, ns: Some(&victim_ns), addr: &victim_cidr },
    )?;
    let note = if tc_netem_available(&victim_ns, &b) {
        "tc netem is available but not needed: the cut is `ip link set down`"
    } else {
        "tc netem is not available in this kernel (sch_netem missing): the cut is `ip link set down`"
    };

    let mut cmd = server_ns.command(&binary("komunikator-server")?);
    cmd.args(["--no-tls", "--bind", "0.0.0.0", "--port", "0", "--dead-peer-timeout", &dead.to_string()]);
    let server = ServerProc::spawn(cmd, Some([127, 0, 0, 1].into()))?;
    let port = server.addr.port();
    let local: SocketAddr = server.addr;
    let remote: SocketAddr = format!("{SERVER_IP}:{port}").parse()?;
    let ns = server_ns.name.clone();
    let bystander = in_ns(&ns, move || Client::connect(local))??;
    let h = Harness::with_bystander(server, Bystander::with(bystander)?)?;

    let mut results = Vec::new();
    for streaming in [false, true] {
        let took = one_cut(&server_ns, &victim_ns, &b, (local, remote), streaming)
            .with_context(|| if streaming { "with media flowing" } else { "idle call" })?;
        ensure!(
            took <= Duration::from_secs(dead) + Duration::from_secs(1),
            "the silent peer was detected only after {took:?} (documented: {dead} s)"
        );
        results.push(took);
    }
    let checks = h.finish()?;
    drop(victim_ns);
    drop(server_ns);
    Ok(Ran::Done(format!(
        "--dead-peer-timeout {dead}: victim's link cut (ip link set down) in an idle call -> peer got \
         `stop disconnected` after {:.1} s; with media flowing to the victim -> after {:.1} s \
         (bound {dead} s + 1 s); {}; {checks}",
        results[0].as_secs_f64(),
        results[1].as_secs_f64(),
        note
    )))
}

/// Puts a victim (in the victim namespace) and a survivor (on the server's
/// loopback) in a call, cuts the victim's link, and returns how long until
/// the survivor got `stop disconnected`.
fn one_cut(
    server_ns: &Netns,
    victim_ns: &Netns,
    link: &str,
    (local, remote): (SocketAddr, SocketAddr),
    streaming: bool,
) -> Result<Duration> {
    let tag = if streaming { "s" } else { "i" };
    let mut victim = in_ns(&victim_ns.name, move || Client::connect(remote))??;
    victim.name(&format!("victim{tag}"))?;
    let mut survivor = in_ns(&server_ns.name, move || Client::connect(local))??;
    survivor.name(&format!("survivor{tag}"))?;
    call_between(&mut survivor, &mut victim, &format!("victim{tag}"))?;
    victim_ns.ip(&["link", "set", link, "down"])?;
    let cut = Instant::now();
    let frame = vec![0x42u8; 4000];
    let mut pts = 0;
    loop {
        ensure!(cut.elapsed() < Duration::from_secs(120), "no stop after {:?}", cut.elapsed());
        if streaming {
            pts += 33_333;
            survivor.send_media("video", pts, pts % 1_000_000 < 33_333, &frame)?;
        }
        match survivor.try_recv(Duration::from_millis(33)) {
            Some(m) if m.line() == "stop disconnected" => break,
            _ => {}
        }
    }
    let took = cut.elapsed();
    victim_ns.ip(&["link", "set", link, "up"])?;
    // The victim's socket is dead on the server's side; drop ours too.
    drop(victim);
    survivor.ping(Duration::from_secs(5))?;
    Ok(took)
}

fn tc_netem_available(ns: &Netns, link: &str) -> bool {
    let ok = ns.tc(&["qdisc", "add", "dev", link, "root", "netem", "loss", "100%"]).is_ok();
    if ok {
        let _ = ns.tc(&["qdisc", "del", "dev", link, "root"]);
    }
    ok
}
