/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the metrics listener serves: the Prometheus page, made from the same
 * counter table as STATUS= and the exit summary (stats.h), and the health a
 * load balancer asks for. Everything is read with relaxed atomic loads from
 * the metrics thread: nothing here takes a lock a worker could wait on.
 */

#include <stdatomic.h>

#include "admission.h"
#include "listener.h"
#include "metrics-text.h"
#include "worker.h"

/* Why /healthz answers 503: bits in MetricsSource.health, set by the main thread. */
enum {
        HEALTH_DRAINING = 1 << 0,  /* stopping, or in the --shutdown-delay before it */
        HEALTH_RELOADING = 1 << 1, /* between RELOADING=1 and the next READY=1 */
        HEALTH_STUCK = 1 << 2,     /* a worker made no progress (the watchdog's condition) */
};

typedef struct MetricsSource {
        Worker *const *workers;
        unsigned n_workers;
        const ListenerSet *listeners;
        const Admission *admission;
        const _Atomic unsigned *health;
        double start_time; /* seconds since the epoch */
} MetricsSource;

/* The whole page into t (reset first). Returns 0, or t's error. */
int metrics_render(MetricsText *t, const MetricsSource *src);

/* /healthz: the first reason it is not healthy ("draining", "reloading", "stuck"),
 * or NULL when every worker serves. */
const char *metrics_health_problem(const MetricsSource *src);
