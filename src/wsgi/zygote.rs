//! The Python zygote: one interpreter per configuration, started by the master, that has
//! imported the adapter (and, unless `lazy-apps`, the app) and forks each worker's Python
//! child on request. A recycled worker then costs a fork (a few milliseconds) instead of
//! an interpreter start plus the app's import (80 ms for a hello world here, seconds
//! for a large Django project); it is what uWSGI does by loading the app in its master,
//! and gunicorn with `--preload`.
//!
//! The master never talks to the zygote: workers do, over one `SOCK_SEQPACKET`
//! socketpair whose client end every worker inherits. A request is one message (the
//! worker's pid, and by `SCM_RIGHTS` a lifeline pipe and the channel ends); the forked
//! child joins the worker's process group, says `K` with its pid on channel 0 and dies
//! when the lifeline closes. If the zygote is unreachable, the worker starts its child
//! itself as before (`WsgiApp::start`), so the zygote is a speed-up, never a new way to
//! fail.
//!
//! Lifecycle: a reload (SIGHUP, touch-reload) and SIGUSR1 build a new app factory, hence a
//! new zygote; dropping the old factory in the master sends the old zygote SIGTERM and it
//! exits at once: its children need nothing from it (the kernel reaps them, since the
//! zygote ignores SIGCHLD: reaping would make it pay for flushing their /proc entries,
//! seconds on a busy machine, while workers wait). A zygote that dies on its own
//! is restarted from the master's reap ([`reaped`]), unless it died within a second of
//! starting (then the workers fall back to direct spawns until the next reload).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::unistd::{getpid, Pid};

use crate::config::{GroupId, UserId};
use crate::pool::ExitKind;

/// The zygote's request socket, right after stdio; every other fd is closed.
const ZYGOTE_FD: RawFd = 3;

/// A zygote that dies sooner than this after its start is not restarted.
const MIN_UPTIME: Duration = Duration::from_secs(1);

/// The process settings the zygote shares with the workers (their children are its).
#[derive(Debug, Clone, Default)]
pub struct ZygoteSetup {
    pub chdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub uid: Option<UserId>,
    pub gid: Option<GroupId>,
    /// `logto`: the zygote and its children reopen it on SIGUSR2 (`MOLT_LOGTO`).
    pub logto: Option<PathBuf>,
}

/// Everything needed to (re)start the zygote.
pub struct Recipe {
    pub python: PathBuf,
    /// The adapter's app arguments (KIND TARGET CALLABLE MT MP NAME PORT [PATH...]).
    pub app_args: Vec<String>,
    pub lazy: bool,
    pub setup: ZygoteSetup,
}

/// The running zygote: its pid and the end the workers send to.
struct Running {
    pid: i32,
    client: OwnedFd,
    started: Instant,
}

/// A zygote shared by the factory of one configuration (cloned into every worker by fork).
pub struct Zygote {
    recipe: Recipe,
    running: Mutex<Option<Running>>,
    /// The master: only it stops the zygote (a worker's copy of this value is inert).
    owner: Pid,
}

/// Zygotes of live configurations, for [`reaped`]; and pids of retired ones.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    live: Vec::new(),
    retired: Vec::new(),
});

struct Registry {
    live: Vec<Weak<Zygote>>,
    retired: Vec<i32>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

impl Zygote {
    /// Starts a zygote in the master. `None` (logged) if it cannot start: the workers
    /// then spawn their Python children themselves.
    pub fn start(recipe: Recipe) -> Option<Arc<Zygote>> {
        let running = match spawn(&recipe) {
            Ok(r) => r,
            Err(e) => {
                warn!(
                    "python zygote: cannot start {} ({e}); workers start their own interpreter",
                    recipe.python.display()
                );
                return None;
            }
        };
        info!(
            "python zygote pid {} started ({}{})",
            running.pid,
            recipe.python.display(),
            if recipe.lazy {
                ", lazy-apps: the app loads in each child"
            } else {
                ", the app is imported once and forked"
            }
        );
        let z = Arc::new(Zygote {
            recipe,
            running: Mutex::new(Some(running)),
            owner: getpid(),
        });
        let mut reg = registry();
        reg.live.retain(|w| w.strong_count() > 0);
        reg.live.push(Arc::downgrade(&z));
        Some(z)
    }

    /// In a worker: the end to send fork requests to, if the zygote was running at fork.
    pub fn client_fd(&self) -> Option<RawFd> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.as_ref().map(|r| r.client.as_raw_fd())
    }

    /// The master reaped `pid`: restarts it if it was this zygote.
    fn reaped(&self, pid: i32, how: &ExitKind) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = running.as_ref().filter(|r| r.pid == pid) else {
            return false;
        };
        let lived = r.started.elapsed();
        *running = None;
        if lived < MIN_UPTIME {
            error!(
                "python zygote pid {pid} {how} {} ms after its start; not restarting it, \
                 workers start their own interpreter until the next reload",
                lived.as_millis()
            );
            return true;
        }
        error!("python zygote pid {pid} {how}; restarting it");
        match spawn(&self.recipe) {
            Ok(r) => {
                info!("python zygote pid {} started", r.pid);
                *running = Some(r);
            }
            Err(e) => error!("python zygote: cannot restart: {e}"),
        }
        true
    }
}

impl Drop for Zygote {
    /// In the master, the configuration this zygote served is gone: it forks no more
    /// (the children it forked live on with their workers).
    fn drop(&mut self) {
        if getpid() != self.owner {
            return;
        }
        let running = self.running.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.take() {
            registry().retired.push(r.pid);
            let _ = kill(Pid::from_raw(r.pid), Signal::SIGTERM);
        }
    }
}

/// SIGUSR2: every running zygote reopens the `logto` file (its children are told by
/// their workers).
pub fn reopen_logs() {
    let live: Vec<Arc<Zygote>> = registry().live.iter().filter_map(Weak::upgrade).collect();
    for z in live {
        let running = z.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.as_ref() {
            let _ = kill(Pid::from_raw(r.pid), Signal::SIGUSR2);
        }
    }
}

/// Called from the master's reap for every exited child: true if it was a zygote
/// (restarted if still in use), so the pool does not see it as an unknown process.
pub fn reaped(pid: i32, how: &ExitKind) -> bool {
    let (live, was_retired) = {
        let mut reg = registry();
        let retired = reg.retired.iter().position(|&p| p == pid);
        if let Some(i) = retired {
            reg.retired.swap_remove(i);
        }
        let live: Vec<Arc<Zygote>> = reg.live.iter().filter_map(Weak::upgrade).collect();
        (live, retired.is_some())
    };
    if was_retired {
        info!("python zygote pid {pid} of a previous configuration {how}");
        return true;
    }
    live.iter().any(|z| z.reaped(pid, how))
}

/// In a worker: asks the zygote for a child serving `chans`, tied to `lifeline` (the read
/// end of a pipe only this worker can write). The child's `K` frame follows on chans[0].
pub fn request_child(client: RawFd, lifeline: RawFd, chans: &[RawFd]) -> io::Result<()> {
    let mut fds = Vec::with_capacity(1 + chans.len());
    fds.push(lifeline);
    fds.extend_from_slice(chans);
    let pid = getpid().as_raw().to_string();
    let iov = [IoSlice::new(pid.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(client, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Starts the zygote process: `python -u -c ADAPTER molt-zygote FD LAZY APP...`, in its
/// own process group, dying with the master, with the workers' chdir, env and user.
fn spawn(recipe: &Recipe) -> io::Result<Running> {
    let (client, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(&recipe.python);
    cmd.arg("-u")
        .arg("-c")
        .arg(super::ADAPTER)
        .arg("molt-zygote")
        .arg(ZYGOTE_FD.to_string())
        .arg(if recipe.lazy { "1" } else { "0" })
        .args(&recipe.app_args)
        .envs(recipe.setup.env.iter().map(|(k, v)| (k, v)))
        .envs(recipe.setup.logto.iter().map(|p| ("MOLT_LOGTO", p)))
        .stdin(Stdio::null());
    if let Some(dir) = &recipe.setup.chdir {
        cmd.current_dir(dir);
    }
    let (uid, gid) = (recipe.setup.uid.clone(), recipe.setup.gid.clone());
    let master = getpid();
    // SAFETY: the master is single-threaded, so the closure (run between fork and exec)
    // cannot meet a lock held by another thread; it only makes process-level calls.
    unsafe {
        cmd.pre_exec(move || {
            super::tie_to(master, "the master died before the zygote started")?;
            // The first zygote starts while the master still blocks the signals it
            // handles (until its handlers are in place); a mask survives exec, and a
            // zygote (and its children) blocking SIGTERM or SIGUSR2 would ignore them.
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )?;
            nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            // Only stdio and the request socket: no listener, pipe or log of the master's.
            if fd != ZYGOTE_FD && libc::dup2(fd, ZYGOTE_FD) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::fcntl(ZYGOTE_FD, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            crate::worker::exec::close_from(ZYGOTE_FD as u32 + 1);
            crate::worker::privileges::drop_to(uid.as_ref(), gid.as_ref())
        })
    };
    let child = cmd.spawn()?;
    drop(theirs);
    // The master's reap loop collects the zygote (see `reaped`); `Child` neither waits
    // nor kills when dropped.
    Ok(Running {
        pid: child.id() as i32,
        client,
        started: Instant::now(),
    })
}
