//! Reading worker telemetry. Scoreboard values are untrusted: a slot whose generation
//! does not match the worker the master forked into it reads as "nothing reported".

use std::sync::atomic::Ordering::Relaxed;

use log::{info, warn};

use crate::pool::{mb, ExitReport, Observation};
use crate::scoreboard::{flag, Slot, SlotState};

/// What a slot says, validated against the generation the master wrote before fork.
pub fn read_slot(slot: &Slot, generation: u64, threads: usize) -> Observation {
    if slot.generation.load(Relaxed) != generation {
        return Observation::default();
    }
    let flags = slot.flags.load(Relaxed);
    Observation {
        requests: slot.requests.load(Relaxed),
        ready: matches!(slot.state(), Some(SlotState::Ready | SlotState::Draining)),
        wants_max_requests: flags & flag::MAX_REQUESTS != 0,
        wants_rss: flags & flag::RSS != 0,
        wants_pool: flags & flag::POOL != 0,
        busy_since: slot.oldest_busy_since(threads),
        ..Observation::default()
    }
}

/// What the cgroup says about a SIGKILL molt did not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oom {
    /// The worker did not die of a foreign SIGKILL.
    NotAKill,
    /// The cgroup's oom_kill counter went from `before` to `after`.
    Confirmed { before: u64, after: u64 },
    /// The counter did not move: something else sent the SIGKILL.
    NotConfirmed,
    /// No readable counter (no memory cgroup, or an old kernel).
    NoCounter,
}

/// Logs a reaped worker: expected exits at info, crashes as warnings with what molt saw.
pub fn log_exit(r: &ExitReport, oom: Oom) {
    let summary = format!(
        "worker {} (pid {}) {} after {:.1} s and {} request(s)",
        r.id,
        r.pid,
        r.how,
        r.lived.as_secs_f64(),
        r.requests
    );
    if let Some(reason) = &r.self_retired {
        info!("worker {} (pid {}) recycling: {reason}", r.id, r.pid);
    }
    if r.expected {
        info!("{summary}");
        return;
    }
    let phase = if r.during_boot { " during boot" } else { "" };
    if r.backoff.is_zero() {
        warn!("{summary}{phase}: unexpected; respawning");
    } else {
        warn!(
            "{summary}{phase}: unexpected; respawning in {} ms (back-off)",
            r.backoff.as_millis()
        );
    }
    if r.foreign_kill {
        warn!(
            "worker {} (pid {}) got SIGKILL not sent by molt: {} (last seen: {})",
            r.id,
            r.pid,
            oom_verdict(oom),
            last_figures(r)
        );
    }
}

fn oom_verdict(oom: Oom) -> String {
    match oom {
        Oom::Confirmed { before, after } => format!(
            "killed by the kernel's OOM killer (out of memory; cgroup oom_kill {before} -> {after})"
        ),
        Oom::NotConfirmed => {
            "another process sent it (the cgroup's oom_kill counter did not move)".into()
        }
        Oom::NotAKill | Oom::NoCounter => {
            "likely the kernel's OOM killer (out of memory), or another process".into()
        }
    }
}

/// "RSS 120.0 MB, PSS 40.0 MB, USS 38.0 MB", with what is known.
fn last_figures(r: &ExitReport) -> String {
    let figures: Vec<String> = [
        ("RSS", r.last_rss),
        ("PSS", r.last_pss),
        ("USS", r.last_uss),
    ]
    .into_iter()
    .filter_map(|(name, v)| Some(format!("{name} {}", mb(v?))))
    .collect();
    if figures.is_empty() {
        "no memory figure yet".into()
    } else {
        figures.join(", ")
    }
}
