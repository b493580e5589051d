//! Three-client races: busy callees, crossing connects, a third client
//! answering someone else's call.

mod support;

use support::{Msg, Server, call_pair};

#[test]
fn calling_someone_in_a_call_gets_busy_and_no_media() {
    let server = Server::start();
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    let mut c = server.named("cyryl");
    c.send("connect bob");
    c.expect(&format!("busy {}", b.id));
    c.send("connect ala");
    c.expect(&format!("busy {}", a.id));
    a.send_media("video", true, b"secret");
    b.send_media("audio", true, b"secret");
    assert!(matches!(b.recv_event(), Msg::Media { .. }));
    assert!(matches!(a.recv_event(), Msg::Media { .. }));
    assert!(c.sync_events().is_empty(), "no byte of that call reaches the third client");
}

#[test]
fn calling_someone_who_is_ringing_gets_busy() {
    let server = Server::start();
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    let mut c = server.named("cyryl");
    support::ring(&mut a, &mut b);
    c.send("connect bob");
    c.expect(&format!("busy {}", b.id));
    c.send("connect ala");
    c.expect(&format!("busy {}", a.id));
}

#[test]
fn crossing_connects_make_exactly_one_call() {
    let server = Server::start();
    for i in 0..20 {
        let mut a = server.named(&format!("ala{i}"));
        let mut b = server.named(&format!("bob{i}"));
        // Both at once, in one write each.
        a.send(&format!("connect bob{i}"));
        b.send(&format!("connect ala{i}"));
        let ea = a.sync_events();
        let eb = b.sync_events();
        let lines = |v: &Vec<Msg>| v.iter().map(|m| m.line().to_owned()).collect::<Vec<_>>();
        let (la, lb) = (lines(&ea), lines(&eb));
        // One of them is calling, the other is asked and told its own connect is refused.
        let a_calls = la.iter().any(|l| l.starts_with("calling "));
        let b_calls = lb.iter().any(|l| l.starts_with("calling "));
        assert!(a_calls ^ b_calls, "exactly one call: {la:?} {lb:?}");
        let (caller, callee, lcallee) = if a_calls { (&mut a, &mut b, lb) } else { (&mut b, &mut a, la) };
        assert!(lcallee.iter().any(|l| l.starts_with("ask ")), "{lcallee:?}");
        assert!(lcallee.iter().any(|l| l.starts_with("error busy")), "{lcallee:?}");
        callee.send("ask yes");
        caller.expect("ask yes");
        caller.expect_prefix("start ");
        callee.expect_prefix("start ");
        caller.send("stop");
        callee.expect("stop hangup");
    }
}

#[test]
fn a_third_client_cannot_answer_someone_elses_ask() {
    let server = Server::start();
    let mut a = server.named("ala");
    let mut b = server.named("bob");
    let mut c = server.named("cyryl");
    support::ring(&mut a, &mut b);
    c.send("ask yes");
    c.expect_prefix("error not-asked");
    c.send("ask no");
    c.expect_prefix("error not-asked");
    assert!(a.sync_events().is_empty(), "the caller heard nothing from the third client");
    b.send("ask yes");
    a.expect("ask yes");
}
