//! The netns back end: the kernel's tbf shapes a bulk transfer from a
//! client inside the namespace (the linkem binary's hidden `--blast` and
//! `--sink` modes, run through the link's command prefix) to a server on
//! the root side, each direction at its rate; a delay is refused (no netem)
//! and `Auto` falls back to user space for it; everything is deleted on
//! drop. Skipped, saying why, where namespaces cannot be made.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use komunikator_linkem::netns::Netns;
use komunikator_linkem::{Backend, Dir, Link, LinkError, LinkSpec, Shape};
use support::{assert_near, server};

const BIN: &str = env!("CARGO_BIN_EXE_komunikator-linkem");

/// Why netns cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    static PROBES: AtomicU32 = AtomicU32::new(0);
    let name = format!("lkm{}probe{}", std::process::id(), PROBES.fetch_add(1, Ordering::Relaxed));
    match Netns::create(&name) {
        Ok(ns) => {
            let tbf = ns.tc(&[
                "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "4k", "limit", "8k",
            ]);
            tbf.err().map(|e| format!("no tc tbf here: {e}"))
        }
        Err(e) => Some(format!("cannot create a network namespace (needs root and iproute2): {e}")),
    }
}

/// Runs the linkem binary in the namespace with `args`; returns its stdout.
fn in_namespace(link: &Link, args: &[String]) -> String {
    let prefix = link.command_prefix();
    let out = Command::new(&prefix[0]).args(&prefix[1..]).arg(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kbit/s of payload, from bytes over a time.
fn kbps(bytes: u64, took: Duration) -> f64 {
    bytes as f64 * 8.0 / 1000.0 / took.as_secs_f64()
}

#[test]
fn tbf_shapes_each_direction() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED tbf_shapes_each_direction: {why}");
        return;
    }
    // 2 s each way; TCP/IP headers take about 3.5% of tbf's rate.
    let spec = LinkSpec::parse("2000kbit,queue=50ms", "4mbit,queue=50ms").unwrap();
    let (up_bytes, down_bytes) = (500_000u64, 1_000_000u64);
    let (addr, srv) = server("0.0.0.0:0", |mut s| {
        let mut buf = vec![0u8; 65536];
        let (mut n, mut first) = (0u64, None);
        while let Ok(k @ 1..) = s.read(&mut buf) {
            first.get_or_insert_with(Instant::now);
            n += k as u64;
        }
        (n, first.map(|f| f.elapsed()))
    });
    let link = Link::start(addr, &spec, Backend::Netns).unwrap();
    assert_eq!(link.backend(), Backend::Netns);
    assert_ne!(link.client_addr().ip(), addr.ip());
    let blast = ["--blast".into(), link.client_addr().to_string(), "--bytes".into(), up_bytes.to_string()];
    in_namespace(&link, &blast);
    let (got, took) = srv.join().unwrap();
    assert_eq!(got, up_bytes);
    assert_near("netns up", kbps(got, took.unwrap()), 2000.0 * 0.965, 0.15);
    assert!(link.stats(Dir::Up).bytes_out > up_bytes, "{:?}", link.stats(Dir::Up));

    let (addr2, srv2) =
        server("0.0.0.0:0", move |mut s| s.write_all(&vec![1u8; down_bytes as usize]).unwrap());
    let sink_addr = std::net::SocketAddr::new(link.client_addr().ip(), addr2.port());
    let out = in_namespace(&link, &["--sink".into(), sink_addr.to_string()]);
    srv2.join().unwrap();
    let mut words = out.split_whitespace();
    let got: u64 = words.next().unwrap().parse().unwrap();
    let secs: f64 = words.nth(2).unwrap().parse().unwrap();
    assert_eq!(got, down_bytes, "{out}");
    assert_near("netns down", kbps(got, Duration::from_secs_f64(secs)), 4000.0 * 0.965, 0.15);

    let ns = link.netns_name().unwrap().to_owned();
    drop(link);
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&ns), "namespace {ns} left behind");
}

#[test]
fn delay_is_refused_by_netns_and_auto_falls_back() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED delay_is_refused_by_netns_and_auto_falls_back: {why}");
        return;
    }
    let (addr, _srv) = server("127.0.0.1:0", drop);
    let spec = LinkSpec::symmetric(Shape::kbps(1000).with_delay(Duration::from_millis(50)));
    match Link::start(addr, &spec, Backend::Netns) {
        Err(LinkError::Unsupported(why)) => println!("netns with a delay: {why}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the netns back end accepted a delay"),
    }
    let link = Link::start(addr, &spec, Backend::Auto).unwrap();
    assert_eq!(link.backend(), Backend::UserSpace);
    assert!(link.fallback_reason().is_some());
    assert!(link.command_prefix().is_empty());
    let auto = Link::start(addr, &LinkSpec::symmetric(Shape::kbps(1000)), Backend::Auto).unwrap();
    assert_eq!(auto.backend(), Backend::Netns, "{:?}", auto.fallback_reason());
    let _ = TcpStream::connect(link.client_addr());
}

#[test]
fn schedule_steps_change_the_qdisc() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED schedule_steps_change_the_qdisc: {why}");
        return;
    }
    let (addr, _srv) = server("0.0.0.0:0", drop);
    let spec = LinkSpec::parse("2000kbit,at=300ms:700kbit", "unlimited,at=300ms:900kbit").unwrap();
    let link = Link::start(addr, &spec, Backend::Netns).unwrap();
    let ns = link.netns_name().unwrap().to_owned();
    let show = |args: &[&str]| {
        let out = Command::new("tc").args(args).args(["qdisc", "show"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let qdiscs = || (show(&["-n", &ns]), show(&[]));
    let (up, down) = qdiscs();
    assert!(up.contains("rate 2Mbit"), "{up}");
    assert!(!down.contains("rate 900Kbit"), "{down}");
    std::thread::sleep(Duration::from_millis(800));
    let (up, down) = qdiscs();
    assert!(up.contains("rate 700Kbit"), "{up}");
    assert!(down.contains("rate 900Kbit"), "{down}");
    let _ = TcpStream::connect(addr);
}
