//! Limits against floods from logged-in users: how often a client may
//! rename itself (each rename is a `presence` line to everyone), and, for
//! rings, how often one address may ring and one callee may be rung.
//!
//! Pure bookkeeping, no I/O: the registry owns these values in its table and
//! consults them under its lock, on whichever session thread runs the command.

use std::time::Duration;

use crate::call::TokenBucket;

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

    #[test]
    fn a_flood_is_logged_once_per_episode() {
        let mut q = Quiet::default();
        assert!(q.refused());
        assert!(!q.refused());
        q.accepted();
        assert!(q.refused());
    }
}
