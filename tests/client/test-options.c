/* SPDX-License-Identifier: MIT */
/*
 * The shared option-table module: a table drives getopt_long (long and short
 * names, values, flags), a mask selects the options of one command, errors name
 * the option, and --help wraps at 79 columns with defaults shown.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "options.h"

enum { CMD_A = 1 << 0, CMD_B = 1 << 1 };

#define TEST_OPTIONS(X)                                                                              \
        X(PORT, "port", 'p', "PORT", "9999", CMD_A | CMD_B, "Port to connect to")                    \
        X(COUNT_A, "count", 'c', "N", "1", CMD_A, "How many, for A")                                 \
        X(CONFIG_B, "config", 'c', "FILE", NULL, CMD_B, "Configuration file, for B")                 \
        X(QUIET, "quiet", 'q', NULL, NULL, CMD_A, "Say nothing")                                     \
        X(LONG_ONLY, "a-rather-long-option-name", 0, "SOME-ARGUMENT", NULL, CMD_A,                   \
          "A description long enough that it has to be wrapped over more than one line of the help " \
          "output, at word boundaries, never beyond the seventy-ninth column")                       \
        X(HELP, "help", 'h', NULL, NULL, CMD_A | CMD_B, "Print this help and exit")

enum {
#define AS_ENUM(id, ...) OPT_##id,
        TEST_OPTIONS(AS_ENUM)
#undef AS_ENUM
                _OPT_MAX,
};

static const OptionInfo table[_OPT_MAX] = {
#define AS_INFO(id, n, s, a, d, f, h)                                                                \
        [OPT_##id] = {                                                                               \
                .name = n, .short_name = s, .argument = a, .default_value = d, .flags = f, .help = h \
        },
        TEST_OPTIONS(AS_INFO)
#undef AS_INFO
};

typedef struct Parsed {
        size_t ids[16];
        const char *values[16];
        size_t n;
        int operands;
        int r;
        char err[256];
} Parsed;

static Parsed parse(unsigned mask, char **argv) {
        Parsed p = { 0 };
        OptionParser op;
        const char *value;
        size_t id;
        int argc = 0;

        while (argv[argc])
                argc++;
        ck_assert_int_eq(option_parser_init(&op, table, _OPT_MAX, mask, argc, argv), 0);
        while ((p.r = option_parser_next(&op, &id, &value, p.err, sizeof p.err)) > 0) {
                p.ids[p.n] = id;
                p.values[p.n++] = value;
        }
        if (p.r == 0)
                p.operands = option_parser_operands(&op);
        return p;
}

START_TEST(test_long_short_and_values) {
        char *argv[] = { "prog", "--port", "1", "-p2", "--port=3", "-q", "-c", "7", "msg", NULL };
        Parsed p = parse(CMD_A, argv);

        ck_assert_int_eq(p.r, 0);
        ck_assert_uint_eq(p.n, 5);
        ck_assert_uint_eq(p.ids[0], OPT_PORT);
        ck_assert_str_eq(p.values[0], "1");
        ck_assert_str_eq(p.values[1], "2");
        ck_assert_str_eq(p.values[2], "3");
        ck_assert_uint_eq(p.ids[3], OPT_QUIET);
        ck_assert_ptr_null(p.values[3]);
        ck_assert_uint_eq(p.ids[4], OPT_COUNT_A);
        ck_assert_str_eq(p.values[4], "7");
        ck_assert_int_eq(p.operands, 8);
}
END_TEST

START_TEST(test_mask_selects_the_command_options) {
        char *a[] = { "prog", "-c", "5", NULL };
        char *b[] = { "prog", "-c", "/etc/x", "--config", "/etc/y", NULL };
        char *quiet_in_b[] = { "prog", "--quiet", NULL };
        Parsed p;

        /* One letter, two meanings: the mask decides. */
        p = parse(CMD_A, a);
        ck_assert_int_eq(p.r, 0);
        ck_assert_uint_eq(p.ids[0], OPT_COUNT_A);
        p = parse(CMD_B, b);
        ck_assert_int_eq(p.r, 0);
        ck_assert_uint_eq(p.ids[0], OPT_CONFIG_B);
        ck_assert_uint_eq(p.ids[1], OPT_CONFIG_B);

        p = parse(CMD_B, quiet_in_b);
        ck_assert_int_eq(p.r, -EINVAL);
        ck_assert_str_eq(p.err, "unknown option '--quiet'");

        /* Mask 0 offers everything. */
        p = parse(0, quiet_in_b);
        ck_assert_int_eq(p.r, 0);
}
END_TEST

START_TEST(test_usage_errors_are_one_line_and_name_the_option) {
        char *missing[] = { "prog", "--port", NULL };
        char *missing_short[] = { "prog", "-p", NULL };
        char *flag_value[] = { "prog", "--quiet=yes", NULL };
        char *unknown_short[] = { "prog", "-z", NULL };
        Parsed p;

        p = parse(CMD_A, missing);
        ck_assert_int_eq(p.r, -EINVAL);
        ck_assert_str_eq(p.err, "option '--port' needs a value");
        p = parse(CMD_A, missing_short);
        ck_assert_str_eq(p.err, "option '-p' needs a value");
        p = parse(CMD_A, flag_value);
        ck_assert_str_eq(p.err, "option '--quiet' takes no value");
        p = parse(CMD_A, unknown_short);
        ck_assert_str_eq(p.err, "unknown option '-z'");
}
END_TEST

START_TEST(test_value_error_names_the_option) {
        char err[128];

        ck_assert_int_eq(option_value_error(err, sizeof err, &table[OPT_PORT], "x", -EINVAL, "1..65535"),
                         -EINVAL);
        ck_assert_str_eq(err, "--port: invalid value 'x' (expected 1..65535)");
        option_value_error(err, sizeof err, &table[OPT_PORT], "70000", -ERANGE, "1..65535");
        ck_assert_str_eq(err, "--port: value '70000' out of range (expected 1..65535)");
}
END_TEST

START_TEST(test_too_many_options_is_refused) {
        static OptionInfo big[OPTIONS_MAX + 1];
        OptionParser op;
        char *argv[] = { "prog", NULL };

        ck_assert_int_eq(option_parser_init(&op, big, ELEMENTSOF(big), 0, 1, argv), -E2BIG);
}
END_TEST

static char *help_of(unsigned mask) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        ck_assert_ptr_nonnull(f);
        option_help(f, table, _OPT_MAX, mask);
        fclose(f);
        return text;
}

START_TEST(test_help_lists_the_command_options_with_defaults) {
        char *a = help_of(CMD_A), *b = help_of(CMD_B);

        ck_assert_ptr_nonnull(
                strstr(a, "  -p, --port=PORT               Port to connect to (default: 9999)\n"));
        ck_assert_ptr_nonnull(strstr(a, "  -q, --quiet                   Say nothing\n"));
        ck_assert_ptr_nonnull(strstr(a, "--count=N"));
        ck_assert_ptr_null(strstr(a, "--config"));
        ck_assert_ptr_nonnull(strstr(b, "  -c, --config=FILE             Configuration file, for B\n"));
        ck_assert_ptr_null(strstr(b, "--quiet"));
        free(a);
        free(b);
}
END_TEST

START_TEST(test_help_wraps_at_79_columns) {
        char *a = help_of(CMD_A);
        size_t lines = 0;

        for (char *line = a, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                ck_assert_ptr_nonnull(nl);
                ck_assert_msg(nl - line <= OPTIONS_HELP_WIDTH, "line too long: %.*s", (int)(nl - line),
                              line);
                /* Continuation lines are indented to the description column. */
                if (line[0] == ' ' && line[2] != '-' && line[6] != '-')
                        ck_assert_int_eq((int)strspn(line, " "), OPTIONS_HELP_COLUMN);
                lines++;
        }
        /* The long option's name alone fills the left column: its text starts below. */
        ck_assert_ptr_nonnull(strstr(a, "--a-rather-long-option-name=SOME-ARGUMENT\n"));
        ck_assert_uint_ge(lines, 9);
        free(a);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("options");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_long_short_and_values);
        tcase_add_test(tc, test_mask_selects_the_command_options);
        tcase_add_test(tc, test_usage_errors_are_one_line_and_name_the_option);
        tcase_add_test(tc, test_value_error_names_the_option);
        tcase_add_test(tc, test_too_many_options_is_refused);
        suite_add_tcase(s, tc);

        tc = tcase_create("help");
        tcase_add_test(tc, test_help_lists_the_command_options_with_defaults);
        tcase_add_test(tc, test_help_wraps_at_79_columns);
        suite_add_tcase(s, tc);
        return s;
}
