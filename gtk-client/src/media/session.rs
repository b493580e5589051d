//! [`CallMedia`]: the four pipelines of one call. Created and stopped by the
//! engine's control thread only.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use komunikator_protocol::MediaKind;

use super::receive::{Receiving, Targets};
use super::send::Sending;
use super::{AudioIn, FrameRoute, MediaSetup, Notify, Stats, VideoIn};
use crate::net::Writer;

/// The pipelines of the call in progress.
pub struct CallMedia {
    send_video: Option<Sending>,
    send_audio: Option<Sending>,
    receive_video: Option<Receiving>,
    receive_audio: Option<Receiving>,
    route: Arc<FrameRoute>,
    /// What actually runs, for reports: the video and audio inputs after any
    /// start-time fallback.
    pub video_in: VideoIn,
    /// See `video_in`.
    pub audio_in: AudioIn,
}

/// The user's switches, applied to every new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controls {
    /// Send silence instead of the microphone.
    pub muted: bool,
    /// Send video at all.
    pub camera_enabled: bool,
}

impl Default for Controls {
    fn default() -> Controls {
        Controls { muted: false, camera_enabled: true }
    }
}

impl CallMedia {
    /// Starts the receiving pipelines, attaches them to `route`, then starts
    /// the sending ones. A pipeline that cannot start is left out (or falls
    /// back: camera to test pattern, microphone to silence); each such event
    /// is returned as a notice, so the call itself always goes ahead.
    pub fn start(
        setup: &MediaSetup,
        writer: &Writer,
        route: Arc<FrameRoute>,
        stats: Arc<Stats>,
        notify: Notify,
        controls: Controls,
    ) -> (CallMedia, Vec<String>) {
        let mut notices = Vec::new();
        let video_base = Arc::new(AtomicU64::new(u64::MAX));
        let undecoded = Arc::new(AtomicU64::new(0));
        let receive_video = setup.receive_video_launch().and_then(|launch| {
            launch
                .map(|l| {
                    let sink = setup.options.video_sink.as_ref();
                    let (base, undecoded) = (video_base.clone(), undecoded.clone());
                    Receiving::start_video(&l, stats.clone(), base, undecoded, notify.clone(), sink)
                })
                .transpose()
        });
        let receive_video = keep(receive_video, &mut notices);
        let receive_audio = setup
            .receive_audio_launch()
            .and_then(|l| Receiving::start_audio(&l, stats.clone(), notify.clone()));
        let receive_audio = keep(receive_audio.map(Some), &mut notices);
        route.attach(Targets {
            video: receive_video.as_ref().map(|r| r.appsrc.clone()),
            audio: receive_audio.as_ref().map(|r| r.appsrc.clone()),
            video_base,
            audio_base: Arc::new(AtomicU64::new(u64::MAX)),
            last_audio_pts: None,
            stats: stats.clone(),
            undecoded,
            seen_key: false,
            dropping_video: false,
            notify: notify.clone(),
        });
        let send = |kind, launch: &str, preview| {
            let name = if kind == MediaKind::Video { "send-video" } else { "send-audio" };
            Sending::start(name, kind, launch, writer.clone(), stats.clone(), notify.clone(), preview)
        };
        let preview = setup.options.preview_sink.as_ref();
        let (send_video, video_in) = start_with_fallback(
            setup.video_in.clone(),
            VideoIn::Test(setup.options.test_pattern.clone()),
            |input| setup.send_video_launch(input),
            |launch| send(MediaKind::Video, launch, preview),
            &mut notices,
        );
        let (send_audio, audio_in) = start_with_fallback(
            setup.audio_in,
            AudioIn::Silence,
            |input| setup.send_audio_launch(*input),
            |launch| send(MediaKind::Audio, launch, None),
            &mut notices,
        );
        let media =
            CallMedia { send_video, send_audio, receive_video, receive_audio, route, video_in, audio_in };
        media.set_muted(controls.muted);
        media.set_camera_enabled(controls.camera_enabled);
        (media, notices)
    }

    /// Makes the next video frame a keyframe.
    pub fn force_keyframe(&self) {
        if let Some(s) = &self.send_video {
            s.force_keyframe();
        }
    }

    /// Mutes or unmutes the microphone (silence keeps flowing).
    pub fn set_muted(&self, muted: bool) {
        if let Some(s) = &self.send_audio {
            s.set("volume", "mute", muted);
        }
    }

    /// Stops or resumes sending pictures; resuming starts with a keyframe.
    pub fn set_camera_enabled(&self, enabled: bool) {
        if let Some(s) = &self.send_video {
            s.set("camera", "drop", !enabled);
            if enabled {
                s.force_keyframe();
            }
        }
    }

    /// Whether video is being sent.
    pub fn sends_video(&self) -> bool {
        self.send_video.is_some()
    }

    /// Stops sending first (so no frame follows our `stop`), then receiving.
    pub fn stop(self) {
        let CallMedia { send_video, send_audio, receive_video, receive_audio, route, .. } = self;
        for s in [send_video, send_audio].into_iter().flatten() {
            s.stop();
        }
        route.detach();
        for r in [receive_video, receive_audio].into_iter().flatten() {
            r.stop();
        }
    }
}

fn keep<T>(r: Result<Option<T>, super::MediaError>, notices: &mut Vec<String>) -> Option<T> {
    r.unwrap_or_else(|e| {
        notices.push(e.to_string());
        None
    })
}

/// Starts a sending pipeline for `input`; if that fails, for `fallback`.
fn start_with_fallback<I: Clone + PartialEq + std::fmt::Debug>(
    input: I,
    fallback: I,
    launch: impl Fn(&I) -> Result<Option<String>, super::MediaError>,
    start: impl Fn(&str) -> Result<Sending, super::MediaError>,
    notices: &mut Vec<String>,
) -> (Option<Sending>, I) {
    let try_one = |i: &I| launch(i).and_then(|l| l.map(|l| start(&l)).transpose());
    match try_one(&input) {
        Ok(s) => (s, input),
        Err(e) if input != fallback => {
            notices.push(format!("{e}; falling back to {fallback:?}"));
            match try_one(&fallback) {
                Ok(s) => (s, fallback),
                Err(e) => {
                    notices.push(e.to_string());
                    (None, fallback)
                }
            }
        }
        Err(e) => {
            notices.push(e.to_string());
            (None, input)
        }
    }
}
