#!/usr/bin/env python3
"""A loopback fake of an ntfy server that answers as ../shared/CONTRACTS.md says.

    from ntfy import FakeNtfy
    with FakeNtfy(tokens={"tk_good"}, protected={"ops"}) as n:
        n.url; n.messages(); n.requests(); n.limit_next(2)

POST {base}/ with a JSON body {topic, message, title, priority, tags, click, markdown}, or
POST {base}/{topic} with the message as the body and Title/Priority/Tags/Click/Markdown
headers. Auth: Authorization: Bearer tk_... (or Basic user:password from `users`).
Errors are JSON {"code":40101,"http":401,"error":"unauthorized"} and the like; messages
over 4,096 bytes get 413 (the server here has no attachment cache, unconfirmed detail);
limit_next(k) answers the next k publishes with 429. GET /v1/health -> {"healthy":true}.
Only the Python standard library is used.
"""
import base64
import json
import time

from fakehttp import FakeServer, JsonHandler

MESSAGE_MAX = 4096
PRIORITY_WORDS = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}


def _err(code, http, text):
    return http, {"code": code, "http": http, "error": text}


class _Handler(JsonHandler):
    def respond(self, fake, method, u, body):
        if method == "GET" and u.path == "/v1/health":
            return self.send_json(200, {"healthy": fake.healthy})
        if method not in ("POST", "PUT"):
            return self.send_json(*_err(40401, 404, "page not found"))
        if u.path == "/":
            try:
                msg = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return self.send_json(*_err(40024, 400, "invalid request: request body must be "
                                                    "message JSON"))
            if not isinstance(msg, dict) or not isinstance(msg.get("topic"), str):
                return self.send_json(*_err(40009, 400, "invalid request: topic invalid"))
        else:
            h = self.headers
            msg = {"topic": u.path.strip("/"), "message": body.decode("utf-8", "replace"),
                   "title": h.get("Title") or h.get("X-Title"),
                   "priority": h.get("Priority") or h.get("X-Priority"),
                   "tags": [t.strip() for t in (h.get("Tags") or "").split(",") if t.strip()],
                   "click": h.get("Click"), "markdown": (h.get("Markdown") or "") in ("yes", "1",
                                                                                      "true")}
        topic = msg["topic"]
        if not topic or "/" in topic:
            return self.send_json(*_err(40009, 400, "invalid request: topic invalid"))
        auth = self.headers.get("Authorization") or ""
        user = None
        if auth.startswith("Bearer "):
            if auth[7:] not in fake.tokens:
                return self.send_json(*_err(40101, 401, "unauthorized"))
            user = auth[7:]
        elif auth.startswith("Basic "):
            try:
                cred = base64.b64decode(auth[6:]).decode()
            except Exception:
                cred = ""
            if cred not in fake.users:
                return self.send_json(*_err(40101, 401, "unauthorized"))
            user = cred
        if topic in fake.protected and user is None:
            return self.send_json(*_err(40301, 403, "forbidden"))
        prio = msg.get("priority")
        if isinstance(prio, str):
            prio = PRIORITY_WORDS.get(prio.lower(), int(prio) if prio.isdigit() else None)
        if prio is not None and (not isinstance(prio, int) or not 1 <= prio <= 5):
            return self.send_json(*_err(40007, 400, "invalid request: priority invalid"))
        text = msg.get("message") or ""
        if len(text.encode("utf-8")) > MESSAGE_MAX:
            return self.send_json(*_err(41301, 413, "request entity too large"))
        with fake.lock:
            if fake._limited > 0:
                fake._limited -= 1
                return self.send_json(*_err(42901, 429, "limit reached: too many requests, please "
                                                    "be nice"))
            fake._next += 1
            out = {"id": "m%07d" % fake._next, "time": int(time.time()), "event": "message",
                   "topic": topic, "message": text}
            for k in ("title", "tags", "click"):
                if msg.get(k):
                    out[k] = msg[k]
            if prio:
                out["priority"] = prio
            if msg.get("markdown"):
                out["content_type"] = "text/markdown"
            fake._messages.append(out)
        return self.send_json(200, out)


class FakeNtfy(FakeServer):
    handler = _Handler

    def __init__(self, tokens=None, users=None, protected=None):
        super().__init__()
        self.tokens = set(tokens or ())
        self.users = set(users or ())
        self.protected = set(protected or ())
        self.healthy = True
        self._messages = []
        self._limited = 0
        self._next = 0

    def messages(self):
        with self.lock:
            return list(self._messages)

    def limit_next(self, k):
        with self.lock:
            self._limited += k
