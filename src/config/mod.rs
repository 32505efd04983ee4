//! Configuration: the typed settings that the rest of molt reads.
//!
//! `Config` is the contract between the configuration layer (settings table, uwsgi.ini,
//! TOML, command line, environment) and the master. Every field holds a value already
//! validated and converted to molt's internal units; nothing downstream parses strings.
//! Field names follow uWSGI's option names with `-` turned into `_`.

mod cli;
mod collect;
mod expand;
mod ini;
mod launch;
mod load;
pub mod memory;
mod print;
mod suggest;
pub mod table;
mod toml_file;
pub mod units;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::pool::Metric;
pub use load::{
    cli_main, cli_main_for, load, reload, ExitNow, Loaded, Mode, Provenance, Setting, Sources,
};
pub use memory::{Amount, MemoryThreshold};
pub use print::{help_text, options_markdown, print_config};

/// One listening address as written by the user (`HOST:PORT`, `:PORT` or a unix path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; an empty host (`:PORT`) means every IPv4 interface.
    Tcp { host: String, port: u16 },
    /// A unix stream socket at this path.
    Unix(PathBuf),
}

/// Which front protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (`http-socket`).
    Http,
    /// The uwsgi binary protocol, as nginx's `uwsgi_pass` speaks it (`socket`).
    Uwsgi,
}

impl Protocol {
    /// The name used in logs and in `LISTEN_FDNAMES` for exec'd workers.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Uwsgi => "uwsgi",
        }
    }
}

/// A listener the master binds before forking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: ListenAddr,
    pub protocol: Protocol,
}

/// The application the workers serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSpec {
    /// The built-in demo app (`--demo`).
    Demo,
    /// A Python WSGI app (`module` or `wsgi-file`, with `callable`, `home`, `pythonpath`).
    Wsgi(WsgiSpec),
    /// Any command that serves the listeners itself (`worker-exec`).
    Exec(ExecSpec),
    /// The app built into the program (a Rust app served through the library's
    /// `cli_main`), when no app option names another one.
    Embedded,
    /// No application configured: a configuration error at validation time.
    None,
}

/// A command each worker execs (`worker-exec`), with how molt cooperates with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command split into words (shell-style quoting, no shell involved, so the
    /// exec'd process is the worker itself and `LISTEN_PID` names it).
    pub argv: Vec<String>,
    /// The command speaks the worker protocol (`worker-exec-notify`): it is ready only at
    /// its `READY=1`, and its `REQUESTS=` counts drive max-requests.
    pub notify: bool,
    /// Without `notify`, a worker counts as ready this long after it was spawned
    /// (`worker-exec-ready-delay`), or at its `READY=1` if that comes first.
    pub ready_delay: Duration,
    /// The signal that asks the command to stop gracefully (`worker-exec-stop-signal`).
    pub stop_signal: i32,
}

/// Who owns a unix socket molt creates (`chown-socket = USER[:GROUP]`), resolved to ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Where the Python WSGI app is and how to import it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsgiSpec {
    /// Dotted module path (`pkg.wsgi`), without the `:callable` part; `None` with `wsgi_file`.
    pub module: Option<String>,
    /// A Python file to load as the app module (`wsgi-file`, alias `file`); `None` with `module`.
    pub wsgi_file: Option<PathBuf>,
    /// The WSGI callable's name in the module (`callable`, or `module = pkg:callable`).
    pub callable: String,
    /// The virtualenv / Python prefix (`home`, aliases `virtualenv`, `venv`, `pyhome`).
    pub home: Option<PathBuf>,
    /// Extra entries for `sys.path`, in order (`pythonpath`, repeatable).
    pub pythonpath: Vec<PathBuf>,
    /// Import the app in each worker's child after fork (`lazy-apps`), not once in the
    /// zygote: for apps whose import opens connections or starts threads.
    pub lazy_apps: bool,
}

/// A user to run workers as, resolved at validation time so a typo fails before binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    /// The numeric uid.
    pub id: u32,
    /// The user name (from the config or looked up), needed for `initgroups`.
    pub name: Option<String>,
    /// The user's primary group from the passwd entry, if the user exists there.
    pub primary_gid: Option<u32>,
}

/// A group to run workers as, resolved at validation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupId {
    /// The numeric gid.
    pub id: u32,
    /// The group name, if known.
    pub name: Option<String>,
}

/// In which order a recycle brings up the replacement and retires the old worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecycleOrder {
    /// Spawn the replacement, wait until it is ready, then retire the old worker (default):
    /// capacity never drops, at the cost of one extra worker's memory for a moment.
    ReplaceFirst,
    /// Retire the old worker first, then spawn: for hosts where the extra worker does not fit.
    RetireFirst,
}

/// Every setting molt acts on, validated, in internal units.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listeners bound by the master (`http-socket`, `socket`), or inherited from systemd.
    pub listeners: Vec<Listener>,
    /// The app the workers run.
    pub app: AppSpec,
    /// Number of workers (`processes`, alias `workers`). Always >= 1.
    pub processes: usize,
    /// Threads per worker (`threads`): requests served at once by one worker.
    pub threads: usize,
    /// Largest request head in bytes (`buffer-size`).
    pub buffer_size: usize,
    /// Largest request body in bytes (`limit-post`); `None` = unlimited.
    pub limit_post: Option<u64>,
    /// Listen backlog (`listen`).
    pub listen: i32,
    /// Mode of the unix sockets molt creates (`chmod-socket`); `None` = 0660.
    pub chmod_socket: Option<u32>,
    /// Owner of the unix sockets molt creates (`chown-socket`); `None` = molt's user.
    pub chown_socket: Option<SocketOwner>,
    /// Recycle after this many requests (`max-requests`); `None` = never.
    pub max_requests: Option<u64>,
    /// Per-worker-id spread added to max-requests, as uWSGI: `(id - 1) * delta`.
    pub max_requests_delta: u64,
    /// Random extra requests drawn per spawn in `0..=jitter`, as gunicorn's `max_requests_jitter`.
    pub max_requests_jitter: u64,
    /// Recycle after this lifetime (`max-worker-lifetime`); `None` = never.
    pub max_worker_lifetime: Option<Duration>,
    /// Per-worker-id spread added to the lifetime: `(id - 1) * delta`.
    pub max_worker_lifetime_delta: Duration,
    /// Graceful recycle when a worker's RSS reaches this many bytes (`reload-on-rss`, MB in files).
    pub reload_on_rss: Option<u64>,
    /// Graceful recycle when a worker's PSS reaches this many bytes (`reload-on-pss`, MB in files).
    pub reload_on_pss: Option<u64>,
    /// Graceful recycle when a worker's USS reaches this many bytes (`reload-on-uss`, MB in files).
    pub reload_on_uss: Option<u64>,
    /// The figure the pool rules sum over workers (`pool-metric`).
    pub pool_metric: Metric,
    /// Recycle the largest worker when the pool passes this (`pool-soft-limit`).
    pub pool_soft_limit: Option<MemoryThreshold>,
    /// Restart every worker when the pool stays over this (`pool-hard-limit`).
    pub pool_hard_limit: Option<MemoryThreshold>,
    /// Shell command run when the soft limit recycles a worker (`pool-soft-exec`).
    pub pool_soft_exec: Option<String>,
    /// How often the pool rules are checked (`pool-check-interval`).
    pub pool_check_interval: Duration,
    /// How often PSS/USS are read from smaps_rollup (`smaps-sample-interval`).
    pub smaps_sample_interval: Duration,
    /// Immediate SIGKILL when a worker's RSS reaches this many bytes (`evil-reload-on-rss`).
    pub evil_reload_on_rss: Option<u64>,
    /// A worker younger than this is not recycled for max-requests or lifetime.
    pub min_worker_lifetime: Duration,
    /// A request running longer than this kills its worker (`harakiri`).
    pub harakiri: Option<Duration>,
    /// Deadline of every graceful stop before SIGKILL (`worker-reload-mercy`).
    pub worker_reload_mercy: Duration,
    /// At most this many workers recycle at once (`max-concurrent-recycles`).
    pub max_concurrent_recycles: usize,
    /// Replacement-first or retire-first (`recycle-order`).
    pub recycle_order: RecycleOrder,
    /// A worker that is not ready after this long counts as a boot failure (`worker-boot-timeout`).
    pub worker_boot_timeout: Duration,
    /// Consecutive boot failures before molt gives up when no worker ever started (`max-boot-failures`).
    pub max_boot_failures: u32,
    /// Total deadline for a request head from the first byte or from idle (`header-timeout`).
    pub header_timeout: Duration,
    /// Idle keep-alive connections are closed after this long (`keepalive-timeout`).
    pub keepalive_timeout: Duration,
    /// How often the master samples worker memory from /proc (`memory-sample-interval`).
    pub memory_sample_interval: Duration,
    /// Written atomically once listening, removed on clean exit (`pidfile`).
    pub pidfile: Option<PathBuf>,
    /// Seed for the max-requests jitter (`jitter-seed`); `None` = random per start.
    pub jitter_seed: Option<u64>,
    /// Directory the workers (and the app) run in (`chdir`); `None` = molt's own cwd.
    pub chdir: Option<PathBuf>,
    /// Extra environment for the workers, in order (`env = KEY=VALUE`, repeatable).
    pub env: Vec<(String, String)>,
    /// Unknown and not-yet-supported options are errors instead of warnings (`strict`).
    pub strict: bool,
    /// Remove the pidfile and unix sockets molt created when it exits (`vacuum`).
    pub vacuum: bool,
    /// SIGTERM shuts molt down gracefully instead of reloading (`die-on-term`).
    pub die_on_term: bool,
    /// Append logs to this file instead of stderr; reopened on SIGUSR2 (`logto`).
    pub logto: Option<PathBuf>,
    /// No per-request log lines; errors and lifecycle events are still logged (`disable-logging`).
    pub disable_logging: bool,
    /// Drop workers to this user (`uid`): setgroups/initgroups, setgid, setuid, then verify.
    pub uid: Option<UserId>,
    /// Drop workers to this group (`gid`).
    pub gid: Option<GroupId>,
    /// Reload the configuration (as SIGHUP) when any of these files' mtime changes (`touch-reload`).
    pub touch_reload: Vec<PathBuf>,
    /// Log each worker's memory in its request log lines (`memory-report`).
    pub memory_report: bool,
    /// The request log line's format with uWSGI's `%(var)` names (`log-format`); `None` = molt's.
    pub log_format: Option<String>,
    /// Where the stats server listens (`stats`); `None` = no stats server.
    pub stats: Option<ListenAddr>,
    /// The stats socket speaks HTTP (`stats-http`): JSON, `/metrics`, the live page.
    pub stats_http: bool,
    /// Measure per-request memory growth per route (`leak-finder`).
    pub leak_finder: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            app: AppSpec::None,
            processes: 1,
            threads: 1,
            buffer_size: 4096,
            limit_post: None,
            listen: 1024,
            chmod_socket: None,
            chown_socket: None,
            max_requests: None,
            max_requests_delta: 0,
            max_requests_jitter: 0,
            max_worker_lifetime: None,
            max_worker_lifetime_delta: Duration::ZERO,
            reload_on_rss: None,
            reload_on_pss: None,
            reload_on_uss: None,
            pool_metric: Metric::Rss,
            pool_soft_limit: None,
            pool_hard_limit: None,
            pool_soft_exec: None,
            pool_check_interval: Duration::from_secs(1),
            smaps_sample_interval: Duration::from_secs(1),
            evil_reload_on_rss: None,
            min_worker_lifetime: Duration::from_secs(1),
            harakiri: None,
            worker_reload_mercy: Duration::from_secs(60),
            max_concurrent_recycles: 1,
            recycle_order: RecycleOrder::ReplaceFirst,
            worker_boot_timeout: Duration::from_secs(60),
            max_boot_failures: 5,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            memory_sample_interval: Duration::from_secs(1),
            pidfile: None,
            jitter_seed: None,
            chdir: None,
            env: Vec::new(),
            strict: false,
            vacuum: false,
            die_on_term: false,
            logto: None,
            disable_logging: false,
            uid: None,
            gid: None,
            touch_reload: Vec::new(),
            memory_report: false,
            log_format: None,
            stats: None,
            stats_http: false,
            leak_finder: false,
        }
    }
}
