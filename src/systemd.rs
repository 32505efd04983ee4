//! molt under systemd: socket activation (`LISTEN_FDS`) and readiness notification
//! (`NOTIFY_SOCKET`), without libsystemd: both are a few lines of documented protocol
//! (sd_listen_fds(3), sd_notify(3)).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use log::{info, warn};

use crate::listen::Activated;

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Takes the sockets systemd passed to this process, if `LISTEN_PID` names it. The
/// variables are removed either way, so no worker (or exec'd app) mistakes them for
/// its own; each socket becomes close-on-exec and non-blocking (the workers' epoll
/// loops need that; exec'd workers get fresh copies at fds 3..).
pub fn take_listen_fds() -> Vec<Activated> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // Single-threaded here (start of the master), so changing the environment is sound.
        std::env::remove_var(k);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Vec::new();
    };
    if pid.trim() != std::process::id().to_string() {
        warn!("LISTEN_FDS is set for pid {pid}, not for molt: ignoring it");
        return Vec::new();
    }
    let n: RawFd = count.trim().parse().unwrap_or(0);
    let names: Vec<&str> = names
        .as_deref()
        .map_or(Vec::new(), |n| n.split(':').collect());
    (0..n.max(0))
        .filter_map(|i| adopt(LISTEN_FDS_START + i, names.get(i as usize).copied()))
        .collect()
}

fn adopt(fd: RawFd, name: Option<&str>) -> Option<Activated> {
    // SAFETY: fcntl on an fd number; an fd that is not open fails with EBADF.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0 && {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            fl >= 0 && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) == 0
        }
    };
    if !ok || !is_listening_socket(fd) {
        warn!("LISTEN_FDS: fd {fd} is not a listening stream socket; ignoring it");
        return None;
    }
    info!("socket activation: adopting fd {fd}");
    Some(Activated {
        // SAFETY: systemd handed this fd to us; nothing else in molt owns it.
        fd: unsafe { OwnedFd::from_raw_fd(fd) },
        name: name.filter(|n| !n.is_empty()).map(str::to_string),
    })
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && v == 1
}

/// Sends sd_notify messages to the service manager, when it asked for them.
pub struct Notifier {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// Reads and removes `NOTIFY_SOCKET` (workers must not inherit it); `None` when molt
    /// does not run under a manager that wants notifications.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        std::env::remove_var("NOTIFY_SOCKET");
        match Self::connect(&path.to_string_lossy()) {
            Ok(n) => Some(n),
            Err(e) => {
                warn!(
                    "NOTIFY_SOCKET {}: {e}; not notifying",
                    path.to_string_lossy()
                );
                None
            }
        }
    }

    fn connect(path: &str) -> io::Result<Notifier> {
        use std::os::linux::net::SocketAddrExt;
        let addr = match path.strip_prefix('@') {
            Some(abstract_name) => {
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(path)?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one message (`READY=1\nSTATUS=...`); failures are logged, never fatal.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.socket.send_to_addr(msg.as_bytes(), &self.addr) {
            warn!("sd_notify failed: {e}");
        }
    }

    /// `RELOADING=1` with the monotonic timestamp systemd's notify-reload type requires.
    pub fn reloading(&self) {
        let usec = crate::scoreboard::mono_ns() / 1000;
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"
        ));
    }
}
