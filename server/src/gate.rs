//! Connections that have not logged in yet ("pending"): the login grace
//! period and the caps on how many may wait, per address and in all.
//!
//! A connection is pending from accept until it logs in: on a password
//! server, a correct `auth`; on an open server, when it is greeted with
//! `hello` (right after the TLS handshake, or at once in plain text). An
//! open server cannot tell an idle attacker from an idle user waiting for a
//! call, so it only bounds handshakes here; `--max-per-ip` and
//! `--max-clients` bound the rest.
//! The accept loop (main thread) admits connections, making room by
//! evicting the oldest pending connection of the address with the most;
//! the housekeeping thread expires those past the grace period; the
//! session thread takes its connection out when it logs in or ends.
//!
//! Evicting or expiring a connection records why in its [`Pending`] and
//! shuts down the reading half of its socket. The session thread then sees
//! end of input, and answers `error full` or `error timeout` (the writing half
//! still works) before closing. Each entry holds a clone of the socket, so a
//! shutdown can never reach a descriptor number that was closed and reused.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What happened to a pending connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still waiting, or logged in.
    Waiting,
    /// It did not log in within the grace period.
    TimedOut,
    /// It was dropped to make room for a newer connection.
    Evicted,
}

/// A session's handle on its pending entry.
#[derive(Debug)]
pub struct Pending {
    token: u64,
    fate: Arc<AtomicU8>,
}

impl Pending {
    /// A handle for a connection that is never in the gate (a plain-text
    /// connection to an open server is logged in the moment it is accepted).
    pub fn detached() -> Pending {
        Pending { token: u64::MAX, fate: Arc::new(AtomicU8::new(0)) }
    }

    /// Whether the connection was evicted or timed out, and which.
    pub fn fate(&self) -> Fate {
        match self.fate.load(Ordering::SeqCst) {
            1 => Fate::TimedOut,
            2 => Fate::Evicted,
            _ => Fate::Waiting,
        }
    }
}

struct Entry {
    ip: IpAddr,
    since: Instant,
    socket: TcpStream,
    fate: Arc<AtomicU8>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// By token, so in order of arrival.
    entries: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The pending connections. See the module documentation.
pub struct Gate {
    inner: Mutex<Inner>,
    grace: Duration,
    max: usize,
    max_per_ip: usize,
}

impl Gate {
    /// A gate closing connections that have not logged in within `grace`,
    /// with at most `max` pending in all and `max_per_ip` from one address
    /// (each at least 1).
    pub fn new(grace: Duration, max: usize, max_per_ip: usize) -> Gate {
        Gate { inner: Mutex::default(), grace, max: max.max(1), max_per_ip: max_per_ip.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The login grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Admits a new connection from `ip`, evicting older pending ones if a
    /// cap is reached: the oldest from the same address when that address
    /// is at its cap, else the oldest from the address with the most.
    ///
    /// # Errors
    /// When the socket cannot be cloned (out of descriptors).
    pub fn admit(&self, ip: IpAddr, socket: &TcpStream) -> io::Result<Pending> {
        let socket = socket.try_clone()?;
        let mut inner = self.lock();
        if inner.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            evict_oldest_of(&mut inner, ip);
        }
        if inner.entries.len() >= self.max {
            let crowded = inner.per_ip.iter().max_by_key(|(_, n)| **n).map(|(ip, _)| *ip);
            if let Some(crowded) = crowded {
                evict_oldest_of(&mut inner, crowded);
            }
        }
        let token = inner.next;
        inner.next += 1;
        let fate = Arc::new(AtomicU8::new(0));
        inner.entries.insert(token, Entry { ip, since: Instant::now(), socket, fate: Arc::clone(&fate) });
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Pending { token, fate })
    }

    /// Takes a connection out: it logged in, or its session ended.
    pub fn remove(&self, pending: &Pending) {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.remove(&pending.token) {
            release(&mut inner, entry.ip);
        }
    }

    /// Closes the connections pending for longer than the grace period.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.lock();
        let expired: Vec<u64> = inner
            .entries
            .iter()
            .take_while(|(_, e)| now.saturating_duration_since(e.since) >= self.grace)
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            close(&mut inner, token, Fate::TimedOut);
        }
    }

    /// How many connections are pending.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict_oldest_of(inner: &mut Inner, ip: IpAddr) {
    let oldest = inner.entries.iter().find(|(_, e)| e.ip == ip).map(|(token, _)| *token);
    if let Some(token) = oldest {
        close(inner, token, Fate::Evicted);
    }
}

/// Records `fate` and shuts the reading half, so the session ends and says why.
fn close(inner: &mut Inner, token: u64, fate: Fate) {
    let Some(entry) = inner.entries.remove(&token) else { return };
    let code = if fate == Fate::TimedOut { 1 } else { 2 };
    entry.fate.store(code, Ordering::SeqCst);
    let _ = entry.socket.shutdown(Shutdown::Read);
    if let Ok(peer) = entry.socket.peer_addr() {
        let why = if fate == Fate::TimedOut { "did not log in in time" } else { "evicted, too many waiting" };
        crate::log!(Info, "{peer}: {why}");
    }
    release(inner, entry.ip);
}

fn release(inner: &mut Inner, ip: IpAddr) {
    if let Some(n) = inner.per_ip.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.per_ip.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn socket() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn the_crowded_address_makes_room_and_the_grace_period_expires() {
        let gate = Gate::new(Duration::from_secs(10), 3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let sockets: Vec<_> = (0..5).map(|_| socket()).collect();
        let a1 = gate.admit(a, &sockets[0].0).unwrap();
        let a2 = gate.admit(a, &sockets[1].0).unwrap();
        // Per address: a third from `a` evicts the oldest from `a`.
        let a3 = gate.admit(a, &sockets[2].0).unwrap();
        assert_eq!(a1.fate(), Fate::Evicted);
        let b1 = gate.admit(b, &sockets[3].0).unwrap();
        // In all: room is made at the most crowded address, not at `b`.
        let b2 = gate.admit(b, &sockets[4].0).unwrap();
        assert_eq!(a2.fate(), Fate::Evicted);
        assert_eq!((a3.fate(), b1.fate(), b2.fate()), (Fate::Waiting, Fate::Waiting, Fate::Waiting));
        assert_eq!(gate.len(), 3);
        gate.remove(&b1);
        gate.expire(Instant::now() + Duration::from_secs(11));
        assert_eq!((a3.fate(), b2.fate()), (Fate::TimedOut, Fate::TimedOut));
        assert!(gate.is_empty());
    }
}
