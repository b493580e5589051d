//! A property test of the call state machine, against the real server:
//! across random sequences of commands from three clients, no media byte ever
//! reaches a client that did not itself accept that call, and only the asked
//! client can answer.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::{Client, Msg, Server};

#[derive(Debug, Clone, Copy)]
enum Op {
    Connect(usize, usize),
    AskYes(usize),
    AskNo(usize),
    Stop(usize),
    Media(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Connect(a, b)),
        3 => (0..3usize).prop_map(Op::AskYes),
        1 => (0..3usize).prop_map(Op::AskNo),
        1 => (0..3usize).prop_map(Op::Stop),
        4 => (0..3usize).prop_map(Op::Media),
    ]
}

/// What one client knows from its own messages.
#[derive(Default, Debug)]
struct View {
    asked_by: Option<String>,
    calling: Option<String>,
    in_call: Option<String>,
}

impl View {
    /// Applies one received message; checks media against the view.
    fn apply(&mut self, me: &str, msg: &Msg, ids: &[String]) -> Result<(), String> {
        let line = msg.line();
        if let Msg::Media { payload, .. } = msg {
            let sender = &ids[usize::from(payload[0])];
            if self.in_call.as_ref() != Some(sender) {
                return Err(format!("{me} got media from {sender} while in call with {:?}", self.in_call));
            }
            return Ok(());
        }
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("ask"), Some("yes" | "no")) => self.calling = None,
            (Some("ask"), Some(caller)) => self.asked_by = Some(caller.to_owned()),
            (Some("calling"), Some(callee)) => self.calling = Some(callee.to_owned()),
            (Some("start"), Some(peer)) => {
                self.in_call = Some(peer.to_owned());
                self.asked_by = None;
                self.calling = None;
            }
            (Some("stop"), _) => *self = View::default(),
            _ => {}
        }
        Ok(())
    }
}

fn run_case(server: &Server, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut clients: Vec<Client> = (0..3).map(|_| server.client()).collect();
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();
    let mut views: Vec<View> = (0..3).map(|_| View::default()).collect();
    for c in &mut clients {
        c.sync();
    }
    for &op in ops {
        let actor = match op {
            Op::Connect(a, _) | Op::AskYes(a) | Op::AskNo(a) | Op::Stop(a) | Op::Media(a) => a,
        };
        let was_asked_by = views[actor].asked_by.clone();
        match op {
            Op::Connect(_, b) => clients[actor].send(&format!("connect {}", ids[b])),
            Op::AskYes(_) => clients[actor].send("ask yes"),
            Op::AskNo(_) => clients[actor].send("ask no"),
            Op::Stop(_) => clients[actor].send("stop"),
            Op::Media(_) => clients[actor].send_media("video", true, &[actor as u8; 64]),
        }
        // The actor first: once its pong is back, the command has been
        // executed and everything it caused is queued ahead of the others' pongs.
        let mut got: Vec<Vec<Msg>> = vec![Vec::new(), Vec::new(), Vec::new()];
        got[actor] = clients[actor].sync_events();
        for (i, c) in clients.iter_mut().enumerate().filter(|(i, _)| *i != actor) {
            got[i] = c.sync_events();
        }
        for (i, msgs) in got.iter().enumerate() {
            for m in msgs {
                views[i].apply(&ids[i], m, &ids).map_err(TestCaseError::fail)?;
                // Only the asked client can answer: an `ask yes` reaches a
                // caller only right after its callee, who was asked by it, said yes.
                if m.line() == "ask yes" {
                    let answered =
                        matches!(op, Op::AskYes(_)) && was_asked_by.as_deref() == Some(ids[i].as_str());
                    prop_assert!(answered, "{} got ask yes after {op:?}", ids[i]);
                }
            }
        }
        // The actor's own commands change its view without a reply.
        match op {
            Op::AskNo(_) => views[actor].asked_by = None,
            Op::Stop(_) => views[actor] = View::default(),
            _ => {}
        }
        if let Op::AskYes(_) | Op::AskNo(_) = op {
            let refused = got[actor].iter().any(|m| m.line().starts_with("error not-asked"));
            prop_assert_eq!(
                refused,
                was_asked_by.is_none(),
                "{:?} by a client asked by {:?}",
                op,
                was_asked_by
            );
        }
    }
    Ok(())
}

#[test]
fn no_media_reaches_a_client_that_did_not_accept_and_only_the_asked_answer() {
    let server = Server::start_with(&["--connect-burst", "100000", "--max-per-ip", "1000"]);
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner.run(&proptest::collection::vec(op(), 1..40), |ops| run_case(&server, &ops)).unwrap();
}
