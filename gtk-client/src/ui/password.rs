//! The page that asks for the server's password: why it is asked (required,
//! wrong, or too many attempts with a countdown), a password entry, a
//! "Remember" check, and Log In (`win.submit-password`; Enter in the entry
//! or Alt+L). While the server is rate-limiting, Log In stays insensitive,
//! so the window does not hammer it. Main thread.

use adw::prelude::*;

use super::i18n::{i18n, i18n_f};

/// Why the password is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The server wants one (`error auth-required`).
    Required,
    /// The last one was wrong (`error auth-failed`).
    Wrong,
    /// Too many wrong ones (`error rate-limited`): wait this many more seconds.
    Limited(u64),
}

/// "Password Required."
pub struct PasswordPage {
    /// The page.
    pub root: adw::StatusPage,
    /// The password.
    pub entry: adw::PasswordEntryRow,
    /// Save the password with the server's pinned certificate.
    pub remember: gtk::CheckButton,
    submit: gtk::Button,
    error: gtk::Label,
}

impl PasswordPage {
    /// Builds the page.
    pub fn new() -> PasswordPage {
        let entry = adw::PasswordEntryRow::builder().title(i18n("Password")).build();
        entry.connect_entry_activated(|row| {
            let _ = row.activate_action("win.submit-password", None);
        });
        let group = adw::PreferencesGroup::new();
        group.add(&entry);
        let remember = gtk::CheckButton::with_mnemonic(&i18n("_Remember the password on this computer"));
        let error = gtk::Label::builder().wrap(true).visible(false).build();
        error.add_css_class("error");
        let submit = gtk::Button::builder()
            .label(i18n("_Log In"))
            .use_underline(true)
            .action_name("win.submit-password")
            .build();
        submit.add_css_class("pill");
        submit.add_css_class("suggested-action");
        let change =
            gtk::Button::builder().label(i18n("Change Server…")).action_name("app.preferences").build();
        change.add_css_class("pill");
        let buttons = gtk::Box::builder().spacing(12).halign(gtk::Align::Center).build();
        buttons.append(&change);
        buttons.append(&submit);
        let body = gtk::Box::new(gtk::Orientation::Vertical, 18);
        body.append(&group);
        body.append(&remember);
        body.append(&error);
        body.append(&buttons);
        let clamp = adw::Clamp::builder().maximum_size(400).child(&body).build();
        let root = adw::StatusPage::builder()
            .icon_name("dialog-password-symbolic")
            .title(i18n("Password Required"))
            .child(&clamp)
            .vexpand(true)
            .build();
        PasswordPage { root, entry, remember, submit, error }
    }

    /// Shows why the password of `server` is asked for.
    pub fn show(&self, server: &str, ask: Ask) {
        self.root.set_description(Some(&glib::markup_escape_text(&i18n_f(
            "The server at {} is protected by a password. Whoever runs it can tell you.",
            &[server],
        ))));
        let problem = match ask {
            Ask::Required => None,
            Ask::Wrong => Some(i18n("The password was wrong. Try again.")),
            Ask::Limited(0) => Some(i18n("Too many attempts. You can try again now.")),
            Ask::Limited(left) => Some(i18n_f(
                "Too many attempts, wait a minute. You can try again in {} s.",
                &[&left.to_string()],
            )),
        };
        self.error.set_visible(problem.is_some());
        self.error.set_label(&problem.unwrap_or_default());
        self.submit.set_sensitive(!matches!(ask, Ask::Limited(1..)));
    }
}
