/* SPDX-License-Identifier: MIT */
/*
 * The line-mode framing: what counts as a message, where it ends, when it is
 * too long, and that none of it depends on how the bytes are split into reads.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line-parser.h"
#include "macro.h"
#include "test-util.h"

#define BIG_MAX (1024 * 1024) /* a max_message no test message reaches */

typedef struct Recorded {
        const char *data;
        size_t len;
        size_t total;
} Recorded;

/* What the callback saw, in order, plus the chunk it was called for so data can be range-checked. */
typedef struct Recorder {
        Recorded *msgs;
        size_t n, cap;
        const char *chunk;
        size_t chunk_len;
} Recorder;

static void record(const LineMessage *m, void *userdata) {
        Recorder *r = userdata;

        /* The message's bytes must lie inside the chunk being fed. */
        ck_assert_ptr_nonnull(m->data);
        ck_assert(m->data >= r->chunk && m->data + m->len <= r->chunk + r->chunk_len);
        ck_assert_uint_le(m->len, m->total);

        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 64;
                r->msgs = realloc(r->msgs, r->cap * sizeof *r->msgs);
                ck_assert_ptr_nonnull(r->msgs);
        }
        r->msgs[r->n++] = (Recorded){ .data = m->data, .len = m->len, .total = m->total };
}

static void recorder_done(Recorder *r) {
        free(r->msgs);
        *r = (Recorder){ 0 };
}

/* Feeds one chunk and checks that the return value agrees with the callbacks. */
static size_t feed(LineParser *p, Recorder *r, const char *buf, size_t len, size_t max, bool *ret_too_long) {
        size_t before = r->n, n;

        r->chunk = buf;
        r->chunk_len = len;
        n = line_parser_feed(p, buf, len, max, record, r, ret_too_long);
        ck_assert_uint_eq(n, r->n - before);
        return n;
}

#define FEED_STR(p, r, s, max, too_long) feed((p), (r), (s), sizeof(s) - 1, (max), (too_long))

static void assert_message(const Recorder *r, size_t i, const char *data, size_t len, size_t total) {
        ck_assert_uint_gt(r->n, i);
        ck_assert_uint_eq(r->msgs[i].len, len);
        ck_assert_uint_eq(r->msgs[i].total, total);
        ck_assert_mem_eq(r->msgs[i].data, data, len);
}

START_TEST(test_single_message_is_reported_without_its_lf) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long = true;

        ck_assert_uint_eq(FEED_STR(&p, &r, "Hello World!\n", BIG_MAX, &too_long), 1);
        ck_assert(!too_long);
        assert_message(&r, 0, "Hello World!", 12, 12);
        ck_assert(!line_parser_finish(&p, NULL));
        recorder_done(&r);
}
END_TEST

START_TEST(test_cr_before_lf_is_not_part_of_the_message) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "abc\r\n\r\n", BIG_MAX, &too_long), 2);
        ck_assert(!too_long);
        assert_message(&r, 0, "abc", 3, 3);
        assert_message(&r, 1, "", 0, 0);
        recorder_done(&r);
}
END_TEST

START_TEST(test_lone_cr_inside_a_message_is_content) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        /* Only the CR right before the LF is framing; "\r\r\n" keeps the first CR. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "a\rb\n\rx\n\r\r\n", BIG_MAX, &too_long), 3);
        assert_message(&r, 0, "a\rb", 3, 3);
        assert_message(&r, 1, "\rx", 2, 2);
        assert_message(&r, 2, "\r", 1, 1);
        recorder_done(&r);
}
END_TEST

START_TEST(test_empty_lines_are_messages) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "\n\n\r\n\n", BIG_MAX, &too_long), 4);
        for (size_t i = 0; i < 4; i++)
                assert_message(&r, i, "", 0, 0);
        recorder_done(&r);
}
END_TEST

START_TEST(test_unterminated_tail_waits_for_its_lf) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "abc", BIG_MAX, &too_long), 0);
        ck_assert(!too_long);
        ck_assert_uint_eq(FEED_STR(&p, &r, "", BIG_MAX, &too_long), 0);
        /* The callback sees only this chunk's part, but the whole message's total. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "def\nx", BIG_MAX, &too_long), 1);
        assert_message(&r, 0, "def", 3, 6);
        recorder_done(&r);
}
END_TEST

START_TEST(test_null_callback_still_counts_messages) {
        LineParser p = { 0 };
        bool too_long;

        ck_assert_uint_eq(line_parser_feed(&p, "a\nb\nc", 5, BIG_MAX, NULL, NULL, &too_long), 2);
        ck_assert(!too_long);
}
END_TEST

START_TEST(test_too_long_flag_is_cleared_on_every_call) {
        LineParser p = { 0 };
        bool too_long = true;

        ck_assert_uint_eq(line_parser_feed(&p, "a\n", 2, BIG_MAX, NULL, NULL, &too_long), 1);
        ck_assert(!too_long);
}
END_TEST

START_TEST(test_ten_thousand_pipelined_messages_in_one_chunk) {
        enum { N = 10000 };
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t off = 0, cap = N * 48;
        char *buf = malloc(cap);
        bool too_long;

        ck_assert_ptr_nonnull(buf);
        /* Message i is i % 37 bytes of a letter, every third one CRLF-terminated. */
        for (size_t i = 0; i < N; i++) {
                memset(buf + off, 'a' + (int)(i % 26), i % 37);
                off += i % 37;
                if (i % 3 == 0)
                        buf[off++] = '\r';
                buf[off++] = '\n';
        }

        ck_assert_uint_eq(feed(&p, &r, buf, off, BIG_MAX, &too_long), N);
        ck_assert(!too_long);
        for (size_t i = 0; i < N; i++) {
                ck_assert_uint_eq(r.msgs[i].len, i % 37);
                ck_assert_uint_eq(r.msgs[i].total, i % 37);
                if (i % 37 > 0) {
                        ck_assert_int_eq(r.msgs[i].data[0], 'a' + (int)(i % 26));
                        ck_assert_int_eq(r.msgs[i].data[i % 37 - 1], 'a' + (int)(i % 26));
                }
        }
        ck_assert(!line_parser_finish(&p, NULL));
        recorder_done(&r);
        free(buf);
}
END_TEST

/* A stream with CRLF, empty lines, a lone CR, a CR at the end of a message and an unterminated tail. */
static const char split_stream[] = "one\r\n"
                                   "\n"
                                   "three\rX\n"
                                   "\r\n"
                                   "\r\r\n"
                                   "a\0b\n"
                                   "last-unterminated";
static const char *const split_messages[] = { "one", "", "three\rX", "", "\r" };
static const size_t split_lens[] = { 3, 0, 7, 0, 1, 3 }; /* the last is "a\0b" */

static void assert_split_messages(const Recorder *r) {
        ck_assert_uint_eq(r->n, ELEMENTSOF(split_lens));
        for (size_t i = 0; i < r->n; i++) {
                const char *expected = i < ELEMENTSOF(split_messages) ? split_messages[i] : "a\0b";

                ck_assert_uint_eq(r->msgs[i].total, split_lens[i]);
                /* What the callback saw is the tail of the message that lies in the last chunk. */
                ck_assert_mem_eq(r->msgs[i].data, expected + split_lens[i] - r->msgs[i].len, r->msgs[i].len);
        }
}

START_TEST(test_stream_split_at_every_byte_gives_the_same_messages) {
        const size_t n = sizeof(split_stream) - 1;

        for (size_t i = 0; i <= n; i++) {
                LineParser p = { 0 };
                Recorder r = { 0 };
                size_t total;
                bool too_long;

                feed(&p, &r, split_stream, i, BIG_MAX, &too_long);
                ck_assert(!too_long);
                feed(&p, &r, split_stream + i, n - i, BIG_MAX, &too_long);
                ck_assert(!too_long);

                ck_assert_msg(r.n == ELEMENTSOF(split_lens), "split at %zu: %zu messages", i, r.n);
                assert_split_messages(&r);
                ck_assert(line_parser_finish(&p, &total));
                ck_assert_uint_eq(total, strlen("last-unterminated"));
                recorder_done(&r);
        }
}
END_TEST

START_TEST(test_stream_fed_byte_by_byte_gives_the_same_messages) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total;
        bool too_long;

        for (size_t i = 0; i < sizeof(split_stream) - 1; i++) {
                feed(&p, &r, split_stream + i, 1, BIG_MAX, &too_long);
                ck_assert(!too_long);
        }
        assert_split_messages(&r);
        ck_assert(line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, strlen("last-unterminated"));
        recorder_done(&r);
}
END_TEST

/* An independent model of the framing, byte by byte: the totals of the complete messages. */
static size_t model_totals(const char *buf, size_t len, size_t *totals, size_t *ret_pending) {
        size_t n = 0, cur = 0;

        for (size_t i = 0; i < len; i++) {
                if (buf[i] != '\n') {
                        cur++;
                        continue;
                }
                totals[n++] = cur - (cur > 0 && buf[i - 1] == '\r');
                cur = 0;
        }
        *ret_pending = cur;
        return n;
}

START_TEST(test_random_chunkings_match_a_byte_by_byte_model) {
        enum { LEN = 64 * 1024, ROUNDS = 50 };
        static const char alphabet[] = "\n\r\r\0abcdefgh";
        char *buf = malloc(LEN);
        size_t *totals = malloc(LEN * sizeof *totals);
        uint64_t seed = 0x9e3779b97f4a7c15u;
        size_t n_expected, pending;

        ck_assert_ptr_nonnull(buf);
        ck_assert_ptr_nonnull(totals);
        /* Mostly short messages, dense in CR, LF and NUL, plus a few long runs without LF. */
        for (size_t i = 0; i < LEN; i++) {
                uint64_t x = xorshift(&seed);

                buf[i] = x % 64 == 0 ? 'z' : alphabet[(x >> 8) % (sizeof alphabet - 1)];
        }
        for (size_t i = 1000; i + 3000 <= LEN; i += 9000)
                memset(buf + i, 'y', 3000);
        n_expected = model_totals(buf, LEN, totals, &pending);
        ck_assert_uint_gt(n_expected, 1000);

        for (unsigned round = 0; round < ROUNDS; round++) {
                LineParser p = { 0 };
                Recorder r = { 0 };
                size_t off = 0, total;
                bool too_long;

                while (off < LEN) {
                        /* Chunk sizes from 0 to a few KiB, biased to small ones. */
                        size_t k = (size_t)(xorshift(&seed) % (round % 2 ? 4096 : 16));

                        k = MIN(k, (size_t)LEN - off);
                        feed(&p, &r, buf + off, k, BIG_MAX, &too_long);
                        ck_assert(!too_long);
                        off += k;
                }

                ck_assert_uint_eq(r.n, n_expected);
                for (size_t i = 0; i < n_expected; i++)
                        ck_assert_msg(r.msgs[i].total == totals[i], "round %u message %zu: %zu != %zu",
                                      round, i, r.msgs[i].total, totals[i]);
                ck_assert(line_parser_finish(&p, &total) == (pending > 0));
                recorder_done(&r);
        }
        free(totals);
        free(buf);
}
END_TEST

START_TEST(test_nul_bytes_are_ordinary_message_bytes) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "a\0b\n\0\n\0\r\n", BIG_MAX, &too_long), 3);
        assert_message(&r, 0, "a\0b", 3, 3);
        assert_message(&r, 1, "\0", 1, 1);
        assert_message(&r, 2, "\0", 1, 1);
        recorder_done(&r);
}
END_TEST

#define MAX_MSG 16
#define X16     "xxxxxxxxxxxxxxxx"

START_TEST(test_exactly_max_bytes_plus_lf_is_accepted) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\n", MAX_MSG, &too_long), 1);
        ck_assert(!too_long);
        assert_message(&r, 0, X16, MAX_MSG, MAX_MSG);
        recorder_done(&r);
}
END_TEST

START_TEST(test_max_plus_one_bytes_with_lf_is_too_long) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "x\n", MAX_MSG, &too_long), 0);
        ck_assert(too_long);
        recorder_done(&r);
}
END_TEST

START_TEST(test_max_plus_one_bytes_without_lf_is_too_long) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        /* max bytes pending are fine: the LF may still come. */
        ck_assert_uint_eq(FEED_STR(&p, &r, X16, MAX_MSG, &too_long), 0);
        ck_assert(!too_long);
        /* One more byte cannot be a message of at most max bytes any more. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "x", MAX_MSG, &too_long), 0);
        ck_assert(too_long);

        p = (LineParser){ 0 };
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "x", MAX_MSG, &too_long), 0);
        ck_assert(too_long);
        recorder_done(&r);
}
END_TEST

START_TEST(test_too_long_is_found_across_many_chunks) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        for (int i = 0; i < 8; i++) {
                ck_assert_uint_eq(FEED_STR(&p, &r, "xx", MAX_MSG, &too_long), 0);
                ck_assert(!too_long);
        }
        ck_assert_uint_eq(FEED_STR(&p, &r, "y", MAX_MSG, &too_long), 0);
        ck_assert(too_long);
        recorder_done(&r);
}
END_TEST

START_TEST(test_max_bytes_plus_crlf_is_accepted) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total;
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\r\n", MAX_MSG, &too_long), 1);
        ck_assert(!too_long);
        assert_message(&r, 0, X16, MAX_MSG, MAX_MSG);

        /* The same with the CR and LF in different reads. */
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\r", MAX_MSG, &too_long), 0);
        ck_assert(!too_long);
        ck_assert_uint_eq(FEED_STR(&p, &r, "\n", MAX_MSG, &too_long), 1);
        ck_assert(!too_long);
        assert_message(&r, 1, "", 0, MAX_MSG);
        ck_assert(!line_parser_finish(&p, &total));
        recorder_done(&r);
}
END_TEST

START_TEST(test_max_bytes_then_cr_then_more_is_too_long) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        /* The CR was content after all: max + 2 bytes. */
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\rx\n", MAX_MSG, &too_long), 0);
        ck_assert(too_long);

        p = (LineParser){ 0 };
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\rx", MAX_MSG, &too_long), 0);
        ck_assert(too_long);

        p = (LineParser){ 0 };
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\r", MAX_MSG, &too_long), 0);
        ck_assert(!too_long);
        ck_assert_uint_eq(FEED_STR(&p, &r, "x", MAX_MSG, &too_long), 0);
        ck_assert(too_long);

        p = (LineParser){ 0 };
        ck_assert_uint_eq(FEED_STR(&p, &r, X16 "\r", MAX_MSG, &too_long), 0);
        ck_assert_uint_eq(FEED_STR(&p, &r, "\r\n", MAX_MSG, &too_long), 0);
        ck_assert(too_long);
        ck_assert_uint_eq(r.n, 0);
        recorder_done(&r);
}
END_TEST

START_TEST(test_messages_before_a_too_long_one_are_still_counted) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "a\nbb\r\n" X16 "x\nc\n", MAX_MSG, &too_long), 2);
        ck_assert(too_long);
        assert_message(&r, 0, "a", 1, 1);
        assert_message(&r, 1, "bb", 2, 2);
        recorder_done(&r);
}
END_TEST

START_TEST(test_too_long_is_found_at_every_split_point) {
        static const char stream[] = "ok\n" X16 "\n" X16 "\r\n" X16 "x\nafter\n";
        const size_t n = sizeof(stream) - 1;

        for (size_t i = 0; i <= n; i++) {
                LineParser p = { 0 };
                Recorder r = { 0 };
                bool too_long;

                feed(&p, &r, stream, i, MAX_MSG, &too_long);
                if (!too_long)
                        feed(&p, &r, stream + i, n - i, MAX_MSG, &too_long);
                ck_assert_msg(too_long, "split at %zu: too long not found", i);
                ck_assert_msg(r.n == 3, "split at %zu: %zu messages", i, r.n);
                ck_assert_uint_eq(r.msgs[0].total, 2);
                ck_assert_uint_eq(r.msgs[1].total, MAX_MSG);
                ck_assert_uint_eq(r.msgs[2].total, MAX_MSG);
                recorder_done(&r);
        }
}
END_TEST

START_TEST(test_finish_reports_a_pending_partial_message) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total = 0;
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "done\nabc", BIG_MAX, &too_long), 1);
        ck_assert_uint_eq(FEED_STR(&p, &r, "de", BIG_MAX, &too_long), 0);
        ck_assert(line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 5);
        recorder_done(&r);
}
END_TEST

START_TEST(test_finish_reports_a_single_pending_byte) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total = 0;
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "x", BIG_MAX, &too_long), 0);
        ck_assert(line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 1);
        recorder_done(&r);
}
END_TEST

START_TEST(test_finish_excludes_a_trailing_cr_like_a_terminated_message) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total = 0;
        bool too_long;

        /* "abc\r" then EOF has the same length as "abc\r\n": the CR is framing either way. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "abc\r", BIG_MAX, &too_long), 0);
        ck_assert(line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 3);

        /* A lone CR inside the pending message is still content. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "a\rb", BIG_MAX, &too_long), 0);
        ck_assert(line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 3);
        recorder_done(&r);
}
END_TEST

START_TEST(test_finish_without_pending_bytes_reports_nothing) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total = 42;
        bool too_long;

        ck_assert(!line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 0);

        ck_assert_uint_eq(FEED_STR(&p, &r, "abc\r\n", BIG_MAX, &too_long), 1);
        total = 42;
        ck_assert(!line_parser_finish(&p, &total));
        ck_assert_uint_eq(total, 0);
        ck_assert(!line_parser_finish(&p, NULL));
        recorder_done(&r);
}
END_TEST

START_TEST(test_finish_resets_the_parser) {
        LineParser p = { 0 };
        Recorder r = { 0 };
        size_t total;
        bool too_long;

        ck_assert_uint_eq(FEED_STR(&p, &r, "abc\r", BIG_MAX, &too_long), 0);
        ck_assert(line_parser_finish(&p, NULL));
        ck_assert(!line_parser_finish(&p, &total));

        /* Neither the old length nor the old trailing CR leak into the next message. */
        ck_assert_uint_eq(FEED_STR(&p, &r, "\n", BIG_MAX, &too_long), 1);
        assert_message(&r, 0, "", 0, 0);
        ck_assert_uint_eq(FEED_STR(&p, &r, "x\n", BIG_MAX, &too_long), 1);
        assert_message(&r, 1, "x", 1, 1);
        recorder_done(&r);
}
END_TEST

/* Called by the shared main() in tap-main.c. */
Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("line-parser");
        TCase *tc;

        tc = tcase_create("framing");
        tcase_add_test(tc, test_single_message_is_reported_without_its_lf);
        tcase_add_test(tc, test_cr_before_lf_is_not_part_of_the_message);
        tcase_add_test(tc, test_lone_cr_inside_a_message_is_content);
        tcase_add_test(tc, test_empty_lines_are_messages);
        tcase_add_test(tc, test_unterminated_tail_waits_for_its_lf);
        tcase_add_test(tc, test_null_callback_still_counts_messages);
        tcase_add_test(tc, test_too_long_flag_is_cleared_on_every_call);
        tcase_add_test(tc, test_nul_bytes_are_ordinary_message_bytes);
        suite_add_tcase(s, tc);

        tc = tcase_create("chunking");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_ten_thousand_pipelined_messages_in_one_chunk);
        tcase_add_test(tc, test_stream_split_at_every_byte_gives_the_same_messages);
        tcase_add_test(tc, test_stream_fed_byte_by_byte_gives_the_same_messages);
        tcase_add_test(tc, test_random_chunkings_match_a_byte_by_byte_model);
        suite_add_tcase(s, tc);

        tc = tcase_create("too-long");
        tcase_add_test(tc, test_exactly_max_bytes_plus_lf_is_accepted);
        tcase_add_test(tc, test_max_plus_one_bytes_with_lf_is_too_long);
        tcase_add_test(tc, test_max_plus_one_bytes_without_lf_is_too_long);
        tcase_add_test(tc, test_too_long_is_found_across_many_chunks);
        tcase_add_test(tc, test_max_bytes_plus_crlf_is_accepted);
        tcase_add_test(tc, test_max_bytes_then_cr_then_more_is_too_long);
        tcase_add_test(tc, test_messages_before_a_too_long_one_are_still_counted);
        tcase_add_test(tc, test_too_long_is_found_at_every_split_point);
        suite_add_tcase(s, tc);

        tc = tcase_create("finish");
        tcase_add_test(tc, test_finish_reports_a_pending_partial_message);
        tcase_add_test(tc, test_finish_reports_a_single_pending_byte);
        tcase_add_test(tc, test_finish_excludes_a_trailing_cr_like_a_terminated_message);
        tcase_add_test(tc, test_finish_without_pending_bytes_reports_nothing);
        tcase_add_test(tc, test_finish_resets_the_parser);
        suite_add_tcase(s, tc);

        return s;
}
