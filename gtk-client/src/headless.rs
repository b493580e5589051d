//! Headless mode: connect, optionally call or answer, run the call, hang up,
//! and summarise it as one JSON line. Runs on the main thread; a small
//! `events` thread forwards engine events, and timers and signals join them
//! in one channel, so the loop below is the only decision maker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::call::{CallState, EndReason};
use crate::engine::{Engine, Event, PartyStats, PeerMedia};
use crate::media::{MediaSetup, StatsSnapshot};

/// What to do once connected.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Call this target.
    pub call: Option<String>,
    /// Answer the first incoming call.
    pub answer: bool,
    /// Hang up after this long in the call (or, with no call, quit after it).
    pub duration: Option<Duration>,
    /// `--mute`: every call starts muted (and the peer is told).
    pub mute: bool,
    /// `--camera-off`: every call starts with the camera off.
    pub camera_off: bool,
    /// `--camera-off-after`: turn the camera off this long into the call
    /// (it stays off for later calls, as V in the window).
    pub camera_off_after: Option<Duration>,
    /// A nick was asked for: wait until the server accepts it before calling.
    pub wait_for_name: bool,
    /// `--reconnect`: when the connection is lost, connect again with backoff
    /// and keep answering (a caller does not dial again).
    pub reconnect: Option<Reconnect>,
    /// `--invite`: once in a call, invite these into it, one after the other
    /// (each after the previous one joined or declined).
    pub invite: Vec<String>,
}

/// What it takes to connect again.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// The server, `HOST:PORT`.
    pub server: String,
    /// The nick to claim again.
    pub nick: Option<String>,
    /// The media setup, resolved once at start.
    pub setup: MediaSetup,
}

/// The first reconnect waits this long; each failure doubles it, up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between reconnect attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(8);

/// The most notices the summary keeps (the log has them all).
const MAX_NOTICES: usize = 200;

/// The final JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Our id as the server saw it.
    pub id: Option<String>,
    /// Why the run ended: a [`EndReason::as_str`] or `no-call`, `name-rejected`, `connection-lost`.
    pub end_reason: String,
    /// How long the call was active, in seconds.
    pub call_seconds: f64,
    /// The H.264 encoder used.
    pub video_encoder: &'static str,
    /// The H.264 decoder used.
    pub video_decoder: &'static str,
    /// What video was sent: `camera:/dev/videoN`, `pipewire:SERIAL:NAME`,
    /// `test:PATTERN` or `none`; after a source failed mid-call, its fallback.
    pub video_source: String,
    /// What audio was sent: `mic`, `tone:HZ`, `silence` or `none`; after a
    /// source failed mid-call, its fallback.
    pub audio_source: String,
    /// The call's statistics.
    #[serde(flatten)]
    pub stats: StatsSnapshot,
    /// The peer's microphone and camera switches, as it last told us.
    pub peer_media: PeerMedia,
    /// In a group call, what came from each party after the first (the
    /// first party's is in the fields above); empty in a two-party call.
    pub parties: Vec<PartyStats>,
    /// Notices: codec choice, device fallbacks, media problems.
    pub notices: Vec<String>,
}

/// Exit code: the call ran and ended normally, or no call was asked for.
pub const EXIT_OK: u8 = 0;
/// Exit code: the connection failed or was lost.
pub const EXIT_CONNECTION: u8 = 1;
/// Exit code: the call was refused, declined, or never started.
pub const EXIT_CALL_FAILED: u8 = 2;

enum Wake {
    Event(Box<Event>),
    Deadline,
    Signal,
    EventsClosed,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM hang up cleanly instead of killing the process.
fn catch_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Runs the plan and returns the summary and the exit code. With
/// [`Plan::reconnect`], a lost connection is followed by a new engine
/// (after [`backoff`]) and the plan goes on; the summary is the last call's.
pub fn run(engine: Engine, plan: &Plan) -> (Summary, u8) {
    catch_signals();
    let mut engine = engine;
    let mut notices = Vec::new();
    let mut first = true;
    loop {
        let (summary, code) = run_one(&engine, plan, first, std::mem::take(&mut notices));
        engine.shutdown();
        let lost = code == EXIT_CONNECTION && summary.end_reason != "name-rejected";
        let (Some(again), true) = (&plan.reconnect, lost) else { return (summary, code) };
        notices = summary.notices.clone();
        match reconnect(again, &mut notices) {
            Some(e) => engine = e,
            None => return (summary, code),
        }
        first = false;
    }
}

/// Connects again, waiting [`backoff`] before each attempt; `None` if a signal came first.
fn reconnect(how: &Reconnect, notices: &mut Vec<String>) -> Option<Engine> {
    let mut note = |text: String| {
        log(&text);
        notices.push(text);
    };
    for attempt in 1.. {
        let wait = backoff(attempt);
        note(format!("reconnecting to {} in {:.2} s (attempt {attempt})", how.server, wait.as_secs_f64()));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if SIGNALLED.load(Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(
                until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)),
            );
        }
        match Engine::start_with_setup(&how.server, how.nick.clone(), how.setup.clone()) {
            Ok(engine) => {
                note(format!("reconnected to {} (attempt {attempt})", how.server));
                return Some(engine);
            }
            Err(e) => note(format!("reconnect attempt {attempt} failed: {e}")),
        }
    }
    None
}

/// The wait before reconnect attempt `attempt` (from 1): doubling from
/// [`RECONNECT_FIRST`] up to [`RECONNECT_MAX`], less up to a fifth at random
/// so that clients of a restarted server do not all come back at once.
pub fn backoff(attempt: u32) -> Duration {
    let base = RECONNECT_FIRST.saturating_mul(1 << attempt.clamp(1, 16).saturating_sub(1)).min(RECONNECT_MAX);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    base - base / 5 * (nanos % 1000) / 1000
}

/// One engine's share of the plan.
fn run_one(engine: &Engine, plan: &Plan, first: bool, notices: Vec<String>) -> (Summary, u8) {
    // A rendezvous: events wait in the engine's channel, where the engine
    // sees this loop fall behind (engine/bounds.rs), not in a second queue.
    let (tx, rx) = mpsc::sync_channel(0);
    let events = engine.events();
    let fwd = tx.clone();
    std::thread::spawn(move || {
        while let Ok(ev) = events.recv_blocking() {
            if fwd.send(Wake::Event(Box::new(ev))).is_err() {
                return;
            }
        }
        let _ = fwd.send(Wake::EventsClosed);
    });
    // Set before any call (of this engine, after a reconnect too), so that
    // calls start with them and the peer is told.
    engine.set_muted(plan.mute);
    engine.set_camera_enabled(!plan.camera_off);
    let mut run = Run::new(engine, plan);
    run.notices = notices;
    // After a reconnect a caller does not dial again: it waits, as with no call.
    run.may_dial = first;
    if (plan.call.is_none() || !first) && !plan.answer {
        run.deadline = plan.duration.map(|d| Instant::now() + d);
    }
    while run.outcome.is_none() {
        run.switch_camera_when_due();
        let wait = run.deadline.map_or(Duration::from_millis(100), |d| {
            d.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))
        });
        let wake = match rx.recv_timeout(wait) {
            Ok(w) => w,
            Err(mpsc::RecvTimeoutError::Timeout) if SIGNALLED.swap(false, Ordering::SeqCst) => Wake::Signal,
            Err(mpsc::RecvTimeoutError::Timeout) if run.deadline.is_some_and(|d| Instant::now() >= d) => {
                run.deadline = None;
                Wake::Deadline
            }
            Err(_) => continue,
        };
        run.on_wake(wake);
    }
    let (reason, code) = run.outcome.take().unwrap_or(("no-call".into(), EXIT_OK));
    let summary = run.summary(reason);
    (summary, code)
}

struct Run<'a> {
    engine: &'a Engine,
    plan: &'a Plan,
    id: Option<String>,
    started: Option<Instant>,
    call_seconds: f64,
    deadline: Option<Instant>,
    /// When to turn the camera off (`--camera-off-after`).
    camera_off_at: Option<Instant>,
    answered: bool,
    dialed: bool,
    may_dial: bool,
    stats: Option<StatsSnapshot>,
    parties: Vec<PartyStats>,
    peer_media: PeerMedia,
    notices: Vec<String>,
    outcome: Option<(String, u8)>,
    /// `--invite` targets not invited yet.
    to_invite: std::collections::VecDeque<String>,
    /// An invitation of ours is ringing.
    inviting: bool,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine, plan: &'a Plan) -> Run<'a> {
        Run {
            engine,
            plan,
            id: None,
            started: None,
            call_seconds: 0.0,
            deadline: None,
            camera_off_at: None,
            answered: false,
            dialed: false,
            may_dial: true,
            stats: None,
            parties: Vec::new(),
            peer_media: PeerMedia::default(),
            notices: Vec::new(),
            outcome: None,
            to_invite: plan.invite.iter().cloned().collect(),
            inviting: false,
        }
    }

    /// Invites the next `--invite` target, once in a call and when no
    /// invitation of ours is ringing.
    fn invite_next(&mut self) {
        if self.inviting || self.started.is_none() {
            return;
        }
        if let Some(target) = self.to_invite.pop_front() {
            log(&format!("inviting {target}"));
            self.inviting = true;
            self.engine.invite(&target);
        }
    }

    fn on_wake(&mut self, wake: Wake) {
        match wake {
            Wake::Event(ev) => self.on_event(*ev),
            Wake::Deadline | Wake::Signal if self.started.is_some() || self.dialed => self.engine.hangup(),
            Wake::Deadline | Wake::Signal => self.outcome = Some(("no-call".into(), EXIT_OK)),
            Wake::EventsClosed => self.outcome = Some(("connection-lost".into(), EXIT_CONNECTION)),
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connected { id } => {
                self.id = Some(id.to_string());
                log(&format!("connected as {id}"));
                if !self.plan.wait_for_name {
                    self.ready();
                }
            }
            Event::NameAccepted(nick) => {
                log(&format!("name accepted: {nick}"));
                self.ready();
            }
            Event::NameRejected(code) => {
                log(&format!("name rejected: {code}"));
                self.outcome = Some(("name-rejected".into(), EXIT_CONNECTION));
            }
            Event::Incoming { caller, nick } => {
                log(&format!("incoming call from {caller} ({})", nick.as_deref().unwrap_or("-")));
                let accept = self.plan.answer && !self.answered;
                self.answered |= accept;
                self.engine.answer(accept);
            }
            // A party joining or leaving a group call changes the state too.
            Event::CallChanged(CallState::Active { .. }) if self.started.is_some() => {}
            Event::CallChanged(CallState::Active { peer, .. }) => {
                log(&format!("call started with {peer}"));
                self.started = Some(Instant::now());
                self.deadline = self.plan.duration.map(|d| Instant::now() + d);
                self.camera_off_at = self.plan.camera_off_after.map(|d| Instant::now() + d);
                self.invite_next();
            }
            Event::CallChanged(state) => log(&format!("call state: {state:?}")),
            Event::CallEnded { reason, stats, parties } => {
                self.parties = parties;
                self.on_end(reason, *stats);
            }
            Event::Inviting(id) => log(&format!("invitation ringing at {id}")),
            Event::IncomingWith { id, nick } => {
                log(&format!("{id} ({}) is in the call we are asked into", nick.as_deref().unwrap_or("-")))
            }
            Event::InviteRefused(why) => {
                log(&format!("invitation refused: {why}"));
                self.inviting = false;
                self.invite_next();
            }
            Event::Joined { id, nick, .. } => {
                log(&format!("{id} ({}) joined the call", nick.as_deref().unwrap_or("-")));
                self.inviting = false;
                self.invite_next();
            }
            Event::Declined { id, reason } => {
                log(&format!("{id} did not join: {reason}"));
                self.inviting = false;
                self.invite_next();
            }
            Event::Left { id, reason } => log(&format!("{id} left the call ({})", reason.as_str())),
            Event::Disconnected(why) => {
                log(&format!("disconnected: {why}"));
                if self.outcome.is_none() {
                    self.outcome = Some(("connection-lost".into(), EXIT_CONNECTION));
                }
            }
            Event::Notice(text) | Event::MediaProblem(text) => {
                let text = crate::text::escape(&text, crate::text::Kind::Chat).into_owned();
                log(&text);
                // A flooding server must not grow the summary without bound.
                match self.notices.len() {
                    n if n < MAX_NOTICES => self.notices.push(text),
                    MAX_NOTICES => self.notices.push("later notices were not kept; see the log".into()),
                    _ => {}
                }
            }
            Event::ServerError { code, text } => {
                log(&format!("server error: {code} {}", text.unwrap_or_default()))
            }
            Event::Message { from: None, text } => log(&format!("message: {text}")),
            Event::Message { from: Some(id), text } => log(&format!("message from {id}: {text}")),
            Event::PartyMedia { id, media } => {
                log(&format!("{id}: muted {}, camera off {}", media.muted, media.camera_off))
            }
            Event::Speaker(id) => match id {
                Some(id) => log(&format!("speaker: {id}")),
                None => log("speaker: nobody"),
            },
            Event::PeerMedia(peer) => {
                log(&format!("peer: muted {}, camera off {}", peer.muted, peer.camera_off));
                self.peer_media = peer;
            }
            Event::Clients(_) | Event::Presence { .. } => {}
        }
    }

    /// Turns the camera off once `--camera-off-after` is over (to the
    /// 100 ms the loop sleeps at most).
    fn switch_camera_when_due(&mut self) {
        if self.camera_off_at.is_some_and(|at| Instant::now() >= at) {
            self.camera_off_at = None;
            log("turning the camera off");
            self.engine.set_camera_enabled(false);
        }
    }

    fn ready(&mut self) {
        log("ready");
        if let (Some(target), false, true) = (&self.plan.call, self.dialed, self.may_dial) {
            self.dialed = true;
            self.engine.call(target);
        }
    }

    fn on_end(&mut self, reason: EndReason, stats: StatsSnapshot) {
        log(&format!("call ended: {}", reason.as_str()));
        let was_active = self.started.is_some();
        if let Some(t) = self.started.take() {
            self.call_seconds = t.elapsed().as_secs_f64();
        }
        self.stats = Some(stats);
        let code = match reason {
            EndReason::ConnectionLost => EXIT_CONNECTION,
            _ if was_active => EXIT_OK,
            EndReason::LocalDecline | EndReason::Cancelled | EndReason::Timeout if !self.dialed => EXIT_OK,
            _ => EXIT_CALL_FAILED,
        };
        // An answering client that declined a second caller keeps waiting.
        if reason == EndReason::LocalDecline && self.answered {
            return;
        }
        self.outcome = Some((reason.as_str().into(), code));
    }

    fn summary(&self, end_reason: String) -> Summary {
        let setup: &MediaSetup = self.engine.media();
        let stats = self.stats.clone().unwrap_or_else(|| self.engine.stats());
        Summary {
            id: self.id.clone(),
            end_reason,
            call_seconds: self.call_seconds,
            video_encoder: setup.encoder_name(),
            video_decoder: setup.decoder_name(),
            video_source: stats.video_fallback.clone().unwrap_or_else(|| setup.video_in.to_string()),
            audio_source: stats.audio_fallback.clone().unwrap_or_else(|| setup.audio_in.to_string()),
            stats,
            peer_media: self.peer_media,
            parties: self.parties.clone(),
            notices: self.notices.clone(),
        }
    }
}

/// Prints a line to stderr. Much of it quotes the server or the peer, so bidi
/// and invisible characters are escaped ([`crate::text`]).
fn log(text: &str) {
    eprintln!("komunikator: {}", crate::text::escape(text, crate::text::Kind::Chat));
}
