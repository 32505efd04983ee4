#!/usr/bin/env python3
"""Pool memory over time for a leaking app, three ways: no limits, reload-on-rss, and a
pool rule. Starts the release molt with 4 demo workers, drives a paced leaking load
(GET /leak?kb=N from 4 client threads), samples the workers' total RSS from /proc every
100 ms, and writes docs/memory-plot.svg (Python stdlib only).

Usage: benches/memory_plot.py [SECONDS_PER_RUN]
"""
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "molt")
OUT = os.path.join(ROOT, "docs", "memory-plot.svg")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
WORKERS, CLIENTS, LEAK_KB, PAUSE = 4, 4, 256, 0.02
RSS_LIMIT_MB, POOL_LIMIT_MB = 40, 120

RUNS = [
    ("no limits", [], "#d62728"),
    (f"reload-on-rss = {RSS_LIMIT_MB} (per worker)", ["--reload-on-rss", str(RSS_LIMIT_MB)], "#1f77b4"),
    (f"pool-soft-limit = {POOL_LIMIT_MB}", ["--pool-soft-limit", str(POOL_LIMIT_MB)], "#2ca02c"),
]


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def client(port, stop, failures):
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", f"/leak?kb={LEAK_KB}", headers={"Connection": "close"})
            if c.getresponse().status != 200:
                failures.append("status")
            c.close()
        except OSError as e:
            failures.append(str(e))
        time.sleep(PAUSE)


def run(args):
    log = tempfile.NamedTemporaryFile("w+", delete=False)
    cmd = [BIN, "--demo", "--processes", str(WORKERS), "--http-socket", "127.0.0.1:0",
           "--memory-sample-interval", "100"] + args
    master = subprocess.Popen(cmd, stderr=log, env=dict(os.environ, RUST_LOG="info"))
    port = None
    for _ in range(300):
        text = open(log.name).read()
        m = re.search(r"listening on [^ ]*:(\d+)", text)
        if m and text.count("ready in") >= WORKERS:
            port = int(m.group(1))
            break
        time.sleep(0.05)
    assert port, open(log.name).read()
    stop, failures = threading.Event(), []
    threads = [threading.Thread(target=client, args=(port, stop, failures)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    series, t0 = [], time.time()
    while time.time() - t0 < SECONDS:
        series.append((time.time() - t0, sum(rss_mb(p) for p in children(master.pid))))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    master.terminate()
    master.wait()
    recycles = open(log.name).read().count("recycling")
    os.unlink(log.name)
    return series, len(failures), recycles


def svg(results):
    w, h, left, right, top, bottom = 760, 420, 60, 20, 40, 100
    ymax = max(v for s, _, _, _ in results for _, v in s) * 1.05
    ymax = max(ymax, POOL_LIMIT_MB * 1.5)
    sx = lambda t: left + t / SECONDS * (w - left - right)
    sy = lambda v: top + (1 - v / ymax) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">Pool RSS of {WORKERS} workers leaking {LEAK_KB} KiB per request</text>']
    step = 50 if ymax < 600 else 200
    for v in range(0, int(ymax) + 1, step):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for t in range(0, int(SECONDS) + 1, 2):
        out.append(f'<text x="{sx(t):.1f}" y="{h - bottom + 16}" text-anchor="middle">{t}</text>')
    out.append(f'<text x="{w / 2}" y="{h - bottom + 32}" text-anchor="middle">seconds</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2}" transform="rotate(-90 16 {(top + h - bottom) / 2})" text-anchor="middle">MB (sum of worker RSS)</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{h - bottom}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{h - bottom}" y2="{h - bottom}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{w - right}" y1="{sy(POOL_LIMIT_MB):.1f}" y2="{sy(POOL_LIMIT_MB):.1f}" stroke="#2ca02c" stroke-dasharray="6 4"/>')
    for i, (series, failures, recycles, (label, _, color)) in enumerate(results):
        pts = " ".join(f"{sx(t):.1f},{sy(min(v, ymax)):.1f}" for t, v in series)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        y = h - bottom + 50 + i * 16
        peak = max(v for _, v in series)
        out.append(f'<line x1="{left}" x2="{left + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{left + 30}" y="{y}">{label}: peak {peak:.0f} MB, {recycles} recycles, {failures} failed requests</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    if not os.access(BIN, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    results = []
    for run_spec in RUNS:
        series, failures, recycles = run(run_spec[1])
        print(f"{run_spec[0]}: peak {max(v for _, v in series):.1f} MB, {recycles} recycles, {failures} failed requests")
        results.append((series, failures, recycles, run_spec))
    with open(OUT, "w") as f:
        f.write(svg(results))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
