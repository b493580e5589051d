//! The exact pipeline descriptions for a [`MediaSetup`]: the templates from
//! `pipelines/` with their placeholders filled in.

use super::pipelines::{self, substitute};
use super::{AudioIn, MediaError, MediaSetup, VideoIn, codec, devices};

/// The four descriptions a call would use; `None` for a pipeline that does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSet {
    /// Camera or pattern to the sending appsink.
    pub send_video: Option<String>,
    /// Microphone or tone to the sending appsink.
    pub send_audio: Option<String>,
    /// Receiving appsrc to the picture sink.
    pub receive_video: Option<String>,
    /// Receiving appsrc to the speakers.
    pub receive_audio: String,
}

impl MediaSetup {
    /// The send-video description for `input` (which may be a fallback).
    ///
    /// # Errors
    /// [`MediaError::Template`] if a template lost a placeholder value.
    pub fn send_video_launch(&self, input: &VideoIn) -> Result<Option<String>, MediaError> {
        let (Some(source), Some(encoder)) = (devices::video_source_launch(input), self.encoder) else {
            return Ok(None);
        };
        let o = &self.options;
        let encoder = codec::encoder_launch(encoder, o.video_kbps);
        let preview = if o.preview_sink.is_some() { pipelines::SINK_SLOT } else { pipelines::NULL_SINK };
        let (w, h, fps) = (o.width.to_string(), o.height.to_string(), o.fps.to_string());
        let values = [
            ("source", source.as_str()),
            ("width", &w),
            ("height", &h),
            ("fps", &fps),
            ("encoder", &encoder),
            ("sink", pipelines::VIDEO_APPSINK),
            ("preview", preview),
        ];
        Ok(Some(substitute(pipelines::SEND_VIDEO, &values)?))
    }

    /// The send-audio description for `input` (which may be a fallback).
    ///
    /// # Errors
    /// [`MediaError::Template`] if a template lost a placeholder value.
    pub fn send_audio_launch(&self, input: AudioIn) -> Result<Option<String>, MediaError> {
        let chosen = self.options.microphone.clone().filter(|_| input == AudioIn::Mic);
        let Some(source) = chosen.or_else(|| devices::audio_source_launch(input)) else { return Ok(None) };
        let bitrate = self.options.audio_bps.to_string();
        let values = [("source", source.as_str()), ("bitrate", &bitrate), ("sink", pipelines::AUDIO_APPSINK)];
        Ok(Some(substitute(pipelines::SEND_AUDIO, &values)?))
    }

    /// The receive-video description.
    ///
    /// # Errors
    /// [`MediaError::Template`] if a template lost a placeholder value.
    pub fn receive_video_launch(&self) -> Result<Option<String>, MediaError> {
        self.receive_video_launch_with(self.options.video_sink.is_some())
    }

    /// The receive-video description, ending in the slot for a GUI's sink
    /// (`external`) or in a sink that discards the pictures (a further party
    /// of a group call, for which the GUI gave no sink).
    ///
    /// # Errors
    /// As [`MediaSetup::receive_video_launch`].
    pub fn receive_video_launch_with(&self, external: bool) -> Result<Option<String>, MediaError> {
        let Some(decoder) = self.decoder else { return Ok(None) };
        let decoder = codec::decoder_launch(decoder);
        let sink = if external { pipelines::SINK_SLOT } else { pipelines::NULL_SINK };
        let values = [("source", pipelines::VIDEO_APPSRC), ("decoder", decoder.as_str()), ("sink", sink)];
        Ok(Some(substitute(pipelines::RECEIVE_VIDEO, &values)?))
    }

    /// The receive-audio description.
    ///
    /// # Errors
    /// [`MediaError::Template`] if a template lost a placeholder value.
    pub fn receive_audio_launch(&self) -> Result<String, MediaError> {
        let values =
            [("source", pipelines::AUDIO_APPSRC), ("sink", devices::audio_sink_launch(self.audio_out))];
        Ok(substitute(pipelines::RECEIVE_AUDIO, &values)?)
    }

    /// All four descriptions, as `--print-pipelines` shows them.
    ///
    /// # Errors
    /// [`MediaError::Template`] if a template lost a placeholder value.
    pub fn pipelines(&self) -> Result<PipelineSet, MediaError> {
        Ok(PipelineSet {
            send_video: self.send_video_launch(&self.video_in)?,
            send_audio: self.send_audio_launch(self.audio_in)?,
            receive_video: self.receive_video_launch()?,
            receive_audio: self.receive_audio_launch()?,
        })
    }
}
