/* SPDX-License-Identifier: MIT */
/*
 * The metrics listener's request-head parser: what real clients send, every
 * malformed element, the size bound, pipelining and the keep-alive rules. Each
 * parse reads from a buffer that ends right before an inaccessible page, so a
 * read beyond the given length faults even without a sanitizer.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http-request.h"
#include "macro.h"

typedef struct Parsed {
        int r;
        HttpRequest req;
        size_t path_offset; /* of req.path in the input, when *ret was written */
} Parsed;

/* Parses data[0..len) from a copy that ends where an inaccessible page begins. Checks that *ret
 * is written exactly when the contract says so, and that the path lies inside the head. */
static Parsed parse(const void *data, size_t len) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE), room = (len + page - 1) / page * page;
        char *map = mmap(NULL, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *buf;
        HttpRequest untouched;
        Parsed p = { 0 };

        ck_assert_ptr_ne(map, MAP_FAILED);
        ck_assert_int_eq(mprotect(map + room, page, PROT_NONE), 0);
        buf = map + room - len;
        if (len > 0)
                memcpy(buf, data, len);

        memset(&p.req, 0xa5, sizeof p.req);
        untouched = p.req;
        p.r = http_request_parse(buf, len, &p.req);

        if (p.r > 0 || p.r == -EMSGSIZE) {
                ck_assert_uint_le(p.req.length, MIN(len, (size_t)HTTP_REQUEST_HEAD_MAX));
                if (p.r > 0)
                        ck_assert_uint_eq(p.req.length, (size_t)p.r);
                ck_assert(p.req.path >= buf && p.req.path + p.req.path_len <= buf + p.req.length);
                ck_assert_uint_le(p.req.version_minor, 1);
                p.path_offset = (size_t)(p.req.path - buf);
        } else {
                ck_assert(p.r == 0 || p.r == -EBADMSG || p.r == -E2BIG || p.r == -EPROTONOSUPPORT);
                ck_assert_mem_eq(&p.req, &untouched, sizeof p.req);
        }

        ck_assert_int_eq(munmap(map, room + page), 0);
        return p;
}

static int parse_r(const void *data, size_t len) {
        return parse(data, len).r;
}

/* Every proper prefix of a complete head needs more bytes. */
static void assert_prefixes_incomplete(const char *s, size_t head_len) {
        for (size_t k = 0; k < head_len; k++)
                ck_assert_msg(parse_r(s, k) == 0, "prefix of %zu of %zu bytes: %d", k, head_len,
                              parse_r(s, k));
}

/* A rejected input: each prefix needs more bytes or gets the same verdict, and once it has a
 * verdict so does every longer prefix. Returns the length of the shortest rejected prefix. */
static size_t assert_rejection_is_stable(const char *s, size_t len, int error) {
        size_t first = SIZE_MAX;

        for (size_t k = 0; k <= len; k++) {
                int r = parse_r(s, k);

                if (first == SIZE_MAX && r != 0)
                        first = k;
                ck_assert_msg(r == (first == SIZE_MAX ? 0 : error),
                              "prefix of %zu of %zu bytes: %d, want %d", k, len, r,
                              first == SIZE_MAX ? 0 : error);
        }
        ck_assert_uint_ne(first, SIZE_MAX);
        return first;
}

/* ------------------------------------------------------------------------------------------ */
/* What real clients send. */

typedef struct ClientRequest {
        const char *who;
        const char *bytes;
        HttpMethod method;
        const char *path;
        unsigned version_minor;
        bool keep_alive;
} ClientRequest;

/*
 * Captured on loopback (a listener that saved what it received and answered 200),
 * except the Kubernetes probe, which is what kubelet's prober builds with Go's
 * net/http (pkg/probe/http: User-Agent kube-probe/MAJOR.MINOR, Accept of any type, and
 * keep-alives disabled, which makes Go send "Connection: close").
 */
static const ClientRequest clients[] = {
        { "curl 7.88.1: curl http://HOST/metrics",
          "GET /metrics HTTP/1.1\r\n"
          "Host: 127.0.0.1:18081\r\n"
          "User-Agent: curl/7.88.1\r\n"
          "Accept: */*\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/metrics", 1, true },
        { "curl 7.88.1: curl -I http://HOST/healthz",
          "HEAD /healthz HTTP/1.1\r\n"
          "Host: 127.0.0.1:18081\r\n"
          "User-Agent: curl/7.88.1\r\n"
          "Accept: */*\r\n"
          "\r\n",
          HTTP_METHOD_HEAD, "/healthz", 1, true },
        { "curl 7.88.1: curl -H 'Connection: close' 'http://HOST/metrics?x=1'",
          "GET /metrics?x=1 HTTP/1.1\r\n"
          "Host: 127.0.0.1:18081\r\n"
          "User-Agent: curl/7.88.1\r\n"
          "Accept: */*\r\n"
          "Connection: close\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/metrics", 1, false },
        { "curl 7.88.1: curl --http1.0 http://HOST/healthz",
          "GET /healthz HTTP/1.0\r\n"
          "Host: 127.0.0.1:18082\r\n"
          "User-Agent: curl/7.88.1\r\n"
          "Accept: */*\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/healthz", 0, false },
        { "Prometheus 2.42.0: a scrape",
          "GET /metrics HTTP/1.1\r\n"
          "Host: 127.0.0.1:18083\r\n"
          "User-Agent: Prometheus/2.42.0+ds\r\n"
          "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
          "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
          "Accept-Encoding: gzip\r\n"
          "X-Prometheus-Scrape-Timeout-Seconds: 1\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/metrics", 1, true },
        { "HAProxy 2.6.12: option httpchk GET /healthz",
          "GET /healthz HTTP/1.0\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/healthz", 0, false },
        { "HAProxy 2.6.12: option httpchk HEAD /healthz",
          "HEAD /healthz HTTP/1.0\r\n"
          "\r\n",
          HTTP_METHOD_HEAD, "/healthz", 0, false },
        { "HAProxy 2.6.12: option httpchk GET /healthz HTTP/1.1 (no Host)",
          "GET /healthz HTTP/1.1\r\n"
          "connection: close\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/healthz", 1, false },
        { "HAProxy 2.6.12: http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host ackd.example",
          "GET /healthz HTTP/1.1\r\n"
          "host: ackd.example\r\n"
          "connection: close\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/healthz", 1, false },
        { "Kubernetes httpGet probe (kubelet's prober, not captured)",
          "GET /healthz HTTP/1.1\r\n"
          "Host: 10.244.1.7:9990\r\n"
          "User-Agent: kube-probe/1.29\r\n"
          "Accept: */*\r\n"
          "Connection: close\r\n"
          "Accept-Encoding: gzip\r\n"
          "\r\n",
          HTTP_METHOD_GET, "/healthz", 1, false },
        { "nc with bare LF: printf 'GET /healthz HTTP/1.0\\n\\n'",
          "GET /healthz HTTP/1.0\n"
          "\n",
          HTTP_METHOD_GET, "/healthz", 0, false },
};

static void assert_request(const char *s, const Parsed *p, HttpMethod method, const char *path,
                           unsigned version_minor, bool keep_alive) {
        ck_assert_int_eq(p->req.method, method);
        ck_assert_uint_eq(p->req.path_len, strlen(path));
        ck_assert_mem_eq(s + p->path_offset, path, strlen(path));
        ck_assert_uint_eq(p->req.version_minor, version_minor);
        ck_assert_int_eq(p->req.keep_alive, keep_alive);
}

START_TEST(test_real_client_request_is_parsed) {
        const ClientRequest *c = &clients[_i];
        size_t len = strlen(c->bytes);
        Parsed p = parse(c->bytes, len);

        ck_assert_msg(p.r == (int)len, "%s: %d, want %zu", c->who, p.r, len);
        assert_request(c->bytes, &p, c->method, c->path, c->version_minor, c->keep_alive);
        assert_prefixes_incomplete(c->bytes, len);
}
END_TEST

START_TEST(test_real_client_request_is_found_among_pipelined_ones) {
        const ClientRequest *c = &clients[_i];
        size_t len = strlen(c->bytes);
        char buf[1024];
        Parsed p;

        /* Followed by the next request, whole or in part, or by junk that only the next parse sees. */
        ck_assert_int_lt(snprintf(buf, sizeof buf, "%s%s", c->bytes, c->bytes), (int)sizeof buf);
        for (size_t k = len; k <= 2 * len; k++) {
                p = parse(buf, k);
                ck_assert_int_eq(p.r, (int)len);
                assert_request(buf, &p, c->method, c->path, c->version_minor, c->keep_alive);
                ck_assert_int_eq(parse_r(buf + len, k - len), k == 2 * len ? (int)len : 0);
        }
        ck_assert_int_lt(snprintf(buf, sizeof buf, "%s\x16\x03\x01", c->bytes), (int)sizeof buf);
        ck_assert_int_eq(parse_r(buf, strlen(buf)), (int)len);
        ck_assert_int_eq(parse_r(buf + len, 3), -EBADMSG);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Valid forms beyond what the clients above send. */

typedef struct Valid {
        const char *what;
        const char *bytes;
        HttpMethod method;
        const char *path;
        unsigned version_minor;
        bool keep_alive;
} Valid;

static const Valid valids[] = {
        { "absolute-form", "GET http://127.0.0.1:9990/metrics?x=1 HTTP/1.1\r\n\r\n", HTTP_METHOD_GET,
          "/metrics", 1, true },
        { "absolute-form, IPv6 literal, scheme in capitals",
          "GET HTTP://[::1]:9990/healthz HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "/healthz", 1, true },
        { "absolute-form without a path", "GET http://ackd HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "", 1, true },
        { "absolute-form with only a query", "GET http://ackd?x HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "", 1,
          true },
        { "asterisk-form for OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_METHOD_OTHER, "*", 1,
          true },
        { "authority-form for CONNECT", "CONNECT ackd.example:443 HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER,
          "ackd.example:443", 1, true },
        { "other method", "POST /metrics HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER, "/metrics", 1, true },
        { "methods are case-sensitive", "get /metrics HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER, "/metrics", 1,
          true },
        { "a method that starts like GET", "GETS /metrics HTTP/1.1\r\n\r\n", HTTP_METHOD_OTHER, "/metrics",
          1, true },
        { "the path is not decoded", "GET /%6detrics HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "/%6detrics", 1,
          true },
        { "every path character", "GET /aZ09-._~!$&'()*+,;=:@/%Af HTTP/1.1\r\n\r\n", HTTP_METHOD_GET,
          "/aZ09-._~!$&'()*+,;=:@/%Af", 1, true },
        { "query with unencoded brackets and quotes", "GET /m?a[]={\"b\"}|^ HTTP/1.1\r\n\r\n",
          HTTP_METHOD_GET, "/m", 1, true },
        { "empty query", "GET /metrics? HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "/metrics", 1, true },
        { "HTTP/1.2 is served as 1.1", "GET / HTTP/1.2\r\n\r\n", HTTP_METHOD_GET, "/", 1, true },
        { "HTTP/1.9 is served as 1.1", "GET / HTTP/1.9\r\nConnection: close\r\n\r\n", HTTP_METHOD_GET, "/",
          1, false },
        { "empty lines before the request line", "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n", HTTP_METHOD_GET, "/", 1,
          true },
        { "bare LF and CRLF mixed", "GET / HTTP/1.1\nHost: a\r\nX: y\n\r\n", HTTP_METHOD_GET, "/", 1, true },
        { "no whitespace around a value", "GET / HTTP/1.1\r\nHost:a\r\nConnection:close\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, false },
        { "tabs and spaces around a value", "GET / HTTP/1.1\r\nConnection: \t close \t\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, false },
        { "empty values", "GET / HTTP/1.1\r\nHost:\r\nX-Empty: \r\nConnection:\r\n\r\n", HTTP_METHOD_GET,
          "/", 1, true },
        { "obs-text and HTAB inside a value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\tau lait\xff\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, true },
        { "every token character in a name", "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09aZ: x\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, true },
        { "Host with a port and an IPv6 literal", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]:9990\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, true },
        { "Content-Length: 0", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HTTP_METHOD_GET, "/", 1,
          true },
        { "Content-Length: 000, twice", "GET / HTTP/1.1\r\nContent-Length: 000\r\ncontent-length: 0\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, true },
        { "a field named like a framing field", "GET / HTTP/1.1\r\nContent-Lengths: 5\r\nHosts: a b\r\n\r\n",
          HTTP_METHOD_GET, "/", 1, true },
};

START_TEST(test_valid_form_is_parsed) {
        const Valid *v = &valids[_i];
        size_t len = strlen(v->bytes);
        Parsed p = parse(v->bytes, len);

        ck_assert_msg(p.r == (int)len, "%s: %d, want %zu", v->what, p.r, len);
        assert_request(v->bytes, &p, v->method, v->path, v->version_minor, v->keep_alive);
        assert_prefixes_incomplete(v->bytes, len);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Every malformed element, and the verdict for each. */

typedef struct Invalid {
        const char *what;
        const char *bytes;
        size_t len;
        int error;
        size_t decided_at; /* the length of the shortest prefix that gets the verdict; 0: its full length */
} Invalid;

#define REQ "GET / HTTP/1.1\r\n"
/* A literal and its length, NUL bytes included. */
#define BYTES(s) s, sizeof(s) - 1

static const Invalid invalids[] = {
        /* The request line. */
        { "TLS ClientHello", BYTES("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), -EBADMSG, 1 },
        { "HTTP/2 prior-knowledge preface", BYTES("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), -EBADMSG, 5 },
        { "empty method", BYTES(" / HTTP/1.1\r\n\r\n"), -EBADMSG, 1 },
        { "method with a non-token byte", BYTES("GE(T / HTTP/1.1\r\n\r\n"), -EBADMSG, 3 },
        { "NUL in the method", BYTES("GE\0T / HTTP/1.1\r\n\r\n"), -EBADMSG, 3 },
        { "HTAB as separator", BYTES("GET\t/ HTTP/1.1\r\n\r\n"), -EBADMSG, 4 },
        { "two SPs after the method", BYTES("GET  / HTTP/1.1\r\n\r\n"), -EBADMSG, 5 },
        { "two SPs after the target", BYTES("GET /  HTTP/1.1\r\n\r\n"), -EBADMSG, 7 },
        { "SP at the end of the request line", BYTES("GET / HTTP/1.1 \r\n\r\n"), -EBADMSG, 15 },
        { "method alone", BYTES("GET\r\n\r\n"), -EBADMSG, 5 },
        { "no version (HTTP/0.9)", BYTES("GET /\r\n\r\n"), -EBADMSG, 7 },
        { "no target", BYTES("GET HTTP/1.1\r\n\r\n"), -EBADMSG, 9 },
        { "version in lower case", BYTES("GET / http/1.1\r\n\r\n"), -EBADMSG, 7 },
        { "version with two minor digits", BYTES("GET / HTTP/1.10\r\n\r\n"), -EBADMSG, 15 },
        { "version without a minor digit", BYTES("GET / HTTP/1.\r\n\r\n"), -EBADMSG, 15 },
        { "version without a dot", BYTES("GET / HTTP/11\r\n\r\n"), -EBADMSG, 13 },
        { "CR inside the request line", BYTES("GET / HTTP/1.1\rX: y\r\n\r\n"), -EBADMSG, 16 },
        { "bare CR ending the request line", BYTES("GET / HTTP/1.1\r\r\n\r\n"), -EBADMSG, 16 },
        /* The target. */
        { "target with a space-free junk byte", BYTES("GET /a<b HTTP/1.1\r\n\r\n"), -EBADMSG, 7 },
        { "target with a fragment", BYTES("GET /metrics#x HTTP/1.1\r\n\r\n"), -EBADMSG, 13 },
        { "query with a fragment", BYTES("GET /metrics?a#b HTTP/1.1\r\n\r\n"), -EBADMSG, 15 },
        { "query with a control byte", BYTES("GET /m?\x7f HTTP/1.1\r\n\r\n"), -EBADMSG, 8 },
        { "percent without hex digits", BYTES("GET /%zz HTTP/1.1\r\n\r\n"), -EBADMSG, 7 },
        { "percent with one hex digit", BYTES("GET /%4 HTTP/1.1\r\n\r\n"), -EBADMSG, 8 },
        { "percent at the end of the path", BYTES("GET /% HTTP/1.1\r\n\r\n"), -EBADMSG, 7 },
        { "non-ASCII in the path", BYTES("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), -EBADMSG, 9 },
        { "control byte in the path", BYTES("GET /\x01 HTTP/1.1\r\n\r\n"), -EBADMSG, 6 },
        { "asterisk-form for GET", BYTES("GET * HTTP/1.1\r\n\r\n"), -EBADMSG, 5 },
        { "asterisk with more", BYTES("OPTIONS *x HTTP/1.1\r\n\r\n"), -EBADMSG, 10 },
        { "absolute-form with userinfo", BYTES("GET http://u@ackd/ HTTP/1.1\r\n\r\n"), -EBADMSG, 13 },
        { "absolute-form without a host", BYTES("GET http:///metrics HTTP/1.1\r\n\r\n"), -EBADMSG, 12 },
        { "absolute-form without a host or path", BYTES("GET http:// HTTP/1.1\r\n\r\n"), -EBADMSG, 12 },
        { "absolute-form with one slash", BYTES("GET http:/ackd/ HTTP/1.1\r\n\r\n"), -EBADMSG, 11 },
        { "absolute-form without slashes", BYTES("GET http:ackd HTTP/1.1\r\n\r\n"), -EBADMSG, 10 },
        { "scheme starting with a digit", BYTES("GET 1http://a/ HTTP/1.1\r\n\r\n"), -EBADMSG, 5 },
        { "relative target", BYTES("GET metrics HTTP/1.1\r\n\r\n"), -EBADMSG, 12 },
        { "origin-form for CONNECT", BYTES("CONNECT /x HTTP/1.1\r\n\r\n"), -EBADMSG, 9 },
        { "CONNECT with userinfo", BYTES("CONNECT u@a:1 HTTP/1.1\r\n\r\n"), -EBADMSG, 10 },
        /* The version. */
        { "HTTP/2.0", BYTES("GET / HTTP/2.0\r\n\r\n"), -EPROTONOSUPPORT, 16 },
        { "HTTP/0.9", BYTES("GET / HTTP/0.9\r\n\r\n"), -EPROTONOSUPPORT, 16 },
        { "HTTP/3.0 ending with a bare LF", BYTES("GET / HTTP/3.0\n\n"), -EPROTONOSUPPORT, 15 },
        /* Field lines. */
        { "whitespace before the colon", BYTES(REQ "Host : a\r\n\r\n"), -EBADMSG, 21 },
        { "no colon", BYTES(REQ "Host a\r\n\r\n"), -EBADMSG, 21 },
        { "no colon, line ended", BYTES(REQ "Host\r\n\r\n"), -EBADMSG, 22 },
        { "empty field name", BYTES(REQ ": a\r\n\r\n"), -EBADMSG, 17 },
        { "non-token byte in a name", BYTES(REQ "X(y): z\r\n\r\n"), -EBADMSG, 18 },
        { "obs-fold", BYTES(REQ "X: a\r\n b\r\n\r\n"), -EBADMSG, 23 },
        { "obs-fold with HTAB", BYTES(REQ "X: a\r\n\tb\r\n\r\n"), -EBADMSG, 23 },
        { "whitespace line after the request line", BYTES(REQ " Host: a\r\n\r\n"), -EBADMSG, 17 },
        { "control byte in a value", BYTES(REQ "X: a\x01z\r\n\r\n"), -EBADMSG, 21 },
        { "NUL in a value", BYTES(REQ "X: a\0z\r\n\r\n"), -EBADMSG, 21 },
        { "DEL in a value", BYTES(REQ "X: a\x7fz\r\n\r\n"), -EBADMSG, 21 },
        { "bare CR in a value", BYTES(REQ "X: a\rz\r\n\r\n"), -EBADMSG, 22 },
        { "bare CR as the end of the head", BYTES(REQ "\r\r\n"), -EBADMSG, 18 },
        /* Host. */
        { "two Host fields", BYTES(REQ "Host: a\r\nhost: a\r\n\r\n"), -EBADMSG, 34 },
        { "Host with userinfo", BYTES(REQ "Host: u@a\r\n\r\n"), -EBADMSG, 27 },
        { "Host with a space", BYTES(REQ "Host: a b\r\n\r\n"), -EBADMSG, 27 },
        { "Host with a bad percent", BYTES(REQ "Host: a%2\r\n\r\n"), -EBADMSG, 27 },
        /* Connection. */
        { "Connection element that is not a token", BYTES(REQ "Connection: close, keep alive\r\n\r\n"),
          -EBADMSG, 47 },
        /* Framing. */
        { "Content-Length not a number", BYTES(REQ "Content-Length: abc\r\n\r\n"), -EBADMSG, 37 },
        { "Content-Length negative", BYTES(REQ "Content-Length: -1\r\n\r\n"), -EBADMSG, 36 },
        { "Content-Length with a sign", BYTES(REQ "Content-Length: +1\r\n\r\n"), -EBADMSG, 36 },
        { "Content-Length as a list", BYTES(REQ "Content-Length: 5, 5\r\n\r\n"), -EBADMSG, 38 },
        { "Content-Length empty", BYTES(REQ "Content-Length:\r\n\r\n"), -EBADMSG, 33 },
        { "two different Content-Lengths", BYTES(REQ "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
          -EBADMSG, 54 },
        { "Transfer-Encoding and Content-Length",
          BYTES(REQ "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), -EBADMSG, 0 },
        { "Transfer-Encoding not ending in chunked", BYTES(REQ "Transfer-Encoding: chunked, gzip\r\n\r\n"),
          -EBADMSG, 0 },
        { "Transfer-Encoding without chunked", BYTES(REQ "Transfer-Encoding: gzip\r\n\r\n"), -EBADMSG, 0 },
        { "Transfer-Encoding empty", BYTES(REQ "Transfer-Encoding:\r\n\r\n"), -EBADMSG, 0 },
        /* Content, which the listener does not accept. */
        { "Content-Length: 5", BYTES("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), -EMSGSIZE,
          45 },
        { "Content-Length: 5, twice", BYTES(REQ "Content-Length: 5\r\ncontent-length: 05\r\n\r\n"),
          -EMSGSIZE, 0 },
        { "Content-Length larger than any integer",
          BYTES(REQ "Content-Length: 99999999999999999999999999\r\n\r\n"), -EMSGSIZE, 0 },
        { "Transfer-Encoding: chunked", BYTES(REQ "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), -EMSGSIZE,
          46 },
        { "Transfer-Encoding: gzip, Chunked", BYTES(REQ "Transfer-Encoding: gzip, Chunked\r\n\r\n"),
          -EMSGSIZE, 0 },
        { "Transfer-Encoding in two lines",
          BYTES("GET / HTTP/1.0\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
          -EMSGSIZE, 0 },
};

START_TEST(test_malformed_element_is_rejected) {
        const Invalid *v = &invalids[_i];
        size_t first = assert_rejection_is_stable(v->bytes, v->len, v->error);

        ck_assert_msg(first == (v->decided_at > 0 ? v->decided_at : v->len), "%s: decided at %zu", v->what,
                      first);
}
END_TEST

START_TEST(test_content_still_fills_in_the_request) {
        static const char s[] = "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        Parsed p = parse(s, sizeof s - 1);

        ck_assert_int_eq(p.r, -EMSGSIZE);
        ck_assert_uint_eq(p.req.length, sizeof s - 1 - 5);
        assert_request(s, &p, HTTP_METHOD_OTHER, "/metrics", 1, false);

        p = parse(REQ "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
                  STRLEN(REQ "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"));
        ck_assert_int_eq(p.r, -EMSGSIZE);
        assert_request(REQ, &p, HTTP_METHOD_GET, "/", 1, false);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Keep-alive. */

typedef struct KeepAlive {
        const char *version;
        const char *fields;
        bool keep_alive;
} KeepAlive;

static const KeepAlive keep_alives[] = {
        { "1.1", "", true },
        { "1.1", "Connection: close\r\n", false },
        { "1.1", "connection: CLOSE\r\n", false },
        { "1.1", "Connection: keep-alive\r\n", true },
        { "1.1", "Connection: Upgrade, close\r\n", false },
        { "1.1", "Connection: keep-alive, close\r\n", false },
        { "1.1", "Connection: keep-alive\r\nConnection: close\r\n", false },
        { "1.1", "Connection: ,, close ,\r\n", false },
        { "1.1", "Connection: closed\r\n", true },
        { "1.1", "Connection: Upgrade\r\nUpgrade: h2c\r\n", true },
        { "1.1", "X-Connection: close\r\n", true },
        { "1.0", "", false },
        { "1.0", "Connection: keep-alive\r\n", true },
        { "1.0", "Connection: Keep-Alive\r\n", true },
        { "1.0", "Connection: TE, keep-alive\r\n", true },
        { "1.0", "Connection: keep-alive, close\r\n", false },
        { "1.0", "Connection: close\r\nConnection: keep-alive\r\n", false },
        { "1.0", "Connection: keepalive\r\n", false },
        { "1.0", "Keep-Alive: timeout=5\r\n", false },
};

START_TEST(test_keep_alive_follows_version_and_connection) {
        const KeepAlive *k = &keep_alives[_i];
        char buf[256];
        int n = snprintf(buf, sizeof buf, "GET /metrics HTTP/%s\r\nHost: a\r\n%s\r\n", k->version,
                         k->fields);
        Parsed p = parse(buf, (size_t)n);

        ck_assert_int_eq(p.r, n);
        ck_assert_msg(p.req.keep_alive == k->keep_alive, "HTTP/%s with \"%s\": keep-alive %d", k->version,
                      k->fields, p.req.keep_alive);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* The size bound. */

/* A head of exactly len bytes: the request line, one field padded to fit, the empty line. */
static char *head_of_length(size_t len, size_t extra) {
        static const char start[] = "GET /metrics HTTP/1.1\r\nX-Pad: ", end[] = "\r\n\r\n";
        char *s = malloc(len + extra);

        ck_assert_ptr_nonnull(s);
        ck_assert_uint_ge(len, STRLEN(start) + STRLEN(end));
        memcpy(s, start, STRLEN(start));
        memset(s + STRLEN(start), 'a', len - STRLEN(start) - STRLEN(end));
        memcpy(s + len - STRLEN(end), end, STRLEN(end));
        memset(s + len, 'z', extra);
        return s;
}

START_TEST(test_head_of_exactly_the_limit_is_accepted) {
        char *s = head_of_length(HTTP_REQUEST_HEAD_MAX, 0);
        Parsed p = parse(s, HTTP_REQUEST_HEAD_MAX);

        ck_assert_int_eq(p.r, HTTP_REQUEST_HEAD_MAX);
        assert_request(s, &p, HTTP_METHOD_GET, "/metrics", 1, true);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX - 1), 0);
        free(s);
}
END_TEST

START_TEST(test_head_one_over_the_limit_is_refused) {
        char *s = head_of_length(HTTP_REQUEST_HEAD_MAX + 1, 0);

        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX + 1), -E2BIG);
        /* The limit's worth of bytes without the end of the head already decides. */
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX), -E2BIG);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX - 1), 0);
        free(s);
}
END_TEST

START_TEST(test_limit_holds_with_a_cr_at_its_edge) {
        /* "...\r" ends at the limit: the LF that would end the line lies beyond it. */
        char *s = head_of_length(HTTP_REQUEST_HEAD_MAX + 3, 0);

        ck_assert_int_eq(s[HTTP_REQUEST_HEAD_MAX - 1], '\r');
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX - 1), 0);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX), -E2BIG);
        free(s);
}
END_TEST

START_TEST(test_bytes_beyond_the_limit_are_never_looked_at) {
        /* Junk after the limit cannot turn a too-long head into a malformed one. */
        char *s = head_of_length(HTTP_REQUEST_HEAD_MAX + 100, 0);

        s[HTTP_REQUEST_HEAD_MAX] = '\x01';
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX + 100), -E2BIG);
        s[HTTP_REQUEST_HEAD_MAX - 1] = '\x01';
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX + 100), -EBADMSG);
        free(s);
}
END_TEST

START_TEST(test_complete_head_in_a_buffer_larger_than_the_limit) {
        /* A valid head followed by more bytes than the limit: a method token that never ends. */
        char *s = head_of_length(100, 3 * HTTP_REQUEST_HEAD_MAX);

        ck_assert_int_eq(parse_r(s, 100 + 3 * HTTP_REQUEST_HEAD_MAX), 100);
        ck_assert_int_eq(parse_r(s + 100, 3 * HTTP_REQUEST_HEAD_MAX), -E2BIG);
        free(s);
}
END_TEST

START_TEST(test_endless_empty_lines_hit_the_limit) {
        char *s = malloc(HTTP_REQUEST_HEAD_MAX + 2);

        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < HTTP_REQUEST_HEAD_MAX + 2; i += 2)
                memcpy(s + i, "\r\n", 2);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX - 1), 0);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX), -E2BIG);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX + 2), -E2BIG);
        free(s);
}
END_TEST

START_TEST(test_huge_single_field_is_refused_at_the_limit) {
        char *s = malloc(HTTP_REQUEST_HEAD_MAX * 4);

        ck_assert_ptr_nonnull(s);
        memcpy(s, REQ "Cookie: ", STRLEN(REQ "Cookie: "));
        memset(s + STRLEN(REQ "Cookie: "), 'c', HTTP_REQUEST_HEAD_MAX * 4 - STRLEN(REQ "Cookie: "));
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX * 4), -E2BIG);
        ck_assert_int_eq(parse_r(s, HTTP_REQUEST_HEAD_MAX - 1), 0);
        free(s);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Pipelining and the empty input. */

START_TEST(test_pipelined_requests_are_parsed_one_by_one) {
        static const char s[] = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                                "HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
                                "GET /x HTTP/1.0\n\n"
                                "GET /partial HTTP/1.1\r\nHo";
        size_t at = 0;
        Parsed p;

        p = parse(s, sizeof s - 1);
        ck_assert_int_eq(p.r, 34);
        assert_request(s, &p, HTTP_METHOD_GET, "/metrics", 1, true);
        at += (size_t)p.r;

        p = parse(s + at, sizeof s - 1 - at);
        ck_assert_int_eq(p.r, 45);
        assert_request(s + at, &p, HTTP_METHOD_HEAD, "/healthz", 1, false);
        at += (size_t)p.r;

        p = parse(s + at, sizeof s - 1 - at);
        ck_assert_int_eq(p.r, 17);
        assert_request(s + at, &p, HTTP_METHOD_GET, "/x", 0, false);
        at += (size_t)p.r;

        ck_assert_int_eq(parse_r(s + at, sizeof s - 1 - at), 0);
}
END_TEST

START_TEST(test_empty_input_needs_more) {
        ck_assert_int_eq(http_request_parse(NULL, 0, NULL), 0);
        ck_assert_int_eq(parse_r("", 0), 0);
        ck_assert_int_eq(parse_r("\r", 1), 0);
        ck_assert_int_eq(parse_r("\r\n", 2), 0);
        ck_assert_int_eq(parse_r("\r\r", 2), -EBADMSG);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("http-request");
        TCase *tc;

        tc = tcase_create("clients");
        tcase_add_loop_test(tc, test_real_client_request_is_parsed, 0, ELEMENTSOF(clients));
        tcase_add_loop_test(tc, test_real_client_request_is_found_among_pipelined_ones, 0,
                            ELEMENTSOF(clients));
        suite_add_tcase(s, tc);

        tc = tcase_create("syntax");
        tcase_add_loop_test(tc, test_valid_form_is_parsed, 0, ELEMENTSOF(valids));
        tcase_add_loop_test(tc, test_malformed_element_is_rejected, 0, ELEMENTSOF(invalids));
        tcase_add_test(tc, test_content_still_fills_in_the_request);
        tcase_add_loop_test(tc, test_keep_alive_follows_version_and_connection, 0, ELEMENTSOF(keep_alives));
        suite_add_tcase(s, tc);

        tc = tcase_create("limit");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_head_of_exactly_the_limit_is_accepted);
        tcase_add_test(tc, test_head_one_over_the_limit_is_refused);
        tcase_add_test(tc, test_limit_holds_with_a_cr_at_its_edge);
        tcase_add_test(tc, test_bytes_beyond_the_limit_are_never_looked_at);
        tcase_add_test(tc, test_complete_head_in_a_buffer_larger_than_the_limit);
        tcase_add_test(tc, test_endless_empty_lines_hit_the_limit);
        tcase_add_test(tc, test_huge_single_field_is_refused_at_the_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("stream");
        tcase_add_test(tc, test_pipelined_requests_are_parsed_one_by_one);
        tcase_add_test(tc, test_empty_input_needs_more);
        suite_add_tcase(s, tc);

        return s;
}
