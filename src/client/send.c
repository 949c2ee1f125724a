/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "macro.h"
#include "send.h"
#include "target.h"
#include "time-util.h"

/* Bytes of a message or reply shown in an error line. */
#define SHOW_MAX 64

/* --- where messages come from: the arguments, or standard input line by line ------------------- */

typedef struct MessageSource {
        const ClientArgs *args;
        size_t next;                    /* next argument message */
        bool from_stdin;
        char *buf;                      /* stdin bytes not yet returned as messages */
        size_t start, end;
        bool eof;
        uint64_t lineno;
} MessageSource;

static int source_init(MessageSource *s, const ClientArgs *a) {
        *s = (MessageSource){ .args = a, .from_stdin = a->n_messages == 0 };
        if (s->from_stdin) {
                s->buf = malloc(SEND_LINE_MAX + 1);
                if (!s->buf)
                        return -ENOMEM;
        }
        return 0;
}

static void source_done(MessageSource *s) {
        free(s->buf);
        s->buf = NULL;
}

/* One read() from standard input. Blocks unless poll() said it is readable. */
static int source_fill(MessageSource *s) {
        ssize_t n;

        if (s->start > 0) {
                memmove(s->buf, s->buf + s->start, s->end - s->start);
                s->end -= s->start;
                s->start = 0;
        }
        n = read(STDIN_FILENO, s->buf + s->end, SEND_LINE_MAX + 1 - s->end);
        if (n < 0 && errno == EAGAIN) {
                /* Someone left our standard input non-blocking: wait rather than spin. */
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };

                (void)poll(&p, 1, -1);
                return 0;
        }
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                s->eof = true;
        s->end += (size_t)n;
        return 0;
}

/*
 * The next message: returns 1 with *ret (valid until the next call), 0 when there are
 * no more, -EAGAIN when standard input has no complete line buffered yet, -E2BIG for a
 * line longer than SEND_LINE_MAX.
 */
static int source_next(MessageSource *s, Message *ret) {
        const char *lf;
        size_t avail;

        if (!s->from_stdin) {
                if (s->next >= s->args->n_messages)
                        return 0;
                *ret = s->args->messages[s->next++];
                return 1;
        }

        avail = s->end - s->start;
        lf = memchr(s->buf + s->start, '\n', avail);
        if (lf) {
                *ret = (Message){ .data = s->buf + s->start, .len = (size_t)(lf - (s->buf + s->start)) };
                s->start += ret->len + 1;
                s->lineno++;
                return 1;
        }
        if (avail > SEND_LINE_MAX)
                return -E2BIG;
        if (!s->eof)
                return -EAGAIN;
        if (avail == 0)
                return 0;
        /* A last line without a newline is still a message. */
        *ret = (Message){ .data = s->buf + s->start, .len = avail };
        s->start = s->end;
        s->lineno++;
        return 1;
}

static bool source_exhausted(const MessageSource *s) {
        if (!s->from_stdin)
                return s->next >= s->args->n_messages;
        return s->eof && s->start == s->end;
}

/* Blocking: the next message, reading standard input as needed. */
static int source_next_blocking(MessageSource *s, Message *ret) {
        for (;;) {
                int r = source_next(s, ret);

                if (r != -EAGAIN)
                        return r;
                r = source_fill(s);
                if (r < 0)
                        return r;
        }
}

static int source_error(const MessageSource *s, int r) {
        if (r == -E2BIG)
                fprintf(stderr, "ackc: line %llu of standard input is longer than %d bytes\n",
                        (unsigned long long)s->lineno + 1, SEND_LINE_MAX);
        else
                fprintf(stderr, "ackc: cannot read standard input: %s\n", STRERROR(r));
        return EXIT_USAGE;
}

static int out_of_memory(void) {
        fprintf(stderr, "ackc: out of memory\n");
        return EXIT_FAILURE;
}

/* --- replies --------------------------------------------------------------------------------- */

static const char *show(char *buf, size_t size, const void *data, size_t len) {
        (void)escape_bytes(buf, size, data, len, SHOW_MAX);
        return buf;
}

static void print_reply(const ClientArgs *a, const char *data, size_t len) {
        if (a->quiet)
                return;
        fwrite(data, 1, len, stdout);
        if (len == 0 || data[len - 1] != '\n')
                fputc('\n', stdout);
}

/* Checks one reply against --expect. Returns true if it is the expected one. */
static bool check_reply(const ClientArgs *a, const char *msg, size_t msg_len, const char *reply, size_t len) {
        char m[ESCAPE_BUFFER_SIZE(SHOW_MAX)], x[ESCAPE_BUFFER_SIZE(SHOW_MAX)], e[ESCAPE_BUFFER_SIZE(SHOW_MAX)];

        if (len == a->expect_len && memcmp(reply, a->expect, len) == 0) {
                print_reply(a, reply, len);
                return true;
        }

        show(m, sizeof m, msg, msg_len);
        if (len >= 4 && memcmp(reply, "ERR ", 4) == 0) {
                /* The server's own words, without the newline. */
                size_t n = len;

                while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == '\r'))
                        n--;
                fprintf(stderr, "ackc: reply to \"%s\": %s\n", m, show(x, sizeof x, reply, n));
        } else if (len == 0)
                fprintf(stderr, "ackc: no reply to \"%s\": connection closed by the server\n", m);
        else
                fprintf(stderr, "ackc: reply to \"%s\": \"%s\", expected \"%s\"\n", m, show(x, sizeof x, reply, len),
                        show(e, sizeof e, a->expect, a->expect_len));
        return false;
}

static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                k = poll(&p, 1, (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (k > 0)
                        return 0;
        }
}

/* --- oneshot ------------------------------------------------------------------------------------ */

static int write_all(int fd, const char *data, size_t len, uint64_t deadline) {
        while (len > 0) {
                ssize_t n = write(fd, data, len);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return negative_errno();
                        r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Reads until the server closes. Returns the bytes kept (at most SEND_REPLY_MAX, more is
 * reported as -EMSGSIZE), or a negative errno with *ret_len what arrived before it. */
static int read_until_eof(int fd, char *buf, size_t *ret_len, uint64_t deadline) {
        size_t len = 0;

        for (;;) {
                ssize_t n = read(fd, buf + len, SEND_REPLY_MAX + 1 - len);
                int r;

                if (n > 0) {
                        len += (size_t)n;
                        *ret_len = MIN(len, (size_t)SEND_REPLY_MAX);
                        if (len > SEND_REPLY_MAX)
                                return -EMSGSIZE;
                        continue;
                }
                *ret_len = len;
                if (n == 0)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return negative_errno();
                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

/* One message on its own connection. Returns 0, EXIT_REPLY or EXIT_CONNECT. */
static int send_oneshot_one(const ClientArgs *a, const Target *t, size_t *addr_index, const Message *m) {
        char reply[SEND_REPLY_MAX + 1], shown[ESCAPE_BUFFER_SIZE(SHOW_MAX)];
        _cleanup_(closep) int fd = -1;
        uint64_t deadline;
        size_t len = 0;
        int r, w;

        if (m->len == 0) {
                fprintf(stderr, "ackc: an empty message cannot be sent in oneshot mode\n");
                return EXIT_REPLY;
        }

        fd = target_connect(t, addr_index, a->timeout_ms, false);
        if (fd < 0) {
                fprintf(stderr, "ackc: cannot connect to %s: %s\n", t->name,
                        fd == -ETIMEDOUT ? "connection timed out" : STRERROR(fd));
                return EXIT_CONNECT;
        }

        deadline = now_usec(CLOCK_MONOTONIC) + a->timeout_ms * USEC_PER_MSEC;
        /* If the write fails (the server said ERR busy and closed, say), the reply may
         * still be waiting: read it before judging. */
        w = write_all(fd, m->data, m->len, deadline);
        r = read_until_eof(fd, reply, &len, deadline);

        show(shown, sizeof shown, m->data, m->len);
        if (r == -ETIMEDOUT && len == 0) {
                fprintf(stderr, "ackc: no reply to \"%s\" within %llums\n", shown, (unsigned long long)a->timeout_ms);
                return EXIT_REPLY;
        }
        if (r == -ETIMEDOUT && len == a->expect_len && memcmp(reply, a->expect, len) == 0) {
                fprintf(stderr, "ackc: reply to \"%s\" arrived, but the server did not close the connection "
                        "within %llums\n", shown, (unsigned long long)a->timeout_ms);
                return EXIT_REPLY;
        }
        if (r == -EMSGSIZE) {
                fprintf(stderr, "ackc: reply to \"%s\" is longer than %d bytes\n", shown, SEND_REPLY_MAX);
                return EXIT_REPLY;
        }
        if (r < 0 && len == 0) {
                fprintf(stderr, "ackc: no reply to \"%s\": %s\n", shown, STRERROR(w < 0 ? w : r));
                return EXIT_REPLY;
        }
        return check_reply(a, m->data, m->len, reply, len) ? 0 : EXIT_REPLY;
}

static int send_oneshot(const ClientArgs *a, const Target *t) {
        _cleanup_(source_done) MessageSource src;
        size_t addr_index = 0;
        int status = 0, r;

        r = source_init(&src, a);
        if (r < 0)
                return out_of_memory();

        for (;;) {
                Message m;

                r = source_next_blocking(&src, &m);
                if (r < 0)
                        return source_error(&src, r);
                if (r == 0)
                        return status;
                r = send_oneshot_one(a, t, &addr_index, &m);
                fflush(stdout);
                if (r == EXIT_CONNECT)
                        return r;       /* the next messages would fail the same way */
                if (r != 0)
                        status = r;
        }
}

/* --- line --------------------------------------------------------------------------------------- */

/* What is remembered of a message awaiting its reply: enough to name it in an error. */
typedef struct Pending {
        char head[SHOW_MAX + 1];        /* one more than shown, so escape_bytes() adds "..." */
        size_t len;
} Pending;

typedef struct LineSession {
        const ClientArgs *args;
        int fd;
        MessageSource src;

        char *out;                      /* bytes to write: messages plus newlines */
        size_t out_start, out_end, out_size;
        bool write_failed;

        char in[SEND_REPLY_MAX];        /* reply bytes not yet matched */
        size_t in_len;

        Pending *pending;               /* ring of SEND_WINDOW */
        size_t head, n_pending;
        uint64_t last_progress;         /* µs: last reply, or when the ring stopped being empty */
        int status;
} LineSession;

static void session_done(LineSession *s) {
        source_done(&s->src);
        free(s->out);
        free(s->pending);
        s->fd = safe_close(s->fd);
}

static bool session_room(const LineSession *s) {
        /* Room for the longest possible message and its newline, once compacted. */
        return s->n_pending < SEND_WINDOW && s->out_size - (s->out_end - s->out_start) >= SEND_LINE_MAX + 1;
}

/* Moves messages from the source to the output buffer while there is room. */
static int session_enqueue(LineSession *s) {
        while (session_room(s)) {
                Pending *p;
                Message m;
                int r;

                r = source_next(&s->src, &m);
                if (r == 0 || r == -EAGAIN)
                        return 0;
                if (r < 0)
                        return r;
                if (m.len > SEND_LINE_MAX)
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
                fprintf(stderr, "ackc: no reply to \"%s\"%s\n", show(m, sizeof m, p->head, MIN(p->len, sizeof p->head)),
                        why);
        }
        s->status = EXIT_REPLY;
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
                if (s->in_len > 0 && s->n_pending > 0) {
                        /* An incomplete last reply: judge it as it is. */
                        const Pending *p = &s->pending[s->head];

                        if (!check_reply(s->args, p->head, MIN(p->len, sizeof p->head), s->in, s->in_len))
                                s->status = EXIT_REPLY;
                        s->head = (s->head + 1) % SEND_WINDOW;
                        s->n_pending--;
                }
                if (s->in_len > 0 && s->n_pending == 0) {
                        fprintf(stderr, "ackc: unexpected reply \"%s\" with no message awaiting one\n",
                                show(x, sizeof x, s->in, s->in_len));
                        s->status = EXIT_REPLY;
                }
                if (s->n_pending > 0)
                        session_fail_pending(s, ": connection closed by the server");
                else if (!source_exhausted(&s->src)) {
                        fprintf(stderr, "ackc: connection closed by the server\n");
                        s->status = EXIT_REPLY;
                }
                return 1;
        }
        s->in_len += (size_t)n;
        s->last_progress = now_usec(CLOCK_MONOTONIC);

        while ((len = session_reply_length(s)) > 0) {
                if (s->n_pending == 0) {
                        fprintf(stderr, "ackc: unexpected reply \"%s\" with no message awaiting one\n",
                                show(x, sizeof x, s->in, len));
                        s->status = EXIT_REPLY;
                } else {
                        const Pending *p = &s->pending[s->head];

                        if (!check_reply(s->args, p->head, MIN(p->len, sizeof p->head), s->in, len))
                                s->status = EXIT_REPLY;
                        s->head = (s->head + 1) % SEND_WINDOW;
                        s->n_pending--;
                }
                memmove(s->in, s->in + len, s->in_len - len);
                s->in_len -= len;
        }
        if (s->in_len == sizeof s->in) {
                fprintf(stderr, "ackc: reply longer than %zu bytes: \"%s\"\n", sizeof s->in,
                        show(x, sizeof x, s->in, s->in_len));
                session_fail_pending(s, ": the reply stream cannot be followed any more");
                return 1;
        }
        fflush(stdout);
        return 0;
}

static int send_line(const ClientArgs *a, const Target *t) {
        _cleanup_(session_done) LineSession s = { .args = a, .fd = -1 };
        size_t addr_index = 0;
        int r;

        r = source_init(&s.src, a);
        if (r < 0)
                return out_of_memory();
        s.out_size = 2 * (SEND_LINE_MAX + 1);
        s.out = malloc(s.out_size);
        s.pending = calloc(SEND_WINDOW, sizeof *s.pending);
        if (!s.out || !s.pending)
                return out_of_memory();

        s.fd = target_connect(t, &addr_index, a->timeout_ms, true);
        if (s.fd < 0) {
                fprintf(stderr, "ackc: cannot connect to %s: %s\n", t->name,
                        s.fd == -ETIMEDOUT ? "connection timed out" : STRERROR(s.fd));
                return EXIT_CONNECT;
        }

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = s.fd, .events = POLLIN },
                        { .fd = -1, .events = POLLIN },
                };
                int timeout = -1, k;

                r = session_enqueue(&s);
                if (r < 0)
                        return source_error(&s.src, r);
                session_flush(&s);

                if (s.n_pending == 0 && source_exhausted(&s.src))
                        return s.status;

                if (s.out_start < s.out_end && !s.write_failed)
                        p[0].events |= POLLOUT;
                if (s.src.from_stdin && !s.src.eof && session_room(&s))
                        p[1].fd = STDIN_FILENO;
                if (s.n_pending > 0) {
                        uint64_t now = now_usec(CLOCK_MONOTONIC), deadline;

                        deadline = s.last_progress + a->timeout_ms * USEC_PER_MSEC;
                        if (now >= deadline) {
                                char why[64];

                                (void)snprintf(why, sizeof why, " within %llums",
                                               (unsigned long long)a->timeout_ms);
                                session_fail_pending(&s, why);
                                return s.status;
                        }
                        timeout = (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }

                k = poll(p, 2, timeout);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "ackc: poll() failed: %s\n", STRERROR(errno));
                        return EXIT_FAILURE;
                }
                if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && session_read(&s) > 0)
                        return s.status;
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = source_fill(&s.src);
                        if (r < 0)
                                return source_error(&s.src, r);
                }
        }
}

int send_run(const ClientArgs *a) {
        char err[ARGS_ERROR_MAX];
        Target t;
        int r;

        r = target_resolve(a, &t, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "ackc: %s\n", err);
                return EXIT_CONNECT;
        }
        return a->mode == PROTOCOL_LINE ? send_line(a, &t) : send_oneshot(a, &t);
}
