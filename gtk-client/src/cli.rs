//! Command-line flags. Pure parsing, no I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::media::{AudioOutputKind, AudioSourceKind, MediaOptions, SourceFailure, VideoSourceKind};

/// The usage text for `--help`.
pub const USAGE: &str = "\
Usage: komunikator [OPTIONS]

Connection (conf.txt has three lines: server IP, port, camera index; it is read from
--config, then $XDG_CONFIG_HOME/komunikator/conf.txt, then ./conf.txt):
  --config PATH            read this conf.txt
  --server HOST:PORT       the server, overriding conf.txt
  --name NICK              claim this nick once connected

Calling (in the window too):
  --call TARGET            call TARGET (id IP:PORT, IP or nick) once connected

Headless mode (no window; prints one line of JSON statistics at the end):
  --headless               run without a window
  --answer                 answer the first incoming call
  --duration SECONDS       hang up after this long in the call (default: until the peer stops)
  --reconnect              when the connection is lost, reconnect with backoff and keep going
  --mute                   keep the microphone muted (silence is sent; the peer is told)
  --camera-off             keep the camera off (no video is sent; the peer is told)
  --camera-off-after SECONDS  turn the camera off this long into the call, as V does in the window
                           (it stays off for later calls)
  --group                  take part in group calls (three or more people in one call; the
                           window always does)
  --invite TARGET          once in a call, invite TARGET into it (repeatable; implies --group)

Media:
  --video-source camera|test|none   (default camera; falls back to a test pattern)
  --audio-source mic|test|none      (default mic; falls back to silence)
  --audio-output speakers|none      (default speakers; falls back to a null sink)
  --camera N               use camera N (the Nth the camera portal shows, else /dev/videoN),
                           overriding conf.txt
  --test-pattern NAME      videotestsrc pattern of the test source (default smpte)
  --tone HZ                frequency of the test tone (default 440)
  --size WxH               picture size sent (default 640x480)
  --fps N                  frames per second sent (default 30)
  --video-kbps N           the highest video bitrate (default 1000); it follows the link below that
  --no-adapt               for benchmarks only: a fixed bitrate and picture, one send queue
  --video-encoder NAME     force an H.264 encoder (x264enc, openh264enc, vah264enc, ...)
  --video-decoder NAME     force an H.264 decoder (avdec_h264, openh264dec, ...)
  --print-pipelines        print the four pipelines this machine would run, and exit

Security (TLS is on unless --plaintext; the server's certificate is pinned on first use
in $XDG_CONFIG_HOME/komunikator/known_servers, like SSH's known_hosts):
  --plaintext              no TLS: plain text, as nc speaks it
  --fingerprint SHA256     expect this certificate fingerprint (pin it up front)
  --trust-new-certificate  accept and pin the certificate the server presents now
  --password-file PATH     the server password, on the first line of PATH

  -h, --help               show this help
  -V, --version            show the version
";

impl Args {
    /// The connection security these flags ask for; reads `--password-file`.
    ///
    /// # Errors
    /// When the password file cannot be read or is empty.
    pub fn security(&self) -> Result<crate::net::security::Security, ArgError> {
        use crate::net::security::Security;
        let password = match &self.password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ArgError(format!("--password-file {}: {e}", path.display())))?;
                let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
                if line.is_empty() {
                    return Err(ArgError(format!(
                        "--password-file {}: the first line is empty",
                        path.display()
                    )));
                }
                Some(line)
            }
            None => None,
        };
        let base = if self.plaintext { Security::plaintext() } else { Security::default() };
        Ok(Security {
            expected: self.fingerprint.clone(),
            trust_new: self.trust_new_certificate,
            password,
            ..base
        })
    }
}

/// Parsed flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// `--help`.
    pub help: bool,
    /// `--version`.
    pub version: bool,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--server`.
    pub server: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--headless`.
    pub headless: bool,
    /// `--call`.
    pub call: Option<String>,
    /// `--answer`.
    pub answer: bool,
    /// `--reconnect`.
    pub reconnect: bool,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--mute`: headless, the microphone stays muted.
    pub mute: bool,
    /// `--camera-off`: headless, the camera stays off.
    pub camera_off: bool,
    /// `--camera-off-after`: headless, the camera goes off this long into the call.
    pub camera_off_after: Option<Duration>,
    /// `--group` (or any `--invite`): headless, take part in group calls.
    pub group: bool,
    /// `--invite`: headless, invite these into the call once it is up, one after the other.
    pub invite: Vec<String>,
    /// `--print-pipelines`.
    pub print_pipelines: bool,
    /// `--video-source`.
    pub video_source: Option<VideoSourceKind>,
    /// `--audio-source`.
    pub audio_source: Option<AudioSourceKind>,
    /// `--audio-output`.
    pub audio_output: Option<AudioOutputKind>,
    /// `--camera`.
    pub camera: Option<u32>,
    /// `--test-pattern`.
    pub test_pattern: Option<String>,
    /// `--tone`.
    pub tone_hz: Option<u32>,
    /// `--size`.
    pub size: Option<(u32, u32)>,
    /// `--fps`.
    pub fps: Option<u32>,
    /// `--video-kbps`.
    pub video_kbps: Option<u32>,
    /// `--no-adapt`.
    pub no_adapt: bool,
    /// `--video-encoder`.
    pub video_encoder: Option<String>,
    /// `--video-decoder`.
    pub video_decoder: Option<String>,
    /// `--plaintext`.
    pub plaintext: bool,
    /// `--fingerprint`, normalised.
    pub fingerprint: Option<String>,
    /// `--trust-new-certificate`.
    pub trust_new_certificate: bool,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--inject-source-failure video|audio:SECONDS[:eos]`, for tests only and
    /// so not in `--help`: the live source of that sending pipeline posts an
    /// error (or, with `:eos`, ends its stream) SECONDS into every call, as a
    /// camera or microphone unplugged mid-call does.
    pub inject_source_failure: Option<SourceFailure>,
}

/// A flag that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (see --help)")]
pub struct ArgError(pub String);

/// Parses the arguments after the program name.
///
/// # Errors
/// [`ArgError`] for an unknown flag, a missing or bad value, or a conflict.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, ArgError> {
    let mut a = Args::default();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (flag, None),
        };
        let mut value =
            || inline.clone().or_else(|| it.next()).ok_or_else(|| ArgError(format!("{flag} needs a value")));
        match flag.as_str() {
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => a.version = true,
            "--config" => a.config = Some(PathBuf::from(value()?)),
            "--server" => a.server = Some(server(&value()?)?),
            "--name" => a.name = Some(value()?),
            "--headless" => a.headless = true,
            "--call" => a.call = Some(value()?),
            "--answer" => a.answer = true,
            "--reconnect" => a.reconnect = true,
            "--mute" => a.mute = true,
            "--camera-off" => a.camera_off = true,
            "--camera-off-after" => a.camera_off_after = Some(duration(&value()?)?),
            "--group" => a.group = true,
            "--invite" => {
                a.invite.push(value()?);
                a.group = true;
            }
            "--duration" => a.duration = Some(duration(&value()?)?),
            "--print-pipelines" => a.print_pipelines = true,
            "--video-source" => a.video_source = Some(video_source(&value()?)?),
            "--audio-source" => a.audio_source = Some(audio_source(&value()?)?),
            "--audio-output" => a.audio_output = Some(audio_output(&value()?)?),
            "--camera" => a.camera = Some(number(&flag, &value()?, 0, 255)?),
            "--test-pattern" => a.test_pattern = Some(value()?),
            "--tone" => a.tone_hz = Some(number(&flag, &value()?, 20, 20_000)?),
            "--size" => a.size = Some(size(&value()?)?),
            "--fps" => a.fps = Some(number(&flag, &value()?, 1, 120)?),
            "--video-kbps" => a.video_kbps = Some(number(&flag, &value()?, 50, 50_000)?),
            "--no-adapt" => a.no_adapt = true,
            "--video-encoder" => a.video_encoder = Some(value()?),
            "--video-decoder" => a.video_decoder = Some(value()?),
            "--plaintext" => a.plaintext = true,
            "--fingerprint" => {
                let fp = value()?;
                a.fingerprint =
                    Some(komunikator_tls::parse_fingerprint(&fp).map_err(|e| ArgError(e.to_string()))?);
            }
            "--trust-new-certificate" => a.trust_new_certificate = true,
            "--password-file" => a.password_file = Some(PathBuf::from(value()?)),
            "--inject-source-failure" => a.inject_source_failure = Some(source_failure(&value()?)?),
            other => return Err(ArgError(format!("unknown argument {other:?}"))),
        }
    }
    if a.call.is_some() && a.answer {
        return Err(ArgError("--call and --answer exclude each other".into()));
    }
    // In the window, --call dials once connected; answering is left to a person.
    let switches = a.mute || a.camera_off || a.camera_off_after.is_some() || !a.invite.is_empty();
    if (a.answer || a.duration.is_some() || a.reconnect || switches) && !a.headless {
        return Err(ArgError(
            "--answer, --duration, --reconnect, --mute, --camera-off(-after) and --invite need --headless \
             (in the window, M and V switch them, and Add person, Ctrl+I, invites)"
                .into(),
        ));
    }
    Ok(a)
}

impl Args {
    /// Media options from the flags, with `camera_index` from conf.txt unless `--camera` is given.
    pub fn media_options(&self, camera_index: u32) -> MediaOptions {
        let d = MediaOptions::default();
        let (width, height) = self.size.unwrap_or((d.width, d.height));
        MediaOptions {
            video_source: self.video_source.unwrap_or(d.video_source),
            audio_source: self.audio_source.unwrap_or(d.audio_source),
            audio_output: self.audio_output.unwrap_or(d.audio_output),
            camera_index: self.camera.unwrap_or(camera_index),
            test_pattern: self.test_pattern.clone().unwrap_or(d.test_pattern),
            tone_hz: self.tone_hz.unwrap_or(d.tone_hz),
            width,
            height,
            fps: self.fps.unwrap_or(d.fps),
            video_kbps: self.video_kbps.unwrap_or(d.video_kbps),
            adapt: !self.no_adapt,
            video_encoder: self.video_encoder.clone(),
            video_decoder: self.video_decoder.clone(),
            inject_source_failure: self.inject_source_failure,
            group_calls: self.group,
            ..d
        }
    }
}

fn server(s: &str) -> Result<String, ArgError> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(s.to_owned())
        }
        _ => Err(ArgError(format!("--server wants HOST:PORT, got {s:?}"))),
    }
}

fn duration(s: &str) -> Result<Duration, ArgError> {
    s.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ArgError(format!("--duration wants seconds, got {s:?}")))
}

fn number(flag: &str, s: &str, min: u32, max: u32) -> Result<u32, ArgError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ArgError(format!("{flag} wants a number from {min} to {max}, got {s:?}")))
}

fn size(s: &str) -> Result<(u32, u32), ArgError> {
    let bad = || ArgError(format!("--size wants WIDTHxHEIGHT such as 640x480, got {s:?}"));
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let w = w.parse::<u32>().ok().filter(|w| (64..=3840).contains(w) && w % 2 == 0).ok_or_else(bad)?;
    let h = h.parse::<u32>().ok().filter(|h| (64..=2160).contains(h) && h % 2 == 0).ok_or_else(bad)?;
    Ok((w, h))
}

fn source_failure(s: &str) -> Result<SourceFailure, ArgError> {
    use komunikator_protocol::MediaKind;
    let bad = || ArgError(format!("--inject-source-failure wants video|audio:SECONDS[:eos], got {s:?}"));
    let mut parts = s.split(':');
    let kind = match parts.next() {
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => return Err(bad()),
    };
    let after = parts.next().ok_or_else(bad).and_then(|d| duration(d).map_err(|_| bad()))?;
    let eos = match parts.next() {
        None => false,
        Some("eos") => true,
        Some(_) => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(SourceFailure { kind, after, eos })
}

fn video_source(s: &str) -> Result<VideoSourceKind, ArgError> {
    match s {
        "camera" => Ok(VideoSourceKind::Camera),
        "test" => Ok(VideoSourceKind::Test),
        "none" => Ok(VideoSourceKind::None),
        _ => Err(ArgError(format!("--video-source wants camera, test or none, got {s:?}"))),
    }
}

fn audio_source(s: &str) -> Result<AudioSourceKind, ArgError> {
    match s {
        "mic" => Ok(AudioSourceKind::Mic),
        "test" => Ok(AudioSourceKind::Test),
        "none" => Ok(AudioSourceKind::None),
        _ => Err(ArgError(format!("--audio-source wants mic, test or none, got {s:?}"))),
    }
}

fn audio_output(s: &str) -> Result<AudioOutputKind, ArgError> {
    match s {
        "speakers" => Ok(AudioOutputKind::Speakers),
        "none" => Ok(AudioOutputKind::None),
        _ => Err(ArgError(format!("--audio-output wants speakers or none, got {s:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, ArgError> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn version_flag() {
        assert!(p("--version").unwrap().version);
        assert!(p("-V").unwrap().version);
        assert!(!p("--headless").unwrap().version);
    }

    #[test]
    fn headless_call() {
        let a = p("--headless --call bob --duration 5 --server 127.0.0.1:9 --video-source test --tone=660")
            .unwrap();
        assert!(a.headless);
        assert_eq!(a.call.as_deref(), Some("bob"));
        assert_eq!(a.duration, Some(Duration::from_secs(5)));
        assert_eq!(a.video_source, Some(VideoSourceKind::Test));
        assert_eq!(a.media_options(3).tone_hz, 660);
        assert_eq!(a.media_options(3).camera_index, 3);
    }

    #[test]
    fn headless_switches() {
        let a = p("--headless --mute --camera-off-after 1.5").unwrap();
        assert!(a.mute && !a.camera_off);
        assert_eq!(a.camera_off_after, Some(Duration::from_millis(1500)));
        assert!(p("--headless --camera-off").unwrap().camera_off);
    }

    #[test]
    fn rejects() {
        for bad in [
            "--bogus",
            "--server 1.2.3.4",
            "--server :5",
            "--server h:0",
            "--duration -1",
            "--duration x",
            "--video-source webcam",
            "--headless --call a --answer",
            "--answer",
            "--duration 3",
            "--mute",
            "--camera-off",
            "--camera-off-after 2",
            "--headless --camera-off-after x",
            "--camera 999",
            "--size 641x480",
            "--name",
            "--inject-source-failure camera:1",
            "--inject-source-failure video",
            "--inject-source-failure video:x",
            "--inject-source-failure audio:1:later",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn source_failure_injection() {
        use komunikator_protocol::MediaKind;
        let f = p("--headless --inject-source-failure video:2.5").unwrap().inject_source_failure.unwrap();
        assert_eq!(
            f,
            SourceFailure { kind: MediaKind::Video, after: Duration::from_millis(2500), eos: false }
        );
        let f = p("--inject-source-failure=audio:1:eos").unwrap().media_options(0).inject_source_failure;
        assert_eq!(
            f,
            Some(SourceFailure { kind: MediaKind::Audio, after: Duration::from_secs(1), eos: true })
        );
        assert!(!USAGE.contains("inject"), "a test hook, not a user option");
    }

    #[test]
    fn error_message_points_to_help() {
        assert!(p("--bogus").unwrap_err().to_string().ends_with("(see --help)"));
    }
}
