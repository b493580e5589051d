//! What the window remembers between runs. `conf.txt` keeps its three lines
//! (server IP, port, camera index) so the headless client and the seed's
//! format keep working; the rest (nick, video and audio source, running in
//! the background) lives in
//! `komunikator.ini` beside it, read and written with `glib::KeyFile`.
//! Main thread.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::problem::Problem;
use crate::config::{self, FileConfig};
use crate::media::{AudioSourceKind, VideoSourceKind};

/// The window's own settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extra {
    /// The nick to claim.
    pub nick: Option<String>,
    /// `camera` or `test`.
    pub video: Option<VideoSourceKind>,
    /// `mic`, `test` or `none`.
    pub audio: Option<AudioSourceKind>,
    /// The source fragment of a chosen microphone; `None` for the default one.
    pub microphone: Option<String>,
    /// The highest video rate, kbit/s (one of [`VIDEO_KBPS_CHOICES`]); the
    /// rate follows the link below it. `None`: the default.
    pub max_video_kbps: Option<u32>,
    /// Closing the window keeps the app running, to receive calls.
    pub background: bool,
}

/// The maximum video rates Preferences offers, kbit/s.
pub const VIDEO_KBPS_CHOICES: [u32; 4] = [500, 1000, 2000, 4000];

/// Where conf.txt is written: the file it was read from, or the first place
/// it is looked for (`$XDG_CONFIG_HOME/komunikator/conf.txt`).
pub fn conf_path(loaded: Option<&Path>, explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = loaded.or(explicit) {
        return p.to_path_buf();
    }
    let xdg = std::env::var("XDG_CONFIG_HOME").ok();
    let home = std::env::var("HOME").ok();
    config::search_paths(None, xdg.as_deref(), home.as_deref()).remove(0)
}

/// The three lines of conf.txt for `c`.
pub fn conf_text(c: &FileConfig) -> String {
    format!("{}\n{}\n{}\n", c.server_host, c.port, c.camera_index)
}

/// Checks a server address and port the way conf.txt does.
///
/// # Errors
/// A sentence about the field that is wrong, with the core's message as detail.
pub fn validate(host: &str, port: &str, camera_index: u32) -> Result<FileConfig, Problem> {
    let text = format!("{}\n{}\n{}\n", host.trim(), port.trim(), camera_index);
    config::parse(&text, Path::new("conf.txt")).map_err(|e| super::problem::from_config(&e))
}

/// Writes conf.txt, creating its directory.
///
/// # Errors
/// When the file cannot be written.
pub fn save_conf(path: &Path, c: &FileConfig) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, conf_text(c)).with_context(|| format!("writing {}", path.display()))
}

/// `HOST:PORT` for a conf.txt, bracketing IPv6 addresses.
pub fn server_of(c: &FileConfig) -> String {
    if c.server_host.contains(':') {
        format!("[{}]:{}", c.server_host, c.port)
    } else {
        format!("{}:{}", c.server_host, c.port)
    }
}

/// The host and the port of a `HOST:PORT` (IPv6 in brackets or not), as
/// the preferences show them; a string without a port is all host.
pub fn split_server(server: &str) -> (String, String) {
    match server.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            (host.to_owned(), port.to_owned())
        }
        _ => (server.to_owned(), String::new()),
    }
}

/// `komunikator.ini` beside `conf`.
pub fn extra_path(conf: &Path) -> PathBuf {
    conf.with_file_name("komunikator.ini")
}

/// Reads `komunikator.ini`; a missing or unreadable file gives the defaults.
pub fn load_extra(path: &Path) -> Extra {
    let file = glib::KeyFile::new();
    if file.load_from_file(path, glib::KeyFileFlags::NONE).is_err() {
        return Extra::default();
    }
    let get = |key: &str| file.string("client", key).ok().map(|s| s.to_string()).filter(|s| !s.is_empty());
    Extra {
        nick: get("nick"),
        video: get("video").and_then(|v| match v.as_str() {
            "camera" => Some(VideoSourceKind::Camera),
            "test" => Some(VideoSourceKind::Test),
            "none" => Some(VideoSourceKind::None),
            _ => None,
        }),
        audio: get("audio").and_then(|v| match v.as_str() {
            "mic" => Some(AudioSourceKind::Mic),
            "test" => Some(AudioSourceKind::Test),
            "none" => Some(AudioSourceKind::None),
            _ => None,
        }),
        microphone: get("microphone"),
        max_video_kbps: get("max-video-kbps")
            .and_then(|v| v.parse().ok())
            .filter(|k| VIDEO_KBPS_CHOICES.contains(k)),
        background: file.boolean("client", "run-in-background").unwrap_or(false),
    }
}

/// Writes `komunikator.ini`.
///
/// # Errors
/// When the file cannot be written.
pub fn save_extra(path: &Path, e: &Extra) -> anyhow::Result<()> {
    let file = glib::KeyFile::new();
    file.set_string("client", "nick", e.nick.as_deref().unwrap_or(""));
    let video = match e.video {
        Some(VideoSourceKind::Camera) | None => "camera",
        Some(VideoSourceKind::Test) => "test",
        Some(VideoSourceKind::None) => "none",
    };
    file.set_string("client", "video", video);
    let audio = match e.audio {
        Some(AudioSourceKind::Mic) | None => "mic",
        Some(AudioSourceKind::Test) => "test",
        Some(AudioSourceKind::None) => "none",
    };
    file.set_string("client", "audio", audio);
    file.set_string("client", "microphone", e.microphone.as_deref().unwrap_or(""));
    let kbps = e.max_video_kbps.map(|k| k.to_string()).unwrap_or_default();
    file.set_string("client", "max-video-kbps", &kbps);
    file.set_boolean("client", "run-in-background", e.background);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    file.save_to_file(path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_round_trip_and_validation() {
        let dir = std::env::temp_dir().join(format!("komunikator-ui-settings-{}", std::process::id()));
        let path = dir.join("conf.txt");
        let c = validate(" 192.168.0.5 ", "4000", 2).unwrap();
        save_conf(&path, &c).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(config::parse(&text, &path).unwrap(), c);
        assert!(validate("bad host!", "4000", 0).unwrap_err().detail.contains("line 1"));
        assert!(validate("h", "0", 0).is_err());
        assert_eq!(server_of(&validate("::1", "5", 0).unwrap()), "[::1]:5");
        assert_eq!(split_server("[::1]:5"), ("::1".into(), "5".into()));
        assert_eq!(split_server("chat.example.org:12345"), ("chat.example.org".into(), "12345".into()));
        assert_eq!(split_server("host"), ("host".into(), String::new()));
        let extra = Extra {
            nick: Some("ala".into()),
            video: Some(VideoSourceKind::Test),
            audio: Some(AudioSourceKind::Mic),
            microphone: Some("pulsesrc device=\"alsa_input.x\"".into()),
            max_video_kbps: Some(2000),
            background: true,
        };
        save_extra(&extra_path(&path), &extra).unwrap();
        assert_eq!(load_extra(&extra_path(&path)), extra);
        // A rate Preferences does not offer (a hand-edited file) is the default.
        std::fs::write(extra_path(&path), "[client]\nmax-video-kbps=7\n").unwrap();
        assert_eq!(load_extra(&extra_path(&path)).max_video_kbps, None);
        assert_eq!(load_extra(&dir.join("missing.ini")), Extra::default());
        let _ = std::fs::remove_dir_all(dir);
    }
}
