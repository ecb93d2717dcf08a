#!/usr/bin/env bash
# waypointd's command line without starting the data plane: --version,
# --help, --check-config on the shipped file, and a bad file and a bad --set
# refused with FILE:LINE / key and exit status exactly 1 (the README's
# promise for configuration errors; 2 for an unknown flag). Then what
# --check-config checks outside the file, as start-up would: the manifest
# directory, the kubeconfig, the TLS files (a test PKI, tests/pki), each
# refused with the key and the file it names, and accepted when right.
# Runs from the source root: the shipped file's manifest_dir is relative.
set -euo pipefail
WP=$(realpath "$1")
ROOT=$2
cd "$ROOT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$WP" --version | grep -q '^waypointd '
"$WP" --help | grep -q -- '--check-config'
"$WP" -c "$ROOT/conf/waypoint.conf" --check-config | grep -q 'configuration ok'
"$WP" -c "$ROOT/conf/waypoint.conf" --set workers=2 --check-config | grep -q '2 workers'

# expect_exit STATUS CMD...: runs CMD, requires exactly STATUS (the README
# promises 1 for a configuration error), keeps its output in $out
expect_exit() {
	local want=$1 rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" = "$want" ] || { echo "$*: exit $rc, expected $want: $out"; exit 1; }
}

printf 'ports = ( { device = "net_tap0"; ip = "198.18.0.2"; } );\npolling = { mode = "fast"; };\n' >"$tmp/bad.conf"
expect_exit 1 "$WP" -c "$tmp/bad.conf" --check-config
grep -q "bad.conf:2: key 'polling.mode'" <<<"$out" || { echo "unexpected: $out"; exit 1; }

# an override's mistake names the --set, not the file's line of the key
expect_exit 1 "$WP" -c "$ROOT/conf/waypoint.conf" --set fault.rx_drop=2 --check-config
grep -q "^waypointd: --set fault.rx_drop=2: key 'fault.rx_drop': " <<<"$out" || { echo "unexpected: $out"; exit 1; }
expect_exit 1 "$WP" -c "$ROOT/conf/waypoint.conf" --set tcp.rcv_buf=abc --check-config
grep -qx "waypointd: --set tcp.rcv_buf=abc: key 'tcp.rcv_buf': expected an integer" <<<"$out" ||
	{ echo "unexpected: $out"; exit 1; }

expect_exit 1 "$WP" -c "$tmp/missing.conf" --check-config
grep -q "missing.conf: cannot read" <<<"$out" || { echo "unexpected: $out"; exit 1; }
expect_exit 2 "$WP" --no-such-flag

# check CASE STATUS PATTERN ARGS...: --check-config with the shipped file
# and ARGS exits STATUS, and its output matches PATTERN (grep -E)
check() {
	local what=$1 want=$2 pattern=$3
	shift 3
	expect_exit "$want" "$WP" -c "$ROOT/conf/waypoint.conf" "$@" --check-config
	grep -Eq -- "$pattern" <<<"$out" || { echo "$what: unexpected: $out"; exit 1; }
}
C="$ROOT/conf/waypoint.conf: key"

# the port's gateway must be on its subnet
check "gateway off the subnet" 1 "--set ports.\[0\].gateway=10.9.9.9: key 'ports.\[0\].gateway': 10.9.9.9 is outside the port's subnet 198.18.0.0/24" \
	--set 'ports.[0].gateway=10.9.9.9'
# EAL memory options DPDK refuses together (and what it takes)
printf 'ports = ( { device = "net_tap0"; ip = "198.18.0.2"; } );\neal = { no_huge = true; in_memory = false;\n  args = [ "--huge-unlink" ]; };\n' >"$tmp/eal.conf"
expect_exit 1 "$WP" -c "$tmp/eal.conf" --set cluster.manifest_dir= --check-config
grep -q "eal.conf:3: key 'eal.args': --huge-unlink: DPDK refuses it with --no-huge" <<<"$out" ||
	{ echo "eal: unexpected: $out"; exit 1; }
"$WP" -c "$tmp/eal.conf" --set cluster.manifest_dir= --set eal.in_memory=true --check-config | grep -q 'configuration ok'

# the manifest directory
check "no manifest directory" 1 "$C 'cluster.manifest_dir' \($tmp/nodir\): No such file or directory" \
	--set cluster.manifest_dir="$tmp/nodir"
check "manifest directory is a file" 1 "$C 'cluster.manifest_dir' \($tmp/eal.conf\): Not a directory" \
	--set cluster.manifest_dir="$tmp/eal.conf"
check "manifest directory" 0 "configuration ok" --set cluster.manifest_dir="$tmp"

# the kubeconfig, when kubernetes is on
K=(--set kubernetes.enabled=true --set kubernetes.kubeconfig="$tmp/kubeconfig")
check "no kubeconfig" 1 "$C 'kubernetes.kubeconfig' \($tmp/kubeconfig\): cannot read: No such file" "${K[@]}"
echo 'clusters: [ {name: c' >"$tmp/kubeconfig"
check "malformed kubeconfig" 1 "$C 'kubernetes.kubeconfig' \($tmp/kubeconfig\): " "${K[@]}"
cat >"$tmp/kubeconfig" <<'KC'
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: a, context: {cluster: c, user: u}}]
current-context: a
KC
check "kubeconfig" 0 "configuration ok" "${K[@]}"
check "kubeconfig without its context" 1 "$C 'kubernetes.kubeconfig' \($tmp/kubeconfig\): " \
	"${K[@]}" --set kubernetes.context=nosuch

# the TLS files, when HBONE is on
sh "$ROOT/tests/pki/mkpki.sh" "$tmp/pki" >/dev/null 2>&1
P=$tmp/pki
T=(--set hbone.enabled=true --set tls.cert="$P/cert.pem" --set tls.key="$P/key.pem" --set tls.ca="$P/ca.pem")
check "TLS files" 0 "configuration ok" "${T[@]}"
check "no certificate" 1 "$C 'tls.cert' \($P/none.pem\): cannot read: No such file" "${T[@]}" --set tls.cert="$P/none.pem"
check "certificate not PEM" 1 "$C 'tls.cert' \($tmp/eal.conf\): not a PEM certificate chain" "${T[@]}" --set tls.cert="$tmp/eal.conf"
check "no key" 1 "$C 'tls.key' \($P/none.pem\): cannot read" "${T[@]}" --set tls.key="$P/none.pem"
check "key not PEM" 1 "$C 'tls.key' \($P/ca.pem\): not a PEM private key" "${T[@]}" --set tls.key="$P/ca.pem"
check "mismatched key" 1 "$C 'tls.key' \($P/reviews-key.pem\): does not match the certificate of tls.cert \($P/cert.pem\)" \
	"${T[@]}" --set tls.key="$P/reviews-key.pem"
check "no roots" 1 "$C 'tls.ca' \($P/none.pem\): cannot read" "${T[@]}" --set tls.ca="$P/none.pem"
check "roots not PEM" 1 "$C 'tls.ca' \($tmp/eal.conf\): no PEM root certificate" "${T[@]}" --set tls.ca="$tmp/eal.conf"
check "roots not set" 1 "key 'tls.ca': not set \(hbone.enabled = true needs it\)" "${T[@]}" --set tls.ca=

# Log levels for the journal: with $JOURNAL_STREAM naming the stream stderr
# is, each line carries its syslog priority (<3> error), DPDK's own lines
# too (an EAL option it refuses: the EAL fails while parsing, before it
# touches anything); without it, or when stderr is another file, none.
printf 'ports = ( { device = "net_tap0"; ip = "198.18.0.2"; } );\neal = { args = [ "--no-such-eal-option" ]; };\ncluster = { manifest_dir = ""; };\nadmin = { enabled = false; };\nmetrics = { enabled = false; };\n' >"$tmp/badeal.conf"
journal() { # STREAM-ID CMD...: CMD's stderr, with $JOURNAL_STREAM=STREAM-ID
	local id=$1
	shift
	: >"$tmp/stderr"
	[ "$id" != self ] || id=$(stat -c '%d:%i' "$tmp/stderr")
	JOURNAL_STREAM=$id timeout 30 "$@" >/dev/null 2>>"$tmp/stderr" || true
	out=$(cat "$tmp/stderr")
}
journal self "$WP" -c "$ROOT/conf/waypoint.conf" --set tcp.rcv_buf=abc --check-config
grep -qx "<3>waypointd: --set tcp.rcv_buf=abc: key 'tcp.rcv_buf': expected an integer" <<<"$out" ||
	{ echo "journal: unexpected: $out"; exit 1; }
journal self "$WP" -c "$tmp/badeal.conf"
grep -qx "<3>EAL: Invalid 'command line' arguments." <<<"$out" || { echo "journal, DPDK: unexpected: $out"; exit 1; }
grep -qx "<3>waypointd: EAL initialisation failed: Invalid argument" <<<"$out" ||
	{ echo "journal, EAL: unexpected: $out"; exit 1; }
for id in "" "1:2"; do
	journal "$id" "$WP" -c "$tmp/badeal.conf"
	grep -qx "EAL: Invalid 'command line' arguments." <<<"$out" &&
		grep -qx "waypointd: EAL initialisation failed: Invalid argument" <<<"$out" &&
		! grep -q '^<[0-9]>' <<<"$out" || { echo "not the journal ($id): unexpected: $out"; exit 1; }
done
echo "waypointd command line: ok"
