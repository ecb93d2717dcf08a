/*
 * cp/ca's pieces, each testable alone: the protobuf messages of Istio's CA
 * service and the gRPC message framing (pb.c, sans-I/O), the key, CSR and
 * issued-chain checks (csr.c, OpenSSL), and one unary gRPC call over TLS
 * and HTTP/2 on a blocking kernel socket (grpc.c, nghttp2).
 */
#ifndef WP_CP_CA_INT_H
#define WP_CP_CA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

/* ---- pb.c ---- */

/*
 * Encodes istio.v1.auth.IstioCertificateRequest {csr = 1 (string),
 * validity_duration = 3 (int64 seconds)} behind the 5-byte gRPC message
 * prefix (uncompressed, big-endian length) into buf. metadata (4) is left
 * out: it is optional and only carries impersonation, which we never ask.
 * Returns the bytes written, or -ENOSPC.
 */
ssize_t wp_ca_pb_request(uint8_t *buf, size_t cap, const char *csr, size_t csr_len,
                         int64_t validity_s);

/* One cert_chain element: a slice of the decoded message. */
struct wp_ca_pb_str {
	const char *p;
	size_t len;
};

/*
 * Decodes one gRPC message (prefix included, exactly len bytes) holding an
 * IstioCertificateResponse {repeated string cert_chain = 1}: up to max
 * elements into out, unknown fields skipped. Returns the element count, or
 * -EBADMSG (truncated, bad varint or wire type, compressed, trailing
 * bytes) or -E2BIG (more than max elements).
 */
int wp_ca_pb_response(const uint8_t *buf, size_t len, struct wp_ca_pb_str *out, int max);

/* ---- csr.c ---- */

/* A fresh ECDSA P-256 key, or NULL. */
EVP_PKEY *wp_ca_key_new(void);

/*
 * A PEM CSR for key with the URI SAN id (critical, empty subject, SHA-256
 * signature). Returns a malloc'd NUL-terminated string (*len bytes), or
 * NULL.
 */
char *wp_ca_csr_pem(EVP_PKEY *key, const char *id, size_t *len);

/* Why an issued chain was refused. */
enum wp_ca_check {
	WP_CA_CHECK_OK = 0,
	WP_CA_CHECK_BAD_PEM,  /* empty, or an element that is not one PEM certificate */
	WP_CA_CHECK_KEY,      /* the leaf is not for our key */
	WP_CA_CHECK_SAN,      /* the leaf's URI SAN is not exactly our identity */
	WP_CA_CHECK_CHAIN,    /* does not verify against the roots (or expired) */
	WP_CA_CHECK_NO_ROOTS, /* the root file does not load */
};

/* What we show of an installed leaf. */
struct wp_ca_leaf {
	int64_t not_before, not_after; /* Unix seconds */
	char serial[128];              /* lower-case hex */
	char id[384];                  /* the URI SAN */
};

/*
 * Checks the chain (n PEM certificates, leaf first) against key, id and
 * the roots in root_file, as of now. Fills *leaf when it returns OK; why
 * (a short text) otherwise.
 */
enum wp_ca_check wp_ca_chain_check(EVP_PKEY *key, const char *id, const struct wp_ca_pb_str *chain,
                                   int n, const char *root_file, struct wp_ca_leaf *leaf, char *why,
                                   size_t whylen);

/* The leaf facts of the first certificate in a PEM file (for /certs in
 * file mode). 0 or -errno. */
int wp_ca_leaf_from_file(const char *path, struct wp_ca_leaf *leaf);

/* ---- grpc.c ---- */

struct wp_ca_call {
	const char *host; /* istiod address */
	const char *port;
	const char *server_name; /* checked against the server certificate */
	const char *root_file;   /* trusted roots for the server */
	const char *token;       /* bearer token, or NULL */
	const char *cluster_id;  /* ClusterID header, or NULL */
	const char *path;    /* :path, /istio.v1.auth.IstioCertificateService/CreateCertificate */
	unsigned timeout_ms; /* the whole call */
};

/* How a call ended. */
enum wp_ca_call_res {
	WP_CA_CALL_OK = 0,    /* grpc-status 0 and one message in *resp */
	WP_CA_CALL_TRANSPORT, /* no answer: DNS, connect, TLS, HTTP/2, timeout, HTTP status */
	WP_CA_CALL_STATUS,    /* a grpc-status other than 0 (in *grpc_status) */
	WP_CA_CALL_BAD,       /* 200 and grpc-status 0 but no single whole message */
};

/*
 * One unary call: sends req (a framed message, req_len bytes) and collects
 * the answer's body (malloc'd into *resp, *resp_len bytes, at most 1 MiB).
 * why receives a short reason on failure.
 */
enum wp_ca_call_res wp_ca_grpc_call(const struct wp_ca_call *c, const uint8_t *req, size_t req_len,
                                    uint8_t **resp, size_t *resp_len, int *grpc_status, char *why,
                                    size_t whylen);

#endif /* WP_CP_CA_INT_H */
