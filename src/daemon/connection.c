/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "connection.h"
#include "escape.h"
#include "log.h"
#include "time-util.h"
#include "worker.h"

/* Bytes of a message shown in the log. */
#define LOG_PREVIEW_BYTES 64

/* connection_step() result besides epoll interest bits: the connection is finished. */
#define STEP_DONE 0

static const char *const error_replies[] = {
        [ERROR_REPLY_BUSY] = REPLY_ERR_BUSY,
        [ERROR_REPLY_TOO_LONG] = REPLY_ERR_TOO_LONG,
};

static inline bool has_output(const Connection *c) {
        return c->pending_acks > 0 || c->error_reply != ERROR_REPLY_NONE;
}

/* The output being written is the last: shutdown(SHUT_WR) follows once it is out. */
static inline bool replying_before_shutdown(const Connection *c) {
        return c->state == CONNECTION_REPLYING && !(c->flags & CONNECTION_EOF);
}

static TimerQueue *connection_queue(Worker *w, Connection *c) {
        return c->state == CONNECTION_LINGER ? &w->linger : &c->profile->idle;
}

static void connection_set_state(Worker *w, Connection *c, ConnectionState state) {
        TimerQueue *old = connection_queue(w, c);

        c->state = state;
        if (connection_queue(w, c) != old) {
                timer_queue_remove(old, &c->timer);
                timer_queue_add(connection_queue(w, c), &c->timer, w->now);
        }
}

static const char *connection_peer(const Connection *c, char *buf, size_t size) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        if (getpeername(c->fd, (struct sockaddr *)&ss, &len) < 0)
                return "unknown peer";
        if (ss.ss_family == AF_UNIX) {
                struct ucred cred;
                socklen_t n = sizeof cred;

                if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) == 0) {
                        (void)snprintf(buf, size, "unix peer pid %d", (int)cred.pid);
                        return buf;
                }
        }
        return sockaddr_format((struct sockaddr *)&ss, len, buf, size);
}

/* Logs one received message at level info, bounded per connection. data is NULL for
 * an unterminated message at EOF, whose bytes went by in earlier reads. */
static void connection_log_message(Connection *c, const char *data, size_t len, size_t total) {
        char text[ESCAPE_BUFFER_SIZE(LOG_PREVIEW_BYTES)];
        char buf[ADDRESS_STRING_MAX];
        const char *peer;

        if (c->n_logged > LOG_MESSAGES_PER_CONNECTION)
                return;
        peer = connection_peer(c, buf, sizeof buf);
        if (++c->n_logged > LOG_MESSAGES_PER_CONNECTION) {
                log_info("Further messages from %s are not logged", peer);
                return;
        }
        (void)escape_bytes(text, sizeof text, data, len, LOG_PREVIEW_BYTES);
        if (!data)
                log_info("Received: %zu bytes without a newline before EOF from %s", total, peer);
        else if (len == total && len <= LOG_PREVIEW_BYTES)
                log_info("Received: \"%s\" from %s", text, peer);
        else    /* cut short here, or began in an earlier read */
                log_info("Received: \"%s%s\" (%zu bytes) from %s", len < total ? "..." : "", text, total, peer);
}

static void on_line_message(const LineMessage *m, void *userdata) {
        connection_log_message(userdata, m->data, m->len, m->total);
}

/* Writes what is owed: acknowledgements first, then an error line. Stops at a short write. */
static int connection_flush(Worker *w, Connection *c) {
        Profile *p = c->profile;

        while (has_output(c) && !(c->flags & CONNECTION_OUT_BLOCKED)) {
                size_t unit = c->mode == PROTOCOL_LINE ? p->line_unit : p->ack_len;
                const char *buf;
                size_t len;
                ssize_t k;

                if (c->pending_acks > 0) {
                        buf = p->replies + c->out_offset;
                        len = MIN((size_t)c->pending_acks, p->line_count) * unit - c->out_offset;
                } else {
                        const char *text = error_replies[c->error_reply];

                        buf = text + c->out_offset;
                        len = strlen(text) - c->out_offset;
                }

                /* When shutdown(SHUT_WR) follows, hold the last segment back (MSG_MORE): the
                 * FIN then rides on it, one packet instead of two for a oneshot reply. */
                k = send(c->fd, buf, len,
                         MSG_NOSIGNAL | MSG_DONTWAIT | (replying_before_shutdown(c) ? MSG_MORE : 0));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                c->flags |= CONNECTION_OUT_BLOCKED;
                                return 0;
                        }
                        return -errno;
                }

                if (c->pending_acks > 0) {
                        size_t sent = c->out_offset + (size_t)k;
                        size_t done = sent / unit;

                        c->pending_acks -= (uint32_t)done;
                        c->out_offset = (uint32_t)(sent % unit);
                        stat_add(&w->stats.acknowledged, done);
                        /* Acks leaving is progress: a client that reads is not idle. */
                        if (done > 0 && c->state != CONNECTION_LINGER)
                                timer_queue_rearm(&p->idle, &c->timer, w->now);
                } else {
                        c->out_offset += (uint32_t)k;
                        if (c->out_offset == strlen(error_replies[c->error_reply])) {
                                c->error_reply = ERROR_REPLY_NONE;
                                c->out_offset = 0;
                        }
                }

                if ((size_t)k < len)
                        c->flags |= CONNECTION_OUT_BLOCKED;
        }
        return 0;
}

static int connection_read_oneshot(Worker *w, Connection *c) {
        ssize_t n;

        /* One read, as the tutorial server's recv(1024): that is the message. */
        n = recv(c->fd, w->scratch, c->profile->max_message, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0) {
                /* EOF before any byte: close without a reply. */
                c->flags |= CONNECTION_EOF;
                connection_set_state(w, c, CONNECTION_REPLYING);
                return 0;
        }

        if (log_level_enabled(LOG_INFO))
                connection_log_message(c, w->scratch, (size_t)n, (size_t)n);
        c->pending_acks = 1;
        stat_add(&w->stats.messages, 1);
        connection_set_state(w, c, CONNECTION_REPLYING);
        return 0;
}

static int connection_read_line(Worker *w, Connection *c) {
        bool too_long;
        size_t k;
        ssize_t n;

        n = recv(c->fd, w->scratch, w->scratch_size, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0) {
                size_t total;

                /* An unterminated last message is still a message. */
                c->flags |= CONNECTION_EOF;
                if (line_parser_finish(&c->parser, &total)) {
                        c->pending_acks++;
                        stat_add(&w->stats.messages, 1);
                        if (log_level_enabled(LOG_INFO))
                                connection_log_message(c, NULL, 0, total);
                }
                connection_set_state(w, c, CONNECTION_REPLYING);
                return 0;
        }

        k = line_parser_feed(&c->parser, w->scratch, (size_t)n, c->profile->max_message,
                             log_level_enabled(LOG_INFO) ? on_line_message : NULL, c, &too_long);
        if (k > 0) {
                c->pending_acks += (uint32_t)k;
                stat_add(&w->stats.messages, k);
                timer_queue_rearm(&c->profile->idle, &c->timer, w->now);
        }
        if (too_long) {
                char peer[ADDRESS_STRING_MAX];

                stat_add(&w->stats.too_long, 1);
                if (log_level_enabled(LOG_INFO))
                        log_info("Message longer than %llu bytes from %s, closing",
                                 (unsigned long long)c->profile->max_message,
                                 connection_peer(c, peer, sizeof peer));
                c->error_reply = ERROR_REPLY_TOO_LONG;
                connection_set_state(w, c, CONNECTION_REPLYING);
        }
        return 0;
}

/* Reads and drops input while lingering. Returns 1 at EOF (or on error: the peer is gone). */
static int connection_discard(Worker *w, Connection *c) {
        ssize_t n = recv(c->fd, w->scratch, w->scratch_size, 0);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : 1;
        return n == 0;
}

/*
 * Advances c as far as it can go without blocking. Returns the epoll events to wait
 * for next, STEP_DONE when the connection is finished, or a negative errno when it
 * failed. `readable`: epoll reported input (or the caller knows it is there); read at
 * most once, and let level-triggered epoll report the rest.
 */
static int connection_step(Worker *w, Connection *c, bool readable) {
        int r;

        for (;;) {
                r = connection_flush(w, c);
                if (r < 0)
                        return r;

                switch (c->state) {
                case CONNECTION_READING:
                        if (c->flags & CONNECTION_OUT_BLOCKED) {
                                /* The client is not reading its acks: stop reading its messages
                                 * until they drain. Owed acks are a counter, so this bounds
                                 * nothing in memory; it pushes back through TCP instead. */
                                if (c->pending_acks >= c->profile->line_count)
                                        return EPOLLOUT;
                                if (!readable)
                                        return EPOLLIN | EPOLLOUT;
                        } else if (!readable)
                                return EPOLLIN;

                        r = c->mode == PROTOCOL_LINE ? connection_read_line(w, c) : connection_read_oneshot(w, c);
                        if (r < 0)
                                return r;
                        readable = false;
                        break;

                case CONNECTION_REPLYING:
                        if (has_output(c))
                                return EPOLLOUT;
                        if (c->flags & CONNECTION_EOF)
                                return STEP_DONE;       /* all input read, all answered */
                        if (shutdown(c->fd, SHUT_WR) < 0)
                                return -errno;
                        connection_set_state(w, c, CONNECTION_LINGER);
                        /* The client's FIN usually follows once it has read the reply. */
                        return EPOLLIN;

                case CONNECTION_LINGER:
                        if (!readable)
                                return EPOLLIN;
                        return connection_discard(w, c) ? STEP_DONE : EPOLLIN;
                }
        }
}

static void connection_finish(Worker *w, Connection *c, int r) {
        if (r > 0 && (uint8_t)r != c->interest) {
                struct epoll_event ev = { .events = (uint32_t)r, .data.ptr = c };

                if (epoll_ctl(w->epoll_fd, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        r = -errno;
                else
                        c->interest = (uint8_t)r;
        }
        if (r < 0) {
                if (r != -ECONNRESET && r != -EPIPE)
                        log_debug_errno(r, "Connection failed: %s", STRERROR(r));
                stat_add(&w->stats.resets, 1);
        }
        if (r <= 0)
                connection_close(w, c);
}

void connection_dispatch(Worker *w, Connection *c, uint32_t events) {
        /* An error or hangup is reported whatever we asked for; let the write see it too. */
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                c->flags &= (uint8_t)~CONNECTION_OUT_BLOCKED;
        connection_finish(w, c, connection_step(w, c, events & (EPOLLIN | EPOLLERR | EPOLLHUP)));
}

/* Beyond even the ERR busy allowance: no linger for this one. Take what the client has
 * sent so far (so the close is not a reset that could swallow the reply), say ERR busy
 * with the FIN, and close. Only input arriving later can still turn into a reset. */
static void reject_now(Worker *w, int fd) {
        for (unsigned i = 0; i < 4; i++)
                if (recv(fd, w->scratch, w->scratch_size, MSG_DONTWAIT) <= 0)
                        break;
        (void)!send(fd, REPLY_ERR_BUSY, STRLEN(REPLY_ERR_BUSY), MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
        (void)shutdown(fd, SHUT_WR);
        (void)close(fd);
}

static void log_busy(Worker *w) {
        unsigned suppressed = 0;

        if (!ratelimit_below(&w->shared->busy_log, w->now * USEC_PER_MSEC, &suppressed))
                return;
        if (suppressed > 0)
                log_warning("Connection limit reached (max-connections %llu): answering ERR busy "
                            "(%u more since the last message)",
                            (unsigned long long)atomic_load(&w->shared->max_connections), suppressed);
        else
                log_warning("Connection limit reached (max-connections %llu): answering ERR busy",
                            (unsigned long long)atomic_load(&w->shared->max_connections));
}

void connection_accept(Worker *w, const Listener *l, int fd, const struct sockaddr *peer, socklen_t peer_len) {
        WorkerShared *sh = w->shared;
        bool rejected = false;
        Connection *c;

        /* Admission: claim a slot first, give it back if over the limit. */
        if (atomic_fetch_add_explicit(&sh->active, 1, memory_order_relaxed) >=
            atomic_load_explicit(&sh->max_connections, memory_order_relaxed)) {
                atomic_fetch_sub_explicit(&sh->active, 1, memory_order_relaxed);
                stat_add(&w->stats.busy, 1);
                log_busy(w);
                rejected = true;
                if (atomic_fetch_add_explicit(&sh->rejecting, 1, memory_order_relaxed) >= sh->max_rejecting) {
                        atomic_fetch_sub_explicit(&sh->rejecting, 1, memory_order_relaxed);
                        stat_add(&w->stats.accepted, 1);
                        reject_now(w, fd);
                        return;
                }
        }

        c = worker_connection_alloc(w);
        if (!c) {
                atomic_fetch_sub_explicit(rejected ? &sh->rejecting : &sh->active, 1, memory_order_relaxed);
                stat_add(&w->stats.resets, 1);
                reject_now(w, fd);
                return;
        }
        *c = (Connection){
                .kind = SOURCE_CONNECTION,
                .mode = (uint8_t)l->mode,
                .state = CONNECTION_READING,
                .fd = fd,
                .profile = profile_ref(w->profile),
        };
        timer_queue_add(&c->profile->idle, &c->timer, w->now);
        stat_add(&w->stats.accepted, 1);

        if (log_level_enabled(LOG_INFO)) {
                char buf[ADDRESS_STRING_MAX];
                const char *name;

                /* A unix client has no address; connection_peer() shows its pid instead. */
                if (peer_len > 0 && peer->sa_family != AF_UNIX)
                        name = sockaddr_format(peer, peer_len, buf, sizeof buf);
                else
                        name = connection_peer(c, buf, sizeof buf);
                log_info("Accepted connection from %s", name);
        }

        if (rejected) {
                c->flags |= CONNECTION_REJECTED;
                c->error_reply = ERROR_REPLY_BUSY;
                connection_set_state(w, c, CONNECTION_REPLYING);
        } else if (c->mode == PROTOCOL_LINE && l->family != AF_UNIX) {
                /* Pipelined acks must not wait for Nagle behind the client's delayed ACKs. */
                const int one = 1;

                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }

        /* With TCP_DEFER_ACCEPT the message is already here: answer it now, before
         * epoll ever hears of this socket. Otherwise wait for epoll to report input. */
        connection_finish(w, c, connection_step(w, c, l->defer_accept && c->mode == PROTOCOL_ONESHOT));
}

void connection_timeout(Worker *w, Connection *c) {
        if (c->state == CONNECTION_LINGER) {
                int unsent = 0;

                /* Closing now, with input still arriving, would reset the connection and drop
                 * what the kernel has not delivered yet: acks we counted as sent. While the
                 * client keeps taking them, give it another linger period, up to idle-timeout
                 * in all. (out_offset, unused once everything is written, remembers how much
                 * was in flight at the last look.) */
                if (c->n_extended < MIN(c->profile->idle.duration / LINGER_TIMEOUT_MS, (uint64_t)UINT8_MAX) &&
                    ioctl(c->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0 &&
                    (c->out_offset == 0 || (uint32_t)unsent < c->out_offset)) {
                        c->out_offset = (uint32_t)unsent;
                        c->n_extended++;
                        timer_queue_rearm(&w->linger, &c->timer, w->now);
                        return;
                }
        } else {
                stat_add(&w->stats.idle_timeouts, 1);
                if (log_level_enabled(LOG_INFO)) {
                        char peer[ADDRESS_STRING_MAX];

                        log_info("Closing idle connection from %s", connection_peer(c, peer, sizeof peer));
                }
        }
        connection_close(w, c);
}

void connection_stop(Worker *w, Connection *c) {
        if (c->mode != PROTOCOL_LINE || c->state != CONNECTION_READING)
                return;
        connection_set_state(w, c, CONNECTION_REPLYING);
        connection_finish(w, c, connection_step(w, c, false));
}

void connection_close(Worker *w, Connection *c) {
        WorkerShared *sh = w->shared;

        if (c->interest)
                (void)epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = safe_close(c->fd);
        timer_queue_remove(connection_queue(w, c), &c->timer);
        atomic_fetch_sub_explicit((c->flags & CONNECTION_REJECTED) ? &sh->rejecting : &sh->active, 1,
                                  memory_order_relaxed);
        worker_profile_release(w, c->profile);
        worker_connection_release(w, c);
}

