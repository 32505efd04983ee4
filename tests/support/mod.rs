//! Test harness: drives the real `molt` binary with real processes, sockets on
//! 127.0.0.1 and real signals. Every wait has a deadline and polls for a condition;
//! every process a test starts is killed (by pid) when its handle drops.
#![allow(dead_code)]

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("molt-test-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running molt master.
pub struct Molt {
    pub child: Child,
    pub dir: TempDir,
    pub log_path: PathBuf,
    /// `127.0.0.1:PORT` of the first listener.
    pub addr: String,
}

/// The path of the binary under test.
pub fn molt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_molt")
}

impl Molt {
    /// Starts `molt ARGS --http-socket 127.0.0.1:0` (unless ARGS has a listener) and
    /// waits until it listens and `ready` workers are ready.
    pub fn start(args: &[&str], ready: usize) -> Molt {
        Self::start_env(args, &[], ready)
    }

    /// Like [`Molt::start`], with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)], ready: usize) -> Molt {
        let molt = Self::spawn(args, env);
        assert!(
            molt.wait_log_count("ready in", ready, Duration::from_secs(20)),
            "molt did not get {ready} worker(s) ready:\n{}",
            molt.log()
        );
        molt
    }

    /// Starts molt without waiting for workers (for boot-failure tests).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Molt {
        Self::spawn_bin(Path::new(molt_bin()), args, env)
    }

    /// Starts another program built on molt's library (an example) the same way.
    pub fn spawn_bin(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Molt {
        Self::spawn_with(bin, args, env, |_| {})
    }

    /// Like [`Molt::spawn_bin`], letting the test adjust the command first (e.g. a
    /// `pre_exec` hook that moves molt into a cgroup).
    pub fn spawn_with(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        customize: impl FnOnce(&mut Command),
    ) -> Molt {
        let dir = TempDir::new("molt");
        let log_path = dir.path().join("molt.log");
        let log = fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(bin);
        cmd.args(args);
        if !args
            .iter()
            .any(|a| a.contains("socket") || a.ends_with(".ini") || a.contains("toml"))
        {
            cmd.args(["--http-socket", "127.0.0.1:0"]);
        }
        cmd.env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        customize(&mut cmd);
        let child = cmd.spawn().expect("spawn molt");
        let mut molt = Molt {
            child,
            dir,
            log_path,
            addr: String::new(),
        };
        let mut addr = String::new();
        wait_for(Duration::from_secs(10), || {
            addr = molt.listening_addr().unwrap_or_default();
            !addr.is_empty() || molt.exited()
        });
        molt.addr = addr;
        molt
    }

    fn listening_addr(&self) -> Option<String> {
        logged_addr(&self.log(), "listening on ")
    }

    /// The stats server's address (started with `--stats 127.0.0.1:0`), once logged.
    pub fn stats_addr(&self) -> String {
        let prefix = "stats server listening on ";
        assert!(
            self.wait_log(prefix, Duration::from_secs(30)),
            "{}",
            self.log()
        );
        logged_addr(&self.log(), prefix).unwrap_or_default()
    }

    /// Every listener from the log: (local address, protocol name), in config order.
    pub fn listening(&self) -> Vec<(String, String)> {
        self.log()
            .lines()
            .filter_map(|l| l.split("listening on ").nth(1))
            .filter_map(|rest| {
                let addr = rest.split_whitespace().next()?.to_string();
                let proto = rest.trim_end().trim_end_matches(')').rsplit(", ").next()?;
                Some((addr, proto.to_string()))
            })
            .collect()
    }

    /// The local address of the first listener speaking `protocol`.
    pub fn addr_of(&self, protocol: &str) -> String {
        self.listening()
            .into_iter()
            .find(|(_, p)| p == protocol)
            .map(|(a, _)| a)
            .unwrap_or_else(|| panic!("no {protocol} listener:\n{}", self.log()))
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The master's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `needle` appears `n` times in the log.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        wait_for(timeout, || self.count(needle) >= n)
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_log_count(needle, 1, timeout)
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("signal molt");
    }

    /// True once the master has exited (reaps it).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the master to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of the current workers (children of the master), from /proc.
    /// The master's children that are workers (not the Python zygote).
    pub fn worker_pids(&self) -> Vec<i32> {
        let mut pids = children_of(self.pid());
        pids.retain(|p| !is_zygote(*p));
        pids
    }

    /// The master's Python zygote(s): more than one while a reload retires the old one.
    pub fn zygote_pids(&self) -> Vec<i32> {
        let mut pids = children_of(self.pid());
        pids.retain(|p| is_zygote(*p));
        pids
    }

    pub fn get(&self, path: &str) -> io::Result<Response> {
        get(&self.addr, path)
    }
}

impl Drop for Molt {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let workers = self.worker_pids();
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
            for w in workers {
                let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            eprintln!("---- molt log ----\n{}", self.log());
        }
    }
}

/// The address after `prefix` on the first log line that has it ("listening on ADDR (...)").
pub fn logged_addr(log: &str, prefix: &str) -> Option<String> {
    let rest = log.lines().find_map(|l| l.split(prefix).nth(1))?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// Whether `pid` runs molt's Python zygote (its argv carries the `molt-zygote` marker).
pub fn is_zygote(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|arg| arg == b"molt-zygote"))
        .unwrap_or(false)
}

/// Field `n` of /proc/PID/stat counted after the command name (0 = state, 1 = ppid,
/// 2 = process group).
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(n)?
        .parse()
        .ok()
}

/// The parent of `pid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    stat_field(pid, 1)
}

/// The process group of `pid`.
pub fn group_of(pid: i32) -> Option<i32> {
    stat_field(pid, 2)
}

/// Every live process in process group `pgid` except its leader.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| p != pgid && group_of(p) == Some(pgid) && alive(p))
        .collect()
}

/// Direct children of `pid` (all threads).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn get(addr: &str, path: &str) -> io::Result<Response> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn request(addr: &str, raw: &str) -> io::Result<Response> {
    let mut s = connect(addr)?;
    s.write_all(raw.as_bytes())?;
    read_response(&mut BufReader::new(s))
}

pub fn connect(addr: &str) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Reads one response (Content-Length or chunked) from a keep-alive stream.
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body)?;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        resp.body = read_chunked(r)?;
    } else {
        r.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Client loops of GETs, each on a new connection, until [`Load::finish`].
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handles: Vec<std::thread::JoinHandle<LoopTally>>,
}

/// One client loop's (ok count, failure descriptions, response bodies).
type LoopTally = (usize, Vec<String>, Vec<String>);

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub ok: usize,
    pub failures: Vec<String>,
    pub pids: std::collections::BTreeSet<String>,
}

impl Load {
    /// Starts `threads` loops requesting `path` (each on a new connection).
    pub fn start(addr: &str, path: &str, threads: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let (addr, path, stop) = (addr.to_string(), path.to_string(), stop.clone());
                std::thread::spawn(move || {
                    let (mut ok, mut fails, mut bodies) = (0, Vec::new(), Vec::new());
                    while !stop.load(Ordering::SeqCst) {
                        match get(&addr, &path) {
                            Ok(r) if r.status == 200 => {
                                ok += 1;
                                bodies.push(r.text());
                            }
                            Ok(r) => fails.push(format!("status {}", r.status)),
                            Err(e) => fails.push(e.to_string()),
                        }
                    }
                    (ok, fails, bodies)
                })
            })
            .collect();
        Load { stop, handles }
    }

    /// Stops the loops and sums what they saw.
    pub fn finish(self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        let mut res = LoadResult::default();
        for h in self.handles {
            if let Ok((ok, fails, bodies)) = h.join() {
                res.ok += ok;
                res.failures.extend(fails);
                res.pids.extend(bodies);
            }
        }
        res
    }
}
