/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside the engine: what the loop (engine.c), the connection plumbing
 * (engine-conn.c) and the workloads (exchange.c, workload-*.c) share. engine.h
 * is the outside view and the overview.
 *
 * A workload is a table of operations, chosen once in engine_new(). The loop
 * calls them; they call back only into engine-conn.c, never into the loop. A
 * connection that finished or failed is closed and queued (conn_release(),
 * conn_fail()), and the loop hands it to the workload's refill() at its next
 * round, so no operation ever runs inside another one for the same slot.
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "engine.h"
#include "histogram.h"
#include "macro.h"
#include "schedule.h"

#define SCRATCH_SIZE ENGINE_READ_SIZE
#define NS_PER_MS    1000000ull

typedef enum ConnState {
        CONN_FREE, /* no socket: between requests, queued for a refill, or finished */
        CONN_CONNECTING,
        CONN_HOLD,    /* idle: connected, holding */
        CONN_SENDING, /* exchange: writing the message */
        CONN_READING, /* exchange: waiting for the reply, then EOF */
        CONN_ACTIVE,  /* line: connected, streaming */
        CONN_RETRY,   /* in the retry queue after an error */
} ConnState;

/* Messages written together: one send time (or, with --rate, the first one's schedule index). */
typedef struct Run {
        uint64_t stamp;
        uint32_t n;
} Run;

typedef struct Conn {
        int fd;
        uint8_t state;
        bool write_blocked; /* wait for EPOLLOUT before writing again */
        bool replied;       /* exchange: the whole reply is here, EOF is next */
        bool listed;        /* in the ready list */
        bool served;        /* line: at least one reply arrived on this connection */
        uint32_t inflight;  /* line: messages started, not yet acknowledged */
        uint32_t ring_head, ring_n;
        uint16_t proxy_len;  /* --proxy: the header's length, */
        uint16_t proxy_off;  /* ... and how much of it is written */
        size_t pending_tail; /* bytes of a started message still to write */
        size_t expect_off;   /* offset within the expected reply */
        uint64_t stamp;      /* exchange: start (closed loop) or scheduled time (ns) */
        uint64_t reply_ns;   /* exchange: when the reply was complete */
        uint64_t deadline;   /* ns: fail with a timeout if still waiting then; 0: none */
        uint64_t retry_at;
        uint64_t index;       /* connection number over all threads: picks the source */
        Run *ring;            /* line: depth runs */
        struct Conn *link[2]; /* in a queue (free or retry) and in the ready list; may be in both */
} Conn;

enum { LINK_QUEUE, LINK_READY };

/* A FIFO of connections through one of their links. */
typedef struct List {
        Conn *head, *tail;
        unsigned link;
} List;

static inline void list_push(List *l, Conn *c) {
        c->link[l->link] = NULL;
        if (l->tail)
                l->tail->link[l->link] = c;
        else
                l->head = c;
        l->tail = c;
}

static inline Conn *list_pop(List *l) {
        Conn *c = l->head;

        if (c) {
                l->head = c->link[l->link];
                if (!l->head)
                        l->tail = NULL;
                c->link[l->link] = NULL;
        }
        return c;
}

/* MIN() would evaluate its arguments twice. */
static inline uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

typedef struct Workload {
        bool nodelay;                                  /* TCP_NODELAY on its sockets */
        int (*init)(Engine *e);                        /* allocations of its own; NULL: none */
        void (*refill)(Engine *e, Conn *c);            /* a queued slot: start its next work; NULL:
                                                        * every connection is used once */
        void (*issue)(Engine *e, Conn *c, uint64_t n); /* --rate: n requests are due and c has room */
        void (*step)(Engine *e);                       /* every round before waiting; NULL: none */
        void (*event)(Engine *e, Conn *c, uint32_t events);
        void (*stop)(Engine *e); /* stopping began; NULL: nothing to do */
        bool (*finished)(const Engine *e);
        uint64_t (*wakeup)(const Engine *e, uint64_t t); /* its next deadline, if before t; NULL: none */
} Workload;

extern const Workload workload_oneshot;
extern const Workload workload_line;
extern const Workload workload_idle;

typedef enum IdlePhase {
        IDLE_CONNECT,
        IDLE_HOLD,
        IDLE_SEND,
        IDLE_FINISHED,
} IdlePhase;

struct Engine {
        EngineShared *sh;
        const ClientArgs *args;
        const Workload *w;
        unsigned id;
        pthread_t thread;
        bool started;

        int epoll_fd;
        bool no_pwait2; /* epoll_pwait2() is ENOSYS: wait in milliseconds */
        Conn *conns;
        size_t n_conns;
        Run *runs;           /* line: depth per connection */
        char *proxy_headers; /* --proxy without a fixed header: one per connection */
        char *scratch;
        uint32_t depth;
        bool needs_eof; /* exchanges end with the server's EOF (oneshot protocol) */
        bool rate;
        Schedule schedule;

        uint64_t now;
        uint64_t budget;
        uint64_t issued; /* requests started: the schedule index of the next one */
        bool stopping;
        uint64_t next_tick;
        uint64_t next_snapshot;
        size_t open;       /* sockets open (connecting or connected) */
        size_t connecting; /* ... of them still connecting */

        List free;  /* slots to refill at the loop's next round */
        List retry; /* failed connections, in the order they may retry */
        List ready; /* --rate: connections (or oneshot slots) with room */

        struct {
                IdlePhase phase;
                size_t next; /* next connection to open, then to send on */
                uint64_t hold_until;
        } idle;

        EngineResult result;

        pthread_mutex_t lock; /* guards snapshot */
        EngineResult *snapshot;
};

/* --- engine-conn.c: results, and a connection's socket ------------------------------------------ */

/* Counts an error of kind k; the first of each kind keeps its description. */
_printf_(3, 4) void engine_count_error(Engine *e, ErrorKind k, const char *format, ...);

/* n replies verified at `now`, for requests started at `stamp`. */
static inline void engine_record(Engine *e, uint64_t stamp, uint64_t now, uint64_t n) {
        histogram_record_n(&e->result.hist, now > stamp ? now - stamp : 0, n);
        e->result.completed += n;
}

/* Requests this engine may start now. */
static inline uint64_t engine_available(const Engine *e) {
        if (e->stopping)
                return 0;
        return schedule_available(&e->schedule, e->now, e->budget, e->issued);
}

/* Opens a socket and starts connecting it. Returns 0 (connected: call conn_connected()),
 * -EINPROGRESS, or another error after failing c. */
int conn_connect(Engine *e, Conn *c);

/* c's own PROXY header (when the engine has no fixed one): CLIENT_PROXY_HEADER_MAX bytes. */
char *conn_proxy_header(const Engine *e, const Conn *c);

/* Whether part of c's PROXY header is still to be written. */
static inline bool conn_proxy_pending(const Conn *c) {
        return c->proxy_off < c->proxy_len;
}

/* Writes (the rest of) c's PROXY header and up to len bytes of data in one go. */
ssize_t conn_write_proxy(Engine *e, Conn *c, const char *data, size_t len);

/* Writes up to len bytes of data, after whatever is left of c's PROXY header, so that
 * the two leave together. Returns the data bytes written, or a negative errno (EINTR
 * retried): -EAGAIN also when the socket took only part of the header. */
static inline ssize_t conn_write(Engine *e, Conn *c, const char *data, size_t len) {
        ssize_t n;

        if (conn_proxy_pending(c))
                return conn_write_proxy(e, c, data, len);
        do
                n = write(c->fd, data, len);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
}

/* c is connected: count it, and go on in `state`. */
void conn_connected(Engine *e, Conn *c, ConnState state);

/* A non-blocking connect() reported in by epoll: true once it succeeded (then c is in
 * `state`), false while it is still under way or when it failed (counted). */
bool connect_completed(Engine *e, Conn *c, uint32_t events, ConnState state);

/* Closes c's socket (if any) and clears its state. */
void conn_close(Engine *e, Conn *c);

/* c is done with its work: close it and queue it to be refilled at the loop's next round. */
void conn_release(Engine *e, Conn *c);

/* Ends c after an error (counted by the caller): whatever was in flight is lost. It is
 * refilled after a pause, so that a refusing server is not hammered in a tight loop. */
void conn_fail(Engine *e, Conn *c);

/* --rate: c has room for due requests. */
void conn_ready(Engine *e, Conn *c);

/* Counts a failed connect, read or write, and fails c. */
void conn_fail_errno(Engine *e, Conn *c, int error, const char *what);

/* Counts a reply that differs from the expected one, and fails c. `data` starts where the
 * reply starts if at_start, else somewhere inside it. */
void conn_fail_reply(Engine *e, Conn *c, const char *data, size_t len, bool at_start);

/* One read into the scratch buffer, stamping the clock. Returns the byte count (0 at
 * EOF), -EAGAIN when the socket is empty, or another negative errno once the failure
 * has been counted against c. Inline, as every event of every workload reads. */
static inline ssize_t conn_read(Engine *e, Conn *c) {
        for (;;) {
                ssize_t n = read(c->fd, e->scratch, SCRATCH_SIZE);

                e->now = clock_ns();
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return -EAGAIN;
                n = -errno;
                conn_fail_errno(e, c, (int)n, "reading from");
                return n;
        }
}

/* --- exchange.c: one message on its own connection, its reply, and EOF if oneshot --------------- */

/* Sets c up for its message, stamped `stamp`; exchange_write() sends it once c is connected. */
void exchange_begin(Engine *e, Conn *c, uint64_t stamp);

/* Writes (the rest of) the message. Returns false if c is finished. */
bool exchange_write(Engine *e, Conn *c);

/* A held connection (idle) sends its PROXY header at once, its message later: a proxy
 * sends the header as it connects, and ackd waits only --proxy-timeout for it. */
void exchange_hold(Engine *e, Conn *c);

/* The epoll event handler of exchanges. */
void exchange_event(Engine *e, Conn *c, uint32_t events);
