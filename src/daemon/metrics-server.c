/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "connection.h"
#include "fd-util.h"
#include "http-request.h"
#include "metrics-server.h"
#include "time-util.h"
#include "timer.h"

#define MAX_EVENTS 64

typedef struct HttpConnection {
        uint8_t kind;     /* SOURCE_CONNECTION while open; epoll data points here */
        bool close_after; /* the response being written is the last */
        int fd;
        TimerEntry timer; /* in the request or the idle queue */
        TimerQueue *queue;
        char *in; /* what the client sent and is not answered yet */
        size_t in_len;
        char *out; /* the response, and how much of it is written */
        size_t out_len, out_off;
} HttpConnection;

typedef struct MetricsListener {
        uint8_t kind; /* SOURCE_LISTENER */
        const Listener *listener;
} MetricsListener;

struct MetricsServer {
        const MetricsSource *src;
        pthread_t thread;
        int epoll_fd;
        int stop_fd;       /* eventfd: stop now */
        uint8_t stop_kind; /* SOURCE_CONTROL */
        MetricsListener listeners[LISTENERS_MAX];
        size_t n_listeners;
        HttpConnection conns[METRICS_CONNECTIONS_MAX];
        size_t n_open;
        TimerQueue request, idle;
        MetricsText page;
        uint64_t now;
};

static void http_close(MetricsServer *m, HttpConnection *h) {
        (void)epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, h->fd, NULL);
        h->fd = safe_close(h->fd);
        timer_queue_remove(h->queue, &h->timer);
        h->in = mfree(h->in);
        h->out = mfree(h->out);
        *h = (HttpConnection){ .fd = -1 };
        m->n_open--;
}

static void http_wait(MetricsServer *m, HttpConnection *h, TimerQueue *q) {
        if (h->queue != q) {
                timer_queue_remove(h->queue, &h->timer);
                timer_queue_add(q, &h->timer, m->now);
                h->queue = q;
        }
}

static const char *status_text(int status) {
        switch (status) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 413:
                return "Content Too Large";
        case 431:
                return "Request Header Fields Too Large";
        case 503:
                return "Service Unavailable";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Error";
        }
}

/* Queues a whole response: status line, headers, and the body unless head_only. */
static int http_respond(HttpConnection *h, int status, const char *type, const char *body, size_t body_len,
                        bool head_only, bool keep_alive) {
        char head[256];
        int n;

        n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n",
                     status, status_text(status), type, body_len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", keep_alive ? "keep-alive" : "close");
        if (n < 0 || (size_t)n >= sizeof head)
                return -EIO;
        if (head_only)
                body_len = 0;
        h->out = malloc((size_t)n + body_len);
        if (!h->out)
                return -ENOMEM;
        memcpy(h->out, head, (size_t)n);
        memcpy(h->out + n, body, body_len);
        h->out_len = (size_t)n + body_len;
        h->out_off = 0;
        h->close_after = !keep_alive;
        return 0;
}

static int http_respond_text(HttpConnection *h, int status, const char *text, bool head_only,
                             bool keep_alive) {
        return http_respond(h, status, "text/plain; charset=utf-8", text, strlen(text), head_only,
                            keep_alive);
}

static bool path_is(const HttpRequest *r, const char *path) {
        return r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

/* Answers one complete request. */
static int http_answer(MetricsServer *m, HttpConnection *h, const HttpRequest *r) {
        bool head = r->method == HTTP_METHOD_HEAD, keep = r->keep_alive;
        const char *problem;

        if (path_is(r, "/metrics") || path_is(r, "/healthz")) {
                if (r->method == HTTP_METHOD_OTHER)
                        return http_respond_text(h, 405, "method not allowed: use GET or HEAD\n", false,
                                                 keep);
                if (path_is(r, "/healthz")) {
                        problem = metrics_health_problem(m->src);
                        if (problem) {
                                char text[32];

                                (void)snprintf(text, sizeof text, "%s\n", problem);
                                return http_respond_text(h, 503, text, head, keep);
                        }
                        return http_respond_text(h, 200, "ok\n", head, keep);
                }
                if (metrics_render(&m->page, m->src) < 0)
                        return http_respond_text(h, 503, "cannot make the page now\n", head, false);
                return http_respond(h, 200, METRICS_TEXT_CONTENT_TYPE, m->page.data, m->page.len, head,
                                    keep);
        }
        return http_respond_text(h, 404, "not found: try /metrics or /healthz\n", head, keep);
}

/* Answers the parser's refusals, then closes. */
static int http_refuse(HttpConnection *h, int r, const HttpRequest *req) {
        switch (r) {
        case -E2BIG:
                return http_respond_text(h, 431, "request head too large\n", false, false);
        case -EPROTONOSUPPORT:
                return http_respond_text(h, 505, "HTTP/1.0 or HTTP/1.1 only\n", false, false);
        case -EMSGSIZE:
                if (req->method == HTTP_METHOD_OTHER)
                        return http_respond_text(h, 405, "method not allowed: use GET or HEAD\n", false,
                                                 false);
                return http_respond_text(h, 413, "requests take no content here\n", false, false);
        default:
                return http_respond_text(h, 400, "bad request\n", false, false);
        }
}

/* Writes what is queued. Returns 1 when all is written, 0 when the socket is full, < 0 on error. */
static int http_flush(HttpConnection *h) {
        while (h->out_off < h->out_len) {
                ssize_t k = send(h->fd, h->out + h->out_off, h->out_len - h->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                h->out_off += (size_t)k;
        }
        h->out = mfree(h->out);
        h->out_len = h->out_off = 0;
        return 1;
}

/* Parses and answers what is buffered, request after request. Returns the epoll events to
 * wait for, or 0 to close. */
static uint32_t http_serve(MetricsServer *m, HttpConnection *h) {
        for (;;) {
                HttpRequest req;
                int r;

                if (h->out) {
                        r = http_flush(h);
                        if (r < 0)
                                return 0;
                        if (r == 0)
                                return EPOLLOUT;
                        if (h->close_after) {
                                (void)shutdown(h->fd, SHUT_WR);
                                return 0;
                        }
                }
                if (h->in_len == 0) {
                        http_wait(m, h, &m->idle);
                        return EPOLLIN;
                }
                http_wait(m, h, &m->request);
                r = http_request_parse(h->in, h->in_len, &req);
                if (r == 0)
                        return EPOLLIN;
                if (r < 0) {
                        h->in_len = 0;
                        if (http_refuse(h, r, &req) < 0)
                                return 0;
                        continue;
                }
                if (http_answer(m, h, &req) < 0)
                        return 0;
                /* Pipelined requests wait in the buffer for this answer to leave. */
                memmove(h->in, h->in + r, h->in_len - (size_t)r);
                h->in_len -= (size_t)r;
        }
}

/* Reads what the client sent. Returns false if the connection is finished. */
static bool http_read(HttpConnection *h) {
        ssize_t n;

        /* A connection that never sends costs no buffer. */
        if (!h->in) {
                h->in = malloc(HTTP_REQUEST_HEAD_MAX);
                if (!h->in)
                        return false;
        }
        if (h->in_len == HTTP_REQUEST_HEAD_MAX)
                return true; /* full: the parser decides (-E2BIG) */
        n = recv(h->fd, h->in + h->in_len, HTTP_REQUEST_HEAD_MAX - h->in_len, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false; /* the client is done: nothing more to answer */
        h->in_len += (size_t)n;
        return true;
}

static void http_event(MetricsServer *m, HttpConnection *h, uint32_t events) {
        uint32_t want;

        /* While a response is pending, input waits (and stays bounded by the buffer). */
        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !h->out && !http_read(h)) {
                http_close(m, h);
                return;
        }
        want = http_serve(m, h);
        if (want == 0) {
                http_close(m, h);
                return;
        }
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_MOD, h->fd,
                      &(struct epoll_event){ .events = want, .data.ptr = h }) < 0)
                http_close(m, h);
}

/* A free slot; when every one is taken, the connection waiting longest gives way:
 * an idle keep-alive one first, else the oldest request. */
static HttpConnection *http_slot(MetricsServer *m) {
        TimerEntry *oldest;

        if (m->n_open < METRICS_CONNECTIONS_MAX)
                for (size_t i = 0; i < METRICS_CONNECTIONS_MAX; i++)
                        if (m->conns[i].kind == 0)
                                return &m->conns[i];
        oldest = timer_queue_first(&m->idle);
        if (!oldest)
                oldest = timer_queue_first(&m->request);
        if (!oldest)
                return NULL;
        http_close(m, container_of(oldest, HttpConnection, timer));
        return http_slot(m);
}

static void http_accept(MetricsServer *m, const Listener *l) {
        for (unsigned i = 0; i < 16; i++) {
                int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                HttpConnection *h;

                if (fd < 0)
                        return; /* EAGAIN, or out of fds: the backlog waits */
                h = http_slot(m);
                if (!h) {
                        (void)close(fd);
                        continue;
                }
                *h = (HttpConnection){ .kind = SOURCE_CONNECTION, .fd = fd, .queue = &m->request };
                timer_queue_add(&m->request, &h->timer, m->now);
                m->n_open++;
                if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd,
                              &(struct epoll_event){ .events = EPOLLIN, .data.ptr = h }) < 0)
                        http_close(m, h);
        }
}

/* The request timeout: a client that began a request is told why it is closed (best
 * effort, never waited for); one that sent nothing, or is being answered, is just closed. */
static void http_time_out(MetricsServer *m, HttpConnection *h) {
        static const char response[] = "HTTP/1.1 408 Request Timeout\r\n"
                                       "Content-Type: text/plain; charset=utf-8\r\n"
                                       "Content-Length: 16\r\n"
                                       "Connection: close\r\n\r\n"
                                       "request timeout\n";

        if (h->in_len > 0 && !h->out) {
                (void)send(h->fd, response, sizeof response - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)shutdown(h->fd, SHUT_WR);
        }
        http_close(m, h);
}

static void run_timers(MetricsServer *m) {
        TimerEntry *e;

        while ((e = timer_queue_peek_expired(&m->request, m->now)))
                http_time_out(m, container_of(e, HttpConnection, timer));
        while ((e = timer_queue_peek_expired(&m->idle, m->now)))
                http_close(m, container_of(e, HttpConnection, timer));
}

static int next_timeout(const MetricsServer *m) {
        uint64_t next = MIN(timer_queue_next_deadline(&m->request), timer_queue_next_deadline(&m->idle));

        if (next == UINT64_MAX)
                return -1;
        return next <= m->now ? 0 : (int)MIN(next - m->now, (uint64_t)INT32_MAX);
}

static void *metrics_main(void *userdata) {
        MetricsServer *m = userdata;
        struct epoll_event events[MAX_EVENTS];

        /* Named, so that its CPU time can be told from the workers' (/proc/PID/task). */
        (void)pthread_setname_np(pthread_self(), "ackd-metrics");
        m->now = now_msec_coarse();
        for (;;) {
                int n = epoll_wait(m->epoll_fd, events, MAX_EVENTS, next_timeout(m));

                m->now = now_msec_coarse();
                for (int i = 0; i < n; i++) {
                        uint8_t *kind = events[i].data.ptr;

                        if (*kind == SOURCE_CONTROL)
                                return NULL;
                        if (*kind == SOURCE_LISTENER)
                                http_accept(m, ((MetricsListener *)kind)->listener);
                        else if (*kind == SOURCE_CONNECTION)
                                http_event(m, (HttpConnection *)kind, events[i].events);
                }
                run_timers(m);
        }
}

static int metrics_server_init(MetricsServer *m, const ListenerSet *listeners) {
        int r;

        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0)
                return -errno;
        r = eventfd_open();
        if (r < 0)
                return r;
        m->stop_fd = r;
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->stop_fd,
                      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = &m->stop_kind }) < 0)
                return -errno;
        for (size_t i = 0; i < listeners->n_items; i++) {
                MetricsListener *ml = &m->listeners[m->n_listeners];

                if (listeners->items[i].mode != PROTOCOL_METRICS)
                        continue;
                *ml = (MetricsListener){ .kind = SOURCE_LISTENER, .listener = &listeners->items[i] };
                if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, ml->listener->fd,
                              &(struct epoll_event){ .events = EPOLLIN, .data.ptr = ml }) < 0)
                        return -errno;
                m->n_listeners++;
        }
        return 0;
}

int metrics_server_start(MetricsServer **ret, const ListenerSet *listeners, const MetricsSource *src) {
        MetricsServer *m;
        int r;

        *ret = NULL;
        for (size_t i = 0; i < listeners->n_items; i++)
                if (listeners->items[i].mode == PROTOCOL_METRICS)
                        goto found;
        return 0;
found:
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->src = src;
        m->epoll_fd = m->stop_fd = -1;
        m->stop_kind = SOURCE_CONTROL;
        for (size_t i = 0; i < METRICS_CONNECTIONS_MAX; i++)
                m->conns[i].fd = -1;
        timer_queue_init(&m->request, METRICS_REQUEST_TIMEOUT_MS);
        timer_queue_init(&m->idle, METRICS_IDLE_TIMEOUT_MS);
        r = metrics_server_init(m, listeners);
        if (r >= 0) {
                r = -pthread_create(&m->thread, NULL, metrics_main, m);
                if (r >= 0) {
                        *ret = m;
                        return 0;
                }
        }
        safe_close(m->stop_fd);
        safe_close(m->epoll_fd);
        free(m);
        return r;
}

MetricsServer *metrics_server_stop(MetricsServer *m) {
        if (!m)
                return NULL;
        eventfd_signal(m->stop_fd);
        (void)pthread_join(m->thread, NULL);
        for (size_t i = 0; i < METRICS_CONNECTIONS_MAX; i++)
                if (m->conns[i].kind)
                        http_close(m, &m->conns[i]);
        metrics_text_done(&m->page);
        safe_close(m->stop_fd);
        safe_close(m->epoll_fd);
        free(m);
        return NULL;
}
