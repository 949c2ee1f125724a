/* SPDX-License-Identifier: MIT */
#pragma once

/* The ACK wire protocol, shared by ackd and ackc. See ackd(8), PROTOCOL. */

#include <errno.h>
#include <string.h>

#define ACK_DEFAULT_PORT 9999
#define ACK_DEFAULT_TEXT "ACK!"
#define ACK_TEXT_MAX     255 /* bytes in --ack */
#define ACK_MESSAGE_MAX  (16u * 1024 * 1024)

#define REPLY_ERR_BUSY     "ERR busy\n"
#define REPLY_ERR_TOO_LONG "ERR message too long\n"

typedef enum ProtocolMode {
        PROTOCOL_ONESHOT, /* one message per connection, reply without LF, then close */
        PROTOCOL_LINE,    /* LF-terminated messages, pipelined, reply plus LF each */
        PROTOCOL_METRICS, /* not an ack protocol: a listener for ackd's own metrics (HTTP) */
        _PROTOCOL_MAX,
        _PROTOCOL_INVALID = -EINVAL,
} ProtocolMode;

static inline const char *protocol_mode_to_string(ProtocolMode m) {
        switch (m) {
        case PROTOCOL_ONESHOT:
                return "oneshot";
        case PROTOCOL_LINE:
                return "line";
        case PROTOCOL_METRICS:
                return "metrics";
        default:
                return NULL;
        }
}

/* The ack protocols only (ackc's -m); listen_mode_parse() knows the listener modes. */
static inline ProtocolMode protocol_mode_from_string(const char *s) {
        if (s && strcmp(s, "oneshot") == 0)
                return PROTOCOL_ONESHOT;
        if (s && strcmp(s, "line") == 0)
                return PROTOCOL_LINE;
        return _PROTOCOL_INVALID;
}
