/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "target.h"
#include "time-util.h"

int target_resolve(const ClientArgs *a, Target *ret, char *err, size_t err_size) {
        const struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                /* No AI_ADDRCONFIG: it hides ::1 and even 127.0.0.1 on hosts whose only
                 * interface is loopback, the very place a local check runs. */
                .ai_flags = AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        char port[8];
        int r;

        *ret = (Target){ 0 };

        if (a->unix_path) {
                struct sockaddr_un *sun = (struct sockaddr_un *)&ret->addrs[0].addr;

                if (sockaddr_un_set(sun, a->unix_path, &ret->addrs[0].len) < 0)
                        return -EINVAL; /* checked by args_parse() */
                ret->n = 1;
                (void)snprintf(ret->name, sizeof ret->name, "unix:%s", a->unix_path);
                return 0;
        }

        (void)snprintf(ret->name, sizeof ret->name, "%s port %u", a->host, a->port);
        (void)snprintf(port, sizeof port, "%u", a->port);
        r = getaddrinfo(a->host, port, &hints, &res);
        if (r != 0) {
                (void)snprintf(err, err_size, "cannot resolve '%s': %s", a->host,
                               r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return -EADDRNOTAVAIL;
        }
        for (struct addrinfo *ai = res; ai && ret->n < TARGET_ADDRESSES_MAX; ai = ai->ai_next) {
                if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                    ai->ai_addrlen > sizeof ret->addrs[0].addr)
                        continue;
                memcpy(&ret->addrs[ret->n].addr, ai->ai_addr, ai->ai_addrlen);
                ret->addrs[ret->n].len = ai->ai_addrlen;
                ret->n++;
        }
        freeaddrinfo(res);
        if (ret->n == 0) {
                (void)snprintf(err, err_size, "cannot resolve '%s': no IPv4 or IPv6 address", a->host);
                return -EADDRNOTAVAIL;
        }
        return 0;
}

const char *target_address_format(const Target *t, size_t i, char *buf, size_t size) {
        return sockaddr_format((const struct sockaddr *)&t->addrs[i].addr, t->addrs[i].len, buf, size);
}

int client_socket(int family, const Source *src, bool nodelay) {
        const int one = 1;
        int fd;

        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();

        if (src) {
                /* Without IP_BIND_ADDRESS_NO_PORT, bind() picks a port for the source
                 * address alone and one address runs out after ~28000 connections; with
                 * it, connect() picks per destination. */
                (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                if (bind(fd, (const struct sockaddr *)&src->addr, src->len) < 0) {
                        int r = negative_errno();

                        safe_close(fd);
                        return r;
                }
        }

        /* Pipelined messages must not wait for Nagle behind the server's delayed ACKs. */
        if (nodelay && family != AF_UNIX)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
}

int client_connect_start(int fd, const Source *to) {
        if (connect(fd, (const struct sockaddr *)&to->addr, to->len) == 0)
                return 0;
        return negative_errno();
}

int socket_pending_error(int fd) {
        socklen_t len = sizeof(int);
        int e = 0;

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                return negative_errno();
        return -e;
}

static int connect_one(const Source *to, uint64_t timeout_ms, bool nodelay) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_ms * USEC_PER_MSEC;
        _cleanup_(closep) int fd = -1;
        int r;

        fd = client_socket(to->addr.ss_family, NULL, nodelay);
        if (fd < 0)
                return fd;

        r = client_connect_start(fd, to);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                int k;

                if (r != -EINPROGRESS && r != -EAGAIN)
                        break;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (r == -EAGAIN) {
                        /* A unix socket's backlog is full: nothing to wait on but time. */
                        (void)poll(NULL, 0, 10);
                        r = client_connect_start(fd, to);
                        continue;
                }
                k = poll(&p, 1, (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (k > 0)
                        r = socket_pending_error(fd);
        }
        if (r < 0)
                return r;
        return take_fd(&fd);
}

int target_connect(const Target *t, size_t *index, uint64_t timeout_ms, bool nodelay) {
        int r = -EADDRNOTAVAIL;

        for (size_t k = 0; k < t->n; k++) {
                size_t i = (*index + k) % t->n;

                r = connect_one(&t->addrs[i], timeout_ms, nodelay);
                if (r >= 0) {
                        *index = i;
                        return r;
                }
        }
        return r;
}

const char *target_connect_strerror(int error) {
        return error == -ETIMEDOUT ? "connection timed out" : STRERROR(error);
}
