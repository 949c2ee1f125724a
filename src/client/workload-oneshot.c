/* SPDX-License-Identifier: MIT */
/*
 * The oneshot workload: a connection per request. Each of the engine's
 * connections is a slot that runs one exchange at a time: socket, non-blocking
 * connect, write (at once: on loopback the handshake is usually complete when
 * connect() returns; EAGAIN means wait for EPOLLOUT), read the reply, read
 * EOF, close. A freed slot starts the next request at once (closed loop) or
 * waits in the ready list for the schedule (--rate), where latency runs from
 * the request's scheduled time instead of its start.
 */
#include <errno.h>

#include "engine-internal.h"

static void oneshot_start(Engine *e, Conn *c, uint64_t stamp) {
        int r;

        e->issued++;
        exchange_begin(e, c, stamp);
        r = conn_connect(e, c);
        if (r < 0 && r != -EINPROGRESS)
                return;
        /* On loopback the handshake is usually over when connect() returns: try now
         * rather than after a round through epoll. */
        (void)exchange_write(e, c);
}

static void oneshot_refill(Engine *e, Conn *c) {
        if (e->rate)
                conn_ready(e, c);
        else if (engine_available(e) > 0)
                oneshot_start(e, c, clock_ns());
}

static void oneshot_issue(Engine *e, Conn *c, uint64_t n) {
        if (c->state == CONN_FREE)
                oneshot_start(e, c, schedule_time(&e->schedule, e->issued));
}

/* Every request started has been answered or has failed. */
static bool oneshot_finished(const Engine *e) {
        return e->stopping && e->open == 0;
}

const Workload workload_oneshot = {
        .refill = oneshot_refill,
        .issue = oneshot_issue,
        .event = exchange_event,
        .finished = oneshot_finished,
};
