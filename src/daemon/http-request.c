/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "http-request.h"
#include "macro.h"

/*
 * The head is checked line by line. Each checker takes the bytes of one line
 * (its CR/LF excluded) and whether the line is complete; for the unfinished
 * last line it rejects only what no further byte could mend, and otherwise
 * returns 0. Scanning always moves forward, so the first violation decides.
 */

/* The parse so far: the request being filled in and what the field lines said. */
typedef struct Head {
        HttpRequest req;
        bool request_line_done;
        bool connection_close, connection_keep_alive;
        unsigned n_host;
        bool has_content_length;
        const char *content_length; /* its digits without leading zeros: "" for 0 */
        size_t content_length_len;
        bool has_transfer_encoding;
        bool chunked_last; /* the last transfer coding seen is "chunked" */
} Head;

/* Which target forms a method allows (RFC 9112 §3.2). */
typedef enum TargetRule {
        TARGET_ORIGIN_OR_ABSOLUTE,
        TARGET_OR_ASTERISK, /* OPTIONS: "*" too */
        TARGET_AUTHORITY,   /* CONNECT: authority-form only */
} TargetRule;

/* Character classes, one bit each, in a table the compiler fills in. */
enum {
        CHAR_TOKEN = 1 << 0,     /* RFC 9110 §5.6.2 tchar */
        CHAR_PATH = 1 << 1,      /* RFC 3986 §3.3 pchar and "/", "%" HEXDIG HEXDIG aside */
        CHAR_AUTHORITY = 1 << 2, /* RFC 3986 §3.2 host and port; no userinfo (RFC 9110 §4.2.4) */
        CHAR_SCHEME = 1 << 3,    /* RFC 3986 §3.1, after the first letter */
};

#define IS_ALNUM(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
/* RFC 3986 §2.3 unreserved and §2.2 sub-delims. */
#define IS_URI_PLAIN(c)                                                                                     \
        (IS_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' || (c) == '$' || \
         (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' || (c) == '+' || (c) == ',' || \
         (c) == ';' || (c) == '=')
#define IS_TCHAR(c)                                                                                         \
        (IS_ALNUM(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' ||               \
         (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || \
         (c) == '`' || (c) == '|' || (c) == '~')
#define CLASS(c)                                                                            \
        ((IS_TCHAR(c) ? CHAR_TOKEN : 0) |                                                   \
         (IS_URI_PLAIN(c) || (c) == ':' || (c) == '@' || (c) == '/' ? CHAR_PATH : 0) |      \
         (IS_URI_PLAIN(c) || (c) == ':' || (c) == '[' || (c) == ']' ? CHAR_AUTHORITY : 0) | \
         (IS_ALNUM(c) || (c) == '+' || (c) == '-' || (c) == '.' ? CHAR_SCHEME : 0))
#define CLASS4(c)  CLASS(c), CLASS((c) + 1), CLASS((c) + 2), CLASS((c) + 3)
#define CLASS16(c) CLASS4(c), CLASS4((c) + 4), CLASS4((c) + 8), CLASS4((c) + 12)
#define CLASS64(c) CLASS16(c), CLASS16((c) + 16), CLASS16((c) + 32), CLASS16((c) + 48)

static const uint8_t char_class[256] = { CLASS64(0), CLASS64(64), CLASS64(128), CLASS64(192) };

static bool is_class(char c, unsigned class) {
        return char_class[(unsigned char)c] & class;
}

static bool is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Visible ASCII. */
static bool is_vchar(char c) {
        return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f;
}

/* RFC 9110 §5.5: field-vchar, SP and HTAB; obs-text (>= 0x80) included. */
static bool is_field_value_char(char c) {
        return is_vchar(c) || c == ' ' || c == '\t' || (unsigned char)c >= 0x80;
}

static bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* Spans bytes of the class, and "%" HEXDIG HEXDIG. Returns the span's length, -EAGAIN if the
 * bytes end inside a "%XX", or -EBADMSG for a "%" without two hex digits. */
static ssize_t span(const char *s, size_t n, unsigned class) {
        size_t i = 0;

        while (i < n) {
                if (s[i] == '%') {
                        if (i + 1 < n && !is_hex(s[i + 1]))
                                return -EBADMSG;
                        if (i + 2 < n && !is_hex(s[i + 2]))
                                return -EBADMSG;
                        if (i + 2 >= n)
                                return -EAGAIN;
                        i += 3;
                } else if (is_class(s[i], class))
                        i++;
                else
                        break;
        }
        return (ssize_t)i;
}

/* The end of a construct that the bytes cut short: fine unless nothing more is coming. */
static int cut_short(bool done) {
        return done ? -EBADMSG : 0;
}

/* Path and optional query, from the path's first byte. done: the target ends at n. */
static int check_path_query(const char *s, size_t n, bool done, size_t *ret_path_len) {
        ssize_t k = span(s, n, CHAR_PATH);

        if (k == -EAGAIN)
                return cut_short(done);
        if (k < 0)
                return (int)k;
        if ((size_t)k < n && s[k] != '?')
                return -EBADMSG;
        /* The query is ignored; anything visible but a fragment's "#" is accepted. */
        for (size_t i = (size_t)k + 1; i < n; i++)
                if (!is_vchar(s[i]) || s[i] == '#')
                        return -EBADMSG;
        *ret_path_len = (size_t)k;
        return 0;
}

/* absolute-form: scheme "://" authority path-abempty [ "?" query ]. */
static int check_absolute_form(const char *s, size_t n, bool done, size_t *ret_path_start,
                               size_t *ret_path_len) {
        size_t i = 0, authority;
        ssize_t k;

        while (i < n && is_class(s[i], CHAR_SCHEME))
                i++;
        if (i == 0 || !is_alpha(s[0]))
                return -EBADMSG;
        for (size_t j = 0; j < 3; j++, i++) {
                if (i == n)
                        return cut_short(done);
                if (s[i] != "://"[j])
                        return -EBADMSG;
        }

        authority = i;
        k = span(s + i, n - i, CHAR_AUTHORITY);
        if (k == -EAGAIN)
                return cut_short(done);
        if (k < 0)
                return (int)k;
        i += (size_t)k;
        if (i < n && s[i] != '/' && s[i] != '?')
                return -EBADMSG;
        if (i == authority && (i < n || done))
                return -EBADMSG; /* no host */

        *ret_path_start = i;
        return check_path_query(s + i, n - i, done, ret_path_len);
}

/* The request target; done: a SP followed it. Sets the path on success. */
static int check_target(Head *h, const char *s, size_t n, bool done, TargetRule rule) {
        size_t path_start = 0, path_len = 0;
        ssize_t k;
        int r;

        if (n == 0)
                return cut_short(done);

        if (rule == TARGET_AUTHORITY) {
                k = span(s, n, CHAR_AUTHORITY);
                if (k == -EAGAIN)
                        return cut_short(done);
                if (k < 0 || (size_t)k < n)
                        return -EBADMSG;
                path_len = n;
        } else if (s[0] == '*') {
                if (rule != TARGET_OR_ASTERISK || n > 1)
                        return -EBADMSG;
                path_len = 1;
        } else if (s[0] == '/') {
                r = check_path_query(s, n, done, &path_len);
                if (r < 0)
                        return r;
        } else {
                r = check_absolute_form(s, n, done, &path_start, &path_len);
                if (r < 0)
                        return r;
        }

        h->req.path = s + path_start;
        h->req.path_len = path_len;
        return 0;
}

/* "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3). */
static int check_version(Head *h, const char *s, size_t n, bool complete) {
        static const char pattern[] = "HTTP/#.#"; /* '#': a digit */

        if (n > STRLEN(pattern))
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if (pattern[i] == '#' ? !is_digit(s[i]) : s[i] != pattern[i])
                        return -EBADMSG;
        if (!complete)
                return 0;
        if (n < STRLEN(pattern))
                return -EBADMSG;
        if (s[5] != '1')
                return -EPROTONOSUPPORT;
        /* A higher minor version is served as the highest we know (RFC 9110 §2.5). */
        h->req.version_minor = s[7] == '0' ? 0 : 1;
        return 0;
}

static bool bytes_are(const char *s, size_t n, const char *word) {
        return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* method SP request-target SP HTTP-version, one SP each (RFC 9112 §3). */
static int check_request_line(Head *h, const char *s, size_t n, bool complete) {
        size_t i = 0, target;
        TargetRule rule = TARGET_ORIGIN_OR_ABSOLUTE;
        int r;

        while (i < n && is_class(s[i], CHAR_TOKEN))
                i++;
        if (i == n)
                return cut_short(complete);
        if (i == 0 || s[i] != ' ')
                return -EBADMSG;

        h->req.method = bytes_are(s, i, "GET")    ? HTTP_METHOD_GET
                        : bytes_are(s, i, "HEAD") ? HTTP_METHOD_HEAD
                                                  : HTTP_METHOD_OTHER;
        if (bytes_are(s, i, "OPTIONS"))
                rule = TARGET_OR_ASTERISK;
        else if (bytes_are(s, i, "CONNECT"))
                rule = TARGET_AUTHORITY;

        target = ++i;
        while (i < n && s[i] != ' ')
                i++;
        r = check_target(h, s + target, i - target, i < n, rule);
        if (r < 0)
                return r;
        if (i == n)
                return cut_short(complete);

        return check_version(h, s + i + 1, n - i - 1, complete);
}

/* The next non-empty element of a comma list (RFC 9110 §5.6.1), OWS trimmed. */
static bool list_next(const char **p, const char *end, const char **ret, size_t *ret_len) {
        while (*p < end) {
                const char *comma = memchr(*p, ',', (size_t)(end - *p)), *e = comma ? comma : end;
                const char *b = *p;

                *p = comma ? comma + 1 : end;
                while (b < e && is_ows(*b))
                        b++;
                while (e > b && is_ows(e[-1]))
                        e--;
                if (e > b) {
                        *ret = b;
                        *ret_len = (size_t)(e - b);
                        return true;
                }
        }
        return false;
}

static int apply_connection(Head *h, const char *v, size_t n) {
        const char *p = v, *e;
        size_t len;

        while (list_next(&p, v + n, &e, &len)) {
                for (size_t i = 0; i < len; i++)
                        if (!is_class(e[i], CHAR_TOKEN))
                                return -EBADMSG;
                if (len == STRLEN("close") && strncasecmp(e, "close", len) == 0)
                        h->connection_close = true;
                else if (len == STRLEN("keep-alive") && strncasecmp(e, "keep-alive", len) == 0)
                        h->connection_keep_alive = true;
        }
        return 0;
}

static int apply_content_length(Head *h, const char *v, size_t n) {
        if (n == 0)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(v[i]))
                        return -EBADMSG;
        while (n > 0 && v[0] == '0') {
                v++;
                n--;
        }
        /* Repeated, it must say the same (RFC 9110 §8.6), compared without overflow as digits. */
        if (h->has_content_length && (n != h->content_length_len || memcmp(v, h->content_length, n) != 0))
                return -EBADMSG;
        h->has_content_length = true;
        h->content_length = v;
        h->content_length_len = n;
        return 0;
}

static int apply_transfer_encoding(Head *h, const char *v, size_t n) {
        const char *p = v, *e;
        size_t len;

        h->has_transfer_encoding = true;
        h->chunked_last = false;
        while (list_next(&p, v + n, &e, &len))
                h->chunked_last = len == STRLEN("chunked") && strncasecmp(e, "chunked", len) == 0;
        return 0;
}

static int apply_host(Head *h, const char *v, size_t n) {
        ssize_t k;

        if (++h->n_host > 1)
                return -EBADMSG; /* RFC 9112 §3.2 */
        k = span(v, n, CHAR_AUTHORITY);
        return k == (ssize_t)n ? 0 : -EBADMSG;
}

static bool name_is(const char *s, size_t n, const char *name) {
        return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

/* field-name ":" OWS field-value OWS (RFC 9112 §5). */
static int check_field_line(Head *h, const char *s, size_t n, bool complete) {
        size_t i = 0, v, end = n;

        /* A line that begins with whitespace (obs-fold, or whitespace after the request line)
         * has an empty name, an error by RFC 9112 §5.2 and §2.2's choice. */
        while (i < n && is_class(s[i], CHAR_TOKEN))
                i++;
        if (i == n)
                return cut_short(complete);
        if (i == 0 || s[i] != ':')
                return -EBADMSG;
        for (size_t k = i + 1; k < n; k++)
                if (!is_field_value_char(s[k]))
                        return -EBADMSG;
        if (!complete)
                return 0;

        v = i + 1;
        while (v < end && is_ows(s[v]))
                v++;
        while (end > v && is_ows(s[end - 1]))
                end--;
        if (name_is(s, i, "host"))
                return apply_host(h, s + v, end - v);
        if (name_is(s, i, "connection"))
                return apply_connection(h, s + v, end - v);
        if (name_is(s, i, "content-length"))
                return apply_content_length(h, s + v, end - v);
        if (name_is(s, i, "transfer-encoding"))
                return apply_transfer_encoding(h, s + v, end - v);
        return 0;
}

/* The empty line has been seen at length - 1: the framing rules, then the verdict. */
static int finish(Head *h, size_t length, HttpRequest *ret) {
        bool content;

        if (h->has_transfer_encoding && (h->has_content_length || !h->chunked_last))
                return -EBADMSG; /* RFC 9112 §6.3, rules 3 and 4 */
        content = h->has_transfer_encoding || h->content_length_len > 0;

        if (content)
                h->req.keep_alive = false;
        else if (h->req.version_minor >= 1)
                h->req.keep_alive = !h->connection_close;
        else
                h->req.keep_alive = h->connection_keep_alive && !h->connection_close;
        h->req.length = length;
        *ret = h->req;
        return content ? -EMSGSIZE : (int)length;
}

static int check_line(Head *h, const char *s, size_t n, bool complete) {
        int r;

        if (h->request_line_done)
                return check_field_line(h, s, n, complete);
        r = check_request_line(h, s, n, complete);
        if (r >= 0 && complete)
                h->request_line_done = true;
        return r;
}

int http_request_parse_max(const char *buf, size_t len, size_t max, HttpRequest *ret) {
        size_t window = MIN(len, max), pos = 0;
        Head h = { 0 };
        int r;

        assert(max > 0 && max <= INT_MAX);

        while (pos < window) {
                const char *lf = memchr(buf + pos, '\n', window - pos);
                size_t end, n;

                if (!lf) {
                        /* The unfinished last line; a CR at its end may yet precede an LF. */
                        n = window - pos - (buf[window - 1] == '\r');
                        r = check_line(&h, buf + pos, n, false);
                        if (r < 0)
                                return r;
                        break;
                }

                end = (size_t)(lf - buf);
                n = end - pos - (end > pos && buf[end - 1] == '\r');
                if (n == 0) {
                        if (h.request_line_done)
                                return finish(&h, end + 1, ret);
                        /* Empty lines before the request line are skipped (RFC 9112 §2.2). */
                } else {
                        r = check_line(&h, buf + pos, n, true);
                        if (r < 0)
                                return r;
                }
                pos = end + 1;
        }

        /* Once the window holds the limit, the head's end can only come beyond it. */
        return len >= max ? -E2BIG : 0;
}

int http_request_parse(const char *buf, size_t len, HttpRequest *ret) {
        return http_request_parse_max(buf, len, HTTP_REQUEST_HEAD_MAX, ret);
}
