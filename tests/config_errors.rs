//! Broken configs through the real binary: exit status 2, and stderr names the file:line, the
//! option and what would be valid. Every error is reported at once.

mod common;

use common::{load, load_err, molt, Scratch};

/// Runs `molt --check-config FILE` and returns stderr, asserting exit status 2.
fn fails(file: &str) -> String {
    let r = molt(&["--check-config", file], &[]);
    assert_eq!(
        r.code, 2,
        "molt {file} should exit 2; stderr:\n{}",
        r.stderr
    );
    r.stderr
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "missing {n:?} in:\n{haystack}");
    }
}

#[test]
fn typo_is_a_warning_with_suggestion() {
    let r = molt(&["--check-config", "typo.ini"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_has(
        &r.stderr,
        &[
            "typo.ini:4",
            "'procesess'",
            "did you mean 'processes'",
            "typo.ini:5",
            "did you mean 'vacuum'",
        ],
    );
}

#[test]
fn typo_and_not_yet_are_errors_under_strict() {
    let e = fails("typo_strict.ini");
    assert_has(
        &e,
        &["typo_strict.ini:5", "procesess", "did you mean 'processes'"],
    );
    assert_has(
        &e,
        &[
            "typo_strict.ini:6",
            "static-map",
            "not supported by molt yet",
        ],
    );
}

#[test]
fn bad_units_each_named() {
    let e = fails("bad_units.ini");
    assert_has(&e, &["bad_units.ini:4", "reload-on-rss", "'2X'", "512M"]);
    assert_has(&e, &["bad_units.ini:5", "buffer-size", "unknown unit 's'"]);
    assert_has(&e, &["bad_units.ini:6", "harakiri", "30s"]);
    assert_has(&e, &["bad_units.ini:7", "limit-post", "too large"]);
    assert_has(&e, &["bad_units.ini:8", "master", "not a boolean"]);
}

#[test]
fn negative_number() {
    assert_has(
        &fails("negative.ini"),
        &["negative.ini:4", "max-requests", "'-1' is negative", ">= 0"],
    );
}

#[test]
fn zero_processes() {
    assert_has(
        &fails("zero_processes.ini"),
        &["zero_processes.ini:4", "processes", "at least 1"],
    );
}

#[test]
fn all_missing_paths_listed_at_once() {
    let e = fails("missing_files.ini");
    assert_has(&e, &["5 error(s)"]);
    for (line, opt) in [
        (3, "chdir"),
        (4, "wsgi-file"),
        (5, "pidfile"),
        (6, "logto"),
        (7, "home"),
    ] {
        assert_has(&e, &[&format!("missing_files.ini:{line}: option '{opt}'")]);
    }
}

#[test]
fn conflicting_options() {
    let e = fails("conflicts.ini");
    assert_has(
        &e,
        &[
            "conflicts.ini:4: option 'wsgi-file'",
            "conflicts with module",
        ],
    );
    assert_has(
        &e,
        &[
            "conflicts.ini:6: option 'max-requests-jitter'",
            "<= max-requests",
        ],
    );
    assert_has(
        &e,
        &[
            "conflicts.ini:7: option 'min-worker-lifetime'",
            "lower than max-worker-lifetime",
        ],
    );
    assert_has(
        &e,
        &[
            "conflicts.ini:10: option 'evil-reload-on-rss'",
            "above reload-on-rss",
        ],
    );
}

#[test]
fn dependent_option_without_parent_warns() {
    let r = molt(&["--check-config", "dependent.ini"], &[]);
    assert_eq!(r.code, 0);
    assert_has(
        &r.stderr,
        &[
            "dependent.ini:5",
            "max-requests-jitter",
            "max-requests is 0",
        ],
    );
}

#[test]
fn include_cycle_shows_the_chain() {
    let e = fails("cycle_a.ini");
    assert_has(
        &e,
        &[
            "include cycle",
            "cycle_a.ini:uwsgi -> ",
            "cycle_b.ini:uwsgi -> ",
            "cycle_b.ini:3: option 'ini'",
        ],
    );
}

#[test]
fn missing_section_lists_those_present() {
    assert_has(
        &fails("nosection.ini"),
        &["no [uwsgi] section", "sections present: app"],
    );
    assert_has(
        &fails("multi.ini:staging"),
        &["no [staging] section", "uwsgi, prod, dev"],
    );
}

#[test]
fn unset_env_var_warns_and_strict_rejects() {
    let r = molt(&["--check-config", "unset_env.ini"], &[]);
    assert_eq!(r.code, 0);
    assert_has(
        &r.stderr,
        &["unset_env.ini:4", "MOLT_TEST_SURELY_UNSET is not set"],
    );
    let r = molt(&["--check-config", "--strict", "unset_env.ini"], &[]);
    assert_eq!(r.code, 2);
    assert_has(&r.stderr, &["unset_env.ini:4", "MOLT_TEST_SURELY_UNSET"]);
}

#[test]
fn uwsgi_socket_and_no_app_explain_themselves() {
    let e = fails("noapp.ini");
    assert_has(
        &e,
        &[
            "noapp.ini:2: option 'socket': no listener",
            "not supported by molt yet",
            "no application",
        ],
    );
    assert_has(
        &e,
        &["warning: noapp.ini:2: option 'socket': not supported by molt yet"],
    );
}

#[test]
fn command_line_errors() {
    let r = molt(&["--vaccum", "--processes", "-3", "--threads=0"], &[]);
    assert_eq!(r.code, 2);
    assert_has(
        &r.stderr,
        &["command line: option 'vaccum'", "did you mean 'vacuum'"],
    );
    assert_has(&r.stderr, &["option 'processes': '-3' is negative"]);
    assert_has(&r.stderr, &["option 'threads'"]);
    let r = molt(&["not-a-config.py"], &[]);
    assert_eq!(r.code, 2);
    assert_has(&r.stderr, &["positional arguments are config files"]);
}

#[test]
fn env_var_errors_name_the_variable() {
    let r = molt(
        &["--check-config", "--demo", "--http", ":1"],
        &[("UWSGI_PROCESSES", "lots")],
    );
    assert_eq!(r.code, 2);
    assert_has(
        &r.stderr,
        &["environment $UWSGI_PROCESSES: option 'processes'", "'lots'"],
    );
}

#[test]
fn unreadable_files() {
    let s = Scratch::new("bad-files");
    let nul = s.write("nul.ini", b"[uwsgi]\ndemo = true\0\n");
    let latin1 = s.write("latin1.ini", b"[uwsgi]\nenv = A=\xe9\n");
    let big = s.write("big.ini", vec![b'#'; 1024 * 1024 + 1]);
    let toml = s.write("broken.toml", "processes = [\n");
    let cases = [
        (nul, "NUL byte"),
        (latin1, "not valid UTF-8"),
        (big, "limited to 1048576 bytes"),
        (toml, "invalid TOML"),
    ];
    for (path, want) in cases {
        let p = path.to_string_lossy().into_owned();
        let e = load_err(&[&p], &[]);
        assert!(e.contains(want), "{p}: {e}");
    }
    let e = load_err(&["--ini", "does-not-exist.ini"], &[]);
    assert!(
        e.contains("cannot read") && e.contains("does-not-exist.ini"),
        "{e}"
    );
}

#[test]
fn toml_type_errors() {
    let s = Scratch::new("toml");
    let p = s.write("t.toml", "processes = 1.5\n[other]\nx = 1\n");
    let e = load_err(&[&p.to_string_lossy()], &[]);
    assert!(
        e.contains("t.toml:1: option 'processes': a TOML float"),
        "{e}"
    );
    assert!(
        e.contains("t.toml:2: option 'other': unexpected table"),
        "{e}"
    );
}

#[test]
fn logic_outside_ini_is_an_error() {
    assert!(load(&["--if-env", "X", "--demo", "--http", ":1"], &[]).is_err());
}
