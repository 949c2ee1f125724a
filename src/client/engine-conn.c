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
#include <sys/uio.h>
#include <unistd.h>

#include "engine-internal.h"
#include "escape.h"
#include "log.h"
#include "proxy-header.h"
#include "target.h"

#define RETRY_NS (10 * NS_PER_MS) /* a failed connection waits before the next */

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
        c->proxy_len = c->proxy_off = 0;
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
                engine_count_error(e, k, "%s\"%s\" where \"%s\" was expected", at_start ? "" : "...", got,
                                   want);
        } else
                e->result.errors[k]++;
        conn_fail(e, c);
}

char *conn_proxy_header(const Engine *e, const Conn *c) {
        return e->proxy_headers + (size_t)(c - e->conns) * CLIENT_PROXY_HEADER_MAX;
}

/* The PROXY header c sends first: the engine's fixed one, or its own, from the local
 * address connect() has just bound. */
static int conn_proxy_prepare(Engine *e, Conn *c) {
        const EngineShared *sh = e->sh;
        int r;

        if (!sh->proxy)
                return 0;
        if (sh->proxy_fixed) {
                c->proxy_len = (uint16_t)sh->proxy_fixed_len;
                return 0;
        }
        r = client_proxy_header(e->args, c->fd, &sh->target, conn_proxy_header(e, c),
                                CLIENT_PROXY_HEADER_MAX);
        if (r < 0)
                return r;
        c->proxy_len = (uint16_t)r;
        return 0;
}

ssize_t conn_write_proxy(Engine *e, Conn *c, const char *data, size_t len) {
        const char *h = e->sh->proxy_fixed ? e->sh->proxy_fixed : conn_proxy_header(e, c);
        struct iovec iov[2] = {
                { .iov_base = (void *)(h + c->proxy_off), .iov_len = (size_t)(c->proxy_len - c->proxy_off) },
                { .iov_base = (void *)data, .iov_len = len },
        };
        size_t head = iov[0].iov_len;
        ssize_t n;

        do
                n = writev(c->fd, iov, len > 0 ? 2 : 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n < head) {
                c->proxy_off = (uint16_t)(c->proxy_off + n);
                return -EAGAIN; /* the socket is full: EPOLLOUT resumes */
        }
        c->proxy_off = c->proxy_len;
        return n - (ssize_t)head;
}

int conn_connect(Engine *e, Conn *c) {
        const ClientArgs *a = e->args;
        const Source *src = a->n_sources > 0 ? &a->sources[c->index % a->n_sources] : NULL;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
        int fd, r, k;

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
        k = conn_proxy_prepare(e, c);
        if (k < 0) {
                conn_fail_errno(e, c, k, "PROXY header for");
                return k;
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
