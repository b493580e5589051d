//! Figures of the emulated-link calls, computed from what [`crate::links`]
//! recorded: rates from the link's counters, per-second delays from the
//! tap's arrivals, and the step case's recovery times. Pure functions, run
//! on the main thread when the report is written.

use komunikator_protocol::MediaKind;

use crate::links::{LinkSample, Run, STEP_AT, STEP_KBPS};

/// Video delay at the receiver that counts as recovered, ms (issue 12's target).
pub const DELAY_OK_MS: f64 = 300.0;
/// Seconds after the drop within which video must be back under [`DELAY_OK_MS`].
pub const DROP_WITHIN_S: f64 = 2.0;
/// Seconds after the rise within which the send rate must reach [`RISE_SHARE`] of the link.
pub const RISE_WITHIN_S: f64 = 10.0;
/// The share of the link the send rate must reach.
pub const RISE_SHARE: f64 = 0.7;

/// Which counter of a [`LinkSample`] a rate is taken from.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// Bytes the sender pushed into the link.
    In,
    /// Bytes the link delivered.
    Out,
}

fn bytes(s: &LinkSample, c: Counter) -> u64 {
    match c {
        Counter::In => s.stats.bytes_in,
        Counter::Out => s.stats.bytes_out,
    }
}

/// Mean rate of `c` between link times `a` and `b` (clamped to the samples), kbit/s.
pub fn mean_kbps(samples: &[LinkSample], c: Counter, a: f64, b: f64) -> Option<f64> {
    let first = samples.iter().find(|s| s.t_s >= a)?;
    let last = samples.iter().rev().find(|s| s.t_s <= b)?;
    let dt = last.t_s - first.t_s;
    (dt > 0.5).then(|| bytes(last, c).saturating_sub(bytes(first, c)) as f64 * 8.0 / 1000.0 / dt)
}

/// The rate of `c` over the second before each sample, kbit/s: `(t, kbps)`.
pub fn trailing_kbps(samples: &[LinkSample], c: Counter) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut j = 0;
    for s in samples {
        while j + 1 < samples.len() && samples[j + 1].t_s <= s.t_s - 1.0 {
            j += 1;
        }
        let from = &samples[j];
        let dt = s.t_s - from.t_s;
        if dt >= 0.9 {
            out.push((s.t_s, bytes(s, c).saturating_sub(bytes(from, c)) as f64 * 8.0 / 1000.0 / dt));
        }
    }
    out
}

/// The largest delay at arrival of `kind` in each whole second of link time: `(second, ms, frames)`.
pub fn per_second_max(run: &Run, kind: MediaKind) -> Vec<(u64, f64, usize)> {
    let mut out: Vec<(u64, f64, usize)> = Vec::new();
    for a in run.arrivals.iter().filter(|a| a.kind == kind) {
        let t = (a.at_ms - run.t0_ms) / 1000.0;
        if t < 0.0 {
            continue;
        }
        let sec = t as u64;
        match out.last_mut() {
            Some(last) if last.0 == sec => {
                last.1 = last.1.max(a.delay_ms);
                last.2 += 1;
            }
            _ => out.push((sec, a.delay_ms, 1)),
        }
    }
    out
}

/// Percentile `p` (0-100) of the delays at arrival of `kind` from link time
/// `from` on, ms, and the maximum.
pub fn arrival_pct(run: &Run, kind: MediaKind, p: f64, from: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = run
        .arrivals
        .iter()
        .filter(|a| a.kind == kind && (a.at_ms - run.t0_ms) / 1000.0 >= from)
        .map(|a| a.delay_ms)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    Some((v[i.min(v.len() - 1)], v[v.len() - 1]))
}

/// After the step's drop: seconds until the video delay at arrival stays
/// under [`DELAY_OK_MS`] (0 when it never went over), the largest delay in
/// the low period, and the longest gap between video arrivals in it, s.
#[derive(Debug, Clone, Copy)]
pub struct DropRecovery {
    /// Seconds from the drop until the video delay is back under
    /// [`DELAY_OK_MS`] for a whole second (every frame in it; 0 when it
    /// never went over); `None` when that did not happen before the rise.
    pub first_under_s: Option<f64>,
    /// Seconds from the drop to the last video frame over [`DELAY_OK_MS`] before the rise.
    pub back_under_s: f64,
    /// The largest video delay at arrival between the drop and the rise, ms.
    pub worst_ms: f64,
    /// The longest time without a video frame between the drop and the rise, s.
    pub longest_gap_s: f64,
    /// Video frames that arrived between the drop and the rise.
    pub frames: usize,
}

/// The step case's drop figures; `None` without arrivals.
pub fn drop_recovery(run: &Run) -> Option<DropRecovery> {
    let (drop, rise) = STEP_AT;
    let video: Vec<(f64, f64)> = run
        .arrivals
        .iter()
        .filter(|a| a.kind == MediaKind::Video)
        .map(|a| ((a.at_ms - run.t0_ms) / 1000.0, a.delay_ms))
        .filter(|(t, _)| (drop..rise).contains(t))
        .collect();
    let last_bad = video.iter().rev().find(|(_, d)| *d >= DELAY_OK_MS).map(|(t, _)| t - drop);
    let first_bad = video.iter().position(|(_, d)| *d >= DELAY_OK_MS);
    let first_under_s = match first_bad {
        None => Some(0.0),
        Some(i) => (i..video.len())
            .map(|j| video[j].0)
            .find(|&t| {
                t + 1.0 <= rise
                    && video.iter().filter(|(u, _)| (t..t + 1.0).contains(u)).all(|(_, d)| *d < DELAY_OK_MS)
            })
            .map(|t| t - drop),
    };
    let mut edges = vec![drop];
    edges.extend(video.iter().map(|(t, _)| *t));
    edges.push(rise);
    let longest_gap_s = edges.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Some(DropRecovery {
        first_under_s,
        back_under_s: last_bad.unwrap_or(0.0),
        worst_ms: video.iter().map(|(_, d)| *d).fold(0.0, f64::max),
        longest_gap_s,
        frames: video.len(),
    })
    .filter(|_| !run.arrivals.is_empty())
}

/// Seconds from the step's drop to the first `video_rate` point at or below the new link rate.
pub fn drop_reaction(run: &Run) -> Option<f64> {
    let (drop, rise) = STEP_AT;
    let lo = f64::from(STEP_KBPS.1);
    run.sender.rate.iter().find(|p| (drop..rise).contains(&p.t_s) && p.kbps <= lo).map(|p| p.t_s - drop)
}

/// After the step's rise: seconds until the rate into the link (over the
/// trailing second) and the encoder's rate (`video_rate`) first reach
/// [`RISE_SHARE`] of the link; `None` when they did not before the call ended.
pub fn rise_recovery(run: &Run) -> (Option<f64>, Option<f64>) {
    let rise = STEP_AT.1;
    let want = RISE_SHARE * f64::from(STEP_KBPS.0);
    let link = trailing_kbps(&run.samples, Counter::In)
        .into_iter()
        .find(|(t, k)| *t >= rise + 1.0 && *k >= want)
        .map(|(t, _)| t - rise);
    let encoder = run.sender.rate.iter().find(|p| p.t_s >= rise && p.kbps >= want).map(|p| p.t_s - rise);
    (link, encoder)
}

/// The encoder's lowest and highest rate in the timeline from link time `from`, kbit/s.
pub fn encoder_range(run: &Run, from: f64) -> Option<(f64, f64)> {
    let k: Vec<f64> = run.sender.rate.iter().filter(|p| p.t_s >= from).map(|p| p.kbps).collect();
    let lo = k.iter().copied().reduce(f64::min)?;
    Some((lo, k.iter().copied().fold(lo, f64::max)))
}

/// The pictures the sender used and what limited its rate, each in order of first appearance.
pub fn pictures(run: &Run) -> (Vec<String>, Vec<String>) {
    let (mut pictures, mut limits): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for p in &run.sender.rate {
        if !pictures.contains(&p.picture) {
            pictures.push(p.picture.clone());
        }
        if !limits.contains(&p.limit) {
            limits.push(p.limit.clone());
        }
    }
    (pictures, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::Arrival;
    use komunikator_linkem::DirStats;

    fn sample(t_s: f64, bytes_in: u64) -> LinkSample {
        LinkSample { t_s, stats: DirStats { bytes_in, bytes_out: bytes_in, ..DirStats::default() } }
    }

    #[test]
    fn drop_recovery_counts_the_last_late_frame_and_the_longest_gap() {
        let video = |t: f64, delay_ms: f64| Arrival { at_ms: 1000.0 * t, kind: MediaKind::Video, delay_ms };
        // Late until 21.5 s, then a 1.5 s hole, then fresh frames until the rise.
        let mut run = Run {
            arrivals: vec![video(19.0, 900.0), video(20.5, 800.0), video(21.5, 400.0)],
            ..Run::default()
        };
        run.arrivals.extend((0..170).map(|i| video(23.0 + f64::from(i) * 0.1, 50.0)));
        let d = drop_recovery(&run).unwrap();
        assert!((d.back_under_s - 1.5).abs() < 1e-9, "{d:?}");
        // The first second with every frame under 300 ms starts at the hole's end.
        assert!((d.first_under_s.unwrap() - 3.0).abs() < 1e-9, "{d:?}");
        assert!((d.longest_gap_s - 1.5).abs() < 1e-9, "{d:?}");
        assert_eq!(d.worst_ms, 800.0);
        assert_eq!(d.frames, 172);
        assert!(drop_recovery(&Run::default()).is_none());
    }

    #[test]
    fn rates_from_counters() {
        // 125 bytes per 0.2 s = 5 kbit/s.
        let s: Vec<LinkSample> =
            (0u32..=20).map(|i| sample(f64::from(i) * 0.2, 125 * u64::from(i))).collect();
        let m = mean_kbps(&s, Counter::In, 0.0, 4.0).unwrap();
        assert!((m - 5.0).abs() < 1e-9, "{m}");
        let t = trailing_kbps(&s, Counter::Out);
        assert!(!t.is_empty() && t.iter().all(|(_, k)| (k - 5.0).abs() < 1e-9), "{t:?}");
    }
}
