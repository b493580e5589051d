//! Mid-call recovery: a pipeline that fails during a call is rebuilt, and the
//! call goes on. Runs on the engine's control thread, which reports the
//! failures (bus errors and end-of-stream, through [`super::MediaEvent`]) and
//! wakes up when a rebuild is due.
//!
//! * `receive-video` and `receive-audio` (one of each per other party):
//!   garbage from the peer can stop a
//!   decoding pipeline for good (a bogus SPS leaves `h264parse` and the
//!   decoder `not-negotiated`, after which nothing is decoded again). The
//!   pipeline is rebuilt and the [`FrameRoute`](super::FrameRoute) pointed at
//!   its new appsrc; video then waits for a keyframe, which the engine asks
//!   the peer for.
//! * `send-video` and `send-audio`: an error or end-of-stream means the live
//!   source went away (a camera unplugged, a microphone gone). The pipeline is
//!   rebuilt on the fallback source (the live test pattern, silence) and the
//!   user is told.
//!
//! Each rebuild goes through a [`Backoff`]: the first at once, then at least
//! [`MIN_GAP`] apart, doubling up to [`MAX_GAP`] while failures keep coming,
//! so a peer that sends garbage for ever costs at most a few rebuilds a second.

use std::time::{Duration, Instant};

use gst::prelude::*;
use komunikator_protocol::MediaKind;

use super::session::CallMedia;
use super::{AudioIn, SourceFailure, VideoIn};

/// The shortest time between two rebuilds of one pipeline.
const MIN_GAP: Duration = Duration::from_millis(300);
/// The longest time between two rebuilds while failures keep coming.
const MAX_GAP: Duration = Duration::from_secs(2);
/// A failure this long after the last rebuild starts the backoff over.
const CALM: Duration = Duration::from_secs(5);

/// When one pipeline may be rebuilt next.
#[derive(Debug, Default, Clone)]
pub(super) struct Backoff {
    /// Rebuilds since the last calm period.
    streak: u32,
    /// The last rebuild.
    last: Option<Instant>,
    /// The pending rebuild, if any.
    due: Option<Instant>,
}

impl Backoff {
    /// Schedules a rebuild (or keeps the one already pending) and returns when it is due.
    fn schedule(&mut self, now: Instant) -> Instant {
        if let Some(due) = self.due {
            return due;
        }
        if self.last.is_some_and(|last| now.saturating_duration_since(last) >= CALM) {
            self.streak = 0;
        }
        let gap = MIN_GAP.saturating_mul(1 << self.streak.saturating_sub(1).min(8)).min(MAX_GAP);
        let due = match self.last {
            Some(last) if self.streak > 0 => (last + gap).max(now),
            _ => now,
        };
        self.due = Some(due);
        due
    }

    /// Whether a rebuild is due at `now`; if so, it counts as done.
    fn take_due(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                self.last = Some(now);
                self.streak = self.streak.saturating_add(1);
                true
            }
            _ => false,
        }
    }
}

/// The call's four pipelines, in the order they are rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    ReceiveVideo,
    ReceiveAudio,
    SendVideo,
    SendAudio,
}

impl Which {
    const ALL: [Which; 4] = [Which::ReceiveVideo, Which::ReceiveAudio, Which::SendVideo, Which::SendAudio];

    fn from_name(name: &str) -> Option<Which> {
        Which::ALL.into_iter().find(|w| w.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Which::ReceiveVideo => "receive-video",
            Which::ReceiveAudio => "receive-audio",
            Which::SendVideo => "send-video",
            Which::SendAudio => "send-audio",
        }
    }
}

/// The backoff of each pipeline of a call.
#[derive(Debug, Default)]
pub(super) struct Restarts {
    backoff: [Backoff; 4],
}

impl Restarts {
    fn get(&mut self, which: Which) -> &mut Backoff {
        &mut self.backoff[which as usize]
    }
}

/// The backoff of a call's sending pipelines (each party's receiving
/// pipelines have theirs in [`super::session::Party`]).
impl Restarts {
    fn receive_index(which: Which) -> usize {
        usize::from(which == Which::ReceiveAudio)
    }
}

/// A pipeline rebuilt during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// Which pipeline.
    pub pipeline: &'static str,
    /// One sentence for the user.
    pub notice: String,
    /// The peer should be asked for a keyframe (the video decoder starts over).
    pub wants_keyframe: bool,
}

impl CallMedia {
    /// Notes that instance `generation` of `pipeline` failed (an error, or
    /// end-of-stream) and schedules its rebuild. Returns whether it did:
    /// messages from an instance already replaced are ignored.
    pub fn failed(&mut self, pipeline: &str, generation: u64, now: Instant) -> bool {
        let Some(which) = Which::from_name(pipeline) else { return false };
        match which {
            Which::ReceiveVideo | Which::ReceiveAudio => {
                let video = which == Which::ReceiveVideo;
                let party = self.parties.iter_mut().find(|p| {
                    let r = if video { p.video.as_ref() } else { p.audio.as_ref() };
                    r.is_some_and(|r| r.generation == generation)
                });
                let Some(party) = party else { return false };
                party.restarts[Restarts::receive_index(which)].schedule(now);
            }
            Which::SendVideo | Which::SendAudio => {
                let current = match which {
                    Which::SendVideo => self.send_video.as_ref().map(|s| s.generation),
                    _ => self.send_audio.as_ref().map(|s| s.generation),
                };
                if current != Some(generation) {
                    return false;
                }
                self.restarts.get(which).schedule(now);
            }
        }
        true
    }

    /// When the next rebuild is due, if one is pending.
    pub fn next_restart(&self) -> Option<Instant> {
        let parties = self.parties.iter().flat_map(|p| p.restarts.iter());
        self.restarts.backoff.iter().chain(parties).filter_map(|b| b.due).min()
    }

    /// Rebuilds every pipeline whose rebuild is due. A rebuild that fails is
    /// scheduled again (with the backoff) and reported too.
    pub fn restart_due(&mut self, now: Instant) -> Vec<Restarted> {
        let mut done = Vec::new();
        for at in 0..self.parties.len() {
            for which in [Which::ReceiveVideo, Which::ReceiveAudio] {
                let i = Restarts::receive_index(which);
                if !self.parties[at].restarts[i].take_due(now) {
                    continue;
                }
                let kind = if which == Which::ReceiveVideo { MediaKind::Video } else { MediaKind::Audio };
                let notice = self.rebuild_receive(at, kind).unwrap_or_else(|e| {
                    self.parties[at].restarts[i].schedule(now);
                    format!("{}: cannot rebuild it ({e}); trying again", which.name())
                });
                let wants_keyframe = which == Which::ReceiveVideo;
                done.push(Restarted { pipeline: which.name(), notice, wants_keyframe });
            }
        }
        for which in [Which::SendVideo, Which::SendAudio] {
            if !self.restarts.get(which).take_due(now) {
                continue;
            }
            let result =
                if which == Which::SendVideo { self.rebuild_send_video() } else { self.rebuild_send_audio() };
            let notice = result.unwrap_or_else(|e| {
                self.restarts.get(which).schedule(now);
                format!("{}: cannot rebuild it ({e}); trying again", which.name())
            });
            done.push(Restarted { pipeline: which.name(), notice, wants_keyframe: false });
        }
        done
    }

    /// Rebuilds party number `at`'s receiving pipeline of `kind`.
    fn rebuild_receive(&mut self, at: usize, kind: MediaKind) -> Result<String, super::MediaError> {
        let id = self.parties[at].id;
        // Frames are dropped while there is no pipeline to take them.
        self.route.replace(id, kind, None);
        let party = &mut self.parties[at];
        if kind == MediaKind::Video {
            if let Some(old) = party.video.take() {
                old.stop();
            }
            let new = self.ctx.receive_video(party, at == 0)?;
            self.route.replace(id, kind, new.as_ref().map(|r| r.appsrc.clone()));
            self.parties[at].video = new;
            Ok("received video could not be decoded: the video decoder was restarted, and shows \
                the peer's picture again from its next keyframe"
                .into())
        } else {
            if let Some(old) = party.audio.take() {
                old.stop();
            }
            let new = self.ctx.receive_audio(party)?;
            self.route.replace(id, kind, Some(new.appsrc.clone()));
            self.parties[at].audio = Some(new);
            Ok("received audio could not be decoded: the audio decoder was restarted".into())
        }
    }

    fn rebuild_send_video(&mut self) -> Result<String, super::MediaError> {
        if let Some(old) = self.send_video.take() {
            old.stop();
        }
        let lost = self.video_in.clone();
        let fallback = self.ctx.video_fallback();
        self.video_in = fallback.clone();
        self.send_video = self.ctx.send_video(&fallback)?;
        let now = if self.send_video.is_some() { fallback.to_string() } else { VideoIn::None.to_string() };
        self.ctx.stats().record_fallback(Some(now), None);
        let enabled = self.controls.camera_enabled;
        self.set_camera_enabled(enabled);
        let what = match (&lost, &self.send_video) {
            (_, None) => return Ok("the video source stopped mid-call; no video is sent now".into()),
            (VideoIn::Camera(path), _) => format!("the camera {path} stopped working mid-call"),
            (VideoIn::PipeWire(c), _) => format!("the camera {} stopped working mid-call", c.name),
            (VideoIn::Test(_), _) => "the video test pattern stopped mid-call".into(),
            (VideoIn::None, _) => "the video source stopped mid-call".into(),
        };
        Ok(format!("{what}: sending a test pattern instead; the call goes on"))
    }

    fn rebuild_send_audio(&mut self) -> Result<String, super::MediaError> {
        if let Some(old) = self.send_audio.take() {
            old.stop();
        }
        let lost = self.audio_in;
        self.audio_in = AudioIn::Silence;
        self.send_audio = self.ctx.send_audio(AudioIn::Silence)?;
        let now = if self.send_audio.is_some() { AudioIn::Silence } else { AudioIn::None };
        self.ctx.stats().record_fallback(None, Some(now.to_string()));
        let muted = self.controls.muted;
        self.set_muted(muted);
        let what = match (lost, &self.send_audio) {
            (_, None) => return Ok("the audio source stopped mid-call; no audio is sent now".into()),
            (AudioIn::Mic, _) => "the microphone stopped working mid-call",
            (AudioIn::Tone(_), _) => "the test tone stopped mid-call",
            (AudioIn::Silence | AudioIn::None, _) => "the audio source stopped mid-call",
        };
        Ok(format!("{what}: sending silence instead; the call goes on"))
    }

    /// For tests (`--inject-source-failure`): makes the live source element
    /// of a sending pipeline post an error, as `v4l2src` does when its camera
    /// is unplugged, or send end-of-stream, as a source whose device went
    /// away does. Recovery then takes the path a real device loss takes.
    /// Returns what was done, or `None` when that pipeline is not running.
    pub fn inject_source_failure(&self, failure: SourceFailure) -> Option<String> {
        let sending = match failure.kind {
            MediaKind::Video => self.send_video.as_ref(),
            MediaKind::Audio => self.send_audio.as_ref(),
        }?;
        let source = sending.pipeline.iterate_sources().into_iter().flatten().next()?;
        let how = if failure.eos {
            source.send_event(gst::event::Eos::new());
            "end-of-stream"
        } else {
            gst::element_error!(
                source,
                gst::ResourceError::Read,
                ["injected source failure (--inject-source-failure, for tests)"]
            );
            "an error"
        };
        Some(format!("--inject-source-failure (for tests): {how} from the source {}", source.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_rebuild_is_at_once_then_backs_off() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.schedule(t0), t0);
        assert!(b.take_due(t0));
        assert!(!b.take_due(t0), "done once");
        // Failing again at once: not before MIN_GAP, then doubling.
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..6 {
            let due = b.schedule(at);
            assert_eq!(b.schedule(at), due, "a second failure joins the pending rebuild");
            assert!(!b.take_due(due - Duration::from_millis(1)));
            assert!(b.take_due(due));
            gaps.push(due - at);
            at = due;
        }
        let ms: Vec<u128> = gaps.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [300, 600, 1200, 2000, 2000, 2000]);
    }

    #[test]
    fn calm_starts_over() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        for i in 0..4 {
            let due = b.schedule(t0 + MAX_GAP * i);
            assert!(b.take_due(due));
        }
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.schedule(later), later, "after a calm period the rebuild is immediate");
    }

    #[test]
    fn never_more_than_a_few_rebuilds_a_second() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        let mut rebuilds = 0;
        // A failure every 10 ms for 10 s.
        for ms in (0..10_000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            b.schedule(now);
            rebuilds += u32::from(b.take_due(now));
        }
        assert!((5..=10).contains(&rebuilds), "{rebuilds} rebuilds in 10 s");
    }

    #[test]
    fn names_round_trip() {
        for w in Which::ALL {
            assert_eq!(Which::from_name(w.name()), Some(w));
        }
        assert_eq!(Which::from_name("other"), None);
    }
}
