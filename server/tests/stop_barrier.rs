//! The end of a call is a barrier: once a party's `stop` has been answered
//! (its `pong` after the `stop`), no media of that call reaches it, even while
//! the peer keeps sending flat out; and the peer sees no media after its
//! `stop hangup`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Client, Msg, Server, Streamer, call_between};

/// How long to listen for stray media after the `pong`.
const QUIET: Duration = Duration::from_millis(150);

/// Everything `c` receives until nothing comes for [`QUIET`].
fn drain(c: &mut Client) -> Vec<Msg> {
    let mut got = Vec::new();
    while let Some(m) = c.try_recv(QUIET) {
        got.push(m);
    }
    got
}

/// Waits until `c` receives a media frame, so the stream is flowing.
fn wait_for_media(c: &mut Client) {
    loop {
        if let Msg::Media { .. } = c.recv() {
            return;
        }
    }
}

fn media_count(msgs: &[Msg]) -> usize {
    msgs.iter().filter(|m| matches!(m, Msg::Media { .. })).count()
}

/// Reads `a` on another thread until `done` is set, so its queue never
/// overflows while the test looks at `b`, and stops `a`'s streamer at its
/// `stop hangup` (past it, every frame earns an error line); returns `a`
/// and what it got.
fn read_meanwhile(
    mut a: Client,
    streamer: Streamer,
    done: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Client, Vec<Msg>)> {
    let done = Arc::clone(done);
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut streamer = Some(streamer);
        while !done.load(Ordering::Relaxed) {
            let msg = a.try_recv(Duration::from_millis(20));
            if msg.as_ref().is_some_and(|m| m.line() == "stop hangup") {
                streamer = None;
            }
            got.extend(msg);
        }
        drop(streamer);
        got.extend(a.sync());
        (a, got)
    })
}

/// One round: `a` (and, with `video`, `b` too) streams while `b` stops.
fn round(a: Client, b: Client, video: bool) -> Result<(Client, Client), String> {
    let (mut a, mut b) = call_between(a, b);
    let from_a = a.stream("audio", &[1; 40]);
    let from_b = video.then(|| b.stream("video", &vec![2; 80 << 10]));
    wait_for_media(&mut b);
    if video {
        wait_for_media(&mut a);
    }
    // Unread, `b`'s socket fills and `a`'s frames queue in the server: the
    // end of the call must purge them, and let none in after.
    std::thread::sleep(Duration::from_millis(30));
    let done = Arc::new(AtomicBool::new(false));
    let reader = read_meanwhile(a, from_a, &done);
    b.send("stop");
    b.sync();
    // Stray frames would be queued for `b` by now.
    drop(from_b);
    let late = drain(&mut b);
    done.store(true, Ordering::Relaxed);
    let (mut a, got) = reader.join().map_err(|_| "reader panicked")?;
    // `a` may get media up to its `stop hangup`, and none after it.
    let Some(at) = got.iter().position(|m| m.line() == "stop hangup") else {
        return Err("a never got stop hangup".into());
    };
    let stray_a = media_count(&got[at..]) + media_count(&drain(&mut a));
    let stray_b = media_count(&late);
    if stray_a + stray_b > 0 {
        return Err(format!("{stray_b} frames reached b after its pong, {stray_a} reached a after stop"));
    }
    b.sync();
    Ok((a, b))
}

/// The flags of both tests: many calls, and room for the `error not-in-call`
/// replies to the frames a streamer has in flight when its call ends.
const FLAGS: [&str; 4] = ["--connect-burst", "1000", "--max-control-bytes", "16777216"];

fn rounds(server: &Server, video: bool) {
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    let mut failures = Vec::new();
    for i in 0..30 {
        match round(a, b, video) {
            Ok(pair) => (a, b) = pair,
            Err(e) => {
                failures.push(format!("round {i}: {e}"));
                // The failed pair may hold stray frames: start afresh.
                a = server.named(&format!("ala{i}"));
                b = server.named(&format!("bob{i}"));
            }
        }
    }
    assert!(failures.is_empty(), "media crossed the end of the call:\n{}", failures.join("\n"));
}

#[test]
fn no_media_after_stop_while_the_peer_streams_audio() {
    let server = Server::start_with(&FLAGS);
    rounds(&server, false);
}

#[test]
fn no_media_after_stop_with_spliced_video_both_ways() {
    let server = Server::start_with(&[&FLAGS[..], &["--splice"]].concat());
    rounds(&server, true);
}
