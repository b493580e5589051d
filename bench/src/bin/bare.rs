//! `komunikator-bare-pipeline`: the real-call benchmark's baseline. It runs
//! the client's own sending and receiving pipelines joined into one bare
//! pipeline per medium (no appsink/appsrc, no network, no server) and
//! measures video capture-to-decode latency exactly as the client does: the
//! pipeline runs on the real-time clock, a buffer's capture time is the base
//! time plus its running time, and the latency is taken at the decoder's
//! output. Prints one JSON line.
//!
//! Usage: `komunikator-bare-pipeline SECONDS 'VIDEO PIPELINE' ['AUDIO PIPELINE']`.
//! The video pipeline must name its decoder `decoder` and hold an element
//! named `encoded` after the encoder (its output is counted as the video
//! bitrate); the audio pipeline, when given, the same `encoded`.
//!
//! Threads: the main thread waits; GStreamer's streaming threads run the probes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use gst::prelude::*;

fn realtime_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1] as f64 / 1000.0
}

fn start(desc: &str, clock: &gst::Clock) -> anyhow::Result<gst::Pipeline> {
    let pipeline = gst::parse::launch(desc)
        .with_context(|| format!("parsing {desc}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline: {desc}"))?;
    pipeline.use_clock(Some(clock));
    Ok(pipeline)
}

fn count_bytes(pipeline: &gst::Pipeline, counter: Arc<AtomicU64>) -> anyhow::Result<()> {
    let pad =
        pipeline.by_name("encoded").and_then(|e| e.static_pad("src")).context("no element `encoded`")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer() {
            counter.fetch_add(b.size() as u64, Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 3, "usage: komunikator-bare-pipeline SECONDS 'VIDEO' ['AUDIO']");
    let seconds: f64 = args[1].parse().context("SECONDS")?;
    gst::init()?;
    let clock: gst::Clock = glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Realtime)
        .build()
        .upcast();
    let video = start(&args[2], &clock)?;
    let audio = args.get(3).map(|d| start(d, &clock)).transpose()?;
    let (video_bytes, audio_bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    count_bytes(&video, Arc::clone(&video_bytes))?;
    if let Some(a) = &audio {
        count_bytes(a, Arc::clone(&audio_bytes))?;
    }
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let decoded = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let pad = video.by_name("decoder").and_then(|d| d.static_pad("src")).context("no element `decoder`")?;
    {
        let (latencies, decoded, video) = (Arc::clone(&latencies), Arc::clone(&decoded), video.downgrade());
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let (Some(buffer), Some(video)) = (info.buffer(), video.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            decoded.fetch_add(1, Relaxed);
            let segment = pad.sticky_event::<gst::event::Segment>(0);
            let running = segment.as_ref().and_then(|s| {
                s.segment().downcast_ref::<gst::ClockTime>().and_then(|s| s.to_running_time(buffer.pts()?))
            });
            if let (Some(running), Some(base)) = (running, video.base_time()) {
                let captured = (base + running).useconds();
                if let Ok(mut v) = latencies.lock() {
                    v.push(realtime_us().saturating_sub(captured));
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    let cpu0 = cpu_s();
    video.set_state(gst::State::Playing)?;
    if let Some(a) = &audio {
        a.set_state(gst::State::Playing)?;
    }
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = 100.0 * (cpu_s() - cpu0) / elapsed;
    video.set_state(gst::State::Null)?;
    if let Some(a) = &audio {
        a.set_state(gst::State::Null)?;
    }
    let mut v = latencies.lock().map(|v| v.clone()).unwrap_or_default();
    println!(
        "{{\"latency_ms_p50\":{:.3},\"latency_ms_p95\":{:.3},\"latency_samples\":{},\"video_frames_decoded\":{},\
         \"video_kbps\":{:.1},\"audio_kbps\":{:.1},\"cpu_percent\":{:.1},\"seconds\":{:.2}}}",
        pct(&mut v, 50.0),
        pct(&mut v, 95.0),
        v.len(),
        decoded.load(Relaxed),
        video_bytes.load(Relaxed) as f64 * 8.0 / 1000.0 / elapsed,
        audio_bytes.load(Relaxed) as f64 * 8.0 / 1000.0 / elapsed,
        cpu,
        elapsed
    );
    Ok(())
}

/// This process's user plus system CPU time, in seconds.
fn cpu_s() -> f64 {
    let mut u = libc_rusage();
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn libc_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}
