/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One client connection, end to end inside one worker. The struct is small
 * and fixed (64 bytes): no buffer is held while a connection is idle; input is
 * read into the worker's scratch buffer and parsed at once, and output is a
 * count of acknowledgements owed, written from the profile's constant reply
 * buffer.
 *
 * States:
 *   READING   oneshot: waiting for the message; line: serving messages
 *   REPLYING  writing what is owed (acks, then an ERR line); then shutdown(SHUT_WR)
 *   LINGER    reply sent: discard input until EOF or the linger timeout, then close,
 *             so unread input can never turn the close into a reset that loses the reply
 */

#include <stdint.h>
#include <sys/socket.h>

#include "line-parser.h"
#include "profile.h"
#include "timer.h"

struct Worker;
struct Listener;

/* How long a connection may linger after its reply before it is closed. */
#define LINGER_TIMEOUT_MS 2000

/* Messages logged per connection at log level info, so one client cannot flood the log. */
#define LOG_MESSAGES_PER_CONNECTION 16

/* Tags at the start of every object an epoll event points to. */
typedef enum SourceKind {
        SOURCE_LISTENER = 1,
        SOURCE_CONTROL,
        SOURCE_CONNECTION,
} SourceKind;

typedef enum ConnectionState {
        CONNECTION_READING,
        CONNECTION_REPLYING,
        CONNECTION_LINGER,
} ConnectionState;

typedef enum ErrorReply {
        ERROR_REPLY_NONE,
        ERROR_REPLY_BUSY,
        ERROR_REPLY_TOO_LONG,
} ErrorReply;

enum {
        CONNECTION_EOF = 1 << 0,          /* the peer finished sending */
        CONNECTION_OUT_BLOCKED = 1 << 1,  /* the last write was short: wait for EPOLLOUT */
        CONNECTION_REJECTED = 1 << 2,     /* being told ERR busy: not counted in max-connections */
};

typedef struct Connection {
        uint8_t kind;                   /* SOURCE_CONNECTION; epoll data points here */
        uint8_t mode;                   /* ProtocolMode */
        uint8_t state;                  /* ConnectionState */
        uint8_t flags;
        int fd;
        uint32_t pending_acks;          /* acknowledgements owed, in order */
        uint32_t out_offset;            /* bytes of the first owed reply already written */
        LineParser parser;
        uint8_t error_reply;            /* ErrorReply, sent after the owed acks */
        uint8_t interest;               /* epoll events registered (0: not in the epoll set) */
        uint8_t n_logged;               /* messages logged so far */
        uint8_t n_extended;             /* linger periods added while the reply was still leaving */
        Profile *profile;
        TimerEntry timer;               /* in profile->idle, or the worker's linger queue */
} Connection;

/* The memory figure in ackd(8) and BENCHMARKS.md depends on it. */
_Static_assert(sizeof(Connection) <= 64, "a connection must fit in 64 bytes");

/* Takes a freshly accepted socket: admits it (or answers ERR busy) and serves what
 * is already there. Never fails: on error the socket is closed. */
void connection_accept(struct Worker *w, const struct Listener *l, int fd, const struct sockaddr *peer,
                       socklen_t peer_len);

/* An epoll event for c. */
void connection_dispatch(struct Worker *w, Connection *c, uint32_t events);

/* c's timer expired (idle in READING/REPLYING, or the linger timeout). */
void connection_timeout(struct Worker *w, Connection *c);

/* Shutdown began: a line connection stops reading and finishes with what it owes;
 * a oneshot connection still waiting for its message keeps waiting. */
void connection_stop(struct Worker *w, Connection *c);

/* Closes at once (the drain deadline passed, or a forced stop). */
void connection_close(struct Worker *w, Connection *c);
