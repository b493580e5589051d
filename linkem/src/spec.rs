//! What a link looks like: per direction a rate, a one-way delay, a
//! bottleneck queue bound and a schedule of changes ([`Shape`]), both
//! directions together ([`LinkSpec`]), and the compact text form the CLI and
//! benchmarks use. Pure data and parsing: no sockets, no threads.
//!
//! Text form of one direction (case-insensitive, items separated by commas):
//!
//! ```text
//! unlimited
//! 500kbit,delay=100ms,queue=200ms,at=10s:300kbit,at=30s:2mbit:delay=20ms
//! ```
//!
//! * a rate: `500kbit`, `2mbit`, `500` (kbit/s) or `unlimited`;
//! * `delay=DUR`: one-way delay added to every byte (`ms` or `s`);
//! * `queue=DUR` (the bottleneck buffer in time at the first rate) or
//!   `queue=BYTES` (`b`, `kb`/`kib` = 1024, `mb`/`mib`);
//! * `at=DUR:CHANGE[:CHANGE]`: from that time since the link started, a new
//!   rate and/or `delay=DUR`.

use std::fmt;
use std::time::Duration;

/// The bottleneck queue bound when a shape does not give one.
pub const DEFAULT_QUEUE: Queue = Queue::Time(Duration::from_millis(100));

/// The queue bound in bytes for an unlimited rate given a time bound.
const UNLIMITED_QUEUE_BYTES: usize = 256 * 1024;

/// The smallest queue bound: one packet.
const MIN_QUEUE_BYTES: usize = 1500;

/// How the bottleneck buffer is bounded, like a home router's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// A byte count.
    Bytes(usize),
    /// The bytes that drain in this time at the shape's first rate (a buffer
    /// is memory: when the rate drops later, the same bytes take longer).
    Time(Duration),
}

/// A change of a direction's shape at a time since the link started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// When, counted from [`crate::Link::start`].
    pub at: Duration,
    /// The new rate in kbit/s (0: unlimited), or `None` to keep it.
    pub kbps: Option<u32>,
    /// The new one-way delay, or `None` to keep it.
    pub delay: Option<Duration>,
}

/// One direction of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The rate in kbit/s (1 kbit = 1000 bits); 0 means unlimited.
    pub kbps: u32,
    /// One-way delay added to every byte.
    pub delay: Duration,
    /// The bottleneck buffer's bound.
    pub queue: Queue,
    /// Changes, in any order (the latest one whose `at` has passed rules).
    pub schedule: Vec<Step>,
}

/// Both directions: `up` is client to server, `down` server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// Client to server.
    pub up: Shape,
    /// Server to client.
    pub down: Shape,
}

/// Why a spec text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An item is not a rate, `delay=`, `queue=` or `at=`.
    #[error("unknown item {0:?} (expected a rate like 500kbit, delay=, queue= or at=)")]
    UnknownItem(String),
    /// A rate is not a number with `kbit`, `mbit` or no unit, nor `unlimited`.
    #[error("bad rate {0:?} (expected e.g. 500kbit, 2mbit or unlimited)")]
    Rate(String),
    /// A duration is not a number with `ms` or `s`.
    #[error("bad duration {0:?} (expected e.g. 100ms or 10s)")]
    Duration(String),
    /// A queue bound is neither a duration nor a byte count.
    #[error("bad queue {0:?} (expected e.g. 200ms or 64kb)")]
    Queue(String),
    /// An `at=` item has no change after its time.
    #[error("bad step {0:?} (expected e.g. at=10s:300kbit or at=10s:delay=50ms)")]
    Step(String),
}

impl Shape {
    /// No rate limit, no delay.
    pub fn unlimited() -> Shape {
        Shape::kbps(0)
    }

    /// A rate in kbit/s (0: unlimited), no delay, the default queue.
    pub fn kbps(kbps: u32) -> Shape {
        Shape { kbps, delay: Duration::ZERO, queue: DEFAULT_QUEUE, schedule: Vec::new() }
    }

    /// The same with this one-way delay.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Shape {
        self.delay = delay;
        self
    }

    /// The same with this queue bound.
    #[must_use]
    pub fn with_queue(mut self, queue: Queue) -> Shape {
        self.queue = queue;
        self
    }

    /// The same with a rate change (kbit/s, 0: unlimited) at `at`.
    #[must_use]
    pub fn then_at(mut self, at: Duration, kbps: u32) -> Shape {
        self.schedule.push(Step { at, kbps: Some(kbps), delay: None });
        self
    }

    /// The rate (kbit/s, 0: unlimited) and delay in force `elapsed` after
    /// the link started.
    pub fn at(&self, elapsed: Duration) -> (u32, Duration) {
        // The latest passed step that sets each; no allocation (the sender
        // thread asks before every release).
        let mut kbps = (Duration::ZERO, self.kbps);
        let mut delay = (Duration::ZERO, self.delay);
        for s in self.schedule.iter().filter(|s| s.at <= elapsed) {
            if let Some(k) = s.kbps.filter(|_| s.at >= kbps.0) {
                kbps = (s.at, k);
            }
            if let Some(d) = s.delay.filter(|_| s.at >= delay.0) {
                delay = (s.at, d);
            }
        }
        (kbps.1, delay.1)
    }

    /// The queue bound in bytes (at least one 1500-byte packet). A time
    /// bound is converted at the first rate; with no rate it is 256 KiB.
    pub fn queue_bytes(&self) -> usize {
        let bytes = match self.queue {
            Queue::Bytes(b) => b,
            Queue::Time(_) if self.kbps == 0 => UNLIMITED_QUEUE_BYTES,
            Queue::Time(t) => (f64::from(self.kbps) * 125.0 * t.as_secs_f64()) as usize,
        };
        bytes.max(MIN_QUEUE_BYTES)
    }

    /// Whether any delay is asked for, now or by a step.
    pub fn has_delay(&self) -> bool {
        !self.delay.is_zero() || self.schedule.iter().any(|s| s.delay.is_some_and(|d| !d.is_zero()))
    }

    /// Whether it shapes nothing at all (unlimited, no delay, ever).
    pub fn is_unlimited(&self) -> bool {
        self.kbps == 0 && !self.has_delay() && self.schedule.iter().all(|s| s.kbps.is_none_or(|k| k == 0))
    }
}

impl LinkSpec {
    /// The same shape both ways.
    pub fn symmetric(shape: Shape) -> LinkSpec {
        LinkSpec { up: shape.clone(), down: shape }
    }

    /// Parses the text form of each direction (see the module documentation).
    ///
    /// # Errors
    /// [`SpecError`] naming the first bad item.
    pub fn parse(up: &str, down: &str) -> Result<LinkSpec, SpecError> {
        Ok(LinkSpec { up: up.parse()?, down: down.parse()? })
    }

    /// Whether any delay is asked for in either direction.
    pub fn has_delay(&self) -> bool {
        self.up.has_delay() || self.down.has_delay()
    }
}

impl std::str::FromStr for Shape {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Shape, SpecError> {
        let mut shape = Shape::unlimited();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let lower = item.to_ascii_lowercase();
            if let Some(d) = lower.strip_prefix("delay=") {
                shape.delay = parse_duration(d)?;
            } else if let Some(q) = lower.strip_prefix("queue=") {
                shape.queue = parse_queue(q)?;
            } else if let Some(s) = lower.strip_prefix("at=") {
                shape.schedule.push(parse_step(s, item)?);
            } else if lower.starts_with(|c: char| c.is_ascii_digit()) || lower == "unlimited" {
                shape.kbps = parse_rate(&lower)?;
            } else {
                return Err(SpecError::UnknownItem(item.to_owned()));
            }
        }
        Ok(shape)
    }
}

fn parse_step(text: &str, item: &str) -> Result<Step, SpecError> {
    let mut parts = text.split(':');
    let at = parse_duration(parts.next().unwrap_or(""))?;
    let mut step = Step { at, kbps: None, delay: None };
    for part in parts {
        match part.strip_prefix("delay=") {
            Some(d) => step.delay = Some(parse_duration(d)?),
            None => step.kbps = Some(parse_rate(part)?),
        }
    }
    if step.kbps.is_none() && step.delay.is_none() {
        return Err(SpecError::Step(item.to_owned()));
    }
    Ok(step)
}

/// Splits `123.5unit` into the number and the unit.
fn number(text: &str) -> Option<(f64, &str)> {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let n: f64 = text[..end].parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n, text[end..].trim()))
}

fn parse_rate(text: &str) -> Result<u32, SpecError> {
    if text == "unlimited" {
        return Ok(0);
    }
    let bad = || SpecError::Rate(text.to_owned());
    let (n, unit) = number(text).ok_or_else(bad)?;
    let kbps = match unit {
        "" | "k" | "kbit" | "kbps" | "kbit/s" => n,
        "m" | "mbit" | "mbps" | "mbit/s" => n * 1000.0,
        _ => return Err(bad()),
    };
    if kbps < 1.0 || kbps > f64::from(u32::MAX) {
        return Err(bad());
    }
    Ok(kbps.round() as u32)
}

fn parse_duration(text: &str) -> Result<Duration, SpecError> {
    let bad = || SpecError::Duration(text.to_owned());
    let (n, unit) = number(text).ok_or_else(bad)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

fn parse_queue(text: &str) -> Result<Queue, SpecError> {
    if let Ok(d) = parse_duration(text) {
        return Ok(Queue::Time(d));
    }
    let bad = || SpecError::Queue(text.to_owned());
    let (n, unit) = number(text).ok_or_else(bad)?;
    let scale = match unit {
        "b" | "" => 1.0,
        "kb" | "kib" | "k" => 1024.0,
        "mb" | "mib" | "m" => 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    Ok(Queue::Bytes((n * scale) as usize))
}

impl fmt::Display for Shape {
    /// The text form, parseable again (the default queue is left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |k: u32| if k == 0 { "unlimited".to_owned() } else { format!("{k}kbit") };
        write!(f, "{}", rate(self.kbps))?;
        if !self.delay.is_zero() {
            write!(f, ",delay={}ms", self.delay.as_millis())?;
        }
        match self.queue {
            q if q == DEFAULT_QUEUE => {}
            Queue::Bytes(b) => write!(f, ",queue={b}b")?,
            Queue::Time(t) => write!(f, ",queue={}ms", t.as_millis())?,
        }
        for s in &self.schedule {
            write!(f, ",at={}ms", s.at.as_millis())?;
            if let Some(k) = s.kbps {
                write!(f, ":{}", rate(k))?;
            }
            if let Some(d) = s.delay {
                write!(f, ":delay={}ms", d.as_millis())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_the_full_form() {
        let s: Shape =
            "500kbit,delay=100ms,queue=200ms,at=10s:300kbit,at=30s:2mbit:delay=20ms".parse().unwrap();
        assert_eq!(s.kbps, 500);
        assert_eq!(s.delay, ms(100));
        assert_eq!(s.queue, Queue::Time(ms(200)));
        assert_eq!(s.queue_bytes(), 12_500);
        assert_eq!(s.at(ms(9_999)), (500, ms(100)));
        assert_eq!(s.at(ms(10_000)), (300, ms(100)));
        assert_eq!(s.at(ms(31_000)), (2000, ms(20)));
        assert_eq!(s.to_string().parse::<Shape>().unwrap(), s);
    }

    #[test]
    fn unlimited_and_units() {
        let s: Shape = "unlimited".parse().unwrap();
        assert!(s.is_unlimited());
        assert_eq!(s, Shape::unlimited());
        assert_eq!("2000".parse::<Shape>().unwrap().kbps, 2000);
        assert_eq!("1.5Mbit,queue=64kb".parse::<Shape>().unwrap().queue, Queue::Bytes(65_536));
        assert_eq!("300,at=1s:delay=50ms".parse::<Shape>().unwrap().at(ms(1500)), (300, ms(50)));
        assert_eq!("300,queue=1b".parse::<Shape>().unwrap().queue_bytes(), 1500);
    }

    #[test]
    fn steps_in_any_order() {
        let s = Shape::kbps(2000).then_at(ms(30_000), 2000).then_at(ms(10_000), 300);
        assert_eq!(s.at(ms(20_000)).0, 300);
        assert_eq!(s.at(ms(40_000)).0, 2000);
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["fast", "500gbit", "delay=5", "queue=lots", "at=10s", "at=x:300", "-5kbit", "0kbit"] {
            assert!(bad.parse::<Shape>().is_err(), "{bad} parsed");
        }
    }
}
