//! PURE: the pool's state, the recycle policy and the planner.
//!
//! Nothing here performs I/O or reads a clock: time comes in as monotonic nanoseconds,
//! observations come in as plain numbers, and [`Action`]s go out. The master applies
//! them. This keeps every decision unit-testable without processes (see `tests.rs`).
//!
//! Reconcile, do not command: a reload or a recycle only *marks* workers; each call to
//! [`Pool::plan`] compares the pool with what it should be (N serving workers, at most K
//! recycles in flight, every stop with a deadline) and emits the actions that close the gap.

mod backoff;
mod plan;
mod policy;
mod reason;
pub mod rules;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use plan::{ExitReport, Pool, Shutdown, Thresholds};
pub use reason::{mb, ExitKind, Reason, EXIT_APP_LOAD, EXIT_ORPHAN};
pub use rules::{Metric, PoolLimits, PoolRule};

use std::time::Duration;

/// Monotonic time in nanoseconds.
pub type Nanos = u64;

/// Converts a duration to nanoseconds, saturating.
pub fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The order of a planned recycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    ReplaceFirst,
    RetireFirst,
}

/// The limits the planner enforces (a projection of the config).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_requests: Option<u64>,
    pub max_requests_delta: u64,
    pub max_requests_jitter: u64,
    pub max_lifetime: Option<Duration>,
    pub max_lifetime_delta: Duration,
    pub reload_on_rss: Option<u64>,
    /// Graceful recycle when a worker's PSS (its tree's, estimated between smaps reads) reaches this.
    pub reload_on_pss: Option<u64>,
    /// Graceful recycle when a worker's USS reaches this.
    pub reload_on_uss: Option<u64>,
    pub evil_reload_on_rss: Option<u64>,
    /// Pool-wide memory rules (monit's `totalmem`), thresholds already in bytes.
    pub pool: PoolLimits,
    pub min_lifetime: Duration,
    pub harakiri: Option<Duration>,
    pub mercy: Duration,
    pub max_recycles: usize,
    pub order: Order,
    pub boot_timeout: Duration,
    pub max_boot_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_requests: None,
            max_requests_delta: 0,
            max_requests_jitter: 0,
            max_lifetime: None,
            max_lifetime_delta: Duration::ZERO,
            reload_on_rss: None,
            reload_on_pss: None,
            reload_on_uss: None,
            evil_reload_on_rss: None,
            pool: PoolLimits::default(),
            min_lifetime: Duration::ZERO,
            harakiri: None,
            mercy: Duration::from_secs(60),
            max_recycles: 1,
            order: Order::ReplaceFirst,
            boot_timeout: Duration::from_secs(60),
            max_boot_failures: 5,
        }
    }
}

/// What the master last measured or read for one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    /// Requests served (scoreboard).
    pub requests: u64,
    /// The worker reports it is loaded and accepting (scoreboard).
    pub ready: bool,
    /// The worker asked to be recycled for max-requests (scoreboard flag).
    pub wants_max_requests: bool,
    /// The worker measured itself over reload-on-rss and stopped accepting (scoreboard flag).
    pub wants_rss: bool,
    /// Start of the oldest running request (monotonic ns), if busy.
    pub busy_since: Option<Nanos>,
    /// The worker crossed the pool memory lease the master gave it and stopped accepting
    /// (scoreboard flag).
    pub wants_pool: bool,
    /// Resident memory in bytes, measured by the master from /proc.
    pub rss: Option<u64>,
    /// Proportional set size in bytes (smaps_rollup, sampled less often than RSS).
    pub pss: Option<u64>,
    /// Unique set size in bytes: Private_Clean + Private_Dirty (smaps_rollup).
    pub uss: Option<u64>,
    /// The RSS read together with `pss`/`uss`, to estimate them between smaps reads.
    pub smaps_rss: Option<u64>,
}

impl Observation {
    /// This worker's memory by `metric`. PSS and USS are read less often than RSS
    /// (smaps_rollup walks page tables); between reads they are estimated as the last
    /// reading plus the RSS change since, which is exact for private growth (a leak)
    /// and errs high for shared pages.
    pub fn memory(&self, metric: Metric) -> Option<u64> {
        let measured = match metric {
            Metric::Rss => return self.rss,
            Metric::Pss => self.pss?,
            Metric::Uss => self.uss?,
        };
        let (Some(now), Some(then)) = (self.rss, self.smaps_rss) else {
            return Some(measured);
        };
        let moved = now as i128 - then as i128;
        Some((measured as i128 + moved).clamp(0, u64::MAX as i128) as u64)
    }
}

/// What a worker is doing, from the master's point of view (authoritative, private).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Forked; not yet ready.
    Booting,
    /// Ready and accepting.
    Serving,
    /// Must be recycled; keeps serving until its successor is ready.
    Retiring {
        reason: Reason,
        successor: Option<i32>,
    },
    /// Told to stop (SIGTERM); SIGKILL when the deadline passes.
    Draining { reason: Reason, deadline: Nanos },
    /// SIGKILL sent; waiting to be reaped.
    Killed { reason: Reason },
}

/// One worker process, as the master knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Position in the pool, 1..=N; a replacement takes its predecessor's id.
    pub id: u32,
    pub pid: i32,
    /// Scoreboard slot index.
    pub slot: usize,
    /// Spawn sequence number.
    pub generation: u64,
    pub spawned_at: Nanos,
    pub ready_at: Option<Nanos>,
    /// This worker's max-requests threshold (base + delta + jitter).
    pub max_requests: Option<u64>,
    /// This worker's lifetime threshold (base + delta).
    pub max_lifetime: Option<Duration>,
    pub phase: Phase,
    pub obs: Observation,
    /// A pool-wide respawn (USR1/HUP) asked for this worker's replacement.
    pub respawn: Option<Reason>,
    /// Its memory (pool metric) at the first sample after it became ready: what a fresh
    /// worker costs, the room a replacement needs.
    pub fresh_memory: Option<u64>,
    /// The RSS ceiling last leased to it under the pool soft limit.
    pub lease: Option<u64>,
}

impl Worker {
    /// True while the worker holds its id (it serves or will serve).
    pub fn holds_id(&self) -> bool {
        matches!(
            self.phase,
            Phase::Booting | Phase::Serving | Phase::Retiring { .. }
        )
    }
}

/// What the master must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fork a worker for `id`; `replaces` names the pid it will take over from.
    Spawn { id: u32, replaces: Option<i32> },
    /// Ask a worker to stop gracefully (SIGTERM), with the reason for the log.
    Stop { id: u32, pid: i32, reason: Reason },
    /// Kill a worker's process group at once (SIGKILL), with the reason for the log.
    Kill { id: u32, pid: i32, reason: Reason },
    /// Run `pool-soft-exec` (without waiting for it), with the reason for the log.
    Exec { command: String, reason: Reason },
    /// Every worker is gone: leave with this outcome.
    Exit(Outcome),
}

/// How molt ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Clean shutdown.
    Clean,
    /// No worker could start.
    BootFailure(String),
}
