//! `rate`: a sender whose peer's connection is the limit hears how fast that
//! connection takes media, repeatedly while it lasts, then `rate -`; a fast
//! receiver never causes it, and nothing is said once the call has ended.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{Client, Msg, Server, StopOnDrop, call_between, call_pair, drain, rates_until, send_media};

/// How fast the slow receiver reads at most: 60 KB/s, 480 kbit/s.
const SLOW_READ: f64 = 60_000.0;

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
