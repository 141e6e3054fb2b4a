#!/usr/bin/env python3
"""test_postfix_harness.py - the private Postfix of tests/servers/postfix.py behaves as the
email tests (and ../shared/CONTRACTS.md, "SMTP via libcurl") need, proven with the curl CLI,
whose libcurl is the one herald's email plugin uses:

  STARTTLS + AUTH and implicit TLS deliver into the maildir; a wrong password is curl exit
  67; an untrusted certificate 60; a rejected recipient 55 and nothing is delivered; NOOP
  with no recipients (herald's side-effect-free test) succeeds and delivers nothing; AUTH is
  not offered before STARTTLS; other domains are discarded; nothing is left running.

Skips (1..0) when postfix or its helpers are not installed or when not run as root.
"""
import email
import email.policy
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from postfix import PrivatePostfix, postfix_missing  # noqa: E402
from taplib import diag, done_testing, is_, like, ok  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"


def curl(pf, tmp, url, *args, user=None, password=None, cacert=True, body=None):
    """Run the curl CLI against pf; returns (exit code, stderr). Bounded in time."""
    argv = [CURL, "-q", "-sS", "--max-time", "15", "--connect-timeout", "5", "--ssl-reqd"]
    if cacert:
        argv += ["--cacert", pf.ca_file]
    if user is not None:
        argv += ["--user", "%s:%s" % (user, password if password is not None else pf.password)]
    if body is not None:
        path = os.path.join(tmp, "curl-%d.eml" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(body)
        argv += ["--upload-file", path]
    argv += list(args) + [url]
    # No curlrc (-q) and no CA overrides from the environment: the system store decides.
    env = {k: v for k, v in os.environ.items()
           if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_HOME")}
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=30)
    except subprocess.TimeoutExpired:
        return None, "curl timed out"
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def message(subject, to, text):
    return ("From: Herald <herald@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%d@herald.test>\r\n"
            "\r\n%s\r\n" % (to, subject, time.monotonic_ns(), text)).encode()


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def main():
    reason = postfix_missing()
    if reason:
        print("1..0 # SKIP %s" % reason)
        return 0
    if not os.path.exists(CURL):
        print("1..0 # SKIP curl not installed")
        return 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="herald-pf-test-") as tmp:
        pf = PrivatePostfix(tmp)  # made 0755: the postfix user needs to get in
        with pf:
            diag("postfix on 127.0.0.1: starttls %d, tls %d, started in %.1fs"
                 % (pf.starttls_port, pf.tls_port, time.monotonic() - t0))
            starttls = "smtp://127.0.0.1:%d/client.herald.test" % pf.starttls_port
            smtps = "smtps://127.0.0.1:%d/client.herald.test" % pf.tls_port
            env_from = ["--mail-from", "herald@localhost"]

            # (a) STARTTLS + AUTH, the CA given: delivered into the maildir.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "user@example.test",
                           user=pf.user, body=message("Disk 91% on db1", "user@example.test",
                                                      "STARTTLS body line"))
            is_(rc, 0, "STARTTLS + AUTH as %s: curl exits 0" % pf.user, out)
            msgs = pf.wait_for_messages(1, timeout=10)
            m = parse(msgs[0][1]) if msgs else None
            is_((m["Subject"], m.get_content().strip(), m["Delivered-To"]) if m else None,
                ("Disk 91% on db1", "STARTTLS body line", "user@example.test"),
                "the STARTTLS message is in the maildir: Subject, body, Delivered-To",
                pf.log()[-3000:])
            like(pf.log(), r"sasl_method=PLAIN, sasl_username=herald@localhost",
                 "postfix logged the SASL login")

            # (b) implicit TLS, AUTH LOGIN, the short login form.
            rc, out = curl(pf, tmp, smtps, *env_from, "--mail-rcpt", "ops@example.test",
                           "--login-options", "AUTH=LOGIN", user="herald",
                           body=message("Implicit TLS", "ops@example.test", "smtps body"))
            is_(rc, 0, "implicit TLS (smtps://) + AUTH LOGIN as herald: curl exits 0", out)
            msgs = pf.wait_for_messages(2, timeout=10)
            m = parse(msgs[1][1]) if len(msgs) > 1 else None
            is_((m["Subject"], m.get_content().strip(), m["Delivered-To"]) if m else None,
                ("Implicit TLS", "smtps body", "ops@example.test"),
                "the smtps message is in the maildir, after the first one", pf.log()[-3000:])

            # (c) wrong password: CURLE_LOGIN_DENIED.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "user@example.test",
                           user=pf.user, password="wrong-password",
                           body=message("must not arrive", "user@example.test", "x"))
            is_(rc, 67, "wrong password: curl exits 67 (login denied)", out)

            # (d) the server certificate is not trusted without our CA: 60.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "user@example.test",
                           user=pf.user, cacert=False,
                           body=message("must not arrive", "user@example.test", "x"))
            is_(rc, 60, "no --cacert: curl exits 60 (untrusted certificate)", out)
            rc, out = curl(pf, tmp, smtps, "-X", "NOOP", user=pf.user, cacert=False)
            is_(rc, 60, "no --cacert on the implicit-TLS port: 60 too", out)

            # (e) a recipient refused at RCPT: 55, nothing delivered.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "rejected@example.test",
                           user=pf.user, body=message("must not arrive", "rejected@example.test",
                                                      "x"))
            is_(rc, 55, "rejected@example.test: curl exits 55", out)
            like(out, r"RCPT failed: 550", "curl reports the 550")
            like(pf.log(), r"550 5\.1\.1 <rejected@example\.test>: Recipient address rejected: "
                 r"no such user", "postfix logged the rejection")
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "nobody@example.test",
                           user=pf.user, body=message("must not arrive", "nobody@example.test",
                                                      "x"))
            is_(rc, 55, "an unknown user in example.test: 55 too", out)

            # (f) NOOP with no recipients: EHLO, STARTTLS, AUTH, NOOP, QUIT; nothing sent.
            rc, out = curl(pf, tmp, starttls, "-X", "NOOP", user=pf.user)
            is_(rc, 0, "NOOP without recipients, right credentials: curl exits 0", out)
            ok(pf.wait_for_log(r"ehlo=2 starttls=1 auth=1 noop=1 quit=1", 5),
               "postfix saw EHLO, STARTTLS, AUTH, NOOP, QUIT", pf.log()[-2000:])
            rc, out = curl(pf, tmp, starttls, "-X", "NOOP", user=pf.user, password="nope")
            is_(rc, 67, "NOOP with a wrong password: 67", out)

            # AUTH only after STARTTLS; unauthenticated clients cannot send.
            with smtplib.SMTP(pf.host, pf.starttls_port, timeout=5) as s:
                s.ehlo("probe.test")
                plain_auth = s.has_extn("auth")
                s.starttls(context=pf.tls_context())
                s.ehlo("probe.test")
                tls_auth = s.esmtp_features.get("auth", "")
            is_((plain_auth, sorted(tls_auth.split())), (False, ["LOGIN", "PLAIN"]),
                "AUTH is offered only after STARTTLS, with PLAIN and LOGIN")
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "user@example.test",
                           body=message("must not arrive", "user@example.test", "x"))
            is_(rc, 55, "without AUTH the recipient is refused: 55", out)

            # Other domains are accepted from authenticated clients and discarded.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "ops@example.org",
                           user=pf.user, body=message("discarded", "ops@example.org", "x"))
            is_(rc, 0, "another domain is accepted ...", out)
            ok(pf.wait_for_log(r"postfix/discard\[\d+\]: \w+: to=<ops@example\.org>.*"
                               r"status=sent", 10), "... and discarded, never relayed",
               pf.log()[-2000:])

            # Nothing but (a) and (b) arrived: a last message lands third.
            rc, out = curl(pf, tmp, starttls, *env_from, "--mail-rcpt", "alerts@example.test",
                           user=pf.user, body=message("Sentinel", "alerts@example.test", "end"))
            msgs = pf.wait_for_messages(3, timeout=10)
            time.sleep(0.3)
            msgs = pf.messages()
            is_([parse(d)["Subject"] for _, d in msgs], ["Disk 91% on db1", "Implicit TLS",
                                                         "Sentinel"],
                "the maildir holds exactly the accepted messages, in order", pf.log()[-3000:])
            running = pf.processes()
        ok(running and not pf.processes(), "after stop no process of the instance is left",
           "before: %r, after: %r" % (running, pf.processes()))
    diag("done in %.1fs" % (time.monotonic() - t0))
    done_testing()


if __name__ == "__main__":
    main()
