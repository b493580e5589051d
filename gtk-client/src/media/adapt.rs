//! Applying the uplink's [`Decision`] to a send-video pipeline: raw pictures
//! are skipped before the encoder while our queue is backed up, and the
//! encoder's bitrate and the picture size follow the decision.
//!
//! All of it runs in one pad probe on the encoder queue's sink pad, so in
//! the send-video pipeline's streaming thread, once per raw picture. The
//! decision itself is made by the connection's `writer` thread
//! ([`crate::net::uplink`]); this module only reads it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gst::prelude::*;
use komunikator_rate::{Decision, Rung};

use super::codec::{Candidate, LiveRate};
use super::stats::{RatePoint, Stats};
use crate::net::Uplink;

/// A point of the send-rate timeline is recorded at least this often.
const TIMELINE_EVERY: Duration = Duration::from_secs(1);

/// An encoder that restarts with an IDR on a rate change gets a higher
/// rate at most this often.
const IDR_RAISE_EVERY: Duration = Duration::from_secs(2);

/// What the probe last applied.
struct Applied {
    decision: Option<Decision>,
    /// The encoder's rate and when it was set.
    kbps: Option<(u32, Instant)>,
    recorded: Option<Instant>,
}

/// Installs the probe on `pipeline` (a send-video pipeline whose encoder is
/// `encoder`). Does nothing when the pipeline lacks the named elements.
pub(super) fn attach(
    pipeline: &gst::Pipeline,
    uplink: Arc<Uplink>,
    encoder: &'static Candidate,
    stats: Arc<Stats>,
) {
    let Some(pad) = pipeline.by_name("encode_queue").and_then(|q| q.static_pad("sink")) else { return };
    let (enc, size) = (pipeline.by_name("encoder"), pipeline.by_name("size"));
    let applied = Mutex::new(Applied { decision: None, kbps: None, recorded: None });
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let d = uplink.decision();
        let mut a = applied.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if uplink.should_skip() {
            stats.video_frames_skipped.fetch_add(1, Relaxed);
            // The timeline follows the decision even while every picture is skipped.
            if a.recorded.is_none_or(|t| now.duration_since(t) >= TIMELINE_EVERY) {
                stats.record_rate(RatePoint::new(&d));
                a.recorded = Some(now);
            }
            return gst::PadProbeReturn::Drop;
        }
        if a.decision != Some(d) && uplink.adapts() {
            let kbps = a.kbps.unwrap_or((uplink.max_kbps(), now));
            if worth_changing(encoder.live_rate, kbps.0, kbps.1, d.video_kbps, now) {
                if let Some(enc) = &enc {
                    set_bitrate(enc, encoder.live_rate, d.video_kbps);
                }
                a.kbps = Some((d.video_kbps, now));
            }
            if a.decision.map(|o| o.rung) != Some(d.rung) {
                set_size(size.as_ref(), d.rung);
            }
        }
        if a.decision != Some(d) || a.recorded.is_none_or(|t| now.duration_since(t) >= TIMELINE_EVERY) {
            stats.record_rate(RatePoint::new(&d));
            a.recorded = Some(now);
        }
        a.decision = Some(d);
        gst::PadProbeReturn::Ok
    });
}

/// Sets the picture size and rate on the `size` capsfilter; the scaler
/// and `videorate` before it follow, and the encoder starts a new stream.
fn set_size(size: Option<&gst::Element>, rung: Rung) {
    if rung.width > 0 {
        if let Some(size) = size {
            let caps = gst::Caps::builder("video/x-raw")
                .field("width", i32::try_from(rung.width).unwrap_or(i32::MAX))
                .field("height", i32::try_from(rung.height).unwrap_or(i32::MAX))
                .field("framerate", gst::Fraction::new(i32::try_from(rung.fps).unwrap_or(30), 1))
                .build();
            size.set_property("caps", &caps);
        }
    }
}

/// Sets the encoder's bitrate, in the unit and type the element has,
/// clamped to the property's range (glib refuses a value outside it).
fn set_bitrate(enc: &gst::Element, rate: LiveRate, kbps: u32) {
    let (name, value) = match rate {
        LiveRate::Property { name, unit, .. } => (name, u64::from(kbps) * 1000 / u64::from(unit.max(1))),
        LiveRate::V4l2Control => {
            let bps = i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX);
            let controls = gst::Structure::builder("controls").field("video_bitrate", bps).build();
            enc.set_property("extra-controls", &controls);
            return;
        }
        LiveRate::Fixed => return,
    };
    let Some(spec) = enc.find_property(name) else { return };
    if let Some(p) = spec.downcast_ref::<glib::ParamSpecUInt>() {
        enc.set_property(name, (value.min(u64::from(u32::MAX)) as u32).clamp(p.minimum(), p.maximum()));
    } else if let Some(p) = spec.downcast_ref::<glib::ParamSpecInt>() {
        enc.set_property(name, i32::try_from(value).unwrap_or(i32::MAX).clamp(p.minimum(), p.maximum()));
    } else if let Some(p) = spec.downcast_ref::<glib::ParamSpecUInt64>() {
        enc.set_property(name, value.clamp(p.minimum(), p.maximum()));
    } else if let Some(p) = spec.downcast_ref::<glib::ParamSpecInt64>() {
        enc.set_property(name, i64::try_from(value).unwrap_or(i64::MAX).clamp(p.minimum(), p.maximum()));
    }
}

/// Whether the encoder's rate should change from `applied` (what it has,
/// set at `since`) to `wanted`. Small changes are not worth it; for an
/// encoder that restarts with an IDR on every change, rises wait
/// [`IDR_RAISE_EVERY`] and only large cuts are immediate.
fn worth_changing(rate: LiveRate, applied: u32, since: Instant, wanted: u32, now: Instant) -> bool {
    let ratio = f64::from(wanted) / f64::from(applied.max(1));
    let idr = matches!(rate, LiveRate::Property { idr: true, .. });
    if (0.93..=1.07).contains(&ratio) || matches!(rate, LiveRate::Fixed) {
        return false;
    }
    if !idr || ratio < 0.7 {
        return true;
    }
    now.duration_since(since) >= IDR_RAISE_EVERY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_changes_are_rationed_for_idr_encoders() {
        let now = Instant::now();
        let x264 = LiveRate::Property { name: "bitrate", unit: 1000, idr: false };
        let open = LiveRate::Property { name: "bitrate", unit: 1, idr: true };
        assert!(!worth_changing(x264, 1000, now, 1050, now), "5 % is noise");
        assert!(worth_changing(x264, 1000, now, 1100, now));
        assert!(!worth_changing(open, 1000, now, 1100, now), "a rise waits");
        assert!(worth_changing(open, 1000, now - IDR_RAISE_EVERY, 1100, now));
        assert!(worth_changing(open, 1000, now, 500, now), "a deep cut is at once");
        assert!(!worth_changing(LiveRate::Fixed, 1000, now, 100, now));
    }
}
