/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Command-line options defined once, in a table of OptionInfo (usually built
 * from an X-macro list), which drives both getopt_long and --help, so the two
 * can never disagree:
 *
 *         #define MY_OPTIONS(X)                                                  \
 *                 X(PORT, "port", 'p', "PORT", "9999", 0, "Port to connect to")   \
 *                 X(HELP, "help", 'h', NULL, NULL, 0, "Print this help and exit")
 *
 *         enum { MY_OPTIONS(AS_ENUM) _MY_MAX };
 *         static const OptionInfo table[_MY_MAX] = { MY_OPTIONS(AS_INFO) };
 *
 *         OptionParser p;
 *         option_parser_init(&p, table, _MY_MAX, 0, argc, argv);
 *         while ((r = option_parser_next(&p, &id, &value, err, sizeof err)) > 0)
 *                 switch (id) { ... }
 *
 * `flags` is for the caller: bits saying which subcommands accept an option, or
 * whether a configuration file may set it. A parser or help listing built with
 * a mask only offers the options whose flags contain every bit of the mask.
 *
 * getopt_long keeps global state, so only one OptionParser may be in use at a
 * time (as with getopt itself).
 */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "macro.h"

/* Options in one table; the parser's arrays are sized by it, nothing is allocated. */
#define OPTIONS_MAX 64

/* Wrapping of --help: descriptions start at this column, and lines end before WIDTH. */
#define OPTIONS_HELP_COLUMN 32
#define OPTIONS_HELP_WIDTH  79

typedef struct OptionInfo {
        const char *name;          /* long name, without "--" */
        int short_name;            /* 'x', or 0 for none */
        const char *argument;      /* placeholder shown in --help, e.g. "N"; NULL: a flag */
        const char *default_value; /* shown in --help; NULL: none */
        unsigned flags;            /* caller-defined bits, matched against a mask */
        const char *help;          /* one sentence or two, no final period */
} OptionInfo;

typedef struct OptionParser {
        const OptionInfo *table;
        size_t n;
        unsigned mask;
        int argc;
        char **argv;
        struct option longopts[OPTIONS_MAX + 1];
        char shortopts[1 + 2 * OPTIONS_MAX + 1];
} OptionParser;

/* True when the option is offered under mask (0 offers every option). */
bool option_matches(const OptionInfo *o, unsigned mask);

/* Builds the getopt_long tables. Returns -E2BIG if the table has more than OPTIONS_MAX entries. */
int option_parser_init(OptionParser *p, const OptionInfo *table, size_t n, unsigned mask, int argc,
                       char *argv[]);

/*
 * The next option: returns 1 with *ret_id its index in the table and *ret_value its
 * argument (NULL for a flag); 0 when no option is left (the operands then start at
 * option_parser_operands()); or -EINVAL with a one-line message in err for an unknown
 * option, a missing value, or a value given to a flag.
 */
int option_parser_next(OptionParser *p, size_t *ret_id, const char **ret_value, char *err, size_t err_size);

/* After option_parser_next() returned 0: the index in argv of the first operand. */
int option_parser_operands(const OptionParser *p);

/* Formats a one-line error into err and returns -EINVAL, so that a parse function can end with it. */
int option_error(char *err, size_t err_size, const char *format, ...) _printf_(3, 4);

/*
 * Formats the one-line error for a bad value, naming the option:
 *   "--port: invalid value 'x' (expected 1..65535)", or, when r is -ERANGE,
 *   "--port: value '70000' out of range (expected 1..65535)". Returns -EINVAL, so it can end a parse
 * function.
 */
int option_value_error(char *err, size_t err_size, const OptionInfo *o, const char *value, int r,
                       const char *expected);

/* Lists the options offered under mask, one per entry, descriptions wrapped at
 * OPTIONS_HELP_WIDTH columns and followed by "(default: ...)" when there is one. */
void option_help(FILE *f, const OptionInfo *table, size_t n, unsigned mask);

/* Prints text wrapped at `width` columns; the cursor is at `column`, and continuation
 * lines are indented by `indent`. Ends with a newline. */
void option_print_wrapped(FILE *f, const char *text, int column, int indent, int width);
