"""The demo routes of molt's built-in app, as a WSGI app, plus what the WSGI tests need.

/            Hello, World!
/pid         the Python child's pid and its process group (the molt worker leads it)
/leak?kb=N   keeps N KiB resident for the life of the process
/sleep?ms=N  answers after N ms
/crash       the Python process aborts
/echo        POST: the request body back (read with read(), in pieces)
/echo-all    POST: the request body back (one read() of everything)
/lines       POST: the body's lines counted via readline()
/stream?n=N  N chunks from a generator (no Content-Length: chunked)
/write       the write() callable, then an iterable
/error       raises before start_response -> 500
/late-error  raises after the first streamed chunk -> connection cut
/environ     selected environ keys, one per line
/file        wsgi.file_wrapper over this file
/closed      how many iterables had close() called (counts across requests)
/barrier?n=N waits (10 s at most) until N requests are inside it at once: 200, else 503
"""
import os
import sys
import threading
import time
from urllib.parse import parse_qs

LEAKED = []
CLOSED = [0]
BARRIERS = {}
BARRIERS_LOCK = threading.Lock()


def text(start_response, body, status='200 OK', extra=()):
    data = body.encode('utf-8') if isinstance(body, str) else body
    start_response(status, [('Content-Type', 'text/plain'), ('Content-Length', str(len(data)))] + list(extra))
    return [data]


class Closing(object):
    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        CLOSED[0] += 1


def number(environ, name):
    return int(parse_qs(environ.get('QUERY_STRING', '')).get(name, ['0'])[0])


def stream(n):
    for i in range(n):
        yield ('chunk %d\n' % i).encode()


def late_error():
    yield b'first\n'
    raise RuntimeError('late failure on purpose')


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'Hello, World!']
    if path == '/pid':
        return text(start_response, '%d %d' % (os.getpid(), os.getpgrp()))  # the worker leads its group
    if path == '/leak':
        kb = number(environ, 'kb')
        LEAKED.append(bytearray(b'\xa5' * (kb * 1024)))
        return text(start_response, 'leaked %d KiB\n' % kb)
    if path == '/sleep':
        ms = number(environ, 'ms')
        time.sleep(ms / 1000.0)
        return text(start_response, 'slept %d ms\n' % ms)
    if path == '/barrier':
        n = number(environ, 'n')
        with BARRIERS_LOCK:
            barrier = BARRIERS.setdefault(n, threading.Barrier(n, timeout=10))
        try:
            barrier.wait()
            return text(start_response, 'met %d\n' % n)
        except threading.BrokenBarrierError:
            return text(start_response, 'alone\n', status='503 Service Unavailable')
    if path == '/crash':
        os.abort()
    if path == '/echo-all':
        return text(start_response, environ['wsgi.input'].read())
    if path == '/echo':
        inp = environ['wsgi.input']
        parts = []
        while True:
            part = inp.read(1000)
            if not part:
                break
            parts.append(part)
        return text(start_response, b''.join(parts), extra=[('X-Content-Length', environ.get('CONTENT_LENGTH', ''))])
    if path == '/lines':
        lines = environ['wsgi.input'].readlines()
        return text(start_response, '%d lines\n' % len(lines))
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return stream(number(environ, 'n'))
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written;')
        return Closing([b'iterated'])
    if path == '/error':
        raise ValueError('boom on purpose')
    if path == '/late-error':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return late_error()
    if path == '/exc-info':
        try:
            raise KeyError('handled')
        except KeyError:
            start_response('200 OK', [('Content-Type', 'text/plain')])
            start_response('503 Service Unavailable', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'replaced\n']
    if path == '/environ':
        keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH',
                'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'REMOTE_PORT', 'HTTP_X_TEST',
                'wsgi.url_scheme', 'wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once', 'MOLT_TEST_ENV']
        lines = ['%s=%s' % (k, environ.get(k, os.environ.get(k) if k.startswith('MOLT') else None)) for k in keys]
        lines.append('cwd=%s' % os.getcwd())
        lines.append('version=%r' % (environ['wsgi.version'],))
        return text(start_response, '\n'.join(lines) + '\n')
    if path == '/file':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return environ['wsgi.file_wrapper'](open(__file__, 'rb'), 4096)
    if path == '/closed':
        return Closing([('%d' % CLOSED[0]).encode()]) if start_response('200 OK', [('Content-Type', 'text/plain')]) else None
    if path == '/errors':
        environ['wsgi.errors'].write('molt-test: message to wsgi.errors\n')
        return text(start_response, 'logged\n')
    return text(start_response, 'Not Found\n', status='404 Not Found')
