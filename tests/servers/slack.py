#!/usr/bin/env python3
"""A loopback fake of Slack's incoming webhooks and Web API (chat.postMessage, auth.test)
that answers as ../shared/CONTRACTS.md says.

    with FakeSlack(hooks={"T1/B1/X1"}, tokens={"xoxb-1": "acme"}, channels={"#ops"}) as s:
        s.url + "/services/T1/B1/X1"     # a webhook; s.url + "/api" is the Web API base
        s.posts(); s.requests(); s.limit_next(1); s.archive("T1/B1/X1"); s.remove(...)

Webhooks: 200 "ok" (text/plain); plain-text error codes: 400 invalid_payload (not JSON),
400 no_text, 400 invalid_blocks (header > 150, section > 3,000, > 50 blocks), 403
invalid_token, 404 no_service (removed), 410 channel_is_archived, 429 with Retry-After.
Web API: always 200 with {"ok":false,"error":...} on failure (not_authed, invalid_auth,
channel_not_found, no_text), except 429. Only the standard library is used.
"""
import json

from fakehttp import FakeServer, JsonHandler


def _blocks_ok(blocks):
    if len(blocks) > 50:
        return False
    for b in blocks:
        t = (b.get("text") or {}).get("text") or ""
        if b.get("type") == "header" and (len(t) > 150 or (b["text"].get("type") !=
                                                             "plain_text")):
            return False
        if b.get("type") == "section" and len(t) > 3000:
            return False
    return True


class _Handler(JsonHandler):
    def plain(self, code, text, headers=None):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def respond(self, fake, method, u, body):
        with fake.lock:
            limited = fake._limited > 0
            if limited:
                fake._limited -= 1
        if u.path.startswith("/services/"):
            hook = u.path[len("/services/"):]
            if hook in fake.removed:
                return self.plain(404, "no_service")
            if hook in fake.archived:
                return self.plain(410, "channel_is_archived")
            if hook not in fake.hooks:
                return self.plain(403, "invalid_token")
            if limited:
                return self.plain(429, "rate_limited", {"Retry-After": "3"})
            try:
                msg = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return self.plain(400, "invalid_payload")
            if not isinstance(msg, dict):
                return self.plain(400, "invalid_payload")
            blocks = list(msg.get("blocks") or [])
            for a in msg.get("attachments") or []:
                blocks += a.get("blocks") or []
            if not msg.get("text") and not blocks:
                return self.plain(400, "no_text")
            if not _blocks_ok(msg.get("blocks") or []) or not all(
                    _blocks_ok(a.get("blocks") or []) for a in msg.get("attachments") or []):
                return self.plain(400, "invalid_blocks")
            with fake.lock:
                fake._posts.append(msg)
            return self.plain(200, "ok")
        if u.path in ("/api/chat.postMessage", "/api/auth.test"):
            if limited:
                return self.send_json(429, {"ok": False, "error": "ratelimited"},
                                      {"Retry-After": "3"})
            auth = self.headers.get("Authorization") or ""
            if not auth.startswith("Bearer "):
                return self.send_json(200, {"ok": False, "error": "not_authed"})
            team = fake.tokens.get(auth[7:])
            if team is None:
                return self.send_json(200, {"ok": False, "error": "invalid_auth"})
            if u.path == "/api/auth.test":
                return self.send_json(200, {"ok": True, "url": "https://%s.slack.com/" % team,
                                            "team": team, "user": "herald", "team_id": "T1",
                                            "user_id": "U1"})
            try:
                msg = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return self.send_json(200, {"ok": False, "error": "invalid_json"})
            if msg.get("channel") not in fake.channels:
                return self.send_json(200, {"ok": False, "error": "channel_not_found"})
            if not msg.get("text") and not msg.get("blocks") and not msg.get("attachments"):
                return self.send_json(200, {"ok": False, "error": "no_text"})
            with fake.lock:
                fake._posts.append(msg)
            return self.send_json(200, {"ok": True, "channel": "C1", "ts": "1800000000.000100",
                                        "message": {"text": msg.get("text")}})
        return self.plain(404, "not_found")


class FakeSlack(FakeServer):
    handler = _Handler

    def __init__(self, hooks=None, tokens=None, channels=None):
        super().__init__()
        self.hooks = set(hooks or ())
        self.tokens = dict(tokens or {})
        self.channels = set(channels or ())
        self.archived, self.removed = set(), set()
        self._posts = []
        self._limited = 0

    def posts(self):
        with self.lock:
            return list(self._posts)

    def limit_next(self, k):
        with self.lock:
            self._limited += k

    def archive(self, hook):
        self.archived.add(hook)

    def remove(self, hook):
        self.removed.add(hook)
