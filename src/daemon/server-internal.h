/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The main thread's state, shared by its three parts: server.c (start, the
 * signal loop, stop), server-reload.c (SIGHUP) and server-status.c (STATUS=,
 * the watchdog and the health /healthz reports, the exit summary).
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "handover-state.h"
#include "listener.h"
#include "metrics-server.h"
#include "settings.h"
#include "stats.h"
#include "worker.h"

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
        uint64_t watchdog_usec; /* 0: no watchdog */
        uint64_t last_watchdog;
        uint64_t last_status;
        uint64_t *last_heartbeats;
        unsigned *stalled_ticks; /* per worker: ticks in a row without progress */
        bool delaying;           /* asked to stop: serving out --shutdown-delay first */
        uint64_t delay_deadline_usec;
        bool stopping;               /* draining */
        uint64_t stop_deadline_usec; /* when the drain (after any delay) must be over */
        bool handing_over;           /* restarting: workers export their connections */
        bool handed_over;            /* ... and the store has them */
        HandoverState handover;      /* what the previous ackd left, until the workers took it */
        _Atomic unsigned health;     /* HEALTH_* (metrics.h) */
        MetricsSource metrics_source;
        MetricsServer *metrics;
} Server;

/* server.c */
unsigned cpu_count(void);
int server_apply_limits(Server *s, bool warn);

/* What server_wait_workers() waits for: returns how many workers are not there yet,
 * or a negative errno when waiting is pointless. */
typedef int (*worker_condition_fn)(const Server *s, const void *userdata);

/*
 * Waits on the workers' shared eventfd until `lagging` returns 0 (returns 0), returns
 * an error (returns it), or the deadline passes (returns the number still lagging).
 * deadline_usec is CLOCK_MONOTONIC, or UINT64_MAX for none. The eventfd only says
 * "look"; the condition reads the workers' state flags.
 */
int server_wait_workers(Server *s, worker_condition_fn lagging, const void *userdata,
                        uint64_t deadline_usec);

/* server-reload.c */
void server_reload(Server *s);

/* server-status.c */
Stats server_stats(const Server *s);
void server_status(Server *s);
/* Every tick: whether each worker still makes progress (HEALTH_STUCK), and the watchdog. */
void server_check_progress(Server *s, uint64_t now);
void server_log_settings(const Server *s, const char *verb);
void server_log_summary(const Server *s);
