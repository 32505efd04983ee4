//! Pool-wide memory rules, in monit's spirit (`if totalmem > 70% then exec ...`,
//! `if totalmem > 85% for 2 cycles then restart`), built in and pure.
//!
//! Input: each worker's memory by the chosen [`Metric`], the rules with their thresholds
//! already in bytes, and how many consecutive checks each rule has held. Output: at most
//! one [`Decision`] per check. The pool calls [`check`] only when no memory action is in
//! flight and a fresh sample was taken after the last one ended, so two rules (or a rule
//! and a per-worker limit) never act on the same excess.
//!
//! Between checks, [`leases`] splits the soft limit's headroom into per-worker RSS
//! ceilings that each worker enforces itself after every request: a leak driven by
//! requests then passes the soft limit by at most one request's growth per worker, however
//! fast it is, without the master sampling faster.

use std::fmt;
use std::time::Duration;

use super::Reason;

/// Which memory figure a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Resident set size (statm): cheap; counts pages shared after fork once per worker.
    #[default]
    Rss,
    /// Proportional set size (smaps_rollup): shared pages divided among their sharers.
    Pss,
    /// Unique set size (smaps_rollup Private_Clean + Private_Dirty): what exiting frees.
    Uss,
}

impl Metric {
    /// The name used in options and logs.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::Pss => "pss",
            Metric::Uss => "uss",
        }
    }

    /// PSS and USS need smaps_rollup; RSS does not.
    pub fn needs_smaps(self) -> bool {
        self != Metric::Rss
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pool threshold in bytes that must hold for `cycles` consecutive checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRule {
    pub limit: u64,
    pub cycles: u32,
}

/// The pool rules in force (a projection of the config, percentages resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolLimits {
    /// The figure summed over workers (`pool-metric`).
    pub metric: Metric,
    /// Over this, recycle the largest worker gracefully (`pool-soft-limit`).
    pub soft: Option<PoolRule>,
    /// Over this for `cycles` checks, restart every worker (`pool-hard-limit`), unless
    /// recycling the largest one alone brings the pool back under it.
    pub hard: Option<PoolRule>,
    /// Run (by the master, not waited for) each time the soft limit recycles a worker.
    pub soft_exec: Option<String>,
    /// How often the rules are checked (`pool-check-interval`).
    pub check_every: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            metric: Metric::Rss,
            soft: None,
            hard: None,
            soft_exec: None,
            check_every: Duration::from_secs(1),
        }
    }
}

impl PoolLimits {
    /// True when any pool rule is configured.
    pub fn active(&self) -> bool {
        self.soft.is_some() || self.hard.is_some()
    }

    /// The lowest pool limit: the room that an extra worker must fit in.
    pub fn budget(&self) -> Option<u64> {
        [self.soft, self.hard]
            .iter()
            .flatten()
            .map(|r| r.limit)
            .min()
    }
}

/// What one check measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Sum of the metric over every worker process (booting and draining included).
    pub total: u64,
    /// The largest serving worker: (pid, memory).
    pub largest: Option<(i32, u64)>,
    /// What a fresh worker costs (its memory at the first sample after ready).
    pub fresh: u64,
}

impl Census {
    /// The total if the largest worker were replaced by a fresh one.
    fn without_largest(&self) -> u64 {
        let largest = self.largest.map_or(0, |(_, m)| m);
        self.total.saturating_sub(largest) + self.fresh
    }
}

/// Consecutive checks each rule has held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Streaks {
    pub soft: u32,
    pub hard: u32,
}

/// What a check decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Recycle this one worker gracefully; `exec` runs `pool-soft-exec`.
    Recycle {
        pid: i32,
        reason: Reason,
        exec: bool,
    },
    /// Restart every worker gracefully: no single recycle brings the pool under the limit.
    RestartAll(Reason),
}

/// One check: updates the streaks and decides at most one action. The hard rule is
/// weighed first (it is the bigger excess), but it recycles one worker, not the pool,
/// when that alone brings the total back under its limit.
pub fn check(limits: &PoolLimits, census: &Census, streaks: &mut Streaks) -> Option<Decision> {
    streaks.soft = next_streak(limits.soft, census.total, streaks.soft);
    streaks.hard = next_streak(limits.hard, census.total, streaks.hard);
    if let Some(rule) = limits.hard.filter(|r| streaks.hard >= r.cycles.max(1)) {
        streaks.hard = 0;
        let reason = Reason::PoolHard {
            total: census.total,
            limit: rule.limit,
            cycles: rule.cycles.max(1),
        };
        return match census.largest {
            Some((pid, _)) if census.without_largest() <= rule.limit => Some(Decision::Recycle {
                pid,
                reason,
                exec: false,
            }),
            _ => Some(Decision::RestartAll(reason)),
        };
    }
    let rule = limits.soft.filter(|r| streaks.soft >= r.cycles.max(1))?;
    let (pid, _) = census.largest?;
    streaks.soft = 0;
    Some(Decision::Recycle {
        pid,
        reason: Reason::PoolSoft {
            total: census.total,
            limit: rule.limit,
        },
        exec: limits.soft_exec.is_some(),
    })
}

fn next_streak(rule: Option<PoolRule>, total: u64, streak: u32) -> u32 {
    match rule {
        Some(r) if total > r.limit => streak.saturating_add(1),
        _ => 0,
    }
}

/// Whether one more worker fits under every pool limit (no rule means it fits). When it
/// does not, recycles retire the old worker before spawning its replacement.
pub fn room_for_one_more(limits: &PoolLimits, census: &Census) -> bool {
    limits
        .budget()
        .is_none_or(|budget| census.total + census.fresh <= budget)
}

/// Per-worker RSS ceilings that keep the pool under the soft limit between checks.
///
/// `serving` lists (slot, current RSS). The headroom (soft limit minus the total minus
/// one fresh worker, the replacement a crossing will start) is split evenly; a worker
/// whose RSS reaches `RSS now + its share` stops accepting after that request. Growth is
/// measured in RSS because that is what a worker can read per request for nothing, and
/// private growth adds as much to RSS as to PSS or USS. With no headroom every ceiling is
/// the worker's current RSS: the next request that grows a worker retires it.
pub fn leases(limits: &PoolLimits, census: &Census, serving: &[(usize, u64)]) -> Vec<(usize, u64)> {
    let Some(soft) = limits.soft else {
        return Vec::new();
    };
    let headroom = soft.limit.saturating_sub(census.total + census.fresh);
    let share = headroom / serving.len().max(1) as u64;
    serving
        .iter()
        .map(|&(slot, rss)| (slot, rss.saturating_add(share)))
        .collect()
}
