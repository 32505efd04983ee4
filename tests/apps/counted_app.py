"""An app that records each import of itself, for the zygote tests.

At import it appends its pid to the file named by MOLT_TEST_IMPORTS and reads
version.txt next to that file (what a deploy changes).

/        the version read at import, and this process's pid: "VERSION PID"
/sleep   answers after 20 s (a request still running when its worker dies)
"""
import os
import time

_imports = os.environ['MOLT_TEST_IMPORTS']
with open(_imports, 'a') as f:
    f.write('%d\n' % os.getpid())
with open(os.path.join(os.path.dirname(_imports), 'version.txt')) as f:
    VERSION = f.read().strip()


def application(environ, start_response):
    if environ['PATH_INFO'] == '/sleep':
        time.sleep(20)
    body = ('%s %d' % (VERSION, os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
