//! What simulcast would cost a sender (issue 15): real GStreamer pipelines
//! (`gst-launch-1.0` subprocesses) on test sources encode the picture once
//! with the client's software encoder settings, then the same picture teed
//! to that encoder and to a second, smaller encoding, and the CPU time each
//! process used (utime + stime from `/proc`, not wall clock: the machine is
//! shared) is set against the single encoding measured in the same round.
//! Each encoder writes its stream into a file; the file's growth over the
//! window gives the bytes per second it produced, and its slices the
//! pictures per second. Rounds interleave the configurations, so a noisy
//! neighbour hits them alike; the report shows medians.
//!
//! Threads: the calling thread starts each pipeline, samples `/proc` and
//! reads the files; one thread per pipeline drains its stdout.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::procfs::Sample;
use crate::realcall::Reaper;

/// The client's software encoder (gtk-client/src/media/codec.rs), bitrate apart.
const X264: &str =
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=300 bframes=0 vbv-buf-capacity=200";
/// The queue in front of the client's encoder (pipelines/send-video.txt):
/// it drops a picture rather than delay the next one.
const LEAKY: &str = "queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0";

/// A test source, as gst-launch-1.0 takes it.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// How the report names it.
    pub name: &'static str,
    /// The element and its properties.
    pub launch: &'static str,
}

/// The sources measured: the first is the only one in a smoke run.
const SOURCES: [Source; 2] = [
    Source { name: "ball", launch: "videotestsrc is-live=true pattern=ball" },
    Source { name: "moving bars", launch: "videotestsrc is-live=true pattern=smpte horizontal-speed=4" },
];

/// One encoding: its picture size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// The encoder's bitrate, kbit/s.
    pub kbps: u32,
}

/// One pipeline: a source at one capture size, feeding zero or more encodings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The test source.
    pub source: Source,
    /// Capture width, height and pictures per second.
    pub capture: (u32, u32, u32),
    /// The encodings; none measures the source alone, the first is the main one.
    pub layers: Vec<Layer>,
}

impl Config {
    /// The pipeline description; encoding `i` writes `layer{i}.h264` in the working directory.
    pub fn launch(&self) -> String {
        let (w, h, fps) = self.capture;
        let mut s = format!(
            "{} ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 ! tee name=t",
            self.source.launch
        );
        if self.layers.is_empty() {
            let _ = write!(s, " t. ! {LEAKY} ! fakesink sync=false");
        }
        for (i, l) in self.layers.iter().enumerate() {
            let scale = if (l.width, l.height) == (w, h) {
                String::new()
            } else {
                format!("videoscale ! video/x-raw,width={},height={} ! ", l.width, l.height)
            };
            let _ = write!(
                s,
                " t. ! {LEAKY} ! {scale}{X264} bitrate={} ! filesink location={} buffer-mode=unbuffered sync=false",
                l.kbps,
                file(i)
            );
        }
        s
    }

    fn encodings(&self) -> String {
        if self.layers.is_empty() {
            return "none (the source alone)".to_owned();
        }
        let each: Vec<String> =
            self.layers.iter().map(|l| format!("{}x{} at {}", l.width, l.height, l.kbps)).collect();
        each.join(" + ")
    }
}

fn file(i: usize) -> String {
    format!("layer{i}.h264")
}

/// The configurations, grouped by source and capture size; each group has
/// the source alone, one encoding (the group's baseline) and one encoding
/// plus each second layer.
fn configs(smoke: bool) -> Vec<Config> {
    let layer = |width, height, kbps| Layer { width, height, kbps };
    // The two-party call's size; then the group-call benchmark's, whose second
    // layer gets the share of a 300 kbit/s downlink among three senders (section 11).
    let groups = [
        ((640, 480, 30), layer(640, 480, 800), vec![layer(320, 240, 250), layer(160, 120, 250)]),
        ((320, 240, 15), layer(320, 240, 800), vec![layer(160, 120, 100)]),
    ];
    let (sources, groups) = if smoke { (&SOURCES[..1], &groups[..1]) } else { (&SOURCES[..], &groups[..]) };
    let mut out = Vec::new();
    for source in sources {
        for (capture, main, seconds) in groups {
            let config = |layers: Vec<Layer>| Config { source: *source, capture: *capture, layers };
            out.push(config(vec![]));
            out.push(config(vec![*main]));
            out.extend(seconds.iter().map(|second| config(vec![*main, *second])));
        }
    }
    out
}

/// One run of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// CPU of the gst-launch-1.0 process over the window, % of one core.
    pub cpu: f64,
    /// Per encoding: (kbit/s produced, pictures/s produced).
    pub layers: Vec<(f64, f64)>,
}

/// One configuration's runs, one per round.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub config: Config,
    /// The row of the one encoding with the same source and capture size.
    pub base: usize,
    /// The row of the source alone with the same source and capture size.
    pub alone: usize,
    /// One run per round, in order.
    pub runs: Vec<Run>,
}

/// The simulcast benchmark's outcome.
#[derive(Debug, Clone, Default)]
pub enum Simulcast {
    /// Not requested.
    #[default]
    NotRun,
    /// Not measured, and why.
    NotMeasured(String),
    /// Measured.
    Measured {
        /// The rows, grouped by source and capture size.
        rows: Vec<Row>,
        /// Warm-up and window of each run.
        window: (Duration, Duration),
        /// Load average (1 min) before and after the section.
        load: (String, String),
    },
}

/// Why the pipelines cannot run here, if they cannot.
fn missing() -> Option<String> {
    let found = Command::new("gst-inspect-1.0")
        .arg("x264enc")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!found).then(|| {
        "`gst-inspect-1.0 x264enc` failed: GStreamer's tools or its x264 plugin are not installed".into()
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_default()
}

/// Measures every configuration, 3 interleaved rounds of 10 s (smoke: one of 1 s).
///
/// # Errors
/// When GStreamer is there but a pipeline does not run or produces nothing.
pub fn run(smoke: bool) -> anyhow::Result<Simulcast> {
    if let Some(why) = missing() {
        return Ok(Simulcast::NotMeasured(why));
    }
    let (rounds, warm, measure) = if smoke {
        (1, Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (3, Duration::from_secs(1), Duration::from_secs(10))
    };
    let dir = std::env::temp_dir().join(format!("komunikator-bench-simulcast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let before = loadavg();
    let rows = rounds_of(configs(smoke), &dir, rounds, (warm, measure));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Simulcast::Measured { rows: rows?, window: (warm, measure), load: (before, loadavg()) })
}

fn rounds_of(
    configs: Vec<Config>,
    dir: &Path,
    rounds: usize,
    window: (Duration, Duration),
) -> anyhow::Result<Vec<Row>> {
    let find = |c: &Config, layers: usize| {
        let same =
            |b: &Config| b.layers.len() == layers && b.capture == c.capture && b.source.name == c.source.name;
        configs.iter().position(same).context("a group without its baseline")
    };
    let mut rows = Vec::new();
    for c in &configs {
        let (base, alone) = (find(c, 1)?, find(c, 0)?);
        rows.push(Row { config: c.clone(), base, alone, runs: Vec::new() });
    }
    for round in 0..rounds {
        for row in &mut rows {
            eprintln!(
                "bench: simulcast: round {}: {} {}",
                round + 1,
                row.config.source.name,
                row.config.encodings()
            );
            let run = once(&row.config, dir, window).with_context(|| row.config.launch())?;
            row.runs.push(run);
        }
    }
    Ok(rows)
}

/// Runs `config` for `warm` then `measure`, and measures over `measure`.
fn once(config: &Config, dir: &Path, (warm, measure): (Duration, Duration)) -> anyhow::Result<Run> {
    let files: Vec<PathBuf> = (0..config.layers.len()).map(|i| dir.join(file(i))).collect();
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    let errors = dir.join("stderr.txt");
    let mut child = Command::new("gst-launch-1.0")
        // One word per argument: gst-launch-1.0 escapes the spaces inside an argument.
        .args(config.launch().split_whitespace())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors).context("creating the stderr file")?)
        .spawn()
        .context("starting gst-launch-1.0")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reaper = Reaper(child);
    let failed = || std::fs::read_to_string(&errors).unwrap_or_default().trim().to_owned();
    if playing(stdout).recv_timeout(Duration::from_secs(15)).is_err() {
        bail!("gst-launch-1.0 did not start playing within 15 s: {}", failed());
    }
    std::thread::sleep(warm);
    let pid = reaper.0.id().to_string();
    let (a, before) = (Sample::of(&pid)?, counts(&files)?);
    std::thread::sleep(measure);
    let (b, after) = (Sample::of(&pid)?, counts(&files)?);
    if !matches!(reaper.0.try_wait(), Ok(None)) {
        bail!("gst-launch-1.0 ended during the run: {}", failed());
    }
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let layers: Vec<(f64, f64)> = before
        .iter()
        .zip(&after)
        .map(|(x, y)| {
            (8.0 * y.0.saturating_sub(x.0) as f64 / secs / 1000.0, y.1.saturating_sub(x.1) as f64 / secs)
        })
        .collect();
    anyhow::ensure!(layers.iter().all(|l| l.1 > 0.0), "an encoder produced no picture: {layers:?}");
    Ok(Run { cpu: a.cpu_percent_until(&b), layers })
}

/// Drains gst-launch-1.0's stdout; the receiver hears once it sets the pipeline playing.
fn playing(stdout: ChildStdout) -> Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("PLAYING") {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// (bytes, pictures) written so far into each file.
fn counts(files: &[PathBuf]) -> anyhow::Result<Vec<(u64, u64)>> {
    files
        .iter()
        .map(|f| {
            let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            Ok((data.len() as u64, pictures(&data)))
        })
        .collect()
}

/// Pictures in an H.264 byte stream: the slices (NAL types 1 and 5) that
/// start a picture, whose `first_mb_in_slice` is 0 (in Exp-Golomb, a single
/// set bit). x264 with `tune=zerolatency` cuts each picture into slices.
fn pictures(h264: &[u8]) -> u64 {
    let starts =
        h264.windows(5).filter(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1f, 1 | 5) && w[4] & 0x80 != 0);
    starts.count() as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Row {
    fn cpu(&self) -> f64 {
        median(self.runs.iter().map(|r| r.cpu).collect())
    }

    /// Median over the rounds of this row's CPU against its baseline's in the same round: (ratio, difference).
    fn against(&self, base: &Row) -> (f64, f64) {
        let pairs = self.runs.iter().zip(&base.runs);
        let ratio =
            median(pairs.clone().map(|(r, b)| if b.cpu > 0.0 { r.cpu / b.cpu } else { 0.0 }).collect());
        (ratio, median(pairs.map(|(r, b)| r.cpu - b.cpu).collect()))
    }

    fn layer(&self, i: usize) -> String {
        if i >= self.config.layers.len() {
            return "—".to_owned();
        }
        let kbps = median(self.runs.iter().filter_map(|r| r.layers.get(i).map(|l| l.0)).collect());
        let fps = median(self.runs.iter().filter_map(|r| r.layers.get(i).map(|l| l.1)).collect());
        format!("{kbps:.0} kbit/s, {fps:.1}/s")
    }
}

/// The report's section.
pub fn render(s: &mut String, g: &Simulcast) {
    let title = "## 13. What simulcast costs the sender\n";
    let (rows, (warm, measure), load) = match g {
        Simulcast::NotRun => return,
        Simulcast::NotMeasured(why) => {
            let _ = writeln!(s, "{title}\n**Not measured.** {why}.\n");
            return;
        }
        Simulcast::Measured { rows, window, load } => (rows, window, load),
    };
    let runs = match rows.first().map_or(0, |r| r.runs.len()) {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    };
    let _ = writeln!(
        s,
        "{title}\n`gst-launch-1.0` pipelines on a live test source, with the client's software encoder \
         settings (`{X264}`, behind the client's leaky one-picture queue): the source alone, one encoding, \
         and one encoding plus a second, smaller one (`videoscale` then the same encoder) on the same \
         `tee`. CPU is the process's utime+stime from `/proc` over a {:.0} s window after {:.1} s of \
         warm-up, % of one core. Each configuration ran {runs}, the rounds interleaved; the table \
         shows the median run, and the ratio and differences to the one encoding and to the source alone \
         of the same round (medians over the rounds). Each encoder writes its stream into a file: kbit/s \
         and pictures/s are what it produced in the window. Load average (1/5/15 min): {} before, {} after.\n",
        measure.as_secs_f64(),
        warm.as_secs_f64(),
        load.0,
        load.1
    );
    let _ = writeln!(
        s,
        "| Source | Capture | Encodings (kbit/s) | CPU, % of one core (each run) | Over one encoding | Added \
         to one encoding, % of one core | Less the source alone, % of one core | Main layer | Second layer |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let (w, h, fps) = row.config.capture;
        let each: Vec<String> = row.runs.iter().map(|r| format!("{:.1}", r.cpu)).collect();
        let (ratio, added) = row.against(&rows[row.base]);
        let (_, encoding) = row.against(&rows[row.alone]);
        let _ = writeln!(
            s,
            "| {} | {w}x{h}@{fps} | {} | **{:.1} %** ({}) | {ratio:.2} | {added:+.1} | {encoding:.1} | {} | {} |",
            row.config.source.name,
            row.config.encodings(),
            row.cpu(),
            each.join(", "),
            row.layer(0),
            row.layer(1)
        );
    }
    let _ = writeln!(s, "\nPipelines (run as `gst-launch-1.0 ...` in a temporary directory):\n");
    for row in rows {
        let _ = writeln!(s, "    gst-launch-1.0 {}", row.config.launch());
    }
    let _ = writeln!(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_counted_by_their_first_slice() {
        // An SPS, then an IDR picture in two slices, then a P picture in one.
        let stream = [
            &[0, 0, 0, 1, 0x67, 0x42][..],
            &[0, 0, 0, 1, 0x65, 0x88, 0x84][..],
            &[0, 0, 1, 0x65, 0x20, 0x11][..],
            &[0, 0, 0, 1, 0x41, 0x9a, 0x02][..],
        ]
        .concat();
        assert_eq!(pictures(&stream), 2);
        assert_eq!(pictures(&stream[..5]), 0);
    }

    #[test]
    fn every_group_has_its_baseline_and_every_encoder_its_file() {
        for smoke in [false, true] {
            let configs = configs(smoke);
            for c in &configs {
                assert!(configs.iter().any(|b| b.layers.len() == 1 && b.capture == c.capture));
                let launch = c.launch();
                assert_eq!(launch.matches("x264enc").count(), c.layers.len());
                assert_eq!(launch.matches("bitrate=").count(), c.layers.len(), "{launch}");
            }
        }
    }
}
