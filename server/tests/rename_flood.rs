//! A client renaming itself flat out: renames are throttled (a burst of 3,
//! then one per 10 s; the rest get `error rate-limited`), so bystanders
//! receive a bounded number of `presence` bytes and the log stays small.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::Server;

/// Counts the bytes arriving on `stream` until `stop` is set.
fn count_bytes(mut stream: TcpStream, stop: &Arc<AtomicBool>) -> JoinHandle<usize> {
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut total = 0;
        let mut chunk = [0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        total
    })
}

#[test]
fn renames_past_the_burst_are_refused() {
    let server = Server::start();
    let mut a = server.named("ala");
    let mut watcher = server.client();
    // Once its ping is answered, the watcher is in the table.
    watcher.sync();
    a.send("name ala2");
    a.expect("ok name ala2");
    a.send("name ala3");
    a.expect("ok name ala3");
    a.send("name ala4");
    a.expect_prefix("error rate-limited");
    a.send("name ala5");
    a.expect_prefix("error rate-limited");
    // Refused renames change nothing and tell nobody.
    // (A presence still queued is replaced by a newer one, so ala2 may be skipped.)
    let seen: Vec<String> = watcher.sync().iter().map(|m| m.line().to_owned()).collect();
    assert_eq!(seen.last(), Some(&format!("presence {} free ala3", a.id)), "{seen:?}");
    assert!(seen.iter().all(|l| l.ends_with("ala2") || l.ends_with("ala3")), "{seen:?}");
    a.send("refresh");
    a.expect("clients 1");
    server.wait_for_log("renaming too fast");
    // Time for a second line, were there one, to be read too.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.log();
    assert_eq!(log.matches("renaming too fast").count(), 1, "one log line per flood: {log}");
}

#[test]
fn a_rename_flood_reaches_bystanders_as_a_trickle() {
    let server = Server::start();
    let stop = Arc::new(AtomicBool::new(false));
    let bystanders: Vec<_> = (0..10).map(|i| server.named(&format!("by{i}"))).collect();
    let counters: Vec<_> =
        bystanders.iter().map(|b| count_bytes(b.stream.try_clone().unwrap(), &stop)).collect();
    let attacker = server.named("flood");
    let attacker_reads = count_bytes(attacker.stream.try_clone().unwrap(), &stop);
    let mut w = attacker.stream.try_clone().unwrap();
    // 14-byte lines, as in the report.
    let burst: Vec<u8> = (0..2000).flat_map(|i| format!("name fl{:06}\n", i % 2).into_bytes()).collect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if w.write_all(&burst).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let received: Vec<usize> = counters.into_iter().map(|c| c.join().unwrap()).collect();
    let attacker_got = attacker_reads.join().unwrap();
    assert!(attacker_got > 0);
    // The bystanders joined before the flood: at most a few presence lines each.
    for (i, bytes) in received.iter().enumerate() {
        assert!(*bytes < 4096, "bystander {i} received {bytes} bytes during the flood");
    }
    let log = server.log();
    assert!(log.len() < 16 << 10, "the log grew to {} bytes", log.len());
    // Everyone is still served.
    drop(bystanders);
    server.named("late").sync();
}
