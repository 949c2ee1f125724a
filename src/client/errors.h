/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What can go wrong with one request, defined once: the text report, the JSON
 * keys and ackc(1) all list these kinds in this order.
 */

#include <stddef.h>

/* X(ID, JSON key, description) */
#define ERROR_KINDS(X)                                                                          \
        X(REFUSED, "refused", "connection refused")                                            \
        X(RESET, "reset", "connection reset")                                                  \
        X(TIMEOUT, "timeout", "timed out")                                                     \
        X(CLOSED, "closed", "closed before the reply")                                         \
        X(WRONG_REPLY, "wrong_reply", "wrong reply")                                           \
        X(BUSY, "busy", "ERR busy")                                                            \
        X(ERR, "err", "other ERR reply")                                                       \
        X(OTHER, "other", "other error")

typedef enum ErrorKind {
#define ERROR_KIND_ENUM(id, key, text) ERROR_##id,
        ERROR_KINDS(ERROR_KIND_ENUM)
#undef ERROR_KIND_ENUM
        _ERROR_KIND_MAX,
} ErrorKind;

const char *error_kind_key(ErrorKind k);
const char *error_kind_text(ErrorKind k);

/* A failed connect, read or write (negative or positive errno). */
ErrorKind error_kind_from_errno(int error);

/* A reply that is not the expected one, judged from its first bytes. */
ErrorKind error_kind_from_reply(const void *data, size_t len);
