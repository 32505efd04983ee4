#!/usr/bin/env python3
"""Starvation check: N keep-alive connections kept busy at once; every one must be served.

Each connection always has exactly one request outstanding: as soon as its response is
complete, the next request goes out on the same connection. wrk reports no per-connection
figures, so a server that served a few connections and left the others waiting would still
look fast there; here it fails. The check passes when every connection got at least
--min responses and at least --min-share of the mean.

Prints one summary line last (e2e.sh shows it) and exits 1 when a connection starved.
Standard library only.
"""

import argparse
import selectors
import socket
import sys
import time


def parse_responses(buf):
    """Consumes complete responses from buf; returns (count, rest, bad)."""
    count = bad = 0
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return count, buf, bad
        head = buf[:end].split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        total = end + 4 + length
        if len(buf) < total:
            return count, buf, bad
        status = head[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"200":
            bad += 1
        count += 1
        buf = buf[total:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--min", type=int, default=200, help="fewest responses a connection may get")
    ap.add_argument("--min-share", type=float, default=0.25, help="fewest responses as a share of the mean")
    args = ap.parse_args()

    request = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(args.connections):
        s = socket.create_connection((args.host, args.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append({"sock": s, "buf": b"", "got": 0, "bad": 0, "closed": False})
        sel.register(s, selectors.EVENT_READ, i)

    # All connections are open before the first request, so all compete from the start.
    for c in conns:
        c["sock"].sendall(request)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            c = conns[key.data]
            try:
                data = c["sock"].recv(65536)
            except BlockingIOError:
                continue
            if not data:
                c["closed"] = True
                sel.unregister(c["sock"])
                continue
            n, c["buf"], bad = parse_responses(c["buf"] + data)
            c["got"] += n
            c["bad"] += bad
            if n:
                c["sock"].sendall(request)
    for c in conns:
        c["sock"].close()

    counts = [c["got"] for c in conns]
    mean = sum(counts) / len(counts)
    floor = max(args.min, args.min_share * mean)
    starved = [i for i, n in enumerate(counts) if n < floor]
    bad = sum(c["bad"] for c in conns)
    closed = sum(c["closed"] for c in conns)
    print("per connection:", " ".join(str(n) for n in counts))
    ok = not starved and not bad and not closed
    print(
        f"{len(counts)} conns: min {min(counts)} / mean {mean:.0f} / max {max(counts)} responses"
        f" in {args.seconds:g}s (floor {floor:.0f}), non-200 {bad}, closed {closed}"
        f"{'' if ok else ', starved: ' + ','.join(map(str, starved))}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
