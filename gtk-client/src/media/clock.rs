//! The time media is stamped with: a wall clock that never jumps.
//!
//! The real-time clock is read once, the first time anything asks (the
//! client asks at start-up, [`start`]), and from then on advanced by the
//! monotonic clock. The sending pipelines run on the monotonic
//! `GstSystemClock`, and a capture time is converted to this clock.
//!
//! Why not the real-time clock itself: it is stepped. A Raspberry Pi has no
//! hardware clock and boots with a stale time until NTP steps it, and any
//! machine's clock may be set during a call. Live sources on a real-time
//! pipeline clock then either catch up on the whole step at once (a burst
//! of hundreds of pictures) or stop for its length, and a receiver that
//! compared capture times with a stepped clock took the step for seconds of
//! queueing. On one machine two clients that started before a step still
//! agree, so capture-to-decode latency stays measurable in tests.
//!
//! Pure functions of the clocks; any thread may call them.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gst::prelude::*;

/// The monotonic instant and the real-time reading, in µs since the
/// epoch, taken together once.
static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();

/// Reads the real-time clock now, so that every later timestamp follows
/// from it: called when the client starts, before any media.
pub fn start() {
    let _ = now_us();
}

/// Microseconds since the epoch on this clock.
pub fn now_us() -> u64 {
    let (at, wall) = *ORIGIN.get_or_init(|| (Instant::now(), realtime_us()));
    wall.saturating_add(u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// The real-time clock, read now.
fn realtime_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The clock every sending pipeline runs on: the monotonic system clock.
pub(super) fn pipeline_clock() -> gst::Clock {
    glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Monotonic)
        .build()
        .upcast()
}

/// When `sample` was captured, on this clock: how long ago that was on the
/// pipeline's clock (its base time plus the buffer's running time), taken
/// from [`now_us`].
pub(super) fn capture_time_us(sample: &gst::Sample, pipeline: &gst::Pipeline) -> Option<u64> {
    let pts = sample.buffer()?.pts()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let captured = pipeline.base_time()? + segment.to_running_time(pts)?;
    let ago = pipeline.clock()?.time().saturating_sub(captured);
    Some(now_us().saturating_sub(ago.useconds()))
}
