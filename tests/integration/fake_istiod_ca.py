#!/usr/bin/python3
"""A fake istiod CA for the tests: gRPC istio.v1.auth.IstioCertificateService/
CreateCertificate over TLS (a generic handler: the two protobuf messages are
encoded by hand here, independently of cp/ca/pb.c).

  fake_istiod_ca.py --listen 127.0.0.1:15012 --dir DIR --token-file F
                    --cluster-id ID [--lifetime 60]
  fake_istiod_ca.py --dir DIR --init     (only make DIR/root.pem, then exit)

DIR/root.pem is the mesh root it signs with (made on the first start, kept
with its key in DIR for a restart); istiod's own serving certificate
(DNS istiod.istio-system.svc) is signed by it. DIR/mode, re-read per
request, picks the answer:
  ok        sign the CSR's SAN with the root, valid --lifetime seconds
  badsan    sign, but for spiffe://cluster.local/ns/default/sa/intruder
  badchain  sign with another CA (not the mesh root)
Requests without "authorization: Bearer <token>" or with the wrong
"clusterid" header get UNAUTHENTICATED (logged {"refused": authorization}).
Each answer is logged as one JSON
line on stdout: {"mode", "serial", "san", "requested_s"}.
"""
import argparse
import datetime
import json
import os
import sys
import time
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE = "istio.v1.auth.IstioCertificateService"


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def enc_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def decode_request(b):
    """IstioCertificateRequest: csr = 1 (string), validity_duration = 3 (int64)."""
    csr, validity, i = None, 0, 0
    while i < len(b):
        key, i = varint(b, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
            if field == 3:
                validity = v
        elif wt == 2:
            n, i = varint(b, i)
            if field == 1:
                csr = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)
    return csr, validity


def encode_response(pems):
    """IstioCertificateResponse: repeated string cert_chain = 1."""
    out = b""
    for p in pems:
        out += b"\x0a" + enc_varint(len(p)) + p
    return out


def new_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subj = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def sign(ca_key, ca_cert, pub, san, lifetime, server=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_cert.subject)
         .public_key(pub).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(seconds=1))
         .not_valid_after(now + datetime.timedelta(seconds=lifetime))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.SubjectAlternativeName(
             [x509.DNSName(san)] if server else [x509.UniformResourceIdentifier(san)]),
             critical=True))
    return b.sign(ca_key, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--listen")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--token-file")
    ap.add_argument("--cluster-id")
    ap.add_argument("--init", action="store_true")
    ap.add_argument("--lifetime", type=int, default=60)
    a = ap.parse_args()

    key_path, root_path = os.path.join(a.dir, "root-key.pem"), os.path.join(a.dir, "root.pem")
    if os.path.exists(key_path):
        root_key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
        root = x509.load_pem_x509_certificate(open(root_path, "rb").read())
    else:
        root_key, root = new_ca("fake istiod root")
        open(key_path, "wb").write(root_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        open(root_path, "wb").write(pem(root))
    if a.init:
        return
    if not (a.listen and a.token_file and a.cluster_id):
        sys.exit("--listen, --token-file and --cluster-id are needed")
    rogue_key, rogue = new_ca("rogue")
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = sign(root_key, root, srv_key.public_key(), "istiod.istio-system.svc", 3600, True)
    token = open(a.token_file).read().strip()

    def create(req, ctx):
        md = dict(ctx.invocation_metadata())
        if md.get("authorization") != "Bearer " + token or md.get("clusterid") != a.cluster_id:
            print(json.dumps({"refused": md.get("authorization", "")}), flush=True)
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token or cluster id")
        csr_pem, validity = decode_request(req)
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad CSR signature")
        uris = csr.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        try:
            mode = open(os.path.join(a.dir, "mode")).read().strip()
        except OSError:
            mode = "ok"
        san = "spiffe://cluster.local/ns/default/sa/intruder" if mode == "badsan" else uris[0]
        k, c = (rogue_key, rogue) if mode == "badchain" else (root_key, root)
        leaf = sign(k, c, csr.public_key(), san, a.lifetime)
        print(json.dumps({"mode": mode, "serial": "%x" % leaf.serial_number, "san": san,
                          "requested_s": validity}), flush=True)
        return encode_response([pem(leaf), pem(c)])

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"CreateCertificate": grpc.unary_unary_rpc_method_handler(create)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(srv_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), pem(srv))])
    if server.add_secure_port(a.listen, creds) == 0:
        sys.exit("cannot listen on " + a.listen)
    server.start()
    print("listening", a.listen, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
