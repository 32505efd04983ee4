"""The benchmark app: a 13-byte hello world, the same for every server."""


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])
    return [b'Hello, World!']
