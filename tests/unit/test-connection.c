/* SPDX-License-Identifier: MIT */
/*
 * The connection state machine, driven through its context over real sockets:
 * socketpairs (and loopback TCP where TCP matters) with small send buffers, so
 * that writes come back short or with EAGAIN. The test owns the context the
 * way a worker does: it sets the clock, feeds the epoll events it collects to
 * connection_dispatch() and fires the timers. After every step it checks that
 * the connection's timer sits in the one queue its state calls for.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection-internal.h"
#include "proxy-protocol.h"
#include "macro.h"
#include "settings.h"
#include "time-util.h"

#define ACK_LINE     "ACK!\n"
#define SMALL_SNDBUF 4096 /* the kernel doubles it; either way a few KB */

typedef struct Fixture {
        ConnectionContext ctx;
        Admission admission;
        ConnectionLogLimits log_limits;
        Listener listener;
        Settings settings;
        int epoll_fd;
} Fixture;

static Fixture f;

/* The settings every case starts from, which a case may change before fixture_start(). */
static void fixture_settings(ProtocolMode mode, int family, uint64_t max_message) {
        f = (Fixture){ .log_limits = { .busy = RATELIMIT_INIT(USEC_PER_SEC),
                                       .proxy = RATELIMIT_INIT(USEC_PER_SEC) } };
        settings_init(&f.settings);
        f.settings.max_message = max_message;
        f.settings.idle_timeout_ms = 10000;
        f.listener = (Listener){ .fd = -1, .mode = mode, .family = family };
}

static void fixture_start(uint64_t max_connections) {
        admission_set_limits(&f.admission,
                             &(AdmissionLimits){ .max_connections = max_connections, .max_rejecting = 1 });
        f.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(f.epoll_fd, 0);
        ck_assert_int_eq(connection_context_init(&f.ctx, f.epoll_fd, 1, &f.admission, &f.log_limits), 0);
        f.ctx.now = 1000;
        ck_assert_int_eq(connection_context_use(&f.ctx, profile_new(&f.settings, 0)), 0);
}

static void fixture_setup(ProtocolMode mode, int family, uint64_t max_message, uint64_t max_connections) {
        fixture_settings(mode, family, max_message);
        fixture_start(max_connections);
}

static void fixture_teardown(void) {
        connection_context_done(&f.ctx);
        ck_assert_uint_eq(admission_active(&f.admission), 0);
        ck_assert_uint_eq(atomic_load(&f.admission.rejecting), 0);
        close(f.epoll_fd);
}

static int fcntl_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        return flags < 0 ? -errno : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void set_sndbuf(int fd, int sndbuf) {
        if (sndbuf > 0)
                ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
}

/* A unix socketpair: *client for the test, *server (non-blocking) for the connection. */
static void unix_pair(int *client, int *server, int server_sndbuf) {
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(fcntl_nonblock(sv[1]), 0);
        set_sndbuf(sv[1], server_sndbuf);
        *client = sv[0];
        *server = sv[1];
}

/* A loopback TCP connection: resets and TCP_INFO are TCP's. */
static void tcp_pair(int *client, int *server) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(l, 0);
        ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0);
        ck_assert_int_eq(listen(l, 1), 0);
        ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
        *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(*client, (struct sockaddr *)&a, sizeof a), 0);
        *server = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ck_assert_int_ge(*server, 0);
        close(l);
}

static bool queue_holds(const TimerQueue *q, const TimerEntry *entry) {
        for (TimerEntry *e = timer_queue_first(q); e; e = timer_queue_next(q, e))
                if (e == entry)
                        return true;
        return false;
}

/* The timer is armed in exactly the queue the state calls for. */
static void assert_timer_queue(const Connection *c) {
        const TimerQueue *queues[] = { &f.ctx.linger, &c->profile->proxy, &c->profile->idle };
        const char *const names[] = { "linger", "proxy", "idle" };
        size_t want = c->state == CONNECTION_LINGER ? 0 : c->state == CONNECTION_HEADER ? 1 : 2;

        ck_assert(timer_entry_armed(&c->timer));
        for (size_t i = 0; i < ELEMENTSOF(queues); i++)
                ck_assert_msg(queue_holds(queues[i], &c->timer) == (i == want), "timer %s the %s queue",
                              i == want ? "not in" : "also in", names[i]);
}

static bool alive(const Connection *c) {
        return c->kind == SOURCE_CONNECTION;
}

/* Dispatches epoll events until there are none left (bounded). Returns the dispatch
 * count; checks the timer queue of c after each. */
static unsigned pump(Connection *c) {
        struct epoll_event ev[16];
        unsigned total = 0;
        int n;

        for (unsigned round = 0; round < 10000; round++) {
                n = epoll_wait(f.epoll_fd, ev, ELEMENTSOF(ev), 0);
                ck_assert_int_ge(n, 0);
                if (n == 0)
                        return total;
                for (int i = 0; i < n; i++) {
                        connection_dispatch(&f.ctx, ev[i].data.ptr, ev[i].events);
                        total++;
                }
                if (c && alive(c))
                        assert_timer_queue(c);
        }
        ck_abort_msg("epoll keeps reporting events: a busy loop");
        return total;
}

static Connection *accept_one(int server) {
        struct sockaddr_storage ss = { .ss_family = AF_UNIX };
        socklen_t len = sizeof ss;
        Connection *c;

        if (getpeername(server, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family == AF_UNIX)
                len = sizeof(sa_family_t);
        c = connection_accept(&f.ctx, &f.listener, server, (struct sockaddr *)&ss, len);

        if (c)
                assert_timer_queue(c);
        return c;
}

static void send_all(int fd, const void *data, size_t len) {
        ck_assert_int_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads what is there now (non-blocking). */
static size_t read_now(int fd, char *buf, size_t size) {
        size_t got = 0;
        ssize_t n;

        while (got < size && (n = recv(fd, buf + got, size - got, MSG_DONTWAIT)) > 0)
                got += (size_t)n;
        return got;
}

/* Reads until EOF, pumping the connection while the socket is empty. */
static size_t read_to_eof(int fd, Connection *c, char *buf, size_t size) {
        size_t got = 0;

        for (unsigned i = 0; i < 100000; i++) {
                ssize_t n = recv(fd, buf + got, size - got, MSG_DONTWAIT);

                if (n == 0)
                        return got;
                if (n > 0)
                        got += (size_t)n;
                else {
                        ck_assert_int_eq(errno, EAGAIN);
                        pump(c);
                }
                ck_assert_uint_lt(got, size);
        }
        ck_abort_msg("no EOF");
        return got;
}

static void assert_acks(const char *buf, size_t len, size_t n) {
        ck_assert_uint_eq(len, n * STRLEN(ACK_LINE));
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(memcmp(buf + i * STRLEN(ACK_LINE), ACK_LINE, STRLEN(ACK_LINE)) == 0,
                              "reply %zu is not ACK!\\n", i);
}

/* n line messages "m\n" in one buffer. */
static char *messages(size_t n) {
        char *b = malloc(2 * n);

        ck_assert_ptr_nonnull(b);
        for (size_t i = 0; i < n; i++)
                memcpy(b + 2 * i, "m\n", 2);
        return b;
}

/* --- oneshot ------------------------------------------------------------------------------------- */

START_TEST(test_oneshot_reply_then_linger_then_close) {
        char buf[64];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_ONESHOT, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(c->state, CONNECTION_READING);
        ck_assert_uint_eq(c->interest, EPOLLIN);

        send_all(client, "Hello World!", 12);
        pump(c);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        ck_assert_uint_eq(read_now(client, buf, sizeof buf), 4);
        ck_assert(memcmp(buf, "ACK!", 4) == 0);
        ck_assert_int_eq(recv(client, buf, sizeof buf, MSG_DONTWAIT), 0); /* the FIN */
        ck_assert_uint_eq(f.ctx.linger.n_entries, 1);

        close(client);
        pump(c);
        ck_assert(!alive(c));
        ck_assert_uint_eq(connection_count(&f.ctx), 0);
        ck_assert_uint_eq(f.ctx.linger.n_entries, 0);
        ck_assert_uint_eq(f.ctx.stats[0].messages, 1);
        ck_assert_uint_eq(f.ctx.stats[0].acknowledged, 1);
        fixture_teardown();
}
END_TEST

START_TEST(test_oneshot_eof_before_any_byte_closes_without_reply) {
        char buf[8];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_ONESHOT, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
        pump(c);
        ck_assert(!alive(c));
        ck_assert_int_eq(recv(client, buf, sizeof buf, MSG_DONTWAIT), 0);
        ck_assert_uint_eq(f.ctx.stats[0].acknowledged, 0);
        close(client);
        fixture_teardown();
}
END_TEST

START_TEST(test_linger_is_extended_only_while_the_reply_drains) {
        char buf[256];
        size_t got;
        int client, server;
        Connection *c;

        /* Ten acks, each its own write (so its own skb: on a unix socket SIOCOUTQ counts
         * the skbs the client has not finished reading), then a message too long: the
         * error line, shutdown, linger, with all of it unread. */
        fixture_setup(PROTOCOL_LINE, AF_UNIX, 8, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        for (int i = 0; i < 10; i++) {
                send_all(client, "m\n", 2);
                pump(c);
        }
        send_all(client, "123456789", 9);
        pump(c);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        assert_timer_queue(c);

        /* Linger timeout with the reply unread: the first look grants another period. */
        f.ctx.now += LINGER_TIMEOUT_MS;
        connection_run_timers(&f.ctx);
        ck_assert_msg(alive(c), "closed at the first look");
        ck_assert_uint_eq(c->n_extended, 1);
        assert_timer_queue(c);
        ck_assert_uint_eq(c->timer.deadline, f.ctx.now + LINGER_TIMEOUT_MS);

        /* The client takes one ack: progress, another period. */
        ck_assert_int_eq(recv(client, buf, 5, MSG_DONTWAIT), 5);
        f.ctx.now += LINGER_TIMEOUT_MS;
        connection_run_timers(&f.ctx);
        ck_assert_msg(alive(c), "closed despite progress");
        ck_assert_uint_eq(c->n_extended, 2);

        /* No progress since: closed. What was written stays readable, then EOF. */
        f.ctx.now += LINGER_TIMEOUT_MS;
        connection_run_timers(&f.ctx);
        ck_assert(!alive(c));
        got = read_now(client, buf, sizeof buf);
        ck_assert_uint_eq(got, 9 * STRLEN(ACK_LINE) + STRLEN(REPLY_ERR_TOO_LONG));
        assert_acks(buf, 9 * STRLEN(ACK_LINE), 9);
        ck_assert(memcmp(buf + 9 * STRLEN(ACK_LINE), REPLY_ERR_TOO_LONG, STRLEN(REPLY_ERR_TOO_LONG)) == 0);
        ck_assert_int_eq(recv(client, buf, 1, MSG_DONTWAIT), 0);
        close(client);
        fixture_teardown();
}
END_TEST

START_TEST(test_linger_extensions_are_bounded_by_idle_timeout) {
        char buf[64];
        int client, server;
        Connection *c;

        /* idle-timeout 10 s, linger 2 s: at most 5 extensions, however slowly the client
         * keeps taking its reply. */
        fixture_setup(PROTOCOL_LINE, AF_UNIX, 8, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        for (int i = 0; i < 10; i++) {
                send_all(client, "m\n", 2);
                pump(c);
        }
        send_all(client, "123456789", 9);
        pump(c);
        for (unsigned i = 0; i < 10 && alive(c); i++) {
                f.ctx.now += LINGER_TIMEOUT_MS;
                connection_run_timers(&f.ctx);
                ck_assert_int_eq(recv(client, buf, 5, MSG_DONTWAIT), 5);
        }
        ck_assert(!alive(c));
        ck_assert_uint_eq(c->n_extended, 10000 / LINGER_TIMEOUT_MS);
        close(client);
        fixture_teardown();
}
END_TEST

START_TEST(test_linger_without_progress_closes_after_one_look) {
        char buf[16];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_ONESHOT, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        send_all(client, "x", 1);
        pump(c);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);

        /* The reply is unread: in flight at the first look, so one more period. */
        f.ctx.now += LINGER_TIMEOUT_MS - 1;
        connection_run_timers(&f.ctx);
        ck_assert(alive(c));
        ck_assert_uint_eq(c->n_extended, 0);
        f.ctx.now += 1;
        connection_run_timers(&f.ctx);
        ck_assert(alive(c));
        ck_assert_uint_eq(c->n_extended, 1);
        f.ctx.now += LINGER_TIMEOUT_MS;
        connection_run_timers(&f.ctx);
        ck_assert(!alive(c));
        ck_assert_uint_eq(read_now(client, buf, sizeof buf), 4);
        close(client);
        fixture_teardown();
}
END_TEST

/* --- line ---------------------------------------------------------------------------------------- */

START_TEST(test_line_messages_are_acknowledged_in_order_and_rearm_idle) {
        char buf[64];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        ck_assert_uint_eq(c->timer.deadline, 1000 + 10000);

        f.ctx.now = 5000;
        send_all(client, "a\nb\r\n\nc", 7);
        pump(c);
        ck_assert_uint_eq(c->state, CONNECTION_READING);
        ck_assert_uint_eq(c->timer.deadline, 5000 + 10000);
        ck_assert_uint_eq(c->parser.partial, 1);
        assert_acks(buf, read_now(client, buf, sizeof buf), 3);

        /* EOF with the partial line pending: acknowledged, then the server closes. */
        ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
        assert_acks(buf, read_to_eof(client, c, buf, sizeof buf), 1);
        ck_assert(!alive(c));
        ck_assert_uint_eq(f.ctx.stats[0].messages, 4);
        ck_assert_uint_eq(f.ctx.stats[0].acknowledged, 4);
        close(client);
        fixture_teardown();
}
END_TEST

START_TEST(test_partial_writes_resume_at_their_offset) {
        char *buf = malloc(1 << 20), *msgs = messages(30000);
        size_t got = 0;
        int client, server;
        Connection *c;
        bool blocked = false;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, SMALL_SNDBUF);
        c = accept_one(server);

        /* The client writes in odd-sized pieces and reads in odd-sized pieces, so that
         * writes come back short in the middle of a reply. */
        for (size_t sent = 0; sent < 2 * 30000;) {
                size_t k = MIN((size_t)7777, 2 * 30000 - sent);

                send_all(client, msgs + sent, k);
                sent += k;
                pump(c);
                blocked |= (c->flags & CONNECTION_OUT_BLOCKED) != 0;
                if (c->flags & CONNECTION_OUT_BLOCKED)
                        ck_assert(c->interest & EPOLLOUT);
                got += read_now(client, buf + got, 3333);
        }
        ck_assert(blocked);
        while (got < 30000 * STRLEN(ACK_LINE)) {
                size_t k = read_now(client, buf + got, 3333);

                got += k;
                if (k == 0)
                        ck_assert_uint_gt(pump(c), 0);
        }
        assert_acks(buf, got, 30000);
        ck_assert_uint_eq(c->pending_acks, 0);
        ck_assert_uint_eq(c->out_offset, 0);
        ck_assert_uint_eq(f.ctx.stats[0].acknowledged, 30000);
        pump(c);
        ck_assert_uint_eq(c->interest, EPOLLIN);
        close(client);
        free(buf);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_backpressure_stops_reading_until_acks_drain) {
        size_t n = 200000, got = 0;
        char *buf = malloc(n * STRLEN(ACK_LINE)), *msgs = messages(n);
        int client, server;
        uint64_t before;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, SMALL_SNDBUF);
        ck_assert_int_eq(fcntl_nonblock(client), 0);
        c = accept_one(server);

        /* The client writes far more than one reply buffer's worth and never reads. */
        for (size_t sent = 0; sent < 2 * n;) {
                ssize_t k = send(client, msgs + sent, 2 * n - sent, MSG_NOSIGNAL);

                if (k > 0)
                        sent += (size_t)k;
                if (pump(c) == 0 && k < 0)
                        break;
        }
        ck_assert_uint_eq(c->interest, EPOLLOUT);
        ck_assert_uint_ge(c->pending_acks, c->profile->line_count);
        before = f.ctx.stats[0].messages;
        ck_assert_uint_lt(before, n);
        pump(c);
        ck_assert_uint_eq(f.ctx.stats[0].messages, before); /* nothing read meanwhile */

        /* Drain: reading resumes, everything sent is acknowledged in order. */
        ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
        got = read_to_eof(client, c, buf, n * STRLEN(ACK_LINE) + 1);
        ck_assert_uint_eq(f.ctx.stats[0].messages, f.ctx.stats[0].acknowledged);
        assert_acks(buf, got, f.ctx.stats[0].messages);
        ck_assert(!alive(c));
        close(client);
        free(buf);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_too_long_after_acks_that_fill_the_buffer) {
        size_t n = 30000, got = 0;
        char *buf = malloc(n * STRLEN(ACK_LINE) + 64), *msgs = messages(n);
        int client, server;
        Connection *c;

        /* The error line comes after thousands of acks that do not fit in the socket
         * buffer: it, too, is written in pieces, and arrives whole, last. */
        fixture_setup(PROTOCOL_LINE, AF_UNIX, 8, 10);
        unix_pair(&client, &server, SMALL_SNDBUF);
        c = accept_one(server);
        send_all(client, msgs, 2 * (n - 1));
        send_all(client, "123456789\n", 10);
        while (c->state == CONNECTION_READING)
                pump(c);
        ck_assert_uint_eq(c->state, CONNECTION_REPLYING);
        ck_assert_uint_eq(c->error_reply, ERROR_REPLY_TOO_LONG);
        assert_timer_queue(c);
        got = read_to_eof(client, c, buf, n * STRLEN(ACK_LINE) + 64);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        ck_assert_uint_eq(got, (n - 1) * STRLEN(ACK_LINE) + STRLEN(REPLY_ERR_TOO_LONG));
        assert_acks(buf, (n - 1) * STRLEN(ACK_LINE), n - 1);
        ck_assert(memcmp(buf + (n - 1) * STRLEN(ACK_LINE), REPLY_ERR_TOO_LONG, STRLEN(REPLY_ERR_TOO_LONG)) ==
                  0);
        ck_assert_uint_eq(f.ctx.stats[0].too_long, 1);
        close(client);
        pump(c);
        ck_assert(!alive(c));
        free(buf);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_too_long_without_newline) {
        char buf[64];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 8, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        send_all(client, "ok\n123456789", 12);
        ck_assert_uint_eq(read_to_eof(client, c, buf, sizeof buf), 5 + STRLEN(REPLY_ERR_TOO_LONG));
        ck_assert(memcmp(buf, "ACK!\n" REPLY_ERR_TOO_LONG, 5 + STRLEN(REPLY_ERR_TOO_LONG)) == 0);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        close(client);
        pump(c);
        fixture_teardown();
}
END_TEST

START_TEST(test_stop_while_replying_delivers_everything_owed) {
        size_t n = 30000, got;
        char *buf = malloc(n * STRLEN(ACK_LINE) + 1), *msgs = messages(n);
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, SMALL_SNDBUF);
        c = accept_one(server);
        send_all(client, msgs, 2 * n);
        while (f.ctx.stats[0].messages < n)
                pump(c);
        ck_assert(c->flags & CONNECTION_OUT_BLOCKED);

        connection_stop(&f.ctx, c);
        ck_assert_uint_eq(c->state, CONNECTION_REPLYING);
        assert_timer_queue(c);
        connection_stop(&f.ctx, c); /* a second stop changes nothing */
        ck_assert_uint_eq(c->state, CONNECTION_REPLYING);

        got = read_to_eof(client, c, buf, n * STRLEN(ACK_LINE) + 1);
        assert_acks(buf, got, n);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        close(client);
        pump(c);
        ck_assert(!alive(c));
        free(buf);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_stop_leaves_a_waiting_oneshot_connection_waiting) {
        char buf[8];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_ONESHOT, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        connection_stop(&f.ctx, c);
        ck_assert_uint_eq(c->state, CONNECTION_READING);
        send_all(client, "late", 4);
        pump(c);
        ck_assert_uint_eq(read_now(client, buf, sizeof buf), 4);
        close(client);
        pump(c);
        fixture_teardown();
}
END_TEST

START_TEST(test_acks_leaving_rearm_the_idle_timer) {
        size_t n = 30000, got = 0;
        char *buf = malloc(n * STRLEN(ACK_LINE)), *msgs = messages(n);
        int client, server;
        Connection *c;

        /* A client that sent everything long ago and reads its acks slowly is not idle:
         * each ack that leaves pushes the idle deadline. */
        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, SMALL_SNDBUF);
        c = accept_one(server);
        send_all(client, msgs, 2 * n);
        while (f.ctx.stats[0].messages < n)
                pump(c);
        ck_assert(c->flags & CONNECTION_OUT_BLOCKED);
        for (unsigned step = 0; got < n * STRLEN(ACK_LINE); step++) {
                uint64_t acked = f.ctx.stats[0].acknowledged;

                /* 6 s a step, past the 10 s idle-timeout after two steps. */
                f.ctx.now += 6000;
                connection_run_timers(&f.ctx);
                ck_assert_msg(alive(c), "idle timeout at step %u while acks were leaving", step);
                got += read_now(client, buf + got, 8192);
                pump(c);
                if (f.ctx.stats[0].acknowledged > acked)
                        ck_assert_uint_eq(c->timer.deadline, f.ctx.now + 10000);
        }
        assert_acks(buf, got, n);
        ck_assert_uint_eq(f.ctx.stats[0].idle_timeouts, 0);
        close(client);
        pump(c);
        free(buf);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_idle_timeout_closes_without_reply) {
        char buf[8];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        f.ctx.now += 9999;
        connection_run_timers(&f.ctx);
        ck_assert(alive(c));
        ck_assert_uint_eq(connection_next_deadline(&f.ctx), 1000 + 10000);
        f.ctx.now += 1;
        connection_run_timers(&f.ctx);
        ck_assert(!alive(c));
        ck_assert_uint_eq(connection_next_deadline(&f.ctx), UINT64_MAX);
        ck_assert_uint_eq(f.ctx.stats[0].idle_timeouts, 1);
        ck_assert_int_eq(recv(client, buf, sizeof buf, MSG_DONTWAIT), 0);
        close(client);
        fixture_teardown();
}
END_TEST

/* --- admission ----------------------------------------------------------------------------------- */

START_TEST(test_over_the_limit_err_busy_then_refused) {
        char buf[64];
        int client[3], server[3];
        Connection *c[3];

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 1);
        for (int i = 0; i < 3; i++) {
                unix_pair(&client[i], &server[i], 0);
                c[i] = accept_one(server[i]);
        }
        ck_assert_ptr_nonnull(c[0]);
        ck_assert_uint_eq(c[0]->state, CONNECTION_READING);

        /* The second: ERR busy with the FIN, then it lingers (max_rejecting is 1). */
        ck_assert_ptr_nonnull(c[1]);
        ck_assert(c[1]->flags & CONNECTION_REJECTED);
        ck_assert_uint_eq(c[1]->state, CONNECTION_LINGER);
        ck_assert_uint_eq(read_now(client[1], buf, sizeof buf), STRLEN(REPLY_ERR_BUSY));
        ck_assert(memcmp(buf, REPLY_ERR_BUSY, STRLEN(REPLY_ERR_BUSY)) == 0);

        /* The third: beyond the allowance, answered and closed at once. */
        ck_assert_ptr_null(c[2]);
        ck_assert_uint_eq(read_now(client[2], buf, sizeof buf), STRLEN(REPLY_ERR_BUSY));
        ck_assert_int_eq(recv(client[2], buf, sizeof buf, MSG_DONTWAIT), 0);

        ck_assert_uint_eq(f.ctx.stats[0].accepted, 3);
        ck_assert_uint_eq(f.ctx.stats[0].busy, 2);
        ck_assert_uint_eq(admission_active(&f.admission), 1);
        ck_assert_uint_eq(atomic_load(&f.admission.rejecting), 1);

        /* Closing the rejected one frees its allowance, not a served slot. */
        close(client[1]);
        pump(NULL);
        ck_assert(!alive(c[1]));
        ck_assert_uint_eq(atomic_load(&f.admission.rejecting), 0);
        ck_assert_uint_eq(admission_active(&f.admission), 1);
        for (int i = 0; i < 3; i++)
                if (i != 1)
                        close(client[i]);
        pump(NULL);
        fixture_teardown();
}
END_TEST

START_TEST(test_admission_limits_fit_under_the_fd_limit) {
        AdmissionLimits l;

        ck_assert_int_eq(admission_limits(100, 20000, 30, &l), 0);
        ck_assert_uint_eq(l.max_connections, 100);
        ck_assert_uint_eq(l.max_rejecting, 256);
        ck_assert_int_eq(admission_limits(100000, 20000, 30, &l), 1);
        ck_assert_uint_eq(l.max_connections + l.max_rejecting, 20000 - 30);
        ck_assert_int_eq(admission_limits(100, 64, 30, &l), 1);
        ck_assert_uint_eq(l.max_rejecting, 2);
        ck_assert_uint_eq(l.max_connections, 32);
        ck_assert_int_eq(admission_limits(10, 31, 30, &l), -EMFILE);
}
END_TEST

/* --- resets (TCP) -------------------------------------------------------------------------------- */

static void close_with_reset(int fd) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        close(fd);
}

START_TEST(test_reset_after_everything_was_delivered_is_a_normal_close) {
        char buf[16];
        int client, server;
        Connection *c;

        /* HAProxy's line-mode health check: send, read the reply, close with RST. */
        fixture_setup(PROTOCOL_LINE, AF_INET, 1024, 10);
        f.listener.family = AF_INET;
        tcp_pair(&client, &server);
        c = accept_one(server);
        send_all(client, "ping\n", 5);
        while (read_now(client, buf, sizeof buf) == 0)
                pump(c);
        close_with_reset(client);
        while (alive(c))
                pump(c);
        ck_assert_uint_eq(f.ctx.stats[0].reset_closes, 1);
        ck_assert_uint_eq(f.ctx.stats[0].resets, 0);
        fixture_teardown();
}
END_TEST

START_TEST(test_reset_with_a_partial_message_is_an_error) {
        char buf[16];
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_INET, 1024, 10);
        tcp_pair(&client, &server);
        c = accept_one(server);
        send_all(client, "ping\npa", 7);
        while (read_now(client, buf, sizeof buf) == 0)
                pump(c);
        ck_assert_uint_eq(c->parser.partial, 2);
        close_with_reset(client);
        while (alive(c))
                pump(c);
        ck_assert_uint_eq(f.ctx.stats[0].resets, 1);
        ck_assert_uint_eq(f.ctx.stats[0].reset_closes, 0);
        fixture_teardown();
}
END_TEST

START_TEST(test_reset_with_acks_owed_is_an_error) {
        size_t n = 300000;
        char *msgs = messages(n);
        int client, server, small = 4096;
        Connection *c;

        /* The client never reads: acks pile up, unwritten, then it resets. */
        fixture_setup(PROTOCOL_LINE, AF_INET, 1024, 10);
        tcp_pair(&client, &server);
        ck_assert_int_eq(setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        set_sndbuf(server, SMALL_SNDBUF);
        ck_assert_int_eq(fcntl_nonblock(client), 0);
        c = accept_one(server);
        for (size_t sent = 0; sent < 2 * n && !(c->pending_acks > 0 && c->interest == EPOLLOUT);) {
                ssize_t k = send(client, msgs + sent, 2 * n - sent, MSG_NOSIGNAL);

                if (k > 0)
                        sent += (size_t)k;
                pump(c);
        }
        ck_assert_uint_gt(c->pending_acks, 0);
        close_with_reset(client);
        while (alive(c))
                pump(c);
        ck_assert_uint_eq(f.ctx.stats[0].resets, 1);
        ck_assert_uint_eq(f.ctx.stats[0].reset_closes, 0);
        free(msgs);
        fixture_teardown();
}
END_TEST

START_TEST(test_unix_peer_leaving_replies_unread_is_an_error) {
        int client, server;
        Connection *c;

        fixture_setup(PROTOCOL_LINE, AF_UNIX, 1024, 10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        send_all(client, "a\n", 2);
        pump(c);
        close(client); /* "ACK!\n" still unread: the server sees ECONNRESET */
        while (alive(c))
                pump(c);
        ck_assert_uint_eq(f.ctx.stats[0].resets, 1);
        fixture_teardown();
}
END_TEST

/* --- PROXY protocol (+proxy listeners) ---------------------------------------------------------- */

#define V1_HEADER "PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\n"

static const char v2_signature[12] = "\r\n\r\n\0\r\nQUIT\n";

/* A v2 PROXY TCP4 header from 198.51.100.9:4242 with `tlv` bytes of a NOOP TLV after the
 * addresses. Returns its length. */
static size_t v2_header(uint8_t *buf, size_t tlv) {
        size_t n = 16 + 12 + (tlv ? 3 + tlv : 0);

        memcpy(buf, v2_signature, 12);
        buf[12] = 0x21;
        buf[13] = 0x11;
        buf[14] = (uint8_t)((n - 16) >> 8);
        buf[15] = (uint8_t)(n - 16);
        memcpy(buf + 16, (const uint8_t[]){ 198, 51, 100, 9, 127, 0, 0, 1, 0x10, 0x92, 0x27, 0x0f }, 12);
        if (tlv) {
                buf[28] = 0x04; /* PP2_TYPE_NOOP */
                buf[29] = (uint8_t)(tlv >> 8);
                buf[30] = (uint8_t)tlv;
                memset(buf + 31, 0, tlv);
        }
        return n;
}

static void proxy_setup(ProtocolMode mode, int family) {
        fixture_settings(mode, family, 1024);
        f.listener.proxy = true;
        f.settings.proxy_timeout_ms = 3000;
}

static void assert_client_address(const Connection *c, const char *want) {
        char buf[ADDRESS_STRING_MAX];

        ck_assert_uint_ne(c->peer, 0);
        ck_assert_str_eq(connection_peer(c, &f.ctx, buf, sizeof buf), want);
        ck_assert_ptr_null(f.ctx.peers.items[c->peer].header);
}

START_TEST(test_proxy_header_and_message_in_one_read_are_answered_at_accept) {
        char buf[64];
        int client, server;
        Connection *c;

        /* As with TCP_DEFER_ACCEPT: the first bytes are there when the socket is accepted.
         * The reply leaves from connection_accept() itself, before any epoll wakeup. */
        proxy_setup(PROTOCOL_ONESHOT, AF_UNIX);
        f.listener.defer_accept = true;
        fixture_start(10);
        unix_pair(&client, &server, 0);
        send_all(client, V1_HEADER "Hello World!", STRLEN(V1_HEADER) + 12);
        c = accept_one(server);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(c->state, CONNECTION_LINGER);
        assert_client_address(c, "203.0.113.7:5555");
        ck_assert_uint_eq(read_now(client, buf, sizeof buf), 4);
        ck_assert(memcmp(buf, "ACK!", 4) == 0);
        ck_assert_uint_eq(f.ctx.stats[0].messages, 1);
        close(client);
        pump(c);
        ck_assert(!alive(c));
        ck_assert_uint_eq(f.ctx.peers.n_used, 0);
        fixture_teardown();
}
END_TEST

/* Sends header + "a\nb\n" split at `split` (and the rest), one pump between; expects the
 * two acks and the header's client address. */
static void split_header_case(const uint8_t *header, size_t n, size_t split, const char *address) {
        uint8_t data[PROXY_HEADER_MAX + 8];
        char buf[64];
        int client, server;
        Connection *c;

        memcpy(data, header, n);
        memcpy(data + n, "a\nb\n", 4);
        proxy_setup(PROTOCOL_LINE, AF_UNIX);
        fixture_start(10);
        unix_pair(&client, &server, 0);
        c = accept_one(server);
        ck_assert_uint_eq(c->state, CONNECTION_HEADER);
        send_all(client, data, split);
        pump(c);
        ck_assert_msg(split >= n || c->state == CONNECTION_HEADER, "split %zu: state %u", split, c->state);
        send_all(client, data + split, n + 4 - split);
        pump(c);
        ck_assert_msg(c->state == CONNECTION_READING, "split %zu: state %u", split, c->state);
        assert_client_address(c, address);
        assert_acks(buf, read_now(client, buf, sizeof buf), 2);
        close(client);
        pump(c);
        fixture_teardown();
}

START_TEST(test_proxy_v1_header_split_at_every_byte) {
        for (size_t split = 1; split <= STRLEN(V1_HEADER) + 4; split++)
                split_header_case((const uint8_t *)V1_HEADER, STRLEN(V1_HEADER), split, "203.0.113.7:5555");
}
END_TEST

START_TEST(test_proxy_v2_header_split_at_every_byte) {
        uint8_t h[64];
        size_t n = v2_header(h, 5);

        for (size_t split = 1; split <= n + 4; split++)
                split_header_case(h, n, split, "198.51.100.9:4242");
}
END_TEST

START_TEST(test_proxy_v2_header_of_exactly_the_limit) {
        uint8_t h[PROXY_HEADER_MAX];
        size_t n = v2_header(h, PROXY_HEADER_MAX - 31);

        ck_assert_uint_eq(n, PROXY_HEADER_MAX);
        split_header_case(h, n, 1000, "198.51.100.9:4242");
        split_header_case(h, n, n, "198.51.100.9:4242");
}
END_TEST

static Connection *proxy_send(const void *data, size_t n, int *ret_client) {
        int server;
        Connection *c;

        unix_pair(ret_client, &server, 0);
        c = accept_one(server);
        send_all(*ret_client, data, n);
        pump(c);
        return c;
}

START_TEST(test_proxy_bad_headers_are_closed_and_counted) {
        static const char *const bad[] = {
                "GET / HTTP/1.1\r\n\r\n",
                "Hello World!",
                "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        };
        uint8_t big[64];
        char buf[8];
        int client;
        Connection *c;

        proxy_setup(PROTOCOL_LINE, AF_UNIX);
        fixture_start(10);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                c = proxy_send(bad[i], strlen(bad[i]), &client);
                ck_assert_msg(!alive(c), "'%s' accepted", bad[i]);
                ck_assert_int_eq(recv(client, buf, sizeof buf, MSG_DONTWAIT), 0); /* closed, no reply */
                close(client);
        }
        /* A v2 header that declares more than 4096 bytes: refused from its length field. */
        v2_header(big, 0);
        big[14] = 0x10;
        big[15] = 0x00;
        c = proxy_send(big, 16, &client);
        ck_assert(!alive(c));
        close(client);
        ck_assert_uint_eq(f.ctx.stats[0].proxy_bad_headers, ELEMENTSOF(bad) + 1);
        ck_assert_uint_eq(f.ctx.stats[0].messages, 0);
        ck_assert_uint_eq(f.ctx.stats[0].resets, 0);
        ck_assert_uint_eq(f.ctx.peers.n_used, 0);
        fixture_teardown();
}
END_TEST

START_TEST(test_proxy_truncated_header_and_bare_eof) {
        int client;
        Connection *c;

        proxy_setup(PROTOCOL_LINE, AF_UNIX);
        fixture_start(10);
        /* Half a header, then EOF: a bad header. */
        c = proxy_send("PROXY TCP4 1.2", 14, &client);
        ck_assert_uint_eq(c->state, CONNECTION_HEADER);
        ck_assert_uint_eq(f.ctx.peers.items[c->peer].header_len, 14);
        ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
        pump(c);
        ck_assert(!alive(c));
        close(client);
        ck_assert_uint_eq(f.ctx.stats[0].proxy_bad_headers, 1);
        /* Connect and leave without a byte (a port check): no error. */
        c = proxy_send("", 0, &client);
        ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
        pump(c);
        ck_assert(!alive(c));
        close(client);
        ck_assert_uint_eq(f.ctx.stats[0].proxy_bad_headers, 1);
        fixture_teardown();
}
END_TEST

START_TEST(test_proxy_header_timeout) {
        char buf[8];
        int client;
        Connection *c;

        proxy_setup(PROTOCOL_ONESHOT, AF_UNIX);
        fixture_start(10);
        c = proxy_send("PROXY ", 6, &client);
        ck_assert_uint_eq(c->state, CONNECTION_HEADER);
        ck_assert_uint_eq(c->timer.deadline, 1000 + 3000);
        ck_assert_uint_eq(connection_next_deadline(&f.ctx), 1000 + 3000);
        f.ctx.now += 2999;
        connection_run_timers(&f.ctx);
        ck_assert(alive(c));
        f.ctx.now += 1;
        connection_run_timers(&f.ctx);
        ck_assert(!alive(c));
        ck_assert_int_eq(recv(client, buf, sizeof buf, MSG_DONTWAIT), 0);
        ck_assert_uint_eq(f.ctx.stats[0].proxy_timeouts, 1);
        ck_assert_uint_eq(f.ctx.stats[0].idle_timeouts, 0);
        close(client);
        fixture_teardown();
}
END_TEST

START_TEST(test_proxy_local_keeps_the_connection_address) {
        uint8_t h[16];
        char buf[64];
        int client;
        Connection *c;

        memcpy(h, v2_signature, 12);
        h[12] = 0x20; /* LOCAL: HAProxy's own health checks */
        h[13] = 0x00;
        h[14] = h[15] = 0;
        proxy_setup(PROTOCOL_LINE, AF_UNIX);
        fixture_start(10);
        c = proxy_send(h, sizeof h, &client);
        ck_assert_uint_eq(c->state, CONNECTION_READING);
        ck_assert_uint_eq(f.ctx.peers.items[c->peer].addr_len, 0);
        {
                char want[64];

                (void)snprintf(want, sizeof want, "unix peer pid %d", (int)getpid());
                ck_assert_str_eq(connection_peer(c, &f.ctx, buf, sizeof buf), want);
        }
        send_all(client, "ping\n", 5);
        pump(c);
        assert_acks(buf, read_now(client, buf, sizeof buf), 1);
        close(client);
        pump(c);
        fixture_teardown();
}
END_TEST

START_TEST(test_proxy_from_refuses_other_sources_at_once) {
        int client, server;
        char buf[8];

        proxy_setup(PROTOCOL_LINE, AF_INET);
        ck_assert_int_eq(address_prefix_parse("10.0.0.0/8", &f.settings.proxy_from[0], NULL), 0);
        f.settings.n_proxy_from = 1;
        fixture_start(10);
        tcp_pair(&client, &server);
        ck_assert_ptr_null(accept_one(server));
        ck_assert_int_eq(recv(client, buf, sizeof buf, 0), 0);
        ck_assert_uint_eq(f.ctx.stats[0].proxy_untrusted, 1);
        ck_assert_uint_eq(f.ctx.stats[0].accepted, 1);
        ck_assert_uint_eq(admission_active(&f.admission), 0);
        close(client);
        /* Loopback allowed: served. */
        fixture_teardown();
        proxy_setup(PROTOCOL_LINE, AF_INET);
        ck_assert_int_eq(address_prefix_parse("127.0.0.0/8", &f.settings.proxy_from[0], NULL), 0);
        f.settings.n_proxy_from = 1;
        fixture_start(10);
        tcp_pair(&client, &server);
        ck_assert_ptr_nonnull(accept_one(server));
        ck_assert_uint_eq(f.ctx.stats[0].proxy_untrusted, 0);
        close(client);
        pump(NULL);
        fixture_teardown();
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("connection");
        TCase *tc;

        tc = tcase_create("oneshot");
        tcase_add_test(tc, test_oneshot_reply_then_linger_then_close);
        tcase_add_test(tc, test_oneshot_eof_before_any_byte_closes_without_reply);
        tcase_add_test(tc, test_linger_is_extended_only_while_the_reply_drains);
        tcase_add_test(tc, test_linger_extensions_are_bounded_by_idle_timeout);
        tcase_add_test(tc, test_linger_without_progress_closes_after_one_look);
        suite_add_tcase(s, tc);

        tc = tcase_create("line");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_line_messages_are_acknowledged_in_order_and_rearm_idle);
        tcase_add_test(tc, test_partial_writes_resume_at_their_offset);
        tcase_add_test(tc, test_backpressure_stops_reading_until_acks_drain);
        tcase_add_test(tc, test_too_long_after_acks_that_fill_the_buffer);
        tcase_add_test(tc, test_too_long_without_newline);
        tcase_add_test(tc, test_stop_while_replying_delivers_everything_owed);
        tcase_add_test(tc, test_stop_leaves_a_waiting_oneshot_connection_waiting);
        tcase_add_test(tc, test_acks_leaving_rearm_the_idle_timer);
        tcase_add_test(tc, test_idle_timeout_closes_without_reply);
        suite_add_tcase(s, tc);

        tc = tcase_create("admission");
        tcase_add_test(tc, test_over_the_limit_err_busy_then_refused);
        tcase_add_test(tc, test_admission_limits_fit_under_the_fd_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("proxy");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_proxy_header_and_message_in_one_read_are_answered_at_accept);
        tcase_add_test(tc, test_proxy_v1_header_split_at_every_byte);
        tcase_add_test(tc, test_proxy_v2_header_split_at_every_byte);
        tcase_add_test(tc, test_proxy_v2_header_of_exactly_the_limit);
        tcase_add_test(tc, test_proxy_bad_headers_are_closed_and_counted);
        tcase_add_test(tc, test_proxy_truncated_header_and_bare_eof);
        tcase_add_test(tc, test_proxy_header_timeout);
        tcase_add_test(tc, test_proxy_local_keeps_the_connection_address);
        tcase_add_test(tc, test_proxy_from_refuses_other_sources_at_once);
        suite_add_tcase(s, tc);

        tc = tcase_create("resets");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_reset_after_everything_was_delivered_is_a_normal_close);
        tcase_add_test(tc, test_reset_with_a_partial_message_is_an_error);
        tcase_add_test(tc, test_reset_with_acks_owed_is_an_error);
        tcase_add_test(tc, test_unix_peer_leaving_replies_unread_is_an_error);
        suite_add_tcase(s, tc);

        return s;
}
