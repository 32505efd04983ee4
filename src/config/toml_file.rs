//! The TOML reader: the same keys as the settings table, values taken literally.
//!
//! Layout: keys at the top level, or inside one `[uwsgi]` or `[molt]` table (both may be
//! used; they are read in file order). Strings, integers and booleans are accepted for any
//! option (`processes = 4` and `processes = "4"` are the same); an array gives a repeatable
//! option several values. No placeholders are expanded: TOML users have no need for
//! uWSGI's `$(VAR)`/`%(name)` and literal values keep TOML what it is.

use super::collect::{Collector, Entry};
use crate::error::Origin;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Reads a TOML document `text` from `file`, adding its entries to the collector.
pub fn read(col: &mut Collector, file: &str, text: &str) {
    let lines = LineIndex::new(text);
    let origin = |span: std::ops::Range<usize>| Origin::File {
        path: file.to_string(),
        line: lines.line_of(span.start),
    };
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let at = origin(e.span().unwrap_or(0..0));
            col.error(&at, "", format!("invalid TOML: {}", e.message()));
            return;
        }
    };
    let mut items: Vec<_> = doc.get_ref().iter().collect();
    items.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in items {
        let at = origin(key.span());
        let name = key.get_ref().as_ref();
        match value.get_ref() {
            DeValue::Table(table) if name == "uwsgi" || name == "molt" => {
                let mut inner: Vec<_> = table.iter().collect();
                inner.sort_by_key(|(k, _)| k.span().start);
                for (k, v) in inner {
                    add_value(col, k.get_ref(), v, &origin(k.span()));
                }
            }
            DeValue::Table(_) => col.error(
                &at,
                name,
                "unexpected table: options go at the top level or in [uwsgi] / [molt]",
            ),
            _ => add_value(col, name, value, &at),
        }
    }
}

/// Adds one key's value (or each element of an array) as literal entries.
fn add_value(col: &mut Collector, key: &str, value: &Spanned<DeValue>, at: &Origin) {
    match value.get_ref() {
        DeValue::Array(items) => {
            for item in items {
                add_scalar(col, key, item.get_ref(), at);
            }
        }
        other => add_scalar(col, key, other, at),
    }
}

fn add_scalar(col: &mut Collector, key: &str, value: &DeValue, at: &Origin) {
    let text = match value {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        other => {
            col.error(
                at,
                key,
                format!(
                    "a TOML {} is not accepted: use a string, a decimal integer, a boolean, \
                     or an array of those",
                    other.type_str()
                ),
            );
            return;
        }
    };
    let mut entry = Entry::new(key, &text, at.clone());
    entry.expand = false;
    col.add(entry);
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}
