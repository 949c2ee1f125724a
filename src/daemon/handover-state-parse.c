/* SPDX-License-Identifier: MIT */
/* The handover state read from text, strictly: every error names its line and key. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover-state-internal.h"
#include "parse-util.h"

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
                                if (!handover_needs_escape(c) || c == '\\') {
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
                        handover_field_set(f, rec, i);
                        return 0;
                }
        /* "a", "a or b", "a, b or c", ... */
        for (size_t i = 0; i < f->n_names && n < sizeof names; i++)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s",
                                      i == 0                ? ""
                                      : i + 1 == f->n_names ? " or "
                                                            : ", ",
                                      f->names[i]);
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

                reason = handover_name_invalid(text, (size_t)n);
                if (reason)
                        return parser_fail(p, "%s: %s", f->key, reason);
                memcpy(l->name, text, (size_t)n);
                l->name[n] = '\0';
                return 0;
        }
        case FIELD_ACK: {
                HandoverProfile *prof = rec;

                reason = handover_ack_invalid(text, (size_t)n);
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
                handover_field_set(f, rec, v);
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
            parse_fields(p, 2, handover_listener_fields, ELEMENTSOF(handover_listener_fields), &l) < 0)
                return -EBADMSG;
        if (handover_state_add_listener(s, &slot) < 0)
                return parser_fail(p, "out of memory");
        *slot = l;
        return 0;
}

static int parse_profile(Parser *p, HandoverState *s) {
        HandoverProfile prof = { 0 }, *slot;

        if (parse_index(p, s->n_profiles, HANDOVER_PROFILES_MAX) < 0 ||
            parse_fields(p, 2, handover_profile_fields, ELEMENTSOF(handover_profile_fields), &prof) < 0)
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
        if (parse_fields(p, 1, handover_connection_fields, ELEMENTSOF(handover_connection_fields), &c) < 0)
                return -EBADMSG;
        reason = handover_connection_invalid(s, &c);
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

        if (parse_fields(p, 1, handover_end_fields, ELEMENTSOF(handover_end_fields), &n) < 0)
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
