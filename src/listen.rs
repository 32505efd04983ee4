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

use crate::config::{ListenAddr, Listener, Protocol};
use crate::error::Error;

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
    /// The socket file we created, removed at exit.
    pub unix_path: Option<PathBuf>,
}

impl Bound {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Binds every configured listener, or fails naming the first that cannot be bound.
pub fn bind_all(listeners: &[Listener], backlog: i32) -> Result<Vec<Bound>, Error> {
    listeners.iter().map(|l| bind_one(l, backlog)).collect()
}

fn bind_one(l: &Listener, backlog: i32) -> Result<Bound, Error> {
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
            (fd, path.display().to_string(), Some(path.clone()))
        }
    };
    Ok(Bound {
        fd,
        requested,
        local,
        protocol: l.protocol,
        unix_path,
    })
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
