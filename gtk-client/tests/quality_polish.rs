//! The quality indicator's words in Polish, through the real catalogue:
//! `po/pl.po` as `build.rs` compiled it, bound by `i18n::init` as the
//! window binds it, looked up by gettext with `LANGUAGE=pl` (the C.UTF-8
//! locale is enough for that; no Polish locale need be installed). A test
//! file of its own because the locale and text domain are per process.

use komunikator::StatsSnapshot;
use komunikator::media::stats::RatePoint;
use komunikator::ui::{i18n, quality};

fn point(kbps: u32, width: u32, height: u32, limit: &'static str) -> RatePoint {
    RatePoint { at_ms: 0, kbps, width, height, fps: 30, limit }
}

/// The words after a second in which 30 pictures were sent, the send-rate
/// timeline being `rates`.
fn words(rates: &[RatePoint], peer: &str) -> quality::Words {
    let now = StatsSnapshot {
        video_frames_sent: 30,
        video_frames_received: 30,
        video_frames_decoded: 30,
        audio_packets_decoded: 50,
        latency_ms_p50: Some(40.0),
        video_rate: rates.to_vec(),
        ..StatsSnapshot::default()
    };
    let reading = quality::assess(&StatsSnapshot::default(), &now, 1.0);
    quality::words(Some(&reading), peer)
}

#[test]
fn the_indicator_speaks_polish() {
    // SAFETY: set before any other thread of this test binary reads the environment.
    unsafe {
        std::env::set_var("LC_ALL", "C.UTF-8");
        std::env::set_var("LANGUAGE", "pl");
    }
    i18n::init();
    let full = point(1000, 640, 480, "none");
    let up = words(&[full, point(150, 320, 240, "uplink")], "ala");
    assert_eq!(up.label, "Twoje łącze jest wolne: obraz zmniejszony do 320×240");
    assert_eq!(
        up.detail.as_deref(),
        Some("30 kl./s, 40 ms opóźnienia, przerwy w dźwięku: 0\nWysyłanie 150 kbit/s, 320×240")
    );
    let down = [full, point(380, 480, 360, "downlink")];
    assert_eq!(words(&down, "Ala").label, "Ala ma wolne łącze: obraz zmniejszony do 480×360");
    assert_eq!(words(&down, "").label, "Rozmówca ma wolne łącze: obraz zmniejszony do 480×360");
    let rate_only = [full, point(500, 640, 480, "uplink")];
    assert_eq!(words(&rate_only, "ala").label, "Twoje łącze jest wolne: obraz ograniczony do 500 kbit/s");
    assert_eq!(words(&[full, full], "ala").label, "Dobre połączenie");
}
