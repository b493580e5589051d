//! Fullscreen: `win.fullscreen` toggles it (F11, or a double-click on the
//! peer's picture), and Escape leaves it. That Escape comes before the
//! window's Escape (hang up), so leaving fullscreen never ends the call;
//! while a text field has the focus (the chat entry) Escape is the field's
//! and this stands aside. Main thread.

use std::rc::Rc;

use adw::prelude::*;

use super::window::{Window, log};

/// Adds `win.fullscreen`, its F11 accelerator, the double-click on the
/// peer's picture and Escape to leave.
pub fn install(w: &Rc<Window>) {
    super::actions::add(w, "fullscreen", |w| {
        let on = !w.win.is_fullscreen();
        log(&format!("fullscreen: asked {}", if on { "on" } else { "off" }));
        w.win.set_fullscreened(on);
    });
    w.app.set_accels_for_action("win.fullscreen", &["F11"]);
    w.win.connect_fullscreened_notify(|win| {
        log(&format!("fullscreen: {}", if win.is_fullscreen() { "on" } else { "off" }));
    });
    let double = gtk::GestureClick::new();
    double.connect_pressed(|gesture, presses, _, _| {
        if presses == 2 {
            if let Some(widget) = gesture.widget() {
                let _ = widget.activate_action("win.fullscreen", None);
            }
        }
    });
    w.call.remote.add_controller(double);
    w.win.add_controller(escape_leaves());
}

/// Escape while fullscreen leaves it and stops there, unless a text field
/// has the focus. Runs in the capture phase, before the window's shortcuts.
fn escape_leaves() -> gtk::EventControllerKey {
    let keys = gtk::EventControllerKey::new();
    keys.set_propagation_phase(gtk::PropagationPhase::Capture);
    keys.connect_key_pressed(|keys, key, _, mods| {
        let Some(win) = keys.widget().and_then(|w| w.downcast::<gtk::Window>().ok()) else {
            return glib::Propagation::Proceed;
        };
        let typing = gtk::prelude::GtkWindowExt::focus(&win).is_some_and(|f| f.is::<gtk::Editable>());
        if key != gtk::gdk::Key::Escape || !mods.is_empty() || !win.is_fullscreen() || typing {
            return glib::Propagation::Proceed;
        }
        log("fullscreen: asked off");
        win.unfullscreen();
        glib::Propagation::Stop
    });
    keys
}
