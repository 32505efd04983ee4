//! The master: one thread, one event loop.
//!
//! ```text
//! loop {
//!     wait    for the signal pipe, the workers' notify pipe, or the tick
//!     events  signal counters -> pool marks (shutdown, respawn, scale)
//!     reap    waitpid until none; the pool forgets the dead in the same step
//!     sample  scoreboard + /proc memory -> observations
//!     plan    pool.plan(now) -> actions                      (pure)
//!     apply   fork / SIGTERM / SIGKILL, each logged with its reason
//! }
//! ```

mod logfile;
mod pidfile;
mod reload;
mod sample;
pub mod signals;

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::getpid;

use crate::config::{Amount, AppSpec, Config, Loaded, MemoryThreshold, Protocol, RecycleOrder};
use crate::error::Error;
use crate::listen::{self, Bound, SocketPerms};
use crate::observe::{
    self,
    book::Book,
    server::{Answer, StatsServer, Want},
    view::{SocketQueue, View},
};
use crate::pool::{
    self, Action, Limits, Nanos, Outcome, Pool, PoolLimits, PoolRule, Reason, Shutdown,
};
use crate::scoreboard::{Scoreboard, MAX_SLOTS};
use crate::sys::{Capacity, RealSys, SpawnRequest, Sys};
use crate::systemd::{self, Notifier};
use crate::worker::exec::{base_env, ExecIdentity, ExecPlan};
use crate::worker::{AppFactory, ChildSpec, WorkerLimits, WorkerSetup};
pub use pidfile::Pidfile;
use signals::{Pending, Signals};

/// The loop's tick: deadlines (mercy, harakiri, lifetime) are checked at least this often.
const TICK: Duration = Duration::from_millis(100);

/// Projects the config onto the planner's limits; percentages of pool thresholds are
/// resolved against `capacity` (the cgroup limit, else MemTotal).
pub fn limits_of(cfg: &Config, capacity: Option<&Capacity>) -> Limits {
    Limits {
        max_requests: cfg.max_requests,
        max_requests_delta: cfg.max_requests_delta,
        max_requests_jitter: cfg.max_requests_jitter,
        max_lifetime: cfg.max_worker_lifetime,
        max_lifetime_delta: cfg.max_worker_lifetime_delta,
        reload_on_rss: cfg.reload_on_rss,
        reload_on_pss: cfg.reload_on_pss,
        reload_on_uss: cfg.reload_on_uss,
        evil_reload_on_rss: cfg.evil_reload_on_rss,
        pool: pool_limits(cfg, capacity),
        min_lifetime: cfg.min_worker_lifetime,
        harakiri: cfg.harakiri,
        mercy: cfg.worker_reload_mercy,
        max_recycles: cfg.max_concurrent_recycles,
        order: match cfg.recycle_order {
            RecycleOrder::ReplaceFirst => pool::Order::ReplaceFirst,
            RecycleOrder::RetireFirst => pool::Order::RetireFirst,
        },
        boot_timeout: cfg.worker_boot_timeout,
        max_boot_failures: cfg.max_boot_failures,
    }
}

/// The pool rules in bytes. A percentage with no known capacity disables its rule (logged).
fn pool_limits(cfg: &Config, capacity: Option<&Capacity>) -> PoolLimits {
    let resolve = |name: &str, t: Option<MemoryThreshold>| -> Option<PoolRule> {
        let t = t?;
        let limit = match (t.amount, capacity) {
            (Amount::Bytes(b), _) => b,
            (amount, Some(c)) => amount.bytes_of(c.bytes),
            (_, None) => {
                error!("{name} = {t}: cannot read the cgroup limit or MemTotal; rule disabled");
                return None;
            }
        };
        Some(PoolRule {
            limit,
            cycles: t.cycles,
        })
    };
    PoolLimits {
        metric: cfg.pool_metric,
        soft: resolve("pool-soft-limit", cfg.pool_soft_limit),
        hard: resolve("pool-hard-limit", cfg.pool_hard_limit),
        soft_exec: cfg.pool_soft_exec.clone(),
        check_every: cfg.pool_check_interval,
    }
}

/// Says which pool rules are in force, in bytes, and what a percentage is a share of.
fn log_pool_rules(limits: &Limits, capacity: Option<&Capacity>) {
    let pool = &limits.pool;
    if !pool.active() {
        return;
    }
    let show = |r: Option<PoolRule>| {
        r.map_or("off".to_string(), |r| {
            format!("{} for {} check(s)", pool::mb(r.limit), r.cycles)
        })
    };
    info!(
        "pool memory rules ({}): soft limit {}, hard limit {}; capacity {}",
        pool.metric,
        show(pool.soft),
        show(pool.hard),
        capacity.map_or("unknown".to_string(), |c| c.to_string())
    );
}

/// What the master counted about memory, for the stats server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    /// Workers killed by a SIGKILL molt did not send (likely the OOM killer).
    pub foreign_sigkills: u64,
    /// Of those, the ones the cgroup's oom_kill counter confirmed.
    pub oom_kills: u64,
    /// Workers recycled by the pool rules (soft, hard, lease).
    pub pool_recycles: u64,
}

/// The decision-and-effect half of the master, generic over the effect layer.
pub struct Master<S: Sys> {
    pub sys: S,
    pub pool: Pool,
    board: Arc<Scoreboard>,
    threads: usize,
    sample_every: Nanos,
    last_sample: Nanos,
    /// Totals of dead workers, recycle reasons, memory history (for the stats server).
    pub book: Book,
    smaps_every: Nanos,
    last_smaps: Nanos,
    /// Memory events counted for stats (OOM kills, pool recycles).
    pub counters: MemoryCounters,
    /// The cgroup's oom_kill counter when molt last looked.
    oom_seen: Option<u64>,
}

impl<S: Sys> Master<S> {
    pub fn new(
        sys: S,
        pool: Pool,
        board: Arc<Scoreboard>,
        threads: usize,
        sample_every: Duration,
    ) -> Self {
        let mut sys = sys;
        let oom_seen = sys.oom_kills();
        Master {
            sys,
            pool,
            board,
            threads,
            sample_every: pool::nanos(sample_every),
            last_sample: 0,
            book: Book::default(),
            smaps_every: pool::nanos(Duration::from_secs(1)),
            last_smaps: 0,
            counters: MemoryCounters::default(),
            oom_seen,
        }
    }

    /// How often PSS/USS are read (they cost a page-table walk per process).
    pub fn set_smaps_interval(&mut self, every: Duration) {
        self.smaps_every = pool::nanos(every);
    }

    /// Applies signals, in priority order: shutdown beats reload beats respawn; once a
    /// shutdown has begun, the pool ignores reloads and respawns. Returns true when a
    /// reload (SIGHUP) is due: the caller re-reads the configuration, then calls
    /// [`Master::reload`].
    pub fn on_signals(&mut self, p: Pending) -> bool {
        if p.int_or_quit > 0 {
            info!("SIGINT/SIGQUIT: quick shutdown");
            self.pool.shutdown(Shutdown::Quick);
        }
        if p.term > 0 {
            info!("SIGTERM: graceful shutdown (drain, then exit)");
            self.pool.shutdown(Shutdown::Graceful);
        }
        let stopping = self.pool.shutting_down().is_some();
        if stopping && (p.hup > 0 || p.usr1 > 0 || p.ttin > 0 || p.ttou > 0) {
            info!("shutting down: ignoring SIGHUP/SIGUSR1/SIGTTIN/SIGTTOU");
            return false;
        }
        if p.hup > 0 {
            info!("SIGHUP: reloading the configuration");
        } else if p.usr1 > 0 {
            info!("SIGUSR1: graceful respawn of every worker");
            self.pool.respawn_all(Reason::Respawn);
        }
        let target = (self.pool.target + p.ttin).saturating_sub(p.ttou).max(1);
        if target != self.pool.target {
            info!(
                "SIGTTIN/SIGTTOU: {} -> {} workers",
                self.pool.target, target
            );
            self.pool.set_target(target);
        }
        p.hup > 0
    }

    /// Applies a re-read configuration: new limits and worker count; every worker is
    /// then replaced gracefully so it runs with the new settings and app.
    pub fn reload(&mut self, cfg: &Config) {
        let capacity = self.sys.capacity();
        let limits = limits_of(cfg, capacity.as_ref());
        log_pool_rules(&limits, capacity.as_ref());
        self.pool.set_limits(limits);
        self.pool.set_target(cfg.processes);
        self.threads = cfg.threads;
        self.sample_every = pool::nanos(cfg.memory_sample_interval);
        self.smaps_every = pool::nanos(cfg.smaps_sample_interval);
        self.pool.respawn_all(Reason::Reload);
    }

    /// One turn after the wait: reap, sample, plan, apply. Returns the outcome on exit.
    pub fn turn(&mut self) -> Option<Outcome> {
        let now = self.sys.now();
        self.sys.relay(now);
        self.reap(now);
        self.sample(now);
        self.publish_accept_limit();
        let actions = self.pool.plan(now);
        self.apply(actions, now)
    }

    fn reap(&mut self, now: Nanos) {
        for (pid, how) in self.sys.reap() {
            // The slot's last words (final count, recycle flags) decide how to read the exit.
            if let Some(w) = self.pool.worker(pid) {
                let mut obs =
                    sample::read_slot(self.board.slot(w.slot), w.generation, self.threads);
                obs.rss = w.obs.rss;
                self.pool.observe(pid, obs, now);
            }
            let ending = self
                .pool
                .worker(pid)
                .map(|w| (w.slot, w.generation, phase_reason(&w.phase)));
            match self.pool.exited(pid, how, now) {
                Some(report) => {
                    if let Some((slot, generation, planned)) = ending {
                        let reason = exit_reason(planned, &report);
                        let slot = self.board.slot(slot);
                        self.book
                            .exited(report.id, pid, slot, generation, &reason, now);
                    }
                    let oom = self.oom_evidence(report.foreign_kill);
                    sample::log_exit(&report, oom);
                }
                None => info!("reaped pid {pid} ({how}), not a worker"),
            }
        }
    }

    /// Publishes the per-worker accept limit: each accepting worker's share of the open
    /// connections plus one. It always leaves room for N more connections before the
    /// next tick, so a worker at its limit never leaves a client waiting long.
    fn publish_accept_limit(&self) {
        let mut total = 0u64;
        let mut accepting = 0u64;
        for w in &self.pool.workers {
            if matches!(w.phase, pool::Phase::Serving | pool::Phase::Retiring { .. }) {
                let held = self
                    .board
                    .slot(w.slot)
                    .open_conns
                    .load(std::sync::atomic::Ordering::Relaxed);
                total += u64::from(held.min(1 << 20));
                accepting += 1;
            }
        }
        let limit = if accepting < 2 {
            0
        } else {
            total.div_ceil(accepting) + 1
        };
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.board
            .control()
            .accept_limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a SIGKILL molt did not send, and asks the cgroup whether it was the OOM
    /// killer (its oom_kill counter went up since molt last looked).
    fn oom_evidence(&mut self, foreign_kill: bool) -> sample::Oom {
        if !foreign_kill {
            return sample::Oom::NotAKill;
        }
        self.counters.foreign_sigkills += 1;
        let before = self.oom_seen;
        let after = self.sys.oom_kills();
        self.oom_seen = after.or(before);
        match (before, after) {
            (Some(b), Some(a)) if a > b => {
                self.counters.oom_kills += a - b;
                sample::Oom::Confirmed {
                    before: b,
                    after: a,
                }
            }
            (Some(_), Some(_)) => sample::Oom::NotConfirmed,
            _ => sample::Oom::NoCounter,
        }
    }

    /// Reads every worker's scoreboard slot and, when due, its memory from /proc (PSS/USS
    /// at their own, slower interval); after a memory round, publishes the pool leases.
    fn sample(&mut self, now: Nanos) {
        let memory_due = now.saturating_sub(self.last_sample) >= self.sample_every;
        if memory_due {
            self.last_sample = now;
        }
        let smaps_due = memory_due
            && needs_smaps(self.pool.limits())
            && now.saturating_sub(self.last_smaps) >= self.smaps_every;
        if smaps_due {
            self.last_smaps = now;
        }
        let pids: Vec<(i32, usize, u64)> = self
            .pool
            .workers
            .iter()
            .map(|w| (w.pid, w.slot, w.generation))
            .collect();
        let mut fresh_ready = false;
        for (pid, slot, generation) in pids {
            let mut obs = sample::read_slot(self.board.slot(slot), generation, self.threads);
            let previous = self.pool.worker(pid).map(|w| w.obs).unwrap_or_default();
            let booting = self
                .pool
                .worker(pid)
                .is_some_and(|w| w.phase == pool::Phase::Booting);
            // Measured at once: a worker that just became ready (so it gets a lease before
            // it has served much) and a new one (so its memory is never shown as unknown).
            let measure = memory_due
                || obs.wants_rss
                || obs.wants_pool
                || (booting && obs.ready)
                || previous.rss.is_none();
            self.measure(pid, &mut obs, previous, measure, smaps_due);
            if memory_due && self.book.enabled {
                let known = smaps_due.then(|| smaps_of_obs(&obs)).flatten();
                let detail = self.sys.memory_detail(pid, known);
                self.book.details.insert(pid, detail);
            }
            if self.pool.observe(pid, obs, now) {
                fresh_ready = true;
                if let Some(w) = self.pool.worker(pid) {
                    info!(
                        "worker {} (pid {pid}) ready in {} ms",
                        w.id,
                        now.saturating_sub(w.spawned_at) / 1_000_000
                    );
                }
            }
        }
        if memory_due && self.book.enabled {
            self.record_frame(now);
        }
        if memory_due || fresh_ready {
            self.pool.memory_sampled(now);
            self.publish_leases();
        }
    }

    /// Adds a memory frame to the history (live page), after a memory sample.
    fn record_frame(&mut self, now: Nanos) {
        let mut requests = self.book.dead.requests;
        let mut workers = Vec::with_capacity(self.pool.workers.len());
        for w in &self.pool.workers {
            requests = requests.saturating_add(w.obs.requests);
            if let Some(rss) = w.obs.rss {
                workers.push((w.id, w.pid, rss));
            }
        }
        self.book.frame(observe::book::Frame {
            at: now,
            requests,
            workers,
        });
    }

    /// Fills the memory fields of `obs`: measured now if `measure`, else carried over.
    fn measure(
        &mut self,
        pid: i32,
        obs: &mut pool::Observation,
        previous: pool::Observation,
        measure: bool,
        smaps: bool,
    ) {
        (obs.rss, obs.pss, obs.uss, obs.smaps_rss) =
            (previous.rss, previous.pss, previous.uss, previous.smaps_rss);
        if !measure {
            return;
        }
        // An exiting process reads as 0 resident pages: keep the last real figures.
        let Some(m) = self.sys.memory(pid, smaps).filter(|m| m.rss > 0) else {
            return;
        };
        obs.rss = Some(m.rss);
        if let Some(s) = m.smaps {
            (obs.pss, obs.uss, obs.smaps_rss) = (Some(s.pss), Some(s.uss), Some(s.rss));
        }
    }

    /// Writes each serving worker's RSS ceiling into its slot (0 clears it).
    fn publish_leases(&mut self) {
        if self.pool.limits().pool.soft.is_none() {
            return;
        }
        for (slot, ceiling) in self.pool.leases() {
            self.board
                .slot(slot)
                .mem_ceiling
                .store(ceiling.max(1), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn apply(&mut self, actions: Vec<Action>, now: Nanos) -> Option<Outcome> {
        for action in actions {
            match action {
                Action::Spawn { id, replaces } => self.spawn(id, replaces, now),
                Action::Stop { id, pid, reason } => {
                    info!("worker {id} (pid {pid}) {}: {reason}", verb(&reason));
                    self.count_pool_recycle(&reason);
                    if let Err(e) = self.sys.stop(pid) {
                        warn!("worker {id} (pid {pid}): SIGTERM failed: {e}");
                    }
                }
                Action::Kill { id, pid, reason } => {
                    warn!("worker {id} (pid {pid}) killed: {reason}");
                    if let Err(e) = self.sys.kill(pid) {
                        warn!("worker {id} (pid {pid}): SIGKILL failed: {e}");
                    }
                }
                Action::Exec { command, reason } => self.exec(&command, &reason),
                Action::Exit(outcome) => return Some(outcome),
            }
        }
        None
    }

    fn spawn(&mut self, id: u32, replaces: Option<i32>, now: Nanos) {
        let Some(slot) = self.free_slot() else {
            error!("no free scoreboard slot for worker {id} (limit {MAX_SLOTS})");
            self.pool.spawn_failed(id, now);
            return;
        };
        let t = self.pool.thresholds(id);
        let req = SpawnRequest {
            id,
            slot,
            generation: t.generation,
            max_requests: t.max_requests,
        };
        match self.sys.spawn(&req) {
            Ok(pid) => {
                match replaces {
                    Some(old) => info!("worker {id} (pid {pid}) spawned to replace pid {old}"),
                    None => info!("worker {id} (pid {pid}) spawned"),
                }
                self.pool.spawned(id, pid, slot, replaces, t, now);
            }
            Err(e) => {
                error!("cannot fork worker {id}: {e}");
                self.pool.spawn_failed(id, now);
            }
        }
    }

    /// The scoreboard (read by the stats server).
    pub fn board(&self) -> &Scoreboard {
        &self.board
    }

    fn count_pool_recycle(&mut self, reason: &Reason) {
        if matches!(
            reason,
            Reason::PoolSoft { .. } | Reason::PoolHard { .. } | Reason::PoolLease { .. }
        ) {
            self.counters.pool_recycles += 1;
        }
    }

    /// Runs `pool-soft-exec` without waiting (the reap loop collects it).
    fn exec(&mut self, command: &str, reason: &Reason) {
        let env = [("MOLT_POOL_REASON", reason.to_string())];
        match self.sys.exec(command, &env) {
            Ok(pid) => info!("pool-soft-exec (pid {pid}) started: {command} ({reason})"),
            Err(e) => warn!("pool-soft-exec: cannot run {command:?}: {e}"),
        }
    }

    fn free_slot(&self) -> Option<usize> {
        (0..MAX_SLOTS).find(|s| !self.pool.workers.iter().any(|w| w.slot == *s))
    }
}

/// The PSS/USS this sample read for `obs` (as a `Smaps`), if it read them.
fn smaps_of_obs(obs: &pool::Observation) -> Option<crate::sys::Smaps> {
    Some(crate::sys::Smaps {
        rss: obs.smaps_rss?,
        pss: obs.pss?,
        uss: obs.uss?,
    })
}

/// PSS or USS is needed by a per-worker limit or by the pool metric.
fn needs_smaps(limits: &Limits) -> bool {
    limits.reload_on_pss.is_some()
        || limits.reload_on_uss.is_some()
        || (limits.pool.active() && limits.pool.metric.needs_smaps())
}

/// The reason molt gave a worker when it asked it to stop, if it did.
fn phase_reason(phase: &pool::Phase) -> Option<Reason> {
    match phase {
        pool::Phase::Draining { reason, .. } | pool::Phase::Killed { reason } => {
            Some(reason.clone())
        }
        pool::Phase::Retiring { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

/// The reason name a worker's end is counted under in the stats and metrics.
fn exit_reason(planned: Option<Reason>, report: &pool::ExitReport) -> String {
    if let Some(r) = planned.or_else(|| report.self_retired.clone()) {
        return r.name().to_string();
    }
    if report.during_boot {
        "boot-failure".to_string()
    } else {
        "crash".to_string()
    }
}

fn verb(reason: &Reason) -> &'static str {
    match reason {
        Reason::Shutdown => "stopping",
        Reason::ScaleDown => "retiring",
        _ => "recycling",
    }
}

/// Builds the app factory for a configuration (re-run on every reload).
pub type AppMaker = Arc<dyn Fn(&Config) -> AppFactory + Send + Sync>;

/// What does not change across reloads: the fds and mappings workers inherit.
struct Fixed {
    listener_fds: Vec<RawFd>,
    /// The protocol of each listener, in the same order (`LISTEN_FDNAMES` for exec'd workers).
    protocols: Vec<Protocol>,
    board: Arc<Scoreboard>,
    close_fds: Vec<RawFd>,
    notify_write: RawFd,
    master_pid: nix::unistd::Pid,
}

impl Fixed {
    /// The closure that prepares each fork's [`ChildSpec`] under `cfg`.
    fn builder(&self, cfg: &Config, app: AppFactory) -> Box<dyn Fn(&SpawnRequest) -> ChildSpec> {
        let (listeners, board, close_fds) = (
            self.listener_fds.clone(),
            self.board.clone(),
            self.close_fds.clone(),
        );
        let (notify_fd, master_pid) = (self.notify_write, self.master_pid);
        let base = WorkerLimits {
            buffer_size: cfg.buffer_size,
            limit_post: cfg.limit_post,
            header_timeout: cfg.header_timeout,
            keepalive_timeout: cfg.keepalive_timeout,
            threads: cfg.threads,
            max_requests: None,
            drain_at_max_requests: cfg.recycle_order == RecycleOrder::RetireFirst,
            reload_on_rss: cfg.reload_on_rss,
            pool_lease: cfg.pool_soft_limit.is_some(),
        };
        let setup = WorkerSetup::from_config(cfg);
        // The exec kind's environment is read once per configuration, not per fork.
        let exec = match &cfg.app {
            AppSpec::Exec(spec) => Some((spec.clone(), base_env(&cfg.env), cfg.chdir.clone())),
            _ => None,
        };
        let protocols = self.protocols.clone();
        Box::new(move |req: &SpawnRequest| ChildSpec {
            id: req.id,
            slot: req.slot,
            listeners: listeners.clone(),
            protocols: protocols.clone(),
            board: board.clone(),
            notify_fd,
            close_fds: close_fds.clone(),
            master_signals: signals::HANDLED.to_vec(),
            master_pid,
            limits: WorkerLimits {
                max_requests: req.max_requests,
                ..base.clone()
            },
            setup: setup.clone(),
            app: app.clone(),
            exec: exec.as_ref().map(|(spec, env, chdir)| {
                let who = ExecIdentity {
                    id: req.id,
                    generation: req.generation,
                    master_pid: master_pid.as_raw(),
                };
                ExecPlan::new(spec, who, &protocols, chdir.as_deref(), env)
            }),
        })
    }
}

/// Everything the master owns while it runs.
struct Running {
    master: Master<RealSys>,
    signals: Signals,
    notify_read: OwnedFd,
    loaded: Loaded,
    make_app: AppMaker,
    fixed: Fixed,
    touch: reload::TouchWatch,
    /// The service manager's notify socket (systemd `Type=notify`), if any.
    notifier: Option<Notifier>,
    /// READY=1 was sent for the current configuration.
    announced: bool,
    /// STOPPING=1 was sent.
    stopping: bool,
    /// The stats server (`stats`), served from this loop.
    stats: Option<StatsServer>,
    _listeners: Vec<Bound>,
    _pidfile: Option<Pidfile>,
}

/// Runs molt with the loaded configuration until shutdown. `make_app` builds the app
/// factory for a configuration; the factory runs inside each worker.
pub fn run(loaded: Loaded, make_app: AppMaker) -> Result<(), Error> {
    if let Some(path) = &loaded.config.logto {
        logfile::redirect_stderr(path).map_err(|e| Error::os("opening logto", e))?;
    }
    for notice in &loaded.notices {
        warn!("{notice}");
    }
    let cfg = loaded.config.clone();
    let activated = systemd::take_listen_fds();
    let notifier = Notifier::from_env();
    signals::block().map_err(|e| Error::os("blocking signals", e))?;
    let signals = Signals::install().map_err(|e| Error::os("installing signal handlers", e))?;
    let perms = SocketPerms {
        mode: cfg.chmod_socket,
        owner: cfg.chown_socket,
    };
    let listeners = listen::adopt_or_bind(&cfg.listeners, activated, cfg.listen, perms)?;
    for l in &listeners {
        info!(
            "listening on {} ({}, {})",
            l.local,
            l.requested,
            l.protocol.name()
        );
    }
    let board = Arc::new(Scoreboard::new().map_err(|e| Error::os("mapping the scoreboard", e))?);
    let (notify_read, notify_write) = notify_pipe()?;
    let pidfile = cfg.pidfile.as_deref().map(Pidfile::create).transpose()?;
    let stats = match &cfg.stats {
        Some(addr) => Some(StatsServer::bind(addr, cfg.stats_http)?),
        None => None,
    };
    if let Some(s) = &stats {
        let mode = if cfg.stats_http { "http" } else { "json" };
        info!("stats server listening on {} ({mode})", s.bound().local);
    }
    let mut close_fds = signals.fds();
    close_fds.push(notify_read.as_raw_fd());
    close_fds.extend(stats.as_ref().map(|s| s.bound().raw()));
    let fixed = Fixed {
        listener_fds: listeners.iter().map(Bound::raw).collect(),
        protocols: listeners.iter().map(|l| l.protocol).collect(),
        board: board.clone(),
        close_fds,
        notify_write,
        master_pid: getpid(),
    };
    let sys = RealSys::new(fixed.builder(&cfg, make_app(&cfg)), board.clone());
    let seed = cfg
        .jitter_seed
        .unwrap_or_else(|| crate::scoreboard::mono_ns() ^ u64::from(std::process::id()));
    let capacity = crate::sys::capacity();
    let limits = limits_of(&cfg, capacity.as_ref());
    log_pool_rules(&limits, capacity.as_ref());
    let pool = Pool::new(cfg.processes, limits, seed);
    let mut master = Master::new(sys, pool, board, cfg.threads, cfg.memory_sample_interval);
    master.set_smaps_interval(cfg.smaps_sample_interval);
    master.book = Book::new(stats.is_some());
    info!(
        "molt {} master pid {} starting {} worker(s)",
        env!("CARGO_PKG_VERSION"),
        getpid(),
        cfg.processes
    );
    let touch = reload::TouchWatch::new(&cfg.touch_reload);
    let mut running = Running {
        master,
        signals,
        notify_read,
        loaded,
        make_app,
        fixed,
        touch,
        notifier,
        announced: false,
        stopping: false,
        stats,
        _listeners: listeners,
        _pidfile: pidfile,
    };
    signals::unblock().map_err(|e| Error::os("unblocking signals", e))?;
    let outcome = running.event_loop();
    // Always (as before `vacuum` was real): a clean exit leaves no socket molt created.
    // The inode check keeps a successor's socket and systemd's sockets in place.
    listen::remove_created(&running._listeners);
    if let Some(s) = &running.stats {
        listen::remove_created(std::slice::from_ref(s.bound()));
    }
    match outcome? {
        Outcome::Clean => {
            info!("all workers stopped; bye");
            Ok(())
        }
        Outcome::BootFailure(reason) => Err(Error::BootFailure { reason }),
    }
}

impl Running {
    fn event_loop(&mut self) -> Result<Outcome, Error> {
        loop {
            let pending = self.signals.take();
            if pending.usr2 > 0 {
                self.reopen_logs();
            }
            let respawn = pending.usr1 > 0;
            let hup = self.master.on_signals(pending);
            let running = self.master.pool.shutting_down().is_none();
            if (hup || self.touch.changed()) && running {
                self.reload();
            } else if respawn && running {
                self.renew_app();
            }
            drain(self.notify_read.as_raw_fd());
            if let Some(outcome) = self.master.turn() {
                return Ok(outcome);
            }
            self.tell_manager();
            self.wait()?;
            self.serve_stats();
        }
    }

    /// sd_notify: READY=1 once the pool first has all its workers ready (again after a
    /// reload), STOPPING=1 once a shutdown begins.
    fn tell_manager(&mut self) {
        let Some(n) = &self.notifier else { return };
        let pool = &self.master.pool;
        if pool.shutting_down().is_some() {
            if !self.stopping {
                n.send("STOPPING=1\nSTATUS=stopping");
                self.stopping = true;
            }
            return;
        }
        let ready = pool.workers.iter().filter(|w| w.ready_at.is_some()).count();
        if !self.announced && ready >= pool.target {
            n.send(&format!("READY=1\nSTATUS={ready} worker(s) ready"));
            self.announced = true;
        }
    }

    /// Serves the stats clients that are ready (never blocks: see `observe::server`).
    fn serve_stats(&mut self) {
        let Running {
            stats: Some(stats),
            master,
            _listeners: listeners,
            loaded,
            ..
        } = self
        else {
            return;
        };
        let now = master.sys.now();
        let view = View {
            pool: &master.pool,
            board: master.board(),
            book: &master.book,
            threads: loaded.config.threads,
            now,
            unix_now: unix_now(),
            sockets: listeners.iter().map(socket_queue).collect(),
            leak_finder: loaded.config.leak_finder || loaded.config.memory_report,
            memory: master.counters,
        };
        stats.service(now, &mut |want| answer(&view, want));
    }

    /// Re-reads the configuration; a valid one is applied, an invalid one changes nothing.
    fn reload(&mut self) {
        if let Some(n) = &self.notifier {
            n.reloading();
            self.announced = false;
        }
        let Some(new) = reload::reread(&self.loaded) else {
            return;
        };
        let app = (self.make_app)(&new.config);
        self.master
            .sys
            .set_builder(self.fixed.builder(&new.config, app));
        self.master.reload(&new.config);
        self.touch = reload::TouchWatch::new(&new.config.touch_reload);
        self.loaded = new;
    }

    /// SIGUSR1: the same configuration, a fresh app factory (a new Python zygote, so
    /// the respawned workers run the code on disk now, as after a reload).
    fn renew_app(&mut self) {
        let app = (self.make_app)(&self.loaded.config);
        self.master
            .sys
            .set_builder(self.fixed.builder(&self.loaded.config, app));
    }

    /// SIGUSR2: reopen `logto` here, then in every worker.
    fn reopen_logs(&mut self) {
        let Some(path) = self.loaded.config.logto.clone() else {
            info!("SIGUSR2: no logto file to reopen");
            return;
        };
        if let Err(e) = logfile::redirect_stderr(&path) {
            error!("SIGUSR2: cannot reopen {}: {e}", path.display());
            return;
        }
        info!("SIGUSR2: reopened {}", path.display());
        crate::wsgi::zygote::reopen_logs();
        for w in &self.master.pool.workers {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(w.pid),
                nix::sys::signal::Signal::SIGUSR2,
            );
        }
    }

    fn wait(&self) -> Result<(), Error> {
        // SAFETY: both fds live as long as `self`.
        let (sig, note) = unsafe {
            (
                BorrowedFd::borrow_raw(self.signals.fd()),
                BorrowedFd::borrow_raw(self.notify_read.as_raw_fd()),
            )
        };
        let extra = self.master.sys.wait_fds();
        let mut fds = vec![
            PollFd::new(sig, PollFlags::POLLIN),
            PollFd::new(note, PollFlags::POLLIN),
        ];
        // SAFETY: the exec'd workers' sockets live in `sys` until their worker is reaped,
        // which cannot happen during this poll.
        fds.extend(
            extra
                .iter()
                .map(|fd| PollFd::new(unsafe { BorrowedFd::borrow_raw(*fd) }, PollFlags::POLLIN)),
        );
        for (fd, flags) in self.stats.iter().flat_map(StatsServer::poll_set) {
            // SAFETY: the stats server owns these fds until the next `service`.
            fds.push(PollFd::new(unsafe { BorrowedFd::borrow_raw(fd) }, flags));
        }
        let timeout = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(Error::os("poll", e)),
        }
    }
}

/// Renders one stats answer.
fn answer(view: &View<'_>, want: Want) -> Answer {
    match want {
        Want::Json => ("application/json", observe::stats::document(view)),
        Want::Metrics => (
            "text/plain; version=0.0.4; charset=utf-8",
            observe::metrics::render(view),
        ),
        Want::Page => ("text/html; charset=utf-8", observe::page::page(view)),
        Want::Fragment => ("text/html; charset=utf-8", observe::page::fragment(view)),
        Want::Leaks => (
            "text/plain; charset=utf-8",
            observe::top::leak_report(&view.leaks()),
        ),
        Want::NotFound => (
            "text/plain",
            "not found: try /stats, /metrics, /live, /leaks\n".into(),
        ),
    }
}

fn socket_queue(l: &Bound) -> SocketQueue {
    let (queue, max_queue) = observe::queue::depth(l.raw()).unwrap_or((0, 0));
    SocketQueue {
        name: l.local.clone(),
        queue,
        max_queue,
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn notify_pipe() -> Result<(OwnedFd, RawFd), Error> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(|e| Error::os("creating the notify pipe", e))?;
    // The write end lives for the whole process: every worker inherits it.
    let w_raw = std::os::fd::IntoRawFd::into_raw_fd(w);
    Ok((r, w_raw))
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 512];
    // SAFETY: reading into a local buffer from an fd we own.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}
