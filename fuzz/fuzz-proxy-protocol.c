/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol parser and builders (proxy-protocol.c) on whatever a
 * client sends first. Properties:
 *  - Each call reads only the bytes it is given: the input is fed from one
 *    buffer whose bytes beyond the prefix are poisoned for AddressSanitizer.
 *  - Any chunking gives the same result: fed every prefix in turn, the parser
 *    waits (0) until one gets a verdict, and longer buffers, the whole input
 *    included, get that same verdict: the same error, or the same header. A
 *    header is accepted exactly when its last byte arrives.
 *  - A verdict comes by PROXY_HEADER_MAX bytes (PROXY_V1_MAX for a v1 line),
 *    and an accepted header lies within the input and those bounds.
 *  - Its addresses, built back into a header by each version that can carry
 *    them and parsed again, come back the same.
 *  - The input read as an address: a v1 line with it as the source address is
 *    accepted exactly when inet_pton() accepts it, with the same address.
 *
 * Input: the bytes a client sends, as they are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <sys/un.h>

#include "address.h"
#include "fuzz.h"
#include "proxy-protocol.h"

/* Parses the first len bytes of buf, of which size are ours: the others are out of bounds. */
static int parse_prefix(uint8_t *buf, size_t size, size_t len, ProxyHeader *h) {
        int r;

        ASAN_POISON_MEMORY_REGION(buf + len, size - len);
        r = proxy_header_parse(buf, len, h);
        ASAN_UNPOISON_MEMORY_REGION(buf + len, size - len);
        return r;
}

static bool same_addresses(const ProxyHeader *a, const ProxyHeader *b) {
        if (a->has_addresses != b->has_addresses)
                return false;
        if (!a->has_addresses)
                return true;
        return a->source_len == b->source_len && a->destination_len == b->destination_len &&
               memcmp(&a->source, &b->source, a->source_len) == 0 &&
               memcmp(&a->destination, &b->destination, a->destination_len) == 0;
}

static bool same_header(const ProxyHeader *a, const ProxyHeader *b) {
        return a->version == b->version && a->command == b->command && a->length == b->length &&
               same_addresses(a, b);
}

static void assert_sane(const ProxyHeader *h, size_t len) {
        char s[ADDRESS_STRING_MAX], d[ADDRESS_STRING_MAX];

        fuzz_assert(h->length > 0 && h->length <= len && h->length <= PROXY_HEADER_MAX);
        fuzz_assert(h->version == 1 || h->version == 2);
        fuzz_assert(h->version == 2 || h->length <= PROXY_V1_MAX);
        fuzz_assert(!h->has_addresses || h->command == PROXY_COMMAND_PROXY);
        if (!h->has_addresses)
                return;
        fuzz_assert(h->source.ss_family == h->destination.ss_family);
        fuzz_assert(h->source_len <= sizeof h->source && h->destination_len <= sizeof h->destination);
        /* What the daemon will log. */
        (void)sockaddr_format((const struct sockaddr *)&h->source, h->source_len, s, sizeof s);
        (void)sockaddr_format((const struct sockaddr *)&h->destination, h->destination_len, d, sizeof d);
}

/* The header's addresses, built again by each version that can carry them, parse back the same. */
static void assert_builders_round_trip(const ProxyHeader *h) {
        const struct sockaddr *s = h->has_addresses ? (const struct sockaddr *)&h->source : NULL;
        const struct sockaddr *d = h->has_addresses ? (const struct sockaddr *)&h->destination : NULL;
        uint8_t buf[PROXY_HEADER_MAX];
        ProxyHeader again;
        int n;

        n = proxy_header_format_v1((char *)buf, sizeof buf, s, h->source_len, d, h->destination_len);
        if (h->has_addresses && h->source.ss_family == AF_UNIX)
                fuzz_assert(n == -EAFNOSUPPORT);
        else {
                fuzz_assert(n > 0 && n <= PROXY_V1_MAX);
                fuzz_assert(proxy_header_parse(buf, (size_t)n, &again) == n);
                fuzz_assert(again.version == 1 && same_addresses(h, &again));
                fuzz_assert(again.command == (h->has_addresses ? PROXY_COMMAND_PROXY : PROXY_COMMAND_LOCAL));
        }

        n = proxy_header_format_v2(buf, sizeof buf, h->command, s, h->source_len, d, h->destination_len);
        fuzz_assert(n >= PROXY_V2_PREFIX);
        fuzz_assert(proxy_header_parse(buf, (size_t)n, &again) == n);
        fuzz_assert(again.version == 2 && again.command == h->command && same_addresses(h, &again));
}

static size_t next_length(size_t verdict_at, size_t len, size_t size) {
        size_t distance = len - verdict_at;

        if (len == size)
                return size + 1;
        if (distance < 64)
                return len + 1;
        return distance > size - len ? size : len + distance;
}

/* Feeds every prefix in turn, as a connection receiving one byte per read would. */
static void assert_any_chunking_agrees(const uint8_t *data, size_t size) {
        uint8_t *buf = malloc(size > 0 ? size : 1);
        ProxyHeader first = { 0 }, h = { 0 };
        size_t at = 0, bound = size > 0 && data[0] == 'P' ? PROXY_V1_MAX : PROXY_HEADER_MAX;
        int verdict = 0, r;

        fuzz_assert(buf);
        if (size > 0)
                memcpy(buf, data, size);
        for (; at <= size; at++) {
                verdict = parse_prefix(buf, size, at, &first);
                if (verdict != 0)
                        break;
        }
        /* A connection holding the bound has its verdict. */
        if (verdict != 0)
                fuzz_assert(at <= bound);
        else
                fuzz_assert(size < bound);
        if (verdict > 0) {
                fuzz_assert((size_t)verdict == at && first.length == at);
                assert_sane(&first, at);
                assert_builders_round_trip(&first);
        }
        /* Longer buffers get the same verdict: each of the next 64 lengths, then at doubling
         * distances, then the whole input (checking every one made the target four times slower;
         * libFuzzer tries inputs of every length anyway, each checked whole). */
        for (size_t len = at + 1; len <= size; len = next_length(at, len, size)) {
                r = parse_prefix(buf, size, len, &h);
                fuzz_assert(r == verdict);
                if (r > 0)
                        fuzz_assert(same_header(&h, &first));
        }
        fuzz_assert(verdict >= 0 || verdict == -EBADMSG || verdict == -E2BIG);
        free(buf);
}

/* The input as the source address of a v1 line: accepted exactly when inet_pton() accepts it. */
static void assert_address_agrees_with_inet_pton(const uint8_t *data, size_t size, int family) {
        union {
                struct in_addr in;
                struct in6_addr in6;
        } want;
        char *text, line[128];
        ProxyHeader h;
        int n, r;
        bool ok;

        if (size > 64)
                return;
        text = fuzz_strndup(data, size);
        /* The line's separators would make another line of it. */
        if (strpbrk(text, " \r\n")) {
                free(text);
                return;
        }
        ok = inet_pton(family, text, &want) == 1;
        n = snprintf(line, sizeof line, "PROXY %s %s %s 1 2\r\n", family == AF_INET ? "TCP4" : "TCP6", text,
                     family == AF_INET ? "1.2.3.4" : "::1");
        fuzz_assert(n > 0 && (size_t)n < sizeof line);
        r = proxy_header_parse(line, (size_t)n, &h);
        fuzz_assert(r == (ok ? n : -EBADMSG));
        if (ok && family == AF_INET)
                fuzz_assert(memcmp(&((struct sockaddr_in *)&h.source)->sin_addr, &want.in, 4) == 0);
        if (ok && family == AF_INET6)
                fuzz_assert(memcmp(&((struct sockaddr_in6 *)&h.source)->sin6_addr, &want.in6, 16) == 0);
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        assert_any_chunking_agrees(data, size);
        assert_address_agrees_with_inet_pton(data, size, AF_INET);
        assert_address_agrees_with_inet_pton(data, size, AF_INET6);
        return 0;
}
