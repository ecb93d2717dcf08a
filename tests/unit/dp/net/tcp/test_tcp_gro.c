/*
 * Receive coalescing (wp_tcp_config.rx_coalesce, ports.[N].gro): crafted
 * segments from the fake peer stand for one receive burst, then
 * wp_tcp_rx_flush() ends it. The app must see a burst's in-order data in one
 * callback and the peer one ACK for it, with nothing read or sent before the
 * flush; a segment that changes the state (FIN, RST) must find the filed
 * data already read; a connection released or recycled while filed must be
 * skipped; a full queue must serve at once rather than lose anything.
 */
#include "tcp_fake_peer.h"

static int data_calls;

static size_t counting_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	data_calls++;
	return app_data(c, arg, d, len);
}

static void counting_eof(struct wp_tcp_conn *c, void *arg)
{
	/* EOF comes after every byte: the test's segments carry 1000 each */
	assert_int_equal(F.rxlen % 1000, 0);
	assert_true(F.rxlen > 0);
	app_eof(c, arg);
}

static void counting_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	assert_true(F.rxlen > 0); /* the data before the RST was read first */
	app_closed(c, arg, why);
}

static const struct wp_tcp_callbacks counting_cbs = {
        .data = counting_data,
        .eof = counting_eof,
        .writable = app_writable,
        .closed = counting_closed,
};

static uint8_t seg[1000];

static void start_gro(bool coalesce)
{
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.mss = 1000;
	cfg.rx_coalesce = coalesce;
	start(&cfg);
	open_passive(false);
	/* the handshake's ACK may have been filed too: end that burst */
	wp_tcp_rx_flush(F.st, F.now);
	wp_tcp_conn_set_callbacks(F.conn, &counting_cbs, NULL);
	data_calls = 0;
	for (unsigned i = 0; i < sizeof(seg); i++)
		seg[i] = (uint8_t)(i * 7 + 1);
}

/* Six full segments in one burst: one read of 6000 bytes, one ACK of all. */
static void test_gro_one_read_one_ack(void **state)
{
	(void)state;
	start_gro(true);
	unsigned n0 = ncap;
	for (int i = 0; i < 6; i++)
		peer(TH_ACK, seg, sizeof(seg));
	assert_int_equal(F.rxlen, 0);
	assert_int_equal(ncap, n0);
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 1);
	assert_int_equal(data_calls, 1);
	assert_int_equal(F.rxlen, 6000);
	for (int i = 0; i < 6; i++)
		assert_memory_equal(F.rx + 1000 * i, seg, sizeof(seg));
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).flags, TH_ACK);
	assert_int_equal(out(-1).ack, F.pseq);
	assert_int_equal(F.ctr[WP_CTR_TCP_RX_COALESCED], 5);
	/* an empty burst serves nothing and sends nothing */
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 0);
	assert_int_equal(ncap, n0 + 1);
}

/* The same burst without coalescing: six reads, an ACK every second segment. */
static void test_gro_off(void **state)
{
	(void)state;
	start_gro(false);
	unsigned n0 = ncap;
	for (int i = 0; i < 6; i++)
		peer(TH_ACK, seg, sizeof(seg));
	assert_int_equal(data_calls, 6);
	assert_int_equal(ncap, n0 + 3);
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RX_COALESCED], 0);
}

/* Data then FIN in one burst: the data is read, then EOF; the FIN is ACKed at once. */
static void test_gro_fin_after_data(void **state)
{
	(void)state;
	start_gro(true);
	unsigned n0 = ncap;
	peer(TH_ACK, seg, sizeof(seg));
	peer(TH_ACK, seg, sizeof(seg));
	peer(TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(F.rxlen, 2000);
	assert_int_equal(data_calls, 1);
	assert_int_equal(F.eof, 1);
	assert_int_equal(F.conn->state, WP_TCP_CLOSE_WAIT);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).ack, F.pseq);
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 0); /* served with the FIN */
}

/* Data then RST in one burst: the app reads the data before it hears of the reset. */
static void test_gro_rst_after_data(void **state)
{
	(void)state;
	start_gro(true);
	peer(TH_ACK, seg, sizeof(seg));
	peer(TH_ACK | TH_PSH, seg, sizeof(seg));
	peer(TH_RST | TH_ACK, NULL, 0);
	assert_int_equal(F.rxlen, 2000);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_RESET);
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 0);
	assert_no_blocks();
}

/* Released while filed, then its block reused by a new connection in the same burst. */
static void test_gro_released_while_filed(void **state)
{
	(void)state;
	start_gro(true);
	struct wp_tcp_conn *old = F.conn;
	peer(TH_ACK, seg, sizeof(seg));
	wp_tcp_abort(old); /* the app drops it before the burst ends */
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 0);
	assert_int_equal(F.rxlen, 0);
	/* again, and a new connection takes the recycled block before the
	 * flush: the queue then names the block twice, served once */
	F.conn = NULL;
	open_passive(false);
	wp_tcp_rx_flush(F.st, F.now);
	wp_tcp_conn_set_callbacks(F.conn, &counting_cbs, NULL);
	peer(TH_ACK, seg, sizeof(seg));
	struct wp_tcp_conn *first = F.conn;
	wp_tcp_abort(first);
	F.conn = NULL;
	F.pport = PPORT + 1;
	open_passive(false);
	assert_ptr_equal(F.conn, first); /* the freed block, reused */
	wp_tcp_conn_set_callbacks(F.conn, &counting_cbs, NULL);
	peer(TH_ACK, seg, sizeof(seg));
	assert_int_equal(F.rxlen, 0);
	assert_int_equal(wp_tcp_rx_flush(F.st, F.now), 1);
	assert_int_equal(F.rxlen, 1000);
	assert_int_equal(data_calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_gro_one_read_one_ack, teardown),
	        cmocka_unit_test_teardown(test_gro_off, teardown),
	        cmocka_unit_test_teardown(test_gro_fin_after_data, teardown),
	        cmocka_unit_test_teardown(test_gro_rst_after_data, teardown),
	        cmocka_unit_test_teardown(test_gro_released_while_filed, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
