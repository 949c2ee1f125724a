/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bench.h"
#include "engine.h"
#include "fd-util.h"
#include "log.h"
#include "macro.h"
#include "proxy-header.h"
#include "report.h"
#include "signal-util.h"
#include "target.h"

#define PROGRESS_NS 1000000000ull

/* Where the error that stopped the benchmark happened. */
typedef enum BenchStep {
        STEP_RESOLVE,
        STEP_FD_LIMIT,
        STEP_CONNECT,
        STEP_SOURCES,
        STEP_PROXY,
        STEP_SETUP,
        STEP_THREADS,
        STEP_REPORT,
} BenchStep;

typedef struct Bench {
        const ClientArgs *args;
        EngineShared sh;
        Target target;
        Engine **engines;
        size_t n_engines;
        char *send_buf;
        char *expect_buf;
        char proxy_header[CLIENT_PROXY_HEADER_MAX]; /* when the same for every connection */
        int signal_fd;
        bool interrupted;
        uint64_t last_completed; /* progress: at the previous line */
        uint64_t last_ns;

        BenchStep step;           /* of the error returned, if any */
        char err[ARGS_ERROR_MAX]; /* STEP_RESOLVE: why */
        uint64_t fd_limit;        /* STEP_FD_LIMIT: the soft limit */
        size_t bad_source;        /* STEP_SOURCES: the --source of another family */
} Bench;

static int bench_error(Bench *b, BenchStep step, int r) {
        b->step = step;
        return r;
}

static void bench_done(Bench *b) {
        for (size_t i = 0; i < b->n_engines; i++)
                engine_free(b->engines[i]);
        free(b->engines);
        free(b->send_buf);
        free(b->expect_buf);
        b->sh.done_fd = safe_close(b->sh.done_fd);
        b->signal_fd = safe_close(b->signal_fd);
}

static uint64_t bench_connections(const ClientArgs *a) {
        return a->idle > 0 ? a->idle : a->connections;
}

static uint64_t bench_fds_needed(const ClientArgs *a) {
        return bench_connections(a) + a->threads + BENCH_FD_RESERVE;
}

/* Picks the first of the target's addresses that accepts a connection, when there is a
 * choice ("localhost" may be ::1 and 127.0.0.1, and the server on only one of them). */
static int bench_pick_address(Bench *b) {
        const Target *t = &b->target;
        size_t index = 0;
        int fd;

        if (t->n > 1) {
                fd = target_connect(t, &index, b->args->timeout_ms, false);
                if (fd < 0)
                        return bench_error(b, STEP_CONNECT, fd);
                safe_close(fd);
        }
        b->sh.target = t->addrs[index];
        (void)target_address_format(t, index, b->sh.target_name, sizeof b->sh.target_name);
        return 0;
}

/* A source address must be of the target's family: bind() would fail for every connection. */
static int bench_check_sources(Bench *b) {
        const ClientArgs *a = b->args;

        for (size_t i = 0; i < a->n_sources; i++)
                if (a->sources[i].addr.ss_family != b->sh.target.addr.ss_family) {
                        b->bad_source = i;
                        return bench_error(b, STEP_SOURCES, -EAFNOSUPPORT);
                }
        return 0;
}

/* --proxy: a header that is the same for every connection is built once, here. */
static int bench_proxy(Bench *b) {
        const ClientArgs *a = b->args;
        int r;

        b->sh.proxy = a->proxy != PROXY_NONE;
        if (!b->sh.proxy || !client_proxy_header_is_fixed(a, &b->sh.target))
                return 0;
        r = client_proxy_header(a, -1, &b->sh.target, b->proxy_header, sizeof b->proxy_header);
        if (r < 0)
                return bench_error(b, STEP_PROXY, r);
        b->sh.proxy_fixed = b->proxy_header;
        b->sh.proxy_fixed_len = (size_t)r;
        return 0;
}

/* Raises the soft RLIMIT_NOFILE to the hard one, and checks the connections fit. */
static int bench_raise_fd_limit(Bench *b) {
        int64_t limit = fd_limit_raise(NULL);

        if (limit < 0)
                return 0; /* then the connections will tell */
        if (bench_fds_needed(b->args) > (uint64_t)limit) {
                b->fd_limit = (uint64_t)limit;
                return bench_error(b, STEP_FD_LIMIT, -EMFILE);
        }
        return 0;
}

/* The messages a connection may have in flight, back to back, and the expected reply
 * repeated to cover any read at any offset within a reply. Shared, read-only. */
static int bench_buffers(Bench *b) {
        const ClientArgs *a = b->args;
        size_t unit = a->payload_len + (a->mode == PROTOCOL_LINE), copies = MAX(a->depth, 1u);
        size_t reply_copies = (ENGINE_READ_SIZE + a->expect_len) / a->expect_len + 1;

        b->send_buf = malloc(MAX(unit * copies, 1u));
        b->expect_buf = malloc(a->expect_len * reply_copies);
        if (!b->send_buf || !b->expect_buf)
                return -ENOMEM;
        for (size_t i = 0; i < copies; i++) {
                memcpy(b->send_buf + i * unit, a->payload, a->payload_len);
                if (a->mode == PROTOCOL_LINE)
                        b->send_buf[i * unit + unit - 1] = '\n';
        }
        for (size_t i = 0; i < reply_copies; i++)
                memcpy(b->expect_buf + i * a->expect_len, a->expect, a->expect_len);

        b->sh.send_buf = b->send_buf;
        b->sh.send_unit = unit;
        b->sh.expect_buf = b->expect_buf;
        b->sh.expect_unit = a->expect_len;
        return 0;
}

static int bench_engines(Bench *b) {
        const ClientArgs *a = b->args;
        uint64_t conns = bench_connections(a), t = a->threads;
        int r;

        b->engines = calloc(t, sizeof *b->engines);
        if (!b->engines)
                return -ENOMEM;
        for (uint64_t k = 0; k < t; k++) {
                uint64_t n = conns / t + (k < conns % t);
                uint64_t budget = UINT64_MAX;

                if (a->requests > 0)
                        budget = a->requests / t + (k < a->requests % t);
                r = engine_new(&b->engines[k], &b->sh, (unsigned)k, k, t, (size_t)n, budget);
                if (r < 0)
                        return r;
                b->n_engines++;
        }
        return 0;
}

/* Threads get SIGINT and SIGTERM blocked; the main thread reads them from a signalfd. */
static int bench_signals(Bench *b) {
        static const int signals[] = { SIGINT, SIGTERM };

        b->signal_fd = signalfd_open_blocked(signals, ELEMENTSOF(signals));
        return b->signal_fd < 0 ? b->signal_fd : 0;
}

static void bench_progress(Bench *b, uint64_t now) {
        EngineResult *snap;
        char p99[32];
        double rate;

        snap = malloc(sizeof *snap);
        if (!snap)
                return;
        engine_result_init(snap);
        for (size_t i = 0; i < b->n_engines; i++)
                engine_snapshot(b->engines[i], snap);

        rate = now > b->last_ns
                       ? (double)(snap->completed - b->last_completed) * 1e9 / (double)(now - b->last_ns)
                       : 0;
        b->last_completed = snap->completed;
        b->last_ns = now;

        if (b->args->idle > 0)
                fprintf(stderr, "\r[%4llus] %llu connected, %llu answered, %llu errors\033[K",
                        (unsigned long long)((now - b->sh.t0) / PROGRESS_NS),
                        (unsigned long long)snap->connected, (unsigned long long)snap->completed,
                        (unsigned long long)report_errors_total(snap));
        else
                fprintf(stderr, "\r[%4llus] %llu verified, %.0f/s, %llu errors, p99 %s\033[K",
                        (unsigned long long)((now - b->sh.t0) / PROGRESS_NS),
                        (unsigned long long)snap->completed, rate,
                        (unsigned long long)report_errors_total(snap),
                        snap->hist.count
                                ? report_format_ns(p99, sizeof p99, histogram_percentile(&snap->hist, 99))
                                : "-");
        fflush(stderr);
        free(snap);
}

static void bench_on_signal(Bench *b) {
        struct signalfd_siginfo si;

        while (read(b->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (b->interrupted) {
                        /* A second ^C: the user does not want to wait for the stragglers. */
                        fprintf(stderr, "%sackc: interrupted\n", b->sh.progress ? "\r\033[K" : "");
                        _exit(130);
                }
                b->interrupted = true;
                atomic_store(&b->sh.stop, true);
        }
}

/* Waits for every engine, showing progress. */
static void bench_wait(Bench *b) {
        size_t finished = 0;
        uint64_t next = b->sh.t0 + PROGRESS_NS;

        while (finished < b->n_engines) {
                struct pollfd p[2] = {
                        { .fd = b->signal_fd, .events = POLLIN },
                        { .fd = b->sh.done_fd, .events = POLLIN },
                };
                uint64_t now = clock_ns();
                int timeout = -1;

                if (b->sh.progress) {
                        if (now >= next) {
                                bench_progress(b, now);
                                next += PROGRESS_NS * ((now - next) / PROGRESS_NS + 1);
                        }
                        timeout = (int)((next - now + 999999) / 1000000);
                }
                if (poll(p, 2, timeout) < 0 && errno != EINTR)
                        break;
                if (p[0].revents & POLLIN)
                        bench_on_signal(b);
                if (p[1].revents & POLLIN) {
                        uint64_t v;

                        if (read(b->sh.done_fd, &v, sizeof v) == (ssize_t)sizeof v)
                                finished += (size_t)v;
                }
        }
        for (size_t i = 0; i < b->n_engines; i++)
                engine_join(b->engines[i]);
        if (b->sh.progress)
                fputs("\r\033[K", stderr);
}

static int bench_report(Bench *b) {
        const ClientArgs *a = b->args;
        EngineResult *r;
        BenchReport report;
        uint64_t errors;
        int status;

        r = malloc(sizeof *r);
        if (!r)
                return bench_error(b, STEP_REPORT, -ENOMEM);
        engine_result_init(r);
        for (size_t i = 0; i < b->n_engines; i++)
                engine_collect(b->engines[i], r);

        report = (BenchReport){
                .args = a,
                .target = b->sh.target_name,
                .elapsed_ns = r->end > b->sh.t0 ? r->end - b->sh.t0 : 0,
                .interrupted = b->interrupted,
                .result = r,
        };
        if (a->json)
                report_json(stdout, &report);
        else
                report_text(stdout, &report);
        fflush(stdout);

        errors = report_errors_total(r);
        if (r->connected == 0 && errors > 0)
                status = EXIT_CONNECT;
        else if (errors > 0)
                status = EXIT_REPLY;
        else
                status = 0;
        free(r);
        return status;
}

/* Everything before the threads start: the target, limits, buffers, engines, signals. */
static int bench_prepare(Bench *b) {
        const ClientArgs *a = b->args;
        int r;

        r = target_resolve(a, &b->target, b->err, sizeof b->err);
        if (r < 0)
                return bench_error(b, STEP_RESOLVE, r);
        r = bench_raise_fd_limit(b);
        if (r < 0)
                return r;
        r = bench_pick_address(b);
        if (r < 0)
                return r;
        r = bench_check_sources(b);
        if (r >= 0)
                r = bench_proxy(b);
        if (r < 0)
                return r;

        b->sh.args = a;
        b->sh.timeout_ns = a->timeout_ms * 1000000u;
        b->sh.n_threads = (unsigned)a->threads;
        b->sh.progress = isatty(STDERR_FILENO) == 1;
        atomic_init(&b->sh.stop, false);

        r = bench_buffers(b);
        if (r >= 0)
                r = bench_engines(b);
        if (r >= 0) {
                b->sh.done_fd = r = eventfd_open();
        }
        if (r >= 0)
                r = bench_signals(b);
        return r < 0 ? bench_error(b, STEP_SETUP, r) : 0;
}

static int bench_start(Bench *b) {
        const ClientArgs *a = b->args;
        int r;

        b->sh.t0 = clock_ns();
        b->last_ns = b->sh.t0;
        if (a->idle == 0 && a->requests == 0)
                b->sh.end = b->sh.t0 + a->duration_ms * 1000000u;
        for (size_t i = 0; i < b->n_engines; i++) {
                r = engine_start(b->engines[i]);
                if (r < 0) {
                        atomic_store(&b->sh.stop, true);
                        for (size_t k = 0; k < i; k++)
                                engine_join(b->engines[k]);
                        return bench_error(b, STEP_THREADS, r);
                }
        }
        return 0;
}

/* The one place that reports an error that stopped the benchmark, and picks the exit status. */
static int bench_failure(const Bench *b, int r) {
        const ClientArgs *a = b->args;

        switch (b->step) {
        case STEP_RESOLVE:
                fprintf(stderr, "ackc: %s\n", b->err);
                return EXIT_CONNECT;
        case STEP_FD_LIMIT: {
                uint64_t others = a->threads + BENCH_FD_RESERVE;

                fprintf(stderr,
                        "ackc: %llu connections need %llu file descriptors, but the limit is %llu: at most "
                        "%llu "
                        "connections fit (raise the hard limit: ulimit -Hn, or LimitNOFILE=)\n",
                        (unsigned long long)bench_connections(a), (unsigned long long)bench_fds_needed(a),
                        (unsigned long long)b->fd_limit,
                        (unsigned long long)(b->fd_limit > others ? b->fd_limit - others : 0));
                return EXIT_USAGE;
        }
        case STEP_CONNECT:
                fprintf(stderr, "ackc: cannot connect to %s: %s\n", b->target.name,
                        target_connect_strerror(r));
                return EXIT_CONNECT;
        case STEP_SOURCES: {
                const struct sockaddr_storage *ss = &a->sources[b->bad_source].addr;
                char name[INET6_ADDRSTRLEN];

                if (ss->ss_family == AF_INET6)
                        (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, name,
                                        sizeof name);
                else
                        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, name,
                                        sizeof name);
                fprintf(stderr, "ackc: --source %s is not of the same address family as %s\n", name,
                        b->sh.target_name);
                return EXIT_USAGE;
        }
        case STEP_PROXY:
                fprintf(stderr, "ackc: cannot build the PROXY header for %s: %s\n", b->sh.target_name,
                        STRERROR(r));
                return EXIT_FAILURE;
        case STEP_SETUP:
                fprintf(stderr, "ackc: cannot set up the benchmark: %s\n", STRERROR(r));
                return EXIT_FAILURE;
        case STEP_THREADS:
                fprintf(stderr, "ackc: cannot start a thread: %s\n", STRERROR(r));
                return EXIT_FAILURE;
        case STEP_REPORT:
                break;
        }
        fprintf(stderr, "ackc: %s\n", r == -ENOMEM ? "out of memory" : STRERROR(r));
        return EXIT_FAILURE;
}

int bench_run(const ClientArgs *a) {
        _cleanup_(bench_done) Bench b = { .args = a, .signal_fd = -1, .sh.done_fd = -1 };
        int r;

        r = bench_prepare(&b);
        if (r >= 0)
                r = bench_start(&b);
        if (r >= 0) {
                bench_wait(&b);
                r = bench_report(&b);
        }
        return r < 0 ? bench_failure(&b, r) : r;
}
