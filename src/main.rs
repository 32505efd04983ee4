//! The `molt` binary: load the configuration, run the master, map errors to exit codes.
//! Kept thin: every decision lives in the library.

use std::sync::Arc;

use molt::config::{AppSpec, Config};
use molt::worker::AppFactory;
use molt::{demo, master};

fn main() {
    molt::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = molt::load_or_exit(args);
    molt::exit_with(master::run(loaded, Arc::new(app_factory)))
}

/// The factory that builds the configured app inside each worker.
fn app_factory(cfg: &Config) -> AppFactory {
    match &cfg.app {
        AppSpec::Demo | AppSpec::None => {
            // This runs in the master, before forking: a preloaded block is shared by all.
            match demo::preload_from_env() {
                Ok(0) => {}
                Ok(mb) => log::info!("demo: preloaded {mb} MiB before forking"),
                Err(e) => log::error!("demo: {e}"),
            }
            Arc::new(demo::boot)
        }
        AppSpec::Wsgi(_) => {
            Arc::new(|| Err("WSGI apps are not wired into this build yet".to_string()))
        }
    }
}
