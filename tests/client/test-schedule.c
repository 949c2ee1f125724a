/* SPDX-License-Identifier: MIT */
/*
 * The open-loop schedule: every thread's requests interleave into one global
 * schedule, a request is due exactly at its time, nothing at or after the end
 * is due, long runs at the highest rate do not overflow, and the closed loop is
 * only bounded by the budget.
 */
#include <check.h>
#include <stdint.h>

#include "schedule.h"

#define T0  5000000000ull /* any origin but 0 */
#define SEC 1000000000ull

static const uint64_t rates[] = { 1, 3, 7, 1000, 999983, 1000000000 };
static const unsigned threads[] = { 1, 2, 3, 7 };

/* ck_assert_*() records every call; in the loops below only a failure is worth a record. */
#define expect_eq(a, b, ...)                       \
        do {                                       \
                if ((a) != (b))                    \
                        ck_abort_msg(__VA_ARGS__); \
        } while (0)

static Schedule sched(uint64_t rate, unsigned id, unsigned n_threads) {
        return (Schedule){ .t0 = T0, .rate = rate, .id = id, .n_threads = n_threads };
}

START_TEST(test_one_thread_at_a_round_rate) {
        Schedule s = sched(1000, 0, 1);

        ck_assert_uint_eq(schedule_time(&s, 0), T0);
        ck_assert_uint_eq(schedule_time(&s, 1), T0 + 1000000);
        ck_assert_uint_eq(schedule_time(&s, 2500), T0 + 2500000000ull);
        ck_assert_uint_eq(schedule_due(&s, T0 - 1), 0);
        ck_assert_uint_eq(schedule_due(&s, T0), 1);
        ck_assert_uint_eq(schedule_due(&s, T0 + 999999), 1);
        ck_assert_uint_eq(schedule_due(&s, T0 + 1000000), 2);
        ck_assert_uint_eq(schedule_due(&s, T0 + SEC), 1001);
}
END_TEST

/* Request i is due at its time, and not a nanosecond before. */
START_TEST(test_due_is_the_inverse_of_time) {
        for (size_t r = 0; r < sizeof rates / sizeof *rates; r++)
                for (size_t t = 0; t < sizeof threads / sizeof *threads; t++)
                        for (unsigned id = 0; id < threads[t]; id++) {
                                Schedule s = sched(rates[r], id, threads[t]);

                                for (uint64_t i = 0; i < 2000; i++) {
                                        uint64_t at = schedule_time(&s, i);

                                        expect_eq(schedule_due(&s, at), i + 1,
                                                  "rate %llu, thread %u of %u: "
                                                  "request %llu not due at its time",
                                                  (unsigned long long)rates[r], id, threads[t],
                                                  (unsigned long long)i);
                                        expect_eq(schedule_due(&s, at - 1), i,
                                                  "rate %llu, thread %u of %u: "
                                                  "request %llu due before its time",
                                                  (unsigned long long)rates[r], id, threads[t],
                                                  (unsigned long long)i);
                                }
                        }
}
END_TEST

/* Thread k of T takes global requests k, k+T, ...: together they are the schedule of
 * one thread, each global request exactly once. */
START_TEST(test_threads_share_one_schedule) {
        for (size_t r = 0; r < sizeof rates / sizeof *rates; r++)
                for (size_t t = 1; t < sizeof threads / sizeof *threads; t++) {
                        Schedule one = sched(rates[r], 0, 1);
                        unsigned n = threads[t];

                        for (uint64_t j = 0; j < 3000; j++) {
                                Schedule s = sched(rates[r], (unsigned)(j % n), n);

                                expect_eq(schedule_time(&s, j / n), schedule_time(&one, j),
                                          "rate %llu, %u threads: global request %llu at another time",
                                          (unsigned long long)rates[r], n, (unsigned long long)j);
                        }
                        /* At any moment, the threads' due requests add up to the global count. */
                        for (uint64_t now = T0; now < T0 + 3 * SEC; now += SEC / 7 + 12345) {
                                uint64_t sum = 0;

                                for (unsigned id = 0; id < n; id++) {
                                        Schedule s = sched(rates[r], id, n);

                                        sum += schedule_due(&s, now);
                                }
                                ck_assert_uint_eq(sum, schedule_due(&one, now));
                        }
                }
}
END_TEST

START_TEST(test_nothing_is_due_from_the_end_on) {
        Schedule s = sched(1000, 1, 2); /* requests at T0 + 1ms, 3ms, 5ms, ... */

        s.end = T0 + 5000000;
        ck_assert_uint_eq(schedule_due(&s, T0 + 4999999), 2);
        ck_assert_uint_eq(schedule_due(&s, s.end), 2); /* the one at 5ms is not */
        ck_assert_uint_eq(schedule_due(&s, s.end + 10 * SEC), 2);
        s.end = T0 + 5000001;
        ck_assert_uint_eq(schedule_due(&s, s.end + 10 * SEC), 3);
        /* Thread 1's first request is at 1ms: before it nothing is due. */
        ck_assert_uint_eq(schedule_due(&s, T0), 0);
        ck_assert_uint_eq(schedule_due(&s, T0 + 999999), 0);
        ck_assert_uint_eq(schedule_due(&s, T0 + 1000000), 1);
}
END_TEST

/* A day at a billion per second, on 7 threads: still exact. */
START_TEST(test_long_runs_do_not_overflow) {
        const uint64_t day = 86400;

        for (unsigned id = 0; id < 7; id++) {
                Schedule s = sched(1000000000, id, 7);
                uint64_t i = day * 1000000000 / 7;
                uint64_t at = schedule_time(&s, i);

                ck_assert_uint_eq(at, T0 + id + i * 7);
                ck_assert_uint_eq(schedule_due(&s, at), i + 1);
                ck_assert_uint_eq(schedule_due(&s, at - 1), i);
        }
        for (uint64_t rate = 999999937; rate > 1; rate /= 3) {
                Schedule s = sched(rate, 2, 3);
                uint64_t i = day * rate / 3, at = schedule_time(&s, i);

                ck_assert_uint_ge(at, T0 + day * SEC - SEC);
                ck_assert_uint_le(at, T0 + day * SEC + SEC);
                ck_assert_uint_eq(schedule_due(&s, at), i + 1);
                ck_assert_uint_eq(schedule_due(&s, at - 1), i);
        }
}
END_TEST

START_TEST(test_closed_loop_is_bounded_by_the_budget) {
        Schedule s = sched(0, 0, 1);

        ck_assert_uint_eq(schedule_available(&s, T0, 10, 0), 10);
        ck_assert_uint_eq(schedule_available(&s, T0, 10, 7), 3);
        ck_assert_uint_eq(schedule_available(&s, T0, 10, 10), 0);
        ck_assert_uint_eq(schedule_available(&s, T0 + 100 * SEC, 10, 11), 0);
        ck_assert_uint_eq(schedule_available(&s, 0, UINT64_MAX, 123), UINT64_MAX - 123);
}
END_TEST

START_TEST(test_open_loop_is_bounded_by_due_and_budget) {
        Schedule s = sched(1000, 0, 1);

        ck_assert_uint_eq(schedule_available(&s, T0 - 1, UINT64_MAX, 0), 0);
        ck_assert_uint_eq(schedule_available(&s, T0, UINT64_MAX, 0), 1);
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, UINT64_MAX, 0), 1001);
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, UINT64_MAX, 1000), 1);
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, UINT64_MAX, 1001), 0);
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, UINT64_MAX, 5000), 0); /* ahead: never negative */
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, 600, 0), 600);
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, 600, 600), 0);
        s.end = T0 + 10000000;
        ck_assert_uint_eq(schedule_available(&s, T0 + SEC, UINT64_MAX, 4), 6);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("schedule");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_one_thread_at_a_round_rate);
        tcase_add_test(tc, test_due_is_the_inverse_of_time);
        tcase_add_test(tc, test_threads_share_one_schedule);
        tcase_add_test(tc, test_nothing_is_due_from_the_end_on);
        tcase_add_test(tc, test_long_runs_do_not_overflow);
        tcase_add_test(tc, test_closed_loop_is_bounded_by_the_budget);
        tcase_add_test(tc, test_open_loop_is_bounded_by_due_and_budget);
        suite_add_tcase(s, tc);
        return s;
}
