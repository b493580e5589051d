//! The camera and microphone rows of Preferences, filled in as the device
//! search ([`device_search`]) reports. Until a row's devices arrive it says it
//! is looking and cannot be changed, and its choice is the one made before
//! (so saving meanwhile changes nothing there). The cameras are offered in
//! the order the camera index picks them, with a row for a chosen camera that
//! is not found, so that saving keeps its index. Main thread.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use adw::prelude::*;

use super::device_search::{self, CameraList, Found, Mic, PORTAL_PATIENCE, Search};
use super::i18n::{i18n, i18n_f};
use super::preferences::combo;
use super::screenshot;
use super::window::log;
use crate::media::devices::CameraChoice;
use crate::media::{AudioSourceKind, VideoSourceKind};

/// The video source and camera index, as conf.txt and komunikator.ini keep them.
pub(super) type VideoChoice = (VideoSourceKind, u32);
/// The audio source and, for one microphone of several, its source fragment.
pub(super) type AudioChoice = (AudioSourceKind, Option<String>);

/// The two rows and what they offer.
pub(super) struct DeviceRows {
    /// Cameras, then the test pattern, then no video.
    pub video: adw::ComboRow,
    /// The default microphone, each one found, a test tone, or nothing.
    pub audio: adw::ComboRow,
    search: RefCell<Search>,
    /// The list the video row was last filled from.
    shown: RefCell<Option<CameraList>>,
    /// The cameras the video row offers, in its order; `None` while looking.
    cameras: RefCell<Option<Vec<CameraChoice>>>,
    /// The microphones the audio row offers; `None` while looking.
    mics: RefCell<Option<Vec<Mic>>>,
    video_before: VideoChoice,
    audio_before: AudioChoice,
}

impl DeviceRows {
    /// The rows, looking, with what was chosen before; [`DeviceRows::search`] fills them.
    pub fn new(video_before: VideoChoice, audio_before: AudioChoice) -> Rc<DeviceRows> {
        let video = combo(&i18n("Camera"), "", &[i18n("Looking for cameras…")], 0);
        let audio = combo(&i18n("Microphone"), "", &[i18n("Looking for microphones…")], 0);
        video.set_sensitive(false);
        audio.set_sensitive(false);
        Rc::new(DeviceRows {
            video,
            audio,
            search: RefCell::default(),
            shown: RefCell::default(),
            cameras: RefCell::default(),
            mics: RefCell::default(),
            video_before,
            audio_before,
        })
    }

    /// Starts looking for the devices; the rows fill in as they are found,
    /// the cameras at the latest [`PORTAL_PATIENCE`] after V4L2's are known.
    pub fn search(self: &Rc<Self>) {
        let found = device_search::start();
        let weak = Rc::downgrade(self);
        glib::spawn_future_local(async move {
            while let Ok(found) = found.recv().await {
                let Some(rows) = weak.upgrade() else { return };
                rows.take(found);
            }
        });
        let weak: Weak<DeviceRows> = Rc::downgrade(self);
        glib::timeout_add_local_once(PORTAL_PATIENCE, move || {
            if let Some(rows) = weak.upgrade() {
                rows.search.borrow_mut().portal_silent();
                rows.refresh();
            }
        });
    }

    fn take(&self, found: Found) {
        match found {
            Found::Local { cameras, mics } => {
                self.search.borrow_mut().local_found(cameras);
                self.show_mics(mics);
            }
            Found::Portal(answer) => {
                match &answer {
                    Ok(cameras) => {
                        log(&format!("preferences: {} camera(s) through the portal", cameras.len()))
                    }
                    Err(e) => log(&format!("preferences: {e}")),
                }
                self.search.borrow_mut().portal_answered(answer);
            }
        }
        self.refresh();
    }

    /// Fills the video row when the search has decided, or decided anew.
    fn refresh(&self) {
        let Some(list) = self.search.borrow().cameras() else { return };
        if self.shown.borrow().as_ref() == Some(&list) {
            return;
        }
        let (kind, index) = self.video_choice();
        let mut cameras = list.cameras.clone();
        if kind == VideoSourceKind::Camera && !cameras.iter().any(|c| c.index == index) {
            let name = i18n_f("Camera {} (not found)", &[&index.to_string()]);
            cameras.push(CameraChoice { name, index, path: None });
        }
        let mut names: Vec<String> = cameras.iter().map(camera_name).collect();
        names.push(i18n("Test pattern"));
        names.push(i18n("No video"));
        let selected = match kind {
            VideoSourceKind::Camera => cameras.iter().position(|c| c.index == index).unwrap_or(0),
            VideoSourceKind::Test => cameras.len(),
            VideoSourceKind::None => cameras.len() + 1,
        };
        if screenshot::dir().is_some() {
            log(&format!("shows preferences cameras: {} ({})", names.join(" | "), list.note));
        }
        *self.cameras.borrow_mut() = Some(cameras);
        set_choices(&self.video, &names, selected);
        self.video.set_subtitle(&list.note);
        *self.shown.borrow_mut() = Some(list);
    }

    fn show_mics(&self, mics: Vec<Mic>) {
        let (kind, chosen) = self.audio_choice();
        let mut names = vec![if mics.is_empty() {
            i18n("Default microphone (none found: silence)")
        } else {
            i18n("Default microphone")
        }];
        names.extend(mics.iter().map(|m| m.name.clone()));
        names.push(i18n("Test tone"));
        names.push(i18n("No sound"));
        let selected = match kind {
            AudioSourceKind::Mic => {
                chosen.and_then(|c| mics.iter().position(|m| m.launch == c)).map_or(0, |i| i + 1)
            }
            AudioSourceKind::Test => mics.len() + 1,
            AudioSourceKind::None => mics.len() + 2,
        };
        *self.mics.borrow_mut() = Some(mics);
        set_choices(&self.audio, &names, selected);
    }

    /// What the video row picks (what was chosen before, while looking).
    pub fn video_choice(&self) -> VideoChoice {
        let cameras = self.cameras.borrow();
        let Some(cameras) = cameras.as_ref() else { return self.video_before };
        let selected = self.video.selected() as usize;
        let before = self.video_before.1;
        match cameras.get(selected) {
            Some(c) => (VideoSourceKind::Camera, c.index),
            None if selected == cameras.len() => (VideoSourceKind::Test, before),
            None => (VideoSourceKind::None, before),
        }
    }

    /// What the audio row picks (what was chosen before, while looking).
    pub fn audio_choice(&self) -> AudioChoice {
        let mics = self.mics.borrow();
        let Some(mics) = mics.as_ref() else { return self.audio_before.clone() };
        match self.audio.selected() as usize {
            0 => (AudioSourceKind::Mic, None),
            i if i <= mics.len() => (AudioSourceKind::Mic, Some(mics[i - 1].launch.clone())),
            i if i == mics.len() + 1 => (AudioSourceKind::Test, None),
            _ => (AudioSourceKind::None, None),
        }
    }
}

/// "NAME (/dev/videoN)" for V4L2, the name alone through the portal.
fn camera_name(c: &CameraChoice) -> String {
    match &c.path {
        Some(_) => i18n_f("{} (/dev/video{})", &[&c.name, &c.index.to_string()]),
        None => c.name.clone(),
    }
}

/// Replaces what `row` offers, selects one, and lets it be changed.
fn set_choices(row: &adw::ComboRow, names: &[String], selected: usize) {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    row.set_model(Some(&gtk::StringList::new(&refs)));
    row.set_selected(u32::try_from(selected).unwrap_or(0));
    row.set_sensitive(true);
}
