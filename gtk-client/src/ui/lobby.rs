//! The main view's list of other users: avatar, nick, a free/busy badge
//! and a Call button on each free user, the address in the row's details, a search bar, and an empty state that says
//! what to do. It only shows a [`Roster`]; the window owns the roster.
//! Main thread.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use adw::prelude::*;

use komunikator_protocol::ClientId;

use super::avatar::avatar;
use super::i18n::{i18n, i18n_f};
use super::screenshot;
use super::state::{Roster, User};

/// The list page.
pub struct Lobby {
    /// The page's root widget.
    pub root: gtk::Box,
    /// The search bar (Ctrl+F toggles it).
    pub search_bar: gtk::SearchBar,
    search: gtk::SearchEntry,
    list: gtk::ListBox,
    stack: gtk::Stack,
    empty: adw::StatusPage,
    shown: RefCell<(Roster, bool)>,
    /// Whose rows are open on their details, kept across redraws.
    expanded: RefCell<BTreeSet<ClientId>>,
    on_call: Box<dyn Fn(User)>,
}

impl Lobby {
    /// Builds the page; `on_call` runs when a Call button is pressed.
    pub fn new(on_call: impl Fn(User) + 'static) -> Rc<Lobby> {
        let search = gtk::SearchEntry::builder().placeholder_text(i18n("Search by name or address")).build();
        let search_bar = gtk::SearchBar::builder().child(&search).show_close_button(true).build();
        search_bar.connect_entry(&search);
        let (list, scrolled) = boxed_list();
        let empty = adw::StatusPage::builder()
            .icon_name("system-users-symbolic")
            .title(i18n("Nobody else is online"))
            .vexpand(true)
            .build();
        let no_match = adw::StatusPage::builder()
            .icon_name("edit-find-symbolic")
            .title(i18n("No one matches the search"))
            .description(i18n("Try another name or address."))
            .vexpand(true)
            .build();
        let stack = gtk::Stack::new();
        stack.add_named(&scrolled, Some("list"));
        stack.add_named(&empty, Some("empty"));
        stack.add_named(&no_match, Some("no-match"));
        let root = gtk::Box::new(gtk::Orientation::Vertical, 0);
        root.append(&search_bar);
        root.append(&stack);
        let lobby = Rc::new(Lobby {
            root,
            search_bar,
            search,
            list,
            stack,
            empty,
            shown: RefCell::new((Roster::default(), false)),
            expanded: RefCell::default(),
            on_call: Box::new(on_call),
        });
        let weak = Rc::downgrade(&lobby);
        lobby.search.connect_search_changed(move |_| {
            if let Some(lobby) = weak.upgrade() {
                lobby.render();
            }
        });
        lobby
    }

    /// Shows `roster`; Call buttons are active only when `can_call`.
    pub fn show(self: &Rc<Self>, roster: &Roster, can_call: bool, server: &str) {
        self.empty.set_description(Some(&i18n_f(
            "Ask someone to start Komunikator and connect to {}. They will appear here, and you can call them.",
            &[server],
        )));
        let changed = {
            let shown = self.shown.borrow();
            shown.0 != *roster || shown.1 != can_call
        };
        if changed {
            *self.shown.borrow_mut() = (roster.clone(), can_call);
            self.render();
        }
    }

    fn render(self: &Rc<Self>) {
        while let Some(row) = self.list.row_at_index(0) {
            self.list.remove(&row);
        }
        let (roster, can_call) = &*self.shown.borrow();
        let users = roster.visible(&self.search.text());
        let page = match (roster.is_empty(), users.is_empty()) {
            (true, _) => "empty",
            (false, true) => "no-match",
            (false, false) => "list",
        };
        self.stack.set_visible_child_name(page);
        for user in users {
            self.list.append(&self.row(user, *can_call));
        }
        screenshot::log_texts(&self.list, "people");
    }

    fn row(self: &Rc<Self>, user: User, can_call: bool) -> adw::ExpanderRow {
        let title = match &user.nick {
            Some(_) => glib::markup_escape_text(&user.label()).to_string(),
            None => i18n("Anonymous"),
        };
        let row = adw::ExpanderRow::builder().title(title).build();
        row.add_prefix(&avatar(user.nick.as_deref(), 32));
        row.add_row(&details(&user));
        let badge = gtk::Label::new(Some(&if user.free { i18n("Free") } else { i18n("Busy") }));
        badge.add_css_class("caption-heading");
        badge.add_css_class(if user.free { "success" } else { "warning" });
        badge.set_valign(gtk::Align::Center);
        let call = gtk::Button::builder()
            .icon_name("call-start-symbolic")
            .valign(gtk::Align::Center)
            .tooltip_text(i18n_f("Call {}", &[&user.label()]))
            .sensitive(can_call && user.free)
            .build();
        call.add_css_class("circular");
        call.add_css_class("suggested-action");
        call.set_visible(user.free);
        call.update_property(&[gtk::accessible::Property::Label(&i18n_f("Call {}", &[&user.label()]))]);
        let weak = Rc::downgrade(self);
        let id = user.id;
        row.set_expanded(self.expanded.borrow().contains(&id));
        row.connect_expanded_notify(move |r| {
            if let Some(lobby) = weak.upgrade() {
                let mut open = lobby.expanded.borrow_mut();
                if r.is_expanded() {
                    open.insert(id)
                } else {
                    open.remove(&id)
                };
            }
        });
        let weak = Rc::downgrade(self);
        call.connect_clicked(move |_| {
            if let Some(lobby) = weak.upgrade() {
                (lobby.on_call)(user.clone());
            }
        });
        // Actions go in front of those added before: the badge, then Call.
        row.add_action(&call);
        row.add_action(&badge);
        row
    }
}

/// The row under a person that their row expands to: the address, which
/// the title no longer shows, selectable so it can be copied.
fn details(user: &User) -> adw::ActionRow {
    let address =
        gtk::Label::builder().label(user.id.to_string()).selectable(true).valign(gtk::Align::Center).build();
    address.add_css_class("dim-label");
    let row = adw::ActionRow::builder().title(i18n("Address")).build();
    row.add_suffix(&address);
    row
}

/// An empty boxed list, clamped to 640 px with the page's margins, in a
/// vertical scroller: the people list and the call history.
pub(super) fn boxed_list() -> (gtk::ListBox, gtk::ScrolledWindow) {
    let list = gtk::ListBox::builder().selection_mode(gtk::SelectionMode::None).build();
    list.add_css_class("boxed-list");
    let clamp = adw::Clamp::builder().maximum_size(640).child(&list).margin_top(18).margin_bottom(18).build();
    clamp.set_margin_start(12);
    clamp.set_margin_end(12);
    let scrolled = gtk::ScrolledWindow::builder().child(&clamp).vexpand(true).build();
    scrolled.set_hscrollbar_policy(gtk::PolicyType::Never);
    (list, scrolled)
}
