//! Reload and worker-setup effects of the configuration (issue 4), on the real binary:
//! SIGHUP re-reads the ini file (a broken one keeps the old config), touch-reload,
//! logto with SIGUSR2 reopen, chdir/env and the privilege drop in workers.

mod support;

use std::fs;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

const T: Duration = Duration::from_secs(20);

fn write_ini(dir: &TempDir, body: &str) -> String {
    let path = dir.path().join("app.ini");
    fs::write(&path, body).expect("write ini");
    path.to_str().expect("utf-8 path").to_string()
}

fn ini(processes: usize, extra: &str) -> String {
    format!("[uwsgi]\nhttp-socket = 127.0.0.1:0\ndemo = true\nprocesses = {processes}\n{extra}\n")
}

#[test]
fn sighup_with_a_broken_config_keeps_serving_the_old_one() {
    let dir = TempDir::new("hup-bad");
    let path = write_ini(&dir, &ini(2, ""));
    let m = Molt::start(&["--ini", &path], 2);
    let before = m.worker_pids();
    fs::write(&path, ini(2, "max-requests = -5\nprocesses = banana")).unwrap();
    m.signal(Signal::SIGHUP);
    assert!(m.wait_log("keeping the old one", T), "{}", m.log());
    let log = m.log();
    assert!(
        log.contains("app.ini:") && log.contains("max-requests"),
        "errors name file:line and option:\n{log}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(m.worker_pids(), before, "workers untouched");
    assert_eq!(m.get("/").unwrap().status, 200);
    // The next good reload still works.
    fs::write(&path, ini(3, "")).unwrap();
    m.signal(Signal::SIGHUP);
    assert!(
        wait_for(T, || m.worker_pids().len() == 3 && m.count("ready in") >= 5),
        "{}",
        m.log()
    );
}

#[test]
fn sighup_with_a_changed_process_count_ends_with_the_new_count() {
    let dir = TempDir::new("hup-count");
    let path = write_ini(&dir, &ini(2, ""));
    let m = Molt::start(&["--ini", &path], 2);
    let load = Load::start(&m.addr, "/", 2);
    fs::write(&path, ini(4, "")).unwrap();
    m.signal(Signal::SIGHUP);
    assert!(m.wait_log("processes: 2 -> 4", T), "{}", m.log());
    assert!(
        wait_for(T, || m.worker_pids().len() == 4 && m.count("exited") >= 2),
        "{}",
        m.log()
    );
    fs::write(&path, ini(1, "")).unwrap();
    m.signal(Signal::SIGHUP);
    assert!(wait_for(T, || m.worker_pids().len() == 1), "{}", m.log());
    let res = load.finish();
    assert!(res.failures.is_empty(), "{:?}", res.failures);
}

#[test]
fn touch_reload_rereads_when_the_file_changes() {
    let dir = TempDir::new("touch");
    let trigger = dir.path().join("reload.trigger");
    fs::write(&trigger, "").unwrap();
    let extra = format!("touch-reload = {}", trigger.display());
    let path = write_ini(&dir, &ini(1, &extra));
    let m = Molt::start(&["--ini", &path], 1);
    fs::write(&path, ini(2, &extra)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(&trigger)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(m.wait_log("touch-reload", T), "{}", m.log());
    assert!(wait_for(T, || m.worker_pids().len() == 2), "{}", m.log());
}

#[test]
fn logto_is_reopened_on_sigusr2() {
    let dir = TempDir::new("logto");
    let log = dir.path().join("molt.log");
    let rotated = dir.path().join("molt.log.1");
    let m = Molt::start(&["--demo", "--logto", log.to_str().unwrap()], 0);
    assert!(wait_for(T, || fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready in")));
    let text = fs::read_to_string(&log).unwrap();
    let addr = logged_addr(&text, "listening on ").unwrap();
    assert!(
        m.log().is_empty(),
        "nothing on stderr: it all goes to the logto file"
    );
    fs::rename(&log, &rotated).unwrap();
    m.signal(Signal::SIGUSR2);
    assert!(
        wait_for(T, || fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("reopened")),
        "new file gets the log"
    );
    let _ = get(&addr, "/crash");
    assert!(wait_for(T, || fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("killed by signal 6")));
    assert!(!fs::read_to_string(&rotated)
        .unwrap_or_default()
        .contains("killed by signal 6"));
}

#[test]
fn workers_apply_chdir_and_env() {
    let dir = TempDir::new("chdir");
    let d = dir.path().to_str().unwrap().to_string();
    let m = Molt::start(
        &["--demo", "--chdir", &d, "--env", "MOLT_TEST_MARK=hello"],
        1,
    );
    let pid = m.worker_pids()[0];
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, dir.path());
    assert_eq!(m.get("/env?name=MOLT_TEST_MARK").unwrap().text(), "hello");
}

#[test]
fn workers_drop_privileges_groups_then_gid_then_uid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to change uid (run the suite as root to cover it)");
        return;
    }
    let m = Molt::start(&["--demo", "--uid", "nobody", "--gid", "nogroup"], 1);
    let pid = m.worker_pids()[0];
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("")
            .to_string()
    };
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert!(
        field("Uid:")
            .split_whitespace()
            .skip(1)
            .all(|v| v == nobody.to_string()),
        "{status}"
    );
    assert!(
        field("Gid:")
            .split_whitespace()
            .skip(1)
            .all(|v| v == nogroup.to_string()),
        "{status}"
    );
    assert!(
        !field("Groups:").split_whitespace().any(|g| g == "0"),
        "root's groups dropped: {status}"
    );
    assert_eq!(m.get("/").unwrap().status, 200);
    // The master keeps its privileges (to bind and reopen logs).
    let master = fs::read_to_string(format!("/proc/{}/status", m.pid())).unwrap();
    assert!(master.lines().any(|l| l.starts_with("Uid:\t0")));
}
