/* SPDX-License-Identifier: MIT */
/*
 * The latency histogram: percentiles on synthetic data sets whose exact answer
 * is known (nearest rank: the ceil(p% * n)-th smallest sample), the bucket
 * layout, the precision bound, merging, and the fixed size whatever is recorded.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "histogram.h"
#include "macro.h"

static Histogram *new_histogram(void) {
        Histogram *h = malloc(sizeof *h);

        ck_assert_ptr_nonnull(h);
        histogram_init(h);
        return h;
}

#define assert_percentile(h, p, expected)                                                           \
        do {                                                                                        \
                uint64_t _v = histogram_percentile((h), (p));                                       \
                ck_assert_msg(_v == (uint64_t)(expected), "p%g = %llu, expected %llu", (double)(p), \
                              (unsigned long long)_v, (unsigned long long)(expected));              \
        } while (0)

START_TEST(test_empty_histogram_reports_zero) {
        Histogram *h = new_histogram();

        ck_assert_uint_eq(h->count, 0);
        assert_percentile(h, 50, 0);
        assert_percentile(h, 100, 0);
        ck_assert_uint_eq(histogram_mean(h), 0);
        free(h);
}
END_TEST

START_TEST(test_values_1_to_100_give_exact_percentiles) {
        Histogram *h = new_histogram();

        /* Recorded in reverse, to show order does not matter. */
        for (uint64_t v = 100; v >= 1; v--)
                histogram_record(h, v);
        ck_assert_uint_eq(h->count, 100);
        assert_percentile(h, 0, 1);
        assert_percentile(h, 1, 1);
        assert_percentile(h, 50, 50);
        assert_percentile(h, 90, 90);
        assert_percentile(h, 99, 99);
        assert_percentile(h, 99.9, 100); /* rank ceil(99.9) = 100 */
        assert_percentile(h, 100, 100);
        ck_assert_uint_eq(histogram_mean(h), 50); /* 5050 / 100, rounded down */
        ck_assert_uint_eq(h->min, 1);
        ck_assert_uint_eq(h->max, 100);
        free(h);
}
END_TEST

START_TEST(test_rank_rounding_at_99_9_of_1000) {
        Histogram *h = new_histogram();

        /* 99.9% of 1000 is exactly rank 999: a floating-point 999.0000001 must not
         * push it to 1000. 999 samples of 5, then one of 7. */
        histogram_record_n(h, 5, 999);
        histogram_record(h, 7);
        assert_percentile(h, 99.9, 5);  /* rank 999 */
        assert_percentile(h, 99.91, 7); /* rank ceil(999.1) = 1000 */
        assert_percentile(h, 0.1, 5);   /* rank 1 */
        free(h);
}
END_TEST

START_TEST(test_constant_value_gives_that_value_everywhere) {
        Histogram *h = new_histogram();

        /* 12345 ns is not a bucket boundary: the cap at the exact max makes it exact. */
        histogram_record_n(h, 12345, 1000000);
        assert_percentile(h, 50, 12345);
        assert_percentile(h, 99.9, 12345);
        assert_percentile(h, 100, 12345);
        ck_assert_uint_eq(histogram_mean(h), 12345);
        free(h);
}
END_TEST

START_TEST(test_bimodal_set_has_exact_tail) {
        Histogram *h = new_histogram();

        /* 990 fast (100 ns) and 10 slow (1 ms) samples. */
        histogram_record_n(h, 100, 990);
        histogram_record_n(h, 1000000, 10);
        assert_percentile(h, 50, 100);
        assert_percentile(h, 99, 100);       /* rank 990: the last fast one */
        assert_percentile(h, 99.1, 1000000); /* rank 991: the first slow one */
        assert_percentile(h, 99.9, 1000000);
        assert_percentile(h, 100, 1000000);
        free(h);
}
END_TEST

START_TEST(test_bucket_tops_are_exact) {
        Histogram *h = new_histogram();
        uint64_t tops[5];

        /* Values at the top of their bucket are reported exactly at any magnitude. */
        tops[0] = histogram_bucket_high(histogram_index(1000)); /* 1003 */
        tops[1] = histogram_bucket_high(histogram_index(54321));
        tops[2] = histogram_bucket_high(histogram_index(2500000));
        tops[3] = histogram_bucket_high(histogram_index(UINT64_C(3000000000)));
        tops[4] = histogram_bucket_high(histogram_index(UINT64_C(600000000000)));
        ck_assert_uint_eq(tops[0], 1003);
        for (size_t i = 0; i < ELEMENTSOF(tops); i++)
                histogram_record_n(h, tops[i], 20);
        /* 100 samples, 20 per value: ranks 1-20, 21-40, ... */
        assert_percentile(h, 20, tops[0]);
        assert_percentile(h, 21, tops[1]);
        assert_percentile(h, 40, tops[1]);
        assert_percentile(h, 50, tops[2]);
        assert_percentile(h, 70, tops[3]);
        assert_percentile(h, 90, tops[4]);
        assert_percentile(h, 100, tops[4]);
        free(h);
}
END_TEST

START_TEST(test_buckets_tile_the_range_without_gaps) {
        /* Bucket i+1 starts right after bucket i ends; values map into their bucket. */
        ck_assert_uint_eq(histogram_bucket_low(0), 0);
        for (unsigned i = 0; i + 1 < HISTOGRAM_BUCKETS; i++) {
                uint64_t lo = histogram_bucket_low(i), hi = histogram_bucket_high(i);

                ck_assert_msg(lo <= hi, "bucket %u: %llu > %llu", i, (unsigned long long)lo,
                              (unsigned long long)hi);
                ck_assert_uint_eq(histogram_bucket_low(i + 1), hi + 1);
                ck_assert_uint_eq(histogram_index(lo), i);
                ck_assert_uint_eq(histogram_index(hi), i);
        }
        ck_assert_uint_eq(histogram_bucket_high(HISTOGRAM_BUCKETS - 1), HISTOGRAM_MAX);
}
END_TEST

START_TEST(test_small_values_have_their_own_bucket) {
        for (uint64_t v = 0; v < 2 * HISTOGRAM_SUB_COUNT; v++) {
                ck_assert_uint_eq(histogram_bucket_low(histogram_index(v)), v);
                ck_assert_uint_eq(histogram_bucket_high(histogram_index(v)), v);
        }
}
END_TEST

START_TEST(test_relative_error_is_below_one_percent) {
        Histogram *h = new_histogram();
        uint64_t x = 88172645463325252ull;

        /* Pseudo-random values over 9 decades, one at a time: the reported percentile
         * is never below the value and at most 1/128 above it. */
        for (int i = 0; i < 20000; i++) {
                uint64_t v;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v = 1 + x % UINT64_C(1000000000000);
                v >>= x % 37;
                histogram_init(h);
                histogram_record(h, v);
                histogram_record(h, HISTOGRAM_MAX); /* so the cap at max does not hide the bucket */
                ck_assert_uint_ge(histogram_percentile(h, 50), v);
                ck_assert_msg(histogram_percentile(h, 50) - v <= v / 128, "%llu reported as %llu",
                              (unsigned long long)v, (unsigned long long)histogram_percentile(h, 50));
        }
        free(h);
}
END_TEST

START_TEST(test_merge_equals_recording_everything_in_one) {
        Histogram *a = new_histogram(), *b = new_histogram(), *all = new_histogram();

        for (uint64_t v = 1; v <= 100000; v += 7) {
                histogram_record(v % 2 ? a : b, v * 13);
                histogram_record(all, v * 13);
        }
        histogram_merge(a, b);
        ck_assert_uint_eq(a->count, all->count);
        ck_assert_uint_eq(a->sum, all->sum);
        ck_assert_uint_eq(a->min, all->min);
        ck_assert_uint_eq(a->max, all->max);
        for (double p = 0; p <= 100; p += 0.5)
                ck_assert_uint_eq(histogram_percentile(a, p), histogram_percentile(all, p));
        free(a);
        free(b);
        free(all);
}
END_TEST

START_TEST(test_merge_of_an_empty_histogram_changes_nothing) {
        Histogram *a = new_histogram(), *empty = new_histogram();

        histogram_record(a, 42);
        histogram_merge(a, empty);
        ck_assert_uint_eq(a->count, 1);
        ck_assert_uint_eq(a->min, 42);
        histogram_merge(empty, a);
        ck_assert_uint_eq(empty->min, 42);
        ck_assert_uint_eq(empty->max, 42);
        free(a);
        free(empty);
}
END_TEST

START_TEST(test_values_beyond_the_range_are_clamped_but_max_is_exact) {
        Histogram *h = new_histogram();

        histogram_record(h, UINT64_C(1) << 50);
        histogram_record(h, UINT64_MAX);
        ck_assert_uint_eq(h->max, UINT64_MAX);
        ck_assert_uint_eq(histogram_index(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
        assert_percentile(h, 50, HISTOGRAM_MAX);
        assert_percentile(h, 100, UINT64_MAX);
        free(h);
}
END_TEST

START_TEST(test_size_is_bounded) {
        /* 36 KiB whatever is recorded: values up to about 73 minutes in ns. */
        ck_assert_uint_eq(HISTOGRAM_BUCKETS, 4608);
        ck_assert_uint_le(sizeof(Histogram), 40 * 1024);
        ck_assert_uint_ge(HISTOGRAM_MAX, UINT64_C(3600) * 1000000000u);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("histogram");
        TCase *tc;

        tc = tcase_create("percentiles");
        tcase_add_test(tc, test_empty_histogram_reports_zero);
        tcase_add_test(tc, test_values_1_to_100_give_exact_percentiles);
        tcase_add_test(tc, test_rank_rounding_at_99_9_of_1000);
        tcase_add_test(tc, test_constant_value_gives_that_value_everywhere);
        tcase_add_test(tc, test_bimodal_set_has_exact_tail);
        tcase_add_test(tc, test_bucket_tops_are_exact);
        suite_add_tcase(s, tc);

        tc = tcase_create("layout");
        tcase_add_test(tc, test_buckets_tile_the_range_without_gaps);
        tcase_add_test(tc, test_small_values_have_their_own_bucket);
        tcase_add_test(tc, test_relative_error_is_below_one_percent);
        tcase_add_test(tc, test_values_beyond_the_range_are_clamped_but_max_is_exact);
        tcase_add_test(tc, test_size_is_bounded);
        suite_add_tcase(s, tc);

        tc = tcase_create("merge");
        tcase_add_test(tc, test_merge_equals_recording_everything_in_one);
        tcase_add_test(tc, test_merge_of_an_empty_histogram_changes_nothing);
        suite_add_tcase(s, tc);

        return s;
}
