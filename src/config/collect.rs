//! Collects raw `key = value` entries from every source, in uWSGI's order.
//!
//! uWSGI builds one ordered list of "exported options": the environment first, then the
//! command line in order, where `--ini FILE` inserts the file's lines at that point, then the
//! positional config files. Placeholders are expanded over that list afterwards and the
//! options are applied in order, so for a scalar the last one wins. The [`Collector`] builds
//! the same list; includes (`ini =`, `toml =`) are read where they appear, with cycle
//! detection.

use super::table::{lookup, Directive, Status};
use super::{ini, toml_file};
use crate::error::{ConfigError, Origin};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest config file (and `@(file)`) molt reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Deepest include nesting before molt assumes something is wrong.
const MAX_DEPTH: usize = 32;
/// Most file reads in one load: includes may fan out (each section including two others),
/// and a config must never take exponential time to read.
const MAX_READS: usize = 256;

/// One `key = value` as written, before placeholders are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key as the user wrote it (alias, underscores and all).
    pub key: String,
    /// The value; empty for a bare key or a flag without a value.
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
    /// Whether `$(VAR)`, `@(file)` and `%(name)` are expanded in the value (not for TOML).
    pub expand: bool,
    /// A `%(name)` variable defined with `set-placeholder`, not an option.
    pub variable: bool,
}

impl Entry {
    /// An entry whose value is expanded.
    pub fn new(key: &str, value: &str, origin: Origin) -> Self {
        Entry {
            key: key.to_string(),
            value: value.to_string(),
            origin,
            expand: true,
            variable: false,
        }
    }
}

/// The process context the readers resolve against; captured once so reloads see the same.
pub struct Context<'a> {
    /// Environment variables.
    pub env: &'a HashMap<String, String>,
    /// Directory relative paths are resolved against.
    pub cwd: &'a Path,
    /// The program serves an app built into it (the library's `cli_main`).
    pub embedded_app: bool,
}

impl Context<'_> {
    /// Resolves `p` against the start directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.cwd.join(p)
        }
    }
}

/// The ordered entries plus everything found wrong while reading them.
pub struct Collector<'a> {
    /// Where paths and variables come from.
    pub ctx: Context<'a>,
    /// Entries in application order.
    pub entries: Vec<Entry>,
    /// Problems that make the configuration invalid.
    pub errors: Vec<ConfigError>,
    /// Problems worth telling the user about.
    pub warnings: Vec<String>,
    /// Config files read, in order (absolute), for reload and `touch-reload` defaults.
    pub files: Vec<PathBuf>,
    /// The (file, section) chain being read, for cycle detection.
    stack: Vec<(PathBuf, String)>,
    /// The last ini file read, for `ini = :section`.
    last_ini: Option<(String, PathBuf)>,
}

impl<'a> Collector<'a> {
    /// An empty collector.
    pub fn new(ctx: Context<'a>) -> Self {
        Collector {
            ctx,
            entries: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            files: Vec::new(),
            stack: Vec::new(),
            last_ini: None,
        }
    }

    /// Records an error.
    pub fn error(&mut self, origin: &Origin, option: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            origin: origin.clone(),
            option: option.to_string(),
            message: message.into(),
        });
    }

    /// Adds one entry; `ini`/`toml` read the file here, `set-placeholder` defines a variable.
    pub fn add(&mut self, entry: Entry) {
        let directive = lookup(&entry.key).and_then(|o| match o.status {
            Status::Directive(d) => Some(d),
            _ => None,
        });
        match directive {
            Some(Directive::Ini) => self.include_ini(&entry.value, &entry.origin),
            Some(Directive::Toml) => self.include_toml(&entry.value, &entry.origin),
            Some(Directive::Placeholder) => self.add_placeholder(entry),
            Some(Directive::Logic) => self.error(
                &entry.origin,
                &entry.key,
                "if-*/else/endif blocks only work inside ini files",
            ),
            _ => self.entries.push(entry),
        }
    }

    fn add_placeholder(&mut self, entry: Entry) {
        match entry.value.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                let mut var = Entry::new(name.trim(), value, entry.origin);
                var.variable = true;
                self.entries.push(var);
            }
            _ => self.error(&entry.origin, &entry.key, "expected NAME=VALUE"),
        }
    }

    /// The first value given for `key` so far (uWSGI's `uwsgi_get_exported_opt`).
    pub fn first_value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// Reads a config file named on the command line without an option, by its extension.
    pub fn add_positional(&mut self, arg: &str) {
        let (file, _) = split_section(arg);
        if file.ends_with(".ini") {
            self.include_ini(arg, &Origin::CommandLine);
        } else if file.ends_with(".toml") {
            self.include_toml(arg, &Origin::CommandLine);
        } else {
            self.error(
                &Origin::CommandLine,
                "",
                format!(
                    "unexpected argument '{arg}': positional arguments are config files \
                     (FILE.ini[:SECTION] or FILE.toml); for an app use --module or --wsgi-file"
                ),
            );
        }
    }

    /// Reads `FILE[:SECTION]` (or `:SECTION` of the last ini file) at this point.
    pub fn include_ini(&mut self, spec: &str, origin: &Origin) {
        let (file, section) = split_section(spec.trim());
        let section = if section.is_empty() { "uwsgi" } else { section };
        let (shown, path) = if file.is_empty() {
            match &self.last_ini {
                Some(last) => last.clone(),
                None => {
                    self.error(
                        origin,
                        "ini",
                        format!("'{spec}': ':SECTION' needs an ini file read before it"),
                    );
                    return;
                }
            }
        } else {
            (file.to_string(), self.ctx.resolve(file))
        };
        let Some(text) = self.open(&path, origin, "ini") else {
            return;
        };
        if !self.enter(&path, section, origin) {
            return;
        }
        self.last_ini = Some((shown.clone(), path.clone()));
        ini::read(self, &shown, &path, section, &text, origin);
        self.stack.pop();
    }

    /// Reads a TOML file at this point.
    pub fn include_toml(&mut self, file: &str, origin: &Origin) {
        let file = file.trim();
        let path = self.ctx.resolve(file);
        let Some(text) = self.open(&path, origin, "toml") else {
            return;
        };
        if !self.enter(&path, "", origin) {
            return;
        }
        toml_file::read(self, file, &text);
        self.stack.pop();
    }

    /// Reads a file's text, recording it; `None` (with an error) if it cannot be used.
    fn open(&mut self, path: &Path, origin: &Origin, option: &str) -> Option<String> {
        if self.files.len() >= MAX_READS {
            let msg = format!("more than {MAX_READS} config file reads: check the includes");
            self.error(origin, option, msg);
            return None;
        }
        match read_text(path) {
            Ok(text) => {
                self.files.push(path.to_path_buf());
                Some(text)
            }
            Err(e) => {
                self.error(origin, option, e);
                None
            }
        }
    }

    /// Pushes (file, section) on the include chain; false (with an error) on a cycle.
    fn enter(&mut self, path: &Path, section: &str, origin: &Origin) -> bool {
        let key = (canonical(path), section.to_string());
        if self.stack.contains(&key) || self.stack.len() >= MAX_DEPTH {
            let mut chain: Vec<String> = self.stack.iter().map(show_link).collect();
            chain.push(show_link(&key));
            self.error(
                origin,
                "ini",
                format!("include cycle: {}", chain.join(" -> ")),
            );
            return false;
        }
        self.stack.push(key);
        true
    }
}

fn show_link((path, section): &(PathBuf, String)) -> String {
    if section.is_empty() {
        path.display().to_string()
    } else {
        format!("{}:{section}", path.display())
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Splits `file.ini:section` at the last `:` (uWSGI's rule); no colon = no section.
pub fn split_section(spec: &str) -> (&str, &str) {
    match spec.rsplit_once(':') {
        Some((file, section)) => (file, section),
        None => (spec, ""),
    }
}

/// Reads a config file: at most 1 MiB, UTF-8, no NUL bytes.
pub fn read_text(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{shown} is a directory, not a config file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{shown} is {} bytes; config files are limited to {MAX_FILE_BYTES} bytes (1 MiB)",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{shown} grew beyond 1 MiB while being read"));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(format!(
            "{shown} contains a NUL byte at offset {pos}: not a text file"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown} is not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_split_uses_last_colon() {
        assert_eq!(split_section("a.ini:prod"), ("a.ini", "prod"));
        assert_eq!(split_section(":prod"), ("", "prod"));
        assert_eq!(split_section("a.ini"), ("a.ini", ""));
        assert_eq!(split_section("a.ini:"), ("a.ini", ""));
    }
}
