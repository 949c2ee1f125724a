/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol parser and builders (proxy-protocol.c): the examples of
 * HAProxy's proxy-protocol.txt, every malformed field of both versions, the
 * byte at which each verdict falls (every shorter prefix waits, every longer
 * buffer gets the same verdict), and the builders' headers read back.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "address.h"
#include "macro.h"
#include "proxy-protocol.h"

#define SIG "\r\n\r\n\0\r\nQUIT\n"

/* Parses a heap copy of exactly len bytes, so that a read beyond them is caught under ASan. */
static int parse_exact(const void *buf, size_t len, ProxyHeader *h) {
        void *copy = malloc(len > 0 ? len : 1);
        int r;

        ck_assert_ptr_nonnull(copy);
        if (len > 0)
                memcpy(copy, buf, len);
        r = proxy_header_parse(copy, len, h);
        free(copy);
        return r;
}

/* Every prefix shorter than `at` waits (0); every one from `at` up to len gets `result`. */
static void assert_verdicts(const char *what, const void *buf, size_t len, size_t at, int result) {
        for (size_t k = 0; k <= len; k++) {
                ProxyHeader h;
                int r = parse_exact(buf, k, &h), want = k < at ? 0 : result;

                ck_assert_msg(r == want, "%s: %zu of %zu bytes: got %d, want %d (verdict due at %zu)", what,
                              k, len, r, want, at);
                if (r > 0)
                        ck_assert_uint_eq(h.length, (size_t)r);
        }
}

static void assert_accepted(const char *what, const void *buf, size_t len, size_t header_len,
                            ProxyHeader *ret) {
        assert_verdicts(what, buf, len, header_len, (int)header_len);
        ck_assert_int_eq(proxy_header_parse(buf, len, ret), (int)header_len);
}

static const char *show(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size) {
        return sockaddr_format((const struct sockaddr *)ss, len, buf, size);
}

static void assert_addresses(const ProxyHeader *h, const char *source, const char *destination) {
        char s[ADDRESS_STRING_MAX], d[ADDRESS_STRING_MAX];

        ck_assert(h->has_addresses);
        ck_assert_int_eq(h->command, PROXY_COMMAND_PROXY);
        ck_assert_str_eq(show(&h->source, h->source_len, s, sizeof s), source);
        ck_assert_str_eq(show(&h->destination, h->destination_len, d, sizeof d), destination);
}

typedef struct GoodLine {
        const char *text;                 /* the line, then maybe what the client sends after it */
        const char *source, *destination; /* NULL: UNKNOWN */
} GoodLine;

static const GoodLine good_lines[] = {
        /* The specification's example, with the HTTP request that follows it. */
        { "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n",
          "192.168.0.1:56324", "192.168.0.11:443" },
        /* Its longest lines, per family. */
        { "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255:65535",
          "255.255.255.255:65535" },
        { "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
        { "PROXY UNKNOWN\r\n", NULL, NULL },
        { "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
          NULL, NULL },
        /* Anything goes after UNKNOWN, up to the CRLF. */
        { "PROXY UNKNOWN what \x01\xff ever\r\nhello\n", NULL, NULL },
        { "PROXY UNKNOWN \r\n", NULL, NULL },
        { "PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\nhello\n", "203.0.113.7:5555", "127.0.0.1:9999" },
        { "PROXY TCP4 0.0.0.0 10.0.0.1 0 1\r\n", "0.0.0.0:0", "10.0.0.1:1" },
        { "PROXY TCP4 10.20.30.40 1.0.0.0 100 65535\r\n", "10.20.30.40:100", "1.0.0.0:65535" },
        { "PROXY TCP6 ::1 2001:db8::7 5555 9999\r\n", "[::1]:5555", "[2001:db8::7]:9999" },
        { "PROXY TCP6 2001:DB8:0:0:0:0:0:1 :: 1 2\r\n", "[2001:db8::1]:1", "[::]:2" },
        { "PROXY TCP6 1:2:3:4:5:6:7:: ::2:3:4:5:6:7:8 1 2\r\n", "[1:2:3:4:5:6:7:0]:1",
          "[0:2:3:4:5:6:7:8]:2" },
        { "PROXY TCP6 0001:0:0:0:0:0:0:00ab 1::2 1 2\r\n", "[1::ab]:1", "[1::2]:2" },
        /* IPv4-mapped clients, as senders write them; shown as IPv4 in logs. */
        { "PROXY TCP6 ::ffff:203.0.113.7 ::ffff:127.0.0.1 5555 9999\r\n", "203.0.113.7:5555",
          "127.0.0.1:9999" },
        { "PROXY TCP6 1:2:3:4:5:6:1.2.3.4 1:2:3:4:5::0.0.0.0 1 2\r\n", "[1:2:3:4:5:6:102:304]:1",
          "[1:2:3:4:5::]:2" },
};

START_TEST(test_v1_accepts_the_specification_examples) {
        for (size_t i = 0; i < ELEMENTSOF(good_lines); i++) {
                const GoodLine *g = &good_lines[i];
                /* The line ends at its first CRLF; what follows is the client's. */
                size_t header_len = (size_t)(strstr(g->text, "\r\n") + 2 - g->text);
                ProxyHeader h;

                assert_accepted(g->text, g->text, strlen(g->text), header_len, &h);
                ck_assert_uint_eq(h.version, 1);
                if (g->source)
                        assert_addresses(&h, g->source, g->destination);
                else {
                        ck_assert_int_eq(h.command, PROXY_COMMAND_LOCAL);
                        ck_assert(!h.has_addresses);
                }
        }
}
END_TEST

START_TEST(test_v1_addresses_are_sockaddrs_in_network_order) {
        const char *line = "PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\n";
        ProxyHeader h;
        const struct sockaddr_in *in = (const struct sockaddr_in *)&h.source;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&h.destination;

        ck_assert_int_eq(proxy_header_parse(line, strlen(line), &h), (int)strlen(line));
        ck_assert_int_eq(in->sin_family, AF_INET);
        ck_assert_uint_eq(h.source_len, sizeof(struct sockaddr_in));
        ck_assert_uint_eq(in->sin_port, htons(5555));
        ck_assert_uint_eq(in->sin_addr.s_addr, htonl(0xcb007107));

        line = "PROXY TCP6 ::1 2001:db8::7 5555 9999\r\n";
        ck_assert_int_eq(proxy_header_parse(line, strlen(line), &h), (int)strlen(line));
        ck_assert_int_eq(in6->sin6_family, AF_INET6);
        ck_assert_uint_eq(h.destination_len, sizeof(struct sockaddr_in6));
        ck_assert_uint_eq(in6->sin6_port, htons(9999));
        ck_assert_uint_eq(in6->sin6_addr.s6_addr[0], 0x20);
        ck_assert_uint_eq(in6->sin6_addr.s6_addr[15], 7);
}
END_TEST

START_TEST(test_parse_leaves_ret_alone_unless_accepted) {
        ProxyHeader h;

        memset(&h, 0xaa, sizeof h);
        ck_assert_int_eq(proxy_header_parse("PROXY TCP4 1.2.3.4", 18, &h), 0);
        ck_assert_int_eq(proxy_header_parse("PROXY TCP5", 10, &h), -EBADMSG);
        ck_assert_uint_eq(h.version, 0xaaaaaaaa);
        ck_assert_int_eq(proxy_header_parse("PROXY UNKNOWN\r\n", 15, NULL), 15);
        ck_assert_int_eq(proxy_header_parse("", 0, NULL), 0);
}
END_TEST

/* A malformed line: rejected when the last byte of `decided` arrives, whatever follows. */
typedef struct BadLine {
        const char *decided, *rest;
        size_t decided_len, rest_len; /* from the literals: a NUL byte is one of the cases */
} BadLine;

#define BAD(decided, rest) \
        { decided, rest, sizeof(decided) - 1, sizeof(rest) - 1 }

static const BadLine bad_lines[] = {
        /* The keyword, its case, the separators. */
        BAD("p", "roxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXy", " TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXZ", " TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD(" ", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY\t", "TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY\r", "\n"),
        BAD("PROXY  ", "TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4  ", "1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4  ", "5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8  ", "1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1  ", "2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", "\r\n"),
        BAD("PROXY TCP4\t", "1.2.3.4 5.6.7.8 1 2\r\n"),
        /* The protocol word. */
        BAD("PROXY t", "cp4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP5", " 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY UD", "P4 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP ", "1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP44", " 1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4\r", "\n"),
        BAD("PROXY u", "nknown\r\n"),
        BAD("PROXY UNKNOWNX", "\r\n"),
        BAD("PROXY UNKNOWN\n", ""),
        /* The line's end: CRLF, never CR or LF alone. */
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ""),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r", "\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1\r", "\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8\r", "\n"),
        BAD("PROXY UNKNOWN junk\n", ""),
        BAD("PROXY UNKNOWN junk\r ", "\n"),
        /* IPv4 addresses. */
        BAD("PROXY TCP4 256", ".1.1.1 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.1000", " 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3 ", "5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4.", "5 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 01", ".2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.00", " 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1..", "2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 .", "1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3. ", "5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 0x", "1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 -", "1.2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4\0", " 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 a", ".6.7.8 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8\t", "1 2\r\n"),
        /* The family must match the addresses. */
        BAD("PROXY TCP4 :", ":1 ::1 1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 :", ":1 1 2\r\n"),
        BAD("PROXY TCP6 1.", "2.3.4 5.6.7.8 1 2\r\n"),
        BAD("PROXY TCP6 ::1 5.", "6.7.8 1 2\r\n"),
        /* IPv6 addresses. */
        BAD("PROXY TCP6 :::", "1 ::1 1 2\r\n"),
        BAD("PROXY TCP6 :1", "::2 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1::2::", "3 ::1 1 2\r\n"),
        BAD("PROXY TCP6 12345", "::1 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1:2:3:4:5:6:7:8:", "9 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1:2:3:4:5:6:7 ", "::1 1 2\r\n"),
        BAD("PROXY TCP6 1::2:3:4:5:6:7:", "8 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1:2:3:4:5:6:7:1.", "2.3.4 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1:2:3:4:5:6::1.", "2.3.4 ::1 1 2\r\n"),
        BAD("PROXY TCP6 ::1.2.3.256", " ::1 1 2\r\n"),
        BAD("PROXY TCP6 ::1.2.3.4:", "5 ::1 1 2\r\n"),
        BAD("PROXY TCP6 ::a.", "1.2.3 ::1 1 2\r\n"),
        BAD("PROXY TCP6 ::01.", "1.2.3 ::1 1 2\r\n"),
        BAD("PROXY TCP6 g", "::1 ::1 1 2\r\n"),
        BAD("PROXY TCP6 1: ", "::1 1 2\r\n"),
        BAD("PROXY TCP6 fe80::1%", "eth0 ::1 1 2\r\n"),
        BAD("PROXY TCP6 [", "::1] ::1 1 2\r\n"),
        /* Ports. */
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 65536", " 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 01", " 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 00", " 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 -", "1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 +", "1 2\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536", "\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 09", "9\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x", "1\r\n"),
        BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a", "\r\n"),
        BAD("PROXY TCP6 ::1 ::1 100000", " 2\r\n"),
};

START_TEST(test_v1_rejects_each_malformed_field_at_its_byte) {
        for (size_t i = 0; i < ELEMENTSOF(bad_lines); i++) {
                const BadLine *b = &bad_lines[i];
                char line[256];

                memcpy(line, b->decided, b->decided_len);
                memcpy(line + b->decided_len, b->rest, b->rest_len);
                assert_verdicts(b->decided, line, b->decided_len + b->rest_len, b->decided_len, -EBADMSG);
        }
}
END_TEST

START_TEST(test_v1_rejects_obvious_non_headers_on_their_first_bytes) {
        static const struct {
                const char *text;
                size_t at;
        } cases[] = {
                { "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1 },
                { "Hello World!\n", 1 },
                { "hello\n", 1 },
                { "SSH-2.0-OpenSSH_9.2\r\n", 1 },
                { "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1 }, /* a TLS ClientHello */
                { "POST / HTTP/1.1\r\n", 2 },
                { "PRI * HTTP/2.0\r\n", 3 },
                { "PROXY GET / HTTP/1.1\r\n", 7 },
                { "PROXY HTTP/1.1\r\n", 7 },
                { "\n", 1 },
                { "\r\n\r\nGET / HTTP/1.1\r\n", 5 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_verdicts(cases[i].text, cases[i].text, strlen(cases[i].text), cases[i].at, -EBADMSG);
}
END_TEST

START_TEST(test_v1_line_of_107_bytes_is_accepted_and_of_108_refused) {
        char line[PROXY_V1_MAX + 16];

        /* "PROXY UNKNOWN " (14) + 91 bytes + CRLF = 107. */
        memcpy(line, "PROXY UNKNOWN ", 14);
        memset(line + 14, 'x', 91);
        memcpy(line + 105, "\r\n", 2);
        assert_verdicts("107 bytes", line, 107, 107, 107);

        /* One more byte before the CRLF: refused on the 106th byte, which is not the CR. */
        memset(line + 14, 'x', 92);
        memcpy(line + 106, "\r\n", 2);
        assert_verdicts("108 bytes", line, 108, 106, -E2BIG);

        /* No CRLF at all: refused at the same byte, however much follows. */
        memset(line, 'x', sizeof line);
        memcpy(line, "PROXY UNKNOWN ", 14);
        assert_verdicts("no CRLF", line, sizeof line, 106, -E2BIG);
}
END_TEST

START_TEST(test_v1_tcp6_line_over_107_bytes_is_refused) {
        /* Valid addresses, but the line does not fit: the dotted forms are longer than the spec's 39. */
        const char *line = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
                           "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n";

        ck_assert_uint_gt(strlen(line), PROXY_V1_MAX);
        assert_verdicts("long TCP6", line, strlen(line), 106, -E2BIG);
}
END_TEST

START_TEST(test_v1_line_without_crlf_waits) {
        const char *line = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2";

        /* Every byte is right so far: the CRLF may still come. */
        assert_verdicts("no CRLF yet", line, strlen(line), SIZE_MAX, 0);
}
END_TEST

START_TEST(test_v1_ports_are_0_to_65535_without_leading_zeros) {
        char line[64], port[16];

        for (unsigned p = 0; p <= 70000; p++) {
                int n = snprintf(line, sizeof line, "PROXY TCP4 1.2.3.4 5.6.7.8 %u %u\r\n", p, p);
                int r = proxy_header_parse(line, (size_t)n, NULL);

                ck_assert_msg(r == (p <= 65535 ? n : -EBADMSG), "port %u: %d", p, r);
        }
        for (unsigned p = 0; p <= 1000; p++) {
                int n;

                (void)snprintf(port, sizeof port, "0%u", p);
                n = snprintf(line, sizeof line, "PROXY TCP4 1.2.3.4 5.6.7.8 1 %s\r\n", port);
                ck_assert_int_eq(proxy_header_parse(line, (size_t)n, NULL), -EBADMSG);
        }
}
END_TEST

/* A small deterministic generator, so that a failure reproduces. */
static uint64_t next_random(uint64_t *state) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        return *state;
}

/* The line parser must accept an address exactly when inet_pton() does, and read the same bytes. */
static void assert_agrees_with_inet_pton(int family, const char *text) {
        union {
                struct in_addr in;
                struct in6_addr in6;
        } want;
        char line[256];
        ProxyHeader h;
        int n, r, ok;

        ok = inet_pton(family, text, &want) == 1;
        n = snprintf(line, sizeof line, "PROXY %s %s %s 1 2\r\n", family == AF_INET ? "TCP4" : "TCP6", text,
                     family == AF_INET ? "1.2.3.4" : "::1");
        r = proxy_header_parse(line, (size_t)n, &h);
        ck_assert_msg(r == (ok ? n : -EBADMSG), "'%s': got %d, inet_pton says %s", text, r,
                      ok ? "valid" : "invalid");
        if (!ok)
                return;
        if (family == AF_INET)
                ck_assert_mem_eq(&((struct sockaddr_in *)&h.source)->sin_addr, &want.in, 4);
        else
                ck_assert_mem_eq(&((struct sockaddr_in6 *)&h.source)->sin6_addr, &want.in6, 16);
}

/* Every string of up to max_len bytes over the alphabet. */
static void agree_on_all_strings(int family, const char *alphabet, size_t max_len) {
        size_t base = strlen(alphabet);
        char text[16];

        ck_assert_uint_lt(max_len, sizeof text);
        for (size_t len = 0; len <= max_len; len++) {
                size_t count = 1;

                for (size_t k = 0; k < len; k++)
                        count *= base;
                for (size_t i = 0; i < count; i++) {
                        size_t v = i;

                        for (size_t k = 0; k < len; k++, v /= base)
                                text[k] = alphabet[v % base];
                        text[len] = '\0';
                        assert_agrees_with_inet_pton(family, text);
                }
        }
}

/* Addresses inet_ntop() writes, each then edited a few times at random. */
static void agree_on_edited_addresses(int family, const char *alphabet, unsigned count) {
        uint64_t state = 0x9e3779b97f4a7c15;
        size_t base = strlen(alphabet);

        for (unsigned i = 0; i < count; i++) {
                uint8_t bytes[16];
                char text[64];
                size_t len;

                for (size_t k = 0; k < sizeof bytes; k++)
                        bytes[k] = (uint8_t)next_random(&state);
                /* Runs of zeros, so that "::" and the dotted forms come up. */
                if (family == AF_INET6 && i % 2 == 0) {
                        size_t at = next_random(&state) % 16;

                        memset(bytes + at, 0, next_random(&state) % (16 - at + 1));
                }
                if (family == AF_INET6 && i % 8 == 0)
                        memcpy(bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
                (void)inet_ntop(family, bytes, text, sizeof text);
                for (unsigned edits = (unsigned)(next_random(&state) % 4); edits > 0; edits--) {
                        size_t at;

                        len = strlen(text);
                        at = next_random(&state) % (len + 1);
                        switch (next_random(&state) % 3) {
                        case 0: /* insert */
                                if (len + 1 < sizeof text) {
                                        memmove(text + at + 1, text + at, len - at + 1);
                                        text[at] = alphabet[next_random(&state) % base];
                                }
                                break;
                        case 1: /* delete */
                                if (at < len)
                                        memmove(text + at, text + at + 1, len - at);
                                break;
                        default: /* replace */
                                if (at < len)
                                        text[at] = alphabet[next_random(&state) % base];
                        }
                }
                assert_agrees_with_inet_pton(family, text);
        }
}

START_TEST(test_v1_ipv4_addresses_agree_with_inet_pton) {
        agree_on_all_strings(AF_INET, "0125.", 6);
        agree_on_edited_addresses(AF_INET, "0123456789.", 30000);
}
END_TEST

START_TEST(test_v1_ipv6_addresses_agree_with_inet_pton) {
        agree_on_all_strings(AF_INET6, "01a:.", 6);
        agree_on_edited_addresses(AF_INET6, "0129afF:.", 60000);
}
END_TEST

/* A v2 header under construction. */
typedef struct Header {
        uint8_t b[PROXY_HEADER_MAX + 64];
        size_t len;
} Header;

static void put(Header *h, const void *p, size_t n) {
        ck_assert_uint_le(h->len + n, sizeof h->b);
        memcpy(h->b + h->len, p, n);
        h->len += n;
}

static void put_be16(Header *h, unsigned v) {
        uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

        put(h, b, 2);
}

/* The 16-byte prefix: signature, version and command, family, and the block's length. */
static Header v2_prefix(uint8_t version_command, uint8_t family, unsigned block_len) {
        Header h = { .len = 0 };

        put(&h, SIG, 12);
        put(&h, &version_command, 1);
        put(&h, &family, 1);
        put_be16(&h, block_len);
        return h;
}

static void put_tlv(Header *h, uint8_t type, const void *value, size_t n) {
        put(h, &type, 1);
        put_be16(h, (unsigned)n);
        put(h, value, n);
}

/* TCP over IPv4, 203.0.113.7:5555 to 127.0.0.1:9999, with room for tlv_len bytes of TLVs. */
static Header v2_tcp4(uint8_t version_command, unsigned tlv_len) {
        Header h = v2_prefix(version_command, 0x11, 12 + tlv_len);

        put(&h, "\xcb\x00\x71\x07", 4);
        put(&h, "\x7f\x00\x00\x01", 4);
        put_be16(&h, 5555);
        put_be16(&h, 9999);
        return h;
}

static Header v2_tcp6(void) {
        Header h = v2_prefix(0x21, 0x21, 36);

        put(&h, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07", 16);
        put(&h, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
        put_be16(&h, 5555);
        put_be16(&h, 9999);
        return h;
}

static void put_unix_name(Header *h, const void *name, size_t n) {
        uint8_t b[108] = { 0 };

        memcpy(b, name, n);
        put(h, b, sizeof b);
}

START_TEST(test_v2_accepts_tcp4_tcp6_and_unix) {
        const char data[] = "hello\n";
        ProxyHeader p;
        Header h;

        h = v2_tcp4(0x21, 0);
        put(&h, data, strlen(data));
        assert_accepted("TCP4", h.b, h.len, 28, &p);
        ck_assert_uint_eq(p.version, 2);
        assert_addresses(&p, "203.0.113.7:5555", "127.0.0.1:9999");

        h = v2_tcp6();
        put(&h, data, strlen(data));
        assert_accepted("TCP6", h.b, h.len, 52, &p);
        assert_addresses(&p, "[2001:db8::7]:5555", "[::1]:9999");

        h = v2_prefix(0x21, 0x31, 216);
        put_unix_name(&h, "/run/client.sock", 16);
        put_unix_name(&h, "/run/ackd.sock", 14);
        put(&h, data, strlen(data));
        assert_accepted("UNIX", h.b, h.len, 232, &p);
        assert_addresses(&p, "unix:/run/client.sock", "unix:/run/ackd.sock");
        ck_assert_uint_eq(p.source_len, offsetof(struct sockaddr_un, sun_path) + 17);
}
END_TEST

START_TEST(test_v2_unix_names_abstract_unnamed_and_full) {
        uint8_t full[108];
        ProxyHeader p;
        Header h;

        /* Abstract: trailing NULs are padding; all NULs is an unnamed socket. */
        h = v2_prefix(0x21, 0x31, 216);
        put_unix_name(&h, "\0client", 7);
        put_unix_name(&h, "", 0);
        assert_accepted("abstract", h.b, h.len, 232, &p);
        assert_addresses(&p, "unix:@client", "unix");
        ck_assert_uint_eq(p.source_len, offsetof(struct sockaddr_un, sun_path) + 7);
        ck_assert_uint_eq(p.destination_len, offsetof(struct sockaddr_un, sun_path));

        /* A path filling all 108 bytes, no NUL; bytes after a path's NUL are dropped. */
        memset(full, 'p', sizeof full);
        full[0] = '/';
        h = v2_prefix(0x21, 0x31, 216);
        put(&h, full, sizeof full);
        put_unix_name(&h, "/a\0junk", 7);
        assert_accepted("full path", h.b, h.len, 232, &p);
        ck_assert_uint_eq(p.source_len, sizeof(struct sockaddr_un));
        ck_assert_mem_eq(((struct sockaddr_un *)&p.source)->sun_path, full, sizeof full);
        ck_assert_uint_eq(p.destination_len, offsetof(struct sockaddr_un, sun_path) + 3);
        ck_assert_mem_eq(((struct sockaddr_un *)&p.destination)->sun_path, "/a\0\0\0\0\0", 7);
}
END_TEST

START_TEST(test_v2_local_ignores_family_and_block) {
        ProxyHeader p;
        Header h;

        /* What HAProxy's health checks send: LOCAL, UNSPEC, no block. */
        h = v2_prefix(0x20, 0x00, 0);
        assert_accepted("LOCAL", h.b, h.len, 16, &p);
        ck_assert_uint_eq(p.version, 2);
        ck_assert_int_eq(p.command, PROXY_COMMAND_LOCAL);
        ck_assert(!p.has_addresses);

        /* LOCAL with addresses: they are not used. */
        h = v2_tcp4(0x20, 0);
        assert_accepted("LOCAL TCP4", h.b, h.len, 28, &p);
        ck_assert(!p.has_addresses);

        /* The family is ignored too, whatever it holds, and so is a block that is no TLV area. */
        for (unsigned family = 0; family <= 0xff; family++) {
                h = v2_prefix(0x20, (uint8_t)family, 5);
                put(&h, "\x01\x02\x03\x04\x05", 5);
                ck_assert_int_eq(parse_exact(h.b, h.len, &p), 21);
                ck_assert(!p.has_addresses);
        }
}
END_TEST

START_TEST(test_v2_proxy_unspec_uses_the_connection_addresses) {
        ProxyHeader p;
        Header h;

        h = v2_prefix(0x21, 0x00, 0);
        assert_accepted("PROXY UNSPEC", h.b, h.len, 16, &p);
        ck_assert_int_eq(p.command, PROXY_COMMAND_PROXY);
        ck_assert(!p.has_addresses);

        h = v2_prefix(0x21, 0x00, 7);
        put(&h, "\xff\xff\xff\xff\xff\xff\xff", 7);
        assert_accepted("PROXY UNSPEC with a block", h.b, h.len, 23, &p);
        ck_assert(!p.has_addresses);
}
END_TEST

START_TEST(test_v2_skips_tlvs) {
        static const uint8_t ssl[] = { 0x01, 0, 0, 0, 0, 0x21, 0, 7, 'T', 'L', 'S', 'v', '1', '.', '3' };
        ProxyHeader p;
        Header h;

        /* The registered types: ALPN, AUTHORITY, CRC32C, NOOP (empty), UNIQUE_ID, SSL with a sub-TLV. */
        h = v2_tcp4(0x21, 3 + 2 + 3 + 11 + 3 + 4 + 3 + 0 + 3 + 5 + 3 + sizeof ssl);
        put_tlv(&h, 0x01, "h2", 2);
        put_tlv(&h, 0x02, "example.com", 11);
        put_tlv(&h, 0x03, "\x12\x34\x56\x78", 4);
        put_tlv(&h, 0x04, "", 0);
        put_tlv(&h, 0x05, "abcde", 5);
        put_tlv(&h, 0x20, ssl, sizeof ssl);
        put(&h, "DATA", 4);
        assert_accepted("TLVs", h.b, h.len, h.len - 4, &p);
        assert_addresses(&p, "203.0.113.7:5555", "127.0.0.1:9999");

        /* TLVs after IPv6 and UNIX addresses too. */
        h = v2_prefix(0x21, 0x31, 216 + 3);
        put_unix_name(&h, "/c", 2);
        put_unix_name(&h, "/d", 2);
        put_tlv(&h, 0xe0, "", 0);
        assert_accepted("UNIX TLV", h.b, h.len, 235, &p);
}
END_TEST

START_TEST(test_v2_header_of_4096_bytes_is_accepted_and_of_4097_refused) {
        Header h;
        uint8_t pad[PROXY_HEADER_MAX] = { 0 };

        /* 16 + 12 addresses + one NOOP TLV of 3 + 4065 = 4096. */
        h = v2_tcp4(0x21, 3 + 4065);
        put_tlv(&h, 0x04, pad, 4065);
        ck_assert_uint_eq(h.len, PROXY_HEADER_MAX);
        assert_accepted("4096", h.b, h.len, PROXY_HEADER_MAX, &(ProxyHeader){ 0 });

        /* Refused as soon as the length says so, before the rest arrives. */
        h = v2_tcp4(0x21, 3 + 4066);
        put_tlv(&h, 0x04, pad, 4066);
        assert_verdicts("4097", h.b, h.len, 16, -E2BIG);
        h = v2_prefix(0x20, 0x00, 0xffff);
        assert_verdicts("LOCAL 65551", h.b, h.len, 16, -E2BIG);
}
END_TEST

START_TEST(test_v2_rejects_each_signature_byte) {
        for (size_t i = 0; i < 12; i++) {
                Header h = v2_tcp4(0x21, 0);
                char what[32];

                h.b[i] ^= 0x01;
                (void)snprintf(what, sizeof what, "signature byte %zu", i);
                assert_verdicts(what, h.b, h.len, i + 1, -EBADMSG);
        }
}
END_TEST

START_TEST(test_v2_rejects_other_versions_and_commands) {
        for (unsigned v = 0; v <= 0xff; v++) {
                Header h = v2_tcp4((uint8_t)v, 0);
                char what[32];

                if (v == 0x20 || v == 0x21)
                        continue;
                (void)snprintf(what, sizeof what, "version/command 0x%02x", v);
                assert_verdicts(what, h.b, h.len, 13, -EBADMSG);
        }
}
END_TEST

START_TEST(test_v2_proxy_rejects_datagram_and_unknown_families) {
        for (unsigned family = 0; family <= 0xff; family++) {
                Header h = v2_prefix(0x21, (uint8_t)family, 216);
                char what[32];

                if (family == 0x00 || family == 0x11 || family == 0x21 || family == 0x31)
                        continue;
                put_unix_name(&h, "", 0);
                put_unix_name(&h, "", 0);
                (void)snprintf(what, sizeof what, "family 0x%02x", family);
                assert_verdicts(what, h.b, h.len, 14, -EBADMSG);
        }
}
END_TEST

START_TEST(test_v2_rejects_a_block_too_short_for_the_family) {
        static const struct {
                uint8_t family;
                unsigned size;
        } families[] = { { 0x11, 12 }, { 0x21, 36 }, { 0x31, 216 } };

        for (size_t i = 0; i < ELEMENTSOF(families); i++)
                for (unsigned len = 0; len < families[i].size; len++) {
                        Header h = v2_prefix(0x21, families[i].family, len);
                        uint8_t zeros[216] = { 0 };
                        char what[48];

                        put(&h, zeros, len);
                        (void)snprintf(what, sizeof what, "family 0x%02x, %u bytes", families[i].family,
                                       len);
                        assert_verdicts(what, h.b, h.len, 16, -EBADMSG);
                }
}
END_TEST

START_TEST(test_v2_rejects_a_malformed_tlv_area) {
        Header h;

        /* One or two bytes: less than a TLV's type and length. Known from the length field. */
        h = v2_tcp4(0x21, 1);
        put(&h, "\x04", 1);
        assert_verdicts("1 byte", h.b, h.len, 16, -EBADMSG);
        h = v2_tcp4(0x21, 2);
        put(&h, "\x04\x00", 2);
        assert_verdicts("2 bytes", h.b, h.len, 16, -EBADMSG);

        /* A value longer than the area: known once its length is read. */
        h = v2_tcp4(0x21, 3 + 4);
        put_tlv(&h, 0x01, "abcde", 5);
        assert_verdicts("value too long", h.b, h.len, 31, -EBADMSG);
        h = v2_tcp4(0x21, 3);
        put(&h, "\x01\xff\xff", 3);
        assert_verdicts("length 65535", h.b, h.len, 31, -EBADMSG);

        /* A good TLV, then 2 bytes: known once the first one's length is read. */
        h = v2_tcp4(0x21, 3 + 2 + 2);
        put_tlv(&h, 0x01, "h2", 2);
        put(&h, "\x04\x00", 2);
        assert_verdicts("trailing bytes", h.b, h.len, 31, -EBADMSG);

        /* Nested in the SSL TLV is its business: only the outer lengths count. */
        h = v2_tcp4(0x21, 3 + 5);
        put_tlv(&h, 0x20, "\x01\0\0\0\0", 5);
        assert_verdicts("SSL without sub-TLVs", h.b, h.len, h.len, (int)h.len);
}
END_TEST

/* A sockaddr holding text as written in the tests ("1.2.3.4", "::1", "unix:/p", "unix:@n"). */
static socklen_t make_address(struct sockaddr_storage *ss, const char *text, uint16_t port) {
        memset(ss, 0, sizeof *ss);
        if (strncmp(text, "unix:", 5) == 0) {
                struct sockaddr_un *un = (struct sockaddr_un *)ss;
                socklen_t len;

                ck_assert_int_eq(sockaddr_un_set(un, text + 5, &len), 0);
                return len;
        }
        if (strchr(text, ':')) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
                return sizeof *in6;
        }
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
        return sizeof *in;
}

typedef struct RoundTrip {
        const char *source, *destination;
        const char *v1; /* NULL: v1 cannot carry it */
        const char *shown_source, *shown_destination;
} RoundTrip;

static const RoundTrip round_trips[] = {
        { "203.0.113.7", "127.0.0.1", "PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\n", "203.0.113.7:5555",
          "127.0.0.1:9999" },
        { "2001:db8::7", "::1", "PROXY TCP6 2001:db8::7 ::1 5555 9999\r\n", "[2001:db8::7]:5555",
          "[::1]:9999" },
        /* Mixed families: the IPv4 one is sent IPv4-mapped. */
        { "2001:db8::7", "127.0.0.1", "PROXY TCP6 2001:db8::7 ::ffff:127.0.0.1 5555 9999\r\n",
          "[2001:db8::7]:5555", "127.0.0.1:9999" },
        { "203.0.113.7", "::1", "PROXY TCP6 ::ffff:203.0.113.7 ::1 5555 9999\r\n", "203.0.113.7:5555",
          "[::1]:9999" },
        { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
          "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 5555 9999\r\n",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:5555",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:9999" },
        { "unix:/run/client.sock", "unix:/run/ackd.sock", NULL, "unix:/run/client.sock",
          "unix:/run/ackd.sock" },
        { "unix:@client", "unix:@ackd", NULL, "unix:@client", "unix:@ackd" },
};

START_TEST(test_builders_round_trip_through_the_parser) {
        for (size_t i = 0; i < ELEMENTSOF(round_trips); i++) {
                const RoundTrip *t = &round_trips[i];
                struct sockaddr_storage s, d;
                socklen_t s_len = make_address(&s, t->source, 5555),
                          d_len = make_address(&d, t->destination, 9999);
                char buf[PROXY_HEADER_MAX];
                ProxyHeader p;
                int n;

                n = proxy_header_format_v1(buf, sizeof buf, (struct sockaddr *)&s, s_len,
                                           (struct sockaddr *)&d, d_len);
                if (t->v1) {
                        ck_assert_int_eq(n, (int)strlen(t->v1));
                        ck_assert_str_eq(buf, t->v1);
                        assert_accepted(t->v1, buf, (size_t)n, (size_t)n, &p);
                        ck_assert_uint_eq(p.version, 1);
                        assert_addresses(&p, t->shown_source, t->shown_destination);
                } else
                        ck_assert_int_eq(n, -EAFNOSUPPORT);

                n = proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, (struct sockaddr *)&s,
                                           s_len, (struct sockaddr *)&d, d_len);
                ck_assert_int_gt(n, 0);
                assert_accepted(t->source, buf, (size_t)n, (size_t)n, &p);
                ck_assert_uint_eq(p.version, 2);
                assert_addresses(&p, t->shown_source, t->shown_destination);
        }
}
END_TEST

START_TEST(test_builders_local_and_unknown) {
        struct sockaddr_storage s;
        socklen_t s_len = make_address(&s, "203.0.113.7", 5555);
        uint8_t buf[64];
        ProxyHeader p;
        int n;

        n = proxy_header_format_v1((char *)buf, sizeof buf, NULL, 0, NULL, 0);
        ck_assert_int_eq(n, 15);
        ck_assert_str_eq((char *)buf, "PROXY UNKNOWN\r\n");
        ck_assert_int_eq(proxy_header_parse(buf, (size_t)n, &p), 15);
        ck_assert_int_eq(p.command, PROXY_COMMAND_LOCAL);

        /* LOCAL ignores the addresses it is given. */
        n = proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_LOCAL, (struct sockaddr *)&s, s_len,
                                   (struct sockaddr *)&s, s_len);
        ck_assert_int_eq(n, 16);
        ck_assert_mem_eq(buf, SIG "\x20\x00\x00\x00", 16);
        ck_assert_int_eq(proxy_header_parse(buf, (size_t)n, &p), 16);
        ck_assert_int_eq(p.command, PROXY_COMMAND_LOCAL);
        ck_assert(!p.has_addresses);

        n = proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, NULL, 0, NULL, 0);
        ck_assert_int_eq(n, 16);
        ck_assert_mem_eq(buf, SIG "\x21\x00\x00\x00", 16);
        ck_assert_int_eq(proxy_header_parse(buf, (size_t)n, &p), 16);
        ck_assert_int_eq(p.command, PROXY_COMMAND_PROXY);
        ck_assert(!p.has_addresses);
}
END_TEST

START_TEST(test_builder_v2_bytes_are_the_specification_layout) {
        struct sockaddr_storage s, d;
        socklen_t s_len = make_address(&s, "203.0.113.7", 5555), d_len = make_address(&d, "127.0.0.1", 9999);
        Header want = v2_tcp4(0x21, 0);
        uint8_t buf[64];

        ck_assert_int_eq(proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, (struct sockaddr *)&s,
                                                s_len, (struct sockaddr *)&d, d_len),
                         28);
        ck_assert_mem_eq(buf, want.b, 28);
}
END_TEST

START_TEST(test_builders_refuse_small_buffers_and_unsupported_families) {
        struct sockaddr_storage s, d, u;
        socklen_t s_len = make_address(&s, "2001:db8::7", 5555), d_len = make_address(&d, "::1", 9999);
        socklen_t u_len = make_address(&u, "unix:/run/x", 0);
        struct sockaddr *sa = (struct sockaddr *)&s, *da = (struct sockaddr *)&d,
                        *ua = (struct sockaddr *)&u;
        char buf[PROXY_HEADER_MAX];
        int n1 = proxy_header_format_v1(buf, sizeof buf, sa, s_len, da, d_len);
        int n2 = proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, sa, s_len, da, d_len);

        /* v1 needs room for its NUL too. */
        for (size_t size = 0; size <= (size_t)n1; size++)
                ck_assert_int_eq(proxy_header_format_v1(buf, size, sa, s_len, da, d_len), -ENOBUFS);
        for (size_t size = 0; size < (size_t)n2; size++)
                ck_assert_int_eq(
                        proxy_header_format_v2(buf, size, PROXY_COMMAND_PROXY, sa, s_len, da, d_len),
                        -ENOBUFS);
        ck_assert_int_eq(proxy_header_format_v2(buf, 15, PROXY_COMMAND_LOCAL, NULL, 0, NULL, 0), -ENOBUFS);

        ck_assert_int_eq(proxy_header_format_v1(buf, sizeof buf, ua, u_len, ua, u_len), -EAFNOSUPPORT);
        ck_assert_int_eq(proxy_header_format_v1(buf, sizeof buf, sa, s_len, ua, u_len), -EAFNOSUPPORT);
        ck_assert_int_eq(proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, ua, u_len, da, d_len),
                         -EAFNOSUPPORT);
        u.ss_family = AF_PACKET;
        ck_assert_int_eq(proxy_header_format_v2(buf, sizeof buf, PROXY_COMMAND_PROXY, ua, u_len, ua, u_len),
                         -EAFNOSUPPORT);
        ck_assert_int_eq(proxy_header_format_v1(buf, sizeof buf, sa, sizeof(struct sockaddr_in), da, d_len),
                         -EINVAL);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("proxy-protocol");
        TCase *tc;

        tc = tcase_create("v1");
        tcase_add_test(tc, test_v1_accepts_the_specification_examples);
        tcase_add_test(tc, test_v1_addresses_are_sockaddrs_in_network_order);
        tcase_add_test(tc, test_parse_leaves_ret_alone_unless_accepted);
        tcase_add_test(tc, test_v1_rejects_each_malformed_field_at_its_byte);
        tcase_add_test(tc, test_v1_rejects_obvious_non_headers_on_their_first_bytes);
        tcase_add_test(tc, test_v1_line_of_107_bytes_is_accepted_and_of_108_refused);
        tcase_add_test(tc, test_v1_tcp6_line_over_107_bytes_is_refused);
        tcase_add_test(tc, test_v1_line_without_crlf_waits);
        tcase_add_test(tc, test_v1_ports_are_0_to_65535_without_leading_zeros);
        suite_add_tcase(s, tc);

        tc = tcase_create("v1-addresses");
        tcase_add_test(tc, test_v1_ipv4_addresses_agree_with_inet_pton);
        tcase_add_test(tc, test_v1_ipv6_addresses_agree_with_inet_pton);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        tc = tcase_create("v2");
        tcase_add_test(tc, test_v2_accepts_tcp4_tcp6_and_unix);
        tcase_add_test(tc, test_v2_unix_names_abstract_unnamed_and_full);
        tcase_add_test(tc, test_v2_local_ignores_family_and_block);
        tcase_add_test(tc, test_v2_proxy_unspec_uses_the_connection_addresses);
        tcase_add_test(tc, test_v2_skips_tlvs);
        tcase_add_test(tc, test_v2_header_of_4096_bytes_is_accepted_and_of_4097_refused);
        tcase_add_test(tc, test_v2_rejects_each_signature_byte);
        tcase_add_test(tc, test_v2_rejects_other_versions_and_commands);
        tcase_add_test(tc, test_v2_proxy_rejects_datagram_and_unknown_families);
        tcase_add_test(tc, test_v2_rejects_a_block_too_short_for_the_family);
        tcase_add_test(tc, test_v2_rejects_a_malformed_tlv_area);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        tc = tcase_create("builders");
        tcase_add_test(tc, test_builders_round_trip_through_the_parser);
        tcase_add_test(tc, test_builders_local_and_unknown);
        tcase_add_test(tc, test_builder_v2_bytes_are_the_specification_layout);
        tcase_add_test(tc, test_builders_refuse_small_buffers_and_unsupported_families);
        suite_add_tcase(s, tc);

        return s;
}
