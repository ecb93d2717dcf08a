/*
 * The mesh identity from istiod's CA (cp/ca), as ztunnel gets it: a key
 * made here (ECDSA P-256), a CSR for spiffe://TD/ns/NS/sa/SA, and gRPC
 * istio.v1.auth.IstioCertificateService/CreateCertificate on istiod's
 * port 15012 over TLS verified against the mesh root, authenticated by a
 * Kubernetes service-account token (audience istio-ca) and the ClusterID
 * header.
 *
 * The client runs on its own thread with kernel sockets (like the
 * Kubernetes source). Each issued chain is checked (our key, our SAN, it
 * verifies against the root) and written with its key, atomically, as one
 * PEM file (ca.dir/identity.pem) that tls.cert and tls.key both name: the
 * data path's file reload (tls.reload_ms) then builds a new TLS context for
 * new handshakes while existing connections keep theirs. Renewal is due at
 * about half the lifetime (minus up to a tenth, jitter); failures retry with
 * doubling backoff and keep the old certificate.
 *
 * waypointd's main: wp_ca_start before the data path loads the TLS files,
 * wait for wp_ca_ready, wp_ca_stop at exit. /certs (the admin endpoint) and
 * `wpctl cert` show the installed certificate through wp_ca_certs_json.
 */
#ifndef WP_CA_H
#define WP_CA_H

#include <stdbool.h>
#include <stdint.h>

struct wp_config;

struct wp_ca;

/* Starts the client thread for cfg->ca (cfg must outlive it). NULL with the
 * reason on stderr (the directory cannot be made private, no memory). */
struct wp_ca *wp_ca_start(const struct wp_config *cfg);

/* True once a certificate was issued and installed. */
bool wp_ca_ready(struct wp_ca *ca);

/* Stops the thread and frees ca (NULL is a no-op). */
void wp_ca_stop(struct wp_ca *ca);

/* Adds the CA_* counters into out[WP_CTR_MAX]. Any thread. */
void wp_ca_counters(struct wp_ca *ca, uint64_t *out);

/*
 * For /certs: where the data path's certificate comes from. With ca NULL
 * the certificate is the file cert_file (tls.cert, an external CA); with a
 * client, istiod. Called once by main before the admin endpoint serves.
 */
void wp_ca_certs_register(struct wp_ca *ca, const char *cert_file);

/*
 * The JSON object /certs answers: source ("file" or "istiod"), file, and
 * for the leaf certificate identity, serial, not_before, not_after (UTC,
 * RFC 3339) and expires_in_s; with istiod also issued, next_renewal and
 * last_error. A malloc'd string, or NULL when out of memory.
 */
char *wp_ca_certs_json(void);

#endif /* WP_CA_H */
