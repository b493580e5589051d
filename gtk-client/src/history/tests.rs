//! The history's model, tracker and file handling.

use std::time::{Duration, Instant, SystemTime};

use komunikator_protocol::{ClientId, ErrorCode};

use super::*;

fn id(port: u16) -> ClientId {
    ClientId::from(([127, 0, 0, 1], port))
}

fn entry(peer: &str, start: u64) -> Entry {
    Entry { peer: peer.into(), direction: Direction::Incoming, outcome: Outcome::Missed, start }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("komunikator-history-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[test]
fn lines_round_trip() {
    let entries = [
        Entry {
            peer: "ala".into(),
            direction: Direction::Outgoing,
            outcome: Outcome::Answered(Duration::from_secs(192)),
            start: 1,
        },
        Entry {
            peer: "127.0.0.1:9".into(),
            direction: Direction::Incoming,
            outcome: Outcome::Missed,
            start: 2,
        },
        Entry {
            peer: "żółw".into(), direction: Direction::Incoming, outcome: Outcome::Declined, start: 3
        },
        Entry {
            peer: "b.o-b_".into(),
            direction: Direction::Outgoing,
            outcome: Outcome::Unanswered,
            start: 4,
        },
        Entry { peer: "x".into(), direction: Direction::Outgoing, outcome: Outcome::Failed, start: 5 },
    ];
    for e in &entries {
        assert_eq!(Entry::from_line(&e.to_line()).as_ref(), Some(e), "{}", e.to_line());
    }
}

#[test]
fn damaged_lines_are_skipped() {
    let text = "komunikator-history 1\n\
                10\tin\tmissed\t0\tala\n\
                garbage\n\
                11\tsideways\tmissed\t0\tala\n\
                12\tin\tmissed\t0\tal a\n\
                13\tin\tmissed\t0\tala\textra\n\
                14\tout\tanswered\tlots\tbob\n\
                15\tout\tanswered\t7\tbob\n";
    let (log, skipped) = CallLog::from_text(text);
    assert_eq!(skipped, 5);
    let starts: Vec<u64> = log.newest_first().map(|e| e.start).collect();
    assert_eq!(starts, [15, 10]);
}

#[test]
fn the_log_keeps_the_newest_entries() {
    let mut log = CallLog::default();
    for i in 0..(MAX_ENTRIES as u64 + 50) {
        log.push(entry("ala", i));
    }
    assert_eq!(log.len(), MAX_ENTRIES);
    assert_eq!(log.newest_first().next().map(|e| e.start), Some(MAX_ENTRIES as u64 + 49));
    assert_eq!(log.newest_first().last().map(|e| e.start), Some(50));
}

#[test]
fn the_file_round_trips_and_is_replaced_whole() {
    let dir = temp_dir("round");
    let path = dir.join("komunikator").join("history");
    assert!(load(&path).expect("a missing file is empty").log.is_empty());
    let mut log = CallLog::default();
    log.push(entry("ala", 1));
    log.push(Entry { outcome: Outcome::Answered(Duration::from_secs(3725)), ..entry("bob", 2) });
    save(&path, &log).expect("save");
    let loaded = load(&path).expect("load");
    assert_eq!(loaded.log, log);
    assert_eq!((loaded.skipped, loaded.truncated), (0, false));
    assert!(!path.with_extension("tmp").exists(), "the temporary file was renamed");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_huge_file_is_read_from_its_end_only() {
    let dir = temp_dir("huge");
    fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("history");
    let mut text = String::from("komunikator-history 1\n");
    // Several megabytes of one unending line, then valid entries.
    text.push_str(&"x".repeat(4 * 1024 * 1024));
    text.push('\n');
    for i in 0..1000u64 {
        text.push_str(&entry("ala", i).to_line());
        text.push('\n');
    }
    fs::write(&path, text).expect("write");
    let loaded = load(&path).expect("load");
    assert!(loaded.truncated);
    assert_eq!(loaded.log.len(), MAX_ENTRIES);
    assert_eq!(loaded.log.newest_first().next().map(|e| e.start), Some(999));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn binary_garbage_loads_as_an_empty_history() {
    let dir = temp_dir("garbage");
    fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("history");
    fs::write(&path, [0u8, 0xff, 0xfe, b'\t', b'\n', 0x80]).expect("write");
    let loaded = load(&path).expect("load");
    assert!(loaded.log.is_empty());
    assert_eq!(loaded.skipped, 2);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_place_is_an_error_not_a_panic() {
    let dir = temp_dir("unwritable");
    fs::create_dir_all(&dir).expect("dir");
    // A file where the directory should be.
    fs::write(dir.join("komunikator"), "").expect("write");
    let err = save(&dir.join("komunikator").join("history"), &CallLog::default()).unwrap_err();
    assert!(err.to_string().contains("cannot write the call history"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

fn follow(states: &[CallState], reason: EndReason) -> Option<Entry> {
    let mut t = Tracker::default();
    let nick_of = |i: ClientId| (i == id(2)).then(|| "bob".to_owned());
    for s in states {
        t.on_state(s, SystemTime::now(), nick_of);
    }
    t.on_end(reason, Instant::now())
}

#[test]
fn the_tracker_names_each_outcome() {
    let ringing = CallState::Ringing { caller: id(1), nick: Some("ala".into()) };
    let missed = follow(std::slice::from_ref(&ringing), EndReason::Cancelled).expect("entry");
    assert_eq!(
        (missed.peer.as_str(), missed.direction, missed.outcome),
        ("ala", Direction::Incoming, Outcome::Missed)
    );
    assert_eq!(
        follow(std::slice::from_ref(&ringing), EndReason::Timeout).map(|e| e.outcome),
        Some(Outcome::Missed)
    );
    assert_eq!(follow(&[ringing], EndReason::LocalDecline).map(|e| e.outcome), Some(Outcome::Declined));
    let anonymous = follow(&[CallState::Ringing { caller: id(7), nick: None }], EndReason::Cancelled);
    assert_eq!(anonymous.map(|e| e.peer), Some("127.0.0.1:7".into()));

    let dialing = CallState::Dialing { target: "127.0.0.1:2".into() };
    let calling = CallState::Calling { target: "127.0.0.1:2".into(), callee: id(2) };
    let out = |reason| follow(&[dialing.clone(), calling.clone()], reason);
    assert_eq!(
        out(EndReason::LocalHangup).map(|e| (e.peer, e.outcome)),
        Some(("bob".into(), Outcome::Unanswered))
    );
    assert_eq!(out(EndReason::Timeout).map(|e| e.outcome), Some(Outcome::Unanswered));
    assert_eq!(out(EndReason::Declined).map(|e| e.outcome), Some(Outcome::Declined));
    assert_eq!(out(EndReason::Busy).map(|e| e.outcome), Some(Outcome::Failed));
    let refused = follow(&[dialing], EndReason::Refused(ErrorCode::NoSuchClient));
    assert_eq!(refused.map(|e| (e.peer, e.outcome)), Some(("127.0.0.1:2".into(), Outcome::Failed)));
}

#[test]
fn an_answered_call_has_its_length() {
    let since = Instant::now().checked_sub(Duration::from_secs(192)).expect("a clock that old");
    let states = [
        CallState::Ringing { caller: id(1), nick: Some("ala".into()) },
        CallState::Connecting { peer: Some(id(1)) },
        CallState::Active { peer: id(1), since, others: Vec::new() },
        CallState::Idle,
    ];
    let e = follow(&states, EndReason::PeerHangup).expect("entry");
    let Outcome::Answered(d) = e.outcome else { panic!("{e:?}") };
    assert!((192..200).contains(&d.as_secs()), "{d:?}");
    // Accepted but never started.
    let e = follow(&states[..2], EndReason::ConnectionLost).expect("entry");
    assert_eq!(e.outcome, Outcome::Failed);
}

#[test]
fn without_a_call_there_is_no_entry() {
    assert_eq!(follow(&[], EndReason::LocalHangup), None);
    assert_eq!(
        follow(
            &[CallState::Active { peer: id(1), since: Instant::now(), others: Vec::new() }],
            EndReason::PeerHangup
        ),
        None
    );
}

#[test]
fn durations_read_like_a_clock() {
    let f = |s| format_duration(Duration::from_secs(s));
    assert_eq!(f(0), "0:00");
    assert_eq!(f(192), "3:12");
    assert_eq!(f(3599), "59:59");
    assert_eq!(f(3600), "1:00:00");
    assert_eq!(f(3725), "1:02:05");
}
