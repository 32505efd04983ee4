//! Keeping a worker thread and the Python thread it hands requests to on one CPU.
//!
//! Every WSGI request is a ping-pong: the worker writes the request and blocks, the child
//! wakes, answers and blocks, the worker wakes. On one CPU each hand-off is a cheap
//! same-CPU wakeup; across CPUs each one is a cross-CPU wakeup (an inter-processor
//! interrupt, a VM exit under a hypervisor) and both caches go cold. Measured on a
//! 2-core VM with 2 workers (hello world, wrk 16 connections): 63k req/s with each pair
//! on one CPU, 35k with each pair split. The kernel places a freshly forked child on the
//! idlest CPU, and under load a split pair tends to stay split (its sync wakeups are
//! weighed against the load on both CPUs), so each new child, i.e. each recycle, rolled
//! the dice for the rest of its life.
//!
//! The fix is a nudge, not a pin: before the first request, and again every [`EVERY`]
//! requests, the worker moves the child's thread to the CPU the worker thread runs on (a
//! one-CPU affinity), then gives it back every CPU it was allowed. The kernel's sync
//! wakeups then keep the pair together, and the load balancer stays free to move either:
//! a pair it splits is joined again within [`EVERY`] requests (two syscalls each time,
//! nothing per request). Measured with `--max-requests 100` (a new pair twice a second):
//! 0.92-0.94 of the throughput without recycling, 0.73-0.88 without the nudge.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Requests between two nudges on one channel.
pub const EVERY: u64 = 256;

/// Moves thread `tid` onto the CPU the calling thread runs on, then restores its allowed
/// CPUs. Does nothing if that CPU is not among them (taskset, cpusets) or on any error:
/// it is only an optimisation.
pub fn colocate(tid: i32) {
    let tid = Pid::from_raw(tid);
    let Ok(allowed) = sched_getaffinity(tid) else {
        return;
    };
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    let Ok(cpu) = usize::try_from(cpu) else {
        return;
    };
    if !allowed.is_set(cpu).unwrap_or(false) {
        return;
    }
    let mut here = CpuSet::new();
    if here.set(cpu).is_ok() && sched_setaffinity(tid, &here).is_ok() {
        let _ = sched_setaffinity(tid, &allowed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().expect("sleep")
    }

    fn stop(mut c: Child) {
        let _ = c.kill();
        let _ = c.wait();
    }

    #[test]
    fn colocating_gives_back_every_allowed_cpu() {
        let c = sleeper();
        let pid = Pid::from_raw(c.id() as i32);
        let before = sched_getaffinity(pid).expect("affinity");
        colocate(pid.as_raw());
        let after = sched_getaffinity(pid).expect("affinity");
        stop(c);
        assert_eq!(before, after, "a nudge, never a pin");
    }

    #[test]
    fn a_thread_kept_off_our_cpu_stays_off() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return; // nothing to keep it off
        }
        // This test thread on CPU 0, the child allowed only CPU 1.
        let (mut zero, mut one) = (CpuSet::new(), CpuSet::new());
        zero.set(0).unwrap();
        one.set(1).unwrap();
        let me = Pid::from_raw(0);
        let mine = sched_getaffinity(me).expect("affinity");
        if sched_setaffinity(me, &zero).is_err() {
            return; // CPU 0 is not ours to use (a restricted cpuset)
        }
        let c = sleeper();
        let pid = Pid::from_raw(c.id() as i32);
        let pinned = sched_setaffinity(pid, &one).is_ok();
        colocate(pid.as_raw());
        let after = sched_getaffinity(pid).expect("affinity");
        stop(c);
        let _ = sched_setaffinity(me, &mine);
        if pinned {
            assert_eq!(after, one, "its allowed CPUs are respected");
        }
    }
}
