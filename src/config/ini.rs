//! The uwsgi.ini reader, following uWSGI's `core/ini.c` line by line.
//!
//! - Lines are split on `\n`; leading and trailing blanks and `\r` are stripped (so CRLF and a
//!   missing final newline work). Empty lines and lines starting with `#` or `;` are comments.
//! - Magic variables (`%d`, `%n`, `%%`, ...) are substituted first, per file, as uWSGI does on
//!   the raw text; `%(` is left for the placeholder pass.
//! - `[name]` starts a section; only the asked section (default `uwsgi`) is read, and text
//!   before the first section is ignored. A missing section is an error here (uWSGI only
//!   warned, and users lost hours on it: uwsgi#278).
//! - `key = value` splits at the first `=`; a line without `=` is a bare key (empty value,
//!   which means true for booleans).
//! - `ini = ...` includes are read where they appear (by the [`Collector`]).
//! - `if-env`/`if-not-env`/`if-exists`/`if-opt`/... open a block closed by `endif`; `else`
//!   inverts the last test; `%(_)` in the block is the tested value. As in uWSGI, blocks do not
//!   nest: an `if-*` inside a passing block replaces it and the first `endif` closes both.

use super::collect::{Collector, Entry};
use super::table::{lookup, normalise};
use crate::error::Origin;
use std::collections::HashMap;
use std::path::Path;

/// State of an open `if-*` block.
struct Block {
    /// The test passed: lines in the block are applied.
    pass: bool,
    /// The value `%(_)` stands for.
    underscore: String,
}

/// Per-file reader state.
struct Reader<'f> {
    shown: &'f str,
    path: &'f Path,
    asked: &'f str,
    magic: HashMap<char, String>,
    section: Option<String>,
    sections_seen: Vec<String>,
    found: bool,
    block: Option<(Block, usize)>,
    last_failed: bool,
}

/// Reads `text` (the contents of `path`, written by the user as `shown`), applying the lines
/// of section `asked` to the collector.
pub fn read(col: &mut Collector, shown: &str, path: &Path, asked: &str, text: &str, from: &Origin) {
    let mut r = Reader {
        shown,
        path,
        asked,
        magic: magic_table(shown, path, asked, col),
        section: None,
        sections_seen: Vec::new(),
        found: false,
        block: None,
        last_failed: false,
    };
    for (i, raw) in text.split('\n').enumerate() {
        r.line(col, i + 1, raw);
    }
    r.finish(col, from);
}

impl Reader<'_> {
    fn origin(&self, line: usize) -> Origin {
        Origin::File {
            path: self.shown.to_string(),
            line,
        }
    }

    fn line(&mut self, col: &mut Collector, n: usize, raw: &str) {
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return;
        }
        let line = substitute_magic(line, &self.magic, |c| {
            col.warnings.push(format!(
                "{}:{n}: unknown magic variable %{c} expands to nothing (as in uWSGI); write %% for a literal %",
                self.shown
            ));
        });
        if let Some(header) = line.strip_prefix('[') {
            self.header(col, n, header);
            return;
        }
        if self.section.as_deref() != Some(self.asked) {
            return;
        }
        self.found = true;
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (
                k.trim_end_matches([' ', '\t']),
                v.trim_start_matches([' ', '\t']),
            ),
            None => (line.as_str(), ""),
        };
        if key.is_empty() {
            col.error(
                &self.origin(n),
                "",
                "line starts with '=': expected KEY = VALUE",
            );
            return;
        }
        self.key_value(col, n, key, value);
    }

    fn header(&mut self, col: &mut Collector, n: usize, header: &str) {
        let Some(name) = header.strip_suffix(']') else {
            col.error(&self.origin(n), "", "section header must look like [name]");
            return;
        };
        let name = name.trim().to_string();
        if !self.sections_seen.contains(&name) {
            self.sections_seen.push(name.clone());
        }
        self.section = Some(name);
    }

    fn key_value(&mut self, col: &mut Collector, n: usize, key: &str, value: &str) {
        let norm = normalise(key);
        if is_end(&norm) {
            self.block = None;
            self.last_failed = false;
            return;
        }
        let in_failed_block = matches!(&self.block, Some((b, _)) if !b.pass);
        if norm == "else" {
            let pass = self.last_failed;
            self.block = Some((
                Block {
                    pass,
                    underscore: String::new(),
                },
                n,
            ));
            return;
        }
        if let Some(test) = norm.strip_prefix("if-") {
            if in_failed_block {
                return;
            }
            self.open_block(col, n, key, test, value);
            return;
        }
        if in_failed_block {
            return;
        }
        let value = match &self.block {
            Some((b, _)) => value.replace("%(_)", &b.underscore),
            None => value.to_string(),
        };
        col.add(Entry::new(key, &value, self.origin(n)));
    }

    fn open_block(&mut self, col: &mut Collector, n: usize, key: &str, test: &str, arg: &str) {
        if let Some((_, opened)) = &self.block {
            col.warnings.push(format!(
                "{}:{n}: '{key}' inside the block opened at line {opened}: uWSGI blocks do not nest, \
                 the first endif closes both",
                self.shown
            ));
        }
        let outcome = match evaluate(col, test, arg) {
            Ok(o) => o,
            Err(msg) => {
                col.error(&self.origin(n), key, msg);
                (false, String::new())
            }
        };
        self.last_failed = !outcome.0;
        self.block = Some((
            Block {
                pass: outcome.0,
                underscore: outcome.1,
            },
            n,
        ));
    }

    fn finish(&mut self, col: &mut Collector, from: &Origin) {
        if let Some((_, opened)) = &self.block {
            col.warnings.push(format!(
                "{}:{opened}: if-block not closed with endif before the end of the file",
                self.shown
            ));
        }
        if self.found {
            return;
        }
        let present = if self.sections_seen.is_empty() {
            "the file has no [section] at all".to_string()
        } else {
            format!("sections present: {}", self.sections_seen.join(", "))
        };
        col.error(
            from,
            "ini",
            format!(
                "no [{}] section in {} ({present}); name one with FILE:SECTION",
                self.asked,
                self.path.display()
            ),
        );
    }
}

fn is_end(key: &str) -> bool {
    matches!(key, "endif" | "end-if" | "end" | "endfor" | "end-for")
}

/// Evaluates `if-<test> = arg`: (passes, value of `%(_)`).
fn evaluate(col: &Collector, test: &str, arg: &str) -> Result<(bool, String), String> {
    let (negate, what) = match test.strip_prefix("not-") {
        Some(rest) => (true, rest),
        None => (false, test),
    };
    let (found, underscore) = match what {
        "env" => compare(arg, |name| col.ctx.env.get(name).cloned()),
        "opt" => compare(arg, |name| col.first_value(name).map(str::to_string)),
        "exists" => (col.ctx.resolve(arg).exists(), arg.to_string()),
        "file" => (col.ctx.resolve(arg).is_file(), arg.to_string()),
        "dir" | "directory" => (col.ctx.resolve(arg).is_dir(), arg.to_string()),
        _ => {
            let known = lookup(&format!("if-{test}")).is_some();
            let why = if known {
                "is not supported by molt"
            } else {
                "is not a known test"
            };
            return Err(format!(
                "if-{test} {why}: use if-env, if-not-env, if-exists, if-not-exists, if-file, \
                 if-not-file, if-dir, if-not-dir, if-opt or if-not-opt"
            ));
        }
    };
    Ok((found != negate, underscore))
}

/// `NAME` tests presence; `NAME=value` tests equality. Returns (test true, `%(_)` value).
fn compare(arg: &str, get: impl Fn(&str) -> Option<String>) -> (bool, String) {
    match arg.split_once('=') {
        Some((name, want)) => match get(name) {
            Some(v) => (v == want, v),
            None => (false, String::new()),
        },
        None => match get(arg) {
            Some(v) => (true, v),
            None => (false, String::new()),
        },
    }
}

/// Replaces `%X` magic variables; `%%` is `%`, `%(` is kept for placeholders, an unknown
/// letter expands to nothing (uWSGI's table defaults every entry to "") and is reported.
pub fn substitute_magic(
    line: &str,
    table: &HashMap<char, String>,
    mut unknown: impl FnMut(char),
) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('%'),
            Some('%') => out.push('%'),
            Some('(') => out.push_str("%("),
            Some(m) => match table.get(&m) {
                Some(v) => out.push_str(v),
                None => unknown(m),
            },
        }
    }
    out
}

/// Builds uWSGI's magic table for one file (`config_magic_table_fill` plus the static ones).
fn magic_table(shown: &str, path: &Path, section: &str, col: &Collector) -> HashMap<char, String> {
    let mut m = HashMap::new();
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let abs_s = abs.display().to_string();
    let file_name = abs
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = abs
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let dir_slash = if dir.ends_with('/') {
        dir.clone()
    } else {
        format!("{dir}/")
    };
    let dir_name = abs
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), e.to_string()),
        None => (file_name.clone(), String::new()),
    };
    let pairs = [
        ('o', shown.to_string()),
        ('p', abs_s),
        ('s', file_name),
        ('d', dir_slash),
        ('c', dir_name),
        ('e', ext),
        ('n', stem),
        ('x', format!("{shown}:{section}")),
    ];
    for (k, v) in pairs {
        m.insert(k.to_ascii_uppercase(), v.clone());
        m.insert(k, v);
    }
    for (i, part) in dir
        .split('/')
        .filter(|s| !s.is_empty())
        .take(10)
        .enumerate()
    {
        if let Some(d) = char::from_digit(i as u32, 10) {
            m.insert(d, part.to_string());
        }
    }
    add_process_magic(&mut m, col, &abs);
    m
}

/// Magic variables about the process and host rather than the file.
fn add_process_magic(m: &mut HashMap<char, String>, col: &Collector, abs: &Path) {
    m.insert('v', col.ctx.cwd.display().to_string());
    m.insert('V', env!("CARGO_PKG_VERSION").to_string());
    m.insert('h', hostname());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    m.insert('k', cores.to_string());
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    m.insert('u', uid.to_string());
    m.insert('g', gid.to_string());
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    m.insert('U', user.unwrap_or_default());
    let group = nix::unistd::Group::from_gid(gid)
        .ok()
        .flatten()
        .map(|g| g.name);
    m.insert('G', group.unwrap_or_default());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    m.insert('t', now.as_secs().to_string());
    m.insert('T', now.as_micros().to_string());
    let inode = std::fs::metadata(abs).map(|md| std::os::unix::fs::MetadataExt::ino(&md));
    let inode = inode.map(|i| i.to_string()).unwrap_or_default();
    m.insert('i', inode.clone());
    m.insert('I', inode);
    let hash = format!("{:x}", djb33x(abs.display().to_string().as_bytes()));
    m.insert('j', hash.clone());
    m.insert('J', hash);
    m.insert('[', "\x1b".to_string());
}

/// uWSGI's `djb33x_hash`, used by `%j`.
fn djb33x(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(5381u32, |h, &b| h.wrapping_mul(33) ^ u32::from(b))
}

/// The host name (`%h`), from the kernel (Linux is molt's platform).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_substitution() {
        let mut t = HashMap::new();
        t.insert('d', "/etc/app/".to_string());
        t.insert('n', "site".to_string());
        let mut unknown = Vec::new();
        let out = substitute_magic("%dsock/%n.sock 100%% %(x) %q end%", &t, |c| unknown.push(c));
        assert_eq!(out, "/etc/app/sock/site.sock 100% %(x)  end%");
        assert_eq!(unknown, vec!['q']);
    }

    #[test]
    fn compare_presence_and_equality() {
        let get = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(compare("A", get), (true, "1".into()));
        assert_eq!(compare("A=1", get), (true, "1".into()));
        assert_eq!(compare("A=2", get), (false, "1".into()));
        assert_eq!(compare("B", get), (false, String::new()));
    }
}
