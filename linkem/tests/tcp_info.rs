//! What the sender's TCP sees through the user-space shaper: its
//! `tcpi_bytes_acked` advances at the shaped rate (the proxy's small
//! buffers pass the bottleneck back as window back-pressure) and its unsent
//! bytes pile up, which is what the server's pacing reads.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use komunikator_linkem::{Backend, Link, LinkSpec, Shape};
use support::{assert_near, server, writer};

fn tcp_info(s: &TcpStream) -> libc::tcp_info {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len)
    };
    assert_eq!(rc, 0, "TCP_INFO");
    info
}

#[test]
fn the_senders_tcp_sees_the_bottleneck() {
    let (addr, srv) = server("127.0.0.1:0", |mut s| {
        let mut buf = vec![0u8; 65536];
        while let Ok(1..) = s.read(&mut buf) {}
    });
    let link =
        Link::start(addr, &LinkSpec { up: Shape::kbps(800), down: Shape::unlimited() }, Backend::UserSpace)
            .unwrap();
    let c = TcpStream::connect(link.client_addr()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(c.try_clone().unwrap(), Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(700));
    let (t0, acked0) = (Instant::now(), tcp_info(&c).tcpi_bytes_acked);
    std::thread::sleep(Duration::from_millis(2000));
    let info = tcp_info(&c);
    let rate = (info.tcpi_bytes_acked - acked0) as f64 * 8.0 / 1000.0 / t0.elapsed().as_secs_f64();
    println!("sender: acked at {rate:.1} kbit/s, {} bytes not sent", info.tcpi_notsent_bytes);
    stop.store(true, Ordering::Relaxed);
    drop(link);
    w.join().unwrap();
    srv.join().unwrap();
    assert_near("the sender's acknowledged rate", rate, 800.0, 0.15);
    assert!(info.tcpi_notsent_bytes > 0, "the sender has nothing waiting: no back-pressure");
}
