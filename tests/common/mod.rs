//! Helpers shared by the config integration tests.
#![allow(dead_code)]

use molt::config::{reload, Loaded, Sources};
use molt::error::ConfigError;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// tests/configs, where the fixture files live.
pub fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

/// Owned strings from string slices.
pub fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Loads through the library with a controlled environment, from tests/configs.
pub fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Loaded, Vec<ConfigError>> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    reload(&Sources::new(strings(args), env, configs()))
}

/// Loads and panics with the errors if the config is invalid.
pub fn load_ok(args: &[&str], env: &[(&str, &str)]) -> Loaded {
    match load(args, env) {
        Ok(l) => l,
        Err(errors) => panic!("expected a valid config for {args:?}, got: {errors:#?}"),
    }
}

/// Loads and returns the errors, rendered one per line.
pub fn load_err(args: &[&str], env: &[(&str, &str)]) -> String {
    match load(args, env) {
        Ok(l) => panic!(
            "expected errors for {args:?}, got a valid config: {:#?}",
            l.config
        ),
        Err(errors) => errors.iter().map(|e| format!("{e}\n")).collect(),
    }
}

/// Result of running the real binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `molt` from tests/configs with a clean MOLT_/UWSGI_ environment, killed after 10 s.
pub fn molt(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_molt"));
    cmd.args(args).current_dir(configs());
    for (k, _) in std::env::vars() {
        if k.starts_with("MOLT_") || k.starts_with("UWSGI_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn molt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("molt {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("molt-cfg-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
