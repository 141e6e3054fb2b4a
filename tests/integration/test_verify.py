#!/usr/bin/env python3
"""Integration tests for `herald verify`: requests signed here in Python (hmac, hashlib,
base64: nothing of herald's C code) are checked by the real CLI.

Environment (set by `make check`): HERALD, the built herald CLI.
Run by hand from the build directory:
  HERALD=$PWD/herald python3 ../tests/integration/test_verify.py

Prints TAP on stdout; exits non-zero if any test failed.
"""

import base64
import hashlib
import hmac
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from taplib import bail_out, diag, done_testing, is_, like, ok  # noqa: E402

HERALD = os.environ.get("HERALD")
RUN_TIMEOUT = 30
ONE_LINE_RE = r"\Aherald: [^\n]+\n\Z"

# The contract's vectors (CONTRACTS.md, "Signed webhooks").
STD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


# ---- the independent signer ----

def new_secret(nbytes=32, rng=random):
    return "whsec_" + base64.b64encode(bytes(rng.getrandbits(8) for _ in range(nbytes))).decode()


def sign_standard(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, b"%s.%d." % (msg_id.encode(), ts) + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_github(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---- running herald ----

class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def describe(self):
        args = " ".join(self.argv[1:])
        return "cmd: herald %s\nexit: %s\nstdout: %r\nstderr: %r" % (
            args[:400], self.rc, self.out[:2000], self.err[:2000])


def run(args, body=b""):
    env = {k: v for k, v in os.environ.items() if k != "HERALD_CONFIG"}
    argv = [HERALD, "verify"] + list(args)
    p = subprocess.run(argv, input=body, capture_output=True, timeout=RUN_TIMEOUT, env=env)
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"))


def std_args(secret, msg_id, ts, sig, *extra):
    return ["--secret", secret, "--id", msg_id, "--timestamp", str(ts), "--signature", sig] + \
        list(extra)


def expect(res, rc, name, err_re=None):
    is_(res.rc, rc, name, res.describe)
    if rc == 0:
        is_(res.err, "", name + ": nothing on stderr", res.describe)
    else:
        like(res.err, ONE_LINE_RE, name + ": one line on stderr", res.describe)
        if err_re:
            like(res.err, err_re, name + ": says why", res.describe)


SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


# ---- scenarios ----

@scenario
def standard():
    secret = new_secret()
    body = b'{"type":"vm.created","data":{"id":42}}'
    now = int(time.time())
    sig = sign_standard(secret, "msg_1", now, body)
    expect(run(std_args(secret, "msg_1", now, sig), body), 0, "standard: valid signature")
    expect(run(std_args(secret, "msg_1", now, sig), body.replace(b"42", b"43")), 1,
           "standard: tampered body", "invalid signature: no signature matches")
    expect(run(std_args(secret, "msg_2", now, sig), body), 1, "standard: other webhook-id",
           "no signature matches")
    expect(run(std_args(new_secret(), "msg_1", now, sig), body), 1, "standard: wrong secret",
           "no signature matches")

    old = now - 600
    sig_old = sign_standard(secret, "msg_1", old, body)
    expect(run(std_args(secret, "msg_1", old, sig_old), body), 1,
           "standard: 10-minute-old timestamp is stale", r"\d+ s old, more than the 300 s")
    expect(run(std_args(secret, "msg_1", old, sig_old, "--tolerance", "15m"), body), 0,
           "standard: accepted with --tolerance 15m")
    expect(run(std_args(secret, "msg_1", now - 40, sign_standard(secret, "msg_1", now - 40, body),
                        "--tolerance", "30s"), body), 1,
           "standard: 40 s old is stale with --tolerance 30s", "30 s tolerance")
    future = now + 600
    expect(run(std_args(secret, "msg_1", future, sign_standard(secret, "msg_1", future, body)),
               body), 1, "standard: timestamp 10 minutes ahead", r"\d+ s in the future")

    rotated = new_secret(24)
    both = "%s %s" % (sign_standard(rotated, "msg_1", now, body), sig)
    expect(run(std_args(secret, "msg_1", now, both), body), 0,
           "rotation: the current secret matches the second signature")
    expect(run(std_args(rotated, "msg_1", now, both), body), 0,
           "rotation: the old secret matches the first signature")
    expect(run(std_args(secret, "msg_1", now, "v1a,abc v2,def " + sig), body), 0,
           "unknown signature versions are ignored")
    expect(run(std_args(secret, "msg_1", now, "v2,abc"), body), 1,
           "no v1 signature at all", "no v1 signature")
    expect(run(std_args(secret, "msg_1", now, sig[3:]), body), 1,
           "signature without its v1, prefix", "malformed")
    expect(run(std_args(secret, "msg_1", "yesterday", sig), body), 1,
           "timestamp that is not unix seconds", "not a unix time")


@scenario
def cross_check():
    """Random keys, ids and bodies (binary included), signed in Python."""
    seed = int(os.environ.get("HERALD_TEST_SEED") or random.getrandbits(32))
    rng = random.Random(seed)
    diag("cross-check seed %d (set HERALD_TEST_SEED to repeat)" % seed)
    now = int(time.time())
    good = bad = flips = 0
    fails = []
    for i in range(24):
        secret = new_secret(rng.choice([24, 32, 48, 64]), rng)
        msg_id = "msg_%x" % rng.getrandbits(64)
        size = rng.choice([0, 1, 2, 3, 100, 4096, 65537])
        body = bytes(rng.getrandbits(8) for _ in range(size))
        ts = now - rng.randint(-200, 200)
        sig = sign_standard(secret, msg_id, ts, body)
        res = run(std_args(secret, msg_id, ts, sig), body)
        if res.rc == 0:
            good += 1
        else:
            fails.append(res.describe())
        if size:
            flips += 1
            flipped = bytearray(body)
            flipped[rng.randrange(size)] ^= 1 << rng.randrange(8)
            res = run(std_args(secret, msg_id, ts, sig), bytes(flipped))
            if res.rc == 1:
                bad += 1
            else:
                fails.append(res.describe())
    is_(good, 24, "cross-check: herald accepts all 24 Python-signed requests",
        lambda: "\n".join(fails))
    is_(bad, flips, "cross-check: and rejects each non-empty one with a bit flipped",
        lambda: "\n".join(fails))


@scenario
def github():
    expect(run(["--github", "--secret", GH_SECRET, "--signature", GH_SIG], GH_BODY), 0,
           "github: the contract's vector verifies")
    body = b'{"action":"opened"}' * 50
    expect(run(["--github", "--secret", "s3cret-value", "--signature",
                sign_github("s3cret-value", body)], body), 0,
           "github: a Python-signed body verifies")
    expect(run(["--github", "--secret", GH_SECRET, "--signature", GH_SIG], b"Hello, World?"), 1,
           "github: tampered body", "does not match")
    expect(run(["--github", "--secret", "another secret", "--signature", GH_SIG], GH_BODY), 1,
           "github: wrong secret", "does not match")
    expect(run(["--github", "--secret", GH_SECRET, "--signature", GH_SIG[:-1]], GH_BODY), 1,
           "github: signature cut short", "64 hexadecimal digits")
    expect(run(["--github", "--secret", GH_SECRET, "--signature", GH_SIG, "--id", "x"], GH_BODY),
           2, "github: --id does not apply", "do not apply")


@scenario
def secret_file():
    secret = new_secret()
    body = b"payload"
    now = int(time.time())
    sig = sign_standard(secret, "msg_f", now, body)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "secret")
        with open(path, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, 0o600)
        args = ["--secret-file", path, "--id", "msg_f", "--timestamp", str(now), "--signature", sig]
        expect(run(args, body), 0, "secret file (0600, trailing newline): valid")
        os.chmod(path, 0o644)
        res = run(args, body)
        expect(res, 2, "secret file readable by others: refused", "chmod 600")
        ok(secret not in res.err, "secret file refused: the secret is not printed", res.describe)
        os.chmod(path, 0o640)
        expect(run(args, body), 2, "secret file readable by the group: refused", "chmod 600")

        gh = os.path.join(tmp, "gh")
        with open(gh, "w") as f:
            f.write(GH_SECRET + "\n")
        os.chmod(gh, 0o600)
        expect(run(["--github", "--secret-file", gh, "--signature", GH_SIG], GH_BODY), 0,
               "github secret file: valid")
        expect(run(["--secret-file", os.path.join(tmp, "missing"), "--id", "m", "--timestamp",
                    str(now), "--signature", sig], body), 2, "missing secret file", "cannot open")


@scenario
def usage():
    now = int(time.time())
    sig = sign_standard(STD_SECRET, "m", now, b"")
    res = run(std_args("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", now, sig))
    expect(res, 2, "a secret without whsec_ is a usage error", "not whsec_")
    ok("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in res.err, "and the secret is not printed",
       res.describe)
    expect(run(std_args(STD_SECRET, "m", now, sig)), 0, "an empty body verifies")
    expect(run(["--secret", STD_SECRET, "--id", "m", "--timestamp", str(now)]), 2,
           "--signature missing", "--signature is required")
    expect(run(["--secret", STD_SECRET, "--signature", sig]), 2, "--id and --timestamp missing",
           "--id and --timestamp are required")
    expect(run(["--id", "m", "--timestamp", str(now), "--signature", sig]), 2, "no secret",
           "exactly one of --secret or --secret-file")
    expect(run(std_args(STD_SECRET, "m", now, sig, "--tolerance", "soon")), 2,
           "bad --tolerance", "not a duration")
    expect(run(std_args(STD_SECRET, "m", now, sig, "--bogus")), 2, "unknown option",
           "unknown option '--bogus'")
    expect(run(std_args(STD_SECRET, "m", now, sig, "body.json")), 2, "a stray argument",
           "reads the body from stdin")
    expect(run(["--secret"]), 2, "--secret without its value", "needs a value")
    big = b"x" * (16 * 1024 * 1024 + 1)
    expect(run(std_args(STD_SECRET, "m", now, sig), big), 2, "a body over 16 MiB is refused",
           "larger than 16 MiB")
    res = run(["--help"])
    is_(res.rc, 0, "--help exits 0", res.describe)
    like(res.out, r"herald verify --github", "--help shows both forms", res.describe)


def main():
    if not HERALD:
        bail_out("HERALD is not set (path of the built herald binary)")
    diag("HERALD=%s" % HERALD)
    for fn in SCENARIOS:
        try:
            fn()
        except Exception:
            ok(False, "scenario %s ran to the end" % fn.__name__, traceback.format_exc())
    done_testing()


if __name__ == "__main__":
    main()
