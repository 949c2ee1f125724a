/* SPDX-License-Identifier: MIT */
/*
 * Line mode of the send command: one connection; messages are written as they
 * come and replies matched to them in order, at most SEND_WINDOW awaiting one.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "macro.h"
#include "proxy-header.h"
#include "send-internal.h"
#include "send.h"
#include "time-util.h"

/* What is remembered of a message awaiting its reply: enough to name it in an error. */
typedef struct Pending {
        char head[SHOW_MAX + 1]; /* one more than shown, so escape_bytes() adds "..." */
        size_t len;
} Pending;

typedef struct LineSession {
        Sender *sender;
        const ClientArgs *args;
        MessageSource *src;
        int fd;

        char *out; /* bytes to write: messages plus newlines */
        size_t out_start, out_end, out_size;
        bool write_failed;

        char in[SEND_REPLY_MAX]; /* reply bytes not yet matched */
        size_t in_len;
        bool answered; /* a reply has been matched */

        Pending *pending; /* ring of SEND_WINDOW */
        size_t head, n_pending;
        uint64_t last_progress; /* µs: last reply, or when the ring stopped being empty */
} LineSession;

static void session_done(LineSession *s) {
        free(s->out);
        free(s->pending);
        s->fd = safe_close(s->fd);
}

static bool session_room(const LineSession *s) {
        /* Room for the longest possible message and its newline, once compacted. */
        return s->n_pending < SEND_WINDOW &&
               s->out_size - (s->out_end - s->out_start) >= MESSAGE_LINE_MAX + 1;
}

/* Moves messages from the source to the output buffer while there is room. */
static int session_enqueue(LineSession *s) {
        while (session_room(s)) {
                Pending *p;
                Message m;
                int r;

                r = message_source_next(s->src, &m);
                if (r == 0 || r == -EAGAIN)
                        return 0;
                if (r < 0)
                        return r;
                if (m.len > MESSAGE_LINE_MAX)
                        return -E2BIG;

                if (s->out_start == s->out_end)
                        s->out_start = s->out_end = 0;
                else if (s->out_size - s->out_end < m.len + 1) {
                        memmove(s->out, s->out + s->out_start, s->out_end - s->out_start);
                        s->out_end -= s->out_start;
                        s->out_start = 0;
                }
                memcpy(s->out + s->out_end, m.data, m.len);
                s->out[s->out_end + m.len] = '\n';
                s->out_end += m.len + 1;

                p = &s->pending[(s->head + s->n_pending) % SEND_WINDOW];
                memcpy(p->head, m.data, MIN(m.len, sizeof p->head));
                p->len = m.len;
                if (s->n_pending++ == 0)
                        s->last_progress = now_usec(CLOCK_MONOTONIC);
        }
        return 0;
}

static void session_flush(LineSession *s) {
        while (!s->write_failed && s->out_start < s->out_end) {
                ssize_t n = write(s->fd, s->out + s->out_start, s->out_end - s->out_start);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* EPIPE, ECONNRESET: replies may still be readable; the read side
                         * reports what is missing. */
                        if (errno != EAGAIN)
                                s->write_failed = true;
                        return;
                }
                s->out_start += (size_t)n;
        }
}

/* Reports every message still awaiting a reply, the first few by name; `why` follows
 * the message: ": connection closed by the server", " within 5000ms". */
static void session_fail_pending(LineSession *s, const char *why) {
        char m[ESCAPE_BUFFER_SIZE(SHOW_MAX)];
        size_t shown = 0;

        for (; s->n_pending > 0; s->n_pending--, s->head = (s->head + 1) % SEND_WINDOW, shown++) {
                const Pending *p = &s->pending[s->head];

                if (shown == 10) {
                        fprintf(stderr, "ackc: and %zu more messages without a reply\n", s->n_pending);
                        s->n_pending = 0;
                        break;
                }
                fprintf(stderr, "ackc: no reply to \"%s\"%s\n",
                        send_show(m, sizeof m, p->head, MIN(p->len, sizeof p->head)), why);
        }
        s->sender->failed = true;
}

/* The length of the first complete reply in the input, or 0. A reply is a line when the
 * expected one ends in a newline, else exactly as long as the expected one. */
static size_t session_reply_length(const LineSession *s) {
        const ClientArgs *a = s->args;
        const char *lf;

        if (a->expect[a->expect_len - 1] != '\n')
                return s->in_len >= a->expect_len ? a->expect_len : 0;
        lf = memchr(s->in, '\n', s->in_len);
        return lf ? (size_t)(lf - s->in) + 1 : 0;
}

/* The first len bytes of the input are the reply to the oldest message awaiting one. */
static void session_judge(LineSession *s, size_t len) {
        const Pending *p = &s->pending[s->head];

        if (!send_check_reply(s->args, p->head, MIN(p->len, sizeof p->head), s->in, len))
                s->sender->failed = true;
        s->head = (s->head + 1) % SEND_WINDOW;
        s->n_pending--;
}

static void session_unexpected(LineSession *s, size_t len) {
        char x[ESCAPE_BUFFER_SIZE(SHOW_MAX)];

        fprintf(stderr, "ackc: unexpected reply \"%s\" with no message awaiting one\n",
                send_show(x, sizeof x, s->in, len));
        s->sender->failed = true;
}

/*
 * ackd answers ERR busy as it accepts a connection over its limit, before reading
 * anything: as the first reply, it is about the connection, not about a message, and it
 * may come before any message was sent. Reports it so, then the messages that were
 * sent. Returns true if the input starts with it.
 */
static bool session_busy(LineSession *s) {
        const ClientArgs *a = s->args;
        const char *lf;

        if (s->answered || error_kind_from_reply(s->in, s->in_len) != ERROR_BUSY)
                return false;
        if (s->in_len >= a->expect_len && memcmp(s->in, a->expect, a->expect_len) == 0)
                return false; /* --expect 'ERR busy\n': what was asked for */

        fprintf(stderr, "ackc: server busy: %s answered ERR busy\n", s->sender->target->name);
        if (s->n_pending > 0) {
                /* It is the reply the first message got. */
                lf = memchr(s->in, '\n', s->in_len);
                session_judge(s, lf ? (size_t)(lf - s->in) + 1 : s->in_len);
        }
        if (s->n_pending > 0)
                session_fail_pending(s, ": server busy");
        s->sender->failed = true;
        return true;
}

/* The server closed the connection: judge what is left, and report what went unanswered. */
static void session_eof(LineSession *s) {
        if (s->in_len > 0) {
                /* An incomplete last reply: judge it as it is, once. */
                if (s->n_pending > 0)
                        session_judge(s, s->in_len);
                else
                        session_unexpected(s, s->in_len);
                s->in_len = 0;
        }
        if (s->n_pending > 0)
                session_fail_pending(s, ": connection closed by the server");
        else if (!message_source_exhausted(s->src)) {
                fprintf(stderr, "ackc: connection closed by the server\n");
                s->sender->failed = true;
        }
}

/* Reads what arrived and matches complete replies. Returns 0, or 1 when the server
 * closed the connection (or it failed), after reporting what went unanswered. */
static int session_read(LineSession *s) {
        char x[ESCAPE_BUFFER_SIZE(SHOW_MAX)];
        ssize_t n;
        size_t len;

        n = read(s->fd, s->in + s->in_len, sizeof s->in - s->in_len);
        if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                char why[128];

                (void)snprintf(why, sizeof why, ": %s",
                               errno == ECONNRESET ? "connection reset by the server" : strerror(errno));
                session_fail_pending(s, why);
                return 1;
        }
        if (n == 0) {
                if (!session_busy(s))
                        session_eof(s);
                return 1;
        }
        s->in_len += (size_t)n;
        s->last_progress = now_usec(CLOCK_MONOTONIC);
        if (session_busy(s))
                return 1;

        while ((len = session_reply_length(s)) > 0) {
                if (s->n_pending == 0)
                        session_unexpected(s, len);
                else
                        session_judge(s, len);
                s->answered = true;
                memmove(s->in, s->in + len, s->in_len - len);
                s->in_len -= len;
        }
        if (s->in_len == sizeof s->in) {
                fprintf(stderr, "ackc: reply longer than %zu bytes: \"%s\"\n", sizeof s->in,
                        send_show(x, sizeof x, s->in, s->in_len));
                session_fail_pending(s, ": the reply stream cannot be followed any more");
                return 1;
        }
        fflush(stdout);
        return 0;
}

/* Waits for the socket, standard input or the reply timeout, and handles what came.
 * Returns 0 to go on, 1 when the session is over, or a negative errno. */
static int session_wait(LineSession *s) {
        struct pollfd p[2] = {
                { .fd = s->fd, .events = POLLIN },
                { .fd = session_room(s) ? message_source_fd(s->src) : -1, .events = POLLIN },
        };
        int timeout = -1, r;

        if (s->out_start < s->out_end && !s->write_failed)
                p[0].events |= POLLOUT;
        if (s->n_pending > 0) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), deadline;

                deadline = s->last_progress + s->args->timeout_ms * USEC_PER_MSEC;
                if (now >= deadline) {
                        char why[64];

                        (void)snprintf(why, sizeof why, " within %llums",
                                       (unsigned long long)s->args->timeout_ms);
                        session_fail_pending(s, why);
                        return 1;
                }
                timeout = (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        }

        if (poll(p, 2, timeout) < 0)
                return errno == EINTR ? 0 : sender_error(s->sender, STEP_WAIT, negative_errno());
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && session_read(s) > 0)
                return 1;
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                r = message_source_fill(s->src);
                if (r < 0)
                        return sender_error(s->sender, STEP_INPUT, r);
        }
        return 0;
}

int send_line(Sender *sender) {
        _cleanup_(session_done) LineSession s = {
                .sender = sender,
                .args = sender->args,
                .src = &sender->src,
                .fd = -1,
        };
        size_t addr_index = 0;
        int r;

        s.out_size = 2 * (MESSAGE_LINE_MAX + 1);
        s.out = malloc(s.out_size);
        s.pending = calloc(SEND_WINDOW, sizeof *s.pending);
        if (!s.out || !s.pending)
                return sender_error(sender, STEP_SETUP, -ENOMEM);

        s.fd = target_connect(sender->target, &addr_index, sender->args->timeout_ms, true);
        if (s.fd < 0)
                return sender_error(sender, STEP_CONNECT, s.fd);
        /* First in the output, so that it leaves with the first messages. */
        r = client_proxy_header(sender->args, s.fd, &sender->target->addrs[addr_index], s.out, s.out_size);
        if (r < 0)
                return sender_error(sender, STEP_PROXY, r);
        s.out_end = (size_t)r;

        for (;;) {
                r = session_enqueue(&s);
                if (r < 0)
                        return sender_error(sender, STEP_INPUT, r);
                session_flush(&s);
                if (s.n_pending == 0 && message_source_exhausted(s.src))
                        return 0;
                r = session_wait(&s);
                if (r < 0)
                        return r;
                if (r > 0)
                        return 0; /* over: what went wrong has been reported */
        }
}
