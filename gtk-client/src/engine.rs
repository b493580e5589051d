//! The engine: one control thread that owns the call state and the call's
//! media, and the public API a GUI (or the headless runner) drives.
//!
//! Threads: the caller's thread creates the [`Engine`]; the `control` thread
//! consumes every input (server messages from `net`, media events from the
//! pipelines, commands from [`EngineHandle`]) from one channel, in order, and
//! is the only thread that changes [`CallState`] or starts and stops
//! pipelines. It publishes [`Event`]s on an async-channel: a GTK main loop
//! awaits them with `recv().await`, a plain thread with `recv_blocking()`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, Command, ErrorCode, Presence, Target, is_valid_nick};

use crate::call::{Action, CallInput, CallState, EndReason, Send};
use crate::media::session::Controls;
use crate::media::{
    CallMedia, FrameRoute, MediaError, MediaEvent, MediaOptions, MediaSetup, Notify, SourceFailure, Stats,
    StatsSnapshot,
};
use crate::net::{Connection, NetError, NetEvent, PeerInfo};

/// Keyframe requests to the peer are at most this frequent.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Keyframes forced on our encoder are at most this frequent.
const KEYFRAME_FORCE_INTERVAL: Duration = Duration::from_millis(200);
/// The longest chat line sent, in bytes (the protocol's line limit is 1024).
const MAX_MSG_BYTES: usize = 1000;

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
    },
    /// A chat line from the peer.
    Message(String),
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

/// A command from the API.
#[derive(Debug)]
enum UserCommand {
    Name(String),
    Refresh,
    Call(String),
    Answer(bool),
    Hangup,
    Msg(String),
    SetMuted(bool),
    SetCamera(bool),
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
        let route = Arc::new(FrameRoute::default());
        let net_tx = tx.clone();
        let conn = Connection::open(server, move |ev| drop(net_tx.send(Input::Net(ev))), route.clone())?;
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
        let mut control = Control {
            state: CallState::Idle,
            media: None,
            setup: setup.clone(),
            conn: Some(conn),
            route,
            stats: stats.clone(),
            events: events_tx,
            notify,
            controls: Controls::default(),
            nick,
            last_request: None,
            last_forced: None,
            inject: None,
        };
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

/// The control thread's state.
struct Control {
    state: CallState,
    media: Option<CallMedia>,
    setup: Arc<MediaSetup>,
    conn: Option<Connection>,
    route: Arc<FrameRoute>,
    stats: Arc<Mutex<Arc<Stats>>>,
    events: async_channel::Sender<Event>,
    notify: Notify,
    controls: Controls,
    nick: Option<String>,
    last_request: Option<Instant>,
    last_forced: Option<Instant>,
    /// `--inject-source-failure` (tests only): what fails, and when, in this call.
    inject: Option<(SourceFailure, Instant)>,
}

impl Control {
    fn run(&mut self, rx: &mpsc::Receiver<Input>) {
        loop {
            let input = match self.next_timer() {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(input) => Some(input),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(input) => Some(input),
                    Err(_) => break,
                },
            };
            match input {
                Some(Input::Net(ev)) => self.on_net(ev),
                Some(Input::Media(ev)) => self.on_media(ev),
                Some(Input::User(cmd)) => self.on_user(cmd),
                Some(Input::Shutdown) => break,
                None => {}
            }
            self.on_timers();
        }
        if !self.state.is_idle() {
            self.step(CallInput::Hangup);
        }
        if let Some(media) = self.media.take() {
            media.stop();
        }
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
    }

    fn emit(&self, event: Event) {
        let _ = self.events.try_send(event);
    }

    fn current_stats(&self) -> Arc<Stats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn command(&self, cmd: &Command<'_>) {
        if let Some(conn) = &self.conn {
            // A closed connection is reported by the net threads.
            let _ = conn.writer().command(cmd);
        }
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Hello { id, .. } => {
                self.emit(Event::Connected { id });
                if let Some(nick) = self.nick.take() {
                    self.on_user(UserCommand::Name(nick));
                }
            }
            NetEvent::NameOk(nick) => self.emit(Event::NameAccepted(nick)),
            NetEvent::Clients(list) => self.emit(Event::Clients(list)),
            NetEvent::Presence { id, state, nick } => self.emit(Event::Presence { id, state, nick }),
            NetEvent::Calling(id) => self.step(CallInput::Calling(id)),
            NetEvent::Ask { id, nick } => {
                let was_idle = self.state.is_idle();
                self.step(CallInput::Asked { caller: id, nick: nick.clone() });
                if was_idle {
                    self.emit(Event::Incoming { caller: id, nick });
                }
            }
            NetEvent::AskYes => self.step(CallInput::AskYes),
            NetEvent::AskNo => self.step(CallInput::AskNo),
            NetEvent::Busy(_) => self.step(CallInput::Busy),
            NetEvent::Start(peer) => self.step(CallInput::Start(peer)),
            NetEvent::Stop(reason) => self.step(CallInput::Stop(reason)),
            NetEvent::Keyframe => self.force_keyframe(),
            NetEvent::Msg(text) => self.emit(Event::Message(text)),
            NetEvent::Pong | NetEvent::AuthOk => {}
            NetEvent::Error { code: code @ (ErrorCode::NameTaken | ErrorCode::BadName), .. } => {
                self.emit(Event::NameRejected(code));
            }
            // Frames already queued when a call ends are answered with this.
            NetEvent::Error { code: ErrorCode::NotInCall, .. } if self.state.is_idle() => {}
            NetEvent::Error { code, text } => {
                self.step(CallInput::Error(code));
                self.emit(Event::ServerError { code, text });
            }
            NetEvent::Invalid(text) => {
                self.emit(Event::Notice(format!("ignored a line from the server: {text}")))
            }
            NetEvent::Closed(reason) => {
                self.step(CallInput::ConnectionLost);
                self.emit(Event::Disconnected(reason));
            }
        }
    }

    fn on_media(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::KeyframeWanted => self.request_keyframe(),
            MediaEvent::Error { pipeline, generation, message } => {
                if let Some(media) = &mut self.media {
                    // Errors of an instance already replaced are old news.
                    if media.failed(pipeline, generation, Instant::now()) {
                        self.emit(Event::MediaProblem(format!("{pipeline}: error: {message}")));
                    }
                }
            }
            MediaEvent::Ended { pipeline, generation } => {
                if let Some(media) = &mut self.media {
                    if media.failed(pipeline, generation, Instant::now()) {
                        self.emit(Event::MediaProblem(format!("{pipeline}: the source ended")));
                    }
                }
            }
            MediaEvent::Warning { pipeline, message } => {
                self.emit(Event::MediaProblem(format!("{pipeline}: warning: {message}")));
            }
        }
    }

    fn on_user(&mut self, cmd: UserCommand) {
        match cmd {
            UserCommand::Name(nick) if is_valid_nick(&nick) => self.command(&Command::Name(&nick)),
            UserCommand::Name(_) => self.emit(Event::NameRejected(ErrorCode::BadName)),
            UserCommand::Refresh => self.command(&Command::Refresh),
            UserCommand::Call(target) if parse_target(&target).is_some() => {
                self.step(CallInput::Dial(target))
            }
            UserCommand::Call(target) => self.emit(Event::Notice(format!(
                "cannot call {target:?}: give an id (IP:PORT), an IP address or a nick"
            ))),
            UserCommand::Answer(yes) => self.step(CallInput::Answer(yes)),
            UserCommand::Hangup => self.step(CallInput::Hangup),
            UserCommand::Msg(text) => self.send_msg(&text),
            UserCommand::SetMuted(muted) => {
                self.controls.muted = muted;
                if let Some(m) = &mut self.media {
                    m.set_muted(muted);
                }
            }
            UserCommand::SetCamera(enabled) => {
                self.controls.camera_enabled = enabled;
                if let Some(m) = &mut self.media {
                    m.set_camera_enabled(enabled);
                }
            }
        }
    }

    fn send_msg(&self, text: &str) {
        if !matches!(self.state, CallState::Active { .. }) {
            return self.emit(Event::Notice("messages can be sent only during a call".into()));
        }
        let line = one_line(text, MAX_MSG_BYTES);
        if !line.is_empty() {
            self.command(&Command::Msg(&line));
        }
    }

    /// Feeds the state machine and carries out its actions.
    fn step(&mut self, input: CallInput) {
        let (next, actions) = self.state.step(input);
        let changed = next != self.state;
        self.state = next;
        for action in actions {
            self.act(action);
        }
        if changed {
            self.emit(Event::CallChanged(self.state.clone()));
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Send(Send::Connect(target)) => {
                if let Some(t) = parse_target(&target) {
                    self.command(&Command::Connect(t));
                }
            }
            Action::Send(Send::AskYes) => self.command(&Command::AskYes),
            Action::Send(Send::AskNo) => self.command(&Command::AskNo),
            Action::Send(Send::Stop) => self.command(&Command::Stop),
            Action::StartMedia(_) => self.start_media(),
            Action::StopMedia => {
                if let Some(m) = self.media.take() {
                    m.stop();
                }
            }
            Action::Ended(reason) => {
                let stats = Box::new(self.current_stats().snapshot());
                self.emit(Event::CallEnded { reason, stats });
            }
            Action::Ignored(why) => self.emit(Event::Notice(why.into())),
        }
    }

    fn start_media(&mut self) {
        let Some(conn) = &self.conn else { return };
        let stats = Arc::new(Stats::default());
        if let Ok(mut s) = self.stats.lock() {
            *s = stats.clone();
        }
        let (media, notices) = CallMedia::start(
            &self.setup,
            conn.writer(),
            self.route.clone(),
            stats,
            self.notify.clone(),
            self.controls,
        );
        for n in notices {
            self.emit(Event::Notice(n));
        }
        self.media = Some(media);
        self.inject = self.setup.options.inject_source_failure.map(|f| (f, Instant::now() + f.after));
        self.last_request = None;
        self.request_keyframe();
    }

    /// The next time something is due: a pipeline rebuild or an injected failure.
    fn next_timer(&self) -> Option<Instant> {
        let restart = self.media.as_ref().and_then(CallMedia::next_restart);
        let inject = self.inject.filter(|_| self.media.is_some()).map(|(_, at)| at);
        restart.into_iter().chain(inject).min()
    }

    /// Rebuilds failed pipelines that are due, and injects a test failure when it is time.
    fn on_timers(&mut self) {
        let Some(media) = &mut self.media else { return };
        let now = Instant::now();
        if let Some((failure, _)) = self.inject.filter(|(_, at)| *at <= now) {
            self.inject = None;
            if let Some(what) = media.inject_source_failure(failure) {
                self.emit(Event::Notice(what));
            }
        }
        let Some(media) = &mut self.media else { return };
        if media.next_restart().is_none_or(|at| at > now) {
            return;
        }
        for restarted in media.restart_due(now) {
            self.emit(Event::MediaProblem(restarted.notice));
            if restarted.wants_keyframe {
                self.request_keyframe();
            }
        }
    }

    /// Asks the peer for a keyframe, at most every [`KEYFRAME_REQUEST_INTERVAL`].
    fn request_keyframe(&mut self) {
        if !matches!(self.state, CallState::Active { .. }) {
            return;
        }
        if self.last_request.is_some_and(|t| t.elapsed() < KEYFRAME_REQUEST_INTERVAL) {
            return;
        }
        self.last_request = Some(Instant::now());
        self.current_stats().keyframes_requested.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.command(&Command::Keyframe);
    }

    /// Forces a keyframe on our encoder, at most every [`KEYFRAME_FORCE_INTERVAL`].
    fn force_keyframe(&mut self) {
        let Some(media) = &self.media else { return };
        if self.last_forced.is_some_and(|t| t.elapsed() < KEYFRAME_FORCE_INTERVAL) {
            return;
        }
        self.last_forced = Some(Instant::now());
        self.current_stats().keyframes_forced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        media.force_keyframe();
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
