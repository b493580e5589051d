//! Finding the camera, microphone and speakers, with the fallbacks for a
//! missing device, and listing the cameras to choose from in the order the
//! camera index picks them. Runs on the thread that resolves the
//! [`MediaSetup`](super::MediaSetup), and the listing on whatever worker
//! thread asks (it blocks for as long as the portal and the device monitor take).

use gst::prelude::*;

use super::portal::{self, PortalError};
use super::{AudioIn, AudioOut, AudioOutputKind, AudioSourceKind, MediaOptions, VideoIn, VideoSourceKind};

/// The camera through the portal, else through V4L2, else the test pattern.
pub(super) fn video_input(options: &MediaOptions, notices: &mut Vec<String>) -> VideoIn {
    match options.video_source {
        VideoSourceKind::None => VideoIn::None,
        VideoSourceKind::Test => VideoIn::Test(options.test_pattern.clone()),
        VideoSourceKind::Camera => match portal::open_camera(options.camera_index) {
            Ok(camera) => {
                notices.push(format!(
                    "camera: {} (PipeWire node {}, through the camera portal)",
                    camera.name, camera.serial
                ));
                VideoIn::PipeWire(camera)
            }
            Err(PortalError::NoBus) => v4l2_camera(options, notices),
            Err(e) => {
                notices.push(format!("{e}: trying /dev/video{}", options.camera_index));
                v4l2_camera(options, notices)
            }
        },
    }
}

/// A camera people can choose, with the camera index (conf.txt, `--camera`)
/// that picks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraChoice {
    /// Its name, for people.
    pub name: String,
    /// The camera index that picks it.
    pub index: u32,
    /// `/dev/videoN` for a V4L2 camera; `None` for one through the portal.
    pub path: Option<String>,
}

/// The cameras the camera portal gives this process, numbered as
/// [`video_input`] picks them: camera N is the Nth of [`portal::cameras`].
/// Blocks for as long as the portal takes (the user may be asked first):
/// call it on a worker thread. An empty list, like an error, means that
/// the camera index picks `/dev/videoN` ([`v4l2_cameras`]).
///
/// # Errors
/// The [`PortalError`] that makes [`video_input`] fall back to V4L2.
pub fn portal_cameras() -> Result<Vec<CameraChoice>, PortalError> {
    let cameras = portal::cameras()?;
    Ok(cameras
        .into_iter()
        .zip(0..)
        .map(|(camera, index)| CameraChoice { name: camera.name, index, path: None })
        .collect())
}

/// The V4L2 cameras GStreamer's device monitor finds (PipeWire's too, when
/// it names their `/dev/videoN`), by index: camera N is `/dev/videoN`, as
/// [`video_input`] picks it when the portal gives no camera.
pub fn v4l2_cameras() -> Vec<CameraChoice> {
    let mut cameras: Vec<CameraChoice> = devices_of("Video/Source")
        .iter()
        .filter_map(|d| {
            let props = d.properties()?;
            let path = ["device.path", "api.v4l2.path"].iter().find_map(|k| props.get::<String>(*k).ok())?;
            let index = path.strip_prefix("/dev/video")?.parse().ok()?;
            Some(CameraChoice { name: d.display_name().to_string(), index, path: Some(path) })
        })
        .collect();
    cameras.sort_by_key(|c| c.index);
    // One device may be offered by two providers (V4L2 and PipeWire).
    cameras.dedup_by_key(|c| c.index);
    cameras
}

/// `/dev/video<N>`, or the test pattern when it is missing.
fn v4l2_camera(options: &MediaOptions, notices: &mut Vec<String>) -> VideoIn {
    let path = format!("/dev/video{}", options.camera_index);
    if std::path::Path::new(&path).exists() {
        notices.push(format!("camera: {path}"));
        VideoIn::Camera(path)
    } else {
        notices.push(format!(
            "camera {path} not found (camera index {} in conf.txt): sending a test pattern instead",
            options.camera_index
        ));
        VideoIn::Test(options.test_pattern.clone())
    }
}

/// The microphone, or silence when there is none.
pub(super) fn audio_input(options: &MediaOptions, notices: &mut Vec<String>) -> AudioIn {
    match options.audio_source {
        AudioSourceKind::None => AudioIn::None,
        AudioSourceKind::Test => AudioIn::Tone(options.tone_hz),
        AudioSourceKind::Mic if has_device("Audio/Source") => {
            notices.push("microphone: the default input".into());
            AudioIn::Mic
        }
        AudioSourceKind::Mic => {
            notices.push("no microphone found: sending silence instead".into());
            AudioIn::Silence
        }
    }
}

/// The speakers, or a null sink when there are none.
pub(super) fn audio_output(options: &MediaOptions, notices: &mut Vec<String>) -> AudioOut {
    match options.audio_output {
        AudioOutputKind::None => AudioOut::Null,
        AudioOutputKind::Speakers if has_device("Audio/Sink") => AudioOut::Speakers,
        AudioOutputKind::Speakers => {
            notices.push("no speakers found: received audio is decoded but not played".into());
            AudioOut::Null
        }
    }
}

/// Whether GStreamer's device monitor lists at least one device of `class`.
fn has_device(class: &str) -> bool {
    !devices_of(class).is_empty()
}

/// The devices of `class` (such as `Audio/Source`) GStreamer's device
/// monitor lists now; none when it cannot start.
pub fn devices_of(class: &str) -> Vec<gst::Device> {
    if super::init().is_err() {
        return Vec::new();
    }
    let _one_at_a_time = listing_lock();
    let monitor = gst::DeviceMonitor::new();
    if monitor.add_filter(Some(class), None).is_none() || monitor.start().is_err() {
        return Vec::new();
    }
    let found = monitor.devices().into_iter().collect();
    monitor.stop();
    found
}

static LISTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while GStreamer's device providers list devices, so that only one
/// listing runs at a time in the process: Preferences lists the cameras
/// through the portal and the device monitor's devices on two threads, and
/// the PipeWire device providers running at once on two threads corrupted
/// the heap (glibc: "corrupted size vs. prev_size in fastbins"). Each
/// holder lets go within its own bounded wait.
pub(super) fn listing_lock() -> std::sync::MutexGuard<'static, ()> {
    LISTING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The source fragment for a video input.
pub(super) fn video_source_launch(input: &VideoIn) -> Option<String> {
    match input {
        VideoIn::Camera(path) => Some(format!("v4l2src device={path}")),
        VideoIn::PipeWire(c) => Some(format!("pipewiresrc fd={} target-object={}", c.remote.fd(), c.serial)),
        VideoIn::Test(pattern) => Some(format!("videotestsrc is-live=true pattern={pattern}")),
        VideoIn::None => None,
    }
}

/// The source fragment for an audio input. 960 samples are one 20 ms Opus frame.
pub(super) fn audio_source_launch(input: AudioIn) -> Option<String> {
    match input {
        AudioIn::Mic => Some("autoaudiosrc".into()),
        AudioIn::Tone(hz) => {
            Some(format!("audiotestsrc is-live=true wave=sine freq={hz} volume=0.4 samplesperbuffer=960"))
        }
        AudioIn::Silence => Some("audiotestsrc is-live=true wave=silence samplesperbuffer=960".into()),
        AudioIn::None => None,
    }
}

/// The sink fragment for received audio.
pub(super) fn audio_sink_launch(out: AudioOut) -> &'static str {
    match out {
        AudioOut::Speakers => "autoaudiosink sync=false",
        AudioOut::Null => super::pipelines::NULL_SINK,
    }
}
