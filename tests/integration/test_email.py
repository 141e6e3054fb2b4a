#!/usr/bin/env python3
"""test_email.py - the email plugin against a real SMTP server: a private Postfix on loopback
(tests/servers/postfix.py: STARTTLS port, implicit-TLS port, AUTH from a sasldb, a CA made
for the test, a maildir sink). Delivered files are parsed with Python's MIME parser and
checked for structure, headers and encodings; a wrong password, an untrusted certificate, a
rejected recipient and injection attempts each give the right error; the NOOP test sends
nothing; templates can be overridden; routing reaches a user at their own address; the
password never appears in any output.

Skips (1..0) when postfix is not installed or not root; .ci/deps installs it.
"""
import email
import email.policy
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "servers"))
from postfix import PrivatePostfix, postfix_missing  # noqa: E402
from channeltest import HERALD, delivery, herald  # noqa: E402
from taplib import bail_out, diag, done_testing, is_, like, ok  # noqa: E402

outputs = []  # everything herald printed, to check that the password never leaks


def run(tmp, *args):
    rc, out, err = herald(tmp, *args)
    outputs.append(out + err)
    return rc, out, err


def channel(pf, name="mail", port=None, tls="starttls", to=("ops@example.test",),
            password=None, ca=True, extra=""):
    return ('{ name = "%s"; plugin = "email"; server = "localhost"; port = %d; tls = "%s";\n'
            '  user = "%s"; password = "%s"; from = "alerts@example.test";\n'
            '  from_name = "Herald Alerts"; to = [%s]; helo = "herald.test"; timeout = 20;\n'
            '  %s %s }' % (name, port or pf.starttls_port, tls, pf.user,
                           password if password is not None else pf.password,
                           ", ".join('"%s"' % a for a in to),
                           'ca_file = "%s";' % pf.ca_file if ca else "", extra))


def config(tmp, pf, channels, extra="", name="herald.conf"):
    path = Path(tmp) / name
    path.write_text('database = "%s/q.db";\nsocket = "%s/none.sock";\n'
                    'retry = { schedule = ["1s"]; max_attempts = 1; };\n'
                    'channels = (\n%s\n);\n%s' % (tmp, tmp, ",\n".join(channels), extra))
    return str(path)


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def new_messages(pf, before, n=1, timeout=15):
    pf.wait_for_messages(before + n, timeout)
    return [m for _, m in pf.messages()[before:]]


def main():
    why = postfix_missing()
    if why:
        print("1..0 # SKIP %s" % why)
        return
    if not HERALD:
        bail_out("HERALD is not set")
    with tempfile.TemporaryDirectory() as tmp, PrivatePostfix() as pf:
        cfg = config(tmp, pf, [
            channel(pf),
            channel(pf, "mail-tls", port=pf.tls_port, tls="implicit"),
            channel(pf, "mail-badpw", password="wrong-password"),
            channel(pf, "mail-noca", ca=False),
            channel(pf, "mail-rejected", to=("rejected@example.test",)),
        ])

        # ---- a message, end to end ----
        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", cfg, "send", "--json", "--to", "mail", "-e",
                           "backup.failed", "-s", "critical", "-a", "backup-cron", "-f",
                           "host=db01", "Backup of «db01» failed",
                           "The **nightly** job stopped.\n\n- disk: full\n- retry: *tomorrow*\n"
                           "Grüße aus Köln.")
        is_(rc, 0, "send over STARTTLS + AUTH exits 0", err)
        d = delivery(out)
        is_(d.get("verdict"), "ok", "delivery verdict ok", out)
        like(d.get("detail", ""), r"accepted the message \(reply 250\)", "detail: reply 250")
        event_id = json.loads(out).get("id", "?") if out.strip() else "?"
        msgs = new_messages(pf, before)
        is_(len(msgs), 1, "one message in the maildir")
        raw = msgs[0] if msgs else b""
        m = parse(raw)
        is_(str(m["Subject"]), "[CRITICAL] Backup of «db01» failed",
            "Subject decodes to prefix + title")
        like(raw.decode("ascii", "replace"), r"\nSubject: =\?UTF-8\?B\?",
             "the non-ASCII Subject is an RFC 2047 encoded word on the wire")
        is_(m["From"].addresses[0].display_name if m["From"] else None, "Herald Alerts",
            "From: display name")
        is_(m["From"].addresses[0].addr_spec if m["From"] else None, "alerts@example.test",
            "From: address")
        is_(str(m["To"]), "ops@example.test", "To: the configured recipient")
        like(str(m["Message-ID"]), "^<%s\\.[0-9a-f]{8}@example.test>$" % event_id,
             "Message-ID carries the event id")
        ok(m["Date"] is not None and m["Date"].datetime is not None, "Date parses (RFC 5322)")
        is_(str(m["Auto-Submitted"]), "auto-generated", "Auto-Submitted: auto-generated")
        is_(str(m["Importance"]), "high", "critical: Importance: high")
        is_(str(m["X-Herald-Event"]), "backup.failed", "X-Herald-Event")
        is_(m.get_content_type(), "multipart/alternative", "multipart/alternative")
        parts = list(m.iter_parts()) if m.is_multipart() else []
        is_([p.get_content_type() for p in parts], ["text/plain", "text/html"],
            "text/plain first, text/html last")
        is_([p.get_content_charset() for p in parts], ["utf-8", "utf-8"], "both UTF-8")
        is_([str(p["Content-Transfer-Encoding"]) for p in parts],
            ["quoted-printable", "quoted-printable"], "both quoted-printable")
        text = parts[0].get_content() if parts else ""
        html = parts[1].get_content() if len(parts) > 1 else ""
        like(text, "The \\*\\*nightly\\*\\* job stopped", "text part: the body as written")
        like(text, "Grüße aus Köln", "text part: UTF-8 survives QP")
        like(text, "host: db01", "text part: the event's fields")
        like(html, "<strong>nightly</strong>", "HTML part: Markdown bold rendered")
        like(html, "<li>retry: <em>tomorrow</em></li>", "HTML part: list and emphasis")
        like(html, "Backup of «db01» failed", "HTML part: the title")
        like(html, r"&copy; 20\d\d", "HTML part: the packaged base layout's footer with the year")
        like(html, "CRITICAL &middot; backup.failed", "HTML part: the base layout's header")
        ok(all(len(line) <= 998 for line in raw.split(b"\n")), "no line over 998 octets")

        # ---- implicit TLS ----
        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", cfg, "send", "--to", "mail-tls", "Implicit TLS works")
        is_(rc, 0, "send over implicit TLS (smtps) exits 0", err)
        msgs = new_messages(pf, before)
        is_(str(parse(msgs[0])["Subject"]) if msgs else None, "Implicit TLS works",
            "implicit TLS: delivered")

        # ---- the side-effect-free test ----
        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", cfg, "test", "mail")
        is_(rc, 0, "herald test mail exits 0", err)
        like(out, "no mail was sent", "herald test says nothing was sent")
        ok(pf.wait_for_log(r"noop=1", 5), "the server saw NOOP (EHLO, STARTTLS, AUTH, NOOP, QUIT)")
        is_(len(pf.messages()), before, "herald test delivered nothing")

        # ---- errors ----
        rc, out, err = run(tmp, "-c", cfg, "test", "mail-badpw")
        ok(rc != 0, "wrong password: herald test fails")
        like(out + err, "check user and password", "wrong password: says what to fix")
        rc, out, err = run(tmp, "-c", cfg, "send", "--json", "--to", "mail-badpw", "x")
        is_(delivery(out).get("status"), "auth", "wrong password: status auth")
        is_(delivery(out).get("verdict"), "failed", "wrong password: not retried")

        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", cfg, "send", "--json", "--to", "mail-noca", "untrusted")
        d = delivery(out)
        is_(d.get("status"), "tls", "untrusted certificate: status tls", out + err)
        like(d.get("detail", ""), "ca_file", "untrusted certificate: the error names ca_file")
        rc, out, err = run(tmp, "-c", cfg, "send", "--json", "--to", "mail-rejected", "nobody")
        d = delivery(out)
        is_(d.get("verdict"), "failed", "rejected recipient: failed, not retried", out + err)
        like(d.get("detail", ""), "550", "rejected recipient: the 550 reply is quoted")
        is_(len(pf.messages()), before, "nothing delivered by the failures")

        # ---- injection ----
        rc, out, err = run(tmp, "-c", cfg, "send", "--to", "mail",
                           "Subject\r\nBcc: victim@example.test", "x")
        ok(rc != 0, "a title with CR LF is refused")
        like(out + err, "(?i)control|line break|CR", "and the error names the problem")
        inj = config(tmp, pf, [channel(pf, to=("ops@example.test>\\r\\nRCPT TO:<x@example.test",))],
                     name="inject.conf")
        rc, out, err = run(tmp, "-c", inj, "check")
        ok(rc != 0, "a recipient with CR LF in the config is refused by herald check")
        like(out + err, "control characters|not a plain address", "and the error says why")
        rc, out, err = run(tmp, "--config", cfg, "send", "--to",
                           "mailtos://u:p@localhost?to=a%40example.test%0D%0ARCPT%20TO:x", "x")
        ok(rc != 0, "a mailto URL with CR LF in to= is refused")
        is_(len(pf.messages()), before, "no injection attempt delivered anything")

        # ---- templates: an administrator's override, then the packaged default ----
        over = Path(tmp) / "templates"
        (over / "email").mkdir(parents=True)
        (over / "email" / "backup.failed.html").write_text(
            "<p id=\"custom\">{{title}} on {{fields.host}} ({{severity}})</p>")
        packaged = os.environ.get("HERALD_TEMPLATE_PATH", "")
        os.environ["HERALD_TEMPLATE_PATH"] = str(over) + (":" + packaged if packaged else "")
        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", cfg, "send", "--to", "mail", "-e", "backup.failed",
                           "-f", "host=db<2>", "Backup & restore")
        rc2, out2, err2 = run(tmp, "-c", cfg, "send", "--to", "mail", "-e", "backup.done",
                              "Backup done")
        os.environ["HERALD_TEMPLATE_PATH"] = packaged
        msgs = new_messages(pf, before, 2)
        htmls = []
        for raw in msgs:
            pm = parse(raw)
            htmls.append([p.get_content() for p in pm.iter_parts()
                          if p.get_content_type() == "text/html"][0])
        like(htmls[0] if htmls else "",
             '<p id="custom">Backup &amp; restore on db&lt;2&gt; \\(notice\\)</p>',
             "override: the type's own template, values HTML-escaped")
        like(htmls[0] if htmls else "", "&copy; 20", "override: still inside the packaged base")
        ok(len(htmls) > 1 and "custom" not in htmls[1], "another type keeps the packaged default")

        # ---- routing reaches a user at their own address ----
        routed = config(tmp, pf, [channel(pf, to=())], name="routed.conf", extra=(
            'users = ( { name = "alice"; email = "user@example.test"; } );\n'
            'routes = ( { match = { events = "backup.*"; }; to = ["alice"]; } );\n'))
        before = len(pf.messages())
        rc, out, err = run(tmp, "-c", routed, "send", "--json", "-e", "backup.failed",
                           "For Alice")
        is_(rc, 0, "a routed send exits 0", err)
        is_(delivery(out).get("user"), "alice", "the delivery is alice's")
        msgs = new_messages(pf, before)
        pm = parse(msgs[0]) if msgs else {}
        is_(str(pm.get("To", "")), "user@example.test", "To: alice's own address")
        is_(str(pm.get("Delivered-To", "")), "user@example.test", "delivered to her mailbox")

        # ---- secrets ----
        rc, out, err = run(tmp, "-c", cfg, "check")
        is_(rc, 0, "herald check passes", err)
        leaked = [o for o in outputs if pf.password in o]
        ok(not leaked, "the SMTP password appears in no output of any run")
        if leaked:
            diag(leaked[0][:300])
    done_testing()


if __name__ == "__main__":
    main()
