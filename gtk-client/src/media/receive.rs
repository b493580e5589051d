//! The receiving pipelines and [`FrameRoute`], through which the network
//! `receive` thread pushes frames into their appsrcs.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use std::collections::HashMap;

use komunikator_protocol::{ClientId, MediaHeader, MediaKind};

use super::clock::now_us;
use super::send::picture_grid;
use super::stats::Stats;
use super::{
    MediaError, MediaEvent, Notify, SinkFactory, attach_external_sink, next_generation, parse_pipeline,
    watch_bus,
};
use crate::net::{FrameSink, Uplink};
use std::time::Duration;

/// No timestamp has been seen yet.
const UNSET: u64 = u64::MAX;

/// One Opus packet lasts 20 ms; a jump of more than 1.5 packets is a gap.
const AUDIO_GAP_US: u64 = 30_000;

/// Every how many decoded pictures the luma grid is taken.
const GRID_EVERY: u64 = 15;

/// Latencies above this are clock trouble, not measurements.
const MAX_SANE_LATENCY_US: u64 = 10_000_000;

/// Video frames received without a picture coming out of the decoder before
/// we ask for a keyframe (again). h264parse silently drops slices that arrive
/// before any SPS/PPS, so the decoder's own requests cannot cover that case.
const STALL_FRAMES: u64 = 10;

/// Bytes of video queued in the appsrc beyond which the decoder is not
/// keeping up: frames are dropped until the next keyframe (never mid-GOP
/// followed by more deltas) and a keyframe is requested. Bounds memory
/// against a peer that sends faster than this machine decodes.
const MAX_QUEUED_VIDEO: u64 = 8 << 20;

/// Bytes of audio queued beyond which packets are dropped (each is independent).
const MAX_QUEUED_AUDIO: u64 = 1 << 20;

/// Bytes of a new call's first frames kept while its pipelines are being
/// built (about 4 s of the default 1 Mbit/s video with its audio); frames
/// beyond are dropped, and the keyframe path repairs the picture.
const MAX_EARLY_BYTES: usize = 512 << 10;

/// Frames of a call's parties whose pipelines are not attached yet.
#[derive(Default)]
struct Early {
    frames: Vec<(ClientId, MediaHeader, Vec<u8>)>,
    bytes: usize,
}

/// The appsrcs of each party of the call in progress. Shared by the
/// control thread (which attaches and detaches) and the receive thread
/// (which pushes).
#[derive(Default)]
struct Parties {
    /// The party named in `start`: frames without a sender (a two-party
    /// call without the group envelope) are its.
    first: Option<ClientId>,
    map: HashMap<ClientId, Targets>,
}

/// Where the frames of the call in progress go: one set of pipelines per
/// party (one in a two-party call). Shared by the control thread (which
/// attaches and detaches) and the receive thread (which pushes).
#[derive(Default)]
pub struct FrameRoute {
    targets: Mutex<Parties>,
    /// From `start` to the end of the call: the frames of parties whose
    /// pipelines are not attached yet (a party sends from its `start` or
    /// `joined`, while our pipelines for it are still being built), handed
    /// to them when they attach. `None` outside a call. Locked after
    /// `targets`, never before.
    early: Mutex<Option<Early>>,
    /// Where the queueing on our downlink is reported, so that the sender's
    /// path probes do not blame our uplink for it.
    uplink: Option<Arc<Uplink>>,
}

/// How late the peer's audio arrives relative to the earliest it ever
/// arrived (the clocks' offset cancels out): the queueing on the path
/// towards us. Audio is small and overtakes queued video at the server, as
/// the server's `pong` does, so it sees the same downlink queue.
#[derive(Debug, Default)]
pub(super) struct OneWay {
    /// The lowest arrival-minus-capture seen in this call, µs.
    base: Option<i64>,
    /// The last few arrival-minus-capture values, µs.
    recent: std::collections::VecDeque<i64>,
}

impl OneWay {
    /// Takes one packet's arrival (`now_us`) and capture time; returns the
    /// queueing delay: the lowest of the last few above the base.
    fn arrived(&mut self, now_us: u64, pts_us: u64) -> Duration {
        let d = i64::try_from(now_us)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(pts_us).unwrap_or(i64::MAX));
        let base = *self.base.get_or_insert(d);
        self.base = Some(base.min(d));
        if self.recent.len() == ONE_WAY_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(d);
        let low = self.recent.iter().min().copied().unwrap_or(d);
        Duration::from_micros(u64::try_from(low.saturating_sub(base.min(d))).unwrap_or(0))
    }
}

/// Audio packets (20 ms each) over which the downlink's queueing is the minimum.
const ONE_WAY_WINDOW: usize = 5;

/// Where frames of the current call go.
pub(super) struct Targets {
    pub(super) video: Option<gst_app::AppSrc>,
    pub(super) audio: Option<gst_app::AppSrc>,
    /// The sender's first video pts (µs); receive pipelines run from it.
    pub(super) video_base: Arc<AtomicU64>,
    pub(super) audio_base: Arc<AtomicU64>,
    pub(super) last_audio_pts: Option<u64>,
    pub(super) stats: Arc<Stats>,
    /// Video frames pushed since the decoder last produced a picture; the
    /// decoder probe resets it.
    pub(super) undecoded: Arc<AtomicU64>,
    /// Whether a keyframe has arrived in this call.
    pub(super) seen_key: bool,
    /// Dropping video until the next keyframe because the decoder fell behind.
    pub(super) dropping_video: bool,
    /// The peer's audio's arrival delay.
    pub(super) one_way: OneWay,
    pub(super) notify: Notify,
}

impl FrameRoute {
    /// A route that reports the downlink's queueing to `uplink`.
    pub fn new(uplink: Arc<Uplink>) -> FrameRoute {
        FrameRoute { targets: Mutex::new(Parties::default()), early: Mutex::new(None), uplink: Some(uplink) }
    }

    /// Starts delivering party `id`'s frames to its pipelines, first those
    /// that came since its `start` or `joined` (under the targets' lock, so
    /// none overtakes them).
    pub(super) fn attach(&self, id: ClientId, mut targets: Targets) {
        let Ok(mut t) = self.targets.lock() else { return };
        let mine = match self.early.lock().ok().as_mut().and_then(|e| e.as_mut()) {
            Some(early) => {
                let (mine, rest) = std::mem::take(&mut early.frames).into_iter().partition(|f| f.0 == id);
                early.frames = rest;
                early.bytes = early.frames.iter().map(|f| f.2.len()).sum();
                mine
            }
            None => Vec::new(),
        };
        for (_, header, payload) in mine {
            self.deliver(&mut targets, &header, &payload);
        }
        t.map.insert(id, targets);
    }

    /// Stops delivering party `id`'s frames (it left the call); later ones are dropped.
    pub(super) fn detach_party(&self, id: ClientId) {
        if let Ok(mut t) = self.targets.lock() {
            t.map.remove(&id);
        }
        if let Some(early) = self.early.lock().ok().as_mut().and_then(|e| e.as_mut()) {
            early.frames.retain(|f| f.0 != id);
            early.bytes = early.frames.iter().map(|f| f.2.len()).sum();
        }
    }

    /// Stops delivering frames; later frames are dropped.
    pub(super) fn detach(&self) {
        if let Ok(mut t) = self.targets.lock() {
            *t = Parties::default();
        }
        self.forget_early();
    }

    fn forget_early(&self) {
        if let Ok(mut e) = self.early.lock() {
            *e = None;
        }
    }

    /// Points `kind`'s frames at a rebuilt pipeline's appsrc (`None` drops
    /// them meanwhile). Video starts over as at the beginning of a call: the
    /// first delta frame before a keyframe asks for one.
    pub(super) fn replace(&self, id: ClientId, kind: MediaKind, src: Option<gst_app::AppSrc>) {
        let Ok(mut guard) = self.targets.lock() else { return };
        let Some(t) = guard.map.get_mut(&id) else { return };
        match kind {
            MediaKind::Video => {
                t.video = src;
                t.seen_key = false;
                t.dropping_video = false;
                t.undecoded.store(0, Relaxed);
            }
            MediaKind::Audio => t.audio = src,
        }
    }
}

impl FrameSink for FrameRoute {
    fn frame(&self, from: Option<ClientId>, header: &MediaHeader, payload: &[u8]) {
        let Ok(mut guard) = self.targets.lock() else { return };
        let Some(id) = from.or(guard.first) else { return };
        match guard.map.get_mut(&id) {
            Some(t) => self.deliver(t, header, payload),
            None => {
                let Ok(mut early) = self.early.lock() else { return };
                if let Some(e) = early.as_mut().filter(|e| e.bytes + payload.len() <= MAX_EARLY_BYTES) {
                    e.bytes += payload.len();
                    e.frames.push((id, *header, payload.to_vec()));
                }
            }
        }
    }

    fn call_started(&self, peer: ClientId) {
        if let Ok(mut t) = self.targets.lock() {
            t.first = Some(peer);
        }
        if let Ok(mut e) = self.early.lock() {
            e.get_or_insert_with(Early::default);
        }
    }

    fn call_ended(&self) {
        self.forget_early();
    }
}

impl FrameRoute {
    /// Hands one frame to the call's pipelines.
    fn deliver(&self, t: &mut Targets, header: &MediaHeader, payload: &[u8]) {
        match header.kind {
            MediaKind::Video => {
                t.stats.video_frames_received.fetch_add(1, Relaxed);
                let Some(src) = &t.video else { return };
                if t.dropping_video || src.current_level_bytes() > MAX_QUEUED_VIDEO {
                    // Resume only at a keyframe, once the backlog is gone.
                    t.dropping_video = !(header.key && src.current_level_bytes() <= MAX_QUEUED_VIDEO / 2);
                    if t.dropping_video {
                        (t.notify)(MediaEvent::KeyframeWanted(None));
                        return;
                    }
                }
                push(src, &t.video_base, header, payload);
                let first_delta = !header.key && !t.seen_key;
                t.seen_key |= header.key;
                let stalled = t.undecoded.fetch_add(1, Relaxed) + 1;
                if first_delta || stalled % STALL_FRAMES == 0 {
                    (t.notify)(MediaEvent::KeyframeWanted(None));
                }
            }
            MediaKind::Audio => {
                t.stats.audio_packets_received.fetch_add(1, Relaxed);
                if let Some(last) = t.last_audio_pts {
                    if header.pts > last.saturating_add(AUDIO_GAP_US) {
                        t.stats.audio_gaps.fetch_add(1, Relaxed);
                    }
                }
                t.last_audio_pts = Some(header.pts);
                let queued = t.one_way.arrived(now_us(), header.pts);
                if let Some(uplink) = &self.uplink {
                    uplink.set_downlink_delay(queued);
                }
                if let Some(src) = t.audio.as_ref().filter(|s| s.current_level_bytes() <= MAX_QUEUED_AUDIO) {
                    push(src, &t.audio_base, header, payload);
                }
            }
        }
    }
}

/// Pushes one frame; its pts is the sender's, relative to the first one seen.
fn push(src: &gst_app::AppSrc, base: &AtomicU64, header: &MediaHeader, payload: &[u8]) {
    let first = match base.compare_exchange(UNSET, header.pts, Relaxed, Relaxed) {
        Ok(_) => header.pts,
        Err(seen) => seen,
    };
    let mut buffer = gst::Buffer::from_mut_slice(payload.to_vec());
    if let Some(b) = buffer.get_mut() {
        b.set_pts(clock_time_us(header.pts.saturating_sub(first)));
        if !header.key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    // Fails only while the pipeline is shutting down.
    let _ = src.push_buffer(buffer);
}

/// Microseconds as a `ClockTime`, saturating instead of panicking: the
/// value comes from the peer.
fn clock_time_us(us: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(us.saturating_mul(1000).min(u64::MAX - 1))
}

/// A running receiving pipeline.
pub(super) struct Receiving {
    pipeline: gst::Pipeline,
    pub(super) appsrc: gst_app::AppSrc,
    /// Tells this instance's bus messages from its predecessors'.
    pub(super) generation: u64,
    external: Option<gst::Element>,
}

impl Receiving {
    /// Builds and starts the receive-video pipeline.
    pub(super) fn start_video(
        launch: &str,
        stats: Arc<Stats>,
        base: Arc<AtomicU64>,
        undecoded: Arc<AtomicU64>,
        notify: Notify,
        sink: Option<&SinkFactory>,
    ) -> Result<Receiving, MediaError> {
        const NAME: &str = "receive-video";
        let pipeline = parse_pipeline(NAME, launch)?;
        let generation = next_generation();
        watch_bus(&pipeline, NAME, generation, notify.clone());
        let external = match sink {
            Some(factory) => attach_external_sink(&pipeline, NAME, factory)?,
            None => None,
        };
        let appsrc = appsrc(&pipeline, NAME)?;
        probe_keyframe_requests(&appsrc, notify);
        probe_decoded_video(&pipeline, stats, base, undecoded);
        Receiving::play(pipeline, appsrc, external, generation, NAME)
    }

    /// Builds and starts the receive-audio pipeline.
    pub(super) fn start_audio(
        launch: &str,
        stats: Arc<Stats>,
        base: Arc<AtomicU64>,
        notify: Notify,
    ) -> Result<Receiving, MediaError> {
        const NAME: &str = "receive-audio";
        let pipeline = parse_pipeline(NAME, launch)?;
        let generation = next_generation();
        watch_bus(&pipeline, NAME, generation, notify);
        let appsrc = appsrc(&pipeline, NAME)?;
        probe_played_audio(&pipeline, stats.clone(), base);
        probe_decoded_audio(&pipeline, stats);
        Receiving::play(pipeline, appsrc, None, generation, NAME)
    }

    fn play(
        pipeline: gst::Pipeline,
        appsrc: gst_app::AppSrc,
        external: Option<gst::Element>,
        generation: u64,
        name: &'static str,
    ) -> Result<Receiving, MediaError> {
        match pipeline.set_state(gst::State::Playing) {
            Ok(_) => Ok(Receiving { pipeline, appsrc, generation, external }),
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                Err(MediaError::Start { pipeline: name, message: e.to_string() })
            }
        }
    }

    /// Stops the pipeline and frees a GUI's sink for the next call.
    pub(super) fn stop(mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(e) = self.external.take() {
            let _ = self.pipeline.remove(&e);
        }
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn appsrc(pipeline: &gst::Pipeline, name: &'static str) -> Result<gst_app::AppSrc, MediaError> {
    pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or(MediaError::Parse { pipeline: name, message: "no appsrc named src".into() })
}

/// Turns the decoder's upstream force-key-unit request into a `keyframe` for the peer.
fn probe_keyframe_requests(appsrc: &gst_app::AppSrc, notify: Notify) {
    let Some(pad) = appsrc.static_pad("src") else { return };
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if let Some(event) = info.event() {
            if gst_video::UpstreamForceKeyUnitEvent::parse(event).is_ok() {
                notify(MediaEvent::KeyframeWanted(None));
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Counts decoded pictures, measures latency and samples the luma grid.
fn probe_decoded_video(
    pipeline: &gst::Pipeline,
    stats: Arc<Stats>,
    base: Arc<AtomicU64>,
    undecoded: Arc<AtomicU64>,
) {
    let Some(pad) = pipeline.by_name("decoder").and_then(|d| d.static_pad("src")) else { return };
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else { return gst::PadProbeReturn::Ok };
        undecoded.store(0, Relaxed);
        let n = stats.video_frames_decoded.fetch_add(1, Relaxed);
        let first = base.load(Relaxed);
        if let (Some(pts), true) = (buffer.pts(), first != UNSET) {
            let captured = first.saturating_add(pts.useconds());
            let latency = now_us().saturating_sub(captured);
            if latency < MAX_SANE_LATENCY_US {
                stats.record_latency_us(latency);
            }
        }
        if n % GRID_EVERY == 0 {
            if let Some(grid) = picture_grid(pad, buffer) {
                stats.record_received_grid(grid);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Measures the capture-to-playout age of audio where it enters the sink
/// (the element named `playout` in receive-audio).
fn probe_played_audio(pipeline: &gst::Pipeline, stats: Arc<Stats>, base: Arc<AtomicU64>) {
    let Some(pad) = pipeline.by_name("playout").and_then(|d| d.static_pad("src")) else { return };
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let first = base.load(Relaxed);
        if let (Some(pts), true) = (info.buffer().and_then(|b| b.pts()), first != UNSET) {
            let age = now_us().saturating_sub(first.saturating_add(pts.useconds()));
            if age < MAX_SANE_LATENCY_US {
                stats.record_audio_age_us(age);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Counts decoded audio and feeds the tone analyser.
fn probe_decoded_audio(pipeline: &gst::Pipeline, stats: Arc<Stats>) {
    let Some(pad) = pipeline.by_name("decoder").and_then(|d| d.static_pad("src")) else { return };
    let channels = Arc::new(AtomicUsize::new(0));
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else { return gst::PadProbeReturn::Ok };
        stats.audio_packets_decoded.fetch_add(1, Relaxed);
        let mut ch = channels.load(Relaxed);
        if ch == 0 {
            ch = s16_channels(pad).unwrap_or(0);
            channels.store(ch, Relaxed);
        }
        if ch > 0 {
            if let Ok(map) = buffer.map_readable() {
                let frames = map.chunks_exact(2 * ch);
                stats.audio_samples_decoded.fetch_add(frames.len() as u64, Relaxed);
                stats.record_audio(frames.map(|f| i16::from_le_bytes([f[0], f[1]])));
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The channel count when the pad carries interleaved S16LE.
fn s16_channels(pad: &gst::Pad) -> Option<usize> {
    let caps = pad.current_caps()?;
    let s = caps.structure(0)?;
    if s.get::<&str>("format").ok()? != "S16LE" {
        return None;
    }
    usize::try_from(s.get::<i32>("channels").ok()?).ok().filter(|c| *c > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_downlink_queue_is_arrival_delay_above_the_earliest() {
        let mut w = OneWay::default();
        // A clock 5 s ahead of ours: the offset cancels out.
        let ahead = 5_000_000u64;
        assert_eq!(w.arrived(1_000_000, 1_000_000 + ahead - 10_000), Duration::ZERO);
        for i in 1..=5u64 {
            w.arrived(1_000_000 + i * 20_000 + 150_000, 1_000_000 + ahead + i * 20_000 - 10_000);
        }
        assert_eq!(w.arrived(1_300_000, 1_000_000 + ahead + 140_000), Duration::from_millis(150));
        // Hostile timestamps do not panic.
        w.arrived(0, u64::MAX);
        w.arrived(u64::MAX, 0);
    }

    #[test]
    fn hostile_timestamps_do_not_panic() {
        assert_eq!(clock_time_us(u64::MAX), gst::ClockTime::from_nseconds(u64::MAX - 1));
        assert_eq!(clock_time_us(5), gst::ClockTime::from_useconds(5));
        gst::init().unwrap();
        let make = || {
            let p =
                gst::parse::launch("appsrc name=src is-live=true format=time ! fakesink sync=false").unwrap();
            let p = p.downcast::<gst::Pipeline>().unwrap();
            p.set_state(gst::State::Playing).unwrap();
            let src = p.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
            (p, src)
        };
        let ((pv, video), (pa, audio)) = (make(), make());
        let stats = Arc::new(Stats::default());
        let route = FrameRoute::default();
        route.call_started(peer());
        route.attach(peer(), Targets { video: Some(video), audio: Some(audio), ..no_pipelines(&stats) });
        for (kind, pts) in
            [(MediaKind::Video, 0), (MediaKind::Video, u64::MAX - 1), (MediaKind::Video, u64::MAX)]
                .into_iter()
                .chain([
                    (MediaKind::Audio, u64::MAX),
                    (MediaKind::Audio, 0),
                    (MediaKind::Audio, u64::MAX - 2),
                ])
        {
            route.frame(None, &MediaHeader { kind, pts, key: false, len: 3 }, b"abc");
        }
        assert_eq!(stats.video_frames_received.load(Relaxed), 3);
        assert_eq!(stats.audio_packets_received.load(Relaxed), 3);
        route.detach();
        route.frame(None, &MediaHeader { kind: MediaKind::Video, pts: 1, key: true, len: 1 }, b"x");
        assert_eq!(stats.video_frames_received.load(Relaxed), 3, "nothing counted outside a call");
        for p in [pv, pa] {
            p.set_state(gst::State::Null).unwrap();
        }
    }

    fn peer() -> ClientId {
        ([127, 0, 0, 1], 2).into()
    }

    /// A call's targets with no pipelines behind them (frames are counted).
    fn no_pipelines(stats: &Arc<Stats>) -> Targets {
        Targets {
            video: None,
            audio: None,
            video_base: Arc::new(AtomicU64::new(UNSET)),
            audio_base: Arc::new(AtomicU64::new(UNSET)),
            last_audio_pts: None,
            stats: stats.clone(),
            undecoded: Arc::new(AtomicU64::new(0)),
            seen_key: false,
            dropping_video: false,
            one_way: OneWay::default(),
            notify: Arc::new(|_| {}),
        }
    }

    #[test]
    fn frames_between_start_and_attach_are_kept_bounded_and_only_for_that_call() {
        let video = |len: u32| MediaHeader { kind: MediaKind::Video, pts: 1, key: true, len };
        let stats = Arc::new(Stats::default());
        let route = FrameRoute::default();
        // Outside a call nothing is kept.
        route.frame(None, &video(3), b"abc");
        route.attach(peer(), no_pipelines(&stats));
        assert_eq!(stats.video_frames_received.load(Relaxed), 0);
        route.detach();
        // After `start`, up to the bound; the rest is dropped.
        route.call_started(peer());
        let big = vec![0u8; MAX_EARLY_BYTES / 2];
        for _ in 0..3 {
            route.frame(None, &video(big.len() as u32), &big);
        }
        route.attach(peer(), no_pipelines(&stats));
        assert_eq!(stats.video_frames_received.load(Relaxed), 2);
        route.detach();
        // A `stop` before the pipelines attach: that call's frames are gone.
        route.call_started(peer());
        route.frame(None, &video(3), b"abc");
        route.call_ended();
        route.attach(peer(), no_pipelines(&stats));
        assert_eq!(stats.video_frames_received.load(Relaxed), 2);
    }

    #[test]
    fn each_party_of_a_group_call_has_its_own_pipelines() {
        let video = |key: bool| MediaHeader { kind: MediaKind::Video, pts: 1, key, len: 1 };
        let (a, b, c): (ClientId, ClientId, ClientId) =
            (([10, 0, 0, 1], 1).into(), ([10, 0, 0, 2], 2).into(), ([10, 0, 0, 3], 3).into());
        let (sa, sb) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let route = FrameRoute::default();
        route.call_started(a);
        route.attach(a, no_pipelines(&sa));
        // b joined: its frames wait for its pipelines, then go to them alone.
        route.frame(Some(b), &video(true), b"b");
        route.frame(Some(a), &video(false), b"a");
        assert_eq!(sa.video_frames_received.load(Relaxed), 1);
        route.attach(b, no_pipelines(&sb));
        route.frame(Some(b), &video(false), b"b");
        assert_eq!((sa.video_frames_received.load(Relaxed), sb.video_frames_received.load(Relaxed)), (1, 2));
        // b left: nothing more reaches its pipelines; c was never attached.
        route.detach_party(b);
        route.frame(Some(b), &video(true), b"b");
        route.frame(Some(c), &video(true), b"c");
        assert_eq!(sb.video_frames_received.load(Relaxed), 2);
        route.detach_party(c);
        route.attach(c, no_pipelines(&sb));
        assert_eq!(sb.video_frames_received.load(Relaxed), 2, "a party that left takes its early frames");
    }
}
