/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Counters, defined once. Each worker owns its own set and is the only writer,
 * so an increment is a plain load and store (no locked instruction on the hot
 * path); the main thread sums them for STATUS= and the exit summary.
 */

#include <stdatomic.h>
#include <stdint.h>

/*
 * X(field, name in STATUS= and the exit summary, counts toward STATUS='s "errors",
 *   metric family (after "ackd_"), the family's own label name and value or NULL,
 *   help text)
 *
 * Each worker keeps one set per listener. STATUS= and the exit summary show the
 * sums; the metrics label each listener's sum with its address and mode. Rows of
 * one family are adjacent; the first holds its help text, the others NULL.
 */
#define ACKD_STATS(X)                                                                                       \
        X(accepted, "accepted", 0, "connections_accepted_total", NULL, NULL,                                \
          "Connections accepted, those answered ERR busy included.")                                        \
        X(messages, "messages", 0, "messages_received_total", NULL, NULL, "Messages received.")             \
        X(acknowledged, "acknowledged", 0, "acks_sent_total", NULL, NULL,                                   \
          "Acknowledgements written to clients.")                                                           \
        X(busy, "busy", 1, "connections_rejected_total", "reason", "busy",                                  \
          "Connections refused: busy, answered ERR busy over max-connections; untrusted, a +proxy "         \
          "listener's connection from a source not in --proxy-from.")                                       \
        X(proxy_untrusted, "proxy-untrusted", 1, "connections_rejected_total", "reason", "untrusted", NULL) \
        X(too_long, "too-long", 1, "messages_too_long_total", NULL, NULL,                                   \
          "Messages longer than max-message, answered ERR message too long.")                               \
        X(idle_timeouts, "idle-timeouts", 0, "idle_timeouts_total", NULL, NULL,                             \
          "Connections closed after idle-timeout without a message.")                                       \
        X(resets, "resets", 1, "connection_resets_total", NULL, NULL,                                       \
          "Connections that failed, or were reset by the client with acknowledgements or a message lost.")  \
        X(reset_closes, "reset-closes", 0, "connection_reset_closes_total", NULL, NULL,                     \
          "Connections reset by clients that had everything they were owed: normal closes.")                \
        X(accept_errors, "accept-errors", 1, "accept_errors_total", NULL, NULL, "Failed accept() calls.")   \
        X(proxy_bad_headers, "proxy-bad-headers", 1, "proxy_header_errors_total", "reason", "malformed",    \
          "Connections of +proxy listeners closed for their PROXY header: malformed (or too long, or "      \
          "truncated), or timeout (not complete within --proxy-timeout).")                                  \
        X(proxy_timeouts, "proxy-timeouts", 1, "proxy_header_errors_total", "reason", "timeout", NULL)      \
        X(handed_over, "handed-over", 0, "connections_handed_over_total", NULL, NULL,                       \
          "Connections handed to the next ackd on a restart, open.")                                        \
        X(taken_over, "taken-over", 0, "connections_taken_over_total", NULL, NULL,                          \
          "Connections taken over from the previous ackd on a restart.")                                    \
        X(handover_lost, "handover-lost", 1, "connections_handover_lost_total", NULL, NULL,                 \
          "Connections handed over on a restart that could not be taken over, closed.")

typedef struct Stats {
#define STATS_FIELD(f, ...) uint64_t f;
        ACKD_STATS(STATS_FIELD)
#undef STATS_FIELD
} Stats;

typedef struct WorkerStats {
#define STATS_FIELD(f, ...) _Atomic uint64_t f;
        ACKD_STATS(STATS_FIELD)
#undef STATS_FIELD
} WorkerStats;

/* Single writer: the owning worker. */
static inline void stat_add(_Atomic uint64_t *counter, uint64_t n) {
        atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

static inline void stats_accumulate(Stats *sum, const WorkerStats *w) {
#define STATS_ADD(f, ...) sum->f += atomic_load_explicit(&w->f, memory_order_relaxed);
        ACKD_STATS(STATS_ADD)
#undef STATS_ADD
}

static inline uint64_t stats_errors(const Stats *s) {
        uint64_t n = 0;
#define STATS_ERR(f, name, err, ...) \
        if (err)                     \
                n += s->f;
        ACKD_STATS(STATS_ERR)
#undef STATS_ERR
        return n;
}
