#!/usr/bin/env python3
"""test_api.py - heraldd's HTTP API through a real heraldd on a random loopback port: every
status code (200, 202, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429), durability before
202, Idempotency-Key, ?wait, cursor pagination, tenant isolation (a token of tenant B cannot
read, list, retry or learn of A's events, nor read, list or change A's users, and the same
user name in two tenants is two people, each tenant's events reaching its own), scopes, a slow
client cut off by the timeout, the OpenAPI document matching the routes the server answers,
/metrics' counters and histograms (exact values, cumulative buckets, escaped labels), and
refusing a non-loopback listen address without TLS.

Environment: HERALD, HERALDD, HERALD_PLUGIN_PATH (make check sets them).
"""
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from taplib import done_testing, is_, like, ok, run_scenarios  # noqa: E402
from test_queue import (HERALDD, Client, Daemon, dead_port, herald_env, hook, receiver,  # noqa: E402
                        run, started, submit_req, wait_until, write_config)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Api:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def call(self, method, path, token=None, body=None, ctype="application/json", headers=None):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None and ctype:
            req.add_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                raw = resp.read()
                return resp.status, dict(resp.headers), raw
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, *a, **kw):
        code, headers, raw = self.call(*a, **kw)
        try:
            return code, json.loads(raw or b"null"), headers
        except ValueError:
            return code, {"raw": raw.decode("utf-8", "replace")}, headers


def raw_status(port, head, body=b""):
    """The status code of one request written as is on a socket of its own, or None.
    For requests the server refuses before reading them whole (431): it answers and
    closes, so the rest of the request may meet a broken pipe, while its answer is still
    there to read (urllib gives up at the broken pipe)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(head.encode() + body)
        except OSError:
            pass
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def token(tmp, cfg, name, scopes, tenant="default"):
    res = run(tmp, ["-c", cfg, "token", "create", "--json", "--name", name, "--scope", scopes,
                    "--tenant", tenant])
    return res.json().get("token")


def setup(tmp, r, http_extra=""):
    port = free_port()
    cfg = write_config(tmp, [hook("ops", r.url + "/ops")])
    with open(cfg, "a") as f:
        f.write('http = { listen = "127.0.0.1:%d"; timeout = 2; %s };\n' % (port, http_extra))
    return cfg, Api(port)


def error_shape(obj):
    e = obj.get("error") if isinstance(obj, dict) else None
    return isinstance(e, dict) and isinstance(e.get("code"), str) and isinstance(e.get("message"), str)


def main_flow():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg, api = setup(tmp, r, "max_body = 2048;")
        ta = token(tmp, cfg, "a-writer", "submit,read")
        tro = token(tmp, cfg, "a-reader", "read")
        tadm = token(tmp, cfg, "a-admin", "admin")
        tb = token(tmp, cfg, "b-writer", "submit,read,admin", tenant="b")
        ok(all(t and t.startswith("hrd_") for t in (ta, tro, tadm, tb)), "token create prints hrd_ tokens")
        dm = Daemon(tmp, cfg, verbose=True)
        try:
            if not started(dm, "API daemon"):
                return
            ok(wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5), "GET /healthz: 200")
            is_(api.call("GET", "/readyz")[0], 200, "GET /readyz: 200")

            code, body, _ = api.json("POST", "/v1/events", body={"type": "a.b", "title": "x"})
            is_(code, 401, "no token: 401")
            ok(error_shape(body), "errors have the shape {error: {code, message}}", lambda: str(body))
            is_(api.json("POST", "/v1/events", token="hrd_00000000_nope",
                         body={"type": "a.b", "title": "x"})[0], 401, "unknown token: 401")
            is_(api.json("POST", "/v1/events", token=tro, body={"type": "a.b", "title": "x"})[0],
                403, "read-only token submitting: 403")
            is_(api.json("POST", "/v1/events", token=ta, body=b"{}", ctype="text/plain")[0], 415,
                "wrong content type: 415")
            code, body, _ = api.json("POST", "/v1/events", token=ta, body=b"{nope")
            is_(code, 400, "malformed JSON: 400")
            like(body.get("error", {}).get("message", ""), "not JSON", "and says so")
            code, body, _ = api.json("POST", "/v1/events", token=ta,
                                     body={"type": "Not A Type!", "title": "x"})
            is_(code, 422, "an invalid event type: 422")
            is_(api.json("POST", "/v1/events", token=ta,
                         body={"type": "a.b", "title": "x", "body": "y" * 5000})[0], 413,
                "a body over http.max_body: 413")
            event = b'{"type": "a.b", "title": "x"}'
            code = raw_status(int(api.base.rsplit(":", 1)[1]),
                              "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %d\r\nX-Padding: %s\r\n\r\n"
                              % (ta, len(event), "p" * 20000), event)
            is_(code, 431, "headers over 16 KiB: 431")
            is_(api.json("POST", "/v1/events", token=ta, body={"type": "a.b", "title": "x"},
                         headers={"X-Padding": "p" * 8000})[0], 202, "8 KB of headers: accepted")
            is_(api.json("GET", "/v1/nothing", token=ta)[0], 404, "unknown endpoint: 404")
            code, _, headers = api.json("DELETE", "/v1/events", token=ta)
            is_((code, headers.get("Allow")), (405, "POST"), "wrong method: 405 with Allow")

            # 202 only once durable; the same key is acknowledged with the same id.
            code, body, _ = api.json("POST", "/v1/events", token=ta,
                                     body={"type": "backup.failed", "title": "Backup"},
                                     headers={"Idempotency-Key": "order-1"})
            is_(code, 202, "POST /v1/events: 202", lambda: str(body))
            eid = body.get("id", "")
            res = run(tmp, ["-c", cfg, "show", eid, "--json"])
            is_(res.json().get("event", {}).get("id"), eid,
                "the accepted event is in the store already")
            code, body2, _ = api.json("POST", "/v1/events", token=ta,
                                      body={"type": "backup.failed", "title": "Backup"},
                                      headers={"Idempotency-Key": "order-1"})
            is_((code, body2.get("id"), body2.get("duplicate")), (202, eid, True),
                "Idempotency-Key: the original id, duplicate, not stored again")
            code, body, _ = api.json("POST", "/v1/events?wait=10s", token=ta,
                                     body={"type": "job.done", "title": "waited"})
            is_((code, body.get("final"), [d.get("state") for d in body.get("deliveries", [])]),
                (200, True, ["sent"]), "?wait: 200 once every delivery is final", lambda: str(body))
            code, ev, _ = api.json("GET", "/v1/events/" + eid, token=ta)
            is_((code, ev.get("type"), len(ev.get("deliveries", []))), (200, "backup.failed", 1),
                "GET /v1/events/{id}: the event with its deliveries", lambda: str(ev))
            ok(wait_until(lambda: api.json("GET", "/v1/events/" + eid, token=ta)[1]
                          .get("deliveries", [{}])[0].get("attempts"), 5),
               "and every attempt", lambda: str(ev))
            is_(api.json("GET", "/v1/events/%s/explain" % eid, token=ta)[0], 200,
                "GET /v1/events/{id}/explain: 200")

            # Pagination.
            for i in range(5):
                api.json("POST", "/v1/events", token=ta, body={"type": "page.n", "title": str(i)})
            seen, cursor, pages = [], None, 0
            while pages < 10:
                q = "/v1/deliveries?type=page.*&limit=2" + ("&cursor=" + cursor if cursor else "")
                code, page, _ = api.json("GET", q, token=ta)
                seen += [d["id"] for d in page.get("deliveries", [])]
                pages += 1
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            is_((pages, len(seen), len(set(seen))), (3, 5, 5),
                "cursor pagination: 5 deliveries in pages of 2, none repeated")
            is_(api.json("GET", "/v1/deliveries?limit=0", token=ta)[0], 400, "bad limit: 400")

            # Tenants: B learns nothing of A.
            is_(api.json("GET", "/v1/events/" + eid, token=tb)[0], 404, "tenant B: A's event is 404")
            is_(api.json("GET", "/v1/events/%s/explain" % eid, token=tb)[0], 404,
                "tenant B: A's explain is 404")
            code, page, _ = api.json("GET", "/v1/deliveries?limit=1000", token=tb)
            is_((code, page.get("deliveries")), (200, []), "tenant B lists none of A's deliveries")
            did = seen[0]
            is_(api.json("POST", "/v1/deliveries/%d/retry" % did, token=tb)[0], 404,
                "tenant B cannot retry A's delivery (404, not 403)")
            is_(api.json("POST", "/v1/deliveries/%d/retry" % did, token=ta)[0], 403,
                "retry needs the admin scope: 403")
            code, body, _ = api.json("POST", "/v1/deliveries/%d/retry" % did, token=tadm)
            ok(code in (202, 409), "admin of tenant A: retry is 202 (or 409 while unfinished)",
               lambda: str(body))
            ok(code != 202 or wait_until(
                lambda: any(d["id"] == did and d["state"] == "sent" for d in api.json(
                    "GET", "/v1/deliveries?type=page.*&status=sent", token=ta)[1]
                    .get("deliveries", [])), 5),
               "a retried delivery is sent again")
            code, body, _ = api.json("POST", "/v1/deliveries/999999/retry", token=tadm)
            is_(code, 404, "retry of no delivery: 404")

            code, _, raw = api.call("GET", "/metrics", token=ta)
            ok(code == 200 and b'herald_deliveries{channel="ops",state="sent"}' in raw,
               "GET /metrics: Prometheus text with deliveries by channel and state")
            is_(api.call("GET", "/metrics")[0], 401, "/metrics needs a token by default")

            # A slow client is cut off by the timeout (2 s).
            s = socket.create_connection(("127.0.0.1", int(api.base.rsplit(":", 1)[1])))
            s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(6)
            t0 = time.monotonic()
            try:
                data = s.recv(100)
            except OSError:
                data = b"timeout"
            s.close()
            ok(data == b"" and time.monotonic() - t0 < 5.5,
               "a client that stalls mid-request is disconnected after the timeout",
               lambda: "got %r after %.1f s" % (data, time.monotonic() - t0))

            # Revocation takes effect within a second.
            run(tmp, ["-c", cfg, "token", "revoke", "a-reader"])
            ok(wait_until(lambda: api.json("GET", "/v1/channels", token=tro)[0] == 401, 3),
               "a revoked token is refused")
        finally:
            dm.stop()


def rate_limit_and_openapi():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg, api = setup(tmp, r, "rate_limit = 5;")
        t = token(tmp, cfg, "t", "read")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "rate daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            time.sleep(1.1)
            # At once, so that a loaded machine cannot spread them over several seconds.
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(20) as pool:
                answers = list(pool.map(lambda _: api.json("GET", "/v1/channels", token=t),
                                        range(20)))
            codes = [a[0] for a in answers]
            ok(codes.count(429) >= 1 and codes.count(200) >= 1, "over rate_limit: 429",
               lambda: str(codes))
            limited = [a[2] for a in answers if a[0] == 429]
            is_(limited[0].get("Retry-After") if limited else None, "1",
                "429 carries Retry-After")
            time.sleep(1.1)
            code, doc, _ = api.json("GET", "/v1/openapi.json")
            is_((code, doc.get("openapi", "")[:2]), (200, "3."), "GET /v1/openapi.json: OpenAPI 3")
        finally:
            dm.stop()
        served = set(subprocess.run([HERALDD, "--api-routes"], capture_output=True, text=True,
                                    timeout=10).stdout.split("\n")) - {""}
        documented = set()
        for path, ops in doc.get("paths", {}).items():
            for method in ops:
                documented.add("%s %s" % (method.upper(), path))
        is_(sorted(served), sorted(documented),
            "every route the server answers is in the OpenAPI document, and vice versa")


def webhooks_api():
    import base64
    import hashlib
    import hmac
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg, api = setup(tmp, r)
        adm = token(tmp, cfg, "a-admin", "admin")
        rd = token(tmp, cfg, "a-read", "read")
        badm = token(tmp, cfg, "b-admin", "admin", tenant="b")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "webhooks API daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            spec = {"name": "crm", "url": r.url + "/crm?k=UrlT0ken", "events": ["vm.*"],
                    "headers": {"X-Api-Key": "HdrSekrit9"}}
            is_(api.json("POST", "/v1/webhooks", token=rd, body=spec)[0], 403,
                "creating needs admin: 403")
            code, w, _ = api.json("POST", "/v1/webhooks", token=adm, body=spec)
            is_(code, 201, "POST /v1/webhooks: 201", lambda: str(w))
            wid, secret = w.get("id", ""), w.get("secret", "")
            ok(wid.startswith("wh_") and secret.startswith("whsec_"),
               "the id and, once, the generated secret")
            is_(api.json("POST", "/v1/webhooks", token=adm, body=spec)[0], 409,
                "the same name again in the tenant: 409")
            is_(api.json("POST", "/v1/webhooks", token=badm, body=dict(spec, url=r.url + "/b"))[0],
                201, "the same name in another tenant: 201 (names are per tenant)")
            is_(api.json("POST", "/v1/webhooks", token=adm, body={"name": "x", "url": "ftp://x",
                                                                  "events": "a"})[0],
                422, "a non-HTTP URL: 422")
            code, one, _ = api.json("GET", "/v1/webhooks/" + wid, token=rd)
            ok(code == 200 and "secret" not in one and "UrlT0ken" not in json.dumps(one),
               "GET /v1/webhooks/{id}: no secret, no URL token", lambda: str(one))
            code, lst, _ = api.json("GET", "/v1/webhooks", token=badm)
            is_([x["name"] for x in lst.get("webhooks", [])], ["crm"],
                "tenant B lists only its own subscription")
            for method, path in (("GET", "/v1/webhooks/" + wid),
                                 ("PATCH", "/v1/webhooks/" + wid),
                                 ("DELETE", "/v1/webhooks/" + wid),
                                 ("GET", "/v1/webhooks/%s/deliveries" % wid),
                                 ("POST", "/v1/webhooks/%s/test" % wid),
                                 ("POST", "/v1/webhooks/%s/rotate-secret" % wid)):
                code = api.json(method, path, token=badm, body={} if method in ("PATCH",) else None)[0]
                is_(code, 404, "tenant B: %s %s is 404" % (method, path.replace(wid, "{id}")))
            code, _, _ = api.json("POST", "/v1/events", token=badm,
                                  body={"type": "vm.started", "title": "B", "to": [wid]})
            is_(code, 422, "tenant B cannot send to A's subscription by id")
            api.json("POST", "/v1/events", token=badm, body={"type": "vm.started", "title": "B"})
            api.json("POST", "/v1/events", token=adm, body={"type": "vm.started", "title": "A"})
            ok(wait_until(lambda: any(q["path"] == "/crm" for q in r.requests()), 5),
               "tenant A's event reaches A's subscription")
            time.sleep(0.5)
            crm = [q for q in r.requests() if q["path"] == "/crm"]
            is_([json.loads(q["body"])["data"]["title"] for q in crm], ["A"],
                "and tenant B's event of the same type does not")
            q = crm[0]
            h = q["headers"]
            body = base64.b64decode(q["body_b64"])
            key = base64.b64decode(secret[6:])
            want = "v1," + base64.b64encode(hmac.new(
                key, ("%s.%s." % (h["webhook-id"], h["webhook-timestamp"])).encode() + body,
                hashlib.sha256).digest()).decode()
            is_(h.get("webhook-signature"), want, "signed with the secret the API returned")
            is_(h.get("x-api-key"), "HdrSekrit9", "with its header")
            code, _, _ = api.json("PATCH", "/v1/webhooks/" + wid, token=adm,
                                  body={"events": ["vm.*", "job.*"], "timeout_s": 5})
            is_(code, 200, "PATCH /v1/webhooks/{id}: 200")
            code, rot, _ = api.json("POST", "/v1/webhooks/%s/rotate-secret?grace=1h" % wid,
                                    token=adm)
            ok(code == 200 and rot.get("secret", "").startswith("whsec_") and rot["secret"] != secret,
               "rotate-secret: a new secret", lambda: str(rot))
            code, t, _ = api.json("POST", "/v1/webhooks/%s/test" % wid, token=adm)
            is_(code, 202, "POST /v1/webhooks/{id}/test: 202", lambda: str(t))
            ok(wait_until(lambda: any(x["headers"].get("x-herald-event") == "herald.test"
                                      for x in r.requests()), 5), "the test event arrives")
            last = [x for x in r.requests() if x["headers"].get("x-herald-event") == "herald.test"][0]
            is_(len(last["headers"].get("webhook-signature", "").split(" ")), 2,
                "during the grace: two signatures")
            code, ds, _ = api.json("GET", "/v1/webhooks/%s/deliveries" % wid, token=rd)
            ok(code == 200 and len(ds.get("deliveries", [])) >= 2, "deliveries history",
               lambda: str(ds))
            is_(api.json("DELETE", "/v1/webhooks/" + wid, token=adm)[0], 204, "DELETE: 204")
            is_(api.json("GET", "/v1/webhooks/" + wid, token=adm)[0], 404, "then 404")
        finally:
            dm.stop()


def stats_and_channels():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r, receiver("400") as bad:
        port = free_port()
        cfg = write_config(tmp, [hook("ops", r.url + "/ops"), hook("bad", bad.url + "/bad"),
                                 hook("gone", "http://127.0.0.1:%d/x" % dead_port(), timeout=1)])
        with open(cfg, "a") as f:
            f.write('http = { listen = "127.0.0.1:%d"; timeout = 2; };\n' % port)
        api = Api(port)
        ta = token(tmp, cfg, "a-writer", "submit,read")
        tadm = token(tmp, cfg, "a-admin", "admin")
        tb = token(tmp, cfg, "b-writer", "submit,read", tenant="b")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "stats daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            code, st, _ = api.json("GET", "/v1/stats", token=ta)
            is_((code, st.get("processed"), st.get("by_channel")), (200, 0, {}),
                "GET /v1/stats with nothing sent: 200, zero", lambda: str(st))
            for i in range(3):
                code, body, _ = api.json("POST", "/v1/events?wait=10s", token=ta,
                                         body={"type": "backup.done", "title": str(i),
                                               "source": "nas", "to": ["ops"]})
            is_((code, [d.get("channel") for d in body.get("deliveries", [])]), (200, ["ops"]),
                "an event with 'to' goes to the channels named only", lambda: str(body))
            api.json("POST", "/v1/events?wait=10s", token=ta,
                     body={"type": "disk.full", "title": "x", "source": "db1", "to": ["bad"]})
            api.json("POST", "/v1/events?wait=10s", token=tb,
                     body={"type": "b.only", "title": "x", "source": "bsrc", "to": ["ops"]})
            code, st, _ = api.json("GET", "/v1/stats", token=ta)
            is_((code, st.get("processed"), st.get("sent"), st.get("failed")), (200, 4, 3, 1),
                "GET /v1/stats: processed, sent and failed of the tenant", lambda: str(st))
            is_(round(st.get("success_rate", 0), 2), 0.75, "success rate 3/4")
            ok(st.get("attempts") == 4 and st.get("p95_ms", -1) >= 0 <= st.get("mean_ms", -1)
               and "since" in st, "attempts, mean and p95 processing time", lambda: str(st))
            is_(sorted(st.get("by_type", {})), ["backup.done", "disk.full"], "by event type")
            is_((st["by_channel"].get("ops", {}).get("sent"),
                 st["by_channel"].get("bad", {}).get("failed")), (3, 1), "by channel")
            is_(sorted(st.get("by_source", {})), ["db1", "nas"],
                "by source; nothing of tenant b", lambda: str(st))
            code, stb, _ = api.json("GET", "/v1/stats", token=tb)
            is_((stb.get("processed"), list(stb.get("by_type", {}))), (1, ["b.only"]),
                "tenant b sees only its own")
            is_(api.json("GET", "/v1/stats?since=1ms", token=ta)[1].get("processed"), 0,
                "?since narrows the window")
            is_(api.json("GET", "/v1/stats?since=never", token=ta)[0], 400, "bad since: 400")
            is_(api.json("GET", "/v1/stats")[0], 401, "stats needs a token")

            # POST /v1/channels/{name}/test: the plugin's test, no notification sent.
            before = len(r.requests())
            code, t, _ = api.json("POST", "/v1/channels/ops/test", token=tadm)
            is_((code, t.get("channel"), t.get("verdict")), (200, "ops", "ok"),
                "POST /v1/channels/{name}/test: 200 with the verdict", lambda: str(t))
            ok(all(k in t for k in ("status", "detail")), "and status and detail")
            is_(len(r.requests()), before, "the test sent no notification")
            t0 = time.monotonic()
            code, t, _ = api.json("POST", "/v1/channels/gone/test", token=tadm)
            ok(code == 200 and t.get("verdict") in ("retry", "failed") and t.get("detail"),
               "a channel that cannot be reached: 200 with a failing verdict and why",
               lambda: str(t))
            ok(time.monotonic() - t0 < 5, "within the channel's timeout")
            is_(api.json("POST", "/v1/channels/nope/test", token=tadm)[0], 404,
                "an unknown channel: 404")
            is_(api.json("POST", "/v1/channels/ops/test", token=ta)[0], 403,
                "testing a channel needs admin: 403")
            is_(api.call("GET", "/healthz")[0], 200, "the daemon answers after the tests")
        finally:
            dm.stop()


def users_api():
    import sqlite3
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        port = free_port()
        cfg = write_config(tmp, [hook("ops", r.url + "/ops"), hook("pager", r.url + "/pager")])
        with open(cfg, "a") as f:
            f.write('http = { listen = "127.0.0.1:%d"; timeout = 2; };\n' % port)
        api = Api(port)
        adm = token(tmp, cfg, "adm", "admin")
        rd = token(tmp, cfg, "rd", "read,submit")
        alice = token(tmp, cfg, "alice", "user:alice")
        bob = token(tmp, cfg, "bob", "user:bob")
        badm = token(tmp, cfg, "b-adm", "admin", tenant="b")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "users API daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            body = {"addresses": {"email": "alice@example.org", "gotify_token": "GotSekrit77"}}
            is_(api.json("PUT", "/v1/users/alice", token=rd, body=body)[0], 403,
                "PUT /v1/users/{name} needs admin or user:NAME: 403")
            is_(api.json("PUT", "/v1/users/alice", token=bob, body=body)[0], 403,
                "user:bob cannot change alice: 403")
            code, u, _ = api.json("PUT", "/v1/users/alice", token=adm, body=body)
            is_((code, u.get("name"), u.get("addresses")),
                (201, "alice", {"email": "alice@example.org", "gotify_token": "***"}),
                "PUT creates the user: 201, the credential address masked", lambda: str(u))
            def stored():
                db = sqlite3.connect(str(Path(tmp) / "q.db"))
                try:
                    return dict(db.execute("SELECT key, value FROM user_prefs WHERE user = 'alice' "
                                           "AND kind = 'addr'").fetchall())
                finally:
                    db.close()
            ok(wait_until(lambda: stored().get("email") == "alice@example.org", 3) and
               stored().get("gotify_token", "").startswith("hs1:") and
               "GotSekrit77" not in str(stored()),
               "the credential address is sealed in the store, the email is not", lambda: str(stored()))
            res = run(tmp, ["-c", cfg, "user", "show", "alice", "--json"])
            is_(res.json().get("addresses"), u.get("addresses"), "herald user show agrees")
            code, u, _ = api.json("GET", "/v1/users/alice", token=alice)
            is_((code, u.get("addresses", {}).get("email")), (200, "alice@example.org"),
                "GET /v1/users/{name} with the person's own user:NAME token")
            is_(api.json("GET", "/v1/users/alice", token=bob)[0], 403, "but not with user:bob")
            is_(api.json("GET", "/v1/users/alice", token=badm)[0], 404,
                "another tenant: 404, not 403")
            is_(api.json("GET", "/v1/users/nobody", token=adm)[0], 404, "no such user: 404")
            code, u, _ = api.json("PUT", "/v1/users/alice", token=alice,
                                  body={"addresses": {"email": "a2@example.org"}})
            is_((code, u.get("addresses")), (200, {"email": "a2@example.org"}),
                "PUT again: 200, and addresses not given are removed", lambda: str(u))
            for bad, why in (({"addresses": {"bad key": "x"}}, "an address name with a space"),
                             ({"addresses": {"email": "a\nb"}}, "a control character"),
                             ({"addresses": {"quiet": "x"}}, "a preference as an address"),
                             ({"addresses": {"email": 5}}, "a number"),
                             ({"addresses": {}, "colour": "x"}, "an unknown member"),
                             ({"email": "x"}, "no addresses")):
                is_(api.json("PUT", "/v1/users/alice", token=adm, body=bad)[0], 422,
                    "PUT user, %s: 422" % why)
            is_(api.json("PUT", "/v1/users/ops", token=adm, body={"addresses": {}})[0], 409,
                "a user named like a channel: 409")
            is_(api.json("PUT", "/v1/users/bad%20name", token=adm, body={"addresses": {}})[0], 422,
                "an invalid user name: 422")
            is_(api.json("PUT", "/v1/users/alice", token=adm, body=b"{x")[0], 400,
                "malformed JSON: 400")

            # Preferences.
            code, p, _ = api.json("GET", "/v1/users/alice/preferences", token=alice)
            is_((code, p.get("channels"), p.get("rules")), (200, {}, []),
                "GET /v1/users/{name}/preferences: none yet", lambda: str(p))
            prefs = {"min_severity": "warning", "channels": {"pager": False},
                     "rules": [{"events": "backup.*", "channel": "ops", "on": True,
                                "min_severity": "error"},
                               {"events": "*", "channel": "*", "on": False}],
                     "quiet": {"hours": "22:00-07:00", "tz": "UTC", "action": "defer"}}
            code, p, _ = api.json("PUT", "/v1/users/alice/preferences", token=alice, body=prefs)
            is_((code, p.get("min_severity"), p.get("channels"),
                 [(x["events"], x["channel"], x["on"], x.get("min_severity")) for x in p.get("rules", [])],
                 p.get("quiet")),
                (200, "warning", {"pager": False},
                 [("backup.*", "ops", True, "error"), ("*", "*", False, None)],
                 {"hours": "22:00-07:00", "tz": "UTC", "action": "defer"}),
                "PUT preferences: 200 with all of them", lambda: str(p))
            res = run(tmp, ["-c", cfg, "prefs", "show", "alice", "--json"])
            is_(res.json(), p, "the shape of herald prefs show --json, and the same values")
            code, p, _ = api.json("PATCH", "/v1/users/alice/preferences", token=adm,
                                  body={"min_severity": "error"})
            is_((code, p.get("min_severity"), len(p.get("rules", [])), p.get("channels")),
                (200, "error", 2, {"pager": False}), "PATCH changes only the keys given",
                lambda: str(p))
            code, p, _ = api.json("PATCH", "/v1/users/alice/preferences", token=adm,
                                  body={"rules": [], "channels": {"pager": None}})
            is_((code, p.get("rules"), p.get("channels"), "quiet" in p), (200, [], {}, True),
                "PATCH rules replaces the rules; a channel set to null is removed",
                lambda: str(p))
            for bad, why in (({"rules": [{"events": "a.*", "channel": "nochan", "on": True}]},
                              "an unknown channel in a rule"),
                             ({"rules": [{"events": "a.*", "channel": "ops", "on": False,
                                          "min_severity": "error"}]}, "an off rule with a severity"),
                             ({"rules": [{"events": "a.*", "channel": "ops"}]}, "a rule without on"),
                             ({"min_severity": "loud"}, "an unknown severity"),
                             ({"channels": {"nochan": True}}, "an unknown channel default"),
                             ({"quiet": {"hours": "25:00-01:00"}}, "bad quiet hours"),
                             ({"quiet": {"hours": "22:00-07:00", "tz": "Nowhere/City"}}, "an unknown zone"),
                             ({"quiet": {"hours": "22:00-07:00", "action": "shout"}}, "a bad action"),
                             ({"min_severity": "info", "colour": 1}, "an unknown member")):
                is_(api.json("PATCH", "/v1/users/alice/preferences", token=adm, body=bad)[0], 422,
                    "preferences, %s: 422" % why)
            is_(api.json("GET", "/v1/users/alice/preferences", token=adm)[1].get("min_severity"),
                "error", "a refused change changes nothing")
            code, p, _ = api.json("PUT", "/v1/users/alice/preferences", token=adm, body={})
            is_((code, "min_severity" in p, p.get("rules"), "quiet" in p), (200, False, [], False),
                "PUT {} removes every run-time preference", lambda: str(p))
            is_(api.json("PUT", "/v1/users/alice/preferences", token=bob, body={})[0], 403,
                "user:bob cannot change alice's preferences")
            is_(api.json("PATCH", "/v1/users/alice/preferences", token=badm, body={})[0], 404,
                "another tenant: 404")
            is_(api.json("GET", "/v1/users/nobody/preferences", token=adm)[0], 404,
                "preferences of no user: 404")

            # A change is in the store when the answer comes (heraldd reloads its routing then).
            api.json("PUT", "/v1/users/alice/preferences", token=adm,
                     body={"rules": [{"events": "*", "channel": "*", "on": False}]})
            res = run(tmp, ["-c", cfg, "prefs", "show", "alice", "--json"])
            is_(len(res.json().get("rules", [])), 1, "the store has the rule at once")
        finally:
            dm.stop()


def users_api_routing():
    """A change over the API decides the very next event (no wait for heraldd's poll), and a
    credential address set over the API is unsealed and used by delivery."""
    from gotify import FakeGotify
    ta, tb, tn = "TokAlice.1", "TokBob.22", "TokAliceNew.7"
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={ta: (1, "a", 5), tb: (2, "b", 5), tn: (3, "n", 5)}) as g, \
            receiver("200") as r:
        port = free_port()
        cfg = write_config(tmp, [{"name": "push", "plugin": "gotify", "url": g.url, "timeout": 2},
                                 hook("audit", r.url + "/audit")])
        with open(cfg, "a") as f:
            f.write('users = ( { name = "alice"; gotify_token = "%s"; groups = ["ops"]; },\n'
                    '          { name = "bob"; gotify_token = "%s"; groups = ["ops"]; } );\n'
                    'routes = ( { match = { events = "disk.*"; }; to = ["@ops"]; } );\n'
                    'http = { listen = "127.0.0.1:%d"; timeout = 2; };\n' % (ta, tb, port))
        api = Api(port)
        adm = token(tmp, cfg, "adm", "admin,submit")

        def pushed(since):
            return sorted(q["headers"].get("x-gotify-key") for q in g.requests()[since:]
                          if q["path"] == "/message")

        def send():
            n = len(g.requests())
            code, body, _ = api.json("POST", "/v1/events?wait=10s", token=adm,
                                     body={"type": "disk.full", "title": "Disk"})
            return code, pushed(n)
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "users routing daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            time.sleep(1.2)
            is_(send(), (200, sorted([ta, tb])), "both of @ops get the event")
            code, p, _ = api.json("PATCH", "/v1/users/alice/preferences", token=adm,
                                  body={"rules": [{"events": "disk.*", "channel": "push",
                                                   "on": False}]})
            is_(code, 200, "alice turns disk.* off over the API")
            is_(send(), (200, [tb]), "the very next event skips alice: routing reloaded at once")
            api.json("PUT", "/v1/users/alice/preferences", token=adm, body={})
            code, u, _ = api.json("PUT", "/v1/users/alice", token=adm,
                                  body={"addresses": {"gotify_token": tn}})
            is_((code, u.get("addresses", {}).get("gotify_token")), (200, "***"),
                "alice's token replaced over the API")
            is_(send(), (200, sorted([tb, tn])),
                "the next event uses the new token, sealed in the store and opened to deliver")

            # Run-time group membership through PUT's groups.
            code, u, _ = api.json("PUT", "/v1/users/carol", token=adm,
                                  body={"addresses": {"gotify_token": ta}, "groups": ["ops"]})
            is_((code, u.get("groups")), (201, ["ops"]), "PUT a new user with groups: 201",
                lambda: str(u))
            is_(send(), (200, sorted([ta, tb, tn])), "@ops now reaches carol too")
            code, u, _ = api.json("PUT", "/v1/users/carol", token=adm,
                                  body={"addresses": {"gotify_token": ta}, "groups": []})
            is_((code, u.get("groups")), (200, []), "PUT with groups [] leaves @ops",
                lambda: str(u))
            is_(send(), (200, sorted([tb, tn])), "and @ops no longer reaches carol")
            code, u, _ = api.json("PUT", "/v1/users/bob", token=adm,
                                  body={"addresses": {}, "groups": []})
            is_((code, u.get("groups")), (200, ["ops"]),
                "a membership the configuration declares stays", lambda: str(u))
            code, e, _ = api.json("PUT", "/v1/users/carol", token=adm,
                                  body={"addresses": {}, "groups": ["Not A Group!"]})
            is_(code, 422, "a bad group name: 422", lambda: str(e))
            code, u, _ = api.json("GET", "/v1/users/carol", token=adm)
            is_((code, u.get("groups")), (200, []), "  and nothing of it was stored",
                lambda: str(u))
            badm = token(tmp, cfg, "badm", "admin", tenant="b")
            # heraldd picks up a new token within a second.
            wait_until(lambda: api.call("GET", "/v1/users", token=badm)[0] == 200, 5)
            code, u, _ = api.json("PUT", "/v1/users/dave", token=badm,
                                  body={"addresses": {}, "groups": ["ops"]})
            is_((code, u.get("groups")), (201, ["ops"]), "tenant b manages its own @ops",
                lambda: str(u))
            is_(send(), (200, sorted([tb, tn])), "which the default tenant's @ops does not see")
        finally:
            dm.stop()


def parse_metrics(text):
    """Prometheus text: ({(name, frozenset of (label, value))): float}, {name: type}), label
    values unescaped; a line that is not well-formed raises ValueError."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        i = 0
        while i < len(line) and line[i] not in "{ ":
            i += 1
        name, labels = line[:i], []
        if line[i] == "{":
            i += 1
            while line[i] != "}":
                eq = line.index("=", i)
                key = line[i:eq]
                if line[eq + 1] != '"':
                    raise ValueError(line)
                j, val = eq + 2, ""
                while line[j] != '"':
                    if line[j] == "\\":
                        val += {"\\": "\\", '"': '"', "n": "\n"}[line[j + 1]]
                        j += 2
                    else:
                        val += line[j]
                        j += 1
                labels.append((key, val))
                i = j + 1
                if line[i] == ",":
                    i += 1
            i += 1
        if line[i] != " ":
            raise ValueError(line)
        samples[(name, frozenset(labels))] = float(line[i + 1:])
    return samples, types


def metrics_counters():
    """/metrics counts events accepted, attempts by verdict, final states and the durations
    of attempts and deliveries since heraldd started; histograms are cumulative; label values
    are escaped."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r, receiver("500") as bad:
        port = free_port()
        cfg = write_config(tmp, [hook("good", r.url + "/good"), hook("bad", bad.url + "/bad")])
        with open(cfg, "a") as f:
            f.write('http = { listen = "127.0.0.1:%d"; timeout = 2; };\n' % port)
        api = Api(port)
        ta = token(tmp, cfg, "a", "submit,read")
        tb = token(tmp, cfg, "b", "submit,read", tenant="b")
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "metrics daemon"):
                return

            def scrape():
                code, _, raw = api.call("GET", "/metrics", token=ta)
                return code, raw.decode("utf-8", "replace")

            def value(samples, name, **labels):
                return samples.get((name, frozenset(labels.items())))
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            code, text = scrape()
            samples, types = parse_metrics(text)
            is_((code, value(samples, "herald_attempts_total", channel="good", status="ok"),
                 value(samples, "herald_attempt_duration_seconds_count", channel="good")),
                (200, 0, 0), "before any attempt: configured channels' series at zero",
                lambda: text)
            is_(api.call("GET", "/metrics", token=tb)[0], 403,
                "a token of another tenant cannot scrape every tenant's figures: 403")
            ok(value(samples, "herald_start_time_seconds") and
               abs(value(samples, "herald_start_time_seconds") - time.time()) < 60,
               "herald_start_time_seconds says when the counters started")

            for i in range(3):
                api.json("POST", "/v1/events?wait=10s", token=ta,
                         body={"type": "m.ok", "title": str(i), "to": ["good"]},
                         headers={"Idempotency-Key": "k%d" % i})
            api.json("POST", "/v1/events?wait=10s", token=ta,
                     body={"type": "m.ok", "title": "again", "to": ["good"]},
                     headers={"Idempotency-Key": "k0"})
            code, body, _ = api.json("POST", "/v1/events?wait=10s", token=ta,
                                     body={"type": "m.bad", "title": "x", "to": ["bad"]})
            is_([d.get("state") for d in body.get("deliveries", [])], ["dead"],
                "a delivery to a receiver answering 500 ends dead", lambda: str(body))
            api.json("POST", "/v1/events?wait=10s", token=tb,
                     body={"type": "m.ok", "title": "b", "to": ["good"]})
            with Client(dm.sock) as c:
                for i in range(2):
                    rep = c.call(submit_req("sock %d" % i, to=["good"]))
                    c.call({"op": "wait", "id": (rep or {}).get("id", ""), "timeout_ms": 10000})
            code, text = scrape()
            samples, types = parse_metrics(text)
            is_({k: value(samples, "herald_events_accepted_total", tenant=t, source=src)
                 for k, t, src in (("a-http", "default", "http"), ("b-http", "b", "http"),
                                   ("a-socket", "default", "socket"))},
                {"a-http": 4, "b-http": 1, "a-socket": 2},
                "herald_events_accepted_total by tenant and source", lambda: text)
            is_(value(samples, "herald_events_duplicate_total", tenant="default", source="http"),
                1, "herald_events_duplicate_total: the repeated Idempotency-Key")
            got = {(ch, st): value(samples, "herald_attempts_total", channel=ch, status=st)
                   for ch in ("good", "bad") for st in ("ok", "retry", "failed", "disable")}
            is_(got, {("good", "ok"): 6, ("good", "retry"): 0, ("good", "failed"): 0,
                      ("good", "disable"): 0, ("bad", "ok"): 0, ("bad", "retry"): 4,
                      ("bad", "failed"): 0, ("bad", "disable"): 0},
                "herald_attempts_total by channel and verdict: 6 ok, 4 retries (max_attempts 4)",
                lambda: text)
            got = {(ch, st): value(samples, "herald_deliveries_final_total", channel=ch, state=st)
                   for ch in ("good", "bad") for st in ("sent", "failed", "dead")}
            is_(got, {("good", "sent"): 6, ("good", "failed"): 0, ("good", "dead"): 0,
                      ("bad", "sent"): 0, ("bad", "failed"): 0, ("bad", "dead"): 1},
                "herald_deliveries_final_total by channel and state", lambda: text)
            is_({n: types.get(n) for n in ("herald_events_accepted_total", "herald_attempts_total",
                                           "herald_deliveries_final_total",
                                           "herald_attempt_duration_seconds",
                                           "herald_delivery_latency_seconds")},
                {"herald_events_accepted_total": "counter", "herald_attempts_total": "counter",
                 "herald_deliveries_final_total": "counter",
                 "herald_attempt_duration_seconds": "histogram",
                 "herald_delivery_latency_seconds": "histogram"}, "TYPE lines")
            for hist, counts in (("herald_attempt_duration_seconds", {"good": 6, "bad": 4}),
                                 ("herald_delivery_latency_seconds", {"good": 6, "bad": 1})):
                for ch, n in counts.items():
                    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                                      if k[0] == hist + "_bucket" and dict(k[1])["channel"] == ch))
                    vals = [v for _, v in buckets]
                    ok(len(buckets) > 5 and buckets[-1][0] == float("inf") and
                       vals == sorted(vals) and vals[-1] == n and
                       value(samples, hist + "_count", channel=ch) == n,
                       "%s{channel=%s}: cumulative buckets ending with +Inf == _count == %d"
                       % (hist, ch, n), lambda: str(buckets))
            lat = value(samples, "herald_delivery_latency_seconds_sum", channel="bad")
            ok(lat is not None and lat >= 0.35,
               "the dead delivery's latency spans its retries (2 waits of 200 ms at least)",
               lambda: str(lat))
            is_(value(samples, "herald_attempt_duration_seconds_bucket", channel="good",
                      le="30"), 6, "every quick attempt is within le=30")

            # A channel name from the queue (no longer configured) with a quote, a backslash
            # and a newline: its series escape them.
            weird = 'old"chan\\x\nend'
            db = sqlite3.connect(str(Path(tmp) / "q.db"), timeout=10)
            try:
                now = int(time.time() * 1000)
                db.execute("INSERT INTO events (id, type, severity, title, created_ms) VALUES "
                           "('00000000-0000-7000-8000-000000000001', 'm.old', 1, 'x', ?)", (now,))
                db.execute("INSERT INTO deliveries (event_id, channel, state, next_at, "
                           "created_ms, updated_ms) VALUES "
                           "('00000000-0000-7000-8000-000000000001', ?, 0, 0, ?, ?)",
                           (weird, now, now))
                db.commit()
            finally:
                db.close()
            ok(wait_until(lambda: 'herald_attempts_total{channel="old\\"chan\\\\x\\nend",'
                          'status="retry"}' in scrape()[1], 10),
               "label values escape backslash, quote and newline", lambda: scrape()[1])
            samples, _ = parse_metrics(scrape()[1])
            ok(value(samples, "herald_deliveries", channel=weird, state="dead") is not None,
               "and so does the queue gauge, which parses back to the name",
               lambda: str([k for k in samples if k[0] == "herald_deliveries"]))
        finally:
            dm.stop()


def users_tenants():
    """Users belong to a tenant: the same name in two tenants is two people; a token never
    reads, lists or changes another tenant's user; an event of a tenant routed or addressed
    to "alice" reaches its own tenant's alice only; the CLI acts on the default tenant."""
    from gotify import FakeGotify
    t_def, t_b, t_bob = "TokDefAlice.1", "TokBAlice.22", "TokDefBob.3"
    with tempfile.TemporaryDirectory() as tmp, \
            FakeGotify(app_tokens={t_def: (1, "a", 5), t_b: (2, "b", 5),
                                   t_bob: (3, "c", 5)}) as g:
        port = free_port()
        cfg = write_config(tmp, [{"name": "push", "plugin": "gotify", "url": g.url,
                                  "timeout": 2}])
        with open(cfg, "a") as f:
            f.write('users = ( { name = "alice"; gotify_token = "%s"; },\n'
                    '          { name = "bob"; gotify_token = "%s"; } );\n'
                    'routes = ( { match = { events = "disk.*"; }; to = ["alice"]; },\n'
                    '           { match = { events = "ping.*"; }; to = ["alice", "bob"]; } );\n'
                    'http = { listen = "127.0.0.1:%d"; timeout = 2; };\n' % (t_def, t_bob, port))
        api = Api(port)
        adm = token(tmp, cfg, "adm", "admin,submit")
        badm = token(tmp, cfg, "b-adm", "admin,submit", tenant="b")
        b_alice = token(tmp, cfg, "b-alice", "user:alice", tenant="b")
        d_alice = token(tmp, cfg, "d-alice", "user:alice")

        def pushed(since):
            return sorted(q["headers"].get("x-gotify-key") for q in g.requests()[since:]
                          if q["path"] == "/message")

        def send(tok, **event):
            n = len(g.requests())
            ev = {"type": "disk.full", "title": "Disk"}
            ev.update(event)
            code, body, _ = api.json("POST", "/v1/events?wait=10s", token=tok, body=ev)
            return code, pushed(n), body
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "tenant users daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)

            is_(api.json("GET", "/v1/users/alice", token=badm)[0], 404,
                "tenant b cannot read the default tenant's alice: 404")
            is_(api.json("GET", "/v1/users/alice/preferences", token=badm)[0], 404,
                "nor her preferences")
            is_(api.json("PATCH", "/v1/users/alice/preferences", token=badm,
                         body={"min_severity": "critical"})[0], 404, "nor change them: 404")
            code, lst, _ = api.json("GET", "/v1/users", token=badm)
            is_((code, lst.get("users")), (200, []),
                "GET /v1/users of tenant b lists none of the default tenant's users")
            code, lst, _ = api.json("GET", "/v1/users", token=adm)
            is_((code, [u.get("name") for u in lst.get("users", [])]), (200, ["alice", "bob"]),
                "the default tenant lists its own (the config's)", lambda: str(lst))
            is_(api.json("GET", "/v1/users", token=d_alice)[0], 403,
                "listing users needs admin: user:alice gets 403")
            code, pushed_, body = send(badm)
            is_((code, pushed_), (200, []),
                "before tenant b has an alice, its event routed to alice reaches nobody",
                lambda: str(body))
            code, trail, _ = api.json("GET", "/v1/events/%s/explain" % body.get("id"), token=badm)
            ok("tenant b has no user alice" in json.dumps(trail),
               "and its routing trail says tenant b has no user alice", lambda: str(trail))

            code, u, _ = api.json("PUT", "/v1/users/alice", token=badm,
                                  body={"addresses": {"gotify_token": t_b}})
            is_((code, u.get("name"), u.get("origin"), u.get("addresses")),
                (201, "alice", "run time", {"gotify_token": "***"}),
                "tenant b creates its own alice: 201, the same name as the default tenant's",
                lambda: str(u))
            code, u, _ = api.json("GET", "/v1/users/alice", token=adm)
            ok(code == 200 and "herald.conf:" in u.get("origin", "") and
               u.get("addresses") == {"gotify_token": "***"},
               "the default tenant's alice is still the config's", lambda: str(u))
            res = run(tmp, ["-c", cfg, "user", "list", "--json"])
            is_(sorted(x.get("name") for x in res.rows()), ["alice", "bob"],
                "herald user list shows the default tenant's users only", lambda: res.describe())
            code, p, _ = api.json("PATCH", "/v1/users/alice/preferences", token=b_alice,
                                  body={"min_severity": "critical"})
            is_((code, p.get("min_severity")), (200, "critical"),
                "b's alice changes her own preferences with her user:alice token of tenant b")
            is_("min_severity" in api.json("GET", "/v1/users/alice/preferences", token=adm)[1],
                False, "the default tenant's alice is untouched")
            is_(api.json("GET", "/v1/users/alice/preferences", token=d_alice)[1].get(
                "min_severity"), None, "and so her own token sees")
            code, lst, _ = api.json("GET", "/v1/users", token=badm)
            is_([x.get("name") for x in lst.get("users", [])], ["alice"],
                "tenant b lists its alice only")
            is_(api.json("GET", "/v1/users/bob", token=badm)[0], 404,
                "tenant b still cannot see the default tenant's bob")

            code, got, body = send(badm, severity="critical")
            is_((code, got), (200, [t_b]), "tenant b's event routed to alice reaches b's alice "
                "only", lambda: str(body))
            code, got, body = send(badm)
            is_((code, got), (200, []),
                "b's alice's min_severity (critical) holds back b's event of a lower severity",
                lambda: str(body))
            code, got, body = send(adm)
            is_((code, got), (200, [t_def]), "the default tenant's event reaches its own alice "
                "only", lambda: str(body))
            code, got, body = send(adm, type="ping.x", user="alice")
            is_((code, got), (200, [t_def]),
                "a default event addressed to alice reaches the default tenant's alice",
                lambda: str(body))
            code, got, body = send(badm, type="ping.x", user="alice", severity="critical")
            is_((code, got), (200, [t_b]),
                "a tenant b event addressed to alice reaches b's alice, never the default's",
                lambda: str(body))
            code, got, body = send(badm, type="ping.x", severity="critical")
            is_((code, got), (200, [t_b]),
                "a route to alice and bob reaches b's alice only: b has no bob",
                lambda: str(body))

            # The CLI acts on the default tenant: removing its run-time user leaves b's.
            res = run(tmp, ["-c", cfg, "user", "add", "dave", "gotify_token=" + t_bob])
            is_(res.rc, 0, "herald user add dave (default tenant)", lambda: res.describe())
            is_(api.json("PUT", "/v1/users/dave", token=badm, body={"addresses": {}})[0], 201,
                "tenant b creates its own dave")
            res = run(tmp, ["-c", cfg, "user", "remove", "dave"])
            is_((res.rc, api.json("GET", "/v1/users/dave", token=adm)[0],
                 api.json("GET", "/v1/users/dave", token=badm)[0]), (0, 404, 200),
                "herald user remove dave removes the default tenant's, not b's",
                lambda: res.describe())
            code, lst, _ = api.json("GET", "/v1/users", token=adm)
            is_([x.get("name") for x in lst.get("users", [])], ["alice", "bob"],
                "the default tenant lists none of b's users (b's alice and dave)")
            db = sqlite3.connect(str(Path(tmp) / "q.db"), timeout=10)
            try:
                rows = db.execute("SELECT tenant, value FROM user_prefs WHERE user = 'alice' AND "
                                  "kind = 'addr'").fetchall()
            finally:
                db.close()
            ok(len(rows) == 1 and rows[0][0] == "b" and rows[0][1].startswith("hs1:") and
               t_b not in rows[0][1],
               "b's alice's token is stored sealed, under tenant b", lambda: str(rows))
        finally:
            dm.stop()


def answers_when_idle():
    """With nothing else for heraldd to do (its only channel disabled, so no delivery wakes
    it), a 202 still comes as soon as the event is committed, not at the next idle wakeup
    (200 ms: a resumed connection used to wait for it)."""
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg, api = setup(tmp, r)
        t = token(tmp, cfg, "idle", "submit")
        run(tmp, ["-c", cfg, "channel", "disable", "ops"])
        dm = Daemon(tmp, cfg)
        try:
            if not started(dm, "idle daemon"):
                return
            wait_until(lambda: api.call("GET", "/healthz")[0] == 200, 5)
            times, codes = [], []
            for i in range(7):
                t0 = time.monotonic()
                codes.append(api.call("POST", "/v1/events", token=t,
                                      body={"type": "idle.test", "title": "idle %d" % i})[0])
                times.append(time.monotonic() - t0)
                time.sleep(0.25)  # idle again: the daemon's 200 ms poll runs out meanwhile
            is_(codes, [202] * 7, "7 events accepted by an idle daemon")
            times.sort()
            ok(times[3] < 0.1, "the 202 comes at once, not at the next idle wakeup (median "
               "%.0f ms)" % (1000 * times[3]), lambda: str(times))
        finally:
            dm.stop()


def refuse_public_plaintext():
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(tmp, [])
        with open(cfg, "a") as f:
            f.write('http = { listen = "0.0.0.0:%d"; };\n' % free_port())
        p = subprocess.run([HERALDD, "-c", cfg, "--foreground"], capture_output=True, text=True,
                           timeout=20, env=herald_env(tmp))
        ok(p.returncode == 2 and "not loopback" in p.stderr and "tls_cert" in p.stderr,
           "a non-loopback listen address without TLS is refused at start", lambda: p.stderr)


def main():
    run_scenarios((main_flow, webhooks_api, stats_and_channels, users_api, users_api_routing,
                   users_tenants, metrics_counters, rate_limit_and_openapi,
                   answers_when_idle, refuse_public_plaintext))
    done_testing()


if __name__ == "__main__":
    main()
