/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The load generator's engine: one thread per Engine, each with its own epoll
 * instance, connections, counters and histogram, sharing nothing writable with
 * the others on the hot path (the main thread merges their results at the end,
 * and copies a snapshot for the progress line a few times a second).
 *
 * Trigger mode: edge-triggered. Every socket is registered once, for
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, and never modified: a connection
 * writes whenever it has something to send and only waits for EPOLLOUT after a
 * short write or EAGAIN; it reads until a read comes back short (the socket is
 * then empty, and new data raises a new edge), or to EOF when the event carried
 * EPOLLRDHUP.
 *
 * Three workloads, each a table of operations (engine-internal.h) in a file of
 * its own, chosen once in engine_new():
 *
 *   line      (workload-line.c) persistent connections with up to `depth`
 *             messages in flight, sent and checked in bulk: one write() refills
 *             a window, one memcmp() checks a read full of acks.
 *
 *   oneshot   (workload-oneshot.c) a connection per request: socket, connect,
 *             write, read the reply, read EOF, close (exchange.c). Latency runs
 *             from before socket() to the read that completed the reply; the
 *             request counts only once EOF confirms nothing followed.
 *
 *   idle      (workload-idle.c) open N connections (at most 256 connecting at
 *             once per thread), hold them for the duration, then send one message
 *             on each and check every reply (and EOF, in oneshot mode).
 *
 * The loop (engine.c) owns the rounds: a connection that finished or failed is
 * closed and queued, and refilled at the loop's next round, never from inside
 * the handler that freed it.
 *
 * Closed loop by default: a connection sends again as soon as its window has room.
 * With --rate the engine follows a schedule (schedule.c) instead: request i of the
 * whole run is due at t0 + i/rate (thread k of T takes i = k, k+T, ...); due
 * requests go to connections with room, and latency is measured from the
 * scheduled time, so a server stall delays everything scheduled behind it and
 * shows in the percentiles (the coordinated-omission correction).
 *
 * Timeouts: every connection waiting for something has a deadline, checked by a
 * scan every 100 ms. After an error a connection waits 10 ms (a FIFO, since the
 * pause is constant) before it connects again. Sockets leave the epoll set
 * (EPOLL_CTL_DEL) before they are closed, and fds are -1 once closed. Every
 * allocation is made before the run starts: connections, rings, read buffer.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "args.h"
#include "errors.h"
#include "histogram.h"
#include "time-util.h"

#define ENGINE_DETAIL_MAX 160
#define ENGINE_READ_SIZE  65536 /* bytes per read(); expect_buf must cover this plus one reply */

/* Set up by bench.c, read-only while the engines run (but for `stop`). */
typedef struct EngineShared {
        const ClientArgs *args;
        Source target;
        char target_name[ADDRESS_STRING_MAX];

        const char *send_buf; /* max(depth, 1) copies of the message (+ LF in line mode) */
        size_t send_unit;
        const char *expect_buf; /* the reply, repeated to cover a full read at any offset */
        size_t expect_unit;

        bool proxy;              /* --proxy: a header starts every connection */
        const char *proxy_fixed; /* ... the same one for all (proxy-header.h); NULL: built per
                                  * connection once its local address is known */
        size_t proxy_fixed_len;

        uint64_t t0;  /* ns, CLOCK_MONOTONIC: the run's start, the schedule's origin */
        uint64_t end; /* ns: stop starting requests; 0 with --requests or --idle */
        uint64_t timeout_ns;
        unsigned n_threads;
        bool progress; /* keep snapshots for the progress line */

        atomic_bool stop; /* interrupted: stop starting requests */
        int done_fd;      /* eventfd: an engine finished */
} EngineShared;

/* What an engine did; merged over engines for the report. */
typedef struct EngineResult {
        uint64_t sent;      /* messages written (line) or connections started (oneshot, idle) */
        uint64_t completed; /* verified replies */
        uint64_t connected; /* connections established */
        uint64_t unsent;    /* --rate: due, but never sent before the end */
        uint64_t errors[_ERROR_KIND_MAX];
        char detail[_ERROR_KIND_MAX][ENGINE_DETAIL_MAX]; /* the first error of each kind */
        uint64_t idle_opened;                            /* --idle: connections attempted */
        uint64_t idle_held;                              /* ... still open when the hold ended */
        uint64_t end;                                    /* ns: when the engine finished */
        Histogram hist;
} EngineResult;

typedef struct Engine Engine;

/* The load generator's clock: monotonic nanoseconds. */
static inline uint64_t clock_ns(void) {
        return now_nsec(CLOCK_MONOTONIC);
}

/*
 * An engine for connections first_index, first_index + stride, ... (n of them; the
 * index picks the --source address), allowed to start `budget` requests (UINT64_MAX:
 * until the end). Allocates everything it will ever need now.
 */
int engine_new(Engine **ret, EngineShared *sh, unsigned id, uint64_t first_index, uint64_t stride, size_t n,
               uint64_t budget);
Engine *engine_free(Engine *e);

int engine_start(Engine *e);
void engine_join(Engine *e);

/* Adds the engine's result (after engine_join()) to r. */
void engine_collect(const Engine *e, EngineResult *r);

/* For the progress line while running: adds the latest snapshot to r (histogram, counters). */
void engine_snapshot(Engine *e, EngineResult *r);

void engine_result_init(EngineResult *r);
