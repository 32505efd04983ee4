"""A worker in another language for molt's `worker-exec` tests (stdlib only).

It serves HTTP/1.1 (one request per connection) on the listener molt hands over as fd 3
(LISTEN_FDS / LISTEN_PID, systemd's convention) and speaks molt's worker protocol on
NOTIFY_SOCKET: READY=1 once it accepts, BUSY=1/BUSY=0 around each request, REQUESTS=N
after each one, STOPPING=1 when it stops.

Routes: /pid, /fds (fds open at start-up), /sigs (SigBlk/SigIgn at start-up, from
/proc/self/status), /env, /leak?kb=N, /sleep?ms=N, /echo (POST).
Options (environment): TAPP_IGNORE_STOP=1 ignores the graceful-stop signal;
TAPP_SILENT=1 never speaks the protocol.
"""

import os
import selectors
import signal
import socket
import sys
import time


def snapshot_fds():
    """The fds open now, minus the one listdir itself used (closed when it returns)."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    return sorted(fds)


START_FDS = snapshot_fds()
with open("/proc/self/status") as f:
    START_SIGS = {k: v.strip() for k, v in (l.split(":", 1) for l in f) if k.startswith("Sig")}

LEAK = []
STOP = False
SILENT = os.environ.get("TAPP_SILENT") == "1"


def notify(msg):
    path = os.environ.get("NOTIFY_SOCKET")
    if SILENT or not path:
        return
    addr = "\0" + path[1:] if path.startswith("@") else path
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(msg.encode(), addr)
    finally:
        s.close()


def on_stop(signum, frame):
    global STOP
    STOP = True


def listener():
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("LISTEN_PID %r is not my pid %d" % (os.environ.get("LISTEN_PID"), os.getpid()))
    if int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("no LISTEN_FDS")
    sock = socket.socket(fileno=3)
    sock.setblocking(False)
    return sock


def read_request(conn):
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, target, body


def query(target, name, default):
    if "?" not in target:
        return default
    for kv in target.split("?", 1)[1].split("&"):
        k, _, v = kv.partition("=")
        if k == name:
            return int(v)
    return default


def route(method, target, body):
    path = target.split("?", 1)[0]
    if path == "/pid":
        return str(os.getpid())
    if path == "/fds":
        return " ".join(str(fd) for fd in START_FDS)
    if path == "/sigs":
        # As recorded by probe.sh before Python started, when run through it.
        inherited = os.environ.get("TAPP_START_SIGS")
        if inherited:
            return inherited.replace(",", "\n")
        return "\n".join("%s=%s" % kv for kv in sorted(START_SIGS.items()))
    if path == "/env":
        keys = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "MOLT_WORKER_ID", "MOLT_WORKER_GENERATION"]
        return "\n".join("%s=%s" % (k, os.environ.get(k, "")) for k in keys)
    if path == "/leak":
        LEAK.append(bytearray(os.urandom(1)) * (query(target, "kb", 1024) * 1024))
        return "leaked"
    if path == "/sleep":
        time.sleep(query(target, "ms", 100) / 1000)
        return "slept"
    if path == "/echo":
        return body.decode("latin-1")
    return "hello from python"


def serve(conn, served):
    req = read_request(conn)
    if req is None:
        return False
    notify("BUSY=1")
    text = route(*req).encode()
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(text)
        + text
    )
    notify("BUSY=0\nREQUESTS=%d" % served)
    return True


def main():
    stop_sig = signal.SIGTERM
    if os.environ.get("TAPP_IGNORE_STOP") == "1":
        signal.signal(stop_sig, signal.SIG_IGN)
    else:
        signal.signal(stop_sig, on_stop)
    sock = listener()
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    notify("READY=1\nSTATUS=serving")
    served = 0
    while not STOP:
        if not sel.select(timeout=0.1):
            continue
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            continue
        with conn:
            conn.setblocking(True)
            try:
                if serve(conn, served + 1):
                    served += 1
            except OSError:
                pass
    notify("STOPPING=1")


if __name__ == "__main__":
    main()
