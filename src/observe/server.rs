//! The stats server, served from the master's single-threaded loop.
//!
//! Its listening socket and clients join the master's `poll`; every socket is
//! non-blocking. A client gets its answer rendered once (plain mode: at connect, like
//! uWSGI; HTTP mode: once its request head is in), then the master writes what the
//! socket takes each turn. A client that has not finished within [`CLIENT_DEADLINE`]
//! is dropped, and at most [`MAX_CLIENTS`] are served at once, so a slow or stuck
//! reader costs the loop nothing but one fd.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{accept4, SockFlag};

use crate::config::{ListenAddr, Listener, Protocol};
use crate::error::Error;
use crate::listen::{bind_all, Bound, SocketPerms};

/// A client must be done (request read, answer written) within this long.
pub const CLIENT_DEADLINE: u64 = 5_000_000_000;
/// Clients served at once; more wait in the listen backlog.
pub const MAX_CLIENTS: usize = 64;
/// Largest HTTP request head read.
const MAX_HEAD: usize = 8192;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The uWSGI-layout JSON document.
    Json,
    /// Prometheus text.
    Metrics,
    /// The live page, or only its refreshing fragment.
    Page,
    Fragment,
    /// The leak finder's table as text.
    Leaks,
    NotFound,
}

/// An answer: content type and body.
pub type Answer = (&'static str, String);

struct Client {
    fd: OwnedFd,
    head: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    /// The answer is in `out`.
    answered: bool,
    deadline: u64,
}

/// The stats listener and its clients.
pub struct StatsServer {
    listener: Bound,
    http: bool,
    clients: Vec<Client>,
}

impl StatsServer {
    /// Binds the stats socket (before any worker is forked).
    pub fn bind(addr: &ListenAddr, http: bool) -> Result<StatsServer, Error> {
        let l = Listener {
            addr: addr.clone(),
            protocol: Protocol::Http,
        };
        let mut bound = bind_all(std::slice::from_ref(&l), 128, SocketPerms::default())?;
        let listener = bound.pop().ok_or(Error::Bind {
            addr: crate::listen::display(addr),
            source: std::io::Error::other("no socket"),
        })?;
        Ok(StatsServer {
            listener,
            http,
            clients: Vec::new(),
        })
    }

    pub fn bound(&self) -> &Bound {
        &self.listener
    }

    /// The fds to poll and what to wait for on each.
    pub fn poll_set(&self) -> Vec<(RawFd, PollFlags)> {
        let mut v = vec![(self.listener.raw(), PollFlags::POLLIN)];
        for c in &self.clients {
            let want = if c.answered {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            v.push((c.fd.as_raw_fd(), want));
        }
        v
    }

    /// Accepts, reads, answers and writes whatever is ready, without blocking.
    pub fn service(&mut self, now: u64, render: &mut dyn FnMut(Want) -> Answer) {
        self.accept(now);
        for c in &mut self.clients {
            if !c.answered {
                read_head(c);
                if let Some(want) = self.http.then(|| parse(&c.head)).flatten() {
                    c.out = http_answer(want, render(want));
                    c.answered = true;
                }
            } else if !self.http && c.out.is_empty() {
                c.out = render(Want::Json).1.into_bytes();
            }
        }
        self.clients.retain_mut(|c| {
            let ok = if c.answered { write_some(c) } else { true };
            ok && now < c.deadline && !(c.answered && c.sent >= c.out.len())
        });
    }

    fn accept(&mut self, now: u64) {
        while self.clients.len() < MAX_CLIENTS {
            match accept4(
                self.listener.raw(),
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(raw) => {
                    // SAFETY: accept4 returned a fresh fd that nothing else owns.
                    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                    self.clients.push(Client {
                        fd,
                        head: Vec::new(),
                        out: Vec::new(),
                        sent: 0,
                        // Plain mode answers at once (rendered in `service`).
                        answered: !self.http,
                        deadline: now + CLIENT_DEADLINE,
                    });
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

fn read_head(c: &mut Client) {
    let mut buf = [0u8; 2048];
    while c.head.len() < MAX_HEAD {
        // SAFETY: reading into a local buffer from a socket we own.
        let n = unsafe { libc::read(c.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        c.head.extend_from_slice(&buf[..n as usize]);
        if c.head.windows(4).any(|w| w == b"\r\n\r\n") {
            return;
        }
    }
}

/// The request's target, once the head is complete (or too large to wait for).
fn parse(head: &[u8]) -> Option<Want> {
    let complete = head.windows(4).any(|w| w == b"\r\n\r\n");
    if !complete && head.len() < MAX_HEAD {
        return None;
    }
    let text = String::from_utf8_lossy(head);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let html = text
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("accept:") && l.contains("text/html"));
    Some(route(target, html))
}

/// Maps a target to an answer. `/` serves JSON to tools (uwsgitop, Telegraf and
/// uwsgi_exporter fetch `/`) and the live page to browsers (which accept text/html).
pub fn route(target: &str, html: bool) -> Want {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/" if html => Want::Page,
        "/" | "/stats" | "/stats.json" => Want::Json,
        "/metrics" => Want::Metrics,
        "/live" if query.contains("fragment") => Want::Fragment,
        "/live" => Want::Page,
        "/leaks" => Want::Leaks,
        _ => Want::NotFound,
    }
}

fn http_answer(want: Want, (ctype, body): Answer) -> Vec<u8> {
    let status = if want == Want::NotFound {
        "404 Not Found"
    } else {
        "200 OK"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Writes what the socket takes; false when the client is gone.
fn write_some(c: &mut Client) -> bool {
    while c.sent < c.out.len() {
        let rest = &c.out[c.sent..];
        // SAFETY: writing an initialised buffer to a socket we own; MSG_NOSIGNAL so a
        // closed peer is an error, not SIGPIPE.
        let n = unsafe {
            libc::send(
                c.fd.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return Errno::last() == Errno::EAGAIN || Errno::last() == Errno::EINTR;
        }
        c.sent += n as usize;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/", false), Want::Json);
        assert_eq!(route("/", true), Want::Page);
        assert_eq!(route("/metrics", true), Want::Metrics);
        assert_eq!(route("/live?fragment=1", true), Want::Fragment);
        assert_eq!(route("/nope", false), Want::NotFound);
        assert_eq!(parse(b"GET /metrics HTTP/1.1\r\n"), None);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nAccept: text/html,*/*\r\n\r\n"),
            Some(Want::Page)
        );
    }
}
