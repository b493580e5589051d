//! The bottleneck queue bound: a writer that sends as fast as it can through
//! a 500 kbit/s link sees back-pressure, so the bytes it has written but the
//! server has not read stay within the queue bound plus the socket buffers
//! on the way (printed: docs/LINKEM.md quotes them), and the proxy's own
//! queue never exceeds the bound.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use komunikator_linkem::{Backend, Dir, Link, LinkSpec, Queue, Shape};
use support::server;

/// The writer's own send buffer (asked; Linux doubles it).
const WRITER_SNDBUF: usize = 16 * 1024;

/// Bytes in a socket's send queue, not yet acknowledged by the peer (SIOCOUTQ).
fn outq(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int through the pointer.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(s), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ");
    n as u64
}

/// Writes as fast as the link lets it for `secs`; returns the largest
/// number of bytes the proxy had accepted (acknowledged to the writer) but
/// not delivered to the server, and the queue's largest occupancy.
fn standing_backlog(queue: usize, secs: u64) -> (u64, u64) {
    let received = Arc::new(AtomicU64::new(0));
    let r = Arc::clone(&received);
    let (addr, srv) = server("127.0.0.1:0", move |mut s| {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            r.fetch_add(n as u64, Relaxed);
        }
    });
    let up = Shape::kbps(500).with_queue(Queue::Bytes(queue));
    let link = Link::start(addr, &LinkSpec { up, down: Shape::unlimited() }, Backend::UserSpace).unwrap();
    let mut c = TcpStream::connect(link.client_addr()).unwrap();
    socket2::SockRef::from(&c).set_send_buffer_size(WRITER_SNDBUF).unwrap();
    c.set_nonblocking(true).unwrap();
    let (mut written, mut worst, mut worst_total) = (0u64, 0u64, 0u64);
    let block = [3u8; 4096];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        match c.write(&block) {
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("write: {e}"),
        }
        let backlog = written - received.load(Relaxed);
        worst_total = worst_total.max(backlog);
        worst = worst.max(backlog.saturating_sub(outq(&c)));
    }
    let max_queued = link.stats(Dir::Up).max_queued;
    println!(
        "queue {queue} B: {written} B written in {secs} s; written, not delivered: at most \
         {worst_total} B; of that, past the writer's own send queue: at most {worst} B \
         ({} B beyond the queue); queue peak {max_queued} B",
        worst.saturating_sub(queue as u64)
    );
    drop(c);
    drop(link);
    srv.join().unwrap();
    (worst, max_queued)
}

#[test]
fn queue_bound_holds_and_back_pressure_reaches_the_writer() {
    let queue = 16 * 1024;
    let (worst, max_queued) = standing_backlog(queue, 3);
    assert!(max_queued <= queue as u64, "queue peak {max_queued} B over its bound {queue} B");
    // Without back-pressure a loopback writer would get megabytes ahead.
    let slack = 64 * 1024;
    assert!(
        worst <= (queue + slack) as u64,
        "accepted, not delivered: {worst} B; bound {queue} B + {slack} B"
    );
}

#[test]
fn a_larger_queue_holds_more() {
    let (small, _) = standing_backlog(4 * 1024, 2);
    let (large, _) = standing_backlog(96 * 1024, 2);
    assert!(large >= small + 64 * 1024, "held with a 4 KiB queue {small} B, with 96 KiB {large} B");
}
