//! Python WSGI apps: each worker runs a Python child and hands it every request.
//!
//! The worker's runtime keeps the socket, HTTP parsing, keep-alive, limits, accounting
//! and harakiri; the child (the stdlib-only [`ADAPTER`], run with the interpreter of
//! `home` or `python3` on PATH) imports the app once and answers requests sent over one
//! socketpair per runtime thread, in the framed protocol of [`protocol`]
//! (docs/python.md). The child is spawned inside the worker after fork, in the worker's
//! process group, with PDEATHSIG, so every way a worker dies takes its child along.

mod affinity;
mod channel;
mod once;
pub mod protocol;
pub mod zygote;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use log::{error, info, warn};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpid, getppid};

use crate::app::{App, Body, Request, Response};
use crate::config::WsgiSpec;
use crate::worker::AppFactory;
use channel::{Channel, Frame};
use once::OnceFlag;
pub use protocol::ServerDefaults;
use protocol::{kind, BadRequest};
pub use zygote::ZygoteSetup;
use zygote::{Recipe, Zygote};

/// The Python side of the gateway, shipped inside the binary.
pub const ADAPTER: &str = include_str!("adapter.py");

/// Largest request-body read served at once (a `READ` asks for at most this).
const MAX_READ: usize = 256 * 1024;

/// What the factory needs besides the spec.
#[derive(Debug, Clone)]
pub struct WsgiOptions {
    /// Runtime threads of a worker = socketpairs = Python threads.
    pub threads: usize,
    /// Workers in the pool (for `wsgi.multiprocess`).
    pub processes: usize,
    /// SERVER_NAME/SERVER_PORT without a Host header.
    pub defaults: ServerDefaults,
    /// What the zygote shares with the workers.
    pub setup: ZygoteSetup,
}

/// Builds the factory the workers call after fork. Called in the master, before fork:
/// it starts the configuration's zygote, and the "traceback printed once" flag must be
/// shared by every worker.
pub fn factory(spec: WsgiSpec, opts: WsgiOptions) -> AppFactory {
    let once = OnceFlag::new();
    let zygote = interpreter(&spec).ok().and_then(|python| {
        Zygote::start(Recipe {
            python,
            app_args: app_args(&spec, &opts),
            lazy: spec.lazy_apps,
            setup: opts.setup.clone(),
        })
    });
    Arc::new(
        move || match WsgiApp::start(&spec, &opts, zygote.as_deref()) {
            Ok(app) => Ok(Box::new(app) as Box<dyn App>),
            Err(why) if once.first() => Err(why),
            Err(_) => {
                Err("the app cannot be loaded (traceback printed by another worker above)".into())
            }
        },
    )
}

/// The channels and health of one worker's child, shared with streamed responses.
struct Shared {
    /// Idle channels; a call takes one and gives it back when its response is complete.
    idle: Mutex<Vec<Channel>>,
    /// Set once a channel broke: the child is dead or out of step with us.
    lost: AtomicBool,
}

/// A WSGI app served by a Python child of this worker.
pub struct WsgiApp {
    shared: Arc<Shared>,
    defaults: ServerDefaults,
    child: ChildProc,
    /// One runtime thread, one channel: batches may span a streamed response.
    single_channel: bool,
}

/// The Python child serving a worker.
enum ChildProc {
    /// Spawned by the worker; dies with it (PDEATHSIG). Kept so it stays ours.
    Spawned(Child),
    /// Forked by the zygote; dies when `_lifeline`, the only write end of its lifeline
    /// pipe, closes with this worker, however the worker ends.
    Forked { pid: i32, _lifeline: OwnedFd },
}

impl ChildProc {
    fn pid(&self) -> i32 {
        match self {
            ChildProc::Spawned(c) => c.id() as i32,
            ChildProc::Forked { pid, .. } => *pid,
        }
    }
}

/// Why a channel can no longer be used.
#[derive(Debug)]
enum Lost {
    Io(io::Error),
    Protocol(&'static str),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Io(e) => write!(f, "{e}"),
            Lost::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl From<io::Error> for Lost {
    fn from(e: io::Error) -> Self {
        Lost::Io(e)
    }
}

impl WsgiApp {
    /// Gets a Python child (forked by the zygote if there is one, else spawned here) and
    /// waits until it has loaded the app (or failed to).
    fn start(spec: &WsgiSpec, opts: &WsgiOptions, zygote: Option<&Zygote>) -> Result<Self, String> {
        if let Some(client) = zygote.and_then(Zygote::client_fd) {
            match Self::start_forked(client, spec, opts) {
                Ok(loaded) => return loaded,
                Err(why) => warn!(
                    "worker {}: no child from the python zygote ({why}); starting an interpreter",
                    getpid()
                ),
            }
        }
        Self::start_spawned(spec, opts)
    }

    /// Asks the zygote for a child. The outer `Err` means the zygote did not answer (the
    /// caller falls back to a spawn); the inner one is the app's import failure.
    fn start_forked(
        client: RawFd,
        spec: &WsgiSpec,
        opts: &WsgiOptions,
    ) -> Result<Result<Self, String>, String> {
        let (ours, theirs) = channel_pairs(opts.threads)?;
        let (lifeline_read, lifeline) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let fds: Vec<RawFd> = theirs.iter().map(AsRawFd::as_raw_fd).collect();
        zygote::request_child(client, lifeline_read.as_raw_fd(), &fds)
            .map_err(|e| format!("sending the request: {e}"))?;
        drop((theirs, lifeline_read));
        let mut channels: Vec<Channel> = ours.into_iter().map(Channel::new).collect();
        let ready = match await_ready(&mut channels[0]) {
            Ok(ready) => ready,
            Err(Some(traceback)) => return Ok(Err(traceback)),
            Err(None) => return Err("it closed the channel".into()),
        };
        let child = ChildProc::Forked {
            pid: ready.pid,
            _lifeline: lifeline,
        };
        Ok(Ok(Self::ready(channels, child, &ready, spec, opts)))
    }

    /// Spawns the child here (no zygote): a new interpreter that imports the app.
    fn start_spawned(spec: &WsgiSpec, opts: &WsgiOptions) -> Result<Self, String> {
        let python = interpreter(spec)?;
        let (ours, theirs) = channel_pairs(opts.threads)?;
        let mut cmd = adapter_command(&python, spec, opts, &theirs);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        drop(theirs);
        let mut channels: Vec<Channel> = ours.into_iter().map(Channel::new).collect();
        match await_ready(&mut channels[0]) {
            Ok(ready) => Ok(Self::ready(
                channels,
                ChildProc::Spawned(child),
                &ready,
                spec,
                opts,
            )),
            Err(why) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                Err(why.unwrap_or_else(|| {
                    format!(
                        "{} exited ({status}) before the app was loaded",
                        python.display()
                    )
                }))
            }
        }
    }

    fn ready(
        channels: Vec<Channel>,
        child: ChildProc,
        ready: &Ready,
        spec: &WsgiSpec,
        opts: &WsgiOptions,
    ) -> Self {
        let how = match child {
            ChildProc::Spawned(_) => "spawned",
            ChildProc::Forked { .. } => "forked by the zygote",
        };
        info!(
            "worker {}: python child {} ready ({how}; {}, {})",
            getpid(),
            child.pid(),
            ready.version,
            describe(spec)
        );
        // The adapter serves the first channel on the child's main thread (tid = pid).
        let mut channels = channels;
        channels[0].peer_to_colocate = Some(child.pid());
        let shared = Arc::new(Shared {
            idle: Mutex::new(channels),
            lost: AtomicBool::new(false),
        });
        WsgiApp {
            shared,
            defaults: opts.defaults.clone(),
            child,
            single_channel: opts.threads <= 1,
        }
    }

    /// One request on one channel; the channel goes back to the pool when done.
    fn exchange(&self, mut chan: Channel, req: &mut Request<'_>) -> Result<Response, Lost> {
        let has_body = has_body(req);
        if let Err(BadRequest::NulInPath) =
            protocol::encode_request(&mut chan.out, req, has_body, &self.defaults)
        {
            chan.out.clear();
            self.shared.give_back(chan);
            return Ok(nul_in_path());
        }
        chan.flush()?;
        let (response, back) = self.receive(chan, req)?;
        if let Some(chan) = back {
            self.shared.give_back(chan);
        }
        Ok(response)
    }

    /// Reads the response to `req` (its request frame was sent). The channel comes back
    /// unless a streamed response took it (it returns to the pool when the stream ends).
    fn receive(
        &self,
        mut chan: Channel,
        req: &mut Request<'_>,
    ) -> Result<(Response, Option<Channel>), Lost> {
        loop {
            let frame = chan.read_frame()?;
            match frame.kind {
                kind::READ => serve_read(&mut chan, &frame, req)?,
                kind::FULL => {
                    let res = full_response(chan.payload(&frame));
                    return Ok((res, Some(chan)));
                }
                kind::START => {
                    let head = protocol::parse_head(chan.payload(&frame));
                    let stream = ChildStream {
                        shared: self.shared.clone(),
                        chan: Some(chan),
                        awaiting_reply: false,
                    };
                    let res = match head {
                        Ok(h) => Response {
                            status: h.status,
                            headers: h.headers,
                            body: Body::Stream(Box::new(stream)),
                        },
                        Err(bad) => bad_head(bad),
                    };
                    return Ok((res, None));
                }
                kind::ERROR => {
                    let res = Response::text(500, &b"Internal Server Error\n"[..]);
                    return Ok((res, Some(chan)));
                }
                _ => {
                    return Err(Lost::Protocol(
                        "unexpected frame while waiting for a response",
                    ))
                }
            }
        }
    }

    /// Reads the responses to `reqs`, all sent in one write, in order.
    fn receive_batch(
        &self,
        chan: Channel,
        reqs: &mut [Request<'_>],
        respond: &mut dyn FnMut(usize, Response),
    ) {
        let mut chan = Some(chan);
        for (i, req) in reqs.iter_mut().enumerate() {
            // A streamed response took the channel and put it back in the pool when done;
            // with one runtime thread (see `batches`) nobody else can have taken it since.
            let Some(c) = chan.take().or_else(|| self.take_channel()) else {
                respond(i, bad_gateway()); // the child is lost
                continue;
            };
            match self.receive(c, req) {
                Ok((response, back)) => {
                    chan = back;
                    respond(i, response);
                }
                Err(lost) => {
                    self.shared.child_lost(&lost);
                    respond(i, bad_gateway());
                }
            }
        }
        if let Some(c) = chan {
            self.shared.give_back(c);
        }
    }

    /// An idle channel, its child thread moved next to us now and then (see
    /// [`affinity`]); `None` when the child is lost.
    fn take_channel(&self) -> Option<Channel> {
        if self.shared.lost.load(Relaxed) {
            return None;
        }
        let mut chan = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()?;
        if let Some(tid) = chan.peer_to_colocate {
            if chan.exchanges % affinity::EVERY == 0 {
                affinity::colocate(tid);
            }
            chan.exchanges += 1;
        }
        Some(chan)
    }
}

impl App for WsgiApp {
    fn call(&self, req: &mut Request<'_>) -> Response {
        let Some(chan) = self.take_channel() else {
            return bad_gateway();
        };
        match self.exchange(chan, req) {
            Ok(res) => res,
            Err(lost) => {
                self.shared.child_lost(&lost);
                bad_gateway()
            }
        }
    }

    /// One write carries every request to the child and its responses come back in order,
    /// each as soon as it is ready: the child works through the batch without waiting
    /// for the worker, so k requests cost about two hand-offs between the processes
    /// instead of 2k.
    fn call_many(&self, reqs: &mut [Request<'_>], respond: &mut dyn FnMut(usize, Response)) {
        let mut sent = 0;
        if !reqs.iter().any(has_body) {
            if let Some(mut chan) = self.take_channel() {
                sent = encode_prefix(&mut chan.out, reqs, &self.defaults);
                match chan.flush() {
                    Ok(()) => self.receive_batch(chan, &mut reqs[..sent], respond),
                    Err(e) => {
                        self.shared.child_lost(&Lost::Io(e));
                        (0..sent).for_each(|i| respond(i, bad_gateway()));
                    }
                }
            }
        }
        // What was not sent in the batch (a body, a NUL in a path, no channel): one by one.
        for (i, req) in reqs.iter_mut().enumerate().skip(sent) {
            respond(i, self.call(req));
        }
    }

    fn batches(&self) -> bool {
        // With one runtime thread the channel is ours across a streamed response in the
        // batch (it goes back to the pool and is taken again before anyone else can).
        self.single_channel
    }

    fn helper_pids(&self) -> Vec<i32> {
        vec![self.child.pid()]
    }
}

impl Shared {
    fn give_back(&self, chan: Channel) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(chan);
    }

    /// The child died or broke the protocol: this worker cannot serve any more. It
    /// drains (SIGTERM to itself: in-flight requests finish, idle connections close) and
    /// the master replaces it.
    fn child_lost(&self, why: &Lost) {
        if self.lost.swap(true, Relaxed) {
            return;
        }
        error!(
            "worker {}: lost the python child ({why}); draining so the master replaces this worker",
            getpid()
        );
        let _ = kill(getpid(), Signal::SIGTERM);
    }
}

/// A streamed response: `BODY` frames until `END`. Each chunk is acknowledged (`NEXT`)
/// only once the runtime asks for the next one, i.e. after it wrote this one to the
/// client, so the child never runs ahead of a slow client and a vanished client is
/// reported (`CANCEL`) to the app.
struct ChildStream {
    shared: Arc<Shared>,
    /// `None` once the response is complete and the channel is back in the pool.
    chan: Option<Channel>,
    /// The child sent a `BODY` and waits for `NEXT` or `CANCEL`.
    awaiting_reply: bool,
}

impl ChildStream {
    fn step(&mut self) -> Result<Option<Vec<u8>>, Lost> {
        let Some(chan) = self.chan.as_mut() else {
            return Ok(None);
        };
        if std::mem::take(&mut self.awaiting_reply) {
            protocol::push_frame(&mut chan.out, kind::NEXT, b"");
            chan.flush()?;
        }
        loop {
            let frame = chan.read_frame()?;
            match frame.kind {
                kind::BODY => {
                    self.awaiting_reply = true;
                    return Ok(Some(chan.payload(&frame).to_vec()));
                }
                kind::END => {
                    self.finish();
                    return Ok(None);
                }
                kind::ABORT => {
                    self.finish();
                    return Err(Lost::Protocol(
                        "the app failed while streaming (traceback above)",
                    ));
                }
                // The request body is gone once the response streams: read as its end.
                kind::READ => end_of_body(chan)?,
                _ => return Err(Lost::Protocol("unexpected frame in a streamed response")),
            }
        }
    }

    fn finish(&mut self) {
        if let Some(chan) = self.chan.take() {
            self.shared.give_back(chan);
        }
    }

    /// The runtime dropped the stream early (client gone, HEAD): tell the child, wait for
    /// its `END`, and only then reuse the channel.
    fn cancel(&mut self) -> Result<(), Lost> {
        let Some(chan) = self.chan.as_mut() else {
            return Ok(());
        };
        loop {
            if std::mem::take(&mut self.awaiting_reply) {
                protocol::push_frame(&mut chan.out, kind::CANCEL, b"");
                chan.flush()?;
            }
            let frame = chan.read_frame()?;
            match frame.kind {
                kind::BODY => self.awaiting_reply = true,
                kind::END | kind::ABORT => break,
                kind::READ => end_of_body(chan)?,
                _ => return Err(Lost::Protocol("unexpected frame while cancelling")),
            }
        }
        self.finish();
        Ok(())
    }
}

impl Iterator for ChildStream {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(chunk) => chunk.map(Ok),
            Err(Lost::Protocol(what)) if self.chan.is_none() => Some(Err(io::Error::other(what))),
            Err(lost) => {
                self.chan = None;
                self.shared.child_lost(&lost);
                Some(Err(io::Error::other(lost.to_string())))
            }
        }
    }
}

impl Drop for ChildStream {
    fn drop(&mut self) {
        if self.chan.is_some() {
            if let Err(lost) = self.cancel() {
                self.chan = None;
                self.shared.child_lost(&lost);
            }
        }
    }
}

/// Answers a `READ` with up to the asked bytes of the request body.
fn serve_read(chan: &mut Channel, frame: &Frame, req: &mut Request<'_>) -> Result<(), Lost> {
    let asked = chan
        .payload(frame)
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    let want = (asked.ok_or(Lost::Protocol("short READ frame"))? as usize).clamp(1, MAX_READ);
    let at = protocol::begin_frame(&mut chan.out, kind::DATA);
    let data_at = chan.out.len();
    chan.out.resize(data_at + want, 0);
    match req.body().read(&mut chan.out[data_at..]) {
        Ok(n) => {
            chan.out.truncate(data_at + n);
            protocol::end_frame(&mut chan.out, at);
        }
        Err(e) => {
            chan.out.truncate(at);
            protocol::push_frame(&mut chan.out, kind::DATA_FAILED, e.to_string().as_bytes());
        }
    }
    Ok(chan.flush()?)
}

fn end_of_body(chan: &mut Channel) -> io::Result<()> {
    protocol::push_frame(&mut chan.out, kind::DATA, b"");
    chan.flush()
}

/// A `FULL` payload: `u32` head length, head, body.
fn full_response(payload: &[u8]) -> Response {
    let head_len = payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes);
    let Some(head_len) = head_len
        .map(|n| n as usize)
        .filter(|n| 4 + n <= payload.len())
    else {
        return bad_head(protocol::BadHead("a FULL frame shorter than its head"));
    };
    match protocol::parse_head(&payload[4..4 + head_len]) {
        Ok(h) => {
            let body = &payload[4 + head_len..];
            let body = if body.is_empty() {
                Body::Empty
            } else {
                Body::Bytes(body.to_vec().into())
            };
            Response {
                status: h.status,
                headers: h.headers,
                body,
            }
        }
        Err(bad) => bad_head(bad),
    }
}

fn bad_head(bad: protocol::BadHead) -> Response {
    error!(
        "worker {}: the app sent a response head with {}; answering 500",
        getpid(),
        bad.0
    );
    Response::text(500, &b"Internal Server Error\n"[..])
}

fn nul_in_path() -> Response {
    Response::text(400, &b"Bad Request: NUL in path\n"[..])
}

fn bad_gateway() -> Response {
    Response::text(502, &b"Bad Gateway: the app process is gone\n"[..])
        .with_header("Connection", "close")
}

/// Encodes the leading requests of a batch, up to one that cannot be sent (a NUL in its
/// path, answered 400 on its own later); returns how many were encoded.
fn encode_prefix(out: &mut Vec<u8>, reqs: &[Request<'_>], defaults: &ServerDefaults) -> usize {
    for (n, req) in reqs.iter().enumerate() {
        let before = out.len();
        if protocol::encode_request(out, req, false, defaults).is_err() {
            out.truncate(before);
            return n;
        }
    }
    reqs.len()
}

/// Whether the request carries a body the app may read.
fn has_body(req: &Request<'_>) -> bool {
    if req.header("transfer-encoding").is_some() {
        return true;
    }
    let len = req
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    len.is_some_and(|n| n > 0)
}

/// What a child's `K` frame says: "PID VERSION".
struct Ready {
    pid: i32,
    version: String,
}

/// Reads the child's first frame: its pid and version when ready, `Err(Some(traceback))`
/// when the app cannot be imported, `Err(None)` when it died without saying why.
fn await_ready(chan: &mut Channel) -> Result<Ready, Option<String>> {
    let frame = chan.read_frame().map_err(|_| None)?;
    let text = String::from_utf8_lossy(chan.payload(&frame)).into_owned();
    match frame.kind {
        kind::READY => {
            let (pid, version) = text.split_once(' ').unwrap_or((&text, ""));
            let pid = pid
                .parse()
                .map_err(|_| Some(format!("a READY frame without a pid: {text:?}")))?;
            Ok(Ready {
                pid,
                version: version.to_string(),
            })
        }
        kind::LOAD_FAILED => Err(Some(text)),
        _ => Err(Some(format!(
            "unexpected first frame {:?} from the adapter",
            frame.kind as char
        ))),
    }
}

/// One socketpair per runtime thread: (our ends, the child's ends).
fn channel_pairs(threads: usize) -> Result<(Vec<UnixStream>, Vec<UnixStream>), String> {
    let pairs = (0..threads.max(1))
        .map(|_| UnixStream::pair())
        .collect::<io::Result<Vec<_>>>();
    Ok(pairs
        .map_err(|e| format!("socketpair: {e}"))?
        .into_iter()
        .unzip())
}

/// `home/bin/python` when a home (virtualenv) is set, else `python3` on PATH.
fn interpreter(spec: &WsgiSpec) -> Result<PathBuf, String> {
    let Some(home) = &spec.home else {
        return Ok(PathBuf::from("python3"));
    };
    ["bin/python", "bin/python3"]
        .iter()
        .map(|p| home.join(p))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "home {}: no bin/python in it (is it a virtualenv?)",
                home.display()
            )
        })
}

/// The adapter's app arguments: KIND TARGET CALLABLE MT MP NAME PORT [PYTHONPATH...].
fn app_args(spec: &WsgiSpec, opts: &WsgiOptions) -> Vec<String> {
    let (load_kind, target, callable) = load_target(spec);
    let mut args = vec![
        load_kind.to_string(),
        target,
        callable,
        flag(opts.threads > 1).to_string(),
        flag(opts.processes > 1).to_string(),
        opts.defaults.name.clone(),
        opts.defaults.port.clone(),
    ];
    args.extend(spec.pythonpath.iter().map(|p| p.display().to_string()));
    args
}

/// `python -u -c ADAPTER molt-wsgi FDS APP...`, dying with this worker.
fn adapter_command(
    python: &PathBuf,
    spec: &WsgiSpec,
    opts: &WsgiOptions,
    theirs: &[UnixStream],
) -> Command {
    let fds: Vec<RawFd> = theirs.iter().map(AsRawFd::as_raw_fd).collect();
    let fd_list = fds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg("-c")
        .arg(ADAPTER)
        .arg("molt-wsgi")
        .arg(fd_list)
        .args(app_args(spec, opts))
        .envs(opts.setup.logto.iter().map(|p| ("MOLT_LOGTO", p)))
        .stdin(Stdio::null());
    let worker = getpid();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // calls (prctl, getppid, fcntl) on memory moved into it before the fork.
    unsafe {
        cmd.pre_exec(move || {
            tie_to(worker, "the worker died before the python child started")?;
            for fd in &fds {
                if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    cmd
}

/// In a child between fork and exec: dies with `parent` (PDEATHSIG), and fails if the
/// parent is already gone (the signal would never come).
fn tie_to(parent: nix::unistd::Pid, gone: &'static str) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if getppid() != parent {
        return Err(io::Error::other(gone));
    }
    Ok(())
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// ("module" | "file", what, callable); `pkg.mod:name` names its own callable.
fn load_target(spec: &WsgiSpec) -> (&'static str, String, String) {
    if let Some(file) = &spec.wsgi_file {
        return ("file", file.display().to_string(), spec.callable.clone());
    }
    let module = spec.module.clone().unwrap_or_default();
    match module.split_once(':') {
        Some((m, c)) => ("module", m.to_string(), c.to_string()),
        None => ("module", module, spec.callable.clone()),
    }
}

fn describe(spec: &WsgiSpec) -> String {
    let (k, target, callable) = load_target(spec);
    format!("{k} {target}:{callable}")
}
