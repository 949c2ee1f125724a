/* SPDX-License-Identifier: MIT */
/*
 * C escapes in --message and --expect: every escape, NUL bytes inside the
 * result, and errors for anything that is not an escape (never a silent guess).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unescape.h"

static void assert_decodes(const char *in, const char *out, size_t out_len) {
        const char *reason = NULL;
        size_t len = 0;
        char *buf = NULL;
        int r;

        r = unescape(in, &buf, &len, &reason);
        ck_assert_msg(r == 0, "'%s' rejected: %s", in, reason ? reason : "?");
        ck_assert_msg(len == out_len, "'%s' decoded to %zu bytes, expected %zu", in, len, out_len);
        ck_assert_msg(memcmp(buf, out, len) == 0, "'%s' decoded wrongly", in);
        ck_assert_int_eq(buf[len], '\0');
        free(buf);
}

static void assert_rejects(const char *in) {
        const char *reason = NULL;
        char *buf = NULL;
        size_t len = 0;

        ck_assert_int_eq(unescape(in, &buf, &len, &reason), -EINVAL);
        ck_assert_ptr_nonnull(reason);
        ck_assert_ptr_null(buf);
}

START_TEST(test_plain_text_is_unchanged) {
        assert_decodes("", "", 0);
        assert_decodes("ACK!", "ACK!", 4);
        assert_decodes("PING", "PING", 4);
}
END_TEST

START_TEST(test_simple_escapes) {
        assert_decodes("+PONG\\r\\n", "+PONG\r\n", 7);
        assert_decodes("\\t\\v\\f\\a\\b\\e", "\t\v\f\a\b\x1b", 6);
        assert_decodes("\\\\ \\\" \\'", "\\ \" '", 5);
        assert_decodes("ACK!\\n", "ACK!\n", 5);
}
END_TEST

START_TEST(test_hex_and_octal_escapes) {
        assert_decodes("\\x41\\x4a", "AJ", 2);
        assert_decodes("\\xff", "\xff", 1);
        assert_decodes("\\x7zz", "\x07zz", 3); /* one hex digit is enough */
        assert_decodes("\\x414", "A4", 2);     /* at most two */
        assert_decodes("\\101\\0", "A\0", 2);
        assert_decodes("\\1234", "S4", 2); /* at most three octal digits */
        assert_decodes("\\377", "\xff", 1);
}
END_TEST

START_TEST(test_nul_bytes_are_kept) {
        assert_decodes("a\\0b\\x00c", "a\0b\0c", 5);
}
END_TEST

START_TEST(test_bad_escapes_are_errors) {
        assert_rejects("\\");
        assert_rejects("abc\\");
        assert_rejects("\\q");
        assert_rejects("\\xg");
        assert_rejects("\\x");
        assert_rejects("\\400");
        assert_rejects("\\N");
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("unescape");
        TCase *tc = tcase_create("unescape");

        tcase_add_test(tc, test_plain_text_is_unchanged);
        tcase_add_test(tc, test_simple_escapes);
        tcase_add_test(tc, test_hex_and_octal_escapes);
        tcase_add_test(tc, test_nul_bytes_are_kept);
        tcase_add_test(tc, test_bad_escapes_are_errors);
        suite_add_tcase(s, tc);
        return s;
}
