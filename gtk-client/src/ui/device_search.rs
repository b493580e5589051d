//! Looking for the cameras and microphones Preferences offers, off the main
//! thread. Two worker threads search at once: one asks the camera portal
//! ([`devices::portal_cameras`], which may wait for the user's answer), the
//! other lists the microphones and the V4L2 cameras with GStreamer's device
//! monitor. Each sends one [`Found`] over an async-channel that Preferences
//! awaits on the main loop; [`Search`] (main thread, pure) decides which
//! cameras to offer from what has arrived so far, in the order the camera
//! index picks them at start-up (`media::devices::video_input`): the portal's
//! cameras when it gives any, else the V4L2 ones once the portal has failed,
//! or has not answered within [`PORTAL_PATIENCE`].

use std::time::Duration;

use gst::prelude::*;

use super::i18n::i18n;
use crate::media::devices::{self, CameraChoice};
use crate::media::portal::PortalError;

/// How long the list waits for the camera portal before offering the V4L2
/// cameras; a later answer still replaces them.
pub(super) const PORTAL_PATIENCE: Duration = Duration::from_secs(5);

/// A microphone the device monitor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mic {
    /// Its name.
    pub name: String,
    /// The source fragment that records from it (see [`launch_fragment`]).
    pub launch: String,
}

/// What one worker thread found.
#[derive(Debug)]
pub(super) enum Found {
    /// The device monitor's V4L2 cameras and microphones.
    Local {
        /// By camera index.
        cameras: Vec<CameraChoice>,
        /// In the monitor's order.
        mics: Vec<Mic>,
    },
    /// The camera portal's answer.
    Portal(Result<Vec<CameraChoice>, PortalError>),
}

/// Starts both searches; each sends its [`Found`] on the channel returned.
pub(super) fn start() -> async_channel::Receiver<Found> {
    let (tx, rx) = async_channel::bounded(2);
    let portal = tx.clone();
    std::thread::spawn(move || {
        let _ = portal.send_blocking(Found::Portal(devices::portal_cameras()));
    });
    std::thread::spawn(move || {
        let cameras = devices::v4l2_cameras();
        let mics = microphones();
        let _ = tx.send_blocking(Found::Local { cameras, mics });
    });
    rx
}

/// What the camera portal has said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum PortalAnswer {
    /// Nothing yet, within [`PORTAL_PATIENCE`].
    #[default]
    Waiting,
    /// Nothing within [`PORTAL_PATIENCE`].
    Silent,
    /// Its cameras (none: V4L2 picks).
    Cameras(Vec<CameraChoice>),
    /// No cameras through it, and the sentence to say why (empty when
    /// nothing needs saying: no portal is the usual case off GNOME).
    Failed(String),
}

/// The cameras to offer and a sentence about them (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CameraList {
    /// In camera index order.
    pub cameras: Vec<CameraChoice>,
    /// For the row's subtitle.
    pub note: String,
}

/// What the searches have found so far.
#[derive(Debug, Default)]
pub(super) struct Search {
    local: Option<Vec<CameraChoice>>,
    portal: PortalAnswer,
}

impl Search {
    /// Takes in the V4L2 cameras.
    pub fn local_found(&mut self, cameras: Vec<CameraChoice>) {
        self.local = Some(cameras);
    }

    /// Takes in the portal's answer, even after [`Search::portal_silent`].
    pub fn portal_answered(&mut self, answer: Result<Vec<CameraChoice>, PortalError>) {
        self.portal = match answer {
            Ok(cameras) => PortalAnswer::Cameras(cameras),
            Err(e) => PortalAnswer::Failed(portal_sentence(&e)),
        };
    }

    /// [`PORTAL_PATIENCE`] has passed: a portal still silent is given up on.
    pub fn portal_silent(&mut self) {
        if self.portal == PortalAnswer::Waiting {
            self.portal = PortalAnswer::Silent;
        }
    }

    /// The cameras to offer, once they are known.
    pub fn cameras(&self) -> Option<CameraList> {
        let reason = match &self.portal {
            PortalAnswer::Waiting => return None,
            PortalAnswer::Cameras(c) if !c.is_empty() => {
                return Some(CameraList { cameras: c.clone(), note: i18n("Through the camera portal") });
            }
            PortalAnswer::Cameras(_) => String::new(),
            PortalAnswer::Silent => i18n("The camera portal did not answer"),
            PortalAnswer::Failed(reason) => reason.clone(),
        };
        let cameras = self.local.clone()?;
        let none = if cameras.is_empty() { i18n("No camera was found") } else { String::new() };
        let note = [reason, none].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(". ");
        Some(CameraList { cameras, note })
    }
}

/// Why the portal gives no camera, for people; empty when it goes without saying.
fn portal_sentence(e: &PortalError) -> String {
    match e {
        PortalError::NoBus
        | PortalError::Absent
        | PortalError::NoCamera
        | PortalError::NoSuchCamera { .. } => String::new(),
        PortalError::Denied => i18n("The camera portal denied access to the camera"),
        PortalError::Timeout(_) => i18n("The camera portal did not answer"),
        PortalError::Failed(_) => i18n("The camera portal failed"),
    }
}

/// The microphones, each with the pipeline fragment that records from it.
fn microphones() -> Vec<Mic> {
    devices::devices_of("Audio/Source")
        .iter()
        .filter_map(|d| Some(Mic { name: d.display_name().to_string(), launch: source_launch(d)? }))
        .collect()
}

/// The pipeline fragment for `device`: its source element and the property
/// that names the device, as `gst::Device::create_element` configures them.
fn source_launch(device: &gst::Device) -> Option<String> {
    let element = device.create_element(None).ok()?;
    let factory = element.factory()?.name();
    ["device", "target-object", "path"].iter().find_map(|prop| {
        element.find_property(prop)?;
        let value = element.property_value(prop).get::<Option<String>>().ok()??;
        launch_fragment(&factory, prop, &value)
    })
}

/// `FACTORY PROP="VALUE"`, or `None` when a part cannot be written safely
/// in a pipeline description.
pub fn launch_fragment(factory: &str, prop: &str, value: &str) -> Option<String> {
    let plain =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let quotable = !value.is_empty() && !value.contains(['"', '\\']) && !value.chars().any(char::is_control);
    (plain(factory) && plain(prop) && quotable).then(|| format!("{factory} {prop}=\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(name: &str, index: u32) -> CameraChoice {
        CameraChoice { name: name.into(), index, path: None }
    }

    #[test]
    fn the_portal_is_waited_for_then_given_up_on() {
        let mut search = Search::default();
        search.local_found(vec![camera("usb", 2)]);
        assert_eq!(search.cameras(), None, "the portal may still answer");
        search.portal_silent();
        let list = search.cameras().expect("V4L2 after the wait");
        assert_eq!(list.cameras, vec![camera("usb", 2)]);
        assert_eq!(list.note, "The camera portal did not answer");
        search.portal_answered(Ok(vec![camera("portal", 0)]));
        assert_eq!(search.cameras().expect("late answer").cameras, vec![camera("portal", 0)]);
    }

    #[test]
    fn a_portal_without_cameras_gives_v4l2_once_it_is_known() {
        let mut search = Search::default();
        search.portal_answered(Ok(Vec::new()));
        assert_eq!(search.cameras(), None, "V4L2 not listed yet");
        search.local_found(Vec::new());
        let list = search.cameras().expect("listed");
        assert!(list.cameras.is_empty());
        assert_eq!(list.note, "No camera was found");
        search.portal_answered(Err(PortalError::Denied));
        assert_eq!(
            search.cameras().expect("listed").note,
            "The camera portal denied access to the camera. No camera was found"
        );
        search.portal_silent();
        assert!(search.cameras().expect("listed").note.starts_with("The camera portal denied"));
    }

    #[test]
    fn fragments_are_safe_to_parse() {
        assert_eq!(
            launch_fragment("pulsesrc", "device", "alsa_input.usb-Mic.analog-stereo").as_deref(),
            Some("pulsesrc device=\"alsa_input.usb-Mic.analog-stereo\"")
        );
        assert_eq!(
            launch_fragment("alsasrc", "device", "hw:1,0").as_deref(),
            Some("alsasrc device=\"hw:1,0\"")
        );
        assert_eq!(launch_fragment("pulsesrc", "device", "a\" ! filesink location=x"), None);
        assert_eq!(launch_fragment("pulsesrc", "device", ""), None);
        assert_eq!(launch_fragment("x ! y", "device", "a"), None);
        let parsed = gst::init().map(|()| gst::parse::launch("audiotestsrc name=\"hw:1,0\" ! fakesink"));
        assert!(parsed.is_ok_and(|p| p.is_ok()), "a quoted value parses");
    }
}
