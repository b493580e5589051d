//! Call statistics: counters written by the media and network threads,
//! latency samples, and the media checks (the dominant frequency of the
//! decoded audio and a coarse luma grid of the sent and decoded pictures).
//!
//! Every field is an atomic or sits behind its own short-lived mutex, so any
//! thread may update it; a poisoned mutex only loses that one statistic.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Audio samples kept for the frequency check: one second at 48 kHz.
const TONE_WINDOW: usize = 48_000;

/// Latency samples kept (the most recent ones).
const MAX_LATENCY_SAMPLES: usize = 20_000;

/// Columns and rows of the luma grid.
pub const GRID_COLS: usize = 8;
/// Rows of the luma grid.
pub const GRID_ROWS: usize = 4;

/// Counters and measurements of one call.
#[derive(Debug, Default)]
pub struct Stats {
    /// Encoded video frames handed to the writer.
    pub video_frames_sent: AtomicU64,
    /// Of which keyframes.
    pub video_keyframes_sent: AtomicU64,
    /// Video payload bytes handed to the writer.
    pub video_bytes_sent: AtomicU64,
    /// Video frames that arrived from the peer during the call.
    pub video_frames_received: AtomicU64,
    /// Pictures that came out of the video decoder.
    pub video_frames_decoded: AtomicU64,
    /// Opus packets handed to the writer.
    pub audio_packets_sent: AtomicU64,
    /// Opus payload bytes handed to the writer.
    pub audio_bytes_sent: AtomicU64,
    /// Opus packets that arrived from the peer during the call.
    pub audio_packets_received: AtomicU64,
    /// Buffers that came out of the Opus decoder.
    pub audio_packets_decoded: AtomicU64,
    /// Decoded audio, in samples per channel at the decoder's rate.
    pub audio_samples_decoded: AtomicU64,
    /// Received audio packets whose timestamp jumped by more than 1.5 packets.
    pub audio_gaps: AtomicU64,
    /// `keyframe` requests we sent to the peer.
    pub keyframes_requested: AtomicU64,
    /// Keyframes we forced because the peer or the server asked.
    pub keyframes_forced: AtomicU64,
    /// Raw pictures skipped before the encoder because our uplink was backed up.
    pub video_frames_skipped: AtomicU64,
    /// Encoded video frames dropped in our send queue (each costs a keyframe).
    pub video_frames_dropped: AtomicU64,
    latency_us: Mutex<Vec<u32>>,
    audio_age_us: Mutex<Vec<u32>>,
    rates: Mutex<Vec<RatePoint>>,
    tone: Mutex<VecDeque<i16>>,
    sent_grid: Mutex<Option<LumaGrid>>,
    received_grid: Mutex<Option<LumaGrid>>,
    /// The (video, audio) sources that replaced failed ones mid-call, named
    /// as `VideoIn` and `AudioIn` display themselves.
    fallbacks: Mutex<(Option<String>, Option<String>)>,
}

/// Points of the send-rate timeline kept (an hour at one a second).
const MAX_RATE_POINTS: usize = 3_600;

/// What the sender used at one moment: a point of the send-rate timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RatePoint {
    /// Milliseconds since the epoch (on [`super::clock`], as capture times).
    pub at_ms: u64,
    /// The encoder's bitrate, kbit/s.
    pub kbps: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// What limited it: `none`, `uplink` or `downlink`.
    pub limit: &'static str,
}

impl RatePoint {
    /// A point for `d`, now.
    pub fn new(d: &komunikator_rate::Decision) -> RatePoint {
        RatePoint {
            at_ms: super::clock::now_us() / 1000,
            kbps: d.video_kbps,
            width: d.rung.width,
            height: d.rung.height,
            fps: d.rung.fps,
            limit: match d.limit {
                komunikator_rate::Limit::None => "none",
                komunikator_rate::Limit::Uplink => "uplink",
                komunikator_rate::Limit::Downlink => "downlink",
            },
        }
    }
}

/// Mean luma of [`GRID_COLS`] × [`GRID_ROWS`] small blocks, row by row.
pub type LumaGrid = Vec<u8>;

/// A point-in-time copy of [`Stats`], ready for JSON.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatsSnapshot {
    /// See [`Stats::video_frames_sent`].
    pub video_frames_sent: u64,
    /// See [`Stats::video_keyframes_sent`].
    pub video_keyframes_sent: u64,
    /// See [`Stats::video_bytes_sent`].
    pub video_bytes_sent: u64,
    /// See [`Stats::video_frames_received`].
    pub video_frames_received: u64,
    /// See [`Stats::video_frames_decoded`].
    pub video_frames_decoded: u64,
    /// See [`Stats::audio_packets_sent`].
    pub audio_packets_sent: u64,
    /// See [`Stats::audio_bytes_sent`].
    pub audio_bytes_sent: u64,
    /// See [`Stats::audio_packets_received`].
    pub audio_packets_received: u64,
    /// See [`Stats::audio_packets_decoded`].
    pub audio_packets_decoded: u64,
    /// Decoded audio in milliseconds (at 48 kHz).
    pub audio_decoded_ms: u64,
    /// See [`Stats::audio_gaps`].
    pub audio_gaps: u64,
    /// See [`Stats::keyframes_requested`].
    pub keyframes_requested: u64,
    /// See [`Stats::keyframes_forced`].
    pub keyframes_forced: u64,
    /// See [`Stats::video_frames_skipped`].
    pub video_frames_skipped: u64,
    /// See [`Stats::video_frames_dropped`].
    pub video_frames_dropped: u64,
    /// Median capture-to-decode latency of video, in ms (sender and receiver
    /// on one machine: both stamp with [`super::clock`]).
    pub latency_ms_p50: Option<f64>,
    /// 95th percentile of the same.
    pub latency_ms_p95: Option<f64>,
    /// Number of latency samples.
    pub latency_samples: usize,
    /// Median capture-to-playout age of received audio, in ms (measured where
    /// decoded audio enters the sink; same clock caveat as video's).
    pub audio_age_ms_p50: Option<f64>,
    /// 95th percentile of the same.
    pub audio_age_ms_p95: Option<f64>,
    /// The send-rate timeline: a point at every change and once a second.
    pub video_rate: Vec<RatePoint>,
    /// Dominant frequency of the last second of decoded audio, by zero crossings.
    pub audio_dominant_hz: Option<f64>,
    /// RMS level of the same second, 0..1.
    pub audio_rms: Option<f64>,
    /// Luma grid of the last raw picture we sent.
    pub video_sent_luma: Option<LumaGrid>,
    /// Luma grid of the last picture we decoded.
    pub video_received_luma: Option<LumaGrid>,
    /// The video source that replaced a failed one mid-call, if any.
    #[serde(skip)]
    pub video_fallback: Option<String>,
    /// The audio source that replaced a failed one mid-call, if any.
    #[serde(skip)]
    pub audio_fallback: Option<String>,
}

impl Stats {
    /// Records one capture-to-decode latency.
    pub fn record_latency_us(&self, us: u64) {
        if let Ok(mut v) = self.latency_us.lock() {
            if v.len() >= MAX_LATENCY_SAMPLES {
                v.remove(0);
            }
            v.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }

    /// Records one capture-to-playout age of received audio.
    pub fn record_audio_age_us(&self, us: u64) {
        push_bounded(&self.audio_age_us, u32::try_from(us).unwrap_or(u32::MAX), MAX_LATENCY_SAMPLES);
    }

    /// Adds a point to the send-rate timeline.
    pub fn record_rate(&self, point: RatePoint) {
        push_bounded(&self.rates, point, MAX_RATE_POINTS);
    }

    /// The latest point of the send-rate timeline.
    pub fn current_rate(&self) -> Option<RatePoint> {
        self.rates.lock().ok().and_then(|r| r.last().copied())
    }

    /// Adds decoded mono (or first-channel) samples to the tone window.
    pub fn record_audio(&self, samples: impl Iterator<Item = i16>) {
        if let Ok(mut w) = self.tone.lock() {
            for s in samples {
                if w.len() == TONE_WINDOW {
                    w.pop_front();
                }
                w.push_back(s);
            }
        }
    }

    /// The RMS level (0..1) of the last `samples` decoded samples, 0 before any.
    pub fn audio_level(&self, samples: usize) -> f64 {
        let Ok(w) = self.tone.lock() else { return 0.0 };
        let skip = w.len().saturating_sub(samples);
        let (sum, n) = w.iter().skip(skip).fold((0.0, 0usize), |(sum, n), &s| {
            let x = f64::from(s) / 32768.0;
            (sum + x * x, n + 1)
        });
        if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
    }

    /// Stores the grid of a picture we sent.
    pub fn record_sent_grid(&self, grid: LumaGrid) {
        if let Ok(mut g) = self.sent_grid.lock() {
            *g = Some(grid);
        }
    }

    /// Stores the grid of a picture we decoded.
    pub fn record_received_grid(&self, grid: LumaGrid) {
        if let Ok(mut g) = self.received_grid.lock() {
            *g = Some(grid);
        }
    }

    /// Notes that a failed source was replaced mid-call by `video` or `audio`.
    pub fn record_fallback(&self, video: Option<String>, audio: Option<String>) {
        if let Ok(mut f) = self.fallbacks.lock() {
            f.0 = video.or(f.0.take());
            f.1 = audio.or(f.1.take());
        }
    }

    /// Copies everything out.
    pub fn snapshot(&self) -> StatsSnapshot {
        let n = |a: &AtomicU64| a.load(Relaxed);
        let (p50, p95, samples) = match self.latency_us.lock() {
            Ok(v) => (percentile_ms(&v, 50.0), percentile_ms(&v, 95.0), v.len()),
            Err(_) => (None, None, 0),
        };
        let (age50, age95) = match self.audio_age_us.lock() {
            Ok(v) => (percentile_ms(&v, 50.0), percentile_ms(&v, 95.0)),
            Err(_) => (None, None),
        };
        let (hz, rms) = match self.tone.lock() {
            Ok(w) => {
                let s: Vec<i16> = w.iter().copied().collect();
                (dominant_hz(&s, 48_000), rms(&s))
            }
            Err(_) => (None, None),
        };
        StatsSnapshot {
            video_frames_sent: n(&self.video_frames_sent),
            video_keyframes_sent: n(&self.video_keyframes_sent),
            video_bytes_sent: n(&self.video_bytes_sent),
            video_frames_received: n(&self.video_frames_received),
            video_frames_decoded: n(&self.video_frames_decoded),
            audio_packets_sent: n(&self.audio_packets_sent),
            audio_bytes_sent: n(&self.audio_bytes_sent),
            audio_packets_received: n(&self.audio_packets_received),
            audio_packets_decoded: n(&self.audio_packets_decoded),
            audio_decoded_ms: n(&self.audio_samples_decoded) / 48,
            audio_gaps: n(&self.audio_gaps),
            keyframes_requested: n(&self.keyframes_requested),
            keyframes_forced: n(&self.keyframes_forced),
            video_frames_skipped: n(&self.video_frames_skipped),
            video_frames_dropped: n(&self.video_frames_dropped),
            latency_ms_p50: p50,
            latency_ms_p95: p95,
            latency_samples: samples,
            audio_age_ms_p50: age50,
            audio_age_ms_p95: age95,
            video_rate: self.rates.lock().map(|r| r.clone()).unwrap_or_default(),
            audio_dominant_hz: hz,
            audio_rms: rms,
            video_sent_luma: self.sent_grid.lock().ok().and_then(|g| g.clone()),
            video_received_luma: self.received_grid.lock().ok().and_then(|g| g.clone()),
            video_fallback: self.fallbacks.lock().ok().and_then(|f| f.0.clone()),
            audio_fallback: self.fallbacks.lock().ok().and_then(|f| f.1.clone()),
        }
    }
}

/// Appends to a bounded vector, forgetting the oldest half when full (so
/// appending stays cheap on average).
fn push_bounded<T>(v: &Mutex<Vec<T>>, item: T, max: usize) {
    if let Ok(mut v) = v.lock() {
        if v.len() >= max {
            v.drain(..max / 2);
        }
        v.push(item);
    }
}

/// The `p`th percentile (nearest rank) of microsecond samples, in ms.
pub fn percentile_ms(samples_us: &[u32], p: f64) -> Option<f64> {
    if samples_us.is_empty() {
        return None;
    }
    let mut sorted = samples_us.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    Some(f64::from(sorted[idx]) / 1000.0)
}

/// The frequency of a tone from its zero crossings, or `None` for silence or
/// too little audio. A small dead band keeps noise around zero from counting.
pub fn dominant_hz(samples: &[i16], rate: u32) -> Option<f64> {
    const DEAD_BAND: i16 = 200;
    if samples.len() < (rate / 10) as usize {
        return None;
    }
    let mut crossings = 0u32;
    let mut first = None;
    let mut last = 0usize;
    let mut positive: Option<bool> = None;
    for (i, &s) in samples.iter().enumerate() {
        let side = if s > DEAD_BAND {
            true
        } else if s < -DEAD_BAND {
            false
        } else {
            continue;
        };
        if positive.is_some_and(|p| p != side) {
            crossings += 1;
            first.get_or_insert(i);
            last = i;
        }
        positive = Some(side);
    }
    let first = first?;
    if crossings < 4 || last <= first {
        return None;
    }
    // Crossings between the first and the last counted crossing span
    // (crossings - 1) half periods.
    let seconds = (last - first) as f64 / f64::from(rate);
    Some(f64::from(crossings - 1) / 2.0 / seconds)
}

/// Root mean square level, 0..1.
pub fn rms(samples: &[i16]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let sum: f64 = samples.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
    Some((sum / samples.len() as f64).sqrt())
}

/// The luma grid of a plane of 8-bit luma (`stride` bytes per row).
/// `None` when the plane is too small or shorter than claimed.
pub fn luma_grid(plane: &[u8], stride: usize, width: usize, height: usize) -> Option<LumaGrid> {
    const BLOCK: usize = 4;
    if width < GRID_COLS * BLOCK * 2 || height < GRID_ROWS * BLOCK * 2 || stride < width {
        return None;
    }
    let mut grid = Vec::with_capacity(GRID_COLS * GRID_ROWS);
    for row in 0..GRID_ROWS {
        for col in 0..GRID_COLS {
            let cx = (2 * col + 1) * width / (2 * GRID_COLS);
            let cy = (2 * row + 1) * height / (2 * GRID_ROWS);
            let mut sum = 0u32;
            for y in cy - BLOCK / 2..cy + BLOCK / 2 {
                for x in cx - BLOCK / 2..cx + BLOCK / 2 {
                    sum += u32::from(*plane.get(y * stride + x)?);
                }
            }
            grid.push((sum / (BLOCK * BLOCK) as u32) as u8);
        }
    }
    Some(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn tone_frequency() {
        for hz in [440.0, 660.0, 1000.0] {
            let got = dominant_hz(&sine(hz, 8000.0, 48_000), 48_000).unwrap();
            assert!((got - hz).abs() < 2.0, "{hz}: {got}");
        }
        assert_eq!(dominant_hz(&[0; 48_000], 48_000), None);
        assert_eq!(dominant_hz(&sine(440.0, 100.0, 48_000), 48_000), None, "below the dead band");
        assert_eq!(dominant_hz(&sine(440.0, 8000.0, 100), 48_000), None, "too short");
    }

    #[test]
    fn levels() {
        let r = rms(&sine(440.0, 16384.0, 48_000)).unwrap();
        assert!((r - 0.5 / 2f64.sqrt()).abs() < 0.01, "{r}");
        assert_eq!(rms(&[]), None);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&v, 95.0), Some(95.0));
        assert_eq!(percentile_ms(&[7000], 95.0), Some(7.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }

    #[test]
    fn grid_of_a_left_right_split() {
        let (w, h, stride) = (64, 32, 80);
        let mut plane = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                plane[y * stride + x] = if x < w / 2 { 200 } else { 20 };
            }
        }
        let grid = luma_grid(&plane, stride, w, h).unwrap();
        assert_eq!(grid.len(), GRID_COLS * GRID_ROWS);
        assert_eq!(&grid[..GRID_COLS], &[200, 200, 200, 200, 20, 20, 20, 20]);
        assert_eq!(luma_grid(&plane, stride, 8, 8), None);
        assert_eq!(luma_grid(&plane[..100], stride, w, h), None);
    }

    #[test]
    fn snapshot_counts() {
        let s = Stats::default();
        s.video_frames_sent.fetch_add(3, Relaxed);
        s.record_latency_us(12_000);
        s.record_audio(sine(660.0, 8000.0, 48_000).into_iter());
        let snap = s.snapshot();
        assert_eq!(snap.video_frames_sent, 3);
        assert_eq!(snap.latency_ms_p50, Some(12.0));
        assert!((snap.audio_dominant_hz.unwrap() - 660.0).abs() < 2.0);
    }
}
