/* SPDX-License-Identifier: MIT */
/* The handover state's field tables and checks, and building and searching a state. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover-state-internal.h"

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

const Field handover_listener_fields[] = {
        ENUM_FIELD(HandoverListener, mode, "mode", mode_names),
        BOOL_FIELD(HandoverListener, proxy, "proxy"),
        { .key = "name", .type = FIELD_NAME },
};

const Field handover_profile_fields[] = {
        UINT_FIELD(HandoverProfile, max_message, "max-message", 1, ACK_MESSAGE_MAX),
        UINT_FIELD(HandoverProfile, idle_timeout_ms, "idle-timeout-ms", 1, HANDOVER_IDLE_TIMEOUT_MAX_MS),
        { .key = "ack", .type = FIELD_ACK },
};

const Field handover_connection_fields[] = {
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
_Static_assert(1 + ELEMENTSOF(handover_connection_fields) <= TOKENS_MAX,
               "room for every field of a connection");

const Field handover_end_fields[] = {
        UINT_FIELD(EndCounts, listeners, "listeners", 0, HANDOVER_LISTENERS_MAX),
        UINT_FIELD(EndCounts, profiles, "profiles", 0, HANDOVER_PROFILES_MAX),
        UINT_FIELD(EndCounts, connections, "connections", 0, HANDOVER_CONNECTIONS_MAX),
};
uint64_t handover_field_get(const Field *f, const void *rec) {
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

void handover_field_set(const Field *f, void *rec, uint64_t v) {
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

const char *handover_name_invalid(const char *s, size_t n) {
        if (n == 0)
                return "empty";
        if (n >= ADDRESS_STRING_MAX)
                return "too long";
        if (memchr(s, '\0', n))
                return "NUL byte";
        return NULL;
}

const char *handover_ack_invalid(const char *s, size_t n) {
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

const char *handover_connection_invalid(const HandoverState *s, const HandoverConnection *c) {
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
                v = handover_field_get(f, rec);
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
                const char *key = fields_invalid(handover_connection_fields,
                                                 ELEMENTSOF(handover_connection_fields), c);
                const char *reason = key ? "out of range" : handover_connection_invalid(s, c);

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
                const char *reason = handover_name_invalid(l->name, strnlen(l->name, sizeof l->name));

                if (reason)
                        return check_fail(err, err_size, "listener %zu: name: %s", i, reason);
                if (fields_invalid(handover_listener_fields, ELEMENTSOF(handover_listener_fields), l))
                        return check_fail(err, err_size, "listener %zu: mode: out of range", i);
        }
        for (size_t i = 0; i < s->n_profiles; i++) {
                const HandoverProfile *prof = &s->profiles[i];
                const char *key =
                        fields_invalid(handover_profile_fields, ELEMENTSOF(handover_profile_fields), prof);
                const char *reason;

                if (key)
                        reason = "out of range";
                else if (prof->ack_len > ACK_TEXT_MAX)
                        reason = "longer than " STRINGIFY(ACK_TEXT_MAX) " bytes";
                else
                        reason = handover_ack_invalid(prof->ack, prof->ack_len);
                if (reason)
                        return check_fail(err, err_size, "profile %zu: %s: %s", i, key ? key : "ack",
                                          reason);
        }
        return check_connections(s, err, err_size);
}

void handover_state_done(HandoverState *s) {
        if (!s)
                return;
        free(s->listeners);
        free(s->profiles);
        free(s->connections);
        *s = (HandoverState){ 0 };
}
