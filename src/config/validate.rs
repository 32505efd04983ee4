//! Cross-field validation and the final [`Config`]: the one path shared by start-up,
//! `--check-config` and reload. Every rule adds to the same error list, so the user sees every
//! problem at once; nothing is coerced silently.

use super::collect::Context;
use super::launch::{parse_owner, parse_signal, split_command};
use super::load::Provenance;
use super::table::{has_python_app, Draft};
use super::{AppSpec, Config, ExecSpec, GroupId, ListenAddr, SocketOwner, UserId, WsgiSpec};
use crate::error::{ConfigError, Origin};
use crate::scoreboard::MAX_THREADS;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Collects errors and warnings while checking one draft.
pub struct Checker<'a> {
    prov: &'a Provenance,
    ctx: &'a Context<'a>,
    /// Problems that make the configuration invalid.
    pub errors: Vec<ConfigError>,
    /// Suspicious but valid settings.
    pub warnings: Vec<String>,
}

impl<'a> Checker<'a> {
    /// A checker resolving origins through `prov` and paths against `ctx`.
    pub fn new(prov: &'a Provenance, ctx: &'a Context<'a>) -> Self {
        Checker {
            prov,
            ctx,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn origin(&self, option: &str) -> Origin {
        self.prov
            .origin_of(option)
            .cloned()
            .unwrap_or(Origin::Default)
    }

    fn set(&self, option: &str) -> bool {
        self.prov.origin_of(option).is_some()
    }

    fn error(&mut self, option: &str, message: impl Into<String>) {
        let origin = self.origin(option);
        self.errors.push(ConfigError {
            origin,
            option: option.to_string(),
            message: message.into(),
        });
    }

    fn warn(&mut self, option: &str, message: impl AsRef<str>) {
        let origin = self.origin(option);
        self.warnings
            .push(format!("{origin}: option '{option}': {}", message.as_ref()));
    }

    /// Checks everything and builds the final config.
    pub fn finish(&mut self, mut d: Draft) -> Config {
        self.counts(&d.cfg);
        self.recycling(&d.cfg);
        self.timeouts(&d.cfg);
        self.listeners(&mut d.cfg);
        d.cfg.app = self.app(&d);
        d.cfg.chown_socket = self.socket_owner(d.chown_socket.as_deref());
        self.paths(&mut d.cfg);
        d.cfg.uid = self.user(d.uid.as_deref());
        d.cfg.gid = self.group(d.gid.as_deref());
        self.privileges(&d.cfg);
        d.cfg
    }

    fn counts(&mut self, c: &Config) {
        if c.processes == 0 {
            self.error(
                "processes",
                "must be at least 1 (0 workers would accept nothing)",
            );
        }
        if c.threads == 0 || c.threads > MAX_THREADS {
            self.error(
                "threads",
                format!("{} is out of range: must be 1 to {MAX_THREADS}", c.threads),
            );
        }
        if c.max_concurrent_recycles == 0 {
            self.error("max-concurrent-recycles", "must be at least 1");
        }
        if c.listen < 1 {
            self.error("listen", "the backlog must be at least 1");
        }
        if c.buffer_size < 512 {
            self.error(
                "buffer-size",
                format!("{} bytes is too small: must be at least 512", c.buffer_size),
            );
        }
        if c.max_boot_failures == 0 {
            self.error("max-boot-failures", "must be at least 1");
        }
    }

    fn recycling(&mut self, c: &Config) {
        match c.max_requests {
            Some(max) if c.max_requests_jitter > max => self.error(
                "max-requests-jitter",
                format!(
                    "{} is larger than max-requests ({max}): must be <= max-requests",
                    c.max_requests_jitter
                ),
            ),
            None if c.max_requests_jitter > 0 => self.warn(
                "max-requests-jitter",
                "has no effect: max-requests is 0 (disabled)",
            ),
            None if c.max_requests_delta > 0 => self.warn(
                "max-requests-delta",
                "has no effect: max-requests is 0 (disabled)",
            ),
            _ => {}
        }
        match c.max_worker_lifetime {
            Some(max) if c.min_worker_lifetime >= max => self.error(
                "min-worker-lifetime",
                format!(
                    "{} must be lower than max-worker-lifetime ({}, {})",
                    secs(c.min_worker_lifetime),
                    secs(max),
                    self.origin("max-worker-lifetime")
                ),
            ),
            None if !c.max_worker_lifetime_delta.is_zero() => self.warn(
                "max-worker-lifetime-delta",
                "has no effect: max-worker-lifetime is 0 (disabled)",
            ),
            _ => {}
        }
        if let (Some(soft), Some(hard)) = (c.reload_on_rss, c.evil_reload_on_rss) {
            if hard <= soft {
                self.error(
                    "evil-reload-on-rss",
                    format!(
                        "{} MiB must be above reload-on-rss ({} MiB), or the graceful recycle never happens",
                        hard >> 20,
                        soft >> 20
                    ),
                );
            }
        }
        for (name, d) in [
            ("memory-sample-interval", c.memory_sample_interval),
            ("smaps-sample-interval", c.smaps_sample_interval),
            ("pool-check-interval", c.pool_check_interval),
        ] {
            if d.is_zero() {
                self.error(name, "must be greater than 0");
            }
        }
        self.pool_rules(c);
    }

    /// A soft limit at or above the hard one would never act first.
    fn pool_rules(&mut self, c: &Config) {
        use super::Amount::{Bytes, PerMille};
        let (Some(soft), Some(hard)) = (c.pool_soft_limit, c.pool_hard_limit) else {
            return;
        };
        let soft_not_below = match (soft.amount, hard.amount) {
            (Bytes(s), Bytes(h)) => s >= h,
            (PerMille(s), PerMille(h)) => s >= h,
            _ => false,
        };
        if soft_not_below {
            self.error(
                "pool-soft-limit",
                format!("{soft} must be below pool-hard-limit ({hard}), or it never acts first"),
            );
        }
    }

    fn timeouts(&mut self, c: &Config) {
        for (name, d) in [
            ("worker-reload-mercy", c.worker_reload_mercy),
            ("worker-boot-timeout", c.worker_boot_timeout),
            ("header-timeout", c.header_timeout),
        ] {
            if d.is_zero() {
                self.error(name, "must be greater than 0");
            }
        }
        if let Some(life) = c.max_worker_lifetime {
            if c.worker_reload_mercy >= life {
                let msg = format!(
                    "{} is not shorter than max-worker-lifetime ({}): a recycling worker could be killed before it finishes",
                    secs(c.worker_reload_mercy),
                    secs(life)
                );
                if self.set("worker-reload-mercy") {
                    self.error("worker-reload-mercy", msg);
                } else {
                    self.warn("worker-reload-mercy", format!("the default {msg}"));
                }
            }
        }
    }

    fn listeners(&mut self, c: &mut Config) {
        // Under systemd socket activation the listeners come from LISTEN_FDS instead.
        let activated = std::env::var_os("LISTEN_FDS").is_some();
        if c.listeners.is_empty() && !activated {
            self.error(
                "http-socket",
                "no listener: add http-socket = HOST:PORT (for example :8000) or \
                 socket = HOST:PORT for nginx's uwsgi_pass",
            );
        }
        for l in &mut c.listeners {
            if let ListenAddr::Unix(p) = &mut l.addr {
                *p = self.ctx.resolve(&p.to_string_lossy());
            }
        }
        let unix_dirs: Vec<PathBuf> = c
            .listeners
            .iter()
            .filter_map(|l| match &l.addr {
                ListenAddr::Unix(p) => p.parent().map(Path::to_path_buf),
                ListenAddr::Tcp { .. } => None,
            })
            .collect();
        for dir in unix_dirs {
            if !dir.is_dir() {
                self.error(
                    "http-socket",
                    format!(
                        "directory {} for the unix socket does not exist",
                        dir.display()
                    ),
                );
            }
        }
    }

    fn app(&mut self, d: &Draft) -> AppSpec {
        let python = has_python_app(d);
        if d.demo && python {
            self.error("demo", "conflicts with module/wsgi-file: choose one app");
        }
        if d.exec.is_some() && (d.demo || python) {
            self.error(
                "worker-exec",
                "conflicts with demo/module/wsgi-file: choose one app",
            );
        }
        if d.module.is_some() && d.wsgi_file.is_some() {
            self.error(
                "wsgi-file",
                "conflicts with module: give either module or wsgi-file, not both",
            );
        }
        if !python {
            for (opt, set) in [
                ("home", d.home.is_some()),
                ("pythonpath", !d.pythonpath.is_empty()),
                ("callable", d.callable.is_some()),
            ] {
                if set {
                    self.warn(opt, "has no effect without module or wsgi-file");
                }
            }
        }
        if d.demo {
            return AppSpec::Demo;
        }
        if let Some(cmd) = &d.exec {
            return self.exec(d, cmd);
        }
        if python {
            return AppSpec::Wsgi(self.wsgi(d));
        }
        if self.ctx.embedded_app {
            return AppSpec::Embedded;
        }
        self.error(
            "module",
            "no application: set module = pkg.wsgi[:callable], wsgi-file = path/to/app.py, \
             worker-exec = COMMAND (or demo)",
        );
        AppSpec::None
    }

    fn exec(&mut self, d: &Draft, cmd: &str) -> AppSpec {
        let argv = split_command(cmd).unwrap_or_else(|e| {
            self.error("worker-exec", format!("'{cmd}': {e}"));
            vec![String::new()]
        });
        let stop_signal = match d.exec_stop_signal.as_deref().map(parse_signal) {
            None => libc::SIGTERM,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.error("worker-exec-stop-signal", e);
                libc::SIGTERM
            }
        };
        if d.cfg.max_requests.is_some() && !d.exec_notify {
            self.warn(
                "max-requests",
                "an exec'd worker is only recycled on max-requests when it reports its \
                 requests (worker-exec-notify = true; see docs/worker-protocol.md)",
            );
        }
        AppSpec::Exec(ExecSpec {
            argv,
            notify: d.exec_notify,
            ready_delay: d.exec_ready_delay.unwrap_or(Duration::from_secs(1)),
            stop_signal,
        })
    }

    fn socket_owner(&mut self, spec: Option<&str>) -> Option<SocketOwner> {
        match parse_owner(spec?) {
            Ok((uid, gid)) => Some(SocketOwner { uid, gid }),
            Err(e) => {
                self.error("chown-socket", e);
                None
            }
        }
    }

    fn wsgi(&mut self, d: &Draft) -> WsgiSpec {
        let (module, from_module) = match d
            .module
            .as_deref()
            .map(|m| m.split_once(':').unwrap_or((m, "")))
        {
            Some((m, c)) => (Some(m.to_string()), (!c.is_empty()).then(|| c.to_string())),
            None => (None, None),
        };
        if let Some(m) = &module {
            if !m.split('.').all(is_identifier) {
                self.error(
                    "module",
                    format!("'{m}' is not a dotted Python module path such as pkg.wsgi"),
                );
            }
        }
        let callable = match (from_module, d.callable.clone()) {
            (Some(a), Some(b)) if a != b => {
                self.error(
                    "callable",
                    format!("'{b}' conflicts with module's ':{a}': give the callable once"),
                );
                a
            }
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => "application".to_string(),
        };
        if !is_identifier(&callable) {
            self.error(
                "callable",
                format!("'{callable}' is not a Python identifier"),
            );
        }
        WsgiSpec {
            module,
            wsgi_file: d.wsgi_file.clone(),
            callable,
            home: d.home.clone(),
            pythonpath: d.pythonpath.clone(),
            lazy_apps: d.lazy_apps,
        }
    }

    fn paths(&mut self, c: &mut Config) {
        c.chdir = c
            .chdir
            .take()
            .map(|p| self.ctx.resolve(&p.to_string_lossy()));
        if let Some(dir) = c.chdir.clone() {
            self.require_dir("chdir", &dir);
        }
        if let AppSpec::Wsgi(w) = &mut c.app {
            let base = c
                .chdir
                .clone()
                .unwrap_or_else(|| self.ctx.cwd.to_path_buf());
            w.wsgi_file = w.wsgi_file.take().map(|f| base.join(f));
            w.home = w
                .home
                .take()
                .map(|h| self.ctx.resolve(&h.to_string_lossy()));
            let (file, home, pp) = (w.wsgi_file.clone(), w.home.clone(), w.pythonpath.clone());
            self.python_paths(file, home, &base, &pp);
        }
        c.pidfile = c
            .pidfile
            .take()
            .map(|p| self.ctx.resolve(&p.to_string_lossy()));
        if let Some(p) = c.pidfile.clone() {
            self.require_parent("pidfile", &p);
        }
        c.logto = c
            .logto
            .take()
            .map(|p| self.ctx.resolve(&p.to_string_lossy()));
        if let Some(p) = c.logto.clone() {
            self.require_parent("logto", &p);
        }
        c.touch_reload = c
            .touch_reload
            .iter()
            .map(|p| self.ctx.resolve(&p.to_string_lossy()))
            .collect();
        for p in c.touch_reload.clone() {
            if !p.exists() {
                self.warn(
                    "touch-reload",
                    format!(
                        "{} does not exist yet; molt watches for it to appear",
                        p.display()
                    ),
                );
            }
        }
    }

    fn python_paths(
        &mut self,
        file: Option<PathBuf>,
        home: Option<PathBuf>,
        base: &Path,
        pp: &[PathBuf],
    ) {
        if let Some(f) = file {
            if !f.is_file() {
                self.error(
                    "wsgi-file",
                    format!(
                        "{} is not a file (relative paths start at chdir)",
                        f.display()
                    ),
                );
            }
        }
        if let Some(h) = home {
            self.require_dir("home", &h);
        }
        for p in pp {
            if !base.join(p).exists() {
                self.warn(
                    "pythonpath",
                    format!("{} does not exist", base.join(p).display()),
                );
            }
        }
    }

    fn require_dir(&mut self, option: &str, dir: &Path) {
        if !dir.is_dir() {
            self.error(
                option,
                format!("{} is not an existing directory", dir.display()),
            );
        }
    }

    fn require_parent(&mut self, option: &str, file: &Path) {
        match file.parent() {
            Some(dir) if dir.is_dir() => {}
            _ => self.error(
                option,
                format!("the directory of {} does not exist", file.display()),
            ),
        }
    }

    fn user(&mut self, spec: Option<&str>) -> Option<UserId> {
        let spec = spec?;
        let found = match spec.parse::<u32>() {
            Ok(id) => nix::unistd::User::from_uid(id.into())
                .ok()
                .flatten()
                .map_or(
                    Some(UserId {
                        id,
                        name: None,
                        primary_gid: None,
                    }),
                    |u| Some(user_id(u)),
                ),
            Err(_) => nix::unistd::User::from_name(spec)
                .ok()
                .flatten()
                .map(user_id),
        };
        if found.is_none() {
            self.error("uid", format!("no user named '{spec}' on this system"));
        }
        found
    }

    fn group(&mut self, spec: Option<&str>) -> Option<GroupId> {
        let spec = spec?;
        let found = match spec.parse::<u32>() {
            Ok(id) => Some(GroupId {
                id,
                name: nix::unistd::Group::from_gid(id.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name),
            }),
            Err(_) => nix::unistd::Group::from_name(spec)
                .ok()
                .flatten()
                .map(|g| GroupId {
                    id: g.gid.as_raw(),
                    name: Some(g.name),
                }),
        };
        if found.is_none() {
            self.error("gid", format!("no group named '{spec}' on this system"));
        }
        found
    }

    /// Dropping privileges needs root, unless the target ids are already ours.
    fn privileges(&mut self, c: &Config) {
        let euid = nix::unistd::geteuid().as_raw();
        if euid == 0 {
            return;
        }
        if let Some(u) = &c.uid {
            if u.id != euid {
                self.error(
                    "uid",
                    format!(
                        "cannot switch to uid {} when not started as root (euid {euid})",
                        u.id
                    ),
                );
            }
        }
        let egid = nix::unistd::getegid().as_raw();
        if let Some(g) = &c.gid {
            if g.id != egid {
                self.error(
                    "gid",
                    format!(
                        "cannot switch to gid {} when not started as root (egid {egid})",
                        g.id
                    ),
                );
            }
        }
    }
}

fn user_id(u: nix::unistd::User) -> UserId {
    UserId {
        id: u.uid.as_raw(),
        name: Some(u.name),
        primary_gid: Some(u.gid.as_raw()),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
