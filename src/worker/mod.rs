//! Worker processes: what a child does right after fork, and the state its threads share.
//!
//! Between fork and serving, a worker: resets the signal dispositions and mask it
//! inherited from the master, asks the kernel to kill it when the master dies (and
//! checks the master did not die already), moves into its own process group (so the
//! master can kill it with everything it started), closes the master's private fds,
//! write-protects its siblings' scoreboard slots, and only then loads the app.

pub mod body;
pub mod exec;
pub mod http;
pub mod io;
pub(crate) mod privileges;
pub mod runtime;
pub mod uwsgi;

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use log::{error, info};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{getpid, getppid, setpgid, Pid};

use crate::app::App;
use crate::observe::reqlog::Format;
use crate::scoreboard::{flag, Scoreboard, Slot, SlotState};
use runtime::{Runtime, Stop};

pub use crate::pool::{EXIT_APP_LOAD, EXIT_ORPHAN};

/// Builds the app inside each worker, after fork.
pub type AppFactory = Arc<dyn Fn() -> Result<Box<dyn App>, String> + Send + Sync>;

/// Per-worker limits the runtime enforces itself.
#[derive(Debug, Clone)]
pub struct WorkerLimits {
    pub buffer_size: usize,
    pub limit_post: Option<u64>,
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub threads: usize,
    /// This worker's own threshold (max-requests plus its delta and jitter).
    pub max_requests: Option<u64>,
    /// Stop accepting right after the max-requests'th request (retire-first order: exact
    /// counts, as uWSGI); otherwise keep serving until the replacement is ready.
    pub drain_at_max_requests: bool,
    pub reload_on_rss: Option<u64>,
    /// Enforce the RSS ceiling the master leases in the slot (pool-soft-limit is set).
    pub pool_lease: bool,
}

/// Process settings a worker applies to itself after fork, before loading the app.
#[derive(Debug, Clone, Default)]
pub struct WorkerSetup {
    pub chdir: Option<std::path::PathBuf>,
    pub env: Vec<(String, String)>,
    pub uid: Option<crate::config::UserId>,
    pub gid: Option<crate::config::GroupId>,
    /// Reopened on SIGUSR2 (after the master reopened it).
    pub logto: Option<std::path::PathBuf>,
    /// What the worker records per request (log line, memory, routes).
    pub observe: ObserveSetup,
}

/// Per-request observation settings, from `disable-logging`, `log-format`,
/// `memory-report` and `leak-finder`.
#[derive(Debug, Clone, Default)]
pub struct ObserveSetup {
    pub log: bool,
    pub log_format: Option<String>,
    pub memory_report: bool,
    pub leak_finder: bool,
}

impl WorkerSetup {
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        WorkerSetup {
            chdir: cfg.chdir.clone(),
            env: cfg.env.clone(),
            uid: cfg.uid.clone(),
            gid: cfg.gid.clone(),
            logto: cfg.logto.clone(),
            observe: ObserveSetup {
                log: !cfg.disable_logging,
                log_format: cfg.log_format.clone(),
                memory_report: cfg.memory_report,
                leak_finder: cfg.leak_finder,
            },
        }
    }
}

/// Everything a child needs, prepared by the master before fork.
pub struct ChildSpec {
    pub id: u32,
    pub slot: usize,
    pub listeners: Vec<RawFd>,
    /// The front protocol of each listener, in the same order.
    pub protocols: Vec<crate::config::Protocol>,
    pub board: Arc<Scoreboard>,
    /// Write end of the master's notify pipe (non-blocking).
    pub notify_fd: RawFd,
    /// Master fds a worker must not keep (signal pipe, notify read end, ...).
    pub close_fds: Vec<RawFd>,
    /// Signals the master handles; reset to default in the child.
    pub master_signals: Vec<Signal>,
    pub master_pid: Pid,
    pub limits: WorkerLimits,
    pub setup: WorkerSetup,
    pub app: AppFactory,
    /// `Some` for the exec kind: the command to exec after setup, prepared before fork
    /// (or why it could not be prepared, reported by the child as an app-load failure).
    pub exec: Option<Result<exec::ExecPlan, String>>,
}

/// State shared by a worker's threads.
pub struct WorkerShared {
    pub listeners: Vec<RawFd>,
    /// The front protocol of each listener, in the same order.
    pub protocols: Vec<crate::config::Protocol>,
    pub app: Box<dyn App>,
    pub limits: WorkerLimits,
    /// Set once the worker stops accepting.
    pub draining: AtomicBool,
    board: Arc<Scoreboard>,
    slot: usize,
    notify_fd: RawFd,
    wakers: Vec<Arc<EventFd>>,
    /// Connections each thread holds. With several threads, only the least loaded ones
    /// accept: a thread blocked in the app must not hold a fresh connection whose first
    /// request then waits behind it.
    pub thread_conns: Vec<std::sync::atomic::AtomicU32>,
    memory: Option<MemoryProbe>,
    /// The `logto` file, reopened on SIGUSR2.
    pub logto: Option<std::path::PathBuf>,
    /// The compiled request log format; `None` under `disable-logging`.
    pub log: Option<crate::observe::reqlog::Format>,
    /// Measure each request's memory change (`memory-report`, `leak-finder`, or a
    /// log format that prints memory).
    pub measure_requests: bool,
    /// Count each request's growth per route in the slot (`leak-finder`).
    pub leak_finder: bool,
    /// This worker's id and pid, for the log line.
    pub id: u32,
    pub pid: u32,
}

impl WorkerShared {
    /// This worker's scoreboard slot.
    pub fn slot(&self) -> &Slot {
        self.board.slot(self.slot)
    }

    /// The most connections this worker should hold (0 = no limit), from the master.
    /// True when `thread` holds no more connections than any sibling.
    pub fn least_loaded(&self, thread: usize) -> bool {
        let mine = self.thread_conns[thread].load(Relaxed);
        self.thread_conns.iter().all(|c| mine <= c.load(Relaxed))
    }

    /// Wakes every thread but `thread` (to re-check whether it should accept).
    pub fn wake_siblings(&self, thread: usize) {
        for (t, w) in self.wakers.iter().enumerate() {
            if t != thread {
                let _ = w.write(1);
            }
        }
    }

    pub fn accept_limit(&self) -> u32 {
        self.board.control().accept_limit.load(Relaxed)
    }

    /// Stops accepting on every thread (idempotent).
    pub fn request_drain(&self) {
        if self.draining.swap(true, Relaxed) {
            return;
        }
        self.slot().set_state(SlotState::Draining);
        for w in &self.wakers {
            let _ = w.write(1);
        }
    }

    /// Checks the recycle thresholds the worker owns, after each request.
    pub fn after_request(&self, served: u64) {
        if self.limits.max_requests == Some(served) {
            self.raise(flag::MAX_REQUESTS);
            if self.limits.drain_at_max_requests {
                self.request_drain();
            }
        }
        if let Some(probe) = &self.memory {
            self.check_memory(probe.resident_bytes());
        }
    }

    /// Memory is the emergency: over reload-on-rss, or over the RSS ceiling the master
    /// leased it under pool-soft-limit, the worker stops taking work now, so neither
    /// limit is passed by more than this request's growth. Only RSS is checked here
    /// (one pread of statm); PSS/USS cost a page-table walk and are the master's job.
    fn check_memory(&self, rss: u64) {
        let slot = self.slot();
        slot.self_rss.store(rss, Relaxed);
        if self.draining.load(Relaxed) {
            return;
        }
        if self.limits.reload_on_rss.is_some_and(|limit| rss >= limit) {
            self.raise(flag::RSS);
            self.request_drain();
            return;
        }
        let ceiling = slot.mem_ceiling.load(Relaxed);
        if self.limits.pool_lease && ceiling > 0 && rss >= ceiling {
            self.raise(flag::POOL);
            self.request_drain();
        }
    }

    /// Resident and virtual bytes now, when requests are measured (one `pread`).
    pub fn request_memory(&self) -> Option<(u64, u64)> {
        if !self.measure_requests {
            return None;
        }
        self.memory.as_ref().map(MemoryProbe::sample)
    }

    fn raise(&self, bit: u32) {
        self.slot().flags.fetch_or(bit, Relaxed);
        self.notify();
    }

    /// Wakes the master (one byte; a full pipe already means it will wake).
    pub fn notify(&self) {
        // SAFETY: writing one byte from a valid buffer to an fd we hold.
        unsafe { libc::write(self.notify_fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Reads the resident memory of this process and its helper processes (the app's
/// Python child) with one `pread` per process per check (the fds stay open).
pub struct MemoryProbe {
    statm: Vec<File>,
    page: u64,
}

impl MemoryProbe {
    /// Opens `/proc/self/statm` and `/proc/PID/statm` of each helper. A helper that is
    /// already gone is left out (the worker will notice it is gone on its next request).
    pub fn open(helpers: &[i32]) -> std::io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        let mut statm = vec![File::open("/proc/self/statm")?];
        statm.extend(
            helpers
                .iter()
                .filter_map(|pid| File::open(format!("/proc/{pid}/statm")).ok()),
        );
        Ok(MemoryProbe { statm, page })
    }

    /// Resident set size in bytes of the worker plus its helpers (0 for one unreadable).
    pub fn resident_bytes(&self) -> u64 {
        self.sample().0
    }

    /// (resident, virtual) bytes of the worker plus its helpers, one `pread` each.
    pub fn sample(&self) -> (u64, u64) {
        self.statm.iter().fold((0, 0), |(r, v), f| {
            let (rp, vp) = statm_pages(f);
            (r + rp * self.page, v + vp * self.page)
        })
    }
}

/// (resident, virtual) pages from one statm file (zeros if it cannot be read).
fn statm_pages(statm: &File) -> (u64, u64) {
    let mut buf = [0u8; 128];
    let n = statm.read_at(&mut buf, 0).unwrap_or(0);
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let mut fields = text
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let vsz = fields.next().unwrap_or(0);
    (fields.next().unwrap_or(0), vsz)
}

/// The child side of a fork: never returns.
pub fn child_main(mut spec: ChildSpec) -> ! {
    let code = match prepare(&spec) {
        Ok(()) => match spec.exec.take() {
            None => serve(spec),
            Some(Ok(mut plan)) => plan.exec(&spec.listeners),
            Some(Err(why)) => {
                error!("worker {}: cannot prepare worker-exec: {why}", spec.id);
                EXIT_APP_LOAD
            }
        },
        Err(code) => code,
    };
    // SAFETY: ending the child without running the master's atexit state twice.
    unsafe { libc::_exit(code) }
}

/// Process-level setup right after fork. Returns an exit code on failure.
fn prepare(spec: &ChildSpec) -> Result<(), i32> {
    reset_signals(&spec.master_signals);
    if set_parent_death_signal().is_err() || getppid() != spec.master_pid {
        return Err(EXIT_ORPHAN);
    }
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for fd in &spec.close_fds {
        // SAFETY: closing master-private fds this process inherited and will not use.
        unsafe { libc::close(*fd) };
    }
    if let Err(e) = spec.board.protect_all_but(spec.slot) {
        error!("worker {}: cannot protect the scoreboard: {e}", spec.id);
        return Err(1);
    }
    spec.board
        .slot(spec.slot)
        .pid
        .store(getpid().as_raw(), Relaxed);
    apply_setup(spec.id, &spec.setup)
}

/// chdir, environment, then the privilege drop (always last: it may remove the right to
/// do the others).
fn apply_setup(id: u32, setup: &WorkerSetup) -> Result<(), i32> {
    if let Some(dir) = &setup.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            error!("worker {id}: chdir {}: {e}", dir.display());
            return Err(EXIT_APP_LOAD);
        }
    }
    for (k, v) in &setup.env {
        // The child is single-threaded here, so changing the environment is sound.
        std::env::set_var(k, v);
    }
    privileges::drop_to(setup.uid.as_ref(), setup.gid.as_ref()).map_err(|e| {
        error!("worker {id}: cannot drop privileges: {e}");
        EXIT_APP_LOAD
    })
}

fn reset_signals(master_signals: &[Signal]) {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in master_signals {
        // SAFETY: installing the default disposition is always sound.
        let _ = unsafe { sigaction(*sig, &default) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn set_parent_death_signal() -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
}

/// Loads the app and runs the threads; returns the exit code.
fn serve(spec: ChildSpec) -> i32 {
    let app = match (spec.app)() {
        Ok(app) => app,
        Err(reason) => {
            error!("worker {}: the app cannot be loaded: {reason}", spec.id);
            return EXIT_APP_LOAD;
        }
    };
    publish_helper(&spec, app.as_ref());
    let signals = match worker_signalfd() {
        Ok(s) => s,
        Err(e) => {
            error!("worker {}: signalfd: {e}", spec.id);
            return 1;
        }
    };
    let threads = spec.limits.threads.max(1);
    let wakers: Result<Vec<_>, _> = (0..threads)
        .map(|_| {
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map(Arc::new)
        })
        .collect();
    let Ok(wakers) = wakers else { return 1 };
    let obs = &spec.setup.observe;
    let log = if obs.log {
        match Format::configured(obs.log_format.as_deref(), obs.memory_report) {
            Ok(f) => Some(f),
            Err(e) => {
                error!("worker {}: {e}", spec.id);
                return EXIT_APP_LOAD;
            }
        }
    } else {
        None
    };
    let measure_requests =
        obs.memory_report || obs.leak_finder || log.as_ref().is_some_and(|f| f.needs_memory);
    let wants_probe =
        spec.limits.reload_on_rss.is_some() || spec.limits.pool_lease || measure_requests;
    let memory = wants_probe
        .then(|| MemoryProbe::open(&app.helper_pids()))
        .and_then(Result::ok);
    let shared = WorkerShared {
        listeners: spec.listeners.clone(),
        protocols: spec.protocols.clone(),
        app,
        limits: spec.limits.clone(),
        draining: AtomicBool::new(false),
        board: spec.board.clone(),
        slot: spec.slot,
        notify_fd: spec.notify_fd,
        wakers: wakers.clone(),
        thread_conns: (0..threads)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect(),
        memory,
        logto: spec.setup.logto.clone(),
        log,
        measure_requests,
        leak_finder: obs.leak_finder,
        id: spec.id,
        pid: std::process::id(),
    };
    run_threads(&shared, &wakers, &signals, spec.id)
}

/// Tells the master which process serves this worker's app besides itself, so its
/// memory counts as the worker's even when it is not a descendant (a zygote's fork).
fn publish_helper(spec: &ChildSpec, app: &dyn App) {
    if let Some(&pid) = app.helper_pids().first() {
        spec.board.slot(spec.slot).helper_pid.store(pid, Relaxed);
    }
}

fn worker_signalfd() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR2,
    ] {
        mask.add(s);
    }
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

fn run_threads(shared: &WorkerShared, wakers: &[Arc<EventFd>], signals: &SignalFd, id: u32) -> i32 {
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (t, waker) in wakers.iter().enumerate().skip(1) {
            let waker = waker.clone();
            handles.push(scope.spawn(move || run_one(shared, t, waker, None)));
        }
        let mut main = match Runtime::new(shared, 0, wakers[0].clone(), Some(signals)) {
            Ok(rt) => rt,
            Err(e) => {
                error!("worker {id}: cannot start: {e}");
                return 1;
            }
        };
        shared.slot().set_state(SlotState::Ready);
        shared.notify();
        match main.run() {
            Ok(Stop::Immediate) => {
                // SAFETY: quick shutdown: leave at once, other threads included.
                unsafe { libc::_exit(0) }
            }
            Ok(_) => {}
            Err(e) => error!("worker {id}: event loop failed: {e}"),
        }
        shared.request_drain();
        for h in handles {
            let _ = h.join();
        }
        info!("worker {id} (pid {}) drained, exiting", getpid());
        0
    })
}

fn run_one(shared: &WorkerShared, thread: usize, waker: Arc<EventFd>, signals: Option<&SignalFd>) {
    match Runtime::new(shared, thread, waker, signals) {
        Ok(mut rt) => {
            if let Err(e) = rt.run() {
                error!("worker thread {thread}: {e}");
            }
        }
        Err(e) => error!("worker thread {thread} cannot start: {e}"),
    }
}

/// The raw fd of anything that has one (for the fd lists in [`ChildSpec`]).
pub fn raw<T: AsRawFd>(t: &T) -> RawFd {
    t.as_raw_fd()
}
