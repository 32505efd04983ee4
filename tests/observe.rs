//! Integration tests of issue 6 (see inside): the stats server read by uwsgitop, the
//! Prometheus metrics parsed by prometheus_client across a recycle, the leak finder,
//! and the live page rendered by headless Chromium. Real processes and sockets on
//! 127.0.0.1; every wait is bounded and polls for a condition.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(20);

/// Runs a Python snippet; returns stdout (fails the test with stderr on error).
fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hit(m: &Molt, path: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(m.get(path).expect("GET").status, 200);
    }
}

#[test]
fn stats_document_has_the_uwsgi_layout_over_tcp_and_unix() {
    let m = Molt::start(&["--demo", "--processes", "2", "--stats", "127.0.0.1:0"], 2);
    hit(&m, "/", 5);
    let addr = m.stats_addr();
    let doc = python(
        "import json,socket,sys\nh,p=sys.argv[1].rsplit(':',1)\ns=socket.create_connection((h,int(p)))\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nd=json.loads(b)\nw=d['workers']\nprint(len(w), sum(x['requests'] for x in w), all(x['rss']>0 for x in w), d['pid'], sorted(w[0].keys())==sorted(set(w[0].keys())), 'cores' in w[0] and 'apps' in w[0], w[0]['status'])",
        &[&addr],
    );
    let fields: Vec<&str> = doc.split_whitespace().collect();
    assert_eq!(fields[0], "2", "{doc}");
    assert!(fields[1].parse::<u64>().unwrap() >= 5, "{doc}");
    assert_eq!(fields[2], "True", "memory always filled: {doc}");
    assert_eq!(fields[3], m.pid().to_string());
    assert_eq!(fields[5], "True");

    let dir = TempDir::new("unixstats");
    let sock = dir.path().join("stats.sock");
    let u = Molt::start(&["--demo", "--stats", sock.to_str().unwrap()], 1);
    assert!(wait_for(T, || sock.exists()));
    let out = python(
        "import json,socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nb=b''\nwhile True:\n  d=s.recv(65536)\n  if not d: break\n  b+=d\nprint(len(json.loads(b)['workers']))",
        &[sock.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "1");
    drop(u);
}

#[test]
fn uwsgitop_shows_the_workers_and_their_requests() {
    let m = Molt::start(&["--demo", "--processes", "2", "--stats", "127.0.0.1:0"], 2);
    hit(&m, "/", 7);
    let addr = m.stats_addr();
    let session = format!("molt-uwsgitop-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux (tools/deps.sh installs it)")
    };
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "200",
        "-y",
        "40",
        "uwsgitop",
        &addr,
    ]);
    assert!(started.status.success(), "{:?}", started);
    let mut screen = String::new();
    let shown = wait_for(T, || {
        screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout)
            .into_owned();
        screen.contains("WID") && screen.contains("req: 7")
    });
    let _ = tmux(&["kill-session", "-t", &session]);
    assert!(shown, "uwsgitop screen:\n{screen}");
    for pid in m.worker_pids() {
        assert!(
            screen.contains(&pid.to_string()),
            "worker {pid} missing:\n{screen}"
        );
    }
}

const PARSE_METRICS: &str = "import sys,urllib.request\nfrom prometheus_client.parser import text_string_to_metric_families\nt=urllib.request.urlopen('http://'+sys.argv[1]+'/metrics').read().decode()\nv={}\nfor f in text_string_to_metric_families(t):\n  for s in f.samples:\n    if not s.labels: v[s.name]=s.value\nprint(int(v['molt_requests_total']), int(v.get('molt_request_duration_seconds_count',0)), int(sum(s.value for f in text_string_to_metric_families(t) if f.name=='molt_respawns' for s in f.samples if s.name=='molt_respawns_total')))";

fn scrape(addr: &str) -> (u64, u64, u64) {
    let out = python(PARSE_METRICS, &[addr]);
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

#[test]
fn metrics_parse_and_counters_survive_a_recycle() {
    let m = Molt::start(
        &[
            "--demo",
            "--processes",
            "1",
            "--stats",
            "127.0.0.1:0",
            "--stats-http",
            "--max-requests",
            "10",
        ],
        1,
    );
    let addr = m.stats_addr();
    hit(&m, "/", 6);
    let (before, hist_before, respawns_before) = scrape(&addr);
    assert_eq!((before, hist_before, respawns_before), (6, 6, 0));
    hit(&m, "/", 8);
    assert!(
        m.wait_log("recycling: max-requests", T),
        "a recycle happened: {}",
        m.log()
    );
    assert!(m.wait_log_count("ready in", 2, T));
    let mut after = (0, 0, 0);
    assert!(wait_for(T, || {
        after = scrape(&addr);
        after.2 >= 1
    }));
    assert_eq!(
        after.0, 14,
        "requests of the dead worker still count: {after:?}"
    );
    assert_eq!(after.1, 14, "histogram count too");
}

#[test]
fn leak_finder_ranks_the_leaking_route_first() {
    let m = Molt::start(
        &[
            "--demo",
            "--processes",
            "2",
            "--stats",
            "127.0.0.1:0",
            "--leak-finder",
            "--max-requests",
            "25",
        ],
        2,
    );
    let addr = m.stats_addr();
    for i in 0..30 {
        hit(&m, &format!("/leak?kb={}", 64 + i % 2), 1);
        hit(&m, "/", 3);
        // A 404 route: counted and normalised all the same.
        assert_eq!(m.get(&format!("/items/{i}")).expect("GET").status, 404);
    }
    let out = Command::new(molt_bin())
        .args(["top", &addr])
        .output()
        .expect("molt top");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let ranked: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("routes by total"))
        .skip(2)
        .take(3)
        .collect();
    assert!(ranked[0].starts_with("GET /leak "), "{text}");
    assert!(text.contains("GET /items/:n"), "ids normalised: {text}");
    let per_req: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("routes by memory growth per request"))
        .skip(2)
        .take(1)
        .collect();
    assert!(per_req[0].starts_with("GET /leak "), "{text}");
    // 30 leak requests across recycles: one route, every request counted.
    let leak_line = ranked[0].split_whitespace().nth(2).unwrap_or("0");
    assert_eq!(leak_line, "30", "{text}");
}

#[test]
fn request_log_lines_and_disable_logging() {
    let m = Molt::start(&["--demo", "--memory-report"], 1);
    hit(&m, "/leak?kb=256", 1);
    assert!(m.wait_log("GET /leak?kb=256 => 200", T), "{}", m.log());
    let log = m.log();
    let line = log
        .lines()
        .find(|l| l.contains("GET /leak?kb=256"))
        .unwrap();
    assert!(line.contains("worker 1 (pid "), "{line}");
    assert!(
        line.contains(" MB (+"),
        "memory after and its change: {line}"
    );

    let custom = Molt::start(
        &[
            "--demo",
            "--log-format",
            "%(method) %(uri) %(status) %(size) wid=%(wid)",
        ],
        1,
    );
    hit(&custom, "/", 1);
    assert!(custom.wait_log("GET / 200 ", T), "{}", custom.log());
    assert!(custom.log().contains("wid=1"));

    let quiet = Molt::start(&["--demo", "--disable-logging"], 1);
    hit(&quiet, "/pid", 3);
    hit(&quiet, "/", 1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!quiet.log().contains("GET /pid"), "{}", quiet.log());
}

/// Pixels of an RGB(A) PNG (8-bit, non-interlaced), decoded with zlib in Python; prints
/// how many pixels match each colour given as RRGGBB.
const COUNT_COLOURS: &str = r#"
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
pos, idat, w, h, ct = 8, b'', 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos+8]); body = data[pos+8:pos+8+n]; pos += 12 + n
    if kind == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT': idat += body
raw = zlib.decompress(idat); bpp = 4 if ct == 6 else 3; stride = w * bpp
prev = bytearray(stride); rows = []; i = 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
want = [bytes.fromhex(c) for c in sys.argv[2:]]
counts = [0] * len(want)
for line in rows:
    for x in range(0, stride, bpp):
        px = bytes(line[x:x+3])
        for k, c in enumerate(want):
            if px == c: counts[k] += 1
print(' '.join(map(str, counts)))
"#;

#[test]
fn live_page_shows_worker_lines_and_a_recycle_mark_in_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
    else {
        panic!("chromium is missing: tools/deps.sh installs it");
    };
    let m = Molt::start(
        &[
            "--demo",
            "--processes",
            "2",
            "--stats",
            "127.0.0.1:0",
            "--stats-http",
            "--max-requests",
            "20",
            "--memory-sample-interval",
            "200ms",
        ],
        2,
    );
    let addr = m.stats_addr();
    for i in 0..50 {
        hit(&m, &format!("/leak?kb={}", 128 + i), 1);
    }
    assert!(m.wait_log("recycling: max-requests", T), "{}", m.log());
    // The mark appears once the old worker has ended (after the "recycling" line).
    let mut page = String::new();
    assert!(
        wait_for(T, || {
            page = get(&addr, "/live").map(|r| r.text()).unwrap_or_default();
            page.contains("class=\"recycle\"")
        }),
        "{page}"
    );
    let dir = TempDir::new("chromium");
    let shot = dir.path().join("live.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,700",
            "--virtual-time-budget=3000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("http://{addr}/live"))
        .output()
        .expect("run chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(keep) = std::env::var("MOLT_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, keep);
    }
    let counts = python(
        COUNT_COLOURS,
        &[shot.to_str().unwrap(), "1f77b4", "2ca02c", "d62728"],
    );
    let c: Vec<u64> = counts
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(c[0] > 50 && c[1] > 50, "two worker lines: {counts}");
    assert!(c[2] > 50, "at least one recycle mark: {counts}");
}

/// A SIGKILL molt did not send (what the OOM killer does) is counted in the stats
/// document and the metrics, not only logged.
#[test]
fn foreign_sigkills_are_counted_in_stats_and_metrics() {
    let m = Molt::start(&["--demo", "--stats", "127.0.0.1:0", "--stats-http"], 1);
    let addr = m.stats_addr();
    let victim = m.worker_pids()[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(m.wait_log("not sent by molt", T), "{}", m.log());
    let mut metrics = String::new();
    assert!(
        wait_for(T, || {
            metrics = get(&addr, "/metrics").map(|r| r.text()).unwrap_or_default();
            metrics.contains("molt_foreign_sigkills_total 1")
        }),
        "{metrics}"
    );
    let doc = get(&addr, "/stats").unwrap().text();
    assert!(doc.contains("\"foreign_sigkills\":1"), "{doc}");
}
