//! The ring tone of an incoming call: a GStreamer pipeline of two mixed sine
//! tones whose volume a main-loop timer switches on and off in the classic
//! ring cadence (0.4 s on, 0.2 s off, 0.4 s on, 2 s off). It plays on the
//! speakers, or silently into a `fakesink` when there are none (logged).
//! Created, driven and stopped on the main thread.

use std::time::Duration;

use gst::prelude::*;

/// The cadence, in tenths of a second: on, off, on, off.
const CADENCE: [(bool, u32); 4] = [(true, 4), (false, 2), (true, 4), (false, 20)];

/// One ring tone; it stops when dropped.
pub struct Ringer {
    pipeline: gst::Pipeline,
    timer: Option<glib::SourceId>,
}

impl Ringer {
    /// Starts ringing. `speakers` is false when the engine found no audio
    /// output, in which case the tone goes to a `fakesink`.
    pub fn start(speakers: bool) -> Option<Ringer> {
        let pipeline = if speakers {
            build("autoaudiosink").or_else(|| fallback("no pipeline"))
        } else {
            fallback("no audio output was found")
        }?;
        let pipeline = match pipeline.set_state(gst::State::Playing) {
            Ok(_) => pipeline,
            Err(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                let p = fallback(&format!("the speakers would not start ({e})"))?;
                p.set_state(gst::State::Playing).ok()?;
                p
            }
        };
        let volume = pipeline.by_name("ring_volume")?;
        let mut step = 0usize;
        let mut left = 0u32;
        let timer = glib::timeout_add_local(Duration::from_millis(100), move || {
            if left == 0 {
                let (on, tenths) = CADENCE[step % CADENCE.len()];
                volume.set_property("mute", !on);
                left = tenths;
                step += 1;
            }
            left -= 1;
            glib::ControlFlow::Continue
        });
        Some(Ringer { pipeline, timer: Some(timer) })
    }
}

fn build(sink: &str) -> Option<gst::Pipeline> {
    let launch = format!(
        "audiomixer name=mix ! volume name=ring_volume volume=0.3 mute=true ! audioconvert ! \
         audioresample ! {sink} \
         audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! mix. \
         audiotestsrc is-live=true wave=sine freq=480 volume=0.5 ! mix."
    );
    match gst::parse::launch(&launch).map(|e| e.downcast::<gst::Pipeline>()) {
        Ok(Ok(p)) => Some(p),
        Ok(Err(_)) => None,
        Err(e) => {
            eprintln!("komunikator: cannot build the ring tone ({e})");
            None
        }
    }
}

fn fallback(why: &str) -> Option<gst::Pipeline> {
    eprintln!("komunikator: ring tone: {why}; ringing silently into fakesink");
    build("fakesink sync=true")
}

impl Drop for Ringer {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.remove();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
