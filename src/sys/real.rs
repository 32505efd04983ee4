//! The real effects: fork, kill, waitpid, procfs.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setpgid, ForkResult, Pid};

use super::notify::ExecWorker;
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
    /// Exec'd workers by pid: their notify sockets and stop signals.
    exec: HashMap<i32, ExecWorker>,
    /// Each live worker's scoreboard slot (for the helper pid it publishes).
    slots: HashMap<i32, usize>,
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
            exec: HashMap::new(),
            slots: HashMap::new(),
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
        let mut exec = match &spec.exec {
            Some(Ok(plan)) => Some(ExecWorker::bind(plan.meta.clone(), req.slot, self.now())?),
            _ => None,
        };
        // Until the child has replaced the master's signal handlers with the defaults, a
        // signal sent to it (a shutdown right after a spawn) would run the master's
        // handler there and be lost: block everything across fork. The child unblocks
        // after its reset (worker::prepare), so a pending SIGTERM then takes effect; the
        // master restores its mask at once, so no signal of its own is delayed for long.
        let mut saved = SigSet::empty();
        sigprocmask(
            SigmaskHow::SIG_BLOCK,
            Some(&SigSet::all()),
            Some(&mut saved),
        )?;
        // SAFETY: the master is single-threaded, so the child inherits no lock held by
        // another thread; the child never returns from child_main.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&saved), None)?;
        }
        match forked? {
            ForkResult::Child => child_main(spec),
            ForkResult::Parent { child } => {
                // Also set in the child; doing both closes the race with an early kill.
                let _ = setpgid(child, child);
                self.slots.insert(child.as_raw(), req.slot);
                if let Some(mut w) = exec.take() {
                    w.pid = child.as_raw();
                    self.exec.insert(w.pid, w);
                }
                Ok(child.as_raw())
            }
        }
    }

    fn stop(&mut self, pid: i32) -> io::Result<()> {
        let sig = match self.exec.get(&pid) {
            Some(w) => Signal::try_from(w.meta.stop_signal).unwrap_or(Signal::SIGTERM),
            None => Signal::SIGTERM,
        };
        Ok(kill(Pid::from_raw(pid), sig)?)
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
        let mut out = self.wait_all();
        out.retain(|(pid, how)| !crate::wsgi::zygote::reaped(*pid, how));
        for (pid, _) in &out {
            self.slots.remove(pid);
            // Its last words (the final REQUESTS=) count; then the socket goes.
            if let Some(mut w) = self.exec.remove(pid) {
                w.pump(self.board.slot(w.slot), mono_ns());
            }
        }
        out
    }

    fn relay(&mut self, now: Nanos) {
        for w in self.exec.values_mut() {
            w.pump(self.board.slot(w.slot), now);
        }
    }

    fn wait_fds(&self) -> Vec<RawFd> {
        self.exec.values().map(ExecWorker::fd).collect()
    }

    fn memory(&mut self, pid: i32, with_smaps: bool) -> Option<TreeMemory> {
        tree_memory(pid, self.helper(pid), self.page_size, with_smaps)
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

    fn memory_detail(&mut self, pid: i32, known: Option<super::Smaps>) -> super::MemoryDetail {
        super::memory::detail(pid, self.helper(pid), self.page_size, known)
    }

    fn now(&self) -> Nanos {
        mono_ns()
    }
}

impl RealSys {
    /// The helper process the worker `pid` published (see `Slot::helper_pid`).
    fn helper(&self, pid: i32) -> Option<i32> {
        let slot = *self.slots.get(&pid)?;
        let helper = self.board.slot(slot).helper_pid.load(Relaxed);
        (helper > 0).then_some(helper)
    }

    /// waitpid until no exited child is left.
    fn wait_all(&mut self) -> Vec<(i32, ExitKind)> {
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
}
