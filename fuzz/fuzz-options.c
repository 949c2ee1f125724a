/* SPDX-License-Identifier: MIT */
/*
 * Command lines. The input is split at LF into arguments (after a first byte
 * that picks an option mask), and parsed twice:
 *
 *   - as ackd's: command_line_parse(), then settings_load() with the config
 *     file forced to /dev/null, as main() does; either succeeds with settings
 *     in range, or fails with a message;
 *   - by the shared OptionParser (options.c) over a table with flags, as ackc
 *     uses it for its subcommands: every option it returns is in the table and
 *     offered under the mask, has a value exactly when it takes one, and the
 *     operands start within argv. The help and error formatters run too.
 */
#include <errno.h>

#include "fuzz-settings.h"
#include "options.h"

#define ARGS_MAX 64

enum {
        FLAG_A = 1u << 0,
        FLAG_B = 1u << 1,
};

static const OptionInfo table[] = {
        { "alpha", 'a', "N", "1", FLAG_A, "A value, offered under mask A" },
        { "beta", 'b', NULL, NULL, FLAG_B, "A flag, offered under mask B" },
        { "beta-more", 0, "TEXT", NULL, FLAG_B, "Shares a prefix with beta" },
        { "gamma", 'g', "X", NULL, FLAG_A | FLAG_B, "A value offered under every mask" },
        { "delta", 'd', NULL, NULL, 0, "A flag offered only when the mask is 0" },
        { "a", 'A', "Y", "a default value that is long enough to wrap the help text at least once or twice",
          0, "A one-letter long name" },
        { "help", 'h', NULL, NULL, FLAG_A | FLAG_B, "Print this help and exit" },
};

/* Splits the input at LF into argv[1..]: argv[0] is the program name. Returns argc. */
static int split_args(const uint8_t *data, size_t size, char *copy, char **argv) {
        int argc = 0;
        size_t start = 0;

        argv[argc++] = (char *)"ackd";
        argv[argc] = NULL;
        if (size == 0)
                return argc;
        memcpy(copy, data, size);
        copy[size] = '\0';
        for (size_t i = 0; i <= size && argc < ARGS_MAX; i++)
                if (i == size || copy[i] == '\n') {
                        copy[i] = '\0';
                        argv[argc++] = copy + start;
                        start = i + 1;
                }
        argv[argc] = NULL;
        return argc;
}

static void check_ackd_command_line(int argc, char **argv) {
        char err[SETTINGS_ERROR_MAX];
        CommandLine c;
        Settings s;
        int r;

        memset(err, 'x', sizeof err);
        r = command_line_parse(argc, argv, &c, err, sizeof err);
        if (r < 0) {
                fuzz_assert(r == -EINVAL);
                fuzz_check_error(err, sizeof err);
                return;
        }

        fuzz_assert(c.n_values <= (size_t)argc);
        for (size_t i = 0; i < c.n_values; i++) {
                fuzz_assert(c.values[i].id < _OPTION_MAX);
                fuzz_assert(option_table[c.values[i].id].argument && c.values[i].value);
                fuzz_assert(option_table[c.values[i].id].flags & OPTION_IN_CONFIG);
        }

        /* Never read a file the input names: /dev/null is an empty configuration. */
        c.config_path = "/dev/null";
        c.config_explicit = true;
        memset(err, 'x', sizeof err);
        r = settings_load(&c, &s, err, sizeof err);
        if (r < 0) {
                fuzz_assert(r == -EINVAL);
                fuzz_check_error(err, sizeof err);
                fuzz_assert(strncmp(err, "--", 2) == 0);
        } else {
                fuzz_check_settings(&s);
                fuzz_assert(s.n_listen >= 1);
        }
        command_line_done(&c);
}

static void check_option_parser(int argc, char **argv, unsigned mask, FILE *sink, int column, int width) {
        char err[256];
        const char *value;
        OptionParser p;
        size_t id, steps = 0, max_steps = 0;
        int r;

        /* Each option takes at least one byte of argv ("-abc" is three). */
        for (int i = 1; i < argc; i++)
                max_steps += strlen(argv[i]);

        fuzz_assert(option_parser_init(&p, table, sizeof table / sizeof table[0], mask, argc, argv) == 0);
        while ((r = option_parser_next(&p, &id, &value, err, sizeof err)) > 0) {
                fuzz_assert(++steps <= max_steps);
                fuzz_assert(id < sizeof table / sizeof table[0]);
                fuzz_assert(option_matches(&table[id], mask));
                fuzz_assert(!table[id].argument == !value);
                if (value) {
                        fuzz_assert(option_value_error(err, sizeof err, &table[id], value, -ERANGE,
                                                       "1..9") == -EINVAL);
                        fuzz_check_error(err, sizeof err);
                        option_print_wrapped(sink, value, column, column / 2, width);
                }
        }
        if (r < 0) {
                fuzz_assert(r == -EINVAL);
                fuzz_check_error(err, sizeof err);
        } else {
                fuzz_assert(option_parser_operands(&p) >= 1 && option_parser_operands(&p) <= argc);
        }
        option_help(sink, table, sizeof table / sizeof table[0], mask);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *sink;
        char *argv[ARGS_MAX + 1], *copy;
        unsigned mask;
        int argc;

        if (size < 1)
                return 0;
        if (!sink) {
                sink = fopen("/dev/null", "we");
                fuzz_assert(sink);
        }
        mask = data[0] & (FLAG_A | FLAG_B);

        copy = malloc(size);
        fuzz_assert(copy);
        argc = split_args(data + 1, size - 1, copy, argv);
        check_ackd_command_line(argc, argv);

        /* getopt_long permutes argv: split again for a parse from scratch. */
        argc = split_args(data + 1, size - 1, copy, argv);
        check_option_parser(argc, argv, mask, sink, data[0] >> 2, 40 + (data[0] & 0x3f));

        free(copy);
        return 0;
}
