/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "engine.h"
#include "escape.h"
#include "log.h"
#include "macro.h"
#include "target.h"

#define MAX_EVENTS          256
#define SCRATCH_SIZE        ENGINE_READ_SIZE
#define TICK_NS             (100 * 1000000ull)          /* timeout scan */
#define SNAPSHOT_NS         (250 * 1000000ull)          /* progress snapshot */
#define RETRY_NS            (10 * 1000000ull)           /* a failed connection waits before the next */
#define IDLE_CONNECT_WINDOW 256                         /* idle: connects in progress per thread */
#define IDLE_SEND_WAVE      32                          /* idle: messages sent between two epoll waits */
#define NS_PER_MS           1000000ull

#define _fallthrough_ __attribute__((fallthrough))

typedef enum ConnState {
        CONN_FREE,              /* no socket (oneshot slot between requests, or finished) */
        CONN_CONNECTING,
        CONN_HOLD,              /* idle: connected, holding */
        CONN_SENDING,           /* exchange: writing the message */
        CONN_READING,           /* exchange: waiting for the reply, then EOF */
        CONN_ACTIVE,            /* line: connected, streaming */
        CONN_RETRY,             /* waiting in the retry list after an error */
        CONN_DONE,              /* idle: finished, answered or failed */
} ConnState;

/* Messages written together: one send time (or, with --rate, the first one's schedule index). */
typedef struct Run {
        uint64_t stamp;
        uint32_t n;
} Run;

typedef struct Conn {
        int fd;
        uint8_t state;
        bool write_blocked;             /* wait for EPOLLOUT before writing again */
        bool replied;                   /* exchange: the whole reply is here, EOF is next */
        bool listed;                    /* in the ready list */
        bool settled;                   /* idle: the connect attempt succeeded or failed */
        bool served;                    /* line: at least one reply arrived on this connection */
        uint32_t inflight;              /* line: messages started, not yet acknowledged */
        uint32_t ring_head, ring_n;
        size_t pending_tail;            /* bytes of a started message still to write */
        size_t expect_off;              /* offset within the expected reply */
        uint64_t stamp;                 /* exchange: start (closed loop) or scheduled time (ns) */
        uint64_t reply_ns;              /* exchange: when the reply was complete */
        uint64_t deadline;              /* ns: fail with a timeout if still waiting then; 0: none */
        uint64_t retry_at;
        uint64_t index;                 /* connection number over all threads: picks the source */
        Run *ring;                      /* line: depth runs */
        struct Conn *link[2];           /* in the retry and the ready list; may be in both */
} Conn;

typedef enum IdlePhase {
        IDLE_CONNECT,
        IDLE_HOLD,
        IDLE_SEND,
        IDLE_FINISHED,
} IdlePhase;

enum { LINK_RETRY, LINK_READY };

typedef struct List {
        Conn *head, *tail;
        unsigned link;
} List;

struct Engine {
        EngineShared *sh;
        const ClientArgs *args;
        unsigned id;
        pthread_t thread;
        bool started;

        int epoll_fd;
        Conn *conns;
        size_t n_conns;
        Run *runs;
        char *scratch;
        uint32_t depth;
        bool line;                      /* line workload (not oneshot, not idle) */
        bool idle;
        bool needs_eof;                 /* exchanges end with the server's EOF (oneshot protocol) */
        bool rate;

        uint64_t now;
        uint64_t budget;
        uint64_t issued;                /* requests started: the schedule index of the next one */
        bool stopping;
        unsigned starting;              /* inside exchange_start(): no nested start */
        uint64_t next_tick;
        uint64_t next_snapshot;
        size_t open;                    /* sockets open (connecting or connected) */

        List retry;                     /* failed connections, in the order they may retry */
        List ready;                     /* --rate: connections (or oneshot slots) with room */

        IdlePhase phase;
        size_t idle_next;               /* next connection to open, then to send on */
        size_t settled;                 /* connected or failed */
        uint64_t hold_until;

        EngineResult result;

        pthread_mutex_t lock;           /* guards snapshot */
        EngineResult *snapshot;
};

/* MIN() would evaluate due() and scheduled() twice. */
static uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

void engine_result_init(EngineResult *r) {
        memset(r, 0, offsetof(EngineResult, hist));
        histogram_init(&r->hist);
}

/* --- lists ------------------------------------------------------------------------------------ */

static void list_push(List *l, Conn *c) {
        c->link[l->link] = NULL;
        if (l->tail)
                l->tail->link[l->link] = c;
        else
                l->head = c;
        l->tail = c;
}

static Conn *list_pop(List *l) {
        Conn *c = l->head;

        if (c) {
                l->head = c->link[l->link];
                if (!l->head)
                        l->tail = NULL;
                c->link[l->link] = NULL;
        }
        return c;
}

/* --- the schedule (--rate) ------------------------------------------------------------------- */

/* When this engine's request i is due: global request k + i*T, at t0 + that / rate. */
static uint64_t scheduled(const Engine *e, uint64_t i) {
        double global = (double)e->id + (double)i * (double)e->sh->n_threads;

        return e->sh->t0 + (uint64_t)(global * 1e9 / (double)e->args->rate);
}

/* How many of this engine's requests are due by now (and scheduled before the end). */
static uint64_t due(const Engine *e) {
        uint64_t t = e->sh->end && e->now >= e->sh->end ? e->sh->end - 1 : e->now;
        double global = (double)(t - e->sh->t0) * (double)e->args->rate / 1e9;

        if (global < (double)e->id)
                return 0;
        return (uint64_t)((global - (double)e->id) / (double)e->sh->n_threads) + 1;
}

/* Requests this engine may start now. */
static uint64_t available(const Engine *e) {
        uint64_t limit = e->budget;

        if (e->stopping)
                return 0;
        if (e->rate)
                limit = min_u64(limit, due(e));
        return limit > e->issued ? limit - e->issued : 0;
}

/* --- errors and results ----------------------------------------------------------------------- */

_printf_(3, 4) static void count_error(Engine *e, ErrorKind k, const char *format, ...) {
        va_list ap;

        if (e->result.errors[k]++ > 0)
                return;
        va_start(ap, format);
        (void)vsnprintf(e->result.detail[k], sizeof e->result.detail[k], format, ap);
        va_end(ap);
}

static void record(Engine *e, uint64_t stamp, uint64_t now, uint64_t n) {
        histogram_record_n(&e->result.hist, now > stamp ? now - stamp : 0, n);
        e->result.completed += n;
}

static void conn_close(Engine *e, Conn *c) {
        if (c->fd >= 0) {
                (void)epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
                c->fd = safe_close(c->fd);
                e->open--;
        }
        if (e->idle && !c->settled) {
                c->settled = true;
                e->settled++;
        }
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

static void conn_ready(Engine *e, Conn *c) {
        if (!e->rate || c->listed)
                return;
        c->listed = true;
        list_push(&e->ready, c);
}

static void exchange_start(Engine *e, Conn *c, uint64_t stamp);
static void line_open(Engine *e, Conn *c);
static void line_fill(Engine *e, Conn *c);

/* A request slot is free again (after success or a failure's pause): start the next. */
static void slot_free(Engine *e, Conn *c) {
        c->state = CONN_FREE;
        if (e->idle || e->stopping)
                return;
        if (e->line) {
                line_open(e, c);
                return;
        }
        if (e->rate)
                conn_ready(e, c);
        else if (e->starting > 0) {
                /* Finished while starting (a reply read after a failed write): start the
                 * next from the loop, not from deeper down this stack. */
                c->state = CONN_RETRY;
                c->retry_at = e->now;
                list_push(&e->retry, c);
        } else if (available(e) > 0)
                exchange_start(e, c, clock_ns());
}

/* Ends c after an error (counted by the caller): whatever was in flight is lost. */
static void conn_fail(Engine *e, Conn *c) {
        conn_close(e, c);
        if (e->idle) {
                c->state = CONN_DONE;
                return;
        }
        if (e->stopping)
                return;
        /* Pause before reconnecting, so a refusing server is not hammered in a tight loop. */
        c->state = CONN_RETRY;
        c->retry_at = e->now + RETRY_NS;
        list_push(&e->retry, c);
}

static void fail_errno(Engine *e, Conn *c, int error, const char *what) {
        ErrorKind k = error_kind_from_errno(error);

        count_error(e, k, "%s %s: %s", what, e->sh->target_name, STRERROR(error));
        conn_fail(e, c);
}

/* A reply that differs from the expected one. `data` starts where the reply starts if
 * at_start, else somewhere inside it. */
static void fail_reply(Engine *e, Conn *c, const char *data, size_t len, bool at_start) {
        char got[ESCAPE_BUFFER_SIZE(48)], want[ESCAPE_BUFFER_SIZE(48)];
        ErrorKind k = at_start ? error_kind_from_reply(data, len) : ERROR_WRONG_REPLY;

        if (e->result.errors[k] == 0) {
                (void)escape_bytes(got, sizeof got, data, len, 40);
                (void)escape_bytes(want, sizeof want, e->sh->expect_buf, e->sh->expect_unit, 40);
                count_error(e, k, "%s\"%s\" where \"%s\" was expected", at_start ? "" : "...", got, want);
        } else
                e->result.errors[k]++;
        conn_fail(e, c);
}

/* --- sockets ----------------------------------------------------------------------------------- */

/* Opens a socket and starts connecting it. Returns 0 (connected), -EINPROGRESS, or fails c. */
static int conn_connect(Engine *e, Conn *c) {
        const ClientArgs *a = e->args;
        const Source *src = a->n_sources > 0 ? &a->sources[c->index % a->n_sources] : NULL;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
        int fd, r;

        fd = client_socket(e->sh->target.addr.ss_family, src, e->line);
        if (fd < 0) {
                fail_errno(e, c, fd, "socket for");
                return fd;
        }
        c->fd = fd;
        e->open++;
        c->state = CONN_CONNECTING;
        c->deadline = e->now + e->sh->timeout_ns;

        r = client_connect_start(fd, &e->sh->target);
        if (r < 0 && r != -EINPROGRESS) {
                /* A unix listener with a full backlog: the server is refusing work. */
                fail_errno(e, c, r == -EAGAIN ? -ECONNREFUSED : r, "connect to");
                return r;
        }
        if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = negative_errno();
                fail_errno(e, c, r, "epoll for");
                return r;
        }
        return r;
}

static void conn_connected(Engine *e, Conn *c) {
        e->result.connected++;
        c->deadline = 0;
        if (e->idle && !c->settled) {
                c->settled = true;
                e->settled++;
        }
}

/* A non-blocking connect() reported in by epoll: true once it succeeded (counted), false
 * while it is still under way or when it failed (then the failure is counted). */
static bool connect_completed(Engine *e, Conn *c, uint32_t events) {
        if (events & EPOLLERR) {
                int r = socket_pending_error(c->fd);

                fail_errno(e, c, r < 0 ? r : -ECONNREFUSED, "connect to");
                return false;
        }
        if (!(events & (EPOLLOUT | EPOLLIN | EPOLLHUP)))
                return false;
        conn_connected(e, c);
        return true;
}

/* --- exchanges: oneshot requests and idle connections ----------------------------------------- */

static void exchange_success(Engine *e, Conn *c) {
        record(e, c->stamp, c->reply_ns, 1);
        conn_close(e, c);
        if (e->idle) {
                c->state = CONN_DONE;
                return;
        }
        slot_free(e, c);
}

/* Reads the reply (and EOF). Returns false if c is finished. */
/* One read into the scratch buffer, stamping the clock. Returns the byte count (0 at
 * EOF), -EAGAIN when the socket is empty, or another negative errno once the failure
 * has been counted against c. */
static ssize_t conn_read(Engine *e, Conn *c) {
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
                fail_errno(e, c, (int)n, "reading from");
                return n;
        }
}

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
                        if (c->replied) {
                                exchange_success(e, c);
                                return false;
                        }
                        if (c->expect_off == 0) {
                                count_error(e, ERROR_CLOSED, "%s closed the connection without replying",
                                            sh->target_name);
                                conn_fail(e, c);
                        } else
                                fail_reply(e, c, sh->expect_buf, c->expect_off, true);
                        return false;
                }

                /* Anything while holding, or after the whole reply, is wrong; so is a reply
                 * that differs from the expected one. */
                if (c->state == CONN_HOLD || c->replied) {
                        fail_reply(e, c, e->scratch, (size_t)n, c->state == CONN_HOLD);
                        return false;
                }
                m = MIN((size_t)n, sh->expect_unit - c->expect_off);
                if (memcmp(e->scratch, sh->expect_buf + c->expect_off, m) != 0) {
                        fail_reply(e, c, e->scratch, (size_t)n, c->expect_off == 0);
                        return false;
                }
                c->expect_off += m;
                if (c->expect_off == sh->expect_unit) {
                        c->replied = true;
                        c->reply_ns = e->now;
                        if ((size_t)n > m) {
                                fail_reply(e, c, e->scratch + m, (size_t)n - m, false);
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

/* Writes (the rest of) the message. Returns false if c is finished. */
static bool exchange_write(Engine *e, Conn *c) {
        const EngineShared *sh = e->sh;

        while (c->pending_tail > 0) {
                ssize_t n = write(c->fd, sh->send_buf + sh->send_unit - c->pending_tail, c->pending_tail);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == ENOTCONN) {
                                /* Still connecting, or the server is not reading: EPOLLOUT
                                 * will say when to go on, the timeout if never. */
                                if (c->deadline == 0)
                                        c->deadline = e->now + sh->timeout_ns;
                                return true;
                        }
                        /* The server may have replied (ERR busy) and closed: its words are
                         * worth more than our EPIPE. */
                        if (errno == EPIPE || errno == ECONNRESET) {
                                int error = -errno;

                                if (!exchange_read(e, c, EPOLLRDHUP))
                                        return false;
                                fail_errno(e, c, error, "writing to");
                                return false;
                        }
                        /* Writing at once after connect() is how a refused connect shows. */
                        fail_errno(e, c, -errno, c->state == CONN_CONNECTING ? "connect to" : "writing to");
                        return false;
                }
                if (c->state == CONN_CONNECTING)
                        conn_connected(e, c);
                c->state = CONN_SENDING;
                c->pending_tail -= (size_t)n;
        }
        c->state = CONN_READING;
        c->deadline = e->now + sh->timeout_ns;
        return true;
}

static void exchange_start(Engine *e, Conn *c, uint64_t stamp) {
        int r;

        e->issued++;
        e->result.sent++;
        c->stamp = stamp;
        c->pending_tail = e->sh->send_unit;
        c->expect_off = 0;
        c->replied = false;

        r = conn_connect(e, c);
        if (r < 0 && r != -EINPROGRESS)
                return;
        /* On loopback the handshake is usually over when connect() returns: try now
         * rather than after a round through epoll. */
        e->starting++;
        (void)exchange_write(e, c);
        e->starting--;
}

static void exchange_event(Engine *e, Conn *c, uint32_t events) {
        if (c->state == CONN_CONNECTING) {
                if (!connect_completed(e, c, events))
                        return;
                c->state = e->idle && e->phase != IDLE_SEND ? CONN_HOLD : CONN_SENDING;
        }

        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                if (!exchange_read(e, c, events))
                        return;
        if (c->state == CONN_SENDING && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
                (void)exchange_write(e, c);
}

/* --- line: persistent pipelined connections ---------------------------------------------------- */

static void line_open(Engine *e, Conn *c) {
        int r;

        if (e->stopping || e->issued >= e->budget)
                return;
        r = conn_connect(e, c);
        if (r == 0) {
                conn_connected(e, c);
                c->state = CONN_ACTIVE;
                line_fill(e, c);
        }
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
                                record(e, scheduled(e, r->stamp + j), e->now, 1);
                        r->stamp += m;
                } else
                        record(e, r->stamp, e->now, m);
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
        if (n == 0 && c->pending_tail == 0)
                return;

        /* The buffer holds `depth` messages back to back: a partly written one resumes
         * at its offset in the first copy, the new ones follow it. */
        off = c->pending_tail > 0 ? unit - c->pending_tail : 0;
        len = c->pending_tail + (size_t)n * unit;
        e->now = clock_ns();
        stamp = e->rate ? e->issued : e->now;
        for (;;) {
                w = write(c->fd, sh->send_buf + off, len);
                if (w >= 0 || errno != EINTR)
                        break;
        }
        if (w < 0) {
                if (errno == EAGAIN) {
                        c->write_blocked = true;
                        return;
                }
                fail_errno(e, c, -errno, "writing to");
                return;
        }
        if ((size_t)w < len)
                c->write_blocked = true;        /* the next EPOLLOUT edge resumes */

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

/* Fills c's window as far as the budget (or the schedule) allows. */
static void line_fill(Engine *e, Conn *c) {
        if (e->rate) {
                /* Due messages are handed out by engine_issue(); only finish a partial one. */
                line_write(e, c, 0);
                if (c->state == CONN_ACTIVE && !c->write_blocked && c->inflight < e->depth)
                        conn_ready(e, c);
                return;
        }
        line_write(e, c, available(e));
}

/* Reads acks. Returns false if c failed. */
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
                        if (c->served && c->inflight == 0 && c->expect_off == 0 && c->pending_tail == 0) {
                                /* Closed after serving, with nothing owed (an idle timeout,
                                 * say): no request failed. Reconnect. */
                                conn_close(e, c);
                                slot_free(e, c);
                        } else if (c->inflight == 0) {
                                count_error(e, ERROR_CLOSED, "%s closed the connection before any reply",
                                            sh->target_name);
                                conn_fail(e, c);
                        } else {
                                count_error(e, ERROR_CLOSED, "%s closed the connection with %u messages "
                                            "unanswered", sh->target_name, c->inflight);
                                conn_fail(e, c);
                        }
                        return false;
                }

                /* Compare against the repeated replies at our offset within one. */
                expected = (size_t)c->inflight * unit - c->expect_off;
                m = MIN((size_t)n, expected);
                if (memcmp(e->scratch, sh->expect_buf + c->expect_off, m) != 0) {
                        size_t d = 0, start;

                        /* Error path: find the bad byte, credit the replies before it. */
                        while (e->scratch[d] == sh->expect_buf[c->expect_off + d])
                                d++;
                        start = d - (c->expect_off + d) % unit;         /* may wrap below 0 */
                        line_ack(e, c, (uint32_t)((c->expect_off + d) / unit));
                        if (start <= d)
                                fail_reply(e, c, e->scratch + start, (size_t)n - start, true);
                        else
                                fail_reply(e, c, e->scratch + d, (size_t)n - d, false);
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
                        fail_reply(e, c, e->scratch + m, (size_t)n - m, c->expect_off == 0);
                        return false;
                }
                c->deadline = c->inflight > 0 ? e->now + sh->timeout_ns : 0;

                if ((size_t)n < SCRATCH_SIZE && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                        return true;
        }
}

static void line_event(Engine *e, Conn *c, uint32_t events) {
        if (c->state == CONN_CONNECTING) {
                if (!connect_completed(e, c, events))
                        return;
                c->state = CONN_ACTIVE;
        }
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

/* --- the loop -------------------------------------------------------------------------------- */

/* --rate: hands due requests to connections (or slots) that have room. */
static void engine_issue(Engine *e) {
        uint64_t n;
        Conn *c;

        if (!e->rate)
                return;
        while ((n = available(e)) > 0 && (c = list_pop(&e->ready))) {
                c->listed = false;
                /* It may have failed since it was listed. */
                if (c->state != (e->line ? CONN_ACTIVE : CONN_FREE))
                        continue;
                if (e->line) {
                        line_write(e, c, n);
                        if (c->state == CONN_ACTIVE && !c->write_blocked && c->inflight < e->depth)
                                conn_ready(e, c);
                } else
                        exchange_start(e, c, scheduled(e, e->issued));
        }
}

static void engine_retry(Engine *e) {
        List due = { .link = LINK_RETRY };
        Conn *c;

        /* Take the due ones first: a restart that fails at once queues itself again,
         * for the next round, not for this loop. */
        while (e->retry.head && e->retry.head->retry_at <= e->now)
                list_push(&due, list_pop(&e->retry));
        while ((c = list_pop(&due)))
                slot_free(e, c);
}

static void engine_timeouts(Engine *e) {
        for (size_t i = 0; i < e->n_conns; i++) {
                Conn *c = &e->conns[i];

                if (c->fd < 0 || c->deadline == 0 || c->deadline > e->now)
                        continue;
                if (c->state == CONN_CONNECTING)
                        count_error(e, ERROR_TIMEOUT, "connect to %s: no answer within %llums", e->sh->target_name,
                                    (unsigned long long)(e->sh->timeout_ns / NS_PER_MS));
                else
                        count_error(e, ERROR_TIMEOUT, "%s: no reply within %llums", e->sh->target_name,
                                    (unsigned long long)(e->sh->timeout_ns / NS_PER_MS));
                conn_fail(e, c);
        }
}

static void engine_snapshot_save(Engine *e) {
        pthread_mutex_lock(&e->lock);
        memcpy(e->snapshot, &e->result, sizeof e->result);
        pthread_mutex_unlock(&e->lock);
}

static void engine_begin_stop(Engine *e) {
        Conn *c;

        if (e->stopping)
                return;
        e->stopping = true;
        if (e->rate && e->issued < e->budget)
                e->result.unsent = min_u64(due(e), e->budget) - e->issued;
        while ((c = list_pop(&e->retry)))
                c->state = CONN_FREE;
        while ((c = list_pop(&e->ready)))
                c->listed = false;
        /* Line connections with nothing owed have nothing left to do. */
        if (e->line)
                for (size_t i = 0; i < e->n_conns; i++) {
                        c = &e->conns[i];
                        if (c->state == CONN_CONNECTING ||
                            (c->state == CONN_ACTIVE && c->inflight == 0 && c->pending_tail == 0))
                                conn_close(e, c);
                }
}

/* Idle test: open connections in waves, hold, then send on all. */
static void engine_idle_step(Engine *e) {
        switch (e->phase) {
        case IDLE_CONNECT:
                if (e->stopping)
                        e->idle_next = e->n_conns;
                while (e->result.idle_opened - e->settled < IDLE_CONNECT_WINDOW && e->idle_next < e->n_conns) {
                        Conn *c = &e->conns[e->idle_next++];
                        int r;

                        e->result.idle_opened++;
                        r = conn_connect(e, c);
                        if (r == 0) {
                                conn_connected(e, c);
                                c->state = CONN_HOLD;
                        }
                }
                if (e->settled < e->result.idle_opened || e->idle_next < e->n_conns)
                        return;
                e->phase = IDLE_HOLD;
                e->hold_until = e->now + e->args->duration_ms * NS_PER_MS;
                _fallthrough_;
        case IDLE_HOLD:
                if (e->now < e->hold_until && !e->stopping)
                        return;
                e->phase = IDLE_SEND;
                e->idle_next = 0;
                _fallthrough_;
        case IDLE_SEND:
                /* In waves, reading replies in between, so that a reply's latency is not
                 * the time it took to write to all the others. */
                for (size_t sent = 0; sent < IDLE_SEND_WAVE && e->idle_next < e->n_conns; e->idle_next++) {
                        Conn *c = &e->conns[e->idle_next];

                        if (c->state != CONN_HOLD)
                                continue;
                        e->result.idle_held++;
                        e->result.sent++;
                        sent++;
                        c->state = CONN_SENDING;
                        c->pending_tail = e->sh->send_unit;
                        e->now = c->stamp = clock_ns();
                        (void)exchange_write(e, c);
                }
                if (e->idle_next >= e->n_conns && e->open == 0)
                        e->phase = IDLE_FINISHED;
                return;
        case IDLE_FINISHED:
                return;
        }
}

static bool engine_finished(Engine *e) {
        if (e->idle)
                return e->phase == IDLE_FINISHED;
        if (!e->stopping)
                return false;
        /* Every request started has been answered or has failed. */
        if (!e->line)
                return e->open == 0;
        for (size_t i = 0; i < e->n_conns; i++)
                if (e->conns[i].fd >= 0 && (e->conns[i].inflight > 0 || e->conns[i].pending_tail > 0))
                        return false;
        return true;
}

static uint64_t engine_next_wakeup(const Engine *e) {
        uint64_t t = e->next_tick;

        if (e->retry.head)
                t = min_u64(t, e->retry.head->retry_at);
        if (!e->stopping && e->sh->end)
                t = min_u64(t, e->sh->end);
        if (e->rate && !e->stopping && e->issued < e->budget && e->ready.head)
                t = min_u64(t, scheduled(e, e->issued));
        if (e->idle && e->phase == IDLE_HOLD)
                t = min_u64(t, e->hold_until);
        if (e->idle && e->phase == IDLE_SEND && e->idle_next < e->n_conns)
                t = e->now;     /* the next wave: only collect what is ready */
        return t;
}

static int engine_wait(Engine *e, struct epoll_event *events) {
        uint64_t wake = engine_next_wakeup(e), ns = wake > e->now ? wake - e->now : 0;

#if HAVE_EPOLL_PWAIT2
        /* Nanoseconds: a schedule of a few µs per request must not round to 1 ms. */
        struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };

        return epoll_pwait2(e->epoll_fd, events, MAX_EVENTS, &ts, NULL);
#else
        return epoll_wait(e->epoll_fd, events, MAX_EVENTS, (int)((ns + NS_PER_MS - 1) / NS_PER_MS));
#endif
}

static void engine_start_work(Engine *e) {
        if (e->idle)
                return;         /* engine_idle_step() opens connections */
        for (size_t i = 0; i < e->n_conns; i++) {
                Conn *c = &e->conns[i];

                if (e->line)
                        line_open(e, c);
                else if (e->rate)
                        conn_ready(e, c);
                else if (available(e) > 0)
                        exchange_start(e, c, clock_ns());
        }
}

static void engine_run(Engine *e) {
        struct epoll_event events[MAX_EVENTS];

        e->now = clock_ns();
        e->next_tick = e->now + TICK_NS;
        e->next_snapshot = e->now + SNAPSHOT_NS;
        if (e->rate)
                /* The schedule needs the timer to be precise, not coalesced. */
                (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

        engine_start_work(e);

        for (;;) {
                int n;

                if (!e->stopping && (atomic_load_explicit(&e->sh->stop, memory_order_relaxed) ||
                                     (e->sh->end && e->now >= e->sh->end) ||
                                     (e->budget != UINT64_MAX && e->issued >= e->budget && !e->idle)))
                        engine_begin_stop(e);
                if (e->idle)
                        engine_idle_step(e);
                engine_retry(e);
                engine_issue(e);
                if (engine_finished(e))
                        break;

                n = engine_wait(e, events);
                e->now = clock_ns();
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "epoll_wait() failed: %s", STRERROR(errno));
                        break;
                }
                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;

                        if (c->fd < 0)
                                continue;
                        if (e->line)
                                line_event(e, c, events[i].events);
                        else
                                exchange_event(e, c, events[i].events);
                }

                if (e->now >= e->next_tick) {
                        engine_timeouts(e);
                        e->next_tick = e->now + TICK_NS;
                }
                if (e->sh->progress && e->now >= e->next_snapshot) {
                        engine_snapshot_save(e);
                        e->next_snapshot = e->now + SNAPSHOT_NS;
                }
        }

        for (size_t i = 0; i < e->n_conns; i++)
                conn_close(e, &e->conns[i]);
        e->result.end = clock_ns();
        if (e->sh->progress)
                engine_snapshot_save(e);
}

static void *engine_thread(void *userdata) {
        Engine *e = userdata;
        uint64_t one = 1;

        engine_run(e);
        (void)!write(e->sh->done_fd, &one, sizeof one);
        return NULL;
}

int engine_new(Engine **ret, EngineShared *sh, unsigned id, uint64_t first_index, uint64_t stride, size_t n,
               uint64_t budget) {
        const ClientArgs *a = sh->args;
        Engine *e;

        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        *e = (Engine){
                .sh = sh,
                .args = a,
                .id = id,
                .epoll_fd = -1,
                .n_conns = n,
                .depth = (uint32_t)MAX(a->depth, 1u),
                .idle = a->idle > 0,
                .line = a->mode == PROTOCOL_LINE && a->idle == 0,
                .needs_eof = a->mode == PROTOCOL_ONESHOT,
                .rate = a->rate > 0,
                .budget = budget,
                .retry = { .link = LINK_RETRY },
                .ready = { .link = LINK_READY },
        };
        engine_result_init(&e->result);
        pthread_mutex_init(&e->lock, NULL);

        e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        e->conns = calloc(MAX(n, 1u), sizeof *e->conns);
        e->scratch = malloc(SCRATCH_SIZE);
        if (e->line)
                e->runs = calloc(MAX(n, 1u) * e->depth, sizeof *e->runs);
        if (sh->progress)
                e->snapshot = malloc(sizeof *e->snapshot);
        if (e->epoll_fd < 0 || !e->conns || !e->scratch || (e->line && !e->runs) || (sh->progress && !e->snapshot)) {
                int r = e->epoll_fd < 0 ? negative_errno() : -ENOMEM;

                engine_free(e);
                return r;
        }
        if (e->snapshot)
                engine_result_init(e->snapshot);

        for (size_t i = 0; i < n; i++)
                e->conns[i] = (Conn){
                        .fd = -1,
                        .index = first_index + i * stride,
                        .ring = e->runs ? e->runs + i * e->depth : NULL,
                };
        *ret = e;
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        for (size_t i = 0; e->conns && i < e->n_conns; i++)
                e->conns[i].fd = safe_close(e->conns[i].fd);
        safe_close(e->epoll_fd);
        free(e->conns);
        free(e->runs);
        free(e->scratch);
        free(e->snapshot);
        pthread_mutex_destroy(&e->lock);
        free(e);
        return NULL;
}

int engine_start(Engine *e) {
        int r = pthread_create(&e->thread, NULL, engine_thread, e);

        if (r != 0)
                return -r;
        e->started = true;
        return 0;
}

void engine_join(Engine *e) {
        if (e->started)
                (void)pthread_join(e->thread, NULL);
        e->started = false;
}

static void result_add(EngineResult *dst, const EngineResult *src) {
        dst->sent += src->sent;
        dst->completed += src->completed;
        dst->connected += src->connected;
        dst->unsent += src->unsent;
        dst->idle_opened += src->idle_opened;
        dst->idle_held += src->idle_held;
        for (size_t k = 0; k < _ERROR_KIND_MAX; k++) {
                if (dst->errors[k] == 0 && src->errors[k] > 0)
                        memcpy(dst->detail[k], src->detail[k], sizeof dst->detail[k]);
                dst->errors[k] += src->errors[k];
        }
        dst->end = MAX(dst->end, src->end);
        histogram_merge(&dst->hist, &src->hist);
}

void engine_collect(const Engine *e, EngineResult *r) {
        result_add(r, &e->result);
}

void engine_snapshot(Engine *e, EngineResult *r) {
        pthread_mutex_lock(&e->lock);
        result_add(r, e->snapshot);
        pthread_mutex_unlock(&e->lock);
}
