//! The window down to 360 px wide (a phone), in a call with the chat open:
//! the window manager (openbox) is asked for 360 px and the window takes
//! them; the chat then folds over the video instead of beside it, and the
//! self-view shrinks (the window logs `call layout: narrow`). Widened
//! again, the chat goes back beside the video.
//!
//! Needs an X display, like `gui.rs`, and openbox.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, WindowManager, answer, exclusive, press, resize};
use support::{Server, target_dir};

#[test]
fn at_360_px_the_chat_folds_over_the_video_and_the_self_view_shrinks() {
    let _x = exclusive();
    let display = Display::get();
    let _wm = WindowManager::start(&display);
    let server = Server::start();
    let home = target_dir().join(format!("gui-narrow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let window =
        Window::start(&display, &["--server", &server.addr, "--name", "ala"], &home.join("shots"), &home);
    window.wait_for("name accepted: ala");
    resize(&display, &window, 360, 640);
    let peer = answer(&window, &display, &server.addr, "ala", "bob", false);
    press(&display, "F9");
    window.wait_for("call layout: narrow");
    resize(&display, &window, 960, 720);
    window.wait_for("call layout: wide");
    // The chat's entry has the keyboard (Escape there never hangs up):
    // close the chat, then hang up.
    press(&display, "F9");
    press(&display, "Escape");
    window.wait_for("view: lobby");
    let _ = peer.finish(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&home);
}
