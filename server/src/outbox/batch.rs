//! The writer's side of an [`Outbox`]: taking the next batch to write
//! (control, then audio, then paced video), watching what each write did
//! to the socket, and closing. Run on the client's writer thread.

use std::time::{Duration, Instant};

use super::*;

impl Outbox {
    /// Takes the next batch to write, waiting for one. `false` means: close
    /// the socket. The first `skip` bytes of the batch's first item are
    /// already written. An empty batch means: deliver the `rate` line decided
    /// for the peer ([`Outbox::take_report`]). `wrote`: when the writing of
    /// the previous batch started, if it was not empty.
    pub(super) fn next_batch(
        &self,
        batch: &mut Vec<Vec<u8>>,
        skip: &mut usize,
        wrote: Option<Instant>,
    ) -> bool {
        let mut s = self.lock();
        // The previous batch, if any, is written: see what it did to the
        // socket, so that a probe after a pause, or a write that waited for
        // the receiver, is measured.
        s.writing = false;
        let blocked = wrote.filter(|t| t.elapsed() >= pacing::BLOCKED);
        if blocked.is_some() || s.pacer.rate().is_some() || s.feedback.watching() {
            self.observe_after(&mut s, blocked);
        }
        loop {
            if s.direct {
                // A pusher is writing a frame; its rest, if any, comes back as `partial`.
                s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let tick = self.tick(&mut s);
            // A `rate` line waits for no write; a closing outbox sends none.
            let report = s.feedback.has_pending() && !s.closing;
            let hold = if report { None } else { self.fill_batch(&mut s, batch, skip) };
            if !batch.is_empty() {
                s.writing = true;
                drop(s);
                // Room was made: wake a blocked naive-relay pusher, if any.
                self.ready.notify_all();
                return true;
            }
            if s.closing {
                return false;
            }
            if report || s.feedback.has_pending() {
                // The `rate` line goes before anything else is written.
                return true;
            }
            s = match hold.or(tick) {
                // Video waits for the socket, or the socket must be watched:
                // look again soon, or when something comes.
                Some(recheck) => {
                    self.ready.wait_timeout(s, recheck).unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.ready.wait(s).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }

    /// Moves what may be written now into `batch`, in priority order; returns
    /// how long to wait before looking again when video is held.
    pub(super) fn fill_batch(
        &self,
        s: &mut State,
        batch: &mut Vec<Vec<u8>>,
        skip: &mut usize,
    ) -> Option<Duration> {
        const BATCH_BYTES: usize = 256 << 10;
        let mut bytes = 0;
        if s.partial.is_some() {
            // A frame the socket did not take at once: its write is measured.
            self.observe_after(s, None);
        }
        if let Some((rest, written)) = s.partial.take() {
            bytes += rest.len() - written;
            *skip = written;
            batch.push(rest);
        }
        while bytes < BATCH_BYTES {
            let item = if let Some(line) = s.control.pop_front() {
                s.control_bytes -= line.len();
                line
            } else if s.closing {
                break;
            } else if let Some(t) = s.audio.pop_front() {
                s.media_bytes -= t.frame.bytes.len();
                t.frame.bytes
            } else if let Some(len) = s.video.front().map(|t| t.frame.bytes.len()) {
                let gate = self.video_gate(s, len);
                if s.feedback.has_pending() {
                    // The `rate` line this sample decided goes first.
                    break;
                }
                if let Gate::Hold(recheck) = gate {
                    return Some(recheck);
                }
                let Some(t) = s.video.pop_front() else { break };
                // One video frame ends the batch: audio that arrives while
                // it is written goes next instead of waiting behind more video.
                s.media_bytes -= t.frame.bytes.len();
                bytes = BATCH_BYTES;
                t.frame.bytes
            } else {
                break;
            };
            bytes += item.len();
            batch.push(item);
        }
        None
    }

    /// Asks the pacer whether the writer may write a `len`-byte video frame
    /// now, after sampling the socket.
    pub(super) fn video_gate(&self, s: &mut State, len: usize) -> Gate {
        match self.observe_after(s, None) {
            Some(now) => s.pacer.gate(now.notsent, len),
            None => Gate::Go,
        }
    }

    /// Samples the socket into the pacer and the feedback (`TCP_INFO` does
    /// not block); `blocked`: after a write that started then and waited for
    /// the receiver. `None` without a socket or a drop policy, or on an error.
    pub(super) fn observe_after(&self, s: &mut State, blocked: Option<Instant>) -> Option<Sample> {
        let socket = self.socket.as_ref().filter(|_| self.limits.drop_policy)?;
        let now = pacing::sample(socket).ok()?;
        match blocked {
            Some(started) => {
                s.pacer.observe_write(now, started);
                s.feedback.limited(now.at);
            }
            None => s.pacer.observe(now),
        }
        s.pacer.forget_if_idle(now.at);
        s.feedback.observed(now, s.pacer.settled_rate());
        s.sampled_at = Some(now.at);
        Some(now)
    }

    /// While a limit is in force, or video is dropped on an estimate, the
    /// socket is sampled every [`feedback::TICK`] even with nothing to
    /// write: dropped video must not keep a stale estimate or limit alive.
    /// Returns how long the writer may wait before the next look.
    pub(super) fn tick(&self, s: &mut State) -> Option<Duration> {
        if !(s.feedback.watching() || (s.dropping_video && s.pacer.rate().is_some())) {
            return None;
        }
        let since = s.sampled_at.map_or(feedback::TICK, |t| t.elapsed());
        if since < feedback::TICK {
            return Some(feedback::TICK - since);
        }
        self.observe_after(s, None);
        Some(feedback::TICK)
    }

    pub(super) fn mark_closed(&self) {
        let mut s = self.lock();
        s.drop_everything();
        s.closed = true;
        drop(s);
        self.ready.notify_all();
    }
}
