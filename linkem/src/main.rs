//! `komunikator-linkem`: runs one emulated link between clients and a
//! server until SIGINT or SIGTERM, on the main thread (the link's own
//! threads do the work). Also two hidden helpers for tests, which run inside
//! a namespace through `ip netns exec`: `--blast` and `--sink`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use komunikator_linkem::{Backend, Dir, Link, LinkSpec, Shape};

const SPEC_HELP: &str = "\
SPEC (one direction; items separated by commas, case-insensitive):
  unlimited                    no shaping
  500kbit | 2mbit | 500        the rate (kbit/s when bare)
  delay=100ms                  one-way delay (ms or s)
  queue=200ms | queue=64kb     bottleneck buffer: time at the first rate, or bytes
                               (b, kb/kib = 1024, mb/mib); default 100ms; when it is
                               full the proxy stops reading (back-pressure)
  at=10s:300kbit               from 10 s after start, a new rate
  at=30s:2mbit:delay=20ms      ... and/or a new delay

Example: --up 500kbit,delay=100ms,queue=200ms,at=10s:300kbit,at=30s:2000kbit --down unlimited

Back ends: user (a TCP proxy on --listen, always available, models delay);
netns (root only: a network namespace, a veth pair and tc tbf, real drops, no
delay; run the client with the printed `ip netns exec` prefix and the server on
0.0.0.0); auto (netns when it can run and no delay is asked for).";

/// A link emulator for Komunikator: rate, delay, bottleneck queue and rate
/// schedule per direction, between clients and a server.
#[derive(Parser, Debug)]
#[command(name = "komunikator-linkem", version, after_help = SPEC_HELP)]
struct Args {
    /// Where clients connect (user-space shaper).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The server.
    #[arg(long, required_unless_present_any = ["blast", "sink"])]
    upstream: Option<SocketAddr>,
    /// Client to server shape (SPEC below).
    #[arg(long, default_value = "unlimited")]
    up: Shape,
    /// Server to client shape (SPEC below).
    #[arg(long, default_value = "unlimited")]
    down: Shape,
    /// auto, user or netns.
    #[arg(long, default_value = "user")]
    backend: Backend,
    /// Test helper: connect to ADDR, write --bytes bytes, half-close, wait for the close.
    #[arg(long, hide = true)]
    blast: Option<SocketAddr>,
    /// Test helper: connect to ADDR, read to the end, print the byte count and seconds.
    #[arg(long, hide = true)]
    sink: Option<SocketAddr>,
    /// Bytes for --blast.
    #[arg(long, hide = true, default_value_t = 1_000_000)]
    bytes: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(addr) = args.blast {
        return blast(addr, args.bytes);
    }
    if let Some(addr) = args.sink {
        return sink(addr);
    }
    let Some(upstream) = args.upstream else { bail!("--upstream is required") };
    let spec = LinkSpec { up: args.up, down: args.down };
    let link = Link::start_on(args.listen, upstream, &spec, args.backend).context("start the link")?;
    println!("listening on {} (backend: {})", link.client_addr(), link.backend());
    if let Some(why) = link.fallback_reason() {
        println!("not netns: {why}");
    }
    let prefix = link.command_prefix();
    if !prefix.is_empty() {
        println!("run the client with: {} ...", prefix.join(" "));
    }
    println!("up: {}\ndown: {}", spec.up, spec.down);
    let mut signals = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM])
        .context("install the signal handlers")?;
    signals.forever().next();
    for dir in [Dir::Up, Dir::Down] {
        let s = link.stats(dir);
        println!(
            "{}: {} bytes delivered, max queue {} bytes, {} packets dropped",
            dir.as_str(),
            s.bytes_out,
            s.max_queued,
            s.dropped_packets
        );
    }
    Ok(())
}

fn blast(addr: SocketAddr, bytes: u64) -> Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")?;
    let block = [0x5au8; 16 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).context("write")?;
        left -= n as u64;
    }
    s.shutdown(std::net::Shutdown::Write).context("half-close")?;
    let _ = s.read(&mut [0u8; 1]);
    Ok(())
}

fn sink(addr: SocketAddr) -> Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")?;
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf).context("read")? {
            0 => break,
            n => total += n as u64,
        }
    }
    println!("{total} bytes in {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}
