/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One client connection, end to end inside one worker. The struct is small
 * and fixed (64 bytes): no buffer is held while a connection is idle; input is
 * read into the context's scratch buffer and parsed at once, and output is a
 * count of acknowledgements owed, written from the profile's constant reply
 * buffer.
 *
 * States:
 *   HEADER    +proxy listeners: waiting for the PROXY protocol header (connection-proxy.c)
 *   READING   oneshot: waiting for the message; line: serving messages
 *   REPLYING  writing what is owed (acks, then an ERR line); then shutdown(SHUT_WR)
 *   LINGER    reply sent: discard input until EOF or the linger timeout, then close,
 *             so unread input can never turn the close into a reset that loses the reply
 *
 * A connection needs only its ConnectionContext: the owner's epoll set and
 * clock, the scratch buffer, the timer queues, the counters and admission. The
 * worker owns one context and feeds it events and timer ticks; a unit test can
 * own one just as well.
 */

#include <stdint.h>
#include <sys/socket.h>

#include "admission.h"
#include "handover-state.h"
#include "line-parser.h"
#include "listener.h"
#include "log.h"
#include "peer-table.h"
#include "profile.h"
#include "stats.h"
#include "timer.h"

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
        CONNECTION_HEADER,
} ConnectionState;

typedef enum ErrorReply {
        ERROR_REPLY_NONE,
        ERROR_REPLY_BUSY,
        ERROR_REPLY_TOO_LONG,
} ErrorReply;

enum {
        CONNECTION_EOF = 1 << 0,         /* the peer finished sending */
        CONNECTION_OUT_BLOCKED = 1 << 1, /* the last write was short: wait for EPOLLOUT */
        CONNECTION_REJECTED = 1 << 2,    /* being told ERR busy: not counted in max-connections */
        CONNECTION_LINE = 1 << 3,        /* line mode (else oneshot) */
};

typedef struct Connection {
        uint8_t kind;     /* SOURCE_CONNECTION; epoll data points here */
        uint8_t listener; /* Listener.index: which counters, which mode */
        uint8_t state;    /* ConnectionState */
        uint8_t flags;
        int fd;
        uint32_t pending_acks; /* acknowledgements owed, in order */
        union {
                uint32_t out_offset;    /* bytes of the first owed reply already written */
                uint32_t linger_unsent; /* LINGER, all written: bytes in flight at the last look */
        };
        LineParser parser;
        uint32_t peer;          /* +proxy: its record in the context's peer table (0: none) */
        uint8_t error_reply;    /* ErrorReply, sent after the owed acks */
        uint8_t interest;       /* epoll events registered (0: not in the epoll set) */
        uint8_t n_logged;       /* messages logged so far */
        uint8_t n_extended;     /* linger periods added while the reply was still leaving */
        uint32_t bytes_written; /* modulo 2^32: compared with what the peer's TCP acknowledged */
        Profile *profile;
        TimerEntry timer; /* in profile->idle or ->proxy, or the context's linger queue */
} Connection;

/* The memory figure in ackd(8) and BENCHMARKS.md depends on it. */
_Static_assert(sizeof(Connection) <= 64, "a connection must fit in 64 bytes");

typedef struct ConnectionSlab ConnectionSlab;

/* Warnings every connection could cause, logged once per interval across all workers. */
typedef struct ConnectionLogLimits {
        RateLimit busy;  /* over max-connections */
        RateLimit proxy; /* bad, late or untrusted PROXY headers */
} ConnectionLogLimits;

/* Connections come from slabs that are never returned while the owner runs: no malloc
 * per connection, and the total is bounded by max-connections. */
typedef struct ConnectionPool {
        Connection *free_list; /* linked through timer.next, unused while free */
        ConnectionSlab *slabs;
        size_t n_used;
} ConnectionPool;

typedef struct ConnectionContext {
        int epoll_fd;  /* the owner's epoll set, level-triggered */
        uint64_t now;  /* CLOCK_MONOTONIC_COARSE ms, set by the owner once per wakeup */
        char *scratch; /* every read lands here */
        size_t scratch_size;
        TimerQueue linger;
        ProfileList profiles; /* .current for new connections */
        ConnectionPool pool;
        WorkerStats *stats; /* per listener; written by the owner's thread only */
        size_t n_stats;
        PeerTable peers;                 /* what +proxy connections keep beyond their 64 bytes */
        Admission *admission;            /* shared by every context */
        ConnectionLogLimits *log_limits; /* shared: repeated warnings once per interval */
} ConnectionContext;

/* Takes the epoll fd (not owned) and the shared admission and rate limits; keeps counters
 * for n_listeners listeners. */
int connection_context_init(ConnectionContext *ctx, int epoll_fd, size_t n_listeners, Admission *admission,
                            ConnectionLogLimits *log_limits);

/* Closes every connection and frees what the context holds. */
void connection_context_done(ConnectionContext *ctx);

/* New connections get profile p (taking its reference); the scratch buffer grows to
 * hold a whole oneshot message under it. On failure p is freed and nothing changes. */
int connection_context_use(ConnectionContext *ctx, Profile *p);

static inline size_t connection_count(const ConnectionContext *ctx) {
        return ctx->pool.n_used;
}

static inline ProtocolMode connection_mode(const Connection *c) {
        return (c->flags & CONNECTION_LINE) ? PROTOCOL_LINE : PROTOCOL_ONESHOT;
}

/* Takes a freshly accepted socket: admits it (or answers ERR busy) and serves what is
 * already there. Never fails: on error the socket is closed. Returns the connection,
 * or NULL when it is already finished. */
Connection *connection_accept(ConnectionContext *ctx, const Listener *l, int fd, const struct sockaddr *peer,
                              socklen_t peer_len);

/* An epoll event for c. */
void connection_dispatch(ConnectionContext *ctx, Connection *c, uint32_t events);

/* Fires every timer due at ctx->now: idle timeouts and lingering closes. */
void connection_run_timers(ConnectionContext *ctx);

/* The earliest timer deadline (ms), UINT64_MAX when there is none. */
uint64_t connection_next_deadline(const ConnectionContext *ctx);

/* Shutdown began: a line connection stops reading and finishes with what it owes;
 * a oneshot connection still waiting for its message keeps waiting. */
void connection_stop(ConnectionContext *ctx, Connection *c);

/* Closes at once (the drain deadline passed, or a forced stop). */
void connection_close(ConnectionContext *ctx, Connection *c);

/* Restart handover (connection-handover.c). Export writes what c owes as far as the
 * socket takes it, then describes c in rec and forgets it, leaving its socket (*ret_fd)
 * to the caller; *ret_generation names its profile. -EBUSY: c cannot be handed over
 * (its PROXY header is half here): drain it instead. */
int connection_export(ConnectionContext *ctx, Connection *c, HandoverConnection *rec, int *ret_fd,
                      unsigned *ret_generation);

/* Takes over fd as rec describes, with listener l and profile p (which it references).
 * Returns 0, or a negative errno and fd is the caller's to close. */
int connection_import(ConnectionContext *ctx, const Listener *l, Profile *p, int fd,
                      const HandoverConnection *rec);

/* Calls f for every open connection; f may close the one it is given. */
void connection_for_each(ConnectionContext *ctx, void (*f)(ConnectionContext *ctx, Connection *c));

typedef void (*connection_fn)(ConnectionContext *ctx, Connection *c, void *userdata);
void connection_for_each_with(ConnectionContext *ctx, connection_fn f, void *userdata);
