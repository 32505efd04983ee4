//! Why a worker is stopped, with the numbers that triggered it, and how it ended.

use std::fmt;
use std::time::Duration;

/// Why a worker is recycled or stopped. `Display` gives the log form,
/// e.g. `max-requests (1000 >= 1000)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    MaxRequests {
        served: u64,
        limit: u64,
    },
    Lifetime {
        lived: Duration,
        limit: Duration,
    },
    Rss {
        rss: u64,
        limit: u64,
    },
    Pss {
        pss: u64,
        limit: u64,
    },
    Uss {
        uss: u64,
        limit: u64,
    },
    EvilRss {
        rss: u64,
        limit: u64,
    },
    /// The pool's total passed `pool-soft-limit`: the largest worker is recycled.
    PoolSoft {
        total: u64,
        limit: u64,
    },
    /// The pool's total stayed over `pool-hard-limit` for `cycles` checks.
    PoolHard {
        total: u64,
        limit: u64,
        cycles: u32,
    },
    /// The worker's RSS reached the share of the soft limit's headroom it was leased,
    /// and it stopped accepting after that request.
    PoolLease {
        rss: u64,
        ceiling: u64,
    },
    Harakiri {
        running: Duration,
        limit: Duration,
    },
    /// SIGUSR1: graceful respawn of every worker.
    Respawn,
    /// SIGHUP: reload.
    Reload,
    /// SIGTTOU or a smaller `processes`.
    ScaleDown,
    /// SIGTERM (graceful) or SIGINT/SIGQUIT (quick).
    Shutdown,
    /// Not ready within worker-boot-timeout.
    BootTimeout {
        limit: Duration,
    },
    /// A graceful stop outlived worker-reload-mercy.
    MercyExpired {
        mercy: Duration,
    },
    /// The worker wrote impossible values into its scoreboard slot.
    InvalidTelemetry(&'static str),
    /// molt gives up: no worker can start.
    Fatal,
}

impl Reason {
    /// Short machine name (stats, metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Reason::MaxRequests { .. } => "max-requests",
            Reason::Lifetime { .. } => "max-worker-lifetime",
            Reason::Rss { .. } => "reload-on-rss",
            Reason::Pss { .. } => "reload-on-pss",
            Reason::Uss { .. } => "reload-on-uss",
            Reason::EvilRss { .. } => "evil-reload-on-rss",
            Reason::PoolSoft { .. } => "pool-soft-limit",
            Reason::PoolHard { .. } => "pool-hard-limit",
            Reason::PoolLease { .. } => "pool-lease",
            Reason::Harakiri { .. } => "harakiri",
            Reason::Respawn => "respawn",
            Reason::Reload => "reload",
            Reason::ScaleDown => "scale-down",
            Reason::Shutdown => "shutdown",
            Reason::BootTimeout { .. } => "boot-timeout",
            Reason::MercyExpired { .. } => "mercy-expired",
            Reason::InvalidTelemetry(_) => "invalid-telemetry",
            Reason::Fatal => "fatal",
        }
    }

    /// Urgent reasons bypass the recycle cap and do not wait for a successor.
    pub fn is_urgent(&self) -> bool {
        matches!(
            self,
            Reason::Rss { .. }
                | Reason::Pss { .. }
                | Reason::Uss { .. }
                | Reason::PoolLease { .. }
                | Reason::EvilRss { .. }
                | Reason::Harakiri { .. }
                | Reason::InvalidTelemetry(_)
                | Reason::BootTimeout { .. }
        )
    }

    /// Reasons about memory: while one is in flight the pool rules wait, so that two
    /// rules never act on the same excess.
    pub fn is_memory(&self) -> bool {
        matches!(
            self,
            Reason::Rss { .. }
                | Reason::Pss { .. }
                | Reason::Uss { .. }
                | Reason::EvilRss { .. }
                | Reason::PoolSoft { .. }
                | Reason::PoolHard { .. }
                | Reason::PoolLease { .. }
        )
    }
}

/// Bytes as MiB with one decimal, the unit of every memory option.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MaxRequests { served, limit } => {
                write!(f, "max-requests ({served} >= {limit})")
            }
            Reason::Lifetime { lived, limit } => write!(
                f,
                "max-worker-lifetime ({} >= {})",
                secs(*lived),
                secs(*limit)
            ),
            Reason::Rss { rss, limit } => {
                write!(f, "reload-on-rss ({} >= {})", mb(*rss), mb(*limit))
            }
            Reason::Pss { pss, limit } => {
                write!(f, "reload-on-pss ({} >= {})", mb(*pss), mb(*limit))
            }
            Reason::Uss { uss, limit } => {
                write!(f, "reload-on-uss ({} >= {})", mb(*uss), mb(*limit))
            }
            Reason::PoolSoft { total, limit } => write!(
                f,
                "pool-soft-limit (pool total {} > {}; largest worker first)",
                mb(*total),
                mb(*limit)
            ),
            Reason::PoolHard {
                total,
                limit,
                cycles,
            } => write!(
                f,
                "pool-hard-limit (pool total {} > {} for {cycles} check(s))",
                mb(*total),
                mb(*limit)
            ),
            Reason::PoolLease { rss, ceiling } => write!(
                f,
                "pool-lease (RSS {} >= its share of the pool budget, {})",
                mb(*rss),
                mb(*ceiling)
            ),
            Reason::EvilRss { rss, limit } => {
                write!(f, "evil-reload-on-rss ({} >= {})", mb(*rss), mb(*limit))
            }
            Reason::Harakiri { running, limit } => write!(
                f,
                "harakiri (request running {} > {})",
                secs(*running),
                secs(*limit)
            ),
            Reason::Respawn => write!(f, "graceful respawn (SIGUSR1)"),
            Reason::Reload => write!(f, "reload (SIGHUP)"),
            Reason::ScaleDown => write!(f, "scale down"),
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::BootTimeout { limit } => {
                write!(f, "boot timeout (not ready after {})", secs(*limit))
            }
            Reason::MercyExpired { mercy } => write!(
                f,
                "worker-reload-mercy expired ({} elapsed), SIGKILL",
                secs(*mercy)
            ),
            Reason::InvalidTelemetry(what) => write!(f, "invalid telemetry ({what})"),
            Reason::Fatal => write!(f, "no worker can start"),
        }
    }
}

/// How a worker process ended (from waitpid), in plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Exited(i32),
    Signaled(i32),
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Exited(code) => write!(f, "exited with status {code}"),
            ExitKind::Signaled(sig) => write!(f, "killed by signal {sig}"),
        }
    }
}

/// Exit status of a worker whose app cannot be loaded: respawning would not help.
pub const EXIT_APP_LOAD: i32 = 4;
/// Exit status of a worker that found its master gone before it started.
pub const EXIT_ORPHAN: i32 = 5;
