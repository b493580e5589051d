//! The netns back end: a network namespace for the client joined to the root
//! namespace by a veth pair, with a `tbf` qdisc (rate, burst, drop-tail
//! limit) on the egress of each end: the namespace's end shapes `up`, the
//! root's end shapes `down`. Rate steps are applied by a schedule thread
//! with `tc qdisc replace`. No delay: this back end is refused for a spec
//! with one (see [`crate::Backend`]). Everything is deleted on drop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::netns::{Netns, NetnsError, VethEnd, clean_stale, ip, veth_pair};
use crate::spec::{LinkSpec, Shape};
use crate::{Dir, LinkError};

/// Namespace names are this, the pid, `n` and a counter.
const PREFIX: &str = "lkm";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One direction's qdisc as `tc -s -j` reports it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct QdiscStats {
    pub(crate) bytes: u64,
    pub(crate) drops: u64,
    pub(crate) backlog: u64,
}

/// A running netns link.
pub(crate) struct NetnsLink {
    ns: Netns,
    /// The veth ends: `[namespace side (up), root side (down)]`.
    ifs: [String; 2],
    client_addr: SocketAddr,
    max_backlog: [AtomicU64; 2],
    schedule: Option<(JoinHandle<()>, mpsc::Sender<()>)>,
}

impl NetnsLink {
    /// Makes the namespace, the veth pair and the qdiscs.
    ///
    /// # Errors
    /// When the spec asks for a delay, or `ip`/`tc` fail (not root, no tbf).
    pub(crate) fn start(
        upstream: SocketAddr,
        spec: &LinkSpec,
        started: Instant,
    ) -> Result<NetnsLink, LinkError> {
        clean_stale(&[PREFIX]);
        let tag = format!("{}n{}", std::process::id(), COUNTER.fetch_add(1, Relaxed));
        let ns = Netns::create(&format!("{PREFIX}{tag}"))?;
        if spec.has_delay() {
            return Err(LinkError::Unsupported(no_delay_reason(&ns)));
        }
        let ifs = [format!("lkn{tag}"), format!("lkr{tag}")];
        let (root_ip, ns_ip) = free_subnet()?;
        let (root_cidr, ns_cidr) = (format!("{root_ip}/30"), format!("{ns_ip}/30"));
        let root_end = VethEnd { name: &ifs[1], ns: None, addr: &root_cidr };
        let made = veth_pair(root_end, VethEnd { name: &ifs[0], ns: Some(&ns), addr: &ns_cidr });
        let client_addr = SocketAddr::new(IpAddr::V4(root_ip), upstream.port());
        // Built before checking `made`, so that its drop deletes a half-made pair.
        let mut link = NetnsLink { ns, ifs, client_addr, max_backlog: Default::default(), schedule: None };
        made?;
        for dir in [Dir::Up, Dir::Down] {
            let shape = spec.dir(dir);
            link.set_rate(dir, shape, shape.kbps)?;
        }
        link.start_schedule(spec, started)?;
        Ok(link)
    }

    /// The address the client (inside the namespace) dials.
    pub(crate) fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The namespace.
    pub(crate) fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Runs `tc ARGS` where direction `dir`'s interface lives.
    fn tc(&self, dir: Dir, args: &[&str]) -> Result<String, NetnsError> {
        match dir {
            Dir::Up => self.ns.tc(args),
            Dir::Down => crate::netns::tc(args),
        }
    }

    /// Puts `kbps` (0: no qdisc) on direction `dir`, with `shape`'s queue bound.
    fn set_rate(&self, dir: Dir, shape: &Shape, kbps: u32) -> Result<(), NetnsError> {
        set_rate(|a| self.tc(dir, a), &self.ifs[dir as usize], shape, kbps)
    }

    /// Starts the thread that applies rate steps, if there are any.
    fn start_schedule(&mut self, spec: &LinkSpec, started: Instant) -> Result<(), LinkError> {
        let mut steps: Vec<(std::time::Duration, Dir, u32)> = [Dir::Up, Dir::Down]
            .into_iter()
            .flat_map(|d| spec.dir(d).schedule.iter().filter_map(move |s| Some((s.at, d, s.kbps?))))
            .collect();
        if steps.is_empty() {
            return Ok(());
        }
        steps.sort_by_key(|s| s.0);
        let shapes = [spec.up.clone(), spec.down.clone()];
        let ifs = self.ifs.clone();
        let ns = self.ns.name.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("linkem-tc-schedule".into())
            .spawn(move || {
                for (at, dir, kbps) in steps {
                    let wait = (started + at).saturating_duration_since(Instant::now());
                    if stopped.recv_timeout(wait) != Err(mpsc::RecvTimeoutError::Timeout) {
                        return;
                    }
                    let run = |a: &[&str]| match dir {
                        Dir::Up => crate::netns::tc(&[&["-n", ns.as_str()][..], a].concat()),
                        Dir::Down => crate::netns::tc(a),
                    };
                    // A failed change leaves the old rate; stats show it.
                    let _ = set_rate(run, &ifs[dir as usize], &shapes[dir as usize], kbps);
                }
            })
            .map_err(|source| LinkError::Io { what: "start the schedule thread", source })?;
        self.schedule = Some((thread, stop));
        Ok(())
    }

    /// Direction `dir`'s qdisc counters (zero when it has none).
    pub(crate) fn stats(&self, dir: Dir) -> QdiscStats {
        let out = self.tc(dir, &["-s", "-j", "qdisc", "show", "dev", &self.ifs[dir as usize], "root"]);
        let json = out.unwrap_or_default();
        let field = |name: &str| json_u64(&json, name).unwrap_or(0);
        let stats = QdiscStats { bytes: field("bytes"), drops: field("drops"), backlog: field("backlog") };
        self.max_backlog[dir as usize].fetch_max(stats.backlog, Relaxed);
        stats
    }

    /// The largest backlog seen by [`NetnsLink::stats`].
    pub(crate) fn max_backlog(&self, dir: Dir) -> u64 {
        self.max_backlog[dir as usize].load(Relaxed)
    }
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        if let Some((thread, stop)) = self.schedule.take() {
            drop(stop);
            let _ = thread.join();
        }
        // The pair goes with the namespace, unless a process still holds
        // the namespace: delete the root end explicitly.
        let _ = ip(&["link", "del", &self.ifs[1]]);
    }
}

/// `tc qdisc replace ... tbf` (or `del` for 0 = unlimited) through `tc`.
fn set_rate(
    tc: impl Fn(&[&str]) -> Result<String, NetnsError>,
    dev: &str,
    shape: &Shape,
    kbps: u32,
) -> Result<(), NetnsError> {
    if kbps == 0 {
        // Nothing to delete is fine.
        let _ = tc(&["qdisc", "del", "dev", dev, "root"]);
        return Ok(());
    }
    // Burst: 4 ms worth, at least two full frames; limit: the queue bound.
    let burst = (kbps as usize * 125 / 250).max(3028).to_string();
    let limit = shape.queue_bytes().max(3028).to_string();
    let rate = format!("{kbps}kbit");
    tc(&["qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst", &burst, "limit", &limit])
        .map(drop)
}

/// Why the netns back end cannot add delay here.
fn no_delay_reason(ns: &Netns) -> String {
    match ns.tc(&["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]) {
        Err(e) => format!(
            "a delay is asked for and the netns back end has none: tc netem is not available here ({e})"
        ),
        Ok(_) => "a delay is asked for and the netns back end does not implement it (netem is \
                  available in this kernel, but only tbf is used)"
            .to_owned(),
    }
}

/// A /30 in 10.201.0.0/16 not used by any address in the root namespace:
/// (the root end's address, the namespace end's address).
fn free_subnet() -> Result<(Ipv4Addr, Ipv4Addr), LinkError> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map_err(|source| LinkError::Io { what: "run ip -o -4 addr show", source })?;
    let used = String::from_utf8_lossy(&out.stdout).into_owned();
    let seed = std::process::id().wrapping_mul(31).wrapping_add(COUNTER.load(Relaxed));
    for i in 0..256u32 {
        let block = (seed.wrapping_add(i) % 16_384) * 4;
        let root = Ipv4Addr::new(10, 201, (block >> 8) as u8, (block & 0xff) as u8 + 1);
        if !used.contains(&format!(" {root}/")) {
            return Ok((root, Ipv4Addr::new(10, 201, (block >> 8) as u8, (block & 0xff) as u8 + 2)));
        }
    }
    Err(LinkError::Unsupported("no free /30 in 10.201.0.0/16".into()))
}

/// The first `"name":NUMBER` in `json`.
fn json_u64(json: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let at = json.find(&key)? + key.len();
    let rest = json[at..].trim_start();
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_tc_json() {
        let j = r#"[{"kind":"tbf","handle":"8001:","root":true,"refcnt":2,"options":{},"bytes":12345,"packets":9,"drops":2,"overlimits":5,"requeues":0,"backlog":3028,"qlen":2}]"#;
        assert_eq!(super::json_u64(j, "bytes"), Some(12345));
        assert_eq!(super::json_u64(j, "drops"), Some(2));
        assert_eq!(super::json_u64(j, "backlog"), Some(3028));
        assert_eq!(super::json_u64(j, "missing"), None);
    }
}
