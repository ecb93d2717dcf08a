/*
 * One unary gRPC call to istiod's CA: a blocking kernel socket, OpenSSL on
 * it (the server verified against the mesh root and server_name, ALPN h2),
 * and nghttp2's client session for HTTP/2, which the data path links
 * already. A call is a new connection: renewals come hours apart, so
 * keeping one open would buy nothing. Every read and write is bounded by
 * the call's deadline (SO_RCVTIMEO/SO_SNDTIMEO), so a stuck istiod costs
 * the CA thread timeout_ms, never more.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ca_int.h"

#define MAX_RESPONSE (1u << 20)

struct call {
	SSL *ssl;
	const uint8_t *req;
	size_t req_len, req_off;
	int32_t stream;
	int http_status;
	int grpc_status; /* -1 until seen */
	bool done;
	bool too_big;
	uint8_t *body;
	size_t body_len;
	char *why;
	size_t whylen;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_timeouts(int fd, int64_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	if (ms <= 0)
		tv.tv_usec = 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected blocking socket, or -1 with why set. */
static int dial(const struct wp_ca_call *c, int64_t deadline, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *a;
	int fd = -1, rc = getaddrinfo(c->host, c->port, &hints, &ai);

	if (rc != 0) {
		snprintf(why, whylen, "resolve %s: %s", c->host, gai_strerror(rc));
		return -1;
	}
	snprintf(why, whylen, "connect %s:%s: no address", c->host, c->port);
	for (a = ai; a != NULL; a = a->ai_next) {
		struct pollfd pfd;
		int err = 0;
		socklen_t elen = sizeof(err);

		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
		} else {
			pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
			int64_t left = deadline - now_ms();
			if (poll(&pfd, 1, left > 0 ? (int)left : 0) != 1)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
				err = errno;
		}
		if (err == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
			break;
		snprintf(why, whylen, "connect %s:%s: %s", c->host, c->port, strerror(err));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	struct call *k = user;
	int n = SSL_write(k->ssl, data, (int)len);

	(void)s;
	(void)flags;
	return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
	struct call *k = user;
	char v[16];

	(void)s;
	(void)flags;
	if (f->hd.stream_id != k->stream)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen < sizeof(v)) {
		memcpy(v, value, valuelen);
		v[valuelen] = '\0';
		k->http_status = atoi(v);
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0 && valuelen < sizeof(v)) {
		memcpy(v, value, valuelen);
		v[valuelen] = '\0';
		k->grpc_status = atoi(v);
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		snprintf(k->why, k->whylen, "grpc-message: %.*s",
		         (int)(valuelen > 200 ? 200 : valuelen), value);
	}
	return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data,
                   size_t len, void *user)
{
	struct call *k = user;
	uint8_t *nb;

	(void)s;
	(void)flags;
	if (stream != k->stream)
		return 0;
	if (k->body_len + len > MAX_RESPONSE) {
		k->too_big = true;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	nb = realloc(k->body, k->body_len + len);
	if (nb == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	memcpy(nb + k->body_len, data, len);
	k->body = nb;
	k->body_len += len;
	return 0;
}

static int close_cb(nghttp2_session *s, int32_t stream, uint32_t code, void *user)
{
	struct call *k = user;

	(void)s;
	(void)code;
	if (stream == k->stream)
		k->done = true;
	return 0;
}

static ssize_t read_req(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct call *k = user;
	size_t n = k->req_len - k->req_off;

	(void)s;
	(void)stream;
	(void)src;
	if (n > len)
		n = len;
	memcpy(buf, k->req + k->req_off, n);
	k->req_off += n;
	if (k->req_off == k->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE     \
	}

/* Runs the HTTP/2 exchange on an established TLS connection. */
static bool exchange(struct call *k, const struct wp_ca_call *c, int fd, int64_t deadline)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_session *s = NULL;
	nghttp2_data_provider dp = {.read_callback = read_req};
	char auth[8192] = "", port_auth[300];
	nghttp2_nv hdrs[8];
	size_t nh = 0;
	bool ok = false;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return false;
	nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, data_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, close_cb);
	if (nghttp2_session_client_new(&s, cbs, k) != 0)
		goto out;
	snprintf(port_auth, sizeof(port_auth), "%s:%s", c->server_name, c->port);
	hdrs[nh++] = (nghttp2_nv)NV(":method", "POST");
	hdrs[nh++] = (nghttp2_nv)NV(":scheme", "https");
	hdrs[nh++] = (nghttp2_nv)NV(":path", c->path);
	hdrs[nh++] = (nghttp2_nv)NV(":authority", port_auth);
	hdrs[nh++] = (nghttp2_nv)NV("content-type", "application/grpc");
	hdrs[nh++] = (nghttp2_nv)NV("te", "trailers");
	if (c->token != NULL) {
		if ((size_t)snprintf(auth, sizeof(auth), "Bearer %s", c->token) >= sizeof(auth)) {
			snprintf(k->why, k->whylen, "token longer than %zu bytes",
			         sizeof(auth) - 8);
			goto out;
		}
		hdrs[nh++] = (nghttp2_nv)NV("authorization", auth);
	}
	/* Istio's agents send it as "ClusterID"; HTTP/2 field names are lower case. */
	if (c->cluster_id != NULL && c->cluster_id[0] != '\0')
		hdrs[nh++] = (nghttp2_nv)NV("clusterid", c->cluster_id);
	if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) != 0)
		goto out;
	k->stream = nghttp2_submit_request(s, NULL, hdrs, nh, &dp, NULL);
	if (k->stream < 0)
		goto out;
	snprintf(k->why, k->whylen, "HTTP/2 exchange failed");
	while (!k->done) {
		uint8_t buf[16384];
		int n;
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			snprintf(k->why, k->whylen, "no answer within the timeout");
			goto out;
		}
		set_timeouts(fd, left);
		if (nghttp2_session_send(s) != 0)
			goto out;
		if (k->done)
			break;
		n = SSL_read(k->ssl, buf, sizeof(buf));
		if (n <= 0) {
			snprintf(k->why, k->whylen, "%s",
			         now_ms() >= deadline ? "no answer within the timeout"
			                              : "connection closed by the CA");
			goto out;
		}
		if (nghttp2_session_mem_recv(s, buf, (size_t)n) < 0) {
			if (k->too_big)
				snprintf(k->why, k->whylen, "answer longer than %u bytes",
				         MAX_RESPONSE);
			goto out;
		}
	}
	ok = true;
out:
	nghttp2_session_del(s);
	nghttp2_session_callbacks_del(cbs);
	OPENSSL_cleanse(auth, sizeof(auth));
	return ok;
}

enum wp_ca_call_res wp_ca_grpc_call(const struct wp_ca_call *c, const uint8_t *req, size_t req_len,
                                    uint8_t **resp, size_t *resp_len, int *grpc_status, char *why,
                                    size_t whylen)
{
	static const unsigned char alpn[] = "\x02h2";
	int64_t deadline = now_ms() + c->timeout_ms;
	struct call k = {
	        .req = req, .req_len = req_len, .grpc_status = -1, .why = why, .whylen = whylen};
	enum wp_ca_call_res res = WP_CA_CALL_TRANSPORT;
	SSL_CTX *ctx = NULL;
	const unsigned char *proto = NULL;
	unsigned proto_len = 0;
	int fd;

	*resp = NULL;
	*resp_len = 0;
	*grpc_status = -1;
	fd = dial(c, deadline, why, whylen);
	if (fd < 0)
		return res;
	set_timeouts(fd, deadline - now_ms());
	snprintf(why, whylen, "TLS set-up failed");
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		goto out;
	if (SSL_CTX_load_verify_locations(ctx, c->root_file, NULL) != 1) {
		snprintf(why, whylen, "cannot load the roots %s", c->root_file);
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
		goto out;
	k.ssl = SSL_new(ctx);
	if (k.ssl == NULL || !SSL_set_fd(k.ssl, fd) ||
	    !SSL_set_tlsext_host_name(k.ssl, c->server_name) ||
	    !SSL_set1_host(k.ssl, c->server_name))
		goto out;
	if (SSL_connect(k.ssl) != 1) {
		long v = SSL_get_verify_result(k.ssl);

		if (v != X509_V_OK)
			snprintf(why, whylen, "istiod's certificate refused: %s",
			         X509_verify_cert_error_string(v));
		else
			snprintf(why, whylen, "TLS handshake with %s:%s failed", c->host, c->port);
		goto out;
	}
	SSL_get0_alpn_selected(k.ssl, &proto, &proto_len);
	if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
		snprintf(why, whylen, "the CA did not negotiate h2 (ALPN)");
		goto out;
	}
	if (!exchange(&k, c, fd, deadline))
		goto out;
	*grpc_status = k.grpc_status;
	if (k.http_status != 200) {
		snprintf(why, whylen, "HTTP status %d", k.http_status);
		goto out;
	}
	if (k.grpc_status != 0) {
		res = k.grpc_status < 0 ? WP_CA_CALL_BAD : WP_CA_CALL_STATUS;
		if (k.grpc_status < 0)
			snprintf(why, whylen, "no grpc-status in the answer");
		else if (strncmp(why, "grpc-message", 12) != 0)
			snprintf(why, whylen, "grpc-status %d", k.grpc_status);
		goto out;
	}
	res = WP_CA_CALL_BAD;
	if (k.body_len < 5 || 5 + ((size_t)k.body[1] << 24 | (size_t)k.body[2] << 16 |
	                           (size_t)k.body[3] << 8 | k.body[4]) !=
	                              k.body_len) {
		snprintf(why, whylen, "the answer is not one whole gRPC message");
		goto out;
	}
	*resp = k.body;
	*resp_len = k.body_len;
	k.body = NULL;
	why[0] = '\0';
	res = WP_CA_CALL_OK;
out:
	free(k.body);
	if (k.ssl != NULL)
		SSL_free(k.ssl);
	SSL_CTX_free(ctx);
	close(fd);
	ERR_clear_error();
	return res;
}
