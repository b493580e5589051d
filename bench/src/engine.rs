//! The load engine: a few sender threads that send timestamped frames on a
//! schedule, and a few epoll receiver threads that time every frame that
//! arrives. Used by the latency and the many-calls benchmarks, the same way
//! for relayed calls and for direct pairs.
//!
//! Threads: `senders` sender threads each own a share of the sending sockets
//! (clones); `receivers` receiver threads each own a share of the endpoints
//! and their parsers. The calling thread only keeps time and samples `/proc`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use komunikator_protocol::MediaKind;

use crate::net::{Endpoint, write_all};
use crate::procfs::Sample;
use crate::stats::{Rng, Samples};
use crate::wire::{Event, encode_frame, now_ns, ns_of};

/// One stream of frames each sending endpoint sends.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// Audio or video.
    pub kind: MediaKind,
    /// Smallest payload, bytes.
    pub min: usize,
    /// Largest payload, bytes.
    pub max: usize,
    /// Frames per second.
    pub per_s: f64,
    /// Every n-th frame is a keyframe (1: all).
    pub key_every: u64,
}

/// A 640x480 H.264 + Opus call: 30 video frames/s of 5-20 KB, 50 audio packets/s of 100 B.
pub fn call_flows() -> Vec<Flow> {
    vec![
        Flow { kind: MediaKind::Video, min: 5_000, max: 20_000, per_s: 30.0, key_every: 60 },
        Flow { kind: MediaKind::Audio, min: 100, max: 100, per_s: 50.0, key_every: 1 },
    ]
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Flows every sending endpoint sends.
    pub flows: Vec<Flow>,
    /// Both ends of each pair send (a call); otherwise only the first end.
    pub both_ways: bool,
    /// Sending before the measured window starts.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Sender threads.
    pub senders: usize,
    /// Receiver threads.
    pub receivers: usize,
}

impl Plan {
    /// Calls in both directions with [`call_flows`], 2 sender and 2 receiver
    /// threads, a 2 s warm-up and a 10 s window (0.3 s and 1 s in smoke mode).
    pub fn calls(smoke: bool) -> Plan {
        Plan {
            flows: call_flows(),
            both_ways: true,
            warmup: Duration::from_millis(if smoke { 300 } else { 2000 }),
            measure: Duration::from_millis(if smoke { 1000 } else { 10_000 }),
            senders: 2,
            receivers: 2,
        }
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of audio frames sent inside the window.
    pub audio: Samples,
    /// Latency of video frames sent inside the window.
    pub video: Samples,
    /// Frames sent in the whole run, once per receiver: [audio, video].
    pub sent: [u64; 2],
    /// Frames received in the whole run: [audio, video].
    pub received: [u64; 2],
    /// `keyframe` lines the senders received.
    pub keyframe_lines: u64,
    /// How late senders started a write after its scheduled time (generator health).
    pub late: Samples,
    /// The probed process (the server) at the window's start and end.
    pub probe: Option<(Sample, Sample)>,
    /// The bench process itself at the window's start and end.
    pub me: Option<(Sample, Sample)>,
}

impl Outcome {
    /// Frames sent but never received.
    pub fn lost(&self) -> u64 {
        (self.sent[0] + self.sent[1]).saturating_sub(self.received[0] + self.received[1])
    }
}

struct Shared {
    sent: [AtomicU64; 2],
    received: [AtomicU64; 2],
    keyframe_lines: AtomicU64,
    key_wanted: Vec<AtomicBool>,
    stop_send: AtomicBool,
    stop_recv: AtomicBool,
    from_ns: u64,
    until_ns: u64,
}

fn lane(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

/// Runs `plan` over `pairs`; `probe` samples the server (or returns `None`).
///
/// # Errors
/// When sockets cannot be set up or a thread fails.
pub fn run(
    pairs: Vec<(Endpoint, Endpoint)>,
    plan: &Plan,
    probe: &dyn Fn() -> Option<Sample>,
) -> anyhow::Result<Outcome> {
    run_groups(pairs.into_iter().map(|(a, b)| vec![a, b]).collect(), plan, probe)
}

/// Runs `plan` over calls of any size (`groups`: the endpoints of each
/// call). In a call of more than two every endpoint sends, and each frame
/// is counted as sent once per receiver; in a pair, the first end sends,
/// and the second too when `plan.both_ways`.
///
/// # Errors
/// When sockets cannot be set up or a thread fails.
pub fn run_groups(
    groups: Vec<Vec<Endpoint>>,
    plan: &Plan,
    probe: &dyn Fn() -> Option<Sample>,
) -> anyhow::Result<Outcome> {
    let mut endpoints = Vec::with_capacity(groups.iter().map(Vec::len).sum());
    let mut writers = Vec::new();
    for group in groups {
        let receivers = group.len().saturating_sub(1) as u64;
        for (i, ep) in group.into_iter().enumerate() {
            ep.stream.set_read_timeout(None)?;
            ep.stream.set_nonblocking(true)?;
            if i == 0 || plan.both_ways || receivers > 1 {
                writers.push(Writer { global: endpoints.len(), stream: ep.stream.try_clone()?, receivers });
            }
            endpoints.push(ep);
        }
    }
    let start = Instant::now() + Duration::from_millis(50);
    let from = start + plan.warmup;
    let until = from + plan.measure;
    let shared = Shared {
        sent: Default::default(),
        received: Default::default(),
        keyframe_lines: AtomicU64::new(0),
        key_wanted: (0..endpoints.len()).map(|_| AtomicBool::new(false)).collect(),
        stop_send: AtomicBool::new(false),
        stop_recv: AtomicBool::new(false),
        from_ns: ns_of(from),
        until_ns: ns_of(until),
    };
    let mut outcome = Outcome::default();
    let recv_groups = split(endpoints.into_iter().enumerate().collect(), plan.receivers);
    let send_groups = split(writers, plan.senders);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let shared = &shared;
        let receivers: Vec<_> =
            recv_groups.into_iter().map(|g| scope.spawn(move || receive(g, shared))).collect();
        let senders: Vec<_> = send_groups
            .into_iter()
            .enumerate()
            .map(|(i, g)| scope.spawn(move || send(g, &plan.flows, start, until, i as u64, shared)))
            .collect();
        sleep_until(from);
        let at_from = (probe(), Sample::of("self").ok());
        sleep_until(until);
        let at_until = (probe(), Sample::of("self").ok());
        shared.stop_send.store(true, Ordering::SeqCst);
        for s in senders {
            outcome.late.extend(&s.join().map_err(|_| anyhow::anyhow!("sender panicked"))?);
        }
        // Let frames in flight arrive before counting losses.
        let drain = Instant::now() + Duration::from_secs(2);
        while Instant::now() < drain && total(&shared.received) < total(&shared.sent) {
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.stop_recv.store(true, Ordering::SeqCst);
        for r in receivers {
            let (audio, video) = r.join().map_err(|_| anyhow::anyhow!("receiver panicked"))??;
            outcome.audio.extend(&audio);
            outcome.video.extend(&video);
        }
        outcome.probe = at_from.0.zip(at_until.0);
        outcome.me = at_from.1.zip(at_until.1);
        Ok(())
    })?;
    outcome.sent = [0, 1].map(|i| shared.sent[i].load(Ordering::SeqCst));
    outcome.received = [0, 1].map(|i| shared.received[i].load(Ordering::SeqCst));
    outcome.keyframe_lines = shared.keyframe_lines.load(Ordering::SeqCst);
    Ok(outcome)
}

fn total(c: &[AtomicU64; 2]) -> u64 {
    c[0].load(Ordering::SeqCst) + c[1].load(Ordering::SeqCst)
}

/// Sleeps until `at` (returns at once if it has passed).
pub fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

fn split<T>(items: Vec<T>, groups: usize) -> Vec<Vec<T>> {
    let groups = groups.clamp(1, items.len().max(1));
    let mut out: Vec<Vec<T>> = (0..groups).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        out[i % groups].push(item);
    }
    out
}

/// A sending endpoint: its index among all endpoints, a clone of its
/// socket, and how many receivers get each frame it sends.
struct Writer {
    global: usize,
    stream: TcpStream,
    receivers: u64,
}

fn send(
    mut group: Vec<Writer>,
    flows: &[Flow],
    start: Instant,
    until: Instant,
    seed: u64,
    shared: &Shared,
) -> Samples {
    let mut rng = Rng::new(seed + 1);
    let mut late = Samples::default();
    let mut heap = BinaryHeap::new();
    let mut counts = vec![0u64; group.len() * flows.len()];
    for e in 0..group.len() {
        for (f, flow) in flows.iter().enumerate() {
            let period = 1e9 / flow.per_s;
            let phase = (rng.next_u64() % period as u64) as f64;
            heap.push(Reverse((ns_of(start) + phase as u64, e, f)));
        }
    }
    let until_ns = ns_of(until);
    let mut buf = Vec::with_capacity(64 << 10);
    while let Some(Reverse((due, e, f))) = heap.pop() {
        if due >= until_ns || shared.stop_send.load(Ordering::Relaxed) {
            break;
        }
        let now = now_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        let flow = flows[f];
        let Writer { global, stream, receivers } = &mut group[e];
        let n = &mut counts[e * flows.len() + f];
        let key = *n % flow.key_every.max(1) == 0
            || (flow.kind == MediaKind::Video && shared.key_wanted[*global].swap(false, Ordering::Relaxed));
        *n += 1;
        buf.clear();
        let stamp = now_ns();
        if stamp >= shared.from_ns {
            late.push(stamp.saturating_sub(due));
        }
        encode_frame(&mut buf, flow.kind, key, rng.range(flow.min, flow.max), stamp);
        if write_all(stream, &buf, &shared.stop_send).is_err() {
            break;
        }
        shared.sent[lane(flow.kind)].fetch_add(*receivers, Ordering::Relaxed);
        heap.push(Reverse((due + (1e9 / flow.per_s) as u64, e, f)));
    }
    late
}

fn receive(mut group: Vec<(usize, Endpoint)>, shared: &Shared) -> anyhow::Result<(Samples, Samples)> {
    let mut audio = Samples::default();
    let mut video = Samples::default();
    // SAFETY: epoll calls on a descriptor we create and close here.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    anyhow::ensure!(epfd >= 0, "epoll_create1: {}", io::Error::last_os_error());
    for (i, (_, ep)) in group.iter().enumerate() {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
        // SAFETY: ev is valid for the call.
        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, ep.stream.as_raw_fd(), &mut ev) };
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 256 << 10];
    let result = (|| -> anyhow::Result<()> {
        while !shared.stop_recv.load(Ordering::Relaxed) {
            // SAFETY: events has room for its length.
            let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, 50) };
            for ev in &events[..n.max(0) as usize] {
                let (global, ep) = &mut group[ev.u64 as usize];
                let got = match ep.stream.read(&mut buf) {
                    Ok(0) => {
                        // SAFETY: removing a registered descriptor.
                        let fd = ep.stream.as_raw_fd();
                        unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
                        continue;
                    }
                    Ok(got) => got,
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = now_ns();
                ep.parser.feed(&buf[..got], |e| match e {
                    Event::Media { kind, stamp_ns, .. } => {
                        shared.received[lane(kind)].fetch_add(1, Ordering::Relaxed);
                        if (shared.from_ns..shared.until_ns).contains(&stamp_ns) {
                            let lat = now.saturating_sub(stamp_ns);
                            match kind {
                                MediaKind::Audio => audio.push(lat),
                                MediaKind::Video => video.push(lat),
                            }
                        }
                    }
                    Event::Line(l) if l == "keyframe" => {
                        shared.keyframe_lines.fetch_add(1, Ordering::Relaxed);
                        shared.key_wanted[*global].store(true, Ordering::Relaxed);
                    }
                    Event::Line(_) => {}
                })?;
            }
        }
        Ok(())
    })();
    // SAFETY: closing the descriptor created above.
    unsafe { libc::close(epfd) };
    result.map(|()| (audio, video))
}
