/* SPDX-License-Identifier: MIT */
/*
 * Options from the table, the command line and the config file: the defaults
 * are the documented ones, every bad value is an error naming where it came
 * from, and the command line wins over the file.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "macro.h"
#include "test-util.h"
#include "settings.h"

#define MISSING_CONFIG "/nonexistent-ackd-test-dir/ackd.conf"

/* One byte more than the longest reply text. */
#define A16  "aaaaaaaaaaaaaaaa"
#define A256 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16
_Static_assert(sizeof(A256) - 1 == ACK_TEXT_MAX + 1, "A256 must be one byte too long");

/* Runs command_line_parse() on "ackd" followed by the arguments. */
static int parse_args(char **argv, CommandLine *ret, char *err) {
        int argc = 0;

        while (argv[argc])
                argc++;
        return command_line_parse(argc, argv, ret, err, SETTINGS_ERROR_MAX);
}

#define ARGV(...) ((char *[]){ "ackd", __VA_ARGS__, NULL })

/* Writes text to a new temporary file; returns its path (to free and unlink). */
static char *write_temp(const char *text, size_t len) {
        const char *dir = getenv("TMPDIR");
        char *path = NULL;
        int fd;

        ck_assert_int_ge(asprintf(&path, "%s/test-settings-XXXXXX", dir && *dir ? dir : "/tmp"), 0);
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
        close(fd);
        return path;
}

/*
 * settings_load() with argv and, if config is not NULL, that text as the file
 * named by the default path (so it need not exist); without it the default
 * file is missing.
 */
static int load(const char *config, char **argv, Settings *ret, char *err) {
        CommandLine c;
        char *path = NULL;
        int r;

        r = parse_args(argv, &c, err);
        ck_assert_msg(r == 0, "command line rejected: %s", err);
        ck_assert(!c.config_explicit);
        if (config) {
                path = write_temp(config, strlen(config));
                c.config_path = path;
        } else
                c.config_path = MISSING_CONFIG;

        r = settings_load(&c, ret, err, SETTINGS_ERROR_MAX);
        if (path)
                (void)unlink(path);
        free(path);
        command_line_done(&c);
        return r;
}

/* settings_parse_config() on a memory buffer, after defaults. */
static int parse_config(const char *text, size_t len, Settings *s, char *err) {
        char *copy = malloc(len + 1);
        FILE *f;
        int r;

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, text, len);
        f = fmemopen(copy, len, "r");
        ck_assert_ptr_nonnull(f);
        settings_init(s);
        r = settings_parse_config(s, f, "test.conf", err, SETTINGS_ERROR_MAX);
        fclose(f);
        free(copy);
        return r;
}

#define PARSE_CONFIG(text, s, err) parse_config((text), sizeof(text) - 1, (s), (err))

static void assert_listen(const Settings *s, size_t i, const char *text) {
        ListenAddress a;

        ck_assert_uint_gt(s->n_listen, i);
        ck_assert_int_eq(listen_address_parse(text, &a, NULL), 0);
        ck_assert_msg(listen_address_equal(&s->listen[i], &a), "listener %zu is not %s", i, text);
}

START_TEST(test_init_sets_documented_defaults) {
        Settings s;

        memset(&s, 0xaa, sizeof s);
        settings_init(&s);
        ck_assert_uint_eq(s.threads, 0);
        ck_assert_uint_eq(s.max_connections, 10000);
        ck_assert_uint_eq(s.max_message, 1024);
        ck_assert_uint_eq(s.idle_timeout_ms, 30000);
        ck_assert_uint_eq(s.drain_timeout_ms, 5000);
        ck_assert_str_eq(s.ack, "ACK!");
        ck_assert_uint_eq(s.ack_len, 4);
        ck_assert_int_eq(s.log_level, LOG_NOTICE);
        /* The default listener is only added when nothing else names one. */
        ck_assert_uint_eq(s.n_listen, 0);
}
END_TEST

START_TEST(test_load_defaults_listen_on_9999_oneshot_dual_stack) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(load(NULL, ARGV(NULL), &s, err), 0);
        ck_assert_uint_eq(s.n_listen, 1);
        ck_assert_int_eq(s.listen[0].mode, PROTOCOL_ONESHOT);
        /* ADDRESS_ANY is the dual-stack wildcard, not an IPv4- or IPv6-only address. */
        ck_assert_int_eq(s.listen[0].kind, ADDRESS_ANY);
        ck_assert_uint_eq(s.listen[0].port, 9999);
        ck_assert_uint_eq(s.max_connections, 10000);
        ck_assert_uint_eq(s.max_message, 1024);
        ck_assert_uint_eq(s.idle_timeout_ms, 30000);
        ck_assert_uint_eq(s.drain_timeout_ms, 5000);
        ck_assert_str_eq(s.ack, "ACK!");
        ck_assert_int_eq(s.log_level, LOG_NOTICE);
}
END_TEST

START_TEST(test_help_lists_every_option_with_its_default) {
        char *text = NULL, *w;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        ck_assert_ptr_nonnull(f);
        settings_help(f, "ackd");
        fclose(f);

        /* Undo the wrapping: every run of spaces and newlines becomes one space. */
        w = text;
        for (const char *p = text; *p; p++)
                if (*p != ' ' && *p != '\n')
                        *w++ = *p;
                else if (w > text && w[-1] != ' ')
                        *w++ = ' ';
        *w = '\0';

        for (OptionId id = 0; id < _OPTION_MAX; id++) {
                char buf[128];

                (void)snprintf(buf, sizeof buf, "--%s", option_table[id].name);
                ck_assert_msg(strstr(text, buf), "help does not mention %s", buf);
                if (option_table[id].default_value) {
                        (void)snprintf(buf, sizeof buf, "(default: %s)", option_table[id].default_value);
                        ck_assert_msg(strstr(text, buf), "help does not mention %s", buf);
                }
        }
        free(text);
}
END_TEST

START_TEST(test_parse_accepts_short_long_and_equals_forms) {
        static const struct {
                OptionId id;
                const char *value;
        } expected[] = {
                { OPTION_LISTEN, ":1" },         { OPTION_LISTEN, "line@:2" },
                { OPTION_LISTEN, "unix:/x" },    { OPTION_LISTEN, ":3" },
                { OPTION_MAX_CONNECTIONS, "5" }, { OPTION_ACK, "hi there" },
                { OPTION_THREADS, "4" },         { OPTION_THREADS, "2" },
                { OPTION_IDLE_TIMEOUT, "10s" },  { OPTION_DRAIN_TIMEOUT, "1" },
                { OPTION_MAX_MESSAGE, "4K" },    { OPTION_LOG_LEVEL, "debug" },
        };
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c;
        int r;

        r = parse_args(ARGV("-l", ":1", "--listen", "line@:2", "--listen=unix:/x", "-l:3",
                            "--max-connections=5", "--ack", "hi there", "-t", "4", "--threads=2",
                            "--idle-timeout", "10s", "--drain-timeout=1", "--max-message", "4K",
                            "--log-level=debug"),
                       &c, err);
        ck_assert_msg(r == 0, "%s", err);
        ck_assert_uint_eq(c.n_values, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                ck_assert_int_eq(c.values[i].id, expected[i].id);
                ck_assert_str_eq(c.values[i].value, expected[i].value);
        }
        ck_assert(!c.help && !c.version && !c.config_explicit);
        ck_assert_uint_eq(c.verbose, 0);
        command_line_done(&c);
}
END_TEST

START_TEST(test_parse_counts_repeated_verbose) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c;

        ck_assert_int_eq(parse_args(ARGV("-v"), &c, err), 0);
        ck_assert_uint_eq(c.verbose, 1);
        command_line_done(&c);
        ck_assert_int_eq(parse_args(ARGV("-v", "-v"), &c, err), 0);
        ck_assert_uint_eq(c.verbose, 2);
        command_line_done(&c);
        ck_assert_int_eq(parse_args(ARGV("-vv"), &c, err), 0);
        ck_assert_uint_eq(c.verbose, 2);
        command_line_done(&c);
        ck_assert_int_eq(parse_args(ARGV("--verbose", "-vv"), &c, err), 0);
        ck_assert_uint_eq(c.verbose, 3);
        /* Verbosity is not a setting: it is not replayed as a value. */
        ck_assert_uint_eq(c.n_values, 0);
        command_line_done(&c);
}
END_TEST

START_TEST(test_parse_sets_config_help_and_version_flags) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c;

        ck_assert_int_eq(parse_args(ARGV(NULL), &c, err), 0);
        ck_assert_ptr_null(c.config_path);
        ck_assert(!c.config_explicit && !c.help && !c.version);
        command_line_done(&c);

        ck_assert_int_eq(parse_args(ARGV("-c", "/x.conf"), &c, err), 0);
        ck_assert_str_eq(c.config_path, "/x.conf");
        ck_assert(c.config_explicit);
        ck_assert_uint_eq(c.n_values, 0);
        command_line_done(&c);

        ck_assert_int_eq(parse_args(ARGV("--config=/y.conf", "-h"), &c, err), 0);
        ck_assert_str_eq(c.config_path, "/y.conf");
        ck_assert(c.help && !c.version);
        command_line_done(&c);

        ck_assert_int_eq(parse_args(ARGV("--help"), &c, err), 0);
        ck_assert(c.help);
        command_line_done(&c);
        ck_assert_int_eq(parse_args(ARGV("-V"), &c, err), 0);
        ck_assert(c.version && !c.help);
        command_line_done(&c);
        ck_assert_int_eq(parse_args(ARGV("--version"), &c, err), 0);
        ck_assert(c.version);
        command_line_done(&c);
}
END_TEST

static void assert_usage_error(char **argv, const char *named) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c = { 0 };

        ck_assert_int_eq(parse_args(argv, &c, err), -EINVAL);
        assert_contains(err, named);
        /* Nothing is handed out on failure. */
        ck_assert_ptr_null(c.values);
}

START_TEST(test_parse_rejects_unknown_option_naming_it) {
        assert_usage_error(ARGV("--bogus"), "--bogus");
        assert_usage_error(ARGV("-x"), "-x");
        assert_usage_error(ARGV("-l", ":1", "--frobnicate=1"), "--frobnicate");
        assert_usage_error(ARGV("-vq"), "-q");
}
END_TEST

START_TEST(test_parse_rejects_missing_value_naming_the_option) {
        assert_usage_error(ARGV("--listen"), "--listen");
        assert_usage_error(ARGV("-l"), "-l");
        assert_usage_error(ARGV("-v", "--ack"), "--ack");
        assert_usage_error(ARGV("-c"), "-c");
        assert_usage_error(ARGV("--max-connections"), "--max-connections");
}
END_TEST

START_TEST(test_parse_rejects_extra_argument_naming_it) {
        assert_usage_error(ARGV("foo"), "foo");
        assert_usage_error(ARGV("-l", ":1", "bar"), "bar");
        assert_usage_error(ARGV("--", "-l"), "-l");
}
END_TEST

START_TEST(test_parse_rejects_value_given_to_a_flag) {
        assert_usage_error(ARGV("--help=yes"), "--help");
        assert_usage_error(ARGV("--verbose=2"), "--verbose");
        assert_usage_error(ARGV("--version=1"), "--version");
}
END_TEST

static void assert_applies(OptionId id, const char *value) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;
        int r;

        settings_init(&s);
        r = settings_apply(&s, id, value, err, sizeof err);
        ck_assert_msg(r == 0, "--%s '%s' rejected: %s", option_table[id].name, value, err);
}

START_TEST(test_apply_accepts_boundary_values) {
        char err[SETTINGS_ERROR_MAX] = "";
        char ack[ACK_TEXT_MAX + 1];
        Settings s;

        settings_init(&s);
        ck_assert_int_eq(settings_apply(&s, OPTION_THREADS, "256", err, sizeof err), 0);
        ck_assert_uint_eq(s.threads, 256);
        ck_assert_int_eq(settings_apply(&s, OPTION_THREADS, "auto", err, sizeof err), 0);
        ck_assert_uint_eq(s.threads, 0);
        ck_assert_int_eq(settings_apply(&s, OPTION_THREADS, "1", err, sizeof err), 0);
        ck_assert_uint_eq(s.threads, 1);

        ck_assert_int_eq(settings_apply(&s, OPTION_MAX_CONNECTIONS, "1", err, sizeof err), 0);
        ck_assert_uint_eq(s.max_connections, 1);
        ck_assert_int_eq(settings_apply(&s, OPTION_MAX_CONNECTIONS, "1000000", err, sizeof err), 0);
        ck_assert_uint_eq(s.max_connections, 1000000);

        ck_assert_int_eq(settings_apply(&s, OPTION_MAX_MESSAGE, "1", err, sizeof err), 0);
        ck_assert_uint_eq(s.max_message, 1);
        ck_assert_int_eq(settings_apply(&s, OPTION_MAX_MESSAGE, "16M", err, sizeof err), 0);
        ck_assert_uint_eq(s.max_message, 16 * 1024 * 1024);
        ck_assert_int_eq(settings_apply(&s, OPTION_MAX_MESSAGE, "4K", err, sizeof err), 0);
        ck_assert_uint_eq(s.max_message, 4096);

        ck_assert_int_eq(settings_apply(&s, OPTION_IDLE_TIMEOUT, "1ms", err, sizeof err), 0);
        ck_assert_uint_eq(s.idle_timeout_ms, 1);
        ck_assert_int_eq(settings_apply(&s, OPTION_IDLE_TIMEOUT, "24h", err, sizeof err), 0);
        ck_assert_uint_eq(s.idle_timeout_ms, 24 * 3600 * 1000);
        ck_assert_int_eq(settings_apply(&s, OPTION_IDLE_TIMEOUT, "2.5", err, sizeof err), 0);
        ck_assert_uint_eq(s.idle_timeout_ms, 2500);

        ck_assert_int_eq(settings_apply(&s, OPTION_DRAIN_TIMEOUT, "0", err, sizeof err), 0);
        ck_assert_uint_eq(s.drain_timeout_ms, 0);
        ck_assert_int_eq(settings_apply(&s, OPTION_DRAIN_TIMEOUT, "1h", err, sizeof err), 0);
        ck_assert_uint_eq(s.drain_timeout_ms, 3600 * 1000);

        memset(ack, 'a', ACK_TEXT_MAX);
        ack[ACK_TEXT_MAX] = '\0';
        ck_assert_int_eq(settings_apply(&s, OPTION_ACK, ack, err, sizeof err), 0);
        ck_assert_uint_eq(s.ack_len, ACK_TEXT_MAX);
        ck_assert_str_eq(s.ack, ack);
        ck_assert_int_eq(settings_apply(&s, OPTION_ACK, " OK ~", err, sizeof err), 0);
        ck_assert_str_eq(s.ack, " OK ~");
        ck_assert_uint_eq(s.ack_len, 5);

        ck_assert_int_eq(settings_apply(&s, OPTION_LOG_LEVEL, "error", err, sizeof err), 0);
        ck_assert_int_eq(s.log_level, LOG_ERR);
        ck_assert_int_eq(settings_apply(&s, OPTION_LOG_LEVEL, "warning", err, sizeof err), 0);
        ck_assert_int_eq(s.log_level, LOG_WARNING);
        ck_assert_int_eq(settings_apply(&s, OPTION_LOG_LEVEL, "info", err, sizeof err), 0);
        ck_assert_int_eq(s.log_level, LOG_INFO);
        ck_assert_int_eq(settings_apply(&s, OPTION_LOG_LEVEL, "debug", err, sizeof err), 0);
        ck_assert_int_eq(s.log_level, LOG_DEBUG);

        assert_applies(OPTION_LISTEN, "line@[::1]:1");
        assert_applies(OPTION_LOG_LEVEL, "notice");
}
END_TEST

START_TEST(test_proxy_from_prefixes) {
        Settings st;
        char err[SETTINGS_ERROR_MAX], buf[ADDRESS_PREFIX_STRING_MAX];
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a010203) };
        struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 }, v6 = { .sin6_family = AF_INET6 };

        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:10.1.2.3", &mapped.sin6_addr), 1);
        ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr), 1);
        settings_init(&st);
        ck_assert_uint_eq(st.n_proxy_from, 0);
        ck_assert_int_eq(settings_apply(&st, OPTION_PROXY_FROM, "10.0.0.0/8", err, sizeof err), 0);
        ck_assert_int_eq(settings_apply(&st, OPTION_PROXY_FROM, "2001:db8::/32", err, sizeof err), 0);
        ck_assert_int_eq(settings_apply(&st, OPTION_PROXY_FROM, "192.0.2.7", err, sizeof err), 0);
        ck_assert_uint_eq(st.n_proxy_from, 3);
        ck_assert_str_eq(address_prefix_format(&st.proxy_from[0], buf, sizeof buf), "10.0.0.0/8");
        ck_assert_str_eq(address_prefix_format(&st.proxy_from[2], buf, sizeof buf), "192.0.2.7/32");
        ck_assert(address_prefix_match(&st.proxy_from[0], (struct sockaddr *)&in, sizeof in));
        ck_assert(address_prefix_match(&st.proxy_from[0], (struct sockaddr *)&mapped, sizeof mapped));
        ck_assert(!address_prefix_match(&st.proxy_from[1], (struct sockaddr *)&mapped, sizeof mapped));
        ck_assert(address_prefix_match(&st.proxy_from[1], (struct sockaddr *)&v6, sizeof v6));
        ck_assert(!address_prefix_match(&st.proxy_from[2], (struct sockaddr *)&in, sizeof in));
        in.sin_addr.s_addr = htonl(0xc0000207);
        ck_assert(address_prefix_match(&st.proxy_from[2], (struct sockaddr *)&in, sizeof in));
        in.sin_addr.s_addr = htonl(0x0b000000);
        ck_assert(!address_prefix_match(&st.proxy_from[0], (struct sockaddr *)&in, sizeof in));
        /* /0 matches everything of its family; odd prefix lengths compare the right bits. */
        ck_assert_int_eq(settings_apply(&st, OPTION_PROXY_FROM, "0.0.0.0/0", err, sizeof err), 0);
        ck_assert(address_prefix_match(&st.proxy_from[3], (struct sockaddr *)&in, sizeof in));
        ck_assert(!address_prefix_match(&st.proxy_from[3], (struct sockaddr *)&v6, sizeof v6));
        ck_assert_int_eq(settings_apply(&st, OPTION_PROXY_FROM, "10.0.0.0/13", err, sizeof err), 0);
        in.sin_addr.s_addr = htonl(0x0a070000);
        ck_assert(address_prefix_match(&st.proxy_from[4], (struct sockaddr *)&in, sizeof in));
        in.sin_addr.s_addr = htonl(0x0a080000);
        ck_assert(!address_prefix_match(&st.proxy_from[4], (struct sockaddr *)&in, sizeof in));
        ck_assert_int_eq(st.proxy_timeout_ms, 3000);
        ck_assert_int_eq(st.shutdown_delay_ms, 0);
}
END_TEST

START_TEST(test_apply_rejects_bad_value_for_every_option) {
        static const struct {
                OptionId id;
                const char *value;
        } bad[] = {
                { OPTION_LISTEN, "" },
                { OPTION_LISTEN, "bogus" },
                { OPTION_LISTEN, "1.2.3.4:65536" },
                { OPTION_LISTEN, "foo@:1" },
                { OPTION_THREADS, "0" },
                { OPTION_THREADS, "257" },
                { OPTION_THREADS, "abc" },
                { OPTION_THREADS, "-1" },
                { OPTION_THREADS, "" },
                { OPTION_THREADS, "AUTO" },
                { OPTION_MAX_CONNECTIONS, "0" },
                { OPTION_MAX_CONNECTIONS, "abc" },
                { OPTION_MAX_CONNECTIONS, "1000001" },
                { OPTION_MAX_CONNECTIONS, "" },
                { OPTION_MAX_CONNECTIONS, "-5" },
                { OPTION_MAX_CONNECTIONS, " 5" },
                { OPTION_MAX_CONNECTIONS, "18446744073709551616" },
                { OPTION_MAX_MESSAGE, "0" },
                { OPTION_MAX_MESSAGE, "17M" },
                { OPTION_MAX_MESSAGE, "16777217" },
                { OPTION_MAX_MESSAGE, "1k" },
                { OPTION_MAX_MESSAGE, "abc" },
                { OPTION_MAX_MESSAGE, "" },
                { OPTION_IDLE_TIMEOUT, "0" },
                { OPTION_IDLE_TIMEOUT, "25h" },
                { OPTION_IDLE_TIMEOUT, "abc" },
                { OPTION_IDLE_TIMEOUT, "" },
                { OPTION_IDLE_TIMEOUT, "1." },
                { OPTION_IDLE_TIMEOUT, "-1" },
                { OPTION_DRAIN_TIMEOUT, "2h" },
                { OPTION_DRAIN_TIMEOUT, "abc" },
                { OPTION_DRAIN_TIMEOUT, "" },
                { OPTION_DRAIN_TIMEOUT, "-1" },
                { OPTION_ACK, "" },
                { OPTION_ACK, "a\nb" },
                { OPTION_ACK, "OK\r" },
                { OPTION_ACK, "\x1b[31mOK" },
                { OPTION_ACK, "a\tb" },
                { OPTION_ACK, "\x7f" },
                { OPTION_ACK, A256 },
                { OPTION_PROXY_FROM, "" },
                { OPTION_PROXY_FROM, "10.1.2.3/8" },
                { OPTION_PROXY_FROM, "10.0.0.0/33" },
                { OPTION_PROXY_FROM, "::/129" },
                { OPTION_PROXY_FROM, "10.0.0.0/" },
                { OPTION_PROXY_FROM, "10.0.0.0/-1" },
                { OPTION_PROXY_FROM, "example.com" },
                { OPTION_PROXY_FROM, "10.0.0/8" },
                { OPTION_PROXY_FROM, "any" },
                { OPTION_PROXY_TIMEOUT, "0" },
                { OPTION_PROXY_TIMEOUT, "2h" },
                { OPTION_PROXY_TIMEOUT, "abc" },
                { OPTION_PROXY_TIMEOUT, "" },
                { OPTION_SHUTDOWN_DELAY, "2h" },
                { OPTION_SHUTDOWN_DELAY, "-1" },
                { OPTION_SHUTDOWN_DELAY, "x" },
                { OPTION_LOG_LEVEL, "loud" },
                { OPTION_LOG_LEVEL, "" },
                { OPTION_LOG_LEVEL, "crit" },
                { OPTION_LOG_LEVEL, "emerg" },
                { OPTION_LOG_LEVEL, "8" },
                { OPTION_LOG_LEVEL, "NOTICE" },
                { OPTION_USER, "" },
                { OPTION_USER, "two words" },
                { OPTION_USER, "a:b" },
                { OPTION_USER, "../etc" },
                { OPTION_USER, "bad\nname" },
                { OPTION_USER, A256 },
        };
        bool covered[_OPTION_MAX] = { false };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *name = option_table[bad[i].id].name;
                char err[SETTINGS_ERROR_MAX] = "";
                Settings s, before;
                int r;

                settings_init(&s);
                memcpy(&before, &s, sizeof s);
                r = settings_apply(&s, bad[i].id, bad[i].value, err, sizeof err);
                ck_assert_msg(r == -EINVAL || r == -ERANGE, "--%s '%s' accepted (r=%d)", name, bad[i].value,
                              r);
                ck_assert_msg(err[0] != '\0', "--%s '%s': no message", name, bad[i].value);
                /* A rejected value changes nothing: no half-applied or default value. */
                ck_assert_msg(memcmp(&s, &before, sizeof s) == 0, "--%s '%s' changed the settings", name,
                              bad[i].value);
                covered[bad[i].id] = true;
        }

        /* Every setting the config file accepts is in the table above. */
        for (OptionId id = 0; id < _OPTION_MAX; id++)
                if (option_table[id].flags & OPTION_IN_CONFIG)
                        ck_assert_msg(covered[id], "no bad value tested for --%s", option_table[id].name);
}
END_TEST

START_TEST(test_apply_rejects_options_that_are_not_settings) {
        static const OptionId ids[] = { OPTION_CONFIG, OPTION_VERBOSE, OPTION_VERSION, OPTION_HELP };
        char err[SETTINGS_ERROR_MAX];
        Settings s;

        settings_init(&s);
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                err[0] = '\0';
                ck_assert_int_eq(settings_apply(&s, ids[i], "x", err, sizeof err), -EINVAL);
                ck_assert_str_ne(err, "");
        }
}
END_TEST

START_TEST(test_apply_listen_stops_at_the_listener_limit) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        settings_init(&s);
        for (unsigned i = 0; i < SETTINGS_LISTEN_MAX; i++) {
                char text[16];

                (void)snprintf(text, sizeof text, ":%u", 1000 + i);
                ck_assert_int_eq(settings_apply(&s, OPTION_LISTEN, text, err, sizeof err), 0);
        }
        ck_assert_uint_eq(s.n_listen, SETTINGS_LISTEN_MAX);
        ck_assert_int_eq(settings_apply(&s, OPTION_LISTEN, ":2000", err, sizeof err), -EINVAL);
        assert_contains(err, "too many");
        ck_assert_uint_eq(s.n_listen, SETTINGS_LISTEN_MAX);
        assert_listen(&s, SETTINGS_LISTEN_MAX - 1, ":1063");
}
END_TEST

START_TEST(test_config_skips_comments_and_blank_lines) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("# a comment\n"
                                      "; another = comment\n"
                                      "\n"
                                      "   \t \n"
                                      "    # indented comment = 1\n"
                                      "max-connections = 7\n"
                                      "#max-connections = 8\n",
                                      &s, err),
                         0);
        ck_assert_uint_eq(s.max_connections, 7);
        ck_assert_uint_eq(s.n_listen, 0);
}
END_TEST

START_TEST(test_config_allows_spaces_around_equals) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("max-message=2K\n"
                                      "  idle-timeout   =   10s  \n"
                                      "\tack\t=\tHi there\t\n"
                                      "drain-timeout= 1\n",
                                      &s, err),
                         0);
        ck_assert_uint_eq(s.max_message, 2048);
        ck_assert_uint_eq(s.idle_timeout_ms, 10000);
        ck_assert_str_eq(s.ack, "Hi there");
        ck_assert_uint_eq(s.drain_timeout_ms, 1000);
}
END_TEST

START_TEST(test_config_quoted_value_keeps_its_spaces) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("ack = \"  two words  \"\n", &s, err), 0);
        ck_assert_str_eq(s.ack, "  two words  ");
        ck_assert_uint_eq(s.ack_len, 13);

        ck_assert_int_eq(PARSE_CONFIG("ack = \"x\"\n", &s, err), 0);
        ck_assert_str_eq(s.ack, "x");

        /* Quotes are not a way around the checks: an empty reply is still an error. */
        ck_assert_int_eq(PARSE_CONFIG("ack = \"\"\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:1");
}
END_TEST

START_TEST(test_config_repeated_listen_adds_listeners) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("listen = :1\n"
                                      "listen = line@[::1]:2\n"
                                      "listen = unix:/run/ackd.sock\n",
                                      &s, err),
                         0);
        ck_assert_uint_eq(s.n_listen, 3);
        assert_listen(&s, 0, ":1");
        assert_listen(&s, 1, "line@[::1]:2");
        assert_listen(&s, 2, "unix:/run/ackd.sock");
}
END_TEST

START_TEST(test_config_unknown_key_names_file_and_line) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("# header\n"
                                      "max-connections = 5\n"
                                      "bogus = 1\n",
                                      &s, err),
                         -EINVAL);
        assert_contains(err, "test.conf:3");
        assert_contains(err, "bogus");

        /* Keys are exact: no case folding, no prefixes. */
        ck_assert_int_eq(PARSE_CONFIG("Listen = :1\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:1");
        ck_assert_int_eq(PARSE_CONFIG("max = 1\n", &s, err), -EINVAL);
        ck_assert_int_eq(PARSE_CONFIG("= 1\n", &s, err), -EINVAL);
}
END_TEST

START_TEST(test_config_line_without_equals_is_an_error) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("\n\nlisten :1\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:3");
        ck_assert_int_eq(PARSE_CONFIG("ack\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:1");
}
END_TEST

START_TEST(test_config_rejects_command_line_only_keys) {
        static const char *const texts[] = {
                "config = /etc/other.conf\n",
                "verbose = 1\n",
                "help = 1\n",
                "version = 1\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                char err[SETTINGS_ERROR_MAX] = "";
                Settings s;

                ck_assert_int_eq(parse_config(texts[i], strlen(texts[i]), &s, err), -EINVAL);
                assert_contains(err, "test.conf:1");
        }
}
END_TEST

START_TEST(test_config_bad_value_names_file_line_and_key) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("ack = fine\nmax-connections = 0\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:2");
        assert_contains(err, "max-connections");
        ck_assert_int_eq(PARSE_CONFIG("listen = 1.2.3.4\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:1");
        assert_contains(err, "listen");
        ck_assert_int_eq(PARSE_CONFIG("idle-timeout =\n", &s, err), -EINVAL);
        assert_contains(err, "idle-timeout");
}
END_TEST

START_TEST(test_config_rejects_nul_byte_in_a_line) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        /* Otherwise "ack = a" would silently be read from "ack = a\0b". */
        ck_assert_int_eq(PARSE_CONFIG("max-connections = 5\nack = a\0b\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:2");
        ck_assert_int_eq(PARSE_CONFIG("# comment \0 with NUL\n", &s, err), -EINVAL);
        assert_contains(err, "test.conf:1");
}
END_TEST

START_TEST(test_config_rejects_an_over_long_line) {
        char err[SETTINGS_ERROR_MAX] = "";
        char *text = malloc(8192);
        Settings s;

        ck_assert_ptr_nonnull(text);
        /* A 4000-byte comment is fine ... */
        memset(text, '#', 4000);
        memcpy(text + 4000, "\nack = ok\n", 11);
        ck_assert_int_eq(parse_config(text, strlen(text), &s, err), 0);
        ck_assert_str_eq(s.ack, "ok");

        /* ... 5000 bytes are not, even when the line would otherwise be a valid setting. */
        memcpy(text, "ack = ok\nack = fine", 19);
        memset(text + 19, ' ', 5000);
        memcpy(text + 5019, "\n", 2);
        ck_assert_int_eq(parse_config(text, strlen(text), &s, err), -EINVAL);
        assert_contains(err, "test.conf:2");
        assert_contains(err, "too long");
        free(text);
}
END_TEST

START_TEST(test_config_accepts_crlf_and_missing_final_newline) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("max-connections = 9\r\nack = Hi\r\n", &s, err), 0);
        ck_assert_uint_eq(s.max_connections, 9);
        ck_assert_str_eq(s.ack, "Hi");
        ck_assert_int_eq(PARSE_CONFIG("ack = Last", &s, err), 0);
        ck_assert_str_eq(s.ack, "Last");
}
END_TEST

START_TEST(test_config_skips_a_leading_byte_order_mark) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        /* As editors on Windows save UTF-8. */
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb\xbflisten = line@:1\r\nack = Hi\r\n", &s, err), 0);
        assert_listen(&s, 0, "line@:1");
        ck_assert_str_eq(s.ack, "Hi");
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb\xbf# comment\nack = Hi\n", &s, err), 0);
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb\xbf", &s, err), 0);
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb\xbf\n", &s, err), 0);

        /* Only the first line's: anywhere else the bytes are part of the key, and shown. */
        ck_assert_int_eq(PARSE_CONFIG("ack = Hi\n\xef\xbb\xbf"
                                      "ack = Ho\n",
                                      &s, err),
                         -EINVAL);
        ck_assert_str_eq(err, "test.conf:2: unknown setting '\\xef\\xbb\\xbfack'");
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb\xbf\xef\xbb\xbf"
                                      "ack = Hi\n",
                                      &s, err),
                         -EINVAL);
        ck_assert_str_eq(err, "test.conf:1: unknown setting '\\xef\\xbb\\xbfack'");
        /* Half a mark is not one. */
        ck_assert_int_eq(PARSE_CONFIG("\xef\xbb"
                                      "ack = Hi\n",
                                      &s, err),
                         -EINVAL);
        ck_assert_str_eq(err, "test.conf:1: unknown setting '\\xef\\xbback'");
}
END_TEST

START_TEST(test_config_errors_escape_invisible_bytes) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(PARSE_CONFIG("ac\x01k = 1\n", &s, err), -EINVAL);
        ck_assert_str_eq(err, "test.conf:1: unknown setting 'ac\\x01k'");
        ck_assert_int_eq(PARSE_CONFIG("max\x1b[8m-message = 1\n", &s, err), -EINVAL);
        ck_assert_str_eq(err, "test.conf:1: unknown setting 'max\\x1b[8m-message'");
        ck_assert_int_eq(PARSE_CONFIG("listen = \"h\xc3\xa9:1\x7f\"\n", &s, err), -EINVAL);
        ck_assert_str_eq(err,
                         "test.conf:1: listen: invalid address 'h\\xc3\\xa9:1\\x7f': invalid host name");
        /* Printable text stays as it is, quotes and backslashes marked. */
        ck_assert_int_eq(PARSE_CONFIG("x'y\\z = 1\n", &s, err), -EINVAL);
        ck_assert_str_eq(err, "test.conf:1: unknown setting 'x'y\\\\z'");
}
END_TEST

START_TEST(test_command_line_errors_escape_invisible_bytes) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c;
        Settings s;

        ck_assert_int_eq(parse_args(ARGV("st\aray"), &c, err), -EINVAL);
        ck_assert_str_eq(err, "unexpected argument 'st\\x07ray'");
        ck_assert_int_eq(parse_args(ARGV("--bo\x1bgus"), &c, err), -EINVAL);
        ck_assert_str_eq(err, "unknown option '--bo\\x1bgus'");
        ck_assert_int_eq(parse_args(ARGV("-\x01"), &c, err), -EINVAL);
        ck_assert_str_eq(err, "unknown option '-\\x01'");
        ck_assert_int_eq(load(NULL, ARGV("-l", "a\nb:1"), &s, err), -EINVAL);
        ck_assert_str_eq(err, "--listen: invalid address 'a\\nb:1': invalid host name");
}
END_TEST

START_TEST(test_load_config_that_cannot_be_read_says_why) {
        char err[SETTINGS_ERROR_MAX] = "";
        char dir[] = "/tmp/test-settings-dir-XXXXXX";
        char *expected = NULL;
        CommandLine c;
        Settings s;

        /* A directory opens, then fails to read: the reason is EISDIR, not just "read error". */
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(parse_args(ARGV("-c", dir), &c, err), 0);
        ck_assert_int_eq(settings_load(&c, &s, err, sizeof err), -EINVAL);
        ck_assert_int_ge(asprintf(&expected, "%s: read error: Is a directory", dir), 0);
        ck_assert_str_eq(err, expected);
        command_line_done(&c);
        free(expected);
        (void)rmdir(dir);
}
END_TEST

START_TEST(test_load_command_line_overrides_file) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(load("max-connections = 7\n"
                              "ack = FILE\n"
                              "idle-timeout = 5\n"
                              "listen = :1\n",
                              ARGV("--ack", "CLI", "--idle-timeout=2"), &s, err),
                         0);
        ck_assert_str_eq(s.ack, "CLI");
        ck_assert_uint_eq(s.idle_timeout_ms, 2000);
        /* What the command line does not name comes from the file. */
        ck_assert_uint_eq(s.max_connections, 7);
        ck_assert_uint_eq(s.n_listen, 1);
        assert_listen(&s, 0, ":1");
}
END_TEST

START_TEST(test_load_command_line_listen_replaces_file_listen) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(
                load("listen = :1\nlisten = :4\n", ARGV("-l", ":2", "--listen", "line@:3"), &s, err), 0);
        ck_assert_uint_eq(s.n_listen, 2);
        assert_listen(&s, 0, ":2");
        assert_listen(&s, 1, "line@:3");
}
END_TEST

START_TEST(test_load_file_listen_replaces_the_default) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(load("listen = line@:1\n", ARGV(NULL), &s, err), 0);
        ck_assert_uint_eq(s.n_listen, 1);
        assert_listen(&s, 0, "line@:1");

        ck_assert_int_eq(load(NULL, ARGV("-l", "unix:/x"), &s, err), 0);
        ck_assert_uint_eq(s.n_listen, 1);
        assert_listen(&s, 0, "unix:/x");
}
END_TEST

START_TEST(test_load_missing_default_file_is_fine) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c = { .config_path = MISSING_CONFIG };
        Settings s;

        ck_assert_int_eq(settings_load(&c, &s, err, sizeof err), 0);
        ck_assert_uint_eq(s.max_connections, 10000);
        ck_assert_uint_eq(s.n_listen, 1);
}
END_TEST

START_TEST(test_load_missing_explicit_config_is_an_error) {
        char err[SETTINGS_ERROR_MAX] = "";
        CommandLine c;
        Settings s;

        ck_assert_int_eq(parse_args(ARGV("-c", MISSING_CONFIG), &c, err), 0);
        ck_assert_int_eq(settings_load(&c, &s, err, sizeof err), -ENOENT);
        assert_contains(err, MISSING_CONFIG);
        command_line_done(&c);
}
END_TEST

START_TEST(test_load_explicit_config_file_is_read) {
        char err[SETTINGS_ERROR_MAX] = "";
        char *path = write_temp("max-message = 8K\n", 17);
        CommandLine c;
        Settings s;
        int r;

        ck_assert_int_eq(parse_args(ARGV("--config", path), &c, err), 0);
        ck_assert(c.config_explicit);
        r = settings_load(&c, &s, err, sizeof err);
        (void)unlink(path);
        ck_assert_msg(r == 0, "%s", err);
        ck_assert_uint_eq(s.max_message, 8192);
        command_line_done(&c);
        free(path);
}
END_TEST

START_TEST(test_load_reports_where_a_bad_value_came_from) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        /* From the file: the file name and line. */
        ck_assert_int_eq(load("\nthreads = lots\n", ARGV(NULL), &s, err), -EINVAL);
        assert_contains(err, ":2: threads");
        assert_contains(err, "test-settings-");

        /* From the command line: the option. */
        ck_assert_int_eq(load(NULL, ARGV("--max-connections", "0"), &s, err), -EINVAL);
        assert_contains(err, "--max-connections");
        ck_assert_int_eq(load(NULL, ARGV("--ack="), &s, err), -EINVAL);
        assert_contains(err, "--ack");
        ck_assert_int_eq(load(NULL, ARGV("-l", ":1", "-l", "nope"), &s, err), -EINVAL);
        assert_contains(err, "--listen");
        assert_contains(err, "nope");
}
END_TEST

START_TEST(test_load_verbose_raises_log_level) {
        char err[SETTINGS_ERROR_MAX] = "";
        Settings s;

        ck_assert_int_eq(load(NULL, ARGV("-v"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_INFO);
        ck_assert_int_eq(load(NULL, ARGV("-vv"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_DEBUG);
        ck_assert_int_eq(load(NULL, ARGV("-v", "-v", "-v"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_DEBUG);

        /* -v raises a quieter configured level, never lowers a louder one. */
        ck_assert_int_eq(load("log-level = error\n", ARGV("-v"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_INFO);
        ck_assert_int_eq(load(NULL, ARGV("--log-level=debug", "-v"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_DEBUG);
        ck_assert_int_eq(load(NULL, ARGV("--log-level=warning"), &s, err), 0);
        ck_assert_int_eq(s.log_level, LOG_WARNING);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("settings");
        TCase *tc;

        tc = tcase_create("defaults");
        tcase_add_test(tc, test_init_sets_documented_defaults);
        tcase_add_test(tc, test_load_defaults_listen_on_9999_oneshot_dual_stack);
        tcase_add_test(tc, test_help_lists_every_option_with_its_default);
        suite_add_tcase(s, tc);

        tc = tcase_create("command-line");
        tcase_add_test(tc, test_parse_accepts_short_long_and_equals_forms);
        tcase_add_test(tc, test_parse_counts_repeated_verbose);
        tcase_add_test(tc, test_parse_sets_config_help_and_version_flags);
        tcase_add_test(tc, test_parse_rejects_unknown_option_naming_it);
        tcase_add_test(tc, test_parse_rejects_missing_value_naming_the_option);
        tcase_add_test(tc, test_parse_rejects_extra_argument_naming_it);
        tcase_add_test(tc, test_parse_rejects_value_given_to_a_flag);
        suite_add_tcase(s, tc);

        tc = tcase_create("apply");
        tcase_add_test(tc, test_apply_accepts_boundary_values);
        tcase_add_test(tc, test_apply_rejects_bad_value_for_every_option);
        tcase_add_test(tc, test_proxy_from_prefixes);
        tcase_add_test(tc, test_apply_rejects_options_that_are_not_settings);
        tcase_add_test(tc, test_apply_listen_stops_at_the_listener_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("config-file");
        tcase_add_test(tc, test_config_skips_comments_and_blank_lines);
        tcase_add_test(tc, test_config_allows_spaces_around_equals);
        tcase_add_test(tc, test_config_quoted_value_keeps_its_spaces);
        tcase_add_test(tc, test_config_repeated_listen_adds_listeners);
        tcase_add_test(tc, test_config_unknown_key_names_file_and_line);
        tcase_add_test(tc, test_config_line_without_equals_is_an_error);
        tcase_add_test(tc, test_config_rejects_command_line_only_keys);
        tcase_add_test(tc, test_config_bad_value_names_file_line_and_key);
        tcase_add_test(tc, test_config_rejects_nul_byte_in_a_line);
        tcase_add_test(tc, test_config_rejects_an_over_long_line);
        tcase_add_test(tc, test_config_accepts_crlf_and_missing_final_newline);
        tcase_add_test(tc, test_config_skips_a_leading_byte_order_mark);
        tcase_add_test(tc, test_config_errors_escape_invisible_bytes);
        tcase_add_test(tc, test_command_line_errors_escape_invisible_bytes);
        suite_add_tcase(s, tc);

        tc = tcase_create("load");
        tcase_add_test(tc, test_load_command_line_overrides_file);
        tcase_add_test(tc, test_load_command_line_listen_replaces_file_listen);
        tcase_add_test(tc, test_load_file_listen_replaces_the_default);
        tcase_add_test(tc, test_load_missing_default_file_is_fine);
        tcase_add_test(tc, test_load_missing_explicit_config_is_an_error);
        tcase_add_test(tc, test_load_config_that_cannot_be_read_says_why);
        tcase_add_test(tc, test_load_explicit_config_file_is_read);
        tcase_add_test(tc, test_load_reports_where_a_bad_value_came_from);
        tcase_add_test(tc, test_load_verbose_raises_log_level);
        suite_add_tcase(s, tc);

        return s;
}
