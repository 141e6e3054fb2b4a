#!/usr/bin/env python3
"""bench.py - the measurements behind bench/run and bench/quick (which build herald first).

Every figure is measured several times in one run and reported as median and spread (min-max);
ratios are taken between figures of the same run. Every delivery figure is checked against
what the receiver counted (nginx answering 204 and logging one 4-byte line per request, or
bench/latency's own receiver), and against what herald itself says it sent (`herald queue`).
Nothing here is a pass/fail test of timing, except --ci's order-of-magnitude ratios.
"""
import argparse
import json
import os
import platform
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Debian's apprise package is installed for Debian's interpreter, whichever python3 runs this.
DEBIAN_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, unit=""):
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if abs(x) >= 100:
        s = "{:,.0f}".format(x)
    elif abs(x) >= 10:
        s = "%.1f" % x
    else:
        s = "%.2f" % x
    return s + unit


def spread(xs):
    return "%s-%s" % (fmt(min(xs)), fmt(max(xs))) if xs else "-"


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


def above(r):
    """How far a figure that must reach its target (r = figure / target) is from it."""
    if r != r:
        return "n/a"
    return "%.1f%% above" % (100 * (r - 1)) if r >= 1 else "%.1f%% short" % (100 * (1 - r))


def below(r):
    """How far a figure that must stay within its limit (r = figure / limit) is from it."""
    if r != r:
        return "n/a"
    return "%.1f%% under" % (100 * (1 - r)) if r <= 1 else "%.1f%% over" % (100 * (r - 1))


def count(n):
    return "{:,}".format(n)


def wait_for(pred, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def proc_kib(pid, key="VmRSS"):
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def loadavg():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


class Nginx:
    """nginx on a random loopback port: 204 for everything, one 4-byte log line a request."""

    def __init__(self, tmp):
        self.dir = Path(tmp) / "nginx"
        self.dir.mkdir()
        for _ in range(3):  # the free port may be taken before nginx binds it
            if self._start():
                self.url = "http://127.0.0.1:%d" % self.port
                return
        raise SystemExit("bench: nginx did not start (see %s/error.log)" % self.dir)

    def _start(self):
        self.port = free_port()
        self.log = self.dir / "count.log"
        conf = self.dir / "nginx.conf"
        conf.write_text("""
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 8192; }
http {
  log_format c '$status';
  access_log %(d)s/count.log c;
  client_body_temp_path %(d)s/body;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:%(p)d backlog=4096;
    location / { return 204; }
  }
}
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if wait_for(lambda: self._up() or self.proc.poll() is not None, 5):
            time.sleep(0.1)  # an nginx that could not bind exits at once
            if self.proc.poll() is None:
                return True
        self.proc.kill()
        self.proc.wait()
        return False

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def count(self):
        try:
            return self.log.stat().st_size // 4  # "204\n"
        except OSError:
            return 0

    def reset(self):
        with open(self.log, "w"):
            pass

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Hang:
    """Loopback listeners that accept connections and never answer: destinations that hang
    until the sender gives up, one port each (libcurl limits connections per host and port,
    so one port would not be `ports` destinations). Counts the connections held at once."""

    def __init__(self, ports):
        self.sel = selectors.DefaultSelector()
        self.listeners, self.ports = [], []
        for _ in range(ports):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(4096)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, "listener")
            self.listeners.append(s)
            self.ports.append(s.getsockname()[1])
        self.held = self.max_held = self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            for key, _ in self.sel.select(0.2):
                if key.data == "listener":
                    while True:
                        try:
                            c, _ = key.fileobj.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        c.setblocking(False)
                        self.sel.register(c, selectors.EVENT_READ, None)
                        self.held += 1
                        self.accepted += 1
                        self.max_held = max(self.max_held, self.held)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # the sender gave up
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()
                    self.held -= 1
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()

    def reset_max(self):
        self.max_held = self.held

    def stop(self):
        self.stopping = True
        self.thread.join(5)


class Bench:
    def __init__(self, args):
        self.a = args
        self.herald = args.herald
        self.heraldd = args.heraldd
        b = Path(args.build) / "bench"
        self.submit = str(b / "submit")
        self.latency_bin = str(b / "latency")
        self.httplat = str(b / "httplat")
        self.claimbench = str(b / "claimbench")
        self.routebench = str(b / "routebench")
        self.runrss = str(b / "runrss")
        self.tmp = tempfile.mkdtemp(prefix="herald-bench-")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("HERALD_CONFIG", "HERALD_PLUGIN_PATH") and "proxy" not in k.lower()}
        if args.libdir:
            self.env["LD_LIBRARY_PATH"] = args.libdir
        if args.plugin_path:
            self.env["HERALD_PLUGIN_PATH"] = args.plugin_path
        self.results = {}
        self.notes = []
        self.failures = []  # receiver and herald disagree: the figure is not trustworthy
        self.ngx = Nginx(self.tmp)

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
            print("bench: MISMATCH: " + what, file=sys.stderr, flush=True)

    # ---- herald plumbing ----

    def config(self, name, channels=(), extra=""):
        """A fresh queue directory and configuration; channels: (name, url, settings)."""
        d = Path(self.tmp) / name
        d.mkdir()
        conf = d / "herald.conf"
        ch = ",\n  ".join('{ name = "%s"; plugin = "webhook"; url = "%s";%s }' % (
            n, url, "".join(" %s = %s;" % kv for kv in settings.items()))
            for n, url, settings in channels)
        conf.write_text('database = "%s/q.db";\nsocket = "%s/d.sock";\n'
                        'secret_key = "%s/secret.key";\n%s\nchannels = (\n  %s\n);\n' % (
                            d, d, d, extra, ch))
        return d, str(conf)

    def hook_config(self, name, max_concurrent=128):
        return self.config(name, [("hook", self.ngx.url + "/hook",
                                   {"max_concurrent": max_concurrent})])

    def cli(self, conf, *argv, check=True):
        r = subprocess.run([self.herald, "-c", conf] + list(argv), env=self.env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        if check and r.returncode != 0:
            raise SystemExit("bench: herald %s: %s" % (" ".join(argv), r.stderr.strip()))
        return r.stdout

    def sent(self, conf, channel=None):
        """What herald says it delivered: sent deliveries, per `herald queue --json`."""
        rows = json.loads(self.cli(conf, "queue", "--json") or "[]")
        return sum(r.get("sent", 0) for r in rows if channel is None or r["channel"] == channel)

    def daemon(self, d, conf):
        p = subprocess.Popen([self.heraldd, "-c", conf, "--foreground"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=open(d / "heraldd.log", "ab"))
        sock = str(d / "d.sock")

        def up():
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                s.close()
                return True
            except OSError:
                return False
        if not wait_for(up, 10):
            p.kill()
            p.wait()
            raise SystemExit("bench: heraldd did not start: %s" % (d / "heraldd.log").read_text())
        return p, sock

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def submit_n(self, sock, n, to=None):
        argv = [self.submit, sock, str(n)] + ([to] if to else [])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        rep = json.loads(out.stdout or "{}")
        if rep.get("acked") != n:
            raise SystemExit("bench: only %s of %d submits acked: %s" % (rep, n, out.stderr))
        return rep

    def burst(self, sock, n, expect, to=None):
        """Submit n events on one connection; seconds until nginx counted `expect`."""
        self.ngx.reset()
        t0 = time.perf_counter()
        self.submit_n(sock, n, to)
        t_ack = time.perf_counter() - t0
        if not wait_for(lambda: self.ngx.count() >= expect, 900, 0.005):
            raise SystemExit("bench: nginx counted %d of %d" % (self.ngx.count(), expect))
        t_done = time.perf_counter() - t0
        time.sleep(0.3)  # anything extra (a duplicate) would arrive now
        return {"n": n, "ack_s": t_ack, "done_s": t_done, "counted": self.ngx.count()}

    def verify(self, what, conf, expect, counted, channel=None):
        """The receiver's count and herald's own count of sent deliveries both equal expect."""
        self.check(counted == expect, "%s: the receiver counted %d, expected %d" % (
            what, counted, expect))
        got = [0]

        def settled():
            got[0] = self.sent(conf, channel)
            return got[0] >= expect
        wait_for(settled, 10, 0.1)
        self.check(got[0] == expect, "%s: herald says it sent %d, expected %d" % (
            what, got[0], expect))

    # ---- 1-4: throughput, side by side ----

    def wrk_once(self):
        lua = Path(self.tmp) / "post.lua"
        if not lua.exists():
            body = json.dumps({"id": "01a2035f-d32c-727e-8e1d-145cbac947c7",
                               "type": "bench.event", "severity": "notice",
                               "title": "bench 12345", "body": "a benchmark notification",
                               "fields": {"seq": "12345"}, "data": None, "source": None,
                               "timestamp": "2026-11-22T13:09:01.356Z"}, separators=(",", ":"))
            lua.write_text('wrk.method = "POST"\nwrk.body = %s\n'
                           'wrk.headers["Content-Type"] = "application/json"\n' % json.dumps(body))
        self.ngx.reset()
        reqs, rate, _ = self.run_wrk(lua, self.ngx.url + "/hook")
        time.sleep(0.2)
        counted = self.ngx.count()
        # wrk stops with up to 128 requests on the wire, which it does not count. A
        # disagreement beyond that is wrk's (timeouts), so a note rather than a mismatch.
        if not reqs <= counted <= reqs + 128:
            self.notes.append("wrk reported %d requests, nginx counted %d" % (reqs, counted))
        return rate

    def run_wrk(self, lua, url):
        """wrk -t1 -c128 for the configured seconds: (requests, requests/s, non-2xx)."""
        out = subprocess.run(["wrk", "-t1", "-c128", "-d%ds" % self.a.wrk_seconds, "-s",
                              str(lua), url], capture_output=True, text=True, timeout=120).stdout
        reqs = int(next(ln.split()[0] for ln in out.splitlines() if " requests in " in ln))
        rate = float(next(ln.split()[1] for ln in out.splitlines()
                          if ln.startswith("Requests/sec:")))
        bad = sum(int(ln.split(":")[1]) for ln in out.splitlines()
                  if ln.strip().startswith("Non-2xx or 3xx responses:"))
        return reqs, rate, bad

    def http_setup(self, name):
        """A queue with the webhook channel to nginx and an HTTP API on a free loopback port:
        (dir, conf, port, submit token), or the token's error as a string."""
        port = free_port()
        d, conf = self.config(name, [("hook", self.ngx.url + "/hook", {"max_concurrent": 128})],
                              'http = { listen = "127.0.0.1:%d"; rate_limit = 1000000; };'
                              % port)
        r = subprocess.run([self.herald, "-c", conf, "token", "create", "--name", "bench",
                            "--scope", "submit"], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0 or not r.stdout.strip():
            return r.stderr.strip() or "no token printed"
        return d, conf, port, r.stdout.split()[0]

    def http_daemon(self, d, conf, port):
        """heraldd on conf, once its HTTP port answers."""
        p, _ = self.daemon(d, conf)
        if not wait_for(lambda: self.port_up(port), 10):
            self.stop(p)
            raise SystemExit("bench: heraldd does not listen on its HTTP port: %s" %
                             (d / "heraldd.log").read_text())
        return p

    def http_once(self, i, paused=False):
        """wrk POSTs events to heraldd's HTTP API (keep-alive, 128 connections, a submit
        token), each to the webhook channel; None when this herald has no HTTP API. paused:
        the channel is disabled first, so the figure is durable acceptance alone (every
        event stored with its delivery pending) rather than acceptance while delivering."""
        setup = self.http_setup("http%s%d" % ("p" if paused else "", i))
        if isinstance(setup, str):
            return None
        d, conf, port, token = setup
        if paused:
            self.cli(conf, "channel", "disable", "hook")
        lua = Path(self.tmp) / ("http%d.lua" % i)
        lua.write_text('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = '
                       '"application/json"\nwrk.headers["Authorization"] = "Bearer %s"\n' % (
                           json.dumps(json.dumps({"type": "bench.event", "title": "bench",
                                                  "body": "a benchmark notification",
                                                  "fields": {"seq": "1"}},
                                                 separators=(",", ":"))), token))
        p = self.http_daemon(d, conf, port)
        try:
            self.ngx.reset()
            t0 = time.perf_counter()
            reqs, rate, bad = self.run_wrk(lua, "http://127.0.0.1:%d/v1/events" % port)
            rows = json.loads(self.cli(conf, "queue", "--json") or "[]")
            accepted = sum(v for row in rows for k, v in row.items()
                           if k in ("pending", "inflight", "sent", "failed", "dead", "deferred"))
            if paused:
                pending = sum(row.get("pending", 0) for row in rows)
                self.check(bad == 0, "HTTP API (paused) run %d: %d answers were not 2xx" % (
                    i, bad))
                self.check(reqs <= accepted <= reqs + 128 and pending == accepted,
                           "HTTP API (paused) run %d: wrk saw %d accepted, herald stored %d, "
                           "%d pending" % (i, reqs, accepted, pending))
                return {"accepted": rate}
            if not wait_for(lambda: self.ngx.count() >= accepted, 300, 0.005):
                raise SystemExit("bench: HTTP API: nginx counted %d of %d" % (
                    self.ngx.count(), accepted))
            t_done = time.perf_counter() - t0
            time.sleep(0.3)
            self.check(bad == 0, "HTTP API run %d: %d answers were not 2xx" % (i, bad))
            # wrk does not count the requests still on the wire when it stops.
            self.check(reqs <= accepted <= reqs + 128, "HTTP API run %d: wrk saw %d accepted, "
                       "herald stored %d" % (i, reqs, accepted))
            self.verify("HTTP API run %d" % i, conf, accepted, self.ngx.count())
            rss = proc_kib(p.pid, "VmHWM") / 1024
        finally:
            self.stop(p)
        return {"delivered": accepted / t_done, "accepted": rate, "rss": rss}

    @staticmethod
    def port_up(port):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    def herald_once(self, i):
        n = self.a.burst
        d, conf = self.hook_config("tp%d" % i)
        p, sock = self.daemon(d, conf)
        try:
            r = self.burst(sock, n, n)
            rss = proc_kib(p.pid, "VmHWM") / 1024
            self.verify("burst %d" % i, conf, n, r["counted"])
        finally:
            self.stop(p)
        return n / r["done_s"], n / r["ack_s"], rss

    def fanout_template(self, subs):
        """A queue holding `subs` webhook subscriptions to bench.*, made with `herald webhook
        add` once and copied for every run."""
        d, conf = self.config("fan%d-template" % subs)
        for i in range(subs):
            self.cli(conf, "webhook", "add", "--name", "s%d" % i, "--url",
                     "%s/s%d" % (self.ngx.url, i), "--events", "bench.*", "--signature", "none")
        return d

    def fanout_once(self, template, subs, i):
        n = self.a.fanout_deliveries // subs
        d, conf = self.config("fan%d-%d" % (subs, i))
        for f in ("q.db", "secret.key"):
            shutil.copy2(template / f, d / f)
        p, sock = self.daemon(d, conf)
        try:
            r = self.burst(sock, n, n * subs)
            self.verify("fan-out to %d, run %d" % (subs, i), conf, n * subs, r["counted"])
        finally:
            self.stop(p)
        return n * subs / r["done_s"]

    def apprise_once(self, targets):
        n = self.a.apprise_notifications // targets
        base = "json://127.0.0.1:%d" % self.ngx.port
        self.ngx.reset()
        r = subprocess.run([DEBIAN_PYTHON, str(HERE / "apprise_api.py"), base, str(targets),
                            str(n)], capture_output=True, text=True, timeout=600, env=self.env)
        if r.returncode != 0:
            raise SystemExit("bench: apprise_api.py: %s" % r.stderr)
        rep = json.loads(r.stdout)
        time.sleep(0.3)
        counted = self.ngx.count()
        self.check(rep["ok"] == n and counted == n * targets,
                   "Apprise, %d targets: %d of %d notify() calls succeeded, nginx counted %d "
                   "of %d" % (targets, rep["ok"], n, counted, n * targets))
        self.results.setdefault("apprise_version", rep["version"])
        return n * targets / rep["seconds"]

    def side_by_side(self):
        """Ceiling, herald, fan-out and Apprise alternate, rep after rep, so that the
        machine's drift hits them alike; ratios are taken within each rep."""
        have_apprise = not self.a.ci and Path(DEBIAN_PYTHON).exists() and subprocess.run(
            [DEBIAN_PYTHON, "-c", "import apprise"], capture_output=True).returncode == 0
        fans = [s for s in self.a.fanout if s]
        templates = {s: self.fanout_template(s) for s in fans}
        R = {"ceiling": [], "herald": [], "herald_ack": [], "herald_rss": [], "http": [],
             "http_ack": [], "http_rss": [], "http_paused": [],
             "fanout": {s: [] for s in fans}, "apprise": {1: [], 10: []} if have_apprise else {}}
        for i in range(self.a.reps):
            R["ceiling"].append(self.wrk_once())
            rate, ack, rss = self.herald_once(i)
            R["herald"].append(rate)
            R["herald_ack"].append(ack)
            R["herald_rss"].append(rss)
            if self.a.http and (i == 0 or R["http"]):
                h = self.http_once(i)
                if h:
                    R["http"].append(h["delivered"])
                    R["http_ack"].append(h["accepted"])
                    R["http_rss"].append(h["rss"])
                    R["http_paused"].append(self.http_once(i, paused=True)["accepted"])
            for s in fans:
                R["fanout"][s].append(self.fanout_once(templates[s], s, i))
            for t in R["apprise"]:
                R["apprise"][t].append(self.apprise_once(t))
            print("bench:   rep %d: wrk %s/s, herald %s/s%s%s%s" % (
                i + 1, fmt(R["ceiling"][-1]), fmt(rate),
                ", HTTP API %s/s" % fmt(R["http"][-1]) if R["http"] else "",
                "".join(", fan-out %d %s/s" % (s, fmt(R["fanout"][s][-1])) for s in fans),
                "".join(", Apprise %d %s/s" % (t, fmt(R["apprise"][t][-1]))
                        for t in R["apprise"])), file=sys.stderr, flush=True)
        self.results["side"] = R

    # ---- 4b: one notification from the command line ----

    def one_send(self):
        """Wall time and peak RSS of one notification: `herald send` to a running daemon and
        embedded, `curl`, and the `apprise` CLI, interleaved run by run."""
        d, conf = self.hook_config("one")
        d2, conf2 = self.hook_config("one-embedded")  # no daemon on its socket
        p, sock = self.daemon(d, conf)
        cmds = {
            "daemon": [self.herald, "-c", conf, "send", "-e", "bench.one", "one"],
            "embedded": [self.herald, "-c", conf2, "send", "-e", "bench.one", "one"],
            "curl": ["curl", "-s", "-o", "/dev/null", "-X", "POST", "-H",
                     "Content-Type: application/json", "-d", '{"title":"one"}',
                     self.ngx.url + "/curl"],
        }
        if not self.a.ci and shutil.which("apprise"):
            cmds["apprise"] = ["apprise", "-t", "one", "-b", "a benchmark notification",
                               "json://127.0.0.1:%d/apprise" % self.ngx.port]
        res = {k: {"wall_ms": [], "rss_mib": []} for k in cmds}
        self.ngx.reset()
        expect = len(cmds) * self.a.runs
        try:
            if self.a.hyperfine and shutil.which("hyperfine"):
                expect += len(cmds) * (self.a.runs + 3)
                for k, argv in cmds.items():
                    res[k]["hyperfine_ms"] = self.hyperfine(argv)
            for _ in range(self.a.runs):
                for k, argv in cmds.items():
                    r = subprocess.run([self.runrss] + argv, env=self.env, capture_output=True,
                                       text=True, stdin=subprocess.DEVNULL, timeout=60)
                    m = json.loads(r.stdout.strip().splitlines()[-1])
                    if m["status"] != 0:
                        raise SystemExit("bench: %s failed: %s" % (" ".join(argv), r.stderr))
                    res[k]["wall_ms"].append(m["wall_ms"])
                    res[k]["rss_mib"].append(m["maxrss_kib"] / 1024)
            time.sleep(0.3)
            got = self.ngx.count()
            self.check(got == expect, "one-shot sends: nginx counted %d for %d" % (got, expect))
            per = expect // len(cmds)
            self.verify("herald send to heraldd", conf, per, per)
        finally:
            self.stop(p)
        self.verify("herald send, embedded", conf2, per, per)
        self.results["one_send"] = res

    def hyperfine(self, argv):
        """hyperfine's median wall time (ms) of argv: 3 warm-up runs, then self.a.runs."""
        out = Path(self.tmp) / "hyperfine.json"
        r = subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs",
                            str(self.a.runs), "--export-json", str(out), shlex.join(argv)],
                           env=self.env, capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise SystemExit("bench: hyperfine %s: %s" % (argv[0], r.stderr))
        return json.loads(out.read_text())["results"][0]["median"] * 1e3

    # ---- 5: latency ----

    def latency(self):
        """bench/latency paces events into heraldd and is the webhook receiver itself."""
        per_rate = {}
        for i in range(self.a.reps):
            d = Path(self.tmp) / ("lat%d" % i)
            d.mkdir()
            portfile = d / "port"
            sock = str(d / "d.sock")
            lp = subprocess.Popen([self.latency_bin, str(portfile), sock,
                                   str(self.a.latency_seconds)] +
                                  [str(r) for r in self.a.rates],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if not wait_for(portfile.exists, 10):
                lp.kill()
                raise SystemExit("bench: bench/latency did not start: %s" % lp.stderr.read())
            port = int(portfile.read_text())
            conf = d / "herald.conf"
            conf.write_text('database = "%s/q.db";\nsocket = "%s";\nchannels = ( { name = '
                            '"hook"; plugin = "webhook"; url = "http://127.0.0.1:%d/hook"; '
                            'max_concurrent = 128; } );\n' % (d, sock, port))
            try:
                p, _ = self.daemon(d, str(conf))
                try:
                    out, err = lp.communicate(timeout=60 + len(self.a.rates) *
                                              (self.a.latency_seconds + 15))
                finally:
                    self.stop(p)
            finally:
                if lp.poll() is None:
                    lp.kill()
                    lp.wait()
            if lp.returncode != 0:
                raise SystemExit("bench: bench/latency failed: %s" % err)
            total = 0
            for line in out.splitlines():
                r = json.loads(line)
                total += r["events"]
                self.check(r["delivered"] == r["events"] and r["duplicates"] == 0 and
                           r["stray"] == 0 and r["acked"] == r["events"],
                           "latency at %d/s: %d events, %d acked, %d delivered, %d duplicates"
                           % (r["rate"], r["events"], r["acked"], r["delivered"],
                              r["duplicates"]))
                per_rate.setdefault(int(r["rate"]), []).append(r)
            warmup = 500
            self.verify("latency run %d" % i, str(conf), total + warmup, total + warmup)
            print("bench:   rep %d: %s" % (i + 1, ", ".join(
                "%d/s p99 %.2f ms" % (rt, v[-1]["p99_ms"]) for rt, v in per_rate.items())),
                file=sys.stderr, flush=True)
        self.results["latency"] = per_rate

    # ---- 5b: latency of the HTTP API's durable acceptance ----

    def http_latency(self):
        """bench/httplat POSTs events to heraldd's HTTP API at fixed rates (open loop, a pool
        of keep-alive connections) and times each 202; every 202 must become a delivery."""
        per_rate = {}
        for i in range(self.a.reps):
            setup = self.http_setup("httplat%d" % i)
            if isinstance(setup, str):
                self.notes.append("HTTP API latency not measured: `herald token create` "
                                  "failed: %s" % setup)
                return
            d, conf, port, token = setup
            p = self.http_daemon(d, conf, port)
            try:
                self.ngx.reset()
                hl = subprocess.run([self.httplat, "127.0.0.1", str(port), token,
                                     str(self.a.latency_seconds)] +
                                    [str(x) for x in self.a.rates], capture_output=True,
                                    text=True, timeout=60 + len(self.a.rates) *
                                    (self.a.latency_seconds + 15))
                if hl.returncode != 0:
                    raise SystemExit("bench: bench/httplat failed: %s" % hl.stderr)
                if hl.stderr.strip():
                    self.notes.append("HTTP API latency run %d: %s" % (i, hl.stderr.strip()))
                accepted = 500  # the warm-up's, not reported (it says so on stderr if not)
                for line in hl.stdout.splitlines():
                    x = json.loads(line)
                    accepted += x["ok"]
                    self.check(x["ok"] == x["requests"] and x["unanswered"] == 0,
                               "HTTP API latency at %d/s: %d requests, %d accepted (202), %d "
                               "other (first: %d), %d unanswered" % (
                                   x["rate"], x["requests"], x["ok"], x["other"],
                                   x["other_status"], x["unanswered"]))
                    per_rate.setdefault(int(x["rate"]), []).append(x)
                rows = json.loads(self.cli(conf, "queue", "--json") or "[]")
                stored = sum(v for row in rows for k, v in row.items()
                             if k in ("pending", "inflight", "sent", "failed", "dead",
                                      "deferred"))
                self.check(stored == accepted, "HTTP API latency run %d: %d accepted (202), "
                           "herald stored %d deliveries" % (i, accepted, stored))
                wait_for(lambda: self.ngx.count() >= accepted, 300, 0.005)
                time.sleep(0.3)
                self.verify("HTTP API latency run %d" % i, conf, accepted, self.ngx.count())
            finally:
                self.stop(p)
            print("bench:   rep %d: %s" % (i + 1, ", ".join(
                "%d/s p99 %.2f ms" % (rt, v[-1]["p99_ms"]) for rt, v in per_rate.items())),
                file=sys.stderr, flush=True)
        self.results["http_latency"] = per_rate

    # ---- 6: scaling with the queue's depth ----

    def drain(self, depth, i, curve=False):
        """heraldd with `depth` deliveries pending (submitted while the channel was disabled):
        deliveries/s from the first delivery to the last once enabled, and heraldd's RSS."""
        d, conf = self.hook_config("depth%d-%d" % (depth, i))
        self.cli(conf, "channel", "disable", "hook")
        p, sock = self.daemon(d, conf)
        samples = []  # (seconds, delivered, rss MiB)
        try:
            self.ngx.reset()
            t0 = time.perf_counter()
            self.submit_n(sock, depth)
            fill_s = time.perf_counter() - t0
            time.sleep(0.5)
            rss_full = proc_kib(p.pid) / 1024
            self.check(self.ngx.count() == 0, "depth %d: delivered while disabled" % depth)
            self.cli(conf, "channel", "enable", "hook")
            if not wait_for(lambda: self.ngx.count() > 0, 10, 0.002):
                raise SystemExit("bench: depth %d: nothing delivered after enable" % depth)
            t1, c1 = time.perf_counter(), self.ngx.count()
            rss_max, last = rss_full, t1
            while True:
                c, now = self.ngx.count(), time.perf_counter()
                if curve and now - last >= 0.5:
                    rss = proc_kib(p.pid) / 1024
                    samples.append((now - t1, c, rss))
                    rss_max, last = max(rss_max, rss), now
                if c >= depth:
                    break
                if now - t1 > 900:
                    raise SystemExit("bench: depth %d: nginx counted %d" % (depth, c))
                time.sleep(0.002)
            t2 = time.perf_counter()
            rss_max = max(rss_max, proc_kib(p.pid) / 1024)
            time.sleep(0.3)
            self.verify("depth %d, run %d" % (depth, i), conf, depth, self.ngx.count())
            rss_end = proc_kib(p.pid) / 1024
            hwm = proc_kib(p.pid, "VmHWM") / 1024
        finally:
            self.stop(p)
        return {"depth": depth, "rate": (depth - c1) / (t2 - t1), "fill_per_s": depth / fill_s,
                "rss_full": rss_full, "rss_max": rss_max, "rss_end": rss_end, "hwm": hwm,
                "samples": samples, "drain_s": t2 - t1}

    def depth(self):
        runs = {}
        for i in range(self.a.depth_reps):
            for depth in self.a.depths:
                if depth >= 10 ** 6 and i > 0:
                    continue  # once: a million takes a minute and a half
                r = self.drain(depth, i, curve=depth == max(self.a.depths))
                runs.setdefault(depth, []).append(r)
                print("bench:   %s pending: %s/s, RSS %.1f MiB" % (
                    count(depth), fmt(r["rate"]), r["rss_max"]), file=sys.stderr, flush=True)
        self.results["depth"] = runs

    def claims(self):
        out = {}
        order = [0, self.a.deep] * self.a.claim_reps  # alternated, so drift hits both alike
        for i, pending in enumerate(order):
            db = Path(self.tmp) / ("claim%d.db" % i)
            r = subprocess.run([self.claimbench, str(db), str(pending), str(self.a.cycles)],
                               capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                raise SystemExit("bench: claimbench: %s" % r.stderr)
            out.setdefault(pending, []).append(json.loads(r.stdout)["per_s"])
            for f in Path(self.tmp).glob("claim%d.db*" % i):
                f.unlink()
        self.results["claims"] = out

    def routing(self):
        argv = [self.routebench] + (["--quick"] if self.a.quick else []) + self.a.route_points
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=1800)
        if r.returncode != 0:
            raise SystemExit("bench: routebench: %s" % r.stderr)
        self.results["routing"] = r.stdout.strip()

    # ---- 7: slow destinations ----

    def slow_once(self, hang, i, alone_s=None):
        """A burst to the fast channel; with alone_s (the burst's time alone), next to the slow
        channels, each with deliveries hanging, and cut off at 3 x alone_s + 10 s: a starved
        channel is reported with what it delivered by then."""
        n = self.a.slow_burst
        impeded = alone_s is not None
        slow = ["slow%d" % k for k in range(self.a.slow_destinations)]
        channels = [(s, "http://127.0.0.1:%d/%s" % (port, s), {"timeout": 5})
                    for s, port in zip(slow, hang.ports)]
        channels.append(("fast", self.ngx.url + "/fast", {"max_concurrent": 128}))
        d, conf = self.config("slow%d-%s" % (i, "on" if impeded else "off"), channels)
        p, sock = self.daemon(d, conf)
        try:
            held = 0
            if impeded:
                self.submit_n(sock, self.a.slow_events, ",".join(slow))
                wait_for(lambda: hang.held >= 1000, 5, 0.05)
                hang.reset_max()
                held = hang.held
            self.ngx.reset()
            t0 = time.perf_counter()
            submitter = subprocess.Popen([self.submit, sock, str(n), "fast"],
                                         stdout=subprocess.DEVNULL)
            wait_for(lambda: self.ngx.count() > 0, 60, 0.002)
            first_s = time.perf_counter() - t0
            limit = 3 * alone_s + 10 if impeded else 900
            # Slow channels that herald disables announce it (herald.channel.disabled) on the
            # fast one: those deliveries come on top of the burst's.
            def notices():
                return len(json.loads(self.cli(conf, "log", "-C", "fast", "-e",
                                                "herald.channel.disabled", "-n", "100000",
                                                "--json") or "[]"))
            done = wait_for(lambda: self.ngx.count() >= n, limit, 0.005)
            while done and self.ngx.count() < n + notices():
                done = wait_for(lambda: self.ngx.count() >= n + notices(),
                                t0 + limit - time.perf_counter(), 0.05)
            elapsed = time.perf_counter() - t0
            if submitter.wait(60) != 0:
                raise SystemExit("bench: bench/submit failed")
            time.sleep(0.3)
            counted = self.ngx.count()
            announced = notices
            notices = notices()
            what = "slow destinations run %d (%s)" % (i, "impeded" if impeded else "alone")
            if done:
                # A slow channel disabled after the burst ended announces it later still:
                # herald's count is checked against the announcements logged by then.
                self.check(counted == n + notices, "%s: the receiver counted %d, expected %d"
                           % (what, counted, n + notices))
                got = [0, 0]

                def settled():
                    got[1] = n + announced()
                    got[0] = self.sent(conf, "fast")
                    return got[0] >= got[1]
                wait_for(settled, 10, 0.1)
                self.check(got[0] == got[1], "%s: herald says it sent %d, expected %d (the "
                           "burst and the announcements it logged)" % (what, got[0], got[1]))
            else:
                self.verify(what + ", cut off", conf, counted, counted, "fast")
            res = {"rate": min(counted - notices, n) / elapsed, "seconds": elapsed,
                   "delivered": counted - notices, "complete": done, "held_at_start": held,
                   "held_max": hang.max_held if impeded else 0, "first_s": first_s,
                   "disabled": notices}
        finally:
            self.stop(p)
        return res

    def slow(self):
        hang = Hang(self.a.slow_destinations)
        try:
            runs = {"alone": [], "impeded": []}
            for i in range(self.a.slow_reps):
                alone = self.slow_once(hang, i)
                runs["alone"].append(alone)
                runs["impeded"].append(self.slow_once(hang, i, alone["seconds"]))
                imp = runs["impeded"][-1]
                print("bench:   rep %d: fast alone %s/s, next to %d hanging %s/s (%s of %s in "
                      "%.1f s; %d connections held)" % (
                          i + 1, fmt(alone["rate"]), self.a.slow_destinations, fmt(imp["rate"]),
                          count(imp["delivered"]), count(self.a.slow_burst), imp["seconds"],
                          imp["held_at_start"]), file=sys.stderr, flush=True)
        finally:
            hang.stop()
        self.results["slow"] = runs

    # ---- --ci: order-of-magnitude checks, ratios only ----

    def ci_verdict(self):
        """Each check compares two figures of this run with a margin of ten times what this
        machine usually shows, so that only an order-of-magnitude regression trips it."""
        R = self.results
        S = R["side"]
        ceil = med(S["ceiling"])
        one = R["one_send"]
        checks = [
            ("herald burst deliveries/s >= 1/100 of wrk's (usually 1/9 to 1/8)",
             ratio(med(S["herald"]), ceil) >= 0.01, ratio(med(S["herald"]), ceil)),
        ]
        for s, v in S["fanout"].items():
            checks.append(("herald fan-out to %d deliveries/s >= 1/200 of wrk's (usually 1/15 "
                           "to 1/10)" % s, ratio(med(v), ceil) >= 0.005, ratio(med(v), ceil)))
        checks.append(("herald send to heraldd wall <= 2.5x curl's (usually about 1/4)",
                       ratio(med(one["daemon"]["wall_ms"]), med(one["curl"]["wall_ms"])) <= 2.5,
                       ratio(med(one["daemon"]["wall_ms"]), med(one["curl"]["wall_ms"]))))
        checks.append(("herald send to heraldd peak RSS <= 1.5x curl's (usually about 1/6)",
                       ratio(med(one["daemon"]["rss_mib"]), med(one["curl"]["rss_mib"])) <= 1.5,
                       ratio(med(one["daemon"]["rss_mib"]), med(one["curl"]["rss_mib"]))))
        bad = 0
        for what, ok, value in checks:
            print("%s - %s (this run: %.3f)" % ("ok" if ok else "FAILED", what, value))
            bad += not ok
        for f in self.failures:
            print("FAILED - receiver and herald agree: " + f)
        return 1 if bad or self.failures else 0

    # ---- report ----

    def versions(self):
        def first(argv, stream="stdout"):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                   timeout=30)
                return (getattr(r, stream).strip().splitlines() or [""])[0]
            except OSError:
                return "not installed"

        def deb(pkg):
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                               text=True)
            return r.stdout.strip() or "not installed"
        return {
            "herald": first([self.herald, "--version"]),
            "nginx": first(["nginx", "-v"], "stderr"),
            "wrk": "wrk " + deb("wrk"),
            "apprise": "Apprise %s (Debian %s) on %s" % (
                self.results.get("apprise_version", "?"), deb("apprise"),
                first([DEBIAN_PYTHON, "--version"])),
            "curl": first(["curl", "--version"]),
            "libcurl": deb("libcurl4"), "sqlite": deb("libsqlite3-0"),
            "gnuplot": first(["gnuplot", "--version"]),
        }

    def report(self, path):
        R = self.results
        S = R["side"]
        ceil = med(S["ceiling"])
        apprise_best = max((med(v) for v in S["apprise"].values()), default=float("nan"))
        lines = []
        w = lines.append
        w("# herald benchmarks")
        w("")
        w("Generated by `%s` on %s in %.0f minutes; do not edit by hand. Plots in "
          "[plots/](plots/)." % (self.a.command, time.strftime(
              "%Y-%m-%d %H:%M UTC", time.gmtime()), (time.monotonic() - self.a.started) / 60))
        w("")
        w("## Machine and versions")
        w("")
        cpu = next((ln.split(":", 1)[1].strip() for ln in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
        mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                    if ln.startswith("MemTotal:")), 0)
        w("- %s, %d CPUs, %.1f GiB; %s" % (cpu, os.cpu_count(), mem / 1048576,
                                           platform.platform()))
        w("- 1-minute load average: %.2f at the start, %.2f at the end (a shared, noisy "
          "machine: read the spreads)" % (self.a.load0, loadavg()))
        v = self.versions()
        w("- %s, built from %s with `-O2 -g`" % (v["herald"], self.a.source))
        w("- receiver: %s, 1 worker, `return 204`, one 4-byte access-log line per request "
          "as the counter" % v["nginx"])
        w("- %s (`-t1 -c128 -d%ds`, keep-alive POSTs of a herald event's JSON)" % (
            v["wrk"], self.a.wrk_seconds))
        w("- %s; %s" % (v["apprise"], v["curl"]))
        w("- libcurl %s, SQLite %s; plots: %s" % (v["libcurl"], v["sqlite"], v["gnuplot"]))
        w("")
        w("Each figure: median of %d runs (%d for the queue depths and the hanging "
          "destinations), spread = min-max of those runs; contenders alternate run by run. "
          "Every delivery figure was checked twice: the receiver counted exactly "
          "the deliveries expected, and herald's own count of sent deliveries (`herald queue "
          "--json`) agrees.%s" % (self.a.reps, self.a.depth_reps, "" if not self.failures else
                                  " **Except: see Mismatches.**"))
        w("")
        self.report_targets(w, ceil, apprise_best)
        self.report_side(w, ceil, apprise_best)
        self.report_one(w)
        self.report_latency(w)
        self.report_depth(w, ceil)
        self.report_slow(w)
        if "routing" in R:
            w(R["routing"])
            w("")
        if not S["http"]:
            w("## Not measured")
            w("")
            w("- herald durable throughput through heraldd's **HTTP API**: not available in "
              "the herald measured (`herald token` or the `http` setting is missing); only "
              "the Unix socket is measured above.")
            w("")
        if self.failures or self.notes:
            w("## Mismatches and notes")
            w("")
            for f in self.failures:
                w("- MISMATCH: " + f)
            for n in self.notes:
                w("- " + n)
            w("")
        Path(path).write_text("\n".join(lines))
        print("\n".join(lines))

    def vs_ceiling(self, xs):
        """Each run's figure over the wrk ceiling of the same run."""
        return [ratio(x, c) for x, c in zip(xs, self.results["side"]["ceiling"])]

    def vs_apprise(self, xs):
        """Each run's figure over the better Apprise figure of the same run."""
        ap = self.results["side"]["apprise"]
        if not ap:
            return []
        best = [max(v) for v in zip(*ap.values())]
        return [ratio(x, b) for x, b in zip(xs, best)]

    def targets(self, ceil, apprise_best):
        """(target, measured, met, margin) for every target of issues 3 and 9; ratios are
        the median of each run's ratio to the figure measured next to it."""
        R = self.results
        S = R["side"]
        out = []
        tp = med(S["herald"])
        for label, xs in (("durable deliveries/s", S["herald"]),
                          ("the same through the HTTP API", S["http"])):
            if not xs:
                continue
            f = med(self.vs_ceiling(xs))
            out.append(("%s >= 25%% of the wrk ceiling" % label, "%.1f%% (%s/s; wrk %s/s)" % (
                100 * f, fmt(med(xs)), fmt(ceil)), f >= 0.25, above(f / 0.25)))
            x = med(self.vs_apprise(xs))
            if x == x:
                out.append(("%s >= 20x Apprise's best in-process figure" % label,
                            "%.1fx (Apprise %s/s)" % (x, fmt(apprise_best)), x >= 20,
                            above(x / 20)))
        out.append(("durable deliveries/s >= 20,000 (issue 3)", fmt(tp), tp >= 20000,
                    above(tp / 20000)))
        for label, xs in (("HTTP API: `POST /v1/events` accepted durably >= 20,000/s while "
                           "delivering them (issue 7)", S.get("http_ack")),
                          ("HTTP API: the same, deliveries paused: acceptance alone (issue 7)",
                           S.get("http_paused"))):
            if xs:
                out.append((label, fmt(med(xs)), med(xs) >= 20000, above(med(xs) / 20000)))
        one = R["one_send"]["daemon"]
        wall, rss = med(one["wall_ms"]), med(one["rss_mib"])
        if "hyperfine_ms" in one:
            # hyperfine's figure (runs back to back) decides; the interleaved one is shown.
            hf = one["hyperfine_ms"]
            out.append(("`herald send` to heraldd: median wall <= 3 ms", "%s (hyperfine); %s "
                        "interleaved with the other commands" % (fmt(hf, " ms"),
                                                                  fmt(wall, " ms")),
                        hf <= 3, "%s (hyperfine); %s interleaved" % (
                            below(hf / 3), below(wall / 3))))
        else:
            out.append(("`herald send` to heraldd: median wall <= 3 ms", fmt(wall, " ms"),
                        wall <= 3, below(wall / 3)))
        out.append(("`herald send` to heraldd: peak RSS <= 8 MiB", fmt(rss, " MiB"), rss <= 8,
                    below(rss / 8)))
        lat = R.get("latency", {}).get(5000)
        if lat:
            p99 = med([r["p99_ms"] for r in lat])
            out.append(("p99 submit-to-delivered <= 5 ms at 5,000 events/s", fmt(p99, " ms"),
                        p99 <= 5, below(p99 / 5)))
        lat = R.get("http_latency", {}).get(5000)
        if lat:
            p99 = med([r["p99_ms"] for r in lat])
            out.append(("HTTP API: p99 `POST /v1/events` to its 202 < 5 ms at 5,000 "
                        "requests/s (issue 7)", fmt(p99, " ms"), p99 < 5, below(p99 / 5)))
        dep = R.get("depth", {})
        if dep:
            deepest, shallowest = max(dep), min(dep)
            deep = med([r["rate"] for r in dep[deepest]])
            x1 = ratio(deep, tp)
            x2 = ratio(deep, med([r["rate"] for r in dep[shallowest]]))
            x = min(x1, x2)
            out.append(("throughput with %s pending >= 80%% of the empty queue's" %
                        count(deepest), "%.0f%% of the empty-queue burst, %.0f%% of draining %s"
                        % (100 * x1, 100 * x2, count(shallowest)), x >= 0.8,
                        above(x / 0.8) + " (the lower)"))
            rss = {k: med([r["rss_max"] for r in v]) for k, v in dep.items()}
            growth = rss[deepest] / rss[min(rss)]
            out.append(("heraldd RSS flat across depths (peak at %s within 1.5x of %s's; "
                        "under 32 MiB, issue 3)" % (count(deepest), count(min(rss))),
                        "%.1f -> %.1f MiB (%.2fx)" % (rss[min(rss)], rss[deepest], growth),
                        growth <= 1.5 and max(rss.values()) < 32,
                        "growth %.2fx of 1.5x allowed; %.1f of 32 MiB" % (
                            growth, max(rss.values()))))
        sl = R.get("slow")
        if sl:
            x = ratio(med([r["rate"] for r in sl["impeded"]]), med([r["rate"] for r in
                                                                   sl["alone"]]))
            out.append(("fast destination keeps >= 90%% of its throughput next to %d hanging "
                        "ones" % self.a.slow_destinations, "%.0f%%" % (100 * x), x >= 0.9,
                        above(x / 0.9)))
        return out

    def report_targets(self, w, ceil, apprise_best):
        w("## Targets (issue 9, and issues 3 and 7's absolute ones)")
        w("")
        w("| target | measured | met | by how much |")
        w("|---|---|---|---|")
        for t, m, ok, margin in self.targets(ceil, apprise_best):
            w("| %s | %s | %s | %s |" % (t, m, "yes" if ok else "**no**", margin))
        w("")
        w("A ratio is the median of each run's ratio to the figure measured beside it in the "
          "same run; the medians in brackets give the scale.")
        w("")

    def report_side(self, w, ceil, apprise_best):
        S = self.results["side"]
        w("## Throughput side by side")
        w("")
        w("![deliveries per second](plots/throughput.png)")
        w("")
        w("| contender | deliveries/s median | spread | vs ceiling (spread) | vs Apprise's "
          "best (spread) |")
        w("|---|---|---|---|---|")

        def row(label, xs):
            c, a = self.vs_ceiling(xs), self.vs_apprise(xs)
            w("| %s | %s | %s | %.3f (%.3f-%.3f) | %s |" % (
                label, fmt(med(xs)), spread(xs), med(c), min(c), max(c),
                "%sx (%s)" % (fmt(med(a)), spread(a)) if a else "n/a"))
        row("ceiling: `wrk` POSTs, keep-alive, 128 connections", S["ceiling"])
        row("herald: %s events into heraldd's socket, each to one webhook channel" %
            count(self.a.burst), S["herald"])
        if S["http"]:
            row("herald: `wrk` POSTs events to heraldd's HTTP API (keep-alive, 128 "
                "connections), each to one webhook channel", S["http"])
        else:
            w("| herald: events through heraldd's HTTP API | not available in this build | | "
              "| |")
        for s, v in S["fanout"].items():
            row("herald fan-out: %s events to %d webhook subscriptions each" % (
                count(self.a.fanout_deliveries // s), s), v)
        for t, v in S["apprise"].items():
            row("Apprise Python API: %s `notify()` calls to %d json:// target%s" % (
                count(self.a.apprise_notifications // t), t, "s" if t > 1 else ""), v)
        w("")
        w("Ratios are the median of each run's ratio to the figure measured in that same run "
          "(wrk's, or the better of Apprise's two).")
        w("")
        w("herald's figures run from the first submission to the receiver's last count: "
          "submitted on one socket connection (bench/submit pipelines them), routed, stored in "
          "SQLite with their deliveries in one transaction before the acknowledgement, "
          "delivered and every attempt logged. Acknowledged (durably queued): %s/s median "
          "(%s), %.2f of the ceiling. heraldd's peak RSS in a burst: %s MiB (%s). The webhook "
          "channel allows 128 attempts in flight (`max_concurrent = 128`, the same "
          "concurrency as wrk's); subscriptions keep the default of 32 each, 1,024 in flight "
          "in all. Apprise sends its own JSON (title and body alike) with Python requests, a "
          "new connection per notification." % (
              fmt(med(S["herald_ack"])), spread(S["herald_ack"]),
              ratio(med(S["herald_ack"]), ceil), fmt(med(S["herald_rss"])),
              spread(S["herald_rss"])))
        w("")
        if S["http"]:
            w("Through the HTTP API, wrk runs for %d s with a `submit` token (`rate_limit` raised "
              "out of the way) and the figure runs from wrk's start to the receiver's last "
              "count; every answer was 202 and herald stored exactly what wrk saw accepted "
              "(plus at most the 128 requests on the wire when wrk stopped). Accepted (202): "
              "%s/s median (%s), %.2f of the ceiling; heraldd's peak RSS: %s MiB (%s)." % (
                  self.a.wrk_seconds, fmt(med(S["http_ack"])), spread(S["http_ack"]),
                  ratio(med(S["http_ack"]), ceil), fmt(med(S["http_rss"])),
                  spread(S["http_rss"])))
            w("")
            if S.get("http_paused"):
                w("The same wrk run against a heraldd whose channel is disabled first measures "
                  "durable acceptance alone: each 202 still follows the commit of the event "
                  "and its delivery (left pending), but no CPU goes to delivering meanwhile. "
                  "Accepted (202): %s/s median (%s), %.2f of the ceiling; herald stored "
                  "exactly what wrk saw accepted, every delivery pending." % (
                      fmt(med(S["http_paused"])), spread(S["http_paused"]),
                      ratio(med(S["http_paused"]), ceil)))
                w("")
        self.report_http_latency(w)

    def report_http_latency(self, w):
        hl = self.results.get("http_latency")
        if not hl:
            return
        S = self.results["side"]
        w("Latency of the HTTP API's durable acceptance (`POST /v1/events` to its 202) at "
          "fixed rates:")
        w("")
        w("| offered requests/s | p50 ms | p90 ms | p99 ms (spread) | max ms | p99 vs 5 ms "
          "| most requests waiting for a connection |")
        w("|---|---|---|---|---|---|---|")
        for rate in sorted(hl):
            rs = hl[rate]
            p99 = med([r["p99_ms"] for r in rs])
            w("| %s | %s | %s | %s (%s) | %s | %s | %s |" % (
                count(rate), fmt(med([r["p50_ms"] for r in rs])),
                fmt(med([r["p90_ms"] for r in rs])), fmt(p99),
                spread([r["p99_ms"] for r in rs]), fmt(med([r["max_ms"] for r in rs])),
                below(p99 / 5), count(round(med([r["queued_max"] for r in rs])))))
        w("")
        w("bench/httplat offers each rate for %d s (open loop, the wait wrk2 measures and wrk "
          "does not): request i is due at t0 + i/rate and goes out on an idle one of 64 "
          "keep-alive connections (one request outstanding on each), or waits its turn when "
          "none is idle; its latency runs from the moment it was due to the moment its whole "
          "response was read (CLOCK_MONOTONIC), so a heraldd that falls behind cannot hide "
          "it. A submit token, `rate_limit` raised out of the way, one heraldd per run, rates "
          "in increasing order after a 1 s warm-up at 500/s. Every request was answered 202, "
          "and every 202 became exactly one stored delivery (`herald queue --json`) that "
          "nginx received." % self.a.latency_seconds)
        w("")
        at = hl.get(5000)
        if at:
            p99s = [r["p99_ms"] for r in at]
            p99 = med(p99s)
            w("Issue 7: p99 under 5 ms at 5,000 requests/s: %s median (%s), %s: **%s**." % (
                fmt(p99, " ms"), spread(p99s), below(p99 / 5),
                "met" if p99 < 5 else "not met"))
            if S["http_ack"]:
                acc = med(S["http_ack"])
                w("Its throughput figure, at least 20,000 requests/s accepted, is wrk's run "
                  "above: %s/s median (%s) while delivering every event too, %s: **%s**%s." % (
                      fmt(acc), spread(S["http_ack"]), above(acc / 20000),
                      "met" if acc >= 20000 else "not met",
                      "; acceptance alone (deliveries paused): %s/s median (%s), %s: **%s**" % (
                          fmt(med(S["http_paused"])), spread(S["http_paused"]),
                          above(med(S["http_paused"]) / 20000),
                          "met" if med(S["http_paused"]) >= 20000 else "not met")
                      if S.get("http_paused") else ""))
            w("")

    def report_one(self, w):
        one = self.results["one_send"]
        ap = one.get("apprise")
        hf = all("hyperfine_ms" in x for x in one.values())
        w("## One notification from the command line")
        w("")
        w("| command | wall median (ms) | spread |%s vs `apprise` | peak RSS median (MiB) | "
          "spread | vs `apprise` |" % (" hyperfine median (ms) |" if hf else ""))
        w("|---|---|---|%s---|---|---|---|" % ("---|" if hf else ""))
        labels = (("daemon", "`herald send` to a running heraldd (returns once queued)"),
                  ("embedded", "`herald send`, no daemon (embedded engine, waits for the "
                               "delivery)"),
                  ("curl", "`curl -X POST` (no queue, no retry)"),
                  ("apprise", "`apprise -t -b json://...` (waits for the delivery)"))
        for key, label in labels:
            if key not in one:
                continue
            x = one[key]
            wall, rss = med(x["wall_ms"]), med(x["rss_mib"])
            w("| %s | %s | %s |%s %s | %s | %s | %s |" % (
                label, fmt(wall), spread(x["wall_ms"]),
                " %s |" % fmt(x["hyperfine_ms"]) if hf else "",
                fmt(ratio(wall, med(ap["wall_ms"])), "x") if ap else "n/a", fmt(rss),
                spread(x["rss_mib"]), fmt(ratio(rss, med(ap["rss_mib"])), "x") if ap else "n/a"))
        w("")
        w("%d runs each, the commands in turn; bench/runrss forks each and reads its wall time "
          "and peak RSS (`ru_maxrss`) from `wait4()`.%s Every one of them delivered one POST to "
          "the receiver, counted." % (self.a.runs, " hyperfine (`-N`, 3 warm-up runs, then %d) "
                                      "times each command once more, in a block of its own."
                                      % self.a.runs if hf else ""))
        w("")

    def report_latency(self, w):
        lat = self.results.get("latency")
        if not lat:
            return
        w("## Latency: submit to delivered")
        w("")
        w("![latency percentiles](plots/latency.png)")
        w("")
        w("| offered events/s | p50 ms | p95 ms | p99 ms (spread) | max ms | acknowledged p99 ms "
          "| writer's worst lag ms |")
        w("|---|---|---|---|---|---|---|")
        for rate in sorted(lat):
            rs = lat[rate]
            w("| %s | %s | %s | %s (%s) | %s | %s | %s |" % (
                count(rate), fmt(med([r["p50_ms"] for r in rs])),
                fmt(med([r["p95_ms"] for r in rs])), fmt(med([r["p99_ms"] for r in rs])),
                spread([r["p99_ms"] for r in rs]), fmt(med([r["max_ms"] for r in rs])),
                fmt(med([r["ack_p99_ms"] for r in rs])),
                fmt(med([r["writer_max_lag_ms"] for r in rs]))))
        w("")
        w("bench/latency offers each rate for %d s on one socket connection, paced (open "
          "loop), and is the webhook receiver itself (a minimal HTTP/1.1 server answering 204): "
          "latency runs from the moment an event was due to be written to the moment its "
          "delivery's body was read, matched by the event's seq field; the same clock "
          "(CLOCK_MONOTONIC) on both ends. Every event was acknowledged and delivered exactly "
          "once. One heraldd per run, rates in increasing order after a 1 s warm-up." %
          self.a.latency_seconds)
        w("")

    def report_depth(self, w, ceil):
        R = self.results
        dep = R.get("depth")
        w("## Scaling with the queue's depth")
        w("")
        if dep:
            tp = med(R["side"]["herald"])
            w("![throughput and RSS against pending deliveries](plots/depth.png)")
            w("")
            w("| deliveries pending | drained/s median | spread | vs empty-queue burst | vs "
              "ceiling | heraldd RSS full (MiB) | peak RSS draining (MiB) | runs |")
            w("|---|---|---|---|---|---|---|---|")
            for depth in sorted(dep):
                rs = dep[depth]
                rates = [r["rate"] for r in rs]
                w("| %s | %s | %s | %.2f | %.3f | %s | %s | %d |" % (
                    count(depth), fmt(med(rates)), spread(rates), ratio(med(rates), tp),
                    ratio(med(rates), ceil), fmt(med([r["rss_full"] for r in rs])),
                    fmt(med([r["rss_max"] for r in rs])), len(rs)))
            w("")
            w("Each run: a fresh queue; `herald channel disable hook`; heraldd started; the "
              "deliveries submitted (queued, none sent); `herald channel enable hook`; timed "
              "from the receiver's first count to its last, so heraldd claims every delivery "
              "from SQLite (the in-memory fast path of a fresh burst does not apply). The "
              "empty-queue burst is the herald figure of the side-by-side table (%s/s). The "
              "deepest queue is drained once; its curve (sampled every 0.5 s) is in the plot." %
              fmt(tp))
            w("")
        c = R.get("claims")
        if c:
            empty, deep = c[0], c[self.a.deep]
            w("`bench/claimbench`, the store alone: claim and finish %s deliveries, 128 per "
              "transaction." % count(self.a.cycles))
            w("")
            w("| deliveries pending besides | claims/s median | spread | vs empty |")
            w("|---|---|---|---|")
            w("| 0 | %s | %s | 1.00 |" % (fmt(med(empty)), spread(empty)))
            w("| %s | %s | %s | %.2f |" % (count(self.a.deep), fmt(med(deep)), spread(deep),
                                           ratio(med(deep), med(empty))))
            w("")

    def report_slow(self, w):
        sl = self.results.get("slow")
        if not sl:
            return
        a = [r["rate"] for r in sl["alone"]]
        b = [r["rate"] for r in sl["impeded"]]
        per_run = [y / x for x, y in zip(a, b)]
        w("## A fast destination next to %d hanging ones" % self.a.slow_destinations)
        w("")
        w("| fast destination | deliveries/s median | spread | vs alone (per run) | delivered "
          "of the burst (per run) |")
        w("|---|---|---|---|---|")
        w("| alone | %s | %s | 1.00 | all |" % (fmt(med(a)), spread(a)))
        w("| next to %d hanging destinations | %s | %s | %.2f (%s) | %s |" % (
            self.a.slow_destinations, fmt(med(b)), spread(b), ratio(med(b), med(a)),
            ", ".join("%.2f" % x for x in per_run),
            ", ".join("%s in %.1f s%s" % (count(r["delivered"]), r["seconds"],
                                          "" if r["complete"] else " (cut off)")
                      for r in sl["impeded"])))
        w("")
        w("A burst of %s events to the fast channel (nginx), on a fresh heraldd and queue each "
          "time. Impeded: first %d events to each of %d slow channels (webhook, `timeout = 5`, "
          "default retries and limits), each pointing at its own loopback port that "
          "accepts and never answers; the burst starts once those hold %s connections (median; "
          "most held during a burst: %s). The fast channel is listed last in the "
          "configuration. A burst still incomplete at 3 times its time alone plus 10 s is cut "
          "off, and its rate is what it delivered by then." % (
              count(self.a.slow_burst), self.a.slow_events, self.a.slow_destinations,
              fmt(med([r["held_at_start"] for r in sl["impeded"]])),
              fmt(med([r["held_max"] for r in sl["impeded"]]))))
        w("")
        w("The fast channel's first delivery came %s s after the burst began (median; alone: "
          "%s s). herald disabled %s of the %d slow channels during a run (median; `disable_after`"
          ", default 10 consecutive failures) and announced each with a herald.channel.disabled "
          "event, delivered on the fast channel besides the burst and counted apart." % (
              fmt(med([r["first_s"] for r in sl["impeded"]])),
              fmt(med([r["first_s"] for r in sl["alone"]])),
              fmt(med([r["disabled"] for r in sl["impeded"]])), self.a.slow_destinations))
        w("")

    # ---- plots ----

    def plots(self, outdir):
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        for old in outdir.glob("*.png"):
            old.unlink()
        R = self.results
        S = R["side"]
        g = Path(self.tmp) / "gp"
        g.mkdir(exist_ok=True)
        head = ("set terminal pngcairo size 720,400 font 'DejaVu Sans,9'\n"
                "set grid ytics lc rgb '#dddddd'\nset border 3\nset tics nomirror\n")
        bars = [("wrk ceiling", S["ceiling"]), ("herald", S["herald"])]
        if S["http"]:
            bars.append(("herald HTTP API", S["http"]))
        bars += [("herald fan-out %d" % s, v) for s, v in S["fanout"].items()]
        dep = R.get("depth", {})
        if dep:
            deepest = max(dep)
            bars.append(("herald, %s pending" % count(deepest), [r["rate"] for r in
                                                                dep[deepest]]))
        bars += [("Apprise %d target%s" % (t, "s" if t > 1 else ""), v)
                 for t, v in S["apprise"].items()]
        colour = {"wrk": 0x888888, "her": 0x4477aa, "App": 0xdd8844}
        (g / "tp.dat").write_text("".join('%d "%s" %f %f %f %d\n' % (
            i, label, med(v), min(v), max(v), colour[label[:3]])
            for i, (label, v) in enumerate(bars)))
        self.gnuplot(head + (
            "set output '%s'\nset title 'Deliveries per second to one nginx on loopback "
            "(median, min-max)'\nset logscale y\nset yrange [100:*]\nset ylabel "
            "'deliveries/s (log)'\nset style fill solid 0.8 noborder\nset boxwidth 0.6\n"
            "set xtics rotate by -20 left\nunset key\nset xrange [-0.6:%d.6]\n"
            "plot '%s' using 1:3:6:xtic(2) with boxes lc rgb variable, '' using 1:3:4:5 with "
            "yerrorbars lc rgb 'black' pt -1, '' using 1:3:(sprintf('%%.0f', $3)) with labels "
            "offset 0,0.8\n") % (outdir / "throughput.png", len(bars) - 1, g / "tp.dat"))
        lat = R.get("latency")
        if lat:
            (g / "lat.dat").write_text("".join("%d %f %f %f %f %f\n" % (
                rate, med([r["p50_ms"] for r in rs]), med([r["p95_ms"] for r in rs]),
                med([r["p99_ms"] for r in rs]), min(r["p99_ms"] for r in rs),
                max(r["p99_ms"] for r in rs)) for rate, rs in sorted(lat.items())))
            self.gnuplot(head + (
                "set output '%s'\nset title 'Submit-to-delivered latency against offered rate "
                "(median of runs; p99 min-max)'\nset xlabel 'offered events/s'\nset ylabel "
                "'ms'\nset logscale y\nset key top left reverse Left\nset xtics (%s)\n"
                "set xrange [0:%d]\n"
                "plot '%s' using 1:2 with linespoints lw 2 title 'p50', '' using 1:3 with "
                "linespoints lw 2 title 'p95', '' using 1:4:5:6 with yerrorlines lw 2 title "
                "'p99', 5 with lines dt 2 lc rgb 'red' title 'target: p99 <= 5 ms at 5,000/s'\n")
                % (outdir / "latency.png", ", ".join("'%s' %d" % (count(r), r) for r in
                                                     sorted(lat)), max(lat) * 1.1,
                   g / "lat.dat"))
        if dep:
            (g / "dep.dat").write_text("".join("%d %f %f %f %f\n" % (
                d, med([r["rate"] for r in rs]), min(r["rate"] for r in rs),
                max(r["rate"] for r in rs), med([r["rss_max"] for r in rs]))
                for d, rs in sorted(dep.items())))
            curve = dep[max(dep)][0]["samples"]
            rows = []
            for (t0, c0, _), (t1, c1, rss) in zip(curve, curve[1:]):
                if t1 > t0 and c1 > c0:
                    rows.append("%d %f %f\n" % (max(1, max(dep) - c1), (c1 - c0) / (t1 - t0),
                                                rss))
            (g / "curve.dat").write_text("".join(rows) or "1 0 0\n")
            self.gnuplot(head + (
                "set output '%s'\nset title 'heraldd draining a backlog: deliveries/s and RSS "
                "against pending deliveries'\nset logscale x\nset xlabel 'deliveries pending'\n"
                "set xrange [500:2000000]\nset ylabel 'deliveries/s'\nset y2label 'RSS (MiB)'\n"
                "set yrange [0:*]\n"
                "set y2range [0:*]\nset y2tics\nset key bottom left\nset format x '10^{%%L}'\n"
                "plot '%s' using 1:2 with lines lc rgb '#88aadd' title 'draining %s (every "
                "0.5 s)', '%s' using 1:2:3:4 with yerrorbars pt 7 lc rgb '#224488' title "
                "'drain rate per depth (median, min-max)', '%s' using 1:3 axes x1y2 with lines "
                "lc rgb '#dd8844' title 'RSS while draining %s', '%s' using 1:5 axes x1y2 with "
                "points pt 5 lc rgb '#aa4411' title 'peak RSS per depth'\n") % (
                outdir / "depth.png", g / "curve.dat", count(max(dep)), g / "dep.dat",
                g / "curve.dat", count(max(dep)), g / "dep.dat"))

    def gnuplot(self, script):
        r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0 or r.stderr.strip():
            self.notes.append("gnuplot: " + (r.stderr.strip().splitlines() or ["failed"])[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="build directory (bench helpers in bench/)")
    ap.add_argument("--herald", required=True)
    ap.add_argument("--heraldd", required=True)
    ap.add_argument("--libdir", help="LD_LIBRARY_PATH for herald's libraries")
    ap.add_argument("--plugin-path", help="HERALD_PLUGIN_PATH (uninstalled builds)")
    ap.add_argument("--source", default="an unknown tree", help="what was built, for the report")
    ap.add_argument("--command", default="bench/run", help="the command, for the report")
    ap.add_argument("--report", help="write the markdown report here")
    ap.add_argument("--plots", help="write PNG plots into this directory")
    ap.add_argument("--quick", action="store_true", help="smaller counts, to try the harness")
    ap.add_argument("--ci", action="store_true",
                    help="bench/quick: a few figures, order-of-magnitude ratio checks")
    ap.add_argument("--steps", help="comma-separated subset of steps (no report)")
    a = ap.parse_args()
    # A SIGTERM (bench/quick's timeout) unwinds like an error: every started process stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a.started, a.load0 = time.monotonic(), loadavg()
    small = a.quick or a.ci
    a.reps = 3 if small else 5
    a.claim_reps = a.depth_reps = a.slow_reps = 3  # the slower figures: 3 runs keep ~15 min
    a.hyperfine = not a.ci
    a.http = not a.ci
    a.burst = 20000 if small else 100000
    a.wrk_seconds = 2 if small else 5
    a.runs = 10 if small else 30
    a.fanout = [10] if a.ci else [10, 100]
    a.fanout_deliveries = 20000 if small else 100000
    a.apprise_notifications = 300 if small else 1000
    a.rates = [1000, 5000, 10000]
    a.latency_seconds = 2 if small else 5
    a.depths = [1000, 10000, 100000] if small else [1000, 10000, 100000, 1000000]
    a.deep = 100000 if small else 1000000
    a.cycles = 20000 if small else 50000
    # Routes 10 to 1,000 at 1,000 users, users 100 to 10,000 at 200 routes (routebench's
    # reference point, where its own target lies).
    a.route_points = ["10:1000", "100:1000", "200:1000", "1000:1000", "200:100", "200:10000"]
    a.slow_destinations = 100
    a.slow_events = 40
    a.slow_burst = 20000 if small else 100000
    steps = ["side_by_side", "one_send"] if a.ci else [
        "side_by_side", "one_send", "latency", "http_latency", "depth", "claims", "slow",
        "routing"]
    if a.steps:
        steps = [s for s in a.steps.split(",") if s]
    b = Bench(a)
    rc = 0
    try:
        for name in steps:
            t0 = time.monotonic()
            print("bench: %s ... (load %.2f)" % (name, loadavg()), file=sys.stderr, flush=True)
            getattr(b, name)()
            print("bench: %s done in %.0f s" % (name, time.monotonic() - t0), file=sys.stderr,
                  flush=True)
        if a.ci:
            rc = b.ci_verdict()
        elif a.steps:
            print(json.dumps({k: v for k, v in b.results.items() if k != "routing"},
                             default=str, indent=1))
            if "routing" in b.results:
                print(b.results["routing"])
            for f in b.failures:
                print("MISMATCH: " + f)
        else:
            if a.plots:
                b.plots(a.plots)
            if a.report:
                b.report(a.report)
    finally:
        b.ngx.stop()
        subprocess.run(["rm", "-rf", b.tmp])
    return rc


if __name__ == "__main__":
    sys.exit(main())
