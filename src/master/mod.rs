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

mod pidfile;
mod sample;
pub mod signals;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::getpid;

use crate::config::{Config, RecycleOrder};
use crate::error::Error;
use crate::listen::{bind_all, Bound};
use crate::pool::{self, Action, Limits, Nanos, Outcome, Pool, Reason, Shutdown};
use crate::scoreboard::{Scoreboard, MAX_SLOTS};
use crate::sys::{RealSys, SpawnRequest, Sys};
use crate::worker::{AppFactory, ChildSpec, WorkerLimits};
pub use pidfile::Pidfile;
use signals::{Pending, Signals};

/// The loop's tick: deadlines (mercy, harakiri, lifetime) are checked at least this often.
const TICK: Duration = Duration::from_millis(100);

/// Projects the config onto the planner's limits.
pub fn limits_of(cfg: &Config) -> Limits {
    Limits {
        max_requests: cfg.max_requests,
        max_requests_delta: cfg.max_requests_delta,
        max_requests_jitter: cfg.max_requests_jitter,
        max_lifetime: cfg.max_worker_lifetime,
        max_lifetime_delta: cfg.max_worker_lifetime_delta,
        reload_on_rss: cfg.reload_on_rss,
        evil_reload_on_rss: cfg.evil_reload_on_rss,
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

/// The decision-and-effect half of the master, generic over the effect layer.
pub struct Master<S: Sys> {
    pub sys: S,
    pub pool: Pool,
    board: Arc<Scoreboard>,
    threads: usize,
    sample_every: Nanos,
    last_sample: Nanos,
}

impl<S: Sys> Master<S> {
    pub fn new(
        sys: S,
        pool: Pool,
        board: Arc<Scoreboard>,
        threads: usize,
        sample_every: Duration,
    ) -> Self {
        Master {
            sys,
            pool,
            board,
            threads,
            sample_every: pool::nanos(sample_every),
            last_sample: 0,
        }
    }

    /// Applies signals, in priority order: shutdown beats reload beats respawn; once a
    /// shutdown has begun, the pool ignores reloads and respawns.
    pub fn on_signals(&mut self, p: Pending) {
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
            return;
        }
        if p.hup > 0 {
            info!("SIGHUP: reloading (graceful respawn of every worker)");
            self.pool.respawn_all(Reason::Reload);
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
    }

    /// One turn after the wait: reap, sample, plan, apply. Returns the outcome on exit.
    pub fn turn(&mut self) -> Option<Outcome> {
        let now = self.sys.now();
        self.reap(now);
        self.sample(now);
        let actions = self.pool.plan(now);
        self.apply(actions, now)
    }

    fn reap(&mut self, now: Nanos) {
        for (pid, how) in self.sys.reap() {
            match self.pool.exited(pid, how, now) {
                Some(report) => sample::log_exit(&report),
                None => info!("reaped pid {pid} ({how}), not a worker"),
            }
        }
    }

    fn sample(&mut self, now: Nanos) {
        let memory_due = now.saturating_sub(self.last_sample) >= self.sample_every;
        if memory_due {
            self.last_sample = now;
        }
        let pids: Vec<(i32, usize, u64)> = self
            .pool
            .workers
            .iter()
            .map(|w| (w.pid, w.slot, w.generation))
            .collect();
        for (pid, slot, generation) in pids {
            let mut obs = sample::read_slot(self.board.slot(slot), generation, self.threads);
            let previous = self.pool.worker(pid).and_then(|w| w.obs.rss);
            obs.rss = if memory_due || obs.wants_rss {
                self.sys.memory(pid).or(previous)
            } else {
                previous
            };
            if self.pool.observe(pid, obs, now) {
                if let Some(w) = self.pool.worker(pid) {
                    info!(
                        "worker {} (pid {pid}) ready in {} ms",
                        w.id,
                        now.saturating_sub(w.spawned_at) / 1_000_000
                    );
                }
            }
        }
    }

    fn apply(&mut self, actions: Vec<Action>, now: Nanos) -> Option<Outcome> {
        for action in actions {
            match action {
                Action::Spawn { id, replaces } => self.spawn(id, replaces, now),
                Action::Stop { id, pid, reason } => {
                    info!("worker {id} (pid {pid}) {}: {reason}", verb(&reason));
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

    fn free_slot(&self) -> Option<usize> {
        (0..MAX_SLOTS).find(|s| !self.pool.workers.iter().any(|w| w.slot == *s))
    }
}

fn verb(reason: &Reason) -> &'static str {
    match reason {
        Reason::Shutdown => "stopping",
        Reason::ScaleDown => "retiring",
        _ => "recycling",
    }
}

/// Everything the master owns while it runs.
struct Running {
    master: Master<RealSys>,
    signals: Signals,
    notify_read: OwnedFd,
    _listeners: Vec<Bound>,
    _pidfile: Option<Pidfile>,
}

/// Runs molt with the loaded configuration until shutdown. `app` builds the app inside
/// each worker.
pub fn run(loaded: crate::config::Loaded, app: AppFactory) -> Result<(), Error> {
    for notice in &loaded.notices {
        warn!("{notice}");
    }
    let cfg = &loaded.config;
    signals::block().map_err(|e| Error::os("blocking signals", e))?;
    let signals = Signals::install().map_err(|e| Error::os("installing signal handlers", e))?;
    let listeners = bind_all(&cfg.listeners, cfg.listen)?;
    for l in &listeners {
        info!("listening on {} ({})", l.local, l.requested);
    }
    let board = Arc::new(Scoreboard::new().map_err(|e| Error::os("mapping the scoreboard", e))?);
    let (notify_read, notify_write) = notify_pipe()?;
    let pidfile = cfg.pidfile.as_deref().map(Pidfile::create).transpose()?;
    let build = spec_builder(
        cfg,
        &listeners,
        &board,
        &signals,
        notify_read.as_raw_fd(),
        notify_write,
        app,
    );
    let sys = RealSys::new(build, board.clone());
    let seed = cfg
        .jitter_seed
        .unwrap_or_else(|| crate::scoreboard::mono_ns() ^ u64::from(std::process::id()));
    let pool = Pool::new(cfg.processes, limits_of(cfg), seed);
    let master = Master::new(sys, pool, board, cfg.threads, cfg.memory_sample_interval);
    info!(
        "molt {} master pid {} starting {} worker(s)",
        env!("CARGO_PKG_VERSION"),
        getpid(),
        cfg.processes
    );
    let mut running = Running {
        master,
        signals,
        notify_read,
        _listeners: listeners,
        _pidfile: pidfile,
    };
    signals::unblock().map_err(|e| Error::os("unblocking signals", e))?;
    let outcome = running.event_loop();
    cleanup_unix_sockets(&running._listeners);
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
            self.master.on_signals(pending);
            drain(self.notify_read.as_raw_fd());
            if let Some(outcome) = self.master.turn() {
                return Ok(outcome);
            }
            self.wait()?;
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
        let mut fds = [
            PollFd::new(sig, PollFlags::POLLIN),
            PollFd::new(note, PollFlags::POLLIN),
        ];
        let timeout = PollTimeout::try_from(TICK).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(Error::os("poll", e)),
        }
    }
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

fn spec_builder(
    cfg: &Config,
    listeners: &[Bound],
    board: &Arc<Scoreboard>,
    signals: &Signals,
    notify_read: RawFd,
    notify_write: RawFd,
    app: AppFactory,
) -> Box<dyn Fn(&SpawnRequest) -> ChildSpec> {
    let listener_fds: Vec<RawFd> = listeners.iter().map(Bound::raw).collect();
    let mut close_fds = signals.fds();
    close_fds.push(notify_read);
    let board = board.clone();
    let master_pid = getpid();
    let base = WorkerLimits {
        buffer_size: cfg.buffer_size,
        limit_post: cfg.limit_post,
        header_timeout: cfg.header_timeout,
        keepalive_timeout: cfg.keepalive_timeout,
        threads: cfg.threads,
        max_requests: None,
        drain_at_max_requests: cfg.recycle_order == RecycleOrder::RetireFirst,
        reload_on_rss: cfg.reload_on_rss,
    };
    Box::new(move |req: &SpawnRequest| ChildSpec {
        id: req.id,
        slot: req.slot,
        listeners: listener_fds.clone(),
        board: board.clone(),
        notify_fd: notify_write,
        close_fds: close_fds.clone(),
        master_signals: signals::HANDLED.to_vec(),
        master_pid,
        limits: WorkerLimits {
            max_requests: req.max_requests,
            ..base.clone()
        },
        app: app.clone(),
    })
}

fn cleanup_unix_sockets(listeners: &[Bound]) {
    for l in listeners {
        if let Some(path) = &l.unix_path {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != io::ErrorKind::NotFound {
                    warn!("cannot remove {}: {e}", path.display());
                }
            }
        }
    }
}
