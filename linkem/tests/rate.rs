//! The user-space shaper's rate: a bulk transfer through it runs at the set
//! rate (over 2.5 s, within 15%), each direction at its own rate at the same
//! time, and a schedule step changes the rate.

mod support;

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use komunikator_linkem::{Backend, Dir, Link, LinkSpec, Shape};
use support::{assert_near, measure, server, writer};

const WARMUP: Duration = Duration::from_millis(500);
const WINDOW: Duration = Duration::from_millis(2500);

/// Bulk upload through a link with `up` kbit/s; returns the measured rate.
fn upload(kbps: u32) -> f64 {
    let (addr, srv) = server("127.0.0.1:0", |mut s| measure(&mut s, WARMUP, WINDOW));
    let spec = LinkSpec { up: Shape::kbps(kbps), down: Shape::unlimited() };
    let link = Link::start(addr, &spec, Backend::UserSpace).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(TcpStream::connect(link.client_addr()).unwrap(), Arc::clone(&stop));
    let rate = srv.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stats = link.stats(Dir::Up);
    assert!(stats.bytes_out > 0 && stats.kbps == kbps, "{stats:?}");
    drop(link);
    w.join().unwrap();
    rate
}

#[test]
fn slow_rate_holds() {
    assert_near("300 kbit/s up", upload(300), 300.0, 0.15);
}

#[test]
fn fast_rate_holds() {
    assert_near("5000 kbit/s up", upload(5000), 5000.0, 0.15);
}

#[test]
fn directions_are_independent() {
    let spec = LinkSpec { up: Shape::kbps(400), down: Shape::kbps(1600) };
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr, srv) = server("127.0.0.1:0", move |s| {
        // Writes until the link closes the connection, measures meanwhile.
        let w = writer(s.try_clone().unwrap(), Arc::new(AtomicBool::new(false)));
        tx.send(measure(&mut s.try_clone().unwrap(), WARMUP, WINDOW)).unwrap();
        w.join().unwrap();
    });
    let link = Link::start(addr, &spec, Backend::UserSpace).unwrap();
    let mut client = TcpStream::connect(link.client_addr()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(client.try_clone().unwrap(), Arc::clone(&stop));
    let down = measure(&mut client, WARMUP, WINDOW);
    let up = rx.recv().unwrap();
    stop.store(true, Ordering::Relaxed);
    drop(link);
    w.join().unwrap();
    srv.join().unwrap();
    assert_near("up, while down runs", up, 400.0, 0.15);
    assert_near("down, while up runs", down, 1600.0, 0.15);
}

#[test]
fn schedule_step_changes_the_rate() {
    let up: Shape = "2000kbit,at=2500ms:500kbit".parse().unwrap();
    let (addr, srv) = server("127.0.0.1:0", |mut s| {
        let before = measure(&mut s, WARMUP, Duration::from_millis(1800));
        // Let the queue filled at 2000 kbit/s drain at 500 before measuring.
        let after = measure(&mut s, Duration::from_millis(1200), Duration::from_secs(2));
        (before, after)
    });
    let link = Link::start(addr, &LinkSpec { up, down: Shape::unlimited() }, Backend::UserSpace).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(TcpStream::connect(link.client_addr()).unwrap(), Arc::clone(&stop));
    let (before, after) = srv.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(link.stats(Dir::Up).kbps, 500);
    drop(link);
    w.join().unwrap();
    assert_near("before the step", before, 2000.0, 0.15);
    assert_near("after the step", after, 500.0, 0.15);
}
