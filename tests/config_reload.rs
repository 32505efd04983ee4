//! Reload re-reads the same sources through the same validation path: a valid change is
//! returned (the core applies it), an invalid one is an error (the core keeps the old config).

mod common;

use common::Scratch;
use molt::config::{reload, Sources};

fn write_ini(s: &Scratch, processes: &str) {
    s.write(
        "app.ini",
        format!("[uwsgi]\nhttp-socket = :8000\ndemo = true\nprocesses = {processes}\n"),
    );
}

#[test]
fn reload_sees_the_new_file_and_rejects_a_broken_one() {
    let s = Scratch::new("reload");
    write_ini(&s, "2");
    let env = vec![("MOLT_THREADS".to_string(), "4".to_string())];
    let sources = Sources::new(
        vec!["app.ini".into(), "--max-requests".into(), "100".into()],
        env,
        s.0.clone(),
    );
    let first = reload(&sources).expect("valid at start");
    assert_eq!(first.config.processes, 2);
    assert_eq!(first.config.threads, 4, "environment snapshot is kept");

    write_ini(&s, "5");
    let second = reload(&first.sources).expect("valid after the change");
    assert_eq!(second.config.processes, 5);
    assert_eq!(
        second.config.max_requests,
        Some(100),
        "command-line overrides are kept"
    );
    assert_eq!(second.config.threads, 4);

    write_ini(&s, "0");
    let errors = reload(&second.sources).expect_err("processes = 0 is rejected");
    assert!(errors
        .iter()
        .any(|e| e.to_string().contains("app.ini:4: option 'processes'")));

    std::fs::remove_file(s.0.join("app.ini")).expect("remove");
    assert!(
        reload(&second.sources).is_err(),
        "a vanished file is an error, not defaults"
    );
}

#[test]
fn relative_paths_resolve_against_the_start_directory() {
    let s = Scratch::new("reload-cwd");
    std::fs::create_dir(s.0.join("run")).expect("mkdir");
    s.write(
        "app.ini",
        "[uwsgi]\nhttp-socket = :8000\ndemo = true\npidfile = run/molt.pid\n",
    );
    let sources = Sources::new(vec!["app.ini".into()], Vec::new(), s.0.clone());
    let loaded = reload(&sources).expect("valid");
    assert_eq!(loaded.config.pidfile, Some(s.0.join("run/molt.pid")));
    assert_eq!(loaded.files, vec![s.0.join("app.ini")]);
}
