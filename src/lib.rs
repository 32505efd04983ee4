//! molt: a pre-fork app server launcher that keeps worker memory bounded.
//!
//! # Theory of operation
//!
//! The master process binds every listener once, then forks N workers that inherit them.
//! It runs one thread and one event loop: signals only set counters and wake the loop;
//! each turn of the loop drains signals, reaps exited children, samples the scoreboard
//! and `/proc`, asks the pure planner ([`pool`]) what to do, and applies those actions
//! through the effect layer ([`sys`]). Workers report through a shared-memory
//! [`scoreboard`] with atomics, so accounting costs no syscall per request.
//!
//! # Layout
//!
//! - [`config`]: the typed settings and the readers that fill them.
//! - [`pool`]: PURE. Pool state, recycle policy, the planner (no I/O, no clock).
//! - [`master`]: the event loop, signals, sampling, applying actions.
//! - [`sys`]: the effect seam (fork, kill, waitpid, procfs).
//! - [`scoreboard`]: shared-memory slots, one per worker process.
//! - [`listen`]: binding listeners.
//! - [`worker`]: the worker runtime (HTTP/1.1) and the app adapters.
//! - [`app`]: the public API an application implements.

pub mod config;
pub mod error;
pub mod scoreboard;

pub use error::Error;
