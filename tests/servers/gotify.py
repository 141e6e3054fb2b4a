#!/usr/bin/env python3
"""A loopback fake of the Gotify server (v2 by default, v3 with version=3) that answers
exactly as ../shared/CONTRACTS.md says, error cases included.

Module:
    from gotify import FakeGotify
    with FakeGotify(app_tokens={"AppTok": (3, "backups", 5)}, client_tokens={"CliTok"}) as g:
        g.url                       # http://127.0.0.1:PORT
        g.messages()                # stored messages (dicts as Gotify returns them)
        g.requests()                # every request: method, path, query, headers, body
        g.fail_next(500)            # the next POST /message gets a 500 (database error)

Tokens are read from ?token=, X-Gotify-Key or Authorization: Bearer (v2.2+). v2: only an
application token may post (client token 401, Basic auth 403). v3: a client token or Basic
auth may post too but needs "appid" in the body. Only the Python standard library is used.
"""

import base64
import json
import time
from urllib.parse import parse_qs

from fakehttp import FakeServer, JsonHandler

UNAUTHORIZED = {"error": "Unauthorized", "errorCode": 401,
                "errorDescription": "you need to provide a valid access token or user "
                                    "credentials to access this api"}
FORBIDDEN = {"error": "Forbidden", "errorCode": 403,
             "errorDescription": "you are not allowed to access this api"}
NOT_FOUND = {"error": "Not Found", "errorCode": 404, "errorDescription": "page not found"}
MESSAGE_REQUIRED = {"error": "Bad Request", "errorCode": 400,
                    "errorDescription": "Field 'message' is required"}


class _Handler(JsonHandler):
    def _token(self, query):
        t = (parse_qs(query).get("token") or [None])[0]
        t = t or self.headers.get("X-Gotify-Key")
        auth = self.headers.get("Authorization") or ""
        if not t and auth.startswith("Bearer "):
            t = auth[7:]
        basic = None
        if auth.startswith("Basic "):
            try:
                basic = base64.b64decode(auth[6:]).decode()
            except Exception:
                basic = ""
        return t, basic

    def respond(self, fake, method, u, body):
        token, basic = self._token(u.query)
        if method == "GET" and u.path == "/version":
            return self.send_json(200, {"version": "%d.0.0" % fake.version,
                                    "commit": "0123456789abcdef",
                                    "buildDate": "2026-01-01T00:00:00Z"})
        if method == "GET" and u.path == "/health":
            return self.send_json(200 if fake.healthy else 500,
                              {"health": "green" if fake.healthy else "red",
                               "database": "green" if fake.healthy else "red"})
        if method == "GET" and u.path in ("/application", "/current/user"):
            # An application token can call nothing else that needs auth.
            if token in fake.client_tokens:
                return self.send_json(200, [] if u.path == "/application" else {"id": 1})
            return self.send_json(401, UNAUTHORIZED)
        if u.path != "/message" or method != "POST":
            return self.send_json(404, NOT_FOUND)
        app = fake.app_tokens.get(token)
        via_client = token in fake.client_tokens or (basic is not None and
                                                       basic in fake.users)
        if app is None:
            if fake.version < 3 or not via_client:
                if basic is not None and not token and basic in fake.users:
                    return self.send_json(403, FORBIDDEN)
                return self.send_json(401, UNAUTHORIZED)
        with fake.lock:
            forced = fake._fail.pop(0) if fake._fail else None
        if forced:
            return self.send_json(forced, {"error": "Internal Server Error", "errorCode": forced,
                                       "errorDescription": "database is locked"})
        try:
            msg = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError) as e:
            return self.send_json(400, {"error": "Bad Request", "errorCode": 400,
                                    "errorDescription": str(e)})
        if not isinstance(msg, dict):
            return self.send_json(400, {"error": "Bad Request", "errorCode": 400,
                                    "errorDescription": "json: cannot unmarshal into Go value "
                                                        "of type model.MessageExternal"})
        for key, kind, goname in (("message", str, "string"), ("title", str, "string"),
                                  ("priority", int, "int"), ("extras", dict, "map")):
            if key in msg and msg[key] is not None and (not isinstance(msg[key], kind) or
                                                         isinstance(msg[key], bool)):
                return self.send_json(400, {
                    "error": "Bad Request", "errorCode": 400,
                    "errorDescription": "json: cannot unmarshal %s into Go struct field "
                                        "MessageExternal.%s of type %s" % (
                                            type(msg[key]).__name__, key, goname)})
        if not msg.get("message"):
            return self.send_json(400, MESSAGE_REQUIRED)
        if app is None:  # v3, client token or user: the app comes from the body
            if not isinstance(msg.get("appid"), int):
                return self.send_json(400, {"error": "Bad Request", "errorCode": 400,
                                        "errorDescription": "Field 'appid' is required"})
            app = (msg["appid"], "app%d" % msg["appid"], 5)
        appid, appname, default_prio = app
        with fake.lock:
            fake._next_id += 1
            out = {"id": fake._next_id, "appid": appid, "message": msg["message"],
                   "title": msg.get("title") or appname,
                   "priority": msg["priority"] if isinstance(msg.get("priority"), int)
                   else default_prio,
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if msg.get("extras"):
                out["extras"] = msg["extras"]
            fake._messages.append(out)
        return self.send_json(200, out)


class FakeGotify(FakeServer):
    handler = _Handler

    def __init__(self, app_tokens=None, client_tokens=None, users=None, version=2):
        super().__init__()
        self.app_tokens = dict(app_tokens or {"AbCdEf.123": (1, "herald", 5)})
        self.client_tokens = set(client_tokens or ())
        self.users = set(users or ())  # "user:password" strings for Basic auth
        self.version = version
        self.healthy = True
        self._messages, self._fail = [], []
        self._next_id = 0
        self._server = None

    def messages(self):
        with self.lock:
            return list(self._messages)

    def fail_next(self, code, times=1):
        with self.lock:
            self._fail.extend([code] * times)
