//! Reading worker telemetry. Scoreboard values are untrusted: a slot whose generation
//! does not match the worker the master forked into it reads as "nothing reported".

use std::sync::atomic::Ordering::Relaxed;

use log::{info, warn};

use crate::pool::{ExitReport, Observation};
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
        busy_since: slot.oldest_busy_since(threads),
        rss: None,
    }
}

/// Logs a reaped worker: expected exits at info, crashes as warnings with what molt saw.
pub fn log_exit(r: &ExitReport) {
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
        let rss = r.last_rss.map_or("unknown".to_string(), |b| {
            format!("{:.1} MB", b as f64 / 1048576.0)
        });
        warn!(
            "worker {} (pid {}) got SIGKILL not sent by molt: the kernel's OOM killer or another process (last RSS {rss})",
            r.id, r.pid
        );
    }
}
