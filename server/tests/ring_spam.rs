//! Ring spam: the ring limits hold per source address and per callee, so
//! reconnecting after every ring does not reset them, and a callee can
//! `block` a caller by nick or address (the caller just sees `busy`).

mod support;

use std::net::IpAddr;

use support::{Client, Server};

/// The default ring limits, given explicitly.
const DEFAULTS: [&str; 6] = ["--rings-per-pair", "5", "--rings-per-callee", "20", "--rings-per-address", "0"];

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// How many of `lines` start with `prefix`.
fn count(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(prefix)).count()
}

fn lines(c: &mut Client) -> Vec<String> {
    c.sync().iter().map(|m| m.line().to_owned()).collect()
}

#[test]
fn reconnecting_after_every_ring_gets_only_a_few_asks_through() {
    // The default limits (the test support lifts them otherwise).
    let server = Server::start_with(&DEFAULTS);
    let mut victim = server.named("ofiara");
    let mut answers = Vec::new();
    for _ in 0..40 {
        let mut spammer = Client::connect_from(ip(2), server.addr).expect("connect from 127.0.0.2");
        spammer.send("connect ofiara");
        answers.push(spammer.recv_event().line().to_owned());
        // Gone at once: the victim is free again for the next one.
    }
    let seen = lines(&mut victim);
    let asks = count(&seen, "ask ");
    assert!((1..=5).contains(&asks), "{asks} asks reached the victim");
    assert!(count(&answers, "error rate-limited") >= 30, "{answers:?}");
    // Someone else still gets through.
    let mut ala = server.named("ala");
    support::ring(&mut ala, &mut victim);
    let log = server.log();
    assert!(log.matches("ring refused").count() <= 40, "at most one line per connection");
}

#[test]
fn a_blocked_caller_sees_busy_and_the_callee_nothing() {
    let server = Server::start_with(&[&DEFAULTS[..], &["--connect-burst", "100"]].concat());
    let mut victim = server.named("ofiara");
    let mut ala = server.named("ala");
    victim.send("block ALA");
    victim.expect("ok block ALA");
    ala.send("connect ofiara");
    ala.expect(&format!("busy {}", victim.id));
    // By address: any nick from 127.0.0.2.
    victim.send("block 127.0.0.2");
    victim.expect("ok block 127.0.0.2");
    let mut other = Client::connect_from(ip(2), server.addr).expect("connect from 127.0.0.2");
    other.send("connect ofiara");
    other.expect(&format!("busy {}", victim.id));
    let seen = lines(&mut victim);
    assert_eq!(count(&seen, "ask "), 0, "{seen:?}");
    // Blocked callers are not rung, so the callee stays free for others.
    victim.send("unblock ala");
    victim.expect("ok unblock ala");
    support::ring(&mut ala, &mut victim);
}
