//! A client's call state as the server tracks it, and the `connect` rate limit.

use std::time::Instant;

use komunikator_protocol::ClientId;

use crate::room::RoomId;

/// Where a client is in a call. The registry keeps the parties consistent:
/// `Calling { callee }` on one side always pairs with `Asked { caller, room:
/// None }` on the other; `Asked { caller, room: Some(r) }` is an invitation
/// by `caller`, a member of room `r`, listed in the room; and every member of
/// a room is `InCall` with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Free to call or be called.
    Idle,
    /// This client called `callee`, which has not answered yet.
    Calling {
        /// Who is being asked.
        callee: ClientId,
        /// When the call started ringing.
        since: Instant,
    },
    /// `caller` is calling this client, or inviting it into its call, and
    /// it has not answered yet.
    Asked {
        /// Who is calling or inviting.
        caller: ClientId,
        /// When the call started ringing.
        since: Instant,
        /// The call it is invited into; `None` for a new two-party call.
        room: Option<RoomId>,
    },
    /// In call `room`; media flows between its members.
    InCall {
        /// The call.
        room: RoomId,
    },
    /// Carried to another node of the cluster, where its call lives (see
    /// `cluster`): busy here, and everything it sends goes there.
    Remote,
}

impl Call {
    /// Whether the client is free (not ringing, not in a call).
    pub fn is_idle(&self) -> bool {
        matches!(self, Call::Idle)
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, rate: f64) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        TokenBucket { tokens: burst, burst, rate, last: Instant::now() }
    }

    /// Whether the bucket has refilled completely by `now`.
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }

    /// Whether a token is there to take at `now` (takes none).
    pub fn has_token(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= 1.0
    }

    /// Returns a token taken by [`TokenBucket::take`] (never above the burst).
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(5, 1.0);
        assert_eq!((0..10).filter(|_| b.take(start)).count(), 5);
        assert!(!b.take(start + Duration::from_millis(500)));
        assert!(b.take(start + Duration::from_millis(1600)));
        assert!(!b.take(start + Duration::from_millis(1700)));
    }
}
