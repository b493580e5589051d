//! Direct writes: a sender's session thread writing a video frame straight
//! into an idle receiver's socket (or splicing it there), instead of
//! queueing it for the receiver's writer thread. [`super::Outbox::begin_direct`]
//! decides under the outbox's lock whether the caller may; the
//! [`DirectWrite`] claim then runs on the sender's session thread, and
//! hands whatever the socket did not take to the writer thread when
//! dropped, so the wire stays well formed.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Outbox, Pushed};

/// How long a pusher's write may wait for room in the socket during a
/// [`DirectWrite`] before the rest of the frame goes to the writer thread.
pub const DIRECT_STALL: Duration = Duration::from_millis(2);

/// What [`Outbox::begin_direct`] decided.
pub enum Direct {
    /// The caller writes the frame itself.
    Claimed(DirectWrite),
    /// The drop policy dropped the frame; the caller discards its payload.
    Dropped(Pushed),
    /// The caller must queue the frame with [`Outbox::push_media`] as usual.
    Busy,
}

/// A claim on a receiver's socket for one frame that the caller writes
/// itself. Dropping it hands the unwritten rest of the frame to the writer
/// thread: the bytes given to [`DirectWrite::spill`], then zeros for any the
/// caller never had, so the wire stays well formed even when the sender
/// vanished mid-frame.
pub struct DirectWrite {
    pub(super) outbox: Arc<Outbox>,
    /// The receiver's socket.
    pub(super) fd: RawFd,
    /// Bytes of the frame not yet written to the socket.
    pub(super) owed: usize,
    /// The frame's length, header included.
    pub(super) len: usize,
    /// [`Outbox::calls_ended`] when the claim was made.
    pub(super) call: u64,
    pub(super) spill: Vec<u8>,
}

impl DirectWrite {
    /// Writes as much of `bytes` as the socket takes within
    /// [`DIRECT_STALL`]; returns how much that was. A broken connection
    /// takes nothing: the writer thread meets the error and closes it.
    pub fn send(&mut self, bytes: &[u8]) -> usize {
        if self.cancelled() {
            return 0;
        }
        let mut done = 0;
        while done < bytes.len() {
            // SAFETY: the pointer and length describe the unsent part of `bytes`.
            let n = unsafe {
                libc::send(self.fd, bytes[done..].as_ptr().cast(), bytes.len() - done, libc::MSG_NOSIGNAL)
            };
            if n > 0 {
                done += n as usize;
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        self.owed -= done.min(self.owed);
        done
    }

    /// Splices what `pipe` holds into the socket, as far as the socket takes
    /// it within [`DIRECT_STALL`]; returns how much that was. `more`: more of
    /// the frame follows.
    pub fn splice_from(&mut self, pipe: &mut crate::splice::Pipe, more: bool) -> usize {
        if self.cancelled() {
            return 0;
        }
        // One call: a short count means the socket is full, and waiting
        // again could add up to many stalls for a trickling receiver.
        let done = pipe.drain_to(self.fd, more).unwrap_or(0);
        self.owed -= done.min(self.owed);
        done
    }

    /// The call ended before the frame's first byte was written: it never
    /// will be (the end of a call is a barrier for its media).
    fn cancelled(&self) -> bool {
        self.owed == self.len && self.outbox.calls_ended.load(Ordering::SeqCst) != self.call
    }

    /// Bytes of the frame not written yet.
    pub fn owed(&self) -> usize {
        self.owed
    }

    /// Where the caller puts the unwritten rest of the frame, in order, for
    /// the writer thread to send once the claim is dropped.
    pub fn spill(&mut self) -> &mut Vec<u8> {
        &mut self.spill
    }
}

impl Drop for DirectWrite {
    fn drop(&mut self) {
        let o = &self.outbox;
        if let Some(socket) = &o.socket {
            let _ = socket.set_write_timeout(o.write_timeout);
        }
        let mut rest = std::mem::take(&mut self.spill);
        let cancelled = self.cancelled();
        let mut s = o.lock();
        s.direct = false;
        if cancelled {
            s.stats.video_dropped += 1;
        } else if self.owed == 0 {
            s.stats.video_spliced += 1;
        } else if !(s.closing || s.closed) {
            s.stats.video_spilled += 1;
            rest.truncate(self.owed);
            rest.resize(self.owed, 0);
            s.partial = Some((rest, 0));
        }
        drop(s);
        o.ready.notify_all();
    }
}
