//! A stopgap command-line reader for the core options, until the settings table lands.

use super::{AppSpec, Config, ListenAddr, Listener, Protocol, RecycleOrder, WsgiSpec};
use crate::error::{ConfigError, Origin};
use std::path::PathBuf;
use std::time::Duration;

/// Parses `--option value` / `--option=value` arguments into a validated [`Config`].
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, Vec<ConfigError>> {
    let mut cfg = Config::default();
    let mut errors = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--") else {
            errors.push(err("", format!("unexpected argument '{arg}'")));
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if name == "demo" {
            cfg.app = AppSpec::Demo;
            continue;
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => {
                errors.push(err(&name, "needs a value".into()));
                continue;
            }
        };
        if let Err(m) = apply(&mut cfg, &name, &value) {
            errors.push(err(&name, m));
        }
    }
    validate(&cfg, &mut errors);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn err(option: &str, message: String) -> ConfigError {
    ConfigError { origin: Origin::CommandLine, option: option.to_string(), message }
}

fn apply(cfg: &mut Config, name: &str, v: &str) -> Result<(), String> {
    match name {
        "http-socket" | "http" => cfg.listeners.push(Listener { addr: parse_addr(v)?, protocol: Protocol::Http }),
        "processes" | "workers" => cfg.processes = num(v)? as usize,
        "threads" => cfg.threads = num(v)? as usize,
        "buffer-size" => cfg.buffer_size = num(v)? as usize,
        "limit-post" => cfg.limit_post = nonzero(num(v)?),
        "listen" => cfg.listen = num(v)? as i32,
        "max-requests" => cfg.max_requests = nonzero(num(v)?),
        "max-requests-delta" => cfg.max_requests_delta = num(v)?,
        "max-requests-jitter" => cfg.max_requests_jitter = num(v)?,
        "max-worker-lifetime" => cfg.max_worker_lifetime = nonzero(num(v)?).map(Duration::from_secs),
        "max-worker-lifetime-delta" => cfg.max_worker_lifetime_delta = Duration::from_secs(num(v)?),
        "reload-on-rss" => cfg.reload_on_rss = nonzero(num(v)?).map(|mb| mb * 1024 * 1024),
        "evil-reload-on-rss" => cfg.evil_reload_on_rss = nonzero(num(v)?).map(|mb| mb * 1024 * 1024),
        "min-worker-lifetime" => cfg.min_worker_lifetime = Duration::from_secs(num(v)?),
        "harakiri" => cfg.harakiri = nonzero(num(v)?).map(Duration::from_secs),
        "worker-reload-mercy" => cfg.worker_reload_mercy = Duration::from_secs(num(v)?),
        "max-concurrent-recycles" => cfg.max_concurrent_recycles = num(v)? as usize,
        "recycle-order" => {
            cfg.recycle_order = match v {
                "replace-first" => RecycleOrder::ReplaceFirst,
                "retire-first" => RecycleOrder::RetireFirst,
                _ => return Err(format!("'{v}' is not valid: use replace-first or retire-first")),
            }
        }
        "worker-boot-timeout" => cfg.worker_boot_timeout = Duration::from_secs(num(v)?),
        "max-boot-failures" => cfg.max_boot_failures = num(v)? as u32,
        "header-timeout" => cfg.header_timeout = Duration::from_secs(num(v)?),
        "keepalive-timeout" => cfg.keepalive_timeout = Duration::from_secs(num(v)?),
        "memory-sample-interval" => cfg.memory_sample_interval = Duration::from_millis(num(v)?),
        "pidfile" => cfg.pidfile = Some(PathBuf::from(v)),
        "jitter-seed" => cfg.jitter_seed = Some(num(v)?),
        "chdir" => cfg.chdir = Some(PathBuf::from(v)),
        "env" => cfg.env.push(parse_env(v)?),
        "module" => wsgi(cfg).module = Some(v.to_string()),
        "wsgi-file" | "file" => wsgi(cfg).wsgi_file = Some(PathBuf::from(v)),
        "callable" => wsgi(cfg).callable = v.to_string(),
        "home" | "virtualenv" | "venv" | "pyhome" => wsgi(cfg).home = Some(PathBuf::from(v)),
        "pythonpath" => wsgi(cfg).pythonpath.push(PathBuf::from(v)),
        _ => return Err("unknown option".into()),
    }
    Ok(())
}

/// The WSGI part of the config, created on first use (any Python option selects WSGI).
fn wsgi(cfg: &mut Config) -> &mut WsgiSpec {
    if !matches!(cfg.app, AppSpec::Wsgi(_)) {
        cfg.app = AppSpec::Wsgi(WsgiSpec {
            module: None,
            wsgi_file: None,
            callable: "application".into(),
            home: None,
            pythonpath: Vec::new(),
        });
    }
    match &mut cfg.app {
        AppSpec::Wsgi(spec) => spec,
        _ => unreachable!("set just above"),
    }
}

/// Parses `KEY=VALUE` (the value may be empty or contain `=`).
fn parse_env(v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
        _ => Err(format!("'{v}' is not KEY=VALUE")),
    }
}

fn num(v: &str) -> Result<u64, String> {
    v.trim().parse::<u64>().map_err(|_| format!("'{v}' is not a non-negative whole number"))
}

fn nonzero(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

/// Parses `HOST:PORT`, `:PORT` or a unix socket path (anything containing `/`).
pub fn parse_addr(v: &str) -> Result<ListenAddr, String> {
    if v.contains('/') {
        return Ok(ListenAddr::Unix(PathBuf::from(v)));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(|| format!("'{v}' is not HOST:PORT, :PORT or a unix socket path"))?;
    let port = port.parse::<u16>().map_err(|_| format!("'{port}' in '{v}' is not a port number (0-65535)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok(ListenAddr::Tcp { host, port })
}

fn validate(cfg: &Config, errors: &mut Vec<ConfigError>) {
    if cfg.listeners.is_empty() {
        errors.push(err("http-socket", "no listener: add --http-socket HOST:PORT".into()));
    }
    match &cfg.app {
        AppSpec::None => errors.push(err("module", "no application: add --module, --wsgi-file or --demo".into())),
        AppSpec::Wsgi(w) if w.module.is_none() && w.wsgi_file.is_none() => {
            errors.push(err("module", "no WSGI app: add --module pkg.mod[:callable] or --wsgi-file PATH".into()))
        }
        AppSpec::Wsgi(w) if w.module.is_some() && w.wsgi_file.is_some() => {
            errors.push(err("module", "--module and --wsgi-file both given: choose one".into()))
        }
        _ => {}
    }
    if cfg.processes == 0 {
        errors.push(err("processes", "must be at least 1".into()));
    }
    if cfg.threads == 0 || cfg.threads > crate::scoreboard::MAX_THREADS {
        errors.push(err("threads", format!("must be between 1 and {}", crate::scoreboard::MAX_THREADS)));
    }
    if cfg.max_concurrent_recycles == 0 {
        errors.push(err("max-concurrent-recycles", "must be at least 1".into()));
    }
}
