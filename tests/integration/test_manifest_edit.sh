#!/usr/bin/env bash
# Issue 19, manifest edits and control-plane counters:
#   - an editor that truncates a manifest, holds it empty (1 s, far past
#     cluster.debounce_ms) and then rewrites it, and one that renames a new
#     version into place: each edit shows in /config_dump's snapshot, and no
#     Service the file had is missing from any snapshot served meanwhile
#     (the directory is read on IN_CLOSE_WRITE and IN_MOVED_TO, never on
#     IN_MODIFY; with IN_MODIFY added to the watch, this fails);
#   - two rejected manifests (a YAML syntax error, a Service with a bad
#     clusterIP) count in cp_manifest_rejected, and `wpctl stats --json`
#     shows the same figure as /config_dump, in the total and in
#     control_plane; so do the admin counters.
. "$(dirname "$0")/lib.sh"
MAN=$(mktemp -d /tmp/wp-manifest-edit.XXXXXX)
trap 'tb_cleanup; rm -rf "$MAN"' EXIT
cp "$ROOT"/conf/cluster/*.yaml "$MAN"/

tb_up "$(tb_name)" --manifests "$MAN"
dump_ctr() {
	in_ns /usr/bin/python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))["counters"][sys.argv[1]])' "$1"
}
for _ in $(seq 50); do
	in_ns /usr/bin/python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:15000/healthz/ready", timeout=2)' 2>/dev/null && break
	sleep 0.1
done

out=$(in_ns /usr/bin/python3 "$ROOT/tests/integration/manifest_edit.py" --file "$MAN/20-bookinfo.yaml" --hold 1) ||
	fail "a manifest edit made Services vanish or never showed: $out"
echo "manifest_edit.py: $out"
pass "truncate-then-rewrite and rename edits: no Service vanished from the snapshot"

base=$(dump_ctr CP_MANIFEST_REJECTED)
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: broken\n' >"$MAN/90-syntax.yaml"
cat >"$MAN/91-badip.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: badip
  namespace: default
spec:
  clusterIP: 300.1.2.3
  ports:
  - port: 80
YAML
for _ in $(seq 50); do
	[ "$(dump_ctr CP_MANIFEST_REJECTED)" -ge $((base + 2)) ] && break
	sleep 0.1
done
rejected=$(dump_ctr CP_MANIFEST_REJECTED)
[ "$rejected" -ge $((base + 2)) ] || fail "/config_dump counts $rejected rejected manifests, expected at least $((base + 2))"
# telemetry republishes the control plane's counters every loop turn (<= 200 ms)
for _ in $(seq 20); do
	[ "$(stat cp_manifest_rejected)" = "$rejected" ] && break
	sleep 0.1
done
"$WPCTL" stats --json --prefix "$WP_PREFIX" | /usr/bin/python3 -c '
import json, sys
d, want = json.load(sys.stdin), int(sys.argv[1])
assert d["total"]["cp_manifest_rejected"] == want, d["total"]["cp_manifest_rejected"]
assert d["control_plane"]["cp_manifest_rejected"] == want, d["control_plane"]
assert d["total"]["admin_request"] > 0, "admin_request not in the total"
' "$rejected" || fail "wpctl stats --json does not show cp_manifest_rejected = $rejected"
"$WPCTL" stats --prefix "$WP_PREFIX" | grep -Eq "^cp_manifest_rejected +0 +$rejected +$rejected\$" ||
	fail "the wpctl stats table lacks the cp column: $("$WPCTL" stats --prefix "$WP_PREFIX" | grep cp_)"
pass "cp_manifest_rejected = $rejected in /config_dump and in wpctl stats (total and control_plane)"
