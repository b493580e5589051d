//! Limits against floods from logged-in users: how often a client may
//! rename itself (each rename is a `presence` line to everyone), and, for
//! rings, how often one address may ring and one callee may be rung, and
//! whom a callee has blocked. Ring limits are kept per source address, not
//! per connection, so reconnecting does not reset them.
//!
//! Pure bookkeeping, no I/O: the registry owns these values in its table and
//! consults them under its lock, on whichever session thread runs the command.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use komunikator_protocol::Target;

use crate::call::TokenBucket;

/// The ring limits, each in rings per minute (`--rings-per-*`): a burst of
/// that many, refilled evenly over the minute; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// `ask`s one callee may get from one source address.
    pub pair: u32,
    /// `ask`s one callee may get from everyone.
    pub callee: u32,
    /// Rings one source address may make, to anyone.
    pub source: u32,
}

/// A bucket allowing `n` a minute, all at once or spread out; `None` for 0 (no limit).
fn per_minute(n: u32) -> Option<TokenBucket> {
    (n > 0).then(|| bucket(n, Duration::from_secs(60) / n))
}

/// Whether an optional bucket (`None`: no limit) has a token.
fn has_token(b: Option<&Option<TokenBucket>>, now: Instant) -> bool {
    b.is_none_or(|b| b.is_none_or(|b| b.has_token(now)))
}
/// Entries a client may block.
pub const MAX_BLOCKS: usize = 100;
/// Buckets kept per table before the full (idle) ones are forgotten.
const PRUNE_AT: usize = 1024;

/// Renames a client may make at once ...
pub const RENAME_BURST: u32 = 3;
/// ... and then one per this long.
pub const RENAME_EVERY: Duration = Duration::from_secs(10);

/// A full bucket of `burst` tokens, refilled one per `every`.
pub fn bucket(burst: u32, every: Duration) -> TokenBucket {
    TokenBucket::new(burst, 1.0 / every.as_secs_f64().max(1e-3))
}

/// A client's rename limit: [`RENAME_BURST`], then one per [`RENAME_EVERY`].
pub fn renames() -> TokenBucket {
    bucket(RENAME_BURST, RENAME_EVERY)
}

/// The ring limit of every source address, kept by the registry's table.
#[derive(Debug, Default)]
pub struct Sources {
    buckets: HashMap<IpAddr, Option<TokenBucket>>,
}

/// What a client, as a callee, keeps against ring spam: how often it was
/// rung, by whom, and whom it blocked (for this connection).
#[derive(Debug)]
pub struct Callee {
    overall: Option<TokenBucket>,
    by_source: HashMap<IpAddr, Option<TokenBucket>>,
    blocked_ips: HashSet<IpAddr>,
    /// Nick keys, as the registry compares nicks.
    blocked_nicks: HashSet<String>,
}

impl Callee {
    /// Nobody rang yet, nobody blocked; `limits.callee` rings a minute.
    pub fn new(limits: RingLimits) -> Callee {
        Callee {
            overall: per_minute(limits.callee),
            by_source: HashMap::new(),
            blocked_ips: HashSet::new(),
            blocked_nicks: HashSet::new(),
        }
    }

    /// Whether the caller (address `ip`, nick key `nick`) is blocked.
    pub fn blocks(&self, ip: IpAddr, nick: Option<&str>) -> bool {
        self.blocked_ips.contains(&ip) || nick.is_some_and(|n| self.blocked_nicks.contains(n))
    }

    /// Blocks `target` (an id blocks its whole address); `key` turns a nick
    /// into the form the registry compares. False when the list is full.
    pub fn block(&mut self, target: Target<'_>, key: impl Fn(&str) -> String) -> bool {
        if self.blocked_ips.len() + self.blocked_nicks.len() >= MAX_BLOCKS {
            return false;
        }
        match target {
            Target::Id(id) => self.blocked_ips.insert(id.ip()),
            Target::Ip(ip) => self.blocked_ips.insert(ip),
            Target::Nick(nick) => self.blocked_nicks.insert(key(nick)),
        };
        true
    }

    /// Undoes [`Callee::block`] for the same target; nothing if it was not blocked.
    pub fn unblock(&mut self, target: Target<'_>, key: impl Fn(&str) -> String) {
        match target {
            Target::Id(id) => self.blocked_ips.remove(&id.ip()),
            Target::Ip(ip) => self.blocked_ips.remove(&ip),
            Target::Nick(nick) => self.blocked_nicks.remove(&key(nick)),
        };
    }
}

/// Why a ring was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The callee blocked the caller: answered like a busy callee.
    Blocked,
    /// A limit was reached; the text says which.
    Limited(&'static str),
}

/// Decides whether a caller at `ip` with nick key `nick` may ring `callee`
/// now; if so, counts the ring against every limit.
///
/// # Errors
/// The [`Refusal`]; nothing is counted then.
pub fn admit_ring(
    limits: RingLimits,
    sources: &mut Sources,
    callee: &mut Callee,
    (ip, nick): (IpAddr, Option<&str>),
    now: Instant,
) -> Result<(), Refusal> {
    if callee.blocks(ip, nick) {
        return Err(Refusal::Blocked);
    }
    if !has_token(sources.buckets.get(&ip), now) {
        return Err(Refusal::Limited("too many calls from your address; wait a minute"));
    }
    if !has_token(Some(&callee.overall), now) {
        return Err(Refusal::Limited("this client is being called too often; try later"));
    }
    if !has_token(callee.by_source.get(&ip), now) {
        return Err(Refusal::Limited("too many calls to this client from your address; wait a minute"));
    }
    prune(&mut sources.buckets, now, PRUNE_AT);
    prune(&mut callee.by_source, now, limits.callee.clamp(16, PRUNE_AT as u32) as usize);
    let buckets = [
        sources.buckets.entry(ip).or_insert_with(|| per_minute(limits.source)),
        callee.by_source.entry(ip).or_insert_with(|| per_minute(limits.pair)),
        &mut callee.overall,
    ];
    for b in buckets.into_iter().flatten() {
        b.take(now);
    }
    Ok(())
}

/// Forgets buckets that have refilled (they mean nothing) once there are `at` of them.
fn prune(buckets: &mut HashMap<IpAddr, Option<TokenBucket>>, now: Instant, at: usize) {
    if buckets.len() >= at {
        buckets.retain(|_, b| b.is_some_and(|b| !b.is_full(now)));
    }
}

/// Refused floods are logged once per episode, not once per command: the
/// log would otherwise grow with the flood.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet {
    refusing: bool,
}

impl Quiet {
    /// Whether a refusal should be logged: only the first since the last
    /// accepted command.
    pub fn refused(&mut self) -> bool {
        !std::mem::replace(&mut self.refusing, true)
    }

    /// A command was accepted: the next refusal is logged again.
    pub fn accepted(&mut self) {
        self.refusing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn renames_burst_then_one_per_ten_seconds() {
        let start = Instant::now();
        let mut b = renames();
        assert_eq!((0..10).filter(|_| b.take(start)).count(), 3);
        assert!(!b.take(start + Duration::from_secs(9)));
        assert!(b.take(start + Duration::from_secs(11)));
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    const LIMITS: RingLimits = RingLimits { pair: 5, callee: 20, source: 30 };

    fn ring(
        sources: &mut Sources,
        callee: &mut Callee,
        from: u8,
        nick: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        admit_ring(LIMITS, sources, callee, (ip(from), nick), now)
    }

    #[test]
    fn rings_are_limited_per_pair_then_per_callee_then_per_source() {
        let now = Instant::now();
        let mut sources = Sources::default();
        let mut callee = Callee::new(LIMITS);
        let admitted = (0..10).filter(|_| ring(&mut sources, &mut callee, 1, None, now).is_ok());
        assert_eq!(admitted.count(), 5);
        // Other addresses still get through, up to the callee's overall limit.
        let others = (2..=100).filter(|i| ring(&mut sources, &mut callee, *i, None, now).is_ok());
        assert_eq!(others.count(), 20 - 5);
        // One address ringing many callees hits its own limit, refilled one per 2 s.
        let mut sources = Sources::default();
        let rung = (0..100).filter(|_| ring(&mut sources, &mut Callee::new(LIMITS), 1, None, now).is_ok());
        assert_eq!(rung.count(), 30);
        let later = now + Duration::from_millis(2100);
        assert!(ring(&mut sources, &mut Callee::new(LIMITS), 1, None, later).is_ok());
        // 0 is no limit.
        let off = RingLimits { pair: 0, callee: 0, source: 0 };
        let mut callee = Callee::new(off);
        assert!((0..1000).all(|_| admit_ring(off, &mut sources, &mut callee, (ip(7), None), now).is_ok()));
    }

    #[test]
    fn blocks_by_address_or_nick_count_nothing() {
        let now = Instant::now();
        let (mut sources, mut callee) = (Sources::default(), Callee::new(LIMITS));
        let key = |n: &str| n.to_lowercase();
        assert!(callee.block(Target::Nick("Ala"), key));
        assert!(callee.block(Target::Id("127.0.0.9:5".parse().unwrap()), key));
        let blocked = Err(Refusal::Blocked);
        assert_eq!(ring(&mut sources, &mut callee, 1, Some("ala"), now), blocked);
        assert_eq!(ring(&mut sources, &mut callee, 9, Some("bob"), now), blocked);
        assert!(sources.buckets.is_empty(), "a blocked ring counts nothing");
        callee.unblock(Target::Ip(ip(9)), key);
        assert_eq!(ring(&mut sources, &mut callee, 9, Some("bob"), now), Ok(()));
        let mut full = Callee::new(LIMITS);
        assert_eq!((0..=255).filter(|i| full.block(Target::Ip(ip(*i)), key)).count(), MAX_BLOCKS);
    }

    #[test]
    fn a_flood_is_logged_once_per_episode() {
        let mut q = Quiet::default();
        assert!(q.refused());
        assert!(!q.refused());
        q.accepted();
        assert!(q.refused());
    }
}
