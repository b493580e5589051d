//! Choosing the H.264 encoder and decoder at run time.
//!
//! Rank sorting is useless here (see MEDIA-NOTES): hardware encoders register
//! with rank NONE and an unusable OMX wrapper outranks openh264. So the order
//! is an explicit preference list, hardware first, and a candidate counts only
//! after a tiny smoke pipeline through it reaches EOS. The choice itself,
//! [`choose`], is a pure function of a probe, so it is unit-tested with fake
//! probes; [`smoke_encoder`] and [`smoke_decoder`] are the real probes.

use std::time::Duration;

use gst::prelude::*;

/// One encoder or decoder the client knows how to configure.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The element factory name.
    pub factory: &'static str,
    /// The gst-launch fragment with low-latency settings. `{kbps}` and `{bps}`
    /// stand for the bitrate.
    pub launch: &'static str,
    /// Whether it uses dedicated hardware.
    pub hardware: bool,
    /// How its bitrate follows the link while it runs.
    pub live_rate: LiveRate,
}

/// How an encoder's bitrate is changed while the pipeline plays. Every
/// encoder of [`ENCODERS`] takes a new rate without being rebuilt on
/// GStreamer 1.22 (x264enc and openh264enc checked here; the hardware ones
/// from their source, see docs/PIPELINES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveRate {
    /// A property that takes effect on the next frame.
    Property {
        /// Its name.
        name: &'static str,
        /// Its unit in bit/s: 1000 for kbit/s, 1 for bit/s.
        unit: u32,
        /// Whether every change makes the encoder start over with an IDR
        /// (openh264enc, nvh264enc, the va encoders): change it seldom.
        idr: bool,
    },
    /// `video_bitrate` in the `extra-controls` structure (bit/s, an int),
    /// which v4l2 encoders pass to the device at once.
    V4l2Control,
    /// Not an encoder.
    Fixed,
}

const KBPS: LiveRate = LiveRate::Property { name: "bitrate", unit: 1000, idr: false };
const KBPS_IDR: LiveRate = LiveRate::Property { name: "bitrate", unit: 1000, idr: true };

/// H.264 encoders, best first. Each fragment pins an 8-bit 4:2:0 input format:
/// left alone, x264enc negotiates Y444_10LE (High 4:4:4 10-bit), which is slow
/// and which hardware decoders cannot play.
pub const ENCODERS: &[Candidate] = &[
    Candidate {
        factory: "v4l2h264enc",
        launch: "v4l2h264enc extra-controls=\"controls,repeat_sequence_header=1,video_bitrate={bps},h264_i_frame_period=300\" ! video/x-h264,level=(string)4",
        hardware: true,
        live_rate: LiveRate::V4l2Control,
    },
    Candidate {
        factory: "nvh264enc",
        launch: "video/x-raw,format=NV12 ! nvh264enc zerolatency=true bframes=0 gop-size=300 bitrate={kbps}",
        hardware: true,
        live_rate: KBPS_IDR,
    },
    Candidate {
        factory: "vah264enc",
        launch: "video/x-raw,format=NV12 ! vah264enc b-frames=0 key-int-max=300 bitrate={kbps}",
        hardware: true,
        live_rate: KBPS_IDR,
    },
    Candidate {
        factory: "vah264lpenc",
        launch: "video/x-raw,format=NV12 ! vah264lpenc b-frames=0 key-int-max=300 bitrate={kbps}",
        hardware: true,
        live_rate: KBPS_IDR,
    },
    Candidate {
        factory: "vaapih264enc",
        launch: "video/x-raw,format=NV12 ! vaapih264enc rate-control=cbr bitrate={kbps} keyframe-period=300 max-bframes=0",
        hardware: true,
        live_rate: KBPS,
    },
    Candidate {
        factory: "qsvh264enc",
        launch: "video/x-raw,format=NV12 ! qsvh264enc b-frames=0 gop-size=300 bitrate={kbps}",
        hardware: true,
        live_rate: KBPS,
    },
    Candidate {
        factory: "x264enc",
        launch: "video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=300 bframes=0 vbv-buf-capacity=200 bitrate={kbps}",
        hardware: false,
        live_rate: KBPS,
    },
    Candidate {
        factory: "openh264enc",
        launch: "video/x-raw,format=I420 ! openh264enc usage-type=camera rate-control=bitrate gop-size=300 complexity=low bitrate={bps}",
        hardware: false,
        live_rate: LiveRate::Property { name: "bitrate", unit: 1, idr: true },
    },
];

/// Settings every decoder gets: ask upstream for a keyframe when the picture
/// is broken, and drop broken pictures instead of showing garbage.
const DECODER_SETTINGS: &str = "automatic-request-sync-points=true discard-corrupted-frames=true";

/// H.264 decoders, best first. Every one is a GstVideoDecoder, so every one
/// takes [`DECODER_SETTINGS`].
pub const DECODERS: &[Candidate] = &[
    Candidate { factory: "v4l2h264dec", launch: "v4l2h264dec", hardware: true, live_rate: LiveRate::Fixed },
    Candidate { factory: "nvh264dec", launch: "nvh264dec", hardware: true, live_rate: LiveRate::Fixed },
    Candidate { factory: "vah264dec", launch: "vah264dec", hardware: true, live_rate: LiveRate::Fixed },
    Candidate { factory: "vaapih264dec", launch: "vaapih264dec", hardware: true, live_rate: LiveRate::Fixed },
    Candidate { factory: "avdec_h264", launch: "avdec_h264", hardware: false, live_rate: LiveRate::Fixed },
    Candidate { factory: "openh264dec", launch: "openh264dec", hardware: false, live_rate: LiveRate::Fixed },
];

/// What a probe found out about one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The registry does not have the element.
    Missing,
    /// It exists but the smoke pipeline failed; the text says how.
    Broken(String),
    /// The smoke pipeline reached EOS.
    Works,
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen candidate.
    pub candidate: &'static Candidate,
    /// Every candidate probed on the way, in order, with its result.
    pub tried: Vec<(&'static str, Probe)>,
}

/// Why no codec could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// `--video-encoder`/`--video-decoder` named an element this client does not know.
    #[error("unknown {what} {name:?}; known: {known}")]
    Unknown {
        /// "encoder" or "decoder".
        what: &'static str,
        /// The name given.
        name: String,
        /// The known names.
        known: String,
    },
    /// The forced element does not work here.
    #[error("{name} does not work here: {why}")]
    ForcedBroken {
        /// The name given.
        name: String,
        /// What its probe said.
        why: String,
    },
    /// No candidate works.
    #[error("no working H.264 {what} (tried: {tried})")]
    NoneWorks {
        /// "encoder" or "decoder".
        what: &'static str,
        /// Each candidate and its probe result.
        tried: String,
    },
}

/// Picks the first candidate whose probe says [`Probe::Works`], or the forced
/// one if it works. Probes stop at the first working candidate.
///
/// # Errors
/// [`CodecError`] when the forced name is unknown or broken, or none works.
pub fn choose(
    what: &'static str,
    candidates: &'static [Candidate],
    forced: Option<&str>,
    mut probe: impl FnMut(&Candidate) -> Probe,
) -> Result<Choice, CodecError> {
    if let Some(name) = forced {
        let Some(candidate) = candidates.iter().find(|c| c.factory == name) else {
            let known = candidates.iter().map(|c| c.factory).collect::<Vec<_>>().join(", ");
            return Err(CodecError::Unknown { what, name: name.into(), known });
        };
        return match probe(candidate) {
            Probe::Works => Ok(Choice { candidate, tried: vec![(candidate.factory, Probe::Works)] }),
            Probe::Missing => {
                Err(CodecError::ForcedBroken { name: name.into(), why: "not installed".into() })
            }
            Probe::Broken(why) => Err(CodecError::ForcedBroken { name: name.into(), why }),
        };
    }
    let mut tried = Vec::new();
    for candidate in candidates {
        let result = probe(candidate);
        let works = result == Probe::Works;
        tried.push((candidate.factory, result));
        if works {
            return Ok(Choice { candidate, tried });
        }
    }
    let tried = tried.iter().map(|(n, p)| format!("{n}: {}", probe_text(p))).collect::<Vec<_>>().join("; ");
    Err(CodecError::NoneWorks { what, tried })
}

/// A short description of a probe result.
pub fn probe_text(p: &Probe) -> String {
    match p {
        Probe::Missing => "not installed".into(),
        Probe::Broken(why) => format!("broken ({why})"),
        Probe::Works => "works".into(),
    }
}

/// The launch fragment of an encoder with its bitrate filled in, the
/// encoder element named `encoder`.
pub fn encoder_launch(c: &Candidate, kbps: u32) -> String {
    c.launch
        .replacen(&format!("{} ", c.factory), &format!("{} name=encoder ", c.factory), 1)
        .replace("{kbps}", &kbps.to_string())
        .replace("{bps}", &(u64::from(kbps) * 1000).to_string())
}

/// The launch fragment of a decoder, named `decoder` for the probes.
pub fn decoder_launch(c: &Candidate) -> String {
    format!("{} name=decoder {DECODER_SETTINGS}", c.launch)
}

/// How long a smoke pipeline may take.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(5);

const SMOKE_SOURCE: &str =
    "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert";

/// Probes an encoder: registered, and five frames encode to EOS.
pub fn smoke_encoder(c: &Candidate) -> Probe {
    if gst::ElementFactory::find(c.factory).is_none() {
        return Probe::Missing;
    }
    let launch = format!("{SMOKE_SOURCE} ! {} ! h264parse ! fakesink", encoder_launch(c, 500));
    run_to_eos(&launch)
}

/// Probes a decoder with frames from a working `encoder` (or only checks that
/// it is registered when there is none).
pub fn smoke_decoder(c: &Candidate, encoder: Option<&Candidate>) -> Probe {
    if gst::ElementFactory::find(c.factory).is_none() {
        return Probe::Missing;
    }
    let Some(encoder) = encoder else { return Probe::Works };
    let launch = format!(
        "{SMOKE_SOURCE} ! {} ! h264parse ! {} ! fakesink",
        encoder_launch(encoder, 500),
        decoder_launch(c)
    );
    run_to_eos(&launch)
}

/// Runs a pipeline until EOS, an error, or [`SMOKE_TIMEOUT`].
pub fn run_to_eos(launch: &str) -> Probe {
    let pipeline = match gst::parse::launch(launch) {
        Ok(p) => p,
        Err(e) => return Probe::Broken(e.to_string()),
    };
    let result = run_started(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run_started(pipeline: &gst::Element) -> Probe {
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        return Probe::Broken(format!("cannot start: {e}"));
    }
    let Some(bus) = pipeline.bus() else { return Probe::Broken("no bus".into()) };
    let timeout = gst::ClockTime::from_nseconds(SMOKE_TIMEOUT.as_nanos() as u64);
    match bus.timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Eos(_) => Probe::Works,
            gst::MessageView::Error(e) => Probe::Broken(e.error().to_string()),
            _ => Probe::Broken("unexpected message".into()),
        },
        None => Probe::Broken("timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(
        installed: &'static [&'static str],
        working: &'static [&'static str],
    ) -> impl FnMut(&Candidate) -> Probe {
        move |c| {
            if !installed.contains(&c.factory) {
                Probe::Missing
            } else if working.contains(&c.factory) {
                Probe::Works
            } else {
                Probe::Broken("smoke failed".into())
            }
        }
    }

    #[test]
    fn hardware_first_when_it_works() {
        const ALL: &[&str] = &["v4l2h264enc", "vah264enc", "x264enc", "openh264enc"];
        let c = choose("encoder", ENCODERS, None, fake(&["v4l2h264enc", "x264enc"], ALL)).unwrap();
        assert_eq!(c.candidate.factory, "v4l2h264enc");
        assert_eq!(c.tried.len(), 1);
    }

    #[test]
    fn registered_but_broken_hardware_is_skipped() {
        let c = choose(
            "encoder",
            ENCODERS,
            None,
            fake(&["nvh264enc", "vah264enc", "x264enc", "openh264enc"], &["x264enc", "openh264enc"]),
        )
        .unwrap();
        assert_eq!(c.candidate.factory, "x264enc");
        let names: Vec<_> = c.tried.iter().map(|(n, _)| *n).collect();
        assert_eq!(names[..2], ["v4l2h264enc", "nvh264enc"]);
        assert_eq!(c.tried[1].1, Probe::Broken("smoke failed".into()));
        assert_eq!(c.tried.last().unwrap().0, "x264enc");
    }

    #[test]
    fn software_fallback_order() {
        let c = choose("encoder", ENCODERS, None, fake(&["openh264enc"], &["openh264enc"])).unwrap();
        assert_eq!(c.candidate.factory, "openh264enc");
        let d = choose(
            "decoder",
            DECODERS,
            None,
            fake(&["avdec_h264", "openh264dec"], &["avdec_h264", "openh264dec"]),
        )
        .unwrap();
        assert_eq!(d.candidate.factory, "avdec_h264");
    }

    #[test]
    fn nothing_works() {
        let err = choose("encoder", ENCODERS, None, fake(&["x264enc"], &[])).unwrap_err();
        let CodecError::NoneWorks { tried, .. } = &err else { panic!("{err:?}") };
        assert!(tried.contains("x264enc: broken") && tried.contains("openh264enc: not installed"), "{tried}");
    }

    #[test]
    fn forced_choice() {
        let c = choose(
            "encoder",
            ENCODERS,
            Some("openh264enc"),
            fake(&["x264enc", "openh264enc"], &["x264enc", "openh264enc"]),
        );
        assert_eq!(c.unwrap().candidate.factory, "openh264enc");
        let broken =
            choose("encoder", ENCODERS, Some("nvh264enc"), fake(&["nvh264enc", "x264enc"], &["x264enc"]));
        assert!(matches!(broken, Err(CodecError::ForcedBroken { .. })), "a forced encoder never falls back");
        let unknown = choose("encoder", ENCODERS, Some("foo"), fake(&[], &[]));
        assert!(matches!(unknown, Err(CodecError::Unknown { .. })));
    }

    #[test]
    fn launch_fragments() {
        let x264 = ENCODERS.iter().find(|c| c.factory == "x264enc").unwrap();
        assert!(encoder_launch(x264, 800).contains("x264enc name=encoder tune=zerolatency"));
        assert!(encoder_launch(x264, 800).contains("bitrate=800"));
        for c in ENCODERS {
            assert!(
                encoder_launch(c, 500).contains(&format!("{} name=encoder ", c.factory)),
                "{}",
                c.factory
            );
        }
        let open = ENCODERS.iter().find(|c| c.factory == "openh264enc").unwrap();
        assert!(encoder_launch(open, 800).contains("bitrate=800000"));
        assert!(
            decoder_launch(&DECODERS[4])
                .starts_with("avdec_h264 name=decoder automatic-request-sync-points=true")
        );
    }
}
