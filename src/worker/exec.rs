//! The exec worker kind (`worker-exec = "node server.js"`): after the same per-worker
//! setup as an in-process worker, the child execs the command with the listeners as
//! fds 3.. and systemd's `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`.
//!
//! Everything the exec needs (program path, argv, envp and their pointer arrays) is
//! built by the master before fork ([`ExecPlan::new`]); between fork and exec the child
//! only makes async-signal-safe calls: sigaction, sigprocmask, fcntl, dup2, close_range,
//! getpid, execve, write, _exit. `LISTEN_PID` is the one value known only after fork: its
//! digits are written into a buffer reserved before fork.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ExecSpec, Protocol};

/// `LISTEN_PID=` followed by room for any pid.
const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";
const LISTEN_PID_LEN: usize = 40;

/// Where an exec'd worker's notifications go: an abstract unix datagram socket, named
/// after the master and the spawn generation (unique for the master's life).
pub fn notify_name(master_pid: i32, generation: u64) -> String {
    format!("@molt-{master_pid}-{generation}")
}

/// What the master needs to know about an exec'd worker it spawns (its half of the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecMeta {
    /// `NOTIFY_SOCKET` as given to the app (`@` = abstract namespace).
    pub notify_socket: String,
    /// The graceful-stop signal.
    pub stop_signal: i32,
    /// The app speaks the worker protocol (readiness only at `READY=1`).
    pub notify: bool,
    /// Without `notify`: ready this long after spawn.
    pub ready_delay: Duration,
}

/// Identity of the worker being spawned, for its environment.
#[derive(Debug, Clone, Copy)]
pub struct ExecIdentity {
    pub id: u32,
    pub generation: u64,
    pub master_pid: i32,
}

/// A fully prepared exec: nothing in it is allocated after fork.
pub struct ExecPlan {
    pub meta: ExecMeta,
    program: CString,
    /// Shown in the error message when the exec fails.
    failure_prefix: Vec<u8>,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    /// `LISTEN_PID=<pid>\0`, filled in by the child.
    listen_pid: Box<[u8; LISTEN_PID_LEN]>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// How many listeners go to fds 3.. (the length `LISTEN_FDS` announces).
    listeners: usize,
}

impl ExecPlan {
    /// Builds the plan in the master, before fork. `base_env` is the environment the
    /// worker starts from (molt's own, plus `env = ...` settings); systemd's and molt's
    /// variables are set on top of it.
    pub fn new(
        spec: &ExecSpec,
        who: ExecIdentity,
        protocols: &[Protocol],
        chdir: Option<&Path>,
        base_env: &[(OsString, OsString)],
    ) -> Result<ExecPlan, String> {
        let notify_socket = notify_name(who.master_pid, who.generation);
        let names: Vec<&str> = protocols.iter().map(|p| p.name()).collect();
        let ours: Vec<(&str, String)> = vec![
            ("LISTEN_FDS", protocols.len().to_string()),
            ("LISTEN_FDNAMES", names.join(":")),
            ("NOTIFY_SOCKET", notify_socket.clone()),
            ("MOLT_WORKER_ID", who.id.to_string()),
            ("MOLT_WORKER_GENERATION", who.generation.to_string()),
            ("MOLT_MASTER_PID", who.master_pid.to_string()),
        ];
        let mut env: Vec<(OsString, OsString)> = base_env
            .iter()
            .filter(|(k, _)| !is_reserved(k) && !ours.iter().any(|(o, _)| k == o))
            .cloned()
            .collect();
        env.extend(ours.iter().map(|(k, v)| (k.into(), v.into())));
        let program = resolve_program(&spec.argv[0], &env, chdir);
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut listen_pid = Box::new([0u8; LISTEN_PID_LEN]);
        listen_pid[..LISTEN_PID_PREFIX.len()].copy_from_slice(LISTEN_PID_PREFIX);
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<_> = envp.iter().map(|e| e.as_ptr()).collect();
        envp_ptrs.push(listen_pid.as_ptr().cast());
        envp_ptrs.push(std::ptr::null());
        let failure_prefix = format!(
            "molt: worker {}: cannot execute {}: errno ",
            who.id,
            program.display()
        )
        .into_bytes();
        Ok(ExecPlan {
            meta: ExecMeta {
                notify_socket,
                stop_signal: spec.stop_signal,
                notify: spec.notify,
                ready_delay: spec.ready_delay,
            },
            program: cstring(program.as_os_str().as_bytes())?,
            failure_prefix,
            _argv: argv,
            _envp: envp,
            listen_pid,
            argv_ptrs,
            envp_ptrs,
            listeners: protocols.len(),
        })
    }

    /// In the child, after the common setup: hands over the listeners and execs. Returns
    /// only if the exec failed, with the exit code that means "the app cannot load".
    pub fn exec(&mut self, listeners: &[RawFd]) -> i32 {
        reset_all_signals();
        if place_listeners(listeners).is_err() {
            self.report_failure(errno());
            return super::EXIT_APP_LOAD;
        }
        close_from(3 + self.listeners as u32);
        write_pid(&mut self.listen_pid[LISTEN_PID_PREFIX.len()..]);
        // SAFETY: every pointer refers to a NUL-terminated buffer owned by `self`, and
        // both arrays end with a null pointer.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        self.report_failure(errno());
        super::EXIT_APP_LOAD
    }

    /// Writes "cannot execute PROGRAM: errno N" to stderr without allocating.
    fn report_failure(&self, err: i32) {
        let mut digits = [0u8; 24];
        let n = format_u64(err.unsigned_abs() as u64, &mut digits);
        for part in [&self.failure_prefix[..], &digits[..n], b"\n"] {
            // SAFETY: writing a valid buffer to stderr.
            unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
        }
    }
}

/// Variables that describe molt's own activation, never passed on as they are.
fn is_reserved(k: &OsStr) -> bool {
    matches!(
        k.as_bytes(),
        b"LISTEN_FDS" | b"LISTEN_PID" | b"LISTEN_FDNAMES" | b"NOTIFY_SOCKET"
    )
}

fn cstring(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| "a NUL byte in the command or the environment".to_string())
}

/// `execvp`'s search, done before fork: a name without `/` is looked up in the worker's
/// `PATH` (relative entries start at `chdir`); otherwise the path is used as given.
fn resolve_program(arg0: &str, env: &[(OsString, OsString)], chdir: Option<&Path>) -> PathBuf {
    if arg0.contains('/') {
        return PathBuf::from(arg0);
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let base = chdir.map(Path::to_path_buf).unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(arg0))
        .find(|cand| is_executable(&base.join(cand)))
        .unwrap_or_else(|| PathBuf::from(arg0))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Every catchable signal back to its default disposition (SIGPIPE included: Rust
/// ignores it in the master), and an empty mask: the exec'd app starts as if from a shell.
fn reset_all_signals() {
    /// The kernel's `struct sigaction` (x86_64 and aarch64 layout).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The raw system call, because glibc's sigaction refuses the two real-time
        // signals it reserves (32, 33), which an ancestor may have left ignored.
        // SAFETY: a valid struct for the kernel; invalid numbers fail harmlessly.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty set, installed as the whole mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Moves the listeners to 3, 4, ... in order, without CLOEXEC. Copies go above the
/// target range first, so a listener already sitting at a target number is not lost.
fn place_listeners(listeners: &[RawFd]) -> Result<(), ()> {
    let n = listeners.len() as RawFd;
    let mut temps = [0 as RawFd; 64];
    if listeners.len() > temps.len() {
        return Err(());
    }
    for (i, fd) in listeners.iter().enumerate() {
        // SAFETY: duplicating an fd we hold; the copy is close-on-exec.
        let t = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3 + n) };
        if t < 0 {
            return Err(());
        }
        temps[i] = t;
    }
    for (i, t) in temps[..listeners.len()].iter().enumerate() {
        // SAFETY: dup2 onto a fixed number; the new fd has CLOEXEC cleared.
        if unsafe { libc::dup2(*t, 3 + i as RawFd) } < 0 {
            return Err(());
        }
    }
    Ok(())
}

/// Closes every fd from `first` up (the temporaries included): only stdio and the
/// listeners cross the exec.
pub(crate) fn close_from(first: u32) {
    // SAFETY: close_range(first, ~0, 0) closes fds this process will not use again.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close one by one up to the fd limit.
    // SAFETY: sysconf has no preconditions; closing unused fds.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(1024, 1 << 20) as i32;
    for fd in first as i32..max {
        unsafe { libc::close(fd) };
    }
}

/// Writes this process's pid as decimal digits plus NUL into `buf`.
fn write_pid(buf: &mut [u8]) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    let n = format_u64(pid, buf);
    buf[n] = 0;
}

/// Formats `v` in decimal at the start of `out`; returns the length. No allocation.
fn format_u64(v: u64, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 20];
    let digits = super::http::decimal(v, &mut tmp);
    out[..digits.len()].copy_from_slice(digits);
    digits.len()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The environment an exec'd worker starts from: molt's own, then `env = ...` settings.
pub fn base_env(extra: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (k, v) in extra {
        env.retain(|(ek, _)| ek.as_bytes() != k.as_bytes());
        env.push((k.into(), v.into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str]) -> ExecSpec {
        ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            notify: true,
            ready_delay: Duration::from_secs(1),
            stop_signal: libc::SIGTERM,
        }
    }

    #[test]
    fn plan_sets_systemd_and_molt_variables() {
        let who = ExecIdentity {
            id: 2,
            generation: 7,
            master_pid: 100,
        };
        let env = vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LISTEN_FDS".into(), "9".into()),
            ("NOTIFY_SOCKET".into(), "/run/systemd/notify".into()),
        ];
        let plan = ExecPlan::new(
            &spec(&["sh", "-c", "true"]),
            who,
            &[Protocol::Http, Protocol::Uwsgi],
            None,
            &env,
        )
        .unwrap();
        let vars: Vec<String> = plan
            ._envp
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert!(vars.contains(&"LISTEN_FDS=2".to_string()));
        assert!(vars.contains(&"LISTEN_FDNAMES=http:uwsgi".to_string()));
        assert!(vars.contains(&"NOTIFY_SOCKET=@molt-100-7".to_string()));
        assert!(vars.contains(&"MOLT_WORKER_ID=2".to_string()));
        assert_eq!(
            vars.iter().filter(|v| v.starts_with("LISTEN_FDS=")).count(),
            1
        );
        assert!(!vars.iter().any(|v| v.contains("/run/systemd")));
        assert!(plan.program.to_bytes().ends_with(b"/sh"));
        assert_eq!(plan.argv_ptrs.len(), 4);
        assert_eq!(plan.envp_ptrs.len(), vars.len() + 2);
    }

    #[test]
    fn formats_numbers_without_allocating() {
        let mut b = [0u8; 24];
        let n = format_u64(40312, &mut b);
        assert_eq!(&b[..n], b"40312");
        let n = format_u64(0, &mut b);
        assert_eq!(&b[..n], b"0");
        let mut pid = [0u8; 24];
        write_pid(&mut pid);
        let end = pid.iter().position(|&c| c == 0).unwrap();
        let text = std::str::from_utf8(&pid[..end]).unwrap();
        assert_eq!(text, std::process::id().to_string());
    }
}
