/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "metrics-text.h"

#define INITIAL_SIZE 4096

/* A bad name is a bug in ackd, not input: stop at once, in every build, and say why. */
#define require(expr, what, name)                                                                    \
        do {                                                                                         \
                if (!(expr)) {                                                                       \
                        fprintf(stderr, "metrics-text: %s: \"%s\"\n", what, name ? name : "(null)"); \
                        abort();                                                                     \
                }                                                                                    \
        } while (0)

void metrics_text_reset(MetricsText *t) {
        t->len = 0;
        if (t->data)
                t->data[0] = '\0';
        t->error = 0;
        t->family = NULL;
}

void metrics_text_done(MetricsText *t) {
        t->data = mfree(t->data);
        t->len = t->size = 0;
        t->error = 0;
        t->family = NULL;
}

/* Makes room for n more bytes and the NUL; false (with ->error set) if there is none. */
static bool reserve(MetricsText *t, size_t n) {
        size_t need, size;
        char *p;

        if (t->error < 0)
                return false;
        if (n > SIZE_MAX - 1 - t->len || (t->max > 0 && t->len + n > t->max)) {
                t->error = -ENOBUFS;
                return false;
        }
        need = t->len + n + 1;
        if (need <= t->size)
                return true;

        size = MAX(t->size, (size_t)INITIAL_SIZE);
        while (size < need)
                size = size <= SIZE_MAX / 2 ? size * 2 : need;
        p = realloc(t->data, size);
        if (!p) {
                t->error = -ENOMEM;
                return false;
        }
        t->data = p;
        t->size = size;
        return true;
}

static void append(MetricsText *t, const char *s, size_t n) {
        if (!reserve(t, n))
                return;
        memcpy(t->data + t->len, s, n);
        t->len += n;
        t->data[t->len] = '\0';
}

static void append_str(MetricsText *t, const char *s) {
        append(t, s, strlen(s));
}

/* The length of the UTF-8 sequence (RFC 3629: shortest form, no surrogates, at most U+10FFFF)
 * at s[0..n), or 0 if none begins there. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
        uint32_t cp, min;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                min = 0x80;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                min = 0x800;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                min = 0x10000;
                cp = s[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* s, escaped as the format asks: backslash and newline always, double quote in label values.
 * A byte that does not begin a valid UTF-8 sequence becomes U+FFFD. */
static void append_escaped(MetricsText *t, const char *s, bool label_value) {
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s);

        while (n > 0) {
                size_t k = utf8_sequence(p, n);

                if (k == 0) {
                        append_str(t, "\xef\xbf\xbd");
                        k = 1;
                } else if (*p == '\\')
                        append_str(t, "\\\\");
                else if (*p == '\n')
                        append_str(t, "\\n");
                else if (*p == '"' && label_value)
                        append_str(t, "\\\"");
                else
                        append(t, (const char *)p, k);
                p += k;
                n -= k;
        }
}

static bool is_name_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name(const char *s) {
        if (!s || !is_name_start(s[0]))
                return false;
        for (s++; *s; s++)
                if (!is_name_start(*s) && !(*s >= '0' && *s <= '9'))
                        return false;
        return true;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), k = strlen(suffix);

        return n >= k && strcmp(s + n - k, suffix) == 0;
}

int metrics_text_family(MetricsText *t, const char *name, MetricType type, const char *help) {
        const char *type_name = type == METRIC_COUNTER ? "counter" : "gauge";

        require(is_name(name), "invalid metric name", name);
        require(type == METRIC_COUNTER || type == METRIC_GAUGE, "invalid metric type", name);
        require(type != METRIC_COUNTER || ends_with(name, "_total"), "counter name without _total", name);
        require(help && help[0], "metric without help", name);

        t->family = name;
        t->family_type = type;
        append_str(t, "# HELP ");
        append_str(t, name);
        append_str(t, " ");
        append_escaped(t, help, false);
        append_str(t, "\n# TYPE ");
        append_str(t, name);
        append_str(t, " ");
        append_str(t, type_name);
        append_str(t, "\n");
        return t->error;
}

/* The sample's name and labels, up to the space before its value. */
static void append_series(MetricsText *t, const MetricLabel *labels, size_t n_labels) {
        require(t->family, "sample outside a family", "");
        append_str(t, t->family);
        if (n_labels == 0) {
                append_str(t, " ");
                return;
        }

        append_str(t, "{");
        for (size_t i = 0; i < n_labels; i++) {
                const char *name = labels[i].name;

                require(is_name(name) && strncmp(name, "__", 2) != 0, "invalid label name", name);
                for (size_t j = 0; j < i; j++)
                        require(strcmp(labels[j].name, name) != 0, "label name repeated", name);
                require(labels[i].value, "label without a value", name);

                if (i > 0)
                        append_str(t, ",");
                append_str(t, name);
                append_str(t, "=\"");
                append_escaped(t, labels[i].value, true);
                append_str(t, "\"");
        }
        append_str(t, "} ");
}

int metrics_text_sample_u64(MetricsText *t, const MetricLabel *labels, size_t n_labels, uint64_t value) {
        char buf[STRLEN("18446744073709551615") + 1];

        append_series(t, labels, n_labels);
        snprintf(buf, sizeof buf, "%" PRIu64, value);
        append_str(t, buf);
        append_str(t, "\n");
        return t->error;
}

/* The shortest "%g" form of v that reads back as v, with '.' as the decimal point whatever the
 * locale (strtod() reads it in the same locale as snprintf() wrote it, before the swap). */
static void format_double(char *buf, size_t size, double v) {
        char *out = buf;

        for (int precision = 1; precision <= 17; precision++) {
                snprintf(buf, size, "%.*g", precision, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        for (const char *p = buf; *p;) {
                if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e') {
                        *out++ = *p++;
                        continue;
                }
                *out++ = '.';
                while (*p && !((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e'))
                        p++;
        }
        *out = '\0';
}

int metrics_text_sample_double(MetricsText *t, const MetricLabel *labels, size_t n_labels, double value) {
        char buf[64];

        require(t->family_type != METRIC_COUNTER || !(value < 0), "negative counter", t->family);
        append_series(t, labels, n_labels);
        if (isnan(value))
                append_str(t, "NaN");
        else if (isinf(value))
                append_str(t, value > 0 ? "+Inf" : "-Inf");
        else {
                format_double(buf, sizeof buf, value);
                append_str(t, buf);
        }
        append_str(t, "\n");
        return t->error;
}
