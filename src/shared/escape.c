/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include "escape.h"

/* One byte as it is logged, into tmp (4 bytes); returns its length. */
static size_t escape_byte(unsigned char c, char tmp[static 4]) {
        static const char hex[] = "0123456789abcdef";
        /* The bytes with a name of their own after the backslash. */
        static const char named[128] = {
                ['\\'] = '\\', ['"'] = '"', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'
        };

        if (c < sizeof named && named[c]) {
                tmp[0] = '\\';
                tmp[1] = named[c];
                return 2;
        }
        if (c >= 0x20 && c < 0x7f) {
                tmp[0] = (char)c;
                return 1;
        }
        tmp[0] = '\\';
        tmp[1] = 'x';
        tmp[2] = hex[c >> 4];
        tmp[3] = hex[c & 0xf];
        return 4;
}

size_t escape_bytes(char *out, size_t out_size, const void *data, size_t len, size_t max_input) {
        const unsigned char *p = data;
        size_t n = 0;

        if (out_size < 4) {
                if (out_size > 0)
                        out[0] = '\0';
                return 0;
        }

        for (size_t i = 0; i < len; i++) {
                char tmp[4];
                size_t k;

                if (i >= max_input)
                        goto truncated;
                k = escape_byte(p[i], tmp);

                /* Always keep room for "..." and the NUL. */
                if (n + k + 4 > out_size)
                        goto truncated;
                memcpy(out + n, tmp, k);
                n += k;
        }
        out[n] = '\0';
        return n;

truncated:
        /* The room check above keeps n + 4 <= out_size. */
        memcpy(out + n, "...", 3);
        n += 3;
        out[n] = '\0';
        return n;
}

const char *escape_string(char *out, size_t out_size, const char *s) {
        (void)escape_bytes(out, out_size, s, strlen(s), SIZE_MAX);
        return out;
}
