//! The control thread: the only owner of the call state and the call's
//! media. It consumes every input (server messages, media events, user
//! commands) from one channel, in order, turns them into [`Action`]s through
//! the call state machine, carries those out, and publishes [`Event`]s.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use komunikator_protocol::{ClientId, Command, ErrorCode, MediaKind, MediaState, is_valid_nick};

use super::bounds::Outbox;
use super::group::KeyframeTo;
use super::switches::Switches;
use super::{Event, Input, UserCommand, one_line, parse_target};
use crate::call::{Action, CallInput, CallState, Send};
use crate::media::session::Controls;
use crate::media::{CallMedia, FrameRoute, MediaEvent, MediaSetup, Notify, SourceFailure, Stats};
use crate::net::{Connection, NetEvent};

/// Keyframe requests to the peer are at most this frequent.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Keyframes forced on our encoder are at most this frequent.
const KEYFRAME_FORCE_INTERVAL: Duration = Duration::from_millis(200);
/// The longest chat line sent, in bytes (the protocol's line limit is 1024).
pub(super) const MAX_MSG_BYTES: usize = 1000;

/// The control thread's state.
pub(super) struct Control {
    state: CallState,
    media: Option<CallMedia>,
    setup: Arc<MediaSetup>,
    conn: Option<Connection>,
    route: Arc<FrameRoute>,
    stats: Arc<Mutex<Arc<Stats>>>,
    events: Outbox,
    notify: Notify,
    controls: Controls,
    /// Our switches on the wire and the peer's.
    switches: Switches,
    nick: Option<String>,
    last_request: Option<Instant>,
    last_forced: Option<Instant>,
    /// `--inject-source-failure` (tests only): what fails, and when, in this call.
    inject: Option<(SourceFailure, Instant)>,
    /// The group call in progress: the parties after the first, what each
    /// sent us, and what their links report (see [`super::group`]).
    group: super::group::Group,
    /// The GUI tile the party added last got.
    last_tile: Option<usize>,
    /// Who is speaking, in a call of three or more (see [`super::speaker`]).
    speakers: super::speaker::Speakers,
    /// The party the call started with (`start <id>`): its switches are
    /// [`Switches::peer`], its figures the call's own.
    first: Option<ClientId>,
}

impl Control {
    /// The state of a control thread that has no call yet.
    pub(super) fn new(
        setup: Arc<MediaSetup>,
        conn: Connection,
        route: Arc<FrameRoute>,
        stats: Arc<Mutex<Arc<Stats>>>,
        events: Outbox,
        notify: Notify,
        nick: Option<String>,
    ) -> Control {
        Control {
            state: CallState::Idle,
            media: None,
            setup,
            conn: Some(conn),
            route,
            stats,
            events,
            notify,
            controls: Controls::default(),
            switches: Switches::default(),
            nick,
            last_request: None,
            last_forced: None,
            inject: None,
            group: Default::default(),
            last_tile: None,
            speakers: Default::default(),
            first: None,
        }
    }

    pub(super) fn run(&mut self, rx: &mpsc::Receiver<Input>) {
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
                Some(Input::Net(ev)) => {
                    self.events.gate().taken();
                    self.on_net(ev)
                }
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
        // The `receive` thread may be waiting to hand over a message.
        self.events.gate().close();
        if let Some(conn) = self.conn.take() {
            conn.close();
        }
    }

    fn emit(&self, event: Event) {
        self.events.send(event);
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
                if self.setup.options.group_calls {
                    self.command(&Command::Features(komunikator_protocol::FEATURE_GROUP));
                }
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
                if was_idle {
                    self.group.asked();
                }
                self.step(CallInput::Asked { caller: id, nick: nick.clone() });
                if was_idle {
                    self.emit(Event::Incoming { caller: id, nick });
                }
            }
            NetEvent::AskYes => self.step(CallInput::AskYes),
            NetEvent::AskNo => self.step(CallInput::AskNo),
            NetEvent::Busy(id) if self.group.invite_answered() => {
                self.emit(Event::InviteRefused(format!("{id} is busy")))
            }
            NetEvent::Busy(_) => self.step(CallInput::Busy),
            NetEvent::Start(peer) => {
                self.group.new_call();
                self.set_peer_rate(None);
                self.step(CallInput::Start(peer));
            }
            NetEvent::Stop(reason) => {
                self.set_peer_rate(None);
                self.step(CallInput::Stop(reason));
            }
            NetEvent::Keyframe => self.force_keyframe(),
            // Only while the call is on: a late report must not cap the next call.
            NetEvent::Rate { from, kbps } if self.media.is_some() => {
                let kbps = self.group.rate(from, kbps);
                self.set_peer_rate(kbps);
            }
            NetEvent::Rate { .. } => {}
            NetEvent::Delay { from, ms } if self.media.is_some() => {
                let ms = self.group.delay(from, ms);
                if let Some(conn) = &self.conn {
                    conn.writer().uplink().set_peer_delay(ms);
                }
            }
            NetEvent::Delay { .. } => {}
            NetEvent::Features(on) => self.group.features(on, self.setup.options.group_calls, &self.events),
            NetEvent::Inviting(id) => {
                self.group.invite_answered();
                self.emit(Event::Inviting(id))
            }
            NetEvent::Declined { id, reason } => self.emit(Event::Declined { id, reason }),
            // After `ask`, before `start`: a client that answers at once
            // (headless) may have said yes before it reads them.
            NetEvent::With { id, nick }
                if matches!(self.state, CallState::Ringing { .. } | CallState::Connecting { .. }) =>
            {
                if self.group.with_told() {
                    self.emit(Event::IncomingWith { id, nick })
                }
            }
            NetEvent::With { .. } => {}
            NetEvent::Joined { id, nick } => {
                self.group.joined(id, nick.clone());
                self.last_tile = None;
                self.step(CallInput::Joined(id));
                let tile = self.last_tile.take();
                self.emit(Event::Joined { id, nick, tile });
                if self.media.is_some() {
                    for state in self.switches.off(self.controls) {
                        self.command(&Command::MediaState(state));
                    }
                }
            }
            NetEvent::Left { id, reason } => {
                self.step(CallInput::Left(id));
                let kbps = self.group.left(id);
                self.set_peer_rate(kbps);
                self.emit(Event::Left { id, reason });
            }
            NetEvent::MediaState { from, state } => self.on_peer_switch(from, state),
            NetEvent::Blocked(target) => {
                self.emit(Event::Notice(format!("no more calls from {target} while connected")))
            }
            // An older server does not know our `media` lines or our `delay`
            // reports: stop them, quietly.
            NetEvent::Error { code: ErrorCode::UnknownCommand, .. } if self.switches.refuse() => {}
            NetEvent::Error { code: ErrorCode::UnknownCommand, .. } if self.delay_refused() => {}
            NetEvent::Msg { from, text } => self.emit(Event::Message { from, text }),
            NetEvent::Pong | NetEvent::AuthOk => {}
            NetEvent::Error { code: code @ (ErrorCode::NameTaken | ErrorCode::BadName), .. } => {
                self.emit(Event::NameRejected(code));
            }
            // Frames already queued when a call ends are answered with this.
            NetEvent::Error { code: ErrorCode::NotInCall, .. } if self.state.is_idle() => {}
            NetEvent::Error { code, text } if self.group.invite_answered() => {
                let why = text.unwrap_or_else(|| code.as_str().to_owned());
                self.emit(Event::InviteRefused(format!("{code}: {why}")));
            }
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

    /// The peer (or party `from` of a group call) switched its microphone
    /// or camera (only heeded in a call).
    fn on_peer_switch(&mut self, from: Option<ClientId>, state: MediaState) {
        if self.media.is_none() {
            return;
        }
        if let Some(id) = from.filter(|id| Some(*id) != self.first) {
            if let Some(media) = self.switches.party(id, state) {
                self.emit(Event::PartyMedia { id, media });
            }
            return;
        }
        // A peer may send no audio while muted: the last measured queueing
        // of its audio must not be reported as current.
        if let (MediaKind::Audio, false, Some(conn)) = (state.kind, state.on, &self.conn) {
            conn.writer().uplink().set_downlink_delay(Duration::ZERO);
        }
        let peer = self.switches.peer.with(state);
        if peer != self.switches.peer {
            self.switches.peer = peer;
            self.emit(Event::PeerMedia(peer));
        }
    }

    /// Declines the ringing call and blocks its caller's address: a caller
    /// who reconnects to ring again is blocked too (a nick could be changed).
    fn block_caller(&mut self) {
        let CallState::Ringing { caller, .. } = &self.state else { return };
        let caller = *caller;
        self.step(CallInput::Answer(false));
        self.command(&Command::Block(komunikator_protocol::Target::Ip(caller.ip())));
    }

    /// Whether an `unknown-command` error answers our `delay` reports (an
    /// older server), which are then stopped.
    fn delay_refused(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.writer().uplink().refuse_delay_reports())
    }

    /// Hands the peer's downlink, as the server reports it, to the writer's
    /// rate controller.
    fn set_peer_rate(&self, kbps: Option<u32>) {
        if let Some(conn) = &self.conn {
            conn.writer().uplink().set_peer_kbps(kbps);
        }
    }

    fn on_media(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::KeyframeWanted(of) => self.request_keyframe_of(of),
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
            UserCommand::Invite(target) if parse_target(&target).is_some() => {
                self.step(CallInput::Invite(target))
            }
            UserCommand::Invite(target) => self.emit(Event::Notice(format!(
                "cannot invite {target:?}: give an id (IP:PORT), an IP address or a nick"
            ))),
            UserCommand::Answer(yes) => self.step(CallInput::Answer(yes)),
            UserCommand::BlockCaller => self.block_caller(),
            UserCommand::Hangup => self.step(CallInput::Hangup),
            UserCommand::Msg(text) => self.send_msg(&text),
            UserCommand::SetMuted(muted) => {
                self.controls.muted = muted;
                if let Some(m) = &mut self.media {
                    m.set_muted(muted);
                    self.tell_peer(MediaState { kind: MediaKind::Audio, on: !muted });
                }
            }
            UserCommand::SetCamera(enabled) => {
                self.controls.camera_enabled = enabled;
                if let Some(m) = &mut self.media {
                    m.set_camera_enabled(enabled);
                    self.tell_peer(MediaState { kind: MediaKind::Video, on: enabled });
                }
            }
        }
    }

    /// Tells the peer a switch changed, unless the server refused such lines.
    fn tell_peer(&mut self, state: MediaState) {
        if self.switches.may_send() {
            self.command(&Command::MediaState(state));
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
            let parties = match &self.state {
                CallState::Active { peer, others, .. } => {
                    [*peer].into_iter().chain(others.iter().copied()).collect()
                }
                _ => Vec::new(),
            };
            if let Some(speaker) = self.speakers.parties(&parties) {
                self.emit(Event::Speaker(speaker));
            }
        }
    }

    /// Reads the parties' audio levels, and says who speaks when that changed.
    fn on_speaker_tick(&mut self, now: Instant) {
        let CallState::Active { peer, others, .. } = &self.state else { return };
        // The first party's figures are the call's own; the others', the group's.
        let first = self.current_stats();
        let parties: Vec<(ClientId, Arc<Stats>)> = [*peer]
            .iter()
            .chain(others)
            .map(|id| (*id, self.group.stats_if(*id).unwrap_or_else(|| first.clone())))
            .collect();
        if let Some(speaker) = self.speakers.tick(&parties, now) {
            self.emit(Event::Speaker(speaker));
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
            Action::Send(Send::Invite(target)) => {
                if let Some(t) = parse_target(&target) {
                    self.group.invite_sent();
                    self.command(&Command::Invite(t));
                }
            }
            Action::StartMedia(peer) => self.start_media(peer),
            Action::AddParty(id) => {
                let stats = self.group.stats_of(id);
                if let Some(media) = &mut self.media {
                    let (notices, tile) = media.add_party(id, stats);
                    self.last_tile = tile;
                    for n in notices {
                        self.events.send(Event::Notice(n));
                    }
                }
                // Its first pictures may have come before its pipelines.
                self.request_keyframe_of(Some(id));
            }
            Action::RemoveParty(id) => {
                if let Some(media) = &mut self.media {
                    media.remove_party(id);
                }
            }
            Action::StopMedia => {
                if let Some(m) = self.media.take() {
                    m.stop();
                }
            }
            Action::Ended(reason) => {
                let stats = Box::new(self.current_stats().snapshot());
                let parties = self.group.summary();
                self.emit(Event::CallEnded { reason, stats, parties });
            }
            Action::Ignored(why) => self.emit(Event::Notice(why.into())),
        }
    }

    fn start_media(&mut self, peer: ClientId) {
        let Some(conn) = &self.conn else { return };
        self.first = Some(peer);
        let stats = Arc::new(Stats::default());
        if let Ok(mut s) = self.stats.lock() {
            *s = stats.clone();
        }
        let (media, notices) = CallMedia::start(
            &self.setup,
            conn.writer(),
            (self.route.clone(), peer),
            stats,
            self.notify.clone(),
            self.controls,
        );
        for n in notices {
            self.emit(Event::Notice(n));
        }
        self.media = Some(media);
        for state in self.switches.at_start(self.controls) {
            self.command(&Command::MediaState(state));
        }
        self.emit(Event::PeerMedia(self.switches.peer));
        self.inject = self.setup.options.inject_source_failure.map(|f| (f, Instant::now() + f.after));
        self.last_request = None;
        self.request_keyframe();
    }

    /// The next time something is due: a pipeline rebuild or an injected failure.
    fn next_timer(&self) -> Option<Instant> {
        let restart = self.media.as_ref().and_then(CallMedia::next_restart);
        let inject = self.inject.filter(|_| self.media.is_some()).map(|(_, at)| at);
        restart.into_iter().chain(inject).chain(self.speakers.next_tick()).min()
    }

    /// Rebuilds failed pipelines that are due, and injects a test failure when it is time.
    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.speakers.next_tick().is_some_and(|at| at <= now) {
            self.on_speaker_tick(now);
        }
        let Some(media) = &mut self.media else { return };
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

    /// Asks party `of` for a keyframe (`keyframe <id>`, with group calls on;
    /// each party at most every [`KEYFRAME_REQUEST_INTERVAL`]), or everyone.
    fn request_keyframe_of(&mut self, of: Option<komunikator_protocol::ClientId>) {
        if !matches!(self.state, CallState::Active { .. }) {
            return;
        }
        match self.group.keyframe_to(of, KEYFRAME_REQUEST_INTERVAL) {
            KeyframeTo::Party(id) => {
                self.current_stats().keyframes_requested.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.command(&Command::KeyframeOf(id));
            }
            KeyframeTo::Everyone => self.request_keyframe(),
            KeyframeTo::NotNow => {}
        }
    }

    /// Asks the peer (everyone, in a group call) for a keyframe, at most
    /// every [`KEYFRAME_REQUEST_INTERVAL`].
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
