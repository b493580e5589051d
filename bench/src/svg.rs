//! A hand-written SVG line plot: relay and direct latency against the number
//! of simultaneous calls, on a logarithmic latency axis.

use std::fmt::Write;

use crate::runs::CallsRow;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// A plotted line: name, colour, dashed, and the value it takes from a row.
type Series = (&'static str, &'static str, bool, fn(&CallsRow) -> f64);

/// The plot as SVG text.
pub fn latency_vs_calls(rows: &[CallsRow]) -> String {
    let series: [Series; 4] = [
        ("relay p99", "#c0392b", false, |r| r.relay.all.p99),
        ("relay p50", "#e67e22", false, |r| r.relay.all.p50),
        ("direct p99", "#2c3e50", true, |r| r.direct.all.p99),
        ("direct p50", "#7f8c8d", true, |r| r.direct.all.p50),
    ];
    let values: Vec<f64> = rows.iter().flat_map(|r| series.iter().map(move |s| (s.3)(r))).collect();
    let lo = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > 0.0 { (lo, hi) } else { (1.0, 10.0) };
    let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let n = rows.len().max(1);
    let x = |i: usize| LEFT + if n == 1 { pw / 2.0 } else { pw * i as f64 / (n - 1) as f64 };
    let y = |v: f64| TOP + ph * (1.0 - (v.max(lo).log10() - dlo) / (dhi - dlo));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">One-way frame latency vs simultaneous calls (each 30 fps video + 50 pkt/s audio, both ways)</text>"#,
        W / 2.0
    );
    for d in (dlo as i32)..=(dhi as i32) {
        let v = 10f64.powi(d);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            fmt_us(v)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{1}" stroke="#eee"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3}</text>"##,
            x(i),
            TOP + ph,
            TOP + ph + 18.0,
            r.calls
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">simultaneous calls</text>"#,
        LEFT + pw / 2.0,
        H - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">latency (log scale)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let _ =
        writeln!(s, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##);
    for (k, (name, color, dashed, f)) in series.iter().enumerate() {
        let pts: Vec<String> =
            rows.iter().enumerate().map(|(i, r)| format!("{:.1},{:.1}", x(i), y(f(r)))).collect();
        let dash = if *dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            pts.join(" ")
        );
        for (i, r) in rows.iter().enumerate() {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, x(i), y(f(r)));
        }
        let ly = TOP + 20.0 + 22.0 * k as f64;
        let lx = LEFT + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{name}</text>"#,
            lx + 28.0,
            lx + 34.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A latency in µs as text with a sensible unit.
pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.1} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}
