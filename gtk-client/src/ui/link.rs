//! The window's side of the engine: starting it on a worker thread (media
//! setup and the TCP connect both block), the event loop that feeds engine
//! events into the [`Model`](super::window::Model), reconnecting with
//! backoff, the one-second tick (timer, countdown, quality), and shutting the
//! engine down off the main thread. Main thread, except the two workers.

use std::rc::Rc;
use std::time::{Duration, Instant};

use adw::prelude::*;
use gtk::gio;

use super::gate::{self, Gate};
use super::history::ended_message;
use super::i18n::{i18n, i18n_f};
use super::problem::{self, Problem};
use super::quality;
use super::ringer::Ringer;
use super::state::{Link, backoff};
use super::video::VideoSink;
use super::window::{Window, log};
use crate::call::CallState;
use crate::engine::{Engine, Event};
use crate::media::{AudioOut, MediaSetup};
use crate::text::{Kind, escape, nick_label};

/// The engine, or why it did not start (in words, and the gate it calls for).
type Started = Result<(MediaSetup, Engine), (Option<MediaSetup>, Problem, Option<Gate>)>;

impl Window {
    /// Connects to the configured server, or shows the first-run page.
    pub fn connect(self: &Rc<Self>) {
        let Some(server) = self.launch.borrow().server() else {
            self.model.borrow_mut().link = Link::Setup;
            return self.update_view();
        };
        let (generation, setup, old) = {
            let mut m = self.model.borrow_mut();
            if let Some(t) = m.retry.take() {
                t.remove();
            }
            m.retry_at = None;
            m.generation += 1;
            m.link = Link::Connecting { server: server.clone() };
            m.gate = None;
            m.logged_in = false;
            m.roster.clear();
            m.call = CallState::Idle;
            (m.generation, m.setup.take(), m.engine.take())
        };
        stop_engine(old, None);
        self.update_view();
        let mut options = self.launch.borrow().media_options();
        if let [remote, local, parties @ ..] = &self.sinks[..] {
            options.video_sink = Some(remote.factory());
            options.preview_sink = Some(local.factory());
            options.party_sinks = parties.iter().map(VideoSink::factory).collect();
        }
        let nick = self.launch.borrow().nick();
        let (tx, rx) = async_channel::bounded::<Started>(1);
        let target = server.clone();
        std::thread::spawn(move || {
            let setup = match setup {
                Some(s) => s,
                None => match MediaSetup::resolve(options) {
                    Ok(s) => s,
                    Err(e) => {
                        let p = problem::from_engine(&crate::engine::EngineError::Media(e));
                        return drop(tx.send_blocking(Err((None, p, None))));
                    }
                },
            };
            let result = match Engine::start_with_setup(&target, nick, setup.clone()) {
                Ok(engine) => Ok((setup, engine)),
                Err(e) => Err((Some(setup), problem::from_engine(&e), gate::from_error(&e))),
            };
            if let Err(async_channel::SendError(Ok((_, engine)))) = tx.send_blocking(result) {
                engine.shutdown();
            }
        });
        let weak = Rc::downgrade(self);
        glib::spawn_future_local(async move {
            let Ok(result) = rx.recv().await else { return };
            match weak.upgrade() {
                Some(w) => w.on_started(generation, result),
                None => stop_engine(result.ok().map(|(_, e)| e), None),
            }
        });
    }

    fn on_started(self: &Rc<Self>, generation: u64, result: Started) {
        let stale = self.model.borrow().generation != generation;
        match result {
            Ok((setup, engine)) if stale => {
                self.model.borrow_mut().setup.get_or_insert(setup);
                stop_engine(Some(engine), None);
            }
            Ok((setup, engine)) => {
                let events = engine.events();
                {
                    let mut m = self.model.borrow_mut();
                    m.setup = Some(setup);
                    m.engine = Some(engine);
                }
                self.listen(generation, events);
            }
            Err((setup, reason, gate)) => {
                if let Some(s) = setup {
                    self.model.borrow_mut().setup.get_or_insert(s);
                }
                match gate {
                    _ if stale => {}
                    Some(gate) => self.block(gate),
                    None => self.go_offline(reason),
                }
            }
        }
    }

    fn listen(self: &Rc<Self>, generation: u64, events: async_channel::Receiver<Event>) {
        let weak = Rc::downgrade(self);
        glib::spawn_future_local(async move {
            let mut handled = 0u32;
            while let Ok(event) = events.recv().await {
                let Some(w) = weak.upgrade() else { break };
                if w.model.borrow().generation != generation {
                    break;
                }
                w.on_event(event);
                drop(w);
                // A flooding server keeps the channel from ever being empty;
                // let the window draw and take input now and then.
                handled = handled.wrapping_add(1);
                if handled % 32 == 0 {
                    glib::timeout_future(std::time::Duration::ZERO).await;
                }
            }
        });
    }

    /// The connection failed or ended: forget the engine, schedule a retry.
    fn go_offline(self: &Rc<Self>, problem: Problem) {
        let Some(server) = self.launch.borrow().server() else { return };
        let engine = {
            let mut m = self.model.borrow_mut();
            m.failures += 1;
            let wait = backoff(m.failures);
            let detail = problem.detail;
            log(&format!("not connected to {server} ({detail}); retrying in {} s", wait.as_secs()));
            let lost = matches!(m.link, Link::Online { .. });
            let (reason, attempt) = (problem.sentence, m.failures);
            m.link = Link::Offline { server, reason, detail, lost, attempt };
            m.call = CallState::Idle;
            m.ringer = None;
            m.roster.clear();
            m.generation += 1;
            m.retry_at = Some(Instant::now() + wait);
            let weak = Rc::downgrade(self);
            m.retry = Some(glib::timeout_add_local_once(wait, move || {
                if let Some(w) = weak.upgrade() {
                    w.model.borrow_mut().retry = None;
                    w.connect();
                }
            }));
            m.engine.take()
        };
        stop_engine(engine, None);
        self.update_view();
    }

    fn on_event(self: &Rc<Self>, event: Event) {
        if matches!(event, Event::Clients(_) | Event::NameAccepted(_)) {
            self.model.borrow_mut().logged_in = true;
        }
        match event {
            Event::Connected { id } => self.on_connected(id),
            Event::NameAccepted(nick) => {
                log(&format!("name accepted: {nick}"));
                if let Link::Online { nick: n, .. } = &mut self.model.borrow_mut().link {
                    *n = Some(nick);
                }
                self.dial_auto();
            }
            Event::NameRejected(code) => {
                let nick = self.launch.borrow().nick().unwrap_or_default();
                log(&format!("name {nick} rejected: {}", code.as_str()));
                self.toast(&problem::name_rejected(&nick, code));
                self.dial_auto();
            }
            Event::Clients(list) => {
                self.model.borrow_mut().roster.replace(&list);
                self.dial_auto_if_ready();
            }
            Event::Presence { id, state, nick } => {
                self.model.borrow_mut().roster.apply(id, state, nick);
                self.dial_auto_if_ready();
            }
            Event::CallChanged(state) => self.on_call_changed(state),
            Event::Incoming { caller, nick } => {
                self.incoming.clear_others();
                // The log escapes on its own; the label is also isolated.
                log(&format!("incoming call from {}", nick.clone().unwrap_or_else(|| caller.to_string())));
                self.model.borrow_mut().peer = nick.as_deref().map_or_else(|| caller.to_string(), nick_label);
            }
            Event::CallEnded { reason, .. } => {
                self.call.parties.clear();
                let who = self.model.borrow().peer.clone();
                log(&format!("call ended: {}", reason.as_str()));
                super::notify::call_ended(self, reason);
                let in_view = self.home.showing_history();
                let entry = self.model.borrow_mut().history.on_end(reason, in_view);
                if let Some(text) = ended_message(reason, &who, entry.as_ref()) {
                    self.toast(&text);
                }
                self.with_engine(|e| e.refresh());
            }
            Event::PeerMedia(peer) => {
                self.call.show_peer_media(peer);
                if peer.camera_off {
                    self.shoot_later("call-camera-off", &self.win.clone().upcast());
                }
            }
            Event::Message { from, text } => {
                let who = from.map_or_else(|| self.model.borrow().peer.clone(), |id| self.name_of(id));
                self.call.chat.add(&text, Some(&who));
                self.call.reveal_chat();
            }
            Event::ServerError { code, .. } if self.is_login_error(code) => return self.login_failed(code),
            Event::ServerError { code, text } => {
                // The server's words may carry bidi controls or invisible characters.
                let text = text.map(|t| escape(&t, Kind::Chat).into_owned());
                let p = problem::from_server(code, text.as_deref());
                log(&format!("server error: {}", p.detail));
                self.toast(&p.sentence);
            }
            Event::Notice(text) | Event::MediaProblem(text) => log(&text),
            Event::Inviting(id) => log(&format!("invitation ringing at {id}")),
            Event::IncomingWith { id, nick } => {
                let name = nick.as_deref().map_or_else(|| id.to_string(), nick_label);
                log(&format!("the call we are asked into has {name} too"));
                self.incoming.add_other(&name);
                super::notify::others_changed(self);
            }
            Event::InviteRefused(why) => {
                log(&format!("invitation refused: {why}"));
                self.toast(&i18n_f("Could not invite: {}", &[&escape(&why, Kind::Chat)]));
            }
            Event::Declined { id, reason } => {
                log(&format!("{id} did not join: {reason}"));
                self.toast(&i18n_f("{} did not join the call", &[&self.name_of(id)]));
            }
            Event::Joined { id, nick, tile } => {
                let name = nick.as_deref().map_or_else(|| id.to_string(), nick_label);
                log(&format!("{id} ({name}) joined the call, tile {tile:?}"));
                if let Some(tile) = tile {
                    self.call.parties.show(tile, id, &name);
                }
                {
                    // One name per party, and no more than a call can hold.
                    let mut names = self.names.borrow_mut();
                    names.retain(|(i, _)| *i != id);
                    if names.len() <= crate::call::MAX_PARTIES {
                        names.push((id, name.clone()));
                    }
                }
                self.shoot_later("call-group", &self.win.clone().upcast());
                log(&format!("party tiles shown: {}", self.call.parties.shown()));
                self.toast(&i18n_f("{} joined the call", &[&name]));
            }
            Event::Speaker(id) => {
                let name = id.map_or_else(|| "nobody".into(), |id| self.name_of(id));
                log(&format!("speaker: {name}"));
                self.call.parties.set_speaker(id);
            }
            Event::PartyMedia { id, media } => self.call.parties.show_media(id, media),
            Event::Left { id, reason } => {
                log(&format!("{id} left the call ({})", reason.as_str()));
                let name = self.name_of(id);
                self.call.parties.hide(id);
                log(&format!("party tiles shown: {}", self.call.parties.shown()));
                self.toast(&i18n_f("{} left the call", &[&name]));
            }
            Event::Disconnected(reason) => return self.go_offline(problem::lost(&reason)),
        }
        self.update_view();
    }

    fn on_connected(self: &Rc<Self>, id: komunikator_protocol::ClientId) {
        log(&format!("connected as {id}"));
        let server = self.launch.borrow().server().unwrap_or_default();
        {
            let mut m = self.model.borrow_mut();
            m.failures = 0;
            m.link = Link::Online { server, id, nick: None };
        }
        self.with_engine(|e| e.refresh());
        if self.launch.borrow().nick().is_none() {
            self.dial_auto();
        }
    }

    /// `--call`: dials once, when our nick is settled and the target is
    /// online (a nick or id in the roster; a bare IP is dialled at once).
    fn dial_auto(self: &Rc<Self>) {
        let target = {
            let mut m = self.model.borrow_mut();
            m.auto_ready = true;
            let Some(target) = m.auto_call.clone() else { return };
            let online = target.parse::<std::net::IpAddr>().is_ok()
                || m.roster.visible("").iter().any(|u| {
                    u.target() == target || u.nick.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&target))
                });
            if !online {
                return log(&format!("waiting for {target} to come online before calling"));
            }
            m.auto_call = None;
            target
        };
        self.dial(&target, &target);
    }

    fn dial_auto_if_ready(self: &Rc<Self>) {
        let pending = {
            let m = self.model.borrow();
            m.auto_ready && m.auto_call.is_some() && m.call.is_idle()
        };
        if pending {
            self.dial_auto();
        }
    }

    fn on_call_changed(self: &Rc<Self>, state: CallState) {
        log(&format!("call state: {state:?}"));
        let was_active = matches!(self.model.borrow().call, CallState::Active { .. });
        let ringing = matches!(state, CallState::Ringing { .. });
        if let (CallState::Active { peer, .. }, false) = (&state, was_active) {
            let name = self.model.borrow().peer.clone();
            self.call.parties.set_main(*peer, &name);
            // The last call's names stay until now: the titles need them
            // until the state is no longer active.
            *self.names.borrow_mut() = vec![(*peer, name)];
            self.call.reset();
            let mut m = self.model.borrow_mut();
            m.stats = None;
            m.reading = None;
            m.pictured = false;
            m.shots.retain(|s| !s.starts_with("call"));
        }
        let mut m = self.model.borrow_mut();
        let m = &mut *m;
        m.history.on_state(&state, &m.roster);
        if let CallState::Ringing { caller, nick } = &state {
            m.peer = nick.as_deref().map_or_else(|| caller.to_string(), nick_label);
        }
        if ringing && m.ringer.is_none() {
            let speakers = m.setup.as_ref().is_some_and(|s| s.audio_out == AudioOut::Speakers);
            m.ringer = Ringer::start(speakers);
        } else if !ringing {
            m.ringer = None;
        }
        m.call = state;
    }

    /// Runs `f` with the engine, if connected.
    pub fn with_engine(&self, f: impl FnOnce(&Engine)) {
        if let Some(e) = &self.model.borrow().engine {
            f(e);
        }
    }

    /// Calls `target`, shown as `label`.
    pub fn dial(self: &Rc<Self>, target: &str, label: &str) {
        if !self.model.borrow().call.is_idle() {
            return self.toast(&i18n("Finish the current call first"));
        }
        self.model.borrow_mut().peer = label.to_owned();
        log(&format!("calling {target}"));
        self.with_engine(|e| e.call(target));
    }

    /// Invites `target` into the call in progress (Add person).
    pub fn invite(&self, target: &str) {
        if !matches!(self.model.borrow().call, CallState::Active { .. }) {
            return;
        }
        log(&format!("inviting {target}"));
        self.with_engine(|e| e.invite(target));
    }

    /// The name shown for party `id`: its nick from `joined`, else (the
    /// party we called, or who called us) the call's peer.
    fn name_of(&self, id: komunikator_protocol::ClientId) -> String {
        let names = self.names.borrow();
        let joined = names.iter().rev().find(|(i, _)| *i == id).map(|(_, n)| n.clone());
        joined.unwrap_or_else(|| self.model.borrow().peer.clone())
    }

    /// Whom the call `call` is with, for the titles: in a call, the parties
    /// in it now (the first of them may have left); else `peer`. A party
    /// whose `Joined` has not come yet is not named yet.
    pub fn call_with(&self, call: &CallState, peer: &str) -> String {
        let CallState::Active { peer: first, others, .. } = call else { return peer.to_owned() };
        let names = self.names.borrow();
        let name = |id: &komunikator_protocol::ClientId| {
            names.iter().rev().find(|(i, _)| i == id).map(|(_, n)| n.clone())
        };
        let all: Vec<String> = [first].into_iter().chain(others).filter_map(name).collect();
        if all.is_empty() { peer.to_owned() } else { super::title::with(&all) }
    }

    /// Sends a chat line and shows it.
    pub fn send_chat(&self, text: &str) {
        if matches!(self.model.borrow().call, CallState::Active { .. }) {
            self.with_engine(|e| e.send_msg(text));
            self.call.chat.add(text, None);
        }
    }

    /// Once a second: the call timer, the retry countdown, the quality indicator.
    pub fn tick(self: &Rc<Self>) {
        let active = matches!(self.model.borrow().call, CallState::Active { .. });
        if active {
            self.measure();
        }
        self.update_view();
    }

    fn measure(self: &Rc<Self>) {
        // Right after the first picture a reading would span too short a time.
        let fresh = self.model.borrow().stats.as_ref().is_some_and(|(t, _)| t.elapsed() < MIN_INTERVAL);
        let Some(now) = self.model.borrow().engine.as_ref().map(Engine::stats).filter(|_| !fresh) else {
            return;
        };
        let (reading, decoded, first) = {
            let mut m = self.model.borrow_mut();
            let rate = match self.call.peer_media().camera_off {
                true => quality::assess_camera_off,
                false => quality::assess,
            };
            let reading = m.stats.as_ref().map(|(t, prev)| rate(prev, &now, t.elapsed().as_secs_f64()));
            let decoded = now.video_frames_decoded;
            m.stats = Some((Instant::now(), now));
            let first = m.reading.is_none() && reading.is_some();
            if reading.is_some() {
                m.reading = reading;
            }
            (m.reading, decoded, first)
        };
        if first && let Some(r) = reading {
            log(&format!("indicator: {:?} after {decoded} decoded pictures", r.level));
        }
        if reading.is_some() || !self.model.borrow().pictured {
            self.call.show_quality(reading);
        }
        let has_picture = self.call.remote.paintable().is_some_and(|p| p.intrinsic_width() > 0);
        if decoded >= 30 && has_picture {
            self.shoot_later("call-video", &self.call.remote.clone().upcast());
            self.shoot_later("call", &self.win.clone().upcast());
        }
    }

    /// The peer's picture changed: the first one of a call ends "Waiting for
    /// the picture" at once instead of at the next readings, which take two
    /// ticks. It starts the interval of the first reading.
    fn on_picture(self: &Rc<Self>) {
        let now = {
            let m = self.model.borrow();
            if m.pictured || m.reading.is_some() || !matches!(m.call, CallState::Active { .. }) {
                return;
            }
            let Some(now) = m.engine.as_ref().map(Engine::stats) else { return };
            now
        };
        log(&format!("indicator: first picture after {} decoded pictures", now.video_frames_decoded));
        let mut m = self.model.borrow_mut();
        m.pictured = true;
        m.stats = Some((Instant::now(), now));
        drop(m);
        self.call.show_first_picture();
    }

    /// Hangs up and stops the engine off the main thread; the application
    /// stays alive until it has.
    pub fn shutdown(&self) {
        let engine = {
            let mut m = self.model.borrow_mut();
            m.generation += 1;
            m.ringer = None;
            if let Some(t) = m.retry.take() {
                t.remove();
            }
            m.engine.take()
        };
        if let Some(e) = &engine {
            e.hangup();
        }
        stop_engine(engine, Some(self.app.hold()));
    }
}

/// Shuts `engine` down on a worker thread (it joins threads and stops
/// pipelines), releasing `guard` on the main thread afterwards.
pub(super) fn stop_engine(engine: Option<Engine>, guard: Option<gio::ApplicationHoldGuard>) {
    let Some(engine) = engine else { return };
    let (tx, rx) = async_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        engine.shutdown();
        let _ = tx.send_blocking(());
    });
    glib::spawn_future_local(async move {
        let _ = rx.recv().await;
        drop(guard);
    });
}

/// The shortest interval a quality reading is taken over.
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Calls [`Window::on_picture`] each time the peer's picture changes.
pub fn watch_pictures(window: &Rc<Window>) {
    let Some(paintable) = window.call.remote.paintable() else { return };
    let weak = Rc::downgrade(window);
    paintable.connect_invalidate_contents(move |_| {
        if let Some(w) = weak.upgrade() {
            w.on_picture();
        }
    });
}

/// Ticks `window` every second while it lives.
pub fn start_ticking(window: &Rc<Window>) {
    let weak = Rc::downgrade(window);
    glib::timeout_add_local(Duration::from_secs(1), move || match weak.upgrade() {
        Some(w) => {
            w.tick();
            glib::ControlFlow::Continue
        }
        None => glib::ControlFlow::Break,
    });
}
