//! The preferences window: the server's address and port and the camera
//! (conf.txt), the nick, the video and audio sources and the highest video
//! rate, and whether to run in the background (komunikator.ini).
//! The cameras are the camera portal's when it gives any, else the V4L2 ones
//! GStreamer's device monitor finds, numbered as the camera index picks them;
//! the microphones are the device monitor's. Both are looked for off the main
//! thread (`device_search`, `device_rows`): until they arrive their rows say so and cannot
//! be changed, and saving keeps what was chosen before. The test pattern is
//! always offered, and is the only picture when no camera is found. Saving
//! reconnects when the window is not in a call. Main thread.

use std::rc::Rc;

use adw::prelude::*;

use super::device_rows::DeviceRows;
use super::i18n::{i18n, i18n_f};
use super::settings::{self, Extra};
use super::window::{Window, log};

struct Form {
    window: adw::PreferencesWindow,
    host: adw::EntryRow,
    port: adw::EntryRow,
    nick: adw::EntryRow,
    devices: Rc<DeviceRows>,
    quality: adw::ComboRow,
    background: gtk::Switch,
}

/// Opens the preferences window over `w`.
pub fn open(w: &Rc<Window>) {
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
    let media = launch.media_options();
    let camera_index = launch.file.as_ref().map_or(0, |c| c.camera_index);
    let rows = DeviceRows::new(
        (media.video_source, camera_index),
        (media.audio_source, launch.extra.microphone.clone()),
    );
    let devices = adw::PreferencesGroup::builder().title(i18n("Devices")).build();
    devices.add(&rows.video);
    devices.add(&rows.audio);
    let quality = quality_row(media.video_kbps);
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
    let shown = window.clone();
    rows.video.connect_selected_notify(move |_| super::screenshot::log_texts(&shown, "preferences"));
    rows.search();
    let form_host = host.clone();
    let form = Rc::new(Form { window: window.clone(), host, port, nick, devices: rows, quality, background });
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

/// The highest video rate; on a slower link the video follows the link below it.
fn quality_row(kbps: u32) -> adw::ComboRow {
    let names: Vec<String> =
        settings::VIDEO_KBPS_CHOICES.iter().map(|k| i18n_f("Up to {} kbit/s", &[&k.to_string()])).collect();
    let selected = settings::VIDEO_KBPS_CHOICES.iter().position(|k| *k >= kbps).unwrap_or(1);
    let subtitle = i18n("Lower on a slow connection, by itself");
    combo(&i18n("Video quality"), &subtitle, &names, selected)
}

/// A drop-down row offering `names`, with `selected` chosen.
pub(super) fn combo(title: &str, subtitle: &str, names: &[String], selected: usize) -> adw::ComboRow {
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
    let (video, camera_index) = f.devices.video_choice();
    let (audio, microphone) = f.devices.audio_choice();
    let nick = f.nick.text().trim().to_owned();
    if !nick.is_empty() && !komunikator_protocol::is_valid_nick(&nick) {
        return f.window.add_toast(adw::Toast::new(&i18n(
            "A name has up to 32 letters, digits, dots, dashes or underscores, and no spaces",
        )));
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
