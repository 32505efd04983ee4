//! The `molt` binary: load the configuration, run the master, map errors to exit codes.
//! Kept thin: every decision lives in the library.

use std::sync::Arc;

fn main() {
    molt::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = molt::load_or_exit(args, false);
    let make_app = Arc::new(|cfg: &molt::config::Config| molt::apps::configured(cfg, None));
    molt::exit_with(molt::master::run(loaded, make_app))
}
