//! The effect seam: every syscall the master's decisions lead to goes through [`Sys`], so
//! the loop can be driven by a recording fake in tests.

pub mod cgroup;
pub mod memory;
pub mod notify;
mod real;

pub use cgroup::{capacity, Capacity, MemoryCgroup};
pub use memory::{tree_memory, tree_rss, MemoryDetail, Smaps, TreeMemory};
pub use real::RealSys;

use std::io;

use crate::pool::{ExitKind, Nanos};

/// What the master asks of the operating system.
pub trait Sys {
    /// Forks a worker for `id` into scoreboard `slot`; returns its pid.
    fn spawn(&mut self, req: &SpawnRequest) -> io::Result<i32>;
    /// Asks a worker to stop gracefully (SIGTERM to the worker alone).
    fn stop(&mut self, pid: i32) -> io::Result<()>;
    /// Kills a worker and everything in its process group (SIGKILL).
    fn kill(&mut self, pid: i32) -> io::Result<()>;
    /// Reaps every exited child (waitpid until none is left).
    fn reap(&mut self) -> Vec<(i32, ExitKind)>;
    /// Memory of a worker and its descendants; `with_smaps` also reads PSS/USS.
    fn memory(&mut self, pid: i32, with_smaps: bool) -> Option<TreeMemory>;
    /// Starts `sh -c command` with extra environment, without waiting; returns its pid
    /// (reaped by [`Sys::reap`] like any child).
    fn exec(&mut self, command: &str, env: &[(&str, String)]) -> io::Result<i32>;
    /// The memory percentages are a share of: the cgroup limit, else MemTotal.
    fn capacity(&mut self) -> Option<Capacity>;
    /// The kernel's count of OOM kills in molt's memory cgroup, when readable.
    fn oom_kills(&mut self) -> Option<u64>;
    /// PSS, USS and VSZ of a worker (for the stats only; never a recycling input).
    /// `known`: this sample's PSS/USS, when already read for the recycling rules.
    fn memory_detail(&mut self, _pid: i32, _known: Option<Smaps>) -> MemoryDetail {
        MemoryDetail::default()
    }
    /// Monotonic time.
    fn now(&self) -> Nanos;
    /// Reads what exec'd workers reported (worker protocol) into their slots.
    fn relay(&mut self, _now: Nanos) {}
    /// Extra fds the master's wait should wake on (exec'd workers' notify sockets).
    fn wait_fds(&self) -> Vec<std::os::fd::RawFd> {
        Vec::new()
    }
}

/// One fork, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnRequest {
    pub id: u32,
    pub slot: usize,
    pub generation: u64,
    pub max_requests: Option<u64>,
}
