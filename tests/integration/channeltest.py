"""channeltest.py - what the channel plugins' integration tests share: running the built
herald with its state kept in the test's directory, and reading a --json delivery."""
import json
import os
import subprocess

HERALD = os.environ.get("HERALD")


def herald(tmp, *args):
    """Run herald with args; state under tmp, no proxies. Returns (rc, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if k != "HERALD_CONFIG" and "proxy" not in k.lower()}
    env["HOME"] = env["XDG_STATE_HOME"] = str(tmp)
    p = subprocess.run([HERALD] + list(args), capture_output=True, text=True, timeout=60,
                       env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def delivery(out, i=0):
    """Delivery i of `herald send --json` output, {} when there is none."""
    try:
        return (json.loads(out).get("deliveries") or [{}] * (i + 1))[i]
    except (ValueError, IndexError, AttributeError):
        return {}
