//! The in-call text chat panel: the conversation and an entry. Sending goes
//! through a callback to the engine's `msg`; received lines come from the
//! window. Main thread.

use adw::prelude::*;

use super::i18n::i18n;
use super::window::log;
use crate::text::{Kind, escape, isolate};

/// The most lines the conversation keeps; older ones are removed, so that a
/// flood of `msg` lines cannot grow the window without bound.
pub const MAX_CHAT_LINES: i32 = 500;

/// The chat panel.
pub struct Chat {
    /// The panel's root widget.
    pub root: gtk::Box,
    list: gtk::ListBox,
    /// The text entry.
    pub entry: gtk::Entry,
}

impl Chat {
    /// Builds the panel; `send` gets each line the user enters.
    pub fn new(send: impl Fn(&str) + 'static) -> Chat {
        let list = gtk::ListBox::builder().selection_mode(gtk::SelectionMode::None).build();
        list.add_css_class("navigation-sidebar");
        let placeholder = gtk::Label::new(Some(&i18n("Messages you exchange during the call appear here.")));
        placeholder.set_wrap(true);
        placeholder.add_css_class("dim-label");
        placeholder.set_margin_top(24);
        placeholder.set_margin_start(12);
        placeholder.set_margin_end(12);
        list.set_placeholder(Some(&placeholder));
        let scrolled = gtk::ScrolledWindow::builder().child(&list).vexpand(true).build();
        scrolled.set_hscrollbar_policy(gtk::PolicyType::Never);
        // The newest line in view: once a line is laid out, the list has
        // grown. (An idle callback did this, and never ran while video was
        // painted without pause on a slow machine.)
        scrolled.vadjustment().connect_upper_notify(|adj| adj.set_value(adj.upper()));
        let entry = gtk::Entry::builder()
            .placeholder_text(i18n("Write a message"))
            .secondary_icon_name("mail-send-symbolic")
            .margin_start(6)
            .margin_end(6)
            .margin_top(6)
            .margin_bottom(6)
            .build();
        entry.set_secondary_icon_tooltip_text(Some(&i18n("Send")));
        let root = gtk::Box::new(gtk::Orientation::Vertical, 0);
        root.set_width_request(280);
        root.add_css_class("background");
        let title = gtk::Label::new(Some(&i18n("Chat")));
        title.add_css_class("heading");
        title.set_margin_top(12);
        title.set_margin_bottom(6);
        root.append(&title);
        root.append(&gtk::Separator::new(gtk::Orientation::Horizontal));
        root.append(&scrolled);
        root.append(&entry);
        let send = std::rc::Rc::new(send);
        let submit = move |e: &gtk::Entry| {
            let text = e.text();
            if !text.trim().is_empty() {
                send(text.trim());
                e.set_text("");
            }
        };
        let s = submit.clone();
        entry.connect_activate(move |e| s(e));
        entry.connect_icon_press(move |e, _| submit(e));
        entry.add_controller(escape_clears_then_leaves(&entry));
        Chat { root, list, entry }
    }

    /// Adds a line from `from` (the peer's nick as shown), or ours when
    /// `None` ("You"), with the time it arrived (HH:MM). The text is shown
    /// with bidi and invisible characters escaped and isolated from the name
    /// ([`crate::text`]); past [`MAX_CHAT_LINES`] the oldest line goes.
    pub fn add(&self, text: &str, from: Option<&str>) {
        let who = from.map_or_else(|| i18n("You"), str::to_owned);
        let time = glib::DateTime::now_local().and_then(|t| t.format("%H:%M")).map(|t| t.to_string());
        if let Some(oldest) = self.list.row_at_index(MAX_CHAT_LINES - 1).and(self.list.row_at_index(0)) {
            self.list.remove(&oldest);
        }
        let text = isolate(&escape(text, Kind::Chat));
        let label = gtk::Label::builder()
            .label(format!(
                "<b>{}</b>  <span size=\"small\" alpha=\"60%\">{}</span>\n{}",
                glib::markup_escape_text(&who),
                time.unwrap_or_default(),
                glib::markup_escape_text(&text)
            ))
            .use_markup(true)
            .wrap(true)
            .wrap_mode(gtk::pango::WrapMode::WordChar)
            .xalign(0.0)
            .selectable(true)
            .build();
        self.list.append(&label);
        super::screenshot::log_texts(&self.list, "chat");
    }

    /// Forgets the conversation (a new call starts).
    pub fn clear(&self) {
        while let Some(row) = self.list.row_at_index(0) {
            self.list.remove(&row);
        }
        self.entry.set_text("");
    }
}

/// Escape in the entry clears an unsent line, or on an empty entry leaves
/// it; either way the key stops here, so it never reaches the window's
/// Escape (hang up). Runs in the capture phase, before the text widget.
/// Leaving is logged (the GUI tests press the next key only then).
fn escape_clears_then_leaves(entry: &gtk::Entry) -> gtk::EventControllerKey {
    let keys = gtk::EventControllerKey::new();
    keys.set_propagation_phase(gtk::PropagationPhase::Capture);
    let weak = entry.downgrade();
    keys.connect_key_pressed(move |_, key, _, mods| {
        let Some(entry) = weak.upgrade() else { return glib::Propagation::Proceed };
        if key != gtk::gdk::Key::Escape || !mods.is_empty() {
            return glib::Propagation::Proceed;
        }
        if entry.text().is_empty() {
            if let Some(root) = entry.root() {
                root.set_focus(None::<&gtk::Widget>);
                log("chat: the entry let go of the focus");
            }
        } else {
            entry.set_text("");
        }
        glib::Propagation::Stop
    });
    keys
}
