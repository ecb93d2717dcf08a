#!/usr/bin/env bash
# The Debian package (debian/, issue 16): built with dpkg-buildpackage from
# a copy of the tree (output outside the repository), lintian reports no
# error, and what it installs works where it lands:
#   * dpkg -x into a scratch root: the binaries, the conffile, the unit, the
#     sysctl drop-in, the man pages, the manifests and the vfio example;
#   * the installed waypointd defaults to /etc/waypointd/waypoint.conf, and
#     the shipped configuration passes --check-config; the example cluster
#     it names is in the package and loads (wpctl enrollment --dir);
#   * systemd-analyze verify passes on the unit and the vfio example in the
#     scratch root (commands and man pages resolved there);
#   * the installed waypointd runs in a testbed namespace and answers ping.
# Slow: a full build of the package. Needs root (the testbed), debhelper,
# dpkg-dev, lintian, systemd and kmod (scripts/setup).
. "$(dirname "$0")/lib.sh"

for t in dpkg-buildpackage lintian systemd-analyze man /sbin/modprobe; do
	command -v $t >/dev/null || fail "$t not installed (scripts/setup)"
done
WORK=$(mktemp -d /tmp/wp-package.XXXXXX)
trap 'tb_cleanup; rm -rf "$WORK"' EXIT

# A copy of the tree as git sees it (tracked and new files, not build/);
# outside a git checkout, everything but the build directories.
SRC=$WORK/src/waypointd
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
	tar -C "$ROOT" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -xf - -C "$SRC"
fi
start=$(date +%s)
(cd "$SRC" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1) ||
	{ tail -40 "$WORK/build.log" >&2; fail "dpkg-buildpackage failed"; }
echo "package built in $(($(date +%s) - start)) s"
DEB=$(ls "$WORK"/src/waypointd_*_amd64.deb)
[ -f "$DEB" ] || fail "no .deb in $WORK/src"

lintian --fail-on error --tag-display-limit 0 "$WORK"/src/waypointd_*.changes >"$WORK/lintian.log" 2>&1 ||
	{ cat "$WORK/lintian.log" >&2; fail "lintian reports errors"; }
echo "lintian: no errors; $(grep -c '^W:' "$WORK/lintian.log" || true) warnings:"
grep '^W:' "$WORK/lintian.log" | sed 's/^/  /' || true

R=$WORK/root
dpkg -x "$DEB" "$R"
dpkg-deb -e "$DEB" "$WORK/control"
for f in usr/sbin/waypointd usr/bin/wpctl etc/waypointd/waypoint.conf \
	lib/systemd/system/waypointd.service usr/lib/sysctl.d/60-waypointd-hugepages.conf \
	usr/share/man/man8/waypointd.8.gz usr/share/man/man8/wpctl.8.gz \
	usr/share/doc/waypointd/examples/waypointd-vfio@.service \
	usr/share/waypointd/deploy/gatewayclass.yaml usr/share/waypointd/deploy/rbac.yaml \
	usr/share/waypointd/deploy/appliance.yaml usr/share/waypointd/deploy/README.md; do
	[ -e "$R/$f" ] || fail "the package has no /$f"
done
grep -qx /etc/waypointd/waypoint.conf "$WORK/control/conffiles" ||
	fail "/etc/waypointd/waypoint.conf is not a conffile: $(cat "$WORK/control/conffiles")"

# The installed binary: its default configuration, and the shipped one.
grep -q "default /etc/waypointd/waypoint.conf" <<<"$("$R/usr/sbin/waypointd" --help)" ||
	fail "the installed waypointd does not default to /etc/waypointd/waypoint.conf"
dir=$(sed -n 's/^ *manifest_dir = "\([^"]*\)".*/\1/p' "$R/etc/waypointd/waypoint.conf")
[ "$dir" = /usr/share/waypointd/cluster ] || fail "the shipped manifest_dir is '$dir'"
# --check-config opens the manifest directory: the scratch root's
"$R/usr/sbin/waypointd" -c "$R/etc/waypointd/waypoint.conf" --set cluster.manifest_dir="$R$dir" \
	--check-config || fail "the shipped configuration does not pass --check-config"
grep -Eq '^ *enabled = false;' <(sed -n '/^hbone = {/,/^};/p' "$R/etc/waypointd/waypoint.conf") ||
	fail "the shipped configuration turns HBONE on without certificates"
"$R/usr/bin/wpctl" enrollment --dir "$R$dir" --gateway default/waypoint >"$WORK/enroll.txt" ||
	fail "wpctl enrollment on the shipped cluster failed"
grep -q productpage "$WORK/enroll.txt" || fail "the shipped cluster has no productpage: $(cat "$WORK/enroll.txt")"

# The units, checked in the scratch root: systemd-analyze resolves their
# commands and dependencies there, so it gets the host's targets and copies
# of the few commands they run besides waypointd. An instance without ':'
# for the template (verify reads FILE:ALIAS).
mkdir -p "$R/etc/systemd/system" "$R/bin" "$R/sbin"
cp /lib/systemd/system/*.target "$R/lib/systemd/system/"
cp -L /bin/sh /bin/kill "$R/bin/"
cp -L /sbin/modprobe "$R/sbin/"
cp "$R/usr/share/doc/waypointd/examples/waypointd-vfio@.service" "$R/etc/systemd/system/"
systemd-analyze verify --root="$R" --man=no waypointd.service waypointd-vfio@check.service \
	>"$WORK/verify.log" 2>&1 || { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify"; }
[ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify complained"; }
grep -qx 'Type=notify' "$R/lib/systemd/system/waypointd.service" || fail "the unit is not Type=notify"
for m in waypointd wpctl; do
	MANWIDTH=80 man --warnings -l "$R/usr/share/man/man8/$m.8.gz" >/dev/null 2>"$WORK/man.log" ||
		fail "man $m.8 does not render"
	[ ! -s "$WORK/man.log" ] || { cat "$WORK/man.log" >&2; fail "man $m.8: warnings"; }
done

# The installed binary in a testbed (the tree's test configuration; its
# plugins and libraries are the system's DPDK, as on an installed host).
WP_BIN=$R/usr/sbin/waypointd tb_up "$(tb_name)"
pass "package: built, lintian clean of errors, installed files, --check-config, units verified, installed binary answers ping"
