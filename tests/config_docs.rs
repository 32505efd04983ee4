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
