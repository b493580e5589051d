//! A passive tap in front of a receiving client: a loopback TCP proxy that
//! forwards bytes both ways unchanged and, on the way to the client, parses
//! the plain-text protocol stream to time-stamp every media frame as it
//! arrives. The frame's `pts` is the sender's capture time (CLOCK_REALTIME
//! µs, docs/PROTOCOL.md), so `arrival - pts` is the frame's delay from
//! capture to the receiver's door, per frame, which the client's JSON only
//! gives as whole-call percentiles. It excludes decoding (about 1-2 ms,
//! section 6 of BENCHMARKS.md).
//!
//! Threads: one accept thread that takes a single connection, then one
//! thread per direction; all end when either side closes or the tap drops.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use komunikator_protocol::MediaKind;

use crate::wire::{Event, Parser};

/// Arrivals kept at most (a 60 s call brings about 5,000).
const MAX_ARRIVALS: usize = 200_000;

/// One media frame seen on its way to the client.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// When its last byte arrived, ms since the Unix epoch.
    pub at_ms: f64,
    /// Audio or video.
    pub kind: MediaKind,
    /// Arrival minus capture time (the header's `pts`), ms.
    pub delay_ms: f64,
}

/// A running tap; dropping it closes both connections and joins its threads.
pub struct Tap {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

impl Tap {
    /// Listens on 127.0.0.1 (a free port) and forwards its one connection to `upstream`.
    ///
    /// # Errors
    /// When the listening socket cannot be made.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<Tap> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the tap")?;
        let addr = listener.local_addr()?;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (a, s) = (arrivals.clone(), streams.clone());
        let accept = std::thread::Builder::new()
            .name("tap-accept".into())
            .spawn(move || {
                if let Ok((client, _)) = listener.accept() {
                    let _ = relay(client, upstream, &a, &s);
                }
            })
            .context("starting the tap")?;
        Ok(Tap { addr, arrivals, streams, accept: Some(accept) })
    }

    /// Where the client dials.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The frames seen so far, in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // Unblock the accept (if nobody came) and both copying threads.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for s in self.streams.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways until either side ends; runs on the accept thread.
fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    arrivals: &Arc<Mutex<Vec<Arrival>>>,
    streams: &Arc<Mutex<Vec<TcpStream>>>,
) -> anyhow::Result<()> {
    let server = TcpStream::connect(upstream).context("the tap connecting upstream")?;
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    streams.lock().unwrap_or_else(PoisonError::into_inner).extend([client.try_clone()?, server.try_clone()?]);
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let up = std::thread::Builder::new()
        .name("tap-up".into())
        .spawn(move || copy(c2, s2, |_| {}))
        .context("starting the tap's up thread")?;
    let mut parser = Parser::default();
    let mut broken = false;
    copy(server, client, |data| {
        if broken {
            return;
        }
        let now = wall_ms();
        let mut list = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        broken = parser
            .feed(data, |e| {
                if let Event::Media { kind, pts, .. } = e {
                    if list.len() < MAX_ARRIVALS {
                        list.push(Arrival { at_ms: now, kind, delay_ms: now - pts as f64 / 1000.0 });
                    }
                }
            })
            .is_err();
    });
    let _ = up.join();
    Ok(())
}

/// Copies `from` to `to`, showing each chunk to `see` first; half-closes `to` at the end.
fn copy(mut from: TcpStream, mut to: TcpStream, mut see: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                see(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Now, ms since the Unix epoch (the clock the client stamps capture times with).
pub fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
