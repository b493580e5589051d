//! Not a check: the pictures in docs/screenshots/, taken from the real
//! window under X against the real server. `scripts/screenshots` runs it;
//! `cargo test` skips it (ignored) and CI does not run it.
//!
//! Each picture is the window's own rendering (`KOMUNIKATOR_SCREENSHOT_DIR`
//! and SIGUSR1, see `ui/screenshot.rs`), copied as NAME.png into
//! `KOMUNIKATOR_SCREENSHOTS_OUT` (default `target/screenshots`). ala's
//! window is the one photographed, at 960×640 under openbox; bob is a
//! second window with the SMPTE bars for a camera; ewa and jan are headless
//! clients; ola, a raw protocol client, rings ala and gives up.

mod gui_support;
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gui_support::{
    Display, Window, WindowManager, answer, exclusive, focus, polish_locale, press, press_in, resize,
    type_in, type_text, xdotool,
};
use komunikator_protocol::{Command, Target};
use support::peer::Peer;
use support::{Client, Server, args, target_dir, test_media};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;

/// Where the pictures go, and how many each window process has taken.
struct Camera {
    out: PathBuf,
    taken: HashMap<i32, u32>,
}

impl Camera {
    fn new() -> Camera {
        let out = std::env::var_os("KOMUNIKATOR_SCREENSHOTS_OUT")
            .map_or_else(|| target_dir().join("screenshots"), PathBuf::from);
        std::fs::create_dir_all(&out).expect("the screenshots directory");
        Camera { out, taken: HashMap::new() }
    }

    /// Saves `window` (its dialog, when `dialog`) as `NAME.png`, once what
    /// it shows has settled; the main window is given the focus first, so
    /// that it is not drawn as a window in the background.
    fn shoot(&mut self, display: &Display, window: &Window, name: &str, dialog: bool) {
        if !dialog {
            focus(display, window);
        }
        std::thread::sleep(Duration::from_millis(1200));
        let n = self.taken.entry(window.pid()).or_insert(0);
        *n += 1;
        // SAFETY: kill(2) on the window's own process.
        unsafe { libc::kill(window.pid(), libc::SIGUSR1) };
        let file = format!("now-{n}-{}.png", if dialog { "dialog" } else { "main" });
        let line = window.wait_for_line(&["screenshot saved: ", &file]);
        let path = line.split("screenshot saved: ").nth(1).expect("a path").trim();
        let to = self.out.join(format!("{name}.png"));
        std::fs::copy(path, &to).unwrap_or_else(|e| panic!("copying {path} to {}: {e}", to.display()));
        eprintln!("screenshots: {}", to.display());
    }
}

fn home(name: &str) -> PathBuf {
    let home = target_dir().join(format!("screenshots-{name}"));
    let _ = std::fs::remove_dir_all(&home);
    home
}

fn ala(display: &Display, server: &Server, name: &str, env: &[(&str, &str)]) -> Window {
    let home = home(name);
    let app_args = ["--server", server.addr.as_str(), "--name", "ala"];
    // A pinwheel for ala's own camera, the SMPTE bars for bob's.
    let media = test_media("pinwheel", 440);
    let window = Window::start_with_media(display, &app_args, &media, &home.join("shots"), &home, env);
    window.wait_for("name accepted: ala");
    window
}

#[test]
#[ignore = "makes docs/screenshots: run scripts/screenshots"]
fn take_the_screenshots() {
    let _x = exclusive();
    let display = Display::get();
    let _wm = WindowManager::start(&display);
    let server = Server::start();
    let mut camera = Camera::new();
    let _busy = busy_pair(&server);
    a_call_between_two_windows(&display, &server, &mut camera);
    narrow(&display, &server, &mut camera);
    polish(&display, &server, &mut camera);
}

/// ewa and jan, headless, in a call with each other (sound only, to spare
/// the processor).
fn busy_pair(server: &Server) -> [Client; 2] {
    let start = |nick: &str, role: &[&str]| {
        let own = [&["--name", nick][..], role].concat();
        let tail = ["--video-source", "none"];
        let client =
            Client::start(&server.addr, &[args(&[&own]), test_media("ball", 440), args(&[&tail])].concat());
        client.wait_for("name accepted", Duration::from_secs(30));
        client
    };
    let ewa = start("ewa", &["--answer"]);
    let jan = start("jan", &["--call", "ewa", "--duration", "3600"]);
    jan.wait_for("call started", Duration::from_secs(30));
    [ewa, jan]
}

/// ala misses ola's call, then bob calls: the prompt, the people with the
/// missed call counted, the call with the chat, bob's camera off and
/// microphone muted, History and Preferences.
fn a_call_between_two_windows(display: &Display, server: &Server, camera: &mut Camera) {
    let ala = ala(display, server, "ala", &[]);
    resize(display, &ala, WIDTH, HEIGHT);
    let mut ola = Peer::connect(&server.addr);
    ola.send(&Command::Name("ola"));
    ola.send(&Command::Connect(Target::Nick("ala")));
    ala.wait_for("incoming call from ola");
    camera.shoot(display, &ala, "incoming", false);
    ola.send(&Command::Stop);
    ala.wait_for("history: missed call from ola");
    ala.wait_for("view: lobby");
    // Once the toast "ola stopped calling" is gone.
    std::thread::sleep(Duration::from_secs(7));
    camera.shoot(display, &ala, "people", false);

    let bob_home = home("bob");
    let bob_args = ["--server", server.addr.as_str(), "--name", "bob", "--call", "ala"];
    let media = test_media("smpte", 660);
    let bob = Window::start_with_media(display, &bob_args, &media, &bob_home.join("shots"), &bob_home, &[]);
    ala.wait_for("incoming call from bob");
    press_in(display, &ala, "Return");
    ala.wait_for_line(&["screenshot saved: ", "/call.png"]);
    bob.wait_for("view: call");
    press_in(display, &ala, "F9");
    std::thread::sleep(Duration::from_secs(1));
    type_in(display, &ala, "Hi Bob! Can you see me?");
    press_in(display, &ala, "Return");
    // The message opens bob's chat with the cursor in its entry.
    bob.wait_for_line(&["shows chat:", "see me"]);
    std::thread::sleep(Duration::from_secs(1));
    type_in(display, &bob, "Yes, and hear you too.");
    press_in(display, &bob, "Return");
    ala.wait_for_line(&["shows chat:", "hear you too"]);
    camera.shoot(display, &ala, "call", false);

    // bob closes his chat, mutes and turns his camera off.
    press_in(display, &ala, "F9");
    press_in(display, &bob, "F9");
    std::thread::sleep(Duration::from_millis(500));
    press_in(display, &bob, "m");
    press_in(display, &bob, "v");
    ala.wait_for("peer: muted true, camera off true");
    camera.shoot(display, &ala, "camera-off", false);

    press_in(display, &ala, "Escape");
    ala.wait_for("view: lobby");
    // Once the toast "Call ended" is gone.
    std::thread::sleep(Duration::from_secs(7));
    press_in(display, &ala, "alt+2");
    ala.wait_for("history page: shown");
    camera.shoot(display, &ala, "history", false);
    preferences(display, &ala, camera);
}

/// Preferences, opened with Ctrl+, over the People page.
fn preferences(display: &Display, ala: &Window, camera: &mut Camera) {
    press_in(display, ala, "alt+1");
    press_in(display, ala, "ctrl+comma");
    // Tall enough to show every setting.
    let pid = ala.pid().to_string();
    let ids = xdotool(
        display,
        &["search", "--all", "--sync", "--onlyvisible", "--pid", &pid, "--name", "^Preferences$"],
    );
    let id = ids.lines().next().expect("the Preferences window").trim().to_owned();
    for _ in 0..20 {
        xdotool(display, &["windowsize", &id, "640", "780"]);
        std::thread::sleep(Duration::from_millis(500));
        if xdotool(display, &["getwindowgeometry", &id]).contains("x780") {
            break;
        }
    }
    camera.shoot(display, ala, "preferences", true);
    xdotool(display, &["key", "Escape"]);
}

/// At 360 px wide, in a call: the self-view shrinks, and the chat folds
/// over the video.
fn narrow(display: &Display, server: &Server, camera: &mut Camera) {
    let ala = ala(display, server, "narrow", &[]);
    resize(display, &ala, 360, HEIGHT);
    let peer = answer(&ala, display, &server.addr, "ala", "bob", false);
    ala.wait_for_line(&["screenshot saved: ", "/call.png"]);
    assert!(ala.log().contains("call layout: narrow"), "not narrow at 360 px:\n{}", ala.log());
    camera.shoot(display, &ala, "narrow", false);
    press(display, "F9");
    std::thread::sleep(Duration::from_millis(700));
    type_text(display, "Hello from a narrow window");
    press(display, "Return");
    ala.wait_for_line(&["shows chat:", "narrow window"]);
    camera.shoot(display, &ala, "narrow-chat", false);
    press(display, "F9");
    press(display, "Escape");
    ala.wait_for("view: lobby");
    let _ = peer.finish(Duration::from_secs(30));
}

/// The incoming call in Polish.
fn polish(display: &Display, server: &Server, camera: &mut Camera) {
    let locales = polish_locale();
    let locpath = locales.to_string_lossy().into_owned();
    let env = [("LANG", "pl_PL.UTF-8"), ("LOCPATH", locpath.as_str())];
    let ala = ala(display, server, "polish", &env);
    resize(display, &ala, WIDTH, HEIGHT);
    let caller = Client::start(
        &server.addr,
        &[args(&[&["--name", "bob", "--call", "ala"]]), test_media("smpte", 660)].concat(),
    );
    ala.wait_for("incoming call from bob");
    camera.shoot(display, &ala, "incoming-pl", false);
    press(display, "Escape");
    ala.wait_for("view: lobby");
    let _ = caller.finish(Duration::from_secs(30));
}
