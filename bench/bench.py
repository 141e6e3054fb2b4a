#!/usr/bin/env python3
"""bench.py - the measurements behind bench/run (which builds herald first).

Every figure is measured several times in one run and reported as median and spread;
every delivery figure is checked against what the receiver (nginx, answering 204 and
logging one 4-byte line per request) actually counted. Nothing here is a pass/fail test.
"""
import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return "%s-%s" % (fmt(min(xs)), fmt(max(xs))) if xs else "-"


def fmt(x):
    if isinstance(x, float) and x != x:
        return "n/a"
    if abs(x) >= 100:
        return "{:,.0f}".format(x)
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def wait_for(pred, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def rss_kib(pid, key="VmRSS"):
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Nginx:
    """nginx on a random loopback port: 204 for everything, one 4-byte log line a request."""

    def __init__(self, tmp):
        self.dir = Path(tmp) / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.log = self.dir / "count.log"
        conf = self.dir / "nginx.conf"
        conf.write_text("""
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 4096; }
http {
  log_format c '$status';
  access_log %(d)s/count.log c;
  client_body_temp_path %(d)s/body;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:%(p)d;
    location / { return 204; }
  }
}
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_for(lambda: self._up(), 5):
            raise SystemExit("bench: nginx did not start (see %s/error.log)" % self.dir)
        self.url = "http://127.0.0.1:%d" % self.port

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


class Bench:
    def __init__(self, args):
        self.a = args
        self.prefix = Path(args.prefix)
        self.herald = str(self.prefix / "bin" / "herald")
        self.heraldd = str(self.prefix / "sbin" / "heraldd")
        self.submit = str(Path(args.build) / "bench" / "submit")
        self.claimbench = str(Path(args.build) / "bench" / "claimbench")
        self.runrss = str(Path(args.build) / "bench" / "runrss")
        self.tmp = tempfile.mkdtemp(prefix="herald-bench-")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("HERALD_CONFIG", "HERALD_PLUGIN_PATH") and "proxy" not in k.lower()}
        self.env["LD_LIBRARY_PATH"] = str(self.prefix / "lib")
        self.results = {}
        self.notes = []
        self.ngx = Nginx(self.tmp)

    # ---- herald plumbing ----

    def config(self, name, max_concurrent=128):
        d = Path(self.tmp) / name
        d.mkdir()
        conf = d / "herald.conf"
        conf.write_text('database = "%s/q.db";\nsocket = "%s/d.sock";\n'
                        'channels = ( { name = "hook"; plugin = "webhook"; url = "%s/hook"; '
                        'max_concurrent = %d; } );\n' % (d, d, self.ngx.url, max_concurrent))
        return d, str(conf)

    def daemon(self, d, conf):
        p = subprocess.Popen([self.heraldd, "-c", conf, "--foreground"], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=open(d / "heraldd.log", "wb"))
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
            raise SystemExit("bench: heraldd did not start: %s" % (d / "heraldd.log").read_text())
        return p, sock

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def burst(self, sock, n):
        """Submit n events on one connection; seconds until nginx counted n, and checks."""
        self.ngx.reset()
        t0 = time.perf_counter()
        out = subprocess.run([self.submit, sock, str(n)], capture_output=True, text=True,
                             timeout=600)
        t_ack = time.perf_counter() - t0
        rep = json.loads(out.stdout or "{}")
        if rep.get("acked") != n:
            raise SystemExit("bench: only %s of %d submits acked: %s" % (rep, n, out.stderr))
        if not wait_for(lambda: self.ngx.count() >= n, 600, 0.005):
            raise SystemExit("bench: nginx counted %d of %d" % (self.ngx.count(), n))
        t_done = time.perf_counter() - t0
        time.sleep(0.3)  # anything extra (a duplicate) would arrive now
        counted = self.ngx.count()
        return {"n": n, "ack_s": t_ack, "done_s": t_done, "counted": counted}

    # ---- measurements ----

    def ceiling(self):
        lua = Path(self.tmp) / "post.lua"
        body = json.dumps({"id": "01a2035f-d32c-727e-8e1d-145cbac947c7", "type": "bench.event",
                           "severity": "notice", "title": "bench 12345",
                           "body": "a benchmark notification", "fields": {"seq": "12345"},
                           "data": None, "source": None,
                           "timestamp": "2026-11-22T13:09:01.356Z"}, separators=(",", ":"))
        lua.write_text('wrk.method = "POST"\nwrk.body = %s\n'
                       'wrk.headers["Content-Type"] = "application/json"\n' % json.dumps(body))
        rates = []
        for _ in range(self.a.reps):
            self.ngx.reset()
            out = subprocess.run(["wrk", "-t1", "-c128", "-d%ds" % self.a.wrk_seconds, "-s",
                                  str(lua), self.ngx.url + "/hook"], capture_output=True,
                                 text=True, timeout=120).stdout
            reqs = int(next(ln.split()[0] for ln in out.splitlines() if " requests in " in ln))
            rate = float(next(ln.split()[1] for ln in out.splitlines()
                              if ln.startswith("Requests/sec:")))
            time.sleep(0.2)
            counted = self.ngx.count()
            if abs(counted - reqs) > 128:
                self.notes.append("wrk reported %d requests, nginx counted %d" % (reqs, counted))
            rates.append(rate)
        self.results["ceiling"] = rates

    def throughput(self):
        n = self.a.burst
        rates, acks, rss = [], [], []
        for i in range(self.a.reps):
            d, conf = self.config("tp%d" % i)
            p, sock = self.daemon(d, conf)
            try:
                r = self.burst(sock, n)
                rss.append(rss_kib(p.pid, "VmHWM") / 1024)
            finally:
                self.stop(p)
            if r["counted"] != n:
                self.notes.append("throughput run %d: nginx counted %d for %d events" %
                                  (i, r["counted"], n))
            rates.append(n / r["done_s"])
            acks.append(n / r["ack_s"])
        self.results["throughput"] = {"n": n, "rates": rates, "acks": acks, "rss_mib": rss}

    def one_send(self):
        """herald send: wall time and peak RSS, daemon running vs embedded, next to curl."""
        d, conf = self.config("one")
        d2, conf2 = self.config("one-embedded")
        p, sock = self.daemon(d, conf)

        def measure(argv, k):
            walls, rss = [], []
            for _ in range(k):
                r = subprocess.run([self.runrss] + argv, env=self.env, capture_output=True,
                                   text=True, stdin=subprocess.DEVNULL, timeout=60)
                m = json.loads(r.stdout.strip().splitlines()[-1])
                if m["status"] != 0:
                    raise SystemExit("bench: %s failed: %s" % (" ".join(argv), r.stderr))
                walls.append(m["wall_ms"])
                rss.append(m["maxrss_kib"] / 1024)
            return {"wall_ms": walls, "rss_mib": rss}
        try:
            k = self.a.runs
            before = self.ngx.count()
            res = {"daemon": measure([self.herald, "-c", conf, "send", "-e", "bench.one",
                                      "one"], k)}
        finally:
            self.stop(p)
        res["embedded"] = measure([self.herald, "-c", conf2, "send", "-e", "bench.one", "one"], k)
        res["curl"] = measure(["curl", "-s", "-o", "/dev/null", "-X", "POST", "-H",
                               "Content-Type: application/json", "-d", '{"title":"one"}',
                               self.ngx.url + "/curl"], k)
        time.sleep(0.3)
        got = self.ngx.count() - before
        if got != 3 * k:
            self.notes.append("one-shot sends: nginx counted %d for %d sends" % (got, 3 * k))
        self.results["one_send"] = res

    def sustained(self):
        d, conf = self.config("sustained")
        p, sock = self.daemon(d, conf)
        samples = []
        total = 0
        try:
            chunk = self.a.chunk
            while total < self.a.sustained:
                r = self.burst(sock, chunk)
                total += chunk
                samples.append((total, rss_kib(p.pid) / 1024, chunk / r["done_s"],
                                r["counted"] == chunk))
        finally:
            self.stop(p)
        self.results["sustained"] = samples

    def claims(self):
        out = {}
        order = [0, self.a.deep] * self.a.reps  # alternated, so drift hits both alike
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

    # ---- report ----

    def report(self, path):
        R = self.results
        ceil = med(R["ceiling"])
        tp = R["throughput"]
        one = R["one_send"]
        lines = []
        w = lines.append
        w("# herald benchmarks")
        w("")
        w("Generated by `bench/run` on %s; do not edit by hand." %
          time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        w("")
        w("## Machine")
        w("")
        cpu = next((ln.split(":", 1)[1].strip() for ln in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
        w("- %s, %d CPUs, %s" % (cpu, os.cpu_count(), platform.platform()))
        ver = subprocess.run([self.herald, "--version"], capture_output=True, text=True,
                             env=self.env).stdout.strip().splitlines()[0]
        ngv = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        w("- %s; %s (1 worker, `return 204`); wrk %s" % (
            ver, ngv, "-t1 -c128 -d%ds" % self.a.wrk_seconds))
        w("- Receiver counts every request (one log line each); each herald figure below was "
          "checked against that count.")
        w("- Shared, noisy machine: medians of %d runs, spread = min-max in the same run." %
          self.a.reps)
        w("")
        w("## Durable webhook deliveries (socket submit -> stored -> routed -> delivered -> "
          "logged)")
        w("")
        w("| figure | median | spread | vs ceiling |")
        w("|---|---|---|---|")
        w("| ceiling: wrk POSTs, keep-alive, 128 connections (req/s) | %s | %s | 1.00 |" % (
            fmt(ceil), spread(R["ceiling"])))
        w("| herald: burst of %s events, delivered/s | %s | %s | %.2f |" % (
            "{:,}".format(tp["n"]), fmt(med(tp["rates"])), spread(tp["rates"]),
            med(tp["rates"]) / ceil))
        w("| herald: same bursts, acknowledged (durably queued)/s | %s | %s | %.2f |" % (
            fmt(med(tp["acks"])), spread(tp["acks"]), med(tp["acks"]) / ceil))
        w("| heraldd peak RSS during a burst (MiB) | %s | %s | |" % (
            fmt(med(tp["rss_mib"])), spread(tp["rss_mib"])))
        w("")
        w("The channel allows 128 attempts in flight (`max_concurrent = 128`; the default is "
          "32), the same concurrency wrk gets.")
        w("")
        w("## One notification from the command line")
        w("")
        w("| command | wall median (ms) | spread | peak RSS median (MiB) |")
        w("|---|---|---|---|")
        for key, label in (("daemon", "`herald send` to a running heraldd"),
                           ("embedded", "`herald send`, no daemon (embedded engine, waits for "
                                        "the delivery)"),
                           ("curl", "`curl -X POST` (no queue, no retry)")):
            x = one[key]
            w("| %s | %s | %s | %s |" % (label, fmt(med(x["wall_ms"])), spread(x["wall_ms"]),
                                         fmt(med(x["rss_mib"]))))
        w("")
        w("%d runs each." % self.a.runs)
        w("")
        w("## heraldd under sustained load")
        w("")
        w("| events so far | RSS (MiB) | delivered/s in that chunk | receiver count exact |")
        w("|---|---|---|---|")
        for total, rss, rate, exact in R["sustained"]:
            w("| %s | %.1f | %s | %s |" % ("{:,}".format(total), rss, fmt(rate),
                                          "yes" if exact else "NO"))
        rs = [x[1] for x in R["sustained"]]
        w("")
        w("RSS from the first to the last chunk: %.1f -> %.1f MiB (max %.1f)." % (
            rs[0], rs[-1], max(rs)))
        w("")
        w("## Claims with a deep queue")
        w("")
        c = R["claims"]
        empty, deep = c[0], c[self.a.deep]
        w("`bench/claimbench`: claim and finish %s deliveries, 128 per transaction, from the "
          "store alone." % "{:,}".format(self.a.cycles))
        w("")
        w("| deliveries pending besides | claims/s median | spread | vs empty |")
        w("|---|---|---|---|")
        w("| 0 | %s | %s | 1.00 |" % (fmt(med(empty)), spread(empty)))
        w("| %s | %s | %s | %.2f |" % ("{:,}".format(self.a.deep), fmt(med(deep)), spread(deep),
                                       med(deep) / med(empty)))
        w("")
        if self.notes:
            w("## Notes")
            w("")
            for n in self.notes:
                w("- " + n)
            w("")
        Path(path).write_text("\n".join(lines))
        print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    a.reps = 3
    a.burst = 20000 if a.quick else 100000
    a.wrk_seconds = 2 if a.quick else 5
    a.runs = 10 if a.quick else 30
    a.sustained = 200000 if a.quick else 1000000
    a.chunk = 50000 if a.quick else 100000
    a.deep = 100000 if a.quick else 1000000
    a.cycles = 20000 if a.quick else 50000
    b = Bench(a)
    try:
        for step in (b.ceiling, b.throughput, b.one_send, b.sustained, b.claims):
            t0 = time.monotonic()
            print("bench: %s ..." % step.__name__, file=sys.stderr, flush=True)
            step()
            print("bench: %s done in %.0f s" % (step.__name__, time.monotonic() - t0),
                  file=sys.stderr, flush=True)
        b.report(a.report)
    finally:
        b.ngx.stop()
        subprocess.run(["rm", "-rf", b.tmp])


if __name__ == "__main__":
    main()
