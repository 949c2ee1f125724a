/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* TCP_NODELAY, and struct tcp_info with the byte counters */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "connection-internal.h"
#include "connection-pool.h"
#include "proxy-protocol.h"
#include "time-util.h"

/* A oneshot message is one read into the scratch buffer, which must hold max-message (and
 * a PROXY header before it); line mode reads this much at a time. */
#define SCRATCH_MIN 65536

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

TimerQueue *connection_timer_queue(ConnectionContext *ctx, Connection *c) {
        switch (c->state) {
        case CONNECTION_LINGER:
                return &ctx->linger;
        case CONNECTION_HEADER:
                return &c->profile->proxy;
        default:
                return &c->profile->idle;
        }
}

void connection_set_state(ConnectionContext *ctx, Connection *c, ConnectionState state) {
        TimerQueue *old = connection_timer_queue(ctx, c);

        c->state = state;
        if (connection_timer_queue(ctx, c) != old) {
                timer_queue_remove(old, &c->timer);
                timer_queue_add(connection_timer_queue(ctx, c), &c->timer, ctx->now);
        }
}

/* The next bytes owed: acknowledgements first (from the constant buffer, as many as
 * one write can take), then the error line. */
static size_t connection_output(const Connection *c, const char **ret) {
        const Profile *p = c->profile;

        if (c->pending_acks > 0) {
                size_t unit = (c->flags & CONNECTION_LINE) ? p->line_unit : p->ack_len;

                *ret = p->replies + c->out_offset;
                return MIN((size_t)c->pending_acks, p->line_count) * unit - c->out_offset;
        }
        *ret = error_replies[c->error_reply] + c->out_offset;
        return strlen(error_replies[c->error_reply]) - c->out_offset;
}

/* Accounts for k bytes of connection_output() written. */
static void connection_wrote(ConnectionContext *ctx, Connection *c, size_t k) {
        c->bytes_written += (uint32_t)k;
        if (c->pending_acks > 0) {
                size_t unit = (c->flags & CONNECTION_LINE) ? c->profile->line_unit : c->profile->ack_len;
                size_t sent = c->out_offset + k, done = sent / unit;

                c->pending_acks -= (uint32_t)done;
                c->out_offset = (uint32_t)(sent % unit);
                stat_add(&ctx->stats[c->listener].acknowledged, done);
                /* Acks leaving is progress: a client that reads is not idle. */
                if (done > 0 && c->state != CONNECTION_LINGER)
                        timer_queue_rearm(&c->profile->idle, &c->timer, ctx->now);
                return;
        }
        c->out_offset += (uint32_t)k;
        if (c->out_offset == strlen(error_replies[c->error_reply])) {
                c->error_reply = ERROR_REPLY_NONE;
                c->out_offset = 0;
        }
}

/* Writes what is owed. Stops at a short write (CONNECTION_OUT_BLOCKED). */
int connection_flush(ConnectionContext *ctx, Connection *c) {
        while (has_output(c) && !(c->flags & CONNECTION_OUT_BLOCKED)) {
                const char *buf;
                size_t len = connection_output(c, &buf);
                ssize_t k;

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
                connection_wrote(ctx, c, (size_t)k);
                if ((size_t)k < len)
                        c->flags |= CONNECTION_OUT_BLOCKED;
        }
        return 0;
}

static void received_oneshot(ConnectionContext *ctx, Connection *c, const char *data, size_t n) {
        /* One read, as the tutorial server's recv(1024): that is the message. */
        n = MIN(n, (size_t)c->profile->max_message);
        if (log_level_enabled(LOG_INFO))
                connection_log_message(ctx, c, data, n, n);
        c->pending_acks = 1;
        stat_add(&ctx->stats[c->listener].messages, 1);
        connection_set_state(ctx, c, CONNECTION_REPLYING);
}

static void connection_too_long(ConnectionContext *ctx, Connection *c) {
        stat_add(&ctx->stats[c->listener].too_long, 1);
        if (log_level_enabled(LOG_INFO)) {
                char peer[ADDRESS_STRING_MAX];

                log_info("Message longer than %llu bytes from %s, closing",
                         (unsigned long long)c->profile->max_message,
                         connection_peer(c, ctx, peer, sizeof peer));
        }
        c->error_reply = ERROR_REPLY_TOO_LONG;
        connection_set_state(ctx, c, CONNECTION_REPLYING);
}

static void received_line(ConnectionContext *ctx, Connection *c, const char *data, size_t n) {
        LineLog log = { ctx, c };
        bool too_long;
        size_t k;

        k = line_parser_feed(&c->parser, data, n, c->profile->max_message,
                             log_level_enabled(LOG_INFO) ? connection_on_line_message : NULL, &log,
                             &too_long);
        if (k > 0) {
                c->pending_acks += (uint32_t)k;
                stat_add(&ctx->stats[c->listener].messages, k);
                timer_queue_rearm(&c->profile->idle, &c->timer, ctx->now);
        }
        if (too_long)
                connection_too_long(ctx, c);
}

void connection_received(ConnectionContext *ctx, Connection *c, const char *data, size_t n) {
        if (c->flags & CONNECTION_LINE)
                received_line(ctx, c, data, n);
        else
                received_oneshot(ctx, c, data, n);
}

void connection_eof(ConnectionContext *ctx, Connection *c) {
        size_t total;

        c->flags |= CONNECTION_EOF;
        /* An unterminated last message is still a message. (In oneshot mode, EOF before any
         * byte: close without a reply.) */
        if ((c->flags & CONNECTION_LINE) && line_parser_finish(&c->parser, &total)) {
                c->pending_acks++;
                stat_add(&ctx->stats[c->listener].messages, 1);
                if (log_level_enabled(LOG_INFO))
                        connection_log_message(ctx, c, NULL, 0, total);
        }
        connection_set_state(ctx, c, CONNECTION_REPLYING);
}

static int connection_read(ConnectionContext *ctx, Connection *c) {
        /* A oneshot message is one read of at most max-message bytes. */
        size_t size = (c->flags & CONNECTION_LINE) ? ctx->scratch_size : (size_t)c->profile->max_message;
        ssize_t n = recv(c->fd, ctx->scratch, size, 0);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                connection_eof(ctx, c);
        else
                connection_received(ctx, c, ctx->scratch, (size_t)n);
        return 0;
}

/* Reads and drops input while lingering. Returns 1 at EOF (or on error: the peer is gone). */
static int connection_discard(ConnectionContext *ctx, Connection *c) {
        ssize_t n = recv(c->fd, ctx->scratch, ctx->scratch_size, 0);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : 1;
        return n == 0;
}

/* READING: the epoll events to wait for, or 0 when the connection should read now. */
static uint32_t reading_wait(const Connection *c, bool readable) {
        if (c->flags & CONNECTION_OUT_BLOCKED) {
                /* The client is not reading its acks: stop reading its messages until they
                 * drain. Owed acks are a counter, so this bounds nothing in memory; it pushes
                 * back through TCP instead. */
                if (c->pending_acks >= c->profile->line_count)
                        return EPOLLOUT;
                return readable ? 0 : EPOLLIN | EPOLLOUT;
        }
        return readable ? 0 : EPOLLIN;
}

/*
 * Advances c as far as it can go without blocking. Returns the epoll events to wait
 * for next, STEP_DONE when the connection is finished, or a negative errno when it
 * failed. `readable`: epoll reported input (or the caller knows it is there); read at
 * most once, and let level-triggered epoll report the rest.
 */
int connection_step(ConnectionContext *ctx, Connection *c, bool readable) {
        uint32_t wait;
        int r;

        for (;;) {
                r = connection_flush(ctx, c);
                if (r < 0)
                        return r;

                switch (c->state) {
                case CONNECTION_HEADER:
                        if (!readable)
                                return EPOLLIN;
                        r = connection_read_header(ctx, c);
                        if (r != 0)
                                return r < 0 ? r : STEP_DONE;
                        readable = false;
                        break;

                case CONNECTION_READING:
                        wait = reading_wait(c, readable);
                        if (wait != 0)
                                return (int)wait;
                        r = connection_read(ctx, c);
                        if (r < 0)
                                return r;
                        readable = false;
                        break;

                case CONNECTION_REPLYING:
                        if (has_output(c))
                                return EPOLLOUT;
                        if (c->flags & CONNECTION_EOF)
                                return STEP_DONE; /* all input read, all answered */
                        if (shutdown(c->fd, SHUT_WR) < 0)
                                return -errno;
                        connection_set_state(ctx, c, CONNECTION_LINGER);
                        /* The client's FIN usually follows once it has read the reply. */
                        return EPOLLIN;

                case CONNECTION_LINGER:
                        if (!readable)
                                return EPOLLIN;
                        return connection_discard(ctx, c) ? STEP_DONE : EPOLLIN;
                }
        }
}

/* Every byte written to c reached the peer's TCP, as far as a reset lets one tell: all
 * were acknowledged; or all were sent and no more than one reply awaits its ACK, which a
 * peer that delays its ACKs (HAProxy's checks turn TCP_QUICKACK off) never sends once it
 * has read the reply and reset. (Whether the client then read them cannot be known: its
 * TCP took them, so they were delivered.) */
static bool tcp_delivered(const Connection *c) {
        struct tcp_info ti = { 0 };
        socklen_t len = sizeof ti;
        uint32_t unacked;

        if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
            len < offsetof(struct tcp_info, tcpi_notsent_bytes) + sizeof ti.tcpi_notsent_bytes)
                return false;
        unacked = c->bytes_written - (uint32_t)ti.tcpi_bytes_acked;
        return unacked == 0 || (ti.tcpi_notsent_bytes == 0 && unacked <= c->profile->line_unit);
}

/*
 * A reset from a client that was owed nothing, had no message half sent, and whose
 * TCP had every reply is how many clients and load balancers close
 * (SO_LINGER 0 after the expected reply): a normal close, not an error. A unix peer
 * never resets a connection unless it left replies unread.
 */
static bool reset_lost_nothing(const Connection *c, int error) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        if (error != -ECONNRESET || has_output(c) || c->parser.partial > 0)
                return false;
        if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family == AF_UNIX)
                return false;
        return tcp_delivered(c);
}

static void connection_failed(ConnectionContext *ctx, Connection *c, int error) {
        if (reset_lost_nothing(c, error)) {
                stat_add(&ctx->stats[c->listener].reset_closes, 1);
                return;
        }
        if (error != -ECONNRESET && error != -EPIPE)
                log_debug_errno(error, "Connection failed: %s", STRERROR(error));
        stat_add(&ctx->stats[c->listener].resets, 1);
}

/* Applies connection_step()'s verdict: new epoll interest, or the end. */
void connection_finish(ConnectionContext *ctx, Connection *c, int r) {
        if (r > 0 && (uint8_t)r != c->interest) {
                struct epoll_event ev = { .events = (uint32_t)r, .data.ptr = c };

                if (epoll_ctl(ctx->epoll_fd, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        r = -errno;
                else
                        c->interest = (uint8_t)r;
        }
        if (r < 0)
                connection_failed(ctx, c, r);
        if (r <= 0)
                connection_close(ctx, c);
}

void connection_dispatch(ConnectionContext *ctx, Connection *c, uint32_t events) {
        /* An error or hangup is reported whatever we asked for; let the write see it too. */
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                c->flags &= (uint8_t)~CONNECTION_OUT_BLOCKED;
        connection_finish(ctx, c, connection_step(ctx, c, events & (EPOLLIN | EPOLLERR | EPOLLHUP)));
}

/* Beyond even the ERR busy allowance: no linger for this one. Take what the client has
 * sent so far (so the close is not a reset that could swallow the reply), say ERR busy
 * with the FIN, and close. Only input arriving later can still turn into a reset. */
static void reject_now(ConnectionContext *ctx, int fd) {
        for (unsigned i = 0; i < 4; i++)
                if (recv(fd, ctx->scratch, ctx->scratch_size, MSG_DONTWAIT) <= 0)
                        break;
        (void)!send(fd, REPLY_ERR_BUSY, STRLEN(REPLY_ERR_BUSY), MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
        (void)shutdown(fd, SHUT_WR);
        (void)close(fd);
}

/* Admission, then memory. Returns the connection to fill in, or NULL when the socket
 * gets only a hurried ERR busy. */
static Connection *connection_admit(ConnectionContext *ctx, WorkerStats *stats,
                                    AdmissionTicket *ret_ticket) {
        AdmissionTicket ticket = admission_enter(ctx->admission);
        Connection *c;

        stat_add(&stats->accepted, 1);
        if (ticket != ADMISSION_SERVE) {
                stat_add(&stats->busy, 1);
                connection_log_busy(ctx);
        }
        if (ticket == ADMISSION_REFUSE)
                return NULL;
        c = connection_pool_get(&ctx->pool);
        if (!c) {
                admission_leave(ctx->admission, ticket);
                stat_add(&stats->resets, 1);
                return NULL;
        }
        *ret_ticket = ticket;
        return c;
}

Connection *connection_accept(ConnectionContext *ctx, const Listener *l, int fd, const struct sockaddr *peer,
                              socklen_t peer_len) {
        AdmissionTicket ticket;
        Connection *c = connection_admit(ctx, &ctx->stats[l->index], &ticket);

        if (!c) {
                reject_now(ctx, fd);
                return NULL;
        }
        *c = (Connection){
                .kind = SOURCE_CONNECTION,
                .listener = l->index,
                .state = CONNECTION_READING,
                .flags = l->mode == PROTOCOL_LINE ? CONNECTION_LINE : 0,
                .fd = fd,
                .profile = profile_ref(ctx->profiles.current),
        };
        timer_queue_add(&c->profile->idle, &c->timer, ctx->now);

        if (l->proxy && ticket == ADMISSION_SERVE) {
                /* Logged once the header says who the client is. */
                if (!connection_proxy_accept(ctx, c, peer, peer_len)) {
                        connection_close(ctx, c);
                        return NULL;
                }
        } else if (log_level_enabled(LOG_INFO))
                connection_log_accepted(ctx, c, peer, peer_len);

        if (ticket == ADMISSION_REJECT) {
                c->flags |= CONNECTION_REJECTED;
                c->error_reply = ERROR_REPLY_BUSY;
                connection_set_state(ctx, c, CONNECTION_REPLYING);
        } else if ((c->flags & CONNECTION_LINE) && l->family != AF_UNIX) {
                /* Pipelined acks must not wait for Nagle behind the client's delayed ACKs. */
                const int one = 1;

                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }

        /* With TCP_DEFER_ACCEPT the message (and the PROXY header before it) is already
         * here: answer it now, before epoll ever hears of this socket. Otherwise wait for
         * epoll to report input. */
        connection_finish(ctx, c, connection_step(ctx, c, l->defer_accept && !(c->flags & CONNECTION_LINE)));
        return c->kind == SOURCE_CONNECTION ? c : NULL;
}

/* Lingering with the reply still leaving: closing now, with input still arriving,
 * would reset the connection and drop what the kernel has not delivered yet, acks
 * counted as sent. While the client keeps taking them, grant another linger period,
 * up to idle-timeout in all. */
static bool linger_extend(ConnectionContext *ctx, Connection *c) {
        int unsent = 0;

        if (c->n_extended >= MIN(c->profile->idle.duration / LINGER_TIMEOUT_MS, (uint64_t)UINT8_MAX) ||
            ioctl(c->fd, SIOCOUTQ, &unsent) < 0 || unsent <= 0 ||
            (c->linger_unsent != 0 && (uint32_t)unsent >= c->linger_unsent))
                return false;
        c->linger_unsent = (uint32_t)unsent;
        c->n_extended++;
        timer_queue_rearm(&ctx->linger, &c->timer, ctx->now);
        return true;
}

static void connection_timeout(ConnectionContext *ctx, Connection *c) {
        if (c->state == CONNECTION_LINGER) {
                if (linger_extend(ctx, c))
                        return;
        } else if (c->state == CONNECTION_HEADER)
                connection_header_timeout(ctx, c);
        else {
                stat_add(&ctx->stats[c->listener].idle_timeouts, 1);
                if (log_level_enabled(LOG_INFO)) {
                        char peer[ADDRESS_STRING_MAX];

                        log_info("Closing idle connection from %s",
                                 connection_peer(c, ctx, peer, sizeof peer));
                }
        }
        connection_close(ctx, c);
}

static void run_queue_timers(ConnectionContext *ctx, TimerQueue *q) {
        TimerEntry *e;

        while ((e = timer_queue_peek_expired(q, ctx->now)))
                connection_timeout(ctx, container_of(e, Connection, timer));
}

void connection_run_timers(ConnectionContext *ctx) {
        for (Profile *p = ctx->profiles.all, *next; p; p = next) {
                /* Closing the profile's last connection would free it: hold it until done. */
                profile_ref(p);
                run_queue_timers(ctx, &p->proxy);
                run_queue_timers(ctx, &p->idle);
                next = p->next;
                profile_list_release(&ctx->profiles, p);
        }
        run_queue_timers(ctx, &ctx->linger);
}

uint64_t connection_next_deadline(const ConnectionContext *ctx) {
        uint64_t next = timer_queue_next_deadline(&ctx->linger);

        for (const Profile *p = ctx->profiles.all; p; p = p->next)
                next = MIN(next,
                           MIN(timer_queue_next_deadline(&p->idle), timer_queue_next_deadline(&p->proxy)));
        return next;
}

void connection_stop(ConnectionContext *ctx, Connection *c) {
        if (!(c->flags & CONNECTION_LINE) || c->state != CONNECTION_READING)
                return;
        connection_set_state(ctx, c, CONNECTION_REPLYING);
        connection_finish(ctx, c, connection_step(ctx, c, false));
}

void connection_close(ConnectionContext *ctx, Connection *c) {
        if (c->interest && c->fd >= 0)
                (void)epoll_ctl(ctx->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = safe_close(c->fd);
        connection_forget(ctx, c);
}

void connection_forget(ConnectionContext *ctx, Connection *c) {
        timer_queue_remove(connection_timer_queue(ctx, c), &c->timer);
        if (c->peer)
                connection_proxy_release(ctx, c);
        admission_leave(ctx->admission,
                        (c->flags & CONNECTION_REJECTED) ? ADMISSION_REJECT : ADMISSION_SERVE);
        profile_list_release(&ctx->profiles, c->profile);
        connection_pool_put(&ctx->pool, c);
}

static void for_each_in_queue(ConnectionContext *ctx, TimerQueue *q, connection_fn f, void *userdata) {
        /* f may move or close the entry, never its successor. */
        for (TimerEntry *e = timer_queue_first(q), *n; e; e = n) {
                n = timer_queue_next(q, e);
                f(ctx, container_of(e, Connection, timer), userdata);
        }
}

void connection_for_each_with(ConnectionContext *ctx, connection_fn f, void *userdata) {
        for (Profile *p = ctx->profiles.all, *next; p; p = next) {
                profile_ref(p);
                for_each_in_queue(ctx, &p->proxy, f, userdata);
                for_each_in_queue(ctx, &p->idle, f, userdata);
                next = p->next;
                profile_list_release(&ctx->profiles, p);
        }
        for_each_in_queue(ctx, &ctx->linger, f, userdata);
}

static void call_plain(ConnectionContext *ctx, Connection *c, void *userdata) {
        void (**f)(ConnectionContext * ctx, Connection * c) = userdata;

        (*f)(ctx, c);
}

void connection_for_each(ConnectionContext *ctx, void (*f)(ConnectionContext *ctx, Connection *c)) {
        connection_for_each_with(ctx, call_plain, &f);
}

int connection_context_init(ConnectionContext *ctx, int epoll_fd, size_t n_listeners, Admission *admission,
                            ConnectionLogLimits *log_limits) {
        *ctx = (ConnectionContext){
                .epoll_fd = epoll_fd,
                .admission = admission,
                .log_limits = log_limits,
        };
        timer_queue_init(&ctx->linger, LINGER_TIMEOUT_MS);
        ctx->stats = calloc(MAX(n_listeners, 1u), sizeof *ctx->stats);
        if (!ctx->stats)
                return -ENOMEM;
        ctx->n_stats = n_listeners;
        return 0;
}

int connection_context_use(ConnectionContext *ctx, Profile *p) {
        size_t scratch = MAX((size_t)SCRATCH_MIN, (size_t)p->max_message + PROXY_HEADER_MAX);

        if (scratch > ctx->scratch_size) {
                char *b = realloc(ctx->scratch, scratch);

                if (!b) {
                        free(p);
                        return -ENOMEM;
                }
                ctx->scratch = b;
                ctx->scratch_size = scratch;
        }
        profile_list_push(&ctx->profiles, p);
        return 0;
}

void connection_context_done(ConnectionContext *ctx) {
        connection_for_each(ctx, connection_close);
        connection_pool_done(&ctx->pool);
        peer_table_done(&ctx->peers);
        profile_list_done(&ctx->profiles);
        ctx->scratch = mfree(ctx->scratch);
        ctx->scratch_size = 0;
        ctx->stats = mfree(ctx->stats);
        ctx->n_stats = 0;
}
