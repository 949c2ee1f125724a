/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics listener's own thread: a small HTTP/1.1 responder for GET and
 * HEAD of /metrics and /healthz, on every listener of mode metrics. It is
 * ackd's own rather than libmicrohttpd because it must bound the whole time a
 * request may take (libmicrohttpd's connection timeout only bounds inactivity,
 * so a client sending a byte a second would hold a connection for ever), cap
 * the connections exactly (the oldest gives way to a new one), and serve two
 * paths without bodies; ackd's epoll and timer queues do that in a few hundred
 * lines. Its own thread and epoll set mean no worker serving acks ever waits
 * for it; the pages are made from relaxed reads of the workers' counters.
 *
 * Bounds: METRICS_CONNECTIONS_MAX connections; a request head of at most
 * HTTP_REQUEST_HEAD_MAX bytes, complete (and its response written) within
 * METRICS_REQUEST_TIMEOUT_MS of its first byte (or of the connection); an idle
 * keep-alive connection closed after METRICS_IDLE_TIMEOUT_MS.
 */

#include "metrics.h"

#define METRICS_CONNECTIONS_MAX    256
#define METRICS_REQUEST_TIMEOUT_MS 5000
#define METRICS_IDLE_TIMEOUT_MS    30000

typedef struct MetricsServer MetricsServer;

/* Starts the thread if the set has metrics listeners (else *ret is NULL and nothing runs).
 * src must stay valid until metrics_server_stop(). */
int metrics_server_start(MetricsServer **ret, const ListenerSet *listeners, const MetricsSource *src);

/* Stops the thread, closes its connections (not the listeners) and frees it. Accepts NULL. */
MetricsServer *metrics_server_stop(MetricsServer *m);
