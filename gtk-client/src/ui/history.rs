//! The History page and the window's side of the call history: the
//! [`Journal`] in the window's model (the [`CallLog`] with its file and the
//! [`Tracker`] fed from the engine's call states), the "People"/"History"
//! switcher with a badge counting missed calls not yet seen, the list with a
//! Call back button per entry, and the words for a call's end with its
//! length ("Call ended, 3:12"). Main thread.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use adw::prelude::*;

use super::i18n::{i18n, i18n_f};
use super::state::{Roster, User, end_message};
use super::window::{Window, log};
use crate::call::{CallState, EndReason};
use crate::history::{self, CallLog, Direction, Entry, Outcome, Tracker};
use crate::text::nick_label;

/// The call history as the window keeps it.
#[derive(Debug)]
pub struct Journal {
    /// The calls, as loaded and since recorded.
    pub log: CallLog,
    /// Follows the call in progress.
    pub tracker: Tracker,
    /// The file; `None` when it could not be read (it is then not overwritten).
    pub path: Option<PathBuf>,
    /// Missed calls since the History page was last looked at.
    pub unseen: u32,
    /// Bumped for every change, so the page redraws only then.
    pub revision: u64,
}

impl Journal {
    /// Loads the history from its file; a damaged or unreadable file is
    /// logged, never fatal.
    pub fn load() -> Journal {
        let path = history::default_path();
        let (log, path) = match history::load(&path) {
            Ok(l) => {
                if l.skipped > 0 || l.truncated {
                    log(&format!(
                        "history: {} damaged lines skipped in {}{}",
                        l.skipped,
                        path.display(),
                        if l.truncated { ", only its end read" } else { "" }
                    ));
                }
                (l.log, Some(path))
            }
            Err(e) => {
                log(&format!("{e}; the history is not saved this time"));
                (CallLog::default(), None)
            }
        };
        Journal { log, tracker: Tracker::default(), path, unseen: 0, revision: 0 }
    }

    /// Follows the engine's new call state.
    pub fn on_state(&mut self, state: &CallState, roster: &Roster) {
        self.tracker.on_state(state, SystemTime::now(), |id| roster.nick_of(id));
    }

    /// The call ended: records and saves its entry, if one was followed. A
    /// missed call counts as unseen unless the History view is the one the
    /// window goes back to (`in_view`).
    pub fn on_end(&mut self, reason: EndReason, in_view: bool) -> Option<Entry> {
        let entry = self.tracker.on_end(reason, Instant::now())?;
        log(&format!("history: {}", entry.to_line().replace('\t', " ")));
        if entry.is_missed() && !in_view {
            self.unseen = self.unseen.saturating_add(1);
            log(&format!("history: missed call from {}, {} unseen", entry.peer, self.unseen));
        }
        self.log.push(entry.clone());
        self.revision += 1;
        if let Some(path) = &self.path
            && let Err(e) = history::save(path, &self.log)
        {
            log(&e.to_string());
        }
        Some(entry)
    }
}

/// What the user is told when a call ends: [`end_message`], and for an
/// answered call its length, also when the user hung up themselves.
pub fn ended_message(reason: EndReason, who: &str, entry: Option<&Entry>) -> Option<String> {
    let Some(Outcome::Answered(length)) = entry.map(|e| e.outcome) else {
        return end_message(reason, who);
    };
    let length = history::format_duration(length);
    match reason {
        EndReason::LocalHangup => Some(i18n_f("Call ended, {}", &[&length])),
        EndReason::PeerHangup => Some(i18n_f("{} hung up, {}", &[who, &length])),
        _ => end_message(reason, who).map(|m| format!("{m} ({length})")),
    }
}

/// The user in `roster` that `peer` (a nick or an id) names.
fn find(roster: &Roster, peer: &str) -> Option<User> {
    let key = komunikator_protocol::nick_key(peer);
    roster.visible("").into_iter().find(|u| {
        u.id.to_string() == peer
            || u.nick.as_deref().is_some_and(|n| komunikator_protocol::nick_key(n) == key)
    })
}

/// The People and History views with their switcher; it replaces the
/// bare user list as the window's "lobby" page.
pub struct Home {
    /// The page's root widget.
    pub root: gtk::Box,
    stack: adw::ViewStack,
    history: adw::ViewStackPage,
    list: gtk::ListBox,
    pages: gtk::Stack,
    shown: RefCell<Option<(u64, Roster, bool, u64)>>,
    on_call_back: Box<dyn Fn(&str)>,
}

impl Home {
    /// Builds the views around the user list `people`; `on_call_back` runs
    /// with an entry's peer when its Call back button is pressed.
    pub fn new(people: &gtk::Widget, on_call_back: impl Fn(&str) + 'static) -> Rc<Home> {
        let stack = adw::ViewStack::builder().vexpand(true).build();
        stack.add_titled_with_icon(people, Some("people"), &i18n("People"), "system-users-symbolic");
        let (list, scrolled) = super::lobby::boxed_list();
        let empty = adw::StatusPage::builder()
            .icon_name("document-open-recent-symbolic")
            .title(i18n("No calls yet"))
            .description(i18n("Calls you make and receive will be listed here."))
            .vexpand(true)
            .build();
        let pages = gtk::Stack::new();
        pages.add_named(&scrolled, Some("list"));
        pages.add_named(&empty, Some("empty"));
        let history = stack.add_titled_with_icon(
            &pages,
            Some("history"),
            &i18n("History"),
            "document-open-recent-symbolic",
        );
        let switcher = adw::ViewSwitcher::builder()
            .stack(&stack)
            .policy(adw::ViewSwitcherPolicy::Wide)
            .halign(gtk::Align::Center)
            .margin_top(6)
            .build();
        let root = gtk::Box::new(gtk::Orientation::Vertical, 0);
        root.append(&switcher);
        root.append(&stack);
        Rc::new(Home {
            root,
            stack,
            history,
            list,
            pages,
            shown: RefCell::new(None),
            on_call_back: Box::new(on_call_back),
        })
    }

    /// Whether the History view is the one showing.
    pub fn showing_history(&self) -> bool {
        self.stack.visible_child_name().as_deref() == Some("history")
    }

    /// Shows `journal`; Call back is active for peers online and free when
    /// `can_call`. Redraws only when something shown changed.
    pub fn show(self: &Rc<Self>, journal: &Journal, roster: &Roster, can_call: bool) {
        let unseen = if self.showing_history() { 0 } else { journal.unseen };
        self.history.set_needs_attention(unseen > 0);
        self.history.set_badge_number(unseen);
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60);
        let key = (journal.revision, roster.clone(), can_call, minute);
        if self.shown.borrow().as_ref() == Some(&key) {
            return;
        }
        *self.shown.borrow_mut() = Some(key);
        while let Some(row) = self.list.row_at_index(0) {
            self.list.remove(&row);
        }
        self.pages.set_visible_child_name(if journal.log.is_empty() { "empty" } else { "list" });
        let now = minute * 60;
        for entry in journal.log.newest_first() {
            let user = find(roster, &entry.peer).filter(|u| can_call && u.free);
            self.list.append(&self.row(entry, user, now));
        }
        if self.showing_history() {
            self.log_positions();
        }
    }

    fn row(self: &Rc<Self>, entry: &Entry, user: Option<User>, now: u64) -> adw::ActionRow {
        let who = nick_label(&entry.peer);
        let row = adw::ActionRow::builder()
            .title(glib::markup_escape_text(&who).as_str())
            .subtitle(glib::markup_escape_text(&describe(entry, now)).as_str())
            .build();
        let icon = gtk::Image::from_icon_name(match (entry.direction, entry.outcome) {
            (_, Outcome::Missed) => "call-missed-symbolic",
            (Direction::Incoming, _) => "call-incoming-symbolic",
            (Direction::Outgoing, _) => "call-outgoing-symbolic",
        });
        if entry.is_missed() {
            icon.add_css_class("error");
            row.add_css_class("error");
        }
        row.add_prefix(&icon);
        let button = gtk::Button::builder()
            .icon_name("call-start-symbolic")
            .valign(gtk::Align::Center)
            .sensitive(user.is_some())
            .tooltip_text(match &user {
                Some(_) => i18n_f("Call {} back", &[&who]),
                None => i18n_f("{} is not online or is busy", &[&who]),
            })
            .build();
        button.add_css_class("circular");
        button.add_css_class("suggested-action");
        button.update_property(&[gtk::accessible::Property::Label(&i18n_f("Call {} back", &[&who]))]);
        let (weak, peer) = (Rc::downgrade(self), entry.peer.clone());
        button.connect_clicked(move |_| {
            if let Some(home) = weak.upgrade() {
                (home.on_call_back)(&peer);
            }
        });
        row.add_suffix(&button);
        row
    }

    /// Logs where each Call back button is in the window, once drawn (and
    /// after the page's screenshot): the GUI tests click there.
    fn log_positions(&self) {
        let list = self.list.clone();
        glib::timeout_add_local_once(Duration::from_millis(800), move || {
            let Some(native) = list.native() else { return };
            let (dx, dy) = native.surface_transform();
            let mut i = 0;
            while let Some(row) = list.row_at_index(i) {
                i += 1;
                let Some(row) = row.downcast_ref::<adw::ActionRow>() else { continue };
                let Some(button) = last_child_button(row.upcast_ref()) else { continue };
                let centre =
                    gtk::graphene::Point::new(button.width() as f32 / 2.0, button.height() as f32 / 2.0);
                if let Some(p) = button.compute_point(&native, &centre) {
                    let (x, y) = (f64::from(p.x()) + dx, f64::from(p.y()) + dy);
                    log(&format!("history: call back {} at {x:.0},{y:.0}", row.title()));
                }
            }
        });
    }
}

/// The last button inside `widget` (the row's Call back button).
fn last_child_button(widget: &gtk::Widget) -> Option<gtk::Button> {
    let mut found = None;
    let mut child = widget.first_child();
    while let Some(c) = child {
        if let Ok(b) = c.clone().downcast::<gtk::Button>() {
            found = Some(b);
        } else if let Some(b) = last_child_button(&c) {
            found = Some(b);
        }
        child = c.next_sibling();
    }
    found
}

/// "Missed · 5 min ago", "Outgoing · 3:12 · yesterday".
fn describe(entry: &Entry, now: u64) -> String {
    let what = match (entry.direction, entry.outcome) {
        (_, Outcome::Answered(d)) => {
            let dir =
                if entry.direction == Direction::Incoming { i18n("Incoming") } else { i18n("Outgoing") };
            format!("{dir} · {}", history::format_duration(d))
        }
        (_, Outcome::Missed) => i18n("Missed"),
        (Direction::Incoming, Outcome::Declined) => i18n("Declined"),
        (Direction::Outgoing, Outcome::Declined) => i18n("Declined by them"),
        (_, Outcome::Unanswered) => i18n("No answer"),
        (_, Outcome::Failed) => i18n("Did not get through"),
    };
    format!("{what} · {}", when(entry.start, now))
}

/// How long ago `start` was, in words.
fn when(start: u64, now: u64) -> String {
    let ago = now.saturating_sub(start);
    match ago {
        0..60 => i18n("just now"),
        60..3600 => i18n_f("{} min ago", &[&(ago / 60).to_string()]),
        3600..86400 => i18n_f("{} h ago", &[&(ago / 3600).to_string()]),
        _ => glib::DateTime::from_unix_local(i64::try_from(start).unwrap_or(0))
            .and_then(|t| t.format("%x %H:%M"))
            .map_or_else(|_| String::new(), |s| s.to_string()),
    }
}

impl Window {
    /// Whenever the History view is shown, its missed calls count as seen.
    /// Alt+1 and Alt+2 switch between People and History.
    pub(super) fn watch_history(self: &Rc<Self>) {
        let shortcuts = gtk::ShortcutController::new();
        shortcuts.set_scope(gtk::ShortcutScope::Global);
        for (key, view) in [("<Alt>1", "people"), ("<Alt>2", "history")] {
            let stack = self.home.stack.clone();
            let action = gtk::CallbackAction::new(move |_, _| {
                // Only where the views are on screen (not during a call).
                let shown = stack.is_mapped();
                if shown {
                    stack.set_visible_child_name(view);
                }
                glib::Propagation::from(shown)
            });
            shortcuts.add_shortcut(gtk::Shortcut::new(gtk::ShortcutTrigger::parse_string(key), Some(action)));
        }
        self.win.add_controller(shortcuts);
        let weak = Rc::downgrade(self);
        self.home.stack.connect_visible_child_name_notify(move |stack| {
            let Some(w) = weak.upgrade() else { return };
            if stack.visible_child_name().as_deref() == Some("history") {
                log("history page: shown");
                w.model.borrow_mut().history.unseen = 0;
                w.home.log_positions();
                w.shoot_later("history", &w.win.clone().upcast());
            }
            w.update_view();
        });
    }

    /// Calls `peer` from the history, if it is online.
    pub(super) fn call_back(self: &Rc<Self>, peer: &str) {
        let user = find(&self.model.borrow().roster, peer);
        // The list is rebuilt when the peer's presence changes: no focus
        // is left on a button that is going away, nor moved onto a hidden one.
        gtk::prelude::GtkWindowExt::set_focus(&self.win, None::<&gtk::Widget>);
        match user {
            Some(u) => self.dial(&u.target(), &u.label()),
            None => self.toast(&i18n_f("{} is not online or is busy", &[&nick_label(peer)])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(secs: u64) -> Entry {
        let outcome = Outcome::Answered(Duration::from_secs(secs));
        Entry { peer: "ala".into(), direction: Direction::Outgoing, outcome, start: 0 }
    }

    #[test]
    fn both_sides_are_told_how_long_the_call_was() {
        let e = answered(192);
        assert_eq!(
            ended_message(EndReason::LocalHangup, "ala", Some(&e)).as_deref(),
            Some("Call ended, 3:12")
        );
        assert_eq!(
            ended_message(EndReason::PeerHangup, "ala", Some(&e)).as_deref(),
            Some("ala hung up, 3:12")
        );
        let long = answered(3725);
        assert_eq!(
            ended_message(EndReason::LocalHangup, "ala", Some(&long)).as_deref(),
            Some("Call ended, 1:02:05")
        );
        // A call that was never answered: as before.
        assert_eq!(ended_message(EndReason::LocalHangup, "ala", None), None);
        let missed = Entry { outcome: Outcome::Missed, ..answered(0) };
        assert_eq!(
            ended_message(EndReason::Timeout, "ala", Some(&missed)),
            end_message(EndReason::Timeout, "ala")
        );
    }

    #[test]
    fn times_read_as_how_long_ago() {
        assert_eq!(when(1000, 1030), "just now");
        assert_eq!(when(1000, 1000 + 5 * 60), "5 min ago");
        assert_eq!(when(1000, 1000 + 3 * 3600), "3 h ago");
        assert!(!when(0, 10 * 86400).is_empty());
    }
}
