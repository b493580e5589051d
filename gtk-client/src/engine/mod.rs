//! The engine: one control thread that owns the call state and the call's
//! media, and the public API a GUI (or the headless runner) drives.
//!
//! Threads: the caller's thread creates the [`Engine`]; the `control` thread
//! consumes every input (server messages from `net`, media events from the
//! pipelines, commands from [`EngineHandle`]) from one channel, in order, and
//! is the only thread that changes [`CallState`] or starts and stops
//! pipelines (`engine/control.rs`). It publishes [`Event`]s on an
//! async-channel: a GTK main loop awaits them with `recv().await`, a plain
//! thread with `recv_blocking()`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use komunikator_protocol::{ClientId, ErrorCode, Presence, Target, is_valid_nick};

use crate::call::{CallState, EndReason};
use crate::media::{
    FrameRoute, MediaError, MediaEvent, MediaOptions, MediaSetup, Notify, Stats, StatsSnapshot,
};
use crate::net::{Connection, NetError, NetEvent, PeerInfo};

pub mod bounds;
mod control;
mod group;
mod speaker;
mod switches;
use bounds::{NetGate, Outbox};
use control::Control;
pub use switches::PeerMedia;

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The server as `HOST:PORT`.
    pub server: String,
    /// A nick to claim once connected.
    pub nick: Option<String>,
    /// Media choices.
    pub media: MediaOptions,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The media engine could not be set up.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The server could not be reached.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// What the engine tells its user. Plain data: no GObject crosses threads.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server greeted us.
    Connected {
        /// Our id as the server sees it.
        id: ClientId,
    },
    /// Something worth a line in a log or a toast: codec choice, device fallback.
    Notice(String),
    /// The server accepted our nick.
    NameAccepted(String),
    /// The server refused our nick (`name-taken` or `bad-name`).
    NameRejected(ErrorCode),
    /// The list asked for with [`EngineHandle::refresh`].
    Clients(Vec<PeerInfo>),
    /// Another client joined, changed or left.
    Presence {
        /// Whose presence changed.
        id: ClientId,
        /// Its new presence.
        state: Presence,
        /// Its nick.
        nick: Option<String>,
    },
    /// The call state changed; a window's `update_view()` matches on it.
    CallChanged(CallState),
    /// Someone is calling; answer with [`EngineHandle::answer`].
    Incoming {
        /// The caller's id.
        caller: ClientId,
        /// The caller's nick.
        nick: Option<String>,
    },
    /// A call (or an attempt at one) ended.
    CallEnded {
        /// Why.
        reason: EndReason,
        /// The call's statistics.
        stats: Box<StatsSnapshot>,
        /// In a group call, what came from each party that joined after the
        /// first (the first party's is in `stats`).
        parties: Vec<PartyStats>,
    },
    /// Right after [`Event::Incoming`], when it is an invitation into a
    /// group call: one more party already in that call.
    IncomingWith {
        /// That party.
        id: ClientId,
        /// Its nick.
        nick: Option<String>,
    },
    /// Our invitation is ringing at `id` (group calls).
    Inviting(ClientId),
    /// The server refused our invitation before it rang (`busy`, or an
    /// error such as `room-full` or `not-supported`); the text says why.
    InviteRefused(String),
    /// A party joined our call (group calls).
    Joined {
        /// The party.
        id: ClientId,
        /// Its nick.
        nick: Option<String>,
        /// Which of the GUI's party sinks shows its pictures (`None`: none free).
        tile: Option<usize>,
    },
    /// A party left our call, which goes on (group calls).
    Left {
        /// The party.
        id: ClientId,
        /// Why.
        reason: komunikator_protocol::StopReason,
    },
    /// In a call of three or more, who speaks now (`None`: nobody yet, or
    /// the speaker left); chosen so that it changes at most every two
    /// seconds (see `engine/speaker.rs`). A window shows that party larger.
    Speaker(Option<ClientId>),
    /// Our invitation did not end in a join.
    Declined {
        /// Whom we invited.
        id: ClientId,
        /// Why.
        reason: komunikator_protocol::DeclineReason,
    },
    /// A chat line from the peer.
    Message {
        /// Who wrote it, in a group call (`None`: the peer of a two-party call).
        from: Option<ClientId>,
        /// The line.
        text: String,
    },
    /// The peer muted or unmuted its microphone, or turned its camera off
    /// or on; also sent, with both on, when a call starts.
    PeerMedia(PeerMedia),
    /// A party of a group call other than the first muted or unmuted,
    /// or turned its camera off or on (the first party's are [`Event::PeerMedia`]).
    PartyMedia {
        /// The party.
        id: ClientId,
        /// Its switches now.
        media: PeerMedia,
    },
    /// An error line from the server that is not about the call.
    ServerError {
        /// The code.
        code: ErrorCode,
        /// The text.
        text: Option<String>,
    },
    /// A pipeline reported an error or warning.
    MediaProblem(String),
    /// The connection to the server ended; the engine is of no further use.
    Disconnected(String),
}

/// What came from one party of a group call that joined after the first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PartyStats {
    /// The party's id.
    pub id: String,
    /// Its nick, if it had one.
    pub nick: Option<String>,
    /// What it sent us and we decoded (the sending fields are ours, zero here).
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// A command from the API.
#[derive(Debug)]
enum UserCommand {
    Name(String),
    Refresh,
    Call(String),
    Invite(String),
    Answer(bool),
    Hangup,
    Msg(String),
    SetMuted(bool),
    SetCamera(bool),
    BlockCaller,
}

/// Everything the control thread consumes.
enum Input {
    Net(NetEvent),
    Media(MediaEvent),
    User(UserCommand),
    Shutdown,
}

/// A cheap, cloneable, `Send` handle for commands. Commands never block.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Input>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

impl EngineHandle {
    fn user(&self, cmd: UserCommand) {
        // Fails only after shutdown, when there is nobody left to tell.
        let _ = self.tx.send(Input::User(cmd));
    }

    /// Claims a nick (`name`).
    pub fn set_name(&self, nick: &str) {
        self.user(UserCommand::Name(nick.to_owned()));
    }

    /// Asks for the list of other clients; answered by [`Event::Clients`].
    pub fn refresh(&self) {
        self.user(UserCommand::Refresh);
    }

    /// Calls `target`: an id (`IP:PORT`), a bare IP, or a nick.
    pub fn call(&self, target: &str) {
        self.user(UserCommand::Call(target.to_owned()));
    }

    /// Accepts or declines the incoming call.
    pub fn answer(&self, accept: bool) {
        self.user(UserCommand::Answer(accept));
    }

    /// Declines the incoming call and asks the server to stop `ask` prompts
    /// from the caller's address for the rest of this connection (`block`).
    pub fn block_caller(&self) {
        self.user(UserCommand::BlockCaller);
    }

    /// Invites `target` (id, IP or nick) into the call in progress (group calls).
    pub fn invite(&self, target: &str) {
        self.user(UserCommand::Invite(target.to_owned()));
    }

    /// Hangs up, cancels a call being placed, or declines one ringing.
    pub fn hangup(&self) {
        self.user(UserCommand::Hangup);
    }

    /// Sends a chat line to the peer (newlines become spaces; long text is cut).
    pub fn send_msg(&self, text: &str) {
        self.user(UserCommand::Msg(text.to_owned()));
    }

    /// Mutes or unmutes the microphone, now and for later calls.
    pub fn set_muted(&self, muted: bool) {
        self.user(UserCommand::SetMuted(muted));
    }

    /// Turns the camera on or off, now and for later calls.
    pub fn set_camera_enabled(&self, enabled: bool) {
        self.user(UserCommand::SetCamera(enabled));
    }
}

/// A running engine. Dropping it hangs up and closes the connection.
pub struct Engine {
    handle: EngineHandle,
    events: async_channel::Receiver<Event>,
    control: Option<JoinHandle<()>>,
    stats: Arc<Mutex<Arc<Stats>>>,
    setup: Arc<MediaSetup>,
}

impl std::ops::Deref for Engine {
    type Target = EngineHandle;
    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}

impl Engine {
    /// Sets up media (codec smoke tests, device checks) and connects.
    ///
    /// # Errors
    /// [`EngineError`] when GStreamer or a forced codec fails, or the server
    /// cannot be reached.
    pub fn start(options: EngineOptions) -> Result<Engine, EngineError> {
        let setup = MediaSetup::resolve(options.media)?;
        Engine::start_with_setup(&options.server, options.nick, setup)
    }

    /// Connects with an already resolved [`MediaSetup`].
    ///
    /// # Errors
    /// [`EngineError::Net`] when the server cannot be reached.
    pub fn start_with_setup(
        server: &str,
        nick: Option<String>,
        setup: MediaSetup,
    ) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::channel::<Input>();
        let (events_tx, events) = async_channel::unbounded();
        let uplink = crate::net::Uplink::new(setup.options.rate_config());
        let route = Arc::new(FrameRoute::new(uplink.clone()));
        let net_tx = tx.clone();
        let gate = Arc::new(NetGate::new(events_tx.clone()));
        let admit = gate.clone();
        let on_net = move |ev| {
            admit.admit(&ev);
            drop(net_tx.send(Input::Net(ev)))
        };
        let conn = Connection::open(server, on_net, route.clone(), uplink)?;
        for notice in &setup.notices {
            let _ = events_tx.try_send(Event::Notice(notice.clone()));
        }
        let media_tx = Mutex::new(tx.clone());
        let notify: Notify = Arc::new(move |ev| {
            if let Ok(tx) = media_tx.lock() {
                let _ = tx.send(Input::Media(ev));
            }
        });
        let stats = Arc::new(Mutex::new(Arc::new(Stats::default())));
        let setup = Arc::new(setup);
        let outbox = Outbox::new(events_tx, gate);
        let mut control = Control::new(setup.clone(), conn, route, stats.clone(), outbox, notify, nick);
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control.run(&rx))
            .map_err(NetError::Thread)?;
        Ok(Engine { handle: EngineHandle { tx }, events, control: Some(thread), stats, setup })
    }

    /// The event stream. Clone it freely; each event goes to one receiver.
    pub fn events(&self) -> async_channel::Receiver<Event> {
        self.events.clone()
    }

    /// A command handle for other threads or closures.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// The statistics of the current (or last) call.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.lock().map(|s| s.snapshot()).unwrap_or_default()
    }

    /// The codecs and devices in use.
    pub fn media(&self) -> &MediaSetup {
        &self.setup
    }

    /// Hangs up if needed, closes the connection and joins the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.handle.tx.send(Input::Shutdown);
        if let Some(t) = self.control.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses a call target as the protocol defines it.
pub fn parse_target(s: &str) -> Option<Target<'_>> {
    if let Ok(id) = s.parse() {
        Some(Target::Id(id))
    } else if let Ok(ip) = s.parse() {
        Some(Target::Ip(ip))
    } else if is_valid_nick(s) {
        Some(Target::Nick(s))
    } else {
        None
    }
}

/// `text` as one protocol-safe line: control characters become spaces,
/// surrounding space is trimmed, and it is cut to `max` bytes at a character boundary.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use komunikator_protocol::Command;

    use super::control::MAX_MSG_BYTES;
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("127.0.0.1:5"), Some(Target::Id("127.0.0.1:5".parse().unwrap())));
        assert_eq!(parse_target("10.0.0.1"), Some(Target::Ip("10.0.0.1".parse().unwrap())));
        assert_eq!(parse_target("bob"), Some(Target::Nick("bob")));
        assert_eq!(parse_target("bob smith"), None);
        assert_eq!(parse_target(""), None);
    }

    #[test]
    fn chat_lines_are_safe() {
        assert_eq!(one_line(" a\nb\r\tc ", 100), "a b  c");
        assert_eq!(one_line("ąęś", 4), "ąę");
        assert_eq!(one_line("\n", 10), "");
        let mut line = Vec::new();
        Command::Msg(&one_line(&"x\n".repeat(2000), MAX_MSG_BYTES)).encode(&mut line);
        assert!(line.len() <= komunikator_protocol::MAX_LINE);
    }
}
