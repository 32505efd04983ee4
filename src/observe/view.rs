//! One consistent reading of the pool for a stats request: live workers joined with
//! their scoreboard slots and the ledger, and the leak finder's table. The stats
//! document, the metrics and the live page all render from this.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use super::book::{routes_of, Book, Counters, Detail, RouteTotal};
use crate::pool::{Nanos, Phase, Pool};
use crate::scoreboard::Scoreboard;

/// A listener's accept queue (see [`crate::observe::queue`]).
#[derive(Debug, Clone)]
pub struct SocketQueue {
    pub name: String,
    pub queue: u64,
    pub max_queue: u64,
}

/// Everything a render needs, borrowed from the master.
pub struct View<'a> {
    pub pool: &'a Pool,
    pub board: &'a Scoreboard,
    pub book: &'a Book,
    pub threads: usize,
    /// Monotonic now, and the wall clock at the same moment (seconds since the epoch).
    pub now: Nanos,
    pub unix_now: f64,
    pub sockets: Vec<SocketQueue>,
    pub leak_finder: bool,
    /// OOM kills, foreign SIGKILLs and pool-rule recycles the master counted.
    pub memory: crate::master::MemoryCounters,
}

/// One live worker process.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u32,
    pub pid: i32,
    pub generation: u64,
    pub phase: &'static str,
    pub accepting: bool,
    pub live: Counters,
    /// Requests started and in-request flag per thread.
    pub cores: Vec<(u64, bool)>,
    pub busy_since_unix: Option<f64>,
    pub rss: u64,
    pub detail: Detail,
    pub spawned_unix: f64,
    pub running_s: f64,
    /// Processes of this id that ended before this one.
    pub respawns: u64,
    pub harakiri: u64,
    pub last_reason: Option<String>,
    pub reasons: Vec<(String, u64)>,
    /// Retiring/draining reason, if molt is replacing this process.
    pub recycling: Option<String>,
}

/// A route in the leak finder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub route: String,
    pub requests: u64,
    pub growth: u64,
}

impl Leak {
    pub fn per_request(&self) -> f64 {
        self.growth as f64 / self.requests.max(1) as f64
    }
}

impl View<'_> {
    /// Converts a monotonic stamp to Unix seconds.
    pub fn unix(&self, mono: Nanos) -> f64 {
        self.unix_now - self.now.saturating_sub(mono) as f64 / 1e9
    }

    /// The live workers, by id then spawn order.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self.pool.workers.iter().map(|w| self.row(w)).collect();
        rows.sort_by_key(|r| (r.id, r.generation));
        rows
    }

    fn row(&self, w: &crate::pool::Worker) -> Row {
        let slot = self.board.slot(w.slot);
        let live = Counters::of(slot, w.generation).unwrap_or_default();
        let valid = slot.generation.load(Relaxed) == w.generation;
        let threads = self.threads.clamp(1, crate::scoreboard::MAX_THREADS);
        let cores = slot.cores[..threads]
            .iter()
            .map(|c| {
                if valid {
                    (
                        c.request_id.load(Relaxed),
                        c.busy_since_ns.load(Relaxed) != 0,
                    )
                } else {
                    (0, false)
                }
            })
            .collect();
        let ids = self.book.ids.get(&w.id).cloned().unwrap_or_default();
        let (phase, recycling) = match &w.phase {
            Phase::Booting => ("booting", None),
            Phase::Serving => ("serving", None),
            Phase::Retiring { reason, .. } => ("retiring", Some(reason.to_string())),
            Phase::Draining { reason, .. } => ("draining", Some(reason.to_string())),
            Phase::Killed { reason } => ("killed", Some(reason.to_string())),
        };
        Row {
            id: w.id,
            pid: w.pid,
            generation: w.generation,
            phase,
            accepting: matches!(w.phase, Phase::Serving | Phase::Retiring { .. }),
            live,
            cores,
            busy_since_unix: w.obs.busy_since.map(|t| self.unix(t)),
            rss: w.obs.rss.unwrap_or(0),
            detail: self.book.details.get(&w.pid).copied().unwrap_or_default(),
            spawned_unix: self.unix(w.spawned_at),
            running_s: self.now.saturating_sub(w.spawned_at) as f64 / 1e9,
            respawns: ids.respawns,
            harakiri: ids.harakiri,
            last_reason: ids.last_reason.clone(),
            reasons: ids.reasons.into_iter().collect(),
            recycling,
        }
    }

    /// Counters of the whole pool since start: dead workers plus live ones.
    pub fn totals(&self, rows: &[Row]) -> Counters {
        let mut t = self.book.dead;
        for r in rows {
            t.add(&r.live);
        }
        t
    }

    /// Requests per worker id since start (dead processes of the id included).
    pub fn requests_by_id(&self, rows: &[Row]) -> Vec<(u32, u64)> {
        let mut by: std::collections::BTreeMap<u32, u64> = self
            .book
            .ids
            .iter()
            .map(|(id, b)| (*id, b.dead.requests))
            .collect();
        for r in rows {
            *by.entry(r.id).or_default() += r.live.requests;
        }
        by.into_iter().collect()
    }

    /// The leak finder's table: every route, dead and live workers merged, largest total
    /// growth first.
    pub fn leaks(&self) -> Vec<Leak> {
        let mut all: HashMap<String, RouteTotal> = self.book.dead_routes.clone();
        for w in &self.pool.workers {
            for (name, t) in routes_of(self.board.slot(w.slot), w.generation) {
                let e = all.entry(name).or_default();
                e.requests = e.requests.saturating_add(t.requests);
                e.growth = e.growth.saturating_add(t.growth);
            }
        }
        let mut leaks: Vec<Leak> = all
            .into_iter()
            .map(|(route, t)| Leak {
                route,
                requests: t.requests,
                growth: t.growth,
            })
            .collect();
        leaks.sort_by(|a, b| b.growth.cmp(&a.growth).then(a.route.cmp(&b.route)));
        leaks
    }
}

/// The same table ranked by growth per request.
pub fn by_per_request(leaks: &[Leak]) -> Vec<Leak> {
    let mut v = leaks.to_vec();
    v.sort_by(|a, b| {
        b.per_request()
            .total_cmp(&a.per_request())
            .then(a.route.cmp(&b.route))
    });
    v
}
