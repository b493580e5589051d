//! Closing the window, and running in the background. Closing it during a
//! call asks first ("Hang up and close?"). With "Run in background" on
//! (Preferences, off by default), closing it when idle only hides it: the
//! connection stays up, a call rings as a notification (see `notify`), and
//! activating the application again shows the window. Quit (Ctrl+Q, a
//! signal) always ends the process, hanging up first. Inside the Flatpak,
//! the switch asks the Background portal for permission. Main thread.

use std::cell::RefCell;
use std::rc::Rc;

use adw::prelude::*;
use gtk::gio;

use super::i18n::{i18n, i18n_f};
use super::window::{Window, log};

/// Quits: closes the window for good, hanging up first (Ctrl+Q, SIGTERM).
pub fn quit(w: &Window) {
    w.quitting.set(true);
    if !w.win.is_visible() {
        // Hidden in the background: nothing shows, so nothing asks.
        w.shutdown();
        w.win.destroy();
        return;
    }
    w.win.close();
}

/// The window's close request: asks during a call, hides when running in
/// the background, else shuts the connection down and lets it close.
pub fn on_close_request(w: &Rc<Window>) -> glib::Propagation {
    if !w.quitting.get() && !w.model.borrow().call.is_idle() {
        confirm_hang_up(w);
        return glib::Propagation::Stop;
    }
    if !w.quitting.get() && w.launch.borrow().extra.background {
        hide(w);
        return glib::Propagation::Stop;
    }
    w.shutdown();
    glib::Propagation::Proceed
}

fn hide(w: &Window) {
    log("window hidden; running in the background");
    w.win.set_visible(false);
}

/// "Hang up and close?" over the window; Cancel (the default, and Escape)
/// keeps the call.
fn confirm_hang_up(w: &Rc<Window>) {
    let who = w.model.borrow().peer.clone();
    let dialog = adw::MessageDialog::new(
        Some(&w.win),
        Some(&i18n("Hang up and close?")),
        Some(&i18n_f("The call with {} ends when the window closes.", &[&who])),
    );
    dialog.add_responses(&[("cancel", &i18n("Cancel")), ("close", &i18n("Hang Up and Close"))]);
    dialog.set_response_appearance("close", adw::ResponseAppearance::Destructive);
    dialog.set_default_response(Some("cancel"));
    dialog.set_close_response("cancel");
    // Named like its heading, for window lists (and the GUI tests).
    dialog.set_title(Some(&i18n("Hang up and close?")));
    let weak = Rc::downgrade(w);
    dialog.connect_response(None, move |_, response| {
        let Some(w) = weak.upgrade() else { return };
        log(&format!("close during a call: {response}"));
        if response != "close" {
            return;
        }
        if w.launch.borrow().extra.background {
            w.with_engine(|e| e.hangup());
            hide(&w);
        } else {
            quit(&w);
        }
    });
    log("asking before closing during a call");
    dialog.present();
}

/// Whether this process runs inside a Flatpak sandbox.
pub fn in_flatpak() -> bool {
    std::path::Path::new("/.flatpak-info").exists()
}

/// When "Run in background" is on: inside the Flatpak, asks the Background
/// portal to let the app run without a window, and tells the user when it
/// says no; outside it nothing is needed.
pub fn request(w: &Rc<Window>) {
    if !w.launch.borrow().extra.background {
        return;
    }
    if !in_flatpak() {
        return log("running in the background is allowed (not sandboxed)");
    }
    let Some(bus) = w.app.dbus_connection() else {
        return log("background portal: no session bus");
    };
    let token = format!("komunikator{}", std::process::id());
    let sender = bus.unique_name().map(|n| n.trim_start_matches(':').replace('.', "_")).unwrap_or_default();
    let handle = format!("/org/freedesktop/portal/desktop/request/{sender}/{token}");
    // Subscribed before the call, on the path the portal will use, so the
    // answer cannot come first; dropped once it has come.
    let sub: Rc<RefCell<Option<gio::SignalSubscription>>> = Rc::default();
    let (weak, keep) = (Rc::downgrade(w), sub.clone());
    *sub.borrow_mut() = Some(bus.subscribe_to_signal(
        Some("org.freedesktop.portal.Desktop"),
        Some("org.freedesktop.portal.Request"),
        Some("Response"),
        Some(&handle),
        None,
        gio::DBusSignalFlags::NONE,
        move |signal| {
            if let Some(w) = weak.upgrade() {
                on_response(&w, signal.parameters);
            }
            drop(keep.borrow_mut().take());
        },
    ));
    let options = glib::VariantDict::new(None);
    options.insert("handle_token", &token);
    options.insert("reason", i18n("Receive calls while the window is closed"));
    options.insert("autostart", false);
    bus.call(
        Some("org.freedesktop.portal.Desktop"),
        "/org/freedesktop/portal/desktop",
        "org.freedesktop.portal.Background",
        "RequestBackground",
        Some(&("", options.end()).to_variant()),
        glib::VariantTy::new("(o)").ok(),
        gio::DBusCallFlags::NONE,
        -1,
        None::<&gio::Cancellable>,
        move |reply| {
            if let Err(e) = reply {
                log(&format!("background portal: {e}"));
                drop(sub.borrow_mut().take());
            }
        },
    );
}

fn on_response(w: &Rc<Window>, params: &glib::Variant) {
    let (code, results) =
        params.get::<(u32, glib::VariantDict)>().unwrap_or((2, glib::VariantDict::new(None)));
    let allowed = code == 0 && results.lookup::<bool>("background").ok().flatten().unwrap_or(false);
    log(&format!("background portal: response {code}, allowed: {allowed}"));
    if !allowed {
        w.toast(&i18n(
            "Running in the background was not allowed; calls arrive only while the window is open",
        ));
    }
}
