/* SPDX-License-Identifier: MIT */
/*
 * The line workload: persistent connections with up to `depth` messages in
 * flight. The messages are one prebuilt buffer of `depth` copies, so refilling
 * the window is one write(); acks are read in big reads and compared with
 * memcmp() against a prebuilt buffer of repeated replies, tracking only the
 * offset within the reply. Send times are kept per write as runs (time, count)
 * in a ring of `depth` entries per connection: one clock read per write and per
 * read, no per-message work but a count. (With --rate a run holds the schedule
 * index of its first message instead, and the due messages are handed to
 * connections with room by the loop.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine-internal.h"

static int line_init(Engine *e) {
        e->runs = calloc(MAX(e->n_conns, 1u) * e->depth, sizeof *e->runs);
        if (!e->runs)
                return -ENOMEM;
        for (size_t i = 0; i < e->n_conns; i++)
                e->conns[i].ring = e->runs + i * e->depth;
        return 0;
}

/* Acknowledges n messages at the head of c's window. */
static void line_ack(Engine *e, Conn *c, uint32_t n) {
        c->inflight -= n;
        while (n > 0) {
                Run *r = &c->ring[c->ring_head];
                uint32_t m = MIN(n, r->n);

                if (e->rate) {
                        /* Each message from its own scheduled time. */
                        for (uint32_t j = 0; j < m; j++)
                                engine_record(e, schedule_time(&e->schedule, r->stamp + j), e->now, 1);
                        r->stamp += m;
                } else
                        engine_record(e, r->stamp, e->now, m);
                r->n -= m;
                n -= m;
                if (r->n == 0) {
                        c->ring_head = (c->ring_head + 1) % e->depth;
                        c->ring_n--;
                }
        }
}

/* Starts up to n new messages on c, and finishes a partly written one. */
static void line_write(Engine *e, Conn *c, uint64_t n) {
        const EngineShared *sh = e->sh;
        size_t unit = sh->send_unit, off, len, started;
        uint64_t stamp;
        ssize_t w;

        if (c->state != CONN_ACTIVE || c->write_blocked)
                return;
        n = min_u64(n, e->depth - c->inflight);
        if (n == 0 && c->pending_tail == 0 && !conn_proxy_pending(c))
                return;

        /* The buffer holds `depth` messages back to back: a partly written one resumes
         * at its offset in the first copy, the new ones follow it. */
        off = c->pending_tail > 0 ? unit - c->pending_tail : 0;
        len = c->pending_tail + (size_t)n * unit;
        e->now = clock_ns();
        stamp = e->rate ? e->issued : e->now;
        /* The PROXY header, if not yet written, leaves with the first messages. */
        w = conn_write(e, c, sh->send_buf + off, len);
        if (w < 0) {
                if (w == -EAGAIN) {
                        c->write_blocked = true;
                        return;
                }
                conn_fail_errno(e, c, (int)w, "writing to");
                return;
        }
        if ((size_t)w < len)
                c->write_blocked = true; /* the next EPOLLOUT edge resumes */

        started = (size_t)w > c->pending_tail ? ((size_t)w - c->pending_tail + unit - 1) / unit : 0;
        c->pending_tail = c->pending_tail + started * unit - (size_t)w;
        if (started == 0)
                return;

        c->ring[(c->ring_head + c->ring_n) % e->depth] = (Run){ .stamp = stamp, .n = (uint32_t)started };
        c->ring_n++;
        if (c->inflight == 0)
                c->deadline = e->now + sh->timeout_ns;
        c->inflight += (uint32_t)started;
        e->issued += started;
        e->result.sent += started;
}

/* --rate: c waits in the ready list while it has room for due messages. */
static void line_relist(Engine *e, Conn *c) {
        if (c->state == CONN_ACTIVE && !c->write_blocked && c->inflight < e->depth)
                conn_ready(e, c);
}

/* Fills c's window as far as the budget (or the schedule) allows. */
static inline void line_fill(Engine *e, Conn *c) {
        if (e->rate) {
                /* Due messages are handed out by line_issue(); only finish a partial one. */
                line_write(e, c, 0);
                line_relist(e, c);
                return;
        }
        line_write(e, c, engine_available(e));
}

/* Connects a free connection and starts filling its window. */
static void line_refill(Engine *e, Conn *c) {
        if (e->stopping || e->issued >= e->budget)
                return;
        if (conn_connect(e, c) == 0) {
                conn_connected(e, c, CONN_ACTIVE);
                line_fill(e, c);
        }
}

static void line_issue(Engine *e, Conn *c, uint64_t n) {
        /* It may have failed since it was listed. */
        if (c->state != CONN_ACTIVE)
                return;
        line_write(e, c, n);
        line_relist(e, c);
}

/* The server closed c. */
static void line_closed(Engine *e, Conn *c) {
        const char *name = e->sh->target_name;

        if (c->served && c->inflight == 0 && c->expect_off == 0 && c->pending_tail == 0)
                /* Closed after serving, with nothing owed (an idle timeout, say): no request
                 * failed. Reconnect. */
                conn_release(e, c);
        else {
                if (c->inflight == 0)
                        engine_count_error(e, ERROR_CLOSED, "%s closed the connection before any reply",
                                           name);
                else
                        engine_count_error(e, ERROR_CLOSED,
                                           "%s closed the connection with %u messages unanswered", name,
                                           c->inflight);
                conn_fail(e, c);
        }
}

/* The n bytes read differ from the acks expected: credit the replies before the first
 * wrong byte, and fail c with the reply that holds it. */
static void line_mismatch(Engine *e, Conn *c, size_t n) {
        const EngineShared *sh = e->sh;
        size_t unit = sh->expect_unit, d = 0, start;

        while (e->scratch[d] == sh->expect_buf[c->expect_off + d])
                d++;
        start = d - (c->expect_off + d) % unit; /* may wrap below 0 */
        line_ack(e, c, (uint32_t)((c->expect_off + d) / unit));
        if (start <= d)
                conn_fail_reply(e, c, e->scratch + start, n - start, true);
        else
                conn_fail_reply(e, c, e->scratch + d, n - d, false);
}

/* Reads acks. Returns false if c is finished. */
static bool line_read(Engine *e, Conn *c, uint32_t events) {
        const EngineShared *sh = e->sh;
        size_t unit = sh->expect_unit;

        for (;;) {
                ssize_t n = conn_read(e, c);
                size_t expected, m, total;

                if (n == -EAGAIN)
                        return true;
                if (n < 0)
                        return false;
                if (n == 0) {
                        line_closed(e, c);
                        return false;
                }

                /* Compare against the repeated replies at our offset within one. */
                expected = (size_t)c->inflight * unit - c->expect_off;
                m = MIN((size_t)n, expected);
                if (memcmp(e->scratch, sh->expect_buf + c->expect_off, m) != 0) {
                        line_mismatch(e, c, (size_t)n);
                        return false;
                }
                total = c->expect_off + m;
                c->expect_off = total % unit;
                if (total >= unit) {
                        line_ack(e, c, (uint32_t)(total / unit));
                        c->served = true;
                }
                if ((size_t)n > m) {
                        /* More than was asked for. */
                        conn_fail_reply(e, c, e->scratch + m, (size_t)n - m, c->expect_off == 0);
                        return false;
                }
                c->deadline = c->inflight > 0 ? e->now + sh->timeout_ns : 0;

                if ((size_t)n < SCRATCH_SIZE && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                        return true;
        }
}

static void line_event(Engine *e, Conn *c, uint32_t events) {
        if (c->state == CONN_CONNECTING && !connect_completed(e, c, events, CONN_ACTIVE))
                return;
        if (c->state != CONN_ACTIVE)
                return;

        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                if (!line_read(e, c, events))
                        return;
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                c->write_blocked = false;
        if (e->stopping && c->inflight == 0 && c->pending_tail == 0) {
                conn_close(e, c);
                return;
        }
        line_fill(e, c);
}

/* Connections with nothing owed have nothing left to do. */
static void line_stop(Engine *e) {
        for (size_t i = 0; i < e->n_conns; i++) {
                Conn *c = &e->conns[i];

                if (c->state == CONN_CONNECTING ||
                    (c->state == CONN_ACTIVE && c->inflight == 0 && c->pending_tail == 0))
                        conn_close(e, c);
        }
}

/* Every message started has been answered or has failed. */
static bool line_finished(const Engine *e) {
        if (!e->stopping)
                return false;
        for (size_t i = 0; i < e->n_conns; i++)
                if (e->conns[i].fd >= 0 && (e->conns[i].inflight > 0 || e->conns[i].pending_tail > 0))
                        return false;
        return true;
}

const Workload workload_line = {
        .nodelay = true,
        .init = line_init,
        .refill = line_refill,
        .issue = line_issue,
        .event = line_event,
        .stop = line_stop,
        .finished = line_finished,
};
