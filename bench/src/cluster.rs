//! Several servers over NATS (`--cluster`), measured with the load
//! generator against a real `nats-server`, every figure against its
//! one-node baseline in the same run: calls whose two ends are on two
//! nodes, carried through the broker and over a direct link
//! (`--cluster-link`), against calls on one node (latency, and the CPU of
//! the nodes and the broker); how soon a node's clients see a user who joined another
//! node, and one whose node was killed; and the same calls on one node
//! against spread over three.
//!
//! Threads: the calling thread starts the processes and sets the calls up;
//! the load engine's threads send and time.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::engine::{self, Plan};
use crate::net::{self, Endpoint};
use crate::procfs::{Sample, Server};
use crate::runs::{LOAD_FLAGS, Load};
use crate::stats::Samples;

/// What the section found.
#[derive(Debug, Default)]
pub enum Cluster {
    /// Not run.
    #[default]
    NotRun,
    /// No broker here.
    NotMeasured(String),
    /// The figures.
    Measured(Figures),
}

/// The measured figures.
#[derive(Debug, Default)]
pub struct Figures {
    /// Same-node calls, then the same number across two nodes through the
    /// broker, then over a direct link.
    pub calls: Vec<Row>,
    /// One node carrying every call, then three carrying a third each.
    pub spread: Vec<Row>,
    /// ms from `name` on one node to its `presence` on another, each try.
    pub join_ms: Vec<f64>,
    /// ms from SIGKILL of a node to `presence ... gone` on another, each try.
    pub death_ms: Vec<f64>,
    /// The broker's version line.
    pub broker: String,
    /// Command lines started.
    pub commands: Vec<String>,
}

/// One configuration's load run.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// What ran.
    pub label: String,
    /// Calls.
    pub calls: usize,
    /// The load's figures (server CPU: every node together).
    pub load: Load,
    /// The broker's CPU in the window, % of one core.
    pub broker_cpu: f64,
}

/// A `nats-server` on a free port, killed on drop.
struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    fn start() -> anyhow::Result<Broker> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("nats-server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not listen");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Broker { child, url: format!("nats://127.0.0.1:{port}") })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the section with the server binary `server`.
///
/// # Errors
/// When a process or a call cannot be set up.
pub fn run(server: &Path, smoke: bool) -> anyhow::Result<Cluster> {
    let version = match Command::new("nats-server").arg("--version").output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Err(_) => return Ok(Cluster::NotMeasured("nats-server not found (scripts/deps installs it)".into())),
    };
    let mut f = Figures { broker: version, ..Figures::default() };
    let broker = Broker::start()?;
    f.commands.push(format!("nats-server -a 127.0.0.1 -p {}", broker.url.rsplit(':').next().unwrap_or("")));
    // These take no direct links: calls between them go through the broker.
    let node = |name: &str, f: &mut Figures| -> anyhow::Result<Server> {
        let mut flags = LOAD_FLAGS.to_vec();
        flags.extend_from_slice(&["--cluster", &broker.url, "--node", name, "--no-cluster-link"]);
        let s = Server::start(server, &flags)?;
        f.commands.push(s.command.clone());
        Ok(s)
    };
    let nodes = [node("n1", &mut f)?, node("n2", &mut f)?, node("n3", &mut f)?];
    let n = if smoke { 2 } else { 20 };
    let plan = Plan::calls(smoke);
    for (label, across) in [("one node", false), ("two nodes, through the broker", true)] {
        let b = if across { &nodes[1] } else { &nodes[0] };
        let pairs = pairs(&nodes[0], b, n, if across { "x" } else { "c" })?;
        f.calls.push(measure(label, pairs, &plan, &[&nodes[0], &nodes[1]], &broker)?);
    }
    // Two more nodes as they start by default, taking direct links; l1
    // dials l2 as soon as it hears l2's directory, before the first call.
    let state = std::env::temp_dir().join(format!("komunikator-bench-link-{}", std::process::id()));
    let linked = |name: &str, f: &mut Figures| -> anyhow::Result<Server> {
        let mut flags = LOAD_FLAGS.to_vec();
        let state = state.to_string_lossy();
        flags.extend_from_slice(&["--cluster", &broker.url, "--node", name, "--state-dir", &state]);
        let s = Server::start(server, &flags)?;
        f.commands.push(s.command.clone());
        Ok(s)
    };
    let links = [linked("l1", &mut f)?, linked("l2", &mut f)?];
    std::thread::sleep(Duration::from_secs(2));
    let linked_pairs = pairs(&links[0], &links[1], n, "l")?;
    let both = [&links[0], &links[1]];
    f.calls.push(measure("two nodes, over a direct link", linked_pairs, &plan, &both, &broker)?);
    drop(links);
    let _ = std::fs::remove_dir_all(&state);
    let m = if smoke { 3 } else { 150 };
    let one = pairs(&nodes[0], &nodes[0], m, "o")?;
    f.spread.push(measure("one node", one, &plan, &[&nodes[0]], &broker)?);
    let mut spread = Vec::new();
    for (i, s) in nodes.iter().enumerate() {
        spread.extend(pairs(s, s, m / 3, &format!("s{i}"))?);
    }
    let all: Vec<&Server> = nodes.iter().collect();
    f.spread.push(measure("three nodes, a third each", spread, &plan, &all, &broker)?);
    let tries = if smoke { 1 } else { 10 };
    f.join_ms = joins(&nodes[0], &nodes[1], tries)?;
    drop(nodes);
    f.death_ms = deaths(server, &broker, if smoke { 1 } else { 3 }, &mut f.commands)?;
    Ok(Cluster::Measured(f))
}

/// `n` calls between a client of `a` and a client of `b`, named `{tag}a{i}`
/// and `{tag}b{i}`, set up once `a` lists every callee.
fn pairs(a: &Server, b: &Server, n: usize, tag: &str) -> anyhow::Result<Vec<(Endpoint, Endpoint)>> {
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = net::client(a.addr, None)?;
        let mut y = net::client(b.addr, None)?;
        x.send_line(&format!("name {tag}a{i}"))?;
        x.wait_line("ok name")?;
        y.send_line(&format!("name {tag}b{i}"))?;
        y.wait_line("ok name")?;
        pairs.push((x, y));
    }
    if let Some((first, _)) = pairs.first_mut() {
        let last = format!("{tag}b{}", n - 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            first.send_line("refresh")?;
            let head = first.wait_line("clients ")?;
            let count: usize = head["clients ".len()..].parse().unwrap_or(0);
            let mut found = false;
            for _ in 0..count {
                found |= first.wait_line("")?.ends_with(&format!(" {last}"));
            }
            if found {
                break;
            }
            if Instant::now() > deadline {
                bail!("{last} never showed on the caller's node");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (x, y) in &mut pairs {
        x.send_line(&format!("connect {}", y.id))?;
        y.wait_line("ask ")?;
        y.send_line("ask yes")?;
        x.wait_line("start ")?;
        y.wait_line("start ")?;
    }
    Ok(pairs)
}

/// Runs the load over `pairs`, sampling `nodes` and the broker over the window.
fn measure(
    label: &str,
    pairs: Vec<(Endpoint, Endpoint)>,
    plan: &Plan,
    nodes: &[&Server],
    broker: &Broker,
) -> anyhow::Result<Row> {
    let calls = pairs.len();
    let broker_pid = broker.child.id().to_string();
    let taken: RefCell<Vec<(Vec<Sample>, Option<Sample>)>> = RefCell::new(Vec::new());
    let probe = || {
        let samples: Vec<Sample> = nodes.iter().filter_map(|s| s.sample().ok()).collect();
        taken.borrow_mut().push((samples.clone(), Sample::of(&broker_pid).ok()));
        samples.into_iter().next()
    };
    let outcome = engine::run(pairs, plan, &probe)?;
    let mut load = Load::of_outcome(outcome);
    let taken = taken.into_inner();
    let (mut nodes_cpu, mut broker_cpu) = (0.0, 0.0);
    if let [(s0, b0), (s1, b1)] = &taken[..] {
        nodes_cpu = s0.iter().zip(s1).map(|(a, b)| a.cpu_percent_until(b)).sum();
        broker_cpu = b0.as_ref().zip(b1.as_ref()).map_or(0.0, |(a, b)| a.cpu_percent_until(b));
    }
    load.server_cpu = nodes_cpu;
    Ok(Row { label: label.to_owned(), calls, load, broker_cpu })
}

/// Times `name` on `b` until its `presence` on `a`, `tries` times.
fn joins(a: &Server, b: &Server, tries: usize) -> anyhow::Result<Vec<f64>> {
    let mut watcher = net::client(a.addr, None)?;
    let mut out = Vec::new();
    for i in 0..tries {
        let mut c = net::client(b.addr, None)?;
        let nick = format!("joiner{i}");
        let t = Instant::now();
        c.send_line(&format!("name {nick}"))?;
        loop {
            let line = watcher.wait_line("presence ")?;
            if line.ends_with(&format!(" free {nick}")) {
                break;
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

/// Starts a node with one named client, kills it with SIGKILL, and times
/// how soon a client of another node hears the client is gone; `tries` times.
fn deaths(
    server: &Path,
    broker: &Broker,
    tries: usize,
    commands: &mut Vec<String>,
) -> anyhow::Result<Vec<f64>> {
    let start = |name: &str| {
        let mut flags = LOAD_FLAGS.to_vec();
        flags.extend_from_slice(&["--cluster", &broker.url, "--node", name, "--no-cluster-link"]);
        Server::start(server, &flags)
    };
    let watch_node = start("w1")?;
    commands.push(watch_node.command.clone());
    let mut watcher = net::client(watch_node.addr, None)?;
    let mut out = Vec::new();
    for i in 0..tries {
        let doomed = start(&format!("d{i}"))?;
        let mut c = net::client(doomed.addr, None)?;
        let nick = format!("doomed{i}");
        c.send_line(&format!("name {nick}"))?;
        loop {
            if watcher.wait_line("presence ")?.ends_with(&format!(" free {nick}")) {
                break;
            }
        }
        let id = c.id.clone();
        let pid: i32 = doomed.pid().parse().unwrap_or(0);
        let t = Instant::now();
        // SAFETY: kill with a child's pid and a signal has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        loop {
            if watcher.wait_line("presence ")?.starts_with(&format!("presence {id} gone")) {
                break;
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(doomed);
    }
    Ok(out)
}

fn ms(v: &[f64], p: f64) -> f64 {
    let mut s = Samples::default();
    for x in v {
        s.push((x * 1e6) as u64);
    }
    s.pct_us(p) / 1000.0
}

/// The section's text.
pub fn render(s: &mut String, c: &Cluster) {
    let _ = writeln!(s, "## 15. Several servers (`--cluster`): calls across nodes\n");
    let f = match c {
        Cluster::NotRun => return,
        Cluster::NotMeasured(why) => {
            let _ = writeln!(s, "Not measured: {why}.\n");
            return;
        }
        Cluster::Measured(f) => f,
    };
    let _ = writeln!(
        s,
        "Nodes of one cluster and a real `{}` on this machine; the load generator's calls of section 3 \
         (30 video frames/s of 5-20 KB, 50 audio packets/s of 100 B, both ways), latency from the \
         sender's write to the receiver's read. In the cross-node rows each call's caller is on one \
         node and its callee on another: the call lives on the callee's node, and the caller's node \
         carries the caller's frames there, through the broker (nodes started with \
         `--no-cluster-link`) or over a direct TLS link between the two nodes (the default), which the \
         broker only set up. CPU is the two nodes' together (and the broker's apart), % of one core.\n",
        f.broker
    );
    let _ = writeln!(
        s,
        "| Calls | Where | p50 | p99 | Audio p99 | Video p99 | Lost / sent | Nodes' CPU | Broker CPU |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in f.calls.iter().chain(&f.spread) {
        let l = &r.load;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} µs | **{:.0} µs** | {:.0} µs | {:.0} µs | {} / {} | {:.0} % | {:.0} % |",
            r.calls,
            r.label,
            l.all.p50,
            l.all.p99,
            l.audio.p99,
            l.video.p99,
            l.lost,
            l.sent,
            l.server_cpu,
            r.broker_cpu
        );
    }
    let _ = writeln!(
        s,
        "\nDirectory: a user who names itself on one node is in the `presence` of another node's \
         clients after p50 {:.1} ms, worst {:.1} ms ({} tries); the user of a node killed with \
         SIGKILL is `gone` there after p50 {:.2} s, worst {:.2} s ({} tries; the bound is a 3 s \
         silence after the last 1 s heartbeat).\n",
        ms(&f.join_ms, 50.0),
        ms(&f.join_ms, 100.0),
        f.join_ms.len(),
        ms(&f.death_ms, 50.0) / 1000.0,
        ms(&f.death_ms, 100.0) / 1000.0,
        f.death_ms.len()
    );
    let _ = writeln!(s, "Processes started:\n");
    for c in &f.commands {
        let _ = writeln!(s, "    {c}");
    }
    let _ = writeln!(s);
}
