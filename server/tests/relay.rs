//! Relayed payloads arrive byte-identical and in order, and a receiver that
//! stops reading never blocks its sender.

mod support;

use std::time::{Duration, Instant};

use support::{Msg, Server, call_pair};

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[test]
fn payloads_arrive_byte_identical_and_in_order() {
    // This test is about integrity and order, not the drop policy: queue
    // limits high enough that a slow test thread on a loaded machine never
    // makes the server drop video.
    let server = Server::start_with(&["--max-queue-ms", "600000", "--max-queue-bytes", "1000000000"]);
    let (mut a, mut b) = call_pair(&server, "ala", "bob");
    let sizes = [1usize, 2, 100, 1500, 20_000, 65_536, 300_000];
    let mut writer = a.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        for i in 0..200 {
            let p = payload(i, sizes[i % sizes.len()]);
            let kind = if i % 3 == 0 { "video" } else { "audio" };
            let mut out = format!("{kind} {i} k {}\n", p.len()).into_bytes();
            out.extend_from_slice(&p);
            writer.write_all(&out).unwrap();
        }
    });
    let (mut next_video, mut next_audio) = (0usize, 1usize);
    for _ in 0..200 {
        let Msg::Media { header, payload: got } = b.recv_event() else { panic!("expected media") };
        let mut fields = header.split(' ');
        let kind = fields.next().unwrap();
        let i: usize = fields.next().unwrap().parse().unwrap();
        assert_eq!(got, payload(i, sizes[i % sizes.len()]), "frame {i} corrupted");
        // Audio may overtake video, but each kind stays in order.
        if kind == "video" {
            assert_eq!(i, next_video);
            next_video += 3;
        } else {
            assert_eq!(i, next_audio);
            next_audio += if next_audio % 3 == 1 { 1 } else { 2 };
        }
    }
    sender.join().unwrap();
    a.send("ping");
    a.expect("pong");
}

#[test]
fn a_receiver_that_stops_reading_never_blocks_its_sender() {
    let server = Server::start();
    let stalled = support::Client::connect_small_rcvbuf(server.addr, 32 << 10);
    let (mut a, b_stalled) = support::call_between(server.named("ala"), stalled);
    let (mut c, mut d) = call_pair(&server, "cyryl", "dorota");
    let rss_before = server.rss_kib();
    // bob stops reading; ala sends 10 s of a 2.5 Mbit/s call.
    let video = vec![0x55u8; 10_000];
    let audio = vec![0xAAu8; 100];
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut i = 0;
    let mut keyframes_asked = 0;
    while start.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        a.send_media("video", i % 30 == 0, &video);
        a.send_media("audio", true, &audio);
        slowest = slowest.max(t.elapsed());
        // A bystander call keeps flowing.
        c.send_media("audio", true, b"still here");
        assert!(matches!(d.recv_event(), Msg::Media { .. }), "other calls are served");
        while let Some(m) = a.try_recv(Duration::ZERO) {
            if m.line() == "keyframe" {
                keyframes_asked += 1;
            }
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(slowest < Duration::from_millis(500), "a send blocked for {slowest:?}");
    assert!(keyframes_asked > 0, "the sender was asked for keyframes");
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "server grew by {grown} KiB for one stalled receiver");
    // ala can still talk to the server.
    a.sync();
    assert!(server.log().contains("keyframe requests") || keyframes_asked > 0);
    drop(b_stalled);
    a.expect("stop disconnected");
}
