//! The preferences window: the server's address and port and the camera
//! (conf.txt), the nick, the video and audio sources and the highest video
//! rate, and whether to run in the background (komunikator.ini).
//! The cameras are the ones the camera portal showed when the media setup
//! was last resolved (in the Flatpak, the only ones there are), else the
//! `/dev/video*` ones GStreamer's device monitor finds, numbered as the
//! camera index numbers them; the camera conf.txt names is offered even
//! when it is not found now, so saving never changes it unasked. The
//! portal is not asked again here, so Preferences open at once. Microphones
//! are the ones the device monitor finds; the test pattern is always
//! offered. Both lists come from the process's one running device monitor
//! ([`crate::media::monitor`]).
//! Saving reconnects when the window is not in a call. Main thread.

use std::rc::Rc;

use adw::prelude::*;
use gst::prelude::*;

use super::i18n::{i18n, i18n_f};
use super::settings::{self, Extra};
use super::window::{Window, log};
use crate::media::{AudioSourceKind, VideoSourceKind};

/// A camera the device monitor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    /// Its name.
    pub name: String,
    /// `N` of `/dev/videoN`.
    pub index: u32,
}

/// A camera Preferences offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraChoice {
    /// What the list shows.
    pub label: String,
    /// The camera index it saves in conf.txt.
    pub index: u32,
}

/// The cameras to offer, in camera-index order: the portal's when it showed
/// any (`portal`, from the media setup), else the `/dev/video*` ones; then
/// conf.txt's camera (`configured`) when neither list has it, so that
/// saving keeps it; and when there is still none, the first camera, to be
/// found when a call starts (in the Flatpak before the portal was asked).
pub fn camera_choices(
    portal: Option<&[String]>,
    v4l2: &[Camera],
    configured: Option<u32>,
) -> Vec<CameraChoice> {
    let mut choices: Vec<CameraChoice> = match portal {
        Some(names) if !names.is_empty() => {
            names.iter().zip(0..).map(|(name, index)| CameraChoice { label: name.clone(), index }).collect()
        }
        _ => v4l2
            .iter()
            .map(|c| CameraChoice {
                label: i18n_f("{} (/dev/video{})", &[&c.name, &c.index.to_string()]),
                index: c.index,
            })
            .collect(),
    };
    if let Some(index) = configured.filter(|i| !choices.iter().any(|c| c.index == *i)) {
        let label = i18n_f("Camera {} from conf.txt (not found now)", &[&index.to_string()]);
        choices.push(CameraChoice { label, index });
    }
    if choices.is_empty() {
        choices.push(CameraChoice { label: i18n("The first camera (none found now)"), index: 0 });
    }
    choices
}

/// A microphone the device monitor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mic {
    /// Its name.
    pub name: String,
    /// The source fragment that records from it (see [`launch_fragment`]).
    pub launch: String,
}

/// The cameras (V4L2 or PipeWire-over-V4L2) and the microphones.
pub fn devices() -> (Vec<Camera>, Vec<Mic>) {
    let cameras = list("Video/Source")
        .iter()
        .filter_map(|d| {
            let props = gst::prelude::DeviceExt::properties(d)?;
            let path = ["device.path", "api.v4l2.path"].iter().find_map(|k| props.get::<String>(*k).ok())?;
            let index = path.strip_prefix("/dev/video")?.parse().ok()?;
            Some(Camera { name: gst::prelude::DeviceExt::display_name(d).to_string(), index })
        })
        .collect();
    let mics = list("Audio/Source")
        .iter()
        .filter_map(|d| {
            let launch = source_launch(d)?;
            Some(Mic { name: gst::prelude::DeviceExt::display_name(d).to_string(), launch })
        })
        .collect();
    (cameras, mics)
}

/// The pipeline fragment for `device`: its source element and the property
/// that names the device, as `gst::Device::create_element` configures them.
fn source_launch(device: &gst::Device) -> Option<String> {
    let element = gst::prelude::DeviceExt::create_element(device, None).ok()?;
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

fn list(class: &str) -> Vec<gst::Device> {
    crate::media::monitor::devices(class)
}

struct Form {
    window: adw::PreferencesWindow,
    host: adw::EntryRow,
    port: adw::EntryRow,
    nick: adw::EntryRow,
    video: adw::ComboRow,
    audio: adw::ComboRow,
    quality: adw::ComboRow,
    background: gtk::Switch,
    cameras: Vec<CameraChoice>,
    mics: Vec<Mic>,
}

/// Opens the preferences window over `w`.
pub fn open(w: &Rc<Window>) {
    let (cameras, mics) = devices();
    let launch = w.launch.borrow().clone();
    let window = adw::PreferencesWindow::builder().transient_for(&w.win).modal(true).build();
    window.set_search_enabled(false);
    let page = adw::PreferencesPage::new();
    let server =
        adw::PreferencesGroup::builder().title(i18n("Server")).description(i18n("Saved in conf.txt")).build();
    // The server in use (`--server` wins over conf.txt), so saving a new
    // name or device keeps it.
    let (host_text, port_text) =
        launch.server().map_or_else(|| (String::new(), "12345".to_owned()), |s| settings::split_server(&s));
    let host = entry(&i18n("Server address"), &host_text);
    let port = entry(&i18n("Port"), &port_text);
    server.add(&host);
    server.add(&port);
    let you = adw::PreferencesGroup::builder().title(i18n("You")).build();
    let nick = entry(&i18n("Your name"), launch.nick().as_deref().unwrap_or(""));
    you.add(&nick);
    let devices = adw::PreferencesGroup::builder().title(i18n("Devices")).build();
    let camera_index = launch.file.as_ref().map_or(0, |c| c.camera_index);
    let kind = launch.media_options().video_source;
    let portal = w.model.borrow().setup.as_ref().and_then(|s| s.portal_cameras.clone());
    let configured = (kind == VideoSourceKind::Camera).then_some(camera_index);
    let cameras = camera_choices(portal.as_deref(), &cameras, configured);
    let video = video_row(&cameras, kind, camera_index, portal.is_some_and(|p| !p.is_empty()));
    let audio = audio_row(&mics, launch.media_options().audio_source, launch.extra.microphone.as_deref());
    devices.add(&video);
    devices.add(&audio);
    let quality = quality_row(launch.media_options().video_kbps);
    devices.add(&quality);
    let save = gtk::Button::builder().label(i18n("Save")).halign(gtk::Align::Center).build();
    save.add_css_class("pill");
    save.add_css_class("suggested-action");
    let (behaviour, background) = background_group(launch.extra.background);
    let actions = adw::PreferencesGroup::new();
    actions.add(&save);
    for g in [&server, &you, &devices, &behaviour, &actions] {
        page.add(g);
    }
    window.add(&page);
    window.set_default_widget(Some(&save));
    let form_host = host.clone();
    let form = Rc::new(Form {
        window: window.clone(),
        host,
        port,
        nick,
        video,
        audio,
        quality,
        background,
        cameras,
        mics,
    });
    let weak = Rc::downgrade(w);
    save.connect_clicked(move |_| {
        if let Some(w) = weak.upgrade() {
            apply(&w, &form);
        }
    });
    window.present();
    // The cursor starts in the first field, not on the header's switcher,
    // at the end of the address: focusing selects it all, and the first key
    // typed would replace the server in use.
    form_host.grab_focus();
    form_host.set_position(-1);
}

/// "Run in background", with its switch.
fn background_group(on: bool) -> (adw::PreferencesGroup, gtk::Switch) {
    let switch = gtk::Switch::builder().active(on).valign(gtk::Align::Center).build();
    let row = adw::ActionRow::builder()
        .title(i18n("Run in background"))
        .subtitle(i18n("Closing the window keeps you reachable; calls arrive as notifications"))
        .activatable_widget(&switch)
        .build();
    row.add_suffix(&switch);
    let group = adw::PreferencesGroup::builder().title(i18n("Background")).build();
    group.add(&row);
    (group, switch)
}

/// A text row; Return in it saves (the Save button is the default widget).
fn entry(title: &str, text: &str) -> adw::EntryRow {
    adw::EntryRow::builder().title(title).text(text).activates_default(true).build()
}

/// Cameras first, then the test pattern, then no video. Logs what it shows
/// and each choice (the tests read the window's log).
fn video_row(cameras: &[CameraChoice], kind: VideoSourceKind, index: u32, portal: bool) -> adw::ComboRow {
    let mut names: Vec<String> = cameras.iter().map(|c| c.label.clone()).collect();
    names.push(i18n("Test pattern"));
    names.push(i18n("No video"));
    let selected = match kind {
        VideoSourceKind::Camera => cameras.iter().position(|c| c.index == index).unwrap_or(cameras.len()),
        VideoSourceKind::Test => cameras.len(),
        VideoSourceKind::None => cameras.len() + 1,
    };
    let subtitle = if portal { i18n("Through the camera portal") } else { String::new() };
    log(&format!("shows preferences cameras: {}", names.join(" | ")));
    let row = combo(&i18n("Camera"), &subtitle, &names, selected);
    row.connect_selected_notify(move |row| {
        if let Some(name) = names.get(row.selected() as usize) {
            log(&format!("shows preferences: camera {name}"));
        }
    });
    row
}

/// The default microphone, each one found, a test tone, or nothing.
fn audio_row(mics: &[Mic], kind: AudioSourceKind, chosen: Option<&str>) -> adw::ComboRow {
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
    combo(&i18n("Microphone"), "", &names, selected)
}

/// The highest video rate; on a slower link the video follows the link below it.
fn quality_row(kbps: u32) -> adw::ComboRow {
    let names: Vec<String> =
        settings::VIDEO_KBPS_CHOICES.iter().map(|k| i18n_f("Up to {} kbit/s", &[&k.to_string()])).collect();
    let selected = settings::VIDEO_KBPS_CHOICES.iter().position(|k| *k >= kbps).unwrap_or(1);
    let subtitle = i18n("Lower on a slow connection, by itself");
    combo(&i18n("Video quality"), &subtitle, &names, selected)
}

fn combo(title: &str, subtitle: &str, names: &[String], selected: usize) -> adw::ComboRow {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let row = adw::ComboRow::builder()
        .title(title)
        .model(&gtk::StringList::new(&refs))
        .selected(u32::try_from(selected).unwrap_or(0))
        .build();
    if !subtitle.is_empty() {
        row.set_subtitle(subtitle);
    }
    row
}

/// Validates, saves both files, and reconnects when idle.
fn apply(w: &Rc<Window>, f: &Form) {
    let selected = f.video.selected() as usize;
    let (video, camera_index) = match f.cameras.get(selected) {
        Some(c) => (VideoSourceKind::Camera, c.index),
        None if selected == f.cameras.len() => (VideoSourceKind::Test, 0),
        None => (VideoSourceKind::None, 0),
    };
    let picked = f.audio.selected() as usize;
    let (audio, microphone) = match picked {
        0 => (AudioSourceKind::Mic, None),
        i if i <= f.mics.len() => (AudioSourceKind::Mic, Some(f.mics[i - 1].launch.clone())),
        i if i == f.mics.len() + 1 => (AudioSourceKind::Test, None),
        _ => (AudioSourceKind::None, None),
    };
    let nick = f.nick.text().trim().to_owned();
    if let Err(rule) =
        Some(&nick).filter(|n| !n.is_empty()).map_or(Ok(()), |n| komunikator_protocol::check_nick(n))
    {
        let sentence = super::problem::nick_rule(&nick, rule);
        log(&format!("preferences refused the name: {sentence}"));
        return f.window.add_toast(adw::Toast::new(&glib::markup_escape_text(&sentence)));
    }
    let conf = match settings::validate(&f.host.text(), &f.port.text(), camera_index) {
        Ok(c) => c,
        Err(p) => {
            log(&format!("preferences refused: {}", p.detail));
            return f.window.add_toast(adw::Toast::new(&glib::markup_escape_text(&p.sentence)));
        }
    };
    let nick = Some(nick).filter(|n| !n.is_empty());
    let max_video_kbps = settings::VIDEO_KBPS_CHOICES.get(f.quality.selected() as usize).copied();
    let background = f.background.is_active();
    let extra =
        Extra { nick, video: Some(video), audio: Some(audio), microphone, max_video_kbps, background };
    let asked = background && !w.launch.borrow().extra.background;
    let conf_path = w.launch.borrow().conf_path.clone();
    let saved = settings::save_conf(&conf_path, &conf)
        .and_then(|()| settings::save_extra(&settings::extra_path(&conf_path), &extra));
    if let Err(e) = saved {
        log(&format!("{e:#}"));
        return f.window.add_toast(adw::Toast::new(&i18n("The preferences could not be saved")));
    }
    {
        let mut launch = w.launch.borrow_mut();
        launch.file = Some(conf);
        launch.extra = extra;
        // What was just saved wins over the command line from now on.
        launch.args.server = None;
        launch.args.name = None;
        launch.args.video_source = None;
        launch.args.audio_source = None;
        launch.args.camera = None;
        launch.args.video_kbps = None;
    }
    f.window.close();
    if asked {
        super::background::request(w);
    }
    if w.model.borrow().call.is_idle() {
        w.model.borrow_mut().setup = None;
        w.toast(&i18n("Preferences saved; reconnecting"));
        w.connect();
    } else {
        w.toast(&i18n("Preferences saved; they take effect after this call"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(choices: &[CameraChoice]) -> Vec<(String, u32)> {
        choices.iter().map(|c| (c.label.clone(), c.index)).collect()
    }

    #[test]
    fn the_portal_cameras_come_in_camera_index_order_instead_of_dev_video() {
        let names = ["Integrated Camera".to_owned(), "USB Camera".to_owned()];
        let v4l2 = [Camera { name: "Integrated Camera".into(), index: 0 }];
        assert_eq!(
            labels(&camera_choices(Some(&names), &v4l2, Some(1))),
            [("Integrated Camera".to_owned(), 0), ("USB Camera".to_owned(), 1)]
        );
        // A portal that showed none leaves the /dev/video* numbering.
        assert_eq!(
            labels(&camera_choices(Some(&[]), &v4l2, Some(0))),
            [("Integrated Camera (/dev/video0)".to_owned(), 0)]
        );
    }

    #[test]
    fn the_configured_camera_is_kept_when_it_is_not_found() {
        // In the Flatpak before a call: no portal list yet, no /dev/video*.
        let choices = camera_choices(None, &[], Some(2));
        assert_eq!(labels(&choices), [("Camera 2 from conf.txt (not found now)".to_owned(), 2)]);
        // Test pattern chosen, nothing found: a camera can still be chosen.
        let choices = camera_choices(None, &[], None);
        assert_eq!(labels(&choices), [("The first camera (none found now)".to_owned(), 0)]);
        // Unplugged: the others are listed, and it too.
        let v4l2 = [Camera { name: "USB".into(), index: 0 }];
        assert_eq!(camera_choices(None, &v4l2, Some(3)).iter().map(|c| c.index).collect::<Vec<_>>(), [0, 3]);
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
