/* SPDX-License-Identifier: MIT */
/*
 * ackc's command line: defaults come from the option table, bad values give one
 * line naming the option, conflicting options are refused, and the expected
 * reply follows the mode (and --ack, --expect).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "macro.h"

typedef struct Result {
        ClientArgs a;
        char err[ARGS_ERROR_MAX];
        int r;
} Result;

/* Parses a NULL-terminated list of arguments (argv[0] included). */
static Result *parse(Command command, ...) {
        Result *res = calloc(1, sizeof *res);
        char *argv[64];
        int argc = 0;
        va_list ap;

        ck_assert_ptr_nonnull(res);
        va_start(ap, command);
        for (char *s; (s = va_arg(ap, char *));)
                argv[argc++] = s;
        va_end(ap);
        argv[argc] = NULL;
        res->r = args_parse(command, argc, argv, &res->a, res->err, sizeof res->err);
        return res;
}

static void done(Result *res) {
        args_done(&res->a);
        free(res);
}

static void assert_usage_error(Result *res, const char *needle) {
        ck_assert_msg(res->r == -EINVAL, "accepted, expected an error containing '%s'", needle);
        ck_assert_msg(strstr(res->err, needle), "error '%s' does not contain '%s'", res->err, needle);
        ck_assert_ptr_null(strchr(res->err, '\n'));
        done(res);
}

START_TEST(test_send_defaults) {
        Result *res = parse(COMMAND_SEND, "ackc", "hello", NULL);
        ClientArgs *a = &res->a;

        ck_assert_int_eq(res->r, 0);
        ck_assert_str_eq(a->host, "localhost");
        ck_assert_uint_eq(a->port, 9999);
        ck_assert_ptr_null(a->unix_path);
        ck_assert_int_eq(a->mode, PROTOCOL_ONESHOT);
        ck_assert_uint_eq(a->timeout_ms, 5000);
        ck_assert_uint_eq(a->expect_len, 4);
        ck_assert_mem_eq(a->expect, "ACK!", 4);
        ck_assert_uint_eq(a->n_messages, 1);
        ck_assert_mem_eq(a->messages[0].data, "hello", 5);
        done(res);
}
END_TEST

START_TEST(test_send_messages_in_order_and_stdin_when_none) {
        Result *res = parse(COMMAND_SEND, "ackc", "one", "--message", "t\\x77o", "-q", "three", NULL);

        ck_assert_int_eq(res->r, 0);
        ck_assert(res->a.quiet);
        /* --message values first (decoded), then the arguments (verbatim). */
        ck_assert_uint_eq(res->a.n_messages, 3);
        ck_assert_mem_eq(res->a.messages[0].data, "two", 3);
        ck_assert_mem_eq(res->a.messages[1].data, "one", 3);
        ck_assert_mem_eq(res->a.messages[2].data, "three", 5);
        done(res);

        res = parse(COMMAND_SEND, "ackc", "-m", "line", NULL);
        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(res->a.n_messages, 0);
        done(res);
}
END_TEST

START_TEST(test_expected_reply_follows_mode_ack_and_expect) {
        Result *res;

        res = parse(COMMAND_SEND, "ackc", "-m", "line", "x", NULL);
        ck_assert_uint_eq(res->a.expect_len, 5);
        ck_assert_mem_eq(res->a.expect, "ACK!\n", 5);
        done(res);

        res = parse(COMMAND_SEND, "ackc", "--ack", "OK", "x", NULL);
        ck_assert_uint_eq(res->a.expect_len, 2);
        ck_assert_mem_eq(res->a.expect, "OK", 2);
        done(res);

        res = parse(COMMAND_BENCH, "bench", "--ack", "OK", "-m", "line", NULL);
        ck_assert_uint_eq(res->a.expect_len, 3);
        ck_assert_mem_eq(res->a.expect, "OK\n", 3);
        done(res);

        res = parse(COMMAND_BENCH, "bench", "-m", "line", "--message", "PING", "--expect", "+PONG\\r\\n",
                    NULL);
        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(res->a.expect_len, 7);
        ck_assert_mem_eq(res->a.expect, "+PONG\r\n", 7);
        ck_assert_uint_eq(res->a.payload_len, 4);
        ck_assert_mem_eq(res->a.payload, "PING", 4);
        done(res);
}
END_TEST

START_TEST(test_host_forms) {
        Result *res = parse(COMMAND_SEND, "ackc", "-H", "[::1]", "-p", "1", "x", NULL);

        ck_assert_int_eq(res->r, 0);
        ck_assert_str_eq(res->a.host, "::1");
        ck_assert_uint_eq(res->a.port, 1);
        done(res);

        res = parse(COMMAND_SEND, "ackc", "--unix", "@ackd", "x", NULL);
        ck_assert_int_eq(res->r, 0);
        ck_assert_str_eq(res->a.unix_path, "@ackd");
        done(res);
}
END_TEST

START_TEST(test_bench_defaults) {
        Result *res = parse(COMMAND_BENCH, "bench", NULL);
        ClientArgs *a = &res->a;

        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(a->connections, 50);
        ck_assert_uint_eq(a->duration_ms, 10000);
        ck_assert_uint_eq(a->requests, 0);
        ck_assert_uint_eq(a->depth, 1);
        ck_assert_uint_eq(a->threads, 1);
        ck_assert_uint_eq(a->rate, 0);
        ck_assert_uint_eq(a->idle, 0);
        ck_assert_uint_eq(a->payload_len, 16);
        ck_assert(!a->json);
        /* Generated payload: printable, no newline. */
        for (size_t i = 0; i < a->payload_len; i++)
                ck_assert(a->payload[i] >= 'a' && a->payload[i] <= 'z');
        done(res);
}
END_TEST

START_TEST(test_bench_values) {
        Result *res =
                parse(COMMAND_BENCH, "bench", "-c", "8", "-n", "1000", "-m", "line", "--depth", "16", "-t",
                      "2", "--size", "1K", "--rate", "5000", "--json", "--timeout", "250ms", NULL);
        ClientArgs *a = &res->a;

        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(a->connections, 8);
        ck_assert_uint_eq(a->requests, 1000);
        ck_assert_uint_eq(a->duration_ms, 0);
        ck_assert_uint_eq(a->depth, 16);
        ck_assert_uint_eq(a->threads, 2);
        ck_assert_uint_eq(a->payload_len, 1024);
        ck_assert_uint_eq(a->rate, 5000);
        ck_assert_uint_eq(a->timeout_ms, 250);
        ck_assert(a->json);
        done(res);
}
END_TEST

START_TEST(test_sources) {
        Result *res = parse(COMMAND_BENCH, "bench", "--idle", "10", "--source", "127.0.0.2", "--source",
                            "[::1]", NULL);

        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(res->a.n_sources, 2);
        ck_assert_int_eq(res->a.sources[0].addr.ss_family, AF_INET);
        ck_assert_int_eq(res->a.sources[1].addr.ss_family, AF_INET6);
        ck_assert_uint_eq(res->a.idle, 10);
        done(res);
}
END_TEST

START_TEST(test_proxy) {
        static const struct {
                const char *value;
                ProxyMode mode;
        } versions[] = { { "v1", PROXY_V1 }, { "v2", PROXY_V2 }, { "local", PROXY_LOCAL } };
        const struct sockaddr_in *in;
        const struct sockaddr_in6 *in6;
        Result *res;

        res = parse(COMMAND_SEND, "ackc", "x", NULL);
        ck_assert_int_eq(res->a.proxy, PROXY_NONE);
        ck_assert_uint_eq(res->a.proxy_source.len, 0);
        done(res);

        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                res = parse(COMMAND_SEND, "ackc", "--proxy", versions[i].value, "x", NULL);
                ck_assert_int_eq(res->r, 0);
                ck_assert_int_eq(res->a.proxy, versions[i].mode);
                ck_assert_uint_eq(res->a.proxy_source.len, 0); /* the connection's own */
                done(res);
                res = parse(COMMAND_BENCH, "bench", "--proxy", versions[i].value, "-m", "line", NULL);
                ck_assert_int_eq(res->r, 0);
                ck_assert_int_eq(res->a.proxy, versions[i].mode);
                done(res);
        }

        res = parse(COMMAND_SEND, "ackc", "--proxy=v1", "--proxy-source", "203.0.113.7:5555", "x", NULL);
        ck_assert_int_eq(res->r, 0);
        in = (const struct sockaddr_in *)&res->a.proxy_source.addr;
        ck_assert_int_eq(in->sin_family, AF_INET);
        ck_assert_uint_eq(res->a.proxy_source.len, sizeof *in);
        ck_assert_uint_eq(ntohs(in->sin_port), 5555);
        ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0xcb007107);
        done(res);

        res = parse(COMMAND_BENCH, "bench", "--proxy-source=[2001:db8::7]:80", "--proxy", "v2", NULL);
        ck_assert_int_eq(res->r, 0);
        in6 = (const struct sockaddr_in6 *)&res->a.proxy_source.addr;
        ck_assert_int_eq(in6->sin6_family, AF_INET6);
        ck_assert_uint_eq(res->a.proxy_source.len, sizeof *in6);
        ck_assert_uint_eq(ntohs(in6->sin6_port), 80);
        ck_assert_uint_eq(in6->sin6_addr.s6_addr[0], 0x20);
        ck_assert_uint_eq(in6->sin6_addr.s6_addr[15], 7);
        done(res);
}
END_TEST

START_TEST(test_proxy_errors) {
        /* An address and a port, in the one spelling ackd logs them in. */
        static const char *const bad_sources[] = {
                "203.0.113.7",
                "203.0.113.7:",
                "203.0.113.7:65536",
                "203.0.113.7:-1",
                "203.0.113.7:05",
                "2001:db8::7:80",
                "[2001:db8::7]",
                "[2001:db8::7]:x",
                "localhost:80",
                "unix:/x",
                "unix",
                "[::ffff:192.0.2.1]:80",
                "1.2.3:4",
                "",
        };

        assert_usage_error(parse(COMMAND_SEND, "ackc", "--proxy", "v3", "x", NULL),
                           "--proxy: invalid value 'v3' (expected v1, v2 or local)");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--proxy", "V1", "x", NULL),
                           "--proxy: invalid value 'V1'");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--proxy", "", NULL), "--proxy: invalid value ''");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--proxy", NULL), "--proxy");

        for (size_t i = 0; i < ELEMENTSOF(bad_sources); i++) {
                char needle[64];

                (void)snprintf(needle, sizeof needle, "--proxy-source: invalid value '%s'", bad_sources[i]);
                assert_usage_error(parse(COMMAND_SEND, "ackc", "--proxy", "v2", "--proxy-source",
                                         bad_sources[i], "x", NULL),
                                   needle);
        }

        assert_usage_error(parse(COMMAND_SEND, "ackc", "--proxy-source", "192.0.2.1:1", "x", NULL),
                           "--proxy-source needs --proxy v1 or v2");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--proxy-source", "192.0.2.1:1", NULL),
                           "--proxy-source needs --proxy v1 or v2");
        assert_usage_error(
                parse(COMMAND_SEND, "ackc", "--proxy", "local", "--proxy-source", "192.0.2.1:1", "x", NULL),
                "--proxy-source cannot be combined with --proxy local");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-u", "/x", "--proxy", "v2", "--proxy-source",
                                 "192.0.2.1:1", NULL),
                           "--proxy-source cannot be combined with --unix");
}
END_TEST

START_TEST(test_bad_values_name_the_option) {
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-c", "abc", NULL),
                           "--connections: invalid value 'abc'");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-c", "0", NULL),
                           "--connections: value '0' out of range");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-d", "forever", NULL), "--duration");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--size", "17M", NULL), "--size");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--depth", "5000", NULL), "--depth");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-t", "0", NULL), "--threads");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--rate", "-5", NULL), "--rate");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--source", "localhost", NULL), "--source");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-p", "65536", "x", NULL), "--port");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-p", "0", "x", NULL), "--port");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-m", "udp", "x", NULL),
                           "--mode: invalid value 'udp'");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--timeout", "0", "x", NULL), "--timeout");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--expect", "\\q", "x", NULL), "--expect");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--expect", "", "x", NULL), "--expect");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--message", "a\\", NULL), "--message");
}
END_TEST

START_TEST(test_options_of_the_other_command_are_unknown) {
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--depth", "2", "x", NULL),
                           "unknown option '--depth'");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-c", "2", "x", NULL), "unknown option '-c'");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-q", NULL), "unknown option '-q'");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "hello", NULL), "unexpected argument 'hello'");
}
END_TEST

START_TEST(test_conflicts_are_refused) {
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-d", "1", "-n", "5", NULL),
                           "--duration cannot be combined with --requests");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--size", "5", "--message", "x", NULL),
                           "--size cannot be combined with --message");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--idle", "5", "-c", "5", NULL),
                           "--idle cannot be combined with --connections");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--idle", "5", "--rate", "5", NULL), "--idle");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--depth", "4", NULL), "line mode only");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-u", "/x", "--source", "127.0.0.2", NULL),
                           "--source");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-c", "2", "-t", "3", NULL), "more threads");
        assert_usage_error(
                parse(COMMAND_BENCH, "bench", "-m", "line", "-c", "10000", "--depth", "4096", NULL),
                "in flight");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "--size", "0", NULL), "empty message");
        assert_usage_error(parse(COMMAND_BENCH, "bench", "-m", "line", "--message", "a\\nb", NULL),
                           "newline");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-u", "/x", "-p", "5", "x", NULL), "--unix");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "--ack", "A", "--expect", "B", "x", NULL),
                           "--expect cannot be combined with --ack");
        assert_usage_error(parse(COMMAND_SEND, "ackc", "-m", "line", "a\nb", NULL), "newline");
}
END_TEST

START_TEST(test_line_mode_allows_an_empty_message) {
        Result *res = parse(COMMAND_BENCH, "bench", "-m", "line", "--size", "0", NULL);

        ck_assert_int_eq(res->r, 0);
        ck_assert_uint_eq(res->a.payload_len, 0);
        done(res);
}
END_TEST

START_TEST(test_help_and_version_skip_validation) {
        Result *res = parse(COMMAND_BENCH, "bench", "-d", "1", "-n", "5", "--help", NULL);

        ck_assert_int_eq(res->r, 0);
        ck_assert(res->a.help);
        done(res);
        res = parse(COMMAND_SEND, "ackc", "-V", NULL);
        ck_assert_int_eq(res->r, 0);
        ck_assert(res->a.version);
        done(res);
}
END_TEST

static void check_help(Command command) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        ck_assert_ptr_nonnull(f);
        args_help(f, command);
        fclose(f);
        for (char *line = text, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                ck_assert_ptr_nonnull(nl);
                ck_assert_msg(nl - line <= 79, "help line too long: %.*s", (int)(nl - line), line);
        }
        /* Every option the command takes is listed. */
        for (size_t i = 0; i < _ARG_MAX; i++) {
                char name[64];

                (void)snprintf(name, sizeof name, "--%s", ackc_options[i].name);
                if (option_matches(&ackc_options[i], command))
                        ck_assert_msg(strstr(text, name), "%s missing from --help", name);
        }
        free(text);
}

START_TEST(test_help_fits_79_columns_and_lists_every_option) {
        check_help(COMMAND_SEND);
        check_help(COMMAND_BENCH);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("args");
        TCase *tc;

        tc = tcase_create("send");
        tcase_add_test(tc, test_send_defaults);
        tcase_add_test(tc, test_send_messages_in_order_and_stdin_when_none);
        tcase_add_test(tc, test_expected_reply_follows_mode_ack_and_expect);
        tcase_add_test(tc, test_host_forms);
        suite_add_tcase(s, tc);

        tc = tcase_create("bench");
        tcase_add_test(tc, test_bench_defaults);
        tcase_add_test(tc, test_bench_values);
        tcase_add_test(tc, test_sources);
        tcase_add_test(tc, test_proxy);
        tcase_add_test(tc, test_line_mode_allows_an_empty_message);
        suite_add_tcase(s, tc);

        tc = tcase_create("errors");
        tcase_add_test(tc, test_bad_values_name_the_option);
        tcase_add_test(tc, test_options_of_the_other_command_are_unknown);
        tcase_add_test(tc, test_conflicts_are_refused);
        tcase_add_test(tc, test_proxy_errors);
        tcase_add_test(tc, test_help_and_version_skip_validation);
        tcase_add_test(tc, test_help_fits_79_columns_and_lists_every_option);
        suite_add_tcase(s, tc);
        return s;
}
