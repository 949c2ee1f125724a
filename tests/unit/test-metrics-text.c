/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text-format writer: the exact text of a few families, the
 * escaping of hostile label values and help texts, number formatting, the
 * sticky error and the aborts on bad names. test-metrics-promtool.c has the
 * real promtool read a page written with all of it.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "metrics-text.h"

static void assert_page(const MetricsText *t, const char *want) {
        ck_assert_int_eq(t->error, 0);
        ck_assert_ptr_nonnull(t->data);
        ck_assert_str_eq(t->data, want);
        ck_assert_uint_eq(t->len, strlen(want));
}

START_TEST(test_counter_without_labels) {
        MetricsText t = { 0 };

        ck_assert_int_eq(
                metrics_text_family(&t, "ackd_acks_sent_total", METRIC_COUNTER, "Acknowledgements sent."),
                0);
        ck_assert_int_eq(metrics_text_sample_u64(&t, NULL, 0, 42), 0);
        assert_page(&t, "# HELP ackd_acks_sent_total Acknowledgements sent.\n"
                        "# TYPE ackd_acks_sent_total counter\n"
                        "ackd_acks_sent_total 42\n");
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_counter_with_labelled_samples) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "ackd_connections_accepted_total", METRIC_COUNTER, "Connections accepted.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "listener", "[::]:9999" }, { "mode", "oneshot" }), 0);
        metrics_text_sample_u64(&t, METRIC_LABELS({ "listener", "127.0.0.1:7777" }, { "mode", "line" }),
                                UINT64_MAX);
        metrics_text_family(&t, "ackd_connections_rejected_total", METRIC_COUNTER, "Connections refused.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "listener", "/run/ackd.sock" }, { "reason", "busy" }),
                                7);
        assert_page(&t, "# HELP ackd_connections_accepted_total Connections accepted.\n"
                        "# TYPE ackd_connections_accepted_total counter\n"
                        "ackd_connections_accepted_total{listener=\"[::]:9999\",mode=\"oneshot\"} 0\n"
                        "ackd_connections_accepted_total{listener=\"127.0.0.1:7777\",mode=\"line\"} "
                        "18446744073709551615\n"
                        "# HELP ackd_connections_rejected_total Connections refused.\n"
                        "# TYPE ackd_connections_rejected_total counter\n"
                        "ackd_connections_rejected_total{listener=\"/run/ackd.sock\",reason=\"busy\"} 7\n");
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_gauges_with_floats) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "ackd_start_time_seconds", METRIC_GAUGE,
                            "Start time since the Epoch, in seconds.");
        metrics_text_sample_double(&t, NULL, 0, 1712345678.123456);
        metrics_text_family(&t, "ackd_build_info", METRIC_GAUGE, "Always 1; the labels say which build.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "version", "0.1.0" }), 1);
        metrics_text_family(&t, "process_cpu_seconds_total", METRIC_COUNTER, "CPU time used, in seconds.");
        metrics_text_sample_double(&t, NULL, 0, 12.25);
        assert_page(&t, "# HELP ackd_start_time_seconds Start time since the Epoch, in seconds.\n"
                        "# TYPE ackd_start_time_seconds gauge\n"
                        "ackd_start_time_seconds 1712345678.123456\n"
                        "# HELP ackd_build_info Always 1; the labels say which build.\n"
                        "# TYPE ackd_build_info gauge\n"
                        "ackd_build_info{version=\"0.1.0\"} 1\n"
                        "# HELP process_cpu_seconds_total CPU time used, in seconds.\n"
                        "# TYPE process_cpu_seconds_total counter\n"
                        "process_cpu_seconds_total 12.25\n");
        metrics_text_done(&t);
}
END_TEST

typedef struct Number {
        double value;
        const char *text;
} Number;

static const Number numbers[] = {
        { 0, "0" },
        { -0.0, "-0" },
        { 1, "1" },
        { 0.1, "0.1" },
        { -2.5, "-2.5" },
        { 1712345678.123456, "1712345678.123456" },
        { 1712345678.5, "1712345678.5" },
        { 9007199254740993.0, "9007199254740992" }, /* 2^53 + 1 is not a double */
        { 1e21, "1e+21" },
        { 1.0 / 3, "0.3333333333333333" },
        { 0.1 + 0.2, "0.30000000000000004" },
        { DBL_MAX, "1.7976931348623157e+308" },
        { 5e-324, "5e-324" },
        { NAN, "NaN" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
};

START_TEST(test_double_is_written_in_its_shortest_exact_form) {
        const Number *n = &numbers[_i];
        MetricsText t = { 0 };
        char want[128];

        snprintf(want, sizeof want, "# HELP g G.\n# TYPE g gauge\ng %s\n", n->text);
        metrics_text_family(&t, "g", METRIC_GAUGE, "G.");
        metrics_text_sample_double(&t, NULL, 0, n->value);
        assert_page(&t, want);
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_every_double_reads_back_exactly) {
        MetricsText t = { 0 };
        uint64_t x = 0x9e3779b97f4a7c15ULL;

        metrics_text_family(&t, "g", METRIC_GAUGE, "G.");
        for (int i = 0; i < 5000; i++) {
                size_t start = t.len;
                double v;
                char *end;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(&v, &x, sizeof v);
                if (!isfinite(v))
                        continue;
                metrics_text_sample_double(&t, NULL, 0, v);
                ck_assert_int_eq(t.error, 0);
                ck_assert(strncmp(t.data + start, "g ", 2) == 0);
                ck_assert_uint_eq(strspn(t.data + start + 2, "0123456789.e+-"), t.len - start - 3);
                ck_assert_msg(strtod(t.data + start + 2, &end) == v && *end == '\n', "%.17g written as %.*s",
                              v, (int)(t.len - start - 3), t.data + start + 2);
        }
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_help_escapes_backslash_and_newline_only) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "g", METRIC_GAUGE,
                            "A \\ backslash,\na newline, \"quotes\" and caf\xc3\xa9.");
        assert_page(&t, "# HELP g A \\\\ backslash,\\na newline, \"quotes\" and caf\xc3\xa9.\n"
                        "# TYPE g gauge\n");
        metrics_text_done(&t);
}
END_TEST

typedef struct Hostile {
        const char *what;
        const char *value;
        const char *escaped;
} Hostile;

#define FFFD "\xef\xbf\xbd"

static const Hostile hostiles[] = {
        { "double quote", "a\"b", "a\\\"b" },
        { "backslash", "a\\b", "a\\\\b" },
        { "newline", "a\nb", "a\\nb" },
        { "an escape already", "\\\"", "\\\\\\\"" },
        { "a written-out newline", "\\n", "\\\\n" },
        { "all three at the end", "x\"\\\n", "x\\\"\\\\\\n" },
        { "label syntax", "a\"} 1\nevil{x=\"", "a\\\"} 1\\nevil{x=\\\"" },
        { "IPv6 address", "[::]:9999", "[::]:9999" },
        { "socket path with a quote", "/run/ack\"d.sock", "/run/ack\\\"d.sock" },
        { "CR and TAB stay", "a\rb\tc", "a\rb\tc" },
        { "UTF-8 stays", "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\xa6\x86 \xe2\x82\xac",
          "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\xa6\x86 \xe2\x82\xac" },
        { "invalid byte",
          "a\xff"
          "b",
          "a" FFFD "b" },
        { "lone continuation byte", "\x80", FFFD },
        { "overlong NUL", "\xc0\x80", FFFD FFFD },
        { "overlong slash", "\xe0\x80\xaf", FFFD FFFD FFFD },
        { "surrogate", "\xed\xa0\x80", FFFD FFFD FFFD },
        { "beyond U+10FFFF", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD },
        { "truncated at the end", "x\xe2\x82", "x" FFFD FFFD },
        { "truncated before ASCII",
          "\xe2\x82"
          "a",
          FFFD FFFD "a" },
        { "largest code point", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf" },
        { "empty", "", "" },
};

START_TEST(test_hostile_label_value_is_escaped) {
        const Hostile *h = &hostiles[_i];
        MetricsText t = { 0 };
        char want[256];

        snprintf(want, sizeof want,
                 "# HELP ackd_idle_timeouts_total Idle closes.\n"
                 "# TYPE ackd_idle_timeouts_total counter\n"
                 "ackd_idle_timeouts_total{listener=\"%s\",mode=\"line\"} 3\n",
                 h->escaped);
        metrics_text_family(&t, "ackd_idle_timeouts_total", METRIC_COUNTER, "Idle closes.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "listener", h->value }, { "mode", "line" }), 3);
        assert_page(&t, want);
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_page_grows_and_reset_keeps_the_buffer) {
        MetricsText t = { 0 };
        char *data;
        size_t size;
        char name[32];

        metrics_text_family(&t, "ackd_messages_received_total", METRIC_COUNTER, "Messages.");
        for (unsigned i = 0; i < 10000; i++) {
                snprintf(name, sizeof name, "10.0.%u.%u:9999", i / 256, i % 256);
                metrics_text_sample_u64(&t, METRIC_LABELS({ "listener", name }), i);
        }
        ck_assert_int_eq(t.error, 0);
        ck_assert_uint_eq(strlen(t.data), t.len);
        ck_assert_uint_lt(t.len, t.size);
        ck_assert_ptr_nonnull(
                strstr(t.data, "\nackd_messages_received_total{listener=\"10.0.39.15:9999\"} 9999\n"));

        data = t.data;
        size = t.size;
        metrics_text_reset(&t);
        ck_assert_ptr_eq(t.data, data);
        ck_assert_uint_eq(t.size, size);
        ck_assert_uint_eq(t.len, 0);
        ck_assert_str_eq(t.data, "");
        metrics_text_done(&t);
        ck_assert_ptr_null(t.data);
        metrics_text_done(&t);
}
END_TEST

START_TEST(test_error_is_sticky_until_reset) {
        static const char head[] = "# HELP g G.\n# TYPE g gauge\n";
        MetricsText t = { .max = sizeof head - 1 + 4 };

        ck_assert_int_eq(metrics_text_family(&t, "g", METRIC_GAUGE, "G."), 0);
        ck_assert_int_eq(metrics_text_sample_u64(&t, NULL, 0, 1), 0); /* "g 1\n": exactly max */
        ck_assert_uint_eq(t.len, t.max);
        ck_assert_int_eq(metrics_text_sample_u64(&t, NULL, 0, 2), -ENOBUFS);
        /* Nothing is written after the first failure (the page may end in part of a line: it is
         * not to be served). */
        ck_assert_int_eq(metrics_text_family(&t, "h", METRIC_GAUGE, "H."), -ENOBUFS);
        ck_assert_int_eq(t.error, -ENOBUFS);
        ck_assert_uint_le(t.len, t.max);
        ck_assert_uint_eq(strlen(t.data), t.len);

        metrics_text_reset(&t);
        ck_assert_int_eq(t.error, 0);
        ck_assert_int_eq(metrics_text_family(&t, "g", METRIC_GAUGE, "G."), 0);
        assert_page(&t, head);
        metrics_text_done(&t);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Bad names are bugs: they abort. */

static const char *const bad_metric_names[] = { "", "1abc", "a-b", "a:b", "a b", "caf\xc3\xa9" };

START_TEST(test_invalid_metric_name_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, bad_metric_names[_i], METRIC_GAUGE, "X.");
}
END_TEST

START_TEST(test_counter_without_total_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "ackd_acks_sent", METRIC_COUNTER, "X.");
}
END_TEST

START_TEST(test_empty_help_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "g", METRIC_GAUGE, "");
}
END_TEST

static const char *const bad_label_names[] = { "", "__name__", "1a", "a-b", "a.b" };

START_TEST(test_invalid_label_name_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "g", METRIC_GAUGE, "X.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ bad_label_names[_i], "v" }), 1);
}
END_TEST

START_TEST(test_repeated_label_name_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "g", METRIC_GAUGE, "X.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "a", "1" }, { "b", "2" }, { "a", "3" }), 1);
}
END_TEST

START_TEST(test_sample_outside_a_family_aborts) {
        MetricsText t = { 0 };

        metrics_text_sample_u64(&t, NULL, 0, 1);
}
END_TEST

START_TEST(test_negative_counter_aborts) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "process_cpu_seconds_total", METRIC_COUNTER, "X.");
        metrics_text_sample_double(&t, NULL, 0, -1.0);
}
END_TEST

/* The controls for the aborts above: the same calls with good names pass. */
START_TEST(test_good_names_pass) {
        MetricsText t = { 0 };

        metrics_text_family(&t, "_Ab9_total", METRIC_COUNTER, "X.");
        metrics_text_sample_u64(&t, METRIC_LABELS({ "_a", "1" }, { "B9", "2" }, { "a_", "3" }), 1);
        metrics_text_sample_double(&t, NULL, 0, 0.0);
        ck_assert_int_eq(t.error, 0);
        metrics_text_done(&t);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("metrics-text");
        TCase *tc;

        tc = tcase_create("format");
        tcase_add_test(tc, test_counter_without_labels);
        tcase_add_test(tc, test_counter_with_labelled_samples);
        tcase_add_test(tc, test_gauges_with_floats);
        tcase_add_loop_test(tc, test_double_is_written_in_its_shortest_exact_form, 0, ELEMENTSOF(numbers));
        tcase_add_test(tc, test_help_escapes_backslash_and_newline_only);
        tcase_add_loop_test(tc, test_hostile_label_value_is_escaped, 0, ELEMENTSOF(hostiles));
        suite_add_tcase(s, tc);

        tc = tcase_create("doubles");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_every_double_reads_back_exactly);
        suite_add_tcase(s, tc);

        tc = tcase_create("buffer");
        tcase_add_test(tc, test_page_grows_and_reset_keeps_the_buffer);
        tcase_add_test(tc, test_error_is_sticky_until_reset);
        suite_add_tcase(s, tc);

        tc = tcase_create("names");
        tcase_add_loop_test_raise_signal(tc, test_invalid_metric_name_aborts, SIGABRT, 0,
                                         ELEMENTSOF(bad_metric_names));
        tcase_add_test_raise_signal(tc, test_counter_without_total_aborts, SIGABRT);
        tcase_add_test_raise_signal(tc, test_empty_help_aborts, SIGABRT);
        tcase_add_loop_test_raise_signal(tc, test_invalid_label_name_aborts, SIGABRT, 0,
                                         ELEMENTSOF(bad_label_names));
        tcase_add_test_raise_signal(tc, test_repeated_label_name_aborts, SIGABRT);
        tcase_add_test_raise_signal(tc, test_sample_outside_a_family_aborts, SIGABRT);
        tcase_add_test_raise_signal(tc, test_negative_counter_aborts, SIGABRT);
        tcase_add_test(tc, test_good_names_pass);
        suite_add_tcase(s, tc);

        return s;
}
