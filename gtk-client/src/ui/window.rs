//! The main window: one [`Model`] (the link to the server, the engine's
//! [`CallState`], the roster) and one [`Window::update_view`] that matches on
//! it to pick the page and fill it in. Engine events arrive on the main
//! thread through the async-channel loop in `link.rs`; widgets never talk to
//! the engine except through [`crate::EngineHandle`]'s commands. Main thread.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

use adw::prelude::*;
use gtk::gio;

use super::Launch;
use super::call_view::CallView;
use super::gate::Gate;
use super::history::{Home, Journal};
use super::i18n::i18n;
use super::lobby::Lobby;
use super::notify::Notices;
use super::pages::{SetupPage, StatusPage};
use super::password::PasswordPage;
use super::prompts::{Incoming, Outgoing};
use super::quality::Reading;
use super::ringer::Ringer;
use super::screenshot;
use super::state::{Link, Roster};
use super::trust::TrustPage;
use super::video::VideoSink;
use crate::call::CallState;
use crate::engine::Engine;
use crate::media::{MediaSetup, StatsSnapshot};

/// Everything the view is made from.
pub struct Model {
    /// The link to the server.
    pub link: Link,
    /// The call, as the engine last reported it.
    pub call: CallState,
    /// The other users.
    pub roster: Roster,
    /// The running engine, once connected.
    pub engine: Option<Engine>,
    /// Codecs and devices, resolved once on a worker thread.
    pub setup: Option<MediaSetup>,
    /// Bumped for every connection attempt; stale events are dropped.
    pub generation: u64,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// When the next reconnect attempt is due.
    pub retry_at: Option<Instant>,
    /// The timer of that attempt.
    pub retry: Option<glib::SourceId>,
    /// Plays while a call rings.
    pub ringer: Option<Ringer>,
    /// Whom the current call is with, as shown.
    pub peer: String,
    /// The last statistics, for the quality indicator.
    pub stats: Option<(Instant, StatsSnapshot)>,
    /// The last quality reading.
    pub reading: Option<Reading>,
    /// The peer's first picture of this call has been shown.
    pub pictured: bool,
    /// `--call`: dial this once connected and the target is online.
    pub auto_call: Option<String>,
    /// Our nick is settled, so `auto_call` may be dialled.
    pub auto_ready: bool,
    /// Screenshots already taken (by name).
    pub shots: Vec<&'static str>,
    /// Waiting for the user (a changed certificate, a password) instead of retrying.
    pub gate: Option<Gate>,
    /// The server has answered as to a logged-in client on this connection.
    pub logged_in: bool,
    /// The call history.
    pub history: Journal,
}

impl Model {
    fn new(auto_call: Option<String>) -> Model {
        Model {
            link: Link::Setup,
            call: CallState::Idle,
            roster: Roster::default(),
            engine: None,
            setup: None,
            generation: 0,
            failures: 0,
            retry_at: None,
            retry: None,
            ringer: None,
            peer: String::new(),
            stats: None,
            reading: None,
            pictured: false,
            auto_call,
            auto_ready: false,
            shots: Vec::new(),
            gate: None,
            logged_in: false,
            history: Journal::load(),
        }
    }
}

/// The window and its pages.
pub struct Window {
    /// The GTK window.
    pub win: adw::ApplicationWindow,
    /// The application.
    pub app: adw::Application,
    pub(super) toasts: adw::ToastOverlay,
    title: adw::WindowTitle,
    stack: gtk::Stack,
    search_button: gtk::ToggleButton,
    pub(super) lobby: Rc<Lobby>,
    pub(super) home: Rc<Home>,
    pub(super) setup_page: SetupPage,
    status: StatusPage,
    pub(super) trust: TrustPage,
    pub(super) password: PasswordPage,
    outgoing: Outgoing,
    pub(super) incoming: Incoming,
    pub(super) call: CallView,
    /// The picture sinks (kept so their last reference drops on this thread).
    pub(super) sinks: Vec<VideoSink>,
    /// How the app was started, and the settings since saved.
    pub(super) launch: RefCell<Launch>,
    pub(super) model: RefCell<Model>,
    last_page: Cell<&'static str>,
    /// The call notifications out now.
    pub(super) notices: Notices,
    /// Quit was asked for: closing ends the process, without asking.
    pub(super) quitting: Cell<bool>,
    /// The names of the parties that joined the call in progress.
    pub(super) names: RefCell<Vec<(komunikator_protocol::ClientId, String)>>,
}

impl Window {
    /// Builds the window for `app`.
    pub fn new(app: &adw::Application, launch: Launch) -> Rc<Window> {
        let sinks = make_sinks();
        let remote = sinks.first().map(|s| s.paintable.clone());
        let local = sinks.get(1).map(|s| s.paintable.clone());
        let party_paintables: Vec<_> = sinks.iter().skip(2).map(|s| s.paintable.clone()).collect();
        let auto_call = launch.args.call.clone();
        let window = Rc::new_cyclic(|weak: &Weak<Window>| {
            let w = weak.clone();
            let w2 = weak.clone();
            let call = CallView::new(
                (remote.as_ref(), local.as_ref()),
                &party_paintables,
                move |text| {
                    if let Some(w) = w.upgrade() {
                        w.send_chat(text);
                    }
                },
                move |target| {
                    if let Some(w) = w2.upgrade() {
                        w.invite(target);
                    }
                },
            );
            let w = weak.clone();
            let lobby = Lobby::new(move |user| {
                if let Some(w) = w.upgrade() {
                    w.dial(&user.target(), &user.label());
                }
            });
            let w = weak.clone();
            let home = Home::new(lobby.root.upcast_ref(), move |peer| {
                if let Some(w) = w.upgrade() {
                    w.call_back(peer);
                }
            });
            Window {
                win: adw::ApplicationWindow::builder()
                    .application(app)
                    .title("Komunikator")
                    .default_width(960)
                    .default_height(720)
                    .build(),
                app: app.clone(),
                toasts: adw::ToastOverlay::new(),
                title: adw::WindowTitle::new("Komunikator", ""),
                stack: gtk::Stack::builder()
                    .transition_type(gtk::StackTransitionType::Crossfade)
                    .hhomogeneous(false)
                    .build(),
                search_button: gtk::ToggleButton::builder()
                    .icon_name("system-search-symbolic")
                    .tooltip_text(i18n("Search (Ctrl+F)"))
                    .build(),
                lobby,
                home,
                setup_page: SetupPage::new(),
                status: StatusPage::new(),
                trust: TrustPage::new(),
                password: PasswordPage::new(),
                outgoing: Outgoing::new(),
                incoming: Incoming::new(),
                call,
                sinks,
                launch: RefCell::new(launch),
                model: RefCell::new(Model::new(auto_call)),
                last_page: Cell::new(""),
                notices: Notices::default(),
                quitting: Cell::new(false),
                names: RefCell::new(Vec::new()),
            }
        });
        window.assemble();
        window
    }

    fn assemble(self: &Rc<Self>) {
        let header = adw::HeaderBar::builder().title_widget(&self.title).build();
        header.pack_start(&self.search_button);
        self.search_button
            .bind_property("active", &self.lobby.search_bar, "search-mode-enabled")
            .bidirectional()
            .sync_create()
            .build();
        header.pack_end(&main_menu());
        for (widget, name) in [
            (self.setup_page.root.upcast_ref::<gtk::Widget>(), "setup"),
            (self.status.root.upcast_ref(), "status"),
            (self.trust.root.upcast_ref(), "trust"),
            (self.password.root.upcast_ref(), "password"),
            (self.home.root.upcast_ref(), "lobby"),
            (self.outgoing.root.upcast_ref(), "outgoing"),
            (self.incoming.root.upcast_ref(), "incoming"),
            (self.call.root.upcast_ref(), "call"),
        ] {
            self.stack.add_named(widget, Some(name));
        }
        self.lobby.search_bar.set_key_capture_widget(Some(&self.win));
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&self.stack);
        self.toasts.set_child(Some(&content));
        self.win.set_content(Some(&self.toasts));
        self.win.set_default_widget(Some(&self.setup_page.connect));
        super::actions::install(self);
        super::gate::install(self);
        self.watch_history();
        super::fullscreen::install(self);
        let weak = Rc::downgrade(self);
        self.win.connect_close_request(move |_| {
            weak.upgrade().map_or(glib::Propagation::Proceed, |w| super::background::on_close_request(&w))
        });
    }

    /// Shows a toast.
    pub fn toast(&self, text: &str) {
        log(text);
        self.toasts.add_toast(adw::Toast::builder().title(glib::markup_escape_text(text)).timeout(5).build());
    }

    /// Matches on the model to pick and fill the page. The one place that
    /// decides what is on screen.
    pub fn update_view(self: &Rc<Self>) {
        let page = {
            let m = self.model.borrow();
            let subtitle = m.link.describe();
            if self.title.subtitle() != subtitle {
                log(&format!("subtitle: {subtitle}"));
                self.title.set_subtitle(&subtitle);
            }
            let with = self.call_with(&m.call, &m.peer);
            let header = super::title::header(&m.call, &with);
            if self.title.title() != header {
                self.title.set_title(&header);
            }
            let title = super::title::title(&m.link, &m.call, &with);
            if self.win.title().as_deref() != Some(title.as_str()) {
                log(&format!("title: {title}"));
                self.win.set_title(Some(&title));
            }
            self.enable_actions(&m);
            match (&m.link, &m.call) {
                (Link::Setup, _) => "setup",
                (Link::Offline { server, .. }, CallState::Idle) if m.gate.is_some() => {
                    m.gate.as_ref().map_or("status", |gate| self.show_gate(server, gate))
                }
                (_, CallState::Ringing { caller, nick }) => {
                    if self.last_page.get() != "incoming" {
                        self.incoming.show(&m.peer, nick.as_deref(), &caller.to_string());
                    }
                    "incoming"
                }
                (_, CallState::Dialing { .. } | CallState::Calling { .. }) => {
                    self.outgoing.show(&m.peer);
                    "outgoing"
                }
                (_, CallState::Connecting { .. }) => {
                    self.call.show(&m.peer, None);
                    "call"
                }
                (_, CallState::Active { since, .. }) => {
                    self.call.show(&m.peer, Some(since.elapsed()));
                    "call"
                }
                // Until the server answers as to a logged-in client (it may want a password).
                (Link::Online { server, .. }, CallState::Idle) if !m.logged_in => {
                    self.status.connecting(server);
                    "status"
                }
                (Link::Online { server, .. }, CallState::Idle) => {
                    self.lobby.show(&m.roster, true, server);
                    self.home.show(&m.history, &m.roster, true);
                    "lobby"
                }
                (Link::Connecting { server }, CallState::Idle) => {
                    self.status.connecting(server);
                    "status"
                }
                (Link::Offline { reason, detail, lost, .. }, CallState::Idle) => {
                    let left =
                        m.retry_at.map_or(0, |t| t.saturating_duration_since(Instant::now()).as_secs());
                    self.status.offline(reason, detail, *lost, left + u64::from(m.retry_at.is_some()));
                    "status"
                }
            }
        };
        self.search_button.set_visible(page == "lobby");
        if page != "lobby" {
            self.search_button.set_active(false);
        }
        let before = self.last_page.replace(page);
        if before != page {
            if before == "incoming" {
                super::notify::ring_over(self);
            }
            log(&format!("view: {page}"));
            self.stack.set_visible_child_name(page);
            self.on_page_shown(page);
        }
    }

    fn enable_actions(&self, m: &Model) {
        let set = |name: &str, on: bool| {
            if let Some(a) = self.win.lookup_action(name).and_then(|a| a.downcast::<gio::SimpleAction>().ok())
            {
                a.set_enabled(on);
            }
        };
        let ringing = matches!(m.call, CallState::Ringing { .. });
        let in_call = matches!(m.call, CallState::Active { .. } | CallState::Connecting { .. });
        set("accept", ringing);
        set("decline", ringing);
        set("block-caller", ringing);
        set("hang-up", !m.call.is_idle());
        set("mute", in_call);
        set("camera-off", in_call);
        set("reconnect", matches!(m.link, Link::Offline { .. }));
        set("search", matches!(m.link, Link::Online { .. }) && m.call.is_idle());
    }

    fn on_page_shown(self: &Rc<Self>, page: &'static str) {
        if page == "setup" {
            self.setup_page.host.grab_focus();
        }
        if page == "password" {
            self.password.entry.grab_focus();
        }
        if page == "trust" || page == "password" {
            self.shoot_later(page, &self.win.clone().upcast());
        }
        if page == "incoming" {
            // Not raised: an inactive or hidden window notifies instead.
            super::notify::incoming(self);
            self.shoot_later("incoming", &self.win.clone().upcast());
        }
        if page == "lobby" && !self.model.borrow().roster.is_empty() {
            self.shoot_later("lobby", &self.win.clone().upcast());
        }
    }

    /// Takes screenshot `name` of `widget` once, after the next frames are drawn.
    pub(super) fn shoot_later(self: &Rc<Self>, name: &'static str, widget: &gtk::Widget) {
        if screenshot::dir().is_none() || self.model.borrow().shots.contains(&name) {
            return;
        }
        self.model.borrow_mut().shots.push(name);
        let widget = widget.clone();
        glib::timeout_add_local_once(std::time::Duration::from_millis(400), move || {
            screenshot::take(&widget, name);
        });
    }
}

/// Pictures of further parties of a group call the window shows: with the
/// first party's, eight people (the server's default room size) on a 3x3 grid.
const PARTY_TILES: usize = 7;

/// Makes the peer's and the self-view sinks, then one per party tile; a
/// failure is logged and the window goes on without pictures.
fn make_sinks() -> Vec<VideoSink> {
    let names = ["remote_video".to_owned(), "self_view".to_owned()]
        .into_iter()
        .chain((0..PARTY_TILES).map(|i| format!("party_video_{i}")));
    match names.map(|n| VideoSink::new(&n)).collect::<anyhow::Result<Vec<_>>>() {
        Ok(sinks) => sinks,
        Err(e) => {
            log(&format!("no picture in the window: {e:#}"));
            Vec::new()
        }
    }
}

fn main_menu() -> gtk::MenuButton {
    let menu = gio::Menu::new();
    menu.append(Some(&i18n("_Preferences")), Some("app.preferences"));
    menu.append(Some(&i18n("_Keyboard Shortcuts")), Some("win.show-help-overlay"));
    menu.append(Some(&i18n("_About Komunikator")), Some("app.about"));
    gtk::MenuButton::builder()
        .icon_name("open-menu-symbolic")
        .menu_model(&menu)
        .primary(true)
        .tooltip_text(i18n("Main Menu"))
        .build()
}

/// A line in the log (stderr), which the GUI test also reads. Bidi and
/// invisible characters are escaped: much of it quotes the server.
pub fn log(text: &str) {
    eprintln!("komunikator: {}", crate::text::escape(text, crate::text::Kind::Chat));
}
