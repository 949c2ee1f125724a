/* SPDX-License-Identifier: MIT */
/*
 * An exchange: one message on a connection of its own, its reply, and (oneshot
 * protocol) the server's EOF. The oneshot workload makes one per request, the
 * idle workload one per held connection.
 *
 * The message is written as soon as the connection allows; the reply is
 * compared with the expected one as it arrives; it counts only once complete,
 * and in the oneshot protocol only once EOF confirms nothing followed it.
 * Latency runs from the exchange's stamp to the read that completed the reply.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine-internal.h"

static void exchange_success(Engine *e, Conn *c) {
        engine_record(e, c->stamp, c->reply_ns, 1);
        conn_release(e, c);
}

/* The server closed: the end of a complete reply, or of one that fell short. */
static void exchange_eof(Engine *e, Conn *c) {
        const EngineShared *sh = e->sh;

        if (c->replied)
                exchange_success(e, c);
        else if (c->expect_off == 0) {
                engine_count_error(e, ERROR_CLOSED, "%s closed the connection without replying",
                                   sh->target_name);
                conn_fail(e, c);
        } else
                conn_fail_reply(e, c, sh->expect_buf, c->expect_off, true);
}

/* Reads the reply (and EOF). Returns false if c is finished. */
static bool exchange_read(Engine *e, Conn *c, uint32_t events) {
        const EngineShared *sh = e->sh;

        for (;;) {
                ssize_t n = conn_read(e, c);
                size_t m;

                if (n == -EAGAIN)
                        return true;
                if (n < 0)
                        return false;
                if (n == 0) {
                        exchange_eof(e, c);
                        return false;
                }

                /* Anything while holding, or after the whole reply, is wrong; so is a reply
                 * that differs from the expected one. */
                if (c->state == CONN_HOLD || c->replied) {
                        conn_fail_reply(e, c, e->scratch, (size_t)n, c->state == CONN_HOLD);
                        return false;
                }
                m = MIN((size_t)n, sh->expect_unit - c->expect_off);
                if (memcmp(e->scratch, sh->expect_buf + c->expect_off, m) != 0) {
                        conn_fail_reply(e, c, e->scratch, (size_t)n, c->expect_off == 0);
                        return false;
                }
                c->expect_off += m;
                if (c->expect_off == sh->expect_unit) {
                        c->replied = true;
                        c->reply_ns = e->now;
                        if ((size_t)n > m) {
                                conn_fail_reply(e, c, e->scratch + m, (size_t)n - m, false);
                                return false;
                        }
                        if (!e->needs_eof) {
                                exchange_success(e, c);
                                return false;
                        }
                }
                /* A short read emptied the socket: the next data or EOF raises a new edge.
                 * But an EOF reported with this event is not reported again. */
                if ((size_t)n < SCRATCH_SIZE && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                        return true;
        }
}

void exchange_begin(Engine *e, Conn *c, uint64_t stamp) {
        e->result.sent++;
        c->stamp = stamp;
        c->pending_tail = e->sh->send_unit;
        c->expect_off = 0;
        c->replied = false;
}

bool exchange_write(Engine *e, Conn *c) {
        const EngineShared *sh = e->sh;

        while (c->pending_tail > 0) {
                ssize_t n =
                        conn_write(e, c, sh->send_buf + sh->send_unit - c->pending_tail, c->pending_tail);

                if (n < 0) {
                        if (n == -EAGAIN || n == -ENOTCONN) {
                                /* Still connecting, or the server is not reading: EPOLLOUT
                                 * will say when to go on, the timeout if never. */
                                if (c->deadline == 0)
                                        c->deadline = e->now + sh->timeout_ns;
                                return true;
                        }
                        /* The server may have replied (ERR busy) and closed: its words are
                         * worth more than our EPIPE. */
                        if (n == -EPIPE || n == -ECONNRESET) {
                                if (!exchange_read(e, c, EPOLLRDHUP))
                                        return false;
                                conn_fail_errno(e, c, (int)n, "writing to");
                                return false;
                        }
                        /* Writing at once after connect() is how a refused connect shows. */
                        conn_fail_errno(e, c, (int)n,
                                        c->state == CONN_CONNECTING ? "connect to" : "writing to");
                        return false;
                }
                if (c->state == CONN_CONNECTING)
                        conn_connected(e, c, CONN_SENDING);
                c->state = CONN_SENDING;
                c->pending_tail -= (size_t)n;
        }
        c->state = CONN_READING;
        c->deadline = e->now + sh->timeout_ns;
        return true;
}

void exchange_hold(Engine *e, Conn *c) {
        ssize_t n;

        if (!conn_proxy_pending(c))
                return;
        n = conn_write(e, c, NULL, 0);
        if (n < 0 && n != -EAGAIN)
                conn_fail_errno(e, c, (int)n, "writing to");
}

void exchange_event(Engine *e, Conn *c, uint32_t events) {
        /* Connected: an idle connection holds until its message is due (it has none yet);
         * a request's message is waiting. */
        if (c->state == CONN_CONNECTING &&
            !connect_completed(e, c, events, c->pending_tail > 0 ? CONN_SENDING : CONN_HOLD))
                return;

        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                if (!exchange_read(e, c, events))
                        return;
        if (c->state == CONN_HOLD && (events & EPOLLOUT))
                exchange_hold(e, c);
        else if (c->state == CONN_SENDING && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
                (void)exchange_write(e, c);
}
