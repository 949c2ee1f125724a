/* SPDX-License-Identifier: MIT */
/*
 * The per-duration FIFO timer queues: arming order is deadline order, only the
 * head can be due, and every operation keeps the links and the count right.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "macro.h"
#include "timer.h"

/* Walks the queue and checks it against the expected entries, in order; also checks the back links. */
static void assert_queue(const TimerQueue *q, TimerEntry *const *expected, size_t n) {
        const TimerEntry *prev = &q->head;
        size_t i = 0;

        for (TimerEntry *e = timer_queue_first(q); e; e = timer_queue_next(q, e)) {
                ck_assert_uint_lt(i, n);
                ck_assert_msg(e == expected[i], "entry %zu is not the expected one", i);
                ck_assert_ptr_eq(e->prev, prev);
                ck_assert(timer_entry_armed(e));
                if (i > 0)
                        ck_assert_uint_le(prev->deadline, e->deadline);
                prev = e;
                i++;
        }
        ck_assert_uint_eq(i, n);
        ck_assert_uint_eq(q->n_entries, n);
        ck_assert(timer_queue_empty(q) == (n == 0));
        ck_assert_ptr_eq(q->head.prev, n > 0 ? expected[n - 1] : &q->head);
        ck_assert_uint_eq(timer_queue_next_deadline(q), n > 0 ? expected[0]->deadline : UINT64_MAX);
}

START_TEST(test_new_queue_is_empty) {
        TimerQueue q;

        timer_queue_init(&q, 30);
        ck_assert(timer_queue_empty(&q));
        ck_assert_uint_eq(q.n_entries, 0);
        ck_assert_ptr_null(timer_queue_first(&q));
        ck_assert_ptr_null(timer_queue_peek_expired(&q, UINT64_MAX));
        ck_assert_uint_eq(timer_queue_next_deadline(&q), UINT64_MAX);
}
END_TEST

START_TEST(test_add_arms_with_now_plus_duration) {
        TimerQueue q;
        TimerEntry e = { 0 };

        timer_queue_init(&q, 30);
        ck_assert(!timer_entry_armed(&e));
        timer_queue_add(&q, &e, 100);
        ck_assert(timer_entry_armed(&e));
        ck_assert_uint_eq(e.deadline, 130);
        ck_assert_uint_eq(timer_queue_next_deadline(&q), 130);
        ck_assert_ptr_eq(timer_queue_first(&q), &e);
        ck_assert_ptr_null(timer_queue_next(&q, &e));
        assert_queue(&q, (TimerEntry *[]){ &e }, 1);
}
END_TEST

START_TEST(test_peek_expired_fires_at_the_deadline_not_before) {
        TimerQueue q;
        TimerEntry e = { 0 };

        timer_queue_init(&q, 30);
        timer_queue_add(&q, &e, 100);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 0));
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 129));
        ck_assert_ptr_eq(timer_queue_peek_expired(&q, 130), &e);
        ck_assert_ptr_eq(timer_queue_peek_expired(&q, 131), &e);
        ck_assert_ptr_eq(timer_queue_peek_expired(&q, UINT64_MAX), &e);
        /* Peeking does not remove. */
        ck_assert_uint_eq(q.n_entries, 1);
        ck_assert(timer_entry_armed(&e));
}
END_TEST

START_TEST(test_zero_duration_is_due_immediately) {
        TimerQueue q;
        TimerEntry e = { 0 };

        timer_queue_init(&q, 0);
        timer_queue_add(&q, &e, 500);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 499));
        ck_assert_ptr_eq(timer_queue_peek_expired(&q, 500), &e);
}
END_TEST

START_TEST(test_fifo_order_is_deadline_order) {
        static const uint64_t now[] = { 0, 1, 1, 5, 5, 5, 9, 20, 21, 21 };
        TimerEntry e[ELEMENTSOF(now)] = { { 0 } };
        TimerEntry *order[ELEMENTSOF(now)];
        TimerQueue q;

        timer_queue_init(&q, 10);
        for (size_t i = 0; i < ELEMENTSOF(now); i++) {
                timer_queue_add(&q, &e[i], now[i]);
                ck_assert_uint_eq(e[i].deadline, now[i] + 10);
                order[i] = &e[i];
        }
        assert_queue(&q, order, ELEMENTSOF(now));

        /* Expire in steps: each step yields exactly the entries due by then, oldest first. */
        for (uint64_t t = 0, i = 0; t <= 40; t++) {
                TimerEntry *x;

                while ((x = timer_queue_peek_expired(&q, t))) {
                        ck_assert_ptr_eq(x, &e[i]);
                        ck_assert_uint_le(x->deadline, t);
                        timer_queue_remove(&q, x);
                        i++;
                }
                ck_assert(i == ELEMENTSOF(now) || e[i].deadline > t);
        }
        ck_assert(timer_queue_empty(&q));
}
END_TEST

START_TEST(test_add_with_lagging_clock_keeps_deadlines_ordered) {
        TimerEntry a = { 0 }, b = { 0 };
        TimerQueue q;

        /* Two threads' clock readings may arrive out of order; the queue must stay sorted. */
        timer_queue_init(&q, 30);
        timer_queue_add(&q, &a, 100);
        timer_queue_add(&q, &b, 90);
        ck_assert_uint_ge(b.deadline, a.deadline);
        ck_assert_uint_le(b.deadline, 130);
        assert_queue(&q, (TimerEntry *[]){ &a, &b }, 2);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 129));
}
END_TEST

START_TEST(test_rearm_moves_entry_to_tail_with_new_deadline) {
        TimerEntry a = { 0 }, b = { 0 }, c = { 0 };
        TimerQueue q;

        timer_queue_init(&q, 30);
        timer_queue_add(&q, &a, 0);
        timer_queue_add(&q, &b, 1);
        timer_queue_add(&q, &c, 2);

        timer_queue_rearm(&q, &a, 5);
        ck_assert_uint_eq(a.deadline, 35);
        assert_queue(&q, (TimerEntry *[]){ &b, &c, &a }, 3);

        timer_queue_rearm(&q, &c, 7);
        ck_assert_uint_eq(c.deadline, 37);
        assert_queue(&q, (TimerEntry *[]){ &b, &a, &c }, 3);

        /* b was due at 31; rearmed it is not. */
        ck_assert_ptr_eq(timer_queue_peek_expired(&q, 31), &b);
        timer_queue_rearm(&q, &b, 31);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 34));
        assert_queue(&q, (TimerEntry *[]){ &a, &c, &b }, 3);
}
END_TEST

START_TEST(test_rearm_of_the_tail_updates_its_deadline_in_place) {
        TimerEntry a = { 0 }, b = { 0 };
        TimerQueue q;

        timer_queue_init(&q, 30);
        timer_queue_add(&q, &a, 0);
        timer_queue_add(&q, &b, 10);

        /* Same time: nothing changes. */
        timer_queue_rearm(&q, &b, 10);
        ck_assert_uint_eq(b.deadline, 40);
        assert_queue(&q, (TimerEntry *[]){ &a, &b }, 2);

        /* Later: the tail stays the tail, with the later deadline. */
        timer_queue_rearm(&q, &b, 25);
        ck_assert_uint_eq(b.deadline, 55);
        assert_queue(&q, (TimerEntry *[]){ &a, &b }, 2);

        /* The only entry, re-armed later. */
        timer_queue_remove(&q, &a);
        timer_queue_rearm(&q, &b, 50);
        ck_assert_uint_eq(b.deadline, 80);
        assert_queue(&q, (TimerEntry *[]){ &b }, 1);
}
END_TEST

static void add_three(TimerQueue *q, TimerEntry *a, TimerEntry *b, TimerEntry *c) {
        timer_queue_init(q, 30);
        timer_queue_add(q, a, 0);
        timer_queue_add(q, b, 1);
        timer_queue_add(q, c, 2);
}

START_TEST(test_remove_head_makes_the_next_entry_due_first) {
        TimerEntry a = { 0 }, b = { 0 }, c = { 0 };
        TimerQueue q;

        add_three(&q, &a, &b, &c);
        timer_queue_remove(&q, &a);
        ck_assert(!timer_entry_armed(&a));
        assert_queue(&q, (TimerEntry *[]){ &b, &c }, 2);
        ck_assert_uint_eq(timer_queue_next_deadline(&q), 31);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, 30));
}
END_TEST

START_TEST(test_remove_middle_links_its_neighbours) {
        TimerEntry a = { 0 }, b = { 0 }, c = { 0 };
        TimerQueue q;

        add_three(&q, &a, &b, &c);
        timer_queue_remove(&q, &b);
        ck_assert(!timer_entry_armed(&b));
        assert_queue(&q, (TimerEntry *[]){ &a, &c }, 2);
        ck_assert_ptr_eq(timer_queue_next(&q, &a), &c);
}
END_TEST

START_TEST(test_remove_tail_makes_the_previous_entry_the_tail) {
        TimerEntry a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
        TimerQueue q;

        add_three(&q, &a, &b, &c);
        timer_queue_remove(&q, &c);
        ck_assert(!timer_entry_armed(&c));
        assert_queue(&q, (TimerEntry *[]){ &a, &b }, 2);

        /* New entries go after the new tail. */
        timer_queue_add(&q, &d, 3);
        assert_queue(&q, (TimerEntry *[]){ &a, &b, &d }, 3);
}
END_TEST

START_TEST(test_remove_last_entry_empties_the_queue) {
        TimerEntry a = { 0 };
        TimerQueue q;

        timer_queue_init(&q, 30);
        timer_queue_add(&q, &a, 0);
        timer_queue_remove(&q, &a);
        assert_queue(&q, NULL, 0);
        ck_assert_ptr_null(timer_queue_peek_expired(&q, UINT64_MAX));

        /* A removed entry can be armed again. */
        timer_queue_add(&q, &a, 100);
        ck_assert_uint_eq(a.deadline, 130);
        assert_queue(&q, (TimerEntry *[]){ &a }, 1);
}
END_TEST

START_TEST(test_walk_can_remove_the_current_entry) {
        enum { N = 10 };
        TimerEntry e[N] = { { 0 } };
        TimerEntry *odd[N / 2];
        TimerQueue q;
        size_t i = 0;

        timer_queue_init(&q, 30);
        for (size_t k = 0; k < N; k++)
                timer_queue_add(&q, &e[k], k);

        /* Remove every even entry while walking, fetching the successor first. */
        for (TimerEntry *x = timer_queue_first(&q), *next; x; x = next, i++) {
                next = timer_queue_next(&q, x);
                ck_assert_ptr_eq(x, &e[i]);
                if (i % 2 == 0)
                        timer_queue_remove(&q, x);
        }
        ck_assert_uint_eq(i, N);
        for (size_t k = 0; k < N / 2; k++)
                odd[k] = &e[2 * k + 1];
        assert_queue(&q, odd, N / 2);

        /* Then all of them, as when a worker stops. */
        i = 0;
        for (TimerEntry *x = timer_queue_first(&q), *next; x; x = next, i++) {
                next = timer_queue_next(&q, x);
                timer_queue_remove(&q, x);
        }
        ck_assert_uint_eq(i, N / 2);
        assert_queue(&q, NULL, 0);
        for (size_t k = 0; k < N; k++)
                ck_assert(!timer_entry_armed(&e[k]));
}
END_TEST

START_TEST(test_hundred_thousand_entries_expire_in_arming_order) {
        enum { N = 100000 };
        TimerEntry *e = calloc(N, sizeof *e);
        TimerQueue q;
        size_t expired = 0, prev_idx = 0;
        uint64_t last = 0;

        ck_assert_ptr_nonnull(e);
        timer_queue_init(&q, 1000);
        /* Seven arms per millisecond, so many entries share a deadline. */
        for (size_t i = 0; i < N; i++)
                timer_queue_add(&q, &e[i], i / 7);
        ck_assert_uint_eq(q.n_entries, N);

        /* Re-arm every tenth one, as traffic would: they move behind everything armed so far. */
        for (size_t i = 0; i < N; i += 10)
                timer_queue_rearm(&q, &e[i], N / 7);
        ck_assert_uint_eq(q.n_entries, N);

        for (uint64_t now = 0; expired < N; now += 3) {
                TimerEntry *x;

                while ((x = timer_queue_peek_expired(&q, now))) {
                        size_t idx = (size_t)(x - e);

                        ck_assert_uint_ge(x->deadline, last);
                        ck_assert_uint_le(x->deadline, now);
                        /* First the untouched entries in order, then the re-armed ones in order. */
                        if (expired < N - N / 10) {
                                ck_assert_uint_ne(idx % 10, 0);
                                ck_assert(expired == 0 || idx > prev_idx);
                        } else
                                ck_assert_uint_eq(idx, (expired - (N - N / 10)) * 10);
                        last = x->deadline;
                        prev_idx = idx;
                        timer_queue_remove(&q, x);
                        expired++;
                        ck_assert_uint_eq(q.n_entries, N - expired);
                }
                ck_assert(timer_queue_next_deadline(&q) > now);
                ck_assert_uint_lt(now, 2 * N);
        }
        ck_assert(timer_queue_empty(&q));
        free(e);
}
END_TEST

START_TEST(test_n_entries_tracks_add_remove_and_rearm) {
        TimerEntry e[5] = { { 0 } };
        TimerQueue q;

        timer_queue_init(&q, 10);
        for (size_t i = 0; i < 5; i++) {
                timer_queue_add(&q, &e[i], i);
                ck_assert_uint_eq(q.n_entries, i + 1);
        }
        for (size_t i = 0; i < 5; i++) {
                timer_queue_rearm(&q, &e[i], 100 + i);
                ck_assert_uint_eq(q.n_entries, 5);
        }
        timer_queue_remove(&q, &e[2]);
        ck_assert_uint_eq(q.n_entries, 4);
        timer_queue_add(&q, &e[2], 200);
        ck_assert_uint_eq(q.n_entries, 5);
        for (size_t i = 0; i < 5; i++) {
                timer_queue_remove(&q, &e[i]);
                ck_assert_uint_eq(q.n_entries, 4 - i);
        }
        assert_queue(&q, NULL, 0);
}
END_TEST

START_TEST(test_queues_are_independent) {
        TimerEntry a = { 0 }, b = { 0 };
        TimerQueue idle, linger;

        timer_queue_init(&idle, 30000);
        timer_queue_init(&linger, 2000);
        timer_queue_add(&idle, &a, 0);
        timer_queue_add(&linger, &b, 0);
        ck_assert_uint_eq(a.deadline, 30000);
        ck_assert_uint_eq(b.deadline, 2000);
        ck_assert_ptr_eq(timer_queue_peek_expired(&linger, 2000), &b);
        ck_assert_ptr_null(timer_queue_peek_expired(&idle, 2000));

        /* Moving an entry from one queue to another, as a connection does when it starts lingering. */
        timer_queue_remove(&idle, &a);
        timer_queue_add(&linger, &a, 100);
        assert_queue(&idle, NULL, 0);
        assert_queue(&linger, (TimerEntry *[]){ &b, &a }, 2);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("timer");
        TCase *tc;

        tc = tcase_create("queue");
        tcase_add_test(tc, test_new_queue_is_empty);
        tcase_add_test(tc, test_add_arms_with_now_plus_duration);
        tcase_add_test(tc, test_peek_expired_fires_at_the_deadline_not_before);
        tcase_add_test(tc, test_zero_duration_is_due_immediately);
        tcase_add_test(tc, test_fifo_order_is_deadline_order);
        tcase_add_test(tc, test_add_with_lagging_clock_keeps_deadlines_ordered);
        tcase_add_test(tc, test_rearm_moves_entry_to_tail_with_new_deadline);
        tcase_add_test(tc, test_rearm_of_the_tail_updates_its_deadline_in_place);
        tcase_add_test(tc, test_remove_head_makes_the_next_entry_due_first);
        tcase_add_test(tc, test_remove_middle_links_its_neighbours);
        tcase_add_test(tc, test_remove_tail_makes_the_previous_entry_the_tail);
        tcase_add_test(tc, test_remove_last_entry_empties_the_queue);
        tcase_add_test(tc, test_walk_can_remove_the_current_entry);
        tcase_add_test(tc, test_n_entries_tracks_add_remove_and_rearm);
        tcase_add_test(tc, test_queues_are_independent);
        suite_add_tcase(s, tc);

        tc = tcase_create("scale");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_hundred_thousand_entries_expire_in_arming_order);
        suite_add_tcase(s, tc);

        return s;
}
