//! Text generated from the settings table: `--help`, the option reference in
//! docs/configuration.md, and `--print-config`.

use super::load::Loaded;
use super::table::{Group, OptSpec, Status, OPTIONS};

/// Options of one group, in table order.
fn in_group(g: Group) -> impl Iterator<Item = &'static OptSpec> {
    OPTIONS.iter().filter(move |o| o.group == g)
}

/// The `--help` text.
pub fn help_text() -> String {
    let mut out = format!(
        "molt {} - a pre-fork app server launcher that keeps worker memory bounded\n\n\
         Usage: molt [OPTIONS] [FILE.ini[:SECTION] | FILE.toml]...\n\n\
         Every option also works as `--name=value`, `-name value`, in uwsgi.ini (`name = value`),\n\
         in TOML and as UWSGI_NAME / MOLT_NAME environment variables. See docs/configuration.md.\n",
        env!("CARGO_PKG_VERSION")
    );
    for g in Group::ALL {
        out.push_str(&format!("\n{}:\n", g.title()));
        for o in in_group(g) {
            out.push_str(&help_line(o));
        }
    }
    out
}

fn help_line(o: &OptSpec) -> String {
    let short = o.short.map(|c| format!("-{c}, ")).unwrap_or_default();
    let flag = format!("{short}--{} {}", o.name, o.kind.metavar());
    let mut line = format!("  {:<40} {}", flag.trim_end(), o.help);
    let mut extras = Vec::new();
    if !o.aliases.is_empty() {
        extras.push(format!("aliases: {}", o.aliases.join(", ")));
    }
    if !o.default.is_empty() && matches!(o.status, Status::Active(_)) {
        extras.push(format!("default: {}", o.default));
    }
    if o.repeatable {
        extras.push("repeatable".to_string());
    }
    if !extras.is_empty() {
        line.push_str(&format!(" [{}]", extras.join("; ")));
    }
    line.push('\n');
    line
}

/// The option reference as Markdown tables (pasted into docs/configuration.md).
pub fn options_markdown() -> String {
    let mut out = String::new();
    for g in Group::ALL {
        out.push_str(&format!("\n### {}\n\n", g.title()));
        out.push_str("| Option | Aliases | Type / unit | Default | Repeatable | Meaning |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for o in in_group(g) {
            out.push_str(&markdown_row(o));
        }
    }
    out
}

fn markdown_row(o: &OptSpec) -> String {
    let mut aliases: Vec<String> = o.aliases.iter().map(|a| format!("`{a}`")).collect();
    if let Some(c) = o.short {
        aliases.push(format!("`-{c}`"));
    }
    format!(
        "| `{}` | {} | {} | {} | {} | {} |\n",
        o.name,
        aliases.join(", "),
        o.kind.describe(),
        if o.default.is_empty() { "-" } else { o.default },
        if o.repeatable { "yes" } else { "no" },
        o.help.replace('|', "\\|")
    )
}

/// Every active option's effective value and where it came from, one per line, in the
/// `name = value  # origin` form (valid uwsgi.ini inside a `[uwsgi]` section).
pub fn print_config(loaded: &Loaded) -> String {
    let mut out = String::from("[uwsgi]\n");
    for o in OPTIONS
        .iter()
        .filter(|o| matches!(o.status, Status::Active(_)))
    {
        match loaded.provenance.settings.get(o.name) {
            Some(values) => {
                for s in values {
                    let alias = if s.written_as != o.name {
                        format!(", written as {}", s.written_as)
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "{} = {}  # {}{alias}\n",
                        o.name, s.value, s.origin
                    ));
                }
            }
            None if o.repeatable || o.default.starts_with('(') => {
                out.push_str(&format!("# {} = {}  # default\n", o.name, o.default));
            }
            None => out.push_str(&format!("{} = {}  # default\n", o.name, default_value(o))),
        }
    }
    out
}

/// The default as a value that would parse (`"0 (never)"` -> `0`).
fn default_value(o: &OptSpec) -> &'static str {
    o.default.split(" (").next().unwrap_or(o.default)
}
