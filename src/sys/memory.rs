//! Memory as the master measures it: from /proc, never from the worker's own report.

use std::fs;

/// Resident bytes of `pid` plus all of its descendants (an app child, a command's
/// helpers): the memory the worker really costs, like monit's `totalmem`.
pub fn tree_rss(pid: i32, page_size: u64) -> Option<u64> {
    let mut total = rss_pages(pid)? * page_size;
    let mut stack = children(pid);
    let mut seen = 0;
    while let Some(child) = stack.pop() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        if let Some(pages) = rss_pages(child) {
            total += pages * page_size;
        }
        stack.extend(children(child));
    }
    Some(total)
}

fn rss_pages(pid: i32) -> Option<u64> {
    let statm = procfs::process::Process::new(pid).ok()?.statm().ok()?;
    Some(statm.resident)
}

/// Direct children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// Memory figures beyond RSS, for the stats: proportional and unique set sizes (from
/// `smaps_rollup`, which the kernel sums for us) and the virtual size (from `statm`).
/// Read only at memory-sample intervals and only when a stats server is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryDetail {
    pub pss: Option<u64>,
    pub uss: Option<u64>,
    pub vsz: Option<u64>,
}

/// PSS, USS (private clean + dirty) and VSZ of `pid` alone, in bytes.
pub fn detail(pid: i32, page_size: u64) -> MemoryDetail {
    let mut d = MemoryDetail::default();
    if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        };
        d.pss = field("Pss:");
        d.uss = match (field("Private_Clean:"), field("Private_Dirty:")) {
            (Some(c), Some(p)) => Some(c + p),
            _ => None,
        };
    }
    d.vsz = procfs::process::Process::new(pid)
        .ok()
        .and_then(|p| p.statm().ok())
        .map(|s| s.size * page_size);
    d
}
