//! End to end: headless clients in group calls through the real server.
//! Four people: ala calls bob, then invites cecylia and dawid (`--invite`);
//! each sends its own test pattern and tone, and every party must decode
//! every other party's pictures and hear its tone, each from its own
//! pipelines (the JSON summary has one entry per party after the first).
//! Then a refused invitation and a party that leaves, and a fourth party on
//! a slow downlink (through the link emulator), who must not lower what the
//! others get; an invitation to someone busy, and one nobody answers; a
//! party that leaves and is invited again; and who speaks. The tests take turns: each runs four encoders and twelve
//! decoders on a shared two-core machine.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use komunikator_linkem::{Backend, Link, LinkSpec};

use komunikator_protocol::{Command, Target};
use serde_json::Value;
use support::peer::Peer;
use support::{Client, Outcome, READY, Server, args, test_media};

/// Luma values may differ this much after compression.
const LUMA_TOLERANCE: i64 = 24;

/// One test at a time (see the module documentation).
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pictures a small, slow format keeps four encoders and twelve decoders
/// within two shared cores.
fn small() -> Vec<String> {
    args(&[&["--size", "320x240", "--fps", "15"]])
}

struct Party {
    nick: &'static str,
    pattern: &'static str,
    tone: u32,
}

/// Four still patterns that differ, so a decoded picture tells its sender.
const PARTIES: [Party; 4] = [
    Party { nick: "ala", pattern: "blue", tone: 440 },
    Party { nick: "bob", pattern: "gradient", tone: 550 },
    Party { nick: "cecylia", pattern: "colors", tone: 660 },
    Party { nick: "dawid", pattern: "red", tone: 770 },
];

/// A headless party on `addr` that answers group calls, sending `pattern`
/// and `tone`, with `extra` flags (`--duration` at least); started and ready.
fn answering(addr: &str, nick: &str, extra: &[&str], (pattern, tone): (&str, u32)) -> Client {
    let own = args(&[&["--name", nick, "--answer", "--group"], extra]);
    let c = Client::start(addr, &[own, test_media(pattern, tone), small()].concat());
    c.wait_for("komunikator: ready", READY);
    c
}

/// ala, who calls bob and then invites `invites` one after the other, with
/// `extra` flags, sending `pattern` and `tone`.
fn ala_inviting(addr: &str, invites: &[&str], extra: &[&str], (pattern, tone): (&str, u32)) -> Client {
    let invites: Vec<&str> = invites.iter().flat_map(|nick| ["--invite", nick]).collect();
    let own = args(&[&["--name", "ala", "--call", "bob"], &invites, extra]);
    Client::start(addr, &[own, test_media(pattern, tone), small()].concat())
}

/// A protocol-level party on `addr`, named `nick`, with group calls on.
fn group_peer(addr: &str, nick: &str) -> Peer {
    let mut p = Peer::connect(addr);
    p.send(&Command::Name(nick));
    p.expect_line("ok name", Duration::from_secs(5));
    p.send(&Command::Features("group"));
    p.expect_line("ok features group", Duration::from_secs(5));
    p
}

#[test]
fn four_people_each_see_and_hear_the_other_three() {
    let _turn = turn();
    let server = Server::start();
    // The invited stay a little longer than ala, who leaves first.
    let invited: Vec<Client> = PARTIES[1..]
        .iter()
        .map(|p| answering(&server.addr, p.nick, &["--duration", "14"], (p.pattern, p.tone)))
        .collect();
    let media = (PARTIES[0].pattern, PARTIES[0].tone);
    let ala = ala_inviting(&server.addr, &["cecylia", "dawid"], &["--duration", "10"], media);
    let mut outcomes = vec![ala.finish(Duration::from_secs(90))];
    outcomes.extend(invited.into_iter().map(|c| c.finish(Duration::from_secs(60))));
    for (o, p) in outcomes.iter().zip(&PARTIES) {
        assert_eq!(o.code, Some(0), "{}: {}", p.nick, o.stderr);
    }
    let ids: Vec<String> =
        outcomes.iter().map(|o| o.json()["id"].as_str().unwrap_or("").to_owned()).collect();
    for (i, receiver) in outcomes.iter().enumerate() {
        let heard = by_sender(receiver, &ids, i);
        assert_eq!(heard.len(), 3, "{} has figures for {:?}", PARTIES[i].nick, heard.keys());
        for (j, sender) in outcomes.iter().enumerate().filter(|(j, _)| *j != i) {
            let got = &heard[&ids[j]];
            let what = format!("{} -> {}", PARTIES[j].nick, PARTIES[i].nick);
            check(&what, sender, got, f64::from(PARTIES[j].tone));
        }
    }
}

/// What `receiver` (number `me`) got from each other party, by id: its
/// first party (from `start`) in the top-level figures, the others in `parties`.
fn by_sender<'a>(receiver: &'a Outcome, ids: &[String], me: usize) -> HashMap<String, &'a Value> {
    let json = receiver.json();
    let mut heard: HashMap<String, &Value> = HashMap::new();
    for p in json["parties"].as_array().unwrap_or_else(|| panic!("no parties: {json}")) {
        heard.insert(p["id"].as_str().unwrap_or("").to_owned(), p);
    }
    // ala's first party is bob; everyone else's is ala (who called or invited them).
    let first = if me == 0 { &ids[1] } else { &ids[0] };
    assert!(!heard.contains_key(first), "the first party is not repeated in parties: {json}");
    heard.insert(first.clone(), json);
    heard
}

fn check(what: &str, sender: &Outcome, got: &Value, tone_hz: f64) {
    let n = |key: &str| got[key].as_u64().unwrap_or_else(|| panic!("{what}: {key} missing in {got}"));
    // Each was in the call with each other for several seconds at 15 frames/s.
    let decoded = n("video_frames_decoded");
    assert!(decoded >= 30, "{what}: only {decoded} pictures decoded: {got}");
    assert!(n("audio_packets_decoded") >= 100, "{what}: {got}");
    let hz = got["audio_dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - tone_hz).abs() < 5.0, "{what}: decoded tone is {hz} Hz, expected {tone_hz}");
    let theirs = grid(sender.json(), "video_sent_luma");
    let received = grid(got, "video_received_luma");
    let distance = theirs.iter().zip(&received).map(|(a, b)| (a - b).abs()).max().unwrap_or(i64::MAX);
    assert!(
        distance <= LUMA_TOLERANCE,
        "{what}: decoded picture {received:?} is not the sent pattern {theirs:?}"
    );
}

fn grid(json: &Value, key: &str) -> Vec<i64> {
    let v = json[key].as_array().unwrap_or_else(|| panic!("{key} missing: {json}"));
    v.iter().filter_map(Value::as_i64).collect()
}

#[test]
fn a_refused_invitation_is_skipped_and_a_party_that_leaves_leaves_the_call_going() {
    let _turn = turn();
    let server = Server::start();
    let bob = answering(&server.addr, "bob", &["--duration", "12"], ("gradient", 550));
    // cecylia leaves after 3 s; ala and bob go on.
    let cecylia = answering(&server.addr, "cecylia", &["--duration", "3"], ("gradient", 660));
    let ala = ala_inviting(&server.addr, &["nobody", "cecylia"], &["--duration", "8"], ("blue", 440));
    let ala = ala.finish(Duration::from_secs(60));
    let (bob, cecylia) = (bob.finish(Duration::from_secs(30)), cecylia.finish(Duration::from_secs(30)));
    for (o, who) in [(&ala, "ala"), (&bob, "bob"), (&cecylia, "cecylia")] {
        assert_eq!(o.code, Some(0), "{who}: {}", o.stderr);
    }
    assert!(ala.stderr.contains("invitation refused: no-such-client"), "{}", ala.stderr);
    assert!(ala.stderr.contains("left the call (hangup)"), "{}", ala.stderr);
    assert_eq!(ala.end_reason(), "hangup", "ala hung up at the end of its 8 s, not when cecylia left");
    assert!(ala.f("call_seconds") >= 7.5, "{}", ala.json());
    let parties = ala.json()["parties"].as_array().cloned().unwrap_or_default();
    assert_eq!(parties.len(), 1, "{}", ala.json());
    assert_eq!(parties[0]["nick"], "cecylia");
    let hz = parties[0]["audio_dominant_hz"].as_f64().unwrap_or(0.0);
    assert!((hz - 660.0).abs() < 5.0, "cecylia's tone while she was there: {hz}");
    // bob heard ala the whole time, cecylia while she was there.
    assert!((bob.f("audio_dominant_hz") - 440.0).abs() < 5.0, "{}", bob.json());
    assert_eq!(cecylia.end_reason(), "hangup");
}

#[test]
fn a_receiver_on_a_slow_link_does_not_lower_what_the_others_get() {
    let _turn = turn();
    let server = Server::start();
    // dawid's downlink: 300 kbit/s, a home router's queue.
    let spec = LinkSpec::parse("unlimited", "300kbit,queue=100ms").expect("a link spec");
    let upstream: SocketAddr = server.addr.parse().expect("the server's address");
    let link = Link::start(upstream, &spec, Backend::UserSpace).expect("start the link emulator");
    let dawid_addr = link.client_addr().to_string();
    let twenty = ["--duration", "20"];
    let bob = answering(&server.addr, "bob", &twenty, ("gradient", 550));
    let cecylia = answering(&server.addr, "cecylia", &twenty, ("colors", 660));
    let dawid = answering(&dawid_addr, "dawid", &twenty, ("red", 770));
    // ala sends noise, which fills whatever rate the encoder is given.
    let extra = ["--duration", "16", "--video-kbps", "800"];
    let ala = ala_inviting(&server.addr, &["cecylia", "dawid"], &extra, ("snow", 440));
    let ala = ala.finish(Duration::from_secs(90));
    let others: Vec<Outcome> =
        [bob, cecylia, dawid].into_iter().map(|c| c.finish(Duration::from_secs(60))).collect();
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    for o in &others {
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
    // Had ala followed dawid (300 kbit/s shared by three senders), she
    // would have sent about 100 kbit/s; the others set her rate.
    let kbps = ala.n("video_bytes_sent") as f64 * 8.0 / 1000.0 / ala.f("call_seconds").max(1.0);
    let fps = |o: &Outcome| o.n("video_frames_decoded") as f64 / o.f("call_seconds").max(1.0);
    eprintln!(
        "ala sent {kbps:.0} kbit/s; pictures/s decoded: bob {:.1}, cecylia {:.1}, dawid {:.1}; dawid's audio from ala: {}",
        fps(&others[0]),
        fps(&others[1]),
        others[2].json()["video_frames_decoded"].as_u64().unwrap_or(0) as f64
            / others[2].f("call_seconds").max(1.0),
        others[2].n("audio_packets_decoded")
    );
    assert!(kbps >= 400.0, "ala sent {kbps:.0} kbit/s of video; rates: {}", ala.json()["video_rate"]);
    let sent = ala.n("video_frames_sent");
    for (o, nick) in others[..2].iter().zip(["bob", "cecylia"]) {
        let decoded = o.n("video_frames_decoded");
        assert!(
            decoded * 100 >= sent * 70,
            "{nick} decoded {decoded} of ala's {sent} pictures: {}",
            o.json()
        );
    }
    // dawid gets thinned video, but every party's voice.
    let dawid = &others[2];
    let heard = by_sender(dawid, &[ala.json()["id"].as_str().unwrap_or("").to_owned()], 3);
    assert_eq!(heard.len(), 3, "{}", dawid.json());
    for (_, got) in heard {
        let audio = got["audio_packets_decoded"].as_u64().unwrap_or(0);
        assert!(audio >= 400, "dawid decoded only {audio} audio packets from a party: {got}");
    }
}

#[test]
fn the_speaker_is_whoever_talks_and_a_second_voice_does_not_take_over_until_the_first_leaves() {
    let _turn = turn();
    let server = Server::start();
    let start = |nick: &str, extra: &[&str]| answering(&server.addr, nick, extra, ("gradient", 550));
    // bob talks, then leaves; dawid joins while bob talks, as loud; ala and
    // cecylia are muted (their silence goes out).
    let bob = start("bob", &["--duration", "8"]);
    let cecylia = start("cecylia", &["--duration", "16", "--mute"]);
    let dawid = start("dawid", &["--duration", "16"]);
    let extra = ["--duration", "14", "--mute"];
    let ala = ala_inviting(&server.addr, &["cecylia", "dawid"], &extra, ("blue", 440));
    let ala = ala.finish(Duration::from_secs(90));
    let (bob, cecylia, dawid) = (
        bob.finish(Duration::from_secs(60)),
        cecylia.finish(Duration::from_secs(60)),
        dawid.finish(Duration::from_secs(60)),
    );
    for (o, who) in [(&ala, "ala"), (&bob, "bob"), (&cecylia, "cecylia"), (&dawid, "dawid")] {
        assert_eq!(o.code, Some(0), "{who}: {}", o.stderr);
    }
    let id = |o: &Outcome| o.json()["id"].as_str().unwrap_or("").to_owned();
    let (bob_id, dawid_id, cecylia_id) = (id(&bob), id(&dawid), id(&cecylia));
    let speakers = |o: &Outcome| -> Vec<String> {
        let lines = o.stderr.lines().filter_map(|l| l.split_once("speaker: "));
        lines.map(|(_, s)| s.trim().to_owned()).collect()
    };
    // ala heard bob from the start, and dawid only later.
    assert_eq!(
        speakers(&ala),
        [bob_id.as_str(), "nobody", dawid_id.as_str()],
        "bob spoke first and kept the place while dawid, as loud, joined; dawid took it when bob \
         left:\n{}",
        ala.stderr
    );
    let left = ala.stderr.find(&format!("{bob_id} left the call")).expect("bob left");
    assert!(ala.stderr.find(&format!("speaker: {dawid_id}")) > Some(left), "{}", ala.stderr);
    // cecylia, invited, began to hear bob and dawid about together: either
    // may come first, but nobody flaps, and dawid speaks at the end.
    let heard = speakers(&cecylia);
    assert!(heard.len() <= 4, "{heard:?}: {}", cecylia.stderr);
    let named: Vec<&String> = heard.iter().filter(|s| *s != "nobody").collect();
    assert_eq!(named.last().map(|s| s.as_str()), Some(dawid_id.as_str()), "{}", cecylia.stderr);
    // Switches belong to their party: cecylia muted, not ala's first party
    // (bob); and ala's, sent before cecylia and dawid joined, reach them
    // (sent again when they joined).
    assert!(ala.stderr.contains(&format!("{cecylia_id}: muted true, camera off false")), "{}", ala.stderr);
    assert!(!ala.stderr.contains("peer: muted true"), "bob never muted: {}", ala.stderr);
    for (o, who) in [(&cecylia, "cecylia"), (&dawid, "dawid")] {
        assert!(o.stderr.contains("peer: muted true"), "{who} hears that ala is muted: {}", o.stderr);
    }
}

#[test]
fn a_busy_invitee_and_one_that_never_answers_leave_the_call_going() {
    let _turn = turn();
    let server = Server::start_with(&["--ring-timeout", "3"]);
    let peer = |nick: &str| group_peer(&server.addr, nick);
    // gosia and henryk are in a call of their own: henryk is busy.
    let (mut gosia, mut henryk) = (peer("gosia"), peer("henryk"));
    gosia.send(&Command::Connect(Target::Nick("henryk")));
    henryk.expect_line("ask ", Duration::from_secs(5));
    henryk.send(&Command::AskYes);
    henryk.expect_line("start ", Duration::from_secs(5));
    // eve is free, but never answers.
    let mut eve = peer("eve");
    let bob = answering(&server.addr, "bob", &["--duration", "16"], ("gradient", 550));
    let ala = ala_inviting(&server.addr, &["henryk", "eve"], &["--duration", "10"], ("blue", 440));
    eve.expect_line("ask ", Duration::from_secs(30));
    eve.expect_line("stop timeout", Duration::from_secs(10));
    let (ala, bob) = (ala.finish(Duration::from_secs(60)), bob.finish(Duration::from_secs(30)));
    assert_eq!(ala.code, Some(0), "{}", ala.stderr);
    assert!(ala.stderr.contains("invitation refused:") && ala.stderr.contains("is busy"), "{}", ala.stderr);
    assert!(ala.stderr.contains("did not join: timeout"), "{}", ala.stderr);
    // Neither stopped the call: ala hung up when her 10 s were over.
    assert_eq!(ala.end_reason(), "hangup", "{}", ala.stderr);
    assert!(ala.f("call_seconds") >= 9.5, "{}", ala.json());
    assert!(ala.json()["parties"].as_array().is_some_and(Vec::is_empty), "{}", ala.json());
    assert!((ala.f("audio_dominant_hz") - 550.0).abs() < 5.0, "ala heard bob: {}", ala.json());
    assert_eq!(bob.end_reason(), "peer-hangup", "{}", bob.stderr);
    // The busy pair was not disturbed.
    gosia.send(&Command::Ping);
    gosia.expect_line("pong", Duration::from_secs(5));
}

#[test]
fn a_party_that_left_can_be_invited_again() {
    let _turn = turn();
    let server = Server::start();
    let long = Duration::from_secs(30);
    let bob = answering(&server.addr, "bob", &["--duration", "30"], ("gradient", 550));
    // ala drives the call by hand: calls bob, invites cecylia, who leaves
    // after 4 s; cecylia comes back (a new start of her client) and is
    // invited again.
    let mut ala = group_peer(&server.addr, "ala");
    ala.send(&Command::Connect(Target::Nick("bob")));
    ala.expect_line("start ", long);
    let mut joins = Vec::new();
    for (pattern, tone) in [("colors", 660), ("red", 770)] {
        let cecylia = answering(&server.addr, "cecylia", &["--duration", "4"], (pattern, tone));
        ala.send(&Command::Invite(Target::Nick("cecylia")));
        joins.push(ala.expect_line("joined ", long));
        ala.send(&Command::Msg("witaj"));
        ala.expect_line("left ", long);
        let cecylia = cecylia.finish(long);
        assert_eq!(cecylia.code, Some(0), "{}", cecylia.stderr);
        // She saw and heard bob each time.
        let heard = cecylia.json()["parties"].as_array().cloned().unwrap_or_default();
        assert_eq!(heard.len(), 1, "{}", cecylia.json());
        let hz = heard[0]["audio_dominant_hz"].as_f64().unwrap_or(0.0);
        assert!((hz - 550.0).abs() < 5.0, "cecylia heard {hz} Hz: {}", cecylia.json());
        assert!(heard[0]["video_frames_decoded"].as_u64().unwrap_or(0) >= 15, "{}", cecylia.json());
    }
    assert_ne!(joins[0], joins[1], "a new connection, a new id");
    ala.send(&Command::Stop);
    let bob = bob.finish(long);
    assert_eq!(bob.end_reason(), "peer-hangup", "{}", bob.stderr);
    assert_eq!(bob.stderr.matches("(cecylia) joined the call").count(), 2, "{}", bob.stderr);
    // Chat lines in a group call say who wrote them.
    let started = bob.stderr.split("call started with ").nth(1).and_then(|s| s.lines().next());
    let line = format!("message from {}: witaj", started.unwrap_or("?"));
    assert_eq!(bob.stderr.matches(&line).count(), 2, "{line}: {}", bob.stderr);
    let parties = bob.json()["parties"].as_array().cloned().unwrap_or_default();
    let tones: Vec<f64> = parties.iter().map(|p| p["audio_dominant_hz"].as_f64().unwrap_or(0.0)).collect();
    assert_eq!(parties.len(), 2, "{}", bob.json());
    assert!((tones[0] - 660.0).abs() < 5.0 && (tones[1] - 770.0).abs() < 5.0, "{tones:?}: {}", bob.json());
    for p in &parties {
        assert!(p["video_frames_decoded"].as_u64().unwrap_or(0) >= 15, "{p}");
    }
}
