/* SPDX-License-Identifier: MIT */
/* What the main thread tells about itself: STATUS=, the watchdog, the health that
 * /healthz reports, and the log lines at start, reload and exit. */
#include <stdio.h>

#include "log.h"
#include "notify.h"
#include "parse-util.h"
#include "server-internal.h"
#include "time-util.h"

/* Ticks in a row without a worker loop turning that make it stuck. Workers wake at
 * least twice a tick, so one tick may be a slow iteration; two are not. */
#define STALLED_TICKS_STUCK 2

Stats server_stats(const Server *s) {
        Stats sum = { 0 };

        for (unsigned i = 0; i < s->n_workers; i++)
                for (size_t l = 0; l < s->listeners.n_items; l++)
                        stats_accumulate(&sum, worker_stats(s->workers[i], l));
        return sum;
}

void server_status(Server *s) {
        Stats st = server_stats(s);

        notify_status("%s %llu connections; accepted %llu, acknowledged %llu, errors %llu",
                      s->stopping   ? "Draining"
                      : s->delaying ? "Stopping soon, serving"
                                    : "Serving",
                      (unsigned long long)admission_active(&s->shared.admission),
                      (unsigned long long)st.accepted, (unsigned long long)st.acknowledged,
                      (unsigned long long)stats_errors(&st));
}

/* The first worker that made no progress for STALLED_TICKS_STUCK ticks, or -1. */
static int find_stuck_worker(Server *s) {
        int stuck = -1;

        for (unsigned i = 0; i < s->n_workers; i++) {
                uint64_t hb = atomic_load(&s->workers[i]->heartbeat);

                if (hb != s->last_heartbeats[i] || atomic_load(&s->workers[i]->exited))
                        s->stalled_ticks[i] = 0;
                else if (++s->stalled_ticks[i] >= STALLED_TICKS_STUCK && stuck < 0)
                        stuck = (int)i;
                s->last_heartbeats[i] = hb;
        }
        return stuck;
}

/* A stuck worker makes /healthz answer 503 and stops the watchdog being fed, so that
 * systemd restarts the service (WatchdogSec=, Restart=). */
void server_check_progress(Server *s, uint64_t now) {
        int stuck = find_stuck_worker(s);
        unsigned was = atomic_load(&s->health) & HEALTH_STUCK;

        if (stuck >= 0 && !was) {
                log_warning("Worker %d made no progress for %llums; /healthz answers 503%s", stuck,
                            (unsigned long long)(STALLED_TICKS_STUCK * s->tick_usec / USEC_PER_MSEC),
                            s->watchdog_usec ? ", and the watchdog is not fed" : "");
                atomic_fetch_or(&s->health, HEALTH_STUCK);
        } else if (stuck < 0 && was) {
                log_notice("Every worker makes progress again");
                atomic_fetch_and(&s->health, ~(unsigned)HEALTH_STUCK);
        }
        if (stuck >= 0 || s->watchdog_usec == 0 || now < s->last_watchdog + s->watchdog_usec / 2)
                return;
        s->last_watchdog = now;
        notify_watchdog();
}

void server_log_settings(const Server *s, const char *verb) {
        const Settings *st = s->settings;
        char idle[32], drain[32];

        /* One process per connection in inetd mode: keep its start and stop out of the journal. */
        log_full_errno(s->listeners.inetd ? LOG_DEBUG : LOG_NOTICE, 0,
                       "%s: %u workers, max-connections %llu, max-message %llu, idle-timeout %s, "
                       "drain-timeout %s, ack \"%s\"",
                       verb, s->n_workers,
                       (unsigned long long)admission_max_connections(&s->shared.admission),
                       (unsigned long long)st->max_message,
                       format_duration_ms(idle, sizeof idle, st->idle_timeout_ms),
                       format_duration_ms(drain, sizeof drain, st->drain_timeout_ms), st->ack);
}

void server_log_summary(const Server *s) {
        Stats st = server_stats(s);
        char line[1024];
        size_t n = 0;

#define STATS_FORMAT(f, name, ...)                                                         \
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %llu", n ? ", " : "", name, \
                              (unsigned long long)st.f);
        ACKD_STATS(STATS_FORMAT)
#undef STATS_FORMAT
        log_full_errno(s->listeners.inetd ? LOG_DEBUG : LOG_NOTICE, 0, "Stopped: %s", line);
}
