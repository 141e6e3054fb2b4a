#!/bin/sh
# demo.sh - send one notification through herald's webhook channel to a loopback
# receiver started here, then show exactly what the receiver got.
# Run from the build directory: sh ../tests/demo.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
[ -x "$build/herald" ] || { echo "demo: run me from the build directory (where ./herald is)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/herald-demo-XXXXXX)
python3 "$top/tests/servers/receiver.py" --port-file "$tmp/port" --log "$tmp/received.jsonl" --max-seconds 30 &
rpid=$!
trap 'kill $rpid 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
port=$(cat "$tmp/port")

cat > "$tmp/herald.conf" <<CONF
database = "$tmp/herald.db";
channels = (
  { name = "ops-hook"; plugin = "webhook";
    url = "http://127.0.0.1:$port/hooks/herald";
    headers = { X-Team = "ops"; }; timeout = 5; }
);
CONF
echo "== config ($tmp/herald.conf)"
cat "$tmp/herald.conf"
echo
echo "== herald send -e backup.failed -s error -a cron -f host=db1 \"Backup failed\" \"disk full on /var\""
HERALD_PLUGIN_PATH="$build/plugins" "$build/herald" -c "$tmp/herald.conf" -v send \
    -e backup.failed -s error -a cron -f host=db1 "Backup failed" "disk full on /var" </dev/null
echo "exit status: $?"
echo
echo "== what the receiver on 127.0.0.1:$port got"
python3 - "$tmp/received.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["method"], r["path"])
    for k in ("content-type", "user-agent", "x-team"):
        print(f"  {k}: {r['headers'].get(k)}")
    print(json.dumps(json.loads(r["body"]), indent=2))
PY
