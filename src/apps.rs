//! Which app a worker serves: maps the configured [`AppSpec`] to the factory each worker
//! runs after fork (after its own setup applied `chdir` and `env`, so a Python child
//! inherits them). Shared by the `molt` binary and by programs using [`crate::cli_main`].

use std::sync::Arc;

use crate::config::{AppSpec, Config, ListenAddr};
use crate::demo;
use crate::worker::AppFactory;
use crate::wsgi::{self, ServerDefaults, WsgiOptions, ZygoteSetup};

/// The factory for the app `cfg` names; `embedded` serves `AppSpec::Embedded`.
pub fn configured(cfg: &Config, embedded: Option<&AppFactory>) -> AppFactory {
    match (&cfg.app, embedded) {
        (AppSpec::Wsgi(spec), _) => {
            let opts = WsgiOptions {
                threads: cfg.threads,
                processes: cfg.processes,
                defaults: server_defaults(cfg),
                setup: ZygoteSetup {
                    chdir: cfg.chdir.clone(),
                    env: cfg.env.clone(),
                    uid: cfg.uid.clone(),
                    gid: cfg.gid.clone(),
                    logto: cfg.logto.clone(),
                },
            };
            wsgi::factory(spec.clone(), opts)
        }
        (AppSpec::Embedded, Some(app)) => app.clone(),
        // The exec kind runs no app in the worker runtime: the child execs the command.
        (AppSpec::Exec(_), _) => {
            Arc::new(|| Err("an exec'd worker has no in-process app".to_string()))
        }
        (AppSpec::Demo | AppSpec::None | AppSpec::Embedded, _) => demo::factory(),
    }
}

/// SERVER_NAME/SERVER_PORT for requests without a Host header: the first listener.
fn server_defaults(cfg: &Config) -> ServerDefaults {
    match cfg.listeners.first().map(|l| &l.addr) {
        Some(ListenAddr::Tcp { host, port }) => {
            let name = if host.is_empty() {
                "0.0.0.0".to_string()
            } else {
                host.clone()
            };
            ServerDefaults {
                name,
                port: port.to_string(),
            }
        }
        _ => ServerDefaults {
            name: "localhost".into(),
            port: "80".into(),
        },
    }
}
