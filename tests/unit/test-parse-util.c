/* SPDX-License-Identifier: MIT */
/*
 * The strict option-value parsers: exact bounds, overflow, and every way a
 * value can be malformed. A failed parse must leave the result untouched.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"
#include "test-util.h"
#include "parse-util.h"

#define SENTINEL UINT64_C(0xdeadbeef)

typedef int (*parse_fn)(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

static void assert_parses(parse_fn f, const char *s, uint64_t min, uint64_t max, uint64_t expected) {
        uint64_t v = SENTINEL;
        int r = f(s, min, max, &v);

        ck_assert_msg(r == 0, "'%s' rejected: %d", s, r);
        ck_assert_msg(v == expected, "'%s' gave %llu, expected %llu", s, (unsigned long long)v,
                      (unsigned long long)expected);
}

static void assert_fails(parse_fn f, const char *s, uint64_t min, uint64_t max, int error) {
        uint64_t v = SENTINEL;
        int r = f(s, min, max, &v);

        ck_assert_msg(r == error, "'%s' gave %d (value %llu), expected %d", s ? s : "(null)", r,
                      (unsigned long long)v, error);
        ck_assert_msg(v == SENTINEL, "'%s' changed the result on failure", s ? s : "(null)");
}

START_TEST(test_parse_uint64_accepts_decimal_within_bounds) {
        assert_parses(parse_uint64, "0", 0, UINT64_MAX, 0);
        assert_parses(parse_uint64, "1", 0, UINT64_MAX, 1);
        assert_parses(parse_uint64, "65535", 0, 65535, 65535);
        assert_parses(parse_uint64, "5", 5, 10, 5);
        assert_parses(parse_uint64, "10", 5, 10, 10);
        assert_parses(parse_uint64, "18446744073709551615", 0, UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(test_parse_uint64_rejects_values_outside_bounds) {
        assert_fails(parse_uint64, "4", 5, 10, -ERANGE);
        assert_fails(parse_uint64, "11", 5, 10, -ERANGE);
        assert_fails(parse_uint64, "0", 1, 1000000, -ERANGE);
        assert_fails(parse_uint64, "65536", 0, 65535, -ERANGE);
}
END_TEST

START_TEST(test_parse_uint64_rejects_overflow_at_2_pow_64) {
        assert_fails(parse_uint64, "18446744073709551616", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_uint64, "18446744073709551620", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_uint64, "99999999999999999999", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_uint64, "184467440737095516150", 0, UINT64_MAX, -ERANGE);
}
END_TEST

START_TEST(test_parse_uint64_rejects_sign_space_and_junk) {
        static const char *const bad[] = {
                "",    "+1",   "-1",  "-0",  " 1",  "1 ", "\t1",
                "1\n", "0x10", "1e3", "1.0", "abc", "1a", "\xd9\xa1", /* ARABIC-INDIC DIGIT ONE */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_fails(parse_uint64, bad[i], 0, UINT64_MAX, -EINVAL);
        assert_fails(parse_uint64, NULL, 0, UINT64_MAX, -EINVAL);
}
END_TEST

START_TEST(test_parse_size_accepts_binary_suffixes) {
        assert_parses(parse_size, "512", 0, UINT64_MAX, 512);
        assert_parses(parse_size, "4K", 0, UINT64_MAX, 4096);
        assert_parses(parse_size, "1KiB", 0, UINT64_MAX, 1024);
        assert_parses(parse_size, "1M", 0, UINT64_MAX, UINT64_C(1) << 20);
        assert_parses(parse_size, "2MiB", 0, UINT64_MAX, UINT64_C(2) << 20);
        assert_parses(parse_size, "1G", 0, UINT64_MAX, UINT64_C(1) << 30);
        assert_parses(parse_size, "3GiB", 0, UINT64_MAX, UINT64_C(3) << 30);
        assert_parses(parse_size, "0K", 0, UINT64_MAX, 0);
}
END_TEST

START_TEST(test_parse_size_rejects_bad_suffix) {
        static const char *const bad[] = {
                "", "K", "1k", "1KB", "1kib", "1 K", "1K ", "1.5K", "1T", "1B", "-1K", "+1K", "1KK", "1Ki",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_fails(parse_size, bad[i], 0, UINT64_MAX, -EINVAL);
        assert_fails(parse_size, NULL, 0, UINT64_MAX, -EINVAL);
}
END_TEST

START_TEST(test_parse_size_rejects_overflow_of_number_times_suffix) {
        /* 2^34 G is 2^64 bytes; one less still fits. */
        assert_parses(parse_size, "17179869183G", 0, UINT64_MAX, UINT64_C(17179869183) << 30);
        assert_fails(parse_size, "17179869184G", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_size, "17592186044416M", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_size, "18014398509481984KiB", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_size, "18446744073709551616", 0, UINT64_MAX, -ERANGE);
}
END_TEST

START_TEST(test_parse_size_applies_bounds_after_the_suffix) {
        assert_parses(parse_size, "16M", 1, 16 * 1024 * 1024, 16 * 1024 * 1024);
        assert_fails(parse_size, "16777217", 1, 16 * 1024 * 1024, -ERANGE);
        assert_fails(parse_size, "17M", 1, 16 * 1024 * 1024, -ERANGE);
        assert_fails(parse_size, "0", 1, 16 * 1024 * 1024, -ERANGE);
        assert_fails(parse_size, "0K", 1, 16 * 1024 * 1024, -ERANGE);
}
END_TEST

START_TEST(test_parse_duration_without_unit_is_seconds) {
        assert_parses(parse_duration_ms, "30", 0, UINT64_MAX, 30000);
        assert_parses(parse_duration_ms, "0", 0, UINT64_MAX, 0);
        assert_parses(parse_duration_ms, "2.5", 0, UINT64_MAX, 2500);
        assert_parses(parse_duration_ms, "0.001", 0, UINT64_MAX, 1);
        assert_parses(parse_duration_ms, "1.25", 0, UINT64_MAX, 1250);
}
END_TEST

START_TEST(test_parse_duration_accepts_units) {
        assert_parses(parse_duration_ms, "500ms", 0, UINT64_MAX, 500);
        assert_parses(parse_duration_ms, "10s", 0, UINT64_MAX, 10000);
        assert_parses(parse_duration_ms, "10sec", 0, UINT64_MAX, 10000);
        assert_parses(parse_duration_ms, "5min", 0, UINT64_MAX, 300000);
        assert_parses(parse_duration_ms, "5m", 0, UINT64_MAX, 300000);
        assert_parses(parse_duration_ms, "1h", 0, UINT64_MAX, 3600000);
        assert_parses(parse_duration_ms, "1.5h", 0, UINT64_MAX, 5400000);
        assert_parses(parse_duration_ms, "0.5min", 0, UINT64_MAX, 30000);
        assert_parses(parse_duration_ms, "1.5s", 0, UINT64_MAX, 1500);
}
END_TEST

START_TEST(test_parse_duration_accepts_nine_fraction_digits_not_ten) {
        assert_parses(parse_duration_ms, "0.123456789", 0, UINT64_MAX, 123);
        assert_parses(parse_duration_ms, "1.000000001h", 0, UINT64_MAX, 3600000);
        assert_fails(parse_duration_ms, "0.1234567890", 0, UINT64_MAX, -EINVAL);
        assert_fails(parse_duration_ms, "1.0000000000s", 0, UINT64_MAX, -EINVAL);
}
END_TEST

START_TEST(test_parse_duration_rejects_malformed) {
        static const char *const bad[] = {
                "",   "1.",  ".5",    ".",   "5 s",   " 5",  "5 ", "-1",  "+1",   "s",    "ms",
                "1S", "1MS", "1hour", "1e3", "1.5.5", "1,5", "1d", "1.s", "1ms ", "0x10",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_fails(parse_duration_ms, bad[i], 0, UINT64_MAX, -EINVAL);
        assert_fails(parse_duration_ms, NULL, 0, UINT64_MAX, -EINVAL);
}
END_TEST

START_TEST(test_parse_duration_rejects_overflow) {
        char buf[64];

        assert_fails(parse_duration_ms, "99999999999999999999", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_duration_ms, "18446744073709551616ms", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_duration_ms, "18446744073709551615s", 0, UINT64_MAX, -ERANGE);
        assert_fails(parse_duration_ms, "18446744073709551615h", 0, UINT64_MAX, -ERANGE);

        /* Near the limits the result must be exact or an error, never wrapped. */
        for (int i = 0; i < 10; i++) {
                uint64_t limit = i < 5 ? UINT64_MAX / 3600000 / 2 : UINT64_MAX / 3600000;
                uint64_t h = limit + (uint64_t)(i % 5) - 2;
                uint64_t v = SENTINEL;
                int r;

                (void)snprintf(buf, sizeof buf, "%lluh", (unsigned long long)h);
                r = parse_duration_ms(buf, 0, UINT64_MAX, &v);
                ck_assert_msg(r == -ERANGE || (r == 0 && v == h * 3600000), "'%s' gave %d, %llu", buf, r,
                              (unsigned long long)v);
        }
}
END_TEST

START_TEST(test_parse_duration_applies_range) {
        assert_parses(parse_duration_ms, "1ms", 1, 24 * 3600 * 1000, 1);
        assert_parses(parse_duration_ms, "24h", 1, 24 * 3600 * 1000, 24 * 3600 * 1000);
        assert_fails(parse_duration_ms, "0", 1, 24 * 3600 * 1000, -ERANGE);
        assert_fails(parse_duration_ms, "0.0001", 1, 24 * 3600 * 1000, -ERANGE);
        assert_fails(parse_duration_ms, "86400001ms", 1, 24 * 3600 * 1000, -ERANGE);
        assert_fails(parse_duration_ms, "24.001h", 1, 24 * 3600 * 1000, -ERANGE);
        assert_fails(parse_duration_ms, "1441min", 1, 24 * 3600 * 1000, -ERANGE);
}
END_TEST

START_TEST(test_format_duration_uses_the_shortest_exact_unit) {
        static const struct {
                uint64_t ms;
                const char *text;
        } cases[] = {
                { 0, "0s" },          { 1, "1ms" },
                { 250, "250ms" },     { 999, "999ms" },
                { 1000, "1s" },       { 1001, "1.001s" },
                { 1500, "1.500s" },   { 30000, "30s" },
                { 3600000, "3600s" }, { 3600001, "3600.001s" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[64];

                ck_assert_str_eq(format_duration_ms(buf, sizeof buf, cases[i].ms), cases[i].text);
        }
}
END_TEST

static void assert_round_trip(uint64_t ms) {
        char buf[64];
        uint64_t v = SENTINEL;
        int r;

        format_duration_ms(buf, sizeof buf, ms);
        r = parse_duration_ms(buf, 0, UINT64_MAX, &v);
        ck_assert_msg(r == 0 && v == ms, "%llu formatted as '%s' parsed back as %llu (r=%d)",
                      (unsigned long long)ms, buf, (unsigned long long)v, r);
}

START_TEST(test_format_duration_round_trips_through_parse) {
        uint64_t seed = 0x2545f4914f6cdd1du;

        for (uint64_t ms = 0; ms < 100000; ms++)
                assert_round_trip(ms);
        for (int i = 0; i < 100000; i++)
                assert_round_trip(xorshift(&seed) >> (i % 40 + 12));
        /* The largest value parse_duration_ms() accepts in seconds. */
        assert_round_trip(UINT64_MAX / 1000 / 2 * 1000 + 999);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("parse-util");
        TCase *tc;

        tc = tcase_create("uint64");
        tcase_add_test(tc, test_parse_uint64_accepts_decimal_within_bounds);
        tcase_add_test(tc, test_parse_uint64_rejects_values_outside_bounds);
        tcase_add_test(tc, test_parse_uint64_rejects_overflow_at_2_pow_64);
        tcase_add_test(tc, test_parse_uint64_rejects_sign_space_and_junk);
        suite_add_tcase(s, tc);

        tc = tcase_create("size");
        tcase_add_test(tc, test_parse_size_accepts_binary_suffixes);
        tcase_add_test(tc, test_parse_size_rejects_bad_suffix);
        tcase_add_test(tc, test_parse_size_rejects_overflow_of_number_times_suffix);
        tcase_add_test(tc, test_parse_size_applies_bounds_after_the_suffix);
        suite_add_tcase(s, tc);

        tc = tcase_create("duration");
        tcase_add_test(tc, test_parse_duration_without_unit_is_seconds);
        tcase_add_test(tc, test_parse_duration_accepts_units);
        tcase_add_test(tc, test_parse_duration_accepts_nine_fraction_digits_not_ten);
        tcase_add_test(tc, test_parse_duration_rejects_malformed);
        tcase_add_test(tc, test_parse_duration_rejects_overflow);
        tcase_add_test(tc, test_parse_duration_applies_range);
        tcase_add_test(tc, test_format_duration_uses_the_shortest_exact_unit);
        tcase_add_test(tc, test_format_duration_round_trips_through_parse);
        suite_add_tcase(s, tc);

        return s;
}
