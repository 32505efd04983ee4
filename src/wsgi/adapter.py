# molt's WSGI adapter: the Python side of the gateway (docs/python.md, "The gateway
# protocol"). Stdlib only, any Python 3. molt runs it in one of two ways:
#   python -u -c ADAPTER molt-wsgi FDS APP...      a worker's child, spawned by the worker
#   python -u -c ADAPTER molt-zygote FD LAZY APP...  the zygote the master keeps: it forks
#                                                  a child for each worker that asks
# APP is KIND TARGET CALLABLE MT MP SERVER_NAME SERVER_PORT [PATH...].
# FDS are socketpair ends, one per worker thread; each is served by one Python thread.
# A frame is: u32 little-endian payload length, one kind byte, the payload.
import gc
import os
import signal
import socket
import struct
import sys
import threading
import traceback

HEADER = struct.Struct('<IB')
FULL_HEAD = struct.Struct('<IBI')
U32 = struct.Struct('<I')
BUFSIZE = 65536
CHUNK = 1 << 20  # largest BODY frame; bigger chunks are split


class ClientGone(OSError):
    """The client disconnected while the response was streaming."""


class ProtocolError(Exception):
    pass


class Conn(object):
    """One socketpair end with a read buffer.

    The worker may send several requests at once (from different connections): they
    wait in the buffer and are answered in order, each response sent as soon as it is
    ready (a slow request does not hold back the responses before it)."""
    __slots__ = ('sock', 'buf', 'mv', 'start', 'end', 'queued', 'send')

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(BUFSIZE)
        self.mv = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.queued = []  # requests of a batch read while answering an earlier one
        self.send = sock.sendall

    def fill(self, n):
        """Makes n unread bytes available; False at end of stream."""
        while self.end - self.start < n:
            if self.start + n > len(self.buf):
                self.buf[:self.end - self.start] = self.buf[self.start:self.end]
                self.end -= self.start
                self.start = 0
                if n > len(self.buf):
                    self.mv.release()  # a bytearray with a live view cannot grow
                    self.buf.extend(bytes(n - len(self.buf)))
                self.mv = memoryview(self.buf)
            got = self.sock.recv_into(self.mv[self.end:])
            if not got:
                return False
            self.end += got
        return True

    def read_frame(self):
        """Returns (kind, payload start, payload end) or None at end of stream."""
        if self.start == self.end:
            self.start = self.end = 0
        if self.end - self.start < 5 and not self.fill(5):
            return None
        length, kind = HEADER.unpack_from(self.buf, self.start)
        if self.end - self.start < 5 + length and not self.fill(5 + length):
            return None
        a = self.start + 5
        self.start = a + length
        return kind, a, a + length

    def request(self, a, b):
        """An 'R' payload as (has a body, environ text), copied out of the buffer."""
        return self.buf[a] & 1, str(self.mv[a + 1:b], 'latin-1')

    def reply(self):
        """The worker's next answer to this child (to 'r' or a streamed chunk). Requests
        of the same batch that come first are queued for later."""
        while True:
            f = self.read_frame()
            if f is None:
                raise ProtocolError('worker closed the channel')
            if f[0] != 82:  # 'R'
                return f
            self.queued.append(self.request(f[1], f[2]))

    def frame(self, kind, payload=b''):
        self.send(HEADER.pack(len(payload), kind) + payload)


def log_exception(environ, what):
    """A traceback into molt's log (stderr), with the request it belongs to."""
    where = ''
    if environ is not None:
        where = ' on %s %s' % (environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'))
    sys.stderr.write('molt wsgi: %s%s\n%s' % (what, where, traceback.format_exc()))
    sys.stderr.flush()


class EmptyInput(object):
    """wsgi.input of a request without a body (stateless, shared)."""

    def read(self, size=-1):
        return b''

    def readline(self, size=-1):
        return b''

    def readlines(self, hint=-1):
        return []

    def __iter__(self):
        return iter(())


EMPTY_INPUT = EmptyInput()


class Input(object):
    """wsgi.input: the request body, pulled from the worker in chunks (READ/DATA)."""
    __slots__ = ('conn', 'pending', 'eof')

    def __init__(self, conn):
        self.conn = conn
        self.pending = bytearray()
        self.eof = False

    def _more(self, want):
        conn = self.conn
        conn.frame(114, U32.pack(max(1, min(want, 1 << 18))))  # 'r'
        kind, a, b = conn.reply()
        if kind == 68:  # 'D'
            if a == b:
                self.eof = True
            else:
                self.pending += conn.mv[a:b]
        elif kind == 90:  # 'Z'
            self.eof = True
            raise IOError('request body: %s' % bytes(conn.mv[a:b]).decode('utf-8', 'replace'))
        else:
            raise ProtocolError('unexpected frame %r while reading the body' % chr(kind))

    def _take(self, n):
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def read(self, size=-1):
        if size is None or size < 0:
            while not self.eof:
                self._more(BUFSIZE)
            return self._take(len(self.pending))
        while len(self.pending) < size and not self.eof:
            self._more(size - len(self.pending))
        return self._take(size)

    def readline(self, size=-1):
        while True:
            i = self.pending.find(b'\n')
            if i >= 0:
                n = i + 1
                break
            if self.eof or (size is not None and 0 <= size <= len(self.pending)):
                n = len(self.pending)
                break
            self._more(BUFSIZE)
        if size is not None and size >= 0:
            n = min(n, size)
        return self._take(n)

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class FileWrapper(object):
    """wsgi.file_wrapper: iterates a file in blocks and closes it."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        while True:
            block = read(self.blksize)
            if not block:
                return
            yield block


class Exchange(object):
    """One request/response: start_response, write() and the response frames."""
    __slots__ = ('conn', 'status', 'headers', 'state', 'length', 'environ')

    NEW, STREAMING, DONE, CANCELLED = 0, 1, 2, 3

    def __init__(self, conn, environ):
        self.conn = conn
        self.environ = environ
        self.status = None
        self.headers = None
        self.state = 0
        self.length = None

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.state != 0:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError('start_response called a second time without exc_info')
        if type(status) is not str:
            raise TypeError('status must be a str, not %r' % type(status).__name__)
        self.status = status
        self.headers = headers
        self.length = None
        for name, value in headers:
            if name.lower() == 'content-length':
                try:
                    self.length = int(value)
                except ValueError:
                    pass
        return self.write

    def head(self):
        if self.status is None:
            raise AssertionError('the app did not call start_response')
        parts = [self.status]
        for name, value in self.headers:
            parts.append(name)
            parts.append(value)
        return '\0'.join(parts).encode('latin-1')

    def full(self, body):
        """The whole response in one frame (the fast path)."""
        head = self.head()
        self.state = 2
        frame = FULL_HEAD.pack(4 + len(head) + len(body), 70, len(head)) + head  # 'F'
        if len(body) < BUFSIZE:
            self.conn.send(frame + body)
        else:
            self.conn.send(frame)
            self.conn.send(body)

    def chunk(self, data):
        """One BODY frame (the head first if not sent yet); waits for NEXT or CANCEL."""
        if self.state == 3:
            raise ClientGone('the client disconnected')
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError('response body chunks must be bytes, not %r' % type(data).__name__)
            data = bytes(data)
        conn = self.conn
        for i in range(0, len(data), CHUNK):
            piece = data[i:i + CHUNK]
            frame = HEADER.pack(len(piece), 66) + piece  # 'B'
            if self.state == 0:
                head = self.head()
                frame = HEADER.pack(len(head), 83) + head + frame  # 'S'
                self.state = 1
            conn.send(frame)
            f = conn.reply()
            if f[0] == 99:  # 'c'
                self.state = 3
                raise ClientGone('the client disconnected')
            if f[0] != 110:  # 'n'
                raise ProtocolError('unexpected frame %r while streaming' % chr(f[0]))

    def write(self, data):
        """The write() callable of start_response (unbuffered, as the PEP asks)."""
        if self.status is None:
            raise AssertionError('write() before start_response')
        if data:
            self.chunk(data)

    def respond(self, result):
        """Sends the app's iterable: one FULL frame when possible, else a stream."""
        if self.state == 0 and (type(result) is list or type(result) is tuple):
            if len(result) == 1:
                body = result[0]
                if type(body) is not bytes:
                    body = b''.join(result)
            else:
                body = b''.join(result)
            self.full(body)
            return
        for data in result:
            if not data:
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise TypeError('response body chunks must be bytes, not %r' % type(data).__name__)
                continue
            if self.state == 0 and self.length is not None and self.length == len(data) and type(data) is bytes:
                self.full(data)  # the declared length is complete: no stream needed
            elif self.state == 2:
                raise AssertionError('body longer than its Content-Length')
            else:
                self.chunk(data)
        if self.state == 0:
            self.full(b'')

    def finish(self):
        """Ends the protocol exchange after the app, its iterable and close() are done."""
        if self.state in (1, 3):
            self.conn.frame(69)  # 'E'
        self.state = 2

    def fail(self):
        """The app raised: 500 if nothing was sent, else cut the response."""
        if self.state == 0:
            self.conn.frame(88)  # 'X'
        elif self.state in (1, 3):
            self.conn.frame(65)  # 'A'
        self.state = 2


def handle(conn, app, base, has_body, text):
    items = text.split('\0')
    environ = base.copy()
    environ.update(zip(items[1::2], items[2::2]))
    environ['wsgi.input'] = Input(conn) if has_body else EMPTY_INPUT
    ex = Exchange(conn, environ)
    result = None
    try:
        result = app(environ, ex.start_response)
        ex.respond(result)
    except ClientGone:
        pass
    except ProtocolError:
        raise
    except BaseException:
        log_exception(environ, 'the app raised an exception')
        ex.fail()
    finally:
        close = getattr(result, 'close', None)
        if close is not None:
            try:
                close()
            except BaseException:
                log_exception(environ, "the response's close() raised")
                ex.fail()
    ex.finish()


def serve(conn, app, base):
    """Serves one channel until the worker closes it."""
    read_frame = conn.read_frame
    queued = conn.queued
    while True:
        if queued:
            has_body, text = queued.pop(0)
            handle(conn, app, base, has_body, text)
            continue
        f = read_frame()
        if f is None:
            return
        kind, a, b = f
        if kind != 82:  # 'R'
            raise ProtocolError('expected a request, got %r' % chr(kind))
        has_body, text = conn.request(a, b)
        handle(conn, app, base, has_body, text)


def serve_thread(conn, app, base):
    try:
        serve(conn, app, base)
    except BaseException:
        log_exception(None, 'adapter thread failed')
    # One channel down means the worker can no longer trust this process.
    os._exit(0)


def load(kind, target, name):
    if kind == 'file':
        import importlib.util
        path = os.path.abspath(target)
        spec = importlib.util.spec_from_file_location('molt_wsgi_file', path)
        if spec is None or spec.loader is None:
            raise ImportError('cannot load %s as a Python file' % target)
        module = importlib.util.module_from_spec(spec)
        sys.modules['molt_wsgi_file'] = module
        spec.loader.exec_module(module)
    else:
        import importlib
        module = importlib.import_module(target)
    app = getattr(module, name, None)
    if app is None:
        raise AttributeError('%s %s has no callable %r' % (kind, target, name))
    if not callable(app):
        raise TypeError('%s:%s is not callable' % (target, name))
    return app


class Spec(object):
    """What to serve: the app to load and the environ keys every request shares."""

    def __init__(self, args):
        self.kind, self.target, self.name = args[0], args[1], args[2]
        self.multithread, self.multiprocess = args[3] == '1', args[4] == '1'
        self.server_name, self.server_port = args[5], args[6]
        for path in reversed(args[7:]):
            sys.path.insert(0, os.path.abspath(path))

    def load(self):
        return load(self.kind, self.target, self.name)

    def base(self):
        return {
            'wsgi.version': (1, 0),
            'wsgi.url_scheme': 'http',
            'wsgi.errors': sys.stderr,
            'wsgi.multithread': self.multithread,
            'wsgi.multiprocess': self.multiprocess,
            'wsgi.run_once': False,
            'wsgi.input_terminated': True,
            'wsgi.file_wrapper': FileWrapper,
            'SERVER_NAME': self.server_name,
            'SERVER_PORT': self.server_port,
            'SCRIPT_NAME': '',
        }


def load_failed(conn):
    """The 'L' frame: the import's traceback, for the worker to print once."""
    conn.frame(76, traceback.format_exc().encode('utf-8', 'replace'))


def run(spec, conns, app=None):
    """Serves the worker's channels: loads the app unless given, says 'K', never returns."""
    if app is None:
        try:
            app = spec.load()
        except BaseException:
            load_failed(conns[0])
            os._exit(1)
    base = spec.base()
    ready = '%d Python %d.%d.%d at %s' % ((os.getpid(),) + sys.version_info[:3] + (sys.executable,))
    conns[0].frame(75, ready.encode('utf-8', 'replace'))  # 'K'
    for conn in conns[1:]:
        threading.Thread(target=serve_thread, args=(conn, app, base), daemon=True).start()
    serve_thread(conns[0], app, base)


def worker_main(args):
    """A child spawned by its worker: FDS then the app."""
    fds = [int(x) for x in args[0].split(',')]
    spec = Spec(args[1:])
    run(spec, [Conn(socket.socket(fileno=fd)) for fd in fds])


# The zygote: a preloaded interpreter (and, unless lazy-apps, the app) that forks each
# worker's child, so a recycled worker costs a fork instead of a new interpreter.
# A worker asks with one SEQPACKET message: its pid as ASCII, and by SCM_RIGHTS the read
# end of its lifeline pipe then its channel ends. The child joins the worker's process
# group (the master's kill of the worker's group takes it along), dies when the lifeline
# reads end of file (the worker is gone, however it died), and answers 'K' with its pid.
MAX_FDS = 1 + 64


def receive(req):
    """One fork request: (worker pid, [fds]); None when every sender is gone."""
    size = socket.CMSG_SPACE(MAX_FDS * 4)
    msg, ancdata, flags, addr = req.recvmsg(64, size)
    fds = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(struct.unpack('%di' % (usable // 4), data[:usable]))
    if not msg and not fds:
        return None
    try:
        return int(msg), fds
    except ValueError:
        for fd in fds:
            os.close(fd)
        return 0, []


def watch_lifeline(fd):
    """Ends this child as soon as its worker is gone (the pipe's write end closes)."""
    while True:
        try:
            if not os.read(fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGKILL)


def child(spec, app, worker, fds):
    """In the forked child: join the worker, then serve it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the app may wait for its own children
    lifeline, chans = fds[0], fds[1:]
    conns = [Conn(socket.socket(fileno=fd)) for fd in chans]
    try:
        os.setpgid(0, worker)
    except OSError:
        os._exit(1)  # the worker is gone already
    threading.Thread(target=watch_lifeline, args=(lifeline,), daemon=True).start()
    run(spec, conns, app)


def fork_for(req, spec, app, failure, worker, fds):
    """Forks one worker's child; a failed preload answers 'L' without forking."""
    if worker <= 0 or len(fds) < 2:
        for fd in fds:
            os.close(fd)
        return
    if failure is not None:
        try:
            Conn(socket.socket(fileno=fds[1])).frame(76, failure)
        except OSError:
            pass
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        return
    pid = os.fork()
    if pid == 0:
        try:
            req.close()
            child(spec, app, worker, fds)
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)


def zygote_main(args):
    req = socket.socket(fileno=int(args[0]))
    lazy = args[1] == '1'
    spec = Spec(args[2:])
    app, failure = None, None
    if not lazy:
        try:
            app = spec.load()
        except BaseException:
            failure = traceback.format_exc().encode('utf-8', 'replace')
    elif spec.kind == 'file':
        import importlib.util  # what a lazy child needs, imported once here
    # Children are reaped by the kernel (SIGCHLD ignored), not here: reaping a process
    # costs its parent the flush of its /proc entries, which can take seconds on a
    # busy machine, and the next worker would wait for it. The children do not need the
    # zygote: SIGTERM (a reload replaced it) ends it at once, and they live on with
    # their workers.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # Everything loaded so far stays shared with the children: out of the cyclic GC's
    # reach, a collection in a child does not write to (and so copy) every page.
    gc.collect()
    if hasattr(gc, 'freeze'):  # Python >= 3.7
        gc.freeze()
    while True:
        got = receive(req)
        if got is None:
            os._exit(0)  # every worker and the master are gone
        fork_for(req, spec, app, failure, got[0], got[1])


def reopen_log(*_):
    """SIGUSR2 (logrotate): stderr goes to a fresh open of molt's logto file."""
    path = os.environ.get('MOLT_LOGTO')
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        sys.stderr.write('molt wsgi: cannot reopen %s: %s\n' % (path, e))
        return
    os.dup2(fd, 2)
    os.close(fd)


def main():
    # Handled (never the default, which would kill): the worker forwards the SIGUSR2
    # that asks it to reopen the log.
    signal.signal(signal.SIGUSR2, reopen_log)
    # argv[0] is "-c", argv[1] the mode marker (also what ps shows)
    if sys.argv[1] == 'molt-zygote':
        zygote_main(sys.argv[2:])
    else:
        worker_main(sys.argv[2:])


main()
