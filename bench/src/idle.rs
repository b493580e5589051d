//! Idle clients: server memory and threads per connected client that only
//! reads what the server sends (its `hello` and everyone's `presence`).

use std::io::{self, Read};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::net;
use crate::procfs::{Sample, Server, wait_threads};

/// The server at one number of idle clients.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// Connected clients.
    pub clients: usize,
    /// The server then.
    pub sample: Sample,
}

/// What the idle run measured.
#[derive(Debug)]
pub struct Idle {
    /// The server with no client.
    pub empty: Sample,
    /// The server at each level.
    pub levels: Vec<Level>,
    /// The server command.
    pub command: String,
}

/// Connects clients up to each of `levels` and samples the server each time.
///
/// # Errors
/// When the server cannot start or refuses a client.
pub fn run(server_bin: &Path, levels: &[usize]) -> anyhow::Result<Idle> {
    let most = levels.iter().copied().max().unwrap_or(0);
    let max = (most + 100).to_string();
    let server = Server::start(server_bin, &["--max-clients", &max, "--max-per-ip", &max])?;
    std::thread::sleep(Duration::from_millis(300));
    let empty = server.sample()?;
    let mut streams: Vec<TcpStream> = Vec::with_capacity(most);
    let mut out = Vec::new();
    for &level in levels {
        while streams.len() < level {
            let ep = net::client(server.addr, None).with_context(|| format!("client {}", streams.len()))?;
            ep.stream.set_nonblocking(true)?;
            streams.push(ep.stream);
            if streams.len() % 200 == 0 {
                drain(&mut streams, Duration::ZERO)?;
            }
        }
        let threads = empty.threads + 2 * level as u64;
        wait_threads(&server, threads, Duration::from_secs(10))?;
        drain(&mut streams, Duration::from_millis(500))?;
        std::thread::sleep(Duration::from_millis(300));
        out.push(Level { clients: level, sample: server.sample()? });
    }
    Ok(Idle { empty, levels: out, command: server.command.clone() })
}

/// Reads and discards everything pending, until nothing has come for `quiet`.
fn drain(streams: &mut [TcpStream], quiet: Duration) -> anyhow::Result<()> {
    let mut buf = [0u8; 16384];
    let mut last_data = Instant::now();
    loop {
        let mut got = false;
        for s in streams.iter_mut() {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => anyhow::bail!("the server closed an idle client"),
                    Ok(_) => got = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if got {
            last_data = Instant::now();
        } else if last_data.elapsed() >= quiet {
            return Ok(());
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
