/* SPDX-License-Identifier: MIT */
/* The handover state written as text (handover-state.h describes the format). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handover-state-internal.h"

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
                } else if (handover_needs_escape(c)) {
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
                        buf_put_uint(b, handover_field_get(f, rec));
                        break;
                case FIELD_ENUM:
                        buf_puts(b, f->names[handover_field_get(f, rec)]);
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
                format_fields(&b, handover_listener_fields, ELEMENTSOF(handover_listener_fields),
                              &s->listeners[i]);
        }
        for (size_t i = 0; i < s->n_profiles; i++) {
                buf_puts(&b, "profile ");
                buf_put_uint(&b, i);
                format_fields(&b, handover_profile_fields, ELEMENTSOF(handover_profile_fields),
                              &s->profiles[i]);
        }
        for (size_t i = 0; i < s->n_connections; i++) {
                buf_puts(&b, "connection");
                format_fields(&b, handover_connection_fields, ELEMENTSOF(handover_connection_fields),
                              &s->connections[i]);
        }
        buf_puts(&b, "end");
        format_fields(&b, handover_end_fields, ELEMENTSOF(handover_end_fields),
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
