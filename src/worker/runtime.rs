//! The worker runtime: an epoll loop per worker thread serving HTTP/1.1 to an [`App`].
//!
//! Every thread accepts on the inherited listeners (EPOLLEXCLUSIVE, so one connection
//! wakes one thread) and serves its own connections: keep-alive, pipelining, streamed
//! bodies. A request runs to completion on its thread, as in uWSGI's sync workers: with
//! `threads = N`, N requests run at once. Connections that wait are parked in epoll,
//! so one thread serves many keep-alive connections without starving any.
//!
//! Graceful stop (SIGTERM, or the worker's own memory check): stop accepting, finish the
//! request in flight and answer it with `Connection: close`, half-close idle
//! connections cleanly, exit when none is left.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, error, warn};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::EventFd;
use nix::sys::socket::{shutdown, Shutdown, SockaddrLike, SockaddrStorage};

use super::body::BodyReader;
use super::http::{self, BodyFraming, HeadInfo, HttpError, Limits, MAX_HEADERS};
use super::io::{read_into_spare, write_all};
use super::uwsgi;
use super::WorkerShared;
use crate::app::{Body, Request, Response, Version};
use crate::config::Protocol;

use crate::scoreboard::mono_ns;

mod batch;

const LISTENER: u64 = 1 << 40;
const WAKE: u64 = 2 << 40;
const SIGNAL: u64 = 3 << 40;
const CONN_MASK: u64 = (1 << 40) - 1;

/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// A body up to this size is gathered in the event loop before the app is called, so a
/// slow client cannot hold a thread hostage for small uploads.
const GATHER_BODY: u64 = 64 * 1024;
/// Unread body bytes the runtime will skip to keep a connection alive.
const SKIP_BODY: u64 = 1024 * 1024;
/// How long a write or body read may wait for progress.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a half-closed idle connection lingers for the client's FIN.
const LINGER: Duration = Duration::from_secs(2);
/// While draining, how long a just-accepted connection may take to send its first
/// request (it was accepted for this worker, so only this worker can serve it).
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);
/// While draining, how long a keep-alive connection that has been served stays open
/// for one last request.
///
/// Such a connection is often "idle" only for the microseconds between a response and
/// the client's next request: a FIN sent at once crosses that request, which the client
/// then sees fail (wrk counted ~9 read errors per recycle at max-requests=100 with 16
/// connections). Waiting this long lets the request in, and it is answered with
/// `Connection: close`; a connection that stays quiet is then half-closed.
const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(500);

/// What a read on a readable connection brought.
enum Arrived {
    /// Bytes to serve.
    Bytes,
    /// Nothing to serve (a spurious wakeup, or a half-closed connection's leftovers).
    Nothing,
    /// The client closed, or the read failed: close the connection.
    Closed,
}

/// One client connection.
struct Conn {
    fd: OwnedFd,
    /// The front protocol of the listener it came from.
    protocol: Protocol,
    remote: Option<SocketAddr>,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Monotonic ns after which the connection is closed (header or idle timeout).
    deadline: u64,
    /// We sent FIN (drain) and wait for the client's.
    half_closed: bool,
    /// Close after the current responses are written.
    close_after: bool,
    /// `100 Continue` was already sent for the head at the start of `rbuf`.
    continue_sent: bool,
    /// Requests answered on this connection.
    served: u64,
}

/// The connections of one thread, by epoll token: a slab, so the lookup on every event
/// is an index rather than a hash (the HashMap's remove and re-insert per request showed
/// in profiles). A token is the slot index plus a generation bumped on release, so a
/// stale event for a closed connection never reaches one that reuses its slot.
#[derive(Default)]
struct Conns {
    slots: Vec<ConnSlot>,
    free: Vec<usize>,
    /// Slots in use, taken ones included.
    live: usize,
}

#[derive(Default)]
struct ConnSlot {
    generation: u64,
    used: bool,
    conn: Option<Conn>,
}

const INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

impl Conns {
    /// Claims an empty slot and returns its token.
    fn reserve(&mut self) -> u64 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(ConnSlot::default());
            self.slots.len() - 1
        });
        let slot = &mut self.slots[index];
        slot.used = true;
        self.live += 1;
        (slot.generation << INDEX_BITS | index as u64) & CONN_MASK
    }

    fn slot(&mut self, token: u64) -> Option<&mut ConnSlot> {
        let slot = self.slots.get_mut((token & INDEX_MASK) as usize)?;
        let generation = (token & CONN_MASK) >> INDEX_BITS;
        (slot.used && slot.generation == generation).then_some(slot)
    }

    /// Moves the connection out; its slot stays claimed until `restore` or `release`.
    fn take(&mut self, token: u64) -> Option<Conn> {
        self.slot(token)?.conn.take()
    }

    fn restore(&mut self, token: u64, conn: Conn) {
        if let Some(slot) = self.slot(token) {
            slot.conn = Some(conn);
        }
    }

    /// Frees the slot of a connection already taken out.
    fn release(&mut self, token: u64) {
        let index = (token & INDEX_MASK) as usize;
        if let Some(slot) = self.slot(token) {
            slot.used = false;
            slot.conn = None;
            slot.generation = (slot.generation + 1) & (CONN_MASK >> INDEX_BITS);
            self.free.push(index);
            self.live -= 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.slots.iter_mut().filter_map(|s| s.conn.as_mut())
    }

    /// Tokens of the connections whose deadline is past.
    fn expired(&self, now: u64) -> Vec<u64> {
        let token = |i: usize, s: &ConnSlot| (s.generation << INDEX_BITS | i as u64) & CONN_MASK;
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.as_ref().is_some_and(|c| c.deadline <= now))
            .map(|(i, s)| token(i, s))
            .collect()
    }
}

/// What a signalfd or wake event asks of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    None,
    Graceful,
    Immediate,
}

/// One thread's loop.
pub struct Runtime<'s> {
    shared: &'s WorkerShared,
    thread: usize,
    epoll: Epoll,
    wake: Arc<EventFd>,
    conns: Conns,
    /// Monotonic ns, refreshed after each wait and each request: deadlines need no
    /// more precision than that, and it saves a clock read per deadline.
    now: u64,
    draining: bool,
    /// The listeners are in this thread's epoll (see `balance_accepts`).
    accepting: bool,
    date: DateCache,
    limits: Limits,
    /// The signalfd, on the main thread only.
    signal_fd: Option<&'s nix::sys::signalfd::SignalFd>,
    /// Reused for each request log line and route name (no allocation per request).
    logbuf: Vec<u8>,
    routebuf: Vec<u8>,
    /// The connections one wait reported readable (reused: no allocation per wait).
    readable: Vec<u64>,
}

/// What [`Runtime::observe`] needs to know about one finished request.
struct Done<'a> {
    method: &'a str,
    target: &'a str,
    info: &'a HeadInfo,
    headers: &'a [httparse::Header<'a>],
    remote: Option<SocketAddr>,
    written: Option<(u16, u64)>,
    micros: u64,
    before: Option<(u64, u64)>,
}

impl<'s> Runtime<'s> {
    /// Sets up the thread's epoll with the listeners, its wake eventfd and (main thread) signals.
    pub fn new(
        shared: &'s WorkerShared,
        thread: usize,
        wake: Arc<EventFd>,
        signal_fd: Option<&'s nix::sys::signalfd::SignalFd>,
    ) -> io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        for (i, l) in shared.listeners.iter().enumerate() {
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
            epoll.add(borrow(*l), EpollEvent::new(flags, LISTENER | i as u64))?;
        }
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        if let Some(sfd) = signal_fd {
            epoll.add(sfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, SIGNAL))?;
        }
        let limits = Limits {
            max_head: shared.limits.buffer_size,
            max_body: shared.limits.limit_post,
        };
        Ok(Runtime {
            shared,
            thread,
            epoll,
            wake,
            conns: Conns::default(),
            now: mono_ns(),
            draining: false,
            accepting: true,
            date: DateCache::default(),
            limits,
            signal_fd,
            logbuf: Vec::with_capacity(256),
            routebuf: Vec::with_capacity(64),
            readable: Vec::with_capacity(256),
        })
    }

    /// Runs until drained (returns) or told to stop at once (returns `Stop::Immediate`).
    pub fn run(&mut self) -> io::Result<Stop> {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut last_sweep = mono_ns();
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(500u16)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e.into()),
            };
            self.date.refresh();
            self.now = mono_ns();
            let mut readable = std::mem::take(&mut self.readable);
            readable.clear();
            for ev in &events[..n] {
                let token = ev.data();
                if token & !CONN_MASK == 0 {
                    readable.push(token); // served together below (see `batch`)
                } else if let Stop::Immediate = self.dispatch(token)? {
                    return Ok(Stop::Immediate);
                }
            }
            self.serve_ready(&readable);
            self.readable = readable;
            if !self.draining && self.shared.draining.load(Relaxed) {
                self.begin_drain();
            }
            self.balance_accepts();
            let now = self.now;
            if now - last_sweep > 250_000_000 {
                self.sweep(now);
                last_sweep = now;
            }
            if self.draining && self.conns.is_empty() {
                return Ok(Stop::Graceful);
            }
        }
    }

    fn dispatch(&mut self, token: u64) -> io::Result<Stop> {
        match token & !CONN_MASK {
            LISTENER => {
                if !self.draining {
                    self.accept_one((token & CONN_MASK) as usize);
                }
            }
            WAKE => {
                let _ = self.wake.read();
            }
            SIGNAL => return Ok(self.on_signal()),
            _ => self.on_readable(token),
        }
        Ok(Stop::None)
    }

    fn on_signal(&mut self) -> Stop {
        let Some(sfd) = self.signal_fd else {
            return Stop::None;
        };
        let mut stop = Stop::None;
        while let Ok(Some(info)) = sfd.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGTERM => stop = stop.max_with(Stop::Graceful),
                libc::SIGINT | libc::SIGQUIT => stop = Stop::Immediate,
                libc::SIGUSR2 => self.reopen_log(),
                _ => {}
            }
        }
        if stop == Stop::Graceful {
            self.shared.request_drain();
        }
        stop
    }

    /// SIGUSR2 from the master (which reopened the file first): point stderr at the new file.
    fn reopen_log(&self) {
        let Some(path) = &self.shared.logto else {
            return;
        };
        // The app's helper (a Python child) writes to the same log: it reopens it too.
        for pid in self.shared.app.helper_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGUSR2,
            );
        }
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        match opened {
            // SAFETY: dup2 of a valid fd onto stderr.
            Ok(f) => unsafe {
                libc::dup2(f.as_raw_fd(), 2);
            },
            Err(e) => warn!("cannot reopen {}: {e}", path.display()),
        }
    }

    /// Accepts one connection per readable event (as nginx without `multi_accept`).
    ///
    /// The listener is level-triggered, so a connection left in the queue wakes a thread
    /// again, often one of another worker that is idle. Taking a whole batch instead
    /// lets one worker grab every connection that arrives together (e.g. the 8 a
    /// recycled worker's clients reopen at once) and leaves its sibling with none: with
    /// --max-requests 100 and 16 connections that cost 30% of the throughput.
    fn accept_one(&mut self, index: usize) {
        let listener = self.shared.listeners[index];
        let protocol = self
            .shared
            .protocols
            .get(index)
            .copied()
            .unwrap_or(Protocol::Http);
        loop {
            // A connection is served inline right after accept, so a drain can start
            // inside this loop: stop accepting at once.
            if self.shared.draining.load(Relaxed) {
                return;
            }
            match accept_with_peer(listener) {
                Ok((fd, remote)) => return self.add_conn(fd, remote, protocol),
                Err(Errno::EAGAIN | Errno::ECONNABORTED) => return,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    // EMFILE and friends: back off until the next event instead of spinning.
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn add_conn(&mut self, fd: OwnedFd, remote: Option<SocketAddr>, protocol: Protocol) {
        let token = self.conns.reserve();
        if let Err(e) = self.epoll.add(
            fd.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token),
        ) {
            warn!("cannot watch a new connection: {e}");
            self.conns.release(token);
            return;
        }
        let deadline = self.now + self.shared.limits.header_timeout.as_nanos() as u64;
        let conn = Conn {
            fd,
            protocol,
            remote,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            deadline,
            half_closed: false,
            close_after: false,
            continue_sent: false,
            served: 0,
        };
        self.conns.restore(token, conn);
        self.shared.slot().open_conns.fetch_add(1, Relaxed);
        self.shared.thread_conns[self.thread].fetch_add(1, Relaxed);
        // Data often arrives with the connection: serve it now rather than after another wait.
        self.on_readable(token);
    }

    fn on_readable(&mut self, token: u64) {
        let Some(mut conn) = self.conns.take(token) else {
            return;
        };
        let keep = self.read_and_serve(&mut conn);
        if keep {
            self.conns.restore(token, conn);
        } else {
            self.conns.release(token);
            self.close(conn);
        }
    }

    /// Returns false when the connection must be closed.
    fn read_and_serve(&mut self, conn: &mut Conn) -> bool {
        match self.read_more(conn) {
            Arrived::Closed => false,
            Arrived::Nothing => true,
            Arrived::Bytes => self.serve_buffered(conn),
        }
    }

    /// Reads what the client sent into the connection's buffer.
    fn read_more(&mut self, conn: &mut Conn) -> Arrived {
        if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 4 {
            conn.rbuf.reserve(READ_CHUNK);
        }
        let start = conn.rbuf.len();
        // Into the spare capacity: zero-filling 16 KiB before every read was 2% of a
        // worker's CPU (memset, the top user-space symbol in perf).
        match read_into_spare(conn.fd.as_raw_fd(), &mut conn.rbuf) {
            Ok(Some(0)) | Err(_) => return Arrived::Closed,
            Ok(None) => return Arrived::Nothing,
            Ok(Some(_)) => {}
        }
        if conn.half_closed {
            // We already said goodbye; discard what arrives and wait for the FIN.
            conn.rbuf.clear();
            return Arrived::Nothing;
        }
        if start == 0 {
            conn.deadline = self.now + self.shared.limits.header_timeout.as_nanos() as u64;
        }
        Arrived::Bytes
    }

    /// Serves every complete request in the buffer; returns false to close.
    fn serve_buffered(&mut self, conn: &mut Conn) -> bool {
        let mut pos = 0;
        let mut open = true;
        while open && pos < conn.rbuf.len() && !conn.close_after {
            match self.serve_one(conn, pos) {
                Ok(Some(next)) => pos = next,
                Ok(None) => break,
                Err(_) => open = false,
            }
        }
        conn.rbuf.drain(..pos);
        if !conn.wbuf.is_empty() {
            let res = write_all(conn.fd.as_raw_fd(), &conn.wbuf, IO_TIMEOUT);
            conn.wbuf.clear();
            open &= res.is_ok();
        }
        if conn.rbuf.is_empty() {
            let now = self.now;
            conn.deadline = now + self.shared.limits.keepalive_timeout.as_nanos() as u64;
            if self.draining {
                // Kept alive by a response decided before the drain began (another thread).
                conn.deadline = conn.deadline.min(now + DRAIN_IDLE_GRACE.as_nanos() as u64);
            }
        }
        open && !conn.close_after
    }

    /// Serves the request starting at `pos`: Ok(Some(next)) when done, Ok(None) when
    /// more bytes are needed, Err when the connection must close.
    fn serve_one(&mut self, conn: &mut Conn, pos: usize) -> Result<Option<usize>, ()> {
        if conn.protocol == Protocol::Uwsgi {
            return self.serve_uwsgi(conn, pos);
        }
        let Conn {
            rbuf,
            wbuf,
            fd,
            remote,
            close_after,
            continue_sent,
            served,
            ..
        } = conn;
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (req, info) = match http::parse_head(&rbuf[pos..], &mut storage, self.limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.reject(wbuf, e);
                *close_after = true;
                return Ok(Some(rbuf.len()));
            }
        };
        let body_start = pos + info.head_len;
        let buffered = rbuf.len() - body_start;
        if let http::Framing::Length(n) = info.framing {
            if (buffered as u64) < n && n <= GATHER_BODY {
                if info.expect_continue && !*continue_sent {
                    *continue_sent = true;
                    if write_all(fd.as_raw_fd(), b"HTTP/1.1 100 Continue\r\n\r\n", IO_TIMEOUT)
                        .is_err()
                    {
                        return Err(());
                    }
                }
                return Ok(None);
            }
        }
        let expect = info.expect_continue && !*continue_sent;
        *continue_sent = false;
        let raw = fd.as_raw_fd();
        let mut body = BodyReader::new(info.framing, &rbuf[body_start..], raw, IO_TIMEOUT, expect);
        let method = req.method.unwrap_or("GET");
        let target = req.path.unwrap_or("/");
        let keep_alive = info.keep_alive && !self.shared.draining.load(Relaxed);
        let headers: &[httparse::Header<'_>] = req.headers;
        let before = self.shared.request_memory();
        let mut request = Request::new(method, target, info.version, headers, *remote, &mut body);
        let response = self.call_app(&mut request);
        let body_ok = body.skip_rest(SKIP_BODY) && body.failed.is_none();
        let keep_alive = keep_alive && body_ok && !wants_close(&response);
        let is_head = method == "HEAD";
        let written = self.write_response(wbuf, raw, &info, response, keep_alive, is_head);
        let micros = self.account(written);
        self.observe(&Done {
            method,
            target,
            info: &info,
            headers,
            remote: *remote,
            written,
            micros,
            before,
        });
        let next = body_start + body.buffered_used();
        let overflow = std::mem::take(&mut body.overflow);
        if !overflow.is_empty() {
            // Bytes of the next pipelined request read while de-chunking this body.
            rbuf.splice(next..next, overflow);
        }
        if written.is_none() {
            return Err(());
        }
        *served += 1;
        if !keep_alive {
            *close_after = true;
        }
        Ok(Some(next))
    }

    /// Serves one uwsgi packet (nginx `uwsgi_pass`) through the same app call,
    /// accounting and response writer as HTTP; the connection closes afterwards.
    fn serve_uwsgi(&mut self, conn: &mut Conn, pos: usize) -> Result<Option<usize>, ()> {
        let Conn {
            rbuf,
            wbuf,
            fd,
            close_after,
            served,
            ..
        } = conn;
        *close_after = true;
        let packet = match uwsgi::parse(&rbuf[pos..], self.limits.max_head) {
            Ok(Some(p)) => p,
            Ok(None) => {
                *close_after = false;
                return Ok(None);
            }
            Err(e) => {
                self.reject(wbuf, e);
                return Ok(Some(rbuf.len()));
            }
        };
        let framing = match packet.framing(self.limits.max_body) {
            Ok(f) => f,
            Err(e) => {
                self.reject(wbuf, e);
                return Ok(Some(rbuf.len()));
            }
        };
        let body_start = pos + packet.head_len;
        if let http::Framing::Length(n) = framing {
            if ((rbuf.len() - body_start) as u64) < n && n <= GATHER_BODY {
                *close_after = false;
                return Ok(None);
            }
        }
        let names = packet.headers();
        let headers: Vec<httparse::Header<'_>> = names
            .iter()
            .map(|(n, v)| httparse::Header {
                name: n,
                value: v.as_bytes(),
            })
            .collect();
        let target = packet.target();
        let method = packet.method();
        let raw = fd.as_raw_fd();
        let mut body = BodyReader::new(framing, &rbuf[body_start..], raw, IO_TIMEOUT, false);
        let mut request = Request::new(
            method,
            &target,
            packet.version(),
            &headers,
            packet.remote(),
            &mut body,
        );
        let response = self.call_app(&mut request);
        // The response goes back as HTTP/1.0 framing: no chunking (nginx reads the
        // uwsgi response until the connection closes).
        let info = HeadInfo {
            head_len: packet.head_len,
            version: Version::Http10,
            framing,
            keep_alive: false,
            expect_continue: false,
        };
        let written = self.write_response(wbuf, raw, &info, response, false, method == "HEAD");
        self.account(written);
        *served += 1;
        if written.is_none() {
            return Err(());
        }
        Ok(Some(rbuf.len()))
    }

    fn call_app(&self, request: &mut Request<'_>) -> Response {
        let core = &self.shared.slot().cores[self.thread];
        core.request_id.fetch_add(1, Relaxed);
        core.busy_since_ns.store(mono_ns(), Relaxed);
        let app = &self.shared.app;
        let res = catch_unwind(AssertUnwindSafe(|| app.call(request)));
        res.unwrap_or_else(|_| {
            error!(
                "app panicked on {} {}; answering 500",
                request.method(),
                request.target()
            );
            Response::text(500, &b"Internal Server Error\n"[..])
        })
    }

    /// Serialises a response; returns (status, bytes) or None when the client is gone.
    fn write_response(
        &self,
        wbuf: &mut Vec<u8>,
        fd: RawFd,
        info: &HeadInfo,
        response: Response,
        keep_alive: bool,
        is_head: bool,
    ) -> Option<(u16, u64)> {
        let Response {
            status,
            headers,
            body,
        } = response;
        let app_headers = headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()));
        let no_body = is_head || status == 204 || status == 304 || (100..200).contains(&status);
        let chunked = info.version == Version::Http11;
        let (framing, keep_alive) = match &body {
            Body::Empty => (BodyFraming::Length(0), keep_alive),
            Body::Bytes(bytes) => (BodyFraming::Length(bytes.len() as u64), keep_alive),
            // A stream without chunked coding (HTTP/1.0) is delimited by closing.
            Body::Stream(_) if chunked => (BodyFraming::Chunked, keep_alive),
            Body::Stream(_) => (BodyFraming::Close, false),
        };
        let start = wbuf.len();
        let date = self.date.get();
        http::write_head(
            wbuf,
            info.version,
            status,
            app_headers,
            framing,
            keep_alive,
            date,
        );
        match body {
            Body::Bytes(bytes) if !no_body => wbuf.extend_from_slice(&bytes),
            Body::Stream(chunks) => {
                let head_len = (wbuf.len() - start) as u64;
                write_all(fd, wbuf, IO_TIMEOUT).ok()?;
                wbuf.clear();
                let sent = if no_body {
                    0
                } else {
                    stream_body(fd, chunks, chunked).ok()?
                };
                return Some((status, head_len + sent));
            }
            _ => {}
        }
        Some((status, (wbuf.len() - start) as u64))
    }

    fn reject(&self, wbuf: &mut Vec<u8>, e: HttpError) {
        debug!("rejecting request: {}", e.reason());
        let body = format!("{}\n", e.reason());
        let status = e.status();
        http::write_head(
            wbuf,
            Version::Http11,
            status,
            std::iter::empty(),
            BodyFraming::Length(body.len() as u64),
            false,
            self.date.get(),
        );
        wbuf.extend_from_slice(body.as_bytes());
    }

    /// Updates the scoreboard after a request and raises recycle requests; returns the
    /// request's duration in microseconds.
    fn account(&mut self, written: Option<(u16, u64)>) -> u64 {
        let core = &self.shared.slot().cores[self.thread];
        let started = core.busy_since_ns.swap(0, Relaxed);
        self.now = mono_ns();
        let micros = self.now.saturating_sub(started) / 1000;
        self.count_request(written, micros);
        micros
    }

    /// The scoreboard's per-request counters, and the worker's own recycle check.
    fn count_request(&mut self, written: Option<(u16, u64)>, micros: u64) {
        let shared = self.shared;
        let slot = shared.slot();
        slot.busy_us.fetch_add(micros, Relaxed);
        slot.count_duration(micros);
        if let Some((status, bytes)) = written {
            slot.tx_bytes.fetch_add(bytes, Relaxed);
            if status >= 500 {
                slot.errors.fetch_add(1, Relaxed);
            }
        }
        let served = slot.requests.fetch_add(1, Relaxed) + 1;
        shared.after_request(served);
    }

    /// The optional per-request work: memory change, the route table, the log line.
    /// Off by default except the log line, which is one `write`.
    fn observe(&mut self, d: &Done<'_>) {
        let shared = self.shared;
        let memory = d.before.and_then(|(rss0, _)| {
            let (rss, vsz) = shared.request_memory()?;
            Some((rss, vsz, rss as i64 - rss0 as i64))
        });
        if shared.leak_finder {
            crate::observe::route::normalise(d.method, d.target, &mut self.routebuf);
            let growth = memory.map_or(0, |m| m.2.max(0) as u64);
            let key = crate::observe::route::hash(&self.routebuf);
            shared.slot().count_route(key, &self.routebuf, growth);
        }
        let Some(format) = &shared.log else { return };
        let header = |name: &str| {
            d.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let (status, size) = d.written.unwrap_or((0, 0));
        let record = crate::observe::reqlog::Record {
            method: d.method,
            uri: d.target,
            proto: d.info.version.as_str(),
            status,
            size,
            micros: d.micros,
            pid: shared.pid,
            wid: shared.id,
            core: self.thread,
            addr: d.remote,
            host: header("host"),
            uagent: header("user-agent"),
            referer: header("referer"),
            memory,
            date: self.date.get(),
            epoch: self.date.secs,
        };
        format.render(&record, &mut self.logbuf);
        crate::observe::reqlog::emit(&self.logbuf);
    }

    /// Stops accepting while this worker holds its share of the pool's connections (the
    /// limit the master publishes), and starts again below it: otherwise the worker that
    /// happens to be idle takes every client that reconnects at once after a recycle.
    fn balance_accepts(&mut self) {
        if self.draining {
            return;
        }
        let limit = self.shared.accept_limit();
        let held = self.shared.slot().open_conns.load(Relaxed);
        let want = (limit == 0 || held < limit) && self.shared.least_loaded(self.thread);
        if want == self.accepting {
            return;
        }
        self.accepting = want;
        if !want {
            // Someone else must listen now: siblings re-check at once, not at their timeout.
            self.shared.wake_siblings(self.thread);
        }
        for (i, l) in self.shared.listeners.iter().enumerate() {
            let res = if want {
                let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
                self.epoll
                    .add(borrow(*l), EpollEvent::new(flags, LISTENER | i as u64))
            } else {
                self.epoll.delete(borrow(*l))
            };
            if let Err(e) = res {
                warn!(
                    "cannot {} listener {i}: {e}",
                    if want { "watch" } else { "unwatch" }
                );
            }
        }
    }

    fn begin_drain(&mut self) {
        self.draining = true;
        if self.accepting {
            for l in &self.shared.listeners {
                let _ = self.epoll.delete(borrow(*l));
            }
            self.accepting = false;
        }
        let now = self.now;
        for conn in self.conns.iter_mut() {
            if !conn.rbuf.is_empty() || conn.half_closed {
                continue;
            }
            // Not a FIN yet: the next request may be on the way; `sweep` half-closes
            // the connection when its grace runs out.
            let grace = if conn.served == 0 {
                FIRST_REQUEST_GRACE
            } else {
                DRAIN_IDLE_GRACE
            };
            conn.deadline = conn.deadline.min(now + grace.as_nanos() as u64);
        }
    }

    /// Closes connections past their deadline; while draining, an idle connection whose
    /// grace ran out is half-closed instead, so the close never turns into a reset.
    fn sweep(&mut self, now: u64) {
        let expired = self.conns.expired(now);
        for token in expired {
            let Some(mut conn) = self.conns.take(token) else {
                continue;
            };
            if self.draining && conn.rbuf.is_empty() && !conn.half_closed {
                half_close(&mut conn, now);
                self.conns.restore(token, conn);
                continue;
            }
            self.conns.release(token);
            if !conn.rbuf.is_empty() && !conn.half_closed {
                debug!("closing a connection: request head not received in time");
            }
            self.close(conn);
        }
    }

    fn close(&mut self, conn: Conn) {
        let _ = self.epoll.delete(conn.fd.as_fd());
        self.shared.slot().open_conns.fetch_sub(1, Relaxed);
        self.shared.thread_conns[self.thread].fetch_sub(1, Relaxed);
        drop(conn);
    }
}

/// Sends FIN on an idle connection and gives the client a moment to close its side, so
/// our close never turns into a reset.
fn half_close(conn: &mut Conn, now: u64) {
    let _ = shutdown(conn.fd.as_raw_fd(), Shutdown::Write);
    conn.half_closed = true;
    conn.deadline = now + LINGER.as_nanos() as u64;
}

fn wants_close(r: &Response) -> bool {
    r.headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
}

fn stream_body(
    fd: RawFd,
    chunks: Box<dyn Iterator<Item = io::Result<Vec<u8>>> + Send>,
    chunked: bool,
) -> io::Result<u64> {
    let mut sent = 0u64;
    let mut frame = Vec::with_capacity(32);
    for chunk in chunks {
        let chunk = chunk?;
        if chunk.is_empty() {
            continue;
        }
        if chunked {
            frame.clear();
            frame.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            write_all(fd, &frame, IO_TIMEOUT)?;
        }
        write_all(fd, &chunk, IO_TIMEOUT)?;
        if chunked {
            write_all(fd, b"\r\n", IO_TIMEOUT)?;
        }
        sent += chunk.len() as u64;
    }
    if chunked {
        write_all(fd, b"0\r\n\r\n", IO_TIMEOUT)?;
    }
    Ok(sent)
}

impl Stop {
    fn max_with(self, other: Stop) -> Stop {
        match (self, other) {
            (Stop::Immediate, _) | (_, Stop::Immediate) => Stop::Immediate,
            (Stop::Graceful, _) | (_, Stop::Graceful) => Stop::Graceful,
            _ => Stop::None,
        }
    }
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: listener fds live for the whole worker process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// accept4 that also returns the peer's address, which saves a getpeername call per
/// connection (nix's accept4 discards the address).
fn accept_with_peer(listener: RawFd) -> Result<(OwnedFd, Option<SocketAddr>), Errno> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: addr and len are valid for writes of the sizes given.
    let raw = unsafe {
        libc::accept4(
            listener,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
            flags,
        )
    };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: accept4 returned a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: the kernel filled `len` bytes of addr (a unix peer yields no address).
    let peer = unsafe {
        SockaddrStorage::from_raw((&addr as *const libc::sockaddr_storage).cast(), Some(len))
    };
    Ok((fd, peer.and_then(|s| to_socket_addr(&s))))
}

fn to_socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*a));
    }
    s.as_sockaddr_in6().map(|a| SocketAddr::from(*a))
}

/// The Date header value, formatted once per second.
#[derive(Default)]
struct DateCache {
    secs: u64,
    text: String,
}

impl DateCache {
    fn refresh(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now != self.secs || self.text.is_empty() {
            self.secs = now;
            self.text = http::http_date(now);
        }
    }

    fn get(&self) -> &[u8] {
        self.text.as_bytes()
    }
}
