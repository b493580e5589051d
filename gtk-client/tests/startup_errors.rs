//! Failing before a call: no server, a malformed conf.txt, a bad flag, an
//! unknown forced encoder. Each gives a clear message and a non-zero exit.

mod support;

use std::process::Command;

use support::{gst_registry, target_dir};

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_komunikator"))
        .args(args)
        .env("GST_REGISTRY", gst_registry())
        .env("XDG_CONFIG_HOME", target_dir().join("no-such-config-home"))
        .output()
        .expect("run komunikator");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn no_server_listening() {
    // Bind a port, then free it, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = format!("127.0.0.1:{port}");
    let (code, err) =
        run(&["--headless", "--server", &server, "--video-source", "none", "--audio-source", "none"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn malformed_conf_txt_names_the_line() {
    let dir = target_dir().join("komunikator-test-conf");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("conf.txt");
    std::fs::write(&path, "127.0.0.1\ntwelve\n0\n").unwrap();
    let (code, err) = run(&["--headless", "--config", path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("line 2") && err.contains("port") && err.contains("\"twelve\""), "{err}");
}

#[test]
fn missing_explicit_conf_txt() {
    let (code, err) = run(&["--headless", "--config", "/nonexistent/conf.txt"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("/nonexistent/conf.txt"), "{err}");
}

#[test]
fn bad_flag() {
    let (code, err) = run(&["--video-source", "webcam"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("camera, test or none"), "{err}");
}

#[test]
fn unknown_forced_encoder() {
    let (code, err) = run(&["--print-pipelines", "--video-encoder", "nosuchenc"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown encoder") && err.contains("x264enc"), "{err}");
}
