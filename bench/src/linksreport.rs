//! The report's section on calls over emulated links: one table per case,
//! adaptive beside `--no-adapt`, each figure against issue 12's target with
//! an honest PASS or MISS, and the step case's plot and per-second table.

use std::fmt::Write;

use komunikator_protocol::MediaKind;

use crate::linkfig::{self, Counter, DELAY_OK_MS, DROP_WITHIN_S, RISE_SHARE, RISE_WITHIN_S};
use crate::links::{Case, CaseResult, Links, Run};

/// Audio packets a receiver may be short at hang-up and still count as "every packet decoded".
pub const AUDIO_SHORT_OK: u64 = 5;
/// Seconds at the start of a call left out of rate figures (connection, first keyframe).
const WARMUP_S: f64 = 5.0;
/// Link time after which a call counts as settled (the start-up's first estimate is over).
const SETTLED_S: f64 = 10.0;

fn verdict(ok: bool) -> &'static str {
    if ok { "**PASS**" } else { "**MISS**" }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0} ms"))
}

/// A figure of one run, as text and an optional pass/fail.
type Figure = Box<dyn Fn(&Run) -> (String, Option<bool>)>;

/// A row of a case's table: name, target and how each run's cell is made.
struct Row(String, String, Figure);

fn cells(c: &CaseResult, f: &Figure) -> [String; 2] {
    c.runs.clone().map(|r| match r {
        Ok(run) => {
            let (text, ok) = f(&run);
            ok.map_or(text.clone(), |ok| format!("{text} {}", verdict(ok)))
        }
        Err(e) => format!("failed: {}", e.replace('|', "/")),
    })
}

fn common_rows(case: Case) -> Vec<Row> {
    let slow = matches!(case, Case::Uplink | Case::Downlink);
    let target = |t: &str| if slow { t.to_owned() } else { "—".to_owned() };
    vec![
        Row(
            "Receiver: audio age p95 (p50), JSON".into(),
            target("< 200 ms"),
            Box::new(move |r| {
                let (p50, p95) = r.receiver.audio_age;
                (format!("{} ({})", ms(p95), ms(p50)), slow.then(|| p95.is_some_and(|v| v < 200.0)))
            }),
        ),
        Row(
            "Receiver: video capture-to-decode p95 (p50), JSON".into(),
            target("< 300 ms"),
            Box::new(move |r| {
                let (p50, p95) = r.receiver.latency;
                (format!("{} ({})", ms(p95), ms(p50)), slow.then(|| p95.is_some_and(|v| v < 300.0)))
            }),
        ),
        Row(
            "Receiver: decoded frames/s".into(),
            target(">= 20"),
            Box::new(move |r| (format!("{:.1}", r.receiver.fps()), slow.then(|| r.receiver.fps() >= 20.0))),
        ),
        Row(
            "Audio packets decoded / sent".into(),
            target(&format!("all (at most {AUDIO_SHORT_OK} short at hang-up)")),
            Box::new(move |r| {
                let (sent, got) = (r.sender.audio.0, r.receiver.audio.1);
                (format!("{got} / {sent}"), slow.then(|| got + AUDIO_SHORT_OK >= sent))
            }),
        ),
        Row(
            format!("Receiver (tap): video delay at arrival p95 / max; the same after {SETTLED_S:.0} s"),
            "—".into(),
            Box::new(|r| (pct_max(r, MediaKind::Video), None)),
        ),
        Row(
            format!("Receiver (tap): audio delay at arrival p95 / max; the same after {SETTLED_S:.0} s"),
            "—".into(),
            Box::new(|r| (pct_max(r, MediaKind::Audio), None)),
        ),
        Row(
            "Sender: frames encoded / skipped before the encoder / dropped after".into(),
            "—".into(),
            Box::new(|r| {
                let (s, k, d) = r.sender.frames;
                (format!("{s} / {k} / {d}"), None)
            }),
        ),
        Row(
            "Sender: mean send rate (video + audio payload)".into(),
            "—".into(),
            Box::new(|r| (format!("{:.0} kbit/s", r.sender.send_kbps()), None)),
        ),
        Row(
            format!(
                "Sender: encoder rate (`video_rate`) min-max after {WARMUP_S:.0} s; pictures; limited by"
            ),
            "—".into(),
            Box::new(|r| {
                let range = linkfig::encoder_range(r, WARMUP_S)
                    .map_or("—".into(), |(lo, hi)| format!("{lo:.0}-{hi:.0} kbit/s"));
                let (pictures, limits) = linkfig::pictures(r);
                (format!("{range}; {}; {}", pictures.join(", "), limits.join(", ")), None)
            }),
        ),
        Row(
            format!("Link: delivered rate after {WARMUP_S:.0} s; largest queue"),
            "—".into(),
            Box::new(|r| (link_cell(r), None)),
        ),
    ]
}

fn pct_max(r: &Run, kind: MediaKind) -> String {
    let one = |from: f64| {
        linkfig::arrival_pct(r, kind, 95.0, from).map_or("—".into(), |(p, m)| format!("{p:.0} / {m:.0} ms"))
    };
    format!("{}; {}", one(0.0), one(SETTLED_S))
}

fn link_cell(r: &Run) -> String {
    let Some(last) = r.last() else { return "— (no link)".into() };
    let rate = linkfig::mean_kbps(&r.samples, Counter::Out, WARMUP_S, f64::MAX)
        .map_or("—".into(), |k| format!("{k:.0} kbit/s"));
    format!("{rate}; {:.1} KB", last.max_queued as f64 / 1000.0)
}

fn case_rows(case: Case) -> Vec<Row> {
    match case {
        Case::Step => vec![
            Row(
                "Encoder at or below the new link rate (`video_rate`), after the drop".into(),
                "—".into(),
                Box::new(|r| {
                    (linkfig::drop_reaction(r).map_or("never".into(), |t| format!("{t:.1} s")), None)
                }),
            ),
            Row(
                format!(
                    "Video delay at arrival back under {DELAY_OK_MS:.0} ms after the drop, for a whole second \
                     (last frame over it before the rise; worst; longest gap; frames until the rise)"
                ),
                format!("<= {DROP_WITHIN_S:.0} s"),
                Box::new(|r| match linkfig::drop_recovery(r) {
                    Some(d) => (
                        format!(
                            "{} ({:.1} s; {:.0} ms; {:.1} s; {})",
                            d.first_under_s.map_or("never".into(), |t| format!("{t:.1} s")),
                            d.back_under_s,
                            d.worst_ms,
                            d.longest_gap_s,
                            d.frames
                        ),
                        Some(d.first_under_s.is_some_and(|t| t <= DROP_WITHIN_S)),
                    ),
                    None => ("no arrivals".into(), Some(false)),
                }),
            ),
            Row(
                format!(
                    "Send rate into the link / encoder rate >= {:.0} % of the link after the rise",
                    RISE_SHARE * 100.0
                ),
                format!("<= {RISE_WITHIN_S:.0} s"),
                Box::new(|r| {
                    let (link, enc) = linkfig::rise_recovery(r);
                    let s = |v: Option<f64>| v.map_or("never".into(), |v| format!("{v:.1} s"));
                    let ok = [link, enc].iter().all(|v| v.is_some_and(|v| v <= RISE_WITHIN_S));
                    (format!("{} / {}", s(link), s(enc)), Some(ok))
                }),
            ),
        ],
        Case::Delay => vec![Row(
            format!("Send rate into the link after {WARMUP_S:.0} s, share of 2000 kbit/s"),
            format!(">= {:.0} %", RISE_SHARE * 100.0),
            Box::new(|r| match linkfig::mean_kbps(&r.samples, Counter::In, WARMUP_S, f64::MAX) {
                Some(k) => (format!("{k:.0} kbit/s ({:.0} %)", k / 20.0), Some(k >= RISE_SHARE * 2000.0)),
                None => ("—".into(), Some(false)),
            }),
        )],
        Case::Loopback => vec![Row(
            "Encoder rate at the configured maximum all call (`video_rate` min)".into(),
            format!("{} kbit/s", case.video_kbps()),
            Box::new(move |r| match linkfig::encoder_range(r, 0.0) {
                Some((lo, _)) => (format!("{lo:.0} kbit/s"), Some(lo >= f64::from(case.video_kbps()))),
                None => ("no timeline".into(), Some(false)),
            }),
        )],
        _ => Vec::new(),
    }
}

/// The loopback case's added latency: adaptive p95 minus `--no-adapt`'s, at the callee.
fn loopback_added(c: &CaseResult) -> Option<f64> {
    let [Ok(a), Ok(n)] = &c.runs else { return None };
    Some(a.receiver.latency.1? - n.receiver.latency.1?)
}

fn spec_text(case: Case) -> String {
    case.spec().map_or("no link".into(), |s| {
        let who = if case.callee_behind_link() { "the callee" } else { "the caller" };
        format!("{who} behind the link: up `{}`, down `{}`", s.up, s.down)
    })
}

/// Renders the section; `plot` is the step case's plot as the report links it, if written.
pub fn render(s: &mut String, l: &Links, plot: Option<&str>) {
    let _ = writeln!(s, "## 9. Calls over emulated links: adaptive against `--no-adapt`\n");
    let (cases, client, load, server) = match l {
        Links::NotRun => {
            let _ = writeln!(s, "**Not measured**: not requested in this run (`--only`).\n");
            return;
        }
        Links::NotMeasured(why) => {
            let _ = writeln!(s, "**Not measured.** {why}.\n");
            return;
        }
        Links::Measured { cases, client, load, server } => (cases, client, load, server),
    };
    let encoders: Vec<&str> = cases
        .iter()
        .flat_map(|c| c.runs.iter().flatten())
        .map(|r| r.sender.encoder.as_str())
        .fold(Vec::new(), |mut v, e| {
            if !v.contains(&e) {
                v.push(e);
            }
            v
        });
    intro(s, client, load, server, &encoders.join(", "));
    for (i, c) in cases.iter().enumerate() {
        case_table(s, i + 1, c);
        if c.case == Case::Step {
            if let Some(p) = plot {
                let _ = writeln!(s, "![step case: rates and video delay over time]({p})\n");
            }
            crate::linkplot::step_table(s, c);
        }
    }
    let _ = writeln!(
        s,
        "Client command lines of the first case (callee, caller; each case differs only in `--server`, `--video-kbps` and `--no-adapt`):\n"
    );
    for run in cases.iter().take(1).flat_map(|c| c.runs.iter().flatten()) {
        for c in &run.commands {
            let _ = writeln!(s, "    {c}");
        }
    }
    let _ = writeln!(s);
}

fn intro(s: &mut String, client: &std::path::Path, load: &(String, String), server: &str, encoders: &str) {
    let _ = writeln!(
        s,
        "Each case is a real call: `{server}` and two `{} --headless --plaintext` clients on test sources \
         (640x480@30, videotestsrc and a 440 Hz tone; encoder used: {encoders}), one of them behind the link emulator \
         (`komunikator_linkem::Link`, user-space shaper, drop-tail queue 100 ms at the first rate unless \
         said otherwise). Every case runs twice in a row, in the same run: adaptive (the default) and \
         `--no-adapt` on both clients (a fixed bitrate and picture, one FIFO send queue: the client before \
         issue 12). Figures marked JSON are from the clients' final JSON lines; the link's are its own \
         counters for the direction that carries the caller's media (sampled every 200 ms); the tap is a \
         pass-through proxy in front of the callee that stamps each media frame as its last byte arrives \
         and subtracts the capture time the sender put in its header (same clock, same machine): the \
         per-frame delay from capture to the receiver's door, without decoding (1-2 ms, section 6). The \
         clients' JSON has only whole-call percentiles, so the tap is where the per-second delay comes \
         from. Load average (1/5/15 min): {} before the section, {} after it; the two cores are shared \
         with other work, so single figures drift between runs.\n",
        client.display(),
        load.0,
        load.1
    );
    let _ = writeln!(
        s,
        "What the user-space shaper models, and what it hides (docs/LINKEM.md): a TCP proxy cannot drop \
         bytes, so a full bottleneck queue means back-pressure, not loss: the sender's unsent bytes grow and \
         its TCP sees a slow drain, as behind a router whose buffer never overflows. Beyond the queue bound \
         it buffers about 11-14 KB more in its own small sockets (about 0.2 s at 500 kbit/s), and the \
         sender's own send buffer comes on top, as on a real link. The delay is added in the proxy, so the \
         sender's TCP round trip stays at loopback's. No packet loss, no retransmits, no congestion-control \
         reaction to loss: those need the netns back end, which has no delay on this kernel.\n"
    );
}

fn case_table(s: &mut String, n: usize, c: &CaseResult) {
    let _ = writeln!(
        s,
        "### 9.{n}. {} ({}; `--video-kbps {}`; {} s)\n",
        c.case.title(),
        spec_text(c.case),
        c.case.video_kbps(),
        c.seconds
    );
    let _ = writeln!(s, "| Figure | Target | Adaptive | `--no-adapt` |\n|---|---|---|---|");
    for Row(name, target, f) in common_rows(c.case).into_iter().chain(case_rows(c.case)) {
        let [a, b] = cells(c, &f);
        let _ = writeln!(s, "| {name} | {target} | {a} | {b} |");
    }
    if c.case == Case::Loopback {
        let added = loopback_added(c);
        let _ = writeln!(
            s,
            "| Callee's video p95, adaptive minus `--no-adapt` | <= 5 ms | {} | — |",
            added.map_or("—".into(), |a| format!("{a:+.1} ms {}", verdict(a <= 5.0)))
        );
    }
    let _ = writeln!(s);
}

/// The rows this section adds to the report's table of targets.
pub fn summary_rows(l: &Links) -> Vec<String> {
    let Links::Measured { cases, .. } = l else {
        return vec!["| Calls over emulated links | issue 12 | not measured (see section 9) | — |".into()];
    };
    let mut rows = Vec::new();
    for c in cases {
        let targets: Vec<Row> = match c.case {
            Case::Uplink | Case::Downlink => common_rows(c.case).into_iter().take(4).collect(),
            _ => case_rows(c.case),
        };
        for Row(name, target, f) in targets {
            let [a, b] = cells(c, &f);
            let met = match &c.runs[0] {
                Ok(run) => f(run).1.map_or("—", |ok| if ok { "yes" } else { "**no**" }),
                Err(_) => "**no**",
            };
            rows.push(format!("| {}: {name} | {target} | {a} (`--no-adapt`: {b}) | {met} |", c.case.title()));
        }
        if c.case == Case::Loopback {
            let added = loopback_added(c);
            rows.push(format!(
                "| {}: callee's video p95 over `--no-adapt`'s | <= 5 ms | {} | {} |",
                c.case.title(),
                added.map_or("—".into(), |a| format!("{a:+.1} ms")),
                added.map_or("—", |a| if a <= 5.0 { "yes" } else { "**no**" })
            ));
        }
    }
    rows
}

/// The section's bullet for "Where a target is not met, and why": every
/// target the adaptive client missed, with the figures that explain it.
pub fn analysis(s: &mut String, l: &Links) {
    let Links::Measured { cases, .. } = l else { return };
    let mut missed = Vec::new();
    for c in cases {
        let targets: Vec<Row> = match c.case {
            Case::Uplink | Case::Downlink => common_rows(c.case).into_iter().take(4).collect(),
            _ => case_rows(c.case),
        };
        let Ok(run) = &c.runs[0] else {
            missed.push(format!("{}: the adaptive run failed", c.case.title()));
            continue;
        };
        for Row(name, _, f) in targets {
            if let (text, Some(false)) = f(run) {
                missed.push(format!("{}: {name} {text}", c.case.title()));
            }
        }
        if c.case == Case::Loopback && loopback_added(c).is_some_and(|a| a > 5.0) {
            missed.push(format!("{}: callee's video p95 over `--no-adapt`'s", c.case.title()));
        }
    }
    if missed.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "- **Calls over emulated links (section 9): the adaptive client missed {} target(s).** {}.",
        missed.len(),
        missed.join("; ")
    );
    if let Some(Ok(down)) = cases.iter().find(|c| c.case == Case::Downlink).map(|c| &c.runs[0]) {
        let (_, limits) = linkfig::pictures(down);
        if !limits.iter().any(|l| l == "downlink") {
            let _ = writeln!(
                s,
                "  In the downlink case the adaptive sender's `video_rate` never named the downlink as its \
                 limit (limits seen: {}): it had no report of the callee's downlink, so it kept encoding at \
                 {} kbit/s like `--no-adapt`, and the server's pacer dropped the video the 500 kbit/s link \
                 could not carry (the callee decoded {:.1} frames/s).",
                limits.join(", "),
                Case::Downlink.video_kbps(),
                down.receiver.fps()
            );
        }
    }
    if let Some(Ok(step)) = cases.iter().find(|c| c.case == Case::Step).map(|c| &c.runs[0]) {
        step_analysis(s, step);
    }
    let settled: Vec<String> = cases
        .iter()
        .filter(|c| matches!(c.case, Case::Uplink | Case::Downlink))
        .filter_map(|c| {
            let Ok(r) = &c.runs[0] else { return None };
            let (p, _) = linkfig::arrival_pct(r, MediaKind::Video, 95.0, SETTLED_S)?;
            Some(format!("{} {p:.0} ms", c.case.title().to_lowercase()))
        })
        .collect();
    if !settled.is_empty() {
        let _ = writeln!(
            s,
            "  After the first {SETTLED_S:.0} s (the start-up, when the sender does not yet know its \
             path), the video delay at arrival p95 was: {}.",
            settled.join(", ")
        );
    }
    let _ = writeln!(s);
}

/// The step case's part of [`analysis`]: how fast the encoder followed the drop, and any later excursion.
fn step_analysis(s: &mut String, step: &Run) {
    let (drop, rise) = crate::links::STEP_AT;
    let reaction = linkfig::drop_reaction(step).map_or("never".into(), |t| format!("{t:.1} s"));
    let Some(d) = linkfig::drop_recovery(step) else { return };
    let _ = write!(
        s,
        "  In the step case the encoder's rate reached the new link rate {reaction} after the drop; until \
         then the sender kept encoding at the old rate, and what it wrote waited in the link's queue and in \
         the sender's own socket: the video delay at the callee peaked at {:.0} ms",
        d.worst_ms
    );
    match d.first_under_s {
        Some(first) if d.back_under_s > first + 1.0 => {
            let peak = step
                .sender
                .rate
                .iter()
                .filter(|p| (drop + first..rise).contains(&p.t_s))
                .map(|p| p.kbps)
                .fold(0.0, f64::max);
            let _ = writeln!(
                s,
                ", and was back under {DELAY_OK_MS:.0} ms for a whole second {first:.1} s after the drop. \
                 It went over again later: the last frame over {DELAY_OK_MS:.0} ms before the rise came \
                 {:.1} s after the drop, while the encoder's rate, climbing back, reached {peak:.0} kbit/s \
                 on the {} kbit/s link.",
                d.back_under_s,
                crate::links::STEP_KBPS.1
            );
        }
        Some(first) => {
            let _ =
                writeln!(s, ", and was back under {DELAY_OK_MS:.0} ms for good {first:.1} s after the drop.");
        }
        None => {
            let _ = writeln!(
                s,
                ", and was not back under {DELAY_OK_MS:.0} ms for a whole second before the rise."
            );
        }
    }
}
