/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include "escape.h"

size_t escape_bytes(char *out, size_t out_size, const void *data, size_t len, size_t max_input) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = data;
        size_t n = 0;

        if (out_size < 4) {
                if (out_size > 0)
                        out[0] = '\0';
                return 0;
        }

        for (size_t i = 0; i < len; i++) {
                unsigned char c = p[i];
                char tmp[4];
                size_t k = 0;

                if (i >= max_input)
                        goto truncated;

                switch (c) {
                case '\\': tmp[k++] = '\\'; tmp[k++] = '\\'; break;
                case '"':  tmp[k++] = '\\'; tmp[k++] = '"'; break;
                case '\n': tmp[k++] = '\\'; tmp[k++] = 'n'; break;
                case '\r': tmp[k++] = '\\'; tmp[k++] = 'r'; break;
                case '\t': tmp[k++] = '\\'; tmp[k++] = 't'; break;
                default:
                        if (c >= 0x20 && c < 0x7f)
                                tmp[k++] = (char)c;
                        else {
                                tmp[k++] = '\\';
                                tmp[k++] = 'x';
                                tmp[k++] = hex[c >> 4];
                                tmp[k++] = hex[c & 0xf];
                        }
                }

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
