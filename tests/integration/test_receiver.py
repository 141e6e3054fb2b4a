#!/usr/bin/env python3
"""Self-test of tests/servers/receiver.py (needs no herald binary).

Runs the receiver in CLI mode (as the README demo does) and as a module,
talks to it with http.client / raw sockets and checks the log and replies.
Prints TAP on stdout.
"""

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE.parent / "servers"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SERVERS))

from taplib import done_testing, is_, ok  # noqa: E402
from receiver import Receiver, SpecError, parse_spec  # noqa: E402

RECEIVER = str(SERVERS / "receiver.py")


def start_cli(tmp, *specs, max_seconds=60):
    port_file = Path(tmp) / "port"
    log = Path(tmp) / "log"
    argv = [sys.executable, RECEIVER, "--port-file", str(port_file), "--log", str(log),
            "--max-seconds", str(max_seconds)]
    for s in specs:
        argv += ["--respond", s]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    port = int(port_file.read_text()) if port_file.exists() else None
    return proc, port, log


def read_log(log):
    try:
        return [json.loads(l) for l in log.read_text().splitlines()]
    except (OSError, ValueError):
        return None


def request(port, method, path, body=None, headers=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def cli_mode():
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, log = start_cli(tmp, "200", "429;Retry-After=2;body=slow", "hang;delay=5",
                                    "close", "500;X-A=b")
        try:
            ok(port is not None and 0 < port < 65536, "CLI: port file written with a port",
               "port %r" % port)
            st, h, data = request(port, "POST", "/x?a=1&b=2", body=b"{}",
                                  headers={"Content-Type": "application/json", "X-Rep": "1"})
            is_((st, h.get("content-length"), data), (200, "0", b""), "CLI: default 200, empty body")
            st, h, data = request(port, "POST", "/y", body=b"\xff\xfe")
            is_((st, h.get("retry-after"), data), (429, "2", b"slow"), "CLI: 429 spec with header+body")
            t0 = time.monotonic()
            try:
                request(port, "GET", "/hang", timeout=1)
                hung = False
            except (socket.timeout, TimeoutError):
                hung = True
            ok(hung and time.monotonic() - t0 < 3, "CLI: hang spec does not answer")
            try:
                request(port, "GET", "/close")
                closed = False
            except (http.client.RemoteDisconnected, ConnectionError):
                closed = True
            ok(closed, "CLI: close spec drops the connection")
            st, h, _ = request(port, "DELETE", "/z")
            st2, _, _ = request(port, "GET", "/z2")
            is_((st, h.get("x-a"), st2), (500, "b", 500), "CLI: last spec repeats")
            entries = read_log(log) or []
            is_([(e["method"], e["path"], e["query"]) for e in entries],
                [("POST", "/x", "a=1&b=2"), ("POST", "/y", ""), ("GET", "/hang", ""),
                 ("GET", "/close", ""), ("DELETE", "/z", ""), ("GET", "/z2", "")],
                "CLI: every request logged (hang/close too) with method, path, query")
            e0 = entries[0] if entries else {}
            is_((e0.get("body"), e0.get("headers", {}).get("content-type"),
                 e0.get("headers", {}).get("x-rep")), ("{}", "application/json", "1"),
                "CLI: body and lower-cased headers logged")
            e1 = entries[1] if len(entries) > 1 else {}
            is_((e1.get("body"), e1.get("body_b64")),
                ("\ufffd\ufffd", base64.b64encode(b"\xff\xfe").decode()),
                "CLI: invalid UTF-8 body replaced, raw kept in body_b64")
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(5)
            except subprocess.TimeoutExpired:
                rc = None
            is_(rc, 0, "CLI: SIGTERM stops it with exit 0")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        proc, port, log = start_cli(tmp, max_seconds=1)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        proc.stdout.close()
        proc.stderr.close()
        ok(rc == 0 and time.monotonic() - t0 < 5, "CLI: --max-seconds 1 exits 0 by itself",
           "rc %r after %.1f s" % (rc, time.monotonic() - t0))


def module_mode():
    with Receiver(responses=["201"]) as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                  b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"HTTP/1.1 201") < 2 and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        s.close()
        is_(buf.count(b"HTTP/1.1 201"), 2, "module: two pipelined keep-alive requests answered")
        reqs = r.wait_for(2)
        is_([(q["method"], q["path"], q["body"]) for q in reqs],
            [("PUT", "/c", "hello world"), ("GET", "/k", "")],
            "module: chunked body decoded; requests() returns the log")
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.close()
        time.sleep(0.2)
        is_(len(r.requests()), 2, "module: a bare TCP connect is not logged")
    try:
        parse_spec("abc")
        bad = False
    except SpecError:
        bad = True
    ok(bad, "parse_spec rejects a bad code")
    sp = parse_spec("301;Location=http://example.invalid/a=b;delay=0.5")
    is_((sp.code, sp.headers, sp.delay), (301, [("Location", "http://example.invalid/a=b")], 0.5),
        "parse_spec splits header values on the first '='")


if __name__ == "__main__":
    for fn in (cli_mode, module_mode):
        try:
            fn()
        except Exception:
            import traceback
            ok(False, "%s ran to the end" % fn.__name__, traceback.format_exc())
    done_testing()
