/* SPDX-License-Identifier: MIT */
/*
 * Client bytes rendered for a log line: unambiguous, free of control bytes,
 * bounded by ESCAPE_BUFFER_SIZE(), and safe with any output buffer.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "macro.h"

#define CANARY 0x5a

/* Undoes escape_bytes(); returns the decoded length, or -1 if s is not something it can produce. */
static int unescape(const char *s, unsigned char *out) {
        int n = 0;

        while (*s) {
                unsigned char c = (unsigned char)*s++;

                if (c < 0x20 || c >= 0x7f || c == '"')
                        return -1;
                if (c != '\\') {
                        out[n++] = c;
                        continue;
                }
                switch (*s++) {
                case '\\':
                        out[n++] = '\\';
                        break;
                case '"':
                        out[n++] = '"';
                        break;
                case 'n':
                        out[n++] = '\n';
                        break;
                case 'r':
                        out[n++] = '\r';
                        break;
                case 't':
                        out[n++] = '\t';
                        break;
                case 'x': {
                        static const char hex[] = "0123456789abcdef";
                        const char *hi, *lo;

                        if (!s[0] || !s[1])
                                return -1;
                        hi = strchr(hex, s[0]);
                        lo = strchr(hex, s[1]);
                        if (!hi || !lo)
                                return -1;
                        out[n++] = (unsigned char)((hi - hex) << 4 | (lo - hex));
                        s += 2;
                        break;
                }
                default:
                        return -1;
                }
        }
        return n;
}

static void assert_escapes(const void *in, size_t len, const char *expected) {
        char out[ESCAPE_BUFFER_SIZE(64)];
        size_t n;

        n = escape_bytes(out, sizeof out, in, len, 64);
        ck_assert_str_eq(out, expected);
        ck_assert_uint_eq(n, strlen(expected));
}

START_TEST(test_printable_ascii_passes_through) {
        assert_escapes("Hello World!", 12, "Hello World!");
        assert_escapes(" ~'{}[]$%&", 10, " ~'{}[]$%&");
        assert_escapes("", 0, "");
}
END_TEST

START_TEST(test_backslash_and_quote_are_escaped) {
        assert_escapes("a\\b", 3, "a\\\\b");
        assert_escapes("say \"hi\"", 8, "say \\\"hi\\\"");
}
END_TEST

START_TEST(test_newline_cr_and_tab_use_short_escapes) {
        assert_escapes("a\nb", 3, "a\\nb");
        assert_escapes("\r\n", 2, "\\r\\n");
        assert_escapes("\t", 1, "\\t");
}
END_TEST

START_TEST(test_other_control_and_high_bytes_use_hex) {
        assert_escapes("\0", 1, "\\x00");
        assert_escapes("a\0b", 3, "a\\x00b");
        assert_escapes("\x1b[31m", 5, "\\x1b[31m");
        assert_escapes("\x7f", 1, "\\x7f");
        assert_escapes("\x80", 1, "\\x80");
        assert_escapes("\xff", 1, "\\xff");
        assert_escapes("\xc3\xa9", 2, "\\xc3\\xa9");
        assert_escapes("\x01\x1f", 2, "\\x01\\x1f");
}
END_TEST

START_TEST(test_null_data_with_zero_length_is_empty) {
        char out[8];

        memset(out, 'X', sizeof out);
        ck_assert_uint_eq(escape_bytes(out, sizeof out, NULL, 0, 16), 0);
        ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_output_never_holds_a_control_byte_and_decodes_back) {
        unsigned char all[256], decoded[256];
        char out[ESCAPE_BUFFER_SIZE(256)];
        size_t n;

        /* Each byte value alone ... */
        for (unsigned b = 0; b < 256; b++) {
                unsigned char in = (unsigned char)b;

                n = escape_bytes(out, sizeof out, &in, 1, 1);
                ck_assert_uint_eq(n, strlen(out));
                for (size_t i = 0; i < n; i++)
                        ck_assert_msg((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f,
                                      "byte 0x%02x gave 0x%02x", b, (unsigned char)out[i]);
                ck_assert_int_eq(unescape(out, decoded), 1);
                ck_assert_int_eq(decoded[0], b);
        }

        /* ... and all of them in a row. */
        for (unsigned b = 0; b < 256; b++)
                all[b] = (unsigned char)b;
        n = escape_bytes(out, sizeof out, all, sizeof all, sizeof all);
        ck_assert_uint_eq(n, strlen(out));
        for (size_t i = 0; i < n; i++)
                ck_assert((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f);
        ck_assert_int_eq(unescape(out, decoded), 256);
        ck_assert_mem_eq(decoded, all, 256);
}
END_TEST

START_TEST(test_input_beyond_max_input_is_cut_with_dots) {
        char out[64];

        ck_assert_uint_eq(escape_bytes(out, sizeof out, "abcdef", 6, 3), 6);
        ck_assert_str_eq(out, "abc...");
        /* Exactly max_input bytes: nothing was cut, so no dots. */
        ck_assert_uint_eq(escape_bytes(out, sizeof out, "abc", 3, 3), 3);
        ck_assert_str_eq(out, "abc");
        ck_assert_uint_eq(escape_bytes(out, sizeof out, "abcd", 4, 0), 3);
        ck_assert_str_eq(out, "...");
        ck_assert_uint_eq(escape_bytes(out, sizeof out, "\n\n\n", 3, 2), 7);
        ck_assert_str_eq(out, "\\n\\n...");
}
END_TEST

START_TEST(test_small_output_cuts_with_dots_instead_of_overflowing) {
        char out[16];
        size_t n;

        memset(out, CANARY, sizeof out);
        n = escape_bytes(out, 8, "abcdefghij", 10, 100);
        ck_assert_str_eq(out, "abcd...");
        ck_assert_uint_eq(n, 7);
        for (size_t i = 8; i < sizeof out; i++)
                ck_assert_int_eq(out[i], CANARY);

        /* An escape that does not fit whole is not split. */
        memset(out, CANARY, sizeof out);
        n = escape_bytes(out, 9, "ab\xff", 3, 100);
        ck_assert_str_eq(out, "ab...");
        ck_assert_uint_eq(n, 5);
        for (size_t i = 9; i < sizeof out; i++)
                ck_assert_int_eq(out[i], CANARY);
}
END_TEST

static void check_bound(const unsigned char *in, size_t len, size_t max_input) {
        size_t size = ESCAPE_BUFFER_SIZE(max_input);
        unsigned char *decoded = malloc(len + 1);
        char *out = malloc(size + 64);
        size_t n;
        int k;

        ck_assert_ptr_nonnull(out);
        ck_assert_ptr_nonnull(decoded);
        memset(out, CANARY, size + 64);
        n = escape_bytes(out, size, in, len, max_input);

        for (size_t i = size; i < size + 64; i++)
                ck_assert_msg((unsigned char)out[i] == CANARY, "max_input %zu len %zu: wrote past %zu",
                              max_input, len, size);
        ck_assert_uint_lt(n, size);
        ck_assert_uint_eq(strlen(out), n);

        /* The bound is also sufficient: everything up to max_input is rendered, nothing is lost. */
        if (len > max_input) {
                ck_assert_uint_ge(n, 3);
                ck_assert_str_eq(out + n - 3, "...");
                out[n - 3] = '\0';
        }
        k = unescape(out, decoded);
        ck_assert_int_eq(k, (int)MIN(len, max_input));
        ck_assert_mem_eq(decoded, in, (size_t)k);

        free(out);
        free(decoded);
}

START_TEST(test_escape_buffer_size_is_enough_for_worst_case_input) {
        unsigned char in[80];

        for (size_t max_input = 0; max_input <= 64; max_input++)
                for (unsigned fill = 0; fill < 4; fill++) {
                        static const unsigned char fills[] = { 0xff, '\\', 'a', 0x00 };

                        memset(in, fills[fill], sizeof in);
                        for (size_t len = max_input > 2 ? max_input - 2 : 0; len <= max_input + 2; len++)
                                check_bound(in, len, max_input);
                }
}
END_TEST

START_TEST(test_tiny_output_buffers_are_safe) {
        static const unsigned char inputs[][4] = { "abc", "\xff\xff\xff" };

        for (size_t size = 0; size <= 4; size++)
                for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                        char out[16];
                        size_t n;

                        memset(out, CANARY, sizeof out);
                        n = escape_bytes(out, size, inputs[i], 3, 3);
                        for (size_t j = size; j < sizeof out; j++)
                                ck_assert_msg(out[j] == CANARY, "size %zu: byte %zu written", size, j);
                        if (size == 0)
                                ck_assert_uint_eq(n, 0);
                        else {
                                ck_assert_uint_lt(n, size);
                                ck_assert_uint_eq(strlen(out), n);
                        }
                }
}
END_TEST

START_TEST(test_escape_string_quotes_user_input_for_error_messages) {
        char out[ESCAPE_QUOTE_SIZE], small[8];
        char long_input[400];

        ck_assert_str_eq(escape_string(out, sizeof out, "max-message"), "max-message");
        ck_assert_str_eq(escape_string(out, sizeof out, "\xef\xbb\xbflisten"), "\\xef\\xbb\\xbflisten");
        ck_assert_str_eq(escape_string(out, sizeof out, ""), "");
        /* 64 bytes that each need \xNN fit; longer input is cut, never overflows. */
        memset(long_input, 0x01, 64);
        long_input[64] = '\0';
        ck_assert_uint_eq(strlen(escape_string(out, sizeof out, long_input)), 64 * 4);
        memset(long_input, 'a', sizeof long_input - 1);
        long_input[sizeof long_input - 1] = '\0';
        escape_string(out, sizeof out, long_input);
        ck_assert_uint_eq(strlen(out), sizeof out - 1);
        ck_assert_str_eq(out + sizeof out - 4, "...");
        ck_assert_str_eq(escape_string(small, sizeof small, "abcdefgh"), "abcd...");
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("escape");
        TCase *tc;

        tc = tcase_create("escape");
        tcase_add_test(tc, test_printable_ascii_passes_through);
        tcase_add_test(tc, test_backslash_and_quote_are_escaped);
        tcase_add_test(tc, test_newline_cr_and_tab_use_short_escapes);
        tcase_add_test(tc, test_other_control_and_high_bytes_use_hex);
        tcase_add_test(tc, test_null_data_with_zero_length_is_empty);
        tcase_add_test(tc, test_output_never_holds_a_control_byte_and_decodes_back);
        suite_add_tcase(s, tc);

        tc = tcase_create("bounds");
        tcase_add_test(tc, test_input_beyond_max_input_is_cut_with_dots);
        tcase_add_test(tc, test_small_output_cuts_with_dots_instead_of_overflowing);
        tcase_add_test(tc, test_escape_buffer_size_is_enough_for_worst_case_input);
        tcase_add_test(tc, test_tiny_output_buffers_are_safe);
        tcase_add_test(tc, test_escape_string_quotes_user_input_for_error_messages);
        suite_add_tcase(s, tc);

        return s;
}
