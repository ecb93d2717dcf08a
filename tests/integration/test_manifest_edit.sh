#!/usr/bin/env bash
# Issue 19, manifest edits:
#   - an editor that truncates a manifest, holds it empty (1 s, far past
#     cluster.debounce_ms) and then rewrites it, and one that renames a new
#     version into place: each edit shows in /config_dump's snapshot, and no
#     Service the file had is missing from any snapshot served meanwhile
#     (the directory is read on IN_CLOSE_WRITE and IN_MOVED_TO, never on
#     IN_MODIFY; with IN_MODIFY added to the watch, this fails).
. "$(dirname "$0")/lib.sh"
MAN=$(mktemp -d /tmp/wp-manifest-edit.XXXXXX)
trap 'tb_cleanup; rm -rf "$MAN"' EXIT
cp "$ROOT"/conf/cluster/*.yaml "$MAN"/

tb_up "$(tb_name)" --manifests "$MAN"
for _ in $(seq 50); do
	in_ns /usr/bin/python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:15000/healthz/ready", timeout=2)' 2>/dev/null && break
	sleep 0.1
done

out=$(in_ns /usr/bin/python3 "$ROOT/tests/integration/manifest_edit.py" --file "$MAN/20-bookinfo.yaml" --hold 1) ||
	fail "a manifest edit made Services vanish or never showed: $out"
echo "manifest_edit.py: $out"
pass "truncate-then-rewrite and rename edits: no Service vanished from the snapshot"

