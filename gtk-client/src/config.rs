//! `conf.txt`: where the server is and which camera to use.
//!
//! The file has exactly three lines, as in the original brief: the server's IP
//! address (a host name is accepted too), its port, and the camera index `N`
//! (the Nth camera the camera portal shows, else `/dev/video<N>`). Blank lines at the end are allowed. The file is looked
//! for in `--config PATH`, then `$XDG_CONFIG_HOME/komunikator/conf.txt` (or
//! `~/.config/komunikator/conf.txt`), then `./conf.txt`. Pure code, no threads.

use std::path::{Path, PathBuf};

/// What `conf.txt` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// The server's IP address or host name.
    pub server_host: String,
    /// The server's TCP port.
    pub port: u16,
    /// The Nth camera through the portal, else `N` in `/dev/video<N>`.
    pub camera_index: u32,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named with `--config`) but could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line does not hold what it should.
    #[error("{path}, line {line}: expected {expected}, found {found:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What the line should hold.
        expected: &'static str,
        /// What it holds (truncated to 40 characters).
        found: String,
    },
}

/// The highest camera index accepted.
const MAX_CAMERA_INDEX: u32 = 255;

/// Parses the text of a `conf.txt`; `path` is only used in messages.
///
/// # Errors
/// [`ConfigError::Malformed`] naming the first bad line and what was expected.
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let bad = |line: usize, expected: &'static str| ConfigError::Malformed {
        path: path.to_path_buf(),
        line,
        expected,
        found: lines.get(line - 1).map(|l| l.chars().take(40).collect()).unwrap_or_default(),
    };
    let host = lines.first().copied().unwrap_or("");
    if !is_host(host) {
        return Err(bad(1, "the server's IP address (for example 192.168.0.1)"));
    }
    let port = lines.get(1).and_then(|l| l.parse::<u16>().ok()).filter(|p| *p != 0);
    let Some(port) = port else {
        return Err(bad(2, "the server's port, a number from 1 to 65535 (for example 12345)"));
    };
    let camera = lines.get(2).and_then(|l| l.parse::<u32>().ok()).filter(|c| *c <= MAX_CAMERA_INDEX);
    let Some(camera_index) = camera else {
        return Err(bad(3, "the camera index, a number from 0 to 255 (0 for /dev/video0)"));
    };
    if let Some(extra) = lines.iter().skip(3).position(|l| !l.is_empty()) {
        return Err(bad(4 + extra, "nothing more: conf.txt has exactly three lines"));
    }
    Ok(FileConfig { server_host: host.to_owned(), port, camera_index })
}

/// Whether `s` looks like an IP address or a host name.
fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

/// Where `conf.txt` is looked for, in order, given `--config` and the environment.
pub fn search_paths(
    explicit: Option<&Path>,
    xdg_config_home: Option<&str>,
    home: Option<&str>,
) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_path_buf()];
    }
    let mut paths = Vec::new();
    match (xdg_config_home.filter(|s| !s.is_empty()), home.filter(|s| !s.is_empty())) {
        (Some(xdg), _) => paths.push(Path::new(xdg).join("komunikator/conf.txt")),
        (None, Some(home)) => paths.push(Path::new(home).join(".config/komunikator/conf.txt")),
        (None, None) => {}
    }
    paths.push(PathBuf::from("conf.txt"));
    paths
}

/// Finds and reads `conf.txt`. `Ok(None)` when no file exists in the default
/// places (but a file named with `--config` must exist).
///
/// # Errors
/// [`ConfigError`] when a file exists but cannot be read or is malformed.
pub fn load(explicit: Option<&Path>) -> Result<Option<(PathBuf, FileConfig)>, ConfigError> {
    let xdg = std::env::var("XDG_CONFIG_HOME").ok();
    let home = std::env::var("HOME").ok();
    for path in search_paths(explicit, xdg.as_deref(), home.as_deref()) {
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(&text, &path).map(|c| Some((path, c))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => continue,
            Err(source) => return Err(ConfigError::Io { path, source }),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<FileConfig, ConfigError> {
        parse(text, Path::new("conf.txt"))
    }

    fn bad_line(text: &str) -> usize {
        match p(text) {
            Err(ConfigError::Malformed { line, .. }) => line,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn seed_example() {
        let c = p("192.168.0.1\n12345\n0\n").unwrap();
        assert_eq!(c, FileConfig { server_host: "192.168.0.1".into(), port: 12345, camera_index: 0 });
        assert_eq!(p("::1\r\n1\r\n2\r\n\r\n").unwrap().port, 1);
        assert_eq!(p("server.lan\n12345\n3").unwrap().server_host, "server.lan");
    }

    #[test]
    fn names_the_bad_line() {
        assert_eq!(bad_line(""), 1);
        assert_eq!(bad_line("not an ip!\n12345\n0\n"), 1);
        assert_eq!(bad_line("1.2.3.4\n"), 2);
        assert_eq!(bad_line("1.2.3.4\nport\n0\n"), 2);
        assert_eq!(bad_line("1.2.3.4\n0\n0\n"), 2);
        assert_eq!(bad_line("1.2.3.4\n65536\n0\n"), 2);
        assert_eq!(bad_line("1.2.3.4\n12345\n"), 3);
        assert_eq!(bad_line("1.2.3.4\n12345\n-1\n"), 3);
        assert_eq!(bad_line("1.2.3.4\n12345\n0\n\nextra\n"), 5);
    }

    #[test]
    fn message_says_what_was_expected() {
        let msg = p("1.2.3.4\nabc\n0\n").unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("port") && msg.contains("\"abc\""), "{msg}");
    }

    #[test]
    fn search_order() {
        let explicit = search_paths(Some(Path::new("/x/c.txt")), Some("/xdg"), Some("/home/a"));
        assert_eq!(explicit, vec![PathBuf::from("/x/c.txt")]);
        let xdg = search_paths(None, Some("/xdg"), Some("/home/a"));
        assert_eq!(xdg, vec![PathBuf::from("/xdg/komunikator/conf.txt"), PathBuf::from("conf.txt")]);
        let home = search_paths(None, None, Some("/home/a"));
        assert_eq!(home[0], PathBuf::from("/home/a/.config/komunikator/conf.txt"));
        assert_eq!(search_paths(None, None, None), vec![PathBuf::from("conf.txt")]);
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/komunikator/conf.txt"))).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
    }
}
