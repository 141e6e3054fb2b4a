#!/usr/bin/env python3
"""A private Postfix instance on loopback, for the email-channel tests.

    from postfix import PrivatePostfix, postfix_missing
    with PrivatePostfix(tmpdir) as pf:
        pf.host, pf.starttls_port, pf.tls_port, pf.ca_file, pf.user, pf.password
        ...send to user@example.test over STARTTLS or implicit TLS with AUTH...
        pf.wait_for_messages(1, timeout=10)   # -> [(path, bytes), ...] from the maildir
        pf.log()                              # the instance's maillog text

Everything lives under tmpdir: its own config directory (main.cf, master.cf), queue and
data directories, a throw-away CA and a server certificate for localhost / 127.0.0.1, a
Cyrus sasldb, the maildir and the maillog. It is started with `postfix -c DIR start-fg`
and stopped with SIGTERM to its master (as `postfix -c DIR stop` does), then by killing
this instance's process groups only. A small watchdog process stops the instance should
the process that started it die without stop() (even by SIGKILL). The system Postfix
(/etc/postfix, /var/spool/postfix) is never touched.

What the instance does, as the email tests need it:
  * two smtpd listeners on 127.0.0.1, random free ports:
      starttls_port: plain SMTP offering STARTTLS; AUTH is only offered after STARTTLS
                     (smtpd_tls_auth_only = yes);
      tls_port:      implicit TLS (smtpd_tls_wrappermode = yes), like port 465;
  * AUTH PLAIN and LOGIN from a Cyrus sasldb; the login is `herald@localhost` (the form
    saslpasswd2 -u localhost stores); plain `herald` works too, because
    smtpd_sasl_local_domain = localhost supplies the realm;
  * only authenticated clients may send; recipients in `domain` (example.test) that are
    listed in `mailboxes` are delivered by the virtual transport into ONE maildir
    (`maildir`; the Delivered-To header says which recipient), unknown users there are
    rejected at RCPT with 550 5.1.1, `rejected@example.test` with 550 5.1.1 "no such user";
    every other domain goes to the discard transport: nothing ever leaves the machine, and
    no DNS lookups are made.

Needs root (Postfix's master and the delivery agents switch users) and the Debian packages
postfix, sasl2-bin (saslpasswd2), libsasl2-modules and openssl; postfix_missing() says
what is lacking. No change to /etc/postfix is needed: root may use `postfix -c DIR` with any
directory, alternate_config_directories only matters to unprivileged and set-gid commands
(sendmail, postqueue), which this harness does not use.

Run as a program it starts an instance, prints one JSON line with its details and runs
until SIGTERM/SIGINT or until stdin is closed (--no-stdin: until a signal only):

    python3 tests/servers/postfix.py [--tmpdir DIR] [--no-stdin]

Only the Python standard library is used.
"""
import argparse
import json
import os
import pwd
import grp
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

POSTFIX = "/usr/sbin/postfix"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
SASL_PLUGIN_GLOBS = ("/usr/lib/*/sasl2/libsasldb.so*", "/usr/lib/sasl2/libsasldb.so*")


def postfix_missing():
    """None if a private Postfix can run here, else a reason (for a TAP skip)."""
    import glob
    if not os.path.exists(POSTFIX):
        return "postfix not installed"
    if not os.path.exists(SASLPASSWD2):
        return "saslpasswd2 not installed (sasl2-bin)"
    if not any(glob.glob(g) for g in SASL_PLUGIN_GLOBS):
        return "Cyrus SASL sasldb plugin not installed (libsasl2-modules)"
    if not shutil.which("openssl"):
        return "openssl not installed"
    if os.geteuid() != 0:
        return "a private Postfix needs root"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user or postdrop group"
    return None


class PostfixError(RuntimeError):
    pass


# Runs beside the instance, in its own session, from before the start. The harness tells
# it on its stdin the process groups it starts ("pgid N") and "stopped" once it stopped the
# instance itself. When the pipe closes without "stopped" (the process owning the harness
# died, even by SIGKILL), it kills those groups and stops the master named in the
# instance's master.pid (waiting up to 3 s for one that is just starting), each only if it
# still belongs to this instance (MAIL_CONFIG is the instance's config directory); then it
# removes the directory if the harness made it.
_WATCHDOG = r"""
import os, signal, sys, time
pidfile, conf = sys.argv[1], sys.argv[2].encode()
data = b""
try:
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
words = data.split()
def ours(pid, exe_suffix=None):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            exe = f.read().split(b"\0")[0]
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return b"MAIL_CONFIG=" + conf in env and (not exe_suffix or exe.endswith(exe_suffix))
def master():
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if ours(pid, b"/master") else None
if b"stopped" not in words:
    for i, w in enumerate(words[:-1]):
        if w == b"pgid" and ours(int(words[i + 1])):
            try:
                os.killpg(int(words[i + 1]), signal.SIGKILL)
            except OSError:
                pass
    end = time.monotonic() + 3
    while not master() and time.monotonic() < end:
        time.sleep(0.1)
    pid = master()
    if pid:
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 5
        while master() and time.monotonic() < end:
            time.sleep(0.05)
        if master():
            os.killpg(pid, signal.SIGKILL)
if len(sys.argv) > 3:  # the harness made the directory: remove it too
    import shutil
    time.sleep(0.2)
    shutil.rmtree(sys.argv[3], ignore_errors=True)
"""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(argv, **kw):
    kw.setdefault("timeout", 30)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if r.returncode != 0:
        raise PostfixError("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                   r.stdout.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _live_pids_in_groups(pgids):
    """Live (non-zombie) PIDs whose process group is in pgids."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) in pgids:
            pids.append(int(name))
    return pids


class PrivatePostfix:
    """A private Postfix on 127.0.0.1; see the module docstring.

    Constructor arguments (all optional):
      tmpdir     directory for everything (made 0755 so the postfix user can traverse it);
                 None: a fresh one, removed again by stop()
      user       SASL user name (realm `localhost` is added: login `user@localhost`)
      password   SASL password; None: a random one
      domain     the captured domain, delivered into the maildir
      mailboxes  local parts in `domain` that are accepted (others: 550 User unknown)
      rejected   local parts in `domain` refused at RCPT time with 550 "no such user"
      timeout    seconds to wait for the start (both ports up, STARTTLS + AUTH offered)

    Attributes after start(): host ("127.0.0.1"), hostname ("localhost", the name in the
    certificate), starttls_port, tls_port, ca_file, cert_file, key_file, user (the full
    login, "herald@localhost"), password, domain, recipients (accepted addresses),
    rejected_recipients, maildir (the maildir root; messages land in maildir/new),
    config_dir, log_file, pid (of the master process).
    Methods: start(), stop(), messages(), wait_for_messages(n, timeout), log(),
    wait_for_log(regex, timeout), tls_context() (trusts ca_file only), processes() (live
    PIDs of the instance, [] after stop), info() (a JSON-able dict).
    """

    host = "127.0.0.1"
    hostname = "localhost"
    realm = "localhost"

    def __init__(self, tmpdir=None, user="herald", password=None, domain="example.test",
                 mailboxes=("user", "ops", "alerts"), rejected=("rejected",), timeout=20):
        self._own_tmp = tmpdir is None
        self.tmpdir = os.path.abspath(tmpdir or tempfile.mkdtemp(prefix="herald-postfix-"))
        self.login_name = user
        self.user = "%s@%s" % (user, self.realm)
        self.password = password or "pw-" + secrets.token_urlsafe(12)
        self.domain = domain
        self.recipients = ["%s@%s" % (m, domain) for m in mailboxes]
        self.rejected_recipients = ["%s@%s" % (m, domain) for m in rejected]
        self.timeout = timeout
        self.config_dir = os.path.join(self.tmpdir, "etc")
        self.queue_dir = os.path.join(self.tmpdir, "queue")
        self.data_dir = os.path.join(self.tmpdir, "data")
        # Debian's Postfix (patch 07_sasl_config) reads $config_directory/sasl/smtpd.conf
        # whatever cyrus_sasl_config_path says; the file is put there and the path set too.
        self.sasl_dir = os.path.join(self.config_dir, "sasl")
        self.sasldb = os.path.join(self.tmpdir, "sasldb2")
        self.tls_dir = os.path.join(self.tmpdir, "tls")
        self.ca_file = os.path.join(self.tls_dir, "ca.pem")
        self.cert_file = os.path.join(self.tls_dir, "server.pem")
        self.key_file = os.path.join(self.tls_dir, "server.key")
        self.mail_base = os.path.join(self.tmpdir, "mail")
        self.maildir = os.path.join(self.mail_base, "inbox")
        self.log_file = os.path.join(self.tmpdir, "maillog")
        self.starttls_port = self.tls_port = None
        self.pid = None
        self._proc = None
        self._pgids = set()
        self._all_pgids = set()
        self._watchdog = None
        self._watchdog_fd = None

    # ---- setup -------------------------------------------------------------------------

    def _make_certs(self):
        os.makedirs(self.tls_dir, exist_ok=True)
        os.chmod(self.tls_dir, 0o755)
        d = self.tls_dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(["openssl", "req", "-x509", *ec, "-keyout", os.path.join(d, "ca.key"),
              "-out", self.ca_file, "-days", "30", "-subj", "/O=herald tests/CN=herald test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        _run(["openssl", "req", "-new", *ec, "-keyout", self.key_file,
              "-out", os.path.join(d, "server.csr"), "-subj", "/O=herald tests/CN=localhost"])
        _write(os.path.join(d, "server.ext"),
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = DNS:localhost,IP:127.0.0.1\n")
        _run(["openssl", "x509", "-req", "-in", os.path.join(d, "server.csr"),
              "-CA", self.ca_file, "-CAkey", os.path.join(d, "ca.key"),
              "-set_serial", "0x" + secrets.token_hex(8), "-days", "30",
              "-extfile", os.path.join(d, "server.ext"), "-out", self.cert_file])
        os.chmod(self.key_file, 0o600)
        os.chmod(os.path.join(d, "ca.key"), 0o600)
        os.chmod(self.ca_file, 0o644)
        os.chmod(self.cert_file, 0o644)

    def _make_sasl(self, pf_uid, pf_gid):
        os.makedirs(self.sasl_dir, exist_ok=True)
        os.chmod(self.sasl_dir, 0o755)
        _write(os.path.join(self.sasl_dir, "smtpd.conf"),
               "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
               "sasldb_path: %s\n" % self.sasldb)
        r = subprocess.run([SASLPASSWD2, "-f", self.sasldb, "-c", "-p", "-u", self.realm,
                            self.login_name], input=self.password.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0 or not os.path.exists(self.sasldb):
            raise PostfixError("saslpasswd2 failed: %s" % r.stdout.decode("utf-8", "replace"))
        # smtpd reads the sasldb after dropping to the postfix user.
        os.chown(self.sasldb, 0, pf_gid)
        os.chmod(self.sasldb, 0o640)

    def _main_cf(self, pf_uid, pf_gid):
        t = self.tmpdir
        return "\n".join([
            "# Private Postfix for herald's tests; generated by tests/servers/postfix.py.",
            "compatibility_level = 3.6",
            "queue_directory = %s" % self.queue_dir,
            "data_directory = %s" % self.data_dir,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "multi_instance_enable = no",
            "myhostname = localhost",
            "mydomain = localdomain",
            "myorigin = $myhostname",
            "mydestination =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "local_transport = discard",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "relayhost =",
            "default_transport = discard",
            "relay_transport = discard",
            "smtp_dns_support_level = disabled",
            "smtpd_peername_lookup = no",
            "biff = no",
            "append_dot_mydomain = no",
            "maillog_file = %s" % self.log_file,
            "maillog_file_prefixes = %s" % t,
            "smtpd_banner = $myhostname ESMTP herald test Postfix",
            "smtpd_error_sleep_time = 0s",
            "smtpd_soft_error_limit = 1000",
            "smtpd_hard_error_limit = 1000",
            "in_flow_delay = 0s",
            "delay_warning_time = 0h",
            "maximal_queue_lifetime = 1h",
            "bounce_queue_lifetime = 1h",
            "# TLS: STARTTLS offered; AUTH only after it.",
            "smtpd_tls_cert_file = %s" % self.cert_file,
            "smtpd_tls_key_file = %s" % self.key_file,
            "smtpd_tls_security_level = may",
            "smtpd_tls_auth_only = yes",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
            "# SASL: Cyrus, sasldb, PLAIN and LOGIN.",
            "smtpd_sasl_auth_enable = yes",
            "smtpd_sasl_type = cyrus",
            "smtpd_sasl_path = smtpd",
            "cyrus_sasl_config_path = %s" % self.sasl_dir,
            "smtpd_sasl_local_domain = %s" % self.realm,
            "smtpd_sasl_security_options = noanonymous",
            "smtpd_sasl_tls_security_options = noanonymous",
            "broken_sasl_auth_clients = no",
            "# Only authenticated clients may send; some recipients are refused.",
            "smtpd_client_restrictions =",
            "smtpd_helo_restrictions =",
            "smtpd_sender_restrictions =",
            "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions = check_recipient_access texthash:%s/recipient_access,"
            " permit_sasl_authenticated, reject" % self.config_dir,
            "# The captured domain goes into one maildir.",
            "virtual_mailbox_domains = %s" % self.domain,
            "virtual_mailbox_base = %s" % self.mail_base,
            "virtual_mailbox_maps = texthash:%s/vmailbox" % self.config_dir,
            "virtual_alias_maps =",
            "virtual_transport = virtual",
            "virtual_uid_maps = static:%d" % pf_uid,
            "virtual_gid_maps = static:%d" % pf_gid,
            "virtual_minimum_uid = %d" % min(pf_uid, 100),
            "",
        ])

    def _master_cf(self):
        svc = "%-10s %-10s %-5s %-5s %-5s %-7s %-7s %s"
        lines = [
            "# service type private unpriv chroot wakeup maxproc command; chroot is off.",
            svc % (self.starttls_port, "inet", "n", "-", "n", "-", "-", "smtpd"),
            "  -o syslog_name=postfix/starttls",
            svc % (self.tls_port, "inet", "n", "-", "n", "-", "-", "smtpd"),
            "  -o syslog_name=postfix/smtps",
            "  -o smtpd_tls_wrappermode=yes",
            "  -o smtpd_tls_security_level=encrypt",
        ]
        for row in (("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
                    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
                    ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
                    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
                    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
                    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
                    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
                    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
                    ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
                    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
                    ("error", "unix", "-", "-", "n", "-", "-", "error"),
                    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
                    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
                    ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
                    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
                    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
                    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd")):
            lines.append(svc % row)
        return "\n".join(lines) + "\n"

    def _configure(self):
        pw = pwd.getpwnam("postfix")
        pf_uid, pf_gid = pw.pw_uid, pw.pw_gid
        os.makedirs(self.tmpdir, exist_ok=True)
        # Root-owned and not group/other-writable, traversable by the postfix user, and so
        # must be every directory above it (a TemporaryDirectory is 0700: use it as tmpdir
        # itself, not a subdirectory of it).
        os.chmod(self.tmpdir, 0o755)
        d = os.path.dirname(self.tmpdir)
        while True:
            if not os.stat(d).st_mode & 0o001:
                raise PostfixError("%s is not searchable by the postfix user; "
                                   "use a tmpdir whose parents are (e.g. under /tmp)" % d)
            if d == os.path.dirname(d):
                break
            d = os.path.dirname(d)
        for d in (self.config_dir, self.queue_dir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        self._make_certs()
        self._make_sasl(pf_uid, pf_gid)
        _write(os.path.join(self.config_dir, "vmailbox"),
               "".join("%s inbox/\n" % r for r in self.recipients))
        _write(os.path.join(self.config_dir, "recipient_access"),
               "".join("%s 550 5.1.1 no such user\n" % r for r in self.rejected_recipients))
        for sub in ("", "new", "cur", "tmp"):
            p = os.path.join(self.maildir, sub)
            os.makedirs(p, exist_ok=True)
        for p in (self.mail_base, self.maildir) + tuple(
                os.path.join(self.maildir, s) for s in ("new", "cur", "tmp")):
            os.chown(p, pf_uid, pf_gid)
            os.chmod(p, 0o755)
        open(self.log_file, "a").close()
        os.chmod(self.log_file, 0o644)
        _write(os.path.join(self.config_dir, "main.cf"), self._main_cf(pf_uid, pf_gid))
        _write(os.path.join(self.config_dir, "master.cf"), self._master_cf())
        # Creates the queue directory tree (post-install create-missing) and checks it.
        _run([POSTFIX, "-c", self.config_dir, "check"], env=self._env())

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
        env["MAIL_CONFIG"] = self.config_dir
        env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        return env

    # ---- start / stop ------------------------------------------------------------------

    def start(self):
        if self._proc is not None:
            return self
        try:
            self._start_watchdog()
            for attempt in range(3):
                self.starttls_port = _free_port()
                self.tls_port = _free_port()
                while self.tls_port == self.starttls_port:
                    self.tls_port = _free_port()
                if attempt == 0:
                    self._configure()
                else:
                    _write(os.path.join(self.config_dir, "master.cf"), self._master_cf())
                if self._start_once():
                    return self
                self._kill_instance()
            raise PostfixError("postfix did not start; log:\n" + self.log()[-4000:])
        except BaseException:
            self.stop()
            raise

    def _start_once(self):
        log_mark = len(self.log())
        self._proc = subprocess.Popen([POSTFIX, "-c", self.config_dir, "start-fg"],
                                      env=self._env(), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        self._pgids.add(self._proc.pid)
        self._all_pgids.add(self._proc.pid)
        self._tell_watchdog("pgid %d" % self._proc.pid)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            pid = self._master_pid()
            if pid:
                self.pid = pid
                self._pgids.add(pid)
                self._all_pgids.add(pid)
            if self._proc.poll() is not None:
                return False
            if "Address already in use" in self.log()[log_mark:]:
                return False
            if pid and self._ready():
                return True
            time.sleep(0.1)
        raise PostfixError("postfix not ready after %ss; log:\n%s"
                           % (self.timeout, self.log()[-4000:]))

    def _start_watchdog(self):
        if self._watchdog is not None:
            return
        os.makedirs(self.tmpdir, exist_ok=True)
        r, w = os.pipe()  # both non-inheritable; only the watchdog gets r, as its stdin
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, os.path.join(self.queue_dir, "pid",
                                                               "master.pid"), self.config_dir]
                + ([self.tmpdir] if self._own_tmp else []), stdin=r,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._watchdog_fd = w

    def _tell_watchdog(self, line):
        if self._watchdog_fd is not None:
            try:
                os.write(self._watchdog_fd, (line + "\n").encode())
            except OSError:
                pass

    def _stop_watchdog(self):
        self._tell_watchdog("stopped")
        if self._watchdog_fd is not None:
            os.close(self._watchdog_fd)
            self._watchdog_fd = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait(timeout=5)
            self._watchdog = None

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.path.exists("/proc/%d" % pid) else None

    def tls_context(self):
        """An ssl.SSLContext that trusts this instance's CA only."""
        return ssl.create_default_context(cafile=self.ca_file)

    def _ready(self):
        try:
            with smtplib.SMTP(self.host, self.starttls_port, timeout=2) as s:
                s.ehlo("ready.test")
                if not s.has_extn("starttls") or s.has_extn("auth"):
                    return False
                s.starttls(context=self.tls_context())
                s.ehlo("ready.test")
                if not s.has_extn("auth"):
                    return False
            with smtplib.SMTP_SSL(self.host, self.tls_port, timeout=2,
                                  context=self.tls_context()) as s:
                s.ehlo("ready.test")
                return s.has_extn("auth")
        except (OSError, smtplib.SMTPException):
            return False

    def processes(self):
        """Live PIDs of this instance (any process group it ever started); [] once stopped."""
        return _live_pids_in_groups(self._all_pgids)

    def _group_pids(self):
        return _live_pids_in_groups(self._pgids)

    def _kill_instance(self):
        """Stop this instance; afterwards none of its processes are left.

        SIGTERM to this instance's master (what `postfix stop` does, without its polling
        loop): the master passes it on to its process group, the daemons it started. What
        is left after 5 s is killed by process group, again only this instance's groups."""
        pid = self._master_pid() or self.pid
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()
            if not self._group_pids():
                break
            time.sleep(0.05)
        for pgid in self._pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        self.pid = None
        self._pgids = set()

    def stop(self):
        self._kill_instance()
        self._stop_watchdog()
        if self._own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- what the tests look at --------------------------------------------------------

    def messages(self):
        """[(path, bytes)] of the delivered files in maildir/new, oldest first."""
        new = os.path.join(self.maildir, "new")
        out = []
        for name in os.listdir(new) if os.path.isdir(new) else []:
            p = os.path.join(new, name)
            try:
                st = os.stat(p)
                with open(p, "rb") as f:
                    out.append(((st.st_mtime_ns, name), p, f.read()))
            except OSError:
                continue
        out.sort(key=lambda x: x[0])
        return [(p, data) for _, p, data in out]

    def wait_for_messages(self, n, timeout=10):
        """Wait until at least n messages were delivered; returns messages() either way."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n or time.monotonic() >= deadline:
                return msgs
            time.sleep(0.05)

    def log(self):
        try:
            with open(self.log_file, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for_log(self, regex, timeout=10):
        """Wait until the maillog matches regex; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log(), re.M)
            if m or time.monotonic() >= deadline:
                return m
            time.sleep(0.05)

    def info(self):
        return {"host": self.host, "hostname": self.hostname,
                "starttls_port": self.starttls_port, "tls_port": self.tls_port,
                "ca_file": self.ca_file, "user": self.user, "password": self.password,
                "domain": self.domain, "recipients": self.recipients,
                "rejected_recipients": self.rejected_recipients, "maildir": self.maildir,
                "log_file": self.log_file, "config_dir": self.config_dir, "pid": self.pid,
                "tmpdir": self.tmpdir}


def main():
    ap = argparse.ArgumentParser(description="Run a private Postfix on loopback.")
    ap.add_argument("--tmpdir", help="directory for everything (default: a fresh one, removed)")
    ap.add_argument("--no-stdin", action="store_true",
                    help="do not stop when stdin is closed, only on SIGTERM/SIGINT")
    args = ap.parse_args()
    reason = postfix_missing()
    if reason:
        print(json.dumps({"error": reason}), flush=True)
        return 2
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: done.set())
    with PrivatePostfix(args.tmpdir) as pf:
        print(json.dumps(pf.info()), flush=True)
        if not args.no_stdin:
            def watch_stdin():
                try:
                    while sys.stdin.buffer.read1(4096):
                        pass
                except (OSError, ValueError):
                    pass
                done.set()
            threading.Thread(target=watch_stdin, daemon=True).start()
        while not done.wait(0.5):
            if pf._master_pid() is None:
                print(json.dumps({"error": "postfix exited"}), flush=True)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
