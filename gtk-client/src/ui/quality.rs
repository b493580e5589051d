//! The connection-quality indicator's rule: from two statistics snapshots a
//! second apart, a level, what we send (rate, picture, and which link holds
//! it down) and the indicator's words. Pure apart from the translation
//! lookup; unit-tested here. Runs on the main thread (the window's tick).

use super::i18n::{i18n, i18n_f};
use crate::media::StatsSnapshot;
use crate::media::stats::RatePoint;

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
    /// What we sent at the end of the interval, when our video went out (or
    /// was skipped for the uplink) in it.
    pub sending: Option<Sending>,
}

/// Which end of the path holds our video down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slow {
    /// Our own uplink.
    Ours,
    /// The other side's downlink (the server's report).
    Theirs,
}

/// The sender's current choice: the last point of the send-rate timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sending {
    /// The encoder's bitrate, kbit/s.
    pub kbps: u32,
    /// Picture width (0 when unknown).
    pub width: u32,
    /// Picture height (0 when unknown).
    pub height: u32,
    /// Which link holds the video below the user's maximum, if one does.
    pub slow: Option<Slow>,
    /// The picture is smaller than the largest this call sent.
    pub smaller: bool,
}

impl Sending {
    /// The current point of `timeline` (its last), with the largest picture
    /// of the timeline to tell whether the picture was made smaller.
    pub fn from_timeline(timeline: &[RatePoint]) -> Option<Sending> {
        let now = timeline.last()?;
        let area = |p: &RatePoint| u64::from(p.width) * u64::from(p.height);
        let largest = timeline.iter().map(area).max().unwrap_or(0);
        let slow = match now.limit {
            "uplink" => Some(Slow::Ours),
            "downlink" => Some(Slow::Theirs),
            _ => None,
        };
        Some(Sending {
            kbps: now.kbps,
            width: now.width,
            height: now.height,
            slow,
            smaller: area(now) > 0 && area(now) < largest,
        })
    }

    /// The picture size as shown, `480×360`, when known.
    fn size(&self) -> Option<String> {
        (self.width > 0 && self.height > 0).then(|| format!("{}×{}", self.width, self.height))
    }
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
    // Pictures skipped before the encoder count: a backed-up uplink may
    // skip every one for a moment, and that is when the words matter most.
    let sent = d(prev.video_frames_sent, now.video_frames_sent) > 0
        || d(prev.video_frames_skipped, now.video_frames_skipped) > 0;
    let sending = if sent { Sending::from_timeline(&now.video_rate) } else { None };
    Reading { level, fps, latency_ms: latency, audio_gaps: gaps, sending }
}

/// [`assess`] for an interval in which the peer's camera was off on
/// purpose (`media video off`): its pictures are not missed, so the few
/// that came before the switch, or none, do not make a poor connection;
/// audio and delay rate the call.
pub fn assess_camera_off(prev: &StatsSnapshot, now: &StatsSnapshot, secs: f64) -> Reading {
    let without_video = StatsSnapshot {
        video_frames_received: prev.video_frames_received,
        video_frames_decoded: prev.video_frames_decoded,
        ..now.clone()
    };
    assess(prev, &without_video, secs)
}

/// What the indicator shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The label: the level, or which link is slow when one holds the video down.
    pub label: String,
    /// The tooltip: the receive figures and what we send.
    pub detail: Option<String>,
}

/// The indicator's words for `reading` in a call with `peer` (as shown;
/// empty when unknown).
pub fn words(reading: Option<&Reading>, peer: &str) -> Words {
    let level = reading.map_or(Level::Waiting, |r| r.level);
    let sending = reading.and_then(|r| r.sending);
    let label = sending.and_then(|s| slow_words(&s, peer)).unwrap_or_else(|| match level {
        Level::Waiting => i18n("Waiting for the picture"),
        Level::Good => i18n("Good connection"),
        Level::Fair => i18n("Unsteady connection"),
        Level::Poor => i18n("Poor connection"),
    });
    let detail = reading.map(|r| {
        let latency = r.latency_ms.map_or_else(|| "–".to_owned(), |l| format!("{l:.0}"));
        let received = i18n_f(
            "{} fps, {} ms delay, {} audio gaps",
            &[&format!("{:.0}", r.fps), &latency, &r.audio_gaps.to_string()],
        );
        match sending {
            Some(s) => format!("{received}\n{}", sending_words(&s)),
            None => received,
        }
    });
    Words { label, detail }
}

/// "Sending 380 kbit/s, 480×360".
pub fn sending_words(s: &Sending) -> String {
    let kbps = s.kbps.to_string();
    match s.size() {
        // Translators: our video's bitrate and picture size, e.g. "Sending 380 kbit/s, 480×360".
        Some(size) => i18n_f("Sending {} kbit/s, {}", &[&kbps, &size]),
        // Translators: our video's bitrate, e.g. "Sending 380 kbit/s".
        None => i18n_f("Sending {} kbit/s", &[&kbps]),
    }
}

/// Which link is slow and what that did to our video, when a link holds it
/// down: the picture size when it was made smaller, else the bitrate.
pub fn slow_words(s: &Sending, peer: &str) -> Option<String> {
    let slow = s.slow?;
    let kbps = s.kbps.to_string();
    let size = s.size().filter(|_| s.smaller);
    let peer = peer.trim();
    Some(match (slow, size) {
        (Slow::Ours, Some(size)) => i18n_f("Your connection is slow: video lowered to {}", &[&size]),
        (Slow::Ours, None) => i18n_f("Your connection is slow: video limited to {} kbit/s", &[&kbps]),
        (Slow::Theirs, Some(size)) if peer.is_empty() => {
            i18n_f("The other side's connection is slow: video lowered to {}", &[&size])
        }
        (Slow::Theirs, None) if peer.is_empty() => {
            i18n_f("The other side's connection is slow: video limited to {} kbit/s", &[&kbps])
        }
        // Translators: {} is the other person's name, then the picture size.
        (Slow::Theirs, Some(size)) => i18n_f("{}'s connection is slow: video lowered to {}", &[peer, &size]),
        // Translators: {} is the other person's name, then the bitrate.
        (Slow::Theirs, None) => i18n_f("{}'s connection is slow: video limited to {} kbit/s", &[peer, &kbps]),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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

    fn point(kbps: u32, width: u32, height: u32, limit: &'static str) -> RatePoint {
        RatePoint { at_ms: 0, kbps, width, height, fps: 30, limit }
    }

    /// A second of a call in which we sent `sent` frames and skipped
    /// `skipped`; the timeline is `rates`.
    fn sending_skipping(sent: u64, skipped: u64, rates: &[RatePoint]) -> Reading {
        let prev = snap(0, 0, None, 0);
        let now = StatsSnapshot {
            video_frames_sent: sent,
            video_frames_skipped: skipped,
            video_rate: rates.to_vec(),
            ..snap(30, 50, Some(40.0), 0)
        };
        assess(&prev, &now, 1.0)
    }

    fn sending(sent: u64, rates: &[RatePoint]) -> Reading {
        sending_skipping(sent, 0, rates)
    }

    #[test]
    fn a_camera_turned_off_is_not_a_poor_connection() {
        let prev = snap(100, 100, Some(40.0), 0);
        // Two pictures, then the camera went off; the audio goes on.
        let now = snap(102, 150, Some(40.0), 0);
        assert_eq!(assess(&prev, &now, 1.0).level, Level::Poor);
        assert_eq!(assess_camera_off(&prev, &now, 1.0).level, Level::Good);
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

    #[test]
    fn an_unlimited_call_shows_what_it_sends_and_its_level() {
        let r = sending(30, &[point(1000, 640, 480, "none"), point(1000, 640, 480, "none")]);
        let w = words(Some(&r), "ala");
        assert_eq!(w.label, "Good connection");
        assert_eq!(
            w.detail.as_deref(),
            Some("30 fps, 40 ms delay, 0 audio gaps\nSending 1000 kbit/s, 640×480")
        );
    }

    #[test]
    fn a_slow_uplink_says_so_with_the_smaller_picture() {
        let r = sending(30, &[point(1000, 640, 480, "none"), point(150, 320, 240, "uplink")]);
        let w = words(Some(&r), "ala");
        assert_eq!(w.label, "Your connection is slow: video lowered to 320×240");
        assert!(w.detail.unwrap().ends_with("\nSending 150 kbit/s, 320×240"));
        // Only the rate lowered: the rate is named, not the unchanged picture.
        let r = sending(30, &[point(1000, 640, 480, "none"), point(500, 640, 480, "uplink")]);
        assert_eq!(words(Some(&r), "ala").label, "Your connection is slow: video limited to 500 kbit/s");
        // A second in which the backed-up uplink skipped every picture still says so.
        let r = sending_skipping(0, 15, &[point(1000, 640, 480, "none"), point(100, 320, 240, "uplink")]);
        assert_eq!(words(Some(&r), "ala").label, "Your connection is slow: video lowered to 320×240");
    }

    #[test]
    fn a_slow_downlink_names_the_peer_or_the_other_side() {
        let r = sending(30, &[point(1000, 640, 480, "none"), point(380, 480, 360, "downlink")]);
        assert_eq!(words(Some(&r), "Ala").label, "Ala's connection is slow: video lowered to 480×360");
        assert_eq!(
            words(Some(&r), " ").label,
            "The other side's connection is slow: video lowered to 480×360"
        );
        let r = sending(30, &[point(600, 640, 480, "downlink")]);
        assert_eq!(words(Some(&r), "Ala").label, "Ala's connection is slow: video limited to 600 kbit/s");
        assert_eq!(
            words(Some(&r), "").label,
            "The other side's connection is slow: video limited to 600 kbit/s"
        );
    }

    #[test]
    fn nothing_is_said_about_sending_when_no_video_went_out() {
        // Camera off or an audio-only call: a stale limit is not shown.
        let r = sending(0, &[point(150, 320, 240, "uplink")]);
        assert_eq!(r.sending, None);
        let w = words(Some(&r), "ala");
        assert_eq!(w.label, "Good connection");
        assert_eq!(w.detail.as_deref(), Some("30 fps, 40 ms delay, 0 audio gaps"));
        assert_eq!(sending(30, &[]).sending, None, "no timeline yet");
        assert_eq!(words(None, "ala"), Words { label: "Waiting for the picture".into(), detail: None });
    }

    #[test]
    fn an_unknown_picture_size_names_the_rate() {
        let s = Sending { kbps: 200, width: 0, height: 0, slow: Some(Slow::Ours), smaller: false };
        assert_eq!(sending_words(&s), "Sending 200 kbit/s");
        assert_eq!(
            slow_words(&s, "ala").as_deref(),
            Some("Your connection is slow: video limited to 200 kbit/s")
        );
    }

    /// The translated entries of a `.po` file (fuzzy ones left out).
    fn catalogue(po: &str) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for entry in po.split("\n\n") {
            let (mut id, mut msgstr, mut field, mut fuzzy) = (String::new(), String::new(), 0, false);
            for line in entry.lines() {
                let line = line.trim();
                fuzzy |= line.starts_with("#,") && line.contains("fuzzy");
                let (f, rest) = if let Some(r) = line.strip_prefix("msgid ") {
                    (1, r)
                } else if let Some(r) = line.strip_prefix("msgstr ") {
                    (2, r)
                } else if line.starts_with('"') {
                    (field, line)
                } else {
                    (0, "")
                };
                field = f;
                let text = rest.trim().trim_matches('"').replace("\\\"", "\"");
                match field {
                    1 => id.push_str(&text),
                    2 => msgstr.push_str(&text),
                    _ => {}
                }
            }
            if !fuzzy && !id.is_empty() && !msgstr.is_empty() {
                out.insert(id, msgstr);
            }
        }
        out
    }

    /// The literals passed to `i18n` and `i18n_f` in `source`, up to its tests.
    fn msgids(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        let mut out = Vec::new();
        for call in ["i18n(", "i18n_f("] {
            for (at, _) in code.match_indices(call) {
                let rest = code[at + call.len()..].trim_start();
                if let Some(lit) = rest.strip_prefix('"') {
                    out.push(lit[..lit.find('"').expect("a closed literal")].to_owned());
                }
            }
        }
        out
    }

    #[test]
    fn every_indicator_string_has_a_polish_translation() {
        let pl = catalogue(include_str!("../../../po/pl.po"));
        let ids: Vec<String> =
            [include_str!("quality.rs"), include_str!("call_view.rs"), include_str!("switches.rs")]
                .iter()
                .flat_map(|s| msgids(s))
                .collect();
        assert!(ids.len() >= 12, "found only {ids:?}");
        for id in &ids {
            let Some(text) = pl.get(id) else { panic!("po/pl.po has no translation of {id:?}") };
            assert_eq!(text.matches("{}").count(), id.matches("{}").count(), "placeholders of {id:?}");
        }
        assert_eq!(
            pl["Your connection is slow: video lowered to {}"],
            "Twoje łącze jest wolne: obraz zmniejszony do {}"
        );
    }
}
