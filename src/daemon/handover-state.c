/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover-state.h"
#include "macro.h"
#include "parse-util.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* The most fields read from a line: "connection" and its 15 keys, and a few more, so that
 * a key too many is named in the error. */
#define TOKENS_MAX 20

/* ---- The fields of each kind of line, in their order: one table drives parse, format and check. */

typedef enum FieldType {
        FIELD_UINT,   /* decimal in [min, max], stored in `width` bytes */
        FIELD_BOOL,   /* 0 or 1, a bool */
        FIELD_ENUM,   /* one of names[], a uint8_t */
        FIELD_NAME,   /* HandoverListener.name: escaped, 1 or more bytes, no NUL */
        FIELD_ACK,    /* HandoverProfile.ack and .ack_len: escaped, as --ack allows */
        FIELD_CLIENT, /* HandoverConnection.client: escaped, sockaddr_parse(); may be left out */
} FieldType;

typedef struct Field {
        const char *key;
        FieldType type;
        size_t offset;
        size_t width; /* FIELD_UINT: 1, 4 or 8 (field_get(), field_set()) */
        uint64_t min, max;
        const char *const *names;
        size_t n_names;
} Field;

#define UINT_FIELD(t, m, k, lo, hi)                                                                   \
        {                                                                                             \
                .key = k, .type = FIELD_UINT, .offset = offsetof(t, m), .width = sizeof(((t *)0)->m), \
                .min = lo, .max = hi                                                                  \
        }
#define BOOL_FIELD(t, m, k) \
        { .key = k, .type = FIELD_BOOL, .offset = offsetof(t, m) }
#define ENUM_FIELD(t, m, k, n) \
        { .key = k, .type = FIELD_ENUM, .offset = offsetof(t, m), .names = n, .n_names = ELEMENTSOF(n) }

static const char *const mode_names[] = {
        [PROTOCOL_ONESHOT] = "oneshot",
        [PROTOCOL_LINE] = "line",
        [PROTOCOL_METRICS] = "metrics",
};
_Static_assert(ELEMENTSOF(mode_names) == _PROTOCOL_MAX, "a name for every mode");

static const char *const state_names[] = {
        [HANDOVER_READING] = "reading",
        [HANDOVER_REPLYING] = "replying",
        [HANDOVER_LINGER] = "linger",
        [HANDOVER_HEADER] = "header",
};
_Static_assert(ELEMENTSOF(state_names) == _HANDOVER_STATE_MAX, "a name for every state");

static const char *const error_names[] = {
        [HANDOVER_ERROR_NONE] = "none",
        [HANDOVER_ERROR_BUSY] = "busy",
        [HANDOVER_ERROR_TOO_LONG] = "too-long",
};
_Static_assert(ELEMENTSOF(error_names) == _HANDOVER_ERROR_MAX, "a name for every error reply");

static const Field listener_fields[] = {
        ENUM_FIELD(HandoverListener, mode, "mode", mode_names),
        BOOL_FIELD(HandoverListener, proxy, "proxy"),
        { .key = "name", .type = FIELD_NAME },
};

static const Field profile_fields[] = {
        UINT_FIELD(HandoverProfile, max_message, "max-message", 1, ACK_MESSAGE_MAX),
        UINT_FIELD(HandoverProfile, idle_timeout_ms, "idle-timeout-ms", 1, HANDOVER_IDLE_TIMEOUT_MAX_MS),
        { .key = "ack", .type = FIELD_ACK },
};

static const Field connection_fields[] = {
        UINT_FIELD(HandoverConnection, inode, "inode", 1, UINT64_MAX),
        UINT_FIELD(HandoverConnection, listener, "listener", 0, HANDOVER_LISTENERS_MAX - 1),
        UINT_FIELD(HandoverConnection, profile, "profile", 0, HANDOVER_PROFILES_MAX - 1),
        ENUM_FIELD(HandoverConnection, mode, "mode", mode_names),
        ENUM_FIELD(HandoverConnection, state, "state", state_names),
        UINT_FIELD(HandoverConnection, pending_acks, "acks", 0, UINT32_MAX),
        UINT_FIELD(HandoverConnection, out_offset, "offset", 0, UINT32_MAX),
        /* A CR at the end is not counted against max-message (line-parser.c). */
        UINT_FIELD(HandoverConnection, parser_partial, "partial", 0, ACK_MESSAGE_MAX + 1),
        BOOL_FIELD(HandoverConnection, parser_cr, "cr"),
        ENUM_FIELD(HandoverConnection, error_reply, "error", error_names),
        BOOL_FIELD(HandoverConnection, eof, "eof"),
        BOOL_FIELD(HandoverConnection, rejected, "rejected"),
        UINT_FIELD(HandoverConnection, n_logged, "logged", 0, UINT8_MAX),
        UINT_FIELD(HandoverConnection, bytes_written, "written", 0, UINT32_MAX),
        UINT_FIELD(HandoverConnection, timer_remaining_ms, "timer-ms", 0, HANDOVER_IDLE_TIMEOUT_MAX_MS),
        { .key = "client", .type = FIELD_CLIENT },
};
_Static_assert(1 + ELEMENTSOF(connection_fields) <= TOKENS_MAX, "room for every field of a connection");

/* The end line: the number of records of each kind, read into this. */
typedef struct EndCounts {
        uint64_t listeners, profiles, connections;
} EndCounts;

static const Field end_fields[] = {
        UINT_FIELD(EndCounts, listeners, "listeners", 0, HANDOVER_LISTENERS_MAX),
        UINT_FIELD(EndCounts, profiles, "profiles", 0, HANDOVER_PROFILES_MAX),
        UINT_FIELD(EndCounts, connections, "connections", 0, HANDOVER_CONNECTIONS_MAX),
};

static uint64_t field_get(const Field *f, const void *rec) {
        const uint8_t *p = (const uint8_t *)rec + f->offset;
        uint32_t v32;
        uint64_t v64;

        switch (f->type == FIELD_UINT ? f->width : 1) {
        case 4:
                memcpy(&v32, p, sizeof v32);
                return v32;
        case 8:
                memcpy(&v64, p, sizeof v64);
                return v64;
        default: /* uint8_t, bool */
                return *p;
        }
}

static void field_set(const Field *f, void *rec, uint64_t v) {
        uint8_t *p = (uint8_t *)rec + f->offset;
        uint32_t v32 = (uint32_t)v;

        switch (f->type == FIELD_UINT ? f->width : 1) {
        case 4:
                memcpy(p, &v32, sizeof v32);
                break;
        case 8:
                memcpy(p, &v, sizeof v);
                break;
        default:
                if (f->type == FIELD_BOOL)
                        *(bool *)p = v != 0;
                else
                        *p = (uint8_t)v;
        }
}

/* ---- Values that are checked the same way whether parsed or about to be formatted. */

static const char *name_invalid(const char *s, size_t n) {
        if (n == 0)
                return "empty";
        if (n >= ADDRESS_STRING_MAX)
                return "too long";
        if (memchr(s, '\0', n))
                return "NUL byte";
        return NULL;
}

static const char *ack_invalid(const char *s, size_t n) {
        if (n == 0 || n > ACK_TEXT_MAX)
                return "expected 1 to " STRINGIFY(ACK_TEXT_MAX) " bytes";
        /* As --ack: a control byte in the reply would break line framing or terminals. */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return "control byte";
        return NULL;
}

/* The rules that tie a connection to its listener and profile and its fields to each other,
 * as the daemon's state machine leaves them (connection.c). Returns "key: reason" or NULL. */
static const char *connection_state_invalid(const HandoverListener *l, const HandoverProfile *p,
                                            const HandoverConnection *c);

static const char *connection_invalid(const HandoverState *s, const HandoverConnection *c) {
        const HandoverListener *l;
        const HandoverProfile *p;

        if (c->listener >= s->n_listeners)
                return "listener: no such listener";
        if (c->profile >= s->n_profiles)
                return "profile: no such profile";
        l = &s->listeners[c->listener];
        p = &s->profiles[c->profile];

        if (c->mode != l->mode)
                return "mode: not its listener's";
        if (c->mode == PROTOCOL_METRICS)
                return "mode: a metrics connection is not handed over";
        if (c->has_client && !l->proxy)
                return "client: its listener takes no PROXY header";
        if (c->parser_cr && c->parser_partial == 0)
                return "cr: set without a partial message";
        if (c->parser_partial - c->parser_cr > p->max_message)
                return "partial: beyond its profile's max-message";
        return connection_state_invalid(l, p, c);
}

/* The timer of each state runs at most so long. */
static uint64_t timer_max(const HandoverProfile *p, const HandoverConnection *c) {
        switch (c->state) {
        case HANDOVER_LINGER:
                return HANDOVER_LINGER_MAX_MS;
        case HANDOVER_HEADER:
                return HANDOVER_HEADER_MAX_MS;
        default:
                return p->idle_timeout_ms;
        }
}

/* A connection that owes, holds and knows nothing: lingering, or waiting for its PROXY
 * header. Returns "key: reason" or NULL. */
static const char *connection_blank_invalid(const HandoverListener *l, const HandoverConnection *c) {
        if (c->pending_acks > 0 || c->out_offset > 0 || c->error_reply != HANDOVER_ERROR_NONE)
                return "acks: owed while lingering or waiting for a header";
        if (c->parser_partial > 0 || c->eof)
                return "partial: parser state while lingering or waiting for a header";
        if (c->state == HANDOVER_HEADER && (!l->proxy || c->has_client || c->rejected || c->n_logged > 0))
                return "state: header only on a +proxy listener, before anything else";
        return NULL;
}

/* The rules of each state, as the daemon's state machine leaves them (connection.c). */
static const char *connection_state_invalid(const HandoverListener *l, const HandoverProfile *p,
                                            const HandoverConnection *c) {
        size_t unit;

        const char *reason;

        if (c->error_reply == HANDOVER_ERROR_BUSY && !c->rejected)
                return "rejected: ERR busy is owed to rejected connections only";
        if (c->rejected && (c->pending_acks > 0 || c->parser_partial > 0 || c->eof))
                return "rejected: a rejected connection has read nothing";
        if (c->state == HANDOVER_LINGER || c->state == HANDOVER_HEADER) {
                reason = connection_blank_invalid(l, c);
                if (reason)
                        return reason;
        }
        if (c->timer_remaining_ms > timer_max(p, c))
                return "timer-ms: beyond its timer's duration";
        if (c->state == HANDOVER_LINGER || c->state == HANDOVER_HEADER)
                return NULL;

        /* A oneshot connection holds one message: no parser, at most one ack. */
        if (c->mode == PROTOCOL_ONESHOT) {
                if (c->parser_partial > 0 || c->parser_cr)
                        return "partial: a oneshot connection has no parser state";
                if (c->pending_acks > 1 || (c->state == HANDOVER_READING && c->pending_acks > 0))
                        return "acks: a oneshot connection owes one ack, once it has its message";
        }

        /* EOF and an error reply both end the reading. */
        if (c->state == HANDOVER_READING && c->eof)
                return "eof: set while reading";
        if (c->state == HANDOVER_READING && c->error_reply != HANDOVER_ERROR_NONE)
                return "error: owed while reading";
        if (c->eof && (c->parser_partial > 0 || c->parser_cr))
                return "partial: the parser is reset at EOF";
        /* ERR busy is the answer to a connection that is never read. */
        if (c->error_reply == HANDOVER_ERROR_BUSY &&
            (c->pending_acks > 0 || c->parser_partial > 0 || c->parser_cr || c->eof))
                return "error: a busy connection has read nothing";
        if (c->error_reply == HANDOVER_ERROR_TOO_LONG && c->eof)
                return "eof: reading stopped at the message too long";

        /* The reply being written: an ack (line mode adds its LF), or the error line. */
        if (c->pending_acks > 0)
                unit = p->ack_len + (c->mode == PROTOCOL_LINE);
        else if (c->error_reply == HANDOVER_ERROR_BUSY)
                unit = STRLEN(REPLY_ERR_BUSY);
        else if (c->error_reply == HANDOVER_ERROR_TOO_LONG)
                unit = STRLEN(REPLY_ERR_TOO_LONG);
        else
                unit = 0;
        if (unit > 0 ? c->out_offset >= unit : c->out_offset > 0)
                return "offset: not within the reply owed";
        return NULL;
}

/* ---- Escaping. */

static bool needs_escape(unsigned char c) {
        return c < 0x21 || c > 0x7e || c == '\\';
}

/* Decodes an escaped value into out (room for `size` bytes). Only the one spelling that
 * escape_value() writes is taken. Returns the length, or -EINVAL with *ret_reason. */
static int unescape(const char *s, char *out, size_t size, const char **ret_reason) {
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '\\') {
                        const char *hi, *lo;

                        if (s[1] == '\\') {
                                c = '\\';
                                s++;
                        } else if (s[1] == 'x' && s[2] && s[3] && (hi = strchr(hex, s[2])) &&
                                   (lo = strchr(hex, s[3]))) {
                                c = (unsigned char)((hi - hex) << 4 | (lo - hex));
                                if (!needs_escape(c) || c == '\\') {
                                        *ret_reason = "\\xNN for a byte that is written otherwise";
                                        return -EINVAL;
                                }
                                s += 3;
                        } else {
                                *ret_reason =
                                        "bad escape (expected \\\\ or \\x and two lowercase hex digits)";
                                return -EINVAL;
                        }
                }
                if (n >= size) {
                        *ret_reason = "too long";
                        return -EINVAL;
                }
                out[n++] = (char)c;
        }
        return (int)n;
}

/* ---- Formatting into a growing buffer; an allocation failure is remembered and reported once. */

typedef struct Buf {
        char *data;
        size_t len, size;
        bool oom;
} Buf;

static bool buf_reserve(Buf *b, size_t n) {
        size_t size;
        char *p;

        if (b->oom)
                return false;
        if (b->size - b->len >= n)
                return true;
        size = MAX(b->size * 2, b->len + n);
        p = realloc(b->data, size);
        if (!p) {
                b->oom = true;
                return false;
        }
        b->data = p;
        b->size = size;
        return true;
}

static void buf_put(Buf *b, const char *s, size_t n) {
        if (!buf_reserve(b, n))
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_put_uint(Buf *b, uint64_t v) {
        char digits[20];
        size_t i = sizeof digits;

        do
                digits[--i] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        buf_put(b, digits + i, sizeof digits - i);
}

static void buf_put_escaped(Buf *b, const char *s, size_t n) {
        static const char hex[] = "0123456789abcdef";

        if (!buf_reserve(b, n * 4))
                return;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c == '\\') {
                        b->data[b->len++] = '\\';
                        b->data[b->len++] = '\\';
                } else if (needs_escape(c)) {
                        b->data[b->len++] = '\\';
                        b->data[b->len++] = 'x';
                        b->data[b->len++] = hex[c >> 4];
                        b->data[b->len++] = hex[c & 0xf];
                } else
                        b->data[b->len++] = (char)c;
        }
}

/* " key=value" for each field of rec. */
static void format_fields(Buf *b, const Field *fields, size_t n_fields, const void *rec) {
        for (size_t i = 0; i < n_fields; i++) {
                const Field *f = &fields[i];
                char printed[ADDRESS_STRING_MAX];

                if (f->type == FIELD_CLIENT) {
                        const HandoverConnection *c = rec;
                        struct sockaddr_storage ss;
                        socklen_t len;

                        /* Left out when it is shown in no form that reads back (see the header). */
                        if (!c->has_client)
                                continue;
                        sockaddr_format((const struct sockaddr *)&c->client, c->client_len, printed,
                                        sizeof printed);
                        if (sockaddr_parse(printed, &ss, &len) < 0)
                                continue;
                }

                buf_put(b, " ", 1);
                buf_puts(b, f->key);
                buf_put(b, "=", 1);
                switch (f->type) {
                case FIELD_UINT:
                case FIELD_BOOL:
                        buf_put_uint(b, field_get(f, rec));
                        break;
                case FIELD_ENUM:
                        buf_puts(b, f->names[field_get(f, rec)]);
                        break;
                case FIELD_NAME:
                        buf_put_escaped(b, ((const HandoverListener *)rec)->name,
                                        strlen(((const HandoverListener *)rec)->name));
                        break;
                case FIELD_ACK:
                        buf_put_escaped(b, ((const HandoverProfile *)rec)->ack,
                                        ((const HandoverProfile *)rec)->ack_len);
                        break;
                case FIELD_CLIENT:
                        buf_put_escaped(b, printed, strlen(printed));
                        break;
                }
        }
        buf_put(b, "\n", 1);
}

/* ---- Parsing. */

typedef struct Parser {
        const char *buf;
        size_t len, pos;
        unsigned line;
        const char *kind; /* the line's first word, once known, for errors */
        char text[HANDOVER_LINE_MAX + 1];
        char *tokens[TOKENS_MAX];
        size_t n_tokens;
        char *err;
        size_t err_size;
} Parser;

_printf_(2, 3) static int parser_fail(Parser *p, const char *format, ...) {
        char reason[HANDOVER_ERROR_MAX];
        va_list ap;

        va_start(ap, format);
        (void)vsnprintf(reason, sizeof reason, format, ap);
        va_end(ap);
        if (p->err_size > 0) {
                if (p->line == 0)
                        (void)snprintf(p->err, p->err_size, "%s", reason);
                else if (p->kind)
                        (void)snprintf(p->err, p->err_size, "line %u: %s: %s", p->line, p->kind, reason);
                else
                        (void)snprintf(p->err, p->err_size, "line %u: %s", p->line, reason);
        }
        return -EBADMSG;
}

/* Reads the next line into p->tokens. Returns 1, 0 at the end of the input, or -EBADMSG. */
static int parser_next_line(Parser *p) {
        size_t left = p->len - p->pos, n;
        const char *line = p->buf + p->pos, *lf;
        char *t;

        p->kind = NULL;
        if (left == 0)
                return 0;
        p->line++;
        lf = memchr(line, '\n', MIN(left, (size_t)HANDOVER_LINE_MAX + 1));
        if (!lf)
                return left > HANDOVER_LINE_MAX ? parser_fail(p, "longer than %d bytes", HANDOVER_LINE_MAX)
                                                : parser_fail(p, "no newline at its end (truncated?)");
        n = (size_t)(lf - line);
        p->pos += n + 1;

        /* Printable ASCII and spaces only: values escape everything else. */
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)line[i];

                if (c == '\0')
                        return parser_fail(p, "NUL byte");
                if (c < 0x20 || c > 0x7e)
                        return parser_fail(p, "byte 0x%02x (values escape all but printable ASCII)", c);
        }
        memcpy(p->text, line, n);
        p->text[n] = '\0';

        if (n == 0)
                return parser_fail(p, "empty line");
        p->n_tokens = 0;
        for (t = p->text;;) {
                char *space = strchr(t, ' ');

                if (p->n_tokens == TOKENS_MAX)
                        return parser_fail(p, "more than %d fields", TOKENS_MAX);
                if (space)
                        *space = '\0';
                if (*t == '\0')
                        return parser_fail(p, "empty field (fields are separated by one space)");
                p->tokens[p->n_tokens++] = t;
                if (!space)
                        break;
                t = space + 1;
        }
        return 1;
}

/* A decimal number as format writes it: parse_uint64(), and no leading zero. */
static int parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        if (s[0] == '0' && s[1] != '\0')
                return -EINVAL;
        return parse_uint64(s, min, max, ret);
}

static int parse_number_field(Parser *p, const char *key, const char *value, uint64_t min, uint64_t max,
                              uint64_t *ret) {
        int r = parse_number(value, min, max, ret);

        if (r == -ERANGE)
                return parser_fail(p, "%s=%.32s: out of range (%llu..%llu)", key, value,
                                   (unsigned long long)min, (unsigned long long)max);
        if (r < 0)
                return parser_fail(p, "%s=%.32s: not a number", key, value);
        return 0;
}

static int parse_enum_field(Parser *p, const Field *f, const char *value, void *rec) {
        char names[128];
        size_t n = 0;

        for (size_t i = 0; i < f->n_names; i++)
                if (strcmp(value, f->names[i]) == 0) {
                        field_set(f, rec, i);
                        return 0;
                }
        /* "a", "a or b", "a, b or c", ... */
        for (size_t i = 0; i < f->n_names && n < sizeof names; i++)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s",
                                      i == 0 ? "" : i + 1 == f->n_names ? " or " : ", ", f->names[i]);
        return parser_fail(p, "%s=%.32s: expected %s", f->key, value, names);
}

static int parse_text_field(Parser *p, const Field *f, const char *value, void *rec) {
        char text[ADDRESS_STRING_MAX];
        const char *reason = NULL;
        int n;

        n = unescape(value, text, sizeof text, &reason);
        if (n < 0)
                return parser_fail(p, "%s: %s", f->key, reason);

        switch (f->type) {
        case FIELD_NAME: {
                HandoverListener *l = rec;

                reason = name_invalid(text, (size_t)n);
                if (reason)
                        return parser_fail(p, "%s: %s", f->key, reason);
                memcpy(l->name, text, (size_t)n);
                l->name[n] = '\0';
                return 0;
        }
        case FIELD_ACK: {
                HandoverProfile *prof = rec;

                reason = ack_invalid(text, (size_t)n);
                if (reason)
                        return parser_fail(p, "%s: %s", f->key, reason);
                memcpy(prof->ack, text, (size_t)n);
                prof->ack[n] = '\0';
                prof->ack_len = (size_t)n;
                return 0;
        }
        default: {
                HandoverConnection *c = rec;

                if (memchr(text, '\0', (size_t)n) || (size_t)n >= sizeof text)
                        return parser_fail(p, "%s: not an address", f->key);
                text[n] = '\0';
                if (sockaddr_parse(text, &c->client, &c->client_len) < 0)
                        return parser_fail(p, "%s: not an address as ackd shows one", f->key);
                c->has_client = true;
                return 0;
        }
        }
}

static int parse_value(Parser *p, const Field *f, const char *value, void *rec) {
        uint64_t v;

        switch (f->type) {
        case FIELD_UINT:
        case FIELD_BOOL:
                if (parse_number_field(p, f->key, value, f->type == FIELD_BOOL ? 0 : f->min,
                                       f->type == FIELD_BOOL ? 1 : f->max, &v) < 0)
                        return -EBADMSG;
                field_set(f, rec, v);
                return 0;
        case FIELD_ENUM:
                return parse_enum_field(p, f, value, rec);
        default:
                return parse_text_field(p, f, value, rec);
        }
}

static const Field *field_by_key(const Field *fields, size_t n_fields, const char *key, size_t *ret_index) {
        for (size_t i = 0; i < n_fields; i++)
                if (strcmp(fields[i].key, key) == 0) {
                        *ret_index = i;
                        return &fields[i];
                }
        return NULL;
}

/* Reads "key=value" tokens from p->tokens[first] on into rec, which is zero-filled. Every key
 * comes once, in the table's order; only a client may be left out. */
static int parse_fields(Parser *p, size_t first, const Field *fields, size_t n_fields, void *rec) {
        size_t t = first;

        for (size_t i = 0; i < n_fields; i++) {
                const Field *f = &fields[i], *other;
                char *token, *eq;
                size_t j;
                int r;

                if (t == p->n_tokens) {
                        if (f->type == FIELD_CLIENT)
                                break;
                        return parser_fail(p, "missing key '%s'", f->key);
                }
                token = p->tokens[t++];
                eq = strchr(token, '=');
                if (!eq)
                        return parser_fail(p, "'%.32s': expected key=value", token);
                *eq = '\0';
                if (strcmp(token, f->key) != 0) {
                        other = field_by_key(fields, n_fields, token, &j);
                        if (!other)
                                return parser_fail(p, "unknown key '%.32s'", token);
                        if (j < i)
                                return parser_fail(p, "key '%s' twice", token);
                        return parser_fail(p, "missing key '%s' (keys go in a fixed order)", f->key);
                }

                r = parse_value(p, f, eq + 1, rec);
                if (r < 0)
                        return r;
        }

        if (t < p->n_tokens) {
                char *eq = strchr(p->tokens[t], '=');
                size_t j;

                if (eq)
                        *eq = '\0';
                if (field_by_key(fields, n_fields, p->tokens[t], &j))
                        return parser_fail(p, "key '%s' twice", p->tokens[t]);
                return parser_fail(p, "unknown key '%.32s'", p->tokens[t]);
        }
        return 0;
}

/* "listener N ..." and "profile N ...": N numbers them from 0, in order. */
static int parse_index(Parser *p, size_t expected, size_t max) {
        uint64_t v;

        if (expected >= max)
                return parser_fail(p, "more than %zu %ss", max, p->kind);
        if (p->n_tokens < 2 || strchr(p->tokens[1], '='))
                return parser_fail(p, "missing index");
        if (parse_number_field(p, "index", p->tokens[1], 0, max - 1, &v) < 0)
                return -EBADMSG;
        if (v != expected)
                return parser_fail(p, "index %llu, expected %zu (numbered from 0, in order)",
                                   (unsigned long long)v, expected);
        return 0;
}

static int parse_listener(Parser *p, HandoverState *s) {
        HandoverListener l = { 0 }, *slot;

        if (parse_index(p, s->n_listeners, HANDOVER_LISTENERS_MAX) < 0 ||
            parse_fields(p, 2, listener_fields, ELEMENTSOF(listener_fields), &l) < 0)
                return -EBADMSG;
        if (handover_state_add_listener(s, &slot) < 0)
                return parser_fail(p, "out of memory");
        *slot = l;
        return 0;
}

static int parse_profile(Parser *p, HandoverState *s) {
        HandoverProfile prof = { 0 }, *slot;

        if (parse_index(p, s->n_profiles, HANDOVER_PROFILES_MAX) < 0 ||
            parse_fields(p, 2, profile_fields, ELEMENTSOF(profile_fields), &prof) < 0)
                return -EBADMSG;
        if (handover_state_add_profile(s, &slot) < 0)
                return parser_fail(p, "out of memory");
        *slot = prof;
        return 0;
}

static int parse_connection(Parser *p, HandoverState *s) {
        HandoverConnection c = { 0 }, *slot;
        const char *reason;

        if (s->n_connections >= HANDOVER_CONNECTIONS_MAX)
                return parser_fail(p, "more than %d connections", HANDOVER_CONNECTIONS_MAX);
        if (parse_fields(p, 1, connection_fields, ELEMENTSOF(connection_fields), &c) < 0)
                return -EBADMSG;
        reason = connection_invalid(s, &c);
        if (reason)
                return parser_fail(p, "%s", reason);
        if (s->n_connections > 0) {
                uint64_t previous = s->connections[s->n_connections - 1].inode;

                if (c.inode == previous)
                        return parser_fail(p, "inode %llu twice (also on line %u)",
                                           (unsigned long long)c.inode, p->line - 1);
                if (c.inode < previous)
                        return parser_fail(p, "inode %llu below the previous connection's (ascending order)",
                                           (unsigned long long)c.inode);
        }
        if (handover_state_add_connection(s, &slot) < 0)
                return parser_fail(p, "out of memory");
        *slot = c;
        return 0;
}

static int parse_end(Parser *p, const HandoverState *s) {
        EndCounts n = { 0 };

        if (parse_fields(p, 1, end_fields, ELEMENTSOF(end_fields), &n) < 0)
                return -EBADMSG;
        if (n.listeners != s->n_listeners)
                return parser_fail(p, "listeners=%llu, but %zu listener lines",
                                   (unsigned long long)n.listeners, s->n_listeners);
        if (n.profiles != s->n_profiles)
                return parser_fail(p, "profiles=%llu, but %zu profile lines", (unsigned long long)n.profiles,
                                   s->n_profiles);
        if (n.connections != s->n_connections)
                return parser_fail(p, "connections=%llu, but %zu connection lines",
                                   (unsigned long long)n.connections, s->n_connections);
        return 0;
}

static int parse_header(Parser *p) {
        uint64_t version;
        int r;

        /* Say what the input is not before how it is broken. */
        if (p->len < STRLEN(HANDOVER_MAGIC " ") ||
            memcmp(p->buf, HANDOVER_MAGIC " ", STRLEN(HANDOVER_MAGIC " ")) != 0)
                return parser_fail(p, "not an ackd handover state (expected \"%s %d\" first)",
                                   HANDOVER_MAGIC, HANDOVER_VERSION);
        r = parser_next_line(p);
        if (r <= 0)
                return r < 0 ? r : parser_fail(p, "empty");
        if (p->n_tokens != 2 || parse_number(p->tokens[1], 0, UINT64_MAX, &version) < 0)
                return parser_fail(p, "expected \"%s %d\"", HANDOVER_MAGIC, HANDOVER_VERSION);
        if (version != HANDOVER_VERSION)
                return parser_fail(p, "version %llu, but this ackd reads version %d",
                                   (unsigned long long)version, HANDOVER_VERSION);
        return 0;
}

/* One line after the header: its kind, in order (listeners, profiles, connections, end).
 * Returns 1 for a record, 0 for the end line, or -EBADMSG. */
static int parse_record(Parser *p, HandoverState *s, unsigned *rank) {
        static const char *const kinds[] = { "listener", "profile", "connection", "end" };
        unsigned k;

        for (k = 0; k < ELEMENTSOF(kinds); k++)
                if (strcmp(p->tokens[0], kinds[k]) == 0)
                        break;
        if (k == ELEMENTSOF(kinds))
                return parser_fail(p, "unknown line '%.32s'", p->tokens[0]);
        p->kind = kinds[k];
        if (k < *rank)
                return parser_fail(p, "after the %ss (listeners, profiles, connections, end: in this order)",
                                   kinds[*rank]);
        *rank = k;

        switch (k) {
        case 0:
                return parse_listener(p, s) < 0 ? -EBADMSG : 1;
        case 1:
                return parse_profile(p, s) < 0 ? -EBADMSG : 1;
        case 2:
                return parse_connection(p, s) < 0 ? -EBADMSG : 1;
        default:
                return parse_end(p, s);
        }
}

int handover_state_parse(const char *buf, size_t len, HandoverState *ret, char *err, size_t err_size) {
        Parser *p;
        HandoverState s = { 0 };
        unsigned rank = 0;
        int r;

        /* The parser holds a line buffer: keep it off the caller's stack. */
        p = malloc(sizeof *p);
        if (!p) {
                (void)snprintf(err, err_size, "out of memory");
                *ret = (HandoverState){ 0 };
                return -EBADMSG;
        }
        *p = (Parser){ .buf = buf, .len = len, .err = err, .err_size = err_size };

        r = parse_header(p);
        while (r >= 0) {
                r = parser_next_line(p);
                if (r == 0) {
                        unsigned last = p->line;

                        p->line = 0; /* about the input as a whole */
                        r = parser_fail(p, "truncated: no end line after line %u", last);
                        break;
                }
                if (r > 0)
                        r = parse_record(p, &s, &rank);
                if (r == 0) {
                        if (p->pos < p->len) {
                                p->line++;
                                p->kind = NULL;
                                r = parser_fail(p, "text after the end line");
                        }
                        break;
                }
        }
        free(p);

        if (r < 0) {
                handover_state_done(&s);
                *ret = (HandoverState){ 0 };
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

/* ---- Building, checking, formatting and searching a state. */

static int grow(void **items, size_t *allocated, size_t n, size_t item_size, size_t max) {
        size_t m;
        void *p;

        if (n >= max)
                return -E2BIG;
        if (n < *allocated)
                return 0;
        m = MIN(MAX(*allocated * 2, (size_t)16), max);
        p = reallocarray(*items, m, item_size);
        if (!p)
                return -ENOMEM;
        *items = p;
        *allocated = m;
        return 0;
}

int handover_state_add_listener(HandoverState *s, HandoverListener **ret) {
        int r = grow((void **)&s->listeners, &s->listeners_allocated, s->n_listeners, sizeof *s->listeners,
                     HANDOVER_LISTENERS_MAX);

        if (r < 0)
                return r;
        *ret = &s->listeners[s->n_listeners++];
        **ret = (HandoverListener){ 0 };
        return 0;
}

int handover_state_add_profile(HandoverState *s, HandoverProfile **ret) {
        int r = grow((void **)&s->profiles, &s->profiles_allocated, s->n_profiles, sizeof *s->profiles,
                     HANDOVER_PROFILES_MAX);

        if (r < 0)
                return r;
        *ret = &s->profiles[s->n_profiles++];
        **ret = (HandoverProfile){ 0 };
        return 0;
}

int handover_state_add_connection(HandoverState *s, HandoverConnection **ret) {
        int r = grow((void **)&s->connections, &s->connections_allocated, s->n_connections,
                     sizeof *s->connections, HANDOVER_CONNECTIONS_MAX);

        if (r < 0)
                return r;
        *ret = &s->connections[s->n_connections++];
        memset(*ret, 0, sizeof **ret);
        return 0;
}

static int compare_inodes(const void *a, const void *b) {
        uint64_t x = ((const HandoverConnection *)a)->inode, y = ((const HandoverConnection *)b)->inode;

        return x < y ? -1 : x > y;
}

void handover_state_sort(HandoverState *s) {
        if (s->n_connections > 1)
                qsort(s->connections, s->n_connections, sizeof *s->connections, compare_inodes);
}

const HandoverConnection *handover_state_find(const HandoverState *s, uint64_t inode) {
        HandoverConnection key = { .inode = inode };

        if (s->n_connections == 0)
                return NULL;
        return bsearch(&key, s->connections, s->n_connections, sizeof *s->connections, compare_inodes);
}

/* The numeric and named fields of rec in their ranges: what parse_fields() would take. */
static const char *fields_invalid(const Field *fields, size_t n_fields, const void *rec) {
        for (size_t i = 0; i < n_fields; i++) {
                const Field *f = &fields[i];
                uint64_t v;

                if (f->type != FIELD_UINT && f->type != FIELD_ENUM)
                        continue;
                v = field_get(f, rec);
                if (f->type == FIELD_UINT ? v < f->min || v > f->max : v >= f->n_names)
                        return f->key;
        }
        return NULL;
}

_printf_(3, 4) static int check_fail(char *err, size_t err_size, const char *format, ...) {
        va_list ap;

        if (err_size > 0) {
                va_start(ap, format);
                (void)vsnprintf(err, err_size, format, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static int check_connections(const HandoverState *s, char *err, size_t err_size) {
        for (size_t i = 0; i < s->n_connections; i++) {
                const HandoverConnection *c = &s->connections[i];
                const char *key = fields_invalid(connection_fields, ELEMENTSOF(connection_fields), c);
                const char *reason = key ? "out of range" : connection_invalid(s, c);

                if (!reason && c->has_client && c->client_len > sizeof c->client) {
                        key = "client";
                        reason = "longer than a sockaddr_storage";
                }
                if (!reason && i > 0 && c->inode <= s->connections[i - 1].inode) {
                        key = "inode";
                        reason =
                                c->inode == s->connections[i - 1].inode ? "twice" : "not in ascending order";
                }
                if (reason)
                        return check_fail(err, err_size, "connection %zu (inode %llu): %s%s%s", i,
                                          (unsigned long long)c->inode, key ? key : "", key ? ": " : "",
                                          reason);
        }
        return 0;
}

int handover_state_check(const HandoverState *s, char *err, size_t err_size) {
        if (s->n_listeners > HANDOVER_LISTENERS_MAX || s->n_profiles > HANDOVER_PROFILES_MAX ||
            s->n_connections > HANDOVER_CONNECTIONS_MAX)
                return check_fail(err, err_size, "more records than a state may hold");

        for (size_t i = 0; i < s->n_listeners; i++) {
                const HandoverListener *l = &s->listeners[i];
                const char *reason = name_invalid(l->name, strnlen(l->name, sizeof l->name));

                if (reason)
                        return check_fail(err, err_size, "listener %zu: name: %s", i, reason);
                if (fields_invalid(listener_fields, ELEMENTSOF(listener_fields), l))
                        return check_fail(err, err_size, "listener %zu: mode: out of range", i);
        }
        for (size_t i = 0; i < s->n_profiles; i++) {
                const HandoverProfile *prof = &s->profiles[i];
                const char *key = fields_invalid(profile_fields, ELEMENTSOF(profile_fields), prof);
                const char *reason;

                if (key)
                        reason = "out of range";
                else if (prof->ack_len > ACK_TEXT_MAX)
                        reason = "longer than " STRINGIFY(ACK_TEXT_MAX) " bytes";
                else
                        reason = ack_invalid(prof->ack, prof->ack_len);
                if (reason)
                        return check_fail(err, err_size, "profile %zu: %s: %s", i, key ? key : "ack",
                                          reason);
        }
        return check_connections(s, err, err_size);
}

int handover_state_format(const HandoverState *s, char **ret, size_t *ret_len) {
        char err[HANDOVER_ERROR_MAX];
        Buf b = { 0 };

        if (handover_state_check(s, err, sizeof err) < 0)
                return -EINVAL;

        /* Typical sizes, so that the buffer rarely grows. */
        (void)buf_reserve(&b, 64 + s->n_listeners * 64 + s->n_profiles * 96 + s->n_connections * 192);
        buf_puts(&b, HANDOVER_MAGIC " " STRINGIFY(HANDOVER_VERSION) "\n");
        for (size_t i = 0; i < s->n_listeners; i++) {
                buf_puts(&b, "listener ");
                buf_put_uint(&b, i);
                format_fields(&b, listener_fields, ELEMENTSOF(listener_fields), &s->listeners[i]);
        }
        for (size_t i = 0; i < s->n_profiles; i++) {
                buf_puts(&b, "profile ");
                buf_put_uint(&b, i);
                format_fields(&b, profile_fields, ELEMENTSOF(profile_fields), &s->profiles[i]);
        }
        for (size_t i = 0; i < s->n_connections; i++) {
                buf_puts(&b, "connection");
                format_fields(&b, connection_fields, ELEMENTSOF(connection_fields), &s->connections[i]);
        }
        buf_puts(&b, "end");
        format_fields(&b, end_fields, ELEMENTSOF(end_fields),
                      &(EndCounts){ s->n_listeners, s->n_profiles, s->n_connections });
        buf_put(&b, "", 1);
        if (b.oom) {
                free(b.data);
                return -ENOMEM;
        }
        *ret = b.data;
        *ret_len = b.len - 1;
        return 0;
}

void handover_state_done(HandoverState *s) {
        if (!s)
                return;
        free(s->listeners);
        free(s->profiles);
        free(s->connections);
        *s = (HandoverState){ 0 };
}
