//! Failure modes of the peers (../shared/RELIABILITY.md) that molt's core must not have.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

const T: Duration = Duration::from_secs(20);

/// B9: a stalled master (SIGSTOP past the harakiri limit) must not kill healthy workers
/// when it resumes.
#[test]
fn stalled_master_does_not_kill_workers_on_resume() {
    let m = Molt::start(&["--demo", "--processes", "2", "--harakiri", "1"], 2);
    let before = m.worker_pids();
    m.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2200));
    m.signal(Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(m.worker_pids(), before, "{}", m.log());
    assert_eq!(m.get("/").unwrap().status, 200);
}

/// A6/E3: a storm of SIGHUPs never piles up generations: at most N + K workers exist.
#[test]
fn hup_storm_keeps_the_process_count_bounded() {
    let m = Molt::start(
        &["--demo", "--processes", "2", "--worker-reload-mercy", "5"],
        2,
    );
    let addr = m.addr.clone();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || get(&a, "/sleep?ms=1500"))
        })
        .collect();
    let mut most = 0;
    for _ in 0..10 {
        m.signal(Signal::SIGHUP);
        for _ in 0..5 {
            most = most.max(m.worker_pids().len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for b in busy {
        assert_eq!(
            b.join().unwrap().map(|r| r.status).ok(),
            Some(200),
            "in-flight requests finish"
        );
    }
    assert!(most <= 2 + 1, "at most N + K workers at once, saw {most}");
    assert!(wait_for(T, || m.worker_pids().len() == 2));
}

/// C5: reloads and respawns leak no fd in the master.
#[test]
fn master_fd_count_is_stable_across_reloads() {
    let m = Molt::start(&["--demo", "--processes", "2"], 2);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", m.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    for (i, sig) in [Signal::SIGHUP, Signal::SIGUSR1]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        m.signal(*sig);
        assert!(
            m.wait_log_count("ready in", 2 + 2 * (i + 1), T),
            "{}",
            m.log()
        );
        assert!(wait_for(T, || m.worker_pids().len() == 2));
    }
    assert_eq!(fds(), before, "master fds before and after 3 HUP + 3 USR1");
}

/// A1: recycling under parallel load on a shared listener loses nothing queued.
#[test]
fn parallel_load_through_many_recycles_has_zero_errors() {
    let args = [
        "--demo",
        "--processes",
        "2",
        "--max-requests",
        "10",
        "--min-worker-lifetime",
        "0",
    ];
    let m = Molt::start(&args, 2);
    let load = Load::start(&m.addr, "/pid", 8);
    assert!(
        m.wait_log_count("recycling: max-requests", 20, T),
        "{}",
        m.log()
    );
    let res = load.finish();
    assert!(
        res.failures.is_empty(),
        "{:?}",
        &res.failures[..res.failures.len().min(5)]
    );
    let pids: BTreeSet<_> = res.pids;
    assert!(pids.len() >= 10, "{} distinct workers", pids.len());
}

/// A4 variant: a new generation that cannot boot leaves the old workers serving.
#[test]
fn reload_to_an_app_that_cannot_boot_keeps_the_old_workers() {
    let dir = TempDir::new("badboot");
    let path = dir.path().join("app.ini");
    std::fs::write(&path, "[uwsgi]\nhttp-socket = 127.0.0.1:0\ndemo = true\n").unwrap();
    let p = path.to_str().unwrap();
    let m = Molt::start(&["--ini", p], 1);
    let old = m.worker_pids();
    // The reloaded config makes every new worker fail to load its app.
    std::fs::write(
        &path,
        "[uwsgi]\nhttp-socket = 127.0.0.1:0\ndemo = true\nenv = MOLT_DEMO_BOOT=fail\n",
    )
    .unwrap();
    m.signal(Signal::SIGHUP);
    assert!(m.wait_log_count("during boot", 2, T), "{}", m.log());
    assert!(m.log().contains("refuses to load"));
    assert_eq!(m.get("/").unwrap().status, 200, "still serving");
    assert!(old.iter().all(|p| alive(*p)), "old workers kept");
}

/// A3: all workers hit max-requests together, yet at most N + K processes ever exist and
/// at least N - K keep serving (K = max-concurrent-recycles = 1).
#[test]
fn recycles_are_capped_when_every_worker_hits_its_limit() {
    let args = [
        "--demo",
        "--processes",
        "4",
        "--max-requests",
        "5",
        "--min-worker-lifetime",
        "0",
    ];
    let m = Molt::start(&args, 4);
    let load = Load::start(&m.addr, "/", 12);
    let done = wait_for(T, || m.count("recycling: max-requests") >= 40);
    let res = load.finish();
    assert!(done, "{}", m.log());
    // The master's own view, from its log in order: spawned +1, reaped -1. Sampling /proc
    // would miss a violation that lasts a millisecond.
    let (mut live, mut most) = (0i32, 0i32);
    for line in m.log().lines() {
        if line.contains(") spawned") {
            live += 1;
        } else if line.contains(") exited with status") || line.contains(") killed by signal") {
            live -= 1;
        }
        most = most.max(live);
    }
    assert!(
        most <= 4 + 1,
        "at most N + K processes, saw {most}:\n{}",
        m.log()
    );
    assert!(
        res.failures.is_empty(),
        "{:?}",
        &res.failures[..res.failures.len().min(5)]
    );
}

/// Lifetime delta: worker id i lives lifetime + (i-1) * delta.
#[test]
fn lifetime_delta_spreads_per_worker_id() {
    let args = [
        "--demo",
        "--processes",
        "2",
        "--max-worker-lifetime",
        "1",
        "--max-worker-lifetime-delta",
        "2",
        "--min-worker-lifetime",
        "0",
    ];
    let m = Molt::start(&args, 2);
    assert!(
        m.wait_log("max-worker-lifetime (1.0 s >= 1.0 s)", T) || m.wait_log("(1.1 s >= 1.0 s)", T),
        "{}",
        m.log()
    );
    assert!(
        m.wait_log(">= 3.0 s)", T),
        "worker 2 lives 1 + 2 s:\n{}",
        m.log()
    );
}

/// C1: unix socket listeners: served, a regular file at the path is never removed, a
/// live socket is never stolen, a dead one is replaced, and molt removes its socket at exit.
#[test]
fn unix_socket_listener_rules() {
    use std::io::{BufReader, Write};
    use std::os::unix::net::UnixStream;
    let dir = TempDir::new("unix");
    let path = dir.path().join("molt.sock");
    let p = path.to_str().unwrap();

    std::fs::write(&path, "not a socket").unwrap();
    let mut refused = Molt::spawn(&["--demo", "--http-socket", p], &[]);
    assert_eq!(refused.wait_exit(T).and_then(|s| s.code()), Some(1));
    assert!(
        refused.log().contains(p) && refused.log().contains("not a socket"),
        "{}",
        refused.log()
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "not a socket",
        "the file is untouched"
    );
    std::fs::remove_file(&path).unwrap();

    // A dead socket (bound, never listened on, closed) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let mut m = Molt::spawn(&["--demo", "--http-socket", p], &[]);
    assert!(m.wait_log("ready in", T), "{}", m.log());
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 200);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o002, 0, "not world-writable: {mode:o}");

    let mut second = Molt::spawn(&["--demo", "--http-socket", p], &[]);
    assert_eq!(second.wait_exit(T).and_then(|s| s.code()), Some(1));
    assert!(
        second.log().contains("another process is listening"),
        "{}",
        second.log()
    );
    assert!(
        UnixStream::connect(&path).is_ok(),
        "the first molt still serves"
    );

    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait_exit(T).and_then(|s| s.code()), Some(0));
    assert!(!path.exists(), "socket removed at exit");
}

/// The library example: a Rust app on the public API, same command line as molt.
#[test]
fn the_hello_example_serves_through_the_library_api() {
    let exe = std::path::Path::new(molt_bin())
        .parent()
        .unwrap()
        .join("examples/hello");
    assert!(
        exe.exists(),
        "build it with cargo test --all-targets: {}",
        exe.display()
    );
    let m = Molt::spawn_bin(&exe, &["--processes", "2", "--max-requests", "3"], &[]);
    assert!(m.wait_log_count("ready in", 2, T), "{}", m.log());
    for _ in 0..10 {
        assert_eq!(m.get("/").unwrap().text(), "Hello, World!");
    }
    assert!(m.wait_log("recycling: max-requests", T), "{}", m.log());
}

/// B3: a SIGTERM at any moment of start-up (even while workers are being forked) ends
/// molt promptly; one swallowed by a just-forked worker would leave it to the 60 s mercy.
#[test]
fn sigterm_at_any_moment_of_startup_exits_promptly() {
    for round in 0..3 {
        for delay_ms in [0u64, 1, 2, 4, 8, 16, 32] {
            let mut m = Molt::spawn(&["--demo", "--processes", "4"], &[]);
            std::thread::sleep(Duration::from_millis(delay_ms + round));
            m.signal(Signal::SIGTERM);
            let status = m.wait_exit(Duration::from_secs(10));
            assert!(
                status.is_some(),
                "molt still running 10 s after SIGTERM at {delay_ms} ms:\n{}",
                m.log()
            );
            assert!(wait_for(T, || m.worker_pids().is_empty()));
        }
    }
}
