//! The in-call page: the peer's picture large, our own small in a corner,
//! the peer's name, the call timer, the quality indicator, the controls
//! (mute, camera, chat, hang up) and the chat panel. Main thread. Buttons
//! fire window actions (`win.mute`, `win.camera-off`, `win.hang-up`); the
//! window feeds this page the state, the timer and the statistics.

use std::time::Duration;

use adw::prelude::*;
use gtk::gdk;

use super::chat::Chat;
use super::i18n::{i18n, i18n_f};
use super::parties::{Parties, add_person};
use super::quality::{self, Level, Reading};
use super::switches::{self, PeerSwitches, Switch};
use super::window::log;

const CSS: &str = "
.komunikator-video { background-color: black; }
.komunikator-selfview { background-color: #222; border-radius: 12px; }
.komunikator-osd-label { color: white; text-shadow: 0 1px 2px rgba(0,0,0,0.8); }
";

/// The in-call page.
pub struct CallView {
    /// The page's root widget.
    pub root: gtk::Box,
    /// The peer's picture (the area the GUI test photographs).
    pub remote: gtk::Picture,
    /// The further parties of a group call, in a grid with the peer's picture.
    pub parties: Parties,
    /// "Add person" (Ctrl+I).
    pub add_person: gtk::ToggleButton,
    local: gtk::Picture,
    local_frame: gtk::Frame,
    peer: gtk::Label,
    timer: gtk::Label,
    status: gtk::Label,
    quality_icon: gtk::Image,
    quality: gtk::Label,
    /// The chat panel.
    pub chat: Chat,
    chat_flap: adw::Flap,
    chat_button: gtk::ToggleButton,
    camera_button: gtk::ToggleButton,
    peer_switches: PeerSwitches,
}

impl CallView {
    /// Builds the page around the paintables (the peer's, ours, and one per
    /// further party of a group call); `send` sends a chat line, `invite`
    /// invites someone into the call.
    pub fn new(
        (remote_paintable, local_paintable): (Option<&gdk::Paintable>, Option<&gdk::Paintable>),
        party_paintables: &[gdk::Paintable],
        send: impl Fn(&str) + 'static,
        invite: impl Fn(&str) + 'static,
    ) -> CallView {
        load_css();
        let remote = gtk::Picture::builder().hexpand(true).vexpand(true).can_shrink(true).build();
        remote.set_paintable(remote_paintable);
        remote.add_css_class("komunikator-video");
        let local_pic = gtk::Picture::builder().can_shrink(true).build();
        local_pic.set_paintable(local_paintable);
        // Two clamps cap the self view's natural size (the paintable's is the
        // full picture) at 192×144.
        let narrow = adw::Clamp::builder().maximum_size(192).child(&local_pic).build();
        let low = adw::Clamp::builder()
            .maximum_size(144)
            .orientation(gtk::Orientation::Vertical)
            .child(&narrow)
            .build();
        let local_frame = gtk::Frame::builder()
            .child(&low)
            .halign(gtk::Align::End)
            .valign(gtk::Align::End)
            .margin_end(18)
            .margin_bottom(84)
            .build();
        local_frame.add_css_class("komunikator-selfview");
        let (top, peer, timer, quality_icon, quality) = top_bar();
        let peer_switches = PeerSwitches::new(&remote);
        top.insert_child_after(&peer_switches.muted, Some(&peer));
        let status = osd_label("");
        status.add_css_class("title-2");
        status.set_halign(gtk::Align::Center);
        status.set_valign(gtk::Align::Center);
        let chat = Chat::new(send);
        // Beside the video when both fit, over it (folded) when narrow.
        let chat_flap = adw::Flap::builder()
            .flap(&chat.root)
            .flap_position(gtk::PackType::End)
            .reveal_flap(false)
            .modal(false)
            .swipe_to_open(false)
            .swipe_to_close(false)
            .build();
        let parties = Parties::new(&remote, party_paintables);
        let overlay =
            gtk::Overlay::builder().child(&parties.grid).hexpand(true).width_request(NARROW).build();
        overlay.add_css_class("komunikator-video");
        let placeholder = peer_switches.placeholder.upcast_ref::<gtk::Widget>();
        for w in [placeholder, top.upcast_ref(), status.upcast_ref(), local_frame.upcast_ref()] {
            overlay.add_overlay(w);
        }
        let (bar, chat_button, camera_button) = controls(&chat_flap);
        let (add_person, invite_bar) = add_person(invite);
        bar.insert_child_after(&add_person, Some(&chat_button));
        overlay.add_overlay(&bar);
        overlay.add_overlay(&invite_bar);
        focus_entry_on_open(&chat_button, &chat.entry);
        let frame = local_frame.clone();
        let has_picture = local_paintable.is_some();
        camera_button.connect_active_notify(move |b| frame.set_visible(has_picture && !b.is_active()));
        let root = gtk::Box::new(gtk::Orientation::Horizontal, 0);
        chat_flap.set_content(Some(&overlay));
        root.append(&chat_flap);
        shrink_self_view_when_folded(&chat_flap, &narrow, &low, &local_frame);
        CallView {
            root,
            remote,
            parties,
            add_person,
            local: local_pic,
            local_frame,
            peer,
            timer,
            status,
            quality_icon,
            quality,
            chat,
            chat_flap,
            chat_button,
            camera_button,
            peer_switches,
        }
    }

    /// The peer's switches as shown.
    pub fn peer_media(&self) -> crate::engine::PeerMedia {
        self.peer_switches.state()
    }

    /// Shows the peer's microphone and camera switches.
    pub fn show_peer_media(&self, peer: crate::engine::PeerMedia) {
        self.peer_switches.show(peer, &self.peer.label());
    }

    /// Opens the chat with its entry focused, or closes it (F9).
    pub fn toggle_chat(&self) {
        self.chat_button.set_active(!self.chat_button.is_active());
    }

    /// Shows the call with `who`: `elapsed` is `None` while it is being set up.
    pub fn show(&self, who: &str, elapsed: Option<Duration>) {
        self.peer.set_label(who);
        self.status.set_visible(elapsed.is_none());
        self.status.set_label(&i18n_f("Connecting to {}…", &[who]));
        self.timer.set_label(&elapsed.map(format_elapsed).unwrap_or_default());
        // Our camera off: no stale self-view either.
        self.local_frame.set_visible(self.local.paintable().is_some() && !self.camera_button.is_active());
        self.peer_switches.show(self.peer_switches.state(), who);
    }

    /// Updates the quality indicator; the words are [`quality::words`]'s
    /// for the peer shown. A changed label is logged (the GUI tests read it).
    pub fn show_quality(&self, reading: Option<Reading>) {
        let level = reading.map_or(Level::Waiting, |r| r.level);
        let words = quality::words(reading.as_ref(), &self.peer.label());
        if reading.is_some() && self.quality.label() != words.label {
            log(&format!("quality: {}", words.label));
        }
        self.show_level(level, &words.label, words.detail.as_deref());
    }

    /// The peer's first picture is showing; the first reading is still to come.
    pub fn show_first_picture(&self) {
        self.show_level(Level::Good, &i18n("Good connection"), Some(&i18n("Measuring the connection…")));
    }

    fn show_level(&self, level: Level, label: &str, detail: Option<&str>) {
        for l in [Level::Waiting, Level::Good, Level::Fair, Level::Poor] {
            self.quality_icon.remove_css_class(l.css_class());
        }
        self.quality_icon.add_css_class(level.css_class());
        self.quality_icon.set_icon_name(Some(level.icon_name()));
        self.quality.set_label(label);
        self.quality_icon.set_tooltip_text(detail);
        self.quality.set_tooltip_text(detail);
    }

    /// Opens the chat panel (a message arrived).
    pub fn reveal_chat(&self) {
        self.chat_flap.set_reveal_flap(true);
    }

    /// Closes the chat panel and forgets it (a new call starts).
    pub fn reset(&self) {
        self.chat.clear();
        self.chat_flap.set_reveal_flap(false);
        self.peer_switches.clear();
        self.show_quality(None);
    }
}

fn load_css() {
    let provider = gtk::CssProvider::new();
    provider.load_from_data(CSS);
    if let Some(display) = gdk::Display::default() {
        gtk::style_context_add_provider_for_display(
            &display,
            &provider,
            gtk::STYLE_PROVIDER_PRIORITY_APPLICATION,
        );
    }
}

fn osd_label(text: &str) -> gtk::Label {
    let l = gtk::Label::new(Some(text));
    l.add_css_class("komunikator-osd-label");
    l
}

type TopBar = (gtk::Box, gtk::Label, gtk::Label, gtk::Image, gtk::Label);

fn top_bar() -> TopBar {
    let peer = osd_label("");
    peer.add_css_class("title-3");
    let timer = osd_label("");
    timer.add_css_class("numeric");
    let quality_icon = gtk::Image::from_icon_name(Level::Waiting.icon_name());
    let quality = osd_label("");
    quality.add_css_class("caption");
    let top = gtk::Box::builder()
        .spacing(12)
        .valign(gtk::Align::Start)
        .margin_top(12)
        .margin_start(18)
        .margin_end(18)
        .build();
    top.append(&peer);
    top.append(&timer);
    let spacer = gtk::Box::builder().hexpand(true).build();
    top.append(&spacer);
    top.append(&quality_icon);
    top.append(&quality);
    (top, peer, timer, quality_icon, quality)
}

/// Opening the chat (its button, F9, or a message arriving, through the
/// button's binding to the revealer) puts the cursor in the entry, so what
/// is typed next is text and not the M and V shortcuts; closing it takes the
/// focus out of the entry. Logs when the entry takes and lets go of the
/// focus (the GUI tests type only then).
fn focus_entry_on_open(button: &gtk::ToggleButton, entry: &gtk::Entry) {
    let entry = entry.clone();
    button.connect_toggled(move |b| {
        if b.is_active() {
            // The revealer shows its child once the binding has run. At the
            // default priority, not the idle one: while video is painted
            // without pause (software rendering, a slow machine), idle
            // callbacks never ran, and F9 left the cursor out of the entry.
            let entry = entry.clone();
            glib::idle_add_local_full(glib::Priority::DEFAULT, move || {
                if entry.grab_focus() {
                    log("chat: the entry has the focus");
                } else {
                    log("chat: the entry could not take the focus");
                }
                glib::ControlFlow::Break
            });
        } else if entry.has_focus() || entry.focus_child().is_some() {
            if let Some(root) = entry.root() {
                root.set_focus(None::<&gtk::Widget>);
                log("chat: the entry let go of the focus");
            }
        }
    });
}

/// The narrowest the video may be: the window's own narrowest (a phone).
/// Below this plus the chat's width the chat folds over the video.
pub const NARROW: i32 = 360;

/// When the chat folds over the video (a narrow window), the self-view
/// shrinks to half (96×72) and moves closer to the corner, so it covers
/// less of the peer; back to 192×144 when the window is wide again.
fn shrink_self_view_when_folded(flap: &adw::Flap, narrow: &adw::Clamp, low: &adw::Clamp, frame: &gtk::Frame) {
    let (narrow, low, frame) = (narrow.clone(), low.clone(), frame.clone());
    flap.connect_folded_notify(move |flap| {
        let folded = flap.is_folded();
        log(&format!("call layout: {}", if folded { "narrow" } else { "wide" }));
        let scale = if folded { 2 } else { 1 };
        narrow.set_maximum_size(192 / scale);
        low.set_maximum_size(144 / scale);
        frame.set_margin_end(18 / scale);
        frame.set_margin_bottom(if folded { 76 } else { 84 });
    });
}

fn controls(chat: &adw::Flap) -> (gtk::Box, gtk::ToggleButton, gtk::ToggleButton) {
    let bar = gtk::Box::builder()
        .spacing(18)
        .halign(gtk::Align::Center)
        .valign(gtk::Align::End)
        .margin_bottom(18)
        .build();
    bar.append(&switches::button(Switch::Microphone));
    let camera_button = switches::button(Switch::Camera);
    bar.append(&camera_button);
    let chat_button = round_toggle("chat-message-new-symbolic", &i18n("Show the chat (F9)"));
    chat_button.bind_property("active", chat, "reveal-flap").bidirectional().sync_create().build();
    bar.append(&chat_button);
    let hang_up = gtk::Button::builder()
        .icon_name("call-stop-symbolic")
        .action_name("win.hang-up")
        .tooltip_text(i18n("Hang up (Escape)"))
        .build();
    hang_up.add_css_class("circular");
    hang_up.add_css_class("destructive-action");
    hang_up.set_size_request(48, 48);
    bar.append(&hang_up);
    (bar, chat_button, camera_button)
}

/// A round toggle button of the call controls, floating over the picture.
pub(super) fn round_toggle(icon: &str, tooltip: &str) -> gtk::ToggleButton {
    let button = gtk::ToggleButton::builder().icon_name(icon).tooltip_text(tooltip).build();
    button.add_css_class("circular");
    button.add_css_class("osd");
    button.set_size_request(48, 48);
    button
}

/// `M:SS`, or `H:MM:SS` from an hour on.
pub fn format_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_format() {
        assert_eq!(format_elapsed(Duration::from_secs(0)), "0:00");
        assert_eq!(format_elapsed(Duration::from_secs(75)), "1:15");
        assert_eq!(format_elapsed(Duration::from_secs(3723)), "1:02:03");
    }
}
