#!/bin/sh
# Makes the test PKI for the TLS/HBONE tests with the openssl CLI, at test
# time (nothing generated is committed). Keys are EC P-256.
#
#   tests/pki/mkpki.sh OUTDIR
#
# OUTDIR/ca.pem                 the mesh root (trust domain cluster.local)
# OUTDIR/cert.pem, key.pem      the waypoint: spiffe://cluster.local/ns/default/sa/waypoint
# OUTDIR/<name>.pem, <name>-key.pem for these identities:
#   productpage  spiffe://cluster.local/ns/default/sa/productpage
#   reviews      spiffe://cluster.local/ns/default/sa/reviews
#   foo-bar      spiffe://cluster.local/ns/foo/sa/bar
#   sleep        spiffe://cluster.local/ns/other/sa/sleep
#   alias        spiffe://alias.local/ns/default/sa/aliased   (trust-domain alias)
#   dest         spiffe://cluster.local/ns/default/sa/dest    (an HBONE destination)
#   evil         spiffe://evil.local/ns/default/sa/productpage (foreign trust domain)
#   expired      spiffe://cluster.local/ns/default/sa/expired (valid 2020-01-01..02)
#   rogue        spiffe://cluster.local/ns/default/sa/rogue   (signed by another CA)
#   nospiffe     no URI SAN at all (DNS SAN only)
#   forged       productpage's certificate and key, one bit of the CA's
#                signature flipped (a forged or corrupted certificate)
# OUTDIR/rogue-ca.pem           the CA that signed "rogue" (not trusted)
set -eu

out=${1:?usage: mkpki.sh OUTDIR}
mkdir -p "$out"
cd "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/wp-pki.XXXXXX")
trap 'rm -rf "$work"' EXIT

genkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

mkca() { # name subject
	genkey "$work/$1.key"
	openssl req -x509 -new -key "$work/$1.key" -subj "$2" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$1.pem"
	cp "$work/$1.key" "$work/$1-ca.key"
}

# leaf CA-NAME OUT-NAME SAN [startdate enddate]
leaf() {
	ca=$1 name=$2 san=$3
	genkey "$work/$name.key"
	openssl req -new -key "$work/$name.key" -subj "/O=cluster.local" -out "$work/$name.csr"
	cat >"$work/$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,$san
EXT
	if [ $# -ge 5 ]; then
		# openssl 3.0's x509 has no -not_before: use "ca" with explicit dates.
		mkdir -p "$work/db"
		: >"$work/db/index.txt"
		cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $work/db/index.txt
new_certs_dir = $work/db
serial = $work/db/serial
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
organizationName = optional
CNF
		openssl rand -hex 8 >"$work/db/serial"
		openssl ca -batch -config "$work/ca.cnf" -cert "$ca.pem" -keyfile "$work/$ca-ca.key" \
			-startdate "$4" -enddate "$5" -extfile "$work/$name.ext" \
			-in "$work/$name.csr" -out "$work/$name.full" -notext 2>/dev/null
		openssl x509 -in "$work/$name.full" -out "$name.pem"
	else
		openssl x509 -req -in "$work/$name.csr" -CA "$ca.pem" -CAkey "$work/$ca-ca.key" \
			-CAcreateserial -CAserial "$work/$ca.srl" -days 365 -sha256 \
			-extfile "$work/$name.ext" -out "$name.pem" 2>/dev/null
	fi
	cp "$work/$name.key" "$name-key.pem"
}

mkca ca "/O=cluster.local/CN=waypointd test root"
mkca rogue-ca "/O=rogue/CN=rogue root"

leaf ca waypoint URI:spiffe://cluster.local/ns/default/sa/waypoint
cp waypoint.pem cert.pem
cp waypoint-key.pem key.pem
leaf ca productpage URI:spiffe://cluster.local/ns/default/sa/productpage
leaf ca reviews URI:spiffe://cluster.local/ns/default/sa/reviews
leaf ca foo-bar URI:spiffe://cluster.local/ns/foo/sa/bar
leaf ca sleep URI:spiffe://cluster.local/ns/other/sa/sleep
leaf ca alias URI:spiffe://alias.local/ns/default/sa/aliased
leaf ca dest URI:spiffe://cluster.local/ns/default/sa/dest
leaf ca evil URI:spiffe://evil.local/ns/default/sa/productpage
leaf ca expired URI:spiffe://cluster.local/ns/default/sa/expired 20200101000000Z 20200102000000Z
leaf rogue-ca rogue URI:spiffe://cluster.local/ns/default/sa/rogue
leaf ca nospiffe DNS:nospiffe.example
# The signature's last byte is the end of its s integer: flipping a bit
# there keeps the DER well formed and breaks only the signature.
openssl x509 -in productpage.pem -outform DER -out "$work/forged.der"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[1], "wb").write(b)' "$work/forged.der"
openssl x509 -inform DER -in "$work/forged.der" -out forged.pem
cp productpage-key.pem forged-key.pem
chmod 0600 ./*-key.pem key.pem
