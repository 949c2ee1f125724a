/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unescape.h"

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int fail(const char **ret_reason, const char *reason) {
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}

/* The one-character escapes, as pairs: the letter, then the byte it stands for. */
static const char simple_escapes[] = "\\\\\"\"''a\ab\be\033f\fn\nr\rt\tv\v";

static int simple_escape(char c) {
        for (size_t i = 0; i + 1 < sizeof simple_escapes; i += 2)
                if (simple_escapes[i] == c)
                        return (unsigned char)simple_escapes[i + 1];
        return -1;
}

int unescape(const char *s, char **ret, size_t *ret_len, const char **ret_reason) {
        size_t n = 0;
        char *buf;

        /* Decoding never makes text longer. */
        buf = malloc(strlen(s) + 1);
        if (!buf)
                return -ENOMEM;

        while (*s) {
                unsigned v = 0;
                int d;

                if (*s != '\\') {
                        buf[n++] = *s++;
                        continue;
                }
                s++;

                d = *s ? simple_escape(*s) : -1;
                if (d >= 0) {
                        buf[n++] = (char)d;
                        s++;
                } else if (*s == 'x') {
                        /* One or two hex digits. */
                        s++;
                        for (int i = 0; i < 2 && (d = hex_value(*s)) >= 0; i++, s++)
                                v = v * 16 + (unsigned)d;
                        if (s[-1] == 'x') {
                                free(buf);
                                return fail(ret_reason, "\\x needs one or two hex digits");
                        }
                        buf[n++] = (char)v;
                } else if (*s >= '0' && *s <= '7') {
                        /* One to three octal digits. */
                        for (int i = 0; i < 3 && *s >= '0' && *s <= '7'; i++, s++)
                                v = v * 8 + (unsigned)(*s - '0');
                        if (v > 0xff) {
                                free(buf);
                                return fail(ret_reason, "octal escape above \\377");
                        }
                        buf[n++] = (char)v;
                } else {
                        free(buf);
                        return fail(ret_reason, *s ? "unknown escape (use \\\\ \\n \\r \\t \\0 \\xHH ...)"
                                                   : "trailing backslash (write \\\\ for a backslash)");
                }
        }
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
}
