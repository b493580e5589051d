//! The four pipeline descriptions from `pipelines/`, and filling in their
//! `{placeholders}`. Pure string work; [`crate::media::MediaSetup`] decides
//! the values.

/// `pipelines/send-video.txt`: camera or test pattern to H.264 access units.
pub const SEND_VIDEO: &str = include_str!("../../../pipelines/send-video.txt");
/// `pipelines/send-audio.txt`: microphone or tone to Opus packets.
pub const SEND_AUDIO: &str = include_str!("../../../pipelines/send-audio.txt");
/// `pipelines/receive-video.txt`: H.264 access units to pictures.
pub const RECEIVE_VIDEO: &str = include_str!("../../../pipelines/receive-video.txt");
/// `pipelines/receive-audio.txt`: Opus packets to the speakers.
pub const RECEIVE_AUDIO: &str = include_str!("../../../pipelines/receive-audio.txt");

/// A placeholder that has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pipeline placeholder {{{0}}} has no value")]
pub struct MissingPlaceholder(pub String);

/// Replaces every `{name}` in `template` with its value and joins the lines
/// with spaces, so the result pastes into one `gst-launch-1.0` command line.
///
/// # Errors
/// [`MissingPlaceholder`] for a `{name}` without a value, or an unclosed `{`.
pub fn substitute(template: &str, values: &[(&str, &str)]) -> Result<String, MissingPlaceholder> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(MissingPlaceholder(after.chars().take(20).collect()));
        };
        let name = &after[..close];
        let value = values.iter().find(|(k, _)| *k == name).ok_or_else(|| MissingPlaceholder(name.into()))?;
        out.push_str(value.1);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The placeholders a template uses, in order of first appearance.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        if !names.contains(&&after[..close]) {
            names.push(&after[..close]);
        }
        rest = &after[close + 1..];
    }
    names
}

/// The appsrc that feeds the receive-video pipeline.
pub const VIDEO_APPSRC: &str = "appsrc name=src is-live=true format=time do-timestamp=false caps=\"video/x-h264,stream-format=byte-stream,alignment=au\"";
/// The appsrc that feeds the receive-audio pipeline: Opus without a header packet.
pub const AUDIO_APPSRC: &str = "appsrc name=src is-live=true format=time do-timestamp=false caps=\"audio/x-opus,channel-mapping-family=0,rate=48000,channels=1\"";
/// The appsink at the end of the send-video pipeline. A full appsink blocks
/// the encoder, so the leaky queue before it drops raw frames instead.
pub const VIDEO_APPSINK: &str = "appsink name=sink sync=false max-buffers=2 drop=false";
/// The appsink at the end of the send-audio pipeline.
pub const AUDIO_APPSINK: &str = "appsink name=sink sync=false max-buffers=25 drop=false";
/// A sink that discards.
pub const NULL_SINK: &str = "fakesink sync=false async=false";
/// Stands in for a sink element that the GUI supplies; linked after parsing.
/// The converter lets a sink such as `gtk4paintablesink` (RGB formats only)
/// follow the 4:2:0 preview branch of send-video.
pub const SINK_SLOT: &str = "videoconvert ! identity name=sink_slot silent=true";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_flattens() {
        let s = substitute("{a} ! b\n{c}", &[("a", "x y"), ("c", "z")]).unwrap();
        assert_eq!(s, "x y ! b z");
        assert_eq!(substitute("{a} {b}", &[("a", "1")]), Err(MissingPlaceholder("b".into())));
        assert!(substitute("{a", &[("a", "1")]).is_err());
    }

    #[test]
    fn templates_have_the_documented_placeholders() {
        assert_eq!(
            placeholders(SEND_VIDEO),
            ["source", "width", "height", "fps", "encoder", "sink", "preview"]
        );
        assert_eq!(placeholders(SEND_AUDIO), ["source", "bitrate", "sink"]);
        assert_eq!(placeholders(RECEIVE_VIDEO), ["source", "decoder", "sink"]);
        assert_eq!(placeholders(RECEIVE_AUDIO), ["source", "sink"]);
    }

    #[test]
    fn low_latency_settings_are_in_the_templates() {
        assert!(SEND_VIDEO.contains("queue name=encode_queue leaky=downstream max-size-buffers=1"));
        assert!(
            SEND_VIDEO.contains(
                "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"
            )
        );
        assert!(SEND_AUDIO.contains("frame-size=20"));
        assert!(RECEIVE_AUDIO.contains("plc=true"));
        assert!(VIDEO_APPSRC.contains("is-live=true format=time"));
        assert!(VIDEO_APPSINK.contains("sync=false") && !VIDEO_APPSINK.contains("drop=true"));
    }
}
