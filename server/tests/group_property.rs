//! The consent invariant of group calls, as a property test against the real
//! server: across random sequences of `connect`, `invite`, answers, `stop`,
//! disconnects and media among five group-capable clients, no frame ever
//! reaches a client from anyone who is not in its call as it knows it (from
//! its own `start`, `joined`, `left` and `stop`): so nothing before its own
//! `ask yes`, and nothing after it left or the sender left. A second run adds
//! a client that streams audio flat out whenever it is in a call, racing
//! every join, leave and disconnect.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::{Client, Msg, Server};

const N: usize = 5;

/// Across all cases of one test: joins into calls of three or more, and frames received.
#[derive(Default)]
struct Seen {
    joins: AtomicUsize,
    frames: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Connect(usize, usize),
    Invite(usize, usize),
    AskYes(usize),
    AskNo(usize),
    Stop(usize),
    /// Closes the connection and connects again (a new id).
    Reconnect(usize),
    Media(usize),
}

impl Op {
    fn actor(self) -> usize {
        match self {
            Op::Connect(a, _)
            | Op::Invite(a, _)
            | Op::AskYes(a)
            | Op::AskNo(a)
            | Op::Stop(a)
            | Op::Reconnect(a)
            | Op::Media(a) => a,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..N, 0..N).prop_map(|(a, b)| Op::Connect(a, b)),
        3 => (0..N, 0..N).prop_map(|(a, b)| Op::Invite(a, b)),
        4 => (0..N).prop_map(Op::AskYes),
        1 => (0..N).prop_map(Op::AskNo),
        1 => (0..N).prop_map(Op::Stop),
        1 => (0..N).prop_map(Op::Reconnect),
        4 => (0..N).prop_map(Op::Media),
    ]
}

/// Whom one client knows to be in its call.
#[derive(Default, Debug)]
struct View {
    call: BTreeSet<String>,
    /// It has an `ask` it has not answered.
    asked: bool,
}

/// Steers an op toward a state where it does something (an answer from a
/// client that is asked, an invitation from one in a call), so random
/// sequences reach calls of three or more; with nobody in that state it
/// stays as drawn, and tests the refusal.
fn steer(op: Op, views: &[View]) -> Op {
    let pick = |k: usize, pred: &dyn Fn(&View) -> bool| {
        let fit: Vec<usize> = (0..N).filter(|i| pred(&views[*i])).collect();
        if fit.is_empty() { k } else { fit[k % fit.len()] }
    };
    match op {
        Op::AskYes(k) => Op::AskYes(pick(k, &|v| v.asked)),
        Op::AskNo(k) => Op::AskNo(pick(k, &|v| v.asked)),
        Op::Invite(k, b) => Op::Invite(pick(k, &|v| !v.call.is_empty()), b),
        other => other,
    }
}

impl View {
    fn apply(&mut self, me: &str, msg: &Msg, seen: &Seen) -> Result<(), String> {
        let line = msg.line();
        if let Msg::Media { header, .. } = msg {
            let Some(from) = header.strip_prefix("from ").and_then(|r| r.split(' ').next()) else {
                return Err(format!("{me} got media without its sender: {header}"));
            };
            if !self.call.contains(from) {
                return Err(format!("{me} got media from {from}, not in its call {:?}", self.call));
            }
            seen.frames.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("ask"), Some("yes" | "no")) => {}
            (Some("ask"), Some(_)) => self.asked = true,
            (Some("start" | "joined"), Some(id)) => {
                self.asked &= line.starts_with("joined");
                self.call.insert(id.to_owned());
                if self.call.len() >= 2 {
                    seen.joins.fetch_add(1, Ordering::Relaxed);
                }
            }
            (Some("left"), Some(id)) => {
                self.call.remove(id);
            }
            (Some("stop"), _) => {
                self.call.clear();
                self.asked = false;
            }
            _ => {}
        }
        Ok(())
    }
}

fn group_client(server: &Server, i: usize) -> Client {
    let mut c = server.client();
    c.send(&format!("name p{i}x{}", c.id.rsplit(':').next().unwrap_or("0")));
    c.expect_prefix("ok name ");
    c.send("features group");
    c.expect("ok features group");
    c
}

fn run_case(server: &Server, ops: &[Op], streamer: bool, seen: &Seen) -> Result<(), TestCaseError> {
    let mut clients: Vec<Client> = (0..N).map(|i| group_client(server, i)).collect();
    let mut views: Vec<View> = (0..N).map(|_| View::default()).collect();
    // Client 0's stream, while it is in a call.
    let start_stream = |c: &Client| {
        let st = c.stream("audio", &[0u8; 40]);
        st.pause(true);
        st
    };
    let mut stream = streamer.then(|| start_stream(&clients[0]));
    for &op in ops {
        let op = steer(op, &views);
        let actor = op.actor();
        if let Op::AskYes(_) | Op::AskNo(_) = op {
            views[actor].asked = false;
        }
        match op {
            Op::Connect(_, b) => {
                let line = format!("connect {}", clients[b].id);
                clients[actor].send(&line);
            }
            Op::Invite(_, b) => {
                let line = format!("invite {}", clients[b].id);
                clients[actor].send(&line);
            }
            Op::AskYes(_) => clients[actor].send("ask yes"),
            Op::AskNo(_) => clients[actor].send("ask no"),
            Op::Stop(_) => clients[actor].send("stop"),
            Op::Media(_) => clients[actor].send_media("video", true, &[actor as u8; 64]),
            Op::Reconnect(_) => {
                if actor == 0 {
                    stream = None;
                }
                clients[actor] = group_client(server, actor);
                views[actor] = View::default();
                if actor == 0 && streamer {
                    stream = Some(start_stream(&clients[0]));
                }
            }
        }
        // The actor first: once its pong is back, its command has been
        // executed and everything it caused is queued ahead of the others' pongs.
        let order = std::iter::once(actor).chain((0..N).filter(|i| *i != actor));
        for i in order {
            let me = clients[i].id.clone();
            for m in clients[i].sync_events() {
                views[i].apply(&me, &m, seen).map_err(TestCaseError::fail)?;
            }
        }
        if let Op::Stop(_) = op {
            views[actor].call.clear();
            views[actor].asked = false;
        }
        if let Some(st) = &stream {
            st.pause(views[0].call.is_empty());
        }
    }
    drop(stream);
    for (i, c) in clients.iter_mut().enumerate() {
        let me = c.id.clone();
        for m in c.sync_events() {
            views[i].apply(&me, &m, seen).map_err(TestCaseError::fail)?;
        }
    }
    Ok(())
}

fn server() -> Server {
    Server::start_with(&[
        "--connect-burst",
        "100000",
        "--max-per-ip",
        "1000",
        "--rings-per-pair",
        "0",
        "--rings-per-callee",
        "0",
        "--max-control-bytes",
        "16777216",
    ])
}

#[test]
fn no_media_reaches_anyone_outside_the_call_as_it_knows_it() {
    let server = server();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let seen = Seen::default();
    runner.run(&proptest::collection::vec(op(), 1..40), |ops| run_case(&server, &ops, false, &seen)).unwrap();
    // The sequences must have made group calls and carried media in them.
    let (joins, frames) = (seen.joins.into_inner(), seen.frames.into_inner());
    eprintln!("{joins} parties saw a call of three or more; {frames} frames received");
    assert!(joins > cases as usize / 4 && frames > cases as usize / 4, "{joins} joins, {frames} frames");
}

#[test]
fn no_media_crosses_a_join_or_a_leave_with_a_concurrent_sender() {
    let server = server();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let seen = Seen::default();
    runner.run(&proptest::collection::vec(op(), 1..30), |ops| run_case(&server, &ops, true, &seen)).unwrap();
    assert!(seen.joins.into_inner() > 0, "no call of three or more");
}
