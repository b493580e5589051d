//! Closing through the user-space shaper: a half-close reaches the other
//! side after the bytes before it (also through rate and delay), both ways;
//! an upstream that refuses costs the client its connection and nothing
//! else; dropping the link closes the connections through it.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use komunikator_linkem::{Backend, Dir, Link, LinkSpec, Shape};
use support::server;

fn slow() -> LinkSpec {
    LinkSpec::symmetric(Shape::kbps(800).with_delay(Duration::from_millis(30)))
}

#[test]
fn half_close_propagates_both_ways_after_the_data() {
    let (addr, srv) = server("127.0.0.1:0", |mut s| {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got[..1000]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got.len()
    });
    let link = Link::start(addr, &slow(), Backend::UserSpace).unwrap();
    let mut c = TcpStream::connect(link.client_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&[9u8; 50_000]).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(srv.join().unwrap(), 50_000, "the server's end of stream came before all the bytes");
    assert_eq!(back.len(), 1000);
    assert_eq!((link.stats(Dir::Up).bytes_out, link.stats(Dir::Down).bytes_out), (50_000, 1000));
}

#[test]
fn refused_upstream_closes_the_client_only() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let link = Link::start(port, &slow(), Backend::UserSpace).unwrap();
    for _ in 0..3 {
        let mut c = TcpStream::connect(link.client_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(matches!(c.read(&mut [0u8; 1]), Ok(0) | Err(_)));
    }
    assert_eq!(link.connections(), 0);
}

#[test]
fn dropping_the_link_closes_its_connections() {
    let (addr, srv) = server("127.0.0.1:0", |mut s| s.read(&mut [0u8; 1]).map_or(0, |n| n));
    let link = Link::start(addr, &slow(), Backend::UserSpace).unwrap();
    let mut c = TcpStream::connect(link.client_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(link.connections(), 1);
    drop(link);
    assert!(matches!(c.read(&mut [0u8; 1]), Ok(0) | Err(_)));
    assert_eq!(srv.join().unwrap(), 0, "the server saw a byte, not the end");
}
