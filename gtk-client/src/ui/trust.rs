//! The warning shown when the server's certificate is not the pinned one:
//! what it may mean, both fingerprints (selectable, monospace) to compare
//! with the administrator's, and the ways on: trust the new certificate
//! (destructive, `win.trust-certificate`, Alt+T), change the server, or quit.
//! The window never retries by itself from here. Main thread.

use adw::prelude::*;

use super::i18n::{i18n, i18n_f};

/// "The server's identity has changed."
pub struct TrustPage {
    /// The page.
    pub root: adw::StatusPage,
    pinned: gtk::Label,
    presented: gtk::Label,
}

impl TrustPage {
    /// Builds the page.
    pub fn new() -> TrustPage {
        let pinned = fingerprint_label();
        let presented = fingerprint_label();
        let group =
            adw::PreferencesGroup::builder().title(i18n("Certificate Fingerprints (SHA-256)")).build();
        group.add(&fingerprint_row(&i18n("Trusted until now"), &pinned));
        group.add(&fingerprint_row(&i18n("Presented now"), &presented));
        let trust = gtk::Button::builder()
            .label(i18n("_Trust the New Certificate"))
            .use_underline(true)
            .action_name("win.trust-certificate")
            .build();
        trust.add_css_class("pill");
        trust.add_css_class("destructive-action");
        let change =
            gtk::Button::builder().label(i18n("Change Server…")).action_name("app.preferences").build();
        change.add_css_class("pill");
        let quit = gtk::Button::builder().label(i18n("Quit")).action_name("app.quit").build();
        quit.add_css_class("pill");
        let buttons = gtk::Box::builder().spacing(12).halign(gtk::Align::Center).build();
        buttons.append(&quit);
        buttons.append(&change);
        buttons.append(&trust);
        let body = gtk::Box::new(gtk::Orientation::Vertical, 24);
        body.append(&group);
        body.append(&buttons);
        let clamp = adw::Clamp::builder().maximum_size(720).child(&body).build();
        let root = adw::StatusPage::builder()
            .icon_name("dialog-warning-symbolic")
            .title(i18n("The Server's Identity Has Changed"))
            .child(&clamp)
            .vexpand(true)
            .build();
        // The fingerprints and buttons should fit without scrolling.
        root.add_css_class("compact");
        TrustPage { root, pinned, presented }
    }

    /// Shows the warning for `server` with both fingerprints.
    pub fn show(&self, server: &str, pinned: &str, presented: &str) {
        let text = i18n_f(
            "The server at {} presented a different certificate than the one trusted before. This happens when the server was reinstalled or its certificate replaced, but it can also mean that someone is intercepting the connection.",
            &[server],
        );
        let advice = i18n(
            "Ask the server's administrator for the fingerprint it prints when it starts, and trust the new certificate only if it matches.",
        );
        let description =
            format!("{}\n\n{}", glib::markup_escape_text(&text), glib::markup_escape_text(&advice));
        if self.root.description().as_deref() != Some(description.as_str()) {
            self.root.set_description(Some(&description));
        }
        for (label, text) in [(&self.pinned, pinned), (&self.presented, presented)] {
            if label.label() != text {
                label.set_label(text);
            }
        }
    }
}

fn fingerprint_label() -> gtk::Label {
    let label = gtk::Label::builder()
        .selectable(true)
        .wrap(true)
        .wrap_mode(gtk::pango::WrapMode::Char)
        .xalign(0.0)
        .hexpand(true)
        .build();
    label.add_css_class("monospace");
    label
}

fn fingerprint_row(title: &str, value: &gtk::Label) -> adw::PreferencesRow {
    let heading = gtk::Label::builder().label(title).xalign(0.0).build();
    heading.add_css_class("heading");
    let column = gtk::Box::builder()
        .orientation(gtk::Orientation::Vertical)
        .spacing(6)
        .margin_top(12)
        .margin_bottom(12)
        .margin_start(12)
        .margin_end(12)
        .build();
    column.append(&heading);
    column.append(value);
    adw::PreferencesRow::builder().child(&column).activatable(false).build()
}
