//! Integration tests of the core (issue 2): the real binary, real processes, sockets on
//! 127.0.0.1 and real signals. Every wait is bounded and polls for a condition.

mod support;

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::*;

const T: Duration = Duration::from_secs(20);

fn pid_of(m: &Molt) -> String {
    m.get("/pid").expect("GET /pid").text()
}

#[test]
fn serves_the_demo_routes() {
    let m = Molt::start(&["--demo", "--processes", "2"], 2);
    let r = m.get("/").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("13"));
    let pid: i32 = pid_of(&m).parse().unwrap();
    assert!(
        m.worker_pids().contains(&pid),
        "/pid answers a worker's pid"
    );
    assert_eq!(m.get("/leak?kb=64").unwrap().status, 200);
    let t0 = Instant::now();
    assert_eq!(m.get("/sleep?ms=200").unwrap().status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(m.get("/nope").unwrap().status, 404);
    let echo = request(
        &m.addr,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!(echo.text(), "hello");
    let chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_eq!(request(&m.addr, chunked).unwrap().text(), "abcde");
}

#[test]
fn keep_alive_pipelining_and_connection_close() {
    let m = Molt::start(&["--demo"], 1);
    let mut s = connect(&m.addr).unwrap();
    // Two pipelined requests in one write, then a third that asks to close.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_response(&mut r).unwrap().text(), "Hello, World!");
    assert!(read_response(&mut r).unwrap().text().parse::<i32>().is_ok());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_response(&mut r).unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(
        r.read_to_end(&mut rest).unwrap(),
        0,
        "server closed after Connection: close"
    );
    // HTTP/1.0 without keep-alive closes too.
    let r10 = request(&m.addr, "GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(r10.status, 200);
}

#[test]
fn bad_requests_get_4xx_and_a_closed_connection() {
    let m = Molt::start(
        &["--demo", "--limit-post", "100", "--buffer-size", "1024"],
        1,
    );
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "A".repeat(1200)
    );
    let cases = [
        ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_string(), 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n".to_string(), 413),
        (big_header, 431),
    ];
    for (raw, want) in cases {
        let mut s = connect(&m.addr).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r).unwrap();
        assert_eq!(resp.status, want, "{raw:?}");
        let mut rest = Vec::new();
        assert_eq!(
            r.read_to_end(&mut rest).unwrap_or(0),
            0,
            "connection closed after {want}"
        );
    }
    assert_eq!(m.get("/").unwrap().status, 200, "the worker lives on");
}

#[test]
fn header_timeout_closes_a_slow_client() {
    let m = Molt::start(&["--demo", "--header-timeout", "1"], 1);
    let mut s = connect(&m.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "closed at the header deadline"
    );
    assert_eq!(m.get("/").unwrap().status, 200);
}

#[test]
fn one_worker_serves_many_keep_alive_connections_fairly() {
    let m = Molt::start(&["--demo", "--processes", "2"], 2);
    let mut conns: Vec<_> = (0..16).map(|_| connect(&m.addr).unwrap()).collect();
    let mut served = vec![0usize; 16];
    for _round in 0..50 {
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            if read_response(&mut r).is_ok_and(|r| r.status == 200) {
                served[i] += 1;
            }
        }
    }
    assert!(
        served.iter().all(|&n| n == 50),
        "every connection served every time: {served:?}"
    );
}

#[test]
fn max_requests_recycles_with_numbers_and_zero_failures() {
    // Replace-first: the old worker serves until its successor is ready, so it may serve
    // a few more than N; no request fails.
    let args = [
        "--demo",
        "--max-requests",
        "5",
        "--min-worker-lifetime",
        "0",
    ];
    let m = Molt::start(&args, 1);
    let mut pids = BTreeSet::new();
    // Request until the replacement answers (its boot time varies on a busy machine).
    let replaced = wait_for(T, || {
        let r = m.get("/pid").expect("no failed request while recycling");
        assert_eq!(r.status, 200);
        pids.insert(r.text());
        pids.len() >= 3
    });
    assert!(replaced, "{}", m.log());
    assert!(pids.len() >= 2, "worker replaced: {pids:?}");
    assert!(
        m.wait_log("recycling: max-requests (5 >= 5)", T),
        "{}",
        m.log()
    );
}

#[test]
fn retire_first_max_requests_is_exact() {
    let args = [
        "--demo",
        "--max-requests",
        "5",
        "--min-worker-lifetime",
        "0",
        "--recycle-order",
        "retire-first",
    ];
    let m = Molt::start(&args, 1);
    let mut pids = BTreeSet::new();
    for _ in 0..40 {
        let r = m.get("/pid").expect("no failed request while recycling");
        pids.insert(r.text());
    }
    assert!(pids.len() >= 8, "each worker served exactly 5: {pids:?}");
    assert!(m.wait_log_count("and 5 request(s)", 7, T), "{}", m.log());
    assert!(!m.log().contains("and 6 request(s)"), "{}", m.log());
}

#[test]
fn max_requests_delta_spreads_per_worker_id() {
    let m = Molt::start(
        &[
            "--demo",
            "--processes",
            "2",
            "--max-requests",
            "3",
            "--max-requests-delta",
            "4",
            "--min-worker-lifetime",
            "0",
        ],
        2,
    );
    let load = Load::start(&m.addr, "/", 2);
    assert!(
        m.wait_log("max-requests (3 >= 3)", T) && m.wait_log("max-requests (7 >= 7)", T),
        "{}",
        m.log()
    );
    assert!(load.finish().failures.is_empty());
}

#[test]
fn max_requests_jitter_draws_different_thresholds() {
    let args = [
        "--demo",
        "--processes",
        "4",
        "--max-requests",
        "20",
        "--max-requests-jitter",
        "20",
        "--jitter-seed",
        "7",
        "--min-worker-lifetime",
        "0",
    ];
    let m = Molt::start(&args, 4);
    let load = Load::start(&m.addr, "/", 4);
    assert!(
        m.wait_log_count("recycling: max-requests", 6, T),
        "{}",
        m.log()
    );
    let res = load.finish();
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    let limits: BTreeSet<String> = m
        .log()
        .lines()
        .filter_map(|l| {
            l.split("max-requests (")
                .nth(1)
                .map(|r| r.split(">= ").nth(1).unwrap_or("").to_string())
        })
        .collect();
    assert!(limits.len() > 1, "thresholds differ: {limits:?}");
}

#[test]
fn max_worker_lifetime_recycles() {
    let m = Molt::start(
        &[
            "--demo",
            "--max-worker-lifetime",
            "1",
            "--min-worker-lifetime",
            "0",
        ],
        1,
    );
    let first = pid_of(&m);
    assert!(
        m.wait_log("recycling: max-worker-lifetime", T),
        "{}",
        m.log()
    );
    assert!(wait_for(T, || pid_of(&m) != first));
}

#[test]
fn reload_on_rss_recycles_after_the_request_that_grew() {
    let m = Molt::start(&["--demo", "--reload-on-rss", "40"], 1);
    let before = pid_of(&m);
    let r = m
        .get("/leak?kb=60000")
        .expect("the request that crosses the limit is answered");
    assert_eq!(r.status, 200);
    assert!(m.wait_log("recycling: reload-on-rss", T), "{}", m.log());
    assert!(wait_for(T, || m
        .get("/pid")
        .map(|r| r.text())
        .ok()
        .is_some_and(|p| p != before)));
}

#[test]
fn evil_reload_on_rss_kills_at_once() {
    let m = Molt::start(
        &[
            "--demo",
            "--evil-reload-on-rss",
            "40",
            "--memory-sample-interval",
            "100",
        ],
        1,
    );
    let _ = m.get("/leak?kb=60000");
    assert!(m.wait_log("killed: evil-reload-on-rss", T), "{}", m.log());
    assert!(m.wait_log_count("ready in", 2, T));
    assert_eq!(m.get("/").unwrap().status, 200);
}

#[test]
fn harakiri_kills_a_stuck_request_and_replaces_the_worker() {
    let m = Molt::start(&["--demo", "--harakiri", "1"], 1);
    let t0 = Instant::now();
    let stuck = m.get("/sleep?ms=10000");
    assert!(stuck.is_err(), "the stuck request's connection is dropped");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "killed near the 1 s limit, took {:?}",
        t0.elapsed()
    );
    assert!(m.wait_log("killed: harakiri", T), "{}", m.log());
    assert!(wait_for(T, || m.get("/").is_ok_and(|r| r.status == 200)));
    // A request within the limit is untouched.
    assert_eq!(m.get("/sleep?ms=300").unwrap().status, 200);
}

#[test]
fn mercy_kills_a_busy_worker_that_outlives_it() {
    let m = Molt::start(&["--demo", "--worker-reload-mercy", "1"], 1);
    let addr = m.addr.clone();
    let busy = std::thread::spawn(move || get(&addr, "/sleep?ms=15000"));
    assert!(wait_for(T, || m.log().contains("ready in")));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    m.signal(Signal::SIGUSR1);
    assert!(m.wait_log("worker-reload-mercy expired", T), "{}", m.log());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "mercy after {took:?}"
    );
    assert!(busy.join().unwrap().is_err());
    assert_eq!(m.get("/").unwrap().status, 200);
}

fn zero_failures_under_load(sig: Signal, needle: &str) {
    let m = Molt::start(&["--demo", "--processes", "2"], 2);
    let before: BTreeSet<i32> = m.worker_pids().into_iter().collect();
    let load = Load::start(&m.addr, "/pid", 4);
    std::thread::sleep(Duration::from_millis(300));
    m.signal(sig);
    assert!(m.wait_log_count(needle, 2, T), "{}", m.log());
    assert!(wait_for(T, || m
        .worker_pids()
        .iter()
        .all(|p| !before.contains(p))
        && m.worker_pids().len() == 2));
    std::thread::sleep(Duration::from_millis(300));
    let res = load.finish();
    assert!(
        res.failures.is_empty(),
        "failed requests: {:?}",
        &res.failures[..res.failures.len().min(5)]
    );
    assert!(res.ok > 50, "load ran ({} ok)", res.ok);
    assert!(
        res.pids.len() >= 4,
        "old and new workers answered: {:?}",
        res.pids
    );
}

#[test]
fn sigusr1_respawns_every_worker_with_zero_failures_under_load() {
    zero_failures_under_load(Signal::SIGUSR1, "recycling: graceful respawn");
}

#[test]
fn sighup_reloads_every_worker_with_zero_failures_under_load() {
    zero_failures_under_load(Signal::SIGHUP, "recycling: reload");
}

#[test]
fn slow_booting_replacement_is_ready_before_the_old_worker_stops() {
    let env = [("MOLT_DEMO_BOOT", "delay:1500")];
    let m = Molt::start_env(&["--demo"], &env, 1);
    let old = pid_of(&m);
    let load = Load::start(&m.addr, "/pid", 3);
    m.signal(Signal::SIGUSR1);
    assert!(m.wait_log("recycling: graceful respawn", T), "{}", m.log());
    std::thread::sleep(Duration::from_millis(300));
    let res = load.finish();
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    assert!(
        res.pids.contains(&old) && res.pids.len() == 2,
        "old answered until the new one took over: {:?}",
        res.pids
    );
}

#[test]
fn sigterm_drains_the_request_in_flight_and_exits_0() {
    let mut m = Molt::start(&["--demo"], 1);
    let addr = m.addr.clone();
    let inflight = std::thread::spawn(move || get(&addr, "/sleep?ms=1500"));
    std::thread::sleep(Duration::from_millis(300));
    m.signal(Signal::SIGTERM);
    let r = inflight
        .join()
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    let status = m.wait_exit(T).expect("molt exits");
    assert_eq!(status.code(), Some(0), "{}", m.log());
    assert!(connect(&m.addr).is_err(), "nothing listens any more");
}

#[test]
fn sigterm_then_sighup_does_not_restart() {
    let mut m = Molt::start(&["--demo"], 1);
    let addr = m.addr.clone();
    let inflight = std::thread::spawn(move || get(&addr, "/sleep?ms=800"));
    std::thread::sleep(Duration::from_millis(200));
    m.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(50));
    m.signal(Signal::SIGHUP);
    assert_eq!(inflight.join().unwrap().unwrap().status, 200);
    assert_eq!(m.wait_exit(T).and_then(|s| s.code()), Some(0));
    assert_eq!(
        m.count("spawned"),
        1,
        "no worker spawned after TERM:\n{}",
        m.log()
    );
}

#[test]
fn quick_shutdown_on_sigint() {
    let mut m = Molt::start(&["--demo", "--processes", "2"], 2);
    let workers = m.worker_pids();
    m.signal(Signal::SIGINT);
    assert_eq!(m.wait_exit(T).and_then(|s| s.code()), Some(0));
    assert!(wait_for(Duration::from_secs(2), || workers
        .iter()
        .all(|p| !alive(*p))));
}

#[test]
fn sigkill_of_the_master_leaves_no_worker_within_2s() {
    let mut m = Molt::start(&["--demo", "--processes", "4"], 4);
    let workers = m.worker_pids();
    assert_eq!(workers.len(), 4);
    m.signal(Signal::SIGKILL);
    let _ = m.wait_exit(T);
    assert!(
        wait_for(Duration::from_secs(2), || workers
            .iter()
            .all(|p| !alive(*p))),
        "orphaned workers: {workers:?}"
    );
}

#[test]
fn crash_is_logged_and_respawned() {
    let m = Molt::start(&["--demo"], 1);
    assert!(m.get("/crash").is_err());
    assert!(m.wait_log("killed by signal 6", T), "{}", m.log());
    assert!(wait_for(T, || m.get("/").is_ok_and(|r| r.status == 200)));
}

#[test]
fn crash_loop_backs_off() {
    let m = Molt::start(&["--demo"], 1);
    for _ in 0..4 {
        assert!(wait_for(T, || m.get("/crash").is_err() && m.get("/").is_ok()));
    }
    assert!(m.wait_log("ms (back-off)", T), "{}", m.log());
    let log = m.log();
    assert!(
        log.contains("respawning in 200 ms") || log.contains("respawning in 400 ms"),
        "{log}"
    );
}

#[test]
fn app_that_cannot_load_exits_3_once() {
    let mut m = Molt::spawn(
        &["--demo", "--processes", "3"],
        &[("MOLT_DEMO_BOOT", "fail")],
    );
    let status = m.wait_exit(T).expect("molt gives up");
    assert_eq!(status.code(), Some(3), "{}", m.log());
    assert!(
        m.log().contains("refuses to load"),
        "the app's own error is shown"
    );
    assert!(m.count("spawned") <= 3, "no respawn loop:\n{}", m.log());
}

#[test]
fn boot_crash_loop_gives_up_with_bounded_spawns() {
    let mut m = Molt::spawn(
        &["--demo", "--processes", "2", "--max-boot-failures", "4"],
        &[("MOLT_DEMO_BOOT", "exit:1")],
    );
    let status = m.wait_exit(Duration::from_secs(30)).expect("molt gives up");
    assert_eq!(status.code(), Some(3));
    assert!(m.count("spawned") <= 2 + 4, "spawns bounded:\n{}", m.log());
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let m = Molt::start(&["--demo", "--processes", "2"], 2);
    m.signal(Signal::SIGTTIN);
    assert!(
        wait_for(T, || m.worker_pids().len() == 3 && m.count("ready in") >= 3),
        "{}",
        m.log()
    );
    // Identical signals sent back to back may coalesce in the kernel: wait between them.
    m.signal(Signal::SIGTTOU);
    assert!(m.wait_log("retiring: scale down", T));
    m.signal(Signal::SIGTTOU);
    assert!(m.wait_log_count("retiring: scale down", 2, T));
    assert!(wait_for(T, || m.worker_pids().len() == 1), "{}", m.log());
    assert_eq!(m.get("/").unwrap().status, 200);
}

#[test]
fn pidfile_is_a_lock_written_once_listening_and_removed_on_exit() {
    let dir = TempDir::new("pid");
    let path = dir.path().join("molt.pid");
    // A stale pidfile naming a live unrelated process (ourselves) is overwritten.
    std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
    let p = path.to_str().unwrap();
    let mut m = Molt::start(&["--demo", "--pidfile", p], 1);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        m.pid().to_string()
    );
    let mut second = Molt::spawn(&["--demo", "--pidfile", p], &[]);
    let status = second.wait_exit(T).expect("second molt fails fast");
    assert_eq!(status.code(), Some(1));
    assert!(second.log().contains("already running"), "{}", second.log());
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait_exit(T).and_then(|s| s.code()), Some(0));
    assert!(!path.exists(), "removed on clean exit");
}

#[test]
fn sighup_right_after_start_is_safe() {
    for delay_ms in [0u64, 5, 20] {
        let mut m = Molt::spawn(&["--demo"], &[]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        m.signal(Signal::SIGHUP);
        assert!(m.wait_log("ready in", T), "{}", m.log());
        assert!(!m.exited(), "still running after an early SIGHUP");
        assert!(wait_for(T, || m.get("/").is_ok_and(|r| r.status == 200)));
    }
}

#[test]
fn signal_burst_ending_in_term_exits_gracefully() {
    let mut m = Molt::start(&["--demo", "--processes", "2"], 2);
    for sig in [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGTTIN,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGTERM,
    ] {
        m.signal(sig);
    }
    assert_eq!(
        m.wait_exit(T).and_then(|s| s.code()),
        Some(0),
        "{}",
        m.log()
    );
}

#[test]
fn many_workers_killed_at_once_are_all_reaped_and_replaced() {
    let m = Molt::start(&["--demo", "--processes", "8"], 8);
    let before = m.worker_pids();
    for p in &before {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), Signal::SIGKILL);
    }
    assert!(m.wait_log_count("ready in", 16, T), "{}", m.log());
    assert!(wait_for(T, || {
        let now = m.worker_pids();
        now.len() == 8 && now.iter().all(|p| !before.contains(p) && alive(*p))
    }));
    assert!(before.iter().all(|p| !alive(*p)), "no zombies left");
    assert!(
        m.log().contains("not sent by molt"),
        "foreign SIGKILL is reported"
    );
}

#[test]
fn bad_config_exits_2_naming_the_option() {
    let mut m = Molt::spawn(&["--demo", "--processes", "0"], &[]);
    assert_eq!(m.wait_exit(T).and_then(|s| s.code()), Some(2));
    assert!(m.log().contains("processes"), "{}", m.log());
}

#[test]
fn threads_serve_requests_at_once_in_one_worker() {
    let m = Molt::start(&["--demo", "--threads", "4"], 1);
    for _round in 0..2 {
        let t0 = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let addr = m.addr.clone();
                std::thread::spawn(move || get(&addr, "/sleep?ms=1000").map(|r| r.status))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 200);
        }
        // Serially this takes 4 s; at once, about 1 s (3 s leaves room for a busy machine).
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "took {:?}",
            t0.elapsed()
        );
    }
}
