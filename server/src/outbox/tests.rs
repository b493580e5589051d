//! The outbox's drop policy, lanes and back-off, on a real socket pair where one is needed.

use super::*;

fn limits() -> Limits {
    Limits {
        max_queue: Duration::from_millis(50),
        max_queue_bytes: 1000,
        max_audio_queue: Duration::from_millis(200),
        max_control_bytes: 100,
        drop_policy: true,
    }
}

fn frame(kind: MediaKind, key: bool, len: usize) -> MediaFrame {
    MediaFrame { from: ([127, 0, 0, 1], 1).into(), kind, key, bytes: vec![0; len] }
}

#[test]
fn control_overflow_closes() {
    let o = Outbox::new(limits(), None);
    assert!(o.push_control(vec![0; 60]));
    assert!(!o.push_control(vec![0; 60]));
    assert!(!o.push_control(vec![0; 1]), "closed outbox takes nothing");
}

fn frame_from(from: u8, key: bool, len: usize) -> MediaFrame {
    MediaFrame { from: ([10, 0, 0, from], 1).into(), kind: MediaKind::Video, key, bytes: vec![0; len] }
}

#[test]
fn after_a_congestion_each_sender_resumes_at_its_own_keyframe() {
    let o = Outbox::new(limits(), None);
    assert_eq!(o.push_media(frame_from(1, true, 300)), Pushed::Queued);
    assert_eq!(o.push_media(frame_from(2, true, 300)), Pushed::Queued);
    // Over the byte cap: all queued video goes, both senders are cut.
    assert_eq!(o.push_media(frame_from(1, false, 500)), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.stats().video_dropped, 3);
    // Sender 1's keyframe ends the congestion and resumes sender 1 only.
    assert_eq!(o.push_media(frame_from(1, true, 10)), Pushed::Queued);
    assert_eq!(o.push_media(frame_from(1, false, 10)), Pushed::Queued);
    // Sender 2's pictures still need its own keyframe, which is asked for.
    assert_eq!(o.push_media(frame_from(2, false, 10)), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame_from(2, false, 10)), Pushed::Dropped, "asked once per max_queue");
    assert_eq!(o.push_media(frame_from(2, true, 10)), Pushed::Queued);
    assert_eq!(o.push_media(frame_from(2, false, 10)), Pushed::Queued);
    // A sender that leaves takes its queued frames with it.
    o.purge_media_from(([10, 0, 0, 2], 1).into());
    assert_eq!(o.lock().video.len(), 2);
    assert_eq!(o.lock().media_bytes, 20);
}

#[test]
fn video_dropped_until_keyframe_when_bytes_exceed_cap() {
    let o = Outbox::new(limits(), None);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::Queued);
    assert_eq!(o.push_media(frame(MediaKind::Video, false, 600)), Pushed::DroppedNeedKeyframe);
    // The queued rest of the group of pictures is purged with it.
    assert_eq!(o.stats().video_dropped, 2);
    assert_eq!(o.push_media(frame(MediaKind::Video, false, 10)), Pushed::Dropped);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    assert_eq!(o.push_media(frame(MediaKind::Video, false, 10)), Pushed::Queued);
}

/// Congests the outbox with a queue older than max_queue, then drains it as the writer would.
fn congest_and_drain(o: &Outbox) -> Pushed {
    o.push_media(frame(MediaKind::Audio, true, 10));
    std::thread::sleep(Duration::from_millis(55));
    let pushed = o.push_media(frame(MediaKind::Video, false, 10));
    let mut batch = Vec::new();
    while o.lock().oldest_media().is_some() {
        o.next_batch(&mut batch, &mut 0, None);
        batch.clear();
    }
    pushed
}

#[test]
fn keyframe_requests_back_off_while_the_receiver_stays_slow() {
    let o = Outbox::new(limits(), None);
    // First episode: no pause, a keyframe is asked for at once and resumes video.
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    assert_eq!(congest_and_drain(&o), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    // Congested again right after resuming: paused for max_queue (50 ms):
    // no request, and even a keyframe is dropped.
    assert_eq!(congest_and_drain(&o), Pushed::Dropped);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Dropped);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(o.push_media(frame(MediaKind::Video, false, 10)), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    // Still slow: the pause doubles (100 ms), up to KEYFRAME_BACKOFF_MAX × max_queue.
    assert_eq!(congest_and_drain(&o), Pushed::Dropped);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Dropped, "still paused");
    std::thread::sleep(Duration::from_millis(50));
    // The first keyframe after the pause resumes video.
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    {
        let s = o.lock();
        assert_eq!(s.backoff, Duration::from_millis(100));
    }
    for _ in 0..4 {
        congest_and_drain(&o);
        let wait = o.lock().backoff + Duration::from_millis(5);
        std::thread::sleep(wait);
        o.push_media(frame(MediaKind::Video, false, 10));
        assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    }
    assert_eq!(o.lock().backoff, limits().max_queue * KEYFRAME_BACKOFF_MAX, "capped");
    // A call that ends forgets the backoff.
    o.purge_media();
    assert_eq!(congest_and_drain(&o), Pushed::DroppedNeedKeyframe);
}

#[test]
fn a_full_queue_on_a_fast_link_does_not_back_off() {
    let o = Outbox::new(limits(), None);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::Queued);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::Queued);
    // Full again by bytes right after resuming (the queue is purged): no
    // pause, so the next keyframe resumes at once.
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::Dropped);
    assert_eq!(o.lock().backoff, Duration::ZERO);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 600)), Pushed::Queued);
}

#[test]
fn keyframe_backoff_resets_once_the_receiver_keeps_up() {
    let o = Outbox::new(limits(), None);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    assert_eq!(congest_and_drain(&o), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::Queued);
    // Pretend video resumed longer ago than STILL_SLOW: the next episode has no pause.
    let resumed = o.lock().resumed_at;
    o.lock().resumed_at = resumed.and_then(|t| t.checked_sub(STILL_SLOW));
    // (Past the request rate limit, max_queue, too.)
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(congest_and_drain(&o), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.lock().backoff, Duration::ZERO);
}

#[test]
fn video_dropped_when_queue_grows_old_but_audio_kept() {
    let o = Outbox::new(limits(), None);
    assert_eq!(o.push_media(frame(MediaKind::Audio, true, 10)), Pushed::Queued);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(o.push_media(frame(MediaKind::Video, true, 10)), Pushed::DroppedNeedKeyframe);
    assert_eq!(o.push_media(frame(MediaKind::Audio, true, 10)), Pushed::Queued);
    assert_eq!(o.stats().audio_dropped, 0);
}

#[test]
fn audio_dropped_oldest_first_past_hard_cap() {
    let o = Outbox::new(limits(), None);
    o.push_media(frame(MediaKind::Audio, true, 10));
    std::thread::sleep(Duration::from_millis(250));
    o.push_media(frame(MediaKind::Audio, true, 10));
    let s = o.stats();
    assert_eq!((s.audio_queued, s.audio_dropped), (2, 1));
}

#[test]
fn a_newer_line_replaces_a_queued_one_with_the_same_key() {
    let o = Outbox::new(limits(), None);
    o.push_control(b"presence 1.2.3.4:5 busy a\n".to_vec());
    o.push_control(b"pong\n".to_vec());
    o.push_control_replacing(b"presence 1.2.3.4:56 free b\n".to_vec(), b"presence 1.2.3.4:56 ");
    o.push_control_replacing(b"presence 1.2.3.4:5 free a\n".to_vec(), b"presence 1.2.3.4:5 ");
    let mut batch = Vec::new();
    assert!(o.next_batch(&mut batch, &mut 0, None));
    let lines: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    assert_eq!(lines, [&b"pong\n"[..], b"presence 1.2.3.4:56 free b\n", b"presence 1.2.3.4:5 free a\n"]);
    assert_eq!(o.lock().control_bytes, 0);
}

#[test]
fn a_direct_write_claimed_before_the_call_ended_writes_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let o = Arc::new(Outbox::new(limits(), Some(socket)).with_fast_path());
    let Direct::Claimed(mut out) = Outbox::begin_direct(&o, (([127, 0, 0, 1], 1).into(), true), 10) else {
        panic!("not claimed")
    };
    o.purge_media();
    assert_eq!(out.send(b"video 1 k 3\n"), 0);
    out.spill().extend_from_slice(b"video 1 k 3\nabc");
    drop(out);
    let s = o.lock();
    assert!(s.partial.is_none() && !s.direct, "nothing of the frame is left for the writer");
}

#[test]
fn control_goes_first_and_close_drains_control_only() {
    let o = Outbox::new(limits(), None);
    o.push_media(frame(MediaKind::Video, true, 3));
    o.push_control(b"a\n".to_vec());
    let mut batch = Vec::new();
    assert!(o.next_batch(&mut batch, &mut 0, None));
    assert_eq!(batch[0], b"a\n");
    assert_eq!(batch.len(), 2);
    batch.clear();
    o.push_media(frame(MediaKind::Video, true, 3));
    o.push_control(b"bye\n".to_vec());
    o.close();
    assert!(o.next_batch(&mut batch, &mut 0, None));
    assert_eq!(batch, vec![b"bye\n".to_vec()]);
    batch.clear();
    assert!(!o.next_batch(&mut batch, &mut 0, None));
}
