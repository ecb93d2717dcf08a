/*
 * A small mTLS + HTTP/2 handshake load generator for bench/hbone_bench.py
 * (kernel sockets, OpenSSL; not a data path). Each connection does what a
 * ztunnel does before its first CONNECT: TCP connect, TLS 1.3 with a client
 * certificate, ALPN h2, no SNI, the HTTP/2 preface and SETTINGS, and waits
 * for the server's SETTINGS; then it closes. By default full handshakes
 * only (no session resumption), so the server pays ECDHE + certificate
 * signature and chain verification every time. With "resume", each process
 * keeps the newest session ticket the server gave it and offers it on its
 * next connection (TLS 1.3 PSK with (EC)DHE, as rustls clients such as
 * ztunnel do): after its first, full, handshake every one can resume.
 *
 *   hbone_hs IP PORT CERT KEY CA COUNT [PROCS [resume]]
 *
 * PROCS processes (default 1) each run COUNT/PROCS connections back to back.
 * Prints one JSON line: {"handshakes": n, "resumed": r, "failed": f,
 * "seconds": s}.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection; 0 when the server's HTTP/2 SETTINGS arrived. With
 * <sess>: offers *sess (when set) and leaves there the newest resumable
 * session; *resumed counts the resumptions. */
static int one(SSL_CTX *ctx, const struct sockaddr_in *sin, SSL_SESSION **sess, long *resumed)
{
	static const unsigned char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                                       "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
	unsigned char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0), one_ = 1, rc = -1;
	size_t have = 0;
	SSL *ssl = NULL;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_, sizeof(one_));
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		goto out;
	SSL_set_fd(ssl, fd);
	if (sess != NULL && *sess != NULL && SSL_set_session(ssl, *sess) != 1)
		goto out;
	if (SSL_connect(ssl) != 1)
		goto out;
	if (SSL_write(ssl, preface, sizeof(preface) - 1) <= 0)
		goto out;
	/* Frames until a SETTINGS (type 4) without ACK. */
	for (;;) {
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have));

		if (n <= 0)
			goto out;
		have += (size_t)n;
		while (have >= 9) {
			size_t len = ((size_t)buf[0] << 16) | ((size_t)buf[1] << 8) | buf[2];

			if (buf[3] == 4 && !(buf[4] & 1)) {
				rc = 0;
				goto got;
			}
			if (have < 9 + len)
				break;
			memmove(buf, buf + 9 + len, have - 9 - len);
			have -= 9 + len;
		}
	}
got:
	if (sess != NULL) {
		/* the ticket came before the SETTINGS (it follows the Finished) */
		SSL_SESSION *n = SSL_get1_session(ssl);

		*resumed += SSL_session_reused(ssl) == 1;
		if (n != NULL && SSL_SESSION_is_resumable(n)) {
			SSL_SESSION_free(*sess);
			*sess = n;
		} else {
			SSL_SESSION_free(n);
		}
	}
out:
	if (ssl != NULL) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	static const unsigned char alpn[] = "\x02h2";
	struct sockaddr_in sin;
	SSL_CTX *ctx;
	long count, procs = 1, ok = 0, failed = 0, resumed = 0;
	bool resume = false;
	double t0;
	int pipefd[2];

	if (argc < 7) {
		fprintf(stderr, "usage: hbone_hs IP PORT CERT KEY CA COUNT [PROCS [resume]]\n");
		return 2;
	}
	count = atol(argv[6]);
	if (argc > 7)
		procs = atol(argv[7]);
	if (argc > 8) {
		if (strcmp(argv[8], "resume") != 0) {
			fprintf(stderr, "hbone_hs: the 8th argument is \"resume\" or nothing\n");
			return 2;
		}
		resume = true;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1 || count <= 0 || procs <= 0)
		return 2;
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
	if (resume) {
		/* sessions are kept by hand (one()), not in OpenSSL's cache */
		SSL_CTX_set_session_cache_mode(ctx,
		                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, argv[5], NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (pipe(pipefd) != 0)
		return 1;
	t0 = now_s();
	for (long p = 0; p < procs; p++) {
		if (fork() == 0) {
			long mine = count / procs + (p < count % procs), good = 0, bad = 0, res = 0;
			SSL_SESSION *sess = NULL;

			for (long i = 0; i < mine; i++) {
				if (one(ctx, &sin, resume ? &sess : NULL, &res) == 0)
					good++;
				else
					bad++;
			}
			SSL_SESSION_free(sess);
			dprintf(pipefd[1], "%ld %ld %ld\n", good, bad, res);
			_exit(0);
		}
	}
	close(pipefd[1]);
	{
		FILE *f = fdopen(pipefd[0], "r");
		long g, b, r;

		while (f != NULL && fscanf(f, "%ld %ld %ld", &g, &b, &r) == 3) {
			ok += g;
			failed += b;
			resumed += r;
		}
	}
	while (wait(NULL) > 0)
		;
	printf("{\"handshakes\": %ld, \"resumed\": %ld, \"failed\": %ld, \"seconds\": %.3f}\n", ok,
	       resumed, failed, now_s() - t0);
	SSL_CTX_free(ctx);
	return failed ? 1 : 0;
}
