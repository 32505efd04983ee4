//! Errors as types, mapped to exit codes in one place ([`Error::exit_code`]).

use std::fmt;
use std::io;

/// Where a configuration value came from, for error messages and `--print-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The command line.
    CommandLine,
    /// An environment variable (its name).
    Env(String),
    /// A file and 1-based line.
    File { path: String, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::CommandLine => write!(f, "command line"),
            Origin::Env(name) => write!(f, "environment ${name}"),
            Origin::File { path, line } => write!(f, "{path}:{line}"),
        }
    }
}

/// One problem with one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the offending value was written.
    pub origin: Origin,
    /// The option's name as the user wrote it (may be empty for file-level errors).
    pub option: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.option.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{}: option '{}': {}",
                self.origin, self.option, self.message
            )
        }
    }
}

/// Everything that can stop molt, each with its exit code.
#[derive(Debug)]
pub enum Error {
    /// The configuration is invalid; every problem found is listed (exit 2).
    Config(Vec<ConfigError>),
    /// A listener could not be bound (exit 1).
    Bind { addr: String, source: io::Error },
    /// The pidfile is locked by another running molt, or cannot be written (exit 1).
    Pidfile { path: String, reason: String },
    /// No worker could start: the app fails at boot (exit 3).
    BootFailure { reason: String },
    /// An operating-system call the master depends on failed (exit 1).
    Os {
        what: &'static str,
        source: io::Error,
    },
}

impl Error {
    /// The process exit code for this error. The only place where codes are chosen.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::BootFailure { .. } => 3,
            Error::Bind { .. } | Error::Pidfile { .. } | Error::Os { .. } => 1,
        }
    }

    /// Wraps an OS error with the name of the operation that failed.
    pub fn os(what: &'static str, source: impl Into<io::Error>) -> Self {
        Error::Os {
            what,
            source: source.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(errors) => {
                write!(f, "invalid configuration ({} error(s)):", errors.len())?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
            Error::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            Error::Pidfile { path, reason } => write!(f, "pidfile {path}: {reason}"),
            Error::BootFailure { reason } => write!(f, "no worker could start: {reason}"),
            Error::Os { what, source } => write!(f, "{what} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::os("system call", io::Error::from(e))
    }
}
