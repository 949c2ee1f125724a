/* SPDX-License-Identifier: MIT */
/*
 * The idle workload (--idle N): open N connections, at most
 * IDLE_CONNECT_WINDOW connecting at once per thread; hold them for the
 * duration; then send one message on each, in waves, and check every reply
 * (and EOF, in oneshot mode). Each connection is used once: whatever happens
 * to it, it is not reopened.
 */
#include "engine-internal.h"

#define IDLE_CONNECT_WINDOW 256 /* connects in progress per thread */
#define IDLE_SEND_WAVE      32  /* messages sent between two epoll waits */

#define _fallthrough_ __attribute__((fallthrough))

static void idle_connect(Engine *e) {
        if (e->stopping)
                e->idle.next = e->n_conns;
        while (e->connecting < IDLE_CONNECT_WINDOW && e->idle.next < e->n_conns) {
                Conn *c = &e->conns[e->idle.next++];

                e->result.idle_opened++;
                if (conn_connect(e, c) == 0) {
                        conn_connected(e, c, CONN_HOLD);
                        exchange_hold(e, c);
                }
        }
}

/* In waves, reading replies in between, so that a reply's latency is not the time it
 * took to write to all the others. */
static void idle_send_wave(Engine *e) {
        for (size_t sent = 0; sent < IDLE_SEND_WAVE && e->idle.next < e->n_conns; e->idle.next++) {
                Conn *c = &e->conns[e->idle.next];

                if (c->state != CONN_HOLD)
                        continue;
                e->result.idle_held++;
                sent++;
                e->now = clock_ns();
                exchange_begin(e, c, e->now);
                c->state = CONN_SENDING;
                (void)exchange_write(e, c);
        }
}

static void idle_step(Engine *e) {
        switch (e->idle.phase) {
        case IDLE_CONNECT:
                idle_connect(e);
                if (e->connecting > 0 || e->idle.next < e->n_conns)
                        return;
                e->idle.phase = IDLE_HOLD;
                e->idle.hold_until = e->now + e->args->duration_ms * NS_PER_MS;
                _fallthrough_;
        case IDLE_HOLD:
                if (e->now < e->idle.hold_until && !e->stopping)
                        return;
                e->idle.phase = IDLE_SEND;
                e->idle.next = 0;
                _fallthrough_;
        case IDLE_SEND:
                idle_send_wave(e);
                if (e->idle.next >= e->n_conns && e->open == 0)
                        e->idle.phase = IDLE_FINISHED;
                return;
        case IDLE_FINISHED:
                return;
        }
}

static bool idle_finished(const Engine *e) {
        return e->idle.phase == IDLE_FINISHED;
}

static uint64_t idle_wakeup(const Engine *e, uint64_t t) {
        if (e->idle.phase == IDLE_HOLD)
                return min_u64(t, e->idle.hold_until);
        if (e->idle.phase == IDLE_SEND && e->idle.next < e->n_conns)
                return e->now; /* the next wave: only collect what is ready */
        return t;
}

const Workload workload_idle = {
        .step = idle_step,
        .event = exchange_event,
        .finished = idle_finished,
        .wakeup = idle_wakeup,
};
