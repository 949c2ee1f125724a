/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "fd-util.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "parse-util.h"
#include "privileges.h"
#include "server.h"
#include "signal-util.h"
#include "socket-cleanup.h"
#include "time-util.h"
#include "worker.h"

#define STATUS_INTERVAL_USEC  USEC_PER_SEC
#define LOG_INTERVAL_USEC     (10 * USEC_PER_SEC)     /* repeated warnings: one line per interval */
#define RELOAD_WAIT_USEC      (5 * USEC_PER_SEC)      /* longest wait for the workers to reload */

typedef struct Server {
        const CommandLine *command_line;
        Settings *settings;
        ListenerSet listeners;
        WorkerShared shared;
        Worker **workers;
        unsigned n_workers;
        int signal_fd;
        int tick_fd;
        uint64_t fd_limit;
        uint64_t tick_usec;
        uint64_t watchdog_usec;         /* 0: no watchdog */
        uint64_t last_watchdog;
        uint64_t last_status;
        uint64_t *last_heartbeats;
        bool stopping;
        uint64_t stop_deadline_usec;
} Server;

static int server_raise_fd_limit(Server *s) {
        int error = 0;
        int64_t limit = fd_limit_raise(&error);

        if (limit < 0)
                return log_error_errno((int)limit, "Failed to read the file descriptor limit: %s", STRERROR((int)limit));
        if (error != 0)
                log_warning_errno(error, "Failed to raise the file descriptor limit to its hard limit: %s",
                                  STRERROR(error));
        s->fd_limit = (uint64_t)limit;
        return 0;
}

static unsigned cpu_count(void) {
        cpu_set_t set;

        /* Respects taskset/CPUAffinity=, unlike sysconf(_SC_NPROCESSORS_ONLN). */
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        return 1;
}

/* max-connections, capped so that admitted connections plus those being told ERR busy
 * always fit under RLIMIT_NOFILE. */
static int server_apply_limits(Server *s, bool warn) {
        uint64_t reserved = ADMISSION_FD_RESERVE_BASE + s->listeners.n_items + 2 * (uint64_t)s->n_workers;
        AdmissionLimits limits;
        int r;

        r = admission_limits(s->settings->max_connections, s->fd_limit, reserved, &limits);
        if (r < 0)
                return log_error_errno(r, "The file descriptor limit (%llu) is too low to serve anything",
                                       (unsigned long long)s->fd_limit);
        if (r > 0 && warn)
                log_warning("max-connections %llu exceeds what the file descriptor limit (%llu) allows; "
                            "serving at most %llu",
                            (unsigned long long)s->settings->max_connections, (unsigned long long)s->fd_limit,
                            (unsigned long long)limits.max_connections);
        admission_set_limits(&s->shared.admission, &limits);
        return 0;
}

static Stats server_stats(const Server *s) {
        Stats sum = { 0 };

        for (unsigned i = 0; i < s->n_workers; i++)
                for (size_t l = 0; l < s->listeners.n_items; l++)
                        stats_accumulate(&sum, worker_stats(s->workers[i], l));
        return sum;
}

static void server_status(Server *s) {
        Stats st = server_stats(s);

        notify_status("%s %llu connections; accepted %llu, acknowledged %llu, errors %llu",
                      s->stopping ? "Draining" : "Serving",
                      (unsigned long long)admission_active(&s->shared.admission),
                      (unsigned long long)st.accepted, (unsigned long long)st.acknowledged,
                      (unsigned long long)stats_errors(&st));
}

/* The watchdog is fed only while every worker's loop keeps turning: a stuck worker
 * gets the whole service restarted (WatchdogSec=, Restart=). */
static void server_watchdog(Server *s, uint64_t now) {
        if (s->watchdog_usec == 0 || now < s->last_watchdog + s->watchdog_usec / 2)
                return;
        for (unsigned i = 0; i < s->n_workers; i++) {
                uint64_t hb = atomic_load(&s->workers[i]->heartbeat);

                if (hb == s->last_heartbeats[i] && !atomic_load(&s->workers[i]->exited)) {
                        log_warning("Worker %u made no progress; not feeding the watchdog", i);
                        return;
                }
        }
        for (unsigned i = 0; i < s->n_workers; i++)
                s->last_heartbeats[i] = atomic_load(&s->workers[i]->heartbeat);
        s->last_watchdog = now;
        notify_watchdog();
}

static void log_settings(const Server *s, const char *verb) {
        const Settings *st = s->settings;
        char idle[32], drain[32];

        /* One process per connection in inetd mode: keep its start and stop out of the journal. */
        log_full_errno(s->listeners.inetd ? LOG_DEBUG : LOG_NOTICE, 0,"%s: %u workers, max-connections %llu, max-message %llu, idle-timeout %s, "
                   "drain-timeout %s, ack \"%s\"",
                   verb, s->n_workers, (unsigned long long)admission_max_connections(&s->shared.admission),
                   (unsigned long long)st->max_message, format_duration_ms(idle, sizeof idle, st->idle_timeout_ms),
                   format_duration_ms(drain, sizeof drain, st->drain_timeout_ms), st->ack);
}

static bool listen_lists_equal(const Settings *a, const Settings *b) {
        if (a->n_listen != b->n_listen)
                return false;
        for (size_t i = 0; i < a->n_listen; i++)
                if (!listen_address_equal(&a->listen[i], &b->listen[i]))
                        return false;
        return true;
}

/* What server_wait_workers() waits for: returns how many workers are not there yet,
 * or a negative errno when waiting is pointless. */
typedef int (*worker_condition_fn)(const Server *s, const void *userdata);

/*
 * Waits on the workers' shared eventfd until `lagging` returns 0 (returns 0), returns
 * an error (returns it), or the deadline passes (returns the number still lagging).
 * deadline_usec is CLOCK_MONOTONIC, or UINT64_MAX for none. The eventfd only says
 * "look"; the condition reads the workers' state flags.
 */
static int server_wait_workers(Server *s, worker_condition_fn lagging, const void *userdata,
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

/* Workers not yet serving new connections with settings generation *userdata. */
static int workers_lagging_generation(const Server *s, const void *userdata) {
        unsigned generation = *(const unsigned *)userdata;
        int lagging = 0;

        for (unsigned i = 0; i < s->n_workers; i++)
                if (atomic_load(&s->workers[i]->generation) != generation && !atomic_load(&s->workers[i]->exited))
                        lagging++;
        return lagging;
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

static void server_reload(Server *s) {
        char err[SETTINGS_ERROR_MAX];
        Settings *n, *old;
        unsigned generation;
        int r;

        notify_reloading();

        n = malloc(sizeof *n);
        if (!n) {
                log_error("Reload failed: out of memory");
                goto done;
        }
        r = settings_load(s->command_line, n, err, sizeof err);
        if (r < 0) {
                log_error("Reload failed, keeping the running configuration: %s", err);
                free(n);
                goto done;
        }

        /* Sockets and threads are fixed for the life of the process. */
        if (!s->listeners.activated && !listen_lists_equal(n, s->settings))
                log_warning("Reload: listener changes take effect only on restart");
        if (strcmp(n->user, s->settings->user) != 0)
                log_warning("Reload: a new user takes effect only on restart");
        if (!s->listeners.inetd && (n->threads > 0 ? n->threads : cpu_count()) != s->n_workers)
                log_warning("Reload: a new thread count takes effect only on restart");

        log_set_max_level(n->log_level);

        pthread_mutex_lock(&s->shared.lock);
        old = s->settings;
        s->settings = n;
        s->shared.settings = n;
        generation = ++s->shared.generation;
        pthread_mutex_unlock(&s->shared.lock);
        free(old);

        (void)server_apply_limits(s, true);
        for (unsigned i = 0; i < s->n_workers; i++)
                worker_signal(s->workers[i], WORKER_RELOAD);
        /* "Reloaded" and READY=1 must mean it: every connection accepted afterwards gets the
         * new settings, so wait for each worker to take them. */
        r = server_wait_workers(s, workers_lagging_generation, &generation,
                                now_usec(CLOCK_MONOTONIC) + RELOAD_WAIT_USEC);
        if (r > 0)
                log_warning("Reload: %d workers have not taken the new settings yet", r);
        log_settings(s, "Reloaded");

done:
        notify_ready();
        server_status(s);
}

static void server_stop(Server *s, bool abort_now) {
        if (!s->stopping) {
                s->stopping = true;
                s->stop_deadline_usec = now_usec(CLOCK_MONOTONIC) + s->settings->drain_timeout_ms * USEC_PER_MSEC;
                log_notice("Stopping: no new connections, draining for up to %llums",
                           (unsigned long long)s->settings->drain_timeout_ms);
                notify_stopping();
        } else
                log_notice("Second stop request: closing all connections now");

        for (unsigned i = 0; i < s->n_workers; i++)
                worker_signal(s->workers[i], abort_now ? WORKER_ABORT : WORKER_STOP);
}

static int server_setup_signals(Server *s) {
        static const int signals[] = { SIGTERM, SIGINT, SIGHUP };

        /* Before the workers exist, so they inherit the mask. */
        s->signal_fd = signalfd_open_blocked(signals, ELEMENTSOF(signals));
        if (s->signal_fd < 0)
                return log_error_errno(s->signal_fd, "Failed to set up signal handling: %s", STRERROR(s->signal_fd));
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
        /* Workers wake at least this often, so a live worker always shows progress. */
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

static int server_start_workers(Server *s) {
        int r;

        s->workers = calloc(s->n_workers, sizeof *s->workers);
        s->last_heartbeats = calloc(s->n_workers, sizeof *s->last_heartbeats);
        if (!s->workers || !s->last_heartbeats)
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
        for (unsigned i = 0; i < s->n_workers; i++) {
                r = worker_start(s->workers[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to start worker thread %u: %s", i, STRERROR(r));
        }

        /* READY=1 only once every worker is accepting. */
        r = server_wait_workers(s, workers_not_started, NULL, UINT64_MAX);
        return r < 0 ? r : 0;
}

static void server_handle_signals(Server *s) {
        struct signalfd_siginfo si;

        while (read(s->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                switch (si.ssi_signo) {
                case SIGHUP:
                        if (!s->stopping) {
                                log_notice("SIGHUP: reloading the configuration");
                                server_reload(s);
                        }
                        break;
                case SIGTERM:
                case SIGINT:
                        server_stop(s, s->stopping);
                        break;
                }
        }
}

static void server_tick(Server *s) {
        uint64_t expirations, now = now_usec(CLOCK_MONOTONIC);

        (void)!read(s->tick_fd, &expirations, sizeof expirations);
        server_watchdog(s, now);
        /* The tick may be faster than a second for the watchdog's sake; STATUS= need not. */
        if (now >= s->last_status + STATUS_INTERVAL_USEC) {
                server_status(s);
                s->last_status = now;
        }
        if (s->stopping && now < s->stop_deadline_usec + USEC_PER_SEC)
                /* Tell systemd the stop is progressing, so TimeoutStopSec= does not cut the drain short. */
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

                if (poll(p, ELEMENTSOF(p), -1) < 0) {
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
        }
}

static void log_summary(const Server *s) {
        Stats st = server_stats(s);
        char line[512];
        size_t n = 0;

#define STATS_FORMAT(f, name, ...)                                                                      \
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %llu", n ? ", " : "", name,              \
                              (unsigned long long)st.f);
        ACKD_STATS(STATS_FORMAT)
#undef STATS_FORMAT
        log_full_errno(s->listeners.inetd ? LOG_DEBUG : LOG_NOTICE, 0, "Stopped: %s", line);
}

static void server_done(Server *s) {
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                if (s->workers[i])
                        worker_signal(s->workers[i], WORKER_ABORT);
        for (unsigned i = 0; s->workers && i < s->n_workers; i++)
                if (s->workers[i]) {
                        worker_join(s->workers[i]);
                        s->workers[i] = worker_free(s->workers[i]);
                }
        free(s->workers);
        free(s->last_heartbeats);
        listener_set_close(&s->listeners);
        safe_close(s->signal_fd);
        safe_close(s->tick_fd);
        safe_close(s->shared.event_fd);
        pthread_mutex_destroy(&s->shared.lock);
        free(s->settings);
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

        r = server_raise_fd_limit(&s);
        if (r < 0)
                goto finish;

        r = server_setup_signals(&s);
        if (r < 0)
                goto finish;
        r = listener_set_open(&s.listeners, settings);
        if (r < 0)
                goto finish;
        s.n_workers = s.listeners.inetd ? 1 : settings->threads > 0 ? settings->threads : cpu_count();
        /* Sockets are open: root, if we had it, is no longer needed. */
        socket_cleanup_start(&s.listeners, settings->user);
        r = privileges_drop(settings->user);
        if (r < 0)
                goto finish;
        r = server_apply_limits(&s, true);
        if (r < 0)
                goto finish;
        r = server_setup_tick(&s);
        if (r < 0)
                goto finish;
        s.shared.event_fd = r = eventfd_open();
        if (r < 0) {
                log_error_errno(r, "Failed to create eventfd: %s", STRERROR(r));
                goto finish;
        }

        r = server_start_workers(&s);
        if (r < 0)
                goto finish;

        log_settings(&s, "Ready");
        notify_ready();
        server_status(&s);

        r = server_loop(&s);
        for (unsigned i = 0; i < s.n_workers; i++)
                worker_join(s.workers[i]);
        log_summary(&s);

finish:
        server_done(&s);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
