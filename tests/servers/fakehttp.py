#!/usr/bin/env python3
"""fakehttp.py - what the loopback fakes of hosted services share: a threaded server on a
random 127.0.0.1 port, a JSON reply helper, a request log, start/stop as a context manager.
Only the Python standard library is used."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # senders open dozens of connections at once

    def __init__(self, fake, handler):
        self.fake = fake
        super().__init__(("127.0.0.1", 0), handler)


class JsonHandler(BaseHTTPRequestHandler):
    """Subclasses implement respond(fake, method, url_parts, body_bytes)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj, headers=None):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        u = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.fake.log({"method": self.command, "path": u.path, "query": u.query,
                              "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body.decode("utf-8", "replace")})
        self.respond(self.server.fake, self.command, u, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class FakeServer:
    handler = JsonHandler

    def __init__(self):
        self.lock = threading.Lock()
        self._requests = []
        self._server = None

    def __enter__(self):
        self._server = _Server(self, self.handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        return False

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def log(self, entry):
        with self.lock:
            self._requests.append(entry)

    def requests(self):
        with self.lock:
            return list(self._requests)
