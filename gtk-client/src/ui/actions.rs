//! The window's actions and keyboard shortcuts: Accept, Decline, hang up
//! (Escape), mute (M), camera off (V), the chat (F9), reconnect, first-run
//! connect, search (Ctrl+F), and the shortcuts window. The single-key
//! shortcuts stand aside while a text field has the focus, so typing "m" in
//! the chat writes an "m". Main thread.

use std::rc::Rc;

use adw::prelude::*;
use gtk::gio;

use super::i18n::i18n;
use super::settings;
use super::window::Window;

/// Adds `win.<name>`, which runs `f` on the window while it exists.
pub(super) fn add(w: &Rc<Window>, name: &str, f: fn(&Rc<Window>)) {
    let action = gio::SimpleAction::new(name, None);
    let weak = Rc::downgrade(w);
    action.connect_activate(move |_, _| {
        if let Some(w) = weak.upgrade() {
            f(&w);
        }
    });
    w.win.add_action(&action);
}

/// Adds the actions and shortcuts to `w`.
pub fn install(w: &Rc<Window>) {
    add(w, "accept", |w| w.with_engine(|e| e.answer(true)));
    add(w, "decline", |w| w.with_engine(|e| e.answer(false)));
    add(w, "block-caller", |w| w.with_engine(|e| e.block_caller()));
    add(w, "hang-up", |w| w.with_engine(|e| e.hangup()));
    add(w, "reconnect", |w| w.connect());
    add(w, "first-connect", first_connect);
    add(w, "search", |w| {
        let bar = &w.lobby.search_bar;
        bar.set_search_mode(!bar.is_search_mode());
    });
    toggle(w, "mute", |w, on| w.with_engine(|e| e.set_muted(on)));
    toggle(w, "camera-off", |w, on| w.with_engine(|e| e.set_camera_enabled(!on)));
    add(w, "chat", |w| w.call.toggle_chat());
    add(w, "add-person", |w| {
        if matches!(w.model.borrow().call, crate::call::CallState::Active { .. }) {
            w.call.add_person.set_active(true);
        }
    });
    let shortcuts = gtk::ShortcutController::new();
    for (key, action) in [("Escape", "hang-up"), ("m", "mute"), ("v", "camera-off")] {
        shortcuts.add_shortcut(gtk::Shortcut::new(
            gtk::ShortcutTrigger::parse_string(key),
            Some(unless_typing(action)),
        ));
    }
    w.win.add_controller(shortcuts);
    w.app.set_accels_for_action("win.chat", &["F9"]);
    w.app.set_accels_for_action("win.add-person", &["<Control>i"]);
    w.app.set_accels_for_action("win.search", &["<Control>f"]);
    w.app.set_accels_for_action("win.show-help-overlay", &["<Control>question"]);
    w.win.set_help_overlay(Some(&help_overlay()));
}

/// Activates `win.<action>` unless a text field has the focus: then the key
/// goes on to the field (an unmodified letter is text, not a command).
fn unless_typing(action: &'static str) -> gtk::CallbackAction {
    gtk::CallbackAction::new(move |widget, _| {
        let typing = widget.root().and_then(|r| r.focus()).is_some_and(|f| f.is::<gtk::Editable>());
        let found = widget.downcast_ref::<gtk::ApplicationWindow>().and_then(|w| w.lookup_action(action));
        match found {
            Some(a) if a.is_enabled() && !typing => {
                a.activate(None);
                glib::Propagation::Stop
            }
            Some(_) if typing => {
                super::window::log(&format!("key for win.{action} left to the text field"));
                glib::Propagation::Proceed
            }
            _ => glib::Propagation::Proceed,
        }
    })
}

/// A boolean action whose state follows each activation; `f` gets the new state.
fn toggle(w: &Rc<Window>, name: &str, f: fn(&Rc<Window>, bool)) {
    let action = gio::SimpleAction::new_stateful(name, None, &false.to_variant());
    let weak = Rc::downgrade(w);
    action.connect_activate(move |a, _| {
        let on = !a.state().and_then(|s| s.get::<bool>()).unwrap_or(false);
        a.set_state(&on.to_variant());
        super::window::log(&format!("{}: {}", a.name(), if on { "on" } else { "off" }));
        if let Some(w) = weak.upgrade() {
            f(&w, on);
        }
    });
    w.win.add_action(&action);
}

/// The first-run page's Connect: checks the address, writes conf.txt, connects.
fn first_connect(w: &Rc<Window>) {
    let page = &w.setup_page;
    let camera = w.launch.borrow().file.as_ref().map_or(0, |c| c.camera_index);
    let checked = settings::validate(&page.host.text(), &page.port.text(), camera);
    let conf = match checked {
        Ok(c) => c,
        Err(p) => {
            page.error.set_label(&p.sentence);
            page.error.set_tooltip_text(Some(&p.detail));
            page.error.set_visible(true);
            return super::window::log(&format!("address refused: {}", p.detail));
        }
    };
    page.error.set_visible(false);
    let path = w.launch.borrow().conf_path.clone();
    if let Err(e) = settings::save_conf(&path, &conf) {
        super::window::log(&format!("{e:#}"));
        w.toast(&i18n("The address could not be saved; it is used for now only"));
    }
    w.launch.borrow_mut().file = Some(conf);
    w.connect();
}

fn help_overlay() -> gtk::ShortcutsWindow {
    let esc = |s: String| glib::markup_escape_text(&s).to_string();
    let item = |accel: &str, title: String| {
        format!(
            "<child><object class=\"GtkShortcutsShortcut\"><property name=\"accelerator\">{accel}</property>\
             <property name=\"title\">{}</property></object></child>",
            esc(title)
        )
    };
    let group = |title: String, items: Vec<String>| {
        format!(
            "<child><object class=\"GtkShortcutsGroup\"><property name=\"title\">{}</property>{}</object></child>",
            esc(title),
            items.concat()
        )
    };
    let general = group(
        i18n("General"),
        vec![
            item("&lt;Control&gt;f", i18n("Search people")),
            item("&lt;Alt&gt;1", i18n("People")),
            item("&lt;Alt&gt;2", i18n("History")),
            item("&lt;Control&gt;comma", i18n("Preferences")),
            item("&lt;Control&gt;question", i18n("Keyboard shortcuts")),
            item("&lt;Control&gt;w", i18n("Close the window (asks during a call)")),
            item("&lt;Control&gt;q", i18n("Quit")),
        ],
    );
    let call = group(
        i18n("During a call"),
        vec![
            item("Escape", i18n("Hang up, cancel or decline")),
            item("m", i18n("Mute or unmute the microphone")),
            item("v", i18n("Turn the camera off or on")),
            item("F9", i18n("Show or hide the chat")),
            item("&lt;Control&gt;i", i18n("Add a person to the call")),
            item("F11", i18n("Fullscreen on or off (Escape leaves it)")),
            item("Return", i18n("Accept an incoming call")),
        ],
    );
    let xml = format!(
        "<interface><object class=\"GtkShortcutsWindow\" id=\"help\"><property name=\"modal\">1</property>\
         <child><object class=\"GtkShortcutsSection\"><property name=\"section-name\">main</property>\
         {general}{call}</object></child></object></interface>"
    );
    let builder = gtk::Builder::from_string(&xml);
    builder.object("help").unwrap_or_else(|| glib::Object::new())
}
