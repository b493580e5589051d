//! Three real server nodes joined through a real `nats-server` on
//! 127.0.0.1 (`--cluster`), with protocol clients spread over them: one
//! directory, calls across nodes with media checked byte for byte, a node
//! killed with SIGKILL, the broker restarted mid-call, and direct links
//! between nodes (`--cluster-link`): used, broken, and attacked.

mod support;

use std::time::{Duration, Instant};

use support::broker::Broker;
use support::{Client, Msg, Server, call_between};

/// A node of the cluster on `broker` (taking direct links, by default).
fn node(broker: &Broker, name: &str) -> Server {
    node_with(broker, name, &[])
}

/// A node with extra flags.
fn node_with(broker: &Broker, name: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--cluster", &broker.url, "--node", name];
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

/// Takes no direct links: its calls with other such nodes go through the broker.
const NO_LINKS: &[&str] = &["--no-cluster-link"];

/// `client`'s `refresh`: the lines of the list.
fn list(client: &mut Client) -> Vec<String> {
    client.send("refresh");
    let head = client.expect_prefix("clients ");
    let n: usize = head["clients ".len()..].parse().expect("a count");
    (0..n).map(|_| client.recv_event().line().to_owned()).collect()
}

/// Polls `client`'s `refresh` until its list has every one of `nicks`
/// (free, unless `busy`); panics after 10 s. Returns the list's lines.
fn until_listed(client: &mut Client, nicks: &[&str], busy: bool) -> Vec<String> {
    let state = if busy { "busy" } else { "free" };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = list(client);
        let all = nicks.iter().all(|nick| lines.iter().any(|l| l.ends_with(&format!(" {state} {nick}"))));
        if all {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} never listed {nicks:?} {state}: {lines:?}", client.id);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three nodes, and one named client on each.
fn three() -> (Broker, [Server; 3], [Client; 3]) {
    three_with(&[])
}

/// Three nodes with extra flags, and one named client on each.
fn three_with(extra: &[&str]) -> (Broker, [Server; 3], [Client; 3]) {
    let broker = Broker::start();
    let nodes =
        [node_with(&broker, "n1", extra), node_with(&broker, "n2", extra), node_with(&broker, "n3", extra)];
    let mut clients = [nodes[0].named("ala"), nodes[1].named("bob"), nodes[2].named("cyd")];
    for c in &mut clients {
        let others: Vec<&str> = ["ala", "bob", "cyd"].into_iter().filter(|n| *n != c.nick).collect();
        until_listed(c, &others, false);
    }
    (broker, nodes, clients)
}

#[test]
fn three_nodes_list_everyone_and_keep_nicks_unique() {
    let (_broker, nodes, [mut ala, _bob, _cyd]) = three();
    // A user joining node 3 is announced on node 1.
    let _dawid = nodes[2].named("dawid");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let msg = ala.recv();
        if msg.line().starts_with("presence ") && msg.line().ends_with(" free dawid") {
            break;
        }
        assert!(Instant::now() < deadline, "no presence of dawid");
    }
    // Nicks are unique across nodes, look-alikes included.
    let mut other = nodes[1].client();
    other.send("name ALA");
    other.expect_prefix("error name-taken");
    other.send("name cyd");
    other.expect_prefix("error name-taken");
}

#[test]
fn a_call_across_nodes_carries_media_byte_for_byte_over_a_direct_link() {
    call_across_nodes(&[], "direct link)");
}

#[test]
fn a_call_across_nodes_carries_media_byte_for_byte_through_the_broker() {
    call_across_nodes(NO_LINKS, "broker)");
}

/// A call between nodes started with `extra`, whose first tunnel is
/// logged ending with `way`.
fn call_across_nodes(extra: &[&str], way: &str) {
    let (_broker, nodes, [ala, bob, mut cyd]) = three_with(extra);
    let (mut ala, mut bob) = call_between(ala, bob);
    nodes[0].wait_for_log(&format!("carried to node n2 (tunnel 1, {way}"));
    // Both are busy for everyone, on every node.
    until_listed(&mut cyd, &["ala", "bob"], true);
    let frames: Vec<Vec<u8>> =
        (0..20u8).map(|i| (0..(1000 + 37 * usize::from(i))).map(|j| (j as u8) ^ i).collect()).collect();
    for (i, f) in frames.iter().enumerate() {
        ala.send_media(if i % 2 == 0 { "video" } else { "audio" }, i == 0, f);
    }
    for f in &frames {
        match bob.recv_event() {
            Msg::Media { payload, .. } => assert_eq!(&payload, f),
            other => panic!("bob got {other:?}"),
        }
    }
    bob.send_media("audio", false, b"hello from n2");
    match ala.recv_event() {
        Msg::Media { header, payload } => {
            assert!(header.starts_with("audio "), "{header}");
            assert_eq!(payload, b"hello from n2");
        }
        other => panic!("ala got {other:?}"),
    }
    ala.send("msg cześć");
    bob.expect("msg cześć");
    bob.send("stop");
    ala.expect("stop hangup");
    // Both free again, on every node; and ala can call again.
    until_listed(&mut cyd, &["ala", "bob"], false);
    let (_ala, _bob) = call_between(ala, bob);
}

#[test]
fn a_node_killed_ends_its_calls_and_its_users_vanish() {
    let (_broker, [_n1, n2, _n3], [ala, bob, mut cyd]) = three();
    let (mut ala, _bob) = call_between(ala, bob);
    let killed = Instant::now();
    n2.signal("KILL");
    // ala's call (it lives on n2) ends; bob vanishes from every list.
    let deadline = killed + Duration::from_secs(8);
    loop {
        let msg = ala.try_recv(Duration::from_millis(200));
        if msg.as_ref().is_some_and(|m| m.line() == "stop disconnected") {
            break;
        }
        assert!(Instant::now() < deadline, "ala's call across the dead node did not end");
    }
    eprintln!("ended {:?} after the kill", killed.elapsed());
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let lines = list(&mut cyd);
        if !lines.iter().any(|l| l.ends_with(" bob")) {
            assert!(lines.iter().any(|l| l.ends_with(" free ala")), "{lines:?}");
            break;
        }
        assert!(Instant::now() < deadline, "bob is still listed: {lines:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nobody else was disturbed.
    cyd.send("ping");
    cyd.expect("pong");
    ala.send("ping");
    ala.expect("pong");
}

#[test]
fn after_the_broker_restarts_the_nodes_find_each_other_again() {
    // Through the broker: over direct links the call would not notice.
    let (mut broker, _nodes, [ala, bob, cyd]) = three_with(NO_LINKS);
    let (mut ala, mut bob) = call_between(ala, bob);
    broker.restart();
    // The call goes on, or ends cleanly: it never hangs.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ended = false;
    loop {
        ala.send_media("audio", false, b"still there?");
        if let Some(msg) = bob.try_recv(Duration::from_millis(300)) {
            if matches!(&msg, Msg::Media { payload, .. } if payload == b"still there?") {
                break;
            }
            if msg.line() == "stop disconnected" {
                ended = true;
                break;
            }
        }
        assert!(Instant::now() < deadline, "the call across the restart neither went on nor ended");
    }
    if ended {
        // ala is told too, and both can call again once the nodes see each other.
        let deadline = Instant::now() + Duration::from_secs(10);
        while ala.try_recv(Duration::from_millis(200)).is_none_or(|m| m.line() != "stop disconnected") {
            assert!(Instant::now() < deadline, "ala was not told the call ended");
        }
        let mut cyd = cyd;
        until_listed(&mut cyd, &["ala", "bob"], false);
        let (_ala, _bob) = call_between(ala, bob);
    } else {
        // The frames sent while the broker was away may still come first.
        ala.send("stop");
        let last = loop {
            let msg = bob.recv_event();
            if !matches!(msg, Msg::Media { .. }) {
                break msg;
            }
        };
        assert_eq!(last.line(), "stop hangup");
    }
}

#[test]
fn a_lost_message_ends_the_call_on_both_sides() {
    let (broker, nodes, [ala, bob, _cyd]) = three_with(NO_LINKS);
    let (mut ala, mut bob) = call_between(ala, bob);
    nodes[0].wait_for_log("carried to node n2 (tunnel 1, broker)");
    // A message of ala's tunnel numbered past the next one: the ones
    // between were lost.
    publish_raw(&broker, "komunikator.node.n2", b"up n1 1 999\nping\n");
    bob.expect("stop disconnected");
    ala.expect("stop disconnected");
    // Both are free, and can call again.
    let (_ala, _bob) = call_between(ala, bob);
}

#[test]
fn two_nodes_that_took_one_nick_apart_settle_it_the_same_way_every_time() {
    // The broker is down while ala names herself on both nodes.
    let mut broker = Broker::start();
    broker.kill();
    let (n1, n2) = (node(&broker, "n1"), node(&broker, "n2"));
    let (mut on1, mut on2) = (n1.named("ala"), n2.named("ala"));
    broker.restart();
    // Once they see each other, the earlier node name (n1) keeps it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match on2.try_recv(Duration::from_millis(200)) {
            Some(msg) if msg.line().starts_with("error name-taken") => break,
            _ => assert!(Instant::now() < deadline, "n2's ala kept the nick n1's holds"),
        }
    }
    on1.send("ping");
    let before_pong = on1.sync_events();
    assert!(before_pong.iter().all(|m| !m.line().starts_with("error")), "{before_pong:?}");
    on2.send("name ala");
    on2.expect_prefix("error name-taken");
    on2.send("name ola");
    on2.expect("ok name ola");
}

/// Publishes `payload` on `subject` through a raw connection to the broker.
fn publish_raw(broker: &Broker, subject: &str, payload: &[u8]) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", broker.port)).expect("the broker");
    let mut info = [0u8; 4096];
    let _ = s.read(&mut info);
    let mut out =
        format!("CONNECT {{\"verbose\":false}}\r\nPUB {subject} {}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\nPING\r\n");
    s.write_all(&out).expect("publish");
    let _ = s.read(&mut info);
}

#[test]
fn bad_messages_from_the_bus_are_refused_and_change_nothing() {
    let (broker, nodes, [mut ala, bob, _cyd]) = three();
    let garbage: [&[u8]; 6] = [
        b"dir n9 1 1\nnot-an-id free x\n",
        b"dir n9 1 999999999\n",
        b"open n9 1 10.0.0.9:1 evil 1\n",
        b"up n9 1 0\nconnect bob\n",
        b"down n2 1 0\nstop hangup\n",
        b"\xff\xfe\xfd",
    ];
    for g in garbage {
        publish_raw(&broker, "komunikator.dir", g);
        publish_raw(&broker, "komunikator.node.n1", g);
        publish_raw(&broker, "komunikator.node.n2", g);
    }
    // 900 KiB of nothing.
    publish_raw(&broker, "komunikator.node.n1", &vec![b'x'; 900 << 10]);
    let log = nodes[0].wait_for_log("bad cluster message");
    assert!(!log.contains("panicked"), "{log}");
    // The forged `open` and `up` rang nobody; the cluster still works.
    let lines = until_listed(&mut ala, &["bob", "cyd"], false);
    assert!(!lines.iter().any(|l| l.contains("evil") || l.contains("10.0.0.9")), "{lines:?}");
    let (_ala, _bob) = call_between(ala, bob);
}

#[test]
fn nodes_reach_a_broker_over_tls_with_a_password_and_not_without() {
    let dir = std::env::temp_dir().join(format!("komunikator-broker-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA, and the broker's certificate for 127.0.0.1 signed by it.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca, cert, key_file) = (dir.join("ca.pem"), dir.join("broker.pem"), dir.join("broker.key"));
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let (ca, cert, key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key_file.to_str().unwrap());
    let broker = Broker::start_with(&[
        "--tls",
        "--tlscert",
        cert,
        "--tlskey",
        key,
        "--user",
        "node",
        "--pass",
        "s3cret",
    ]);
    let url = format!("tls://node:s3cret@127.0.0.1:{}", broker.port);
    let tls_node = |name: &str| Server::start_with(&["--cluster", &url, "--node", name, "--cluster-ca", ca]);
    let (n1, n2) = (tls_node("n1"), tls_node("n2"));
    let mut ala = n1.named("ala");
    let _bob = n2.named("bob");
    until_listed(&mut ala, &["bob"], false);
    // Without the CA, or with a wrong password, a node stays alone.
    let wrong = format!("tls://node:guess@127.0.0.1:{}", broker.port);
    let plain = format!("nats://node:s3cret@127.0.0.1:{}", broker.port);
    let outsiders = [
        Server::start_with(&["--cluster", &wrong, "--node", "n3", "--cluster-ca", ca]),
        Server::start_with(&["--cluster", &plain, "--node", "n4"]),
    ];
    let mut eve = outsiders[0].named("eve");
    let mut mia = outsiders[1].named("mia");
    std::thread::sleep(Duration::from_secs(3));
    for c in [&mut eve, &mut mia] {
        c.send("refresh");
        c.expect("clients 0");
    }
    let lines = until_listed(&mut ala, &["bob"], false);
    assert!(!lines.iter().any(|l| l.ends_with(" eve") || l.ends_with(" mia")), "{lines:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A NATS JWT (what `nsc` writes) for `sub`, of `kind` with `nats`
/// fields, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, sub: &str, name: &str, nats: &str) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = format!(
        r#"{{"jti":"{name}{iat}","iat":{iat},"iss":"{}","name":"{name}","sub":"{sub}","nats":{nats}}}"#,
        issuer.public_key()
    );
    let signed = format!("{header}.{}", b64(claims.as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&signature))
}

#[test]
fn nodes_log_in_with_a_creds_file_to_a_broker_with_accounts_and_not_without() {
    let dir = std::env::temp_dir().join(format!("komunikator-broker-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // An operator, an account it signs, and a user the account signs, as
    // `nsc` would make them; the broker trusts the operator.
    let (operator, account, user) =
        (nkeys::KeyPair::new_operator(), nkeys::KeyPair::new_account(), nkeys::KeyPair::new_user());
    let op_jwt = jwt(&operator, &operator.public_key(), "op", r#"{"type":"operator","version":2}"#);
    let limits = r#""limits":{"subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,"wildcards":true,"conn":-1,"leaf":-1}"#;
    let acc_nats = format!(r#"{{{limits},"type":"account","version":2}}"#);
    let acc_jwt = jwt(&operator, &account.public_key(), "komunikator", &acc_nats);
    let user_nats = r#"{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user","version":2}"#;
    let user_jwt = jwt(&account, &user.public_key(), "node", user_nats);
    let conf = dir.join("broker.conf");
    let resolver =
        format!("resolver: MEMORY\nresolver_preload: {{ {}: \"{acc_jwt}\" }}\n", account.public_key());
    std::fs::write(&conf, format!("operator: \"{op_jwt}\"\n{resolver}")).unwrap();
    let creds = dir.join("node.creds");
    let seed = user.seed().unwrap();
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .unwrap();
    let broker = Broker::start_with(&["-c", conf.to_str().unwrap()]);
    let creds = creds.to_str().unwrap();
    let with_creds = |name: &str| node_with(&broker, name, &["--cluster-creds", creds]);
    let (n1, n2) = (with_creds("n1"), with_creds("n2"));
    let mut ala = n1.named("ala");
    let _bob = n2.named("bob");
    until_listed(&mut ala, &["bob"], false);
    // Without the file a node stays alone, and nobody sees its users.
    let outsider = node(&broker, "n3");
    let mut eve = outsider.named("eve");
    std::thread::sleep(Duration::from_secs(3));
    eve.send("refresh");
    eve.expect("clients 0");
    let lines = until_listed(&mut ala, &["bob"], false);
    assert!(!lines.iter().any(|l| l.ends_with(" eve")), "{lines:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The by-hand session of docs/PROTOCOL.md (as `commands.rs` replays it),
/// with ala on one node and bob on another: every line but `presence` in
/// the same order, byte for byte; `presence` lines come as the directory
/// spreads them, so they are only checked to come.
#[test]
fn the_protocol_doc_session_with_the_peer_on_another_node() {
    let broker = Broker::start();
    let (n1, n2) = (node_with(&broker, "n1", NO_LINKS), node_with(&broker, "n2", NO_LINKS));
    let mut a = n1.named("ala");
    let b = n2.named("bob");
    until_listed(&mut a, &["bob"], false);
    a.send("refresh");
    a.expect("clients 1");
    a.expect(&format!("{} free bob", b.id));
    // connect bob, calling, ask, ask yes, and start on both sides.
    let (mut a, mut b) = call_between(a, b);
    a.send("msg cześć!");
    b.expect("msg cześć!");
    a.send("video 1000 k 6");
    a.send("hello");
    assert_eq!(b.recv_event(), Msg::Media { header: "video 1000 k 6".into(), payload: b"hello\n".to_vec() });
    b.send("msg hej");
    a.expect("msg hej");
    b.send("audio 2000 - 4");
    b.send("abc");
    assert_eq!(a.recv_event(), Msg::Media { header: "audio 2000 - 4".into(), payload: b"abc\n".to_vec() });
    a.send("stop");
    b.expect("stop hangup");
    // Each saw the other busy during the call and free after it.
    until_listed(&mut a, &["bob"], false);
    until_listed(&mut b, &["ala"], false);
}

#[test]
fn a_group_call_on_one_node_takes_parties_from_two_others() {
    let (_broker, nodes, [mut ala, mut bob, mut cyd]) = three();
    for c in [&mut ala, &mut bob, &mut cyd] {
        c.send("features group");
        c.expect("ok features group");
    }
    // ala (node 1) calls bob (node 2): the call lives on node 2.
    let (mut ala, mut bob) = call_between(ala, bob);
    // bob invites cyd, of node 3: she is asked, with ala named, and joins.
    bob.send("invite cyd");
    bob.expect(&format!("inviting {}", cyd.id));
    cyd.expect(&format!("ask {} bob", bob.id));
    cyd.expect(&format!("with {} ala", ala.id));
    cyd.send("ask yes");
    cyd.expect(&format!("start {}", bob.id));
    cyd.expect(&format!("joined {} ala", ala.id));
    bob.expect(&format!("joined {} cyd", cyd.id));
    ala.expect(&format!("joined {} cyd", cyd.id));
    // Media from node 1 reaches nodes 2 and 3; from node 3, nodes 1 and 2.
    ala.send_media("audio", false, b"from node 1");
    cyd.send_media("audio", false, b"from node 3");
    let (from1, from3) = (ala.id.clone(), cyd.id.clone());
    for (c, wanted) in [
        (&mut bob, vec![(from1.clone(), &b"from node 1"[..]), (from3.clone(), &b"from node 3"[..])]),
        (&mut cyd, vec![(from1.clone(), &b"from node 1"[..])]),
        (&mut ala, vec![(from3.clone(), &b"from node 3"[..])]),
    ] {
        let mut wanted = wanted;
        while !wanted.is_empty() {
            match c.recv_event() {
                Msg::Media { header, payload } => {
                    let i = wanted.iter().position(|(from, p)| {
                        header.starts_with(&format!("from {from} audio")) && payload == *p
                    });
                    assert!(i.is_some(), "{}: unexpected {header} {payload:?}", c.nick);
                    wanted.remove(i.unwrap_or(0));
                }
                other => panic!("{}: {other:?}", c.nick),
            }
        }
    }
    // dawid, of node 3, blocked bob: the invitation is refused as busy,
    // as it would be on one server.
    let mut dawid = nodes[2].named("dawid");
    dawid.send("features group");
    dawid.expect("ok features group");
    dawid.send("block bob");
    dawid.expect("ok block bob");
    until_listed(&mut bob, &["dawid"], false);
    bob.send("invite dawid");
    bob.expect(&format!("busy {}", dawid.id));
    // cyd leaves: the others are told, and she is free on her node again.
    cyd.send("stop");
    bob.expect(&format!("left {} hangup", cyd.id));
    ala.expect(&format!("left {} hangup", cyd.id));
    until_listed(&mut dawid, &["cyd"], false);
    ala.send("stop");
    bob.expect("stop hangup");
}

#[test]
fn a_slow_receiver_on_another_node_gets_its_video_thinned_and_a_keyframe_asked_for() {
    let broker = Broker::start();
    let (n1, n2) = (node_with(&broker, "n1", NO_LINKS), node_with(&broker, "n2", NO_LINKS));
    // ala (node 1) reads nothing, through a small receive buffer.
    let mut ala = Client::connect_small_rcvbuf(n1.addr, 4096);
    ala.send("name ala");
    ala.expect("ok name ala");
    let mut bob = n2.named("bob");
    // In the envelope, a request on ala's behalf says it is from her (the
    // host's own requests for its stand-in's queue are bare `keyframe`).
    bob.send("features group");
    bob.expect("ok features group");
    until_listed(&mut ala, &["bob"], false);
    let (ala, mut bob) = call_between(ala, bob);
    // bob sends keyframes of 20 KB flat out: ala's node drops video for her
    // and asks bob (on node 2) for a keyframe.
    let streamer = bob.stream("video", &[7u8; 20_000]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted = format!("from {} keyframe", ala.id);
    loop {
        if let Some(msg) = bob.try_recv(Duration::from_millis(200)) {
            if msg.line() == wanted {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no keyframe request reached the sender on the other node");
    }
    drop(streamer);
    let log = n1.wait_for_log("carried to node n2");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_slow_receiver_on_another_node_has_its_sender_told_its_rate_then_rate_dash() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let broker = Broker::start();
    let (n1, n2) = (node(&broker, "n1"), node(&broker, "n2"));
    // ala (node 1) reads 60 KB/s through a small receive buffer for 6 s,
    // then all she can; bob (node 2) sends her about 2 Mbit/s.
    let mut ala = Client::connect_small_rcvbuf(n1.addr, 16 << 10);
    ala.send("name ala");
    ala.expect("ok name ala");
    let bob = n2.named("bob");
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    let writer = bob.stream.try_clone().expect("clone");
    let t0 = Instant::now();
    let (speedup, end) = (t0 + Duration::from_secs(6), t0 + Duration::from_secs(12));
    let stop = AtomicBool::new(false);
    let rates = std::thread::scope(|scope| {
        let _stop = support::StopOnDrop(&stop);
        scope.spawn(|| support::send_media(writer, &stop));
        scope.spawn(|| {
            support::drain(&mut ala.stream, Some(60_000.0), speedup);
            support::drain(&mut ala.stream, None, end);
        });
        let rates = support::rates_until(&mut bob, t0, end);
        stop.store(true, Ordering::Relaxed);
        rates
    });
    // Her home node measured her connection; the sender is told on his.
    let limits: Vec<u32> = rates
        .iter()
        .filter(|(at, _)| *at < speedup - t0)
        .filter_map(|(_, l)| l.strip_prefix("rate ").and_then(|k| k.parse().ok()))
        .collect();
    assert!(limits.len() >= 2, "no rate repeated while she was slow: {rates:?}");
    assert!(limits.iter().all(|k| (50..=2000).contains(k)), "{rates:?}");
    assert_eq!(rates.last().map(|(_, l)| l.as_str()), Some("rate -"), "never lifted: {rates:?}");
}

/// A node that takes direct links on `link` (`127.0.0.1:0` for any port),
/// and the port it took.
fn linked_node(broker: &Broker, name: &str, link: &str, extra: &[&str]) -> (Server, u16) {
    let mut args = vec!["--cluster", &broker.url, "--node", name, "--cluster-link", link];
    args.extend_from_slice(extra);
    let server = Server::start_with(&args);
    let log = server.wait_for_log("taking direct links on ");
    let at = log.find("taking direct links on ").expect("logged") + "taking direct links on ".len();
    let addr: std::net::SocketAddr =
        log[at..].split_whitespace().next().and_then(|a| a.parse().ok()).expect("an address");
    (server, addr.port())
}

/// `frames` from `from` to `to`, one at a time, each checked byte for byte.
fn send_checked(from: &mut Client, to: &mut Client, frames: &[Vec<u8>]) {
    for f in frames {
        from.send_media("video", true, f);
        match to.recv_event() {
            Msg::Media { payload, .. } => assert_eq!(&payload, f),
            other => panic!("{} got {other:?}", to.id),
        }
    }
}

#[test]
fn a_direct_link_carries_calls_between_nodes_and_the_broker_does_not() {
    let broker = Broker::start_monitored();
    // Links are on by default.
    let (n1, n2) = (node(&broker, "n1"), node(&broker, "n2"));
    n1.wait_for_log("taking direct links on 127.0.0.1:");
    // n1 sorts first: it dials.
    n1.wait_for_log("direct link to n2");
    n2.wait_for_log("direct link from n1");
    let (mut ala, bob) = (n1.named("ala"), n2.named("bob"));
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    let before = broker.in_bytes();
    // 2 MB each way.
    let frames: Vec<Vec<u8>> = (0..40u8).map(|i| (0..50_000).map(|j| (j as u8) ^ i).collect()).collect();
    send_checked(&mut ala, &mut bob, &frames);
    send_checked(&mut bob, &mut ala, &frames);
    let through_broker = broker.in_bytes() - before;
    // Directories only (a few hundred bytes a second from each node).
    assert!(through_broker < 200_000, "{through_broker} bytes of the call went through the broker");
    assert!(n1.log().contains("carried to node n2 (tunnel 1, direct link)"), "{}", n1.log());
    bob.send("stop");
    ala.expect("stop hangup");
}

#[test]
fn a_call_over_a_direct_link_outlives_the_broker_being_away() {
    let mut broker = Broker::start();
    let (n1, n2) = (node(&broker, "n1"), node(&broker, "n2"));
    n1.wait_for_log("direct link to n2");
    let (mut ala, bob) = (n1.named("ala"), n2.named("bob"));
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    // The broker is gone for 6 s, twice the time after which a node not
    // heard from is taken for dead: the link says both are alive.
    broker.kill();
    let back = Instant::now() + Duration::from_secs(6);
    let mut i = 0u8;
    while Instant::now() < back {
        send_checked(&mut ala, &mut bob, &[vec![i; 500]]);
        send_checked(&mut bob, &mut ala, &[vec![i; 500]]);
        i = i.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.restart();
    send_checked(&mut ala, &mut bob, &[vec![7; 500]]);
    // The directory comes back: a user who arrives now is listed.
    let _cyd = n2.named("cyd");
    until_listed(&mut ala, &["cyd"], false);
    bob.send("stop");
    ala.expect("stop hangup");
}

/// A TCP relay the test can cut, standing between a node and its link port.
struct Cuttable {
    port: u16,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Cuttable {
    fn to(target: u16) -> Cuttable {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&open);
        std::thread::spawn(move || {
            for a in listener.incoming().flatten() {
                let Ok(b) = std::net::TcpStream::connect(("127.0.0.1", target)) else { continue };
                let (a2, b2) = (a.try_clone().expect("clone"), b.try_clone().expect("clone"));
                kept.lock().unwrap().extend([a.try_clone().expect("clone"), b.try_clone().expect("clone")]);
                for (mut from, mut to) in [(a, b2), (b, a2)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Cuttable { port, open }
    }

    /// Cuts every connection through it (new ones are still relayed).
    fn cut(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn a_broken_link_ends_its_calls_on_both_sides_and_is_dialled_again() {
    let broker = Broker::start();
    // n2 takes links on a port of its own; n1 reaches it through a relay
    // the test cuts (n2 advertises the relay).
    let port = support::broker::free_port();
    let relay = Cuttable::to(port);
    let (link, advertise) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", relay.port));
    let (n2, _) = linked_node(&broker, "n2", &link, &["--cluster-link-advertise", &advertise]);
    // n1 takes no links itself, but dials those that do.
    let n1 = node_with(&broker, "n1", NO_LINKS);
    n1.wait_for_log("direct link to n2");
    let (mut ala, bob) = (n1.named("ala"), n2.named("bob"));
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    send_checked(&mut ala, &mut bob, &[vec![1; 1000]]);
    relay.cut();
    ala.expect("stop disconnected");
    bob.expect("stop disconnected");
    // Both are free, and the next call goes over a new link.
    until_listed(&mut ala, &["bob"], false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while n1.log().matches("direct link to n2").count() < 2 {
        assert!(Instant::now() < deadline, "never dialled again:\n{}", n1.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut ala, mut bob) = call_between(ala, bob);
    send_checked(&mut bob, &mut ala, &[vec![2; 1000]]);
    assert_eq!(n1.log().matches("direct link)").count(), 2, "{}", n1.log());
}

#[test]
fn a_node_the_other_cannot_reach_dials_it_itself() {
    let broker = Broker::start();
    // n2 lists a link address nobody answers on: n1, whose turn it is to
    // dial, cannot reach it; n2 dials n1 after waiting its turn.
    let (link, unreachable) = (support::broker::free_port(), support::broker::free_port());
    let (link, unreachable) = (format!("127.0.0.1:{link}"), format!("127.0.0.1:{unreachable}"));
    let n1 = node(&broker, "n1");
    let (n2, _) = linked_node(&broker, "n2", &link, &["--cluster-link-advertise", &unreachable]);
    n1.wait_for_log("no direct link to n2");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !n2.log().contains("direct link to n1") {
        assert!(Instant::now() < deadline, "n2 never dialled:\n{}", n2.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut ala, bob) = (n1.named("ala"), n2.named("bob"));
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    send_checked(&mut ala, &mut bob, &[vec![4; 1000]]);
    assert!(n1.log().contains("carried to node n2 (tunnel 1, direct link)"), "{}", n1.log());
}

/// A TLS connection to a link port that takes any certificate.
fn tls_to(port: u16) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let verifier = std::sync::Arc::new(komunikator_tls::pin::TofuVerifier::new(None));
    let config = std::sync::Arc::new(verifier.client_config().expect("config"));
    let name = rustls::pki_types::ServerName::try_from("anything").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("connection");
    let socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the link port");
    socket.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    rustls::StreamOwned::new(conn, socket)
}

/// Reads `s` until it closes: what it sent first.
fn until_closed(s: &mut impl std::io::Read) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn a_link_port_takes_nothing_from_outsiders() {
    use std::io::Write;
    let broker = Broker::start();
    let (n1, port) = linked_node(&broker, "n1", "127.0.0.1:0", &[]);
    let (n2, n2_port) = linked_node(&broker, "n2", "127.0.0.1:0", &[]);
    n1.wait_for_log("direct link to n2");
    // Plain text: no TLS, no link.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the link port");
    plain.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    plain.write_all(b"link n2 0123456789abcdef0123456789abcdef\n").expect("write");
    let _ = until_closed(&mut plain);
    // TLS and the greeting of a real node, with a token it never sent.
    let mut guess = tls_to(port);
    guess.write_all(b"link n2 0123456789abcdef0123456789abcdef\n").expect("write");
    assert!(!until_closed(&mut guess).starts_with(b"ok"), "a guessed token was taken");
    // TLS and a forged bus message without a greeting.
    let mut forged = tls_to(port);
    let msg = b"up n2 1 0\nconnect ala\n";
    let mut frame = u32::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(msg);
    let _ = forged.write_all(&frame);
    assert!(!until_closed(&mut forged).starts_with(b"ok"), "a forged message was taken");
    // A handshake trickled a byte a second is cut off (a setup has 8 s).
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the link port");
    slow.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    slow.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00]).expect("write");
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(15), "a trickled handshake held its setup for 15 s");
        match std::io::Read::read(&mut slow, &mut [0; 64]) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Ok(_) | Err(_) => break,
        }
        if slow.write_all(&[0]).is_err() {
            break;
        }
    }
    // A directory on the broker listing a node's link port under another
    // certificate: n1 dials, and will not take the certificate it finds.
    let fake = komunikator_tls::fingerprint(b"not n2's certificate");
    let dir = format!("dir x9 1 0 127.0.0.1:{n2_port} {fake}\n");
    publish_raw(&broker, "komunikator.dir", dir.as_bytes());
    let log = n1.wait_for_log("its certificate is not the one it listed");
    let n1_log = n1.wait_for_log("refused: not a greeting");
    assert_eq!(n1_log.matches("a link from").count(), 4, "{log}");
    assert!(!n1_log.contains("panicked"), "{n1_log}");
    // The real link still carries calls.
    let (mut ala, bob) = (n1.named("ala"), n2.named("bob"));
    until_listed(&mut ala, &["bob"], false);
    let (mut ala, mut bob) = call_between(ala, bob);
    send_checked(&mut ala, &mut bob, &[vec![3; 1000]]);
    assert!(n1.log().contains("direct link)"), "{}", n1.log());
}
