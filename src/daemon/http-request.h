/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The head of an HTTP/1.x request (RFC 9112), as a pure function of the bytes a
 * metrics connection has received so far: no I/O, no allocation, no state kept
 * between calls. The metrics listener serves GET and HEAD of two paths and
 * takes no request content, so the parser extracts only what it needs to answer
 * (method, path, version, keep-alive) and checks the rest for well-formedness.
 *
 * The verdict depends only on the bytes, never on how they were split into
 * reads: every proper prefix of a valid head needs more bytes (0), and once a
 * prefix is rejected every longer input is rejected the same way, because the
 * first violation met scanning from the start decides. A violation is reported
 * as soon as the bytes show it (binary junk or a TLS ClientHello fails at its
 * first byte), not when the line or the head ends.
 *
 * Syntax decisions (RFC 9112 leaves some to the server):
 * - Lines end with CRLF or a bare LF (§2.2 allows recognising LF, so `printf
 *   'GET /healthz HTTP/1.0\n\n' | nc` works); a CR anywhere else is an error.
 *   Empty lines before the request line are skipped (§2.2).
 * - The request line is method SP target SP version with exactly one SP
 *   between (§3: no lenient whitespace). A method is a token; only "GET" and
 *   "HEAD" (case-sensitive) are recognised, any other is HTTP_METHOD_OTHER.
 * - The target is origin-form ("/path?query"), absolute-form
 *   ("scheme://authority/path?query", the authority without userinfo),
 *   asterisk-form ("*", OPTIONS only) or authority-form (CONNECT only). The
 *   path must be RFC 3986 pchars and "/"; it is neither percent-decoded nor
 *   dot-segment-normalised, so "/%6detrics" and "/x/../metrics" are not
 *   "/metrics". The query may be any visible ASCII but "#" and is ignored. No
 *   fragment, no bytes outside visible ASCII.
 * - The version is "HTTP/" DIGIT "." DIGIT. 1.0 and 1.1 are served; 1.2 to 1.9
 *   are served as 1.1 (RFC 9110 §2.5); any other major version is refused.
 * - A field line is token ":" OWS value OWS. Whitespace before the colon, a
 *   line that begins with whitespace (obs-fold, §5.2) and control bytes other
 *   than HTAB in a value are errors. Values may hold obs-text (bytes >= 0x80).
 * - Host: at most one, made of authority characters (no userinfo). An HTTP/1.1
 *   request without Host is served, against §3.2's "MUST respond 400", because
 *   HAProxy's `option httpchk GET /healthz HTTP/1.1` sends none and the
 *   listener has no virtual hosts to pick from it.
 * - Connection: a comma list of tokens, case-insensitive; "close" and
 *   "keep-alive" are recognised, the rest ignored.
 * - Content-Length: 1*DIGIT; several lines must agree. Transfer-Encoding and
 *   Content-Length together are an error (§6.3: a smuggling sign), and so is a
 *   Transfer-Encoding whose last coding is not "chunked" (§6.3).
 */

#include <stdbool.h>
#include <stddef.h>

/* The longest head accepted: request line, field lines and the empty line that ends them. */
#define HTTP_REQUEST_HEAD_MAX 8192

typedef enum HttpMethod {
        HTTP_METHOD_GET,
        HTTP_METHOD_HEAD,
        HTTP_METHOD_OTHER,
} HttpMethod;

typedef struct HttpRequest {
        HttpMethod method;
        /* The target's path, inside the caller's buffer, without the query string. Origin-form
         * and absolute-form give the path ("/metrics"; empty for "http://host" or "http://host?q",
         * meaning "/"); asterisk-form gives "*", authority-form CONNECT's authority. */
        const char *path;
        size_t path_len;
        unsigned version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.2 to 1.9) */
        bool keep_alive;        /* HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
                                 * "Connection: keep-alive"; never with request content */
        size_t length; /* bytes of the head, leading empty lines and the final empty line included */
} HttpRequest;

/*
 * Parses the first request head in buf[0..len), which holds the bytes received so
 * far on a connection (possibly several pipelined requests). Never reads beyond
 * len, nor beyond HTTP_REQUEST_HEAD_MAX. Returns:
 *
 *   > 0              the head is complete and valid: its length (== ret->length);
 *                    the next request, if any, starts there
 *   0                no verdict yet: more bytes are needed
 *   -EBADMSG         malformed: answer 400 and close
 *   -E2BIG           no end of head within HTTP_REQUEST_HEAD_MAX bytes: 431 and close
 *   -EPROTONOSUPPORT an HTTP version other than 1.x: 505 and close
 *   -EMSGSIZE        a valid head that announces content (Content-Length > 0 or a
 *                    Transfer-Encoding ending in chunked): 413 and close. The listener
 *                    accepts no content, and with none read the next request cannot be
 *                    found, so the connection must close; 413 says what went wrong, where
 *                    400 would call a valid request malformed. *ret is filled (with
 *                    keep_alive false), so a listener may answer 405 to a method it does
 *                    not serve instead.
 *
 * *ret is written only when the return value is > 0 or -EMSGSIZE.
 */
int http_request_parse(const char *buf, size_t len, HttpRequest *ret);

/* The same with a limit of max bytes (1 to INT_MAX) instead of HTTP_REQUEST_HEAD_MAX; the fuzz
 * target uses it to reach the limit with short inputs. */
int http_request_parse_max(const char *buf, size_t len, size_t max, HttpRequest *ret);
