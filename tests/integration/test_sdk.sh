#!/bin/sh
# test_sdk.sh - a plugin compiled against the public headers alone is loaded and used.
# Emits TAP. Needs HERALD, HERALD_SRCDIR and CC from make check.
set -u
tmp=$(mktemp -d /tmp/herald-sdk-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
# Never the real home: herald's default queue lives under it.
HOME="$tmp"; XDG_STATE_HOME="$tmp/state"; export HOME XDG_STATE_HOME
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }

# Only the installed headers: copy them alone, nothing else of herald is visible.
mkdir -p "$tmp/include/herald" "$tmp/plugins"
cp "$HERALD_SRCDIR/include/herald/plugin.h" "$HERALD_SRCDIR/include/herald/status.h" "$tmp/include/herald/"
${CC:-cc} -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
    -I"$tmp/include" "$HERALD_SRCDIR/tests/sdk/fileplugin.c" -o "$tmp/plugins/filesink.so" 2>"$tmp/cc.err"
ok $? "plugin compiles with -Wall -Wextra -Werror against plugin.h alone"
[ -s "$tmp/cc.err" ] && sed 's/^/# /' "$tmp/cc.err"

exports=$(nm -D --defined-only "$tmp/plugins/filesink.so" | awk '$2 ~ /^[A-Z]$/ {print $3}' | grep -v '^_' | tr '\n' ' ')
[ "$exports" = "herald_plugin_info " ]
ok $? "the plugin exports exactly one symbol, herald_plugin_info (got: $exports)"

HERALD_PLUGIN_PATH="$tmp/plugins"; export HERALD_PLUGIN_PATH
out=$("$HERALD" plugins 2>&1)
minor=$(sed -n 's/^#define HERALD_PLUGIN_ABI_MINOR \([0-9]*\)$/\1/p' "$HERALD_SRCDIR/include/herald/plugin.h")
echo "$out" | grep -q "^filesink .*1\.0\.0 .*ABI 1\.$minor .*$tmp/plugins/filesink\.so"
ok $? "herald plugins lists it with version, ABI and path"

cat > "$tmp/herald.conf" <<CONF
database = "$tmp/herald.db";
socket = "$tmp/no-daemon.sock";
channels = (
  { name = "sink"; plugin = "filesink"; path = "$tmp/events.jsonl"; }
);
CONF
"$HERALD" -c "$tmp/herald.conf" send -e sdk.check -a sdktest "Hello from the SDK" "body text" </dev/null
ok $? "herald send through the plugin exits 0"
grep -q '"type":"sdk.check","severity":"notice","title":"Hello from the SDK","body":"body text"' "$tmp/events.jsonl"
ok $? "the plugin received the event (canonical JSON in the file)"

out=$("$HERALD" -c "$tmp/herald.conf" test sink 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "nothing written"
ok $? "herald test runs the plugin's side-effect-free test"
[ "$(wc -l < "$tmp/events.jsonl")" -eq 1 ]
ok $? "the test wrote nothing"

cat > "$tmp/bad.conf" <<CONF
channels = (
  { name = "sink"; plugin = "filesink"; path = "relative/file"; }
);
CONF
out=$("$HERALD" -c "$tmp/bad.conf" send "x" </dev/null 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "bad.conf:2: channel 'sink': plugin filesink refused its settings: path must be absolute"
ok $? "a create() failure is exit 2 with file:line and the plugin's reason (got: $out)"

echo "1..$n"
[ $fails -eq 0 ]
