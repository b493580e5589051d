//! [`CallMedia`]: the pipelines of one call: two sending, and two receiving
//! for every other party (one party in a two-party call). Created, grown and
//! shrunk as parties join and leave a group call, rebuilt (see
//! [`super::recovery`]) and stopped by the engine's control thread only.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use komunikator_protocol::{ClientId, MediaKind};

use super::receive::{Receiving, Targets};
use super::recovery::Restarts;
use super::send::Sending;
use super::{AudioIn, FrameRoute, MediaError, MediaEvent, MediaSetup, Notify, SinkFactory, Stats, VideoIn};
use crate::net::Writer;

/// The pipelines of the call in progress.
pub struct CallMedia {
    pub(super) send_video: Option<Sending>,
    pub(super) send_audio: Option<Sending>,
    /// The receiving pipelines of each other party, the first (`start`) first.
    pub(super) parties: Vec<Party>,
    pub(super) route: Arc<FrameRoute>,
    /// What actually runs, for reports: the video and audio inputs after any
    /// fallback (at start or mid-call).
    pub video_in: VideoIn,
    /// See `video_in`.
    pub audio_in: AudioIn,
    /// What it takes to build a pipeline again.
    pub(super) ctx: Context,
    /// The user's switches, applied to rebuilt sending pipelines too.
    pub(super) controls: Controls,
    /// Pipelines that failed and wait to be rebuilt (see [`super::recovery`]).
    pub(super) restarts: Restarts,
}

/// Everything needed to build one of the call's pipelines, at start or
/// again after a failure.
pub(super) struct Context {
    setup: Arc<MediaSetup>,
    writer: Writer,
    stats: Arc<Stats>,
    notify: Notify,
}

/// One other party of the call: its receiving pipelines and what they share
/// with the route.
pub(super) struct Party {
    /// Its id.
    pub(super) id: ClientId,
    pub(super) video: Option<Receiving>,
    pub(super) audio: Option<Receiving>,
    /// What it received and decoded (the call's statistics for the first party).
    pub(super) stats: Arc<Stats>,
    /// Shared by every receive-video instance for this party, so timestamps
    /// stay relative to its first frame.
    video_base: Arc<AtomicU64>,
    /// The same for audio.
    audio_base: Arc<AtomicU64>,
    /// Shared with the route's stall detector.
    undecoded: Arc<AtomicU64>,
    /// When each receiving pipeline may be rebuilt (video, audio).
    pub(super) restarts: [super::recovery::Backoff; 2],
    /// The GUI's tile (one of `party_sinks`) its pictures go to, if any.
    pub(super) tile: Option<usize>,
}

impl Party {
    fn new(id: ClientId, stats: Arc<Stats>) -> Party {
        Party {
            id,
            video: None,
            audio: None,
            stats,
            video_base: Arc::new(AtomicU64::new(u64::MAX)),
            audio_base: Arc::new(AtomicU64::new(u64::MAX)),
            undecoded: Arc::new(AtomicU64::new(0)),
            restarts: Default::default(),
            tile: None,
        }
    }

    /// `notify`, with this party named in its keyframe requests.
    fn notify(&self, notify: &Notify) -> Notify {
        let (id, notify) = (self.id, notify.clone());
        Arc::new(move |ev| match ev {
            MediaEvent::KeyframeWanted(None) => notify(MediaEvent::KeyframeWanted(Some(id))),
            ev => notify(ev),
        })
    }

    /// What the route needs to deliver this party's frames.
    fn targets(&self, notify: &Notify) -> Targets {
        let notify = self.notify(notify);
        Targets {
            video: self.video.as_ref().map(|r| r.appsrc.clone()),
            audio: self.audio.as_ref().map(|r| r.appsrc.clone()),
            video_base: self.video_base.clone(),
            audio_base: self.audio_base.clone(),
            last_audio_pts: None,
            stats: self.stats.clone(),
            undecoded: self.undecoded.clone(),
            seen_key: false,
            dropping_video: false,
            one_way: Default::default(),
            notify,
        }
    }

    fn stop(self) {
        for r in [self.video, self.audio].into_iter().flatten() {
            r.stop();
        }
    }
}

impl Context {
    /// The call's statistics.
    pub(super) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A new receive-video pipeline for `party`; `None` without a decoder.
    /// The first party's pictures go to the GUI's main sink (`first`), the
    /// others' to their tile's, if they have one.
    pub(super) fn receive_video(&self, party: &Party, first: bool) -> Result<Option<Receiving>, MediaError> {
        let options = &self.setup.options;
        let sink = if first {
            options.video_sink.as_ref()
        } else {
            party.tile.and_then(|t| options.party_sinks.get(t))
        };
        let Some(launch) = self.setup.receive_video_launch_with(sink.is_some())? else { return Ok(None) };
        let (base, undecoded) = (party.video_base.clone(), party.undecoded.clone());
        Receiving::start_video(
            &launch,
            party.stats.clone(),
            base,
            undecoded,
            party.notify(&self.notify),
            sink,
        )
        .map(Some)
    }

    /// A new receive-audio pipeline for `party`.
    pub(super) fn receive_audio(&self, party: &Party) -> Result<Receiving, MediaError> {
        let launch = self.setup.receive_audio_launch()?;
        Receiving::start_audio(&launch, party.stats.clone(), party.audio_base.clone(), self.notify.clone())
    }

    /// A new send-video pipeline from `input`; `None` when nothing is sent.
    pub(super) fn send_video(&self, input: &VideoIn) -> Result<Option<Sending>, MediaError> {
        let Some(launch) = self.setup.send_video_launch(input)? else { return Ok(None) };
        let preview = self.setup.options.preview_sink.as_ref();
        self.send("send-video", MediaKind::Video, &launch, preview, self.setup.encoder).map(Some)
    }

    /// A new send-audio pipeline from `input`; `None` when nothing is sent.
    pub(super) fn send_audio(&self, input: AudioIn) -> Result<Option<Sending>, MediaError> {
        let Some(launch) = self.setup.send_audio_launch(input)? else { return Ok(None) };
        self.send("send-audio", MediaKind::Audio, &launch, None, None).map(Some)
    }

    fn send(
        &self,
        name: &'static str,
        kind: MediaKind,
        launch: &str,
        preview: Option<&SinkFactory>,
        encoder: Option<&'static super::codec::Candidate>,
    ) -> Result<Sending, MediaError> {
        let (writer, stats, notify) = (self.writer.clone(), self.stats.clone(), self.notify.clone());
        Sending::start(name, kind, launch, writer, stats, notify, preview, encoder)
    }

    /// The fallback for a failed video input: the live test pattern.
    pub(super) fn video_fallback(&self) -> VideoIn {
        VideoIn::Test(self.setup.options.test_pattern.clone())
    }
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
    /// Starts the receiving pipelines for `peer` (the party named in
    /// `start`), attaches them to `route`, then starts the sending ones. A
    /// pipeline that cannot start is left out (or falls back: camera to test
    /// pattern, microphone to silence); each such event is returned as a
    /// notice, so the call itself always goes ahead.
    pub fn start(
        setup: &Arc<MediaSetup>,
        writer: &Writer,
        (route, peer): (Arc<FrameRoute>, ClientId),
        stats: Arc<Stats>,
        notify: Notify,
        controls: Controls,
    ) -> (CallMedia, Vec<String>) {
        let ctx = Context { setup: setup.clone(), writer: writer.clone(), stats: stats.clone(), notify };
        let mut media = CallMedia {
            send_video: None,
            send_audio: None,
            parties: Vec::new(),
            route,
            video_in: VideoIn::None,
            audio_in: AudioIn::None,
            ctx,
            controls,
            restarts: Restarts::default(),
        };
        let (mut notices, _) = media.add_party(peer, stats);
        let (send_video, video_in) = start_with_fallback(
            setup.video_in.clone(),
            VideoIn::Test(setup.options.test_pattern.clone()),
            |input| media.ctx.send_video(input),
            &mut notices,
        );
        let (send_audio, audio_in) = start_with_fallback(
            setup.audio_in,
            AudioIn::Silence,
            |input| media.ctx.send_audio(*input),
            &mut notices,
        );
        (media.send_video, media.video_in, media.send_audio, media.audio_in) =
            (send_video, video_in, send_audio, audio_in);
        media.set_muted(controls.muted);
        media.set_camera_enabled(controls.camera_enabled);
        (media, notices)
    }

    /// Starts receiving from party `id` (the first, or one that joined a
    /// group call), counting into `stats`. Returns notices for pipelines
    /// that could not start, and the GUI tile its pictures go to.
    pub fn add_party(&mut self, id: ClientId, stats: Arc<Stats>) -> (Vec<String>, Option<usize>) {
        let mut notices = Vec::new();
        if let Some(p) = self.parties.iter().find(|p| p.id == id) {
            return (notices, p.tile);
        }
        let first = self.parties.is_empty();
        let mut party = Party::new(id, stats);
        if !first {
            let taken: Vec<usize> = self.parties.iter().filter_map(|p| p.tile).collect();
            party.tile = (0..self.ctx.setup.options.party_sinks.len()).find(|t| !taken.contains(t));
        }
        party.video = keep(self.ctx.receive_video(&party, first), &mut notices);
        party.audio = keep(self.ctx.receive_audio(&party).map(Some), &mut notices);
        self.route.attach(id, party.targets(&self.ctx.notify));
        let tile = party.tile;
        self.parties.push(party);
        (notices, tile)
    }

    /// Stops receiving from party `id`, which left the call.
    pub fn remove_party(&mut self, id: ClientId) {
        self.route.detach_party(id);
        if let Some(at) = self.parties.iter().position(|p| p.id == id) {
            self.parties.remove(at).stop();
        }
    }

    /// Makes the next video frame a keyframe.
    pub fn force_keyframe(&self) {
        if let Some(s) = &self.send_video {
            s.force_keyframe();
        }
    }

    /// Mutes or unmutes the microphone (silence keeps flowing).
    pub fn set_muted(&mut self, muted: bool) {
        self.controls.muted = muted;
        if let Some(s) = &self.send_audio {
            s.set("volume", "mute", muted);
        }
    }

    /// Stops or resumes sending pictures; resuming starts with a keyframe.
    pub fn set_camera_enabled(&mut self, enabled: bool) {
        self.controls.camera_enabled = enabled;
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
        let CallMedia { send_video, send_audio, parties, route, .. } = self;
        for s in [send_video, send_audio].into_iter().flatten() {
            s.stop();
        }
        route.detach();
        for party in parties {
            party.stop();
        }
    }
}

fn keep<T>(r: Result<Option<T>, MediaError>, notices: &mut Vec<String>) -> Option<T> {
    r.unwrap_or_else(|e| {
        notices.push(e.to_string());
        None
    })
}

/// Starts a sending pipeline for `input`; if that fails, for `fallback`.
fn start_with_fallback<I: Clone + PartialEq + std::fmt::Debug>(
    input: I,
    fallback: I,
    try_one: impl Fn(&I) -> Result<Option<Sending>, MediaError>,
    notices: &mut Vec<String>,
) -> (Option<Sending>, I) {
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
