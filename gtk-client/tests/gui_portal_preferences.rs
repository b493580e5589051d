//! Preferences list the cameras the camera portal gives, in the order the
//! camera index picks them: the real window, on the session bus of a private
//! desktop (`support::desktop`, with two virtual cameras behind
//! xdg-desktop-portal and PipeWire, and no `/dev/video*` needed), opens
//! Preferences with Ctrl+comma, shows both cameras, and the second, chosen
//! with the keyboard and saved, is camera index 1 in conf.txt, `video=camera`
//! in komunikator.ini, and what the window captures after reconnecting.
//! Before, Preferences showed only `/dev/video*`: in the Flatpak no camera
//! at all, and saving (a new name, say) switched the camera to the test
//! pattern.
//!
//! Needs an X display, like `gui.rs`, and the desktop's programs (skipped,
//! with the reason printed, when one is missing).

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press, xdotool};
use support::desktop::{CAMERA, Desktop};
use support::{Server, args, target_dir};

/// The second virtual camera: camera index 1.
const SECOND: &str = "komunikator-second-camera";

#[test]
fn preferences_offer_the_portal_cameras_and_keep_the_chosen_index() {
    let _x = exclusive();
    let Some(desktop) = Desktop::with_cameras("gui-prefs-portal", "yes", &[CAMERA, SECOND]) else { return };
    let display = Display::get();
    let server = Server::start();
    let (host, port) = server.addr.rsplit_once(':').expect("HOST:PORT");
    let home = target_dir().join(format!("gui-prefs-portal-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let bus =
        desktop.client_env().into_iter().map(|(k, v)| (k, v.to_str().expect("UTF-8"))).collect::<Vec<_>>();
    // The camera, as installed: the window asks the portal when it connects.
    let media = args(&[&[
        "--video-source",
        "camera",
        "--test-pattern",
        "black",
        "--audio-source",
        "test",
        "--audio-output",
        "none",
    ]]);
    let app = ["--server", server.addr.as_str(), "--name", "ala"];
    let mut window = Window::start_with_media(&display, &app, &media, &home.join("shots"), &home, &bus);
    window.wait_for("name accepted: ala");
    press(&display, "ctrl+comma");
    window.wait_for_line(&[&format!(
        "shows preferences cameras: {CAMERA} | {SECOND} | Test pattern | No video"
    )]);
    focus_preferences(&display);
    // From the address past the port and the name to the camera row, open
    // its list, go to the top and one down; then back to the name, where
    // Return saves.
    for key in ["Tab", "Tab", "Tab", "space", "Home", "Down", "Return"] {
        std::thread::sleep(Duration::from_millis(400));
        xdotool(&display, &["key", key]);
    }
    window.wait_for_line(&["shows preferences:", SECOND]);
    for key in ["shift+Tab", "Return"] {
        std::thread::sleep(Duration::from_millis(400));
        xdotool(&display, &["key", key]);
    }
    window.wait_for("Preferences saved; reconnecting");
    window.wait_for_line(&[&format!("camera: {SECOND} (PipeWire node"), "through the camera portal"]);
    let config = home.join("config/komunikator");
    let conf = std::fs::read_to_string(config.join("conf.txt")).expect("conf.txt written");
    assert_eq!(conf, format!("{host}\n{port}\n1\n"), "conf.txt does not name camera 1");
    let ini = std::fs::read_to_string(config.join("komunikator.ini")).expect("komunikator.ini written");
    assert!(ini.contains("video=camera"), "komunikator.ini: {ini}");
    press(&display, "ctrl+q");
    assert_eq!(window.exit_code(Duration::from_secs(20)), Some(0), "window log:\n{}", window.log());
    let _ = std::fs::remove_dir_all(&home);
}

/// Gives the Preferences window the keyboard focus; its X id.
fn focus_preferences(display: &Display) -> String {
    let prefs = xdotool(display, &["search", "--sync", "--onlyvisible", "--name", "^Preferences$"]);
    let prefs = prefs.lines().next().expect("a preferences window").trim().to_owned();
    xdotool(display, &["windowfocus", "--sync", &prefs]);
    prefs
}
