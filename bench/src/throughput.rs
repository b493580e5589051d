//! Relay throughput: one call, one direction, large frames sent as fast as
//! the path takes them. The receiver parses the framing the same way for a
//! direct pair and for a relayed call.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use komunikator_protocol::MediaKind;

use crate::engine::sleep_until;
use crate::net::Endpoint;
use crate::procfs::Sample;
use crate::wire::{Event, Parser, encode_frame};

/// What one throughput run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    /// Payload bytes per second delivered in the window.
    pub bytes_per_s: f64,
    /// Server CPU in the window, percent of one core (relay runs).
    pub server_cpu: Option<f64>,
    /// Bench CPU in the window, percent of one core.
    pub bench_cpu: f64,
}

/// Sends `frame`-byte frames from `a` to `b` for `warmup + measure`.
///
/// # Errors
/// When a socket fails or a thread panics.
pub fn run(
    pair: (Endpoint, Endpoint),
    frame: usize,
    warmup: Duration,
    measure: Duration,
    probe: &dyn Fn() -> Option<Sample>,
) -> anyhow::Result<Throughput> {
    let (a, b) = pair;
    a.stream.set_read_timeout(None)?;
    // A write still pending when the run ends gives up instead of hanging.
    a.stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    b.stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    run_io(a.stream, b.stream, b.parser, frame, warmup, measure, probe)
}

/// The same over any blocking halves (plain sockets or TLS): `w` must time
/// out its writes and `r` its reads (about a second and 100 ms), so the run
/// can end.
///
/// # Errors
/// When a socket fails or a thread panics.
pub fn run_io(
    mut w: impl Write + Send,
    mut r: impl Read + Send,
    mut parser: Parser,
    frame: usize,
    warmup: Duration,
    measure: Duration,
    probe: &dyn Fn() -> Option<Sample>,
) -> anyhow::Result<Throughput> {
    let stop = AtomicBool::new(false);
    let from = Instant::now() + warmup;
    let until = from + measure;
    let mut bytes_in_window = 0u64;
    let mut samples = (None, None, None, None);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let stop = &stop;
        let sender = scope.spawn(move || -> io::Result<()> {
            // One frame, built once: throughput needs no timestamps, and
            // rebuilding 1 MiB per frame would slow the sender, not the path.
            let mut buf = Vec::with_capacity(frame + 64);
            encode_frame(&mut buf, MediaKind::Video, true, frame, 0);
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = write_all(&mut w, &buf, stop) {
                    return if stop.load(Ordering::Relaxed) { Ok(()) } else { Err(e) };
                }
            }
            Ok(())
        });
        let receiver = scope.spawn(move || -> anyhow::Result<u64> {
            let mut buf = vec![0u8; 1 << 20];
            let mut counted = 0u64;
            // Keep draining a little after the window so the sender never hangs.
            let drain_until = until + Duration::from_millis(1500);
            let mut ended = false;
            while !ended && Instant::now() < drain_until {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    // Quiet for a read timeout after the sender stopped: all is in.
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        if stop.load(Ordering::Relaxed) && Instant::now() >= until {
                            break;
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = Instant::now();
                let inside = now >= from && now < until;
                parser.feed(&buf[..n], |e| match e {
                    Event::Media { len, .. } if inside => counted += len as u64,
                    Event::Line(l) if l.starts_with("stop") => ended = true,
                    _ => {}
                })?;
            }
            Ok(counted)
        });
        sleep_until(from);
        samples.0 = probe();
        samples.1 = Sample::of("self").ok();
        sleep_until(until);
        samples.2 = probe();
        samples.3 = Sample::of("self").ok();
        stop.store(true, Ordering::SeqCst);
        sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))??;
        bytes_in_window = receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        Ok(())
    })?;
    let server_cpu = samples.0.zip(samples.2).map(|(s, e)| s.cpu_percent_until(&e));
    let bench_cpu = samples.1.zip(samples.3).map(|(s, e)| s.cpu_percent_until(&e)).unwrap_or(0.0);
    Ok(Throughput { bytes_per_s: bytes_in_window as f64 / measure.as_secs_f64(), server_cpu, bench_cpu })
}

/// Writes all of `buf` to a blocking writer with a write timeout; gives up
/// (Ok) on a timeout once `stop` is set.
fn write_all(w: &mut impl Write, mut buf: &[u8], stop: &AtomicBool) -> io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
