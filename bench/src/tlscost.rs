//! The cost of TLS (issue 8): relay throughput and added latency over TLS
//! against plain text, both through the same server instance in the same run.
//!
//! The server runs with TLS on (a throwaway certificate in a temporary state
//! directory), so it tells each connection apart by its first byte. Plain-text
//! clients wait out the server's grace period for `hello`; TLS clients
//! handshake with rustls and [`komunikator_tls::TofuVerifier`] and then use
//! [`komunikator_tls::split`] halves, exactly as the Komunikator client does.
//! Both kinds of client run the same blocking sender and receiver code, so the
//! difference between them is TLS: encryption in the sender, decryption and
//! re-encryption in the server, decryption in the receiver.
//!
//! Threads: one sender and one receiver thread per measurement; the calling
//! thread keeps time.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use komunikator_protocol::MediaKind;

use crate::engine::sleep_until;
use crate::net::Control as _;
use crate::procfs::Sample;
use crate::runs::Lat;
use crate::stats::Samples;
use crate::svg::fmt_us;
use crate::throughput::{self, Throughput};
use crate::wire::{Event, Parser, encode_frame, now_ns, ns_of};

/// Plain text or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The protocol as `nc` speaks it.
    Plain,
    /// Inside TLS 1.3.
    Tls,
}

/// One client of the server, in either mode, with blocking halves.
pub struct Peer {
    /// Plaintext in (decrypted under TLS).
    pub reader: Box<dyn Read + Send>,
    /// Plaintext out (encrypted under TLS).
    pub writer: Box<dyn Write + Send>,
    /// The socket, for timeouts.
    pub socket: TcpStream,
    /// What the reader has parsed so far.
    pub parser: Parser,
    id: String,
    pending: VecDeque<String>,
}

impl Peer {
    /// Connects to `addr` in `mode` and reads `hello`.
    ///
    /// # Errors
    /// When the connection, the handshake or the greeting fails.
    pub fn connect(addr: SocketAddr, mode: Mode) -> anyhow::Result<Peer> {
        let socket = TcpStream::connect(addr).context("connecting")?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match mode {
            Mode::Plain => (Box::new(socket.try_clone()?), Box::new(socket.try_clone()?)),
            Mode::Tls => {
                let verifier = Arc::new(komunikator_tls::TofuVerifier::new(None));
                let config = Arc::new(verifier.client_config()?);
                let name = "komunikator".try_into().context("server name")?;
                let mut conn = rustls::Connection::from(rustls::ClientConnection::new(config, name)?);
                komunikator_tls::split::handshake(&mut conn, &mut &socket).context("TLS handshake")?;
                let (r, w) = komunikator_tls::split(conn, socket.try_clone()?, socket.try_clone()?);
                (Box::new(r), Box::new(w))
            }
        };
        let mut peer = Peer {
            reader,
            writer,
            socket,
            parser: Parser::default(),
            id: String::new(),
            pending: VecDeque::new(),
        };
        let hello = peer.wait_line("hello ")?;
        peer.id = hello.split(' ').nth(1).unwrap_or_default().to_owned();
        Ok(peer)
    }
}

impl crate::net::Control for Peer {
    fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        self.writer.write_all(format!("{line}\n").as_bytes()).context("sending a line")
    }

    fn wait_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        crate::net::wait_line(&mut self.reader, &self.socket, &mut self.parser, &mut self.pending, prefix)
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// Opens one call through the server with both parties in `mode`.
///
/// # Errors
/// When any step of the call setup fails.
pub fn call(addr: SocketAddr, mode: Mode, tag: &str) -> anyhow::Result<(Peer, Peer)> {
    let mut a = Peer::connect(addr, mode).context("caller")?;
    let mut b = Peer::connect(addr, mode).context("callee")?;
    crate::net::pair_up(&mut a, &mut b, tag)?;
    Ok((a, b))
}

/// Relay throughput, one call in `mode`, `frame`-byte frames.
///
/// # Errors
/// When the call cannot be set up or a socket fails.
pub fn throughput(
    addr: SocketAddr,
    mode: Mode,
    frame: usize,
    window: (Duration, Duration),
    probe: &dyn Fn() -> Option<Sample>,
) -> anyhow::Result<Throughput> {
    let (a, b) = call(addr, mode, &format!("t{mode:?}"))?;
    a.socket.set_read_timeout(None)?;
    a.socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    b.socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    throughput::run_io(a.writer, b.reader, b.parser, frame, window.0, window.1, probe)
}

/// One-way latency of `size`-byte frames at `per_s` frames/s, one call in `mode`.
///
/// # Errors
/// When the call cannot be set up, a socket fails, or nothing arrives.
pub fn latency(
    addr: SocketAddr,
    mode: Mode,
    size: usize,
    per_s: f64,
    window: (Duration, Duration),
) -> anyhow::Result<Lat> {
    let (mut a, mut b) = call(addr, mode, &format!("l{mode:?}{size}"))?;
    b.socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let start = Instant::now() + Duration::from_millis(20);
    let (from, until) = (start + window.0, start + window.0 + window.1);
    let (from_ns, until_ns) = (ns_of(from), ns_of(until));
    let stop = AtomicBool::new(false);
    let kind = if size <= 1000 { MediaKind::Audio } else { MediaKind::Video };
    let mut samples = std::thread::scope(|scope| -> anyhow::Result<Samples> {
        let stop = &stop;
        let sender = scope.spawn(move || -> io::Result<()> {
            let period = Duration::from_secs_f64(1.0 / per_s);
            let mut buf = Vec::with_capacity(size + 64);
            for i in 0u32.. {
                let due = start + period * i;
                if due >= until || stop.load(Ordering::Relaxed) {
                    break;
                }
                sleep_until(due);
                buf.clear();
                encode_frame(&mut buf, kind, true, size, now_ns());
                a.writer.write_all(&buf)?;
            }
            Ok(())
        });
        let receiver = scope.spawn(move || -> anyhow::Result<Samples> {
            let mut buf = vec![0u8; 256 << 10];
            let mut got = Samples::default();
            let drain_until = until + Duration::from_millis(500);
            while Instant::now() < drain_until {
                let n = match b.reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    // Quiet for a read timeout after the sender finished: all is in.
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = now_ns();
                b.parser.feed(&buf[..n], |e| {
                    if let Event::Media { stamp_ns, .. } = e {
                        if (from_ns..until_ns).contains(&stamp_ns) {
                            got.push(now.saturating_sub(stamp_ns));
                        }
                    }
                })?;
            }
            Ok(got)
        });
        let sent = sender.join().map_err(|_| anyhow::anyhow!("sender panicked"))?;
        stop.store(true, Ordering::SeqCst);
        sent.context("sending")?;
        receiver.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?
    })?;
    anyhow::ensure!(!samples.is_empty(), "{mode:?} {size} B: no frame arrived");
    Ok(Lat { p50: samples.pct_us(50.0), p99: samples.pct_us(99.0), n: samples.len() })
}

/// Everything the TLS-cost benchmark measured.
#[derive(Debug, Clone, Default)]
pub struct TlsCost {
    /// Frame size of the throughput runs, bytes.
    pub frame: usize,
    /// Throughput (plain, TLS).
    pub throughput: Option<(Throughput, Throughput)>,
    /// Per frame size: (size, plain, TLS).
    pub latency: Vec<(usize, Lat, Lat)>,
    /// Frames per second of the latency runs.
    pub rate: f64,
}

/// Renders the TLS section of the report.
pub fn render(s: &mut String, t: &TlsCost) {
    let _ = writeln!(s, "## 8. The cost of TLS\n");
    let _ = writeln!(
        s,
        "One server with TLS on (its self-signed certificate in a temporary state directory) serves plain-text \
         and TLS 1.3 clients on one port; both kinds run the same blocking sender and receiver code, and the \
         TLS ones use rustls with `komunikator_tls::TofuVerifier` and `komunikator_tls::split`, as the client \
         does. So a TLS frame is encrypted by the sender, decrypted and re-encrypted by the server (no fast \
         path under TLS: every frame goes through the receiver's writer thread) and decrypted by the receiver.\n"
    );
    if let Some((p, t2)) = t.throughput {
        let _ = writeln!(
            s,
            "| Throughput, one call, {} KiB frames | Payload throughput | Ratio of plain | Server CPU (% of one core) | Bench CPU |\n|---|---|---|---|---|",
            t.frame >> 10
        );
        let _ = writeln!(
            s,
            "| Plain text | {:.2} GB/s | 1 | {:.0} % | {:.0} % |",
            p.bytes_per_s / 1e9,
            p.server_cpu.unwrap_or(0.0),
            p.bench_cpu
        );
        let _ = writeln!(
            s,
            "| TLS 1.3 | {:.2} GB/s | **{:.2}** | {:.0} % | {:.0} % |\n",
            t2.bytes_per_s / 1e9,
            t2.bytes_per_s / p.bytes_per_s,
            t2.server_cpu.unwrap_or(0.0),
            t2.bench_cpu
        );
    }
    if !t.latency.is_empty() {
        let _ = writeln!(
            s,
            "One-way latency through the server, one call, {} frames/s (send time in the payload). TLS added = \
             TLS minus plain text; it includes the sender's encryption and the receiver's decryption.\n",
            t.rate
        );
        let _ = writeln!(
            s,
            "| Frame | Samples | Plain p50 | Plain p99 | TLS p50 | TLS p99 | **TLS added p50** | **TLS added p99** |\n|---|---|---|---|---|---|---|---|"
        );
        for (size, p, t2) in &t.latency {
            let _ = writeln!(
                s,
                "| {size} B | {} | {} | {} | {} | {} | **{}** | **{}** |",
                t2.n,
                fmt_us(p.p50),
                fmt_us(p.p99),
                fmt_us(t2.p50),
                fmt_us(t2.p99),
                fmt_us(t2.p50 - p.p50),
                fmt_us(t2.p99 - p.p99)
            );
        }
        let _ = writeln!(s);
    }
}
