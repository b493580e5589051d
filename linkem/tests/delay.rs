//! The user-space shaper's one-way delay: a small message's round trip
//! through the link takes at least the two one-way delays, each direction
//! its own, and not much more.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use komunikator_linkem::{Backend, Link, LinkSpec, Shape};
use support::server;

/// An echo server; the median round trip of 10 pings of 100 bytes.
fn rtt(spec: &LinkSpec) -> Duration {
    rtts(spec, &[Duration::ZERO])[0]
}

/// An echo server; for each of `at` (since the link started, in order), the
/// median round trip of 10 pings of 100 bytes sent from then on.
fn rtts(spec: &LinkSpec, at: &[Duration]) -> Vec<Duration> {
    let (addr, srv) = server("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let link = Link::start(addr, spec, Backend::UserSpace).unwrap();
    let mut c = TcpStream::connect(link.client_addr()).unwrap();
    c.set_nodelay(true).unwrap();
    let medians = at
        .iter()
        .map(|&from| {
            std::thread::sleep(from.saturating_sub(link.elapsed()));
            let mut times: Vec<Duration> = (0..10)
                .map(|_| {
                    let start = Instant::now();
                    c.write_all(&[7u8; 100]).unwrap();
                    c.read_exact(&mut [0u8; 100]).unwrap();
                    start.elapsed()
                })
                .collect();
            times.sort();
            println!("{} / {} from {from:?}: round trip {:?}", spec.up, spec.down, times[5]);
            times[5]
        })
        .collect();
    drop(c);
    srv.join().unwrap();
    medians
}

#[test]
fn delay_is_added_both_ways() {
    let d = Duration::from_millis(60);
    let t = rtt(&LinkSpec::symmetric(Shape::unlimited().with_delay(d)));
    assert!(t >= 2 * d, "round trip {t:?} with {d:?} each way");
    assert!(t < 2 * d + Duration::from_millis(500), "round trip {t:?} with {d:?} each way");
}

#[test]
fn each_direction_has_its_own_delay() {
    let spec = LinkSpec {
        up: Shape::kbps(2000).with_delay(Duration::from_millis(100)),
        down: Shape::kbps(2000).with_delay(Duration::from_millis(20)),
    };
    let t = rtt(&spec);
    assert!(t >= Duration::from_millis(120), "round trip {t:?}");
    assert!(t < Duration::from_millis(620), "round trip {t:?}");
}

#[test]
fn a_step_changes_the_delay() {
    let up: Shape = "unlimited,delay=10ms,at=1s:delay=150ms".parse().unwrap();
    let t = rtts(&LinkSpec { up, down: Shape::unlimited() }, &[Duration::ZERO, Duration::from_millis(1000)]);
    assert!(
        t[0] >= Duration::from_millis(10) && t[0] < Duration::from_millis(140),
        "before the step: {:?}",
        t[0]
    );
    assert!(t[1] >= Duration::from_millis(150), "after the step: {:?}", t[1]);
}
