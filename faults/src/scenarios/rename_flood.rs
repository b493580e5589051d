//! A rename flood: a client at 127.0.0.2 sends 14-byte `name` lines flat
//! out. Renames are throttled per connection (a burst of 3, then one per
//! 10 s) and a queued `presence` is replaced by a newer one, so ten named
//! bystanders receive a few hundred bytes each instead of megabytes, none is
//! disconnected, and the server's log stays small.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::Harness;
use crate::client::{Client, Rng};
use crate::{Mode, Ran};

/// Bytes a bystander may receive during the flood.
const BOUND: usize = 16 << 10;

pub(super) fn run(mode: Mode, _rng: &mut Rng) -> Result<Ran> {
    let flood_for = match mode {
        Mode::Quick => Duration::from_secs(2),
        Mode::Long => Duration::from_secs(15),
    };
    let h = Harness::start(&[], 50)?;
    let addr = h.server.addr;
    let log_before = h.server.log().len();
    let mut bystanders = (0..10)
        .map(|i| {
            let mut c = Client::connect(addr)?;
            c.name(&format!("widz{i}"))?;
            Ok(c)
        })
        .collect::<Result<Vec<_>>>()?;
    for b in &mut bystanders {
        b.ping(Duration::from_secs(5))?;
    }
    let mut flooder = Client::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), addr)?;
    flooder.name("zalew")?;
    let sent = flood(&flooder.stream, flood_for)?;
    let mut worst = 0;
    for (i, b) in bystanders.iter_mut().enumerate() {
        let bytes = bytes_until_pong(b).with_context(|| format!("bystander {i} after the flood"))?;
        worst = worst.max(bytes);
    }
    ensure!(worst < BOUND, "a bystander received {worst} bytes during the flood (bound {BOUND})");
    let log_growth = h.server.log().len().saturating_sub(log_before);
    ensure!(log_growth < 64 << 10, "the log grew by {log_growth} bytes");
    drop((bystanders, flooder));
    let checks = h.finish()?;
    Ok(Ran::Done(format!(
        "{sent} renames in {flood_for:?} from 127.0.0.2: each of 10 bystanders received at most {worst} \
         bytes meanwhile, the log grew by {log_growth} bytes; {checks}"
    )))
}

/// Sends renames flat out on `stream` for `how_long`, reading (and
/// discarding) the replies on another thread; returns how many were sent.
fn flood(stream: &TcpStream, how_long: Duration) -> Result<usize> {
    let mut reader = stream.try_clone()?;
    reader.set_read_timeout(Some(Duration::from_millis(100)))?;
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::clone(&done);
    let drain = std::thread::spawn(move || {
        let mut chunk = [0u8; 65536];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if finished.load(Ordering::Relaxed) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let mut writer = stream.try_clone()?;
    let burst: Vec<u8> = (0..1000).flat_map(|i| format!("name zl{:06}\n", i % 2).into_bytes()).collect();
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < how_long {
        writer.write_all(&burst).context("flooding")?;
        sent += 1000;
    }
    done.store(true, Ordering::Relaxed);
    let _ = drain.join();
    Ok(sent)
}

/// Pings `c` and adds up the bytes of everything that came before the pong.
fn bytes_until_pong(c: &mut Client) -> Result<usize> {
    c.send("ping")?;
    let mut n = 0;
    loop {
        let m = c.recv()?;
        if m.line() == "pong" {
            return Ok(n);
        }
        n += m.line().len() + 1;
    }
}
