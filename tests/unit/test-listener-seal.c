/* SPDX-License-Identifier: MIT */
/*
 * listener_seal() against the running kernel, on loopback: once sealed, a listener
 * lets no new client in, still hands out what it had queued, lets a handshake that
 * TCP_DEFER_ACCEPT holds complete with its first data, and its close then refuses.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener-seal.h"

static Listener tcp_listener(int family, bool defer) {
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        Listener l = { .family = family };
        int one = 1;

        l.fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(l.fd, 0);
        if (family == AF_INET6)
                ck_assert_int_eq(bind(l.fd, (struct sockaddr *)&in6, sizeof in6), 0);
        else
                ck_assert_int_eq(bind(l.fd, (struct sockaddr *)&in, sizeof in), 0);
        ck_assert_int_eq(listen(l.fd, 16), 0);
        if (defer)
                ck_assert_int_eq(setsockopt(l.fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one), 0);
        return l;
}

/* A client of l; connect() completed unless nonblocking. */
static int client(const Listener *l, bool nonblocking) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd, r;

        ck_assert_int_eq(getsockname(l->fd, (struct sockaddr *)&ss, &len), 0);
        fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
        ck_assert_int_ge(fd, 0);
        r = connect(fd, (struct sockaddr *)&ss, len);
        ck_assert_msg(r == 0 || (nonblocking && errno == EINPROGRESS), "connect: %s", strerror(errno));
        return fd;
}

/* Accepts what l holds, until EAGAIN, answering each with its message back. */
static unsigned take_all(const Listener *l) {
        unsigned n = 0;
        char buf[64];
        int fd;

        for (;;) {
                struct pollfd p;

                fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        break;
                p = (struct pollfd){ .fd = fd, .events = POLLIN };
                ck_assert_int_eq(poll(&p, 1, 2000), 1);
                ssize_t k = read(fd, buf, sizeof buf);
                ck_assert_int_gt(k, 0);
                ck_assert_int_eq(write(fd, buf, (size_t)k), k);
                close(fd);
                n++;
        }
        ck_assert_int_eq(errno, EAGAIN);
        return n;
}

static void assert_echo(int fd, const char *msg) {
        char buf[64] = "";

        ck_assert_int_gt(read(fd, buf, sizeof buf - 1), 0);
        ck_assert_str_eq(buf, msg);
}

/* What a nonblocking connect() came to within ms: 0 connected, -1 still pending, else its error. */
static int connect_outcome(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        socklen_t len = sizeof(int);
        int error = 0;

        if (poll(&p, 1, ms) == 0)
                return -1;
        ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len), 0);
        return error;
}

static void check_tcp(int family, bool defer) {
        Listener l = tcp_listener(family, defer);
        int queued = client(&l, false), quiet = client(&l, false), late;

        ck_assert_int_eq(write(queued, "queued", 6), 6);
        usleep(50 * 1000);
        ck_assert_int_eq(listener_seal(&l), 0);

        /* Connected before the seal; its first data (all TCP_DEFER_ACCEPT waits for) after. */
        ck_assert_int_eq(write(quiet, "quiet", 5), 5);
        late = client(&l, true);
        usleep(50 * 1000);
        ck_assert_uint_eq(take_all(&l), 2);
        assert_echo(queued, "queued");
        assert_echo(quiet, "quiet");
        /* Its SYN was dropped: no answer yet (the retransmission is about 1 s away). */
        ck_assert_int_eq(connect_outcome(late, 300), -1);
        close(l.fd);
        ck_assert_int_eq(connect_outcome(late, 3000), ECONNREFUSED);
        close(queued);
        close(quiet);
        close(late);
}

START_TEST(test_tcp_ipv4) {
        check_tcp(AF_INET, false);
}
END_TEST

START_TEST(test_tcp_ipv4_defer_accept) {
        check_tcp(AF_INET, true);
}
END_TEST

/* IPv6 (the same filter, in tcp_v6_rcv) is test_backlog.py's, which can skip without ::1. */

START_TEST(test_unix_refuses_at_once_and_keeps_the_queue) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        Listener l = { .family = AF_UNIX };
        socklen_t len;
        int queued, late;

        /* Abstract: nothing to clean up. */
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                          (size_t)snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "ackd-seal-%d",
                                           getpid()));
        l.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(bind(l.fd, (struct sockaddr *)&sun, len), 0);
        ck_assert_int_eq(listen(l.fd, 16), 0);
        queued = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(queued, (struct sockaddr *)&sun, len), 0);
        ck_assert_int_eq(write(queued, "queued", 6), 6);

        ck_assert_int_eq(listener_seal(&l), 0);
        late = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(late, (struct sockaddr *)&sun, len), -1);
        ck_assert_int_eq(errno, ECONNREFUSED);
        ck_assert_uint_eq(take_all(&l), 1);
        assert_echo(queued, "queued");
        close(l.fd);
        close(queued);
        close(late);
}
END_TEST

START_TEST(test_sockets_from_systemd_are_left_alone) {
        Listener l = tcp_listener(AF_INET, false);

        l.activated = true;
        ck_assert_int_eq(listener_seal(&l), -EBADF);
        close(l.fd);
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("listener-seal");
        TCase *tc = tcase_create("kernel");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_tcp_ipv4);
        tcase_add_test(tc, test_tcp_ipv4_defer_accept);
        tcase_add_test(tc, test_unix_refuses_at_once_and_keeps_the_queue);
        tcase_add_test(tc, test_sockets_from_systemd_are_left_alone);
        suite_add_tcase(s, tc);
        return s;
}
