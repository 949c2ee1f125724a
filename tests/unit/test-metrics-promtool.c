/* SPDX-License-Identifier: MIT */
/*
 * The real `promtool check metrics` (package prometheus) on a page written by
 * metrics-text.c with every family shape ackd serves, the worst listener names
 * it can meet and the values the format spells out; and, so that this can
 * fail, on pages broken in each way the writer guards against. promtool must be
 * installed: without it both cases fail, they never skip. It is not in the unit
 * suite, which package builds run without promtool (see meson.build).
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "metrics-text.h"

typedef struct Checked {
        int status; /* promtool's exit status, or -1 if it did not exit */
        char output[4096];
} Checked;

/* Runs `promtool check metrics` on page, with its stdout and stderr captured. */
static Checked promtool_check(const char *page, size_t len) {
        int in[2], out[2], status;
        Checked c = { .status = -1 };
        size_t n = 0;
        ssize_t k;
        pid_t pid;

        ck_assert_int_eq(pipe(in), 0);
        ck_assert_int_eq(pipe(out), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                dup2(out[1], STDERR_FILENO);
                close(in[0]);
                close(in[1]);
                close(out[0]);
                close(out[1]);
                execlp("promtool", "promtool", "check", "metrics", (char *)NULL);
                fprintf(stderr, "cannot run promtool (package prometheus): %s\n", strerror(errno));
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        /* The page is smaller than a pipe's buffer, so this cannot block on promtool's output. */
        ck_assert_uint_lt(len, 65536);
        ck_assert_int_eq(write(in[1], page, len), (ssize_t)len);
        close(in[1]);
        while ((k = read(out[0], c.output + n, sizeof c.output - 1 - n)) > 0)
                n += (size_t)k;
        c.output[n] = '\0';
        close(out[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status))
                c.status = WEXITSTATUS(status);
        return c;
}

/* What ackd will serve, with the worst listener names and values it can meet. */
static void write_sample_page(MetricsText *t) {
        static const char *const listeners[] = {
                "[::]:9999",       "127.0.0.1:7777",          "/run/ack\"d\\x.sock",
                "@abstract\nname", "caf\xc3\xa9\xff\xc0\x80",
        };

        metrics_text_family(t, "ackd_connections_accepted_total", METRIC_COUNTER, "Connections accepted.");
        for (size_t i = 0; i < ELEMENTSOF(listeners); i++)
                metrics_text_sample_u64(
                        t,
                        METRIC_LABELS({ "listener", listeners[i] }, { "mode", i % 2 ? "line" : "oneshot" }),
                        i * 1000);
        metrics_text_family(t, "ackd_connections_rejected_total", METRIC_COUNTER,
                            "Connections refused, by reason.");
        for (size_t i = 0; i < ELEMENTSOF(listeners); i++)
                metrics_text_sample_u64(t, METRIC_LABELS({ "listener", listeners[i] }, { "reason", "busy" }),
                                        UINT64_MAX);
        metrics_text_family(t, "ackd_connections_active", METRIC_GAUGE,
                            "Open connections.\nPer \\ listener.");
        for (size_t i = 0; i < ELEMENTSOF(listeners); i++)
                metrics_text_sample_u64(t, METRIC_LABELS({ "listener", listeners[i] }), i);
        metrics_text_family(t, "ackd_draining", METRIC_GAUGE, "1 while draining, else 0.");
        metrics_text_sample_u64(t, NULL, 0, 0);
        metrics_text_family(t, "ackd_start_time_seconds", METRIC_GAUGE,
                            "Start time since the Epoch, in seconds.");
        metrics_text_sample_double(t, NULL, 0, 1712345678.123456);
        metrics_text_family(t, "ackd_build_info", METRIC_GAUGE,
                            "Always 1; the version label says which build.");
        metrics_text_sample_u64(t, METRIC_LABELS({ "version", "0.1.0~\"rc\"1" }), 1);
        metrics_text_family(t, "process_cpu_seconds_total", METRIC_COUNTER, "CPU time used, in seconds.");
        metrics_text_sample_double(t, NULL, 0, 1.0 / 3);
        metrics_text_family(t, "process_resident_memory_bytes", METRIC_GAUGE, "Resident memory, in bytes.");
        metrics_text_sample_u64(t, NULL, 0, 4 << 20);
        metrics_text_family(t, "ackd_test_extremes", METRIC_GAUGE, "Values the format spells out.");
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "nan" }), NAN);
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "inf" }), INFINITY);
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "-inf" }), -INFINITY);
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "max" }), DBL_MAX);
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "min" }), 5e-324);
        metrics_text_sample_double(t, METRIC_LABELS({ "v", "-0" }), -0.0);
        ck_assert_int_eq(t->error, 0);
}

START_TEST(test_promtool_accepts_the_page) {
        MetricsText t = { 0 };
        Checked c;

        write_sample_page(&t);
        c = promtool_check(t.data, t.len);
        ck_assert_msg(c.status == 0 && c.output[0] == '\0', "promtool check metrics: status %d: %s",
                      c.status, c.output);
        metrics_text_done(&t);
}
END_TEST

/* The control: promtool does find what the writer guards against, so the case above can fail. */
START_TEST(test_promtool_rejects_what_the_writer_escapes) {
        static const char *const broken[] = {
                "# HELP g G.\n# TYPE g gauge\ng{l=\"a\"b\"} 1\n",  /* unescaped quote */
                "# HELP g G.\n# TYPE g gauge\ng{l=\"a\xff\"} 1\n", /* invalid UTF-8 */
                "# HELP g G.\n# TYPE g gauge\ng{l=\"a\nb\"} 1\n",  /* raw newline */
                "# HELP g G.\n# TYPE g counter\ng 1\n",            /* counter without _total */
                "# HELP g G.\n# TYPE g gauge\ng 1.5.0\n",          /* not a number */
        };

        for (size_t i = 0; i < ELEMENTSOF(broken); i++) {
                Checked c = promtool_check(broken[i], strlen(broken[i]));

                ck_assert_msg(c.status != 127, "%s", c.output);
                ck_assert_msg(c.status > 0, "promtool accepted broken page %zu: status %d", i, c.status);
        }
}
END_TEST

Suite *make_suite(void);

Suite *make_suite(void) {
        Suite *s = suite_create("metrics-promtool");
        TCase *tc = tcase_create("promtool");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_promtool_accepts_the_page);
        tcase_add_test(tc, test_promtool_rejects_what_the_writer_escapes);
        suite_add_tcase(s, tc);
        return s;
}
