//! Valid config files in every shape real uwsgi.ini files use, read through the library.

mod common;

use common::{configs, load_ok};
use molt::config::{AppSpec, ListenAddr, Mode, RecycleOrder};
use molt::error::Origin;
use std::path::PathBuf;
use std::time::Duration;

fn wsgi(app: &AppSpec) -> &molt::config::WsgiSpec {
    match app {
        AppSpec::Wsgi(w) => w,
        other => panic!("expected a WSGI app, got {other:?}"),
    }
}

fn env_of(l: &molt::config::Loaded) -> Vec<(String, String)> {
    l.config.env.clone()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn typical_django_file() {
    let l = load_ok(&["basic.ini"], &[]);
    let c = &l.config;
    assert_eq!(c.processes, 4);
    assert_eq!(c.threads, 2);
    assert_eq!(c.max_requests, Some(1000));
    assert_eq!(c.max_requests_jitter, 50);
    assert_eq!(c.harakiri, Some(Duration::from_secs(30)));
    assert_eq!(c.buffer_size, 32768);
    assert_eq!(
        c.reload_on_rss,
        Some(512 * 1024 * 1024),
        "reload-on-rss is in MB"
    );
    assert!(c.vacuum && c.die_on_term);
    let w = wsgi(&c.app);
    assert_eq!(w.module.as_deref(), Some("app.wsgi"));
    assert_eq!(w.callable, "application");
    assert_eq!(c.chdir.as_deref(), Some(configs().as_path()));
    assert_eq!(c.env, vec![pair("DJANGO_SETTINGS_MODULE", "app.settings")]);
    assert_eq!(c.touch_reload, vec![configs().join("basic.ini")]);
    assert_eq!(
        c.listeners[0].addr,
        ListenAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 8000
        }
    );
    let no_effect = l
        .notices
        .iter()
        .find(|n| n.starts_with("accepted, no effect"));
    let no_effect = no_effect.expect("the no-effect list is reported");
    for opt in [
        "master",
        "enable-threads",
        "single-interpreter",
        "thunder-lock",
    ] {
        assert!(no_effect.contains(opt), "{opt} missing from {no_effect}");
    }
    assert_eq!(
        l.notices
            .iter()
            .filter(|n| n.starts_with("accepted, no effect"))
            .count(),
        1,
        "listed once"
    );
    assert_eq!(l.mode, Mode::Run);
}

#[test]
fn multi_section_with_ini_colon_section() {
    let l = load_ok(&["multi.ini"], &[]);
    assert_eq!(
        l.config.processes, 8,
        "[prod] included after processes = 2 wins"
    );
    assert_eq!(l.config.max_requests, Some(5000));
    let o = l.provenance.origin_of("processes");
    assert_eq!(
        o,
        Some(&Origin::File {
            path: "multi.ini".into(),
            line: 8
        })
    );
}

#[test]
fn section_chosen_on_the_command_line_and_cross_file_include() {
    let l = load_ok(&["multi.ini:dev"], &[]);
    assert_eq!(l.config.processes, 1);
    assert_eq!(l.config.harakiri, Some(Duration::from_secs(60)));
    assert_eq!(l.config.env, vec![pair("FROM_SHARED", "1")]);
    let l = load_ok(&["--ini", "multi.ini:dev"], &[]);
    assert_eq!(l.config.processes, 1);
}

#[test]
fn placeholders_custom_variables_and_magic() {
    let l = load_ok(&["placeholders.ini"], &[]);
    let c = &l.config;
    assert_eq!(wsgi(&c.app).module.as_deref(), Some("app.wsgi"));
    assert_eq!(c.chdir.as_deref(), Some(configs().as_path()));
    assert_eq!(c.pidfile, Some(PathBuf::from("/tmp/app-placeholders.pid")));
    assert_eq!(c.logto, Some(PathBuf::from("/tmp/app.log")));
    assert_eq!(
        c.env,
        vec![
            pair("PCT", "100%"),
            pair("SELF", "placeholders.ini in configs")
        ]
    );
    assert!(
        !l.notices
            .iter()
            .any(|n| n.contains("'project'") || n.contains("'base'")),
        "variables used as %(name) are not unknown options: {:?}",
        l.notices
    );
}

#[test]
fn environment_interpolation_and_file_contents() {
    let env = [
        ("MOLT_TEST_HOST", "127.0.0.1"),
        ("MOLT_TEST_PORT", "9100"),
        ("MOLT_TEST_GREETING", "hi there"),
        ("MOLT_TEST_WORKERS", "3"),
    ];
    let l = load_ok(&["env.ini"], &env);
    assert_eq!(
        l.config.listeners[0].addr,
        ListenAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 9100
        }
    );
    assert_eq!(l.config.processes, 3);
    assert_eq!(
        wsgi(&l.config.app).callable,
        "application",
        "@(file) minus newline"
    );
    assert_eq!(l.config.env, vec![pair("GREETING", "hi there")]);
}

#[test]
fn if_env_blocks() {
    let l = load_ok(
        &["ifenv.ini"],
        &[("MOLT_TEST_PROD", "yes"), ("MOLT_TEST_TIER", "gold")],
    );
    assert_eq!(l.config.processes, 8);
    assert_eq!(l.config.max_requests, Some(100));
    let found = configs().join("basic.ini").display().to_string();
    assert_eq!(
        env_of(&l),
        vec![pair("PROD_FLAG", "yes"), pair("FOUND", &found)]
    );

    let l = load_ok(&["ifenv.ini"], &[("MOLT_TEST_TIER", "silver")]);
    assert_eq!(l.config.processes, 2);
    assert_eq!(l.config.max_requests, Some(10), "else branch");
    assert_eq!(env_of(&l), vec![pair("MODE", "dev"), pair("FOUND", &found)]);
}

#[test]
fn repeated_keys_accumulate_and_scalars_take_the_last() {
    let l = load_ok(&["repeated.ini"], &[]);
    let c = &l.config;
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.env, vec![pair("A", "1"), pair("B", "2"), pair("A", "3")]);
    assert_eq!(
        wsgi(&c.app).pythonpath,
        vec![
            PathBuf::from("/tmp"),
            PathBuf::from(format!("{}/", configs().display()))
        ]
    );
    assert_eq!(c.processes, 3);
    assert_eq!(l.provenance.settings["env"].len(), 3);
}

#[test]
fn bare_keys_and_boolean_spellings() {
    let c = load_ok(&["bare.ini"], &[]).config;
    assert_eq!(c.app, AppSpec::Demo);
    assert!(c.vacuum && c.disable_logging && c.memory_report && c.die_on_term);
}

#[test]
fn crlf_trailing_spaces_no_final_newline_and_preamble() {
    assert_eq!(load_ok(&["crlf.ini"], &[]).config.processes, 3);
    assert_eq!(load_ok(&["nofinalnewline.ini"], &[]).config.processes, 5);
    let c = load_ok(&["preamble.ini"], &[]).config;
    assert_eq!(c.processes, 6, "text before the first section is ignored");
}

#[test]
fn toml_file() {
    let l = load_ok(&["--toml", "app.toml"], &[]);
    let c = &l.config;
    assert_eq!(c.processes, 4);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.env, vec![pair("A", "1"), pair("B", "2")]);
    assert_eq!(c.reload_on_rss, Some(512 << 20));
    assert_eq!(c.max_requests, Some(1000), "gunicorn spelling max_requests");
    assert!(c.vacuum);
    assert_eq!(
        l.provenance.origin_of("harakiri"),
        Some(&Origin::File {
            path: "app.toml".into(),
            line: 10
        })
    );
    assert_eq!(
        load_ok(&["app.toml"], &[]).config.processes,
        4,
        "positional by extension"
    );
}

#[test]
fn include_then_override() {
    let c = load_ok(&["include_top.ini"], &[]).config;
    assert_eq!(c.processes, 7);
    assert_eq!(c.harakiri, Some(Duration::from_secs(20)));
}

#[test]
fn units_with_suffixes_everywhere() {
    let c = load_ok(
        &[
            "--demo",
            "--http",
            ":1",
            "--buffer-size",
            "64k",
            "--limit-post",
            "10M",
            "--reload-on-rss",
            "1G",
            "--harakiri",
            "500ms",
            "--max-worker-lifetime",
            "2h",
            "--memory-sample-interval",
            "250",
            "--recycle-order",
            "retire-first",
        ],
        &[],
    )
    .config;
    assert_eq!(c.buffer_size, 65536);
    assert_eq!(c.limit_post, Some(10 << 20));
    assert_eq!(c.reload_on_rss, Some(1 << 30));
    assert_eq!(c.harakiri, Some(Duration::from_millis(500)));
    assert_eq!(c.max_worker_lifetime, Some(Duration::from_secs(7200)));
    assert_eq!(c.memory_sample_interval, Duration::from_millis(250));
    assert_eq!(c.recycle_order, RecycleOrder::RetireFirst);
}

#[test]
fn zero_disables() {
    let c = load_ok(
        &[
            "--demo",
            "--http",
            ":1",
            "--max-requests",
            "0",
            "--harakiri",
            "0",
            "--limit-post",
            "0",
        ],
        &[],
    )
    .config;
    assert_eq!(
        (c.max_requests, c.harakiri, c.limit_post),
        (None, None, None)
    );
}
