#!/usr/bin/env python3
"""A loopback fake of Discord's webhook API that answers as ../shared/CONTRACTS.md says.

    with FakeDiscord(hooks={"123": "tok-abc"}) as d:
        d.url                      # base; webhook URL is d.url + "/api/webhooks/123/tok-abc"
        d.messages(); d.requests(); d.limit_next(1, retry_after=0.4); d.delete("123")

POST /api/webhooks/{id}/{token}[?wait=true]: 200 + message object with wait=true, 204
without; 401 {"message":"Invalid Webhook Token","code":50027}; 404 {"message":"Unknown
Webhook","code":10015}; 400 code 50006 for an empty message and 50035 "Invalid Form Body"
for content > 2,000, > 10 embeds, title > 256, description > 4,096, > 25 fields (name 256,
value 1,024), footer > 2,048, or more than 6,000 characters over all embeds. Every answer
carries X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket; limit_next(k) answers 429
{"message":"You are being rate limited.","retry_after":X,"global":false} with Retry-After.
GET on the webhook URL returns the webhook object. Only the standard library is used.
"""
import json
import math
import time

from fakehttp import FakeServer, JsonHandler


def _len(s):
    return len(s or "")


def _form_errors(msg):
    errors = {}
    if _len(msg.get("content")) > 2000:
        errors["content"] = "Must be 2000 or fewer in length."
    embeds = msg.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, e in enumerate(embeds[:10]):
        fields = e.get("fields") or []
        checks = [("title", _len(e.get("title")), 256),
                  ("description", _len(e.get("description")), 4096),
                  ("footer.text", _len((e.get("footer") or {}).get("text")), 2048),
                  ("fields", len(fields), 25)]
        for j, f in enumerate(fields):
            checks += [("fields.%d.name" % j, _len(f.get("name")), 256),
                       ("fields.%d.value" % j, _len(f.get("value")), 1024)]
        for name, n, limit in checks:
            if n > limit:
                errors["embeds.%d.%s" % (i, name)] = "Must be %d or fewer in length." % limit
        total += (_len(e.get("title")) + _len(e.get("description")) +
                  _len((e.get("footer") or {}).get("text")) +
                  sum(_len(f.get("name")) + _len(f.get("value")) for f in fields))
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    return errors


class _Handler(JsonHandler):
    def respond(self, fake, method, u, body):
        parts = u.path.strip("/").split("/")
        rl = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
              "X-RateLimit-Reset": "%.3f" % (time.time() + 2), "X-RateLimit-Reset-After": "2.000",
              "X-RateLimit-Bucket": "abcd1234"}
        if len(parts) != 4 or parts[:2] != ["api", "webhooks"]:
            return self.send_json(404, {"message": "404: Not Found", "code": 0})
        hook, token = parts[2], parts[3]
        if hook not in fake.hooks:
            return self.send_json(404, {"message": "Unknown Webhook", "code": 10015}, rl)
        if fake.hooks[hook] != token:
            return self.send_json(401, {"message": "Invalid Webhook Token", "code": 50027}, rl)
        if method == "GET":
            return self.send_json(200, {"application_id": None, "avatar": None,
                                        "channel_id": "555", "guild_id": "777", "id": hook,
                                        "name": "herald-test", "type": 1, "token": token}, rl)
        if method != "POST":
            return self.send_json(405, {"message": "405: Method Not Allowed", "code": 0})
        with fake.lock:
            if fake._limited:
                fake._limited -= 1
                after = fake._retry_after
                rl.update({"X-RateLimit-Remaining": "0", "Retry-After": str(math.ceil(after))})
                return self.send_json(429, {"message": "You are being rate limited.",
                                            "retry_after": after, "global": False}, rl)
        try:
            msg = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return self.send_json(400, {"message": "Cannot send an empty message",
                                        "code": 50006})
        if not msg.get("content") and not msg.get("embeds"):
            return self.send_json(400, {"message": "Cannot send an empty message",
                                        "code": 50006}, rl)
        errors = _form_errors(msg)
        if errors:
            return self.send_json(400, {"code": 50035, "errors": errors,
                                        "message": "Invalid Form Body"}, rl)
        with fake.lock:
            fake._next += 1
            out = {"id": str(1100000000000000000 + fake._next), "type": 0,
                   "content": msg.get("content") or "", "channel_id": "555",
                   "embeds": msg.get("embeds") or [], "webhook_id": hook,
                   "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
            fake._messages.append(msg)
        if "wait=true" not in u.query:
            self.send_response(204)
            for k, v in rl.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self.send_json(200, out, rl)


class FakeDiscord(FakeServer):
    handler = _Handler

    def __init__(self, hooks=None):
        super().__init__()
        self.hooks = dict(hooks or {"1234567890": "tok-secret-abc"})
        self._messages = []
        self._limited = 0
        self._retry_after = 0.5
        self._next = 0

    def messages(self):
        with self.lock:
            return list(self._messages)

    def limit_next(self, k, retry_after=0.5):
        with self.lock:
            self._limited += k
            self._retry_after = retry_after

    def delete(self, hook):
        self.hooks.pop(hook, None)
