//! The command line end to end: help, version, check/print modes, environment variables and
//! uWSGI's precedence.

mod common;

use common::{load_ok, molt};
use molt::config::Mode;
use molt::error::Origin;

#[test]
fn help_lists_every_option_from_the_table() {
    let r = molt(&["--help"], &[]);
    assert_eq!(r.code, 0);
    for o in molt::config::table::OPTIONS.iter() {
        assert!(
            r.stdout.contains(&format!("--{} ", o.name))
                || r.stdout.contains(&format!("--{}\n", o.name))
                || r.stdout.contains(&format!("--{}  ", o.name)),
            "--help lacks {}",
            o.name
        );
    }
    let r = molt(&["-h"], &[]);
    assert_eq!(r.code, 0);
}

#[test]
fn version() {
    let r = molt(&["--version"], &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("molt "), "{}", r.stdout);
}

#[test]
fn check_config_exits_zero_on_valid() {
    let r = molt(&["--check-config", "basic.ini"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("configuration OK"));
    assert!(r.stderr.contains("accepted, no effect in molt: master"));
}

#[test]
fn print_config_shows_origins() {
    let r = molt(
        &["basic.ini", "--print-config", "--threads", "3"],
        &[("UWSGI_LISTEN", "77")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "processes = 4  # basic.ini:6",
        "threads = 2  # basic.ini:7",
        "listen = 77  # environment $UWSGI_LISTEN",
        "keepalive-timeout = 60  # default",
        "env = DJANGO_SETTINGS_MODULE=app.settings  # basic.ini:20",
    ] {
        assert!(
            r.stdout.contains(want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stderr
            .contains("'3' from the command line is overridden by '2' from basic.ini:7"),
        "{}",
        r.stderr
    );
}

#[test]
fn precedence_is_uwsgis() {
    // Environment first, then options in order (--ini inline), then positional files.
    let env = [("UWSGI_PROCESSES", "2"), ("UWSGI_THREADS", "2")];
    let l = load_ok(&["--demo", "--http", ":1", "--threads", "3"], &env);
    assert_eq!(
        l.config.processes, 2,
        "env applies when nothing else sets it"
    );
    assert_eq!(
        l.config.threads, 3,
        "the command line beats the environment"
    );
    assert_eq!(
        l.provenance.origin_of("processes"),
        Some(&Origin::Env("UWSGI_PROCESSES".into()))
    );

    let l = load_ok(&["--processes", "9", "--ini", "crlf.ini"], &[]);
    assert_eq!(
        l.config.processes, 3,
        "--ini after --processes: the file is later"
    );
    let l = load_ok(&["--ini", "crlf.ini", "--processes", "9"], &[]);
    assert_eq!(l.config.processes, 9, "--processes after --ini wins");
    let l = load_ok(&["crlf.ini", "--processes", "9"], &[]);
    assert_eq!(
        l.config.processes, 3,
        "positional files are read after every option"
    );

    let l = load_ok(
        &["--demo", "--http", ":1"],
        &[("UWSGI_PROCESSES", "2"), ("MOLT_PROCESSES", "5")],
    );
    assert_eq!(l.config.processes, 5, "MOLT_ beats UWSGI_");
}

#[test]
fn env_var_can_name_the_ini_file() {
    let l = load_ok(&[], &[("UWSGI_INI", "crlf.ini")]);
    assert_eq!(l.config.processes, 3);
}

#[test]
fn single_dash_and_short_forms() {
    let l = load_ok(
        &["-demo", "-http-socket", ":1", "-p", "3", "-M", "-t30"],
        &[],
    );
    assert_eq!(l.config.processes, 3);
    assert_eq!(l.config.harakiri, Some(std::time::Duration::from_secs(30)));
    let l = load_ok(&["--demo", "--http=:1", "--check-config"], &[]);
    assert_eq!(l.mode, Mode::CheckConfig);
}
