//! Placeholder passes over the collected entries, in uWSGI's order: `$(VAR)` from the
//! environment, then `@(file)` contents, then `%(name)` references to other entries.
//!
//! As in uWSGI (`uwsgi_apply_config_pass`), each pass scans every value left to right and does
//! not rescan substituted text, so no input can loop. `%(name)` takes the FIRST value given
//! for `name` (uWSGI's `uwsgi_get_exported_opt`), already expanded when it comes earlier.
//! What uWSGI leaves silently as literal text (unset variables, unknown names) is left the
//! same way here, but reported: a warning, or an error under `strict`.

use super::collect::{read_text, Collector, Entry};
use crate::error::{ConfigError, Origin};
use std::collections::HashSet;

/// What the passes found worth reporting.
#[derive(Default)]
pub struct Report {
    /// Names referenced as `%(name)`: such keys are variables, not unknown options.
    pub referenced: HashSet<String>,
}

/// Runs the three passes over `col.entries`.
pub fn run(col: &mut Collector, strict: bool) -> Report {
    let mut report = Report::default();
    env_pass(col, strict);
    file_pass(col);
    reference_pass(col, strict, &mut report);
    report
}

fn env_pass(col: &mut Collector, strict: bool) {
    let mut problems = Vec::new();
    for e in col.entries.iter_mut().filter(|e| e.expand) {
        let env = col.ctx.env;
        e.value = substitute(&e.value, '$', |name| {
            let v = env.get(name).cloned();
            if v.is_none() {
                problems.push((e.origin.clone(), e.key.clone(), name.to_string()));
            }
            v
        });
    }
    for (origin, key, name) in problems {
        let msg = format!("environment variable {name} is not set: $({name}) is left as written");
        report(col, strict, &origin, &key, msg);
    }
}

fn file_pass(col: &mut Collector) {
    let mut errors = Vec::new();
    for e in col.entries.iter_mut().filter(|e| e.expand) {
        let ctx = &col.ctx;
        let (origin, key) = (e.origin.clone(), e.key.clone());
        e.value = substitute(&e.value, '@', |name| match read_text(&ctx.resolve(name)) {
            Ok(text) => Some(strip_one_newline(text)),
            Err(msg) => {
                errors.push(ConfigError {
                    origin: origin.clone(),
                    option: key.clone(),
                    message: format!("@({name}): {msg}"),
                });
                None
            }
        });
    }
    col.errors.extend(errors);
}

fn reference_pass(col: &mut Collector, strict: bool, report_out: &mut Report) {
    let mut problems = Vec::new();
    for i in 0..col.entries.len() {
        if !col.entries[i].expand {
            continue;
        }
        let (before, rest) = col.entries.split_at_mut(i);
        let e = &mut rest[0];
        e.value = substitute(&e.value, '%', |name| {
            report_out.referenced.insert(name.to_string());
            let found = first_value(before, name);
            if found.is_none() {
                problems.push((e.origin.clone(), e.key.clone(), name.to_string()));
            }
            found
        });
    }
    for (origin, key, name) in problems {
        let msg = if name.contains(' ') {
            format!("%({name}): placeholder arithmetic is not supported; left as written")
        } else {
            format!("%({name}) is not defined before this line (or anywhere): left as written")
        };
        report(col, strict, &origin, &key, msg);
    }
}

/// The first value of `name` among `entries` (also matching the option's other spellings).
fn first_value(entries: &[Entry], name: &str) -> Option<String> {
    let canonical = super::table::lookup(name).map(|o| o.name);
    entries
        .iter()
        .find(|e| {
            e.key == name
                || canonical.is_some() && super::table::lookup(&e.key).map(|o| o.name) == canonical
        })
        .map(|e| e.value.clone())
}

fn report(col: &mut Collector, strict: bool, origin: &Origin, key: &str, msg: String) {
    if strict {
        col.error(origin, key, msg);
    } else {
        col.warnings
            .push(format!("{origin}: option '{key}': {msg}"));
    }
}

fn strip_one_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Replaces each `<sigil>(name)` in `value` by `lookup(name)`; `None` leaves it as written.
/// Parentheses nest (`$(A(B))` asks for `A(B)`); an unclosed one is left as written.
pub fn substitute(
    value: &str,
    sigil: char,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let opener: String = [sigil, '('].iter().collect();
    while let Some(start) = rest.find(&opener) {
        out.push_str(&rest[..start]);
        let inner_start = start + 2;
        match closing_paren(&rest[inner_start..]) {
            Some(len) => {
                let name = &rest[inner_start..inner_start + len];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..inner_start + len + 1]),
                }
                rest = &rest[inner_start + len + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The length of the text before the `)` that closes an already-open `(`.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "A(B)" => Some("nested".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_leaves_unknown_as_written() {
        assert_eq!(substitute("$(HOME)/app", '$', env), "/home/u/app");
        assert_eq!(substitute("x $(NOPE) y", '$', env), "x $(NOPE) y");
        assert_eq!(substitute("$(A(B))", '$', env), "nested");
        assert_eq!(substitute("$(HOME", '$', env), "$(HOME");
        assert_eq!(substitute("%(HOME)", '$', env), "%(HOME)");
        assert_eq!(substitute("$(HOME)$(HOME)", '$', env), "/home/u/home/u");
    }

    #[test]
    fn substituted_text_is_not_rescanned() {
        let out = substitute("%(a)", '%', |_| Some("%(a)".into()));
        assert_eq!(out, "%(a)");
    }
}
