/* SPDX-License-Identifier: MIT */
/*
 * The send command, its replies, and oneshot mode: a connection per message.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "proxy-header.h"
#include "send-internal.h"
#include "send.h"
#include "time-util.h"

/* --- replies --------------------------------------------------------------------------------- */

const char *send_show(char *buf, size_t size, const void *data, size_t len) {
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

bool send_check_reply(const ClientArgs *a, const char *msg, size_t msg_len, const char *reply, size_t len) {
        char m[ESCAPE_BUFFER_SIZE(SHOW_MAX)], x[ESCAPE_BUFFER_SIZE(SHOW_MAX)],
                e[ESCAPE_BUFFER_SIZE(SHOW_MAX)];

        if (len == a->expect_len && memcmp(reply, a->expect, len) == 0) {
                print_reply(a, reply, len);
                return true;
        }

        send_show(m, sizeof m, msg, msg_len);
        if (len >= 4 && memcmp(reply, "ERR ", 4) == 0) {
                /* The server's own words, without the newline. */
                size_t n = len;

                while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == '\r'))
                        n--;
                fprintf(stderr, "ackc: reply to \"%s\": %s\n", m, send_show(x, sizeof x, reply, n));
        } else if (len == 0)
                fprintf(stderr, "ackc: no reply to \"%s\": connection closed by the server\n", m);
        else
                fprintf(stderr, "ackc: reply to \"%s\": \"%s\", expected \"%s\"\n", m,
                        send_show(x, sizeof x, reply, len),
                        send_show(e, sizeof e, a->expect, a->expect_len));
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

/* Writes the iovecs whole, waiting for room as needed; iov is consumed. */
static int write_all(int fd, struct iovec *iov, int n_iov, uint64_t deadline) {
        while (n_iov > 0) {
                ssize_t n = writev(fd, iov, n_iov);
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
                for (; n_iov > 0 && (size_t)n >= iov->iov_len; iov++, n_iov--)
                        n -= (ssize_t)iov->iov_len;
                if (n_iov > 0) {
                        iov->iov_base = (char *)iov->iov_base + n;
                        iov->iov_len -= (size_t)n;
                }
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

/* Judges what one oneshot exchange got: the reply (len bytes), how reading it ended (r),
 * and how writing the message ended (w). Returns true if it is the expected reply. */
static bool oneshot_judge(const ClientArgs *a, const Message *m, const char *reply, size_t len, int r,
                          int w) {
        char shown[ESCAPE_BUFFER_SIZE(SHOW_MAX)];

        send_show(shown, sizeof shown, m->data, m->len);
        if (r == -ETIMEDOUT && len == 0) {
                fprintf(stderr, "ackc: no reply to \"%s\" within %llums\n", shown,
                        (unsigned long long)a->timeout_ms);
                return false;
        }
        if (r == -ETIMEDOUT && len == a->expect_len && memcmp(reply, a->expect, len) == 0) {
                fprintf(stderr,
                        "ackc: reply to \"%s\" arrived, but the server did not close the connection "
                        "within %llums\n",
                        shown, (unsigned long long)a->timeout_ms);
                return false;
        }
        if (r == -EMSGSIZE) {
                fprintf(stderr, "ackc: reply to \"%s\" is longer than %d bytes\n", shown, SEND_REPLY_MAX);
                return false;
        }
        if (r < 0 && len == 0) {
                fprintf(stderr, "ackc: no reply to \"%s\": %s\n", shown, STRERROR(w < 0 ? w : r));
                return false;
        }
        return send_check_reply(a, m->data, m->len, reply, len);
}

/* One message on its own connection. Returns 0 (a wrong reply only sets s->failed), or
 * the error of the connect. */
static int send_oneshot_one(Sender *s, size_t *addr_index, const Message *m) {
        const ClientArgs *a = s->args;
        char reply[SEND_REPLY_MAX + 1], header[CLIENT_PROXY_HEADER_MAX];
        _cleanup_(closep) int fd = -1;
        struct iovec iov[2];
        uint64_t deadline;
        size_t len = 0;
        int r, w;

        if (m->len == 0) {
                fprintf(stderr, "ackc: an empty message cannot be sent in oneshot mode\n");
                s->failed = true;
                return 0;
        }

        fd = target_connect(s->target, addr_index, a->timeout_ms, false);
        if (fd < 0)
                return sender_error(s, STEP_CONNECT, fd);
        /* The header and the message in one segment: ackd answers both in one wakeup. */
        r = client_proxy_header(a, fd, &s->target->addrs[*addr_index], header, sizeof header);
        if (r < 0)
                return sender_error(s, STEP_PROXY, r);
        iov[0] = (struct iovec){ .iov_base = header, .iov_len = (size_t)r };
        iov[1] = (struct iovec){ .iov_base = (void *)m->data, .iov_len = m->len };

        deadline = now_usec(CLOCK_MONOTONIC) + a->timeout_ms * USEC_PER_MSEC;
        /* If the write fails (the server said ERR busy and closed, say), the reply may
         * still be waiting: read it before judging. */
        w = write_all(fd, iov, 2, deadline);
        r = read_until_eof(fd, reply, &len, deadline);
        if (!oneshot_judge(a, m, reply, len, r, w))
                s->failed = true;
        return 0;
}

static int send_oneshot(Sender *s) {
        size_t addr_index = 0;

        for (;;) {
                Message m;
                int r;

                r = message_source_next_blocking(&s->src, &m);
                if (r < 0)
                        return sender_error(s, STEP_INPUT, r);
                if (r == 0)
                        return 0;
                r = send_oneshot_one(s, &addr_index, &m);
                fflush(stdout);
                if (r < 0)
                        return r; /* the next messages would fail the same way */
        }
}

/* --- the command ------------------------------------------------------------------------------- */

/* The one place that reports an error that stopped the command, and picks the exit status. */
static int send_failure(const Sender *s, int r) {
        switch (s->step) {
        case STEP_INPUT:
                if (r == -E2BIG)
                        fprintf(stderr, "ackc: line %llu of standard input is longer than %d bytes\n",
                                (unsigned long long)s->src.lineno + 1, MESSAGE_LINE_MAX);
                else
                        fprintf(stderr, "ackc: cannot read standard input: %s\n", STRERROR(r));
                return EXIT_USAGE;
        case STEP_CONNECT:
                fprintf(stderr, "ackc: cannot connect to %s: %s\n", s->target->name,
                        target_connect_strerror(r));
                return EXIT_CONNECT;
        case STEP_WAIT:
                fprintf(stderr, "ackc: poll() failed: %s\n", STRERROR(r));
                return EXIT_FAILURE;
        case STEP_PROXY:
                fprintf(stderr, "ackc: cannot build the PROXY header for %s: %s\n", s->target->name,
                        STRERROR(r));
                return EXIT_FAILURE;
        case STEP_SETUP:
                break;
        }
        fprintf(stderr, "ackc: %s\n", r == -ENOMEM ? "out of memory" : STRERROR(r));
        return EXIT_FAILURE;
}

int send_run(const ClientArgs *a) {
        char err[ARGS_ERROR_MAX];
        Target t;
        Sender s = { .args = a, .target = &t };
        int r;

        r = target_resolve(a, &t, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "ackc: %s\n", err);
                return EXIT_CONNECT;
        }

        r = message_source_init(&s.src, a->messages, a->n_messages, STDIN_FILENO);
        if (r < 0)
                r = sender_error(&s, STEP_SETUP, r);
        else if (a->mode == PROTOCOL_LINE)
                r = send_line(&s);
        else
                r = send_oneshot(&s);
        message_source_done(&s.src);

        if (r < 0)
                return send_failure(&s, r);
        return s.failed ? EXIT_REPLY : EXIT_SUCCESS;
}
