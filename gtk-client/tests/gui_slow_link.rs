//! The window's quality indicator on a slow link, under X: the real server,
//! the link emulator's user-space shaper (`komunikator_linkem`, 120 kbit/s
//! from the window to the server, unlimited back) and the real window,
//! which calls a headless peer that answers. The window's test picture (a
//! ball on black) needs about 160 kbit/s of video at 640×480 plus 33 of
//! audio, so 120 kbit/s is well short of it: the video rate falls to what
//! the uplink carries (the floor, at 320×240), and the indicator says so
//! in words: its log (`quality: ...`, written whenever the label changes)
//! reads "Your connection is slow: video ...". The peer keeps hearing the
//! window.
//!
//! Not timing-tight: each step may take the window's usual minute. Needs an
//! X display, like `gui.rs`.

mod gui_support;
mod support;

use std::time::Duration;

use gui_support::{Display, Window, exclusive, press};
use komunikator_linkem::{Backend, Link, LinkSpec};
use support::{Client, Server, args, target_dir, test_media};

#[test]
fn a_slow_uplink_is_named_in_the_quality_indicator() {
    let _x = exclusive();
    let display = Display::get();
    let shots = target_dir().join("test-artifacts/gui-slow-link");
    let home = target_dir().join(format!("gui-slow-link-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let server = Server::start();
    let spec = LinkSpec::parse("120kbit", "unlimited").expect("link spec");
    let upstream = server.addr.parse().expect("the server's address");
    let link = Link::start(upstream, &spec, Backend::UserSpace).expect("start the link emulator");
    let peer_args = [args(&[&["--name", "ala", "--answer"]]), test_media("smpte", 440)].concat();
    let peer = Client::start(&server.addr, &peer_args);

    let through = link.client_addr().to_string();
    let window =
        Window::start(&display, &["--server", &through, "--name", "slowup", "--call", "ala"], &shots, &home);
    window.wait_for("view: call");
    window.wait_for("quality: Your connection is slow: video ");
    press(&display, "Escape");
    let peer = peer.finish(Duration::from_secs(30));
    assert_eq!(peer.end_reason(), "peer-hangup", "peer stderr:\n{}\nwindow:\n{}", peer.stderr, window.log());
    assert!(peer.n("audio_packets_decoded") > 0, "the peer heard nothing from the window");
    let _ = std::fs::remove_dir_all(&home);
}
