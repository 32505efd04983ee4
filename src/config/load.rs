//! The entry points: [`load`] at start-up, [`reload`] on SIGHUP / touch-reload, and
//! [`cli_main`] for `main.rs`. All three go through [`reload`]'s single path: collect entries
//! from the sources in uWSGI's order, expand placeholders, apply them through the table, then
//! validate. A reload re-reads the same files with the same arguments, environment snapshot
//! and start directory, so it resolves exactly as the start did.

use super::cli;
use super::collect::{Collector, Context, Entry};
use super::expand;
use super::print::{help_text, print_config};
use super::table::{lookup, Directive, Draft, Status};
use super::units::parse_bool;
use super::validate::Checker;
use super::Config;
use crate::error::{ConfigError, Origin};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// What molt was asked to do with the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Serve.
    #[default]
    Run,
    /// Validate and exit (`--check-config`).
    CheckConfig,
    /// Print the effective settings and exit (`--print-config`).
    PrintConfig,
}

/// Everything needed to read the configuration again exactly as at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The command-line arguments, without the program name.
    pub args: Vec<String>,
    /// The environment at start-up (uWSGI re-execs with its environment; molt keeps a copy).
    pub env: Vec<(String, String)>,
    /// The directory molt was started in; relative paths resolve against it.
    pub cwd: PathBuf,
    /// The app is built into the program (library use): no app option is required.
    pub embedded_app: bool,
}

impl Sources {
    /// Sources from explicit parts (tests, embedding).
    pub fn new(args: Vec<String>, env: Vec<(String, String)>, cwd: PathBuf) -> Self {
        Sources {
            args,
            env,
            cwd,
            embedded_app: false,
        }
    }

    /// Sources from this process: `args` plus the current environment and directory.
    pub fn capture(args: Vec<String>) -> Result<Self, Vec<ConfigError>> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let cwd = std::env::current_dir().map_err(|e| {
            vec![ConfigError {
                origin: Origin::Default,
                option: String::new(),
                message: format!("cannot read the current directory: {e}"),
            }]
        })?;
        Ok(Sources {
            args,
            env,
            cwd,
            embedded_app: false,
        })
    }
}

/// One value applied to an option, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value after placeholder expansion.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
    /// The key as written (an alias, a gunicorn spelling, ...).
    pub written_as: String,
}

/// Where each option's effective value came from; options absent here have their default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// Canonical option name -> the values in effect (one for scalars, all for repeatables).
    pub settings: BTreeMap<&'static str, Vec<Setting>>,
}

impl Provenance {
    /// Where the effective (last) value of `option` was written; `None` = default.
    pub fn origin_of(&self, option: &str) -> Option<&Origin> {
        self.settings
            .get(option)
            .and_then(|v| v.last())
            .map(|s| &s.origin)
    }
}

/// A loaded, validated configuration and what is needed to reload it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated settings.
    pub config: Config,
    /// Run, check or print.
    pub mode: Mode,
    /// What to re-read on reload (pass to [`reload`]).
    pub sources: Sources,
    /// Warnings and the "accepted, no effect" list: log each once at start-up / reload.
    pub notices: Vec<String>,
    /// Where every value came from, for `--print-config` and messages.
    pub provenance: Provenance,
    /// The config files read, absolute, in order.
    pub files: Vec<PathBuf>,
}

/// An early exit for `main`: print `stdout` and `stderr`, exit with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitNow {
    /// Process exit status (0 or 2).
    pub code: i32,
    /// Text for standard output.
    pub stdout: String,
    /// Text for standard error.
    pub stderr: String,
}

/// Loads the configuration from `args` (without the program name) and this process's
/// environment and working directory.
pub fn load(args: Vec<String>) -> Result<Loaded, Vec<ConfigError>> {
    reload(&Sources::capture(args)?)
}

/// Reads the configuration from `sources` again: same files, arguments and environment.
/// On error the caller keeps its current configuration and logs the errors.
pub fn reload(sources: &Sources) -> Result<Loaded, Vec<ConfigError>> {
    read_all(sources).0
}

/// The single read path. Returns the outcome and, separately, the notices gathered, so a
/// failed read can still show the warnings that explain it (a typo next to "no app").
fn read_all(sources: &Sources) -> (Result<Loaded, Vec<ConfigError>>, Vec<String>) {
    let env: HashMap<String, String> = sources.env.iter().cloned().collect();
    let mut col = Collector::new(Context {
        env: &env,
        cwd: &sources.cwd,
        embedded_app: sources.embedded_app,
    });
    let parsed = cli::parse(&sources.args);
    col.errors.extend(parsed.errors);
    for e in cli::env_entries(&sources.env, &mut col.warnings) {
        col.add(e);
    }
    for e in parsed.entries {
        col.add(e);
    }
    for p in &parsed.positionals {
        col.add_positional(p);
    }
    let strict = strict_requested(&col.entries);
    let report = expand::run(&mut col, strict);
    let mut applier = Applier::new(strict);
    for e in &col.entries {
        applier.apply(e, &report.referenced);
    }
    let mut errors = std::mem::take(&mut col.errors);
    errors.extend(std::mem::take(&mut applier.errors));
    let mut checker = Checker::new(&applier.provenance, &col.ctx, &applier.not_yet);
    let config = checker.finish(applier.draft.clone());
    errors.extend(checker.errors);
    let mut notices = col.warnings;
    notices.extend(applier.warnings);
    notices.extend(checker.warnings);
    notices.extend(no_effect_notice(&applier.no_effect));
    if !errors.is_empty() {
        return (Err(errors), notices);
    }
    let loaded = Loaded {
        config,
        mode: applier.draft.mode,
        sources: sources.clone(),
        notices: notices.clone(),
        provenance: applier.provenance,
        files: col.files,
    };
    (Ok(loaded), notices)
}

/// Everything `main` needs: help and version, errors (exit 2), `--check-config` and
/// `--print-config` (exit 0) become an [`ExitNow`]; only a runnable configuration is `Ok`.
pub fn cli_main(args: Vec<String>) -> Result<Loaded, ExitNow> {
    cli_main_for(args, false)
}

/// [`cli_main`] for a program that serves its own built-in app (`embedded_app`): then no
/// app option is required, and one given (module, demo, ...) takes its place.
pub fn cli_main_for(args: Vec<String>, embedded_app: bool) -> Result<Loaded, ExitNow> {
    match cli::early_exit(&args) {
        Some(Directive::Help) => return Err(exit(0, help_text(), String::new())),
        Some(_) => {
            return Err(exit(
                0,
                format!("molt {}\n", env!("CARGO_PKG_VERSION")),
                String::new(),
            ))
        }
        None => {}
    }
    let mut sources = Sources::capture(args).map_err(failure)?;
    sources.embedded_app = embedded_app;
    let (outcome, notices) = read_all(&sources);
    let notices: String = notices
        .iter()
        .map(|n| format!("molt: warning: {n}\n"))
        .collect();
    let loaded = outcome.map_err(|errors| {
        let mut exit = failure(errors);
        exit.stderr.insert_str(0, &notices);
        exit
    })?;
    match loaded.mode {
        Mode::Run => Ok(loaded),
        Mode::CheckConfig => Err(exit(0, "molt: configuration OK\n".into(), notices)),
        Mode::PrintConfig => Err(exit(0, print_config(&loaded), notices)),
    }
}

fn failure(errors: Vec<ConfigError>) -> ExitNow {
    let e = crate::Error::Config(errors);
    exit(e.exit_code(), String::new(), format!("molt: {e}\n"))
}

fn exit(code: i32, stdout: String, stderr: String) -> ExitNow {
    ExitNow {
        code,
        stdout,
        stderr,
    }
}

/// `strict` must govern every entry wherever it appears, so it is read before the rest.
fn strict_requested(entries: &[Entry]) -> bool {
    entries
        .iter()
        .filter(|e| lookup(&e.key).is_some_and(|o| o.name == "strict"))
        .fold(false, |acc, e| parse_bool(&e.value).unwrap_or(acc))
}

/// One line listing the accepted-but-ineffective options with their reasons.
fn no_effect_notice(list: &[(&'static str, &'static str)]) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let items: Vec<String> = list.iter().map(|(n, why)| format!("{n} ({why})")).collect();
    Some(format!("accepted, no effect in molt: {}", items.join("; ")))
}

/// Applies entries in order to a draft through the table.
struct Applier {
    strict: bool,
    draft: Draft,
    provenance: Provenance,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    no_effect: Vec<(&'static str, &'static str)>,
    not_yet: Vec<(&'static str, Origin)>,
}

impl Applier {
    fn new(strict: bool) -> Self {
        Applier {
            strict,
            draft: Draft::default(),
            provenance: Provenance::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            no_effect: Vec::new(),
            not_yet: Vec::new(),
        }
    }

    fn apply(&mut self, e: &Entry, variables: &HashSet<String>) {
        if e.variable {
            return;
        }
        let Some(spec) = lookup(&e.key) else {
            if !variables.contains(&e.key) {
                let msg = cli::unknown_message(&e.key);
                self.complain(e, format!("{msg}; ignored"), msg);
            }
            return;
        };
        match spec.status {
            Status::Active(apply) => match apply(&mut self.draft, &e.value) {
                Ok(()) => self.record(spec.name, spec.repeatable, e),
                Err(message) => self.errors.push(error_at(e, message)),
            },
            Status::NoEffect(why) => {
                if let Err(message) = spec.kind.check(&e.value) {
                    self.errors.push(error_at(e, message));
                }
                if !self.no_effect.iter().any(|(n, _)| *n == spec.name) {
                    self.no_effect.push((spec.name, why));
                }
            }
            Status::NotYet(hint) => {
                self.not_yet.push((spec.name, e.origin.clone()));
                let msg = format!("not supported by molt yet: {hint}");
                self.complain(e, format!("{msg}; IGNORED"), msg);
            }
            Status::Directive(_) => {}
        }
    }

    /// A warning normally, an error under strict.
    fn complain(&mut self, e: &Entry, warning: String, error: String) {
        if self.strict {
            self.errors
                .push(error_at(e, format!("{error} (strict mode)")));
        } else {
            self.warnings
                .push(format!("{}: option '{}': {warning}", e.origin, e.key));
        }
    }

    fn record(&mut self, name: &'static str, repeatable: bool, e: &Entry) {
        let setting = Setting {
            value: e.value.clone(),
            origin: e.origin.clone(),
            written_as: e.key.clone(),
        };
        let prev = self
            .provenance
            .settings
            .get(name)
            .and_then(|v| v.last())
            .cloned();
        if let (false, Some(prev)) = (repeatable, prev) {
            self.note_override(name, &prev, &setting);
        }
        let slot = self.provenance.settings.entry(name).or_default();
        if !repeatable {
            slot.clear();
        }
        slot.push(setting);
    }

    /// uWSGI applies files after command-line options; say so when it changes a value.
    fn note_override(&mut self, name: &str, prev: &Setting, new: &Setting) {
        let cli_lost = prev.origin == Origin::CommandLine && new.origin != Origin::CommandLine;
        if cli_lost && prev.value != new.value {
            self.warnings.push(format!(
                "option '{name}': '{}' from the command line is overridden by '{}' from {} \
                 (later wins, as in uWSGI: config files named on the command line are read after its options)",
                prev.value, new.value, new.origin
            ));
        }
    }
}

fn error_at(e: &Entry, message: String) -> ConfigError {
    ConfigError {
        origin: e.origin.clone(),
        option: e.key.clone(),
        message,
    }
}
