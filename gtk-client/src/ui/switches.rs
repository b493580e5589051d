//! The microphone and camera switches in the call page: our two buttons,
//! whose icon, tooltip and accessible label follow their state, and what
//! the peer's switches show (an avatar with "ala turned the camera off" in
//! place of its picture, a muted badge by its name). Main thread; the
//! buttons fire `win.mute` and `win.camera-off`, whose state they follow,
//! and the window hands over the peer's switches from
//! [`crate::Event::PeerMedia`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use adw::prelude::*;

use super::i18n::{i18n, i18n_f};
use super::window::log;
use crate::engine::PeerMedia;

/// Which of our switches a button is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The microphone: `win.mute`, M.
    Microphone,
    /// The camera: `win.camera-off`, V.
    Camera,
}

impl Switch {
    /// The icon, tooltip and accessible label for the button when the
    /// switch is `off` (muted, camera off) or on. The icon shows the
    /// state; the words say what a press does.
    pub fn looks(self, off: bool) -> (&'static str, String) {
        match (self, off) {
            (Switch::Microphone, false) => {
                ("audio-input-microphone-symbolic", i18n("Mute the microphone (M)"))
            }
            (Switch::Microphone, true) => ("microphone-disabled-symbolic", i18n("Unmute the microphone (M)")),
            (Switch::Camera, false) => ("camera-web-symbolic", i18n("Turn the camera off (V)")),
            (Switch::Camera, true) => ("camera-disabled-symbolic", i18n("Turn the camera on (V)")),
        }
    }

    fn action(self) -> &'static str {
        match self {
            Switch::Microphone => "win.mute",
            Switch::Camera => "win.camera-off",
        }
    }
}

/// A round toggle button for `switch`: active while the switch is off. Its
/// looks follow its state, which follows the window action's; a change is
/// logged as `button win.mute: ICON "TOOLTIP"` (the GUI tests read it).
pub fn button(switch: Switch) -> gtk::ToggleButton {
    let b = gtk::ToggleButton::builder().action_name(switch.action()).build();
    b.add_css_class("circular");
    b.add_css_class("osd");
    b.set_size_request(48, 48);
    let show = move |b: &gtk::ToggleButton, announce: bool| {
        let (icon, words) = switch.looks(b.is_active());
        b.set_icon_name(icon);
        b.set_tooltip_text(Some(&words));
        b.update_property(&[gtk::accessible::Property::Label(&words)]);
        if announce {
            log(&format!("button {}: {icon} {words:?}", switch.action()));
        }
    };
    show(&b, false);
    b.connect_active_notify(move |b| show(b, true));
    b
}

/// How long the placeholder waits for the first picture after the peer's
/// camera is back on (a peer with no camera sends none).
const FIRST_PICTURE: Duration = Duration::from_secs(2);

/// What stands for the peer's picture while its camera is off, and its
/// muted badge.
pub struct PeerSwitches {
    picture: gtk::Picture,
    /// The camera is back on and its first picture still to come: the
    /// placeholder stays, so the last picture from before is not shown.
    waiting: Rc<Cell<bool>>,
    /// Over the picture: the avatar and the words; shown while the camera is off.
    pub placeholder: gtk::Box,
    avatar: adw::Avatar,
    words: gtk::Label,
    /// By the peer's name: shown while the peer is muted.
    pub muted: gtk::Image,
    state: Cell<PeerMedia>,
}

impl PeerSwitches {
    /// Both hidden: a call starts with both switches on. `picture` is the
    /// peer's, hidden (not frozen) while its camera is off.
    pub fn new(picture: &gtk::Picture) -> PeerSwitches {
        let avatar = adw::Avatar::builder().size(128).show_initials(true).build();
        let words = gtk::Label::builder().wrap(true).justify(gtk::Justification::Center).build();
        words.add_css_class("title-2");
        words.add_css_class("komunikator-osd-label");
        let placeholder = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(18)
            .halign(gtk::Align::Center)
            .valign(gtk::Align::Center)
            .visible(false)
            .build();
        placeholder.append(&avatar);
        placeholder.append(&words);
        let muted = gtk::Image::builder().icon_name("microphone-disabled-symbolic").visible(false).build();
        muted.add_css_class("komunikator-osd-label");
        muted.add_css_class("error");
        let waiting = Rc::new(Cell::new(false));
        if let Some(paintable) = picture.paintable() {
            let (waiting, picture, placeholder) = (waiting.clone(), picture.clone(), placeholder.clone());
            paintable.connect_invalidate_contents(move |_| end_wait(&waiting, &picture, &placeholder));
        }
        let picture = picture.clone();
        PeerSwitches { picture, waiting, placeholder, avatar, words, muted, state: Default::default() }
    }

    /// Shows `peer`'s switches for the peer named `who`.
    pub fn show(&self, peer: PeerMedia, who: &str) {
        // The initials come from the name itself, without its bidi isolation.
        self.avatar.set_text(Some(who.trim_matches(|c| matches!(c, '\u{2066}'..='\u{2069}'))));
        // Translators: {} is the other person's name.
        self.words.set_label(&i18n_f("{} turned the camera off", &[who]));
        let before = self.state.replace(peer);
        if peer != before {
            let shown = if peer.camera_off { self.words.label() } else { "the picture".into() };
            log(&format!("peer: muted {}, camera off {} (showing {shown:?})", peer.muted, peer.camera_off));
        }
        if peer.camera_off {
            self.waiting.set(false);
            self.placeholder.set_visible(true);
            self.picture.set_opacity(0.0);
        } else if before.camera_off {
            self.waiting.set(true);
            let (waiting, picture, placeholder) =
                (self.waiting.clone(), self.picture.clone(), self.placeholder.clone());
            glib::timeout_add_local_once(FIRST_PICTURE, move || end_wait(&waiting, &picture, &placeholder));
        } else if !self.waiting.get() {
            self.placeholder.set_visible(false);
            self.picture.set_opacity(1.0);
        }
        // Translators: {} is the other person's name.
        let muted = i18n_f("{} muted the microphone", &[who]);
        self.muted.set_tooltip_text(Some(&muted));
        self.muted.update_property(&[gtk::accessible::Property::Label(&muted)]);
        self.muted.set_visible(peer.muted);
    }

    /// Forgets the last call's switches: both on, the picture shown.
    pub fn clear(&self) {
        self.state.set(PeerMedia::default());
        self.waiting.set(false);
        self.placeholder.set_visible(false);
        self.picture.set_opacity(1.0);
        self.muted.set_visible(false);
    }

    /// The peer's switches as last shown.
    pub fn state(&self) -> PeerMedia {
        self.state.get()
    }
}

/// The peer's picture is back (or has not come in time): shows it in place
/// of the placeholder, if it was waiting for it.
fn end_wait(waiting: &Cell<bool>, picture: &gtk::Picture, placeholder: &gtk::Box) {
    if waiting.replace(false) {
        placeholder.set_visible(false);
        picture.set_opacity(1.0);
    }
}
