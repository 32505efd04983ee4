"""Checks that a server serves N keep-alive connections open at the same time: opens all
of them, sends one request on each, then expects every one to answer (twice, so each is
kept alive). Exit 0 and 'N/N' when all answered."""
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
req = ('GET / HTTP/1.1\r\nHost: %s\r\n\r\n' % host).encode()
socks = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
ok = 0
for round_ in range(2):
    for s in socks:
        s.sendall(req)
    ok = 0
    for s in socks:
        try:
            data = b''
            while b'Hello, World!' not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok += b'Hello, World!' in data
        except OSError:
            pass
print('%d/%d' % (ok, n))
sys.exit(0 if ok == n else 1)
