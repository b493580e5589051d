//! Every pipeline description parses with gst::parse::launch after its
//! placeholders are filled, for every encoder and decoder installed here,
//! with the program's own sinks and with a GUI's sink slot; and
//! `--print-pipelines` prints exactly what the program would build.

mod support;

use std::process::Command;

use komunikator::media::codec::{self, DECODERS, ENCODERS};
use komunikator::media::{AudioOutputKind, AudioSourceKind, MediaOptions, MediaSetup, VideoSourceKind};

fn setup(options: MediaOptions) -> MediaSetup {
    MediaSetup::resolve(options).expect("resolve media")
}

fn assert_parses(name: &str, launch: &str) {
    if let Err(e) = gst::parse::launch(launch) {
        panic!("{name} does not parse: {e}\n{launch}");
    }
}

#[test]
fn every_description_parses() {
    // SAFETY: the only test in this binary, run before GStreamer starts any thread.
    unsafe { std::env::set_var("GST_REGISTRY", support::gst_registry()) };
    let base = MediaOptions {
        video_source: VideoSourceKind::Test,
        audio_source: AudioSourceKind::Test,
        audio_output: AudioOutputKind::None,
        ..MediaOptions::default()
    };
    let s = setup(base.clone());
    let set = s.pipelines().unwrap();
    for (name, launch) in [
        ("send-video", set.send_video.clone().expect("an encoder works here")),
        ("send-audio", set.send_audio.clone().expect("test tone")),
        ("receive-video", set.receive_video.clone().expect("a decoder works here")),
        ("receive-audio", set.receive_audio.clone()),
    ] {
        assert_parses(name, &launch);
    }
    // The camera and microphone variants parse too (v4l2src parses without a device).
    let camera = s.send_video_launch(&komunikator::media::VideoIn::Camera("/dev/video0".into())).unwrap();
    assert_parses("send-video (camera)", &camera.unwrap());
    for input in [komunikator::media::AudioIn::Mic, komunikator::media::AudioIn::Silence] {
        assert_parses("send-audio", &s.send_audio_launch(input).unwrap().unwrap());
    }
    // With a GUI's sinks, the slots are there to link to.
    let gui: komunikator::SinkFactory =
        std::sync::Arc::new(|| gst::ElementFactory::make("fakesink").build().ok());
    let g = setup(MediaOptions { video_sink: Some(gui.clone()), preview_sink: Some(gui), ..base });
    let gset = g.pipelines().unwrap();
    assert!(gset.receive_video.as_deref().unwrap().contains("identity name=sink_slot"));
    assert_parses("receive-video (gui)", gset.receive_video.as_deref().unwrap());
    assert_parses("send-video (gui)", gset.send_video.as_deref().unwrap());
    // Every installed encoder and decoder fragment fits the templates.
    let mut installed = 0;
    for e in ENCODERS.iter().filter(|c| gst::ElementFactory::find(c.factory).is_some()) {
        installed += 1;
        let launch = format!(
            "videotestsrc num-buffers=1 ! videoconvert ! {} ! h264parse ! fakesink",
            codec::encoder_launch(e, 500)
        );
        assert_parses(e.factory, &launch);
    }
    for d in DECODERS.iter().filter(|c| gst::ElementFactory::find(c.factory).is_some()) {
        installed += 1;
        assert_parses(d.factory, &format!("fakesrc ! h264parse ! {} ! fakesink", codec::decoder_launch(d)));
    }
    assert!(installed >= 4, "x264enc, openh264enc, avdec_h264 and openh264dec are installed here");
    // --print-pipelines prints the same strings.
    let out = Command::new(env!("CARGO_BIN_EXE_komunikator"))
        .args([
            "--print-pipelines",
            "--video-source",
            "test",
            "--audio-source",
            "test",
            "--audio-output",
            "none",
        ])
        .env("GST_REGISTRY", support::gst_registry())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for launch in
        [set.send_video.unwrap(), set.send_audio.unwrap(), set.receive_video.unwrap(), set.receive_audio]
    {
        assert!(printed.lines().any(|l| l == launch), "{launch} not printed:\n{printed}");
    }
}
