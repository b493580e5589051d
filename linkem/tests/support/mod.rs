//! Helpers for the link emulator's tests: a one-connection server on
//! 127.0.0.1:0 standing in for the upstream, bulk writers and a rate meter.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A server that accepts one connection and runs `f` on it (its thread).
pub fn server<T: Send + 'static>(
    bind: &str,
    f: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        f(s)
    });
    (addr, t)
}

/// Writes to `s` until `stop` is set or the write fails (its thread).
pub fn writer(mut s: TcpStream, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let block = [0x11u8; 8192];
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match s.write(&block) {
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        total
    })
}

/// Reads from `s` and returns the rate in kbit/s over `window`, counted
/// after a `warmup` (which skips the start-up burst of queues filling).
pub fn measure(s: &mut TcpStream, warmup: Duration, window: Duration) -> f64 {
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut counted = 0u64;
    let mut from: Option<Instant> = None;
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended during the measurement");
        let now = Instant::now();
        match from {
            None if now.duration_since(start) >= warmup => from = Some(now),
            None => {}
            Some(f) => {
                counted += n as u64;
                if now.duration_since(f) >= window {
                    return counted as f64 * 8.0 / 1000.0 / now.duration_since(f).as_secs_f64();
                }
            }
        }
    }
}

/// Asserts `measured` is within `tolerance` (a fraction) of `expected`.
pub fn assert_near(what: &str, measured: f64, expected: f64, tolerance: f64) {
    println!("{what}: {measured:.1} kbit/s (set {expected})");
    assert!(
        (measured - expected).abs() <= expected * tolerance,
        "{what}: measured {measured:.1} kbit/s, set {expected} (tolerance {:.0}%)",
        tolerance * 100.0
    );
}
