//! The `molt` binary: parse the configuration, run the master, map errors to exit codes.

use std::sync::Arc;

use molt::config::{AppSpec, Config, ListenAddr};
use molt::worker::AppFactory;
use molt::wsgi::{self, ServerDefaults, WsgiOptions};
use molt::{demo, master};

fn main() {
    molt::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = molt::load_or_exit(args);
    molt::exit_with(master::run(loaded, Arc::new(app_factory)))
}

/// The factory that builds the configured app inside each worker (after the worker's
/// own setup has applied `chdir` and `env`, so the Python child inherits them).
fn app_factory(cfg: &Config) -> AppFactory {
    match &cfg.app {
        AppSpec::Demo | AppSpec::None => Arc::new(demo::boot),
        AppSpec::Wsgi(spec) => {
            let opts = WsgiOptions {
                threads: cfg.threads,
                processes: cfg.processes,
                defaults: server_defaults(cfg),
            };
            wsgi::factory(spec.clone(), opts)
        }
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
