/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "message-source.h"

int message_source_init(MessageSource *s, const Message *list, size_t n, int fd) {
        *s = (MessageSource){ .fd = -1 };
        if (n > 0) {
                s->list = list;
                s->n_list = n;
                return 0;
        }
        s->buf = malloc(MESSAGE_LINE_MAX + 1);
        if (!s->buf)
                return -ENOMEM;
        s->fd = fd;
        return 0;
}

void message_source_done(MessageSource *s) {
        s->buf = mfree(s->buf);
}

int message_source_fill(MessageSource *s) {
        ssize_t n;

        if (s->start > 0) {
                memmove(s->buf, s->buf + s->start, s->end - s->start);
                s->end -= s->start;
                s->start = 0;
        }
        n = read(s->fd, s->buf + s->end, MESSAGE_LINE_MAX + 1 - s->end);
        if (n < 0 && errno == EAGAIN) {
                /* Someone left the descriptor non-blocking: wait rather than spin. */
                struct pollfd p = { .fd = s->fd, .events = POLLIN };

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

int message_source_next(MessageSource *s, Message *ret) {
        const char *lf;
        size_t avail;

        if (s->list) {
                if (s->next >= s->n_list)
                        return 0;
                *ret = s->list[s->next++];
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
        if (avail > MESSAGE_LINE_MAX)
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

int message_source_next_blocking(MessageSource *s, Message *ret) {
        for (;;) {
                int r = message_source_next(s, ret);

                if (r != -EAGAIN)
                        return r;
                r = message_source_fill(s);
                if (r < 0)
                        return r;
        }
}

bool message_source_exhausted(const MessageSource *s) {
        if (s->list)
                return s->next >= s->n_list;
        return s->eof && s->start == s->end;
}

int message_source_fd(const MessageSource *s) {
        return s->list || s->eof ? -1 : s->fd;
}
