/* SPDX-License-Identifier: MIT */
/* The main thread's life: set-up, the signal and tick loop, and the stop (after any
 * --shutdown-delay). SIGHUP is server-reload.c's, reporting server-status.c's. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "fd-util.h"
#include "handover.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "parse-util.h"
#include "privileges.h"
#include "server-internal.h"
#include "server.h"
#include "signal-util.h"
#include "socket-cleanup.h"
#include "time-util.h"

#define STATUS_INTERVAL_USEC USEC_PER_SEC
#define LOG_INTERVAL_USEC    (10 * USEC_PER_SEC) /* repeated warnings: one line per interval */

static int server_raise_fd_limit(Server *s) {
        int error = 0;
        int64_t limit = fd_limit_raise(&error);

        if (limit < 0)
                return log_error_errno((int)limit, "Failed to read the file descriptor limit: %s",
                                       STRERROR((int)limit));
        if (error != 0)
                log_warning_errno(error, "Failed to raise the file descriptor limit to its hard limit: %s",
                                  STRERROR(error));
        s->fd_limit = (uint64_t)limit;
        return 0;
}

unsigned cpu_count(void) {
        cpu_set_t set;

        /* Respects taskset/CPUAffinity=, unlike sysconf(_SC_NPROCESSORS_ONLN). */
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        return 1;
}

/* max-connections, capped so that admitted connections plus those being told ERR busy
 * always fit under RLIMIT_NOFILE. */
int server_apply_limits(Server *s, bool warn) {
        uint64_t reserved = ADMISSION_FD_RESERVE_BASE + s->listeners.n_items + 2 * (uint64_t)s->n_workers;
        AdmissionLimits limits;
        int r;

        /* The metrics thread's connections and its epoll and eventfd. */
        for (size_t i = 0; i < s->listeners.n_items; i++)
                if (s->listeners.items[i].mode == PROTOCOL_METRICS) {
                        reserved += METRICS_CONNECTIONS_MAX + 2;
                        break;
                }

        r = admission_limits(s->settings->max_connections, s->fd_limit, reserved, &limits);
        if (r < 0)
                return log_error_errno(r, "The file descriptor limit (%llu) is too low to serve anything",
                                       (unsigned long long)s->fd_limit);
        if (r > 0 && warn)
                log_warning("max-connections %llu exceeds what the file descriptor limit (%llu) allows; "
                            "serving at most %llu",
                            (unsigned long long)s->settings->max_connections,
                            (unsigned long long)s->fd_limit, (unsigned long long)limits.max_connections);
        admission_set_limits(&s->shared.admission, &limits);
        return 0;
}

int server_wait_workers(Server *s, worker_condition_fn lagging, const void *userdata,
                        uint64_t deadline_usec) {
        for (;;) {
                struct pollfd p = { .fd = s->shared.event_fd, .events = POLLIN };
                int r = lagging(s, userdata), timeout = -1;
                uint64_t now;

                if (r <= 0)
                        return r;
                if (deadline_usec != UINT64_MAX) {
                        now = now_usec(CLOCK_MONOTONIC);
                        if (now >= deadline_usec)
                                return r;
                        timeout = (int)((deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }
                if (poll(&p, 1, timeout) < 0 && errno != EINTR)
                        return log_error_errno(errno, "poll() failed: %s", STRERROR(errno));
                eventfd_drain(s->shared.event_fd);
        }
}

/* Workers not yet accepting; -EIO if one failed to start. */
static int workers_not_started(const Server *s, const void *userdata) {
        int waiting = 0;

        for (unsigned i = 0; i < s->n_workers; i++) {
                /* (In inetd mode a worker may start, serve and exit before we look.) */
                if (atomic_load(&s->workers[i]->started))
                        continue;
                if (atomic_load(&s->workers[i]->exited))
                        return log_error_errno(EIO, "Worker %u failed to start", i);
                waiting++;
        }
        return waiting;
}

/* Drains, or with abort_now closes everything at once. */
static void server_stop(Server *s, bool abort_now) {
        if (!s->stopping) {
                uint64_t drain = s->settings->drain_timeout_ms;

                s->stopping = true;
                s->delaying = false;
                s->stop_deadline_usec = now_usec(CLOCK_MONOTONIC) + drain * USEC_PER_MSEC;
                atomic_fetch_or(&s->health, HEALTH_DRAINING);
                log_notice("Stopping: no new connections, draining for up to %llums",
                           (unsigned long long)drain);
                notify_stopping();
        } else
                log_notice("Second stop request: closing all connections now");

        for (unsigned i = 0; i < s->n_workers; i++)
                worker_signal(s->workers[i], abort_now ? WORKER_ABORT : WORKER_STOP);
}

/*
 * SIGTERM or SIGINT. With --shutdown-delay, the first one only makes /healthz answer 503
 * while everything else goes on, so that load balancers move traffic away; the drain
 * starts when the delay is over, or at once on a second signal. The next signal during
 * the drain closes everything.
 */
static void server_request_stop(Server *s) {
        uint64_t delay = s->settings->shutdown_delay_ms, now = now_usec(CLOCK_MONOTONIC);
        char text[32];

        if (s->stopping || s->delaying || delay == 0 || s->listeners.inetd) {
                server_stop(s, s->stopping);
                return;
        }
        s->delaying = true;
        s->delay_deadline_usec = now + delay * USEC_PER_MSEC;
        s->stop_deadline_usec = s->delay_deadline_usec + s->settings->drain_timeout_ms * USEC_PER_MSEC;
        atomic_fetch_or(&s->health, HEALTH_DRAINING);
        log_notice("Stopping in %s: serving meanwhile, with /healthz answering 503",
                   format_duration_ms(text, sizeof text, delay));
        notify_stopping();
        server_status(s);
}

/* SIGUSR2, ackd.service's RestartKillSignal=: hand the connections to the next ackd, or
 * drain where that cannot be. */
static void server_request_restart(Server *s) {
        const char *why;

        if (s->stopping || s->delaying)
                return;
        if (!handover_possible(s, &why)) {
                log_notice("Restart: draining instead of handing connections over: %s", why);
                server_request_stop(s);
                return;
        }
        s->stopping = s->handing_over = true;
        s->stop_deadline_usec = now_usec(CLOCK_MONOTONIC) + s->settings->drain_timeout_ms * USEC_PER_MSEC;
        atomic_fetch_or(&s->health, HEALTH_DRAINING);
        atomic_store(&s->shared.handover_budget, (int64_t)handover_capacity());
        log_notice("Restart: handing the connections over to the next ackd");
        notify_stopping();
        for (unsigned i = 0; i < s->n_workers; i++)
                worker_signal(s->workers[i], WORKER_HANDOVER);
}

/* Workers that have not yet exported what they hand over. */
static int workers_not_exported(const Server *s, const void *userdata) {
        int waiting = 0;

        for (unsigned i = 0; i < s->n_workers; i++)
                waiting += !atomic_load(&s->workers[i]->exported) && !atomic_load(&s->workers[i]->exited);
        return waiting;
}

static int server_setup_signals(Server *s) {
        static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR2 };

        /* Before the workers exist, so they inherit the mask. */
        s->signal_fd = signalfd_open_blocked(signals, ELEMENTSOF(signals));
        if (s->signal_fd < 0)
                return log_error_errno(s->signal_fd, "Failed to set up signal handling: %s",
                                       STRERROR(s->signal_fd));
        return 0;
}

static int server_setup_tick(Server *s) {
        struct itimerspec its;
        uint64_t usec = STATUS_INTERVAL_USEC;

        s->watchdog_usec = notify_watchdog_usec();
        if (s->watchdog_usec > 0)
                usec = MIN(usec, s->watchdog_usec / 4);
        usec = MAX(usec, 10 * USEC_PER_MSEC);
        s->tick_usec = usec;
        /* Workers wake at least twice a tick, so a live worker always shows progress. */
        s->shared.heartbeat_ms = (unsigned)MAX(usec / USEC_PER_MSEC / 2, 5);

        s->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (s->tick_fd < 0)
                return log_error_errno(errno, "Failed to create timerfd: %s", STRERROR(errno));
        its.it_interval = (struct timespec){ .tv_sec = (time_t)(usec / USEC_PER_SEC),
                                             .tv_nsec = (long)(usec % USEC_PER_SEC) * 1000 };
        its.it_value = its.it_interval;
        if (timerfd_settime(s->tick_fd, 0, &its, NULL) < 0)
                return log_error_errno(errno, "Failed to arm timerfd: %s", STRERROR(errno));
        return 0;
}

/* Creates the workers, gives them what the previous ackd handed over, and starts them. */
static int server_start_workers(Server *s) {
        int r;

        s->workers = calloc(s->n_workers, sizeof *s->workers);
        s->last_heartbeats = calloc(s->n_workers, sizeof *s->last_heartbeats);
        s->stalled_ticks = calloc(s->n_workers, sizeof *s->stalled_ticks);
        if (!s->workers || !s->last_heartbeats || !s->stalled_ticks)
                return log_error_errno(ENOMEM, "Out of memory");

        for (unsigned i = 0; i < s->n_workers; i++) {
                /* In inetd mode the one worker gets the connection, and nothing to listen on. */
                r = worker_new(&s->workers[i], i, &s->shared, &s->listeners, !s->listeners.inetd);
                if (r < 0)
                        return log_error_errno(r, "Failed to create worker %u: %s", i, STRERROR(r));
        }
        if (s->listeners.inetd) {
                Listener *l = &s->listeners.items[0];

                worker_adopt(s->workers[0], l, l->fd);
                l->fd = -1;
        }
        handover_take(s);
        for (unsigned i = 0; i < s->n_workers; i++) {
                r = worker_start(s->workers[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to start worker thread %u: %s", i, STRERROR(r));
        }

        /* READY=1 only once every worker is accepting (and has resumed what it took over). */
        r = server_wait_workers(s, workers_not_started, NULL, UINT64_MAX);
        handover_take_done(s);
        return r < 0 ? r : 0;
}

static int server_start_metrics(Server *s) {
        int r;

        s->metrics_source = (MetricsSource){
                .workers = s->workers,
                .n_workers = s->n_workers,
                .listeners = &s->listeners,
                .admission = &s->shared.admission,
                .health = &s->health,
                .start_time = (double)now_usec(CLOCK_REALTIME) / (double)USEC_PER_SEC,
        };
        r = metrics_server_start(&s->metrics, &s->listeners, &s->metrics_source);
        if (r < 0)
                return log_error_errno(r, "Failed to start the metrics thread: %s", STRERROR(r));
        return 0;
}

static void server_handle_signals(Server *s) {
        struct signalfd_siginfo si;

        while (read(s->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                switch (si.ssi_signo) {
                case SIGHUP:
                        if (!s->stopping && !s->delaying) {
                                log_notice("SIGHUP: reloading the configuration");
                                server_reload(s);
                        }
                        break;
                case SIGTERM:
                case SIGINT:
                        server_request_stop(s);
                        break;
                case SIGUSR2:
                        server_request_restart(s);
                        break;
                }
        }
}

static void server_tick(Server *s) {
        uint64_t expirations, now = now_usec(CLOCK_MONOTONIC);

        (void)!read(s->tick_fd, &expirations, sizeof expirations);
        server_check_progress(s, now);
        /* The tick may be faster than a second for the watchdog's sake; STATUS= need not. */
        if (now >= s->last_status + STATUS_INTERVAL_USEC) {
                server_status(s);
                s->last_status = now;
        }
        if ((s->stopping || s->delaying) && now < s->stop_deadline_usec + USEC_PER_SEC)
                /* Tell systemd the stop is progressing, so TimeoutStopSec= does not cut it short. */
                notify_extend_timeout(s->stop_deadline_usec + USEC_PER_SEC - now + s->tick_usec);
}

/*
 * Looks at every worker after each wakeup: the eventfd only says "look", the flags say
 * what happened (a notice read while waiting for startup is not lost this way).
 * Returns true once every worker has exited.
 */
static bool server_check_workers(Server *s, bool *failed) {
        unsigned exited = 0, unlistened = 0;

        for (unsigned i = 0; i < s->n_workers; i++) {
                bool e = atomic_load(&s->workers[i]->exited);

                exited += e;
                unlistened += e || atomic_load(&s->workers[i]->unlistened);
        }

        /* Every worker has exported what it hands over: to the store with it. */
        if (s->handing_over && !s->handed_over && workers_not_exported(s, NULL) == 0) {
                (void)handover_give(s);
                s->handed_over = true;
        }

        /* In inetd mode the worker ends when its connection does; otherwise it never should. */
        if (exited > 0 && !s->stopping && !s->listeners.inetd) {
                log_error("A worker exited unexpectedly; stopping");
                *failed = true;
                server_stop(s, false);
        }

        /* Once no worker watches them, close the sockets ackd bound itself, so new clients
         * are refused at once instead of waiting in a backlog nobody will accept from.
         * Sockets from systemd stay open: their queued clients wait for the next instance. */
        if (s->stopping && unlistened == s->n_workers)
                listener_set_close_bound(&s->listeners);

        return exited == s->n_workers;
}

/* Milliseconds until the --shutdown-delay is over, or -1 when none is running. */
static int delay_timeout(const Server *s) {
        uint64_t now;

        if (!s->delaying)
                return -1;
        now = now_usec(CLOCK_MONOTONIC);
        return now >= s->delay_deadline_usec
                       ? 0
                       : (int)((s->delay_deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static int server_loop(Server *s) {
        bool failed = false;

        for (;;) {
                struct pollfd p[] = {
                        { .fd = s->signal_fd, .events = POLLIN },
                        { .fd = s->tick_fd, .events = POLLIN },
                        { .fd = s->shared.event_fd, .events = POLLIN },
                };

                if (server_check_workers(s, &failed))
                        return failed ? -EIO : 0;

                if (poll(p, ELEMENTSOF(p), delay_timeout(s)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "poll() failed: %s", STRERROR(errno));
                }
                if (p[0].revents)
                        server_handle_signals(s);
                if (p[1].revents)
                        server_tick(s);
                if (p[2].revents)
                        eventfd_drain(s->shared.event_fd);
                if (s->delaying && delay_timeout(s) == 0)
                        server_stop(s, false);
        }
}

static void server_done(Server *s) {
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                if (s->workers[i])
                        worker_signal(s->workers[i], WORKER_ABORT);
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                if (s->workers[i])
                        worker_join(s->workers[i]);
        /* The metrics thread reads the workers' counters: it goes first. */
        s->metrics = metrics_server_stop(s->metrics);
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                s->workers[i] = worker_free(s->workers[i]);
        free(s->workers);
        free(s->last_heartbeats);
        free(s->stalled_ticks);
        listener_set_close(&s->listeners);
        safe_close(s->signal_fd);
        safe_close(s->tick_fd);
        safe_close(s->shared.event_fd);
        pthread_mutex_destroy(&s->shared.lock);
        handover_state_done(&s->handover);
        free(s->settings);
}

/* Everything up to READY=1. */
static int server_start(Server *s) {
        int r;

        r = server_raise_fd_limit(s);
        if (r < 0)
                return r;
        r = server_setup_signals(s);
        if (r < 0)
                return r;
        r = listener_set_open(&s->listeners, s->settings);
        if (r < 0)
                return r;
        s->n_workers = s->listeners.inetd         ? 1
                       : s->settings->threads > 0 ? s->settings->threads
                                                  : cpu_count();
        /* Sockets are open: root, if we had it, is no longer needed. */
        socket_cleanup_start(&s->listeners, s->settings->user);
        r = privileges_drop(s->settings->user);
        if (r < 0)
                return r;
        r = server_apply_limits(s, true);
        if (r < 0)
                return r;
        r = server_setup_tick(s);
        if (r < 0)
                return r;
        s->shared.event_fd = r = eventfd_open();
        if (r < 0)
                return log_error_errno(r, "Failed to create eventfd: %s", STRERROR(r));
        r = server_start_workers(s);
        if (r < 0)
                return r;
        return server_start_metrics(s);
}

int server_run(const CommandLine *command_line, Settings *settings) {
        Server s = {
                .command_line = command_line,
                .settings = settings,
                .signal_fd = -1,
                .tick_fd = -1,
                .shared = {
                        .lock = PTHREAD_MUTEX_INITIALIZER,
                        .settings = settings,
                        .event_fd = -1,
                        .accept_log = RATELIMIT_INIT(LOG_INTERVAL_USEC),
                        .connection_logs = {
                                .busy = RATELIMIT_INIT(LOG_INTERVAL_USEC),
                                .proxy = RATELIMIT_INIT(LOG_INTERVAL_USEC),
                        },
                },
        };
        int r;

        r = server_start(&s);
        if (r >= 0) {
                server_log_settings(&s, "Ready");
                notify_ready();
                server_status(&s);

                r = server_loop(&s);
                for (unsigned i = 0; i < s.n_workers; i++)
                        worker_join(s.workers[i]);
                server_log_summary(&s);
        }
        server_done(&s);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
