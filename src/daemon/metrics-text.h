/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A writer for the Prometheus text exposition format 0.0.4: families of
 * counters and gauges, each a "# HELP" and a "# TYPE" line followed by its
 * samples, into a growing buffer. Pure: no I/O, no locale, no clock.
 *
 * Errors are sticky, so a page is written without a check per line: the first
 * failure (-ENOMEM, or -ENOBUFS beyond max) is kept in ->error, later writes
 * do nothing, and the caller checks once at the end (each call also returns it);
 * a page with an error may end inside a line and is not to be served.
 *
 * Names come from ackd's code, never from input: a metric name that is not
 * [a-zA-Z_][a-zA-Z0-9_]* (no colons: those are for recording rules), a label
 * name that is not [a-zA-Z_][a-zA-Z0-9_]* or begins with "__" (reserved), a
 * label name repeated in one sample, a counter whose name does not end in
 * "_total", a sample outside a family or a negative counter abort() in every
 * build. Label values and help texts may hold anything: they are escaped as
 * the format asks (label values: backslash, double quote, newline; help:
 * backslash, newline), and bytes that are not UTF-8 (RFC 3629) become U+FFFD,
 * because Prometheus rejects the whole page over one invalid label value.
 */

#include <stddef.h>
#include <stdint.h>

/* What an HTTP response with such a page says it is. */
#define METRICS_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
} MetricType;

typedef struct MetricLabel {
        const char *name;
        const char *value;
} MetricLabel;

/* The labels and n_labels arguments from a list: METRIC_LABELS({ "listener", name }, { "mode", "line" }). */
#define METRIC_LABELS(...)                    \
        (const MetricLabel[]){ __VA_ARGS__ }, \
                sizeof((const MetricLabel[]){ __VA_ARGS__ }) / sizeof(MetricLabel)

typedef struct MetricsText {
        char *data; /* the page so far, NUL-terminated once anything was written */
        size_t len;
        size_t size;        /* allocated */
        size_t max;         /* the longest page allowed (NUL excluded); 0: no bound */
        int error;          /* the first failure, sticky until metrics_text_reset() */
        const char *family; /* the family being written, NULL before the first */
        MetricType family_type;
} MetricsText;

/* Empties the page and clears the error, keeping the allocation (and max) for the next one. */
void metrics_text_reset(MetricsText *t);

/* Frees the buffer; accepts a zeroed MetricsText. */
void metrics_text_done(MetricsText *t);

/* Starts a family: "# HELP name help" and "# TYPE name counter|gauge". help must not be empty. */
int metrics_text_family(MetricsText *t, const char *name, MetricType type, const char *help);

/* A sample of the current family: name{label="value",...} value. n_labels may be 0. */
int metrics_text_sample_u64(MetricsText *t, const MetricLabel *labels, size_t n_labels, uint64_t value);

/* A floating-point sample, in the fewest digits that read back as the same double ("0.1",
 * "1712345678.123456", "1e+21"), or "NaN", "+Inf", "-Inf". */
int metrics_text_sample_double(MetricsText *t, const MetricLabel *labels, size_t n_labels, double value);
