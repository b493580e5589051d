//! The writer thread of one client: the only thread that writes to that
//! client's socket, draining its [`Outbox`] batch by batch in lane order
//! (see the parent module), and shutting the socket down when the outbox
//! is closed or a write fails.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::Instant;

use super::Outbox;

/// Starts the thread that drains `outbox` into `stream` until the outbox is
/// closed or a write fails; then it shuts the socket down, which also ends
/// the client's session thread. The thread calls `report`, holding no lock,
/// when it has decided a `rate` line for the client's peer: `report` should
/// hand it on with [`feedback::deliver`].
///
/// # Errors
/// When the thread cannot be spawned.
pub fn spawn_writer(
    outbox: std::sync::Arc<Outbox>,
    mut stream: crate::transport::WriteHalf,
    name: String,
    report: impl Fn() + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).stack_size(crate::THREAD_STACK).spawn(move || {
        let mut batch = Vec::with_capacity(64);
        let mut wrote = None;
        let result = loop {
            let mut skip = 0;
            if !outbox.next_batch(&mut batch, &mut skip, wrote.take()) {
                break Ok(());
            }
            if batch.is_empty() {
                report();
                // Whatever `report` did not deliver is dropped, so the writer never spins.
                outbox.take_report();
                continue;
            }
            wrote = Some(Instant::now());
            if let Err(e) = write_batch(&mut stream, &mut batch, skip) {
                break Err(e);
            }
        };
        outbox.mark_closed();
        match result {
            // Everything queued is written: send the FIN, and let the session
            // thread drain the input before the socket is closed.
            Ok(()) => {
                stream.close();
                let _ = stream.socket().shutdown(Shutdown::Write);
            }
            // The socket is broken: make sure the session thread notices too.
            Err(e) => {
                crate::log!(Debug, "write failed: {e}");
                let _ = stream.socket().shutdown(Shutdown::Both);
            }
        }
    })
}

fn write_batch(stream: &mut impl Write, batch: &mut Vec<Vec<u8>>, skip: usize) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = batch.iter().map(|b| io::IoSlice::new(b)).collect();
    if let Some(first) = batch.first() {
        slices[0] = io::IoSlice::new(&first[skip.min(first.len())..]);
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match stream.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    drop(slices);
    batch.clear();
    Ok(())
}

/// Starts a thread that drains `outbox` like a writer thread, but hands
/// each batch (whole lines and frames, in lane order) to `sink` instead of
/// a socket: for a cluster stand-in, whose client is on another node.
/// `sink` returning `false` ends it, as a failed write would; `on_end`
/// runs when the thread ends either way.
///
/// # Errors
/// When the thread cannot be spawned.
pub fn spawn_drain(
    outbox: std::sync::Arc<Outbox>,
    name: String,
    mut sink: impl FnMut(&[Vec<u8>]) -> bool + Send + 'static,
    on_end: impl FnOnce() + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).stack_size(crate::THREAD_STACK).spawn(move || {
        let mut batch = Vec::with_capacity(64);
        loop {
            let mut skip = 0;
            if !outbox.next_batch(&mut batch, &mut skip, None) {
                break;
            }
            if batch.is_empty() {
                // No socket is measured here: there is no `rate` to deliver.
                outbox.take_report();
                continue;
            }
            if let Some(first) = batch.first_mut() {
                first.drain(..skip.min(first.len()));
            }
            let delivered = sink(&batch);
            batch.clear();
            if !delivered {
                break;
            }
        }
        outbox.mark_closed();
        on_end();
    })
}
