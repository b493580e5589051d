//! Desktop notifications of calls. A call that rings while the window is
//! not the active one (another window has the focus, or the window is
//! hidden in the background) sends a `GNotification` with Answer and Decline
//! buttons instead of raising the window; the buttons fire `app.answer-call`
//! and `app.decline-call` with the caller's id as target, so a notification
//! left over from an earlier call cannot answer another one. The
//! notification is withdrawn as soon as the call stops ringing; a caller who
//! gave up leaves a "Missed call" notification. Clicking a notification
//! fires `app.show-window`. Main thread.
//!
//! GNOME Shell (and the notification portal inside the Flatpak) activates
//! these actions over D-Bus on the application's object path; see
//! [`own_name`] for how the name is found when several windows run.

use std::cell::Cell;
use std::rc::Rc;

use adw::prelude::*;
use gtk::gio;

use super::i18n::{i18n, i18n_f};
use super::window::{Window, log};
use crate::call::{CallState, EndReason};

/// The id of the incoming-call notification.
const INCOMING: &str = "incoming-call";
/// The id of the missed-call notification.
const MISSED: &str = "missed-call";

/// What the notifications of this window are showing.
#[derive(Debug, Default)]
pub struct Notices {
    /// The incoming-call notification is out.
    incoming: Cell<bool>,
}

/// Adds `app.answer-call`, `app.decline-call` (both take the caller's id)
/// and `app.show-window` for the notifications' buttons.
pub fn install(app: &adw::Application, w: &Rc<Window>) {
    for (name, answer) in [("answer-call", true), ("decline-call", false)] {
        let action = gio::SimpleAction::new(name, Some(glib::VariantTy::STRING));
        let weak = Rc::downgrade(w);
        action.connect_activate(move |_, target| {
            let caller = target.and_then(glib::Variant::str).unwrap_or_default();
            if let Some(w) = weak.upgrade() {
                answer_from_notification(&w, caller, answer);
            }
        });
        app.add_action(&action);
    }
    let show = gio::SimpleAction::new("show-window", None);
    let weak = Rc::downgrade(w);
    show.connect_activate(move |_, _| {
        if let Some(w) = weak.upgrade() {
            w.win.present();
        }
    });
    app.add_action(&show);
}

/// Answers or declines the ringing call, if it is still the one from `caller`.
fn answer_from_notification(w: &Rc<Window>, caller: &str, answer: bool) {
    let ringing =
        matches!(&w.model.borrow().call, CallState::Ringing { caller: c, .. } if c.to_string() == caller);
    let verb = if answer { "answer" } else { "decline" };
    if !ringing {
        return log(&format!("notification: {verb} ignored, {caller} is not calling"));
    }
    log(&format!("notification: {verb} the call from {caller}"));
    w.with_engine(|e| e.answer(answer));
    if answer {
        w.win.present();
    }
}

/// The incoming-call page is shown: when the window is not the one the user
/// is looking at, a notification tells them (the window is not raised).
pub fn incoming(w: &Window) {
    if w.win.is_visible() && w.win.is_active() {
        return;
    }
    let caller = match &w.model.borrow().call {
        CallState::Ringing { caller, .. } => caller.to_string(),
        _ => return,
    };
    let who = w.model.borrow().peer.clone();
    let n = gio::Notification::new(&i18n_f("{} is calling", &[&who]));
    // An invitation into a group call says who else is in it.
    let body = w.incoming.others_text().unwrap_or_else(|| i18n("Incoming call"));
    n.set_body(Some(&body));
    n.set_priority(gio::NotificationPriority::Urgent);
    n.set_category(Some("call.incoming"));
    n.set_icon(&gio::ThemedIcon::new("call-incoming-symbolic"));
    n.set_default_action("app.show-window");
    let target = caller.to_variant();
    n.add_button_with_target_value(&i18n("Decline"), "app.decline-call", Some(&target));
    n.add_button_with_target_value(&i18n("Answer"), "app.answer-call", Some(&target));
    w.app.send_notification(Some(INCOMING), &n);
    w.notices.incoming.set(true);
    log(&format!("notification: incoming call from {caller}"));
}

/// The invitation ringing names one more person already in the call: a
/// notification already out says so too (sent again, it replaces itself).
pub fn others_changed(w: &Window) {
    if w.notices.incoming.get() {
        incoming(w);
    }
}

/// The call stopped ringing (answered, declined, cancelled or timed out):
/// the incoming-call notification goes away.
pub fn ring_over(w: &Window) {
    if w.notices.incoming.replace(false) {
        w.app.withdraw_notification(INCOMING);
        log("notification: withdrawn");
    }
}

/// A call ended with `reason`: a ringing call the caller gave up on, while
/// its notification was out, leaves a "Missed call" notification.
pub fn call_ended(w: &Window, reason: EndReason) {
    let gave_up = matches!(reason, EndReason::Cancelled | EndReason::Timeout | EndReason::PeerDisconnected);
    let ringing = matches!(w.model.borrow().call, CallState::Ringing { .. });
    if !(gave_up && ringing && w.notices.incoming.get()) {
        return;
    }
    let who = w.model.borrow().peer.clone();
    let n = gio::Notification::new(&i18n_f("Missed call from {}", &[&who]));
    n.set_category(Some("call.unanswered"));
    n.set_icon(&gio::ThemedIcon::new("call-missed-symbolic"));
    n.set_default_action("app.show-window");
    w.app.send_notification(Some(MISSED), &n);
    log("notification: missed call");
}

/// Owns the application id on the session bus when nobody else does (a
/// window started with arguments is not a unique application, see
/// `ui::run`), so that GNOME Shell, which activates notification actions on
/// the bus name of the application id, reaches this process. A second
/// window on the same desktop does without: its notifications still show,
/// and their buttons reach the first window, which ignores them (the caller
/// differs). The name is released when the process exits.
pub fn own_name(app: &adw::Application) {
    let Some(bus) = app.dbus_connection() else { return };
    let id = super::APP_ID;
    bus.call(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
        Some(&(id, 4u32).to_variant()), // DBUS_NAME_FLAG_DO_NOT_QUEUE
        glib::VariantTy::new("(u)").ok(),
        gio::DBusCallFlags::NONE,
        -1,
        None::<&gio::Cancellable>,
        move |reply| match reply.map(|v| v.get::<(u32,)>()) {
            Ok(Some((1 | 4,))) => log(&format!("owns {id} on the session bus")),
            Ok(_) => log(&format!("{id} is owned by another window on the session bus")),
            Err(e) => log(&format!("could not ask for {id} on the session bus: {e}")),
        },
    );
}
