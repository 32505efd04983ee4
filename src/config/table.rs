//! The settings table: one row per option, driving every reader, `--help` and the docs.
//!
//! A row says what an option is called (name, aliases, short flag), what its value looks like
//! ([`Kind`], which also decides whether the command line expects a value), its default as
//! shown to users, its help text, whether it repeats, and what molt does with it
//! ([`Status`]): apply it to the [`Draft`], accept it without effect (with the reason), report
//! it as not supported yet, or treat it as a directive for the readers (`ini`, `toml`, ...).
//! Moving an option from "not yet" to real is a one-row change here.

use super::memory::parse_threshold;
use super::units::{
    parse_addr, parse_bool, parse_bounded, parse_duration, parse_key_value, parse_path, parse_size,
    parse_u64, SizeUnit, TimeUnit,
};
use super::{AppSpec, Config, Listener, Metric, Mode, Protocol, RecycleOrder};
use std::path::PathBuf;

/// Settings being collected before validation: a [`Config`] plus the parts that only become
/// typed `Config` fields once every source has been read (the app, user names).
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// The typed settings so far.
    pub cfg: Config,
    /// What `molt` was asked to do.
    pub mode: Mode,
    /// `demo` was set to true.
    pub demo: bool,
    /// `module` as written, possibly with `:callable`.
    pub module: Option<String>,
    /// `wsgi-file`.
    pub wsgi_file: Option<PathBuf>,
    /// `callable`, if set explicitly.
    pub callable: Option<String>,
    /// `home`.
    pub home: Option<PathBuf>,
    /// `lazy-apps`.
    pub lazy_apps: bool,
    /// `pythonpath` entries.
    pub pythonpath: Vec<PathBuf>,
    /// `uid` as written (name or number), resolved by validation.
    pub uid: Option<String>,
    /// `gid` as written (name or number), resolved by validation.
    pub gid: Option<String>,
    /// `worker-exec` as written (split into words by validation).
    pub exec: Option<String>,
    /// `worker-exec-notify`.
    pub exec_notify: bool,
    /// `worker-exec-ready-delay`, if set.
    pub exec_ready_delay: Option<std::time::Duration>,
    /// `worker-exec-stop-signal` as written (`TERM`, `SIGINT`, `15`, ...).
    pub exec_stop_signal: Option<String>,
    /// `chown-socket` as written (`USER[:GROUP]`), resolved by validation.
    pub chown_socket: Option<String>,
}

/// Applies one value to the draft, or says why the value is invalid.
pub type Apply = fn(&mut Draft, &str) -> Result<(), String>;

/// What an option's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// true/false; a bare key or `--flag` without a value means true.
    Flag,
    /// A whole number >= 0.
    Count,
    /// A size; bare numbers are in the given unit.
    Size(SizeUnit),
    /// A duration; bare numbers are in the given unit.
    Duration(TimeUnit),
    /// A filesystem path.
    Path,
    /// Free text.
    Text,
    /// A listen address.
    Addr,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// `KEY=VALUE`.
    KeyValue,
    /// A user or group name, or a numeric id.
    Id,
    /// A config file, optionally `FILE:SECTION`.
    ConfigFile,
    /// A pool memory threshold: a size or a percentage, optionally `for N cycles`.
    MemoryRule,
}

impl Kind {
    /// Whether the command line expects a value after this option.
    pub fn takes_value(self) -> bool {
        self != Kind::Flag
    }

    /// Checks a value of an option that is accepted without effect, so `master = maybe` is
    /// still an error rather than silently anything.
    pub fn check(self, v: &str) -> Result<(), String> {
        match self {
            Kind::Flag => parse_bool(v).map(drop),
            Kind::Count => parse_u64(v).map(drop),
            Kind::Size(unit) => parse_size(v, unit).map(drop),
            Kind::Duration(unit) => parse_duration(v, unit).map(drop),
            Kind::MemoryRule => parse_threshold(v).map(drop),
            _ => Ok(()),
        }
    }

    /// The placeholder shown after the option in `--help`.
    pub fn metavar(self) -> &'static str {
        match self {
            Kind::Flag => "",
            Kind::Count => "N",
            Kind::Size(_) => "SIZE",
            Kind::Duration(_) => "TIME",
            Kind::Path => "PATH",
            Kind::Text => "TEXT",
            Kind::Addr => "ADDR",
            Kind::Choice(_) => "WORD",
            Kind::KeyValue => "KEY=VALUE",
            Kind::Id => "NAME|ID",
            Kind::ConfigFile => "FILE[:SECTION]",
            Kind::MemoryRule => "SIZE|N%",
        }
    }

    /// A short description of the type and unit, for docs and `--help`.
    pub fn describe(self) -> String {
        match self {
            Kind::Flag => "boolean".into(),
            Kind::Count => "whole number".into(),
            Kind::Size(SizeUnit::Bytes) => "size (bare number = bytes; k/M/G suffixes)".into(),
            Kind::Size(SizeUnit::Mebibytes) => "size (bare number = MiB; k/M/G suffixes)".into(),
            Kind::Duration(TimeUnit::Seconds) => {
                "duration (bare number = seconds; ms/s/m/h)".into()
            }
            Kind::Duration(TimeUnit::Millis) => "duration (bare number = ms; ms/s/m/h)".into(),
            Kind::Path => "path".into(),
            Kind::Text => "text".into(),
            Kind::Addr => "address (HOST:PORT, :PORT or unix path)".into(),
            Kind::Choice(words) => format!("one of: {}", words.join(", ")),
            Kind::KeyValue => "KEY=VALUE".into(),
            Kind::Id => "name or numeric id".into(),
            Kind::ConfigFile => "file[:section]".into(),
            Kind::MemoryRule => "size (bare number = MiB) or percentage of the cgroup limit, else of RAM; optionally `for N cycles`".into(),
        }
    }
}

/// Options that the readers act on themselves rather than applying to the draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// `ini = FILE[:SECTION]` / `--ini`: read a uwsgi.ini file here.
    Ini,
    /// `toml = FILE` / `--toml`: read a TOML file here.
    Toml,
    /// `set-placeholder = NAME=VALUE`: define a `%(NAME)` variable.
    Placeholder,
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// `if-env` and friends: handled by the ini reader; elsewhere an error.
    Logic,
}

/// What molt does with an option.
#[derive(Clone, Copy)]
pub enum Status {
    /// Applied to the configuration.
    Active(Apply),
    /// Accepted for compatibility; has no effect in molt for the given reason.
    NoEffect(&'static str),
    /// A uWSGI option molt does not support yet (with a hint); a warning, an error under strict.
    NotYet(&'static str),
    /// Handled by the readers.
    Directive(Directive),
}

/// Groups options in `--help` and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Listeners.
    Listen,
    /// The application.
    App,
    /// Workers and concurrency.
    Workers,
    /// Recycling limits.
    Recycle,
    /// Timeouts.
    Timeouts,
    /// Process, files and privileges.
    Process,
    /// Logging.
    Logging,
    /// Configuration files and modes.
    Config,
    /// Accepted, no effect.
    Compat,
    /// Not supported yet.
    NotYet,
}

impl Group {
    /// Every group in display order.
    pub const ALL: [Group; 10] = [
        Group::Listen,
        Group::App,
        Group::Workers,
        Group::Recycle,
        Group::Timeouts,
        Group::Process,
        Group::Logging,
        Group::Config,
        Group::Compat,
        Group::NotYet,
    ];

    /// The heading for this group.
    pub fn title(self) -> &'static str {
        match self {
            Group::Listen => "Listening",
            Group::App => "Application",
            Group::Workers => "Workers",
            Group::Recycle => "Recycling",
            Group::Timeouts => "Timeouts",
            Group::Process => "Process, files and privileges",
            Group::Logging => "Logging",
            Group::Config => "Configuration",
            Group::Compat => "Accepted for compatibility, no effect in molt",
            Group::NotYet => "uWSGI options not supported yet",
        }
    }
}

/// One row of the settings table.
#[derive(Clone, Copy)]
pub struct OptSpec {
    /// The canonical name (uWSGI's where uWSGI has the option).
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// A single-letter command-line form, as uWSGI's (`-p 4`).
    pub short: Option<char>,
    /// Type and unit.
    pub kind: Kind,
    /// The default as shown to users.
    pub default: &'static str,
    /// One-line help; for Active options it also documents what 0 means.
    pub help: &'static str,
    /// Whether repeated values accumulate (otherwise the last one wins).
    pub repeatable: bool,
    /// What molt does with it.
    pub status: Status,
    /// Where it is listed.
    pub group: Group,
}

impl OptSpec {
    const fn new(name: &'static str, kind: Kind, group: Group, status: Status) -> Self {
        OptSpec {
            name,
            aliases: &[],
            short: None,
            kind,
            default: "",
            help: "",
            repeatable: false,
            status,
            group,
        }
    }

    const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }

    const fn default(mut self, d: &'static str) -> Self {
        self.default = d;
        self
    }

    const fn help(mut self, h: &'static str) -> Self {
        self.help = h;
        self
    }

    const fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }

    /// Whether the name or one of the aliases is `key` (already normalised).
    pub fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.aliases.contains(&key)
    }
}

/// Looks an option up by name or alias; `_` and `-` are interchangeable (gunicorn spellings).
pub fn lookup(key: &str) -> Option<&'static OptSpec> {
    let key = normalise(key);
    OPTIONS.iter().find(|o| o.answers_to(&key))
}

/// Looks an option up by its single-letter form.
pub fn lookup_short(c: char) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

/// The canonical spelling of a key: `max_requests` -> `max-requests`.
pub fn normalise(key: &str) -> String {
    key.trim().replace('_', "-")
}

fn active(name: &'static str, kind: Kind, group: Group, apply: Apply) -> OptSpec {
    OptSpec::new(name, kind, group, Status::Active(apply))
}

const fn no_effect(name: &'static str, kind: Kind, reason: &'static str) -> OptSpec {
    OptSpec::new(name, kind, Group::Compat, Status::NoEffect(reason)).help(reason)
}

const fn not_yet(name: &'static str, kind: Kind, hint: &'static str) -> OptSpec {
    OptSpec::new(name, kind, Group::NotYet, Status::NotYet(hint)).help(hint)
}

const fn directive(name: &'static str, kind: Kind, d: Directive) -> OptSpec {
    OptSpec::new(name, kind, Group::Config, Status::Directive(d))
}

// ---- apply helpers: each parses one value into one place ------------------------------------

fn count(v: &str) -> Result<u64, String> {
    parse_u64(v)
}

fn usize_of(v: &str) -> Result<usize, String> {
    let max = usize::MAX as u64;
    parse_bounded(v, max).map(|n| n as usize)
}

/// `0` disables: the option becomes `None`.
fn nonzero(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

fn secs(v: &str) -> Result<std::time::Duration, String> {
    parse_duration(v, TimeUnit::Seconds)
}

fn secs_or_off(v: &str) -> Result<Option<std::time::Duration>, String> {
    secs(v).map(|d| (!d.is_zero()).then_some(d))
}

fn bytes(v: &str) -> Result<u64, String> {
    parse_size(v, SizeUnit::Bytes)
}

fn mebibytes_or_off(v: &str) -> Result<Option<u64>, String> {
    parse_size(v, SizeUnit::Mebibytes).map(nonzero)
}

fn http_listener(d: &mut Draft, v: &str) -> Result<(), String> {
    add_listener(d, v, Protocol::Http)
}

fn uwsgi_listener(d: &mut Draft, v: &str) -> Result<(), String> {
    add_listener(d, v, Protocol::Uwsgi)
}

fn add_listener(d: &mut Draft, v: &str, protocol: Protocol) -> Result<(), String> {
    let addr = parse_addr(v)?;
    d.cfg.listeners.push(Listener { addr, protocol });
    Ok(())
}

/// `chmod-socket`: an octal mode; a bare key (`true`) means 0666, as in uWSGI.
fn socket_mode(v: &str) -> Result<u32, String> {
    let t = v.trim();
    if t.is_empty() || t == "true" {
        return Ok(0o666);
    }
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "'{v}' is not a socket mode: expected octal digits such as 660"
        )),
    }
}

fn metric(v: &str) -> Result<Metric, String> {
    match v.trim() {
        "rss" => Ok(Metric::Rss),
        "pss" => Ok(Metric::Pss),
        "uss" => Ok(Metric::Uss),
        _ => Err(format!("'{v}' is not valid: use rss, pss or uss")),
    }
}

fn recycle_order(v: &str) -> Result<RecycleOrder, String> {
    match v.trim() {
        "replace-first" => Ok(RecycleOrder::ReplaceFirst),
        "retire-first" => Ok(RecycleOrder::RetireFirst),
        _ => Err(format!(
            "'{v}' is not valid: use replace-first or retire-first"
        )),
    }
}

fn set_mode(d: &mut Draft, v: &str, mode: Mode) -> Result<(), String> {
    if parse_bool(v)? {
        d.mode = mode;
    }
    Ok(())
}

fn non_empty(v: &str, what: &str) -> Result<String, String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(format!("empty value: expected {what}"));
    }
    Ok(t.to_string())
}

// ---- the table ------------------------------------------------------------------------------

use Group as G;
use Kind as K;

const SECONDS: Kind = K::Duration(TimeUnit::Seconds);
const MILLIS: Kind = K::Duration(TimeUnit::Millis);
const BYTES: Kind = K::Size(SizeUnit::Bytes);
const MIB: Kind = K::Size(SizeUnit::Mebibytes);

/// Every option molt knows, in `--help` order within each [`Group`].
pub static OPTIONS: std::sync::LazyLock<Vec<OptSpec>> = std::sync::LazyLock::new(build_table);

fn build_table() -> Vec<OptSpec> {
    let mut t = Vec::with_capacity(160);
    t.extend(listen_options());
    t.extend(app_options());
    t.extend(worker_options());
    t.extend(recycle_options());
    t.extend(timeout_options());
    t.extend(process_options());
    t.extend(logging_options());
    t.extend(config_options());
    t.extend(compat_options());
    t.extend(not_yet_options());
    t
}

fn listen_options() -> Vec<OptSpec> {
    vec![
        active("http-socket", K::Addr, G::Listen, http_listener)
            .aliases(&["http"])
            .repeatable()
            .default("(none)")
            .help("Serve HTTP/1.1 on this address; repeat for several listeners. `http` (uWSGI's router) means the same here."),
        active("socket", K::Addr, G::Listen, uwsgi_listener)
            .short('s')
            .aliases(&["uwsgi-socket"])
            .repeatable()
            .default("(none)")
            .help("Serve the uwsgi protocol (nginx `uwsgi_pass` with `uwsgi_params`) on this address; repeatable, and combinable with http-socket."),
        active("chmod-socket", K::Text, G::Listen, |d, v| {
            d.cfg.chmod_socket = Some(socket_mode(v)?);
            Ok(())
        })
        .short('C')
        .default("660")
        .help("Mode (octal) of the unix sockets molt creates; a bare `chmod-socket` means 666, as in uWSGI. Checked after binding."),
        active("chown-socket", K::Text, G::Listen, |d, v| {
            d.chown_socket = Some(non_empty(v, "USER[:GROUP]")?);
            Ok(())
        })
        .default("(molt's user)")
        .help("Owner of the unix sockets molt creates, `USER[:GROUP]` (names or ids)."),
        active("listen", K::Count, G::Listen, |d, v| {
            d.cfg.listen = parse_bounded(v, i32::MAX as u64)? as i32;
            Ok(())
        })
        .short('l')
        .default("1024")
        .help("Listen backlog of every socket (must be >= 1)."),
    ]
}

fn app_options() -> Vec<OptSpec> {
    vec![
        active("module", K::Text, G::App, |d, v| {
            d.module = Some(non_empty(v, "a module such as pkg.wsgi or pkg.wsgi:app")?);
            Ok(())
        })
        .short('w')
        .aliases(&["wsgi"])
        .default("(none)")
        .help("Python WSGI module to load, `pkg.mod` or `pkg.mod:callable`."),
        active("wsgi-file", K::Path, G::App, |d, v| {
            d.wsgi_file = Some(parse_path(v)?);
            Ok(())
        })
        .aliases(&["file"])
        .default("(none)")
        .help("Python file to load as the WSGI module (relative to `chdir` if set)."),
        active("callable", K::Text, G::App, |d, v| {
            d.callable = Some(non_empty(v, "a Python identifier such as application")?);
            Ok(())
        })
        .default("application")
        .help("Name of the WSGI callable in the module."),
        active("home", K::Path, G::App, |d, v| {
            d.home = Some(parse_path(v)?);
            Ok(())
        })
        .short('H')
        .aliases(&["virtualenv", "venv", "pyhome"])
        .default("(none)")
        .help("Virtualenv (Python prefix) whose interpreter runs the app."),
        active("lazy-apps", K::Flag, G::App, |d, v| {
            d.lazy_apps = parse_bool(v)?;
            Ok(())
        })
        .aliases(&["lazy"])
        .default("false")
        .help("Import the WSGI app in each worker's Python child after fork, instead of once in the Python zygote the workers' children are forked from."),
        active("pythonpath", K::Path, G::App, |d, v| {
            d.pythonpath.push(parse_path(v)?);
            Ok(())
        })
        .aliases(&["python-path", "pp"])
        .repeatable()
        .default("(none)")
        .help("Directory to add to `sys.path`; repeat for several."),
        active("chdir", K::Path, G::App, |d, v| {
            d.cfg.chdir = Some(parse_path(v)?);
            Ok(())
        })
        .default("(none)")
        .help("Directory the workers and the app run in."),
        active("env", K::KeyValue, G::App, |d, v| {
            d.cfg.env.push(parse_key_value(v)?);
            Ok(())
        })
        .repeatable()
        .default("(none)")
        .help("Set an environment variable for the workers; repeat for several."),
        active("demo", K::Flag, G::App, |d, v| {
            d.demo = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Serve molt's built-in demo app instead of a Python app."),
        active("worker-exec", K::Text, G::App, |d, v| {
            d.exec = Some(non_empty(v, "a command such as node server.js")?);
            Ok(())
        })
        .default("(none)")
        .help("Each worker execs this command (words split shell-style, no shell) with the listeners as fds 3.. (LISTEN_FDS); see docs/worker-protocol.md."),
        active("worker-exec-notify", K::Flag, G::App, |d, v| {
            d.exec_notify = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("The worker-exec command speaks the worker protocol: ready at its READY=1, max-requests from its REQUESTS= counts."),
        active("worker-exec-ready-delay", MILLIS, G::App, |d, v| {
            d.exec_ready_delay = Some(parse_duration(v, TimeUnit::Millis)?);
            Ok(())
        })
        .default("1s")
        .help("Without worker-exec-notify, an exec'd worker counts as ready this long after its spawn (or at its READY=1, if sooner)."),
        active("worker-exec-stop-signal", K::Text, G::App, |d, v| {
            d.exec_stop_signal = Some(non_empty(v, "a signal such as TERM or QUIT")?);
            Ok(())
        })
        .default("TERM")
        .help("The signal that asks an exec'd worker to stop gracefully (SIGKILL follows after worker-reload-mercy)."),
    ]
}

fn worker_options() -> Vec<OptSpec> {
    vec![
        active("processes", K::Count, G::Workers, |d, v| {
            d.cfg.processes = usize_of(v)?;
            Ok(())
        })
        .short('p')
        .aliases(&["workers"])
        .default("1")
        .help("Number of workers (must be >= 1)."),
        active("threads", K::Count, G::Workers, |d, v| {
            d.cfg.threads = usize_of(v)?;
            Ok(())
        })
        .default("1")
        .help("Requests one worker serves at once (1 to 64)."),
        active("buffer-size", BYTES, G::Workers, |d, v| {
            d.cfg.buffer_size = usize::try_from(bytes(v)?).map_err(|_| "too large".to_string())?;
            Ok(())
        })
        .short('b')
        .default("4096")
        .help("Largest request head (request line + headers) accepted."),
        active("limit-post", BYTES, G::Workers, |d, v| {
            d.cfg.limit_post = nonzero(bytes(v)?);
            Ok(())
        })
        .default("0 (unlimited)")
        .help("Largest request body accepted; 0 = unlimited."),
    ]
}

fn recycle_options() -> Vec<OptSpec> {
    vec![
        active("max-requests", K::Count, G::Recycle, |d, v| {
            d.cfg.max_requests = nonzero(count(v)?);
            Ok(())
        })
        .short('R')
        .default("0 (never)")
        .help("Recycle a worker after this many requests; 0 disables."),
        active("max-requests-delta", K::Count, G::Recycle, |d, v| {
            d.cfg.max_requests_delta = count(v)?;
            Ok(())
        })
        .default("0")
        .help("Add (worker id - 1) * delta to max-requests so workers do not recycle together."),
        active("max-requests-jitter", K::Count, G::Recycle, |d, v| {
            d.cfg.max_requests_jitter = count(v)?;
            Ok(())
        })
        .default("0")
        .help("Add a random 0..=jitter to max-requests per spawn (gunicorn's max_requests_jitter); needs max-requests."),
        active("max-worker-lifetime", SECONDS, G::Recycle, |d, v| {
            d.cfg.max_worker_lifetime = secs_or_off(v)?;
            Ok(())
        })
        .default("0 (never)")
        .help("Recycle a worker after it has run this long; 0 disables."),
        active("max-worker-lifetime-delta", SECONDS, G::Recycle, |d, v| {
            d.cfg.max_worker_lifetime_delta = secs(v)?;
            Ok(())
        })
        .default("0")
        .help("Add (worker id - 1) * delta to max-worker-lifetime."),
        active("reload-on-rss", MIB, G::Recycle, |d, v| {
            d.cfg.reload_on_rss = mebibytes_or_off(v)?;
            Ok(())
        })
        .default("0 (off)")
        .help("Gracefully recycle a worker whose memory reaches this (MiB as in uWSGI); 0 disables."),
        active("evil-reload-on-rss", MIB, G::Recycle, |d, v| {
            d.cfg.evil_reload_on_rss = mebibytes_or_off(v)?;
            Ok(())
        })
        .default("0 (off)")
        .help("SIGKILL a worker whose memory reaches this (MiB); must be above reload-on-rss; 0 disables."),
        active("reload-on-pss", MIB, G::Recycle, |d, v| {
            d.cfg.reload_on_pss = mebibytes_or_off(v)?;
            Ok(())
        })
        .default("0 (off)")
        .help("Gracefully recycle a worker whose PSS (shared pages divided among sharers; smaps_rollup) reaches this (MiB); 0 disables."),
        active("reload-on-uss", MIB, G::Recycle, |d, v| {
            d.cfg.reload_on_uss = mebibytes_or_off(v)?;
            Ok(())
        })
        .default("0 (off)")
        .help("Gracefully recycle a worker whose USS (private pages only; smaps_rollup) reaches this (MiB); 0 disables."),
        active("pool-metric", K::Choice(&["rss", "pss", "uss"]), G::Recycle, |d, v| {
            d.cfg.pool_metric = metric(v)?;
            Ok(())
        })
        .default("rss")
        .help("The per-worker figure the pool rules sum: rss (uWSGI's; counts shared pages once per worker), pss or uss."),
        active("pool-soft-limit", K::MemoryRule, G::Recycle, |d, v| {
            d.cfg.pool_soft_limit = parse_threshold(v)?;
            Ok(())
        })
        .default("off")
        .help("When the workers' total passes this, gracefully recycle the largest worker, one at a time (e.g. 70%, 2G)."),
        active("pool-soft-exec", K::Text, G::Recycle, |d, v| {
            d.cfg.pool_soft_exec = Some(v.to_string()).filter(|c| !c.trim().is_empty());
            Ok(())
        })
        .default("(none)")
        .help("Shell command run (not waited for) each time pool-soft-limit recycles a worker; MOLT_POOL_REASON is set."),
        active("pool-hard-limit", K::MemoryRule, G::Recycle, |d, v| {
            d.cfg.pool_hard_limit = parse_threshold(v)?;
            Ok(())
        })
        .default("off")
        .help("When the total stays over this for N checks, gracefully restart every worker (e.g. '85% for 2 cycles'); one worker only if that suffices."),
        active("pool-check-interval", MILLIS, G::Recycle, |d, v| {
            d.cfg.pool_check_interval = parse_duration(v, TimeUnit::Millis)?;
            Ok(())
        })
        .default("1000 (1s)")
        .help("How often the pool rules are checked (must be > 0); each action is followed by a fresh sample."),
        active("smaps-sample-interval", MILLIS, G::Recycle, |d, v| {
            d.cfg.smaps_sample_interval = parse_duration(v, TimeUnit::Millis)?;
            Ok(())
        })
        .default("1000 (1s)")
        .help("How often PSS/USS are read from /proc/PID/smaps_rollup, when a rule needs them (must be > 0)."),
        active("min-worker-lifetime", SECONDS, G::Recycle, |d, v| {
            d.cfg.min_worker_lifetime = secs(v)?;
            Ok(())
        })
        .default("1")
        .help("A younger worker is not recycled for max-requests or lifetime (anti-flapping)."),
        active("max-concurrent-recycles", K::Count, G::Recycle, |d, v| {
            d.cfg.max_concurrent_recycles = usize_of(v)?;
            Ok(())
        })
        .default("1")
        .help("At most this many workers recycle at once (must be >= 1)."),
        active("recycle-order", K::Choice(&["replace-first", "retire-first"]), G::Recycle, |d, v| {
            d.cfg.recycle_order = recycle_order(v)?;
            Ok(())
        })
        .default("replace-first")
        .help("replace-first keeps capacity (spawn, wait ready, retire); retire-first saves memory."),
        active("memory-sample-interval", MILLIS, G::Recycle, |d, v| {
            d.cfg.memory_sample_interval = parse_duration(v, TimeUnit::Millis)?;
            Ok(())
        })
        .default("1000 (1s)")
        .help("How often the master reads worker memory from /proc (must be > 0)."),
        active("jitter-seed", K::Count, G::Recycle, |d, v| {
            d.cfg.jitter_seed = Some(count(v)?);
            Ok(())
        })
        .default("(random)")
        .help("Seed for max-requests-jitter, for reproducible tests."),
    ]
}

fn timeout_options() -> Vec<OptSpec> {
    vec![
        active("harakiri", SECONDS, G::Timeouts, |d, v| {
            d.cfg.harakiri = secs_or_off(v)?;
            Ok(())
        })
        .short('t')
        .default("0 (off)")
        .help("Kill a worker whose request runs longer than this; 0 disables."),
        active("worker-reload-mercy", SECONDS, G::Timeouts, |d, v| {
            d.cfg.worker_reload_mercy = secs(v)?;
            Ok(())
        })
        .default("60")
        .help("Deadline of a graceful worker stop before SIGKILL (must be > 0)."),
        active("worker-boot-timeout", SECONDS, G::Timeouts, |d, v| {
            d.cfg.worker_boot_timeout = secs(v)?;
            Ok(())
        })
        .default("60")
        .help("A worker not ready after this long counts as a boot failure (must be > 0)."),
        active("max-boot-failures", K::Count, G::Timeouts, |d, v| {
            d.cfg.max_boot_failures = parse_bounded(v, u64::from(u32::MAX))? as u32;
            Ok(())
        })
        .default("5")
        .help("Consecutive boot failures before molt gives up when no worker ever started (>= 1)."),
        active("header-timeout", SECONDS, G::Timeouts, |d, v| {
            d.cfg.header_timeout = secs(v)?;
            Ok(())
        })
        .default("10")
        .help("Deadline for a whole request head (slowloris guard; must be > 0)."),
        active("keepalive-timeout", SECONDS, G::Timeouts, |d, v| {
            d.cfg.keepalive_timeout = secs(v)?;
            Ok(())
        })
        .default("60")
        .help("Close idle keep-alive connections after this long; 0 disables keep-alive."),
    ]
}

fn process_options() -> Vec<OptSpec> {
    vec![
        active("pidfile", K::Path, G::Process, |d, v| {
            d.cfg.pidfile = Some(parse_path(v)?);
            Ok(())
        })
        .aliases(&["pidfile2", "safe-pidfile"])
        .default("(none)")
        .help("Write the master pid here once listening (flock'd); removed on clean exit."),
        active("vacuum", K::Flag, G::Process, |d, v| {
            d.cfg.vacuum = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Accepted for uWSGI files: molt always removes, on clean exit, the pidfile and the unix sockets it created (only if each path is still the socket molt bound; never sockets from systemd)."),
        active("die-on-term", K::Flag, G::Process, |d, v| {
            d.cfg.die_on_term = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Exit on SIGTERM, as uWSGI 2.1 does by default; molt's SIGTERM is always a graceful shutdown, so this only documents intent."),
        active("uid", K::Id, G::Process, |d, v| {
            d.uid = Some(non_empty(v, "a user name or numeric uid")?);
            Ok(())
        })
        .default("(unchanged)")
        .help("Run workers as this user (groups, gid, uid dropped in that order, then verified)."),
        active("gid", K::Id, G::Process, |d, v| {
            d.gid = Some(non_empty(v, "a group name or numeric gid")?);
            Ok(())
        })
        .default("(unchanged)")
        .help("Run workers as this group."),
        active("touch-reload", K::Path, G::Process, |d, v| {
            d.cfg.touch_reload.push(parse_path(v)?);
            Ok(())
        })
        .repeatable()
        .default("(none)")
        .help("Reload the configuration (as SIGHUP) when this file is touched; repeatable."),
    ]
}

fn logging_options() -> Vec<OptSpec> {
    vec![
        active("logto", K::Path, G::Logging, |d, v| {
            d.cfg.logto = Some(parse_path(v)?);
            Ok(())
        })
        .aliases(&["logto2"])
        .default("(stderr)")
        .help("Append the log to this file; reopened on SIGUSR2 for logrotate."),
        active("disable-logging", K::Flag, G::Logging, |d, v| {
            d.cfg.disable_logging = parse_bool(v)?;
            Ok(())
        })
        .short('L')
        .default("false")
        .help("No per-request log lines (errors and lifecycle events are still logged)."),
        active("memory-report", K::Flag, G::Logging, |d, v| {
            d.cfg.memory_report = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Include the worker's memory after each request and the change it caused in request log lines (also feeds the leak finder)."),
        active("log-format", K::Text, G::Logging, |d, v| {
            crate::observe::reqlog::Format::parse(v)?;
            d.cfg.log_format = Some(v.to_string());
            Ok(())
        })
        .aliases(&["logformat"])
        .default("(molt's line)")
        .help("Request log line with uWSGI's `%(var)` names: method, uri, status, size, msecs, micros, pid, wid, addr, proto, host, uagent, referer, rss, rssM, vsz, rssdelta, ltime, time, epoch, core."),
        active("stats", K::Addr, G::Logging, |d, v| {
            d.cfg.stats = Some(parse_addr(v)?);
            Ok(())
        })
        .aliases(&["stats-server"])
        .default("(none)")
        .help("Serve uWSGI-layout stats JSON (uwsgitop, uwsgi_exporter, Telegraf) on this TCP address or unix path."),
        active("stats-http", K::Flag, G::Logging, |d, v| {
            d.cfg.stats_http = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("The stats socket speaks HTTP: JSON at `/stats`, Prometheus text at `/metrics`, the live page at `/` for browsers, the leak report at `/leaks`."),
        active("leak-finder", K::Flag, G::Logging, |d, v| {
            d.cfg.leak_finder = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Measure each request's memory change and rank routes by growth (in the stats, `/leaks` and `molt top`)."),
    ]
}

fn config_options() -> Vec<OptSpec> {
    vec![
        directive("ini", K::ConfigFile, Directive::Ini)
            .repeatable()
            .default("(none)")
            .help("Read a uwsgi.ini file (`FILE:SECTION`, `:SECTION` = same file); `molt FILE.ini` does the same."),
        directive("toml", K::Path, Directive::Toml)
            .repeatable()
            .default("(none)")
            .help("Read a TOML file with the same keys; `molt FILE.toml` does the same."),
        directive("set-placeholder", K::KeyValue, Directive::Placeholder)
            .aliases(&["set-ph"])
            .repeatable()
            .default("(none)")
            .help("Define a %(NAME) variable without it being an option."),
        active("strict", K::Flag, G::Config, |d, v| {
            d.cfg.strict = parse_bool(v)?;
            Ok(())
        })
        .default("false")
        .help("Unknown and not-yet-supported options, and unset $(VAR), become errors."),
        active("check-config", K::Flag, G::Config, |d, v| set_mode(d, v, Mode::CheckConfig))
            .default("false")
            .help("Validate the configuration and exit (0 valid, 2 invalid)."),
        active("print-config", K::Flag, G::Config, |d, v| set_mode(d, v, Mode::PrintConfig))
            .default("false")
            .help("Print every effective setting and where it came from, then exit."),
        directive("help", K::Flag, Directive::Help)
            .short('h')
            .help("Print this help and exit."),
        directive("version", K::Flag, Directive::Version)
            .help("Print molt's version and exit."),
        directive("if-env", K::Text, Directive::Logic)
            .help("ini only: apply the following lines if the variable is set (`VAR` or `VAR=value`) until endif."),
        directive("if-not-env", K::Text, Directive::Logic)
            .help("ini only: apply the following lines if the variable is unset (or differs)."),
        directive("if-exists", K::Path, Directive::Logic)
            .help("ini only: apply the following lines if the path exists."),
        directive("if-not-exists", K::Path, Directive::Logic)
            .help("ini only: apply the following lines if the path does not exist."),
        directive("if-file", K::Path, Directive::Logic)
            .help("ini only: apply the following lines if the path is a file."),
        directive("if-not-file", K::Path, Directive::Logic)
            .help("ini only: apply the following lines if the path is not a file."),
        directive("if-dir", K::Path, Directive::Logic)
            .aliases(&["if-directory"])
            .help("ini only: apply the following lines if the path is a directory."),
        directive("if-not-dir", K::Path, Directive::Logic)
            .aliases(&["if-not-directory"])
            .help("ini only: apply the following lines if the path is not a directory."),
        directive("if-opt", K::Text, Directive::Logic)
            .help("ini only: apply the following lines if the option is set (`OPT` or `OPT=value`)."),
        directive("if-not-opt", K::Text, Directive::Logic)
            .help("ini only: apply the following lines if the option is not set (or differs)."),
        directive("else", K::Flag, Directive::Logic)
            .help("ini only: apply the following lines if the previous if-* failed."),
        directive("endif", K::Flag, Directive::Logic)
            .aliases(&["end-if", "end"])
            .help("ini only: end an if-* block."),
    ]
}

/// Options with no meaning in molt: accepted, listed once at start-up with the reason.
fn compat_options() -> Vec<OptSpec> {
    vec![
        no_effect("master", K::Flag, "molt always runs a master process").short('M'),
        no_effect("enable-threads", K::Flag, "molt's workers always support threads; the Python adapter initialises them").short('T'),
        no_effect("single-interpreter", K::Flag, "each molt worker runs exactly one interpreter"),
        no_effect("thunder-lock", K::Flag, "molt's master decides how workers accept; there is no accept lock to configure"),
        no_effect("plugins", K::Text, "molt has no plugins: HTTP and Python support are built in").aliases(&["plugin", "plugins-dir", "plugin-dir", "need-plugin", "need-plugins"]),
        no_effect("post-buffering", BYTES, "molt's worker runtime reads the body itself and hands it to the app; limit-post bounds it"),
        no_effect("need-app", K::Flag, "molt always requires an app: no app configured is an error"),
        no_effect("no-orphans", K::Flag, "molt's workers always die with the master (PR_SET_PDEATHSIG)"),
        no_effect("optimize", K::Count, "set PYTHONOPTIMIZE with env instead; molt runs the interpreter unchanged").short('O'),
        no_effect("auto-procname", K::Flag, "molt names its processes itself"),
        no_effect("procname-prefix", K::Text, "molt names its processes itself").aliases(&["procname-prefix-spaced", "procname"]),
        no_effect("vhost", K::Flag, "molt serves one app per instance"),
        no_effect("no-default-app", K::Flag, "molt serves one app per instance"),
        no_effect("py-tracebacker", K::Path, "not applicable: molt's Python adapter is a separate child"),
        no_effect("reload-mercy", SECONDS, "molt uses worker-reload-mercy for every graceful stop"),
        no_effect("memory-report-interval", SECONDS, "use memory-sample-interval"),
        no_effect("catch-exceptions", K::Flag, "molt never sends tracebacks to clients"),
        no_effect("hook-master-start", K::Text, "hooks are not part of molt"),
        no_effect("log-master", K::Flag, "the molt master always does the logging"),
        no_effect("buffer-size-strict", K::Flag, "molt always enforces buffer-size"),
    ]
}

/// Real uWSGI options molt lacks today. Each is reported as not supported (warning, or error
/// under strict), never silently ignored. Moving one to `active` is a one-row change.
fn not_yet_options() -> Vec<OptSpec> {
    vec![
        not_yet(
            "https",
            K::Text,
            "terminate TLS in a proxy in front of molt",
        )
        .aliases(&["https-socket"]),
        not_yet("shared-socket", K::Addr, "use http-socket"),
        not_yet("umask", K::Text, "set the umask in the service manager"),
        not_yet(
            "static-map",
            K::Text,
            "serve static files from the proxy in front of molt",
        )
        .aliases(&["static-map2"])
        .repeatable(),
        not_yet(
            "static-path",
            K::Text,
            "serve static files from the proxy in front of molt",
        ),
        not_yet(
            "check-static",
            K::Path,
            "serve static files from the proxy in front of molt",
        ),
        not_yet(
            "static-expires",
            K::Text,
            "serve static files from the proxy in front of molt",
        ),
        not_yet("offload-threads", K::Count, "molt has no offload engine"),
        not_yet(
            "daemonize",
            K::Path,
            "run molt under a service manager (systemd, supervisor) instead",
        )
        .short('d')
        .aliases(&["daemonize2"]),
        not_yet(
            "log-reopen",
            K::Flag,
            "molt reopens logto on SIGUSR2 instead",
        ),
        not_yet("log-maxsize", BYTES, "use logrotate with SIGUSR2"),
        not_yet("logger", K::Text, "use logto or stderr"),
        not_yet("req-logger", K::Text, "use logto or stderr"),
        not_yet(
            "log-date",
            K::Flag,
            "molt's log timestamps are fixed for now",
        ),
        not_yet("cheaper", K::Count, "molt runs a fixed number of workers"),
        not_yet(
            "cheaper-algo",
            K::Text,
            "molt runs a fixed number of workers",
        ),
        not_yet(
            "cheaper-initial",
            K::Count,
            "molt runs a fixed number of workers",
        ),
        not_yet(
            "cheaper-step",
            K::Count,
            "molt runs a fixed number of workers",
        ),
        not_yet("spooler", K::Path, "use a task queue"),
        not_yet("mule", K::Text, "use a separate service").aliases(&["mules"]),
        not_yet("cron", K::Text, "use the system's cron or timers"),
        not_yet("attach-daemon", K::Text, "use the service manager")
            .aliases(&["attach-daemon2", "smart-attach-daemon"]),
        not_yet("route", K::Text, "routing belongs in the proxy").aliases(&[
            "route-host",
            "route-uri",
            "route-run",
        ]),
        not_yet("add-header", K::Text, "add headers in the app or the proxy"),
        not_yet("mount", K::Text, "molt serves one app per instance")
            .aliases(&["manage-script-name"]),
        not_yet("fs-reload", K::Path, "use touch-reload"),
        not_yet(
            "touch-chain-reload",
            K::Path,
            "use touch-reload (molt's reload already replaces workers one by one)",
        ),
        not_yet("touch-workers-reload", K::Path, "use touch-reload"),
        not_yet("py-autoreload", K::Count, "use touch-reload").aliases(&["python-autoreload"]),
        not_yet(
            "harakiri-verbose",
            K::Flag,
            "molt always logs harakiri with details",
        ),
        not_yet("socket-timeout", SECONDS, "see header-timeout").short('z'),
        not_yet("http-timeout", SECONDS, "see header-timeout and harakiri"),
        not_yet(
            "http-keepalive",
            K::Flag,
            "keep-alive is on unless keepalive-timeout = 0",
        ),
        not_yet("limit-as", MIB, "use reload-on-rss / evil-reload-on-rss"),
        not_yet("reload-on-as", MIB, "use reload-on-rss"),
        not_yet("max-fd", K::Count, "set LimitNOFILE in the service manager"),
        not_yet(
            "emperor",
            K::Path,
            "one molt per app under a service manager",
        ),
        not_yet("cache2", K::Text, "use an external cache").aliases(&["cache"]),
        not_yet(
            "unenv",
            K::Text,
            "clear the variable in the service manager",
        ),
        not_yet("worker-reload-mercy-strict", K::Flag, "not available"),
        not_yet("callable-from-env", K::Text, "use callable with $(VAR)"),
        not_yet("wsgi-disable-file-wrapper", K::Flag, "not available"),
        not_yet("reaper", K::Flag, "molt always reaps").short('r'),
        not_yet(
            "ignore-sigpipe",
            K::Flag,
            "molt always ignores SIGPIPE in workers",
        ),
        not_yet(
            "ignore-write-errors",
            K::Flag,
            "molt always handles client disconnects",
        ),
        not_yet(
            "disable-write-exception",
            K::Flag,
            "molt always handles client disconnects",
        ),
        not_yet("http-auto-chunked", K::Flag, "not available"),
        not_yet(
            "http-websockets",
            K::Flag,
            "websockets are not supported yet",
        ),
        not_yet("gevent", K::Count, "async loops are not supported"),
        not_yet("async", K::Count, "async loops are not supported"),
        not_yet("uwsgi-file", K::Path, "not available"),
    ]
}

/// Makes `AppSpec` from the app fields of a draft; used by validation.
pub fn has_python_app(d: &Draft) -> bool {
    d.module.is_some() || d.wsgi_file.is_some()
}

/// Whether the draft has any app at all.
pub fn has_app(d: &Draft) -> bool {
    d.demo || has_python_app(d) || d.exec.is_some() || d.cfg.app != AppSpec::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = HashSet::new();
        for o in OPTIONS.iter() {
            for n in std::iter::once(&o.name).chain(o.aliases.iter()) {
                assert!(seen.insert(*n), "duplicate option name {n}");
                assert_eq!(normalise(n), *n, "{n} must be spelled with dashes");
            }
        }
        let mut shorts = HashSet::new();
        for o in OPTIONS.iter().filter_map(|o| o.short) {
            assert!(shorts.insert(o), "duplicate short -{o}");
        }
    }

    #[test]
    fn every_row_has_help() {
        for o in OPTIONS.iter() {
            assert!(!o.help.is_empty(), "{} has no help", o.name);
        }
    }

    #[test]
    fn lookup_accepts_aliases_and_underscores() {
        assert_eq!(lookup("workers").map(|o| o.name), Some("processes"));
        assert_eq!(
            lookup("max_requests_jitter").map(|o| o.name),
            Some("max-requests-jitter")
        );
        assert_eq!(lookup("venv").map(|o| o.name), Some("home"));
        assert!(lookup("vaccum").is_none());
    }
}
