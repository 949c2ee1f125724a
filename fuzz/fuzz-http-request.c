/* SPDX-License-Identifier: MIT */
/*
 * The metrics listener's request-head parser (http-request.c). It keeps no
 * state between calls: the listener passes everything received so far, so how
 * a client splits its bytes into reads is the same as which prefixes of the
 * stream get parsed. Checked, on buffers of their exact size so that any read
 * beyond the given length is caught:
 *
 * - the verdict over prefixes is 0 up to some length D and the same from D on:
 *   every proper prefix of a complete head needs more bytes, and once a prefix
 *   is rejected every longer one is rejected the same way (all prefixes of short
 *   inputs; of longer ones, those around each LF and a sample); -E2BIG is
 *   decided at exactly the limit;
 * - a parsed head is at most the limit and the input, ends with an empty line,
 *   holds no control byte but HTAB, CR before LF, and LF; its path lies inside
 *   it and holds no whitespace, control byte, "?" or "#"; the method matches the
 *   request line, and keep-alive agrees with the version and the Connection
 *   tokens the head contains;
 * - pipelined heads after the first are parsed the same way.
 *
 * Input: byte 0 picks the limit on the head's size (mostly small, so that short
 * inputs reach it; otherwise HTTP_REQUEST_HEAD_MAX, through
 * http_request_parse() itself), the rest is the stream a client sends.
 */
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include "fuzz.h"
#include "http-request.h"
#include "macro.h"

#define ALL_PREFIXES_MAX 128 /* inputs up to this long have every prefix checked */
#define SAMPLES          16

static size_t head_max; /* the limit for this input */

/* A heap block as long as the input: each parse copies its bytes to the block's end, so that
 * AddressSanitizer catches a read beyond them (one allocation per input, not per parse). */
static char *scratch;
static size_t scratch_size;

/* Parses data[0..len) from a copy that ends where the heap block does. */
static int parse_copy(const char *data, size_t len, HttpRequest *ret) {
        char *copy = scratch + scratch_size - len;
        HttpRequest req;
        int r;

        fuzz_assert(len <= scratch_size);
        if (len > 0)
                memcpy(copy, data, len);
        r = head_max == HTTP_REQUEST_HEAD_MAX ? http_request_parse(copy, len, &req)
                                              : http_request_parse_max(copy, len, head_max, &req);
        if (ret && (r > 0 || r == -EMSGSIZE)) {
                *ret = req;
                ret->path = data + (req.path - copy); /* the same offset in the caller's bytes */
        }
        return r;
}

static bool contains_ci(const char *s, size_t n, const char *word) {
        size_t w = strlen(word);

        for (size_t i = 0; i + w <= n; i++)
                if (strncasecmp(s + i, word, w) == 0)
                        return true;
        return false;
}

/* The properties of a head the parser accepted (r > 0) or refused for its content. */
static void check_head(const char *buf, size_t len, int r, const HttpRequest *req) {
        const char *line = buf, *end = buf + req->length;

        fuzz_assert(req->length > 0 && req->length <= len && req->length <= head_max);
        if (r > 0)
                fuzz_assert((size_t)r == req->length);
        fuzz_assert(end[-1] == '\n');
        fuzz_assert(req->length >= 2 &&
                    (end[-2] == '\n' || (end[-2] == '\r' && req->length >= 3 && end[-3] == '\n')));
        for (const char *p = buf; p < end; p++) {
                unsigned char c = (unsigned char)*p;

                fuzz_assert(c >= 0x20 || c == '\t' || c == '\n' || c == '\r');
                fuzz_assert(c != '\r' || (p + 1 < end && p[1] == '\n'));
        }

        fuzz_assert(req->path >= buf && req->path + req->path_len <= end);
        for (size_t i = 0; i < req->path_len; i++) {
                unsigned char c = (unsigned char)req->path[i];

                fuzz_assert(c > 0x20 && c < 0x7f && c != '?' && c != '#');
        }

        while (*line == '\r' || *line == '\n')
                line++;
        fuzz_assert((req->method == HTTP_METHOD_GET) == (strncmp(line, "GET ", 4) == 0));
        fuzz_assert((req->method == HTTP_METHOD_HEAD) == (strncmp(line, "HEAD ", 5) == 0));

        fuzz_assert(req->version_minor <= 1);
        if (r < 0)
                fuzz_assert(!req->keep_alive);
        else if (req->version_minor == 0 && req->keep_alive)
                fuzz_assert(contains_ci(buf, req->length, "keep-alive"));
        else if (req->version_minor == 1 && !req->keep_alive)
                fuzz_assert(contains_ci(buf, req->length, "close"));
}

/* Finds the length D from which prefixes get a verdict, by bisection: the checks then verify
 * that the verdict over prefixes really is 0 below D and r from D on. */
static size_t decided_at(const char *buf, size_t len) {
        size_t lo = 0, hi = len; /* parse(lo) == 0 (or lo == 0), parse(hi) != 0 */

        if (parse_copy(buf, 0, NULL) != 0)
                return 0;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;

                if (parse_copy(buf, mid, NULL) == 0)
                        lo = mid;
                else
                        hi = mid;
        }
        return hi;
}

static void check_prefix(const char *buf, size_t k, size_t d, int r) {
        int got = parse_copy(buf, k, NULL);

        if (k < d)
                fuzz_assert(got == 0);
        else
                fuzz_assert(got == r);
}

/* The verdict over the prefixes of buf: 0 below d, r from d up to len. head_len: the head's
 * length when r says there is one. */
static void check_prefixes(const char *buf, size_t len, int r, size_t head_len) {
        size_t d;
        uint64_t h = len;

        if (r == 0)
                d = len + 1;
        else if (r > 0 || r == -EMSGSIZE)
                d = head_len;
        else
                d = decided_at(buf, len);
        if (r == -E2BIG)
                fuzz_assert(d == head_max);

        if (len <= ALL_PREFIXES_MAX) {
                for (size_t k = 0; k <= len; k++)
                        check_prefix(buf, k, d, r);
                return;
        }
        if (d <= len) {
                check_prefix(buf, d, d, r);
                if (d > 0)
                        check_prefix(buf, d - 1, d, r);
        }
        /* Where lines end, verdicts are made: the prefixes that end before and after each LF. */
        for (const char *lf = buf; (lf = memchr(lf, '\n', len - (size_t)(lf - buf))); lf++) {
                check_prefix(buf, (size_t)(lf - buf), d, r);
                check_prefix(buf, (size_t)(lf - buf) + 1, d, r);
                if (lf + 1 == buf + len)
                        break;
        }
        /* And lengths spread over the input, picked by a hash of its bytes. */
        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
        for (size_t i = 0; i < SAMPLES; i++) {
                h = h * 6364136223846793005ULL + 1442695040888963407ULL;
                check_prefix(buf, (size_t)(h >> 33) % (len + 1), d, r);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *stream;
        size_t len, at = 0;
        HttpRequest req;
        int r;

        if (size < 1)
                return 0;
        head_max = data[0] < 0xe0 ? 1 + (size_t)data[0] * 2 : HTTP_REQUEST_HEAD_MAX;
        stream = (const char *)data + 1;
        len = size - 1;
        scratch_size = len;
        scratch = malloc(len > 0 ? len : 1);
        fuzz_assert(scratch);

        r = parse_copy(stream, len, &req);
        if (r > 0 || r == -EMSGSIZE)
                check_head(stream, len, r, &req);
        else
                fuzz_assert(r == 0 || r == -EBADMSG || r == -E2BIG || r == -EPROTONOSUPPORT);
        check_prefixes(stream, len, r, r > 0 || r == -EMSGSIZE ? req.length : 0);

        /* The heads pipelined after it, each parsed where the previous one ended. */
        for (size_t n = 0; r > 0 && n < 64; n++) {
                at += (size_t)r;
                r = parse_copy(stream + at, len - at, &req);
                if (r > 0 || r == -EMSGSIZE)
                        check_head(stream + at, len - at, r, &req);
        }

        free(scratch);
        return 0;
}
