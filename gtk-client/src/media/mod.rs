//! The media engine: GStreamer pipelines, encoder choice, appsrc/appsink, and
//! statistics. Imports no widgets.
//!
//! [`MediaSetup::resolve`] runs once at start-up on the caller's thread: it
//! initialises GStreamer, picks the H.264 encoder and decoder (see [`codec`])
//! and the devices, falling back to a test pattern, silence or a null sink
//! when a device is missing. [`CallMedia::start`] builds the four pipelines of
//! a call from the descriptions in `pipelines/` (see [`pipelines`]); it is
//! called by the engine's control thread, which is the only thread that starts
//! or stops pipelines. Per call, `send_video` and `send_audio` threads pull
//! encoded buffers from the appsinks, and the network `receive` thread pushes
//! received frames into the appsrcs through [`FrameRoute`].

mod adapt;
pub mod clock;
pub mod codec;
mod describe;
mod devices;
pub mod monitor;
pub mod pipelines;
pub mod portal;
mod receive;
mod recovery;
mod send;
pub mod session;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use komunikator_protocol::{ClientId, MediaKind};

pub use describe::PipelineSet;
pub use receive::FrameRoute;
pub use recovery::Restarted;
pub use session::CallMedia;
pub use stats::{Stats, StatsSnapshot};

/// Builds a sink element supplied by a GUI (for example `gtk4paintablesink`).
/// Called on the control thread for every call; it may return the same
/// element each time: the engine removes it from the old pipeline (in state
/// NULL) before the next call.
pub type SinkFactory = Arc<dyn Fn() -> Option<gst::Element> + Send + Sync>;

/// Where outgoing video comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoSourceKind {
    /// Camera `N`: through the camera portal and PipeWire where there is a
    /// portal, else `/dev/video<N>` through v4l2src; a test pattern when
    /// neither has it.
    Camera,
    /// A live `videotestsrc`.
    Test,
    /// Send no video.
    None,
}

/// Where outgoing audio comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioSourceKind {
    /// The default microphone; silence when there is none.
    Mic,
    /// A sine tone.
    Test,
    /// Send no audio.
    None,
}

/// Where received audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioOutputKind {
    /// The default speakers; a null sink when there are none.
    Speakers,
    /// A null sink.
    None,
}

/// What the user asked for.
#[derive(Clone)]
pub struct MediaOptions {
    /// Outgoing video.
    pub video_source: VideoSourceKind,
    /// Outgoing audio.
    pub audio_source: AudioSourceKind,
    /// Received audio.
    pub audio_output: AudioOutputKind,
    /// Which camera: the Nth the portal's PipeWire remote shows, or `N` of
    /// `/dev/video<N>`.
    pub camera_index: u32,
    /// The `videotestsrc` pattern of the test source (a nick such as `smpte`).
    pub test_pattern: String,
    /// The frequency of the test tone, in Hz.
    pub tone_hz: u32,
    /// Picture width sent.
    pub width: u32,
    /// Picture height sent.
    pub height: u32,
    /// Frames per second sent.
    pub fps: u32,
    /// The highest video bitrate in kbit/s; with `adapt`, the rate follows
    /// the link below it.
    pub video_kbps: u32,
    /// Follow the link: bitrate, picture size, skipping raw pictures, audio
    /// first. Off only for benchmarks (`--no-adapt`).
    pub adapt: bool,
    /// Opus bitrate in bit/s.
    pub audio_bps: u32,
    /// `--video-encoder`: force this encoder.
    pub video_encoder: Option<String>,
    /// `--video-decoder`: force this decoder.
    pub video_decoder: Option<String>,
    /// A GUI's sink for the peer's picture; `None` discards it.
    pub video_sink: Option<SinkFactory>,
    /// A GUI's sink for the local preview; `None` discards it.
    pub preview_sink: Option<SinkFactory>,
    /// A GUI's sinks for the pictures of further parties of a group call,
    /// one per tile; a party without a free one is heard, not seen.
    pub party_sinks: Vec<SinkFactory>,
    /// The source fragment of a chosen microphone (for example
    /// `pulsesrc device="NAME"`), used instead of `autoaudiosrc`.
    pub microphone: Option<String>,
    /// For tests only (`--inject-source-failure`): make a sending pipeline's
    /// live source fail this long into every call.
    pub inject_source_failure: Option<SourceFailure>,
    /// Take part in group calls: turn the feature on with the server and
    /// receive from every party (headless `--group`; the window does not yet).
    pub group_calls: bool,
}

/// A fault injected into a sending pipeline's live source, for tests: the
/// source element itself posts an error (as `v4l2src` does when a camera is
/// unplugged) or sends end-of-stream, so recovery takes the same path a real
/// device loss takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFailure {
    /// Which sending pipeline's source fails.
    pub kind: MediaKind,
    /// How long after the call's media started.
    pub after: Duration,
    /// Post end-of-stream instead of an error.
    pub eos: bool,
}

impl Default for MediaOptions {
    fn default() -> MediaOptions {
        MediaOptions {
            video_source: VideoSourceKind::Camera,
            audio_source: AudioSourceKind::Mic,
            audio_output: AudioOutputKind::Speakers,
            camera_index: 0,
            test_pattern: "smpte".into(),
            tone_hz: 440,
            width: 640,
            height: 480,
            fps: 30,
            video_kbps: 1000,
            adapt: true,
            audio_bps: 32_000,
            video_encoder: None,
            video_decoder: None,
            video_sink: None,
            preview_sink: None,
            party_sinks: Vec::new(),
            microphone: None,
            inject_source_failure: None,
            group_calls: false,
        }
    }
}

impl std::fmt::Debug for MediaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaOptions")
            .field("video_source", &self.video_source)
            .field("audio_source", &self.audio_source)
            .field("audio_output", &self.audio_output)
            .field("camera_index", &self.camera_index)
            .field("video_encoder", &self.video_encoder)
            .field("gui_video_sink", &self.video_sink.is_some())
            .finish_non_exhaustive()
    }
}

/// Errors of the media engine.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer could not be initialised.
    #[error("cannot initialise GStreamer: {0}")]
    Init(String),
    /// No usable codec (or a forced one does not work).
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// A pipeline description lacks a value.
    #[error(transparent)]
    Template(#[from] pipelines::MissingPlaceholder),
    /// A pipeline description does not parse.
    #[error("cannot build the {pipeline} pipeline: {message}")]
    Parse {
        /// Which pipeline.
        pipeline: &'static str,
        /// GStreamer's message.
        message: String,
    },
    /// A pipeline would not start.
    #[error("cannot start the {pipeline} pipeline: {message}")]
    Start {
        /// Which pipeline.
        pipeline: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A test pattern name with characters a pipeline description cannot take.
    #[error("bad test pattern {0:?}: use a videotestsrc pattern name such as smpte or ball")]
    BadPattern(String),
}

/// Something the pipelines report to the control thread, from any thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The video decoder of a party's pictures asked for a keyframe (it
    /// could not decode); the party, when the pipelines know it.
    KeyframeWanted(Option<ClientId>),
    /// A pipeline posted an error.
    Error {
        /// Which pipeline.
        pipeline: &'static str,
        /// Which instance of it: a rebuilt
        /// pipeline's predecessor may still post after it was replaced.
        generation: u64,
        /// GStreamer's message.
        message: String,
    },
    /// A pipeline reached end-of-stream: for a sending pipeline, its live
    /// source (a camera, a microphone) stopped.
    Ended {
        /// Which pipeline.
        pipeline: &'static str,
        /// Which instance of it.
        generation: u64,
    },
    /// A pipeline posted a warning.
    Warning {
        /// Which pipeline.
        pipeline: &'static str,
        /// GStreamer's message.
        message: String,
    },
}

/// Where the pipelines send [`MediaEvent`]s.
pub type Notify = Arc<dyn Fn(MediaEvent) + Send + Sync>;

/// The resolved video input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoIn {
    /// A V4L2 device path.
    Camera(String),
    /// A camera through the portal's PipeWire remote.
    PipeWire(portal::PortalCamera),
    /// `videotestsrc` with this pattern.
    Test(String),
    /// No video is sent.
    None,
}

impl std::fmt::Display for VideoIn {
    /// `camera:/dev/videoN`, `pipewire:SERIAL:NAME`, `test:PATTERN` or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VideoIn::Camera(path) => write!(f, "camera:{path}"),
            VideoIn::PipeWire(c) => write!(f, "pipewire:{}:{}", c.serial, c.name),
            VideoIn::Test(pattern) => write!(f, "test:{pattern}"),
            VideoIn::None => f.write_str("none"),
        }
    }
}

/// The resolved audio input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioIn {
    /// The default microphone.
    Mic,
    /// A sine tone at this frequency.
    Tone(u32),
    /// Silence (the stream keeps flowing).
    Silence,
    /// No audio is sent.
    None,
}

impl std::fmt::Display for AudioIn {
    /// `mic`, `tone:HZ`, `silence` or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioIn::Mic => f.write_str("mic"),
            AudioIn::Tone(hz) => write!(f, "tone:{hz}"),
            AudioIn::Silence => f.write_str("silence"),
            AudioIn::None => f.write_str("none"),
        }
    }
}

/// The resolved audio output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioOut {
    /// The default speakers.
    Speakers,
    /// A null sink.
    Null,
}

/// Everything decided once at start-up.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// What was asked for.
    pub options: MediaOptions,
    /// The chosen encoder; `None` sends no video.
    pub encoder: Option<&'static codec::Candidate>,
    /// The chosen decoder; `None` decodes no video.
    pub decoder: Option<&'static codec::Candidate>,
    /// The video input after fallbacks.
    pub video_in: VideoIn,
    /// The audio input after fallbacks.
    pub audio_in: AudioIn,
    /// The audio output after fallbacks.
    pub audio_out: AudioOut,
    /// The cameras the camera portal showed, by name, in the order the
    /// camera index numbers them; `None` when no portal was asked (no
    /// camera wanted, no session bus) or it gave no camera access. Where
    /// this is `None` or empty, the camera index names `/dev/videoN`.
    pub portal_cameras: Option<Vec<String>>,
    /// What was chosen and what fell back, one sentence each, for the log.
    pub notices: Vec<String>,
}

impl MediaOptions {
    /// How the connection should treat a slow link, for these options.
    pub fn rate_config(&self) -> crate::net::RateConfig {
        let (w, h, fps, kbps) = (self.width, self.height, self.fps, self.video_kbps);
        if self.adapt {
            crate::net::RateConfig::adaptive(w, h, fps, kbps)
        } else {
            crate::net::RateConfig::fixed(w, h, fps, kbps)
        }
    }
}

/// Initialises GStreamer once; safe to call many times.
///
/// # Errors
/// [`MediaError::Init`] when GStreamer cannot start.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}

impl MediaSetup {
    /// Chooses codecs and devices.
    ///
    /// # Errors
    /// [`MediaError`] when GStreamer cannot start, a forced codec does not
    /// work, or the test pattern name is unusable. A missing device or a
    /// missing encoder is not an error: it falls back, with a notice.
    pub fn resolve(options: MediaOptions) -> Result<MediaSetup, MediaError> {
        init()?;
        if !is_pattern_name(&options.test_pattern) {
            return Err(MediaError::BadPattern(options.test_pattern.clone()));
        }
        let mut notices = Vec::new();
        let (encoder, decoder) = choose_codecs(&options, &mut notices)?;
        let (mut video_in, portal_cameras) = devices::video_input(&options, &mut notices);
        if encoder.is_none() && video_in != VideoIn::None {
            notices.push("no working H.264 encoder: sending no video".into());
            video_in = VideoIn::None;
        }
        let audio_in = devices::audio_input(&options, &mut notices);
        let audio_out = devices::audio_output(&options, &mut notices);
        Ok(MediaSetup { options, encoder, decoder, video_in, audio_in, audio_out, portal_cameras, notices })
    }

    /// The encoder's factory name, or `"none"`.
    pub fn encoder_name(&self) -> &'static str {
        self.encoder.map_or("none", |c| c.factory)
    }

    /// The decoder's factory name, or `"none"`.
    pub fn decoder_name(&self) -> &'static str {
        self.decoder.map_or("none", |c| c.factory)
    }
}

/// Whether `s` can go into `pattern=` unquoted.
fn is_pattern_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

type Codecs = (Option<&'static codec::Candidate>, Option<&'static codec::Candidate>);

fn choose_codecs(options: &MediaOptions, notices: &mut Vec<String>) -> Result<Codecs, MediaError> {
    let encoder = match codec::choose(
        "encoder",
        codec::ENCODERS,
        options.video_encoder.as_deref(),
        codec::smoke_encoder,
    ) {
        Ok(choice) => {
            notices.push(describe_choice("encoder", &choice));
            Some(choice.candidate)
        }
        Err(e @ codec::CodecError::NoneWorks { .. }) => {
            notices.push(e.to_string());
            None
        }
        Err(e) => return Err(e.into()),
    };
    let decoder = match codec::choose("decoder", codec::DECODERS, options.video_decoder.as_deref(), |c| {
        codec::smoke_decoder(c, encoder)
    }) {
        Ok(choice) => {
            notices.push(describe_choice("decoder", &choice));
            Some(choice.candidate)
        }
        Err(e @ codec::CodecError::NoneWorks { .. }) => {
            notices.push(e.to_string());
            None
        }
        Err(e) => return Err(e.into()),
    };
    Ok((encoder, decoder))
}

fn describe_choice(what: &str, choice: &codec::Choice) -> String {
    let skipped: Vec<String> = choice
        .tried
        .iter()
        .filter(|(_, p)| *p != codec::Probe::Works)
        .map(|(n, p)| format!("{n} {}", codec::probe_text(p)))
        .collect();
    let kind = if choice.candidate.hardware { "hardware" } else { "software" };
    if skipped.is_empty() {
        format!("H.264 {what}: {} ({kind})", choice.candidate.factory)
    } else {
        format!("H.264 {what}: {} ({kind}; skipped: {})", choice.candidate.factory, skipped.join(", "))
    }
}

/// Parses a description into a pipeline.
fn parse_pipeline(name: &'static str, launch: &str) -> Result<gst::Pipeline, MediaError> {
    use gst::prelude::*;
    let element = gst::parse::launch(launch)
        .map_err(|e| MediaError::Parse { pipeline: name, message: e.to_string() })?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Parse { pipeline: name, message: "not a pipeline".into() })?;
    portal::stamp_pipewire_sources(&pipeline);
    Ok(pipeline)
}

/// A number no other pipeline instance of this process has.
pub(crate) fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Forwards errors, warnings and end-of-stream to `notify` from whichever
/// thread posts them; every message is dropped from the bus so nothing piles
/// up there.
fn watch_bus(pipeline: &gst::Pipeline, name: &'static str, generation: u64, notify: Notify) {
    use gst::prelude::*;
    let Some(bus) = pipeline.bus() else { return };
    bus.set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Error(e) => notify(MediaEvent::Error {
                pipeline: name,
                generation,
                message: bus_text(&e.error(), e.debug()),
            }),
            gst::MessageView::Eos(_) => notify(MediaEvent::Ended { pipeline: name, generation }),
            gst::MessageView::Warning(w) => {
                notify(MediaEvent::Warning { pipeline: name, message: bus_text(&w.error(), w.debug()) })
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
}

fn bus_text(error: &glib::Error, debug: Option<glib::GString>) -> String {
    match debug {
        Some(d) => format!("{error} ({d})"),
        None => error.to_string(),
    }
}

/// Replaces the `sink_slot` placeholder element's output with a sink the GUI
/// supplies. The sink is told not to sync: received timestamps follow the
/// sender's clock, and showing a picture as soon as it is decoded is the point.
fn attach_external_sink(
    pipeline: &gst::Pipeline,
    name: &'static str,
    factory: &SinkFactory,
) -> Result<Option<gst::Element>, MediaError> {
    use gst::prelude::*;
    let Some(slot) = pipeline.by_name("sink_slot") else { return Ok(None) };
    let fail = |message: String| MediaError::Parse { pipeline: name, message };
    let sink = factory().ok_or_else(|| fail("the GUI supplied no sink element".into()))?;
    if let Some(parent) = sink.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) {
        let _ = sink.set_state(gst::State::Null);
        let _ = parent.remove(&sink);
    }
    if sink.find_property("sync").is_some() {
        sink.set_property("sync", false);
    }
    pipeline.add(&sink).map_err(|e| fail(e.to_string()))?;
    slot.link(&sink).map_err(|e| fail(e.to_string()))?;
    Ok(Some(sink))
}
