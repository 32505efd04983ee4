//! The `molt` binary: load the configuration, run the master, map errors to exit codes.
//! Kept thin: every decision lives in the library.

use std::sync::Arc;

use molt::config::{AppSpec, Config};
use molt::worker::AppFactory;
use molt::{demo, master};

fn main() {
    molt::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("top") {
        std::process::exit(molt::observe::top::main(&args[1..]));
    }
    let loaded = molt::load_or_exit(args);
    molt::exit_with(master::run(loaded, Arc::new(app_factory)))
}

/// The factory that builds the configured app inside each worker.
fn app_factory(cfg: &Config) -> AppFactory {
    match &cfg.app {
        AppSpec::Demo | AppSpec::None => Arc::new(demo::boot),
        AppSpec::Wsgi(_) => {
            Arc::new(|| Err("WSGI apps are not wired into this build yet".to_string()))
        }
    }
}
