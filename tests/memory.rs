//! Integration tests of memory truth (issue 7): pool rules under a leaking load, RSS
//! double counting against PSS, percentages inside a cgroup, OOM kills. Real processes,
//! sockets on 127.0.0.1; the tests measure memory themselves from /proc.

mod support;

use std::ffi::CString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

const MB: u64 = 1024 * 1024;
const T: Duration = Duration::from_secs(20);

/// (RSS, PSS) in bytes of `pid` and its descendants, from smaps_rollup.
fn tree_memory(pid: i32) -> (u64, u64) {
    let mut total = (0, 0);
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let text = fs::read_to_string(format!("/proc/{p}/smaps_rollup")).unwrap_or_default();
        total.0 += field_kb(&text, "Rss:") * 1024;
        total.1 += field_kb(&text, "Pss:") * 1024;
        stack.extend(children_of(p));
    }
    total
}

fn field_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Sum of RSS over every worker of `m` (what the pool metric `rss` adds up).
fn pool_rss(m: &Molt) -> u64 {
    m.worker_pids().into_iter().map(|p| tree_memory(p).0).sum()
}

/// Samples the pool's total RSS while `load` runs, until `done` holds or T passes;
/// returns the largest total seen.
fn watch_total(m: &Molt, mut done: impl FnMut(&Molt) -> bool) -> u64 {
    let end = Instant::now() + T;
    let mut peak = 0;
    while Instant::now() < end && !done(m) {
        peak = peak.max(pool_rss(m));
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

#[test]
fn a_leak_under_load_stays_under_the_pool_soft_limit() {
    let (workers, leak_kb, limit_mb) = (4u64, 1024u64, 64u64);
    let m = Molt::start(
        &[
            "--demo",
            "--processes",
            "4",
            "--pool-soft-limit",
            "64",
            "--memory-sample-interval",
            "50",
            "--pool-check-interval",
            "100",
        ],
        4,
    );
    let load = Load::start(&m.addr, &format!("/leak?kb={leak_kb}"), 4);
    let peak = watch_total(&m, |m| {
        m.count("pool-lease") + m.count("pool-soft-limit (") >= 8
    });
    let res = load.finish();
    let recycles = m.count("pool-lease") + m.count("pool-soft-limit (");
    let allowed = limit_mb * MB + workers * leak_kb * 1024;
    println!(
        "peak pool RSS {:.1} MB, limit {limit_mb} MB (+{} MB allowed), {} requests, {recycles} recycles",
        peak as f64 / MB as f64,
        allowed / MB - limit_mb,
        res.ok
    );
    assert!(
        recycles >= 8,
        "the pool rule recycled workers:\n{}",
        m.log()
    );
    assert!(
        res.failures.is_empty(),
        "failed requests: {:?}",
        res.failures
    );
    assert!(
        peak <= allowed,
        "pool RSS peaked at {:.1} MB, over {} MB",
        peak as f64 / MB as f64,
        allowed / MB
    );
}

/// Starts 4 demo workers sharing a 200 MiB block the master filled before forking.
fn preloaded(extra: &[&str]) -> Molt {
    let mut args = vec![
        "--demo",
        "--processes",
        "4",
        "--memory-sample-interval",
        "100",
        "--smaps-sample-interval",
        "100",
        "--pool-check-interval",
        "100",
    ];
    args.extend_from_slice(extra);
    Molt::start_env(&args, &[("MOLT_DEMO_PRELOAD", "200")], 4)
}

#[test]
fn rss_counts_a_preloaded_block_once_per_worker_and_pss_does_not() {
    let m = preloaded(&["--reload-on-pss", "150"]);
    assert!(m.get("/preload").unwrap().text().starts_with("200 MiB"));
    let figures: Vec<(u64, u64)> = m.worker_pids().into_iter().map(tree_memory).collect();
    println!(
        "per-worker (RSS MB, PSS MB): {:?}",
        figures
            .iter()
            .map(|(r, p)| (r / MB, p / MB))
            .collect::<Vec<_>>()
    );
    for &(rss, pss) in &figures {
        assert!(
            rss >= 200 * MB,
            "RSS counts the whole block: {} MB",
            rss / MB
        );
        assert!(
            pss <= (200 / 4 + 30) * MB,
            "PSS counts a quarter: {} MB",
            pss / MB
        );
    }
    let rss_total: u64 = figures.iter().map(|f| f.0).sum();
    let pss_total: u64 = figures.iter().map(|f| f.1).sum();
    assert!(rss_total >= 800 * MB && pss_total <= 300 * MB);
    // reload-on-pss does not fire on shared pages.
    assert!(
        !m.wait_log("recycling", Duration::from_secs(2)),
        "nothing to recycle by PSS:\n{}",
        m.log()
    );
    // A worker that really grows by 120 MiB passes reload-on-pss: only that one recycles.
    assert_eq!(m.get("/leak?kb=122880").unwrap().status, 200);
    assert!(m.wait_log("recycling: reload-on-pss", T), "{}", m.log());
    assert!(
        !m.wait_log_count("recycling", 2, Duration::from_secs(1)),
        "{}",
        m.log()
    );
}

#[test]
fn the_same_limits_by_rss_fire_on_shared_pages() {
    // RSS semantics: every worker "has" the 200 MB block, so all of them pass 150 MB.
    let m = preloaded(&["--reload-on-rss", "150"]);
    assert!(
        m.wait_log_count("recycling: reload-on-rss", 4, T),
        "{}",
        m.log()
    );
    drop(m);
    // A pool of 4 x 200 MB by RSS is over 400 MB; by PSS it is about 200 MB.
    let m = preloaded(&["--pool-metric", "pss", "--pool-soft-limit", "400"]);
    assert!(
        !m.wait_log("recycling", Duration::from_secs(2)),
        "nothing to recycle by PSS:\n{}",
        m.log()
    );
    drop(m);
    let m = preloaded(&["--pool-metric", "rss", "--pool-soft-limit", "400"]);
    assert!(m.wait_log("recycling: pool-soft-limit", T), "{}", m.log());
}

/// A child memory cgroup with a limit, removed on drop (after molt is gone).
struct ChildCgroup {
    dir: PathBuf,
}

impl ChildCgroup {
    /// Creates one under this test's own memory cgroup, or says why it cannot.
    fn create(tag: &str, limit: u64) -> Result<ChildCgroup, String> {
        let own = molt::sys::MemoryCgroup::locate().ok_or("no memory cgroup found")?;
        let dir = own
            .dir
            .join(format!("molt-test-{}-{tag}", std::process::id()));
        let limit_file = match own.version {
            molt::sys::cgroup::Version::V2 => {
                let sub = fs::read_to_string(own.dir.join("cgroup.subtree_control"))
                    .map_err(|e| format!("cgroup.subtree_control unreadable: {e}"))?;
                if !sub.split_whitespace().any(|c| c == "memory") {
                    return Err(format!(
                        "the memory controller is not delegated below {}",
                        own.dir.display()
                    ));
                }
                "memory.max"
            }
            molt::sys::cgroup::Version::V1 => "memory.limit_in_bytes",
        };
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let child = ChildCgroup { dir };
        fs::write(child.dir.join(limit_file), limit.to_string())
            .map_err(|e| format!("cannot set {limit_file}: {e}"))?;
        println!("cgroup {:?} {} = {limit}", own.version, child.dir.display());
        Ok(child)
    }

    /// Runs the command inside this cgroup: the child writes "0" (itself) to
    /// cgroup.procs between fork and exec.
    fn enter(&self, cmd: &mut std::process::Command) {
        let procs = CString::new(
            self.dir
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("path without NUL");
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close)
        // on memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        let procs = self.dir.join("cgroup.procs");
        wait_for(Duration::from_secs(5), || {
            fs::read_to_string(&procs).map_or(true, |p| p.trim().is_empty())
        });
        let _ = fs::remove_dir(&self.dir);
    }
}

fn start_in(cg: &ChildCgroup, args: &[&str], ready: usize) -> Molt {
    let m = Molt::spawn_with(Path::new(molt_bin()), args, &[], |cmd| cg.enter(cmd));
    assert!(
        m.wait_log_count("ready in", ready, T),
        "molt did not start in the cgroup:\n{}",
        m.log()
    );
    m
}

fn cgroup_or_skip(tag: &str, limit: u64) -> Option<ChildCgroup> {
    match ChildCgroup::create(tag, limit) {
        Ok(cg) => Some(cg),
        Err(why) => {
            println!("SKIPPED: no child memory cgroup here: {why}");
            None
        }
    }
}

#[test]
fn percentages_are_of_the_cgroup_limit() {
    let Some(cg) = cgroup_or_skip("pct", 256 * MB) else {
        return;
    };
    let m = start_in(
        &cg,
        &[
            "--demo",
            "--processes",
            "2",
            "--pool-soft-limit",
            "25%",
            "--memory-sample-interval",
            "50",
        ],
        2,
    );
    let log = m.log();
    assert!(log.contains("soft limit 64.0 MB"), "25% of 256 MB:\n{log}");
    assert!(log.contains("cgroup limit"), "{log}");
    let load = Load::start(&m.addr, "/leak?kb=1024", 2);
    let peak = watch_total(&m, |m| {
        m.count("pool-lease") + m.count("pool-soft-limit (") >= 4
    });
    let res = load.finish();
    println!(
        "peak pool RSS in the cgroup: {:.1} MB",
        peak as f64 / MB as f64
    );
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    assert!(peak <= 64 * MB + 2 * MB, "peak {} MB", peak / MB);
    drop(m);
}

#[test]
fn an_oom_kill_is_logged_confirmed_and_counted() {
    let Some(cg) = cgroup_or_skip("oom", 96 * MB) else {
        return;
    };
    let m = start_in(&cg, &["--demo", "--memory-sample-interval", "50"], 1);
    let _ = m.get("/leak?kb=204800"); // 200 MB in a 96 MB cgroup: the kernel kills
    assert!(m.wait_log("OOM killer", T), "{}", m.log());
    let log = m.log();
    let line = log.lines().find(|l| l.contains("OOM killer")).unwrap_or("");
    println!("{line}");
    assert!(
        line.contains("oom_kill 0 -> 1") && line.contains("RSS"),
        "{line}"
    );
    assert!(m.wait_log_count("ready in", 2, T), "respawned:\n{log}");
    drop(m);
}
