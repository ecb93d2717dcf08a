/*
 * The session timer wheel (see twheel.h): intrusive doubly linked lists
 * with a head per slot, so a node is unlinked without knowing its slot.
 */
#include <stddef.h>

#include "twheel.h"

static void head_init(struct wp_twheel_node *h)
{
	h->next = h->prev = h;
}

static void link_after(struct wp_twheel_node *h, struct wp_twheel_node *n)
{
	n->prev = h;
	n->next = h->next;
	h->next->prev = n;
	h->next = n;
}

void wp_twheel_init(struct wp_twheel *w, uint32_t tick_ms, uint64_t now_ms)
{
	w->tick_ms = tick_ms;
	w->next_tick = now_ms / tick_ms;
	head_init(&w->due);
	for (unsigned i = 0; i < WP_TWHEEL_SLOTS; i++)
		head_init(&w->slot[i]);
}

void wp_twheel_disarm(struct wp_twheel_node *n)
{
	if (n->next == NULL)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
}

void wp_twheel_arm(struct wp_twheel *w, struct wp_twheel_node *n, uint64_t at_ms)
{
	/* Rounded up: never before at_ms. A tick already expired is too late
	 * for its slot's turn: the next one. */
	uint64_t tick = (at_ms + w->tick_ms - 1) / w->tick_ms;

	if (tick < w->next_tick)
		tick = w->next_tick;
	if (n->next != NULL && n->tick == tick)
		return; /* already there: no list work */
	wp_twheel_disarm(n);
	n->tick = tick;
	link_after(&w->slot[tick & (WP_TWHEEL_SLOTS - 1)], n);
}

struct wp_twheel_node *wp_twheel_pop(struct wp_twheel *w, uint64_t now_ms)
{
	uint64_t now_tick = now_ms / w->tick_ms;

	for (;;) {
		while (w->due.next != &w->due) {
			struct wp_twheel_node *n = w->due.next;

			wp_twheel_disarm(n);
			if (n->tick <= now_tick)
				return n;
			/* a later turn: back into its slot */
			link_after(&w->slot[n->tick & (WP_TWHEEL_SLOTS - 1)], n);
		}
		if (w->next_tick > now_tick)
			return NULL;
		/* After a long stall every slot is visited once, not once a turn
		 * missed: the last WP_TWHEEL_SLOTS ticks cover them all. */
		if (now_tick - w->next_tick >= WP_TWHEEL_SLOTS)
			w->next_tick = now_tick - WP_TWHEEL_SLOTS + 1;
		{
			struct wp_twheel_node *h = &w->slot[w->next_tick & (WP_TWHEEL_SLOTS - 1)];

			if (h->next != h) { /* the whole list becomes the due list */
				w->due.next = h->next;
				w->due.prev = h->prev;
				h->next->prev = &w->due;
				h->prev->next = &w->due;
				head_init(h);
			}
		}
		w->next_tick++;
	}
}
