//! docs/configuration.md documents every option of the settings table.
//!
//! The option reference between the `BEGIN/END GENERATED` markers is generated from the
//! table; run `MOLT_REGEN_DOCS=1 cargo test --test config_docs` after changing the table.

use molt::config::options_markdown;
use molt::config::table::OPTIONS;
use std::path::PathBuf;

const BEGIN: &str = "<!-- BEGIN GENERATED OPTIONS -->";
const END: &str = "<!-- END GENERATED OPTIONS -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md")
}

fn read_doc() -> String {
    std::fs::read_to_string(doc_path()).expect("docs/configuration.md exists")
}

#[test]
fn every_option_is_documented() {
    if std::env::var_os("MOLT_REGEN_DOCS").is_some() {
        regenerate();
    }
    let doc = read_doc();
    let missing: Vec<&str> = OPTIONS
        .iter()
        .map(|o| o.name)
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks: {missing:?}"
    );
}

#[test]
fn generated_reference_is_current() {
    let doc = read_doc();
    let (start, end) = (doc.find(BEGIN), doc.find(END));
    let (Some(start), Some(end)) = (start, end) else {
        panic!("docs/configuration.md lacks the {BEGIN} / {END} markers");
    };
    let current = &doc[start + BEGIN.len()..end];
    assert!(
        current == options_markdown(),
        "the option reference is stale: run MOLT_REGEN_DOCS=1 cargo test --test config_docs"
    );
}

fn regenerate() {
    let doc = read_doc();
    let (Some(start), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("markers missing");
    };
    let new = format!(
        "{}{}{}",
        &doc[..start + BEGIN.len()],
        options_markdown(),
        &doc[end..]
    );
    std::fs::write(doc_path(), new).expect("write docs");
}

/// Every `[uwsgi]` ini example in README.md and docs/ parses: a documented example
/// that molt rejects (an inline comment, a `%` eaten as a magic variable) is a bug.
/// Only errors about this machine (a path, user or group that does not exist here) are
/// tolerated.
#[test]
fn ini_examples_in_the_docs_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let dir = std::env::temp_dir().join(format!("molt-docs-ini-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read doc");
        for (i, block) in text.split("```ini\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or("");
            if !block.contains("[uwsgi]") {
                continue;
            }
            let has = |keys: &[&str]| {
                block
                    .lines()
                    .any(|l| keys.iter().any(|k| l.trim_start().starts_with(k)))
            };
            let mut ini = block.to_string();
            if !has(&["demo", "module", "wsgi-file", "worker-exec"]) {
                ini.push_str("demo = true\n");
            }
            if !has(&["http-socket", "socket", "http "]) {
                ini.push_str("http-socket = 127.0.0.1:0\n");
            }
            let path = dir.join(format!("example-{checked}.ini"));
            std::fs::write(&path, ini).expect("write example");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_molt"))
                .arg("--check-config")
                .arg(&path)
                .output()
                .expect("run molt");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let problems: Vec<&str> = stderr
                .lines()
                .filter(|l| {
                    l.contains("example-") && (l.contains("option '") || l.contains("warning"))
                })
                .filter(|l| {
                    ![
                        "not an existing",
                        "does not exist",
                        "no user named",
                        "no group named",
                        "not found",
                    ]
                    .iter()
                    .any(|ok| l.contains(ok))
                })
                .collect();
            assert!(
                problems.is_empty(),
                "{} ini block {i}:\n{}\n{block}",
                file.display(),
                problems.join("\n")
            );
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 3, "found {checked} ini examples");
}
