//! Every command in every state, against the real server over TCP.

mod support;

use support::{Msg, Server, call_pair};

#[test]
fn hello_then_ping_and_name() {
    let server = Server::start();
    let mut a = server.client();
    assert!(a.id.starts_with("127.0.0.1:"));
    a.send("ping");
    a.expect("pong");
    a.send("name Ala");
    a.expect("ok name Ala");
    a.send("name Łukasz.2");
    a.expect("ok name Łukasz.2");
    a.send("name -");
    a.expect_prefix("error bad-name");
    a.send(&format!("name {}", "x".repeat(33)));
    a.expect_prefix("error bad-name");
    let mut b = server.client();
    b.send("name łukasz.2");
    b.expect_prefix("error name-taken");
    b.send("name ala");
    b.expect("ok name ala");
}

#[test]
fn refresh_lists_everyone_else_with_state() {
    let server = Server::start();
    let mut a = server.named("ala");
    a.send("refresh");
    a.expect("clients 0");
    let (c1, c2) = call_pair(&server, "c1", "c2");
    let anon = server.client();
    a.sync();
    a.send("refresh");
    a.expect("clients 3");
    let mut rows: Vec<String> = (0..3).map(|_| a.recv_event().line().to_owned()).collect();
    rows.sort();
    let mut want =
        vec![format!("{} busy c1", c1.id), format!("{} busy c2", c2.id), format!("{} free -", anon.id)];
    want.sort();
    assert_eq!(rows, want);
}

#[test]
fn presence_follows_join_name_call_and_leave() {
    let server = Server::start();
    let mut watcher = server.client();
    let mut a = server.client();
    assert_eq!(watcher.recv().line(), format!("presence {} free -", a.id));
    a.send("name ala");
    a.expect("ok name ala");
    assert_eq!(watcher.recv().line(), format!("presence {} free ala", a.id));
    let mut b = server.named("bob");
    // `free -` then `free bob`; a queued `presence` is replaced by a newer
    // one about the same client, so the first may not come.
    while watcher.recv().line() != format!("presence {} free bob", b.id) {}
    a.send("connect bob");
    a.expect(&format!("calling {}", b.id));
    assert_eq!(watcher.recv().line(), format!("presence {} busy ala", a.id));
    assert_eq!(watcher.recv().line(), format!("presence {} busy bob", b.id));
    b.expect_prefix("ask ");
    b.send("ask no");
    a.expect("ask no");
    assert_eq!(watcher.recv().line(), format!("presence {} free ala", a.id));
    assert_eq!(watcher.recv().line(), format!("presence {} free bob", b.id));
    let id = a.id.clone();
    drop(a);
    assert_eq!(watcher.recv().line(), format!("presence {id} gone ala"));
}

#[test]
fn connect_by_id_ip_and_nick() {
    let server = Server::start_with(&["--connect-burst", "100"]);
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    let b_id = b.id.clone();
    a.send(&format!("connect {b_id}"));
    a.expect(&format!("calling {b_id}"));
    b.expect_prefix("ask ");
    a.send("stop");
    b.expect("stop cancelled");
    a.send("connect BOB");
    a.expect(&format!("calling {b_id}"));
    b.expect(&format!("ask {} ala", a.id));
    a.send("stop");
    b.expect("stop cancelled");
    // Everyone is on 127.0.0.1, so a bare IP is ambiguous.
    a.send("connect 127.0.0.1");
    a.expect_prefix("error ambiguous");
    a.send("connect 10.9.9.9");
    a.expect_prefix("error no-such-client");
    a.send("connect nobody");
    a.expect_prefix("error no-such-client");
    a.send("connect 127.0.0.1:1");
    a.expect_prefix("error no-such-client");
    a.send(&format!("connect {}", a.id));
    a.expect_prefix("error self");
    a.send("connect ala");
    a.expect_prefix("error self");
}

#[test]
fn bare_ip_works_when_unique() {
    // The callee connects from 127.0.0.2, the caller from 127.0.0.1.
    let server = Server::start();
    let Ok(mut b) = support::Client::connect_from("127.0.0.2".parse().unwrap(), server.addr) else {
        eprintln!("skipped: cannot bind 127.0.0.2 here");
        return;
    };
    let mut a = server.client();
    a.send("connect 127.0.0.2");
    a.expect(&format!("calling {}", b.id));
    b.expect(&format!("ask {} -", a.id));
}

#[test]
fn accept_starts_call_and_relays_both_ways() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    a.send_media("video", true, b"frame-from-a");
    b.send_media("audio", false, b"opus-from-b");
    match b.recv_event() {
        Msg::Media { header, payload } => {
            assert_eq!(header, "video 1 k 12");
            assert_eq!(payload, b"frame-from-a");
        }
        other => panic!("{other:?}"),
    }
    match a.recv_event() {
        Msg::Media { header, payload } => {
            assert_eq!(header, "audio 1 - 11");
            assert_eq!(payload, b"opus-from-b");
        }
        other => panic!("{other:?}"),
    }
    a.send("msg cześć, jak leci?");
    b.expect("msg cześć, jak leci?");
    b.send("keyframe");
    a.expect("keyframe");
    a.send("stop");
    b.expect("stop hangup");
    a.send("ping");
    a.expect("pong");
}

#[test]
fn decline_and_callee_stop_while_ringing() {
    let server = Server::start();
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    support::ring(&mut a, &mut b);
    b.send("ask no");
    a.expect("ask no");
    support::ring(&mut a, &mut b);
    b.send("stop");
    a.expect("stop hangup");
    // Both are free again.
    b.send("connect ala");
    b.expect_prefix("calling");
}

#[test]
fn commands_outside_their_state_are_refused_without_effect() {
    let server = Server::start();
    let mut a = server.named("ala");
    for (cmd, code) in [
        ("ask yes", "not-asked"),
        ("ask no", "not-asked"),
        ("stop", "not-in-call"),
        ("keyframe", "not-in-call"),
        ("msg hello", "not-in-call"),
    ] {
        a.send(cmd);
        a.expect_prefix(&format!("error {code}"));
    }
    a.send_media("video", true, b"abc");
    a.expect_prefix("error not-in-call");
    a.send("ping");
    a.expect("pong");
    // While ringing: the caller cannot answer, media and chat are refused.
    let mut b = server.named("bob");
    support::ring(&mut a, &mut b);
    a.send("ask yes");
    a.expect_prefix("error not-asked");
    a.send("msg hi");
    a.expect_prefix("error not-in-call");
    b.send_media("audio", true, b"xyz");
    b.expect_prefix("error not-in-call");
    a.send("connect bob");
    a.expect_prefix("error busy");
    b.send("connect ala");
    b.expect_prefix("error busy");
}

/// The seed lists `start` among the client's commands. The server starts a
/// call itself, so a client that sends it gets nothing in a started call,
/// and `not-in-call` before one (it was `unknown-command`).
#[test]
fn the_seeds_start_is_harmless_in_a_call_and_refused_outside_one() {
    let server = Server::start();
    let mut a = server.named("ala");
    a.send("start");
    a.expect_prefix("error not-in-call");
    let mut b = server.named("bob");
    support::ring(&mut a, &mut b);
    a.send("start");
    a.expect_prefix("error not-in-call");
    b.send("ask yes");
    a.expect("ask yes");
    a.expect_prefix("start ");
    b.expect_prefix("start ");
    a.send("start");
    // Nothing answers it, and the call goes on: media still flows.
    assert!(a.sync_events().is_empty(), "start in a call was answered");
    a.send_media("audio", true, b"xyz");
    b.expect_prefix("audio ");
}

#[test]
fn ask_yes_twice_and_after_no() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    b.send("ask yes");
    b.expect_prefix("error not-asked");
    a.send("stop");
    b.expect("stop hangup");
    support::ring(&mut a, &mut b);
    b.send("ask no");
    a.expect("ask no");
    b.send("ask yes");
    b.expect_prefix("error not-asked");
    assert!(a.sync_events().is_empty());
}

#[test]
fn unanswered_call_times_out_for_both() {
    let server = Server::start_with(&["--ring-timeout", "1"]);
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    support::ring(&mut a, &mut b);
    a.expect("stop timeout");
    b.expect("stop timeout");
    b.send("ask yes");
    b.expect_prefix("error not-asked");
}

/// The by-hand session of docs/PROTOCOL.md, byte for byte (ids differ).
#[test]
fn protocol_doc_session() {
    let server = Server::start();
    let mut a = server.client();
    a.send("name ala");
    a.expect("ok name ala");
    let mut b = server.client();
    assert_eq!(a.recv().line(), format!("presence {} free -", b.id));
    b.send("name bob");
    b.expect("ok name bob");
    assert_eq!(a.recv().line(), format!("presence {} free bob", b.id));
    a.send("refresh");
    a.expect("clients 1");
    a.expect(&format!("{} free bob", b.id));
    a.send("connect bob");
    assert_eq!(a.recv().line(), format!("calling {}", b.id));
    assert_eq!(a.recv().line(), format!("presence {} busy bob", b.id));
    assert_eq!(b.recv().line(), format!("ask {} ala", a.id));
    assert_eq!(b.recv().line(), format!("presence {} busy ala", a.id));
    b.send("ask yes");
    assert_eq!(a.recv().line(), "ask yes");
    assert_eq!(a.recv().line(), format!("start {}", b.id));
    assert_eq!(b.recv().line(), format!("start {}", a.id));
    a.send("msg cześć!");
    assert_eq!(b.recv().line(), "msg cześć!");
    a.send("video 1000 k 6");
    a.send("hello");
    assert_eq!(b.recv(), Msg::Media { header: "video 1000 k 6".into(), payload: b"hello\n".to_vec() });
    b.send("msg hej");
    assert_eq!(a.recv().line(), "msg hej");
    b.send("audio 2000 - 4");
    b.send("abc");
    assert_eq!(a.recv(), Msg::Media { header: "audio 2000 - 4".into(), payload: b"abc\n".to_vec() });
    a.send("stop");
    assert_eq!(a.recv().line(), format!("presence {} free bob", b.id));
    assert_eq!(b.recv().line(), "stop hangup");
    assert_eq!(b.recv().line(), format!("presence {} free ala", a.id));
}
