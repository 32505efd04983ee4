//! Exponential back-off for respawns after quick failures: never blocks the loop, it
//! only says when the next spawn may happen.

use super::Nanos;

/// First delay after a quick failure.
const BASE: Nanos = 100_000_000;
/// Largest delay ("unbounded exponential back-off is not a thing").
const CAP: Nanos = 10_000_000_000;

/// Consecutive quick failures and the earliest time of the next spawn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
    pub not_before: Nanos,
    /// When the last failure happened: only a worker ready since then proves the id sound.
    pub last_failure: Nanos,
}

impl Backoff {
    /// Records a quick failure at `now`.
    pub fn failed(&mut self, now: Nanos) {
        self.failures = self.failures.saturating_add(1);
        self.not_before = now + self.delay();
        self.last_failure = now;
    }

    /// The delay after the current number of failures.
    pub fn delay(&self) -> Nanos {
        if self.failures == 0 {
            return 0;
        }
        let shift = (self.failures - 1).min(20);
        BASE.saturating_mul(1 << shift).min(CAP)
    }

    /// Whether a spawn may happen at `now`.
    pub fn allows(&self, now: Nanos) -> bool {
        now >= self.not_before
    }
}
