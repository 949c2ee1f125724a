/* SPDX-License-Identifier: MIT */
/*
 * escape_bytes() (escape.c), which renders client bytes for the log, against
 * its specification: the output fits the buffer, holds only printable ASCII,
 * and is the escaped form of the input's first bytes, cut only between two
 * escapes and only when max_input or the buffer says so, with "..." then.
 *
 * Input: byte 0 is the output buffer's size, byte 1 max_input; the rest are
 * the client's bytes.
 */
#include "escape.h"
#include "fuzz.h"

/* The escape of one byte, as the log shows it. */
static size_t escape_one(unsigned char c, char out[static 4]) {
        static const char hex[] = "0123456789abcdef";

        switch (c) {
        case '\\':
                memcpy(out, "\\\\", 2);
                return 2;
        case '"':
                memcpy(out, "\\\"", 2);
                return 2;
        case '\n':
                memcpy(out, "\\n", 2);
                return 2;
        case '\r':
                memcpy(out, "\\r", 2);
                return 2;
        case '\t':
                memcpy(out, "\\t", 2);
                return 2;
        default:
                if (c >= 0x20 && c < 0x7f) {
                        out[0] = (char)c;
                        return 1;
                }
                out[0] = '\\';
                out[1] = 'x';
                out[2] = hex[c >> 4];
                out[3] = hex[c & 0xf];
                return 4;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t out_size, max_input, len, n, used = 0, i;
        const uint8_t *bytes;
        char *out;

        if (size < 2)
                return 0;
        out_size = data[0];
        max_input = data[1];
        bytes = data + 2;
        len = size - 2;

        /* Exactly out_size bytes (one more as a canary when it is 0). */
        out = malloc(out_size > 0 ? out_size : 1);
        fuzz_assert(out);
        out[0] = '#';
        n = escape_bytes(out, out_size, bytes, len, max_input);

        if (out_size < 4) {
                fuzz_assert(n == 0);
                fuzz_assert(out_size == 0 ? out[0] == '#' : out[0] == '\0');
                free(out);
                return 0;
        }

        fuzz_assert(n < out_size && strlen(out) == n);
        for (i = 0; i < n; i++)
                fuzz_assert((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f);

        /* Walk the expected escapes along the output, as far as they match. */
        for (i = 0; i < len && i < max_input; i++) {
                char e[4];
                size_t k = escape_one(bytes[i], e);

                if (used + k + 4 > out_size)
                        break; /* does not fit with room for "..." and the NUL */
                fuzz_assert(used + k <= n && memcmp(out + used, e, k) == 0);
                used += k;
        }
        if (i == len) {
                /* Everything rendered. */
                fuzz_assert(n == used);
        } else {
                /* Cut by max_input or by the buffer, and said so. */
                fuzz_assert(n == used + 3 && memcmp(out + used, "...", 3) == 0);
        }

        /* The documented worst case is always enough for max_input bytes. */
        if (out_size >= ESCAPE_BUFFER_SIZE(max_input) && len <= max_input)
                fuzz_assert(i == len);

        free(out);
        return 0;
}
