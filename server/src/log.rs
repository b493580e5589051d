//! One line per event on stderr, with a level. Any thread may log.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// How severe a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed that the server cannot recover for this client or at all.
    Error = 0,
    /// Something unusual that the server handled.
    Warn = 1,
    /// A normal event: a connection, a call, a summary.
    Info = 2,
    /// Details for debugging.
    Debug = 3,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Level::Error),
            "warn" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(format!("unknown log level {s:?}: use error, warn, info or debug")),
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the least severe level that is printed.
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether lines at `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Prints one line. Use the [`log!`](crate::log!) macro instead.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    let mut line = Vec::with_capacity(128);
    let _ = writeln!(line, "{:5} {args}", level.as_str());
    // stderr is unbuffered; one write per line keeps lines whole across threads.
    let _ = std::io::stderr().lock().write_all(&line);
}

/// `log!(Info, "format", args..)` prints one line at that level if enabled.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write($crate::log::Level::$level, format_args!($($arg)+));
        }
    };
}
