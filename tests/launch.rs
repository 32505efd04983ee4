//! Integration tests of issue 5, "Launch any app": nginx's `uwsgi_pass` in front of molt
//! (TCP and unix sockets), a worker written in another language (`worker-exec`), what an
//! exec'd worker inherits, systemd socket activation and sd_notify. Real processes,
//! sockets on 127.0.0.1, real signals; every wait is bounded and polls a condition.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::*;

const T: Duration = Duration::from_secs(20);

// ---- helpers -------------------------------------------------------------------------

/// The real Python interpreter (not a pyenv shim script), so the exec'd process is
/// Python itself.
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn app_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
}

/// `worker-exec` for the Python test worker, optionally through the signal probe.
fn python_worker(probe: bool) -> String {
    let app = app_path("exec_worker.py");
    let py = python();
    if probe {
        format!(
            "/bin/sh {} {py} {}",
            app_path("probe.sh").display(),
            app.display()
        )
    } else {
        format!("{py} {}", app.display())
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Distinct `/pid` answers seen in a load run.
fn pids_seen(res: &LoadResult) -> usize {
    res.pids.len()
}

/// One raw uwsgi request (as nginx would send it) over TCP; returns the raw response.
fn uwsgi_request(addr: &str, vars: &[(&str, &str)], body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect uwsgi");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&molt::worker::uwsgi::encode(vars, body))
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read until close");
    out
}

/// nginx from Debian's package, as a child of the test, on loopback, with one server
/// per upstream, each forwarding with `uwsgi_pass` and the standard `uwsgi_params`.
struct Nginx {
    child: Child,
    dir: TempDir,
    /// `127.0.0.1:PORT` of each server, in upstream order.
    addrs: Vec<String>,
}

impl Nginx {
    fn start(upstreams: &[String]) -> Nginx {
        let dir = TempDir::new("nginx");
        let d = dir.path().display().to_string();
        let ports: Vec<u16> = upstreams.iter().map(|_| free_port()).collect();
        let servers: String = upstreams
            .iter()
            .zip(&ports)
            .map(|(up, port)| {
                format!(
                    "server {{ listen 127.0.0.1:{port}; location / {{ \
                     include /etc/nginx/uwsgi_params; uwsgi_pass {up}; }} }}\n"
                )
            })
            .collect();
        // As root, nginx's workers run as nobody: the molt socket must let them in
        // (the tests give it group nogroup with the default 0660).
        let user = if nix::unistd::geteuid().is_root() {
            "user nobody nogroup;"
        } else {
            ""
        };
        let conf = format!(
            "daemon off; master_process on; worker_processes 1; {user}\n\
             pid {d}/nginx.pid; error_log {d}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{ access_log off; client_max_body_size 10m;\n\
             client_body_temp_path {d}/body; uwsgi_temp_path {d}/uwsgi;\n\
             proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi; scgi_temp_path {d}/scgi;\n\
             {servers} }}\n"
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &d, "-c", &format!("{d}/nginx.conf"), "-e"])
            .arg(format!("{d}/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (apt-get install nginx; tools/deps.sh does it)");
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let up = wait_for(T, || addrs.iter().all(|a| TcpStream::connect(a).is_ok()));
        let nginx = Nginx { child, dir, addrs };
        assert!(up, "nginx did not listen:\n{}", nginx.errors());
        nginx
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let workers = children_of(pid);
        // SIGTERM: nginx's fast shutdown (the master stops its workers), then SIGKILL.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let gone = wait_for(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !gone {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        for w in workers {
            if alive(w) {
                let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
            }
        }
    }
}

// ---- nginx uwsgi_pass ------------------------------------------------------------------

/// An app served behind nginx: its molt arguments and a route that answers the
/// worker's pid. Every app kind is served through the same uwsgi path.
struct AppCase {
    name: &'static str,
    args: Vec<String>,
    pid_path: &'static str,
    echo_path: &'static str,
}

fn app_cases() -> Vec<AppCase> {
    vec![
        AppCase {
            name: "demo",
            args: vec!["--demo".into()],
            pid_path: "/pid",
            echo_path: "/echo",
        },
        AppCase {
            name: "wsgi",
            args: vec![
                "--wsgi-file".into(),
                app_path("demo_app.py").display().to_string(),
            ],
            pid_path: "/pid",
            echo_path: "/echo",
        },
    ]
}

#[test]
fn nginx_uwsgi_pass_over_tcp_and_unix_socket() {
    for case in app_cases() {
        nginx_case(&case);
    }
}

fn nginx_case(case: &AppCase) {
    let sockdir = TempDir::new("uwsgi");
    std::fs::set_permissions(sockdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let unix = sockdir.path().join("molt.sock");
    let unix_s = unix.display().to_string();
    let mut args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    args.extend([
        "--processes",
        "2",
        "--socket",
        "127.0.0.1:0",
        "--socket",
        &unix_s,
        "--max-requests",
        "40",
        "--vacuum",
    ]);
    if nix::unistd::geteuid().is_root() {
        args.extend(["--chown-socket", "root:nogroup"]);
    }
    let mut m = Molt::start(&args, 2);
    let tcp = m.addr_of("uwsgi");
    let mode = std::fs::metadata(&unix).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "default socket mode is not world-writable");
    let nginx = Nginx::start(&[tcp, format!("unix:{unix_s}")]);
    for front in &nginx.addrs {
        let r = get(front, case.pid_path).unwrap();
        assert_eq!(r.status, 200, "{}: {front}: {}", case.name, nginx.errors());
        let body: String = "molt-uwsgi-".repeat(20_000); // 220 kB: streamed, not gathered
        let raw = format!(
            "POST {}?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            case.echo_path,
            body.len()
        );
        let echo = request(front, &raw).unwrap();
        assert_eq!(echo.status, 200);
        assert!(
            echo.text() == body,
            "{}: POST body echoed through nginx",
            case.name
        );
        // Recycling under load (max-requests 40, two workers): nothing fails.
        let load = Load::start(front, case.pid_path, 4);
        let before = m.count("recycling: max-requests");
        assert!(
            m.wait_log_count("recycling: max-requests", before + 3, T),
            "{}: workers recycled under load",
            case.name
        );
        let res = load.finish();
        assert!(
            res.failures.is_empty(),
            "{}: {front}: failed requests through nginx: {:?}\n{}",
            case.name,
            &res.failures[..res.failures.len().min(5)],
            nginx.errors()
        );
        assert!(
            res.ok > 100 && pids_seen(&res) > 2,
            "{}: {} ok",
            case.name,
            res.ok
        );
    }
    drop(nginx);
    m.signal(Signal::SIGTERM);
    assert!(m.wait_exit(T).is_some_and(|s| s.success()));
    assert!(!unix.exists(), "the socket molt created is removed at exit");
}

#[test]
fn uwsgi_packets_directly_and_next_to_http() {
    let m = Molt::start(
        &[
            "--demo",
            "--http-socket",
            "127.0.0.1:0",
            "--socket",
            "127.0.0.1:0",
            "--limit-post",
            "100",
        ],
        1,
    );
    let uw = m.addr_of("uwsgi");
    assert_eq!(m.get("/").unwrap().text(), "Hello, World!");
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/echo"),
        ("PATH_INFO", "/echo"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("CONTENT_LENGTH", "5"),
        ("HTTP_HOST", "x"),
    ];
    let out = uwsgi_request(&uw, &vars, b"hello");
    assert!(out.starts_with("HTTP/1."), "{out}");
    assert!(out.contains(" 200 ") && out.ends_with("hello"), "{out}");
    let mut big = vars;
    big[4] = ("CONTENT_LENGTH", "101");
    assert!(uwsgi_request(&uw, &big, b"").contains(" 413 "));
    let garbage = uwsgi_request(&uw, &[("A", "b")], b"");
    assert!(!garbage.contains(" 500 "), "{garbage}");
    let mut s = TcpStream::connect(&uw).unwrap();
    s.write_all(&[0, 0xff, 0xff, 0]).unwrap();
    let mut out = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_string(&mut out);
    assert!(out.contains(" 431 "), "oversized vars block: {out}");
    assert_eq!(m.get("/").unwrap().status, 200, "the worker lives on");
}

// ---- worker-exec -------------------------------------------------------------------------

#[test]
fn exec_worker_sees_only_stdio_and_listeners_and_a_clean_signal_state() {
    let cmd = python_worker(true);
    // Two listeners (HTTP and uwsgi): fds 3 and 4, named in LISTEN_FDNAMES.
    let m = Molt::start(
        &[
            "--worker-exec",
            &cmd,
            "--worker-exec-notify",
            "--http-socket",
            "127.0.0.1:0",
            "--socket",
            "127.0.0.1:0",
        ],
        1,
    );
    assert_eq!(m.get("/fds").unwrap().text(), "0 1 2 3 4");
    let env = m.get("/env").unwrap().text();
    let pid = m.get("/pid").unwrap().text();
    assert!(env.contains("LISTEN_FDS=2\n"), "{env}");
    assert!(env.contains("LISTEN_FDNAMES=http:uwsgi\n"), "{env}");
    assert!(env.contains(&format!("LISTEN_PID={pid}\n")), "{env}");
    assert!(env.contains("MOLT_WORKER_ID=1\n"), "{env}");
    assert!(
        m.worker_pids().contains(&pid.parse().unwrap()),
        "the app is the worker"
    );
    let sigs = m.get("/sigs").unwrap().text();
    assert!(
        sigs.contains("SigBlk=0000000000000000"),
        "empty mask: {sigs}"
    );
    assert!(
        sigs.contains("SigIgn=0000000000000000"),
        "nothing ignored, SIGPIPE included: {sigs}"
    );
}

#[test]
fn exec_worker_recycled_on_max_requests_without_failures() {
    let cmd = python_worker(false);
    let m = Molt::start(
        &[
            "--worker-exec",
            &cmd,
            "--worker-exec-notify",
            "--processes",
            "2",
            "--max-requests",
            "15",
        ],
        2,
    );
    let load = Load::start(&m.addr, "/pid", 3);
    assert!(
        m.wait_log_count("recycling: max-requests", 3, T),
        "{}",
        m.log()
    );
    let res = load.finish();
    assert!(res.failures.is_empty(), "{:?}", res.failures);
    assert!(pids_seen(&res) >= 3, "{} pids", pids_seen(&res));
}

#[test]
fn exec_worker_without_the_protocol_recycled_on_lifetime_and_memory() {
    let cmd = python_worker(false);
    let m = Molt::start_env(
        &[
            "--worker-exec",
            &cmd,
            "--worker-exec-ready-delay",
            "300ms",
            "--max-worker-lifetime",
            "2",
            "--reload-on-rss",
            "120",
            "--memory-sample-interval",
            "100ms",
        ],
        &[("TAPP_SILENT", "1")],
        1,
    );
    let first = m.get("/pid").unwrap().text();
    assert!(
        m.wait_log("recycling: max-worker-lifetime", T),
        "{}",
        m.log()
    );
    assert!(
        wait_for(T, || m.get("/pid").is_ok_and(|r| r.text() != first)),
        "a new worker serves after the lifetime"
    );
    let before = m.get("/pid").unwrap().text();
    assert_eq!(m.get("/leak?kb=160000").unwrap().status, 200);
    assert!(m.wait_log("reload-on-rss", T), "{}", m.log());
    assert!(wait_for(T, || m
        .get("/pid")
        .is_ok_and(|r| r.text() != before)));
}

#[test]
fn exec_worker_ignoring_the_stop_signal_is_killed_after_the_mercy() {
    let cmd = python_worker(false);
    let mut m = Molt::start_env(
        &[
            "--worker-exec",
            &cmd,
            "--worker-exec-notify",
            "--worker-reload-mercy",
            "1",
            "--worker-exec-stop-signal",
            "TERM",
        ],
        &[("TAPP_IGNORE_STOP", "1")],
        1,
    );
    let pid: i32 = m.get("/pid").unwrap().text().parse().unwrap();
    m.signal(Signal::SIGTERM);
    let status = m.wait_exit(Duration::from_secs(10));
    assert!(status.is_some(), "molt exits after the mercy");
    assert!(m.log().contains("mercy"), "{}", m.log());
    assert!(!alive(pid), "the app was killed");
}

#[test]
fn exec_worker_harakiri_from_busy_notifications() {
    let cmd = python_worker(false);
    let m = Molt::start(
        &[
            "--worker-exec",
            &cmd,
            "--worker-exec-notify",
            "--harakiri",
            "1",
        ],
        1,
    );
    let _ = m.get("/sleep?ms=8000");
    assert!(m.wait_log("harakiri", T), "{}", m.log());
    assert!(m.wait_log_count("ready in", 2, T));
    assert_eq!(m.get("/").unwrap().status, 200);
}

#[test]
fn exec_of_a_missing_command_stops_molt_with_the_reason() {
    let mut m = Molt::spawn(&["--worker-exec", "/nonexistent/server --port 1"], &[]);
    let status = m.wait_exit(T).expect("molt gives up");
    assert_eq!(status.code(), Some(3), "{}", m.log());
    assert!(
        m.log().contains("cannot execute /nonexistent/server"),
        "{}",
        m.log()
    );
}

// ---- systemd -------------------------------------------------------------------------------

#[test]
fn socket_activation_with_systemd_socket_activate() {
    if Command::new("systemd-socket-activate")
        .arg("--help")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("systemd-socket-activate not installed; skipping");
        return;
    }
    let dir = TempDir::new("activate");
    let sock = dir.path().join("act.sock");
    let log_path = dir.path().join("molt.log");
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .args([molt_bin(), "--demo", "--http-socket"])
        .arg(&sock)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("systemd-socket-activate");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // systemd-socket-activate execs molt when the first connection arrives (as systemd
    // does for a socket unit); that connection waits in the backlog and is served.
    // The path appears at bind, a moment before listen: wait until a connect succeeds.
    let mut conn = None;
    assert!(
        wait_for(T, || {
            conn = UnixStream::connect(&sock).ok();
            conn.is_some()
        }),
        "{}",
        log()
    );
    let mut s = conn.expect("connected");
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.text(), "Hello, World!");
    assert!(
        log().contains("from systemd"),
        "adopted, not bound: {}",
        log()
    );
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let exited = wait_for(T, || matches!(child.try_wait(), Ok(Some(_))));
    assert!(exited, "molt exits on SIGTERM");
    assert!(sock.exists(), "an inherited socket is never unlinked");
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let manager = UnixDatagram::bind(&path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let notify = path.display().to_string();
    let mut m = Molt::start_env(
        &["--demo", "--processes", "2"],
        &[("NOTIFY_SOCKET", &notify)],
        2,
    );
    let next = || {
        let mut buf = [0u8; 512];
        let n = manager.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(next().starts_with("READY=1"));
    m.signal(Signal::SIGHUP);
    let reloading = next();
    assert!(reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="));
    assert!(next().starts_with("READY=1"));
    m.signal(Signal::SIGTERM);
    assert!(next().starts_with("STOPPING=1"));
    assert!(m.wait_exit(T).is_some());
}

#[test]
fn unix_socket_mode_and_owner_are_applied_and_checked() {
    let dir = TempDir::new("perm");
    let sock = dir.path().join("s.sock");
    let s = sock.display().to_string();
    let m = Molt::start(&["--demo", "--socket", &s, "--chmod-socket", "600"], 1);
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // A live socket is never stolen by a second instance.
    let mut second = Molt::spawn(&["--demo", "--socket", &s], &[]);
    let status = second.wait_exit(T).expect("the second instance fails");
    assert!(!status.success());
    assert!(
        second.log().contains("another process is listening"),
        "{}",
        second.log()
    );
    assert!(Path::new(&sock).exists());
    drop(m);
}
