//! Memory as the master measures it: from /proc, never from the worker's own report.
//!
//! RSS comes from `/proc/PID/statm` (one short read). PSS and USS come from
//! `/proc/PID/smaps_rollup` (Linux >= 4.14), which walks the page tables and costs more,
//! so the master reads it at its own, slower interval (`smaps-sample-interval`). Every
//! figure covers the worker plus all its descendants (an app child, a command's helpers):
//! the memory the worker really costs, like monit's `totalmem`.

use std::fs;

/// Walking a process tree stops after this many processes (a fork bomb is not our job).
const MAX_TREE: usize = 4096;

/// Figures from smaps_rollup, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Smaps {
    pub rss: u64,
    /// Proportional set size: each shared page divided by the number of its sharers.
    pub pss: u64,
    /// Unique set size: Private_Clean + Private_Dirty, what exiting would free.
    pub uss: u64,
}

impl std::ops::AddAssign for Smaps {
    fn add_assign(&mut self, o: Smaps) {
        self.rss += o.rss;
        self.pss += o.pss;
        self.uss += o.uss;
    }
}

/// One worker tree's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeMemory {
    /// Resident bytes (statm, or smaps' Rss when smaps was read).
    pub rss: u64,
    /// PSS/USS when asked for and readable.
    pub smaps: Option<Smaps>,
}

/// Parses `/proc/PID/smaps_rollup` (or a single smaps block). Needs `Rss:` and `Pss:`;
/// lines it does not know (Pss_Anon and friends, absent before Linux 5.x) are ignored.
pub fn parse_smaps_rollup(text: &str) -> Option<Smaps> {
    let (mut rss, mut pss, mut uss) = (None, None, 0u64);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib = || -> Option<u64> {
            let mut words = rest.split_whitespace();
            let n = words.next()?.parse::<u64>().ok()?;
            (words.next() == Some("kB")).then_some(n * 1024)
        };
        match key {
            "Rss" => rss = kib(),
            "Pss" => pss = kib(),
            "Private_Clean" | "Private_Dirty" => uss += kib().unwrap_or(0),
            _ => {}
        }
    }
    Some(Smaps {
        rss: rss?,
        pss: pss?,
        uss,
    })
}

/// The memory of `pid` and all its descendants, plus `helper` and its descendants when
/// the helper runs in `pid`'s process group; `with_smaps` also reads PSS/USS.
/// None when `pid` itself is gone.
pub fn tree_memory(
    pid: i32,
    helper: Option<i32>,
    page_size: u64,
    with_smaps: bool,
) -> Option<TreeMemory> {
    let tree = worker_tree(pid, helper);
    if with_smaps {
        if let Some(m) = tree_smaps(&tree) {
            return Some(m);
        }
    }
    let mut rss = rss_pages(pid)? * page_size;
    for &p in &tree[1..] {
        rss += rss_pages(p).unwrap_or(0) * page_size;
    }
    Some(TreeMemory { rss, smaps: None })
}

/// Sums smaps_rollup over the tree; None if the worker's own file is unreadable (an
/// old kernel, or the worker just exited), in which case the caller falls back to statm.
fn tree_smaps(tree: &[i32]) -> Option<TreeMemory> {
    let mut total = smaps_of(*tree.first()?)?;
    for &p in &tree[1..] {
        total += smaps_of(p).unwrap_or_default();
    }
    Some(TreeMemory {
        rss: total.rss,
        smaps: Some(total),
    })
}

fn smaps_of(pid: i32) -> Option<Smaps> {
    parse_smaps_rollup(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

/// Resident bytes of `pid` plus all of its descendants (statm only).
pub fn tree_rss(pid: i32, page_size: u64) -> Option<u64> {
    tree_memory(pid, None, page_size, false).map(|m| m.rss)
}

/// The worker's processes: its own tree, then a helper that is not part of it (the
/// Python child a zygote forked for it). The helper pid comes from the scoreboard,
/// which is untrusted: it counts only if it sits in the worker's process group (the
/// worker leads its own group), so a stale or bogus pid adds nothing.
fn worker_tree(pid: i32, helper: Option<i32>) -> Vec<i32> {
    let mut tree = process_tree(pid);
    if let Some(h) = helper.filter(|h| *h > 0 && !tree.contains(h)) {
        if process_group(h) == Some(pid) {
            tree.extend(process_tree(h));
        }
    }
    tree
}

/// The process group of `pid` (field 5 of /proc/PID/stat, after the command name).
fn process_group(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// `pid` first, then every descendant (depth first), at most [`MAX_TREE`].
fn process_tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut stack = children(pid);
    while let Some(child) = stack.pop() {
        if out.len() >= MAX_TREE {
            break;
        }
        out.push(child);
        stack.extend(children(child));
    }
    out
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

/// Memory figures beyond RSS, for the stats: proportional and unique set sizes of the
/// worker, its children and its helper (the same tree the recycling rules measure) and the worker's
/// virtual size. Read only at memory-sample intervals and only with a stats server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryDetail {
    pub pss: Option<u64>,
    pub uss: Option<u64>,
    pub vsz: Option<u64>,
}

/// PSS and USS of `pid`'s tree, and its VSZ, in bytes. `known` is this sample's tree
/// figures when the recycling rules already read `smaps_rollup`: it is not read twice.
pub fn detail(pid: i32, helper: Option<i32>, page_size: u64, known: Option<Smaps>) -> MemoryDetail {
    let smaps = known.or_else(|| tree_smaps(&worker_tree(pid, helper)).and_then(|m| m.smaps));
    let vsz = procfs::process::Process::new(pid)
        .ok()
        .and_then(|p| p.statm().ok())
        .map(|s| s.size * page_size);
    MemoryDetail {
        pss: smaps.map(|s| s.pss),
        uss: smaps.map(|s| s.uss),
        vsz,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    #[test]
    fn parses_a_current_kernel() {
        let s = parse_smaps_rollup(include_str!("fixtures/smaps_rollup_6.18.txt"));
        assert_eq!(
            s,
            Some(Smaps {
                rss: 1768 * KIB,
                pss: 285 * KIB,
                uss: (40 + 116) * KIB,
            })
        );
    }

    #[test]
    fn parses_a_kernel_without_pss_anon() {
        // Linux 4.14-5.x: no Pss_Anon/Pss_File/Pss_Shmem/Pss_Dirty lines. The 200 MB
        // Shared_Dirty is a region written before fork and shared by four workers.
        let s = parse_smaps_rollup(include_str!("fixtures/smaps_rollup_4.14.txt"));
        assert_eq!(
            s,
            Some(Smaps {
                rss: 204812 * KIB,
                pss: 52203 * KIB,
                uss: (96 + 3512) * KIB,
            })
        );
    }

    #[test]
    fn rejects_text_without_rss_or_pss() {
        assert_eq!(parse_smaps_rollup(""), None);
        assert_eq!(parse_smaps_rollup("Rss: 12 kB\n"), None);
        assert_eq!(parse_smaps_rollup("Rss: x kB\nPss: 1 kB\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let page = 4096;
        let me = std::process::id() as i32;
        let m = tree_memory(me, None, page, true).expect("own memory");
        let smaps = m.smaps.expect("smaps_rollup readable (Linux >= 4.14)");
        assert!(smaps.pss > 0 && smaps.pss <= smaps.rss && smaps.uss <= smaps.pss);
        assert!(tree_rss(me, page).is_some_and(|r| r > 0));
    }

    #[test]
    fn a_helper_counts_only_inside_the_workers_group() {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        // A group leader ("worker") and a process of its group that is not its
        // descendant (the subshell that forked it exits): what a zygote's child is.
        let mut leader = Command::new("sh")
            .args(["-c", "(sleep 30 & echo $!); exec sleep 30"])
            .process_group(0)
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        let out = leader.stdout.take().expect("stdout");
        BufReader::new(out).read_line(&mut line).expect("pid");
        let orphan: i32 = line.trim().parse().expect("a pid");
        let pid = leader.id() as i32;
        let with = worker_tree(pid, Some(orphan));
        let stranger = worker_tree(pid, Some(1));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = leader.wait();
        assert!(!process_tree(pid).contains(&orphan), "not a descendant");
        assert!(with.contains(&orphan), "{with:?}");
        assert!(!stranger.contains(&1), "init is in no worker's group");
    }
}
