/* SPDX-License-Identifier: MIT */
/*
 * A connection's socket and what becomes of it: connect, read, close, the
 * errors counted against it, and the queues it goes back to. The workloads
 * share these; none of them calls back into a workload.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine-internal.h"
#include "escape.h"
#include "log.h"
#include "target.h"

#define RETRY_NS (10 * NS_PER_MS)       /* a failed connection waits before the next */

void engine_count_error(Engine *e, ErrorKind k, const char *format, ...) {
        va_list ap;

        if (e->result.errors[k]++ > 0)
                return;
        va_start(ap, format);
        (void)vsnprintf(e->result.detail[k], sizeof e->result.detail[k], format, ap);
        va_end(ap);
}

void conn_close(Engine *e, Conn *c) {
        if (c->fd >= 0) {
                (void)epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
                c->fd = safe_close(c->fd);
                e->open--;
        }
        if (c->state == CONN_CONNECTING)
                e->connecting--;
        c->state = CONN_FREE;
        c->inflight = 0;
        c->ring_head = c->ring_n = 0;
        c->pending_tail = 0;
        c->expect_off = 0;
        c->replied = false;
        c->write_blocked = false;
        c->served = false;
        c->deadline = 0;
}

void conn_release(Engine *e, Conn *c) {
        conn_close(e, c);
        if (e->w->refill && !e->stopping)
                list_push(&e->free, c);
}

void conn_fail(Engine *e, Conn *c) {
        conn_close(e, c);
        if (!e->w->refill || e->stopping)
                return;
        c->state = CONN_RETRY;
        c->retry_at = e->now + RETRY_NS;
        list_push(&e->retry, c);
}

void conn_ready(Engine *e, Conn *c) {
        if (!e->rate || c->listed)
                return;
        c->listed = true;
        list_push(&e->ready, c);
}

void conn_fail_errno(Engine *e, Conn *c, int error, const char *what) {
        ErrorKind k = error_kind_from_errno(error);

        engine_count_error(e, k, "%s %s: %s", what, e->sh->target_name, STRERROR(error));
        conn_fail(e, c);
}

void conn_fail_reply(Engine *e, Conn *c, const char *data, size_t len, bool at_start) {
        char got[ESCAPE_BUFFER_SIZE(48)], want[ESCAPE_BUFFER_SIZE(48)];
        ErrorKind k = at_start ? error_kind_from_reply(data, len) : ERROR_WRONG_REPLY;

        if (e->result.errors[k] == 0) {
                (void)escape_bytes(got, sizeof got, data, len, 40);
                (void)escape_bytes(want, sizeof want, e->sh->expect_buf, e->sh->expect_unit, 40);
                engine_count_error(e, k, "%s\"%s\" where \"%s\" was expected", at_start ? "" : "...", got, want);
        } else
                e->result.errors[k]++;
        conn_fail(e, c);
}

int conn_connect(Engine *e, Conn *c) {
        const ClientArgs *a = e->args;
        const Source *src = a->n_sources > 0 ? &a->sources[c->index % a->n_sources] : NULL;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
        int fd, r;

        fd = client_socket(e->sh->target.addr.ss_family, src, e->w->nodelay);
        if (fd < 0) {
                conn_fail_errno(e, c, fd, "socket for");
                return fd;
        }
        c->fd = fd;
        e->open++;
        c->state = CONN_CONNECTING;
        e->connecting++;
        c->deadline = e->now + e->sh->timeout_ns;

        r = client_connect_start(fd, &e->sh->target);
        if (r < 0 && r != -EINPROGRESS) {
                /* A unix listener with a full backlog: the server is refusing work. */
                conn_fail_errno(e, c, r == -EAGAIN ? -ECONNREFUSED : r, "connect to");
                return r;
        }
        if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = negative_errno();
                conn_fail_errno(e, c, r, "epoll for");
                return r;
        }
        return r;
}

void conn_connected(Engine *e, Conn *c, ConnState state) {
        e->result.connected++;
        c->deadline = 0;
        if (c->state == CONN_CONNECTING)
                e->connecting--;
        c->state = state;
}

bool connect_completed(Engine *e, Conn *c, uint32_t events, ConnState state) {
        if (events & EPOLLERR) {
                int r = socket_pending_error(c->fd);

                conn_fail_errno(e, c, r < 0 ? r : -ECONNREFUSED, "connect to");
                return false;
        }
        if (!(events & (EPOLLOUT | EPOLLIN | EPOLLHUP)))
                return false;
        conn_connected(e, c, state);
        return true;
}

