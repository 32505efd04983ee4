//! molt: a pre-fork app server launcher that keeps worker memory bounded.
//!
//! # Theory of operation
//!
//! The master process binds every listener once, then forks N workers that inherit them.
//! It runs one thread and one event loop: signals only bump counters and wake the loop;
//! each turn drains signals, reaps exited children, samples the scoreboard and `/proc`,
//! asks the pure planner ([`pool`]) what to do, and applies those actions through the
//! effect layer ([`sys`]). Workers report through a shared-memory [`scoreboard`] with
//! atomics, so accounting costs no syscall per request.
//!
//! A recycle (max-requests, lifetime, USR1, HUP) spawns the replacement first and stops
//! the old worker only once the new one is ready, at most K at a time; a memory or
//! harakiri verdict acts at once. Every graceful stop has a deadline (the mercy), after
//! which the worker's whole process group is killed.
//!
//! # Layout
//!
//! - [`config`]: the typed settings and the readers that fill them.
//! - [`pool`]: PURE. Pool state, recycle policy, the planner (no I/O, no clock).
//! - [`master`]: the event loop, signals, sampling, applying actions.
//! - [`sys`]: the effect seam (fork, kill, waitpid, procfs).
//! - [`scoreboard`]: shared-memory slots, one per worker process.
//! - [`listen`]: binding listeners.
//! - [`worker`]: child setup and the HTTP/1.1 runtime.
//! - [`wsgi`]: Python WSGI apps, served by a Python child of each worker over socketpairs.
//! - [`app`]: the public API an application implements; [`demo`]: the built-in demo app.
//!
//! # Using molt as a library
//!
//! ```no_run
//! use molt::app::{App, Request, Response};
//!
//! struct Hello;
//! impl App for Hello {
//!     fn call(&self, _req: &mut Request<'_>) -> Response {
//!         Response::text(200, &b"Hello, World!"[..])
//!     }
//! }
//!
//! fn main() {
//!     // Takes the same command line as the molt binary (minus --demo).
//!     molt::cli_main(|| Ok(Box::new(Hello)));
//! }
//! ```

pub mod app;
pub mod apps;
pub mod config;
pub mod demo;
pub mod error;
pub mod listen;
pub mod master;
pub mod pool;
pub mod scoreboard;
pub mod sys;
pub mod worker;
pub mod wsgi;

use std::sync::Arc;

pub use app::{App, Request, Response};
pub use error::Error;

/// Initialises logging to stderr: `RUST_LOG` decides, `info` by default.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// Runs molt with the process's command line, serving the app that `factory` builds in
/// each worker; exits the process with molt's exit code.
pub fn cli_main<F>(factory: F) -> !
where
    F: Fn() -> Result<Box<dyn App>, String> + Send + Sync + 'static,
{
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = load_or_exit(args, true);
    let factory: worker::AppFactory = Arc::new(factory);
    let make_app = move |cfg: &config::Config| apps::configured(cfg, Some(&factory));
    exit_with(master::run(loaded, Arc::new(make_app)))
}

/// Loads the configuration from the command line, or prints what `--help`,
/// `--version`, `--check-config`, `--print-config` or the errors call for and exits.
/// `embedded_app`: the program serves its own app (no app option is required).
pub fn load_or_exit(args: Vec<String>, embedded_app: bool) -> config::Loaded {
    match config::cli_main_for(args, embedded_app) {
        Ok(loaded) => loaded,
        Err(exit) => {
            use std::io::Write;
            print!("{}", exit.stdout);
            eprint!("{}", exit.stderr);
            let _ = std::io::stdout().flush();
            std::process::exit(exit.code)
        }
    }
}

/// Maps a result to the process exit code, printing the error (the one place that does).
pub fn exit_with(result: Result<(), Error>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("molt: {e}");
            std::process::exit(e.exit_code())
        }
    }
}
