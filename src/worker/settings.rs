//! Process settings a worker applies to itself before its app loads (`chdir`, `env`), so
//! the app and any child it starts (a Python interpreter) see them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::AppFactory;

/// Wraps `inner` so that every worker changes directory and sets the environment first.
/// Nothing to wrap when neither is configured.
pub fn with_process_settings(
    inner: AppFactory,
    chdir: Option<PathBuf>,
    env: Vec<(String, String)>,
) -> AppFactory {
    if chdir.is_none() && env.is_empty() {
        return inner;
    }
    Arc::new(move || {
        apply(chdir.as_deref(), &env)?;
        inner()
    })
}

/// Runs in the worker before any of its threads exist (the factory is called first),
/// which is what makes `set_var` sound here.
fn apply(chdir: Option<&Path>, env: &[(String, String)]) -> Result<(), String> {
    if let Some(dir) = chdir {
        std::env::set_current_dir(dir).map_err(|e| format!("chdir {}: {e}", dir.display()))?;
    }
    for (k, v) in env {
        std::env::set_var(k, v);
    }
    Ok(())
}
