//! The connection-quality indicator's rule: from two statistics snapshots a
//! second apart, a level and a short detail line. Pure; unit-tested here.

use crate::media::StatsSnapshot;

/// How the call is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Nothing has arrived yet.
    Waiting,
    /// Smooth.
    Good,
    /// Some stutter or delay.
    Fair,
    /// Little gets through.
    Poor,
}

impl Level {
    /// The CSS class of the indicator.
    pub fn css_class(self) -> &'static str {
        match self {
            Level::Waiting => "dim-label",
            Level::Good => "success",
            Level::Fair => "warning",
            Level::Poor => "error",
        }
    }

    /// The icon of the indicator.
    pub fn icon_name(self) -> &'static str {
        match self {
            Level::Waiting => "network-cellular-acquiring-symbolic",
            Level::Good => "network-cellular-signal-excellent-symbolic",
            Level::Fair => "network-cellular-signal-ok-symbolic",
            Level::Poor => "network-cellular-signal-weak-symbolic",
        }
    }
}

/// What one interval measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The level.
    pub level: Level,
    /// Decoded pictures per second.
    pub fps: f64,
    /// Median capture-to-decode latency, when measured.
    pub latency_ms: Option<f64>,
    /// Audio gaps in the interval.
    pub audio_gaps: u64,
}

/// Rates the interval between `prev` and `now`, `secs` apart.
pub fn assess(prev: &StatsSnapshot, now: &StatsSnapshot, secs: f64) -> Reading {
    let secs = secs.max(0.1);
    let d = |a: u64, b: u64| b.saturating_sub(a);
    let decoded = d(prev.video_frames_decoded, now.video_frames_decoded);
    let received = d(prev.video_frames_received, now.video_frames_received);
    let audio = d(prev.audio_packets_decoded, now.audio_packets_decoded);
    let gaps = d(prev.audio_gaps, now.audio_gaps);
    let asked = d(prev.keyframes_requested, now.keyframes_requested);
    let fps = decoded as f64 / secs;
    let latency = now.latency_ms_p50;
    let video = received > 0;
    let level = if decoded == 0 && audio == 0 {
        if now.video_frames_decoded == 0 && now.audio_packets_decoded == 0 {
            Level::Waiting
        } else {
            Level::Poor
        }
    } else if latency.is_some_and(|l| l > 400.0) || gaps > 5 || (video && fps < 5.0) {
        Level::Poor
    } else if latency.is_some_and(|l| l > 150.0) || gaps > 0 || asked > 0 || (video && fps < 15.0) {
        Level::Fair
    } else {
        Level::Good
    };
    Reading { level, fps, latency_ms: latency, audio_gaps: gaps }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(frames: u64, audio: u64, latency: Option<f64>, gaps: u64) -> StatsSnapshot {
        StatsSnapshot {
            video_frames_received: frames,
            video_frames_decoded: frames,
            audio_packets_decoded: audio,
            latency_ms_p50: latency,
            audio_gaps: gaps,
            ..StatsSnapshot::default()
        }
    }

    #[test]
    fn levels() {
        let zero = StatsSnapshot::default();
        assert_eq!(assess(&zero, &zero, 1.0).level, Level::Waiting);
        let good = assess(&zero, &snap(30, 50, Some(40.0), 0), 1.0);
        assert_eq!(good.level, Level::Good);
        assert!((good.fps - 30.0).abs() < 1e-9);
        assert_eq!(assess(&zero, &snap(30, 50, Some(200.0), 0), 1.0).level, Level::Fair);
        assert_eq!(assess(&zero, &snap(10, 50, Some(40.0), 0), 1.0).level, Level::Fair);
        assert_eq!(assess(&zero, &snap(30, 50, Some(40.0), 9), 1.0).level, Level::Poor);
        assert_eq!(assess(&zero, &snap(2, 50, Some(40.0), 0), 1.0).level, Level::Poor);
        let stalled = snap(30, 50, Some(40.0), 0);
        assert_eq!(assess(&stalled, &stalled, 1.0).level, Level::Poor);
    }

    #[test]
    fn audio_only_calls_are_not_penalised_for_missing_video() {
        let zero = StatsSnapshot::default();
        assert_eq!(assess(&zero, &snap(0, 50, None, 0), 1.0).level, Level::Good);
    }
}
