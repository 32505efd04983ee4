//! Seeing inside: the request log, the leak finder, the stats server (uWSGI's layout),
//! Prometheus metrics and the live page.
//!
//! The request path only writes atomics into the worker's scoreboard slot (and, when
//! asked, one log line and two reads of `/proc/self/statm`). Everything else happens in
//! the master, which reads the slots, measures memory itself and keeps the totals of
//! dead workers ([`book::Book`]), so counters survive recycling.

pub mod book;
pub mod metrics;
pub mod page;
pub mod queue;
pub mod reqlog;
pub mod route;
pub mod server;
pub mod stats;
pub mod top;
pub mod view;
