/* SPDX-License-Identifier: MIT */
#pragma once

/* What the parts of the handover state codec share (handover-state.c: the tables and the
 * checks; -parse.c: reading; -format.c: writing): one table of fields per kind of line
 * drives all three. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handover-state.h"
#include "macro.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* The most fields read from a line: "connection" and its 15 keys, and a few more, so that
 * a key too many is named in the error. */
#define TOKENS_MAX 20

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
        size_t width; /* FIELD_UINT: 1, 4 or 8 (handover_field_get(), _set()) */
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

/* The end line: the number of records of each kind, read into this. */
typedef struct EndCounts {
        uint64_t listeners, profiles, connections;
} EndCounts;

/* The fields of each kind of line, in their order (sizes checked where they are defined). */
extern const Field handover_listener_fields[3];
extern const Field handover_profile_fields[3];
extern const Field handover_connection_fields[16];
extern const Field handover_end_fields[3];

/* A uint, bool or enum field of rec, as a number; and back. */
uint64_t handover_field_get(const Field *f, const void *rec);
void handover_field_set(const Field *f, void *rec, uint64_t v);

/* Why a listener name, an ack text or a connection is not valid, or NULL. */
const char *handover_name_invalid(const char *s, size_t n);
const char *handover_ack_invalid(const char *s, size_t n);
const char *handover_connection_invalid(const HandoverState *s, const HandoverConnection *c);

/* Bytes written as \xNN (a backslash as \\): controls, space, non-ASCII. */
static inline bool handover_needs_escape(unsigned char c) {
        return c < 0x21 || c > 0x7e || c == '\\';
}
