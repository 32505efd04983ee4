//! The `molt` binary: parse the configuration, run the master, map errors to exit codes.

use std::sync::Arc;

use molt::config::{self, AppSpec};
use molt::worker::AppFactory;
use molt::{demo, master, Error};

fn main() {
    molt::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = config::parse_args(args)
        .map_err(Error::Config)
        .and_then(|cfg| {
            let app = app_factory(&cfg.app);
            master::run(&cfg, app)
        });
    molt::exit_with(result)
}

/// The factory that builds the configured app inside each worker.
fn app_factory(spec: &AppSpec) -> AppFactory {
    match spec {
        AppSpec::Demo | AppSpec::None => Arc::new(demo::boot),
    }
}
