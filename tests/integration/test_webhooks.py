#!/usr/bin/env python3
"""test_webhooks.py - webhook subscriptions end to end: `herald webhook add|list|show|update|
rotate-secret|deliveries|redeliver|test|disable|enable|remove`, what a receiver gets (Standard
Webhooks headers and envelope, checked with an independent HMAC in Python and with `herald
verify`), filters, rotation (both signatures during the grace), redelivery keeping webhook-id,
auto-disable at 410 and after N consecutive failures, secrets sealed at rest (a database
without its key reveals nothing and fails clearly), payload cap refused at submit, and the
secret never printed again after `add`.

Environment: HERALD, HERALDD, HERALD_PLUGIN_PATH (make check sets them).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from taplib import done_testing, is_, like, ok, run_scenarios  # noqa: E402
from test_queue import Daemon, receiver, run, started, wait_until, write_config  # noqa: E402

outputs = []


def herald(tmp, args, input=None):
    res = run(tmp, args, input=input)
    outputs.append(res.out + res.err)
    return res


def standard_sig(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, ("%s.%s." % (msg_id, ts)).encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def config(tmp):
    return write_config(tmp, [])


def add(tmp, cfg, url, *extra):
    res = herald(tmp, ["-c", cfg, "webhook", "add", "--json", "--name", extra[0], "--url", url,
                       "--events", extra[1]] + list(extra[2:]))
    j = res.json() if res.rc == 0 else {}
    return res, j.get("id"), j.get("secret")


def body_of(req):
    return base64.b64decode(req["body_b64"])


def main_flow():
    with tempfile.TemporaryDirectory() as tmp, receiver("200") as r:
        cfg = config(tmp)
        res, wid, secret = add(tmp, cfg, r.url + "/hook?token=T0ken-Abc", "crm", "vm.*,ansible.failed",
                               "--header", "X-Api-Key: Key-Sekrit-123")
        is_(res.rc, 0, "webhook add exits 0", res.describe)
        ok(wid and wid.startswith("wh_") and len(wid) == 19, "add prints the id (wh_ + 16 hex)")
        ok(secret and secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32,
           "and, once, a generated whsec_ secret of 32 random bytes")

        res = herald(tmp, ["-c", cfg, "send", "-e", "vm.started", "-f", "host=h1", "VM up"])
        is_(res.rc, 0, "a matching event is delivered", res.describe)
        herald(tmp, ["-c", cfg, "send", "-e", "disk.full", "Disk"])
        reqs = r.requests()
        is_(len(reqs), 1, "the subscription's filter keeps disk.full out",
            lambda: json.dumps(reqs)[:2000])
        q = reqs[0] if reqs else {"headers": {}, "body_b64": "", "path": "", "query": ""}
        h = q["headers"]
        body = body_of(q)
        is_((q["path"], q["query"]), ("/hook", "token=T0ken-Abc"), "POSTed to the URL as given")
        is_(h.get("x-api-key"), "Key-Sekrit-123", "custom header sent")
        is_(h.get("x-herald-event"), "vm.started", "X-Herald-Event")
        is_(h.get("x-herald-delivery-attempt"), "1", "X-Herald-Delivery-Attempt: 1")
        like(h.get("user-agent", ""), r"^herald/\d", "User-Agent: herald/VERSION")
        env = json.loads(body or b"{}")
        is_(sorted(env), ["data", "timestamp", "type"], "payload {type, timestamp, data}")
        is_((env.get("type"), env.get("data", {}).get("fields")), ("vm.started", {"host": "h1"}),
            "the event inside data")
        like(h.get("webhook-id", ""), "^msg_" + env.get("data", {}).get("id", "?") + "$",
             "webhook-id: msg_ + the event id")
        ts = h.get("webhook-timestamp", "0")
        ok(abs(int(ts) - time.time()) < 30, "webhook-timestamp: now")
        is_(h.get("webhook-signature"), standard_sig(secret, h.get("webhook-id"), ts, body),
            "webhook-signature matches an independent HMAC-SHA256 in Python")
        bodyfile = Path(tmp) / "body"
        bodyfile.write_bytes(body)
        v = herald(tmp, ["verify", "--secret", secret, "--id", h.get("webhook-id", ""),
                         "--timestamp", ts, "--signature", h.get("webhook-signature", "")],
                   input=body)
        is_(v.rc, 0, "herald verify accepts it", v.describe)
        v = herald(tmp, ["verify", "--secret", secret, "--id", h.get("webhook-id", ""),
                         "--timestamp", ts, "--signature", h.get("webhook-signature", "")],
                   input=body + b" ")
        is_(v.rc, 1, "herald verify refuses a tampered body", v.describe)

        res = herald(tmp, ["-c", cfg, "webhook", "show", wid, "--json"])
        j = res.json()
        c = j.get("counters", {})
        is_((c.get("total"), c.get("succeeded"), c.get("failed"), c.get("success_rate")),
            (1, 1, 0, 1.0), "show: counters", res.describe)
        ok(c.get("last_success") and not c.get("last_failure"), "show: last success, no failure")
        is_(j.get("url"), "http://127.0.0.1:%d/…" % r.port, "show: the URL without its path "
            "or query (they may hold tokens)")

        # Rotation: both signatures during the grace, each verifying with its own secret.
        res = herald(tmp, ["-c", cfg, "webhook", "rotate-secret", wid, "--grace", "1h"])
        is_(res.rc, 0, "rotate-secret exits 0", res.describe)
        new = next((w for w in res.out.split() if w.startswith("whsec_")), None)
        ok(new and new != secret, "rotate-secret prints a new secret")
        herald(tmp, ["-c", cfg, "send", "-e", "vm.stopped", "VM down"])
        q = r.requests()[-1]
        h, body = q["headers"], body_of(q)
        sigs = h.get("webhook-signature", "").split(" ")
        is_(sigs, [standard_sig(new, h["webhook-id"], h["webhook-timestamp"], body),
                   standard_sig(secret, h["webhook-id"], h["webhook-timestamp"], body)],
            "during the grace: the new and the old signature", lambda: h)

        # Redelivery keeps webhook-id; the daemon sends it again.
        res = herald(tmp, ["-c", cfg, "webhook", "deliveries", wid, "--json"])
        ds = res.rows()
        first = ds[-1]["delivery"] if ds else 0
        first_id = r.requests()[0]["headers"].get("webhook-id")
        res = herald(tmp, ["-c", cfg, "webhook", "redeliver", str(first)])
        is_(res.rc, 0, "redeliver exits 0", res.describe)
        dm = Daemon(tmp, cfg)
        try:
            if started(dm, "webhook daemon"):
                ok(wait_until(lambda: len(r.requests()) >= 3, 5), "the daemon redelivers",
                   dm.describe)
                q = r.requests()[-1]
                is_((q["headers"].get("webhook-id"), q["headers"].get("x-herald-delivery-attempt")),
                    (first_id, "2"), "redelivery: the same webhook-id, attempt 2")
                res = herald(tmp, ["-c", cfg, "webhook", "test", wid])
                is_(res.rc, 0, "webhook test exits 0", res.describe)
                ok(wait_until(lambda: any(x["headers"].get("x-herald-event") == "herald.test"
                                          for x in r.requests()), 5),
                   "webhook test: a herald.test event through the real path")
        finally:
            dm.stop()

        # Sealed at rest.
        db = sqlite3.connect(str(Path(tmp) / "q.db"))
        dump = "\n".join(db.iterdump())
        db.close()
        ok(all(s not in dump for s in (secret, new, "T0ken-Abc", "Key-Sekrit-123")),
           "the database holds no secret, URL token or header value in the clear")
        key = Path(tmp) / "secret.key"
        ok(key.exists() and (key.stat().st_mode & 0o777) == 0o600, "the key file is 0600")
        shutil.move(str(key), str(Path(tmp) / "away.key"))
        res = herald(tmp, ["-c", cfg, "webhook", "update", wid, "--timeout", "5s"])
        ok(res.rc == 2 and "secret.key" in res.err, "without the key: a clear error naming it",
           res.describe)
        shutil.move(str(Path(tmp) / "away.key"), str(key))

        # Payload cap: refused at submit, nothing stored.
        res = herald(tmp, ["-c", cfg, "webhook", "update", wid, "--max-payload", "1024"])
        res = herald(tmp, ["-c", cfg, "send", "-e", "vm.big", "Big", "x" * 3000])
        ok(res.rc == 2 and "over the 1024 bytes webhook crm" in res.err,
           "an event over a subscription's max payload is refused at submit", res.describe)
        res = herald(tmp, ["-c", cfg, "log", "--json", "-e", "vm.big"])
        is_((res.rc, res.rows()), (0, []), "and nothing was stored", res.describe)

        res = herald(tmp, ["-c", cfg, "webhook", "list"])
        like(res.out, wid + r"\s+crm\s+enabled", "list shows it")
        herald(tmp, ["-c", cfg, "webhook", "remove", wid])
        res = herald(tmp, ["-c", cfg, "webhook", "list", "--json"])
        is_((res.rc, res.out.strip()), (0, "[]"), "remove removes it", res.describe)

        leaked = [o for o in outputs[1:] if secret in o and "rotate" not in o]
        ok(not leaked, "the first secret is printed by add only", lambda: str(leaked[:1]))
        leaked = [o for o in outputs if "T0ken-Abc" in o or "Key-Sekrit-123" in o]
        ok(not leaked, "the URL token and header value are never printed",
           lambda: str(leaked[:1]))


def auto_disable():
    with tempfile.TemporaryDirectory() as tmp, receiver("410;body=gone") as gone, \
            receiver("500") as bad:
        cfg = write_config(tmp, [], retry={"schedule": ["1s"], "max_attempts": 1,
                                           "disable_after": 2})
        res, gid, _ = add(tmp, cfg, gone.url + "/x", "gone", "*")
        res, bid, _ = add(tmp, cfg, bad.url + "/x", "flaky", "job.*", "--max-attempts", "1")
        herald(tmp, ["-c", cfg, "send", "-e", "job.done", "one"])
        res = herald(tmp, ["-c", cfg, "webhook", "show", gid, "--json"])
        j = res.json()
        is_(j.get("enabled"), False, "410: the subscription is disabled at once", res.describe)
        like(j.get("disabled_reason") or "", "410", "and the reason is stored")
        res = herald(tmp, ["-c", cfg, "webhook", "show", bid, "--json"])
        is_(res.json().get("enabled"), True, "one 500: still enabled", res.describe)
        herald(tmp, ["-c", cfg, "send", "-e", "job.done", "two"])
        res = herald(tmp, ["-c", cfg, "webhook", "show", bid])
        like(res.out, r"DISABLED", "two consecutive failures (disable_after = 2): disabled",
             res.describe)
        like(res.out, r"consecutive", "show says why", res.describe)
        n = len(bad.requests())
        herald(tmp, ["-c", cfg, "send", "-e", "job.done", "three"])
        is_(len(bad.requests()), n, "a disabled subscription gets nothing")
        res = herald(tmp, ["-c", cfg, "webhook", "enable", bid])
        is_(res.rc, 0, "webhook enable", res.describe)
        res = herald(tmp, ["-c", cfg, "webhook", "show", bid, "--json"])
        is_(res.json().get("enabled"), True, "enabled again", res.describe)


def main():
    run_scenarios((main_flow, auto_disable))
    done_testing()


if __name__ == "__main__":
    main()
