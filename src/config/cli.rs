//! The command line and the environment, turned into ordered entries.
//!
//! Forms accepted for every option of the table: `--name value`, `--name=value`, uWSGI's
//! single-dash long form `-name value`, and the single letters uWSGI has (`-p 4`, `-p4`).
//! Flags take no separate value (`--vacuum`), but accept `--vacuum=false`. Unknown options
//! are errors here (as uWSGI's getopt makes them), with a "did you mean". Positional
//! arguments are config files (`app.ini`, `app.ini:section`, `app.toml`), read after every
//! option as uWSGI does.
//!
//! The environment: `UWSGI_<OPTION>` then `MOLT_<OPTION>` (upper case, `-` as `_`), as uWSGI's
//! `parse_sys_envs`; they come before the command line, so anything else overrides them.
//! Unknown names there are only warnings, even under strict: the environment is shared with
//! other programs.

use super::collect::Entry;
use super::suggest::did_you_mean;
use super::table::{lookup, lookup_short, Directive, OptSpec, Status};
use crate::error::{ConfigError, Origin};

/// The command line, split into option entries and positional config files.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Options in order.
    pub entries: Vec<Entry>,
    /// Positional arguments in order.
    pub positionals: Vec<String>,
    /// Problems found.
    pub errors: Vec<ConfigError>,
}

/// Whether `--help`/`--version` was asked for; checked before anything else is parsed.
pub fn early_exit(args: &[String]) -> Option<Directive> {
    for a in args.iter().take_while(|a| *a != "--") {
        let name = a.trim_start_matches('-');
        if !a.starts_with('-') || name.contains('=') {
            continue;
        }
        let spec = if a.len() == 2 {
            name.chars().next().and_then(lookup_short)
        } else {
            lookup(name)
        };
        if let Some(OptSpec {
            status: Status::Directive(d @ (Directive::Help | Directive::Version)),
            ..
        }) = spec
        {
            return Some(*d);
        }
    }
    None
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Parsed {
    let mut p = Parsed::default();
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            p.positionals.extend(it.by_ref().cloned());
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            p.positionals.push(arg.clone());
            continue;
        }
        let (spec, written, inline) = match identify(arg) {
            Ok(found) => found,
            Err(e) => {
                p.errors.push(e);
                continue;
            }
        };
        let value = if !spec.kind.takes_value() {
            inline.unwrap_or_default()
        } else if let Some(v) = inline {
            v
        } else if let Some(v) = it.next() {
            v.clone()
        } else {
            p.errors.push(cli_error(
                &written,
                format!("needs a value ({})", spec.kind.describe()),
            ));
            continue;
        };
        p.entries
            .push(Entry::new(&written, &value, Origin::CommandLine));
    }
    p
}

/// Finds the option an argument names: (row, name as written, inline value).
fn identify(arg: &str) -> Result<(&'static OptSpec, String, Option<String>), ConfigError> {
    let long = arg.strip_prefix("--");
    let body = long.unwrap_or(&arg[1..]);
    let (name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    if long.is_none() && name.chars().count() == 1 {
        return short_option(arg, name, inline);
    }
    if long.is_none() && inline.is_none() {
        if let Some(found) = attached_short(body) {
            return Ok(found);
        }
    }
    match lookup(name) {
        Some(spec) => Ok((spec, name.to_string(), inline)),
        None => Err(cli_error(name, unknown_message(name))),
    }
}

fn short_option(
    arg: &str,
    name: &str,
    inline: Option<String>,
) -> Result<(&'static OptSpec, String, Option<String>), ConfigError> {
    let c = name.chars().next().unwrap_or('-');
    lookup_short(c)
        .map(|spec| (spec, spec.name.to_string(), inline))
        .ok_or_else(|| cli_error(arg, format!("unknown option '{arg}'; see molt --help")))
}

/// `-p4`: a single-letter option with its value attached, when `-p4` is not itself a name.
fn attached_short(body: &str) -> Option<(&'static OptSpec, String, Option<String>)> {
    if lookup(body).is_some() {
        return None;
    }
    let mut chars = body.chars();
    let spec = lookup_short(chars.next()?)?;
    spec.kind.takes_value().then(|| {
        (
            spec,
            spec.name.to_string(),
            Some(chars.as_str().to_string()),
        )
    })
}

/// "unknown option" with a suggestion when one is close.
pub fn unknown_message(name: &str) -> String {
    match did_you_mean(name) {
        Some(s) => format!("unknown option '{name}' (did you mean '{s}'?)"),
        None => format!("unknown option '{name}'; see molt --help"),
    }
}

fn cli_error(option: &str, message: String) -> ConfigError {
    ConfigError {
        origin: Origin::CommandLine,
        option: option.to_string(),
        message,
    }
}

/// Environment variables that look like options but are uWSGI's or molt's own bookkeeping.
const ENV_SKIP: &[&str] = &[
    "RELOADS",
    "ORIGINAL_PROC_NAME",
    "LOG",
    "LOG_STYLE",
    "BACKTRACE",
];

/// Entries from `UWSGI_*` then `MOLT_*` variables, each group sorted by name; warnings for
/// names that are no option.
pub fn env_entries(env: &[(String, String)], warnings: &mut Vec<String>) -> Vec<Entry> {
    let mut out = Vec::new();
    for prefix in ["UWSGI_", "MOLT_"] {
        let mut vars: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        vars.sort();
        for (name, value) in vars {
            let rest = &name[prefix.len()..];
            if rest.is_empty() || ENV_SKIP.contains(&rest) || rest.starts_with("VASSAL") {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace('_', "-");
            if lookup(&key).is_none() {
                warnings.push(format!(
                    "environment ${name}: {} (ignored)",
                    unknown_message(&key)
                ));
                continue;
            }
            out.push(Entry::new(&key, value, Origin::Env(name.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(p: &Parsed) -> Vec<(String, String)> {
        p.entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    #[test]
    fn every_form() {
        let p = parse(&args(&[
            "--processes",
            "4",
            "--threads=2",
            "-harakiri",
            "30",
            "-p8",
            "-M",
            "--vacuum",
            "--strict=false",
            "app.ini",
            "--",
            "--weird.ini",
        ]));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let want = [
            ("processes", "4"),
            ("threads", "2"),
            ("harakiri", "30"),
            ("processes", "8"),
            ("master", ""),
            ("vacuum", ""),
            ("strict", "false"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs(&p), want);
        assert_eq!(p.positionals, args(&["app.ini", "--weird.ini"]));
    }

    #[test]
    fn unknown_and_missing_values_are_errors() {
        let p = parse(&args(&["--vaccum", "--processes"]));
        assert_eq!(p.errors.len(), 2);
        assert!(p.errors[0].message.contains("did you mean 'vacuum'"));
        assert!(p.errors[1].message.contains("needs a value"));
    }

    #[test]
    fn help_and_version_are_found_first() {
        assert_eq!(early_exit(&args(&["--bogus", "-h"])), Some(Directive::Help));
        assert_eq!(early_exit(&args(&["--version"])), Some(Directive::Version));
        assert_eq!(early_exit(&args(&["--", "--help"])), None);
    }

    #[test]
    fn environment_prefixes() {
        let env = vec![
            ("UWSGI_PROCESSES".to_string(), "2".to_string()),
            ("MOLT_PROCESSES".to_string(), "3".to_string()),
            ("UWSGI_RELOADS".to_string(), "1".to_string()),
            ("MOLT_PROCESES".to_string(), "1".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let mut w = Vec::new();
        let e = env_entries(&env, &mut w);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].value, "3");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("did you mean 'processes'"), "{w:?}");
    }
}
