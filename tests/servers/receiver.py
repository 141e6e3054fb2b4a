#!/usr/bin/env python3
"""Loopback HTTP receiver for herald's tests and the README demo.

Listens on 127.0.0.1 with a random port (never a fixed one), logs every
request as one JSON line and answers from a list of response specs.

CLI:
    receiver.py --port-file FILE --log FILE [--respond SPEC ...]
                [--max-seconds N] [--bind 127.0.0.1]

Module:
    from receiver import Receiver
    r = Receiver(responses=["429;Retry-After=2", "200"])
    r.start()            # background thread; port in r.port, URL in r.url
    ...
    r.requests()         # list of logged request dicts
    r.max_open()         # most requests open (logged, not answered) at once
    r.stop()

Response SPEC grammar (request i uses spec i; the last one repeats forever;
default "200"):
    CODE[;Header-Name=value]...[;body=TEXT][;delay=SECONDS]
    hang[;delay=SECONDS]     log, then sleep SECONDS (default 30) without
                             answering, then close the connection
    close                    log, then close the connection without answering
Examples: "429;Retry-After=2", "500;body=oops", "410",
"301;Location=http://example.invalid/".

Each logged request is one JSON object on one line:
    {"method", "path" (no query), "query" (raw), "headers" {lower-case name:
     value, repeats joined with ", "}, "body" (UTF-8, errors replaced),
     "body_b64", "t" (time.time())}
The line is written before the response is sent, so a test can see a request
that then hangs.

Only the Python 3 standard library is used.
"""

import argparse
import base64
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["Receiver", "ResponseSpec", "parse_spec"]

# Upper bound for a request body we are willing to buffer (tests only send
# small bodies; this just keeps a runaway client from eating memory).
MAX_BODY = 64 * 1024 * 1024


class SpecError(ValueError):
    pass


class ResponseSpec:
    """One parsed --respond SPEC."""

    __slots__ = ("kind", "code", "headers", "body", "delay", "text")

    def __init__(self, kind, code=None, headers=None, body=b"", delay=0.0, text=""):
        self.kind = kind            # "respond", "hang" or "close"
        self.code = code
        self.headers = headers or []
        self.body = body
        self.delay = delay
        self.text = text

    def __repr__(self):
        return "ResponseSpec(%r)" % self.text


def parse_spec(text):
    """Parse a SPEC string (see module docstring) into a ResponseSpec."""
    if isinstance(text, ResponseSpec):
        return text
    if isinstance(text, int):
        text = str(text)
    parts = text.split(";")
    head = parts[0].strip()
    rest = parts[1:]
    headers = []
    body = b""
    delay = None
    for item in rest:
        if item == "":
            continue
        if "=" not in item:
            raise SpecError("bad spec item %r in %r (want NAME=VALUE)" % (item, text))
        name, value = item.split("=", 1)
        name = name.strip()
        if name == "body":
            body = value.encode("utf-8")
        elif name == "delay":
            try:
                delay = float(value)
            except ValueError:
                raise SpecError("bad delay %r in %r" % (value, text)) from None
            if delay < 0:
                raise SpecError("negative delay in %r" % text)
        else:
            if not name or any(c in name for c in " \t\r\n:"):
                raise SpecError("bad header name %r in %r" % (name, text))
            if "\r" in value or "\n" in value:
                raise SpecError("bad header value in %r" % text)
            headers.append((name, value))
    low = head.lower()
    if low == "hang":
        if headers or body:
            raise SpecError("hang takes only delay=: %r" % text)
        return ResponseSpec("hang", delay=30.0 if delay is None else delay, text=text)
    if low == "close":
        if headers or body or delay is not None:
            raise SpecError("close takes no options: %r" % text)
        return ResponseSpec("close", text=text)
    if not head.isdigit() or not (100 <= int(head) <= 999):
        raise SpecError("bad status code %r in %r" % (head, text))
    return ResponseSpec("respond", code=int(head), headers=headers, body=body,
                        delay=0.0 if delay is None else delay, text=text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = False  # port 0 anyway; never steal a port
    # socketserver's default listen backlog of 5 drops the SYNs of a sender
    # with dozens of connections at once; real servers queue hundreds.
    request_queue_size = 256

    def __init__(self, addr, handler, receiver):
        self.receiver = receiver
        super().__init__(addr, handler)

    def handle_error(self, request, client_address):
        # Clients hanging up mid-request are normal in these tests.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            return
        if self.receiver.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "herald-test-receiver/1"

    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 65

    def log_message(self, fmt, *args):  # silence the default stderr log
        if self.server.receiver.verbose:
            sys.stderr.write("receiver: %s - %s\n" % (self.address_string(), fmt % args))

    # -- request body -------------------------------------------------------

    def _read_exact(self, n):
        chunks = []
        while n > 0:
            data = self.rfile.read(n)
            if not data:
                raise ConnectionError("client closed mid-body")
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)

    def _read_chunked(self):
        out = bytearray()
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed mid-chunk")
            size_txt = line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise ValueError("bad chunk size %r" % line) from None
            if size == 0:
                # trailers until the empty line
                while True:
                    t = self.rfile.readline(65537)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise ValueError("body too large")
            out += self._read_exact(size)
            self._read_exact(2)  # CRLF after each chunk

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            return self._read_chunked()
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise ValueError("bad Content-Length %r" % cl) from None
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length %r" % cl)
        return self._read_exact(n)

    # -- dispatch -----------------------------------------------------------

    def _handle(self):
        rcv = self.server.receiver
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True
            self.send_error(400, str(e))
            return
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True
            return

        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key in headers:
                headers[key] = headers[key] + ", " + value
            else:
                headers[key] = value
        target = self.path
        if target.startswith(("http://", "https://")):  # absolute-form
            target = urlsplit(target).path or "/"
            target += ("?" + urlsplit(self.path).query) if "?" in self.path else ""
        path, _, query = target.partition("?")
        query = query.split("#", 1)[0]
        entry = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "body_b64": base64.b64encode(body).decode("ascii"),
            "t": time.time(),
        }
        spec = rcv._log_and_pick(entry)
        try:
            if spec.kind == "hang":
                rcv._stop_event.wait(spec.delay)
            elif spec.delay > 0:
                rcv._stop_event.wait(spec.delay)
        finally:
            # Closed before the answer goes out: the client can only send its next
            # request after that, so max_open() never counts one request twice.
            rcv._closed_one()
        if spec.kind in ("close", "hang") or rcv._stop_event.is_set() and spec.delay > 0:
            self.close_connection = True
            self._hard_close()
            return

        self.send_response(spec.code)
        has_ct = False
        has_conn = False
        for name, value in spec.headers:
            low = name.lower()
            if low == "content-length":
                continue
            if low == "content-type":
                has_ct = True
            if low == "connection":
                has_conn = True
                if value.strip().lower() == "close":
                    self.close_connection = True
            self.send_header(name, value)
        no_body = spec.code < 200 or spec.code in (204, 304)
        if not no_body:
            if spec.body and not has_ct:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(spec.body)))
        if rcv._stop_event.is_set() and not has_conn:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not no_body and self.command != "HEAD" and spec.body:
            self.wfile.write(spec.body)
        self.wfile.flush()

    def _hard_close(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


for _m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
    setattr(_Handler, "do_" + _m, _Handler._handle)
del _m


class Receiver:
    """A loopback HTTP server running in a background thread.

    responses: list of SPEC strings (or ResponseSpec); default ["200"].
    log_path:  optional file that gets one JSON line per request.
    max_seconds: optional; the server stops itself after that long.
    """

    def __init__(self, responses=None, log_path=None, bind="127.0.0.1",
                 max_seconds=None, verbose=False):
        specs = list(responses) if responses else ["200"]
        self.specs = [parse_spec(s) for s in specs]
        self.log_path = log_path
        self.bind = bind
        self.max_seconds = max_seconds
        self.verbose = verbose
        self.port = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self._log = None
        self._server = None
        self._thread = None
        self._timer = None
        self._stop_event = threading.Event()
        self._stopped = False
        self._open = 0       # requests logged and not answered yet
        self._max_open = 0

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        if self.log_path is not None:
            self._log = open(self.log_path, "a", encoding="utf-8")
        self._server = _Server((self.bind, 0), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="receiver-%d" % self.port, daemon=True)
        self._thread.start()
        if self.max_seconds:
            self._timer = threading.Timer(self.max_seconds, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self):
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop_event.set()  # wake hanging/delayed handlers
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            self._cond.notify_all()

    def wait_stopped(self, timeout=None):
        """Block until stop() was called (by a signal, the timer, ...)."""
        return self._stop_event.wait(timeout)

    def __enter__(self):
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- data ---------------------------------------------------------------

    @property
    def url(self):
        return "http://%s:%d" % (self.bind, self.port)

    def requests(self):
        """The parsed list of logged request dicts (a copy)."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def wait_for(self, n, timeout=5.0):
        """Wait until at least n requests were logged; return the list."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return [dict(r) for r in self._requests]

    def max_open(self):
        """The most requests that were open (logged, not yet answered) at one time."""
        with self._lock:
            return self._max_open

    def _closed_one(self):
        with self._lock:
            self._open -= 1

    def _log_and_pick(self, entry):
        line = json.dumps(entry, ensure_ascii=True, sort_keys=True) + "\n"
        with self._cond:
            i = len(self._requests)
            self._requests.append(entry)
            self._open += 1
            self._max_open = max(self._max_open, self._open)
            if self._log is not None:
                self._log.write(line)
                self._log.flush()
            self._cond.notify_all()
        return self.specs[min(i, len(self.specs) - 1)]


def _write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
        f.flush()
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Loopback HTTP receiver for herald tests.")
    ap.add_argument("--port-file", required=True,
                    help="written atomically with the port number once listening")
    ap.add_argument("--log", required=True, help="JSON-lines request log (appended)")
    ap.add_argument("--respond", action="append", default=[], metavar="SPEC",
                    help="response for the next request; the last one repeats")
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="stop after this many seconds (default 120)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    try:
        specs = [parse_spec(s) for s in (args.respond or ["200"])]
    except SpecError as e:
        ap.error(str(e))

    rcv = Receiver(responses=specs, log_path=args.log, bind=args.bind,
                   max_seconds=None, verbose=args.verbose)

    def on_signal(signum, frame):
        rcv._stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    rcv.start()
    _write_port_file(args.port_file, rcv.port)
    if args.verbose:
        sys.stderr.write("receiver: listening on %s\n" % rcv.url)
    # The main thread waits; signals and the deadline both end the wait.
    deadline = time.monotonic() + args.max_seconds if args.max_seconds > 0 else None
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        if rcv._stop_event.wait(1.0 if left is None else min(left, 1.0)):
            break
    rcv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
