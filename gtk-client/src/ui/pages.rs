//! The pages shown before the user list: the first-run page that asks for
//! the server's address, and the connection status page (connecting, or
//! disconnected with the reason and the next retry). Main thread.

use adw::prelude::*;

use super::i18n::{i18n, i18n_f};

/// First run: "Where is your server?"
pub struct SetupPage {
    /// The page.
    pub root: adw::StatusPage,
    /// The server's IP address or host name.
    pub host: adw::EntryRow,
    /// The server's port.
    pub port: adw::EntryRow,
    /// Saves conf.txt and connects (`win.first-connect`).
    pub connect: gtk::Button,
    /// What was wrong with the last attempt.
    pub error: gtk::Label,
}

impl SetupPage {
    /// Builds the page.
    pub fn new() -> SetupPage {
        let host = adw::EntryRow::builder().title(i18n("Server address")).build();
        let port = adw::EntryRow::builder().title(i18n("Port")).text("12345").build();
        host.set_activates_default(true);
        port.set_activates_default(true);
        let group = adw::PreferencesGroup::new();
        group.add(&host);
        group.add(&port);
        let error = gtk::Label::builder().wrap(true).visible(false).build();
        error.add_css_class("error");
        let connect = gtk::Button::builder()
            .label(i18n("Connect"))
            .action_name("win.first-connect")
            .halign(gtk::Align::Center)
            .build();
        connect.add_css_class("pill");
        connect.add_css_class("suggested-action");
        let body = gtk::Box::new(gtk::Orientation::Vertical, 18);
        body.append(&group);
        body.append(&error);
        body.append(&connect);
        let clamp = adw::Clamp::builder().maximum_size(400).child(&body).build();
        let root = adw::StatusPage::builder()
            .icon_name("network-server-symbolic")
            .title(i18n("Welcome to Komunikator"))
            .description(i18n("Enter the address of your Komunikator server. Whoever runs it can tell you."))
            .child(&clamp)
            .vexpand(true)
            .build();
        SetupPage { root, host, port, connect, error }
    }
}

/// Connecting, or disconnected and waiting to retry.
pub struct StatusPage {
    /// The page.
    pub root: adw::StatusPage,
    spinner: gtk::Spinner,
    buttons: gtk::Box,
    retry: gtk::Label,
    details: gtk::Expander,
    detail: gtk::Label,
}

impl StatusPage {
    /// Builds the page; its buttons fire `win.reconnect` and `app.preferences`.
    pub fn new() -> StatusPage {
        let spinner = gtk::Spinner::builder().width_request(32).height_request(32).build();
        let retry = gtk::Button::builder().label(i18n("Try Again Now")).action_name("win.reconnect").build();
        retry.add_css_class("pill");
        retry.add_css_class("suggested-action");
        let change =
            gtk::Button::builder().label(i18n("Change Server…")).action_name("app.preferences").build();
        change.add_css_class("pill");
        let buttons = gtk::Box::builder().spacing(12).halign(gtk::Align::Center).build();
        buttons.append(&change);
        buttons.append(&retry);
        let when = gtk::Label::new(None);
        when.add_css_class("dim-label");
        // The error as the system reported it, for whoever helps the user.
        let detail = gtk::Label::builder().wrap(true).selectable(true).xalign(0.0).build();
        detail.add_css_class("monospace");
        detail.add_css_class("dim-label");
        let details =
            gtk::Expander::builder().label(i18n("Details")).child(&detail).halign(gtk::Align::Center).build();
        let body = gtk::Box::new(gtk::Orientation::Vertical, 12);
        body.append(&spinner);
        body.append(&when);
        body.append(&buttons);
        body.append(&details);
        let root = adw::StatusPage::builder().child(&body).vexpand(true).build();
        StatusPage { root, spinner, buttons, retry: when, details, detail }
    }

    /// Shows that a connection to `server` is being made.
    pub fn connecting(&self, server: &str) {
        self.root.set_icon_name(Some("network-transmit-receive-symbolic"));
        self.root.set_title(&i18n("Connecting…"));
        self.root.set_description(Some(server));
        self.spinner.set_visible(true);
        self.spinner.start();
        self.buttons.set_visible(false);
        self.retry.set_visible(false);
        self.details.set_visible(false);
    }

    /// Shows why there is no connection (`reason`, a sentence; `detail`, the
    /// error's own words, under Details), whether one had been made (`lost`),
    /// and when the next attempt is (`retry_in` whole seconds).
    pub fn offline(&self, reason: &str, detail: &str, lost: bool, retry_in: u64) {
        self.root.set_icon_name(Some("network-offline-symbolic"));
        self.root.set_title(&if lost { i18n("Disconnected") } else { i18n("Could Not Connect") });
        let reason = glib::markup_escape_text(reason);
        if self.root.description().as_deref() != Some(reason.as_str()) {
            super::window::log(&format!("status: {reason}"));
            self.root.set_description(Some(&reason));
        }
        let when = if retry_in == 0 {
            i18n("Trying again…")
        } else {
            i18n_f("Trying again in {} s.", &[&retry_in.to_string()])
        };
        self.retry.set_label(&when);
        self.retry.set_visible(true);
        self.detail.set_label(detail);
        self.details.set_visible(!detail.is_empty());
        self.spinner.stop();
        self.spinner.set_visible(false);
        self.buttons.set_visible(true);
    }
}
