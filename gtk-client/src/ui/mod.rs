//! The GTK4 + libadwaita face of the client: a window that drives one
//! [`crate::Engine`] and shows what it reports. No call logic lives here.
//!
//! # Message passing
//!
//! The engine runs on its own threads. Its [`crate::Event`]s come over an
//! async-channel that the window awaits on the GTK main loop
//! (`glib::spawn_future_local`, holding only a weak reference to the window);
//! each event updates the window's one `Model`, then `update_view()` redraws
//! from it. Commands go the other way through [`crate::EngineHandle`], which
//! never blocks. Anything that blocks (resolving codecs and devices, the TCP
//! connect, stopping an engine) runs on a worker thread that reports back over
//! a one-shot async-channel. No GObject crosses a thread except the
//! `gtk4paintablesink` elements, which are made for it.
//!
//! Modules: [`window`] (model and view), `link` (engine lifecycle and
//! events), `gate` (a changed certificate or a password stops the retries
//! until the user decides), `actions` (actions and shortcuts), `fullscreen`
//! (F11, double-click, Escape), `title` (the window title), `avatar`
//! (initials for a person), one module per page or panel
//! (`history` also keeps the call history's journal),
//! [`state`] and [`quality`] (pure rules, unit-tested), [`settings`]
//! (conf.txt and komunikator.ini), [`preferences`], [`ringer`], [`video`],
//! [`screenshot`] and [`i18n`]; `problem` turns errors into sentences;
//! `notify` (call notifications) and `background` (closing the window, and
//! running without it).

mod actions;
mod avatar;
mod background;
mod call_view;
mod chat;
mod fullscreen;
mod gate;
mod history;
pub mod i18n;
mod link;
mod lobby;
mod notify;
mod pages;
mod parties;
mod password;
pub mod preferences;
mod problem;
mod prompts;
pub mod quality;
pub mod ringer;
pub mod screenshot;
pub mod settings;
pub mod state;
mod switches;
mod title;
mod trust;
pub mod video;
pub mod window;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use adw::prelude::*;
use gtk::gio;

use crate::cli::Args;
use crate::config::FileConfig;
use crate::media::MediaOptions;
use i18n::i18n;
use settings::Extra;

/// The application id.
pub const APP_ID: &str = match option_env!("KOMUNIKATOR_APP_ID") {
    Some(id) => id,
    None => "io.github.komunikator.Komunikator",
};

/// How the window was started, and the settings it saves since.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The command line.
    pub args: Args,
    /// Where conf.txt is (or will be) written.
    pub conf_path: PathBuf,
    /// conf.txt, when there is one.
    pub file: Option<FileConfig>,
    /// komunikator.ini.
    pub extra: Extra,
}

impl Launch {
    /// `--server`, or the server in conf.txt.
    pub fn server(&self) -> Option<String> {
        self.args.server.clone().or_else(|| self.file.as_ref().map(settings::server_of))
    }

    /// `--name`, or the nick saved in the preferences.
    pub fn nick(&self) -> Option<String> {
        self.args.name.clone().or_else(|| self.extra.nick.clone())
    }

    /// The media options: the flags, else the preferences, else the defaults.
    pub fn media_options(&self) -> MediaOptions {
        let camera = self.file.as_ref().map_or(0, |c| c.camera_index);
        let mut o = self.args.media_options(camera);
        if let (None, Some(v)) = (self.args.video_source, self.extra.video) {
            o.video_source = v;
        }
        if let (None, Some(a)) = (self.args.audio_source, self.extra.audio) {
            o.audio_source = a;
        }
        if self.args.audio_source.is_none() {
            o.microphone = self.extra.microphone.clone();
        }
        if let (None, Some(k)) = (self.args.video_kbps, self.extra.max_video_kbps) {
            o.video_kbps = k;
        }
        // The window takes part in group calls.
        o.group_calls = true;
        o
    }
}

/// Runs the window until it is closed; returns the exit code.
pub fn run(args: Args, file: Option<(PathBuf, FileConfig)>) -> u8 {
    i18n::init();
    glib::set_application_name(&i18n("Komunikator"));
    let conf_path = settings::conf_path(file.as_ref().map(|(p, _)| p.as_path()), args.config.as_deref());
    let extra = settings::load_extra(&settings::extra_path(&conf_path));
    let launch = Launch { args, conf_path, file: file.map(|(_, c)| c), extra };
    // Several windows (for example two people on one machine) are several
    // processes, each with its own connection: the app is not unique.
    // A plain launch (from the desktop) while one runs shows that one's window.
    let flags = if std::env::args_os().len() > 1 {
        gio::ApplicationFlags::NON_UNIQUE
    } else {
        gio::ApplicationFlags::empty()
    };
    let app = adw::Application::builder().application_id(APP_ID).flags(flags).build();
    // The window's state lives as long as the application runs.
    let launch = RefCell::new(Some(launch));
    let window: Rc<RefCell<Option<Rc<window::Window>>>> = Rc::default();
    let keep = window.clone();
    app.connect_activate(move |app| match launch.borrow_mut().take() {
        Some(launch) => *keep.borrow_mut() = Some(start(app, launch)),
        // Also the way back from the background: the window shows again.
        None => keep.borrow().iter().for_each(|w| w.win.present()),
    });
    app.set_accels_for_action("app.quit", &["<Control>q"]);
    app.set_accels_for_action("app.preferences", &["<Control>comma"]);
    app.set_accels_for_action("window.close", &["<Control>w"]);
    let code = app.run_with_args::<&str>(&[]);
    drop(window.take());
    u8::from(code)
}

fn start(app: &adw::Application, launch: Launch) -> Rc<window::Window> {
    let window = window::Window::new(app, launch);
    app_actions(app, &window);
    notify::install(app, &window);
    notify::own_name(app);
    background::request(&window);
    link::start_ticking(&window);
    link::watch_pictures(&window);
    screenshot::on_request();
    // SIGINT and SIGTERM close the window like Ctrl+Q: a call is hung up first.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let weak = Rc::downgrade(&window);
        glib::unix_signal_add_local(signal, move || {
            if let Some(w) = weak.upgrade() {
                background::quit(&w);
            }
            glib::ControlFlow::Continue
        });
    }
    window.win.present();
    window.connect();
    window
}

fn app_actions(app: &adw::Application, window: &Rc<window::Window>) {
    let quit = gio::SimpleAction::new("quit", None);
    let weak = Rc::downgrade(window);
    quit.connect_activate(move |_, _| {
        if let Some(w) = weak.upgrade() {
            background::quit(&w);
        }
    });
    app.add_action(&quit);
    let prefs = gio::SimpleAction::new("preferences", None);
    let weak = Rc::downgrade(window);
    prefs.connect_activate(move |_, _| {
        if let Some(w) = weak.upgrade() {
            preferences::open(&w);
        }
    });
    app.add_action(&prefs);
    let about = gio::SimpleAction::new("about", None);
    let weak = Rc::downgrade(window);
    about.connect_activate(move |_, _| {
        if let Some(w) = weak.upgrade() {
            about_window(&w.win);
        }
    });
    app.add_action(&about);
}

fn about_window(parent: &adw::ApplicationWindow) {
    adw::AboutWindow::builder()
        .transient_for(parent)
        .application_name(i18n("Komunikator"))
        .application_icon(APP_ID)
        .version(env!("CARGO_PKG_VERSION"))
        .comments(i18n("Voice and video calls through your own server"))
        .license_type(gtk::License::Gpl30)
        .developers(["The Komunikator authors"])
        .translator_credits(i18n("translator-credits"))
        .build()
        .present();
}
