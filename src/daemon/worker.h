/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A worker thread: one epoll instance that owns its connections end to end.
 * Every listener is in every worker's epoll set with EPOLLEXCLUSIVE, so the
 * kernel wakes one worker per incoming connection and no connection ever
 * crosses threads. Nothing on the hot path takes a lock: the only shared
 * writes are admission's atomic counters, two per connection.
 *
 * Trigger mode: level-triggered for everything. A connection reads at most once
 * per wakeup and epoll reports what remains, which keeps one fast client from
 * starving the others; interest is changed (EPOLL_CTL_MOD) only when output
 * blocks, which a well-behaved client never causes.
 *
 * The main thread sets flags in `control` and rings the worker's control eventfd;
 * the worker answers by updating its state flags (started, generation, unlistened,
 * exited) and ringing the shared event_fd, so the main thread knows to look.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "admission.h"
#include "connection.h"
#include "handover-state.h"
#include "listener.h"
#include "log.h"
#include "settings.h"

/* State shared by the main thread and every worker. */
typedef struct WorkerShared {
        pthread_mutex_t lock; /* guards settings and generation */
        const Settings *settings;
        unsigned generation; /* bumped with each new settings */
        Admission admission;
        int event_fd;                        /* eventfd: some worker's state flags changed */
        RateLimit accept_log;                /* EMFILE and friends */
        ConnectionLogLimits connection_logs; /* ERR busy, PROXY header problems */
        unsigned heartbeat_ms;               /* longest a worker sleeps (the watchdog needs ticks) */
        _Atomic int64_t handover_budget;     /* restart: connections the fd store's carriers hold */
} WorkerShared;

enum {
        WORKER_RELOAD = 1 << 0,
        WORKER_STOP = 1 << 1,
        WORKER_ABORT = 1 << 2,    /* second signal: close everything now */
        WORKER_HANDOVER = 1 << 3, /* restart: export what the budget allows, drain the rest */
};

/* What a worker hands over on a restart: written by the worker, read by the main
 * thread once Worker.exported is set. */
typedef struct WorkerExport {
        HandoverConnection *records;
        int *fds;
        unsigned *generations; /* of each record's profile */
        size_t n, allocated;
        HandoverProfile *profiles;     /* one per generation met ... */
        unsigned *profile_generations; /* ... which is this */
        size_t n_profiles, profiles_allocated;
} WorkerExport;

/* A connection the worker resumes at start, from the previous ackd. */
typedef struct WorkerImport {
        int fd;
        const HandoverConnection *record;
        const Listener *listener;
        uint32_t profile; /* index into the state's profiles */
} WorkerImport;

typedef struct WorkerListener {
        uint8_t kind; /* SOURCE_LISTENER */
        const Listener *listener;
        unsigned taken_at_stop; /* accepted once sealed (listener-seal.h) */
} WorkerListener;

typedef struct Worker {
        WorkerShared *shared;
        unsigned id;
        pthread_t thread;
        bool thread_started;

        int epoll_fd;
        int control_fd;       /* eventfd: the main thread set `control` */
        uint8_t control_kind; /* SOURCE_CONTROL; epoll data points here */
        _Atomic unsigned control;

        WorkerListener *listeners;
        size_t n_listeners;
        const Listener *adopt;  /* inetd mode: the one connection to serve ... */
        int adopt_fd;           /* ... and its socket, owned until served */
        bool listening;         /* listeners are in the epoll set */
        uint64_t accept_resume; /* after EMFILE: when to listen again (0: not paused) */

        ConnectionContext conns; /* the connections, their clock and counters */

        WorkerImport *imports; /* set before worker_start(), resumed by the thread */
        size_t n_imports;
        const HandoverState *import_state; /* what imports point into */
        WorkerExport exports;

        bool stopping;
        uint64_t drain_timeout_ms;
        uint64_t drain_deadline;
        uint64_t settle_deadline; /* stopping: taking from sealed listeners until (0: not) */

        _Atomic uint64_t heartbeat;  /* loop iterations; the watchdog checks it moves */
        _Atomic unsigned generation; /* of the settings new connections get */
        _Atomic bool started;
        _Atomic bool unlistened; /* stopping: the listeners left the epoll set */
        _Atomic bool exported;   /* restart: exports is complete */
        _Atomic bool exited;
} Worker;

/* A worker with counters for every listener of the set; it watches them all for new
 * connections unless `watch` is false (inetd mode: it gets its one connection by
 * worker_adopt()). */
int worker_new(Worker **ret, unsigned id, WorkerShared *shared, const ListenerSet *listeners, bool watch);
Worker *worker_free(Worker *w);

/* Restart handover: resume this connection from the previous ackd when the thread starts
 * (taking ownership of fd; state must live until the worker started). */
int worker_add_import(Worker *w, const HandoverState *state, const WorkerImport *import);

/* inetd mode: serve this one connected socket (taking ownership of fd), then exit. */
void worker_adopt(Worker *w, const Listener *l, int fd);

int worker_start(Worker *w);
void worker_signal(Worker *w, unsigned control);
void worker_join(Worker *w);

/* The worker's counters for listener i, for the main thread (relaxed reads of
 * single-writer counters). */
static inline const WorkerStats *worker_stats(const Worker *w, size_t i) {
        return &w->conns.stats[i];
}
