//! A sending pipeline and its pump thread (`send_video` or `send_audio`),
//! which pulls encoded buffers from the appsink and hands them to the writer.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;

use gst::prelude::*;
use komunikator_protocol::MediaKind;

use super::codec::Candidate;
use super::stats::{Stats, luma_grid};
use super::{
    MediaError, Notify, SinkFactory, adapt, attach_external_sink, clock, next_generation, parse_pipeline,
    watch_bus,
};
use crate::net::{Queued, Writer};

/// Every how many raw frames the sender's luma grid is taken.
const GRID_EVERY: u64 = 15;

/// A running sending pipeline.
pub(super) struct Sending {
    pub(super) pipeline: gst::Pipeline,
    /// Tells this instance's bus messages from its predecessors'.
    pub(super) generation: u64,
    appsink: gst_app::AppSink,
    thread: Option<JoinHandle<()>>,
    external: Option<gst::Element>,
}

impl Sending {
    /// Builds, starts and pumps one sending pipeline. A send-video
    /// pipeline's encoder (`encoder`) follows the uplink (see [`adapt`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        name: &'static str,
        kind: MediaKind,
        launch: &str,
        writer: Writer,
        stats: Arc<Stats>,
        notify: Notify,
        preview: Option<&SinkFactory>,
        encoder: Option<&'static Candidate>,
    ) -> Result<Sending, MediaError> {
        let pipeline = parse_pipeline(name, launch)?;
        // Monotonic, so that a step of the wall clock neither stops the live
        // sources nor makes them catch up (see [`clock`]).
        pipeline.use_clock(Some(&clock::pipeline_clock()));
        let generation = next_generation();
        watch_bus(&pipeline, name, generation, notify);
        let external = match preview {
            Some(factory) => attach_external_sink(&pipeline, name, factory)?,
            None => None,
        };
        if kind == MediaKind::Video {
            probe_sent_pictures(&pipeline, stats.clone());
            if let Some(encoder) = encoder {
                adapt::attach(&pipeline, writer.uplink().clone(), encoder, stats.clone());
            }
        }
        let appsink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or(MediaError::Parse { pipeline: name, message: "no appsink named sink".into() })?;
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(MediaError::Start { pipeline: name, message: e.to_string() });
        }
        let (sink, pipe) = (appsink.clone(), pipeline.clone());
        let thread = std::thread::Builder::new()
            .name(if kind == MediaKind::Video { "send_video" } else { "send_audio" }.into())
            .spawn(move || pump(kind, &sink, &pipe, &writer, &stats))
            .map_err(|e| MediaError::Start { pipeline: name, message: e.to_string() });
        match thread {
            Ok(t) => Ok(Sending { pipeline, generation, appsink, thread: Some(t), external }),
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                Err(e)
            }
        }
    }

    /// Makes the encoder's next frame an IDR with SPS/PPS.
    pub(super) fn force_keyframe(&self) {
        let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        self.appsink.send_event(event);
    }

    /// Sets a property on a named element, if the pipeline has it.
    pub(super) fn set(&self, element: &str, property: &str, value: bool) {
        if let Some(e) = self.pipeline.by_name(element) {
            e.set_property(property, value);
        }
    }

    /// Stops the pipeline and joins the pump thread.
    pub(super) fn stop(mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(e) = self.external.take() {
            let _ = self.pipeline.remove(&e);
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Pulls until the pipeline stops or the connection closes.
fn pump(kind: MediaKind, sink: &gst_app::AppSink, pipeline: &gst::Pipeline, writer: &Writer, stats: &Stats) {
    while let Ok(sample) = sink.pull_sample() {
        let Some(buffer) = sample.buffer_owned() else { continue };
        // opusenc pushes its header packets first; our receivers need none.
        // (h264parse marks keyframes carrying SPS/PPS as HEADER too: keep those.)
        if kind == MediaKind::Audio && buffer.flags().contains(gst::BufferFlags::HEADER) {
            continue;
        }
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let pts = clock::capture_time_us(&sample, pipeline).unwrap_or_else(clock::now_us);
        let size = buffer.size() as u64;
        let Ok(mapped) = buffer.into_mapped_buffer_readable() else { continue };
        match writer.media(kind, pts, key, Box::new(mapped)) {
            Ok(Queued::Yes) => {}
            Ok(Queued::Dropped) => {
                // Lost after the encoder: only a keyframe repairs the picture.
                stats.video_frames_dropped.fetch_add(1, Relaxed);
                if writer.uplink().take_keyframe_owed() {
                    sink.send_event(
                        gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build(),
                    );
                }
                continue;
            }
            Err(_) => return,
        }
        match kind {
            MediaKind::Video => {
                stats.video_frames_sent.fetch_add(1, Relaxed);
                stats.video_bytes_sent.fetch_add(size, Relaxed);
                if key {
                    stats.video_keyframes_sent.fetch_add(1, Relaxed);
                }
            }
            MediaKind::Audio => {
                stats.audio_packets_sent.fetch_add(1, Relaxed);
                stats.audio_bytes_sent.fetch_add(size, Relaxed);
            }
        }
    }
}

/// Takes the luma grid of every [`GRID_EVERY`]th raw picture before the tee.
fn probe_sent_pictures(pipeline: &gst::Pipeline, stats: Arc<Stats>) {
    let Some(pad) = pipeline.by_name("raw").and_then(|tee| tee.static_pad("sink")) else { return };
    let count = AtomicU64::new(0);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if count.fetch_add(1, Relaxed) % GRID_EVERY == 0 {
            if let Some(grid) = info.buffer().and_then(|b| picture_grid(pad, b)) {
                stats.record_sent_grid(grid);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The luma grid of a raw YUV picture on `pad`, or `None` for other formats.
pub(super) fn picture_grid(pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<super::stats::LumaGrid> {
    use gst_video::prelude::*;
    let caps = pad.current_caps()?;
    let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
    if !info.format_info().is_yuv() || info.format_info().depth().first() != Some(&8) {
        return None;
    }
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let plane = frame.plane_data(0).ok()?;
    let stride = usize::try_from(*frame.info().stride().first()?).ok()?;
    // Packed formats (YUY2...) interleave luma; only planar luma is read here.
    if info.format_info().n_planes() < 2 {
        return None;
    }
    luma_grid(plane, stride, info.width() as usize, info.height() as usize)
}
