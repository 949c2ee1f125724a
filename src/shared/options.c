/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "escape.h"
#include "macro.h"
#include "options.h"

/* getopt_long returns this plus the table index for a long option, above every char. */
#define LONG_BASE 0x100

bool option_matches(const OptionInfo *o, unsigned mask) {
        return (o->flags & mask) == mask;
}

int option_parser_init(OptionParser *p, const OptionInfo *table, size_t n, unsigned mask, int argc,
                       char *argv[]) {
        size_t k = 0, s = 0;

        if (n > OPTIONS_MAX)
                return -E2BIG;

        *p = (OptionParser){ .table = table, .n = n, .mask = mask, .argc = argc, .argv = argv };

        /* A leading ':' makes getopt tell a missing value (':') from an unknown option ('?'). */
        p->shortopts[s++] = ':';
        for (size_t i = 0; i < n; i++) {
                const OptionInfo *o = &table[i];

                if (!option_matches(o, mask))
                        continue;
                p->longopts[k++] = (struct option){
                        .name = o->name,
                        .has_arg = o->argument ? required_argument : no_argument,
                        .val = LONG_BASE + (int)i,
                };
                if (o->short_name) {
                        p->shortopts[s++] = (char)o->short_name;
                        if (o->argument)
                                p->shortopts[s++] = ':';
                }
        }
        p->longopts[k] = (struct option){ 0 };
        p->shortopts[s] = '\0';

        optind = 0; /* 0, not 1: also resets glibc's internal state from an earlier parse */
        opterr = 0; /* errors are ours to word */
        return 0;
}

int option_error(char *err, size_t err_size, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        (void)vsnprintf(err, err_size, format, ap);
        va_end(ap);
        return -EINVAL;
}

static int short_option_index(const OptionParser *p, int c) {
        /* Two commands may give one letter different meanings: look only at those offered. */
        for (size_t i = 0; i < p->n; i++)
                if (p->table[i].short_name == c && option_matches(&p->table[i], p->mask))
                        return (int)i;
        return -ENOENT;
}

int option_parser_next(OptionParser *p, size_t *ret_id, const char **ret_value, char *err, size_t err_size) {
        char quoted[ESCAPE_QUOTE_SIZE];
        int c, i;

        c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
        if (c == -1)
                return 0;

        if (c == '?') {
                if (optopt >= LONG_BASE)
                        return option_error(err, err_size, "option '--%s' takes no value",
                                            p->table[optopt - LONG_BASE].name);
                if (optopt > 0)
                        return option_error(
                                err, err_size, "unknown option '-%s'",
                                escape_string(quoted, sizeof quoted, (char[]){ (char)optopt, 0 }));
                return option_error(err, err_size, "unknown option '%s'",
                                    escape_string(quoted, sizeof quoted, p->argv[optind - 1]));
        }
        if (c == ':')
                return option_error(err, err_size, "option '%s' needs a value",
                                    escape_string(quoted, sizeof quoted, p->argv[optind - 1]));

        i = c >= LONG_BASE ? c - LONG_BASE : short_option_index(p, c);
        if (i < 0 || (size_t)i >= p->n)
                return option_error(err, err_size, "unknown option '-%c'", c);

        *ret_id = (size_t)i;
        *ret_value = p->table[i].argument ? optarg : NULL;
        return 1;
}

int option_parser_operands(const OptionParser *p) {
        return optind;
}

int option_value_error(char *err, size_t err_size, const OptionInfo *o, const char *value, int r,
                       const char *expected) {
        if (r == -ERANGE)
                return option_error(err, err_size, "--%s: value '%s' out of range (expected %s)", o->name,
                                    value, expected);
        return option_error(err, err_size, "--%s: invalid value '%s' (expected %s)", o->name, value,
                            expected);
}

void option_print_wrapped(FILE *f, const char *text, int column, int indent, int width) {
        const char *p = text;

        while (*p) {
                int word = (int)strcspn(p, " ");

                /* A word that does not fit goes to the next line, unless it starts one. */
                if (column > indent && column + 1 + word > width) {
                        fprintf(f, "\n%*s", indent, "");
                        column = indent;
                } else if (column > indent) {
                        fputc(' ', f);
                        column++;
                }
                fprintf(f, "%.*s", word, p);
                column += word;
                p += word;
                p += strspn(p, " ");
        }
        fputc('\n', f);
}

void option_help(FILE *f, const OptionInfo *table, size_t n, unsigned mask) {
        for (size_t i = 0; i < n; i++) {
                const OptionInfo *o = &table[i];
                char left[128], help[1024];
                int k;

                if (!option_matches(o, mask))
                        continue;

                k = snprintf(left, sizeof left, "  %c%c%c --%s%s%s", o->short_name ? '-' : ' ',
                             o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->name,
                             o->argument ? "=" : "", o->argument ? o->argument : "");
                if (o->default_value)
                        (void)snprintf(help, sizeof help, "%s (default: %s)", o->help, o->default_value);
                else
                        (void)snprintf(help, sizeof help, "%s", o->help);

                /* A long left column pushes the description to the next line. */
                fputs(left, f);
                if (k >= OPTIONS_HELP_COLUMN)
                        fprintf(f, "\n%*s", OPTIONS_HELP_COLUMN, "");
                else
                        fprintf(f, "%*s", OPTIONS_HELP_COLUMN - k, "");
                option_print_wrapped(f, help, OPTIONS_HELP_COLUMN, OPTIONS_HELP_COLUMN, OPTIONS_HELP_WIDTH);
        }
}
