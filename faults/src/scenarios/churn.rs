//! Connection churn: 1,000 client slots on 10 threads, each slot connecting,
//! naming itself, refreshing and leaving (by close or reset) over and over
//! for a bounded time. Afterwards the server is back at its baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::Harness;
use crate::client::{Client, Rng};
use crate::{Mode, Ran};

const THREADS: usize = 10;

#[derive(Default)]
struct Counts {
    joins: AtomicUsize,
    refreshes: AtomicUsize,
    leaves: AtomicUsize,
    /// Connections the server closed on us (it must not: we read everything).
    dropped: AtomicUsize,
}

pub(super) fn run(mode: Mode, rng: &mut Rng) -> Result<Ran> {
    // Every join, nick and leave is announced to everyone, so the work grows
    // with the square of the clients: quick mode churns fewer slots.
    let (slots, secs) = match mode {
        Mode::Quick => (300, 5),
        Mode::Long => (1000, 120),
    };
    let h = Harness::start(&[], slots)?;
    let addr = h.server.addr;
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (counts, stop) = (Arc::clone(&counts), Arc::clone(&stop));
            let mut rng = Rng::new(rng.next_u64());
            std::thread::spawn(move || -> Result<()> {
                let mut mine: Vec<Option<Client>> = (0..slots / THREADS).map(|_| None).collect();
                let mut serial = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for (i, slot) in mine.iter_mut().enumerate() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        serial += 1;
                        // 20 source addresses, 50 slots each: under the per-address cap.
                        let source =
                            std::net::Ipv4Addr::new(127, 0, 2, 1 + ((t * slots / THREADS + i) % 20) as u8);
                        step(slot, &format!("c{t}x{i}y{serial}"), (source.into(), addr), &mut rng, &counts)
                            .with_context(|| format!("worker {t}, slot {i}"))?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    // Sample the number of server threads as the load runs.
    let mut max_threads = 0;
    // Resident memory at each quarter of the run: churn must not make it climb.
    let mut rss = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let m = h.server.metrics();
        max_threads = max_threads.max(m.threads);
        if start.elapsed() >= Duration::from_secs(secs) * (rss.len() as u32 + 1) / 4 {
            rss.push(m.rss_kib);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("a churn worker panicked"))??;
    }
    let took = start.elapsed().as_secs_f64();
    let dropped = counts.dropped.load(Ordering::Relaxed);
    ensure!(dropped == 0, "the server closed {dropped} well-behaved connections");
    let checks = h.finish()?;
    let joins = counts.joins.load(Ordering::Relaxed);
    Ok(Ran::Done(format!(
        "{slots} client slots for {took:.0} s: {joins} connects+names, {} refreshes, {} leaves \
         ({:.0} connections/s, up to {max_threads} server threads, RSS by quarter {rss:?} KiB); {checks}",
        counts.refreshes.load(Ordering::Relaxed),
        counts.leaves.load(Ordering::Relaxed),
        joins as f64 / took,
    )))
}

/// One action on one slot: join if empty, else refresh or leave.
fn step(
    slot: &mut Option<Client>,
    nick: &str,
    (source, addr): (std::net::IpAddr, std::net::SocketAddr),
    rng: &mut Rng,
    counts: &Counts,
) -> Result<()> {
    match slot.take() {
        None => {
            let mut c = Client::connect_from(source, addr)?;
            c.name(nick)?;
            counts.joins.fetch_add(1, Ordering::Relaxed);
            *slot = Some(c);
        }
        Some(mut c) => {
            // Everyone hears everyone's presence: keep up with it.
            c.drain();
            if c.closed {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            match rng.below(3) {
                0 => {
                    c.send("refresh")?;
                    let head = c.expect_prefix("clients ")?;
                    let n: usize = head["clients ".len()..].parse().context("clients count")?;
                    for _ in 0..n {
                        let entry = c.recv()?;
                        ensure!(!entry.line().starts_with("presence "), "presence inside a clients list");
                    }
                    counts.refreshes.fetch_add(1, Ordering::Relaxed);
                    *slot = Some(c);
                }
                1 => {
                    c.reset();
                    counts.leaves.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    drop(c);
                    counts.leaves.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    Ok(())
}
