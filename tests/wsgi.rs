//! Integration tests of Python WSGI apps (issue 3): the real binary, a real Python child
//! per worker, sockets on 127.0.0.1. Every wait is bounded and polls for a condition.
//! Apps live in tests/apps/; the Django project is generated at test time.

mod support;

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::*;

const T: Duration = Duration::from_secs(30);

fn app(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
        .display()
        .to_string()
}

/// molt serving tests/apps/demo_app.py with `extra` options, `ready` workers up.
fn demo(extra: &[&str], ready: usize) -> Molt {
    let file = app("demo_app.py");
    let mut args = vec!["--wsgi-file", file.as_str()];
    args.extend_from_slice(extra);
    Molt::start(&args, ready)
}

/// (python child pid, worker pid) from `/pid`.
fn pids(m: &Molt) -> (i32, i32) {
    let text = m.get("/pid").expect("GET /pid").text();
    let mut it = text
        .split_whitespace()
        .map(|p| p.parse::<i32>().expect("pid"));
    (it.next().expect("child"), it.next().expect("worker"))
}

fn post(addr: &str, path: &str, headers: &str, body: &[u8]) -> Response {
    let mut s = connect(addr).expect("connect");
    let head = format!("POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    read_response(&mut BufReader::new(s)).expect("response")
}

fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn serves_the_demo_routes_with_the_python_child_under_the_worker() {
    let dir = TempDir::new("chdir");
    let cwd = dir.path().display().to_string();
    let m = demo(
        &[
            "--chdir",
            &cwd,
            "--env",
            "MOLT_TEST_ENV=from-env",
            "--processes",
            "2",
        ],
        2,
    );
    let r = m.get("/").expect("GET /");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    assert_eq!(r.header("content-length"), Some("13"));
    let (child, worker) = pids(&m);
    assert!(
        m.worker_pids().contains(&worker),
        "the child's process group is a worker's"
    );
    assert!(
        m.zygote_pids().contains(&parent_of(child).unwrap_or(0)),
        "the child was forked by the zygote"
    );
    let t0 = Instant::now();
    assert_eq!(m.get("/sleep?ms=200").unwrap().status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(m
        .get("/leak?kb=100")
        .unwrap()
        .text()
        .contains("leaked 100 KiB"));
    assert_eq!(m.get("/nope").unwrap().status, 404);
    let env = m.get("/environ?a=%20b&c").unwrap().text();
    for line in [
        "REQUEST_METHOD=GET",
        "SCRIPT_NAME=\n",
        "PATH_INFO=/environ\n",
        "QUERY_STRING=a=%20b&c\n",
        "SERVER_NAME=test\n",
        "SERVER_PROTOCOL=HTTP/1.1",
        "REMOTE_ADDR=127.0.0.1",
        "wsgi.url_scheme=http",
        "wsgi.multithread=False",
        "wsgi.multiprocess=True",
        "wsgi.run_once=False",
        "MOLT_TEST_ENV=from-env",
        "version=(1, 0)",
    ] {
        assert!(env.contains(line), "{line:?} missing in:\n{env}");
    }
    assert!(
        env.contains(&format!("cwd={cwd}")),
        "chdir applies to the child:\n{env}"
    );
    // PEP 3333: PATH_INFO is percent-decoded, then bytes -> str as latin-1.
    let raw = "GET /%C3%A9t%C3%A9 HTTP/1.1\r\nHost: h:81\r\nX-Test: a\r\nX-Test: b\r\nConnection: close\r\n\r\n";
    let r = request(&m.addr, &raw.replace("/%C3%A9t%C3%A9", "/environ")).unwrap();
    assert!(
        r.text().contains("SERVER_PORT=81") && r.text().contains("HTTP_X_TEST=a, b"),
        "{}",
        r.text()
    );
    assert_eq!(request(&m.addr, raw).unwrap().status, 404);
}

#[test]
fn post_bodies_stream_in_with_content_length_and_chunked() {
    let m = demo(&[], 1);
    // Larger than what the runtime gathers before calling the app: read in pieces.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = post(
        &m.addr,
        "/echo",
        &format!("Content-Length: {}\r\n", body.len()),
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-content-length"), Some("300000"));
    assert!(
        r.body == body,
        "echoed body differs ({} bytes)",
        r.body.len()
    );
    let r = post(
        &m.addr,
        "/echo",
        "Transfer-Encoding: chunked\r\n",
        &chunked(&body, 7000),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body == body,
        "chunked body differs ({} bytes)",
        r.body.len()
    );
    // One read() of everything: the worker's DATA frames exceed the adapter's 64 KiB
    // buffer, which must grow (it raised BufferError before).
    let r = post(
        &m.addr,
        "/echo-all",
        &format!("Content-Length: {}\r\n", body.len()),
        &body,
    );
    assert!(
        r.status == 200 && r.body == body,
        "{} {}",
        r.status,
        r.body.len()
    );
    let r = post(&m.addr, "/lines", "Content-Length: 6\r\n", b"a\nb\nc\n");
    assert_eq!(r.text(), "3 lines\n");
    let r = post(&m.addr, "/echo", "Content-Length: 0\r\n", b"");
    assert_eq!((r.status, r.body.len()), (200, 0));
}

#[test]
fn streamed_responses_write_file_wrapper_and_close() {
    let m = demo(&[], 1);
    let r = m.get("/stream?n=5").unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    assert_eq!(m.get("/write").unwrap().text(), "written;iterated");
    let file = std::fs::read(app("demo_app.py")).unwrap();
    assert!(m.get("/file").unwrap().body == file);
    let closed: u32 = m.get("/closed").unwrap().text().parse().unwrap();
    assert!(closed >= 1, "close() was called on the /write iterable");
    // A stream, then another request on the same keep-alive connection.
    let mut s = connect(&m.addr).unwrap();
    s.write_all(b"GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(
        read_response(&mut r).unwrap().text(),
        "chunk 0\nchunk 1\nchunk 2\n"
    );
    assert_eq!(read_response(&mut r).unwrap().text(), "Hello, World!");
    // HEAD of a stream: no body, and the channel is usable afterwards.
    let mut s = connect(&m.addr).unwrap();
    s.write_all(b"HEAD /stream?n=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut s, &mut raw).unwrap();
    assert!(
        raw.starts_with("HTTP/1.1 200 OK") && !raw.contains("chunk 0"),
        "{raw}"
    );
    assert_eq!(m.get("/").unwrap().text(), "Hello, World!");
}

#[test]
fn app_exceptions_answer_500_and_the_worker_lives_on() {
    let m = demo(&[], 1);
    let before = pids(&m);
    assert_eq!(m.get("/error").unwrap().status, 500);
    assert!(m.wait_log("ValueError: boom on purpose", T), "{}", m.log());
    assert!(m
        .log()
        .contains("the app raised an exception on GET /error"));
    // After the response started, the only honest signal is a cut connection.
    let late = m.get("/late-error");
    assert!(late.is_err() || late.is_ok_and(|r| r.text() != "first\n"));
    assert!(m.wait_log("RuntimeError: late failure on purpose", T));
    // start_response with exc_info replaces the head that was not sent yet.
    let r = m.get("/exc-info").unwrap();
    assert_eq!((r.status, r.text().as_str()), (503, "replaced\n"));
    assert_eq!(m.get("/errors").unwrap().status, 200);
    assert!(m.wait_log("molt-test: message to wsgi.errors", T));
    assert_eq!(pids(&m), before, "same worker, same python child");
}

#[test]
fn wsgiref_validator_reports_nothing() {
    let file = app("validated_app.py");
    let m = Molt::start(&["--wsgi-file", &file], 1);
    for path in [
        "/",
        "/pid",
        "/environ?x=1",
        "/stream?n=3",
        "/file",
        "/closed",
        "/exc-info",
        "/nope",
    ] {
        let r = m.get(path).unwrap();
        let expected = if path == "/exc-info" {
            503
        } else {
            r.status.min(404)
        };
        assert_eq!(r.status, expected, "{path}\n{}", m.log());
    }
    let body = b"line one\nline two\n";
    let r = post(
        &m.addr,
        "/echo",
        &format!("Content-Length: {}\r\n", body.len()),
        body,
    );
    assert!(r.status == 200 && r.body == body, "{}", m.log());
    let r = post(
        &m.addr,
        "/lines",
        "Transfer-Encoding: chunked\r\n",
        &chunked(body, 5),
    );
    assert_eq!(r.text(), "2 lines\n", "{}", m.log());
    let log = m.log();
    for bad in ["AssertionError", "WSGIWarning", "Traceback"] {
        assert!(!log.contains(bad), "validator complained ({bad}):\n{log}");
    }
}

#[test]
fn import_failure_exits_3_quickly_with_the_traceback_once() {
    let file = app("broken_app.py");
    let t0 = Instant::now();
    let mut m = Molt::spawn(&["--wsgi-file", &file, "--processes", "3"], &[]);
    let status = m.wait_exit(T).expect("molt gives up");
    assert_eq!(status.code(), Some(3), "{}", m.log());
    assert!(
        t0.elapsed() < Duration::from_secs(20), // quick, with room for a loaded CI box
        "took {:?}",
        t0.elapsed()
    );
    let log = m.log();
    assert_eq!(
        log.matches("No module named 'molt_test_no_such_module'")
            .count(),
        1,
        "the traceback exactly once:\n{log}"
    );
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(m.count("spawned") <= 3, "no respawn loop:\n{log}");
}

#[test]
fn python_child_crash_replaces_the_worker() {
    let m = demo(&[], 1);
    let (child, worker) = pids(&m);
    let r = m.get("/crash");
    assert!(r.is_err() || r.is_ok_and(|r| r.status == 502));
    assert!(m.wait_log("lost the python child", T), "{}", m.log());
    assert!(wait_for(T, || m.get("/pid").is_ok_and(
        |r| r.status == 200 && !r.text().contains(&worker.to_string())
    )));
    assert!(!alive(child));
}

#[test]
fn threads_run_requests_at_once() {
    let m = demo(&["--threads", "4"], 1);
    assert!(m
        .get("/environ")
        .unwrap()
        .text()
        .contains("wsgi.multithread=True"));
    // Four requests that each wait for the other three: all succeed only if they run
    // at once (a timing bound would flake on a busy machine).
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let addr = m.addr.clone();
            std::thread::spawn(move || get(&addr, "/barrier?n=4").map(|r| r.status))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 200);
    }
}

/// Runs `load` against `m` while `trigger` recycles; expects 0 failures and new workers.
fn zero_failures_while(m: &Molt, path: &str, trigger: impl FnOnce(&Molt)) {
    let before: BTreeSet<i32> = m.worker_pids().into_iter().collect();
    let load = Load::start(&m.addr, path, 4);
    std::thread::sleep(Duration::from_millis(200));
    trigger(m);
    assert!(
        wait_for(T, || m.worker_pids().iter().any(|p| !before.contains(p))),
        "{}",
        m.log()
    );
    let res = load.finish();
    assert!(
        res.failures.is_empty(),
        "failed requests: {:?}\n{}",
        &res.failures[..res.failures.len().min(5)],
        m.log()
    );
    assert!(res.ok > 20, "load ran ({} ok)", res.ok);
}

#[test]
fn max_requests_recycles_under_load_with_zero_failures() {
    let m = demo(
        &[
            "--processes",
            "2",
            "--max-requests",
            "20",
            "--min-worker-lifetime",
            "0",
        ],
        2,
    );
    zero_failures_while(&m, "/pid", |m| {
        assert!(
            m.wait_log_count("recycling: max-requests", 2, T),
            "{}",
            m.log()
        );
    });
}

#[test]
fn reload_on_rss_counts_the_python_child_with_zero_failures() {
    // The master samples rarely here: the worker's own check (runtime + child) must act.
    let args = [
        "--processes",
        "2",
        "--reload-on-rss",
        "80",
        "--memory-sample-interval",
        "60000",
    ];
    let m = demo(&args, 2);
    zero_failures_while(&m, "/", |m| {
        let r = m
            .get("/leak?kb=100000")
            .expect("the growing request is answered");
        assert_eq!(r.status, 200);
        // The worker's own check drains it; the master logs the reason when it reads the
        // flag before the worker is gone (a race in the core today: then the exit is
        // logged as "unexpected"). Either way the worker that grew stops.
        assert!(
            wait_for(T, || m.log().contains("recycling: reload-on-rss")
                || m.log().contains("drained, exiting")),
            "{}",
            m.log()
        );
    });
}

#[test]
fn harakiri_kills_worker_and_child_with_zero_failures_for_others() {
    let m = demo(&["--processes", "2", "--harakiri", "1"], 2);
    let children: Vec<i32> = m
        .worker_pids()
        .iter()
        .flat_map(|w| group_members(*w))
        .collect();
    assert_eq!(children.len(), 2, "one python child per worker");
    let addr = m.addr.clone();
    let stuck = std::thread::spawn(move || get(&addr, "/sleep?ms=10000"));
    // The stuck request must be inside the app before the load starts, so no load
    // connection is already accepted by the worker that harakiri kills.
    std::thread::sleep(Duration::from_millis(300));
    zero_failures_while(&m, "/", |m| {
        assert!(m.wait_log("killed: harakiri", T), "{}", m.log());
    });
    assert!(
        stuck.join().unwrap().is_err(),
        "the stuck request's connection is dropped"
    );
    assert!(
        wait_for(T, || children.iter().filter(|c| alive(**c)).count() == 1),
        "the stuck worker's python child died with it"
    );
}

#[test]
fn sigusr1_respawns_wsgi_workers_with_zero_failures_under_load() {
    let m = demo(&["--processes", "2"], 2);
    let before: BTreeSet<i32> = m.worker_pids().into_iter().collect();
    zero_failures_while(&m, "/pid", |m| {
        m.signal(Signal::SIGUSR1);
        assert!(wait_for(T, || {
            let now = m.worker_pids();
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        }));
    });
}

/// The Django project from `django-admin startproject`, generated once per test run.
fn django_project(dir: &TempDir) -> PathBuf {
    let check = Command::new("python3")
        .args(["-c", "import django"])
        .output();
    assert!(
        check.is_ok_and(|o| o.status.success()),
        "Django is not installed for python3: run tools/deps.sh (tools/requirements-test.txt)"
    );
    let out = Command::new("python3")
        .args(["-m", "django", "startproject", "mysite"])
        .current_dir(dir.path())
        .output()
        .expect("run django-admin startproject");
    assert!(
        out.status.success(),
        "startproject: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.path().join("mysite");
    // The one edit every deployment makes: the test client's Host header is allowed.
    let settings = root.join("mysite/settings.py");
    let mut text = std::fs::read_to_string(&settings).expect("settings.py");
    text.push_str("\nALLOWED_HOSTS = ['*']\n");
    std::fs::write(&settings, text).expect("write settings.py");
    let migrate = Command::new("python3")
        .args(["manage.py", "migrate", "--noinput"])
        .current_dir(&root)
        .output()
        .expect("manage.py migrate");
    assert!(
        migrate.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    root
}

#[test]
fn django_admin_login_with_uwsgi_style_options_and_recycling() {
    let dir = TempDir::new("django");
    let root = django_project(&dir);
    let chdir = root.display().to_string();
    // The usual uwsgi.ini, as command-line options (the ini file test comes with the config layer).
    let args = [
        "--chdir",
        &chdir,
        "--module",
        "mysite.wsgi:application",
        "--env",
        "DJANGO_SETTINGS_MODULE=mysite.settings",
        "--master",
        "--processes",
        "2",
        "--http-socket",
        "127.0.0.1:0",
        "--max-requests",
        "10",
        "--min-worker-lifetime",
        "0",
        "--harakiri",
        "20",
        "--vacuum",
    ];
    let m = Molt::start(&args, 2);
    check_django(&m);
}

/// The uwsgi.ini a Django deployment has, unchanged: molt reads it as uWSGI would.
#[test]
fn django_from_a_usual_uwsgi_ini() {
    let dir = TempDir::new("django-ini");
    let root = django_project(&dir);
    let ini = root.join("uwsgi.ini");
    let text = "[uwsgi]\n\
        # the project directory is this file's directory\n\
        chdir = %d\n\
        module = mysite.wsgi:application\n\
        env = DJANGO_SETTINGS_MODULE=mysite.settings\n\
        master = true\n\
        processes = 2\n\
        http-socket = 127.0.0.1:0\n\
        max-requests = 10\n\
        harakiri = 20\n\
        vacuum = true\n";
    std::fs::write(&ini, text).expect("write uwsgi.ini");
    let m = Molt::start(&[ini.to_str().expect("utf-8 path")], 2);
    check_django(&m);
}

/// The admin login page with its CSRF form, a POST to it, then recycling under load
/// with zero failed requests.
fn check_django(m: &Molt) {
    let r = m.get("/admin/login/").expect("GET /admin/login/");
    assert_eq!(r.status, 200, "{}", m.log());
    let page = r.text();
    assert!(page.contains("csrfmiddlewaretoken"), "a CSRF form:\n{page}");
    let cookie = r
        .header("set-cookie")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let token = page
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string();
    let form = format!("csrfmiddlewaretoken={token}&username=nobody&password=wrong&next=/admin/");
    let headers = format!(
        "Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nReferer: http://test/admin/login/\r\n",
        form.len()
    );
    let r = post(&m.addr, "/admin/login/", &headers, form.as_bytes());
    assert!(
        [200, 302, 403].contains(&r.status),
        "POST answered {}\n{}",
        r.status,
        m.log()
    );
    let r = post(&m.addr, "/admin/login/", "Content-Length: 0\r\n", b"");
    assert_eq!(r.status, 403, "no CSRF token: Django refuses");
    zero_failures_while(m, "/admin/login/", |m| {
        assert!(
            m.wait_log_count("recycling: max-requests", 2, T),
            "{}",
            m.log()
        );
    });
}

// ---- The zygote: the Python interpreter (and the app) loaded once, each child a fork ----

/// molt serving tests/apps/counted_app.py, which records each of its imports in `dir`.
fn counted(extra: &[&str], ready: usize) -> (Molt, TempDir) {
    let dir = TempDir::new("counted");
    std::fs::write(dir.path().join("version.txt"), "v1").unwrap();
    let env = format!("MOLT_TEST_IMPORTS={}", dir.path().join("imports").display());
    let file = app("counted_app.py");
    let mut args = vec!["--wsgi-file", file.as_str(), "--env", env.as_str()];
    args.extend_from_slice(extra);
    (Molt::start(&args, ready), dir)
}

/// The pids that imported counted_app.py, in order.
fn imports(dir: &TempDir) -> Vec<i32> {
    std::fs::read_to_string(dir.path().join("imports"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Serves requests one by one until `n` recycles for max-requests are logged.
fn recycle(m: &Molt, n: usize) {
    let enough = wait_for(T, || {
        let r = m.get("/").expect("every request is answered");
        assert_eq!(r.status, 200);
        m.count("recycling: max-requests") >= n
    });
    assert!(enough, "{}", m.log());
}

#[test]
fn the_app_is_imported_once_and_every_recycled_child_is_a_fork() {
    let args = ["--processes", "2", "--max-requests", "3"];
    let (m, dir) = counted(&[&args[..], &["--min-worker-lifetime", "0"]].concat(), 2);
    recycle(&m, 4);
    let zygote = m.zygote_pids();
    assert_eq!(imports(&dir), zygote, "imported once, in the zygote");
    let log = m.log();
    assert!(log.matches("forked by the zygote").count() >= 6, "{log}");
    assert!(!log.contains("starting an interpreter"), "{log}");
    let (child, worker) = pids_of_counted(&m);
    assert_eq!(parent_of(child), zygote.first().copied());
    assert_eq!(group_of(child), Some(worker));
}

/// (python child, worker) of the counted app: its pid, and its process group.
fn pids_of_counted(m: &Molt) -> (i32, i32) {
    let text = m.get("/").expect("GET /").text();
    let child: i32 = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("VERSION PID");
    (child, group_of(child).expect("the child runs"))
}

#[test]
fn lazy_apps_imports_the_app_in_each_forked_child() {
    let args = ["--processes", "2", "--max-requests", "3", "--lazy-apps"];
    let (m, dir) = counted(&[&args[..], &["--min-worker-lifetime", "0"]].concat(), 2);
    recycle(&m, 4);
    let children = m.count("forked by the zygote");
    let imported = imports(&dir);
    assert!(children >= 6, "{}", m.log());
    // The last child may be forked and not yet logged: allow one import more.
    assert!(
        imported.len() == children || imported.len() == children + 1,
        "one import per child: {} imports, {children} children",
        imported.len()
    );
    assert!(imported.iter().all(|p| !m.zygote_pids().contains(p)));
}

#[test]
fn sigusr1_and_sighup_serve_the_new_code() {
    let (m, dir) = counted(&["--processes", "2"], 2);
    assert!(m.get("/").unwrap().text().starts_with("v1 "));
    for (sig, version) in [(Signal::SIGUSR1, "v2"), (Signal::SIGHUP, "v3")] {
        let old = m.zygote_pids();
        std::fs::write(dir.path().join("version.txt"), version).unwrap();
        m.signal(sig);
        let new_code = wait_for(T, || {
            (0..4).all(|_| {
                m.get("/")
                    .is_ok_and(|r| r.text().starts_with(&format!("{version} ")))
            })
        });
        assert!(new_code, "{sig:?} -> {version}\n{}", m.log());
        assert!(
            wait_for(T, || old.iter().all(|z| !alive(*z))),
            "the old zygote exits once its children are gone\n{}",
            m.log()
        );
    }
    assert_eq!(imports(&dir).len(), 3, "one import per zygote");
}

#[test]
fn a_killed_zygote_is_restarted_with_zero_failures() {
    let m = demo(&["--processes", "2", "--max-requests", "20"], 2);
    let old = m.zygote_pids();
    assert_eq!(old.len(), 1);
    // A zygote that dies within its first second is not restarted (a crash loop);
    // this one must be older than that.
    std::thread::sleep(Duration::from_millis(1200));
    zero_failures_while(&m, "/", |m| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old[0]), Signal::SIGKILL).unwrap();
        assert!(m.wait_log("restarting it", T), "{}", m.log());
    });
    let new = m.zygote_pids();
    assert!(new.len() == 1 && new != old, "{new:?} {old:?}");
    assert!(
        wait_for(T, || {
            let _ = m.get("/");
            m.get("/pid")
                .is_ok_and(|r| parent_of(pids_from(&r.text()).0) == Some(new[0]))
        }),
        "recycled workers get children of the new zygote\n{}",
        m.log()
    );
}

fn pids_from(text: &str) -> (i32, i32) {
    let mut it = text.split_whitespace().filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn a_killed_worker_takes_its_forked_child_along_even_mid_request() {
    let m = demo(&["--processes", "1"], 1);
    let (child, worker) = pids(&m);
    let addr = m.addr.clone();
    let busy = std::thread::spawn(move || get(&addr, "/sleep?ms=20000"));
    // The slow request must be inside the app when the worker dies (nothing to poll).
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), Signal::SIGKILL).unwrap();
    assert!(wait_for(T, || !alive(child)), "the lifeline ends the child");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the busy child did not finish its 20 s request first: {:?}",
        t0.elapsed()
    );
    assert!(busy.join().unwrap().is_err(), "its connection died with it");
    assert!(wait_for(T, || m.get("/").is_ok_and(|r| r.status == 200)));
}

#[test]
fn master_death_leaves_no_python_process_even_mid_request() {
    let m = demo(&["--processes", "2"], 2);
    let addr = m.addr.clone();
    let busy = std::thread::spawn(move || get(&addr, "/sleep?ms=20000"));
    // The slow request must be inside the app before the master dies (it is logged only
    // when it ends, so there is no condition to wait for).
    std::thread::sleep(Duration::from_millis(300));
    let mut all = m.zygote_pids();
    for w in m.worker_pids() {
        all.push(w);
        all.extend(group_members(w));
    }
    assert_eq!(all.len(), 5, "zygote, 2 workers, 2 children: {all:?}");
    let t0 = Instant::now();
    m.signal(Signal::SIGKILL);
    assert!(
        wait_for(T, || all.iter().all(|p| !alive(*p))),
        "left behind: {:?}",
        all.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the busy child did not wait for its 20 s request: {:?}",
        t0.elapsed()
    );
    let _ = busy.join();
}

#[test]
fn the_master_counts_the_forked_child_as_the_workers_memory() {
    let m = demo(&["--processes", "1", "--stats", "127.0.0.1:0"], 1);
    let (child, worker) = pids(&m);
    assert!(m.get("/leak?kb=30000").is_ok_and(|r| r.status == 200));
    let rss_kb = |pid: i32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    // The master samples once a second: wait until its figure includes the leak.
    let counted = wait_for(T, || {
        let rss = stats(&m)["workers"][0]["rss"].as_u64().unwrap_or(0) / 1024;
        rss >= rss_kb(child) + rss_kb(worker) / 2 && rss_kb(child) > 30000
    });
    assert!(counted, "stats rss covers the worker and its forked child");
}

#[test]
fn zygote_and_children_run_as_the_configured_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to change uid (run the suite as root to cover it)");
        return;
    }
    let m = demo(&["--uid", "nobody", "--gid", "nogroup"], 1);
    let (child, _) = pids(&m);
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .to_string();
    let ids = |pid: i32, field: &str| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
            .unwrap_or_default()
    };
    for pid in [m.zygote_pids()[0], child] {
        let uids = ids(pid, "Uid:");
        assert!(
            uids.len() == 4 && uids.iter().all(|u| *u == nobody),
            "pid {pid}: {uids:?}"
        );
        assert!(!ids(pid, "Groups:").iter().any(|g| g == "0"), "pid {pid}");
    }
}

/// The stats JSON of `m` (started with `--stats 127.0.0.1:0`).
fn stats(m: &Molt) -> serde_json::Value {
    let mut s = std::net::TcpStream::connect(m.stats_addr()).expect("stats");
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut text);
    serde_json::from_str(&text).expect("stats JSON")
}

/// Reads a response head (status line and headers) only: what a HEAD request gets.
fn read_head(r: &mut impl std::io::BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("head line");
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            return head;
        }
    }
}

/// An established keep-alive connection (as under load: a batch is made of connections
/// the worker already holds, not of new ones waiting to be accepted).
fn established(m: &Molt) -> BufReader<std::net::TcpStream> {
    let mut c = BufReader::new(connect(&m.addr).unwrap());
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c).unwrap().status, 200);
    c
}

#[test]
fn harakiri_times_each_request_of_a_batch_not_the_batch() {
    let m = demo(
        &[
            "--processes",
            "1",
            "--harakiri",
            "2",
            "--stats",
            "127.0.0.1:0",
        ],
        1,
    );
    let mut slow = established(&m);
    let mut conns: Vec<_> = (0..3).map(|_| established(&m)).collect();
    slow.get_mut()
        .write_all(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(wait_for(T, || stats(&m)["workers"][0]["status"] == "busy"));
    for c in &mut conns {
        // 3 x 1.2 s in one batch: 3.6 s in all, each well under the 2 s harakiri.
        c.get_mut()
            .write_all(b"GET /sleep?ms=1200 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    assert_eq!(read_response(&mut slow).unwrap().status, 200);
    for c in &mut conns {
        let r = read_response(c).expect("answered, not cut by harakiri");
        assert_eq!((r.status, r.text().as_str()), (200, "slept 1200 ms\n"));
    }
    assert!(!m.log().contains("harakiri"), "{}", m.log());
    let batched = stats(&m)["workers"][0]["batched_requests"].as_u64();
    assert_eq!(batched, Some(3), "the three sleeps were one batch");
}

#[test]
fn requests_arriving_together_are_batched_and_each_gets_its_own_answer() {
    let m = demo(&["--processes", "1", "--stats", "127.0.0.1:0"], 1);
    let streamed = m.get("/stream?n=3").expect("a stream, served alone").body;
    let mut slow = established(&m);
    let mut conns: Vec<_> = (0..7).map(|_| established(&m)).collect();
    // Keep the only worker inside the app while the other connections send, so they are
    // all readable when it comes back: one batch.
    slow.get_mut()
        .write_all(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(wait_for(T, || stats(&m)["workers"][0]["status"] == "busy"));
    let sends: [&[u8]; 7] = [
        b"GET /environ?id=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /error HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /environ?id=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /environ?id=6 HTTP/1.1\r\nHost: t\r\n\r\nGET /environ?id=7 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for (c, bytes) in conns.iter_mut().zip(sends) {
        c.get_mut().write_all(bytes).unwrap();
    }
    let r = read_response(&mut slow).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slept 1500 ms\n"));
    let query = |c: &mut BufReader<std::net::TcpStream>| {
        let r = read_response(c).unwrap();
        assert_eq!(r.status, 200);
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix("QUERY_STRING="))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(query(&mut conns[0]), "id=1");
    let head = read_head(&mut conns[1]);
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("Content-Length: 13"),
        "{head}"
    );
    // Nothing followed the head: the next response on that connection parses.
    conns[1]
        .get_mut()
        .write_all(b"GET /environ?id=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(query(&mut conns[1]), "id=2");
    let r = read_response(&mut conns[2]).unwrap();
    assert_eq!(
        (r.status, &r.body),
        (200, &streamed),
        "a stream inside a batch"
    );
    assert_eq!(read_response(&mut conns[3]).unwrap().status, 500);
    assert_eq!(query(&mut conns[4]), "id=5");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut conns[4], &mut rest).unwrap();
    assert!(rest.is_empty(), "Connection: close is honoured");
    assert_eq!(query(&mut conns[5]), "id=6");
    assert_eq!(
        query(&mut conns[5]),
        "id=7",
        "the pipelined request after the batch"
    );
    assert!(read_response(&mut conns[6]).unwrap().status == 200);
    let batched = stats(&m)["workers"][0]["batched_requests"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        batched >= 7,
        "the seven connections in one batch: {batched}"
    );
    assert!(!m.log().contains("lost the python child"), "{}", m.log());
}

#[test]
fn sighup_with_a_broken_app_keeps_the_old_workers_and_backs_off() {
    let dir = TempDir::new("broken-on-reload");
    let file = dir.path().join("app.py");
    let good = |version: &str| {
        format!(
            "def application(environ, start_response):\n    \
             start_response('200 OK', [('Content-Length', '2')])\n    \
             return [b'{version}']\n"
        )
    };
    std::fs::write(&file, good("v1")).unwrap();
    let file_arg = file.display().to_string();
    let m = Molt::start(&["--wsgi-file", &file_arg, "--processes", "2"], 2);
    std::fs::write(&file, "syntax error(\n").unwrap();
    m.signal(Signal::SIGHUP);
    assert!(m.wait_log("SyntaxError", T), "{}", m.log());
    // For 3 s the old workers answer every request, while their would-be successors
    // back off (100, 200, 400, 800 ms...) instead of respawning in a loop.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let r = m.get("/").expect("the old workers still answer");
        assert_eq!((r.status, r.text().as_str()), (200, "v1"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let spawns = m.count("spawned to replace");
    assert!(
        spawns <= 20,
        "{spawns} spawns in 3 s: a respawn loop\n{}",
        m.log()
    );
    assert!(
        m.count("SyntaxError") == 1,
        "the traceback once\n{}",
        m.log()
    );
    std::fs::write(&file, good("v2")).unwrap();
    m.signal(Signal::SIGHUP);
    let t0 = Instant::now();
    assert!(
        wait_for(T, || (0..4)
            .all(|_| m.get("/").is_ok_and(|r| r.text() == "v2"))),
        "fixed and reloaded: the new code serves\n{}",
        m.log()
    );
    // The broken generation's back-off (1.6 s and growing by now) is not inherited.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// The targets of `pid`'s open fds ("socket:[..]", "pipe:[..]", paths).
fn fd_targets(pid: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

#[test]
fn reloads_leak_no_fd_and_python_processes_hold_only_their_own() {
    let m = demo(&["--processes", "2"], 2);
    let before = fd_targets(m.pid()).len();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        let (workers, zygotes) = (m.worker_pids(), m.zygote_pids());
        m.signal(sig);
        let replaced = wait_for(T, || {
            let now = m.worker_pids();
            now.len() == 2
                && now.iter().all(|p| !workers.contains(p))
                && zygotes.iter().all(|z| !alive(*z))
                && m.get("/").is_ok_and(|r| r.status == 200)
        });
        assert!(replaced, "{sig:?}\n{}", m.log());
    }
    assert_eq!(
        fd_targets(m.pid()).len(),
        before,
        "the master's fds after 4 reloads"
    );
    let zygote = m.zygote_pids()[0];
    let zfds = fd_targets(zygote);
    assert_eq!(zfds.len(), 4, "stdio and its request socket: {zfds:?}");
    let (child, _) = pids(&m);
    let cfds = fd_targets(child);
    let pipes = cfds.iter().filter(|t| t.starts_with("pipe:")).count();
    let sockets = cfds.iter().filter(|t| t.starts_with("socket:")).count();
    // stdio, the lifeline, one channel (a pipe on stdout/stderr would count as a pipe:
    // the test harness gives molt a file, so only the lifeline is one).
    assert_eq!((cfds.len(), pipes, sockets), (5, 1, 1), "{cfds:?}");
}

#[test]
fn sigusr2_reopens_the_log_in_the_python_children_too() {
    let dir = TempDir::new("logto");
    let log = dir.path().join("molt.log");
    let rotated = dir.path().join("molt.log.1");
    let file = app("demo_app.py");
    let args = ["--wsgi-file", &file, "--logto", log.to_str().unwrap()];
    let m = Molt::start(&args, 0);
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(wait_for(T, || read(&log).contains("ready in")));
    let addr = logged_addr(&read(&log), "listening on ").unwrap();
    std::fs::rename(&log, &rotated).unwrap();
    m.signal(Signal::SIGUSR2);
    assert!(wait_for(T, || read(&log).contains("reopened")));
    // wsgi.errors is the child's stderr: after the rotation it must reach the new file.
    let written = wait_for(T, || {
        let _ = get(&addr, "/errors");
        read(&log).contains("molt-test: message to wsgi.errors")
    });
    assert!(written, "new file:\n{}", read(&log));
    assert!(
        !read(&rotated).contains("molt-test: message to wsgi.errors"),
        "nothing goes to the rotated file"
    );
    // No signal blocked in the Python processes (the master blocks its own while it
    // starts, and a mask survives fork and exec).
    let child = pids_from(&get(&addr, "/pid").unwrap().text()).0;
    for pid in [m.zygote_pids()[0], child] {
        let status = read(std::path::Path::new(&format!("/proc/{pid}/status")));
        let blocked = status.lines().find(|l| l.starts_with("SigBlk:"));
        assert_eq!(blocked, Some("SigBlk:\t0000000000000000"), "pid {pid}");
    }
}

#[test]
fn a_batch_with_a_stream_then_a_bad_path_answers_each() {
    let m = demo(&["--processes", "1", "--stats", "127.0.0.1:0"], 1);
    let mut slow = established(&m);
    let mut conns: Vec<_> = (0..3).map(|_| established(&m)).collect();
    slow.get_mut()
        .write_all(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(wait_for(T, || stats(&m)["workers"][0]["status"] == "busy"));
    let sends: [&[u8]; 3] = [
        b"GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n", // cannot go to the child: 400
        b"GET /environ?id=3 HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for (c, bytes) in conns.iter_mut().zip(sends) {
        c.get_mut().write_all(bytes).unwrap();
    }
    assert_eq!(read_response(&mut slow).unwrap().status, 200);
    let statuses: Vec<u16> = conns
        .iter_mut()
        .map(|c| read_response(c).expect("answered").status)
        .collect();
    assert_eq!(statuses, [200, 400, 200]);
    assert!(!m.log().contains("lost the python child"), "{}", m.log());
}
