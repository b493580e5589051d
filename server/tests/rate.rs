//! `rate`: a sender whose peer's connection is the limit hears how fast that
//! connection takes media, repeatedly while it lasts, then `rate -`; a fast
//! receiver never causes it, and nothing is said once the call has ended.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Client, Msg, Server, call_between, call_pair, drain};

/// How fast the slow receiver reads at most: 60 KB/s, 480 kbit/s.
const SLOW_READ: f64 = 60_000.0;

/// Sets its flag when dropped, also by a failed assertion, so the threads
/// of a scope that watch it end and the test fails instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends about 2 Mbit/s until `stop`: every 20 ms a 5 KB video frame (a 15 KB
/// keyframe every 25th) and a 100-byte audio packet.
fn send_media(mut stream: TcpStream, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = i % 25 == 0;
        let len = if key { 15_000 } else { 5_000 };
        let mut out = format!("video {i} {} {len}\n", if key { "k" } else { "-" }).into_bytes();
        out.resize(out.len() + len, 0x5a);
        out.extend_from_slice(format!("audio {i} k 100\n").as_bytes());
        out.resize(out.len() + 100, 0xa5);
        if stream.write_all(&out).is_err() {
            return;
        }
        i += 1;
        thread::sleep(Duration::from_millis(20));
    }
}

/// The `rate` lines `client` receives until `until`, with when they came.
fn rates_until(client: &mut Client, t0: Instant, until: Instant) -> Vec<(Duration, String)> {
    let mut got = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(Msg::Line(line)) = client.try_recv(left) {
            if line.starts_with("rate") {
                got.push((t0.elapsed(), line));
            }
        }
    }
    got
}

fn kbps(line: &str) -> Option<u32> {
    line.strip_prefix("rate ").and_then(|k| k.parse().ok())
}

#[test]
fn a_slow_receivers_sender_hears_its_rate_while_it_lasts_then_rate_dash() {
    let server = Server::start();
    let slow = Client::connect_small_rcvbuf(server.addr, 16 << 10);
    let (mut a, mut b) = call_between(server.named("ala"), slow);
    let writer = a.stream.try_clone().unwrap();
    let t0 = Instant::now();
    let (speedup, end) = (t0 + Duration::from_secs(6), t0 + Duration::from_secs(12));
    let stop = AtomicBool::new(false);
    let (rates, slow_bytes) = thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| send_media(writer, &stop));
        let reader = scope.spawn(|| {
            let slow_bytes = drain(&mut b.stream, Some(SLOW_READ), speedup);
            drain(&mut b.stream, None, end);
            slow_bytes
        });
        let rates = rates_until(&mut a, t0, end);
        stop.store(true, Ordering::Relaxed);
        (rates, reader.join().unwrap())
    });
    let slow_phase = speedup - t0;
    let limits: Vec<&(Duration, String)> = rates.iter().filter(|(at, _)| *at < slow_phase).collect();
    assert!(limits.len() >= 2, "rate repeated while the receiver is slow: {rates:?}");
    // What the receiver really took: TCP with a small window on loopback
    // delivers in bursts, so it reads less than it would allow.
    let true_kbps = slow_bytes as f64 * 8.0 / 1000.0 / slow_phase.as_secs_f64();
    for (at, line) in &limits {
        let k = kbps(line).unwrap_or_else(|| panic!("{line:?} at {at:?} while slow: {rates:?}"));
        let k = f64::from(k);
        assert!(0.3 * true_kbps <= k && k <= 3.0 * true_kbps, "{k} kbit/s for {true_kbps}: {rates:?}");
    }
    for pair in limits.windows(2) {
        // About every second (later while the server's write to the slow
        // receiver blocks), never closer than 500 ms.
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(450), "rate lines too close: {rates:?}");
        assert!(gap < Duration::from_secs(3), "rate not repeated: {rates:?}");
    }
    let (last_at, last) = rates.last().unwrap();
    assert_eq!(last, "rate -", "the limit is lifted once the receiver is fast: {rates:?}");
    assert!(*last_at > slow_phase, "lifted only after the speed-up: {rates:?}");
    assert_eq!(rates.iter().filter(|(_, l)| l == "rate -").count(), 1, "{rates:?}");
}

#[test]
fn a_fast_receiver_never_causes_rate() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    let writer = a.stream.try_clone().unwrap();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(4);
    let stop = AtomicBool::new(false);
    let rates = thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| send_media(writer, &stop));
        let reader = scope.spawn(|| drain(&mut b.stream, None, end));
        let rates = rates_until(&mut a, t0, end);
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 500_000, "the media flowed");
        rates
    });
    assert_eq!(rates, vec![], "a fast receiver is not the limit");
}

#[test]
fn nothing_is_said_after_the_call_ends() {
    let server = Server::start();
    let slow = Client::connect_small_rcvbuf(server.addr, 16 << 10);
    let (mut a, mut b) = call_between(server.named("ala"), slow);
    let writer = a.stream.try_clone().unwrap();
    let t0 = Instant::now();
    let stop = AtomicBool::new(false);
    let stalled_until = t0 + Duration::from_secs(8);
    thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let sender = scope.spawn(|| send_media(writer, &stop));
        let reader = scope.spawn(|| drain(&mut b.stream, Some(SLOW_READ), stalled_until));
        // Limited: the sender hears a rate, then hangs up while it still is.
        let deadline = Instant::now() + Duration::from_secs(5);
        let heard = loop {
            let msg = a.try_recv(deadline.saturating_duration_since(Instant::now()));
            match msg {
                Some(Msg::Line(line)) if line.starts_with("rate ") => break Some(line),
                Some(_) => {}
                None => break None,
            }
        };
        assert!(heard.as_deref().and_then(kbps).is_some(), "a limit was heard first: {heard:?}");
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        a.send("stop");
        // Lines queued before the stop come before this pong; none after it.
        a.sync();
        thread::sleep(Duration::from_millis(2500));
        let after: Vec<Msg> = a.sync().into_iter().filter(|m| m.line().starts_with("rate")).collect();
        assert_eq!(after, vec![], "no rate (not even rate -) outside a call");
        reader.join().unwrap();
    });
}
