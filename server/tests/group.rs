//! Group calls against the real server: `features group`, `invite` with the
//! same consent rule as `connect`, `joined`/`left`/`declined`, media that
//! goes to every other party in the `from <id>` envelope, and two-party
//! calls with a client that knows nothing of groups staying byte for byte
//! what they were.

mod support;

use std::time::Duration;

use support::{Client, Msg, Server, call_between};

/// A named client with group calls turned on.
fn member(server: &Server, nick: &str) -> Client {
    let mut c = server.named(nick);
    c.send("features group");
    c.expect("ok features group");
    c
}

/// `inviter`, in a call with `others`, invites `invitee`, who accepts.
/// Checks every line each of them gets.
fn invite_in(inviter: &mut Client, others: &mut [&mut Client], invitee: &mut Client) {
    inviter.send(&format!("invite {}", invitee.nick));
    inviter.expect(&format!("inviting {}", invitee.id));
    invitee.expect(&format!("ask {} {}", inviter.id, inviter.nick));
    for o in others.iter() {
        invitee.expect(&format!("with {} {}", o.id, o.nick));
    }
    invitee.send("ask yes");
    invitee.expect(&format!("start {}", inviter.id));
    for o in others.iter() {
        invitee.expect(&format!("joined {} {}", o.id, o.nick));
    }
    let joined = format!("joined {} {}", invitee.id, invitee.nick);
    inviter.expect(&joined);
    for o in others.iter_mut() {
        o.expect(&joined);
    }
}

/// Four members in one call: a called b, a invited c, c invited d.
fn four(server: &Server) -> [Client; 4] {
    let (mut a, mut b) = call_between(member(server, "ala"), member(server, "bob"));
    let mut c = member(server, "cecylia");
    invite_in(&mut a, &mut [&mut b], &mut c);
    let mut d = member(server, "dawid");
    invite_in(&mut c, &mut [&mut a, &mut b], &mut d);
    [a, b, c, d]
}

/// The media frames among `msgs`, as (header line, payload).
fn media(msgs: &[Msg]) -> Vec<(String, Vec<u8>)> {
    msgs.iter()
        .filter_map(|m| match m {
            Msg::Media { header, payload } => Some((header.clone(), payload.clone())),
            Msg::Line(_) => None,
        })
        .collect()
}

/// Every party sends one frame with its own payload; each gets the three
/// others', each in the envelope naming its sender.
fn everyone_hears_everyone(parties: &mut [&mut Client]) {
    let mut got: Vec<Vec<Msg>> = vec![Vec::new(); parties.len()];
    for (i, p) in parties.iter_mut().enumerate() {
        p.send_media("audio", true, &[i as u8; 10]);
        // Once its pong is back, its frame is queued for everyone.
        got[i].extend(p.sync_events());
    }
    let ids: Vec<String> = parties.iter().map(|p| p.id.clone()).collect();
    for (i, p) in parties.iter_mut().enumerate() {
        got[i].extend(p.sync_events());
        let mut got = media(&got[i]);
        got.sort();
        let mut want: Vec<(String, Vec<u8>)> = (0..ids.len())
            .filter(|j| *j != i)
            .map(|j| (format!("from {} audio 1 k 10", ids[j]), vec![j as u8; 10]))
            .collect();
        want.sort();
        assert_eq!(got, want, "what {} got", p.nick);
    }
}

#[test]
fn four_people_in_one_call_each_get_the_other_three() {
    let server = Server::start();
    let [mut a, mut b, mut c, mut d] = four(&server);
    everyone_hears_everyone(&mut [&mut a, &mut b, &mut c, &mut d]);
    // Chat, switches and keyframe requests go to everyone, or to one.
    // dawid hears each before the next is sent, so every receiver has them in this order.
    let (ai, bi, ci) = (a.id.clone(), b.id.clone(), c.id.clone());
    a.send("msg cześć wszystkim");
    d.expect(&format!("from {ai} msg cześć wszystkim"));
    b.send(&format!("keyframe {}", d.id));
    d.expect(&format!("from {bi} keyframe"));
    c.send("media video off");
    d.expect(&format!("from {ci} media video off"));
    assert_eq!(
        lines(&mut b),
        [format!("from {ai} msg cześć wszystkim"), format!("from {ci} media video off")]
    );
    assert_eq!(lines(&mut c), [format!("from {ai} msg cześć wszystkim")]);
    assert_eq!(lines(&mut a), [format!("from {ci} media video off")]);
    assert_eq!(lines(&mut d), Vec::<String>::new());
    // Only a party of the call can be named.
    a.send(&format!("keyframe {}", server_outsider(&server)));
    a.expect_prefix("error not-in-call");
}

fn server_outsider(server: &Server) -> String {
    server.named("outsider").id
}

/// The lines (not notices) a client got, in order.
fn lines(c: &mut Client) -> Vec<String> {
    c.sync_events().iter().map(|m| m.line().to_owned()).collect()
}

#[test]
fn a_party_leaves_the_call_goes_on_and_it_can_come_back() {
    let server = Server::start();
    let [mut a, mut b, mut c, mut d] = four(&server);
    b.send("stop");
    let left = format!("left {} hangup", b.id);
    for p in [&mut a, &mut c, &mut d] {
        p.expect(&left);
    }
    // Nothing of the call reaches b any more; the rest still hear each other.
    a.send_media("audio", true, &[9; 4]);
    a.sync();
    assert_eq!(media(&b.sync_events()), []);
    assert_eq!(media(&c.sync_events()).len(), 1);
    assert_eq!(media(&d.sync_events()).len(), 1);
    b.send_media("audio", true, &[8; 4]);
    b.expect_prefix("error not-in-call");
    // b is free again, and comes back on d's invitation.
    invite_in(&mut d, &mut [&mut a, &mut c], &mut b);
    everyone_hears_everyone(&mut [&mut a, &mut b, &mut c, &mut d]);
    // A dropped connection is a `left ... disconnected`.
    let did = d.id.clone();
    drop(d);
    let left = format!("left {did} disconnected");
    for p in [&mut a, &mut b, &mut c] {
        p.expect(&left);
    }
    // Down to two, a leaving ends the call for the last one.
    c.send("stop");
    a.expect(&format!("left {} hangup", c.id));
    b.expect(&format!("left {} hangup", c.id));
    a.send("stop");
    b.expect("stop hangup");
    b.send("ping");
    b.expect("pong");
}

#[test]
fn an_invitation_asks_consent_like_a_call() {
    let server = Server::start_with(&["--ring-timeout", "1"]);
    let (mut a, mut b) = call_between(member(&server, "ala"), member(&server, "bob"));
    let mut c = member(&server, "cecylia");
    // Declined: a hears `declined ... no`; c got nothing of the call.
    a.send("invite cecylia");
    a.expect(&format!("inviting {}", c.id));
    c.expect(&format!("ask {} ala", a.id));
    c.expect(&format!("with {} bob", b.id));
    a.send_media("audio", true, &[1; 4]);
    a.sync();
    b.sync();
    assert_eq!(media(&c.sync_events()), [], "media before consent");
    c.send("ask no");
    a.expect(&format!("declined {} no", c.id));
    // Unanswered: both told when the ring timeout passes.
    b.send("invite cecylia");
    b.expect(&format!("inviting {}", c.id));
    c.expect_prefix(&format!("ask {} bob", b.id));
    c.expect_prefix("with ");
    c.expect("stop timeout");
    b.expect(&format!("declined {} timeout", c.id));
    // Busy in another call: `busy`, no ask.
    let (mut e, mut f) = call_between(member(&server, "ewa"), member(&server, "feliks"));
    a.send("invite ewa");
    a.expect(&format!("busy {}", e.id));
    assert!(e.sync_events().is_empty() && f.sync_events().is_empty());
    // Blocked: `busy` too, and no ask.
    c.send("block ala");
    c.expect("ok block ala");
    a.send("invite cecylia");
    a.expect(&format!("busy {}", c.id));
    assert!(c.sync_events().is_empty());
    // Disconnected while asked.
    let mut g = member(&server, "gosia");
    b.send("invite gosia");
    b.expect(&format!("inviting {}", g.id));
    g.expect_prefix("ask ");
    let gid = g.id.clone();
    drop(g);
    b.expect(&format!("declined {gid} disconnected"));
}

#[test]
fn invitations_need_group_capable_clients_and_a_free_seat() {
    let server = Server::start_with(&["--max-room", "3", "--connect-burst", "20"]);
    // A call with a client that never said `features group` cannot grow.
    let (mut a, mut old) = call_between(member(&server, "ala"), server.named("stary"));
    let c = member(&server, "cecylia");
    a.send("invite cecylia");
    a.expect_prefix(&format!("error not-supported {} in your call", old.id));
    old.send("invite cecylia");
    old.expect_prefix("error not-supported send features group");
    old.send("stop");
    a.expect("stop hangup");
    // Nor can such a client be invited.
    let (mut a, mut b) = call_between(a, member(&server, "bob"));
    b.send("invite bob");
    b.expect_prefix("error self");
    a.send("invite stary");
    a.expect_prefix("error not-supported that client");
    // Room for three: a ringing invitation holds the last seat.
    a.send("invite cecylia");
    a.expect(&format!("inviting {}", c.id));
    let mut d = member(&server, "dawid");
    b.send("invite dawid");
    b.expect_prefix("error room-full");
    // Nobody may invite outside a call, or twice at once, or themselves.
    d.send("invite ala");
    d.expect_prefix("error not-in-call");
    a.send("invite dawid");
    a.expect_prefix("error busy your last invitation");
    // Features are fixed during a call.
    a.send("features");
    a.expect_prefix("error bad-argument");
    a.send("features none");
    a.expect_prefix("error busy");
    d.send("features something-new group");
    d.expect("ok features group");
    d.send("features something-new");
    d.expect("ok features");
}

#[test]
fn leaving_cancels_ringing_invitations_and_the_last_one_is_told_stop() {
    let server = Server::start();
    let (mut a, mut b) = call_between(member(&server, "ala"), member(&server, "bob"));
    let mut c = member(&server, "cecylia");
    a.send("invite cecylia");
    a.expect_prefix("inviting ");
    c.expect_prefix("ask ");
    c.expect_prefix("with ");
    // The inviter leaves a call of two: it ends, and the invitation with it.
    a.send("stop");
    b.expect("stop hangup");
    c.expect("stop cancelled");
    c.send("ask yes");
    c.expect_prefix("error not-asked");
    assert!(a.sync_events().is_empty());
}

#[test]
fn a_two_party_call_with_a_client_that_knows_no_groups_is_unchanged() {
    let server = Server::start();
    let (mut new, mut old) = call_between(member(&server, "ala"), server.named("stary"));
    // The old client gets exactly the lines of version 1. (Control lines
    // may overtake a queued frame, so the order between them is not fixed.)
    new.send_media("video", true, b"abc");
    new.send("msg hej");
    new.send("delay 40");
    new.sync();
    let got = in_line_order(old.sync_events());
    assert_eq!(
        got,
        in_line_order(vec![
            Msg::Media { header: "video 1 k 3".into(), payload: b"abc".to_vec() },
            Msg::Line("msg hej".into()),
            Msg::Line("delay 40".into()),
        ])
    );
    // The group-capable one gets them in the envelope.
    old.send_media("audio", true, b"xy");
    old.send("keyframe");
    old.sync();
    let got = in_line_order(new.sync_events());
    let oid = &old.id;
    assert_eq!(
        got,
        in_line_order(vec![
            Msg::Media { header: format!("from {oid} audio 1 k 2"), payload: b"xy".to_vec() },
            Msg::Line(format!("from {oid} keyframe")),
        ])
    );
}

/// `msgs` sorted by their lines: what arrived, whatever overtook what.
fn in_line_order(mut msgs: Vec<Msg>) -> Vec<Msg> {
    msgs.sort_by(|a, b| a.line().cmp(b.line()));
    msgs
}

#[test]
fn a_slow_receiver_does_not_slow_the_other_three() {
    let server = Server::start();
    let (mut a, mut b) = call_between(member(&server, "ala"), member(&server, "bob"));
    let mut c = member(&server, "cecylia");
    invite_in(&mut a, &mut [&mut b], &mut c);
    let mut slow = Client::connect_small_rcvbuf(server.addr, 4096);
    slow.send("name dawid");
    slow.expect("ok name dawid");
    slow.nick = "dawid".into();
    slow.send("features group");
    slow.expect("ok features group");
    invite_in(&mut a, &mut [&mut b, &mut c], &mut slow);
    // dawid reads nothing from now on; bob and cecylia read as it comes.
    let frames = 60;
    let readers: Vec<_> = [b, c]
        .into_iter()
        .map(|mut p| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < frames {
                    match p.try_recv(Duration::from_secs(20)) {
                        Some(Msg::Media { payload, .. }) => got.push(payload[0]),
                        Some(Msg::Line(_)) => {}
                        None => break,
                    }
                }
                (p.nick.clone(), got)
            })
        })
        .collect();
    // ala sends 1.9 MiB of video in two bursts half a second apart, a
    // keyframe every 10 frames: dawid's queue grows old and drops video.
    for i in 0..frames {
        a.send_media("video", i % 10 == 0, &[i as u8; 32 << 10]);
        if i == frames / 2 {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    for reader in readers {
        let (nick, got) = reader.join().unwrap();
        let want: Vec<u8> = (0..frames as u8).collect();
        assert_eq!(got, want, "{nick} lost frames to dawid's slowness");
    }
    let got = media(&slow.sync_events());
    assert!(got.len() < frames, "dawid's queue should have dropped video, got {}", got.len());
}

#[test]
fn group_doc_session() {
    // docs/PROTOCOL.md, "A group call by hand", line for line.
    let server = Server::start();
    let (mut ala, mut bob) = call_between(member(&server, "ala"), member(&server, "bob"));
    let mut cecylia = server.named("cecylia");
    cecylia.send("features group");
    cecylia.expect("ok features group");
    ala.send("invite cecylia");
    ala.expect(&format!("inviting {}", cecylia.id));
    cecylia.expect(&format!("ask {} ala", ala.id));
    cecylia.expect(&format!("with {} bob", bob.id));
    cecylia.send("ask yes");
    cecylia.expect(&format!("start {}", ala.id));
    cecylia.expect(&format!("joined {} bob", bob.id));
    let joined = format!("joined {} cecylia", cecylia.id);
    ala.expect(&joined);
    bob.expect(&joined);
    cecylia.send("msg cześć!");
    let said = format!("from {} msg cześć!", cecylia.id);
    ala.expect(&said);
    bob.expect(&said);
    bob.send_bytes(b"audio 3000 k 4\nabc\n");
    let got = cecylia.recv_event();
    assert_eq!(
        got,
        Msg::Media { header: format!("from {} audio 3000 k 4", bob.id), payload: b"abc\n".to_vec() }
    );
    ala.send("stop");
    let left = format!("left {} hangup", ala.id);
    bob.expect(&left);
    cecylia.expect(&left);
}
