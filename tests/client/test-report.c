/* SPDX-License-Identifier: MIT */
/*
 * The bench report and the error kinds it counts: stable JSON keys, throughput
 * only from verified replies, nulls rather than made-up latencies, and replies
 * classified from their first bytes.
 */
#include <check.h>

#include "test-util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "report.h"
#include "test-util.h"

static char *render(const BenchReport *b, bool json) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        ck_assert_ptr_nonnull(f);
        if (json)
                report_json(f, b);
        else
                report_text(f, b);
        fclose(f);
        return text;
}

typedef struct Fixture {
        ClientArgs args;
        EngineResult result;
        BenchReport report;
} Fixture;

static Fixture *fixture(ProtocolMode mode) {
        Fixture *x = calloc(1, sizeof *x);

        ck_assert_ptr_nonnull(x);
        x->args.mode = mode;
        x->args.connections = 50;
        x->args.depth = mode == PROTOCOL_LINE ? 16 : 1;
        x->args.threads = 1;
        x->args.payload_len = 16;
        x->args.duration_ms = 2000;
        engine_result_init(&x->result);
        x->report = (BenchReport){
                .args = &x->args,
                .target = "127.0.0.1:9999",
                .elapsed_ns = 2000000000,
                .result = &x->result,
        };
        return x;
}

START_TEST(test_json_has_stable_keys_and_values) {
        Fixture *x = fixture(PROTOCOL_LINE);
        char *j;

        x->result.sent = 1000;
        x->result.completed = 1000;
        x->result.connected = 50;
        for (int i = 0; i < 1000; i++)
                histogram_record(&x->result.hist, 100); /* 100 ns = 0.1 us */
        j = render(&x->report, true);

        ck_assert_int_eq(j[0], '{');
        ck_assert_int_eq(j[strlen(j) - 2], '}');
        ck_assert_int_eq(j[strlen(j) - 1], '\n');
        ck_assert_ptr_eq(strchr(j, '\n'), j + strlen(j) - 1); /* one line */
        assert_contains(j, "\"mode\":\"line\"");
        assert_contains(j, "\"target\":\"127.0.0.1:9999\"");
        assert_contains(j, "\"connections\":50,");
        assert_contains(j, "\"depth\":16,");
        assert_contains(j, "\"duration_s\":2.000,");
        assert_contains(j, "\"requests\":1000,");
        assert_contains(j, "\"sent\":1000,");
        assert_contains(j, "\"throughput_per_s\":500.0,");
        assert_contains(
                j, "\"latency_us\":{\"p50\":0.100,\"p90\":0.100,\"p99\":0.100,\"p99_9\":0.100,\"max\":0.100,"
                   "\"mean\":0.100}");
        assert_contains(j,
                        "\"errors\":{\"refused\":0,\"reset\":0,\"timeout\":0,\"closed\":0,\"wrong_reply\":0,"
                        "\"busy\":0,\"err\":0,\"other\":0},\"errors_total\":0,");
        assert_contains(j, "\"rate_per_s\":null");
        assert_contains(j, "\"idle\":null}");
        free(j);
        free(x);
}
END_TEST

START_TEST(test_failed_work_has_no_throughput_and_no_latency) {
        Fixture *x = fixture(PROTOCOL_ONESHOT);
        char *j, *t;

        x->result.sent = 10;
        x->result.errors[ERROR_WRONG_REPLY] = 7;
        x->result.errors[ERROR_BUSY] = 3;
        strcpy(x->result.detail[ERROR_BUSY], "\"ERR busy\\n\" where \"ACK!\" was expected");
        ck_assert_uint_eq(report_errors_total(&x->result), 10);
        ck_assert(report_throughput(&x->report) == 0);

        j = render(&x->report, true);
        assert_contains(j, "\"requests\":0,");
        assert_contains(j, "\"throughput_per_s\":0.0,");
        assert_contains(j, "\"p50\":null");
        assert_contains(j, "\"wrong_reply\":7,");
        assert_contains(j, "\"busy\":3,");
        assert_contains(j, "\"other\":0},\"errors_total\":10,");
        free(j);

        t = render(&x->report, false);
        assert_contains(t, "latency     none verified");
        assert_contains(t, "errors      10");
        assert_contains(t, "busy         3  first: \"ERR busy\\n\" where \"ACK!\" was expected");
        free(t);
        free(x);
}
END_TEST

START_TEST(test_idle_report) {
        Fixture *x = fixture(PROTOCOL_LINE);
        char *j, *t;

        x->args.idle = 2000;
        x->args.duration_ms = 1000;
        x->result.idle_opened = 2000;
        x->result.connected = 2000;
        x->result.idle_held = 2000;
        x->result.completed = 1999;
        x->result.errors[ERROR_CLOSED] = 1;
        j = render(&x->report, true);
        assert_contains(j, "\"connections\":2000,");
        assert_contains(j, "\"throughput_per_s\":null");
        assert_contains(j, "\"idle\":{\"connections\":2000,\"opened\":2000,\"connected\":2000,\"held\":2000,"
                           "\"answered\":1999,\"failed\":1,\"hold_s\":1.000}}");
        free(j);
        t = render(&x->report, false);
        assert_contains(t, "answered    1999 of 2000\n");
        free(t);
        free(x);
}
END_TEST

START_TEST(test_json_strings_are_escaped) {
        Fixture *x = fixture(PROTOCOL_ONESHOT);
        char *j;

        x->report.target = "unix:/tmp/a\"b\\c";
        j = render(&x->report, true);
        assert_contains(j, "\"target\":\"unix:/tmp/a\\\"b\\\\c\"");
        free(j);
        free(x);
}
END_TEST

START_TEST(test_durations_are_formatted_readably) {
        char buf[32];

        ck_assert_str_eq(report_format_ns(buf, sizeof buf, 850), "850ns");
        ck_assert_str_eq(report_format_ns(buf, sizeof buf, 12345), "12.3us");
        ck_assert_str_eq(report_format_ns(buf, sizeof buf, 4560000), "4.56ms");
        ck_assert_str_eq(report_format_ns(buf, sizeof buf, 1230000000), "1.23s");
}
END_TEST

START_TEST(test_errors_are_classified) {
        ck_assert_int_eq(error_kind_from_errno(-ECONNREFUSED), ERROR_REFUSED);
        ck_assert_int_eq(error_kind_from_errno(ENOENT), ERROR_REFUSED);
        ck_assert_int_eq(error_kind_from_errno(-ECONNRESET), ERROR_RESET);
        ck_assert_int_eq(error_kind_from_errno(-EPIPE), ERROR_RESET);
        ck_assert_int_eq(error_kind_from_errno(-ETIMEDOUT), ERROR_TIMEOUT);
        ck_assert_int_eq(error_kind_from_errno(-EADDRNOTAVAIL), ERROR_OTHER);

        ck_assert_int_eq(error_kind_from_reply("ERR busy\n", 9), ERROR_BUSY);
        ck_assert_int_eq(error_kind_from_reply("ERR busy", 8), ERROR_BUSY);
        ck_assert_int_eq(error_kind_from_reply("ERR message too long\n", 21), ERROR_ERR);
        ck_assert_int_eq(error_kind_from_reply("ERR b", 5), ERROR_ERR);
        ck_assert_int_eq(error_kind_from_reply("OK", 2), ERROR_WRONG_REPLY);
        ck_assert_int_eq(error_kind_from_reply("", 0), ERROR_WRONG_REPLY);

        for (int k = 0; k < _ERROR_KIND_MAX; k++) {
                ck_assert_ptr_nonnull(error_kind_key((ErrorKind)k));
        }
        ck_assert_ptr_null(error_kind_key(_ERROR_KIND_MAX));
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("report");
        TCase *tc;

        tc = tcase_create("report");
        tcase_add_test(tc, test_json_has_stable_keys_and_values);
        tcase_add_test(tc, test_failed_work_has_no_throughput_and_no_latency);
        tcase_add_test(tc, test_idle_report);
        tcase_add_test(tc, test_json_strings_are_escaped);
        tcase_add_test(tc, test_durations_are_formatted_readably);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_errors_are_classified);
        suite_add_tcase(s, tc);
        return s;
}
