//! The real effects: fork, kill, waitpid, procfs.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setpgid, ForkResult, Pid};

use super::{tree_memory, MemoryCgroup, SpawnRequest, Sys, TreeMemory};
use crate::pool::{ExitKind, Nanos};
use crate::scoreboard::{mono_ns, Scoreboard};
use crate::worker::{child_main, ChildSpec};

/// Builds a [`ChildSpec`] for a spawn; owned by the master, called right before fork.
pub type SpecBuilder = Box<dyn Fn(&SpawnRequest) -> ChildSpec>;

/// The real operating system.
pub struct RealSys {
    build: SpecBuilder,
    board: std::sync::Arc<Scoreboard>,
    page_size: u64,
    cgroup: Option<MemoryCgroup>,
}

impl RealSys {
    pub fn new(build: SpecBuilder, board: std::sync::Arc<Scoreboard>) -> Self {
        // SAFETY: sysconf has no preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        RealSys {
            build,
            board,
            page_size,
            cgroup: MemoryCgroup::locate(),
        }
    }
}

impl RealSys {
    /// Replaces how children are prepared (after a reload).
    pub fn set_builder(&mut self, build: SpecBuilder) {
        self.build = build;
    }
}

impl Sys for RealSys {
    fn spawn(&mut self, req: &SpawnRequest) -> io::Result<i32> {
        self.board.reset(req.slot, req.generation);
        // Everything the child needs is built before fork: the child only runs code that
        // the single-threaded master prepared.
        let spec = (self.build)(req);
        // SAFETY: the master is single-threaded, so the child inherits no lock held by
        // another thread; the child never returns from child_main.
        match unsafe { fork() }? {
            ForkResult::Child => child_main(spec),
            ForkResult::Parent { child } => {
                // Also set in the child; doing both closes the race with an early kill.
                let _ = setpgid(child, child);
                Ok(child.as_raw())
            }
        }
    }

    fn stop(&mut self, pid: i32) -> io::Result<()> {
        Ok(kill(Pid::from_raw(pid), Signal::SIGTERM)?)
    }

    fn kill(&mut self, pid: i32) -> io::Result<()> {
        // The worker leads its own group; if it has not set it yet, kill it alone.
        match killpg(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) => Ok(()),
            Err(Errno::ESRCH) => Ok(kill(Pid::from_raw(pid), Signal::SIGKILL)?),
            Err(e) => Err(e.into()),
        }
    }

    fn reap(&mut self) -> Vec<(i32, ExitKind)> {
        let mut out = Vec::new();
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    out.push((pid.as_raw(), ExitKind::Exited(code)))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    out.push((pid.as_raw(), ExitKind::Signaled(sig as i32)))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return out,
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::error!("waitpid failed: {e}");
                    return out;
                }
            }
        }
    }

    fn memory(&mut self, pid: i32, with_smaps: bool) -> Option<TreeMemory> {
        tree_memory(pid, self.page_size, with_smaps)
    }

    fn exec(&mut self, command: &str, env: &[(&str, String)]) -> io::Result<i32> {
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(std::process::Stdio::null())
            .spawn()?;
        // Dropping `Child` neither waits nor kills: the master's reap loop collects it.
        Ok(child.id() as i32)
    }

    fn capacity(&mut self) -> Option<super::Capacity> {
        super::capacity()
    }

    fn oom_kills(&mut self) -> Option<u64> {
        self.cgroup.as_ref()?.oom_kills()
    }

    fn now(&self) -> Nanos {
        mono_ns()
    }
}
