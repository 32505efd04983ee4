//! Binding listeners. The master binds every listener once, before any fork; workers
//! inherit the same sockets, so a recycling worker never takes queued connections with
//! it (no per-worker SO_REUSEPORT queues to lose).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    bind, getsockname, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, SockaddrIn, SockaddrIn6, SockaddrStorage, UnixAddr,
};

use crate::config::{ListenAddr, Listener, Protocol, SocketOwner};
use crate::error::Error;

/// Default mode of the unix sockets molt creates: owner and group may connect, others not.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// Mode and owner applied to every unix socket molt creates (never to inherited ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketPerms {
    /// `chmod-socket`; `None` = [`DEFAULT_SOCKET_MODE`].
    pub mode: Option<u32>,
    /// `chown-socket`.
    pub owner: Option<SocketOwner>,
}

/// A bound, listening socket.
#[derive(Debug)]
pub struct Bound {
    /// The socket (non-blocking, close-on-exec).
    pub fd: OwnedFd,
    /// What the user asked for, for messages.
    pub requested: String,
    /// The actual local address (with the real port when 0 was asked).
    pub local: String,
    pub protocol: Protocol,
    /// The socket file we created and its (device, inode), removed at exit under
    /// `vacuum` only if the path still is that file.
    pub unix_path: Option<(PathBuf, (u64, u64))>,
    /// Handed over by systemd (socket activation): never unlinked, never re-bound.
    pub inherited: bool,
}

impl Bound {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Binds every configured listener, or fails naming the first that cannot be bound.
pub fn bind_all(
    listeners: &[Listener],
    backlog: i32,
    perms: SocketPerms,
) -> Result<Vec<Bound>, Error> {
    listeners
        .iter()
        .map(|l| bind_one(l, backlog, perms))
        .collect()
}

fn bind_one(l: &Listener, backlog: i32, perms: SocketPerms) -> Result<Bound, Error> {
    let requested = display(&l.addr);
    let wrap = |source: io::Error| Error::Bind {
        addr: requested.clone(),
        source,
    };
    let (fd, local, unix_path) = match &l.addr {
        ListenAddr::Tcp { host, port } => {
            let addr = resolve(host, *port).map_err(wrap)?;
            let fd = bind_tcp(addr, backlog).map_err(wrap)?;
            let local = local_addr(&fd).map_err(wrap)?;
            (fd, local, None)
        }
        ListenAddr::Unix(path) => {
            let fd = bind_unix(path, backlog).map_err(wrap)?;
            let inode = apply_perms(path, perms).map_err(wrap)?;
            (fd, path.display().to_string(), Some((path.clone(), inode)))
        }
    };
    Ok(Bound {
        fd,
        requested,
        local,
        protocol: l.protocol,
        unix_path,
        inherited: false,
    })
}

/// chown, then chmod, then verify with lstat: a socket whose mode or owner is not what
/// was asked fails start-up instead of being silently reachable by the wrong users.
/// Returns the socket file's (device, inode).
fn apply_perms(path: &Path, perms: SocketPerms) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if let Some(owner) = perms.owner {
        std::os::unix::fs::lchown(path, owner.uid, owner.gid)?;
    }
    let mode = perms.mode.unwrap_or(DEFAULT_SOCKET_MODE);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    let meta = std::fs::symlink_metadata(path)?;
    let owner_ok = perms.owner.is_none_or(|o| {
        o.uid.is_none_or(|u| u == meta.uid()) && o.gid.is_none_or(|g| g == meta.gid())
    });
    if meta.mode() & 0o777 != mode || !owner_ok {
        return Err(io::Error::other(format!(
            "socket mode/owner is {:o} {}:{} after chmod/chown, not what was configured",
            meta.mode() & 0o777,
            meta.uid(),
            meta.gid()
        )));
    }
    Ok((meta.dev(), meta.ino()))
}

/// Removes the unix sockets molt created, only if each path still is the socket molt
/// bound (same inode): never an inherited socket, never a successor's.
pub fn remove_created(listeners: &[Bound]) {
    use std::os::unix::fs::MetadataExt;
    for l in listeners.iter().filter(|l| !l.inherited) {
        let Some((path, (dev, ino))) = &l.unix_path else {
            continue;
        };
        let same =
            std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino);
        if !same {
            continue;
        }
        if let Err(e) = std::fs::remove_file(path) {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// The address as the user would write it.
pub fn display(a: &ListenAddr) -> String {
    match a {
        ListenAddr::Tcp { host, port } => format!("{host}:{port}"),
        ListenAddr::Unix(p) => p.display().to_string(),
    }
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("'{host}' resolves to no address"),
        )
    })
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    match addr {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
    }
    listen(&fd, backlog_of(backlog)?)?;
    Ok(fd)
}

fn backlog_of(n: i32) -> io::Result<Backlog> {
    Backlog::new(n).map_err(io::Error::from)
}

fn local_addr(fd: &OwnedFd) -> io::Result<String> {
    let ss: SockaddrStorage = getsockname(fd.as_raw_fd())?;
    if let Some(a) = ss.as_sockaddr_in() {
        return Ok(SocketAddr::from(*a).to_string());
    }
    if let Some(a) = ss.as_sockaddr_in6() {
        return Ok(SocketAddr::from(*a).to_string());
    }
    Ok(ss.to_string())
}

/// Binds a unix socket. A leftover file is replaced only when it is a socket nobody
/// answers on; a live socket or any other file is an error (never stolen).
fn bind_unix(path: &Path, backlog: i32) -> io::Result<OwnedFd> {
    remove_if_stale(path)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    // Bind under a umask that keeps the socket from being world-writable (0660).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o117));
    let res = bind(fd.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    res?;
    listen(&fd, backlog_of(backlog)?)?;
    Ok(fd)
}

fn remove_if_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "path exists and is not a socket; not removing it",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// A listening socket handed over by systemd (socket activation).
#[derive(Debug)]
pub struct Activated {
    pub fd: OwnedFd,
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=`), if any.
    pub name: Option<String>,
}

/// Binds the configured listeners, using an activated socket instead wherever one has
/// the same address. Activated sockets no listener asked for are served too, with the
/// uwsgi protocol when named `uwsgi` (`FileDescriptorName=uwsgi`), HTTP otherwise.
pub fn adopt_or_bind(
    listeners: &[Listener],
    activated: Vec<Activated>,
    backlog: i32,
    perms: SocketPerms,
) -> Result<Vec<Bound>, Error> {
    let mut spare: Vec<Option<Activated>> = activated.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for l in listeners {
        let found = spare
            .iter_mut()
            .find(|a| a.as_ref().is_some_and(|a| same_address(&a.fd, &l.addr)))
            .and_then(Option::take);
        out.push(match found {
            Some(a) => inherited(a, l.protocol, display(&l.addr))?,
            None => bind_one(l, backlog, perms)?,
        });
    }
    for a in spare.into_iter().flatten() {
        let protocol = match a.name.as_deref() {
            Some("uwsgi") => Protocol::Uwsgi,
            _ => Protocol::Http,
        };
        out.push(inherited(a, protocol, "systemd socket".to_string())?);
    }
    Ok(out)
}

fn inherited(a: Activated, protocol: Protocol, requested: String) -> Result<Bound, Error> {
    let local = local_addr(&a.fd).map_err(|source| Error::Bind {
        addr: requested.clone(),
        source,
    })?;
    Ok(Bound {
        fd: a.fd,
        requested: format!("{requested}, from systemd"),
        local,
        protocol,
        unix_path: None,
        inherited: true,
    })
}

/// Whether a socket is bound to the address a listener asks for.
fn same_address(fd: &OwnedFd, want: &ListenAddr) -> bool {
    let Ok(ss) = getsockname::<SockaddrStorage>(fd.as_raw_fd()) else {
        return false;
    };
    match want {
        ListenAddr::Tcp { host, port } => {
            let Ok(want) = resolve(host, *port) else {
                return false;
            };
            let have = ss
                .as_sockaddr_in()
                .map(|a| SocketAddr::from(*a))
                .or_else(|| ss.as_sockaddr_in6().map(|a| SocketAddr::from(*a)));
            have == Some(want)
        }
        ListenAddr::Unix(path) => ss
            .as_unix_addr()
            .and_then(|u| u.path())
            .is_some_and(|p| p == path),
    }
}
