//! The call history: who called whom, when, and how it went. Owns the
//! [`Entry`] model, the bounded in-memory [`CallLog`], the [`Tracker`] that
//! turns call-state transitions into entries, and the file the log is kept
//! in (`$XDG_DATA_HOME/komunikator/history`). Pure apart from [`load`] and
//! [`save`]; the window calls all of it on the GTK main thread.
//!
//! # The file
//!
//! UTF-8 text, one call a line, newest last, after a header line
//! `komunikator-history 1`; the fields are separated by one TAB (shown
//! here as spaces):
//!
//! ```text
//! START DIRECTION OUTCOME SECONDS PEER
//! 1796169600 in missed 0 ala
//! 1796169700 out answered 192 bob
//! ```
//!
//! START is Unix seconds; DIRECTION `in` or `out`; OUTCOME `answered`,
//! `missed`, `declined`, `unanswered` or `failed`; SECONDS the length of an
//! answered call (else 0); PEER a nick as the protocol allows it, or an id
//! (`IP:PORT`). Lines that do not parse are skipped. At most [`MAX_FILE`]
//! bytes are read (the end of a longer file) and [`MAX_ENTRIES`] kept; the
//! file is replaced atomically (a temporary file renamed over it).

use std::collections::VecDeque;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use komunikator_protocol::{ClientId, is_valid_nick};

use crate::call::{CallState, EndReason};

/// The most entries kept, in memory and on disk; older ones are dropped.
pub const MAX_ENTRIES: usize = 200;

/// The most bytes read from the file: a longer one is read from its end.
pub const MAX_FILE: u64 = 64 * 1024;

/// The file's first line.
const HEADER: &str = "komunikator-history 1";

/// Who started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We called.
    Outgoing,
    /// We were called.
    Incoming,
}

/// How a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was answered and lasted this long.
    Answered(Duration),
    /// It rang here and nobody answered (the caller gave up, or it timed out).
    Missed,
    /// Declined: by us (incoming) or by the callee (outgoing).
    Declined,
    /// We called and nobody answered, or we gave up first.
    Unanswered,
    /// It never got through: busy, refused, or a connection dropped.
    Failed,
}

/// One call in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The other party: its nick, or its id (`IP:PORT`) when it had none.
    pub peer: String,
    /// Who called.
    pub direction: Direction,
    /// How it went.
    pub outcome: Outcome,
    /// When it started ringing, in Unix seconds.
    pub start: u64,
}

impl Entry {
    /// Whether this is a missed call.
    pub fn is_missed(&self) -> bool {
        self.outcome == Outcome::Missed
    }

    /// The entry as one line of the file (without the newline).
    pub fn to_line(&self) -> String {
        let dir = match self.direction {
            Direction::Outgoing => "out",
            Direction::Incoming => "in",
        };
        let (outcome, secs) = match self.outcome {
            Outcome::Answered(d) => ("answered", d.as_secs()),
            Outcome::Missed => ("missed", 0),
            Outcome::Declined => ("declined", 0),
            Outcome::Unanswered => ("unanswered", 0),
            Outcome::Failed => ("failed", 0),
        };
        format!("{}\t{dir}\t{outcome}\t{secs}\t{}", self.start, self.peer)
    }

    /// Parses one line of the file; `None` when it is not an entry.
    pub fn from_line(line: &str) -> Option<Entry> {
        let mut f = line.split('\t');
        let start = f.next()?.parse().ok()?;
        let direction = match f.next()? {
            "out" => Direction::Outgoing,
            "in" => Direction::Incoming,
            _ => return None,
        };
        let (outcome, secs) = (f.next()?, f.next()?.parse::<u64>().ok()?);
        let outcome = match outcome {
            "answered" => Outcome::Answered(Duration::from_secs(secs)),
            "missed" => Outcome::Missed,
            "declined" => Outcome::Declined,
            "unanswered" => Outcome::Unanswered,
            "failed" => Outcome::Failed,
            _ => return None,
        };
        let peer = f.next()?;
        if f.next().is_some() || !valid_peer(peer) {
            return None;
        }
        Some(Entry { peer: peer.to_owned(), direction, outcome, start })
    }
}

/// A nick the protocol allows, or an id.
fn valid_peer(peer: &str) -> bool {
    is_valid_nick(peer) || peer.parse::<ClientId>().is_ok()
}

/// The last [`MAX_ENTRIES`] calls, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLog {
    entries: VecDeque<Entry>,
}

impl CallLog {
    /// Adds `entry`, dropping the oldest beyond [`MAX_ENTRIES`].
    pub fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
    }

    /// The entries, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().rev()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        for e in &self.entries {
            text.push_str(&e.to_line());
            text.push('\n');
        }
        text
    }

    /// Parses the file's text; also how many lines were skipped. A header
    /// line is not required (the start of a long file may have been cut).
    pub fn from_text(text: &str) -> (CallLog, usize) {
        let mut log = CallLog::default();
        let mut skipped = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty() && *l != HEADER) {
            match Entry::from_line(line) {
                Some(e) => log.push(e),
                None => skipped += 1,
            }
        }
        (log, skipped)
    }
}

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading the file failed.
    #[error("cannot read the call history {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Writing the file (or its temporary copy, or the directory) failed.
    #[error("cannot write the call history {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The entries.
    pub log: CallLog,
    /// Lines that were not entries (a damaged file).
    pub skipped: usize,
    /// The file was longer than [`MAX_FILE`]; only its end was read.
    pub truncated: bool,
}

/// The history file: `$XDG_DATA_HOME/komunikator/history` (inside a
/// Flatpak, the app's own data directory).
pub fn default_path() -> PathBuf {
    glib::user_data_dir().join("komunikator").join("history")
}

/// Reads the history at `path`; a missing file is an empty history.
///
/// # Errors
///
/// [`HistoryError::Read`] when the file exists but cannot be read.
pub fn load(path: &Path) -> Result<Loaded, HistoryError> {
    let err = |source| HistoryError::Read { path: path.to_owned(), source };
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(err(e)),
    };
    let len = file.metadata().map_err(err)?.len();
    let truncated = len > MAX_FILE;
    if truncated {
        file.seek(SeekFrom::Start(len - MAX_FILE)).map_err(err)?;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes).map_err(err)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if truncated {
        // The first line was cut in the middle.
        text.drain(..text.find('\n').map_or(text.len(), |i| i + 1));
    }
    let (log, skipped) = CallLog::from_text(&text);
    Ok(Loaded { log, skipped, truncated })
}

/// Writes `log` to `path` atomically: a temporary file next to it, synced,
/// then renamed over it. Creates the directory.
///
/// # Errors
///
/// [`HistoryError::Write`] when any step fails; the old file is then intact.
pub fn save(path: &Path, log: &CallLog) -> Result<(), HistoryError> {
    let err = |source| HistoryError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(err)?;
    file.write_all(log.to_text().as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

/// A call being followed from its first state to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    peer: String,
    direction: Direction,
    start: u64,
    answered: Option<Instant>,
    accepted: bool,
}

/// Turns the call-state transitions the engine reports into [`Entry`]s.
#[derive(Debug, Default)]
pub struct Tracker {
    pending: Option<Pending>,
}

impl Tracker {
    /// Follows a new call state; `nick_of` names an id from the roster. A
    /// call that starts (dialing or ringing) replaces one whose end was never
    /// reported (the engine was replaced).
    pub fn on_state(
        &mut self,
        state: &CallState,
        now: SystemTime,
        nick_of: impl Fn(ClientId) -> Option<String>,
    ) {
        let start = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let new =
            |peer: String, direction| Pending { peer, direction, start, answered: None, accepted: false };
        match (state, &mut self.pending) {
            (CallState::Dialing { target }, _) => {
                self.pending = Some(new(target.clone(), Direction::Outgoing))
            }
            (CallState::Ringing { caller, nick }, _) => {
                let peer = nick.clone().unwrap_or_else(|| caller.to_string());
                self.pending = Some(new(peer, Direction::Incoming));
            }
            (CallState::Calling { callee, .. }, Some(p)) => {
                if let Some(nick) = nick_of(*callee) {
                    p.peer = nick;
                }
            }
            (CallState::Connecting { .. }, Some(p)) => p.accepted = true,
            (CallState::Active { since, .. }, Some(p)) => p.answered = Some(*since),
            _ => {}
        }
    }

    /// The call ended for `reason`: its entry, if one was being followed.
    pub fn on_end(&mut self, reason: EndReason, now: Instant) -> Option<Entry> {
        let p = self.pending.take()?;
        let outcome = match (p.answered, p.direction, reason) {
            (Some(since), _, _) => Outcome::Answered(now.saturating_duration_since(since)),
            (None, _, _) if p.accepted => Outcome::Failed,
            (None, Direction::Incoming, EndReason::LocalDecline) => Outcome::Declined,
            (None, Direction::Incoming, _) => Outcome::Missed,
            (None, Direction::Outgoing, EndReason::Declined) => Outcome::Declined,
            (None, Direction::Outgoing, EndReason::LocalHangup | EndReason::Timeout) => Outcome::Unanswered,
            (None, Direction::Outgoing, _) => Outcome::Failed,
        };
        Some(Entry { peer: p.peer, direction: p.direction, outcome, start: p.start })
    }
}

/// A call's length as `m:ss`, or `h:mm:ss` from an hour on.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests;
