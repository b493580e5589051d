//! The budget for password checks: one per address and one for the whole
//! server, spent only by wrong guesses. Session threads wait here, in order
//! of arrival, until both budgets allow their check; nobody is ever refused.
//!
//! Why a wait and not a lockout: a lockout per address lets whoever shares
//! an address (a NAT, a campus) lock out a user who knows the password, and a
//! lockout for the server lets anyone lock out everyone. Waiting costs the
//! attacker the same (guesses per second stay bounded) while a user with the
//! right password is always let in, after at most the time the guessers
//! queued ahead of it take: at most `--max-pending-per-ip` - 1 of them from its
//! address and `--max-pending` - 1 in all, since every waiter is a connection
//! that has not logged in.
//!
//! A check takes a token from both budgets before it runs, so the waiters
//! let through at once cannot overshoot them; a right password gives both
//! tokens back, so logging in never spends the budget.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::call::TokenBucket;

/// How often a waiter looks again, besides being woken.
const POLL: Duration = Duration::from_millis(100);
/// Addresses remembered before the fully refilled ones are forgotten.
const MAX_TRACKED: usize = 10_000;

/// The sizes of the budgets.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Wrong guesses one address may make in a burst.
    pub per_ip_burst: u32,
    /// Then one every this long.
    pub per_ip_every: Duration,
    /// Wrong guesses the whole server accepts in a burst.
    pub global_burst: u32,
    /// Then one every this long.
    pub global_every: Duration,
}

impl Budgets {
    /// The defaults: per address 5, then one every 4 s; in all 20, then 4 per second.
    pub const DEFAULT: Budgets = Budgets {
        per_ip_burst: 5,
        per_ip_every: Duration::from_secs(4),
        global_burst: 20,
        global_every: Duration::from_millis(250),
    };
}

/// Permission to run one check, returned by [`Throttle::wait`].
#[derive(Debug)]
pub struct Permit {
    ip: IpAddr,
}

struct Inner {
    per_ip: HashMap<IpAddr, TokenBucket>,
    global: TokenBucket,
    /// Waiters by ticket, in order of arrival.
    queue: VecDeque<(u64, IpAddr)>,
    next_ticket: u64,
}

/// See the module documentation.
pub struct Throttle {
    inner: Mutex<Inner>,
    turn: Condvar,
    budgets: Budgets,
}

fn rate(every: Duration) -> f64 {
    1.0 / every.as_secs_f64().max(0.001)
}

impl Throttle {
    /// A throttle with full budgets.
    pub fn new(budgets: Budgets) -> Throttle {
        let global = TokenBucket::new(budgets.global_burst, rate(budgets.global_every));
        let inner = Inner { per_ip: HashMap::new(), global, queue: VecDeque::new(), next_ticket: 0 };
        Throttle { inner: Mutex::new(inner), turn: Condvar::new(), budgets }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a check from `ip` may run, taking a token from both
    /// budgets; `None` once `wanted` says the connection is gone (it is
    /// asked about every 100 ms).
    pub fn wait(&self, ip: IpAddr, wanted: &dyn Fn() -> bool) -> Option<Permit> {
        let mut inner = self.lock();
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.queue.push_back((ticket, ip));
        loop {
            let now = Instant::now();
            if self.my_turn(&mut inner, ticket, now) {
                inner.queue.retain(|(t, _)| *t != ticket);
                inner.global.take(now);
                self.bucket(&mut inner, ip).take(now);
                self.turn.notify_all();
                return Some(Permit { ip });
            }
            if !wanted() {
                inner.queue.retain(|(t, _)| *t != ticket);
                self.turn.notify_all();
                return None;
            }
            inner = self.turn.wait_timeout(inner, POLL).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Whether `ticket` is the first waiter that both budgets allow.
    fn my_turn(&self, inner: &mut Inner, ticket: u64, now: Instant) -> bool {
        if !inner.global.clone().take(now) {
            return false;
        }
        let queue: Vec<(u64, IpAddr)> = inner.queue.iter().copied().collect();
        for (t, ip) in queue {
            if self.bucket(inner, ip).clone().take(now) {
                return t == ticket;
            }
        }
        false
    }

    fn bucket<'a>(&self, inner: &'a mut Inner, ip: IpAddr) -> &'a mut TokenBucket {
        if inner.per_ip.len() >= MAX_TRACKED && !inner.per_ip.contains_key(&ip) {
            let now = Instant::now();
            inner.per_ip.retain(|_, b| !b.is_full(now));
        }
        let budgets = self.budgets;
        inner
            .per_ip
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(budgets.per_ip_burst, rate(budgets.per_ip_every)))
    }

    /// After a right password: gives back the tokens the check took.
    pub fn refund(&self, permit: Permit) {
        let mut inner = self.lock();
        inner.global.give_back();
        self.bucket(&mut inner, permit.ip).give_back();
        self.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Budgets = Budgets {
        per_ip_burst: 2,
        per_ip_every: Duration::from_millis(300),
        global_burst: 3,
        global_every: Duration::from_millis(300),
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn wrong_guesses_wait_and_right_ones_refund() {
        let t = Throttle::new(FAST);
        let start = Instant::now();
        // Two from one address at once, then the third waits for a refill.
        for _ in 0..2 {
            t.wait(ip(1), &|| true).unwrap();
        }
        let third = t.wait(ip(1), &|| true).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(250));
        // A right password gives the tokens back: the next check need not wait.
        t.refund(third);
        let before = Instant::now();
        t.wait(ip(1), &|| true).unwrap();
        assert!(before.elapsed() < Duration::from_millis(250));
    }

    #[test]
    fn the_global_budget_holds_across_addresses_and_a_gone_waiter_leaves() {
        let t = Throttle::new(FAST);
        let start = Instant::now();
        // One token left globally after these.
        for n in 1..=2 {
            t.wait(ip(n), &|| true).unwrap();
        }
        t.wait(ip(3), &|| true).unwrap();
        assert!(start.elapsed() < Duration::from_millis(250));
        // The global budget is spent: a fresh address waits too, or gives up.
        assert!(t.wait(ip(4), &|| start.elapsed() < Duration::from_millis(150)).is_none());
        t.wait(ip(5), &|| true).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(250));
    }
}
