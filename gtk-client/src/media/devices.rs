//! Finding the camera, microphone and speakers, with the fallbacks for a
//! missing device. Runs on the thread that resolves the [`MediaSetup`](super::MediaSetup).

use super::portal::{self, PortalError};
use super::{AudioIn, AudioOut, AudioOutputKind, AudioSourceKind, MediaOptions, VideoIn, VideoSourceKind};

/// The camera through the portal, else through V4L2, else the test
/// pattern; and the names of the cameras the portal showed, if it was asked
/// and gave access.
pub(super) fn video_input(
    options: &MediaOptions,
    notices: &mut Vec<String>,
) -> (VideoIn, Option<Vec<String>>) {
    match options.video_source {
        VideoSourceKind::None => (VideoIn::None, None),
        VideoSourceKind::Test => (VideoIn::Test(options.test_pattern.clone()), None),
        VideoSourceKind::Camera => match portal::cameras() {
            Ok(mut cameras) => {
                let names = cameras.iter().map(|c| c.name.clone()).collect();
                let (index, count) = (options.camera_index, cameras.len());
                let video = if (index as usize) < count {
                    let camera = cameras.swap_remove(index as usize);
                    notices.push(format!(
                        "camera: {} (PipeWire node {}, through the camera portal)",
                        camera.name, camera.serial
                    ));
                    VideoIn::PipeWire(camera)
                } else {
                    notices.push(format!(
                        "{}: trying /dev/video{index}",
                        PortalError::NoSuchCamera { index, count }
                    ));
                    v4l2_camera(options, notices)
                };
                (video, Some(names))
            }
            Err(PortalError::NoBus) => (v4l2_camera(options, notices), None),
            Err(e) => {
                notices.push(format!("{e}: trying /dev/video{}", options.camera_index));
                (v4l2_camera(options, notices), None)
            }
        },
    }
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
    !super::monitor::devices(class).is_empty()
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
