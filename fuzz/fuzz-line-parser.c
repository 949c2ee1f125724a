/* SPDX-License-Identifier: MIT */
/*
 * The line-mode framing (line-parser.c) against a model of the protocol, fed
 * the same stream three ways: as one chunk, split at points the input chooses,
 * and one byte at a time. Every way must produce the same messages (lengths and
 * bytes), the same "too long" verdict and the same state at end of input, and
 * every message's bytes must lie inside the chunk being fed.
 *
 * Input: byte 0 picks max_message, the low nibble of byte 1 the number of
 * split points, and that many further bytes the chunk lengths; the rest is the
 * stream a client sends.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "line-parser.h"
#include "protocol.h"

#define SPLITS_MAX 15

typedef struct Message {
        size_t start; /* offset in the stream */
        size_t len;   /* CR/LF excluded */
} Message;

/* What a client sending the stream should see. */
typedef struct Outcome {
        size_t n_messages; /* acknowledged before the stream ended or a message was too long */
        bool too_long;
        bool pending; /* an unterminated message at the end (counts as a message) */
        size_t pending_total;
} Outcome;

typedef struct Run {
        const char *stream;
        const Message *expected;
        size_t n_expected;
        const char *chunk;
        size_t chunk_len;
        size_t n; /* messages seen by the callback */
} Run;

static size_t pick_max_message(uint8_t b) {
        if (b < 0xc0)
                return b % 64; /* small, so short inputs reach it; 0 is legal for the parser */
        if (b < 0xf0)
                return 64 + (size_t)(b - 0xc0) * 37;
        return ACK_MESSAGE_MAX; /* the largest the daemon accepts */
}

/* The protocol, written the obvious way over the whole stream: messages end at LF, a CR
 * right before the LF is not part of them, and one longer than max_message is refused. */
static Outcome model(const char *s, size_t len, size_t max_message, Message *messages) {
        Outcome o = { 0 };
        size_t start = 0;

        for (;;) {
                const char *lf = memchr(s + start, '\n', len - start);
                size_t seg, n;

                if (!lf) {
                        seg = len - start;
                        if (seg == 0)
                                break;
                        n = seg - (s[len - 1] == '\r');
                        if (n > max_message)
                                o.too_long = true;
                        else {
                                o.pending = true;
                                o.pending_total = n;
                        }
                        break;
                }
                seg = (size_t)(lf - (s + start));
                n = seg - (seg > 0 && lf[-1] == '\r');
                if (n > max_message) {
                        o.too_long = true;
                        break;
                }
                messages[o.n_messages++] = (Message){ .start = start, .len = n };
                start = (size_t)(lf - s) + 1;
        }
        return o;
}

static void on_message(const LineMessage *m, void *userdata) {
        Run *r = userdata;
        const Message *e;

        fuzz_assert(r->n < r->n_expected);
        e = &r->expected[r->n++];
        fuzz_assert(m->total == e->len);
        fuzz_assert(m->len <= m->total);
        fuzz_assert(m->data >= r->chunk && m->data + m->len <= r->chunk + r->chunk_len);
        /* The bytes in this chunk are the message's last m->len bytes. */
        fuzz_assert(memcmp(m->data, r->stream + e->start + e->len - m->len, m->len) == 0);
}

/* Feeds the stream in chunks ending at cuts[0..n_cuts) (ascending, the last one == len). */
static Outcome feed(const char *stream, const size_t *cuts, size_t n_cuts, size_t max_message,
                    const Message *expected, size_t n_expected) {
        Run run = { .stream = stream, .expected = expected, .n_expected = n_expected };
        LineParser p = { 0 }, blind = { 0 };
        Outcome o = { 0 };
        size_t at = 0;

        for (size_t i = 0; i < n_cuts; i++) {
                size_t len = cuts[i] - at, before = run.n, n;
                bool blind_too_long;
                /* Each chunk in a buffer of its own exact size, so any read past it is caught. */
                char *chunk = malloc(len > 0 ? len : 1);

                fuzz_assert(chunk);
                if (len > 0)
                        memcpy(chunk, stream + at, len);
                run.chunk = chunk;
                run.chunk_len = len;

                n = line_parser_feed(&p, chunk, len, max_message, on_message, &run, &o.too_long);
                fuzz_assert(n == run.n - before);
                /* Without a callback, the same count. */
                fuzz_assert(line_parser_feed(&blind, chunk, len, max_message, NULL, NULL, &blind_too_long) ==
                            n);
                fuzz_assert(blind_too_long == o.too_long);
                free(chunk);

                o.n_messages += n;
                at = cuts[i];
                if (o.too_long)
                        return o; /* the daemon replies "ERR message too long" and closes */
                fuzz_assert(p.partial <= max_message + 1);
        }

        o.pending = line_parser_finish(&p, &o.pending_total);
        fuzz_assert(p.partial == 0 && !p.cr);
        fuzz_assert(line_parser_finish(&blind, NULL) == o.pending);
        return o;
}

static void assert_same(const Outcome *a, const Outcome *b) {
        fuzz_assert(a->n_messages == b->n_messages);
        fuzz_assert(a->too_long == b->too_long);
        fuzz_assert(a->pending == b->pending);
        fuzz_assert(a->pending_total == b->pending_total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t max_message, n_splits, len, n_cuts = 0, at = 0;
        size_t cuts[SPLITS_MAX + 1], *bytewise;
        Message *expected;
        Outcome want, got;
        const char *stream;

        if (size < 2)
                return 0;
        max_message = pick_max_message(data[0]);
        n_splits = data[1] & 0xf;
        if (size < 2 + n_splits)
                return 0;
        stream = (const char *)data + 2 + n_splits;
        len = size - 2 - n_splits;

        expected = calloc(len + 1, sizeof *expected);
        fuzz_assert(expected);
        want = model(stream, len, max_message, expected);

        /* One chunk. */
        got = feed(stream, &len, 1, max_message, expected, want.n_messages);
        assert_same(&got, &want);

        /* Chunks of the lengths the input asks for (empty ones included), then the rest. */
        for (size_t i = 0; i < n_splits; i++) {
                at += data[2 + i];
                cuts[n_cuts++] = at < len ? at : len;
        }
        cuts[n_cuts++] = len;
        got = feed(stream, cuts, n_cuts, max_message, expected, want.n_messages);
        assert_same(&got, &want);

        /* One byte at a time. */
        bytewise = malloc((len + 1) * sizeof *bytewise);
        fuzz_assert(bytewise);
        for (size_t i = 0; i < len; i++)
                bytewise[i] = i + 1;
        if (len > 0) {
                got = feed(stream, bytewise, len, max_message, expected, want.n_messages);
                assert_same(&got, &want);
        }

        free(bytewise);
        free(expected);
        return 0;
}
