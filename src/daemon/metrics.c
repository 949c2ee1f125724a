/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"

/* One listener's counters: the sum over the workers. */
static Stats listener_stats(const MetricsSource *src, size_t listener) {
        Stats sum = { 0 };

        for (unsigned i = 0; i < src->n_workers; i++)
                stats_accumulate(&sum, worker_stats(src->workers[i], listener));
        return sum;
}

/* The counter table (stats.h) as rows: one family per run of rows with the same name. */
typedef struct CounterRow {
        const char *family, *label, *label_value, *help;
        size_t offset; /* in Stats */
} CounterRow;

static const CounterRow counter_rows[] = {
#define COUNTER_ROW(f, status_name, err, family, label, label_value, help) \
        { "ackd_" family, label, label_value, help, offsetof(Stats, f) },
        ACKD_STATS(COUNTER_ROW)
#undef COUNTER_ROW
};

static void render_sample(MetricsText *t, const CounterRow *row, const Listener *l, const char *mode,
                          uint64_t value) {
        if (row->label)
                (void)metrics_text_sample_u64(t,
                                              METRIC_LABELS({ "listener", l->name }, { "mode", mode },
                                                            { row->label, row->label_value }),
                                              value);
        else
                (void)metrics_text_sample_u64(t, METRIC_LABELS({ "listener", l->name }, { "mode", mode }),
                                              value);
}

/* Every counter, one sample per ack listener (metrics listeners count nothing). */
static void render_counters(MetricsText *t, const MetricsSource *src) {
        const ListenerSet *ls = src->listeners;
        Stats sums[LISTENERS_MAX];
        char modes[LISTENERS_MAX][LISTEN_MODE_STRING_MAX];

        for (size_t l = 0; l < ls->n_items; l++) {
                sums[l] = listener_stats(src, l);
                (void)listener_mode(&ls->items[l], modes[l], sizeof modes[l]);
        }
        for (size_t i = 0; i < ELEMENTSOF(counter_rows); i++) {
                const CounterRow *row = &counter_rows[i];

                if (row->help)
                        (void)metrics_text_family(t, row->family, METRIC_COUNTER, row->help);
                for (size_t l = 0; l < ls->n_items; l++)
                        if (ls->items[l].mode != PROTOCOL_METRICS)
                                render_sample(t, row, &ls->items[l], modes[l],
                                              *(const uint64_t *)((const char *)&sums[l] + row->offset));
        }
}

/* Entries in /proc/self/fd, or -1. */
static long open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        long n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += de->d_name[0] != '.';
        (void)closedir(d);
        return n - 1; /* not the one opendir() holds */
}

/* The standard process_* metrics every Prometheus client library exports. */
static void render_process(MetricsText *t, const MetricsSource *src) {
        struct rlimit rl;
        struct rusage ru;
        long pages = 0, fds = open_fds();
        FILE *f;

        if (getrusage(RUSAGE_SELF, &ru) == 0) {
                (void)metrics_text_family(t, "process_cpu_seconds_total", METRIC_COUNTER,
                                          "Total user and system CPU time spent in seconds.");
                (void)metrics_text_sample_double(
                        t, NULL, 0,
                        (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
        }
        f = fopen("/proc/self/statm", "re");
        if (f) {
                if (fscanf(f, "%*d %ld", &pages) == 1) {
                        (void)metrics_text_family(t, "process_resident_memory_bytes", METRIC_GAUGE,
                                                  "Resident memory size in bytes.");
                        (void)metrics_text_sample_u64(t, NULL, 0,
                                                      (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE));
                }
                (void)fclose(f);
        }
        if (fds >= 0) {
                (void)metrics_text_family(t, "process_open_fds", METRIC_GAUGE,
                                          "Number of open file descriptors.");
                (void)metrics_text_sample_u64(t, NULL, 0, (uint64_t)fds);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                (void)metrics_text_family(t, "process_max_fds", METRIC_GAUGE,
                                          "Maximum number of open file descriptors.");
                (void)metrics_text_sample_u64(t, NULL, 0,
                                              rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur);
        }
        (void)metrics_text_family(t, "process_start_time_seconds", METRIC_GAUGE,
                                  "Start time of the process since unix epoch in seconds.");
        (void)metrics_text_sample_double(t, NULL, 0, src->start_time);
}

static void render_gauges(MetricsText *t, const MetricsSource *src) {
        unsigned health = atomic_load_explicit(src->health, memory_order_relaxed);

        (void)metrics_text_family(t, "ackd_connections_active", METRIC_GAUGE,
                                  "Connections being served now, over every listener (not those being told "
                                  "ERR busy).");
        (void)metrics_text_sample_u64(t, NULL, 0, admission_active(src->admission));
        (void)metrics_text_family(
                t, "ackd_connections_max", METRIC_GAUGE,
                "Connections served at once: max-connections, capped by the file descriptor "
                "limit.");
        (void)metrics_text_sample_u64(t, NULL, 0, admission_max_connections(src->admission));
        (void)metrics_text_family(t, "ackd_draining", METRIC_GAUGE,
                                  "1 while stopping (or in --shutdown-delay): /healthz answers 503.");
        (void)metrics_text_sample_u64(t, NULL, 0, (health & HEALTH_DRAINING) != 0);
        (void)metrics_text_family(
                t, "ackd_healthy", METRIC_GAUGE,
                "1 while /healthz answers 200: serving, not draining, reloading or stuck.");
        (void)metrics_text_sample_u64(t, NULL, 0, health == 0);
        (void)metrics_text_family(t, "ackd_start_time_seconds", METRIC_GAUGE,
                                  "When ackd started, in seconds since the epoch.");
        (void)metrics_text_sample_double(t, NULL, 0, src->start_time);
        (void)metrics_text_family(t, "ackd_build_info", METRIC_GAUGE,
                                  "ackd's version, as a label; always 1.");
        (void)metrics_text_sample_u64(t, METRIC_LABELS({ "version", PACKAGE_VERSION }), 1);
}

int metrics_render(MetricsText *t, const MetricsSource *src) {
        metrics_text_reset(t);
        render_counters(t, src);
        render_gauges(t, src);
        render_process(t, src);
        return t->error;
}

const char *metrics_health_problem(const MetricsSource *src) {
        unsigned health = atomic_load_explicit(src->health, memory_order_relaxed);

        if (health & HEALTH_DRAINING)
                return "draining";
        if (health & HEALTH_RELOADING)
                return "reloading";
        if (health & HEALTH_STUCK)
                return "stuck";
        return NULL;
}
