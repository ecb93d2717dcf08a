/*
 * Retry decisions (retry.h): Envoy's retryOn semantics over the compiled
 * policy bits. A reset, a close before the head or a per-try timeout is
 * retried under reset, 5xx and gateway-error (Envoy counts a reset as a
 * 5xx); a connect failure under those and connect-failure; a refused
 * stream under those and refused-stream. Responses: 5xx any status >= 500,
 * gateway-error 502/503/504, retriable-4xx 409, the retriable codes, and
 * the gRPC conditions on a trailers-only head's grpc-status.
 */
#include "retry.h"
#include "wp/rand.h"

#define ANY_RESET (WP_ROUTE_RETRY_RESET | WP_ROUTE_RETRY_5XX | WP_ROUTE_RETRY_GATEWAY_ERROR)

bool wp_retry_on_event(const struct wp_route_retry *p, enum wp_retry_ev ev)
{
	switch (ev) {
	case WP_RETRY_EV_CONNECT:
		return (p->on & (ANY_RESET | WP_ROUTE_RETRY_CONNECT_FAILURE)) != 0;
	case WP_RETRY_EV_REFUSED:
		return (p->on & (ANY_RESET | WP_ROUTE_RETRY_REFUSED_STREAM)) != 0;
	case WP_RETRY_EV_RESET:
	case WP_RETRY_EV_TIMEOUT:
		return (p->on & ANY_RESET) != 0;
	}
	return false;
}

bool wp_retry_on_status(const struct wp_route_retry *p, uint16_t status, int grpc)
{
	if ((p->on & WP_ROUTE_RETRY_5XX) && status >= 500 && status <= 599)
		return true;
	if ((p->on & WP_ROUTE_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
		return true;
	if ((p->on & WP_ROUTE_RETRY_RETRIABLE_4XX) && status == 409)
		return true;
	for (uint16_t i = 0; i < p->n_codes && i < WP_ROUTE_RETRY_MAX_CODES; i++)
		if (p->codes[i] == status)
			return true;
	switch (grpc) {
	case 1:
		return (p->on & WP_ROUTE_RETRY_CANCELLED) != 0;
	case 4:
		return (p->on & WP_ROUTE_RETRY_DEADLINE) != 0;
	case 8:
		return (p->on & WP_ROUTE_RETRY_RES_EXHAUSTED) != 0;
	case 13:
		return (p->on & WP_ROUTE_RETRY_INTERNAL) != 0;
	case 14:
		return (p->on & WP_ROUTE_RETRY_UNAVAILABLE) != 0;
	default:
		return false;
	}
}

bool wp_retry_needs_hold(const struct wp_route_retry *p)
{
	return p->attempts > 0 && ((p->on & ~WP_ROUTE_RETRY_CONNECT_FAILURE) || p->n_codes > 0);
}

uint32_t wp_retry_backoff_ms(const struct wp_route_retry *p, uint32_t n, uint64_t *rng)
{
	uint64_t base = p->backoff_ms ? p->backoff_ms : WP_RETRY_BACKOFF_BASE_MS;
	uint64_t cap = base * WP_RETRY_BACKOFF_MAX_MUL, win;

	if (n == 0)
		n = 1;
	win = n >= 8 ? cap : ((1ull << n) - 1) * base; /* 2^8 - 1 > 10: capped anyway */
	if (win > cap)
		win = cap;
	return (uint32_t)wp_rand_below(rng, win);
}

int wp_retry_grpc_status(const char *v, uint32_t len)
{
	int st = 0;

	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	if (len == 0 || len > 2)
		return -1;
	for (uint32_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		st = st * 10 + (v[i] - '0');
	}
	return st;
}
