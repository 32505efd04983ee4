//! The recycle verdict for one worker: which rule, if any, applies now.

use std::time::Duration;

use super::{Limits, Metric, Nanos, Phase, Reason, Worker};

/// A started request this far in the future is impossible (clock skew tolerance).
const FUTURE_SLACK: Nanos = 1_000_000_000;

/// What to do with one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// SIGKILL now (evil-reload-on-rss, harakiri, invalid telemetry).
    Kill(Reason),
    /// Graceful stop now, without waiting for a successor (memory).
    Drain(Reason),
    /// Recycle when the cap allows, replacement first.
    Retire(Reason),
}

/// Judges a Serving or Retiring worker. Hard limits first, then memory, then the
/// planned triggers (which the min-worker-lifetime guard holds back).
pub fn judge(w: &Worker, limits: &Limits, now: Nanos) -> Verdict {
    if let Some(v) = hard_limits(w, limits, now) {
        return v;
    }
    if let Some(r) = memory(w, limits) {
        return Verdict::Drain(r);
    }
    if matches!(w.phase, Phase::Retiring { .. }) {
        return Verdict::Keep;
    }
    if let Some(r) = w.respawn.clone() {
        return Verdict::Retire(r);
    }
    let lived = Duration::from_nanos(now.saturating_sub(w.spawned_at));
    if lived < limits.min_lifetime {
        return Verdict::Keep;
    }
    planned(w, lived).map_or(Verdict::Keep, Verdict::Retire)
}

fn hard_limits(w: &Worker, limits: &Limits, now: Nanos) -> Option<Verdict> {
    if let (Some(limit), Some(rss)) = (limits.evil_reload_on_rss, w.obs.rss) {
        if rss >= limit {
            return Some(Verdict::Kill(Reason::EvilRss { rss, limit }));
        }
    }
    let since = w.obs.busy_since?;
    if since > now + FUTURE_SLACK || since < w.spawned_at {
        return Some(Verdict::Kill(Reason::InvalidTelemetry(
            "request start outside the worker's life",
        )));
    }
    let limit = limits.harakiri?;
    let running = Duration::from_nanos(now.saturating_sub(since));
    (running > limit).then_some(Verdict::Kill(Reason::Harakiri { running, limit }))
}

fn memory(w: &Worker, limits: &Limits) -> Option<Reason> {
    let o = &w.obs;
    if let (Some(limit), Some(rss)) = (limits.reload_on_rss, o.rss) {
        if rss >= limit {
            return Some(Reason::Rss { rss, limit });
        }
    }
    if let (Some(limit), Some(pss)) = (limits.reload_on_pss, o.memory(Metric::Pss)) {
        if pss >= limit {
            return Some(Reason::Pss { pss, limit });
        }
    }
    if let (Some(limit), Some(uss)) = (limits.reload_on_uss, o.memory(Metric::Uss)) {
        if uss >= limit {
            return Some(Reason::Uss { uss, limit });
        }
    }
    self_reported(w, limits)
}

/// A worker that saw itself over a limit after a request has already stopped accepting.
fn self_reported(w: &Worker, limits: &Limits) -> Option<Reason> {
    let rss = w.obs.rss.unwrap_or(0);
    if w.obs.wants_rss {
        let limit = limits.reload_on_rss.unwrap_or(rss);
        return Some(Reason::Rss {
            rss: rss.max(limit),
            limit,
        });
    }
    w.obs.wants_pool.then(|| Reason::PoolLease {
        rss,
        ceiling: w.lease.unwrap_or(rss),
    })
}

fn planned(w: &Worker, lived: Duration) -> Option<Reason> {
    if let Some(limit) = w.max_requests {
        if w.obs.requests >= limit {
            return Some(Reason::MaxRequests {
                served: w.obs.requests,
                limit,
            });
        }
    }
    let limit = w.max_lifetime?;
    (lived >= limit).then_some(Reason::Lifetime { lived, limit })
}
