/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Counters, defined once. Each worker owns its own set and is the only writer,
 * so an increment is a plain load and store (no locked instruction on the hot
 * path); the main thread sums them for STATUS= and the exit summary.
 */

#include <stdatomic.h>
#include <stdint.h>

/* X(field, name as shown in STATUS= and logs, counts toward "errors") */
#define ACKD_STATS(X)                                   \
        X(accepted, "accepted", 0)                      \
        X(messages, "messages", 0)                      \
        X(acknowledged, "acknowledged", 0)              \
        X(busy, "busy", 1)                              \
        X(too_long, "too-long", 1)                      \
        X(idle_timeouts, "idle-timeouts", 0)            \
        X(resets, "resets", 1)                          \
        X(reset_closes, "reset-closes", 0)              \
        X(accept_errors, "accept-errors", 1)

typedef struct Stats {
#define STATS_FIELD(f, name, err) uint64_t f;
        ACKD_STATS(STATS_FIELD)
#undef STATS_FIELD
} Stats;

typedef struct WorkerStats {
#define STATS_FIELD(f, name, err) _Atomic uint64_t f;
        ACKD_STATS(STATS_FIELD)
#undef STATS_FIELD
} WorkerStats;

/* Single writer: the owning worker. */
static inline void stat_add(_Atomic uint64_t *counter, uint64_t n) {
        atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

static inline void stats_accumulate(Stats *sum, const WorkerStats *w) {
#define STATS_ADD(f, name, err) sum->f += atomic_load_explicit(&w->f, memory_order_relaxed);
        ACKD_STATS(STATS_ADD)
#undef STATS_ADD
}

static inline uint64_t stats_errors(const Stats *s) {
        uint64_t n = 0;
#define STATS_ERR(f, name, err) if (err) n += s->f;
        ACKD_STATS(STATS_ERR)
#undef STATS_ERR
        return n;
}
