/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "errors.h"
#include "histogram.h"
#include "protocol.h"
#include "report.h"

static const struct {
        const char *json; /* key in "latency_us" */
        const char *text;
        double p;
} percentiles[] = {
        { "p50", "p50", 50 },       { "p90", "p90", 90 },  { "p99", "p99", 99 },
        { "p99_9", "p99.9", 99.9 }, { "max", "max", 100 },
};

uint64_t report_errors_total(const EngineResult *r) {
        uint64_t n = 0;

        for (size_t k = 0; k < _ERROR_KIND_MAX; k++)
                n += r->errors[k];
        return n;
}

double report_throughput(const BenchReport *b) {
        if (b->result->completed == 0 || b->elapsed_ns == 0)
                return 0;
        return (double)b->result->completed * 1e9 / (double)b->elapsed_ns;
}

const char *report_format_ns(char *buf, size_t size, uint64_t ns) {
        if (ns < 1000)
                (void)snprintf(buf, size, "%lluns", (unsigned long long)ns);
        else if (ns < 1000000)
                (void)snprintf(buf, size, "%.1fus", (double)ns / 1e3);
        else if (ns < 1000000000)
                (void)snprintf(buf, size, "%.2fms", (double)ns / 1e6);
        else
                (void)snprintf(buf, size, "%.2fs", (double)ns / 1e9);
        return buf;
}

static const char *mode_name(const ClientArgs *a) {
        return protocol_mode_to_string(a->mode);
}

static void text_header(FILE *f, const BenchReport *b) {
        const ClientArgs *a = b->args;

        fprintf(f, "ackc bench: %s", mode_name(a));
        if (a->idle > 0)
                fprintf(f, ", %llu idle connections", (unsigned long long)a->idle);
        else if (a->mode == PROTOCOL_LINE)
                fprintf(f, ", %llu connections x depth %llu", (unsigned long long)a->connections,
                        (unsigned long long)a->depth);
        else
                fprintf(f, ", %llu connections", (unsigned long long)a->connections);
        fprintf(f, ", %llu thread%s", (unsigned long long)a->threads, a->threads == 1 ? "" : "s");
        if (a->rate > 0)
                fprintf(f, ", rate %llu/s", (unsigned long long)a->rate);
        fprintf(f, ", %.2fs%s\n", (double)b->elapsed_ns / 1e9, b->interrupted ? " (interrupted)" : "");
        fprintf(f, "  target      %s, %zu-byte messages\n", b->target, a->payload_len);
}

/* Two lines, so that even long values stay within 80 columns. */
static void text_latency(FILE *f, const Histogram *h) {
        char v[32];

        if (h->count == 0) {
                fprintf(f, "  latency     none verified\n");
                return;
        }
        fprintf(f, "  latency    ");
        for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
                if (percentiles[i].p == 100)
                        fprintf(f, "\n             ");
                else if (i > 0)
                        fputc(' ', f);
                fprintf(f, " %s %s", percentiles[i].text,
                        report_format_ns(v, sizeof v, histogram_percentile(h, percentiles[i].p)));
        }
        fprintf(f, "  mean %s\n", report_format_ns(v, sizeof v, histogram_mean(h)));
}

static void text_errors(FILE *f, const EngineResult *r) {
        uint64_t total = report_errors_total(r);

        if (total == 0) {
                fprintf(f, "  errors      none\n");
                return;
        }
        fprintf(f, "  errors      %llu\n", (unsigned long long)total);
        for (size_t k = 0; k < _ERROR_KIND_MAX; k++)
                if (r->errors[k] > 0)
                        fprintf(f, "    %-12s %llu  first: %s\n", error_kind_key((ErrorKind)k),
                                (unsigned long long)r->errors[k], r->detail[k]);
}

void report_text(FILE *f, const BenchReport *b) {
        const ClientArgs *a = b->args;
        const EngineResult *r = b->result;

        text_header(f, b);
        if (a->idle > 0) {
                fprintf(f, "  connections %llu opened, %llu connected, %llu held for %.2fs\n",
                        (unsigned long long)r->idle_opened, (unsigned long long)r->connected,
                        (unsigned long long)r->idle_held, (double)a->duration_ms / 1e3);
                fprintf(f, "  answered    %llu of %llu%s\n", (unsigned long long)r->completed,
                        (unsigned long long)a->idle, r->completed == a->idle ? " (all)" : "");
        } else {
                fprintf(f, "  %-11s %llu verified, %llu sent\n",
                        a->mode == PROTOCOL_ONESHOT ? "connections" : "requests",
                        (unsigned long long)r->completed, (unsigned long long)r->sent);
                fprintf(f, "  throughput  %.1f %s/s\n", report_throughput(b),
                        a->mode == PROTOCOL_ONESHOT ? "connections" : "requests");
                if (r->unsent > 0)
                        fprintf(f, "  not sent    %llu due by the schedule, but no connection had room\n",
                                (unsigned long long)r->unsent);
        }
        text_latency(f, &r->hist);
        text_errors(f, r);
}

/* --- JSON --------------------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

static void json_u64(FILE *f, const char *key, uint64_t v, bool comma) {
        fprintf(f, "\"%s\":%llu%s", key, (unsigned long long)v, comma ? "," : "");
}

static void json_latency(FILE *f, const Histogram *h) {
        fprintf(f, "\"latency_us\":{");
        for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
                fprintf(f, "\"%s\":", percentiles[i].json);
                if (h->count == 0)
                        fprintf(f, "null,");
                else
                        fprintf(f, "%.3f,", (double)histogram_percentile(h, percentiles[i].p) / 1e3);
        }
        if (h->count == 0)
                fprintf(f, "\"mean\":null},");
        else
                fprintf(f, "\"mean\":%.3f},", (double)histogram_mean(h) / 1e3);
}

void report_json(FILE *f, const BenchReport *b) {
        const ClientArgs *a = b->args;
        const EngineResult *r = b->result;

        fprintf(f, "{\"mode\":\"%s\",\"target\":", mode_name(a));
        json_string(f, b->target);
        fputc(',', f);
        json_u64(f, "connections", a->idle > 0 ? a->idle : a->connections, true);
        json_u64(f, "depth", a->depth, true);
        json_u64(f, "threads", a->threads, true);
        json_u64(f, "message_bytes", a->payload_len, true);
        if (a->rate > 0)
                json_u64(f, "rate_per_s", a->rate, true);
        else
                fprintf(f, "\"rate_per_s\":null,");
        fprintf(f, "\"duration_s\":%.3f,", (double)b->elapsed_ns / 1e9);
        fprintf(f, "\"interrupted\":%s,", b->interrupted ? "true" : "false");
        json_u64(f, "sent", r->sent, true);
        json_u64(f, "requests", r->completed, true);
        json_u64(f, "connected", r->connected, true);
        json_u64(f, "unsent", r->unsent, true);
        if (a->idle > 0)
                fprintf(f, "\"throughput_per_s\":null,");
        else
                fprintf(f, "\"throughput_per_s\":%.1f,", report_throughput(b));
        json_latency(f, &r->hist);

        /* Only the kinds, so that a script may sum the object's values. */
        fprintf(f, "\"errors\":{");
        for (size_t k = 0; k < _ERROR_KIND_MAX; k++)
                json_u64(f, error_kind_key((ErrorKind)k), r->errors[k], k + 1 < _ERROR_KIND_MAX);
        fprintf(f, "},");
        json_u64(f, "errors_total", report_errors_total(r), true);

        if (a->idle > 0)
                fprintf(f,
                        "\"idle\":{\"connections\":%llu,\"opened\":%llu,\"connected\":%llu,\"held\":%llu,"
                        "\"answered\":%llu,\"failed\":%llu,\"hold_s\":%.3f}}\n",
                        (unsigned long long)a->idle, (unsigned long long)r->idle_opened,
                        (unsigned long long)r->connected, (unsigned long long)r->idle_held,
                        (unsigned long long)r->completed, (unsigned long long)(a->idle - r->completed),
                        (double)a->duration_ms / 1e3);
        else
                fprintf(f, "\"idle\":null}\n");
}
