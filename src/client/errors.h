/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What can go wrong with one request, defined once: the text report, the JSON
 * keys and ackc(1) all list these kinds in this order.
 */

#include <stddef.h>

/* X(ID, JSON key and report name) */
#define ERROR_KINDS(X)                \
        X(REFUSED, "refused")         \
        X(RESET, "reset")             \
        X(TIMEOUT, "timeout")         \
        X(CLOSED, "closed")           \
        X(WRONG_REPLY, "wrong_reply") \
        X(BUSY, "busy")               \
        X(ERR, "err")                 \
        X(OTHER, "other")

typedef enum ErrorKind {
#define ERROR_KIND_ENUM(id, key) ERROR_##id,
        ERROR_KINDS(ERROR_KIND_ENUM)
#undef ERROR_KIND_ENUM
                _ERROR_KIND_MAX,
} ErrorKind;

const char *error_kind_key(ErrorKind k);

/* A failed connect, read or write (negative or positive errno). */
ErrorKind error_kind_from_errno(int error);

/* A reply that is not the expected one, judged from its first bytes. */
ErrorKind error_kind_from_reply(const void *data, size_t len);
