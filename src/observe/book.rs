//! The master's ledger: totals of workers that are gone (so every counter survives
//! recycling), recycle reasons per worker id, the leak finder's per-route totals and a
//! bounded memory history for the live page. Plain data, filled from the master loop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

use crate::pool::Nanos;
use crate::scoreboard::{Slot, DURATION_BUCKETS_US};

/// How far back the live page's memory history reaches.
pub const HISTORY_NS: Nanos = 300 * 1_000_000_000;
/// Most frames kept, whatever the sample interval.
const MAX_FRAMES: usize = 1200;
/// Most recycle events kept.
const MAX_EVENTS: usize = 500;

/// Counters a worker's slot holds, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub errors: u64,
    pub tx: u64,
    pub batched: u64,
    pub busy_us: u64,
    pub durations: [u64; DURATION_BUCKETS_US.len() + 1],
}

impl Counters {
    /// A slot's counters, if its generation is the one the master forked into it.
    pub fn of(slot: &Slot, generation: u64) -> Option<Counters> {
        if slot.generation.load(Relaxed) != generation {
            return None;
        }
        let mut c = Counters {
            requests: slot.requests.load(Relaxed),
            errors: slot.errors.load(Relaxed),
            tx: slot.tx_bytes.load(Relaxed),
            batched: slot.batched.load(Relaxed),
            busy_us: slot.busy_us.load(Relaxed),
            ..Counters::default()
        };
        for (d, cell) in c.durations.iter_mut().zip(&slot.durations) {
            *d = cell.load(Relaxed);
        }
        Some(c)
    }

    pub fn add(&mut self, o: &Counters) {
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.tx = self.tx.saturating_add(o.tx);
        self.batched = self.batched.saturating_add(o.batched);
        self.busy_us = self.busy_us.saturating_add(o.busy_us);
        for (a, b) in self.durations.iter_mut().zip(&o.durations) {
            *a = a.saturating_add(*b);
        }
    }
}

/// One route's totals (leak finder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTotal {
    pub requests: u64,
    pub growth: u64,
}

/// The routes a slot reports, by name (untrusted names are length-checked by the slot).
pub fn routes_of(slot: &Slot, generation: u64) -> Vec<(String, RouteTotal)> {
    if slot.generation.load(Relaxed) != generation {
        return Vec::new();
    }
    slot.routes
        .iter()
        .filter_map(|cell| {
            let name = cell.name()?;
            let t = RouteTotal {
                requests: cell.requests.load(Relaxed),
                growth: cell.growth.load(Relaxed),
            };
            Some((name, t))
        })
        .collect()
}

/// What the master remembers per worker id across its processes.
#[derive(Debug, Clone, Default)]
pub struct IdBook {
    /// Counters of this id's dead processes.
    pub dead: Counters,
    /// Processes of this id that ended (uWSGI's respawn_count is this + 1).
    pub respawns: u64,
    pub harakiri: u64,
    /// Why each ended, counted by reason name.
    pub reasons: BTreeMap<String, u64>,
    /// The last reason, for display.
    pub last_reason: Option<String>,
}

/// One memory sample of every worker.
#[derive(Debug, Clone)]
pub struct Frame {
    pub at: Nanos,
    /// Requests served by the whole pool so far (dead workers included).
    pub requests: u64,
    /// (worker id, pid, resident bytes).
    pub workers: Vec<(u32, i32, u64)>,
}

/// A worker process that ended, for the chart's marks.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Nanos,
    pub id: u32,
    pub pid: i32,
    pub reason: String,
}

/// Memory figures beyond RSS (see [`crate::sys::MemoryDetail`]).
pub type Detail = crate::sys::MemoryDetail;

/// The ledger.
#[derive(Debug, Default)]
pub struct Book {
    /// Something reads the ledger (a stats server): keep history and memory details.
    pub enabled: bool,
    pub dead: Counters,
    pub ids: BTreeMap<u32, IdBook>,
    /// Ended workers by reason, pool-wide.
    pub respawns: BTreeMap<String, u64>,
    /// Route totals of dead workers.
    pub dead_routes: HashMap<String, RouteTotal>,
    pub frames: VecDeque<Frame>,
    pub events: VecDeque<Event>,
    /// PSS/USS/VSZ per live pid, refreshed with each memory sample.
    pub details: HashMap<i32, Detail>,
}

impl Book {
    pub fn new(enabled: bool) -> Book {
        Book {
            enabled,
            ..Book::default()
        }
    }

    /// A worker was reaped: fold its last counters and routes into the dead totals and
    /// count why it ended.
    pub fn exited(
        &mut self,
        id: u32,
        pid: i32,
        slot: &Slot,
        generation: u64,
        reason: &str,
        now: Nanos,
    ) {
        let counters = Counters::of(slot, generation).unwrap_or_default();
        self.dead.add(&counters);
        for (name, t) in routes_of(slot, generation) {
            let e = self.dead_routes.entry(name).or_default();
            e.requests = e.requests.saturating_add(t.requests);
            e.growth = e.growth.saturating_add(t.growth);
        }
        let entry = self.ids.entry(id).or_default();
        entry.dead.add(&counters);
        entry.respawns += 1;
        if reason == "harakiri" {
            entry.harakiri += 1;
        }
        *entry.reasons.entry(reason.to_string()).or_default() += 1;
        entry.last_reason = Some(reason.to_string());
        *self.respawns.entry(reason.to_string()).or_default() += 1;
        self.details.remove(&pid);
        if self.enabled {
            push_bounded(
                &mut self.events,
                Event {
                    at: now,
                    id,
                    pid,
                    reason: reason.to_string(),
                },
                MAX_EVENTS,
            );
        }
    }

    /// Records one memory frame (called at each memory sample when enabled).
    pub fn frame(&mut self, frame: Frame) {
        let horizon = frame.at.saturating_sub(HISTORY_NS);
        push_bounded(&mut self.frames, frame, MAX_FRAMES);
        while self.frames.front().is_some_and(|f| f.at < horizon) {
            self.frames.pop_front();
        }
        while self.events.front().is_some_and(|e| e.at < horizon) {
            self.events.pop_front();
        }
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, max: usize) {
    if q.len() >= max {
        q.pop_front();
    }
    q.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoreboard::Scoreboard;

    #[test]
    fn dead_workers_keep_counting() {
        let b = Scoreboard::new().expect("mmap");
        b.reset(0, 5);
        b.slot(0).requests.store(10, Relaxed);
        b.slot(0).count_route(3, b"GET /leak", 4096);
        let mut book = Book::new(true);
        book.exited(1, 100, b.slot(0), 5, "max-requests", 7);
        book.exited(1, 101, b.slot(0), 6, "harakiri", 8); // stale generation: no counters
        assert_eq!(book.dead.requests, 10);
        assert_eq!(book.ids[&1].respawns, 2);
        assert_eq!(book.ids[&1].harakiri, 1);
        assert_eq!(book.respawns["max-requests"], 1);
        assert_eq!(book.dead_routes["GET /leak"].growth, 4096);
        assert_eq!(book.events.len(), 2);
    }
}
