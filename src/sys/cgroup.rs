//! The memory molt may use: the cgroup's memory limit when there is one, else MemTotal;
//! and the cgroup's OOM-kill counter, to tell an OOM kill from another SIGKILL.
//!
//! In a container the limit that matters is the cgroup's, not the host's RAM. molt finds
//! its own memory cgroup from `/proc/self/cgroup` and `/proc/self/mountinfo`: cgroup v2
//! when the unified hierarchy has the memory controller, else v1's `memory` hierarchy.
//! The effective limit is the smallest of `memory.max` and `memory.high` (v2) or
//! `memory.limit_in_bytes` (v1) over the cgroup and its ancestors up to the mount.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// v1 reports "no limit" as a huge page-aligned number; anything this large is no limit.
const UNLIMITED: u64 = 1 << 60;

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// molt's own memory cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCgroup {
    pub version: Version,
    /// The cgroup's directory.
    pub dir: PathBuf,
    /// Where its hierarchy is mounted (the walk for ancestors' limits stops here).
    pub mount: PathBuf,
}

/// The memory a percentage threshold is a share of, and where the figure came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub bytes: u64,
    pub source: String,
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.1} MB ({})",
            self.bytes as f64 / 1048576.0,
            self.source
        )
    }
}

/// The cgroup limit if there is one, else MemTotal; None if neither can be read.
pub fn capacity() -> Option<Capacity> {
    if let Some(cg) = MemoryCgroup::locate() {
        if let Some((bytes, file)) = cg.limit() {
            return Some(Capacity {
                bytes,
                source: format!("cgroup limit {}", file.display()),
            });
        }
    }
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    Some(Capacity {
        bytes: parse_keyed(&meminfo, "MemTotal:")? * 1024,
        source: "MemTotal, no cgroup memory limit".into(),
    })
}

impl MemoryCgroup {
    /// Finds this process's memory cgroup, or None (no cgroup fs, no memory controller).
    pub fn locate() -> Option<MemoryCgroup> {
        let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        locate_in(&cgroups, &mountinfo).filter(|cg| cg.has_memory_files())
    }

    fn has_memory_files(&self) -> bool {
        match self.version {
            Version::V2 => fs::read_to_string(self.dir.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory")),
            Version::V1 => self.dir.join("memory.limit_in_bytes").exists(),
        }
    }

    /// The smallest limit over this cgroup and its ancestors, with the file it came from.
    pub fn limit(&self) -> Option<(u64, PathBuf)> {
        let files: &[&str] = match self.version {
            Version::V2 => &["memory.max", "memory.high"],
            Version::V1 => &["memory.limit_in_bytes"],
        };
        let mut best: Option<(u64, PathBuf)> = None;
        for dir in self
            .dir
            .ancestors()
            .take_while(|d| d.starts_with(&self.mount))
        {
            for file in files {
                let path = dir.join(file);
                let Some(bytes) = fs::read_to_string(&path).ok().and_then(|t| parse_limit(&t))
                else {
                    continue;
                };
                if best.as_ref().is_none_or(|(b, _)| bytes < *b) {
                    best = Some((bytes, path));
                }
            }
        }
        best
    }

    /// The kernel's count of OOM kills in this cgroup (v2 `memory.events`, v1
    /// `memory.oom_control`), when readable.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        parse_keyed(&fs::read_to_string(self.dir.join(file)).ok()?, "oom_kill")
    }
}

/// Locates the memory cgroup from the texts of /proc/self/cgroup and mountinfo.
pub fn locate_in(cgroups: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    let mounts = parse_mounts(mountinfo);
    let v2 = cgroup_path(cgroups, Version::V2).zip(mounts.v2.as_ref());
    let v1 = cgroup_path(cgroups, Version::V1).zip(mounts.v1_memory.as_ref());
    // v2 first: on a hybrid host the memory controller is usually in v1, and then the v2
    // cgroup has no memory.max; `locate` checks which one really has the files.
    let candidates = [(Version::V2, v2), (Version::V1, v1)];
    let usable: Vec<MemoryCgroup> = candidates
        .into_iter()
        .filter_map(|(version, found)| {
            let (path, m) = found?;
            Some(MemoryCgroup {
                version,
                dir: join_cgroup(&m.mount, &m.root, &path),
                mount: m.mount.clone(),
            })
        })
        .collect();
    usable
        .iter()
        .find(|cg| cg.has_memory_files())
        .or(usable.last())
        .cloned()
}

/// A cgroup hierarchy's mount: its root inside the hierarchy and its mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    mount: PathBuf,
}

#[derive(Debug, Default)]
struct Mounts {
    v2: Option<Mount>,
    v1_memory: Option<Mount>,
}

/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`
fn parse_mounts(mountinfo: &str) -> Mounts {
    let mut m = Mounts::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        let (Some(root), Some(point), Some(fstype)) = (l.get(3), l.get(4), r.first()) else {
            continue;
        };
        let mount = Mount {
            root: root.to_string(),
            mount: PathBuf::from(point),
        };
        let memory_v1 = r
            .get(2)
            .is_some_and(|o| o.split(',').any(|opt| opt == "memory"));
        match *fstype {
            "cgroup2" if m.v2.is_none() => m.v2 = Some(mount),
            "cgroup" if memory_v1 && m.v1_memory.is_none() => m.v1_memory = Some(mount),
            _ => {}
        }
    }
    m
}

/// The path of this process's cgroup: `0::/path` (v2) or `N:...memory...:/path` (v1).
fn cgroup_path(cgroups: &str, version: Version) -> Option<String> {
    cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|c| c == "memory"),
        };
        wanted.then(|| path.to_string())
    })
}

/// The directory of cgroup `path`, given the mount's root (not "/" inside a cgroup
/// namespace or a bind mount of a subtree).
fn join_cgroup(mount: &Path, root: &str, path: &str) -> PathBuf {
    let relative = path
        .strip_prefix(root)
        .filter(|_| root != "/")
        .unwrap_or(path);
    mount.join(relative.trim_start_matches('/'))
}

/// A limit file's value: bytes, or None for "max" or v1's "unlimited".
pub fn parse_limit(text: &str) -> Option<u64> {
    let n = text.trim().parse::<u64>().ok()?;
    (n < UNLIMITED).then_some(n)
}

/// The number after `key` in a "key value" file (memory.events, meminfo, oom_control).
pub fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == key).then(|| words.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "4:memory:/process_api/88b3\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:34 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn finds_the_v1_memory_cgroup_on_a_hybrid_host() {
        let cg = locate_in(HYBRID_CGROUP, HYBRID_MOUNTS).expect("found");
        // Neither directory exists in the test, so the last usable candidate (v1) wins.
        assert_eq!(cg.version, Version::V1);
        assert_eq!(
            cg.dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/88b3")
        );
    }

    #[test]
    fn finds_a_v2_cgroup_inside_a_namespace() {
        let mounts = "30 25 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg = locate_in("0::/kubepods/pod1/app\n", mounts).expect("found");
        assert_eq!(cg.version, Version::V2);
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup/app"));
        let cg = locate_in("0::/\n", mounts).expect("found");
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn reads_limits_and_counters() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("268435456\n"), Some(268435456));
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_keyed(events, "oom_kill"), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_keyed(v1, "oom_kill"), Some(3));
        assert_eq!(
            parse_keyed("MemTotal:       24684092 kB\n", "MemTotal:"),
            Some(24684092)
        );
    }
}
