//! Reloading: SIGHUP and `touch-reload` re-read the files molt was started from. A
//! valid new config replaces the old one (limits, worker count, app, worker settings;
//! every worker is then replaced gracefully); an invalid one is logged with all its
//! errors and the old config keeps running. Listeners cannot change without a restart.

use std::path::PathBuf;
use std::time::SystemTime;

use log::{error, info, warn};

use crate::config::{self, Loaded};

/// Watches the mtimes of the `touch-reload` files.
#[derive(Debug, Default)]
pub struct TouchWatch {
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

impl TouchWatch {
    /// Starts watching `paths` (their current mtimes are the baseline).
    pub fn new(paths: &[PathBuf]) -> Self {
        TouchWatch {
            files: paths.iter().map(|p| (p.clone(), mtime(p))).collect(),
        }
    }

    /// True when any file's mtime changed since the last call (a file appearing counts).
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for (path, seen) in &mut self.files {
            let now = mtime(path);
            if now != *seen {
                info!("touch-reload: {} changed", path.display());
                *seen = now;
                changed = true;
            }
        }
        changed
    }
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Re-reads the configuration; `None` (after logging why) keeps the old one.
pub fn reread(current: &Loaded) -> Option<Loaded> {
    match config::reload(&current.sources) {
        Ok(new) => {
            for notice in &new.notices {
                warn!("{notice}");
            }
            if new.config.listeners != current.config.listeners {
                error!(
                    "reload: changing the listeners needs a restart; keeping the old configuration"
                );
                return None;
            }
            log_diff(current, &new);
            Some(new)
        }
        Err(errors) => {
            error!(
                "reload: the new configuration is invalid ({} error(s)); keeping the old one",
                errors.len()
            );
            for e in errors {
                error!("  {e}");
            }
            None
        }
    }
}

/// Logs each option whose effective value changed.
fn log_diff(old: &Loaded, new: &Loaded) {
    let values = |l: &Loaded, k: &str| -> Vec<String> {
        l.provenance
            .settings
            .get(k)
            .map(|v| v.iter().map(|s| s.value.clone()).collect())
            .unwrap_or_default()
    };
    let keys: std::collections::BTreeSet<&str> = old
        .provenance
        .settings
        .keys()
        .chain(new.provenance.settings.keys())
        .copied()
        .collect();
    let mut changes = 0;
    for k in keys {
        let (a, b) = (values(old, k), values(new, k));
        if a != b {
            info!("reload: {k}: {} -> {}", show(&a), show(&b));
            changes += 1;
        }
    }
    info!("reload: configuration re-read, {changes} option(s) changed; replacing every worker");
}

fn show(v: &[String]) -> String {
    if v.is_empty() {
        "(default)".to_string()
    } else {
        v.join(", ")
    }
}
