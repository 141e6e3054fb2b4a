#!/usr/bin/env python3
"""test_client.py - runs tests/client/test_client (a program built against <herald/herald.h>
and libherald only) against a loopback receiver and checks what the receiver got."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from receiver import Receiver  # noqa: E402
import taplib  # noqa: E402

prog = os.path.join(os.environ.get("HERALD_BUILDDIR", "."), "tests", "client", "test_client")
with tempfile.TemporaryDirectory() as tmp, Receiver(responses=["200"]) as r:
    conf = os.path.join(tmp, "herald.conf")
    with open(conf, "w") as f:
        f.write('database = "%s/q.db";\nsocket = "%s/none.sock";\n'
                'channels = ( { name = "hook"; plugin = "webhook"; url = "%s/configured"; } );\n'
                % (tmp, tmp, r.url))
    env = {k: v for k, v in os.environ.items() if k != "HERALD_CONFIG"}
    res = subprocess.run([prog, conf, "json://127.0.0.1:%d/adhoc" % r.port], env=env,
                         capture_output=True, text=True, timeout=60)
    lines = res.stdout.splitlines()
    results = [ln for ln in lines if ln.startswith(("ok ", "not ok "))]
    ids = [ln.split()[-1] for ln in lines if ln.startswith("# id")]
    for ln in results:
        taplib.ok(ln.startswith("ok "), "client: " + ln.split(" - ", 1)[-1])
    taplib.is_(res.returncode, 0, "test_client exits 0", res.stderr)
    r.wait_for(2, 5)
    reqs = r.requests()
    taplib.is_(sorted(q["path"] for q in reqs), ["/adhoc", "/configured"],
               "one request to the event's URL, one to the configured channel")
    adhoc = next((json.loads(q["body"]) for q in reqs if q["path"] == "/adhoc"), {})
    taplib.is_({k: adhoc.get(k) for k in ("type", "severity", "title", "body", "source", "fields",
                                          "data")},
               {"type": "app.user.created", "severity": "warning", "title": "New user",
                "body": "alice signed up", "source": "testapp", "fields": {"plan": "pro"},
                "data": {"uid": 42}}, "the event arrived as built")
    taplib.is_(adhoc.get("id"), ids[0] if ids else None, "with the id herald_submit returned")
taplib.done_testing()
