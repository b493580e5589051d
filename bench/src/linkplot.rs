//! The step case over time: a hand-written SVG plot (the sender's encoder
//! rate, the rate into the link and the link's rate on top; the video delay
//! at the receiver's door below, log scale) and the same data as a
//! per-second table. Runs on the main thread when the report is written.

use std::fmt::Write;

use komunikator_protocol::MediaKind;

use crate::linkfig::{self, Counter, DELAY_OK_MS};
use crate::links::{CaseResult, Run};

const W: f64 = 780.0;
const H: f64 = 600.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 230.0;
/// Top and bottom of the rate panel.
const RATE_Y: (f64, f64) = (50.0, 300.0);
/// Top and bottom of the delay panel.
const DELAY_Y: (f64, f64) = (350.0, 540.0);
/// The rate axis' top, kbit/s.
const RATE_MAX: f64 = 2600.0;
/// The delay axis, decades of ms (10 ms to 100 s).
const DELAY_DECADES: (f64, f64) = (1.0, 5.0);

const BLUE: &str = "#1f77b4";
const LIGHT_BLUE: &str = "#9ecae1";
const RED: &str = "#c0392b";
const LIGHT_RED: &str = "#f5b7b1";

/// The plot as SVG text, `None` unless both runs succeeded.
pub fn step_svg(c: &CaseResult) -> Option<String> {
    let [Ok(a), Ok(n)] = &c.runs else { return None };
    let t_max = c.seconds as f64 + 3.0;
    let pw = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + pw * (t.clamp(0.0, t_max) / t_max);
    let yr = |k: f64| RATE_Y.1 - (RATE_Y.1 - RATE_Y.0) * (k.clamp(0.0, RATE_MAX) / RATE_MAX);
    let yd = |ms: f64| {
        let d = ms.max(10.0).log10().clamp(DELAY_DECADES.0, DELAY_DECADES.1);
        DELAY_Y.1 - (DELAY_Y.1 - DELAY_Y.0) * (d - DELAY_DECADES.0) / (DELAY_DECADES.1 - DELAY_DECADES.0)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">Caller uplink 2000 → 300 → 2000 kbit/s: adaptive vs --no-adapt</text>"#,
        W / 2.0
    );
    axes(&mut s, &x, &yr, &yd, t_max);
    let step_line = |s: &mut String, pts: &[(f64, f64)], color: &str, width: f64, dash: bool| {
        let mut d = Vec::new();
        for (i, (t, k)) in pts.iter().enumerate() {
            if i > 0 {
                d.push(format!("{:.1},{:.1}", x(*t), yr(pts[i - 1].1)));
            }
            d.push(format!("{:.1},{:.1}", x(*t), yr(*k)));
        }
        line(s, &d, color, width, dash);
    };
    let capacity: Vec<(f64, f64)> = a.samples.iter().map(|p| (p.t_s, f64::from(p.stats.kbps))).collect();
    step_line(&mut s, &capacity, "#000", 2.5, false);
    for (run, light, dark, dash) in [(n, LIGHT_RED, RED, true), (a, LIGHT_BLUE, BLUE, false)] {
        let into: Vec<String> = linkfig::trailing_kbps(&run.samples, Counter::In)
            .iter()
            .map(|(t, k)| format!("{:.1},{:.1}", x(*t), yr(*k)))
            .collect();
        line(&mut s, &into, light, 1.5, false);
        let enc: Vec<(f64, f64)> = run.sender.rate.iter().map(|p| (p.t_s, p.kbps)).collect();
        step_line(&mut s, &enc, dark, 2.0, dash);
        let delay: Vec<String> = linkfig::per_second_max(run, MediaKind::Video)
            .iter()
            .map(|(sec, d, _)| format!("{:.1},{:.1}", x(*sec as f64 + 0.5), yd(*d)))
            .collect();
        line(&mut s, &delay, dark, 2.0, dash);
    }
    legend(&mut s);
    s.push_str("</svg>\n");
    Some(s)
}

fn line(s: &mut String, pts: &[String], color: &str, width: f64, dash: bool) {
    let dash = if dash { r#" stroke-dasharray="6 4""# } else { "" };
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>"#,
        pts.join(" ")
    );
}

fn axes(
    s: &mut String,
    x: &dyn Fn(f64) -> f64,
    yr: &dyn Fn(f64) -> f64,
    yd: &dyn Fn(f64) -> f64,
    t_max: f64,
) {
    let right = LEFT + (W - LEFT - RIGHT);
    for k in (0..=2500).step_by(500) {
        let y = yr(f64::from(k));
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{k}</text>"##,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (d, label) in
        [(10.0, "10 ms"), (100.0, "100 ms"), (1000.0, "1 s"), (10_000.0, "10 s"), (100_000.0, "100 s")]
    {
        let y = yd(d);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let y = yd(DELAY_OK_MS);
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" x2="{right}" y1="{y:.1}" y2="{y:.1}" stroke="#2a2" stroke-dasharray="3 3"/><text x="{}" y="{:.1}" fill="#2a2">300 ms</text>"##,
        right + 4.0,
        y + 4.0
    );
    let mut t = 0.0;
    while t <= t_max {
        let xx = x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{}" y2="{}" stroke="#eee"/><text x="{xx:.1}" y="{}" text-anchor="middle">{t:.0}</text>"##,
            RATE_Y.0,
            DELAY_Y.1,
            DELAY_Y.1 + 16.0
        );
        t += 10.0;
    }
    for (top, bottom, label) in
        [(RATE_Y.0, RATE_Y.1, "kbit/s"), (DELAY_Y.0, DELAY_Y.1, "video delay at arrival, max per second")]
    {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top}" width="{}" height="{}" fill="none" stroke="#888"/><text x="16" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 16 {mid:.1})">{label}</text>"##,
            right - LEFT,
            bottom - top,
            mid = (top + bottom) / 2.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">seconds since the caller's link started</text>"#,
        (LEFT + right) / 2.0,
        H - 18.0
    );
}

fn legend(s: &mut String) {
    let items = [
        ("link rate", "#000", false),
        ("adaptive: encoder", BLUE, false),
        ("adaptive: into the link", LIGHT_BLUE, false),
        ("--no-adapt: encoder", RED, true),
        ("--no-adapt: into the link", LIGHT_RED, false),
        ("adaptive: delay (below)", BLUE, false),
        ("--no-adapt: delay (below)", RED, true),
    ];
    let lx = W - RIGHT + 20.0;
    for (i, (name, color, dash)) in items.iter().enumerate() {
        let ly = RATE_Y.0 + 12.0 + 22.0 * i as f64;
        let dash = if *dash { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{name}</text>"#,
            lx + 28.0,
            lx + 34.0,
            ly + 4.0
        );
    }
}

/// The step case second by second: link rate, encoder rate, rate into the link, worst video delay.
pub fn step_table(s: &mut String, c: &CaseResult) {
    let [Ok(a), Ok(n)] = &c.runs else { return };
    let _ = writeln!(
        s,
        "<details><summary>Second by second (link time; the drop is at 20 s, the rise at 40 s; \
         encoder = the last `video_rate` point in the second; into the link = bytes the sender pushed \
         into the link over that second; delay = the largest video delay at arrival at the callee in \
         that second, with the number of video frames that arrived)</summary>\n"
    );
    let _ = writeln!(
        s,
        "| s | Link | Adaptive: encoder / into the link / delay (frames) | `--no-adapt`: encoder / into the link / delay (frames) |\n|---|---|---|---|"
    );
    let spec = c.case.spec().map(|l| l.up);
    for sec in 0..(c.seconds + 3) {
        let t = sec as f64;
        let link = spec.as_ref().map_or(0, |sh| sh.at(std::time::Duration::from_secs(sec)).0);
        let _ = writeln!(s, "| {sec} | {link} | {} | {} |", second(a, t), second(n, t));
    }
    let _ = writeln!(s, "\n</details>\n");
}

fn second(r: &Run, t: f64) -> String {
    let enc = r
        .sender
        .rate
        .iter()
        .rev()
        .find(|p| p.t_s < t + 1.0)
        .map_or("—".into(), |p| format!("{:.0}", p.kbps));
    let into =
        linkfig::mean_kbps(&r.samples, Counter::In, t, t + 1.0).map_or("—".into(), |k| format!("{k:.0}"));
    let delay = linkfig::per_second_max(r, MediaKind::Video)
        .into_iter()
        .find(|(sec, _, _)| *sec as f64 == t)
        .map_or("— (0)".into(), |(_, d, n)| format!("{d:.0} ms ({n})"));
    format!("{enc} / {into} / {delay}")
}
