//! The pool and its planner.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::policy::{judge, Verdict};
use super::rules::{self, Census, Decision, Streaks};
use super::EXIT_APP_LOAD;
use super::{
    nanos, Action, Backoff, ExitKind, Limits, Nanos, Observation, Order, Outcome, Phase, Reason,
    Worker,
};

/// A worker that lived this long without failing resets the crash back-off.
const STABLE: Nanos = 5_000_000_000;

/// The thresholds one worker draws at spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub generation: u64,
    pub max_requests: Option<u64>,
    pub max_lifetime: Option<Duration>,
}

/// How the pool is being shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: drain every worker within the mercy deadline.
    Graceful,
    /// SIGINT/SIGQUIT: kill every worker now.
    Quick,
}

/// What the master should log about a reaped worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    pub id: u32,
    pub pid: i32,
    pub how: ExitKind,
    /// molt asked it to stop (drain or kill).
    pub expected: bool,
    /// It died before it was ready.
    pub during_boot: bool,
    /// How long it lived.
    pub lived: Duration,
    /// Requests it served.
    pub requests: u64,
    /// SIGKILL that molt did not send: likely the kernel's OOM killer.
    pub foreign_kill: bool,
    /// The last memory figures molt saw for it (RSS, and PSS/USS when sampled).
    pub last_rss: Option<u64>,
    pub last_pss: Option<u64>,
    pub last_uss: Option<u64>,
    /// The next spawn waits this long (quick failures back off exponentially).
    pub backoff: Duration,
    /// It retired itself (after raising a recycle flag) before the master told it to.
    pub self_retired: Option<Reason>,
}

/// The pool: every worker process the master owns, and the rules it plans with.
#[derive(Debug, Clone)]
pub struct Pool {
    /// How many workers should serve.
    pub target: usize,
    pub workers: Vec<Worker>,
    limits: Limits,
    /// Respawn back-off per worker id: one id's crash loop never delays the others.
    backoff: BTreeMap<u32, Backoff>,
    rng: u64,
    next_generation: u64,
    ever_ready: bool,
    boot_failures: u32,
    fatal: Option<String>,
    shutdown: Option<Shutdown>,
    rules: RuleClock,
}

/// When the pool rules may look next, and what they have seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct RuleClock {
    streaks: Streaks,
    /// No check before this time (`pool-check-interval`).
    next_check: Nanos,
    /// Since when no memory action has been in flight.
    quiet_since: Option<Nanos>,
    /// When the master last sampled every worker's memory.
    sampled_at: Nanos,
}

impl Pool {
    /// A pool of `target` workers; `seed` drives the max-requests jitter.
    pub fn new(target: usize, limits: Limits, seed: u64) -> Self {
        Pool {
            target: target.max(1),
            workers: Vec::new(),
            limits,
            backoff: BTreeMap::new(),
            rng: seed | 1,
            next_generation: 1,
            ever_ready: false,
            boot_failures: 0,
            fatal: None,
            shutdown: None,
            rules: RuleClock::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Replaces the limits (reload). Running workers keep the thresholds they drew.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The shutdown in progress, if any.
    pub fn shutting_down(&self) -> Option<Shutdown> {
        self.shutdown
    }

    /// The worker with this pid.
    pub fn worker(&self, pid: i32) -> Option<&Worker> {
        self.workers.iter().find(|w| w.pid == pid)
    }

    /// Draws the thresholds of the next worker for `id` (before fork: the child needs them).
    pub fn thresholds(&mut self, id: u32) -> Thresholds {
        let generation = self.next_generation;
        self.next_generation += 1;
        let max_requests = self.draw_max_requests(id);
        let delta = self.limits.max_lifetime_delta * id.saturating_sub(1);
        let max_lifetime = self.limits.max_lifetime.map(|l| l + delta);
        Thresholds {
            generation,
            max_requests,
            max_lifetime,
        }
    }

    /// Records a fork with the thresholds drawn for it.
    pub fn spawned(
        &mut self,
        id: u32,
        pid: i32,
        slot: usize,
        replaces: Option<i32>,
        t: Thresholds,
        now: Nanos,
    ) {
        let Thresholds {
            generation,
            max_requests,
            max_lifetime,
        } = t;
        self.workers.push(Worker {
            id,
            pid,
            slot,
            generation,
            spawned_at: now,
            ready_at: None,
            max_requests,
            max_lifetime,
            phase: Phase::Booting,
            obs: Observation::default(),
            respawn: None,
            fresh_memory: None,
            lease: None,
        });
        if let Some(old) = replaces {
            if let Some(Phase::Retiring { successor, .. }) = self.phase_mut(old) {
                *successor = Some(pid);
            }
        }
    }

    fn draw_max_requests(&mut self, id: u32) -> Option<u64> {
        let base = self.limits.max_requests?;
        let delta = self.limits.max_requests_delta * u64::from(id.saturating_sub(1));
        let jitter = self.limits.max_requests_jitter;
        let extra = if jitter > 0 {
            self.next_random() % (jitter + 1)
        } else {
            0
        };
        Some(base + delta + extra)
    }

    /// xorshift64*: deterministic for a seed, good enough to spread thresholds.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A fork failed: back off before trying again.
    pub fn spawn_failed(&mut self, id: u32, now: Nanos) {
        self.backoff.entry(id).or_default().failed(now);
    }

    fn may_spawn(&self, id: u32, now: Nanos) -> bool {
        self.backoff.get(&id).is_none_or(|b| b.allows(now))
    }

    fn phase_mut(&mut self, pid: i32) -> Option<&mut Phase> {
        self.workers
            .iter_mut()
            .find(|w| w.pid == pid)
            .map(|w| &mut w.phase)
    }

    /// Takes in what the master read for one worker; true when it just became ready.
    /// Invalid telemetry (a counter going backwards) is remembered as a verdict.
    pub fn observe(&mut self, pid: i32, obs: Observation, now: Nanos) -> bool {
        let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            return false;
        };
        if obs.requests < w.obs.requests && w.respawn.is_none() {
            w.respawn = Some(Reason::InvalidTelemetry("request counter went backwards"));
        }
        w.obs = obs;
        let became_ready = w.phase == Phase::Booting && obs.ready;
        if became_ready {
            w.phase = Phase::Serving;
            w.ready_at = Some(now);
            self.ever_ready = true;
        }
        if w.phase == Phase::Serving && w.fresh_memory.is_none() {
            w.fresh_memory = obs.memory(self.limits.pool.metric);
        }
        became_ready
    }

    /// Takes in a reaped worker; returns what to log, or None for an unknown pid.
    pub fn exited(&mut self, pid: i32, how: ExitKind, now: Nanos) -> Option<ExitReport> {
        let index = self.workers.iter().position(|w| w.pid == pid)?;
        let w = self.workers.remove(index);
        for other in &mut self.workers {
            if let Phase::Retiring { successor, .. } = &mut other.phase {
                if *successor == Some(pid) {
                    *successor = None;
                }
            }
        }
        let self_retired = self_retirement(&w, how);
        let expected = self_retired.is_some()
            || matches!(w.phase, Phase::Draining { .. } | Phase::Killed { .. });
        let boot_timeout = matches!(
            &w.phase,
            Phase::Killed {
                reason: Reason::BootTimeout { .. }
            }
        );
        let during_boot = w.phase == Phase::Booting || boot_timeout;
        let lived = Duration::from_nanos(now.saturating_sub(w.spawned_at));
        if during_boot && self.shutdown.is_none() {
            self.boot_failed(&w, how, now);
        } else if !expected && nanos(lived) < STABLE {
            self.backoff.entry(w.id).or_default().failed(now);
        }
        let foreign_kill =
            how == ExitKind::Signaled(libc_sigkill()) && !matches!(w.phase, Phase::Killed { .. });
        Some(ExitReport {
            id: w.id,
            pid,
            how,
            expected,
            during_boot,
            lived,
            requests: w.obs.requests,
            foreign_kill,
            last_rss: w.obs.rss,
            last_pss: w.obs.pss,
            last_uss: w.obs.uss,
            backoff: Duration::from_nanos(
                self.backoff
                    .get(&w.id)
                    .map_or(0, |b| b.not_before.saturating_sub(now)),
            ),
            self_retired,
        })
    }

    fn boot_failed(&mut self, w: &Worker, how: ExitKind, now: Nanos) {
        self.boot_failures += 1;
        self.backoff.entry(w.id).or_default().failed(now);
        if self.ever_ready {
            return;
        }
        let cannot_load = how == ExitKind::Exited(EXIT_APP_LOAD);
        if cannot_load || self.boot_failures >= self.limits.max_boot_failures {
            self.fatal = Some(format!(
                "worker {} (pid {}) {how} before it was ready{}; {} boot failure(s) in a row",
                w.id,
                w.pid,
                if cannot_load {
                    " (the app cannot be loaded)"
                } else {
                    ""
                },
                self.boot_failures
            ));
        }
    }

    /// SIGUSR1/SIGHUP: every current worker gets replaced, K at a time.
    pub fn respawn_all(&mut self, reason: Reason) {
        if self.shutdown.is_some() {
            return;
        }
        // New code or a new configuration deserves a fresh start: a fixed app reloaded
        // after a broken one must not wait out the broken one's back-off.
        self.backoff.clear();
        for w in &mut self.workers {
            if matches!(w.phase, Phase::Booting | Phase::Serving) {
                w.respawn = Some(reason.clone());
            }
        }
    }

    /// SIGTTIN/SIGTTOU or a reload: the number of workers that should serve (>= 1).
    pub fn set_target(&mut self, n: usize) {
        if self.shutdown.is_none() {
            self.target = n.max(1);
        }
    }

    /// Starts a shutdown; a quick one overrides a graceful one, never the reverse.
    pub fn shutdown(&mut self, kind: Shutdown) {
        if self.shutdown != Some(Shutdown::Quick) {
            self.shutdown = Some(kind);
        }
    }

    /// Compares the pool with what it should be and returns the actions that close the gap.
    pub fn plan(&mut self, now: Nanos) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(kind) = self.shutdown {
            self.plan_shutdown(kind, now, &mut actions);
            return actions;
        }
        if let Some(reason) = self.fatal.clone() {
            self.kill_all(Reason::Fatal, &mut actions);
            if self.workers.is_empty() {
                actions.push(Action::Exit(Outcome::BootFailure(reason)));
            }
            return actions;
        }
        self.note_stability(now);
        self.judge_all(now, &mut actions);
        self.apply_pool_rules(now, &mut actions);
        let mut spawning = BTreeSet::new();
        self.advance_retiring(now, &mut actions, &mut spawning);
        self.fill_vacancies(now, &mut actions, &mut spawning);
        self.scale_down(now, &mut actions);
        self.enforce_deadlines(now, &mut actions);
        actions
    }

    /// A worker ready for STABLE ends its id's back-off, if it became ready after the id's
    /// last failure: an old worker still serving while its successors fail to boot (a
    /// reload with a broken app) proves nothing about them, and clearing their back-off
    /// every turn let them respawn in a tight loop (900 forks in 4 s).
    fn note_stability(&mut self, now: Nanos) {
        for w in &self.workers {
            let Some(ready) = w.ready_at else { continue };
            if now.saturating_sub(ready) < STABLE {
                continue;
            }
            let since_failure = self
                .backoff
                .get(&w.id)
                .is_none_or(|b| ready >= b.last_failure);
            if since_failure {
                self.backoff.remove(&w.id);
                self.boot_failures = 0;
            }
        }
    }

    fn judge_all(&mut self, now: Nanos, actions: &mut Vec<Action>) {
        let mercy = nanos(self.limits.mercy);
        for w in &mut self.workers {
            if !matches!(w.phase, Phase::Serving | Phase::Retiring { .. }) {
                continue;
            }
            match judge(w, &self.limits, now) {
                Verdict::Keep => {}
                Verdict::Kill(reason) => kill(w, reason, actions),
                Verdict::Drain(reason) => {
                    // A crossed lease is the soft limit at work: its command runs too.
                    let exec = match (&reason, &self.limits.pool.soft_exec) {
                        (Reason::PoolLease { .. }, Some(command)) => Some(Action::Exec {
                            command: command.clone(),
                            reason: reason.clone(),
                        }),
                        _ => None,
                    };
                    drain(w, reason, now + mercy, actions);
                    actions.extend(exec);
                }
                Verdict::Retire(reason) => {
                    w.phase = Phase::Retiring {
                        reason,
                        successor: None,
                    }
                }
            }
        }
    }

    /// Planned recycles in flight: workers booting plus planned drains.
    fn in_flight(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| match &w.phase {
                Phase::Booting => true,
                Phase::Draining { reason, .. } => is_planned(reason),
                _ => false,
            })
            .count()
    }

    fn advance_retiring(
        &mut self,
        now: Nanos,
        actions: &mut Vec<Action>,
        spawning: &mut BTreeSet<u32>,
    ) {
        self.drain_replaced(now, actions);
        let mut in_flight = self.in_flight();
        let mut order: Vec<usize> = (0..self.workers.len())
            .filter(|&i| {
                matches!(
                    self.workers[i].phase,
                    Phase::Retiring {
                        successor: None,
                        ..
                    }
                )
            })
            .collect();
        order.sort_by_key(|&i| self.workers[i].spawned_at);
        for i in order {
            if in_flight >= self.limits.max_recycles {
                break;
            }
            let (id, pid) = (self.workers[i].id, self.workers[i].pid);
            match self.order() {
                Order::ReplaceFirst => {
                    if !self.may_spawn(id, now) || spawning.contains(&id) {
                        continue;
                    }
                    actions.push(Action::Spawn {
                        id,
                        replaces: Some(pid),
                    });
                    spawning.insert(id);
                }
                Order::RetireFirst => self.start_drain(i, now, actions),
            }
            in_flight += 1;
        }
    }

    /// The master took a memory sample of every worker: the rules may look again.
    pub fn memory_sampled(&mut self, now: Nanos) {
        self.rules.sampled_at = now;
    }

    /// What the pool rules see now: the total by the pool metric, the largest serving
    /// worker, and what a fresh worker costs.
    pub fn census(&self) -> Census {
        let metric = self.limits.pool.metric;
        let memory = |w: &Worker| w.obs.memory(metric);
        let fresh = self
            .workers
            .iter()
            .filter_map(|w| w.fresh_memory)
            .max()
            .unwrap_or(0);
        Census {
            // A worker not measured yet (just forked) is counted as a fresh one.
            total: self
                .workers
                .iter()
                .map(|w| memory(w).unwrap_or(fresh))
                .sum(),
            largest: self
                .workers
                .iter()
                .filter(|w| w.phase == Phase::Serving)
                .filter_map(|w| Some((w.pid, memory(w)?)))
                .max_by_key(|&(_, m)| m),
            fresh,
        }
    }

    /// The recycle order in force: `recycle-order`, unless a pool rule says one more
    /// worker does not fit, in which case the old worker retires before its successor.
    pub fn order(&self) -> Order {
        let pool = &self.limits.pool;
        if pool.active() && !rules::room_for_one_more(pool, &self.census()) {
            return Order::RetireFirst;
        }
        self.limits.order
    }

    /// A memory recycle (per-worker or pool rule) has not finished: a rule acting now
    /// would count the same excess twice.
    fn memory_action_in_flight(&self) -> bool {
        self.workers.iter().any(|w| {
            let phase_reason = match &w.phase {
                Phase::Retiring { reason, .. }
                | Phase::Draining { reason, .. }
                | Phase::Killed { reason } => Some(reason),
                Phase::Booting | Phase::Serving => None,
            };
            phase_reason
                .or(w.respawn.as_ref())
                .is_some_and(Reason::is_memory)
        })
    }

    /// Checks the pool rules when due: one action at a time, each followed by a fresh
    /// sample before the next check.
    fn apply_pool_rules(&mut self, now: Nanos, actions: &mut Vec<Action>) {
        if !self.limits.pool.active() {
            return;
        }
        if self.memory_action_in_flight() {
            self.rules.quiet_since = None;
            return;
        }
        let quiet = *self.rules.quiet_since.get_or_insert(now);
        if now < self.rules.next_check || self.rules.sampled_at <= quiet {
            return;
        }
        self.rules.next_check = now + nanos(self.limits.pool.check_every);
        let census = self.census();
        match rules::check(&self.limits.pool, &census, &mut self.rules.streaks) {
            None => {}
            Some(Decision::RestartAll(reason)) => self.respawn_all(reason),
            Some(Decision::Recycle { pid, reason, exec }) => {
                if exec {
                    self.push_exec(&reason, actions);
                }
                if let Some(phase) = self.phase_mut(pid) {
                    *phase = Phase::Retiring {
                        reason,
                        successor: None,
                    };
                }
            }
        }
    }

    fn push_exec(&self, reason: &Reason, actions: &mut Vec<Action>) {
        if let Some(command) = &self.limits.pool.soft_exec {
            actions.push(Action::Exec {
                command: command.clone(),
                reason: reason.clone(),
            });
        }
    }

    /// Leases each serving worker its RSS ceiling under the soft limit (see
    /// [`rules::leases`]); returns (slot, ceiling) for the master to publish. Call after
    /// a memory sample.
    pub fn leases(&mut self) -> Vec<(usize, u64)> {
        let census = self.census();
        let serving: Vec<(usize, u64)> = self
            .workers
            .iter()
            .filter(|w| w.phase == Phase::Serving)
            .filter_map(|w| Some((w.slot, w.obs.rss?)))
            .collect();
        let leases = rules::leases(&self.limits.pool, &census, &serving);
        for &(slot, ceiling) in &leases {
            if let Some(w) = self.workers.iter_mut().find(|w| w.slot == slot) {
                w.lease = Some(ceiling);
            }
        }
        leases
    }

    /// A retiring worker whose successor is ready stops now.
    fn drain_replaced(&mut self, now: Nanos, actions: &mut Vec<Action>) {
        // Ready means "has been ready and still holds the id": a successor that is over
        // its own limit the moment it is first seen is already Retiring, yet it serves,
        // so its predecessor must stop (else a third process is spawned for the id).
        let ready: BTreeSet<i32> = self
            .workers
            .iter()
            .filter(|w| w.ready_at.is_some() && w.holds_id())
            .map(|w| w.pid)
            .collect();
        for i in 0..self.workers.len() {
            if let Phase::Retiring {
                successor: Some(s), ..
            } = self.workers[i].phase
            {
                if ready.contains(&s) {
                    self.start_drain(i, now, actions);
                }
            }
        }
    }

    fn start_drain(&mut self, i: usize, now: Nanos, actions: &mut Vec<Action>) {
        let deadline = now + nanos(self.limits.mercy);
        let w = &mut self.workers[i];
        let reason = match &w.phase {
            Phase::Retiring { reason, .. } => reason.clone(),
            _ => return,
        };
        drain(w, reason, deadline, actions);
    }

    fn fill_vacancies(
        &mut self,
        now: Nanos,
        actions: &mut Vec<Action>,
        spawning: &mut BTreeSet<u32>,
    ) {
        let mut room = self.room();
        for id in 1..=self.target as u32 {
            let held = self.workers.iter().any(|w| w.id == id && w.holds_id());
            if held || !self.may_spawn(id, now) || spawning.contains(&id) {
                continue;
            }
            if self.freed_by_memory_stop(id) && !room.take_one() {
                continue;
            }
            spawning.insert(id);
            actions.push(Action::Spawn { id, replaces: None });
        }
    }

    /// The id's last holder is stopping for memory: under a pool rule its replacement
    /// waits until it fits (retire first, really), so the old and new never add up.
    fn freed_by_memory_stop(&self, id: u32) -> bool {
        self.limits.pool.active()
            && self.workers.iter().any(|w| {
                w.id == id
                    && matches!(&w.phase,
                        Phase::Draining { reason, .. } | Phase::Killed { reason } if reason.is_memory())
            })
    }

    /// The room under the lowest pool limit, in fresh workers.
    fn room(&self) -> Room {
        let census = self.census();
        Room {
            free: self
                .limits
                .pool
                .budget()
                .map(|b| b.saturating_sub(census.total)),
            fresh: census.fresh,
        }
    }

    fn scale_down(&mut self, now: Nanos, actions: &mut Vec<Action>) {
        let deadline = now + nanos(self.limits.mercy);
        let target = self.target as u32;
        for w in &mut self.workers {
            if w.id > target && w.holds_id() {
                drain(w, Reason::ScaleDown, deadline, actions);
            }
        }
    }

    fn enforce_deadlines(&mut self, now: Nanos, actions: &mut Vec<Action>) {
        let mercy = self.limits.mercy;
        let boot = self.limits.boot_timeout;
        for w in &mut self.workers {
            let reason = match &w.phase {
                Phase::Draining { deadline, .. } if now >= *deadline => {
                    Reason::MercyExpired { mercy }
                }
                Phase::Booting if now.saturating_sub(w.spawned_at) >= nanos(boot) => {
                    Reason::BootTimeout { limit: boot }
                }
                _ => continue,
            };
            kill(w, reason, actions);
        }
    }

    fn plan_shutdown(&mut self, kind: Shutdown, now: Nanos, actions: &mut Vec<Action>) {
        match kind {
            Shutdown::Quick => self.kill_all(Reason::Shutdown, actions),
            Shutdown::Graceful => {
                let deadline = now + nanos(self.limits.mercy);
                for w in &mut self.workers {
                    if w.holds_id() {
                        drain(w, Reason::Shutdown, deadline, actions);
                    }
                }
                self.enforce_deadlines(now, actions);
            }
        }
        if self.workers.is_empty() {
            actions.push(Action::Exit(Outcome::Clean));
        }
    }

    fn kill_all(&mut self, reason: Reason, actions: &mut Vec<Action>) {
        for w in &mut self.workers {
            if !matches!(w.phase, Phase::Killed { .. }) {
                kill(w, reason.clone(), actions);
            }
        }
    }
}

/// Memory left under the lowest pool limit, handed out one fresh worker at a time.
struct Room {
    /// None: no pool limit, room for anything.
    free: Option<u64>,
    fresh: u64,
}

impl Room {
    fn take_one(&mut self) -> bool {
        match &mut self.free {
            None => true,
            Some(free) if *free >= self.fresh => {
                *free -= self.fresh;
                true
            }
            Some(_) => false,
        }
    }
}

/// Asks `w` to stop gracefully by `deadline` (SIGTERM now, SIGKILL at the deadline).
fn drain(w: &mut Worker, reason: Reason, deadline: Nanos, actions: &mut Vec<Action>) {
    actions.push(Action::Stop {
        id: w.id,
        pid: w.pid,
        reason: reason.clone(),
    });
    w.phase = Phase::Draining { reason, deadline };
}

/// Kills `w` at once.
fn kill(w: &mut Worker, reason: Reason, actions: &mut Vec<Action>) {
    actions.push(Action::Kill {
        id: w.id,
        pid: w.pid,
        reason: reason.clone(),
    });
    w.phase = Phase::Killed { reason };
}

/// A worker that exits 0 after raising a recycle flag retired itself (retire-first
/// max-requests, or memory): that is a recycle, not a crash.
fn self_retirement(w: &Worker, how: ExitKind) -> Option<Reason> {
    if how != ExitKind::Exited(0)
        || matches!(w.phase, Phase::Draining { .. } | Phase::Killed { .. })
    {
        return None;
    }
    if w.obs.wants_rss {
        let limit = w.obs.rss.unwrap_or(0);
        return Some(Reason::Rss { rss: limit, limit });
    }
    if w.obs.wants_pool {
        let rss = w.obs.rss.unwrap_or(0);
        return Some(Reason::PoolLease {
            rss,
            ceiling: w.lease.unwrap_or(rss),
        });
    }
    let limit = w.max_requests?;
    w.obs.wants_max_requests.then_some(Reason::MaxRequests {
        served: w.obs.requests,
        limit,
    })
}

/// Planned reasons obey the recycle cap; urgent ones and shutdown do not.
fn is_planned(reason: &Reason) -> bool {
    !reason.is_urgent()
        && !matches!(
            reason,
            Reason::Shutdown | Reason::ScaleDown | Reason::MercyExpired { .. } | Reason::Fatal
        )
}

/// SIGKILL's number on Linux (kept here so the pure core needs no libc).
const fn libc_sigkill() -> i32 {
    9
}
