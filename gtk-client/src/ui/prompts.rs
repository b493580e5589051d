//! The full-window prompts around a call: placing one ("Calling NICK…" with
//! Cancel) and answering one ("NICK is calling" with the caller's avatar,
//! Decline and Accept, and the address under Details).
//! Main thread. The buttons fire window actions; the window decides.

use adw::prelude::*;

use super::avatar::avatar;
use super::i18n::{i18n, i18n_f};
use super::screenshot;

/// "Calling NICK…" with Cancel.
pub struct Outgoing {
    /// The page.
    pub root: adw::StatusPage,
}

impl Outgoing {
    /// Builds the page; Cancel fires `win.hang-up`.
    pub fn new() -> Outgoing {
        let cancel = pill(&i18n("Cancel"), "destructive-action", "win.hang-up");
        let root = adw::StatusPage::builder()
            .icon_name("call-outgoing-symbolic")
            .description(i18n("Waiting for an answer"))
            .child(&cancel)
            .vexpand(true)
            .build();
        Outgoing { root }
    }

    /// Shows whom we are calling.
    pub fn show(&self, who: &str) {
        self.root.set_title(&i18n_f("Calling {}…", &[who]));
    }
}

/// "NICK is calling" with Decline and Accept, and Block under them.
pub struct Incoming {
    /// The page.
    pub root: adw::StatusPage,
    accept: gtk::Button,
    /// Holds the caller's avatar.
    face: gtk::Box,
    /// The caller's address, under "Details".
    address: gtk::Label,
    /// Who else is in the call we are invited into.
    others: std::cell::RefCell<Vec<String>>,
}

impl Incoming {
    /// Builds the page; the buttons fire `win.decline`, `win.accept` and
    /// `win.block-caller` (decline, and no more rings from that address
    /// while connected).
    pub fn new() -> Incoming {
        let decline = pill(&i18n("Decline"), "destructive-action", "win.decline");
        let accept = pill(&i18n("Accept"), "suggested-action", "win.accept");
        let buttons = gtk::Box::builder().spacing(24).halign(gtk::Align::Center).build();
        buttons.append(&decline);
        buttons.append(&accept);
        let block = gtk::Button::builder()
            .label(i18n("Block This Caller"))
            .tooltip_text(i18n("Decline, and take no more calls from this address until you reconnect"))
            .action_name("win.block-caller")
            .halign(gtk::Align::Center)
            .build();
        block.add_css_class("flat");
        let address = gtk::Label::builder().selectable(true).build();
        address.add_css_class("dim-label");
        let details = gtk::Expander::builder()
            .label(i18n("Details"))
            .child(&address)
            .halign(gtk::Align::Center)
            .build();
        let face = gtk::Box::builder().halign(gtk::Align::Center).build();
        let column = gtk::Box::builder().orientation(gtk::Orientation::Vertical).spacing(18).build();
        column.append(&face);
        column.append(&buttons);
        column.append(&block);
        column.append(&details);
        let root = adw::StatusPage::builder().child(&column).vexpand(true).build();
        Incoming { root, accept, face, address, others: Default::default() }
    }

    /// Shows who is calling (`who`, with the avatar of `nick`; the address
    /// `id` under Details) and puts the keyboard focus on Accept, so Enter
    /// or Space answers and Escape declines.
    pub fn show(&self, who: &str, nick: Option<&str>, id: &str) {
        self.root.set_title(&i18n_f("{} is calling", &[who]));
        while let Some(old) = self.face.first_child() {
            self.face.remove(&old);
        }
        self.face.append(&avatar(nick, 96));
        self.address.set_label(&i18n_f("Address: {}", &[id]));
        self.show_others();
        self.accept.grab_focus();
        screenshot::log_texts(&self.root, "prompt");
    }

    /// A new call rings: nobody else is known to be in it yet.
    pub fn clear_others(&self) {
        self.others.borrow_mut().clear();
        self.show_others();
    }

    /// `name` is already in the call we are invited into.
    pub fn add_other(&self, name: &str) {
        self.others.borrow_mut().push(name.to_owned());
        self.show_others();
        screenshot::log_texts(&self.root, "prompt");
    }

    fn show_others(&self) {
        self.root.set_description(self.others_text().as_deref());
    }

    /// "Also in the call: bob, cecylia", for an invitation into a group call.
    pub fn others_text(&self) -> Option<String> {
        let others = self.others.borrow();
        (!others.is_empty()).then(|| i18n_f("Also in the call: {}", &[&others.join(", ")]))
    }
}

fn pill(label: &str, style: &str, action: &str) -> gtk::Button {
    let b = gtk::Button::builder().label(label).action_name(action).halign(gtk::Align::Center).build();
    b.add_css_class("pill");
    b.add_css_class(style);
    b
}
